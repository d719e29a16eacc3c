// auth_throttle.h — the failed-login throttle shared by SMTP, IMAP and POP3.
//
// State lives in one small file, <run_dir>/auth-throttle, mapped into every
// daemon that authenticates, so a guesser cannot escape the penalty by
// switching from IMAP to POP3 or SMTP. Each slot counts recent failures for a
// key: "ip:<address>" (IPv6 by /64) or "user:<address>". Updates take a short
// flock on the file; reads of a slot are lock-free snapshots (a torn read
// only misjudges one delay).
//
// Policy (as Dovecot's auth penalty, plus a per-account side):
//   delayFor(ip, user)  before answering a *failure*: failure_delay doubled per
//                       recent failure of this client or account, capped at
//                       failure_delay_max. Correct logins are never delayed by
//                       the account side, so an attack on alice@ does not lock
//                       alice out.
//   preDelayFor(ip)     before even checking a password from a client with
//                       >= kPreDelayThreshold recent failures: that client's own
//                       penalty (parallel connections gain nothing).
//   Failures older than failure_window are forgotten.
// Limits: kSlots keys; when full, the oldest entry is reused.
#pragma once

#include "core/result.h"

#include <QHostAddress>
#include <QString>

namespace postern {

class Config;

class AuthThrottle {
public:
    static constexpr int kSlots = 8192;
    static constexpr int kPreDelayThreshold = 5;

    struct Policy {
        qint64 baseDelayMs = 2000;
        qint64 maxDelayMs = 15000;
        qint64 windowMs = 15 * 60 * 1000;
        static Policy fromConfig(const Config& config);
    };

    AuthThrottle() = default;
    ~AuthThrottle();
    AuthThrottle(const AuthThrottle&) = delete;
    AuthThrottle& operator=(const AuthThrottle&) = delete;

    // Maps (creating if needed) the shared file. Without it the throttle works per process.
    Status open(const QString& path, const Policy& policy);
    void setPolicy(const Policy& policy) { m_policy = policy; }

    void recordFailure(const QHostAddress& ip, const QString& user);
    void recordSuccess(const QHostAddress& ip, const QString& user);
    qint64 delayFor(const QHostAddress& ip, const QString& user) const;
    qint64 preDelayFor(const QHostAddress& ip) const;
    int failures(const QString& key) const;  // for tests and status
    static QString ipKey(const QHostAddress& ip);
    static QString userKey(const QString& user) { return QStringLiteral("user:") + user.toLower(); }

private:
    struct Slot;
    Slot* find(quint64 hash, bool create, qint64 now) const;
    void bump(const QString& key, qint64 now);
    qint64 penalty(int failures) const;
    int count(const QString& key, qint64 now) const;

    Policy m_policy;
    int m_fd = -1;
    void* m_map = nullptr;
    mutable Slot* m_local = nullptr;  // used when no shared file could be mapped
};

}  // namespace postern
