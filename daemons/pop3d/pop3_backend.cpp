// pop3_backend.cpp — see pop3_backend.h.
#include "pop3_backend.h"

#include "common/async.h"

namespace postern::pop3 {

void LocalPop3Backend::authenticate(const AuthRequest& request, QByteArray password, AuthDone done) {
    m_auth.verify(request, QStringLiteral("pop3"), std::move(password),
                  [done = std::move(done)](Authenticator::Outcome o) { done(o.verdict, o.user); });
}

void LocalPop3Backend::openMaildrop(QObject* context, const QString& user, qint64 loginDelaySeconds,
                                    std::function<void(Result<std::shared_ptr<Maildrop>>)> done) {
    const QString mailDir = m_config.mailDir();
    runAsync(
        context, [mailDir, user, loginDelaySeconds] { return Maildrop::open(mailDir, user, loginDelaySeconds); },
        std::move(done), &m_pool);
}

void LocalPop3Backend::commit(QObject* context, std::shared_ptr<Maildrop> drop, QSet<int> deleted, QSet<int> retrieved,
                              std::function<void(Status)> done) {
    runAsync(
        context, [drop, deleted, retrieved] { return drop->commit(deleted, retrieved); }, std::move(done), &m_pool);
}

}  // namespace postern::pop3
