// authenticator.h — password logins for every protocol daemon.
//
// Interface: verify(request, protocol, password, done).
//   * request.login: a full address; a bare local part gets `primary_domain`
//     appended;
//   * first the shared throttle (auth_throttle.h, the policy is written there)
//     admits the attempt or refuses it at once (TempFail: too many attempts in
//     flight for this address or account; the password is not checked), and
//     says how long to wait; the wait comes BEFORE the password is checked, so
//     hanging up early gains nothing: after the wait a client that has gone
//     (request.hungUp(), or its context was deleted) is counted as a failure
//     and its password is never checked;
//   * the Argon2/crypt work runs on a worker thread (core passwords), through
//     the verification cache (AuthCache, keyed by user + HMAC of the password);
//     its result is recorded in the throttle even if the session is gone;
//   * unknown users cost the same hashing time as known ones (a dummy hash of
//     the configured cost), so timing does not reveal which accounts exist;
//   * app passwords (account_credentials.h): the ones whose tag matches the
//     attempt are verified first (one slow verify, nearly always), then the
//     account password — unless two-factor login is on for the account: then
//     only app passwords are accepted, and the account password is never
//     checked (a dummy verify keeps the time equal, and the reply is the same
//     failure, so a client cannot learn that the password was right). A failed
//     app password is a failure for the throttle like any other. A verify
//     costs the same whichever path is taken: one hash, except after a 16-bit
//     tag collision (then one more). A match records its use for "last used"
//     (two_factor.h recordAppPasswordUse, from the worker thread);
//   * the answer to a failure is also held back (the address's penalty, at
//     least auth.failure_delay), so failures are never answered quickly; the
//     attempt counts as in flight until that answer;
//   * done(outcome) runs on the main thread, later (never inside verify()), and
//     never if `request.context` was deleted.
//   * a disabled account (UserRecord::disabled) is refused whatever the password or
//     app password: the same work, the same failure and the same held-back answer as a
//     wrong password (nothing tells a client the account's state), counted in the
//     throttle like any failure, logged with reason="account disabled";
// Protocol kPanelProtocol ("web", the control panel): the account password only, even
// with two-factor login on (the panel asks for the code itself); app passwords are for
// mail clients and never open the panel.
// Logs one line per attempt: protocol, user, remote, result (ok, failed,
// tempfail), and on success credential=password|app-password and the app
// password's name. Never the password.
// verifySecondFactor(request, protocol, check, done): the second step of a login (the
// panel's TOTP code) through the same throttle as verify(): admitted first (TempFail
// when busy), the address's/account's wait BEFORE the check, then check(answer) is
// started on the main thread and calls answer() once, possibly later (the panel asks
// webd's account helper asynchronously; check must never block); Refused is a failure
// like a wrong password (counted, logged result=failed with the remote address for
// fail2ban, its answer held back by the penalty), Accepted a success, Unavailable (the
// checker could not decide: helper busy or gone) a TempFail that is not counted as a
// failure. The attempt stays in flight in the throttle until answer() is called.
// Logged with credential=second-factor; the code itself is never logged.
// Block list: with setBlockList(), a failure that brings its address's count in the
// throttle to auth.block_after_failures (0: never) puts the address (IPv4 /32, IPv6
// /48) on the shared temporary block list (core/block_list.h) for auth.block_duration,
// logged as auth.blocked; the daemons then refuse its connections at accept.
#pragma once

#include "auth_request.h"
#include "auth_throttle.h"

#include "core/accounts.h"
#include "core/config.h"
#include "core/password.h"

#include <QHostAddress>
#include <QObject>
#include <QPointer>
#include <functional>
#include <memory>
#include <optional>

namespace postern {

class BlockList;

inline constexpr const char* kPanelProtocol = "web";
// Outcome::reason of a second factor the checker could not decide (SecondFactor::Unavailable).
inline constexpr const char* kSecondFactorUnavailable = "second factor check unavailable";

class Authenticator : public QObject {
    Q_OBJECT
public:
    struct Outcome {
        AuthVerdict verdict = AuthVerdict::Failed;
        QString user;    // normalised address on success (and the attempted one on failure, when valid)
        QString reason;  // for logs only: "bad password", "unknown user", "address busy", ...
        bool ok() const { return verdict == AuthVerdict::Ok; }
    };
    using Done = std::function<void(Outcome)>;

    Authenticator(const Config& config, AccountStore* accounts, QObject* parent = nullptr);
    // Maps <run_dir>/auth-throttle (shared by all daemons); falls back to per-process state.
    Status openSharedThrottle();
    void applyConfig();  // after a reload: delays, cache TTL

    void verify(const AuthRequest& request, const QString& protocol, QByteArray password, Done done);
    enum class SecondFactor { Accepted, Refused, Unavailable };
    using SecondFactorAnswer = std::function<void(SecondFactor)>;
    using SecondFactorCheck = std::function<void(SecondFactorAnswer)>;
    void verifySecondFactor(const AuthRequest& request, const QString& protocol, SecondFactorCheck check, Done done);

    AuthThrottle& throttle() { return m_throttle; }
    void setBlockList(BlockList* list) { m_blockList = list; }
    AuthCache& cache() { return *m_cache; }
    // "alice" -> "alice@<primary_domain>"; normalised address or empty when invalid.
    QString normalizeLogin(const QString& login) const;

private:
    void check(const AuthRequest& request, const QString& protocol, const QString& user,
               const AuthThrottle::Admission& admission, QByteArray password, Done done);
    void answerSecondFactor(SecondFactor verdict, QPointer<QObject> guard, const AuthRequest& request,
                            const QString& protocol, const QString& user, const AuthThrottle::Admission& admission,
                            Done done);
    void answerLater(QObject* context, qint64 delayMs, Outcome outcome, Done done,
                     std::optional<AuthThrottle::Admission> held = std::nullopt);

    const Config& m_config;
    AccountStore* m_accounts;
    AuthThrottle m_throttle;
    std::shared_ptr<AuthCache> m_cache;
    QString m_dummyHash;
    BlockList* m_blockList = nullptr;
    int m_blockAfter = 0;
    qint64 m_blockMs = 0;
    void blockIfTooMany(const QHostAddress& peer, const QString& sessionId);
};

}  // namespace postern
