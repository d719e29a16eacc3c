// auth_throttle.h — the login throttle shared by SMTP, IMAP and POP3.
//
// A delay only slows a guesser if it comes before the answer can be inferred:
// the throttle decides, before a password is checked, whether the attempt may
// run and how long it must wait first; the wait happens before the check.
//
// State lives in one small file, <run_dir>/auth-throttle, mapped into every
// process that authenticates (smtpd, pop3d, every imapd process), so a guesser
// gains nothing by switching protocol, process or connection. Every change
// takes a short flock on the file.
//
// Keys
//   address   the client: IPv4 /32, IPv6 /48 (ipKey). /48 as Dovecot: one
//             site's allocation (RIPE-690 gives end sites /48 to /56), so a
//             guesser cannot hop across the 65,536 /64s (or 256 /56s) it owns;
//             the cost, a site sharing one penalty, is what IPv4 NAT already does.
//   account   the login name as normalised (userKey), known or not.
//   pair      (account, address): the failures of one account from one address.
//   known     (account, address) where that account logged in successfully
//             within kKnownGoodMs: a "known good" address for the account.
//
// Policy (admit() before the check, finish() after it)
//   1. Failures of an address or an account are counted for failure_window.
//      penalty(n) = failure_delay * 2^(n-1), at most failure_delay_max.
//   2. Address side: an attempt from an address with n recent failures waits
//      penalty(n) before its password is checked. At most
//      kMaxInFlightPerAddress attempts of a clean address run at once, and one
//      of an address with recent failures; more are refused at once with a
//      temporary failure, without checking anything. So N parallel connections
//      get neither N fresh checks nor N parallel waits: one address makes at
//      most one guess per penalty period once it has failed. Attempts for an
//      account that is known good from this address (4.) are counted apart,
//      kMaxInFlightKnownPerAddress of them at once from a clean address (one
//      with failures: again one at a time): many users behind one NAT address
//      logging in together are not refused, and a guesser there gains nothing
//      against accounts it has not already logged into from that address.
//   3. Account side, for addresses that are not known good for the account:
//      when the account has n recent failures, the attempt waits penalty(n)
//      before the check (the longer of this and the address side), and only one
//      such attempt per account runs at a time (kMaxInFlightPerAccount while the
//      account is clean). A distributed attack therefore gets, once the account
//      has a few recent failures (4 with the defaults 2 s / 15 s), at most one
//      check per failure_delay_max against one account, whatever its number of
//      addresses (with the defaults, 4 a minute, about 5,800 a day).
//   4. Known-good addresses skip the account side: the owner, from an address
//      she used before, is never slowed or refused because of guesses made
//      elsewhere (no lockout). From a new address during a distributed attack
//      she waits like any unknown address, or is told to try again shortly; a
//      temporary failure, never "wrong password".
//   5. A success forgives the failures this account made from this address
//      (the pair's count is taken off the address and the account: the owner's
//      own typos), not the others: a guesser cannot clear its record by logging
//      into an account of its own in between. The address becomes known good.
//   6. A failure counts on the address, the account and the pair. An attempt
//      abandoned before the check (the client hung up during the wait, the
//      session is gone) counts as a failure too: hanging up early gains
//      nothing, and the password is not checked for a client that is no longer
//      there. A refused attempt (too many in flight) counts nothing: no check
//      happened and nothing was learnt.
// In flight: each admitted attempt holds a lease (address, account, process
// id, expiry = now + wait + kCheckBudgetMs) until it is answered (a failure's
// answer is held back too, see authenticator.h: the lease lasts until then, so
// one address cannot overlap its guesses with the wait for answers). Leases of
// a process that died (kill(pid, 0)) or that expired are reclaimed by admit(),
// so a crash never leaves counts behind; a new process frees leases that carry
// its own pid (a predecessor's, when pids repeat in a container).
//
// Limits: kSlots failure records and kKnownSlots known-good records (when a
// probe window is full, the oldest entry is reused; known-good records live in
// their own table so a flood of failures cannot evict them); kLeases attempts
// in flight (above the daemons' total connection limits; a full table refuses
// with a temporary failure). Without the shared file the same logic runs on
// per-process memory.
// Interface: open(), admit(), record()/release()/finish(),
// penaltyAfterFailure() (how long the failure answer is held back),
// failures()/inFlight()/isKnownGood() for tests and status; setClock() for tests.
// Security: open() runs as root in the daemon user's run folder: it refuses a
// symbolic link (O_NOFOLLOW) and anything but a plain file with one link, so a
// planted link cannot make root size or wipe another file. Keys are SHA-256
// based hashes (sharedSlotHash); no address or name is stored in the file.
#pragma once

#include "core/result.h"

#include <QHostAddress>
#include <QString>
#include <functional>

namespace postern {

class Config;

class AuthThrottle {
public:
    static constexpr int kSlots = 8192;
    static constexpr int kKnownSlots = 4096;
    static constexpr int kLeases = 4096;
    static constexpr int kMaxInFlightPerAddress = 3;
    static constexpr int kMaxInFlightPerAccount = 3;
    static constexpr int kMaxInFlightKnownPerAddress = 64;
    static constexpr qint64 kCheckBudgetMs = 120'000;
    static constexpr qint64 kKnownGoodMs = qint64(30) * 24 * 3600 * 1000;
    static constexpr int kIpv6PrefixBits = 48;

    struct Policy {
        qint64 baseDelayMs = 2000;
        qint64 maxDelayMs = 15000;
        qint64 windowMs = 15 * 60 * 1000;
        static Policy fromConfig(const Config& config);
    };

    struct Admission {
        enum class Verdict { Proceed, Busy };
        Verdict verdict = Verdict::Busy;
        qint64 delayMs = 0;  // Proceed: wait this long, then check the password
        QString reason;      // Busy: for the log ("address busy", "account busy", "table full")
        bool knownGood = false;
        // The lease to hand back to finish().
        int lease = -1;
        quint64 token = 0;
        QString addressKey, user;
        bool proceed() const { return verdict == Verdict::Proceed; }
    };
    enum class Outcome { Success, Failure, Abandoned };

    AuthThrottle();
    ~AuthThrottle();
    AuthThrottle(const AuthThrottle&) = delete;
    AuthThrottle& operator=(const AuthThrottle&) = delete;

    // Maps (creating if needed) the shared file. Without it the throttle works per process.
    Status open(const QString& path, const Policy& policy);
    void setPolicy(const Policy& policy) { m_policy = policy; }
    const Policy& policy() const { return m_policy; }
    // Milliseconds on a clock every process shares (default: the wall clock).
    void setClock(std::function<qint64()> clock) { m_clock = std::move(clock); }

    Admission admit(const QHostAddress& ip, const QString& user);
    // record() counts the outcome; release() ends the attempt's time in flight (the lease);
    // finish() does both. A refused admission holds nothing: all three ignore it.
    void record(const Admission& admission, Outcome outcome);
    void release(const Admission& admission);
    void finish(const Admission& admission, Outcome outcome);
    // How long to hold back the answer to a failure (at least failure_delay).
    qint64 penaltyAfterFailure(const QHostAddress& ip) const;

    int failures(const QString& key) const;
    int inFlight(const QHostAddress& ip) const;
    bool isKnownGood(const QString& user, const QHostAddress& ip) const;
    qint64 penalty(int failures) const;
    static QString ipKey(const QHostAddress& ip);
    static QString userKey(const QString& user) { return QStringLiteral("user:") + user.toLower(); }
    static QString pairKey(const QString& user, const QString& addressKey) {
        return QStringLiteral("pair:") + user.toLower() + QLatin1Char('|') + addressKey;
    }
    static QString knownKey(const QString& user, const QString& addressKey) {
        return QStringLiteral("good:") + user.toLower() + QLatin1Char('|') + addressKey;
    }

private:
    struct Record;
    struct Known;
    struct Lease;
    struct Tables;
    Record* findRecord(quint64 hash, bool create, qint64 now) const;
    Known* findKnown(quint64 hash, bool create, qint64 now) const;
    int count(quint64 hash, qint64 now) const;
    void bump(quint64 hash, qint64 now);
    void forgive(quint64 hash, int n, qint64 now);
    bool leaseAlive(const Lease& l, qint64 now) const;
    Tables& tables() const;
    qint64 now() const { return m_clock(); }

    Policy m_policy;
    std::function<qint64()> m_clock;
    int m_fd = -1;
    void* m_map = nullptr;
    mutable Tables* m_local = nullptr;  // used when no shared file could be mapped
    quint64 m_nextToken;
};

}  // namespace postern
