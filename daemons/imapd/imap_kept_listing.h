// imap_kept_listing.h — a folder's listing kept on disk next to its index, so a
// process that has not listed the folder yet (a new postern-imapd process, a
// view with no listing of its own) can select it without reading new/ and cur/.
//
// What is kept (<folder>/postern-index.sqlite-listing, written by the process
// that writes the index, so the same owner, with the index file's permission
// bits; a cache like the index, left out of backups the same way): the list
// MailboxView::refresh() made (UID, base name, file name, new/ or cur/, flags,
// sizes, delivery time, mod-sequence per message), the uidlist's UIDVALIDITY,
// next UID and GUID, and the stamps it was taken against: the st_mtim
// (nanoseconds) of cur/ and new/ read right before the listing, the wall-clock
// time of that read, the uidlist's FileStamp as the listing left it (taken
// under the uidlist's lock) and the index's highest mod-sequence after the
// listing's index sync.
//
// When it is trusted (trustworthy()): every stamp equals what the directories,
// the uidlist and the index show now, AND both directory mtimes were older than
// the moment they were read for the listing by more than the quiet window. Why
// the second condition (Dovecot's maildir code has the same rule,
// MAILDIR_SYNC_SECS): every name created, renamed or removed in a directory sets
// its mtime to the kernel's current time, but that time has a granularity (a
// clock tick on Linux, a whole second on some file systems, and clocks of file
// servers differ). Two changes inside one tick leave the same mtime; a listing
// taken between them would carry the mtime of both and the second change would
// go unnoticed. A directory whose mtime is already older than the granularity
// when it is read cannot get that same mtime from a later change.
// The window (DirStamps::quietNs): 100 ms (kFineQuietNs) where the mtimes come
// from this kernel's own clock to the nanosecond: a local file system known to
// keep sub-second times (ext4, XFS, Btrfs, tmpfs, F2FS, overlayfs over them) and
// both mtimes with a sub-second part (ext4 with small inodes keeps whole seconds;
// its times have none). The kernel stamps with its tick-granular clock, at most
// one tick (10 ms at HZ=100) behind the clock read here. Anywhere else (NFS, FUSE,
// unknown file systems, whole-second times) 2 s (kQuietNs), as before.
// A listing of directories changed within the window is used as usual and kept
// only once a watch proves it: the process's snapshot of the folder
// (imap_mailbox.h) has an inotify watch synced before the listing read the
// directories; when that watch has seen no change by a moment at which the
// directories are quiet, the listing is the folder at that moment, whatever the
// mtimes could show, and is kept with that moment as its time (MailboxView
// keeps it then, at once or from a timer). Without a watch it is not kept. The
// writer also reads the mtimes again after the listing: when they moved
// (another process, or the listing itself moving new/ to cur/), the listing is
// not kept.
// Any doubt means a full listing: a missing, truncated or corrupt file (length
// and a 64-bit checksum over all of it), another format version, a stamp that
// differs, a read-write selection finding messages still in new/ (the listing
// would move them to cur/).
// Limits: a change that restores the directories' mtimes and the uidlist's stamp
// exactly (utimensat by hand) is not seen by a new process, as with Dovecot; the
// inotify watch (folder_watch.h) sees every later change of a running process.
// The file is rewritten after every full listing that may be kept, and from the
// process's snapshot once the folder is quiet after changes the snapshot followed
// (at most once a second per folder and process, and at most 1/50 of the time
// since the last write went into writing), unless it already holds the same stamps (about 110 bytes per message: a
// temporary file renamed over it, not fsync'd, like the index's synchronous=NORMAL: after a crash it is the old file,
// the new one or a damaged one, and the stamps and the seal judge each); a listing that may not be kept removes it. A
// process that dies while writing leaves its "<name>.tmp.<pid>" behind until a process with that pid writes again.
// Threading: any thread; no shared state.
#pragma once

#include "imap_mailbox.h"

#include "core/atomic_file.h"
#include "core/result.h"

#include <QByteArray>
#include <QList>
#include <QString>

#include <optional>

namespace postern::imap {

struct ListingStamps {
    qint64 curMtimeNs = 0;  // st_mtim of cur/ right before the listing
    qint64 newMtimeNs = 0;  // st_mtim of new/ right before the listing
    qint64 takenAtNs = 0;   // wall clock (CLOCK_REALTIME) when those were read
    FileStamp uidList;      // the uidlist as the listing left it
    quint64 hms = 0;        // the index's highest mod-sequence after the listing
    bool operator==(const ListingStamps&) const = default;
};

struct DirStamps;

struct KeptListing {
    static constexpr const char* kFileName = "postern-index.sqlite-listing";
    static constexpr quint32 kVersion = 1;
    static constexpr qint64 kQuietNs = 2'000'000'000;
    static constexpr qint64 kFineQuietNs = 100'000'000;

    ListingStamps stamps;
    quint32 uidValidity = 0;
    quint32 nextUid = 1;
    QString guid;
    QList<Message> messages;  // UID order, no ghosts

    // Both directory mtimes more than `windowNs` older than the moment they were read.
    static bool quiet(qint64 curMtimeNs, qint64 newMtimeNs, qint64 atNs, qint64 windowNs = kQuietNs);
    // The kept listing may stand for a listing now: `now` (the directories) and
    // `uidListNow` equal its stamps, and it was quiet when taken. The index's highest
    // mod-sequence (stamps.hms) is for the caller to compare inside the index's
    // transaction (MailboxView::adoptListing).
    bool trustworthy(const DirStamps& now, const FileStamp& uidListNow) const;

    QByteArray encode() const;
    static std::optional<KeptListing> decode(QByteArrayView bytes);  // nullopt: any doubt
    static QString pathIn(const QString& folderDir);
    static std::optional<KeptListing> load(const QString& folderDir);
    // The stamps of the file in `folderDir` (its header only; nullopt when unreadable).
    static std::optional<ListingStamps> loadStamps(const QString& folderDir);
    Status save(const QString& folderDir) const;
    static void remove(const QString& folderDir);
};

// The directories' mtimes now, the wall-clock time they were read at, and the quiet
// window that applies to them.
struct DirStamps {
    bool ok = false;  // both directories could be stat'ed
    qint64 curMtimeNs = 0, newMtimeNs = 0, atNs = 0;
    qint64 quietNs = KeptListing::kQuietNs;  // kFineQuietNs: see above
    static DirStamps of(const QString& folderDir);
    // Both mtimes older than atNs by more than quietNs.
    bool quiet() const { return ok && KeptListing::quiet(curMtimeNs, newMtimeNs, atNs, quietNs); }
};

}  // namespace postern::imap
