// authenticator.h — password logins for every protocol daemon.
//
// Interface: verify(context, protocol, session, peer, login, password, done).
//   * login: a full address; a bare local part gets `primary_domain` appended.
//   * the Argon2/crypt work runs on a worker thread (core passwords), through
//     the verification cache (AuthCache, keyed by user + HMAC of the password);
//   * unknown users cost the same hashing time as known ones (a dummy hash of
//     the configured cost), so timing does not reveal which accounts exist;
//   * failures are answered only after the shared throttle's delay
//     (AuthThrottle), and clients with many recent failures wait before their
//     password is even checked;
//   * done(result) runs on the main thread, never if `context` was deleted.
// Logs one line per attempt: protocol, user, remote, result. Never the password.
#pragma once

#include "auth_throttle.h"

#include "core/accounts.h"
#include "core/config.h"
#include "core/password.h"

#include <QHostAddress>
#include <QObject>
#include <functional>
#include <memory>

namespace postern {

class Authenticator : public QObject {
    Q_OBJECT
public:
    struct Outcome {
        enum class Status { Ok, Failed, TempFail };
        Status status = Status::Failed;
        QString user;    // normalised address on success (and the attempted one on failure, when valid)
        QString reason;  // for logs only: "bad password", "unknown user", ...
        bool ok() const { return status == Status::Ok; }
    };
    using Done = std::function<void(Outcome)>;

    Authenticator(const Config& config, AccountStore* accounts, QObject* parent = nullptr);
    // Maps <run_dir>/auth-throttle (shared by all daemons); falls back to per-process state.
    Status openSharedThrottle();
    void applyConfig();  // after a reload: delays, cache TTL

    void verify(QObject* context, const QString& protocol, const QString& sessionId, const QHostAddress& peer,
                const QString& login, QByteArray password, Done done);

    AuthThrottle& throttle() { return m_throttle; }
    AuthCache& cache() { return *m_cache; }
    // "alice" -> "alice@<primary_domain>"; normalised address or empty when invalid.
    QString normalizeLogin(const QString& login) const;

private:
    void check(QObject* context, const QString& protocol, const QString& sessionId, const QHostAddress& peer,
               const QString& user, QByteArray password, Done done);

    const Config& m_config;
    AccountStore* m_accounts;
    AuthThrottle m_throttle;
    std::shared_ptr<AuthCache> m_cache;
    QString m_dummyHash;
};

}  // namespace postern
