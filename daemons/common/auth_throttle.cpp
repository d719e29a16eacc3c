// auth_throttle.cpp — see auth_throttle.h.
#include "auth_throttle.h"

#include "shared_counters.h"

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/posix_io.h"
#include "core/setting_keys.h"

#include <QDateTime>
#include <QFile>
#include <QRandomGenerator>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstring>

namespace postern {

struct AuthThrottle::Record {
    quint64 hash;  // 0: never used
    qint64 lastMs;
    qint32 failures;
    qint32 reserved;
};

struct AuthThrottle::Known {
    quint64 hash;
    qint64 lastMs;  // the last successful login
};

struct AuthThrottle::Lease {
    quint64 token;  // 0: free
    quint64 address;
    quint64 account;  // 0: no account named
    qint64 expiresMs;
    qint32 pid;
    quint32 flags;
};

// The layout of the shared file (fixed: every process maps the same bytes).
struct AuthThrottle::Tables {
    quint64 magic;
    quint64 reserved[7];
    Record records[kSlots];
    Known known[kKnownSlots];
    Lease leases[kLeases];
};

namespace {
constexpr quint64 kMagic = 0x32524854'4e545350ULL;  // "PSTNTHR2", version 2 of the file
constexpr int kProbe = 32;
constexpr quint32 kUnknownForAccount = 1;  // the lease counts against its account's limit
constexpr quint32 kKnownForAddress = 2;    // a known-good pair: counts against kMaxInFlightKnownPerAddress

bool stale(qint64 lastMs, qint64 now, qint64 lifetimeMs) {
    // Also a time in the future beyond the lifetime (the clock was set back): forget it.
    return now - lastMs > lifetimeMs || lastMs - now > lifetimeMs;
}
}  // namespace

AuthThrottle::Policy AuthThrottle::Policy::fromConfig(const Config& config) {
    Policy p;
    p.baseDelayMs = get(config, keys::auth::failureDelay);
    p.maxDelayMs = get(config, keys::auth::failureDelayMax);
    p.windowMs = get(config, keys::auth::failureWindow);
    return p;
}

AuthThrottle::AuthThrottle()
    : m_clock([] { return QDateTime::currentMSecsSinceEpoch(); }),
      m_nextToken(QRandomGenerator::system()->generate64() | 1) {}

AuthThrottle::~AuthThrottle() {
    if (m_map) ::munmap(m_map, sizeof(Tables));
    if (m_fd >= 0) ::close(m_fd);
    delete m_local;
}

Status AuthThrottle::open(const QString& path, const Policy& policy) {
    static_assert(sizeof(Record) == 24 && sizeof(Known) == 16 && sizeof(Lease) == 40,
                  "the shared file layout is fixed");
    m_policy = policy;
    const int fd = ::open(QFile::encodeName(path).constData(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return Status::fail(QStringLiteral("%1: cannot open: %2").arg(path, errnoText(errno)));
    auto failWith = [&](const char* what) {
        const QString err = errnoText(errno);
        ::close(fd);
        return Status::fail(QStringLiteral("%1: cannot %2: %3").arg(path, QString::fromLatin1(what), err));
    };
    FlockGuard lock(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) return failWith("stat");
    // Opened as root in a folder the daemon user owns: never size or wipe anything but our
    // own plain file (O_NOFOLLOW refused a symbolic link; a hard link shows as st_nlink > 1).
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        ::close(fd);
        return Status::fail(QStringLiteral("%1: not a plain file with one link; left alone").arg(path));
    }
    if (st.st_size != off_t(sizeof(Tables)) && ::ftruncate(fd, off_t(sizeof(Tables))) != 0) return failWith("size");
    void* map = ::mmap(nullptr, sizeof(Tables), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return failWith("map");
    auto* t = static_cast<Tables*>(map);
    if (t->magic != kMagic) {  // new, or left by an older layout
        std::memset(map, 0, sizeof(Tables));
        t->magic = kMagic;
    }
    // Leases with our pid belong to a predecessor that had the same pid: it is gone.
    const qint32 self = qint32(::getpid());
    for (Lease& l : t->leases)
        if (l.token && l.pid == self) l = Lease{};
    m_fd = fd;
    m_map = map;
    return {};
}

AuthThrottle::Tables& AuthThrottle::tables() const {
    if (m_map) return *static_cast<Tables*>(m_map);
    if (!m_local) m_local = new Tables();  // value-initialised: all zero
    return *m_local;
}

QString AuthThrottle::ipKey(const QHostAddress& ip) {
    bool isV4 = false;
    const quint32 v4 = ip.toIPv4Address(&isV4);
    if (isV4) return QStringLiteral("ip:") + QHostAddress(v4).toString();
    Q_IPV6ADDR a = ip.toIPv6Address();
    static_assert(kIpv6PrefixBits % 8 == 0, "whole bytes");
    for (int i = kIpv6PrefixBits / 8; i < 16; ++i) a[i] = 0;
    return QStringLiteral("ip:%1/%2").arg(QHostAddress(a).toString()).arg(kIpv6PrefixBits);
}

// Open addressing over a window of kProbe slots; a lookup scans the whole window.
// A new key takes, in this order, an empty slot, a forgotten one, the oldest one.
AuthThrottle::Record* AuthThrottle::findRecord(quint64 hash, bool create, qint64 now) const {
    Record* table = tables().records;
    const quint64 start = hash % kSlots;
    Record* reuse = nullptr;
    int reuseRank = 3;
    for (int i = 0; i < kProbe; ++i) {
        Record* r = &table[(start + quint64(i)) % kSlots];
        if (r->hash == hash) return r;
        if (!create) continue;
        const int rank = r->hash == 0 ? 0 : stale(r->lastMs, now, m_policy.windowMs) ? 1 : 2;
        if (rank < reuseRank || (rank == 2 && reuseRank == 2 && r->lastMs < reuse->lastMs)) {
            reuse = r;
            reuseRank = rank;
        }
    }
    if (!create || !reuse) return nullptr;
    *reuse = Record{hash, now, 0, 0};
    return reuse;
}

AuthThrottle::Known* AuthThrottle::findKnown(quint64 hash, bool create, qint64 now) const {
    Known* table = tables().known;
    const quint64 start = hash % kKnownSlots;
    Known* reuse = nullptr;
    int reuseRank = 3;
    for (int i = 0; i < kProbe; ++i) {
        Known* k = &table[(start + quint64(i)) % kKnownSlots];
        if (k->hash == hash) return k;
        if (!create) continue;
        const int rank = k->hash == 0 ? 0 : stale(k->lastMs, now, kKnownGoodMs) ? 1 : 2;
        if (rank < reuseRank || (rank == 2 && reuseRank == 2 && k->lastMs < reuse->lastMs)) {
            reuse = k;
            reuseRank = rank;
        }
    }
    if (!create || !reuse) return nullptr;
    *reuse = Known{hash, now};
    return reuse;
}

int AuthThrottle::count(quint64 hash, qint64 now) const {
    const Record* r = findRecord(hash, false, now);
    if (!r || stale(r->lastMs, now, m_policy.windowMs)) return 0;
    return r->failures;
}

void AuthThrottle::bump(quint64 hash, qint64 now) {
    Record* r = findRecord(hash, true, now);
    if (!r) return;
    if (stale(r->lastMs, now, m_policy.windowMs)) r->failures = 0;
    if (r->failures < 1'000'000) ++r->failures;
    r->lastMs = now;
}

void AuthThrottle::forgive(quint64 hash, int n, qint64 now) {
    Record* r = findRecord(hash, false, now);
    if (r && !stale(r->lastMs, now, m_policy.windowMs)) r->failures = std::max(0, r->failures - n);
}

bool AuthThrottle::leaseAlive(const Lease& l, qint64 now) const {
    if (l.token == 0 || l.expiresMs < now) return false;
    if (l.pid == qint32(::getpid())) return true;
    // A crashed process leaves its leases behind; they die with it.
    return l.pid > 0 && (::kill(pid_t(l.pid), 0) == 0 || errno == EPERM);
}

qint64 AuthThrottle::penalty(int failures) const {
    if (failures <= 0 || m_policy.baseDelayMs <= 0) return 0;
    qint64 d = m_policy.baseDelayMs;
    for (int i = 1; i < failures && d < m_policy.maxDelayMs; ++i) d *= 2;
    return std::min(d, std::max(m_policy.maxDelayMs, m_policy.baseDelayMs));
}

AuthThrottle::Admission AuthThrottle::admit(const QHostAddress& ip, const QString& user) {
    Admission a;
    a.addressKey = ipKey(ip);
    a.user = user.toLower();
    const qint64 t = now();
    FlockGuard lock(m_fd);
    Tables& tb = tables();
    const quint64 address = sharedSlotHash(a.addressKey);
    const quint64 account = a.user.isEmpty() ? 0 : sharedSlotHash(userKey(a.user));
    int addressInFlight = 0, knownInFlight = 0, accountInFlight = 0, free = -1;
    for (int i = 0; i < kLeases; ++i) {
        Lease& l = tb.leases[i];
        if (l.token && !leaseAlive(l, t)) l = Lease{};
        if (!l.token) {
            if (free < 0) free = i;
            continue;
        }
        if (l.address == address) ++((l.flags & kKnownForAddress) ? knownInFlight : addressInFlight);
        if (account && l.account == account && (l.flags & kUnknownForAccount)) ++accountInFlight;
    }
    if (account) {
        const Known* k = findKnown(sharedSlotHash(knownKey(a.user, a.addressKey)), false, t);
        a.knownGood = k && !stale(k->lastMs, t, kKnownGoodMs);
    }
    const int addressFailures = count(address, t);
    // Known-good pairs (this account logged in from here before) have their own, larger
    // allowance: an office behind one NAT address logging in at nine o'clock is not a guesser.
    const int inFlight = a.knownGood ? knownInFlight : addressInFlight;
    const int allowed = addressFailures > 0 ? 1 : (a.knownGood ? kMaxInFlightKnownPerAddress : kMaxInFlightPerAddress);
    if (inFlight >= allowed) {
        a.reason = QStringLiteral("address busy");
        return a;
    }
    qint64 delay = penalty(addressFailures);
    bool unknown = false;
    if (account && !a.knownGood) {
        unknown = true;
        const int accountFailures = count(account, t);
        if (accountInFlight >= (accountFailures > 0 ? 1 : kMaxInFlightPerAccount)) {
            a.reason = QStringLiteral("account busy");
            return a;
        }
        delay = std::max(delay, penalty(accountFailures));
    }
    if (free < 0) {
        a.reason = QStringLiteral("table full");
        return a;
    }
    Lease& l = tb.leases[free];
    l.token = m_nextToken;
    m_nextToken += 2;  // odd, never 0
    l.address = address;
    l.account = account;
    l.expiresMs = t + delay + kCheckBudgetMs;
    l.pid = qint32(::getpid());
    l.flags = (unknown ? kUnknownForAccount : 0) | (a.knownGood ? kKnownForAddress : 0);
    a.verdict = Admission::Verdict::Proceed;
    a.delayMs = delay;
    a.lease = free;
    a.token = l.token;
    return a;
}

void AuthThrottle::finish(const Admission& a, Outcome outcome) {
    record(a, outcome);
    release(a);
}

void AuthThrottle::release(const Admission& a) {
    if (!a.proceed() || a.lease < 0 || a.lease >= kLeases) return;
    FlockGuard lock(m_fd);
    Lease& l = tables().leases[a.lease];
    if (l.token == a.token) l = Lease{};  // else it expired and was reused meanwhile
}

void AuthThrottle::record(const Admission& a, Outcome outcome) {
    if (!a.proceed()) return;
    const qint64 t = now();
    FlockGuard lock(m_fd);
    const quint64 address = sharedSlotHash(a.addressKey);
    const quint64 account = a.user.isEmpty() ? 0 : sharedSlotHash(userKey(a.user));
    const quint64 pair = a.user.isEmpty() ? 0 : sharedSlotHash(pairKey(a.user, a.addressKey));
    switch (outcome) {
        case Outcome::Success: {
            if (!account) return;
            // The owner is back: her own failures from here are forgiven, nobody else's.
            if (const int own = count(pair, t); own > 0) {
                forgive(address, own, t);
                forgive(account, own, t);
                forgive(pair, own, t);
            }
            if (Known* k = findKnown(sharedSlotHash(knownKey(a.user, a.addressKey)), true, t)) k->lastMs = t;
            return;
        }
        case Outcome::Failure:
        case Outcome::Abandoned:
            bump(address, t);
            if (account) {
                bump(account, t);
                bump(pair, t);
            }
            return;
    }
}

qint64 AuthThrottle::penaltyAfterFailure(const QHostAddress& ip) const {
    const qint64 t = now();
    FlockGuard lock(m_fd);
    return penalty(std::max(1, count(sharedSlotHash(ipKey(ip)), t)));
}

int AuthThrottle::failures(const QString& key) const {
    const qint64 t = now();
    FlockGuard lock(m_fd);
    return count(sharedSlotHash(key), t);
}

int AuthThrottle::inFlight(const QHostAddress& ip) const {
    const qint64 t = now();
    FlockGuard lock(m_fd);
    const quint64 address = sharedSlotHash(ipKey(ip));
    int n = 0;
    for (const Lease& l : tables().leases)
        if (l.address == address && leaseAlive(l, t)) ++n;
    return n;
}

bool AuthThrottle::isKnownGood(const QString& user, const QHostAddress& ip) const {
    const qint64 t = now();
    FlockGuard lock(m_fd);
    const Known* k = findKnown(sharedSlotHash(knownKey(user, ipKey(ip))), false, t);
    return k && !stale(k->lastMs, t, kKnownGoodMs);
}

}  // namespace postern
