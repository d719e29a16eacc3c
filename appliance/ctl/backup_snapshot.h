// backup_snapshot.h — consistent snapshots of a running appliance (posternctl
// backup create / verify, restore) and the manifest that describes them.
//
// A snapshot folder:
//   DIR/                 0700 root
//     config/            the config folder (settings, users, aliases, domains,
//                        TLS, DKIM, ACME and SRS keys, anything else in it),
//                        copied by root; data_dir, log_dir, run_dir, the
//                        staging folder and DIR itself are left out when they
//                        lie inside it
//     data/              owned by the daemon user, written by a child process
//                        running as that user:
//       mail/<domain>/<local>/...      every home; each Maildir++ folder with
//                        its dovecot-uidlist and dovecot-keywords copied while
//                        holding the folder's uidlist lock (store::MaildirFolder::
//                        lockUidList), and its message files hard-linked in the
//                        same locked moment (copied when DIR is on another file
//                        system); the IMAP index (a cache), lock files and tmp/
//                        contents are left out
//       queue/<state>/<id>.body|.env  the outbound queue (not queue/tmp)
//     manifest           written last, by root (format below)
// Messages are immutable files, so a hard link taken under the lock is the
// message as it was; the uidlist copied under the same lock names exactly the
// UIDs IMAP clients were given (MaildirFolder::sync(false) runs first, so every
// message present when the folder is reached has its UID; a message delivered
// between that sync and the lock has none yet and is left for the next backup,
// so the snapshot's uidlist names every message it holds).
//
// Manifest (UTF-8 text, one record per line, paths relative to DIR and
// percent-encoded; see encodePath):
//   POSTERN-BACKUP 1
//   created <ISO 8601 UTC>
//   host <hostname>
//   D <mode octal> <owner> <group> <path>                        a folder
//   F <sha256 hex> <size> <mode octal> <owner> <group> <mtime ns> <path>
//   end <files> <bytes>                                          the last line
// owner/group: "root", "daemon" (system_user and its group) or a number.
// A manifest without its end line is an unfinished backup.
//
// Interface: createSnapshot(), verifySnapshot(), restoreSnapshot(); each prints
// progress on `progress` when it is a terminal and returns a summary.
//
// Security: posternctl runs as root. Root writes only DIR, DIR/config and the
// manifest (a folder it creates itself, 0700). Everything below data_dir is read
// and locked by a forked child that has dropped to system_user and writes
// DIR/data through a descriptor inherited from root (/proc/self/fd/N), so no
// lock file, uidlist or link is ever made as root in the daemon user's folders.
// verify and restore read the snapshot with openat(O_NOFOLLOW): a link is never
// followed, only regular files are read, and in a folder root does not own a
// file must belong to that folder's owner (no hard link to a file of root's is
// copied). restore writes the data part into a new root-only folder next to
// data_dir, hands it to system_user (chownTree, no link followed) and renames it
// into place; an existing data_dir or config folder is kept aside, never merged.
// Limits: kMaxManifestBytes; kMaxTreeDepth folder levels; header check reads
// kMessageCheckBytes of each message.
// Standards: RFC 5322 2.2 (header field syntax, for the message check).
#pragma once

#include "core/config.h"
#include "core/result.h"

#include <QByteArray>
#include <QList>
#include <QString>
#include <QTextStream>

namespace postern::ctl::backup {

inline constexpr qint64 kMaxManifestBytes = 512LL * 1024 * 1024;
inline constexpr int kMaxTreeDepth = 64;
inline constexpr qint64 kMessageCheckBytes = 1024 * 1024;
inline constexpr const char* kManifestName = "manifest";

struct ManifestEntry {
    bool isDir = false;
    QByteArray sha256;  // hex, files only
    qint64 size = 0;
    uint mode = 0;
    QString owner;
    QString group;
    qint64 mtimeNs = 0;
    QString path;  // relative to the snapshot folder, '/'-separated
};

struct Manifest {
    QString created;
    QString host;
    QList<ManifestEntry> entries;
    bool complete = false;
    qint64 files = 0;
    qint64 bytes = 0;
    QByteArray serialize() const;
    static Result<Manifest> parse(const QByteArray& text);
};

QByteArray encodePath(const QString& path);
Result<QString> decodePath(const QByteArray& encoded);
// Does `bytes` (the start of a message) begin with a well-formed RFC 5322 header?
// Empty on success, else what is wrong.
QString checkMessageHeader(const QByteArray& bytes);

struct Summary {
    qint64 files = 0;
    qint64 bytes = 0;
    qint64 messages = 0;
    qint64 messageBytes = 0;
    qint64 folders = 0;
    qint64 queued = 0;
    qint64 hardLinks = 0;
    qint64 copies = 0;
    qint64 configFiles = 0;
    qint64 arrivedDuring = 0;  // delivered after the backup reached their folder: left for the next one
    QStringList problems;      // verify: every problem found
};

// `progress`: where progress lines go when it is a terminal (stderr in posternctl).
Result<Summary> createSnapshot(const Config& config, const QString& dir, int progressFd);
Result<Summary> verifySnapshot(const QString& dir, int progressFd);

struct RestoreOptions {
    QString configDir;   // where the config folder goes
    QString dataDir;     // override of data_dir (empty: the backup's setting)
    bool force = false;  // an existing instance is moved aside
};
// `moved`: the folders moved aside (for the summary).
Result<Summary> restoreSnapshot(const QString& dir, const RestoreOptions& options, int progressFd, QStringList* moved);

// Removes a folder tree without following links (fd-based); a missing one is fine.
Status removeTree(const QString& path);

}  // namespace postern::ctl::backup
