// authenticator.cpp — see authenticator.h.
#include "authenticator.h"

#include "core/block_list.h"

#include "async.h"

#include "core/address.h"
#include "core/atomic_file.h"
#include "core/log.h"
#include "core/setting_keys.h"
#include "core/stats.h"
#include "core/two_factor.h"

#include <QDateTime>
#include <QPointer>
#include <QTimer>

#include <openssl/crypto.h>
#include <climits>

namespace postern {

namespace {
// The fields every auth log line starts with.
log::Fields authFields(const QString& protocol, const QString& user, const QHostAddress& peer) {
    log::Fields f;
    f.add("protocol", protocol).add("user", user).add("remote", peer.toString());
    return f;
}

// What the account store says about a login name (empty records when unknown).
struct Credentials {
    QString stored;  // the account password's hash
    bool known = false;
    bool passwordAllowed = true;  // false once two-factor login is on: app passwords only
    bool disabled = false;        // a disabled account (accounts.h): refused whatever the password
    QList<AppPassword> apps;
};

Credentials credentialsOf(AccountStore& accounts, const QString& user, bool panel) {
    Credentials c;
    if (user.isEmpty()) return c;
    // Exact: a password changed, an account disabled or two-factor login turned on a
    // moment ago (by another process) counts from this login on.
    auto snapshot = accounts.current(AccountStore::Freshness::Exact);
    if (const UserRecord* u = snapshot->user(user)) {
        c.stored = u->passwordHash;
        c.known = true;
        c.disabled = u->disabled;
        c.passwordAllowed = panel || !snapshot->credentials().twoFactorEnabled(user);
        if (!panel) c.apps = snapshot->credentials().appPasswords(user);
    }
    return c;
}

struct Work {
    bool match = false;
    bool cached = false;
    QString appName;     // set when an app password matched
    QString usageError;  // recording its use failed (logged, the login still succeeds)
};

// The slow part of check(), on a worker thread: the app passwords whose tag fits, then the
// account password, or the dummy hash; wipes `password` before it returns.
Work verifyCredentials(AuthCache& cache, const QString& user, const Credentials& c, const QString& dummy,
                       const QString& usageDir, QByteArray& password) {
    Work w;
    int verifies = 0;
    // App passwords first, only those whose tag matches (account_credentials.h):
    // nearly always none or one, so a login costs one slow verify at most here.
    const QByteArray letters = c.known && !c.apps.isEmpty() ? normalizeAppPassword(password) : QByteArray();
    if (!letters.isEmpty()) {
        const quint16 tag = appPasswordTag(user, letters);
        for (const AppPassword& a : std::as_const(c.apps)) {
            if (a.tag != tag) continue;
            const QString key = user + QChar(0x1f) + a.id;
            if (cache.check(key, letters, a.hash)) {
                w.cached = true;
            } else {
                ++verifies;
                if (!verifyPassword(letters, a.hash)) continue;
                cache.remember(key, letters, a.hash);
            }
            w.match = true;
            w.appName = a.name;
            if (c.disabled) break;  // not a use: the login is refused
            if (auto st = recordAppPasswordUse(usageDir, a.id, QDateTime::currentSecsSinceEpoch()); !st)
                w.usageError = st.errorMessage();
            break;
        }
    }
    // The account password, unless two-factor login is on.
    if (!w.match && c.known && c.passwordAllowed) {
        if (cache.check(user, password, c.stored)) {
            w.match = true;
            w.cached = true;
        } else {
            ++verifies;
            w.match = verifyPassword(password, c.stored);
            if (w.match) cache.remember(user, password, c.stored);
        }
    }
    // Unknown user, or two-factor on and no app password fits: the same hashing
    // time as a real check, so the answer's timing tells nothing.
    if (!w.match && verifies == 0) (void)verifyPassword(password, dummy);
    OPENSSL_cleanse(password.data(), size_t(password.size()));
    return w;
}
}  // namespace

Authenticator::Authenticator(const Config& config, AccountStore* accounts, QObject* parent)
    : QObject(parent), m_config(config), m_accounts(accounts) {
    applyConfig();
    // Same cost as real hashes, so a login for a missing user takes as long as one for a real user.
    m_dummyHash = hashPassword("postern-timing-equaliser", HashParams::fromConfig(config)).valueOr(QString());
}

Status Authenticator::openSharedThrottle() {
    // Whichever daemon starts first makes the folder (else it would fall back to its own memory).
    if (auto st = ensureDirectory(m_config.runDir(), 0755); !st) return st;
    return m_throttle.open(m_config.runDir() + QStringLiteral("/auth-throttle"),
                           AuthThrottle::Policy::fromConfig(m_config));
}

void Authenticator::applyConfig() {
    m_throttle.setPolicy(AuthThrottle::Policy::fromConfig(m_config));
    m_blockAfter = int(get(m_config, keys::auth::blockAfterFailures));
    m_blockMs = get(m_config, keys::auth::blockDuration);
    m_cache = std::make_shared<AuthCache>(std::chrono::milliseconds(get(m_config, keys::auth::cacheTtl)),
                                          int(get(m_config, keys::auth::cacheSize)));
}

// The failure just recorded may be the address's auth.block_after_failures-th in the window.
void Authenticator::blockIfTooMany(const QHostAddress& peer, const QString& sessionId) {
    if (!m_blockList || m_blockAfter <= 0) return;
    const int failures = m_throttle.failures(AuthThrottle::ipKey(peer));
    if (failures < m_blockAfter) return;
    const QString subnet = BlockList::autoBlockSubnet(peer);
    if (m_blockList->blocked(peer)) return;  // already (another process was quicker)
    const Status st = m_blockList->add(subnet, m_blockMs, QStringLiteral("auth"));
    log::write(st ? log::Level::Warning : log::Level::Error, sessionId, u"auth.blocked",
               log::Fields()
                   .add("remote", peer.toString())
                   .add("entry", subnet)
                   .add("failures", failures)
                   .add("duration_ms", m_blockMs)
                   .add("result", st ? QStringLiteral("blocked") : st.errorMessage()));
}

QString Authenticator::normalizeLogin(const QString& loginIn) const {
    QString login = loginIn.trimmed();
    if (!login.contains(QLatin1Char('@'))) {
        const QString dom = get(m_config, keys::general::primaryDomain);
        if (dom.isEmpty()) return {};
        login += QLatin1Char('@') + dom;
    }
    return normalizeAddress(login).valueOr(QString());
}

void Authenticator::verify(const AuthRequest& request, const QString& protocol, QByteArray password, Done done) {
    const QString user = normalizeLogin(request.login);
    const AuthThrottle::Admission admission = m_throttle.admit(request.peer, user);
    if (!admission.proceed()) {
        // Too many attempts in flight for this address or account: no check, no wait.
        OPENSSL_cleanse(password.data(), size_t(password.size()));
        stats::add(QStringLiteral("postern_auth_total"),
                   {{QStringLiteral("protocol"), protocol}, {QStringLiteral("result"), QStringLiteral("tempfail")}});
        log::write(log::Level::Warning, request.sessionId, u"auth",
                   authFields(protocol, user, request.peer).add("result", "tempfail").add("reason", admission.reason));
        answerLater(request.context, 0, Outcome{AuthVerdict::TempFail, user, admission.reason}, std::move(done));
        return;
    }
    if (admission.delayMs <= 0) {
        check(request, protocol, user, admission, std::move(password), std::move(done));
        return;
    }
    log::write(log::Level::Info, request.sessionId, u"auth.delayed",
               authFields(protocol, user, request.peer)
                   .add("delay_ms", admission.delayMs)
                   .add("known_address", admission.knownGood));
    // The wait comes before the check: the outcome cannot be inferred before it ends. Precise
    // timers: a coarse one may end the wait up to 5 % early.
    QPointer<QObject> guard(request.context);
    QTimer::singleShot(
        int(std::min<qint64>(admission.delayMs, INT_MAX)), Qt::PreciseTimer, this,
        [this, guard, request, protocol, user, admission, password = std::move(password),
         done = std::move(done)]() mutable {
            const bool gone = !guard || (request.hungUp && request.hungUp());
            if (!gone) {
                check(request, protocol, user, admission, std::move(password), std::move(done));
                return;
            }
            // Hanging up during the wait gains nothing: a failure, and no check.
            OPENSSL_cleanse(password.data(), size_t(password.size()));
            m_throttle.finish(admission, AuthThrottle::Outcome::Abandoned);
            stats::add(QStringLiteral("postern_auth_total"), {{QStringLiteral("protocol"), protocol},
                                                              {QStringLiteral("result"), QStringLiteral("abandoned")}});
            log::write(log::Level::Warning, request.sessionId, u"auth",
                       authFields(protocol, user, request.peer)
                           .add("result", "failed")
                           .add("reason", "client gone before the check"));
            if (guard)
                answerLater(guard, 0, Outcome{AuthVerdict::TempFail, user, QStringLiteral("client gone")},
                            std::move(done));
        });
}

void Authenticator::verifySecondFactor(const AuthRequest& request, const QString& protocol, SecondFactorCheck checkFn,
                                       Done done) {
    const QString user = normalizeLogin(request.login);
    const AuthThrottle::Admission admission = m_throttle.admit(request.peer, user);
    const auto fields = [&](const char* result) {
        return authFields(protocol, user, request.peer).add("result", result).add("credential", "second-factor");
    };
    if (!admission.proceed()) {
        stats::add(QStringLiteral("postern_auth_total"),
                   {{QStringLiteral("protocol"), protocol}, {QStringLiteral("result"), QStringLiteral("tempfail")}});
        log::write(log::Level::Warning, request.sessionId, u"auth", fields("tempfail").add("reason", admission.reason));
        answerLater(request.context, 0, Outcome{AuthVerdict::TempFail, user, admission.reason}, std::move(done));
        return;
    }
    QPointer<QObject> guard(request.context);
    // The wait comes before the check, as for passwords (auth_throttle.h).
    QTimer::singleShot(int(std::min<qint64>(std::max<qint64>(admission.delayMs, 0), INT_MAX)), Qt::PreciseTimer, this,
                       [this, guard, request, protocol, user, admission, checkFn = std::move(checkFn),
                        done = std::move(done)]() mutable {
                           if (!guard || (request.hungUp && request.hungUp())) {
                               m_throttle.finish(admission, AuthThrottle::Outcome::Abandoned);
                               log::write(log::Level::Warning, request.sessionId, u"auth",
                                          authFields(protocol, user, request.peer)
                                              .add("result", "failed")
                                              .add("credential", "second-factor")
                                              .add("reason", "client gone before the check"));
                               return;
                           }
                           auto decide = [this, guard, request, protocol, user, admission,
                                          done = std::move(done)](SecondFactor verdict) mutable {
                               answerSecondFactor(verdict, guard, request, protocol, user, admission, std::move(done));
                           };
                           if (user.isEmpty()) return decide(SecondFactor::Refused);
                           // The answer may come later; exactly once (a second call is ignored).
                           auto once = std::make_shared<std::optional<decltype(decide)>>(std::move(decide));
                           checkFn([once](SecondFactor verdict) {
                               if (!once->has_value()) return;
                               auto d = std::move(**once);
                               once->reset();
                               d(verdict);
                           });
                       });
}

// The second factor's verdict: logged, counted in the throttle and answered (authenticator.h:
// Refused is a failure held back by the penalty, Unavailable a TempFail not counted).
void Authenticator::answerSecondFactor(SecondFactor verdict, QPointer<QObject> guard, const AuthRequest& request,
                                       const QString& protocol, const QString& user,
                                       const AuthThrottle::Admission& admission, Done done) {
    Outcome o;
    o.user = user;
    log::Fields f = authFields(protocol, user, request.peer);
    if (verdict == SecondFactor::Accepted) {
        o.verdict = AuthVerdict::Ok;
        m_throttle.finish(admission, AuthThrottle::Outcome::Success);
        stats::add(QStringLiteral("postern_auth_total"),
                   {{QStringLiteral("protocol"), protocol}, {QStringLiteral("result"), QStringLiteral("ok")}});
        log::write(log::Level::Info, request.sessionId, u"auth",
                   f.add("result", "ok").add("credential", "second-factor"));
        answerLater(guard, 0, o, std::move(done));
        return;
    }
    if (verdict == SecondFactor::Unavailable) {
        // The checker could not decide (webd's helper busy or gone): not a wrong code.
        o.verdict = AuthVerdict::TempFail;
        o.reason = QString::fromLatin1(kSecondFactorUnavailable);
        m_throttle.finish(admission, AuthThrottle::Outcome::Abandoned);
        stats::add(QStringLiteral("postern_auth_total"),
                   {{QStringLiteral("protocol"), protocol}, {QStringLiteral("result"), QStringLiteral("tempfail")}});
        log::write(log::Level::Warning, request.sessionId, u"auth",
                   f.add("result", "tempfail").add("credential", "second-factor").add("reason", o.reason));
        answerLater(guard, 0, o, std::move(done));
        return;
    }
    o.verdict = AuthVerdict::Failed;
    o.reason = QStringLiteral("bad second factor");
    m_throttle.record(admission, AuthThrottle::Outcome::Failure);
    stats::add(QStringLiteral("postern_auth_total"),
               {{QStringLiteral("protocol"), protocol}, {QStringLiteral("result"), QStringLiteral("failed")}});
    const qint64 delay = m_throttle.penaltyAfterFailure(request.peer);
    blockIfTooMany(request.peer, request.sessionId);
    log::write(
        log::Level::Warning, request.sessionId, u"auth",
        f.add("result", "failed").add("credential", "second-factor").add("reason", o.reason).add("delay_ms", delay));
    answerLater(guard, delay, o, std::move(done), admission);
}

// The answer comes from the event loop, never from inside verify(). With `held`, the attempt
// stays in flight until then (a failure's answer is held back: see auth_throttle.h).
void Authenticator::answerLater(QObject* context, qint64 delayMs, Outcome outcome, Done done,
                                std::optional<AuthThrottle::Admission> held) {
    QPointer<QObject> guard(context);
    QTimer::singleShot(int(std::min<qint64>(delayMs, INT_MAX)), Qt::PreciseTimer, this,
                       [this, guard, outcome = std::move(outcome), done = std::move(done), held = std::move(held)] {
                           if (held) m_throttle.release(*held);
                           if (guard) done(outcome);
                       });
}

void Authenticator::check(const AuthRequest& request, const QString& protocol, const QString& user,
                          const AuthThrottle::Admission& admission, QByteArray password, Done done) {
    // The web panel is not a mail client: it takes the account password only (its second
    // factor is its own step), never an app password, which would skip that step.
    const bool panel = protocol == QLatin1String(kPanelProtocol);
    const Credentials creds = credentialsOf(*m_accounts, user, panel);
    const bool known = creds.known, passwordAllowed = creds.passwordAllowed, disabled = creds.disabled;
    auto cache = m_cache;
    const QString dummy = m_dummyHash;
    const QString usageDir = appPasswordUsageDir(m_config);
    QPointer<QObject> guard(request.context);
    // The result is recorded with `this` as context: a client that hangs up while its
    // password is being checked still has its failure counted.
    runAsync(
        this,
        [cache, user, creds, dummy, usageDir, password]() mutable {
            return verifyCredentials(*cache, user, creds, dummy, usageDir, password);
        },
        [this, guard, protocol, sessionId = request.sessionId, peer = request.peer, user, known, passwordAllowed,
         disabled, admission, done = std::move(done)](Work w) {
            Outcome o;
            o.user = user;
            if (w.match && !disabled) {
                o.verdict = AuthVerdict::Ok;
                m_throttle.finish(admission, AuthThrottle::Outcome::Success);
                stats::add(QStringLiteral("postern_auth_total"),
                           {{QStringLiteral("protocol"), protocol}, {QStringLiteral("result"), QStringLiteral("ok")}});
                log::Fields fields;
                fields.add("protocol", protocol).add("user", user).add("remote", peer.toString()).add("result", "ok");
                if (w.appName.isEmpty())
                    fields.add("credential", "password");
                else
                    fields.add("credential", "app-password").add("app", w.appName);
                log::write(log::Level::Info, sessionId, u"auth", fields.add("cached", w.cached));
                if (!w.usageError.isEmpty())
                    log::write(log::Level::Warning, sessionId, u"auth.app_password_use",
                               log::Fields().add("user", user).add("error", w.usageError));
                if (guard) done(o);
                return;
            }
            o.verdict = AuthVerdict::Failed;
            o.reason = user.isEmpty() ? QStringLiteral("invalid login name")
                       : !known       ? QStringLiteral("unknown user")
                       : disabled     ? QStringLiteral("account disabled")
                       : passwordAllowed
                           ? QStringLiteral("bad password")
                           : QStringLiteral("bad app password (two-factor on: the account password is refused)");
            m_throttle.record(admission, AuthThrottle::Outcome::Failure);
            stats::add(QStringLiteral("postern_auth_total"),
                       {{QStringLiteral("protocol"), protocol}, {QStringLiteral("result"), QStringLiteral("failed")}});
            const qint64 delay = m_throttle.penaltyAfterFailure(peer);
            blockIfTooMany(peer, sessionId);
            // fail2ban-friendly: one line with the remote address and a fixed "result=failed".
            log::write(log::Level::Warning, sessionId, u"auth",
                       log::Fields()
                           .add("protocol", protocol)
                           .add("user", user)
                           .add("remote", peer.toString())
                           .add("result", "failed")
                           .add("reason", o.reason)
                           .add("delay_ms", delay));
            answerLater(guard, delay, o, done, admission);
        });
}

}  // namespace postern
