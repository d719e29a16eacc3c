// auth_throttle.cpp — see auth_throttle.h.
#include "auth_throttle.h"

#include "shared_counters.h"

#include "core/atomic_file.h"
#include "core/config.h"

#include <QDateTime>
#include <QFile>

#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

namespace postern {

struct AuthThrottle::Slot {
    quint64 hash;
    qint64 lastFailureMs;
    qint32 failures;
    qint32 reserved;
};

namespace {
constexpr size_t kFileSize = 24 * AuthThrottle::kSlots;  // sizeof(Slot) * kSlots
constexpr int kProbe = 32;
}  // namespace

AuthThrottle::Policy AuthThrottle::Policy::fromConfig(const Config& config) {
    Policy p;
    p.baseDelayMs = config.durationMs(QStringLiteral("auth.failure_delay"));
    p.maxDelayMs = config.durationMs(QStringLiteral("auth.failure_delay_max"));
    p.windowMs = config.durationMs(QStringLiteral("auth.failure_window"));
    return p;
}

AuthThrottle::~AuthThrottle() {
    if (m_map) ::munmap(m_map, kFileSize);
    if (m_fd >= 0) ::close(m_fd);
    delete[] m_local;
}

Status AuthThrottle::open(const QString& path, const Policy& policy) {
    static_assert(sizeof(Slot) == 24, "the shared file layout is fixed");
    m_policy = policy;
    int fd = ::open(QFile::encodeName(path).constData(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return Status::fail(QStringLiteral("%1: cannot open: %2").arg(path, QString::fromLocal8Bit(std::strerror(errno))));
    if (::ftruncate(fd, off_t(kFileSize)) != 0) {
        ::close(fd);
        return Status::fail(QStringLiteral("%1: cannot size: %2").arg(path, QString::fromLocal8Bit(std::strerror(errno))));
    }
    void* map = ::mmap(nullptr, kFileSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        ::close(fd);
        return Status::fail(QStringLiteral("%1: cannot map: %2").arg(path, QString::fromLocal8Bit(std::strerror(errno))));
    }
    m_fd = fd;
    m_map = map;
    return {};
}

QString AuthThrottle::ipKey(const QHostAddress& ip) {
    bool isV4 = false;
    const quint32 v4 = ip.toIPv4Address(&isV4);
    if (isV4) return QStringLiteral("ip:") + QHostAddress(v4).toString();
    Q_IPV6ADDR a = ip.toIPv6Address();
    for (int i = 8; i < 16; ++i) a[i] = 0;
    return QStringLiteral("ip:") + QHostAddress(a).toString() + QStringLiteral("/64");
}

AuthThrottle::Slot* AuthThrottle::find(quint64 hash, bool create, qint64 now) const {
    Slot* table = static_cast<Slot*>(m_map);
    if (!table) {
        if (!m_local) {
            m_local = new Slot[kSlots];
            std::memset(static_cast<void*>(m_local), 0, sizeof(Slot) * kSlots);
        }
        table = m_local;
    }
    const int start = int(hash % kSlots);
    Slot* oldest = nullptr;
    for (int i = 0; i < kProbe; ++i) {
        Slot* s = &table[(start + i) % kSlots];
        if (s->hash == hash) return s;
        if (!create) continue;
        const bool expired = s->hash == 0 || now - s->lastFailureMs > m_policy.windowMs;
        if (expired) {
            s->hash = hash;
            s->failures = 0;
            s->lastFailureMs = now;
            return s;
        }
        if (!oldest || s->lastFailureMs < oldest->lastFailureMs) oldest = s;
    }
    if (create && oldest) {
        oldest->hash = hash;
        oldest->failures = 0;
        oldest->lastFailureMs = now;
        return oldest;
    }
    return nullptr;
}

void AuthThrottle::bump(const QString& key, qint64 now) {
    FlockGuard lock(m_fd);
    Slot* s = find(sharedSlotHash(key), true, now);
    if (!s) return;
    if (now - s->lastFailureMs > m_policy.windowMs) s->failures = 0;
    if (s->failures < 1'000'000) ++s->failures;
    s->lastFailureMs = now;
}

int AuthThrottle::count(const QString& key, qint64 now) const {
    const Slot* s = find(sharedSlotHash(key), false, now);
    if (!s || now - s->lastFailureMs > m_policy.windowMs) return 0;
    return s->failures;
}

qint64 AuthThrottle::penalty(int failures) const {
    if (failures <= 0 || m_policy.baseDelayMs <= 0) return 0;
    qint64 d = m_policy.baseDelayMs;
    for (int i = 1; i < failures && d < m_policy.maxDelayMs; ++i) d *= 2;
    return std::min(d, m_policy.maxDelayMs);
}

void AuthThrottle::recordFailure(const QHostAddress& ip, const QString& user) {
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    bump(ipKey(ip), now);
    if (!user.isEmpty()) bump(userKey(user), now);
}

void AuthThrottle::recordSuccess(const QHostAddress& ip, const QString& user) {
    // A correct password proves nothing about other guesses from that client, so the
    // client's count stays; only the account's count is cleared (its owner is back).
    Q_UNUSED(ip);
    if (user.isEmpty()) return;
    FlockGuard lock(m_fd);
    Slot* s = find(sharedSlotHash(userKey(user)), false, QDateTime::currentMSecsSinceEpoch());
    if (s) s->failures = 0;
}

qint64 AuthThrottle::delayFor(const QHostAddress& ip, const QString& user) const {
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    const int f = std::max(count(ipKey(ip), now), user.isEmpty() ? 0 : count(userKey(user), now));
    return penalty(std::max(f, 1));
}

qint64 AuthThrottle::preDelayFor(const QHostAddress& ip) const {
    const int f = count(ipKey(ip), QDateTime::currentMSecsSinceEpoch());
    return f >= kPreDelayThreshold ? penalty(f) : 0;
}

int AuthThrottle::failures(const QString& key) const { return count(key, QDateTime::currentMSecsSinceEpoch()); }

}  // namespace postern
