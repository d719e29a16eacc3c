// imap_index.h — the per-folder index: mod-sequences (CONDSTORE/QRESYNC) and a
// cache of parsed message data, in SQLite (<folder>/postern-index.sqlite).
//
// What it holds, per folder:
//   meta      uidvalidity the rows belong to; hms (highest mod-sequence given
//             out); floor (the mod-sequence from which the expunge history is
//             complete); recent (the lowest UID no session has had as \Recent
//             yet: IMAP4rev1's "first recent UID", shared by every session and
//             process, claimed inside sync()'s write transaction).
//   msg       per UID: the flags last seen, the mod-sequence of the last change,
//             the file's base name, size and delivery time, and the cached
//             ENVELOPE, BODY and BODYSTRUCTURE texts and header block (so FETCH
//             of those and SEARCH on headers do not reread the file).
//   expunged  UIDs that went away, with the mod-sequence of their removal
//             (QRESYNC's VANISHED), the newest kMaxExpungedHistory kept.
//   textparts  per UID: where the message's text parts lie (SEARCH BODY/TEXT,
//             imap_body_search.h), with the file's base name.
//   sort_order  SORT's UID orders (commands/sort.cpp), per set of criteria, with
//             the uidlist GUID they hold for: the kMaxSortOrders stored last.
// The Maildir stays the truth: UIDs come from dovecot-uidlist, flags from file
// names. The index is a cache: when it is missing, unreadable or corrupt it is
// deleted and rebuilt from the Maildir (same UIDs). A rebuilt index starts its
// mod-sequences at the current time in microseconds, above any value an earlier
// index could have given out, so CHANGEDSINCE from a client that synced before
// the loss reports every message as changed instead of missing changes, and its
// expunge history starts there (older QRESYNC state gets the conservative
// answer: every known UID that no longer exists).
//
// Mod-sequences are assigned inside one SQLite write transaction per change
// set: sync() compares the folder listing with the rows and gives every new
// message, flag change and expunge the next value. Several sessions and
// processes may sync the same folder; the transaction makes them agree on one
// value per change. WAL mode, synchronous=NORMAL (a cache: a power loss may
// drop the last transactions; a lower hms after that would only repeat
// values, see Limits in ARCHITECTURE.md), busy timeout 10 s.
//
// Handles: at most kMaxOpenIndexes SQLite connections stay open in a process
// (least recently used are closed; a small page cache each), shared by every
// session on the folder; the hot statements are prepared once per connection.
// An open handle costs ~100-200 KiB (schema, statements, page cache): closeIdle()
// closes those nobody used for a while, so a process full of IDLE clients holds
// no SQLite memory (the next change reopens the file: well under a millisecond).
// Threading: the event-loop thread only.
#pragma once

#include "core/result.h"

#include <QByteArray>
#include <QHash>
#include <QList>
#include <QString>

#include <functional>
#include <memory>
#include <optional>

struct sqlite3;
struct sqlite3_stmt;

namespace postern::imap {

struct Message;

class MailboxIndex {
public:
    static constexpr int kMaxOpenIndexes = 256;
    static constexpr int kMaxExpungedHistory = 20000;
    static constexpr const char* kFileName = "postern-index.sqlite";
    static constexpr const char* kLockName = "postern-index.sqlite.lock";  // held while opening or rebuilding
    // 3: ENVELOPE (obsolete comment form, routes, raw group names) and BODYSTRUCTURE of
    // nested messages changed, so cached texts of version 2 are dropped (rows and
    // mod-sequences kept); the "recent" mark starts at the next UID for existing rows.
    static constexpr int kSchemaVersion = 3;

    // An open index for `folderDir` (shared, from the process's small pool);
    // nullptr when SQLite cannot be used at all there (the caller goes on
    // without mod-sequences: NOMODSEQ).
    static std::shared_ptr<MailboxIndex> acquire(const QString& folderDir, quint32 uidValidity);
    // Closes the folder's index (and those of folders below it) and deletes its
    // files, so the next acquire() rebuilds it.
    static void forget(const QString& folderDir);
    // True for errors that mean the file is damaged (worth a rebuild), not busy or full.
    static bool isDamage(int sqliteCode);
    // Closes the folder's index (and those below it) without deleting it: the
    // folder is about to be renamed or deleted.
    static void release(const QString& folderDir);
    // Closes the handles not acquired for idleMs (unless a caller still holds one);
    // returns how many were closed.
    static int closeIdle(qint64 idleMs);

    ~MailboxIndex();
    MailboxIndex(const MailboxIndex&) = delete;
    MailboxIndex& operator=(const MailboxIndex&) = delete;

    quint64 highestModseq();
    // \Recent (RFC 3501 2.3.2) in the same transaction as sync(): `first` is set to the
    // lowest UID no session has had as recent; with `claim`, every UID up to `upTo` is
    // taken for the caller (the next one to ask gets upTo + 1). A new index starts at 1
    // (every message is recent once: RFC 3501 says to err that way).
    struct RecentClaim {
        bool claim = false;
        quint32 upTo = 0;
        quint32 first = 0;  // out
    };
    // Bring the rows up to date with `messages` (UID order) and fill in each
    // message's modseq. Returns the highest mod-sequence.
    Result<quint64> sync(QList<Message>& messages, RecentClaim* recent = nullptr);
    // \Recent for a list taken from elsewhere (a snapshot, the kept listing) that was the
    // folder at `expectedHms`: claimed as sync() would, only while the file's highest
    // mod-sequence is still that; else nothing is written and the error code is kStale.
    static constexpr int kStale = -1;
    Result<quint64> claimRecentAt(quint64 expectedHms, RecentClaim* recent);
    // Changes the caller learned exactly (file events of the folder, its own expunges and
    // appends), in one write transaction: each of `touched` (a file that appeared or was
    // renamed) gets its row inserted, or its flags updated with a new mod-sequence when they
    // differ, and its modseq filled in; each of `gone` that still has a row is expunged.
    // `inside` runs first, inside the transaction, while no other session or process can
    // write: the caller takes the last changes there and may add to both lists (false:
    // nothing is written, the error code is kStale). Every writer changes the folder before
    // it records the change here, so a change whose record the caller would see in the
    // returned highest mod-sequence has reached `inside`.
    Result<quint64> reconcile(const std::function<bool()>& inside, QList<Message*>& touched, QList<quint32>& gone,
                              RecentClaim* recent = nullptr);
    // The "recent" mark without changing it (STATUS RECENT); 0 when unreadable.
    quint32 firstRecent();
    // This session changed the flags of `uid`: record them with a new mod-sequence.
    Result<quint64> recordFlags(quint32 uid, const QString& flags);
    // UIDs expunged after `modseq`; `complete` false when the history does not
    // reach back that far (the caller must then assume any missing UID vanished).
    QList<quint32> expungedSince(quint64 modseq, bool* complete);

    struct Cached {
        QByteArray envelope, body, bodyStructure;
    };
    std::optional<Cached> cached(quint32 uid, const QString& base);
    // The same for every UID in [first, last] in one query: the rows that hold all three
    // texts, with their base names (the caller compares them as cached() does).
    struct CachedRow {
        QString base;
        Cached texts;
    };
    QHash<quint32, CachedRow> cachedRange(quint32 first, quint32 last);
    // Groups cache writes into one transaction (within one event-loop turn only:
    // the connection is shared by every session of the process).
    class Batch {
    public:
        explicit Batch(MailboxIndex* index);
        ~Batch();
        Batch(const Batch&) = delete;
        Batch& operator=(const Batch&) = delete;

    private:
        MailboxIndex* m_index = nullptr;
    };
    void storeCached(quint32 uid, const QString& base, const Cached& c);

    // Bytes SEARCH derives from a message file and keeps per UID, valid while the UID's
    // file is the one they were taken from (its base name):
    //   Header     the top-level header block (header keys read it instead of the file);
    //   TextParts  where the text parts' bodies are and how to decode them (BODY and TEXT
    //              read only those ranges: imap_body_search.h, encodeTextParts).
    // All of a kind that are cached, and storing one.
    enum class Blob { Header, TextParts };
    struct FileBlob {
        QString base;  // the file the bytes were taken from
        QByteArray bytes;
    };
    QHash<quint32, FileBlob> cachedBlobs(Blob kind);
    void storeBlob(Blob kind, quint32 uid, const QString& base, const QByteArray& bytes);

    // A UID order SORT kept for `criteria` (its own signature) under the uidlist
    // `generation`: the UIDs, 4 bytes each in host order (empty: none, or of another
    // generation); and keeping one (the kMaxSortOrders stored last stay).
    static constexpr int kMaxSortOrders = 8;
    QByteArray sortOrder(const QByteArray& criteria, const QString& generation);
    void storeSortOrder(const QByteArray& criteria, const QString& generation, const QByteArray& uids);

    // Size and delivery time of the files listed before, so a newly selected mailbox needs
    // no stat(2) per message: looked up by UID, valid when the row's base name is the
    // file's. All rows in one buffer (no string or hash node per message).
    class KnownFiles {
    public:
        bool lookup(quint32 uid, const QString& base, qint64* size, qint64* mtimeMs) const;
        qsizetype size() const { return m_rows.size(); }

    private:
        friend class MailboxIndex;
        struct Row {
            quint32 uid;
            qint64 size, mtimeMs;
            qsizetype baseAt, baseLen;  // UTF-8 in m_bases
        };
        QList<Row> m_rows;  // ascending UID
        QByteArray m_bases;
        // UIDs are mostly dense: row of UID u at m_slot[u - m_rows[0].uid] (-1: none), built
        // when the range is at most 4 times the rows; else a binary search.
        QList<qsizetype> m_slot;
    };
    KnownFiles knownFiles();

private:
    class BulkCache;
    MailboxIndex() = default;
    Status openAt(const QString& path, quint32 uidValidity);
    // Throws the rows away (a new index, or the UIDs were renumbered) when the file's
    // UIDVALIDITY is not this one.
    Status adoptValidity(quint32 uidValidity);
    Status exec(const char* sql);
    Status execPrepared(int slot, const char* sql);
    Status beginWrite();
    Status commitWrite();
    Status rollbackWrite();
    Result<quint64> failWrite(const QString& what);
    Result<qint64> metaValue(const char* key);
    Status setMeta(const char* key, qint64 value);

    Result<quint64> finishChanges(qint64 hms, qint64 before, bool expunges, RecentClaim* recent);
    bool expungeRow(quint32 uid, qint64* hms);
    bool reconcileRow(Message& m, qint64* hms);
    bool insertRow(Message& m, qint64* hms);

    enum {
        kMetaSlot,
        kCachedSlot,
        kCachedRangeSlot,
        kStoreSlot,
        kHeaderSlot,
        kTextPartsSlot,
        kSetMetaSlot,
        kUpdateFlagsSlot,
        kInsertSlot,
        kDeleteSlot,
        kDeletePartsSlot,
        kGoneSlot,
        kBeginSlot,
        kCommitSlot,
        kSavepointSlot,
        kReleaseSlot,
        kCutSlot,
        kRowSlot,
        kSlots
    };
    sqlite3_stmt* prepared(int slot, const char* sql);

    sqlite3* m_db = nullptr;
    sqlite3_stmt* m_cached[kSlots] = {};
    bool m_nested = false;  // the current write runs in a savepoint of an open batch
    QString m_path;
};

}  // namespace postern::imap
