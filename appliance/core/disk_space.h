// disk_space.h — free space on the data folder: refuse mail before the disk is full,
// and say how full it is.
//
// Interface:
//   diskUsage(path)          statvfs(2) of the file system holding `path`: its size,
//                            the bytes used and the bytes an unprivileged user may
//                            still write (f_bavail: the daemons never run as root).
//   DiskUsage::percentUsed() as df(1) computes it: used / (used + available),
//                            rounded up, so "100 %" means nothing left for us.
//   diskLevel(usage)         Ok below kDiskWarningPercent, Warning from it, Error
//                            from kDiskErrorPercent (posternctl status).
//   diskReports(folders, minFree)
//                            what `posternctl status` and the web panel's dashboard show:
//                            one report per file system (folders on the same device are
//                            reported once, under the first), its level, and whether less
//                            than minFree (smtp.min_free_space) is left (then Error).
//                            Folders that do not exist yet are skipped.
//   enoughStorage(free, minFree, declared)
//                            the admission rule: at least `minFree` bytes free, and
//                            room for a declared message size (RFC 1870 SIZE) on top
//                            of it. minFree 0 turns the rule off (nothing refused).
//   FreeSpaceGuard           enoughStorage() over several folders (the smallest free
//                            space counts), with the statvfs results cached for
//                            kCacheMs so a busy server pays one statvfs per folder and
//                            second, not one per command; it recovers by itself once
//                            space is freed (the next refresh sees it). The probe and
//                            the clock can be replaced (unit tests).
// A folder whose statvfs fails counts as "no answer", not as full: mail is not refused
// because a folder cannot be measured (the write itself still fails cleanly).
// Security: no untrusted input; paths come from the configuration.
// Limits: kCacheMs (1 s) of staleness; kDiskWarningPercent 80, kDiskErrorPercent 95.
// Standards: RFC 5321 4.2.2 / RFC 3463 X.3.1 (452 4.3.1 "insufficient system storage"
// is the caller's reply); RFC 1870 6.1 (a SIZE larger than the space left: 452).
#pragma once

#include "result.h"

#include <QHash>
#include <QString>
#include <QStringList>

#include <functional>

namespace postern {

inline constexpr int kDiskWarningPercent = 80;
inline constexpr int kDiskErrorPercent = 95;

struct DiskUsage {
    quint64 totalBytes = 0;
    quint64 usedBytes = 0;       // (f_blocks - f_bfree) * f_frsize
    quint64 availableBytes = 0;  // f_bavail * f_frsize: what a non-root writer may still use
    int percentUsed() const;
};

Result<DiskUsage> diskUsage(const QString& path);

enum class DiskLevel { Ok, Warning, Error };
DiskLevel diskLevel(const DiskUsage& usage);
QString toString(DiskLevel level);

// True when `freeBytes` leaves at least `minFree` after a message of `declaredSize`
// bytes (0 when unknown). Overflow-safe for any inputs; negative values count as 0.
bool enoughStorage(quint64 freeBytes, qint64 minFree, qint64 declaredSize);

struct DiskReport {
    QString folder;
    DiskUsage usage;
    DiskLevel level = DiskLevel::Ok;
    bool belowFloor = false;  // less than minFree left: new mail is refused (452 4.3.1)
    QString error;            // statvfs failed: usage and level mean nothing
};
QList<DiskReport> diskReports(const QStringList& folders, qint64 minFree);
// "12.3 GiB" (binary units, one decimal; "512 B" below 1 KiB).
QString humanBytes(quint64 bytes);

class FreeSpaceGuard {
public:
    static constexpr qint64 kCacheMs = 1000;
    using Probe = std::function<Result<DiskUsage>(const QString& path)>;
    using Clock = std::function<qint64()>;  // milliseconds, monotonic

    explicit FreeSpaceGuard(QStringList folders, Probe probe = diskUsage, Clock clock = {});

    // The admission rule for one new message; `detail` (when refused) says which folder
    // has how much free, for the log.
    bool admit(qint64 minFree, qint64 declaredSize, QString* detail);
    // Smallest free space over the folders at the last refresh (-1: none could be measured).
    qint64 lastFree() const { return m_free; }

private:
    void refresh();

    QStringList m_folders;
    Probe m_probe;
    Clock m_clock;
    qint64 m_checkedAt = 0;
    bool m_checked = false;
    qint64 m_free = -1;
    QString m_freeFolder;
};

}  // namespace postern
