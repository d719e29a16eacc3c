// shared_counters.cpp — see shared_counters.h.
#include "shared_counters.h"

#include "core/atomic_file.h"
#include "core/log.h"
#include "core/posix_io.h"

#include <QCryptographicHash>
#include <QFile>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cstring>

namespace postern {

struct SharedCounters::Slot {
    quint64 hash;  // 0: never used
    quint32 counts[kColumns];
};

namespace {
constexpr size_t kFileSize = sizeof(quint64) * (1 + SharedCounters::kColumns / 2) * SharedCounters::kSlots;

quint64 sum(const quint32* counts) {
    quint64 n = 0;
    for (int c = 0; c < SharedCounters::kColumns; ++c) n += counts[c];
    return n;
}
}  // namespace

SharedCounters& SharedCounters::process() {
    static SharedCounters instance;
    return instance;
}

SharedCounters::~SharedCounters() {
    if (m_slots) ::munmap(m_slots, kFileSize);
    if (m_fd >= 0) ::close(m_fd);
}

quint64 sharedSlotHash(const QString& key) {
    const QByteArray d = QCryptographicHash::hash(key.toUtf8(), QCryptographicHash::Sha256);
    quint64 h = 0;
    std::memcpy(&h, d.constData(), sizeof h);
    return h ? h : 1;
}

Status SharedCounters::open(const QString& path, int column, bool reset) {
    static_assert(sizeof(Slot) == sizeof(quint64) * (1 + kColumns / 2), "the shared file layout is fixed");
    if (column < 0 || column >= kColumns)
        return Status::fail(QStringLiteral("process number %1 is out of range").arg(column));
    const int fd = ::open(QFile::encodeName(path).constData(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return Status::fail(QStringLiteral("%1: cannot open: %2").arg(path, errnoText(errno)));
    FlockGuard lock(fd);
    if ((reset && ::ftruncate(fd, 0) != 0) || ::ftruncate(fd, off_t(kFileSize)) != 0) {
        const QString err = errnoText(errno);
        ::close(fd);
        return Status::fail(QStringLiteral("%1: cannot size: %2").arg(path, err));
    }
    void* map = ::mmap(nullptr, kFileSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        const QString err = errnoText(errno);
        ::close(fd);
        return Status::fail(QStringLiteral("%1: cannot map: %2").arg(path, err));
    }
    m_slots = static_cast<Slot*>(map);
    m_fd = fd;
    m_column = column;
    // What a crashed predecessor in this column still counted is gone with it.
    for (int i = 0; i < kSlots; ++i) m_slots[i].counts[column] = 0;
    // This process's own counts so far (none: open() runs before the first connection).
    m_local.clear();
    return {};
}

SharedCounters::Slot* SharedCounters::find(quint64 hash, bool create) const {
    Slot* reusable = nullptr;
    for (int probe = 0; probe < kProbe; ++probe) {
        Slot* s = &m_slots[(hash + quint64(probe)) % kSlots];
        if (s->hash == hash) return s;
        if (s->hash == 0) {
            // The end of this key's chain: it is not in the table.
            if (!create) return nullptr;
            if (!reusable) reusable = s;
            break;
        }
        if (!reusable && sum(s->counts) == 0) reusable = s;  // a key nobody counts any more
    }
    if (!create || !reusable) return nullptr;
    reusable->hash = hash;
    std::memset(reusable->counts, 0, sizeof reusable->counts);
    return reusable;
}

bool SharedCounters::tryAcquire(const QString& key, int limit) {
    if (!m_slots) {
        int& n = m_local[key];
        if (n >= limit) {
            if (n == 0) m_local.remove(key);
            return false;
        }
        ++n;
        return true;
    }
    FlockGuard lock(m_fd);
    Slot* s = find(sharedSlotHash(key), true);
    if (!s) {
        if (!m_warnedFull) log::warn(u"limits.table_full", log::Fields().add("slots", kSlots));
        m_warnedFull = true;
        return true;
    }
    if (sum(s->counts) >= quint64(limit)) return false;
    ++s->counts[m_column];
    return true;
}

void SharedCounters::release(const QString& key) {
    if (!m_slots) {
        auto it = m_local.find(key);
        if (it != m_local.end() && --*it <= 0) m_local.erase(it);
        return;
    }
    FlockGuard lock(m_fd);
    if (Slot* s = find(sharedSlotHash(key), false); s && s->counts[m_column] > 0) --s->counts[m_column];
}

int SharedCounters::total(const QString& key) const {
    if (!m_slots) return m_local.value(key);
    FlockGuard lock(m_fd);
    const Slot* s = find(sharedSlotHash(key), false);
    return s ? int(sum(s->counts)) : 0;
}

}  // namespace postern
