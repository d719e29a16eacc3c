// authenticator.cpp — see authenticator.h.
#include "authenticator.h"

#include "async.h"

#include "core/address.h"
#include "core/log.h"
#include "core/stats.h"

#include <QTimer>
#include <openssl/crypto.h>

namespace postern {

Authenticator::Authenticator(const Config& config, AccountStore* accounts, QObject* parent)
    : QObject(parent), m_config(config), m_accounts(accounts) {
    applyConfig();
    // Same cost as real hashes, so a login for a missing user takes as long as one for a real user.
    m_dummyHash = hashPassword("postern-timing-equaliser", HashParams::fromConfig(config)).valueOr(QString());
}

Status Authenticator::openSharedThrottle() {
    return m_throttle.open(m_config.runDir() + QStringLiteral("/auth-throttle"), AuthThrottle::Policy::fromConfig(m_config));
}

void Authenticator::applyConfig() {
    m_throttle.setPolicy(AuthThrottle::Policy::fromConfig(m_config));
    m_cache = std::make_shared<AuthCache>(std::chrono::milliseconds(m_config.durationMs(QStringLiteral("auth.cache_ttl"))),
                                          int(m_config.integer(QStringLiteral("auth.cache_size"))));
}

QString Authenticator::normalizeLogin(const QString& loginIn) const {
    QString login = loginIn.trimmed();
    if (!login.contains(QLatin1Char('@'))) {
        const QString dom = m_config.value(QStringLiteral("primary_domain"));
        if (dom.isEmpty()) return {};
        login += QLatin1Char('@') + dom;
    }
    return normalizeAddress(login).valueOr(QString());
}

void Authenticator::verify(QObject* context, const QString& protocol, const QString& sessionId, const QHostAddress& peer,
                           const QString& login, QByteArray password, Done done) {
    const QString user = normalizeLogin(login);
    const qint64 wait = m_throttle.preDelayFor(peer);
    if (wait > 0) {
        log::write(log::Level::Info, sessionId, u"auth.delayed",
                   log::Fields().add("protocol", protocol).add("remote", peer.toString()).add("delay_ms", wait));
        QPointer<QObject> guard(context);
        QTimer::singleShot(int(wait), this, [=, this, password = std::move(password), done = std::move(done)]() mutable {
            if (guard) check(guard, protocol, sessionId, peer, user, std::move(password), std::move(done));
        });
        return;
    }
    check(context, protocol, sessionId, peer, user, std::move(password), std::move(done));
}

void Authenticator::check(QObject* context, const QString& protocol, const QString& sessionId, const QHostAddress& peer,
                          const QString& user, QByteArray password, Done done) {
    QString stored;
    bool known = false;
    if (!user.isEmpty()) {
        auto snapshot = m_accounts->current();
        if (const UserRecord* u = snapshot->user(user)) {
            stored = u->passwordHash;
            known = true;
        }
    }
    struct Work {
        bool match = false;
        bool cached = false;
    };
    auto cache = m_cache;
    const QString dummy = m_dummyHash;
    runAsync(
        context,
        [cache, user, stored, known, dummy, password]() mutable {
            Work w;
            if (known && cache->check(user, password, stored)) {
                w.match = true;
                w.cached = true;
            } else {
                w.match = verifyPassword(password, known ? stored : dummy) && known;
                if (w.match) cache->remember(user, password, stored);
            }
            OPENSSL_cleanse(password.data(), size_t(password.size()));
            return w;
        },
        [this, context, protocol, sessionId, peer, user, known, done = std::move(done)](Work w) {
            Outcome o;
            o.user = user;
            if (w.match) {
                o.status = Outcome::Status::Ok;
                m_throttle.recordSuccess(peer, user);
                stats::add(QStringLiteral("postern_auth_total"), {{QStringLiteral("protocol"), protocol}, {QStringLiteral("result"), QStringLiteral("ok")}});
                log::write(log::Level::Info, sessionId, u"auth",
                           log::Fields()
                               .add("protocol", protocol)
                               .add("user", user)
                               .add("remote", peer.toString())
                               .add("result", "ok")
                               .add("cached", w.cached));
                done(o);
                return;
            }
            o.status = Outcome::Status::Failed;
            o.reason = user.isEmpty() ? QStringLiteral("invalid login name") : known ? QStringLiteral("bad password")
                                                                                  : QStringLiteral("unknown user");
            m_throttle.recordFailure(peer, user);
            stats::add(QStringLiteral("postern_auth_total"), {{QStringLiteral("protocol"), protocol}, {QStringLiteral("result"), QStringLiteral("failed")}});
            const qint64 delay = m_throttle.delayFor(peer, user);
            // fail2ban-friendly: one line with the remote address and a fixed "result=failed".
            log::write(log::Level::Warning, sessionId, u"auth",
                       log::Fields()
                           .add("protocol", protocol)
                           .add("user", user)
                           .add("remote", peer.toString())
                           .add("result", "failed")
                           .add("reason", o.reason)
                           .add("delay_ms", delay));
            QPointer<QObject> guard(context);
            QTimer::singleShot(int(delay), this, [guard, o, done] {
                if (guard) done(o);
            });
        });
}

}  // namespace postern
