// sieve_backend.cpp — see sieve_backend.h.
#include "sieve_backend.h"

#include "common/async.h"

namespace postern::managesieve {

LocalSieveBackend::LocalSieveBackend(const Config& config, Authenticator& auth) : m_config(config), m_auth(auth) {
    m_pool.setMaxThreadCount(2);
}

void LocalSieveBackend::authenticate(const AuthRequest& request, QByteArray password, AuthDone done) {
    m_auth.verify(request, QStringLiteral("managesieve"), std::move(password),
                  [done = std::move(done)](Authenticator::Outcome o) { done(o.verdict, o.user); });
}

void LocalSieveBackend::run(QObject* context, std::function<StoreReply(const QString& mailDir)> work,
                            std::function<void(StoreReply)> done) {
    const QString mailDir = m_config.mailDir();
    runAsync(
        context, [mailDir, work = std::move(work)] { return work(mailDir); }, std::move(done), &m_pool);
}

}  // namespace postern::managesieve
