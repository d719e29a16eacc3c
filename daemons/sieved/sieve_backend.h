// sieve_backend.h — the real SieveBackend of postern-sieved: the shared
// Authenticator (with the login throttle IMAP uses) and the script store run
// on a small worker pool, so file writes and fsyncs never block the event loop.
#pragma once

#include "managesieve_session.h"

#include "common/authenticator.h"

#include "core/config.h"

#include <QThreadPool>

namespace postern::managesieve {

class LocalSieveBackend : public SieveBackend {
public:
    LocalSieveBackend(const Config& config, Authenticator& auth);
    void authenticate(const AuthRequest& request, QByteArray password, AuthDone done) override;
    void run(QObject* context, std::function<StoreReply(const QString& mailDir)> work,
             std::function<void(StoreReply)> done) override;

private:
    const Config& m_config;
    Authenticator& m_auth;
    QThreadPool m_pool;
};

}  // namespace postern::managesieve
