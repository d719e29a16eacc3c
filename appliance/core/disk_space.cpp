// disk_space.cpp — see disk_space.h.
#include "disk_space.h"

#include "config_schema.h"
#include "posix_io.h"

#include <QElapsedTimer>
#include <QFile>

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

namespace postern {

int DiskUsage::percentUsed() const {
    const quint64 denominator = usedBytes + availableBytes;
    if (denominator == 0 || denominator < usedBytes) return usedBytes > 0 ? 100 : 0;
    // Rounded up, as df does: 79.1 % is reported as 80 %. Exact for every size below
    // 2^53 / 100 bytes (an integer quotient stays an integer); above, off by far less than 1 %.
    const double pct = std::ceil(double(usedBytes) * 100.0 / double(denominator));
    return int(std::min(pct, 100.0));
}

Result<DiskUsage> diskUsage(const QString& path) {
    struct statvfs s {};
    if (::statvfs(QFile::encodeName(path).constData(), &s) != 0) {
        const int err = errno;
        return Result<DiskUsage>::fail(QStringLiteral("statvfs %1: %2").arg(path, errnoText(err)), err);
    }
    const quint64 unit = s.f_frsize ? s.f_frsize : s.f_bsize;
    DiskUsage u;
    u.totalBytes = quint64(s.f_blocks) * unit;
    u.usedBytes = quint64(s.f_blocks >= s.f_bfree ? s.f_blocks - s.f_bfree : 0) * unit;
    u.availableBytes = quint64(s.f_bavail) * unit;
    return u;
}

DiskLevel diskLevel(const DiskUsage& usage) {
    const int pct = usage.percentUsed();
    if (pct >= kDiskErrorPercent) return DiskLevel::Error;
    if (pct >= kDiskWarningPercent) return DiskLevel::Warning;
    return DiskLevel::Ok;
}

QString toString(DiskLevel level) {
    switch (level) {
        case DiskLevel::Ok:
            return QStringLiteral("ok");
        case DiskLevel::Warning:
            return QStringLiteral("warning");
        case DiskLevel::Error:
            return QStringLiteral("error");
    }
    return QStringLiteral("unknown");
}

QList<DiskReport> diskReports(const QStringList& folders, qint64 minFree) {
    QList<DiskReport> out;
    QList<dev_t> seen;
    for (const QString& folder : folders) {
        struct stat st {};
        if (::stat(QFile::encodeName(folder).constData(), &st) != 0) continue;  // not made yet (before first start)
        if (seen.contains(st.st_dev)) continue;
        seen << st.st_dev;
        DiskReport r;
        r.folder = folder;
        auto u = diskUsage(folder);
        if (!u) {
            r.error = u.errorMessage();
            out << r;
            continue;
        }
        r.usage = *u;
        r.belowFloor = !enoughStorage(u->availableBytes, minFree, 0);
        r.level = r.belowFloor ? DiskLevel::Error : diskLevel(*u);
        out << r;
    }
    return out;
}

QString humanBytes(quint64 bytes) {
    static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = double(bytes);
    int unit = 0;
    while (v >= 1024 && unit < 5) {
        v /= 1024;
        ++unit;
    }
    return unit == 0 ? QStringLiteral("%1 B").arg(bytes)
                     : QStringLiteral("%1 %2").arg(v, 0, 'f', 1).arg(QLatin1String(kUnits[unit]));
}

bool enoughStorage(quint64 freeBytes, qint64 minFree, qint64 declaredSize) {
    if (minFree <= 0) return true;  // the rule is off
    const quint64 floor = quint64(minFree);
    if (freeBytes < floor) return false;
    const quint64 declared = declaredSize > 0 ? quint64(declaredSize) : 0;
    return declared <= freeBytes - floor;  // never freeBytes < floor + declared (may overflow)
}

FreeSpaceGuard::FreeSpaceGuard(QStringList folders, Probe probe, Clock clock)
    : m_folders(std::move(folders)), m_probe(std::move(probe)), m_clock(std::move(clock)) {
    if (!m_clock) {
        m_clock = [] {
            static QElapsedTimer timer;
            if (!timer.isValid()) timer.start();
            return timer.elapsed();
        };
    }
}

void FreeSpaceGuard::refresh() {
    const qint64 now = m_clock();
    if (m_checked && now - m_checkedAt < kCacheMs && now >= m_checkedAt) return;
    m_checked = true;
    m_checkedAt = now;
    m_free = -1;
    m_freeFolder.clear();
    for (const QString& folder : std::as_const(m_folders)) {
        auto u = m_probe(folder);
        if (!u) continue;  // not measurable: not counted as full
        const qint64 avail = u->availableBytes > quint64(std::numeric_limits<qint64>::max())
                                 ? std::numeric_limits<qint64>::max()
                                 : qint64(u->availableBytes);
        if (m_free < 0 || avail < m_free) {
            m_free = avail;
            m_freeFolder = folder;
        }
    }
}

bool FreeSpaceGuard::admit(qint64 minFree, qint64 declaredSize, QString* detail) {
    if (minFree <= 0) return true;
    refresh();
    if (m_free < 0) return true;
    if (enoughStorage(quint64(m_free), minFree, declaredSize)) return true;
    if (detail) {
        *detail = QStringLiteral("%1 has %2 bytes free, smtp.min_free_space is %3")
                      .arg(m_freeFolder)
                      .arg(m_free)
                      .arg(Schema::formatSize(minFree));
        if (declaredSize > 0) *detail += QStringLiteral(", SIZE=%1").arg(declaredSize);
    }
    return false;
}

}  // namespace postern
