// maildir_folder.h — reading one Maildir++ folder: the message list, stable
// UIDs in a Dovecot-compatible `dovecot-uidlist`, flags in file names.
//
// Interface:
//   MaildirFolder::open(root, folderParts, create)   INBOX when folderParts is empty
//   sync(moveNewToCur, known)  lists new/ and cur/, gives every message not yet known a
//       UID (in delivery order) and appends their lines to the uidlist (one
//       write, one fdatasync). Lines of vanished files are not worth a write of
//       their own; the file is rewritten atomically, dropping them, when they
//       outnumber the live lines, when a crash left half a line, or when the
//       header or a known line changes. The parsed file is cached per process
//       and parsed again only when its size, inode or times change. IMAP passes true (a selected folder owns new mail,
//       maildir(5)); POP3 may pass false. Runs under an exclusive flock on <folder>/postern-uidlist.lock, so concurrent
//       IMAP/POP3 sessions and processes agree on UIDs.
//   addOwn(fileNames, liveCount)  files just put into cur/ (an IMAP APPEND, or
//       files another session stored there that a watch reported): gives them UIDs
//       as sync() would (in delivery order), without listing the folder: a stat(2) per given file, the same
//       lock, cached uidlist and appended lines (one fdatasync). liveCount is
//       how many messages the caller knows to be in the folder (-1: unknown, the
//       stale lines are left to the next sync()); when the file would have to be
//       rewritten (stale lines outnumber them, half a line, an incomplete header)
//       nothing is done and the result is empty: the caller syncs instead.
//   moveNewToCur()  moves every regular file of new/ to cur/ as sync(true) would
//       ("<base>:2,<flags>", base and flags kept, so UIDs do not change), under the
//       same lock, without listing cur/ or numbering anything; returns how many moved.
//       For a caller whose directory watch must not count these renames as changes:
//       it moves first, then starts watching for changes, then syncs.
//   setFlags(entry, flags)  renames the file in cur/ to "<base>:2,<flags>".
//   expunge(entry)          unlinks the file (and updates the quota file).
//   messagePath(entry)      absolute path of the message file.
// UIDVALIDITY is created once per folder and kept; UIDs only grow. A new
// folder's UIDVALIDITY is the current time, but always above every value given
// out before under the same Maildir root (kept in <root>/postern-uidvalidity,
// under <root>/postern-uidvalidity.lock): a folder deleted and created again
// under the same name within one second still gets a new one (RFC 9051 2.3.1.1:
// the UIDVALIDITY of a recreated mailbox MUST differ). guid() is the uidlist's
// random GUID, new with every new uidlist: caches key on it as well.
// For tools that must see a folder's uidlist and files together (posternctl
// backup, import), without writing anything:
//   lockUidList(dir)       the same exclusive flock sync() takes; while it is
//       held no process assigns UIDs or rewrites the uidlist of that folder.
//   readUidListFile(path)  the uidlist parsed by the same code sync() uses
//       (UIDVALIDITY, next UID, UID per message base name); read-only.
//
// Format of dovecot-uidlist (version 3, as Dovecot writes it):
//   "3 V<uidvalidity> N<nextuid> G<32 hex guid>"
//   "<uid> W<vsize> :<file base name>"   one line per message, in UID order
// (after appends N lags: the next UID is the larger of N and the last line's + 1)
// so a Maildir moved to Dovecot keeps its UIDs, and one copied from Dovecot is
// read with its UIDs. Messages we store use CRLF, so their W= equals S=; a
// file from elsewhere with bare LF gets its CRLF size computed once and kept.
//
// Blocking: file-system work; IMAP/POP3 call it from a worker thread for big
// folders. Security: file names from readdir are validated (no '/', no leading
// '.'), paths are built only from the folder's own directory.
#pragma once

#include "core/atomic_file.h"
#include "core/result.h"

#include <QHash>
#include <QList>

#include <QString>
#include <QStringList>
#include <functional>

namespace postern::store {

struct MessageEntry {
    quint32 uid = 0;
    QString base;      // stable identity: file name without ":2,<flags>"
    QString fileName;  // current name
    bool inNew = false;
    QString flags;       // maildir flag letters: D F P R S T (and a-z keywords)
    qint64 size = 0;     // bytes on disk
    qint64 vsize = 0;    // bytes when sent with CRLF line endings (RFC822.SIZE, POP3 sizes)
    qint64 mtimeMs = 0;  // delivery time (IMAP INTERNALDATE)
};

struct UidListContents {
    quint32 uidValidity = 0;  // 0: no valid header (a missing, empty or unknown-version file)
    quint32 nextUid = 1;
    QHash<QString, quint32> uidByBase;  // message base name -> UID
};

class MaildirFolder {
public:
    static constexpr const char* kUidListName = "dovecot-uidlist";
    static Result<FileLock> lockUidList(const QString& dir, int timeoutMs = 30000);
    static Result<UidListContents> readUidListFile(const QString& path);

    static Result<MaildirFolder> open(const QString& root, const QStringList& folder = {}, bool create = true);
    QString dir() const { return m_dir; }
    quint32 uidValidity() const { return m_uidValidity; }
    quint32 nextUid() const { return m_nextUid; }
    QString guid() const { return m_guid; }  // known after sync()
    // The uidlist file as the last sync() or addOwn() left it (taken under its lock).
    FileStamp uidListStamp() const { return m_uidListStamp; }
    // The state a listing made elsewhere recorded (a kept listing the caller has checked
    // against the uidlist's stamp), as if sync() had just left it.
    void assumeListed(quint32 uidValidity, quint32 nextUid, const QString& guid, const FileStamp& uidList);

    // known(uid, base, &size, &mtimeMs): what the caller already knows of a message it listed
    // before (files never change), so only new files cost a stat(2). Asked only for files
    // the uidlist numbers already: `uid` is theirs, `base` their name without flags.
    using KnownFn = std::function<bool(quint32 uid, const QString& base, qint64* size, qint64* mtimeMs)>;
    Result<QList<MessageEntry>> sync(bool moveNewToCur, const KnownFn& known = {});
    Result<QList<MessageEntry>> addOwn(const QStringList& curFileNames, qsizetype liveCount);
    Result<int> moveNewToCur();
    Result<QString> setFlags(MessageEntry& entry, const QString& flags);
    Status expunge(const MessageEntry& entry);
    QString messagePath(const MessageEntry& entry) const;

    // CRLF size of a file that may use bare LF line endings.
    static qint64 computeVirtualSize(const QString& path);
    // Forgets the parsed uidlists of folders not synced for idleMs (memory of idle users).
    static void dropIdleCaches(qint64 idleMs);

private:
    QString m_root;
    QString m_dir;
    quint32 m_uidValidity = 0;
    quint32 m_nextUid = 1;
    QString m_guid;
    FileStamp m_uidListStamp;
};

// The next UIDVALIDITY for a new folder under `maildirRoot` (see above).
quint32 allocateUidValidity(const QString& maildirRoot);

}  // namespace postern::store
