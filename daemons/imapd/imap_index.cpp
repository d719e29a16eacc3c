// imap_index.cpp — see imap_index.h.
#include "imap_index.h"

#include "imap_mailbox.h"

#include "core/atomic_file.h"
#include "core/log.h"

#include <QDateTime>
#include <QElapsedTimer>
#include <QFile>

#include <sqlite3.h>

#include <sys/stat.h>
#include <algorithm>

namespace postern::imap {

namespace {

// A prepared statement, finalized when it goes out of scope.
class Stmt {
public:
    Stmt(sqlite3* db, const char* sql) { m_rc = sqlite3_prepare_v2(db, sql, -1, &m_stmt, nullptr); }
    // Borrows a statement prepared once per connection (the hot ones): reset, not finalized, at the end.
    explicit Stmt(sqlite3_stmt* cached) : m_stmt(cached), m_borrowed(true) {}
    ~Stmt() {
        if (!m_borrowed)
            sqlite3_finalize(m_stmt);
        else if (m_stmt) {
            sqlite3_reset(m_stmt);
            sqlite3_clear_bindings(m_stmt);
        }
    }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    bool ok() const { return m_rc == SQLITE_OK && m_stmt; }
    int rc() const { return m_rc; }
    Stmt& bind(int i, qint64 v) {
        sqlite3_bind_int64(m_stmt, i, v);
        return *this;
    }
    Stmt& bind(int i, const QByteArray& v) {
        sqlite3_bind_blob(m_stmt, i, v.constData(), int(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    Stmt& bindText(int i, const QString& v) {
        const QByteArray u = v.toUtf8();
        sqlite3_bind_text(m_stmt, i, u.constData(), int(u.size()), SQLITE_TRANSIENT);
        return *this;
    }
    int step() { return m_rc = sqlite3_step(m_stmt); }
    void reset() {
        sqlite3_reset(m_stmt);
        sqlite3_clear_bindings(m_stmt);
    }
    qint64 integer(int col) const { return sqlite3_column_int64(m_stmt, col); }
    QString text(int col) const {
        return QString::fromUtf8(reinterpret_cast<const char*>(sqlite3_column_text(m_stmt, col)),
                                 sqlite3_column_bytes(m_stmt, col));
    }
    // The column's UTF-8 bytes, valid until the next step() or reset().
    QByteArrayView textBytes(int col) const {
        const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(m_stmt, col));
        return QByteArrayView(t, t ? sqlite3_column_bytes(m_stmt, col) : 0);
    }
    QByteArray blob(int col) const {
        if (sqlite3_column_type(m_stmt, col) == SQLITE_NULL) return {};
        return QByteArray(static_cast<const char*>(sqlite3_column_blob(m_stmt, col)),
                          sqlite3_column_bytes(m_stmt, col));
    }
    bool isNull(int col) const { return sqlite3_column_type(m_stmt, col) == SQLITE_NULL; }

private:
    sqlite3_stmt* m_stmt = nullptr;
    int m_rc = SQLITE_OK;
    bool m_borrowed = false;
};

struct PoolEntry {
    QString dir;
    std::shared_ptr<MailboxIndex> index;
    dev_t dev = 0;
    ino_t ino = 0;
    quint32 validity = 0;  // the UIDVALIDITY checked against the file (0: not yet)
    qint64 usedMs = 0;     // monotonic time of the last acquire()
};

qint64 nowMs() {
    static QElapsedTimer clock = [] {
        QElapsedTimer t;
        t.start();
        return t;
    }();
    return clock.elapsed();
}

// Before SQLite's first use in the process: no bulk page-cache allocation per handle
// (20 pages, ~87 KiB, allocated at open whatever cache_size says).
void configureSqliteOnce() {
    static const bool done = [] {
        sqlite3_config(SQLITE_CONFIG_PAGECACHE, nullptr, 0, 0);
        return true;
    }();
    Q_UNUSED(done);
}
QList<PoolEntry>& pool() {
    static QList<PoolEntry> p;  // most recently used first
    return p;
}

// The index's files and the kept listing next to it (imap_kept_listing.h).
void deleteFiles(const QString& path) {
    for (const char* suffix : {"", "-wal", "-shm", "-journal", "-listing"}) QFile::remove(path + QLatin1String(suffix));
}

qint64 freshStart() {
    return QDateTime::currentMSecsSinceEpoch() * 1000;
}

// The page cache of an open index: small while idle (kIdleCachePragma, see openAt()),
// larger while one transaction writes many rows.
constexpr const char* kIdleCachePragma = "PRAGMA cache_size = -32";
constexpr const char* kBulkCachePragma = "PRAGMA cache_size = -16384";  // 16 MiB, returned after
constexpr qsizetype kBulkRows = 2000;

}  // namespace

// Raises the page cache for its lifetime when `on` (see kBulkCachePragma).
class MailboxIndex::BulkCache {
public:
    BulkCache(MailboxIndex* index, bool on) : m_index(on ? index : nullptr) {
        if (m_index) (void)m_index->exec(kBulkCachePragma);
    }
    ~BulkCache() {
        if (m_index) (void)m_index->exec(kIdleCachePragma);
    }
    BulkCache(const BulkCache&) = delete;
    BulkCache& operator=(const BulkCache&) = delete;

private:
    MailboxIndex* m_index;
};

std::shared_ptr<MailboxIndex> MailboxIndex::acquire(const QString& folderDir, quint32 uidValidity) {
    QList<PoolEntry>& p = pool();
    const QString path = folderDir + QLatin1Char('/') + QLatin1String(kFileName);
    const QByteArray native = QFile::encodeName(path);
    struct stat fs {};
    for (qsizetype i = 0; i < p.size(); ++i) {
        if (p.at(i).dir != folderDir) continue;
        PoolEntry e = p.takeAt(i);
        // Deleted or replaced behind our back (an administrator, a restore): open the new one.
        if (::stat(native.constData(), &fs) != 0 || fs.st_dev != e.dev || fs.st_ino != e.ino) break;
        if (uidValidity && e.validity != uidValidity) {
            // Opened before the caller knew the folder's UIDVALIDITY: check it now.
            auto lock = FileLock::acquire(folderDir + QLatin1Char('/') + QLatin1String(kLockName));
            if (!lock || !e.index->adoptValidity(uidValidity)) break;
            e.validity = uidValidity;
        }
        e.usedMs = nowMs();
        p.prepend(e);
        return e.index;
    }
    configureSqliteOnce();
    // Opening creates the file, its schema and the WAL. Two processes doing that at the same
    // time (imap.processes) can see each other's half-made file as "not a database" and
    // throw it away under the other's feet: one process at a time opens, checks or rebuilds.
    auto lock = FileLock::acquire(folderDir + QLatin1Char('/') + QLatin1String(kLockName));
    if (!lock) {
        log::warn(u"imap.index.unavailable", log::Fields().add("path", path).add("error", lock.errorMessage()));
        return nullptr;
    }
    std::shared_ptr<MailboxIndex> idx(new MailboxIndex());
    Status st = idx->openAt(path, uidValidity);
    if (!st && (st.error().code & 0xff) == SQLITE_BUSY) {
        // In use for longer than the busy timeout: not damage, and not ours to delete.
        log::warn(u"imap.index.unavailable", log::Fields().add("path", path).add("error", st.errorMessage()));
        return nullptr;
    }
    if (!st) {
        // A cache: throw it away and build it again from the Maildir.
        log::warn(u"imap.index.rebuild", log::Fields().add("path", path).add("error", st.errorMessage()));
        idx.reset(new MailboxIndex());
        deleteFiles(path);
        st = idx->openAt(path, uidValidity);
        if (!st) {
            log::warn(u"imap.index.unavailable", log::Fields().add("path", path).add("error", st.errorMessage()));
            return nullptr;
        }
    }
    if (::stat(native.constData(), &fs) != 0) return nullptr;
    p.prepend({folderDir, idx, fs.st_dev, fs.st_ino, uidValidity, nowMs()});
    while (p.size() > kMaxOpenIndexes) p.removeLast();  // closed when the last session lets go
    return idx;
}

int MailboxIndex::closeIdle(qint64 idleMs) {
    QList<PoolEntry>& p = pool();
    const qint64 now = nowMs();
    int closed = 0;
    for (qsizetype i = p.size() - 1; i >= 0; --i) {
        if (now - p.at(i).usedMs < idleMs || p.at(i).index.use_count() > 1) continue;
        p.removeAt(i);
        ++closed;
    }
    return closed;
}

void MailboxIndex::release(const QString& folderDir) {
    // Maildir++ children are siblings ".A" -> ".A.B": drop those too.
    QList<PoolEntry>& p = pool();
    for (qsizetype i = p.size() - 1; i >= 0; --i)
        if (p.at(i).dir == folderDir || p.at(i).dir.startsWith(folderDir + QLatin1Char('.'))) p.removeAt(i);
}

void MailboxIndex::forget(const QString& folderDir) {
    release(folderDir);
    auto lock = FileLock::acquire(folderDir + QLatin1Char('/') + QLatin1String(kLockName));
    deleteFiles(folderDir + QLatin1Char('/') + QLatin1String(kFileName));
}

bool MailboxIndex::isDamage(int code) {
    const int primary = code & 0xff;
    return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

MailboxIndex::~MailboxIndex() {
    for (sqlite3_stmt* st : m_cached) sqlite3_finalize(st);
    if (m_db) sqlite3_close_v2(m_db);
}

sqlite3_stmt* MailboxIndex::prepared(int slot, const char* sql) {
    if (!m_cached[slot]) sqlite3_prepare_v3(m_db, sql, -1, SQLITE_PREPARE_PERSISTENT, &m_cached[slot], nullptr);
    return m_cached[slot];
}

Status MailboxIndex::exec(const char* sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(m_db, sql, nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return {};
    const QString msg = QString::fromUtf8(err ? err : sqlite3_errstr(rc));
    sqlite3_free(err);
    return Status::fail(msg, rc);
}

// A write transaction, or a savepoint inside a FETCH's cache batch.
Status MailboxIndex::beginWrite() {
    m_nested = !sqlite3_get_autocommit(m_db);
    return m_nested ? execPrepared(kSavepointSlot, "SAVEPOINT w") : execPrepared(kBeginSlot, "BEGIN IMMEDIATE");
}

Status MailboxIndex::commitWrite() {
    return m_nested ? execPrepared(kReleaseSlot, "RELEASE w") : execPrepared(kCommitSlot, "COMMIT");
}

// One statement without results, prepared once per connection (the hot transaction control).
Status MailboxIndex::execPrepared(int slot, const char* sql) {
    sqlite3_stmt* st = prepared(slot, sql);
    if (!st) return exec(sql);
    const int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) return {};
    return Status::fail(QString::fromUtf8(sqlite3_errmsg(m_db)), rc);
}

Status MailboxIndex::rollbackWrite() {
    return exec(m_nested ? "ROLLBACK TO w; RELEASE w" : "ROLLBACK");
}

// A write step failed: SQLite's error (taken before the rollback replaces it), then roll back.
Result<quint64> MailboxIndex::failWrite(const QString& what) {
    const int rc = sqlite3_errcode(m_db);
    const QString msg = what + QStringLiteral(": ") + QString::fromUtf8(sqlite3_errmsg(m_db));
    (void)rollbackWrite();
    return Result<quint64>::fail(msg, rc);
}

Result<qint64> MailboxIndex::metaValue(const char* key) {
    Stmt q(prepared(kMetaSlot, "SELECT value FROM meta WHERE key = ?"));
    if (!q.ok()) return Result<qint64>::fail(QString::fromUtf8(sqlite3_errmsg(m_db)), q.rc());
    q.bindText(1, QString::fromLatin1(key));
    const int rc = q.step();
    if (rc == SQLITE_ROW) return q.integer(0);
    if (rc == SQLITE_DONE) return qint64(-1);
    return Result<qint64>::fail(QString::fromUtf8(sqlite3_errmsg(m_db)), rc);
}

Status MailboxIndex::setMeta(const char* key, qint64 value) {
    Stmt q(prepared(kSetMetaSlot,
                    "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
    if (!q.ok()) return Status::fail(QString::fromUtf8(sqlite3_errmsg(m_db)), q.rc());
    q.bindText(1, QString::fromLatin1(key)).bind(2, value);
    const int rc = q.step();
    if (rc != SQLITE_DONE) return Status::fail(QString::fromUtf8(sqlite3_errmsg(m_db)), rc);
    return {};
}

Status MailboxIndex::openAt(const QString& path, quint32 uidValidity) {
    m_path = path;
    int rc = sqlite3_open_v2(QFile::encodeName(path).constData(), &m_db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) return Status::fail(QString::fromUtf8(m_db ? sqlite3_errmsg(m_db) : sqlite3_errstr(rc)), rc);
    sqlite3_busy_timeout(m_db, 10000);
    // Memory per open index (one per folder a session has selected, per process): no
    // lookaside (its ~120 KiB arena is allocated and touched at open) and a small page
    // cache; the OS caches the file anyway. Idle IMAP connections must stay cheap.
    sqlite3_db_config(m_db, SQLITE_DBCONFIG_LOOKASIDE, nullptr, 0, 0);
    Status st = exec(kIdleCachePragma);
    if (!st) return st;
    st = exec(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
        "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS msg(uid INTEGER PRIMARY KEY, flags TEXT NOT NULL, modseq INTEGER NOT NULL,"
        " base TEXT NOT NULL, size INTEGER, mtime INTEGER, envelope BLOB, body BLOB, bodystructure BLOB, header BLOB);"
        "CREATE TABLE IF NOT EXISTS expunged(uid INTEGER PRIMARY KEY, modseq INTEGER NOT NULL);"
        "CREATE INDEX IF NOT EXISTS expunged_modseq ON expunged(modseq);"
        "CREATE TABLE IF NOT EXISTS sort_order(criteria BLOB PRIMARY KEY, generation TEXT NOT NULL,"
        " used INTEGER NOT NULL, uids BLOB NOT NULL);"
        // A table of its own, not a column of msg: storing a message's spans then writes a
        // few dozen bytes, where a new value in msg's wide rows would rewrite each row.
        "CREATE TABLE IF NOT EXISTS textparts(uid INTEGER PRIMARY KEY, base TEXT NOT NULL, spans BLOB NOT NULL);");
    if (!st) return st;
    st = exec("BEGIN IMMEDIATE");
    if (!st) return st;
    auto fail = [&](Status s) {
        (void)exec("ROLLBACK");
        return s;
    };
    // An index written by another version of this schema is thrown away (it is a cache).
    auto version = metaValue("schema");
    if (!version) return fail(Status::fail(version.errorMessage(), version.error().code));
    if (*version == 2) {
        // Same tables; the cached texts are computed differently now (see kSchemaVersion).
        if (Status s = exec("UPDATE msg SET envelope = NULL, body = NULL, bodystructure = NULL"); !s) return fail(s);
        auto recent = metaValue("recent");
        if (!recent) return fail(Status::fail(recent.errorMessage(), recent.error().code));
        if (*recent < 0) {
            Stmt top(m_db, "SELECT COALESCE(MAX(uid), 0) + 1 FROM msg");
            if (!top.ok() || top.step() != SQLITE_ROW)
                return fail(Status::fail(QString::fromUtf8(sqlite3_errmsg(m_db))));
            if (Status s = setMeta("recent", top.integer(0)); !s) return fail(s);
        }
        if (Status s = setMeta("schema", kSchemaVersion); !s) return fail(s);
    } else if (*version >= 0 && *version != kSchemaVersion) {
        return fail(Status::fail(QStringLiteral("index schema %1, expected %2").arg(*version).arg(kSchemaVersion)));
    }
    if (*version < 0) {
        // A table from before the version mark lacks columns: check for the newest one.
        Stmt probe(m_db, "SELECT header FROM msg LIMIT 0");
        if (!probe.ok()) return fail(Status::fail(QStringLiteral("index schema too old")));
        if (Status s = setMeta("schema", kSchemaVersion); !s) return fail(s);
    }
    if (Status s = exec("COMMIT"); !s) return s;
    // 0: the caller has not read the uidlist yet; it is checked on a later acquire().
    return uidValidity ? adoptValidity(uidValidity) : Status();
}

Status MailboxIndex::adoptValidity(quint32 uidValidity) {
    if (Status st = exec("BEGIN IMMEDIATE"); !st) return st;
    auto fail = [&](Status s) {
        (void)exec("ROLLBACK");
        return s;
    };
    auto validity = metaValue("uidvalidity");
    if (!validity) return fail(Status::fail(validity.errorMessage(), validity.error().code));
    if (*validity != qint64(uidValidity)) {
        // New index, or the UIDs were renumbered: start over, with mod-sequences that only grow.
        auto hms = metaValue("hms");
        if (!hms) return fail(Status::fail(hms.errorMessage(), hms.error().code));
        const qint64 start = std::max(*hms + 1, freshStart());
        for (const char* sql :
             {"DELETE FROM msg", "DELETE FROM expunged", "DELETE FROM sort_order", "DELETE FROM textparts"})
            if (Status s = exec(sql); !s) return fail(s);
        // A new UIDVALIDITY renumbered every message: each is new to every session (\Recent).
        for (const auto& [k, v] : {std::pair{"uidvalidity", qint64(uidValidity)}, std::pair{"hms", start},
                                   std::pair{"floor", start}, std::pair{"recent", qint64(1)}})
            if (Status s = setMeta(k, v); !s) return fail(s);
    }
    return exec("COMMIT");
}

quint64 MailboxIndex::highestModseq() {
    auto v = metaValue("hms");
    return v && *v > 0 ? quint64(*v) : 0;
}

quint32 MailboxIndex::firstRecent() {
    auto v = metaValue("recent");
    if (!v) return 0;
    return *v < 0 ? 1 : quint32(std::clamp<qint64>(*v, 1, qint64(0xffffffffu)));
}

// A row whose file is gone: into the expunge history with the next mod-sequence.
bool MailboxIndex::expungeRow(quint32 uid, qint64* hms) {
    Stmt del(prepared(kDeleteSlot, "DELETE FROM msg WHERE uid = ?"));
    if (!del.ok()) return false;
    del.bind(1, uid);
    if (del.step() != SQLITE_DONE) return false;
    Stmt parts(prepared(kDeletePartsSlot, "DELETE FROM textparts WHERE uid = ?"));
    if (!parts.ok()) return false;
    parts.bind(1, uid);
    if (parts.step() != SQLITE_DONE) return false;
    Stmt gone(prepared(kGoneSlot, "INSERT OR REPLACE INTO expunged(uid, modseq) VALUES(?, ?)"));
    if (!gone.ok()) return false;
    gone.bind(1, uid).bind(2, ++*hms);
    return gone.step() == SQLITE_DONE;
}

bool MailboxIndex::insertRow(Message& m, qint64* hms) {
    Stmt ins(prepared(kInsertSlot,
                      "INSERT OR REPLACE INTO msg(uid, flags, modseq, base, size, mtime) VALUES(?, ?, ?, ?, ?, ?)"));
    if (!ins.ok()) return false;
    ins.bind(1, m.uid).bindText(2, m.flags).bind(3, ++*hms).bindText(4, m.base).bind(5, m.size).bind(6, m.mtimeMs);
    if (ins.step() != SQLITE_DONE) return false;
    m.modseq = quint64(*hms);
    return true;
}

// The end of a change set (sync(), reconcile(), claimRecentAt()): hms, \Recent, pruning of the history, commit.
Result<quint64> MailboxIndex::finishChanges(qint64 hms, qint64 before, bool expunges, RecentClaim* recent) {
    auto fail = [this](const QString& what) { return failWrite(what); };
    if (hms != before) {
        if (Status s = setMeta("hms", hms); !s) return fail(QStringLiteral("writing hms"));
    }
    if (recent) {
        auto first = metaValue("recent");
        if (!first) return fail(QStringLiteral("reading recent"));
        recent->first = *first < 1 ? 1u : quint32(std::min<qint64>(*first, qint64(0xffffffffu)));
        if (recent->claim && recent->first <= recent->upTo) {
            if (Status s = setMeta("recent", qint64(recent->upTo) + 1); !s)
                return fail(QStringLiteral("writing recent"));
        }
    }
    if (expunges) {
        // Keep the newest kMaxExpungedHistory expunges; the floor says where the history starts.
        Stmt cut(prepared(kCutSlot, "SELECT modseq FROM expunged ORDER BY modseq DESC LIMIT 1 OFFSET ?"));
        if (!cut.ok()) return fail(QStringLiteral("pruning"));
        cut.bind(1, kMaxExpungedHistory);
        if (cut.step() == SQLITE_ROW) {
            const qint64 floor = cut.integer(0);
            Stmt prune(m_db, "DELETE FROM expunged WHERE modseq <= ?");
            prune.bind(1, floor);
            if (!prune.ok() || prune.step() != SQLITE_DONE) return fail(QStringLiteral("pruning"));
            if (Status s = setMeta("floor", floor); !s) return fail(QStringLiteral("writing floor"));
        }
    }
    if (Status s = commitWrite(); !s) return fail(QStringLiteral("commit"));
    return quint64(hms);
}

Result<quint64> MailboxIndex::sync(QList<Message>& messages, RecentClaim* recent) {
    if (Status s = beginWrite(); !s) return s.error();
    auto fail = [this](const QString& what) { return failWrite(what); };
    auto hmsNow = metaValue("hms");
    if (!hmsNow) return fail(QStringLiteral("reading hms"));
    qint64 hms = *hmsNow;
    const qint64 before = hms;

    // Every row is read (a large folder: 100,000), so no string per row: the flags' UTF-8
    // bytes go into one buffer and are compared with the message's flags in place.
    struct Row {
        quint32 uid;
        qint64 modseq;
        qsizetype flagsAt, flagsLen;  // in `flagBytes`
    };
    QList<Row> rows;
    rows.reserve(messages.size());
    QByteArray flagBytes;
    {
        Stmt q(m_db, "SELECT uid, flags, modseq FROM msg ORDER BY uid");
        if (!q.ok()) return fail(QStringLiteral("reading messages"));
        int rc;
        while ((rc = q.step()) == SQLITE_ROW) {
            const QByteArrayView f = q.textBytes(1);
            rows.append({quint32(q.integer(0)), q.integer(2), flagBytes.size(), f.size()});
            flagBytes.append(f);
        }
        if (rc != SQLITE_DONE) return fail(QStringLiteral("reading messages"));
    }
    // Many new rows in one transaction (a rebuild, an import): a page cache to hold them,
    // else SQLite spills dirty pages to the WAL and writes the same pages again and again.
    // Back to the idle handle's small cache after the commit.
    const BulkCache bulk(this, messages.size() - rows.size() > kBulkRows);
    auto sameFlags = [&](const Row& row, const QString& flags) {
        const QByteArrayView stored(flagBytes.constData() + row.flagsAt, row.flagsLen);
        return QAnyStringView::equal(QUtf8StringView(stored), flags);
    };
    qsizetype r = 0;
    bool expunges = false;
    for (Message& m : messages) {
        for (; r < rows.size() && rows.at(r).uid < m.uid; ++r) {
            if (!expungeRow(rows.at(r).uid, &hms)) return fail(QStringLiteral("recording an expunge"));
            expunges = true;
        }
        if (r < rows.size() && rows.at(r).uid == m.uid) {
            if (!sameFlags(rows.at(r), m.flags)) {
                Stmt upd(prepared(kUpdateFlagsSlot, "UPDATE msg SET flags = ?, modseq = ? WHERE uid = ?"));
                if (!upd.ok()) return fail(QStringLiteral("preparing"));
                upd.bindText(1, m.flags).bind(2, ++hms).bind(3, m.uid);
                if (upd.step() != SQLITE_DONE) return fail(QStringLiteral("updating"));
                m.modseq = quint64(hms);
            } else {
                m.modseq = quint64(rows.at(r).modseq);
            }
            ++r;
        } else if (!insertRow(m, &hms)) {
            return fail(QStringLiteral("inserting"));
        }
    }
    for (; r < rows.size(); ++r) {
        if (!expungeRow(rows.at(r).uid, &hms)) return fail(QStringLiteral("recording an expunge"));
        expunges = true;
    }
    return finishChanges(hms, before, expunges, recent);
}

Result<quint64> MailboxIndex::claimRecentAt(quint64 expectedHms, RecentClaim* recent) {
    if (Status s = beginWrite(); !s) return s.error();
    auto fail = [this](const QString& what) { return failWrite(what); };
    auto hmsNow = metaValue("hms");
    if (!hmsNow) return fail(QStringLiteral("reading hms"));
    if (*hmsNow <= 0 || quint64(*hmsNow) != expectedHms) {
        (void)rollbackWrite();  // somebody else wrote since the list was taken
        return Result<quint64>::fail(QStringLiteral("the index changed"), kStale);
    }
    return finishChanges(*hmsNow, *hmsNow, false, recent);
}

// One touched message: its row as the file is now (a row of another file under this UID,
// or none, is replaced), its modseq filled in.
bool MailboxIndex::reconcileRow(Message& m, qint64* hms) {
    Stmt q(prepared(kRowSlot, "SELECT flags, modseq, base FROM msg WHERE uid = ?"));
    if (!q.ok()) return false;
    q.bind(1, m.uid);
    const int rc = q.step();
    if (rc == SQLITE_ROW && QAnyStringView::equal(QUtf8StringView(q.textBytes(2)), m.base)) {
        if (QAnyStringView::equal(QUtf8StringView(q.textBytes(0)), m.flags)) {
            m.modseq = quint64(q.integer(1));
            return true;
        }
        q.reset();
        Stmt upd(prepared(kUpdateFlagsSlot, "UPDATE msg SET flags = ?, modseq = ? WHERE uid = ?"));
        if (!upd.ok()) return false;
        upd.bindText(1, m.flags).bind(2, ++*hms).bind(3, m.uid);
        if (upd.step() != SQLITE_DONE) return false;
        m.modseq = quint64(*hms);
        return true;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return false;
    q.reset();
    return insertRow(m, hms);
}

Result<quint64> MailboxIndex::reconcile(const std::function<bool()>& inside, QList<Message*>& touched,
                                        QList<quint32>& gone, RecentClaim* recent) {
    if (Status s = beginWrite(); !s) return s.error();
    auto fail = [this](const QString& what) { return failWrite(what); };
    if (!inside()) {
        (void)rollbackWrite();
        return Result<quint64>::fail(QStringLiteral("the changes are not known exactly"), kStale);
    }
    auto hmsNow = metaValue("hms");
    if (!hmsNow) return fail(QStringLiteral("reading hms"));
    qint64 hms = *hmsNow;
    const qint64 before = hms;
    bool expunges = false;
    for (quint32 uid : gone) {
        Stmt has(prepared(kRowSlot, "SELECT flags, modseq, base FROM msg WHERE uid = ?"));
        if (!has.ok()) return fail(QStringLiteral("reading a row"));
        has.bind(1, uid);
        const int rc = has.step();
        if (rc == SQLITE_DONE) continue;  // recorded already (the session that expunged it)
        if (rc != SQLITE_ROW) return fail(QStringLiteral("reading a row"));
        has.reset();
        if (!expungeRow(uid, &hms)) return fail(QStringLiteral("recording an expunge"));
        expunges = true;
    }
    for (Message* m : touched)
        if (!reconcileRow(*m, &hms)) return fail(QStringLiteral("updating"));
    return finishChanges(hms, before, expunges, recent);
}

Result<quint64> MailboxIndex::recordFlags(quint32 uid, const QString& flags) {
    if (Status s = beginWrite(); !s) return s.error();
    auto hms = metaValue("hms");
    if (!hms) {
        (void)rollbackWrite();
        return hms.error();
    }
    const qint64 next = *hms + 1;
    Stmt upd(prepared(kUpdateFlagsSlot, "UPDATE msg SET flags = ?, modseq = ? WHERE uid = ?"));
    if (upd.ok()) upd.bindText(1, flags).bind(2, next).bind(3, uid);
    if (!upd.ok() || upd.step() != SQLITE_DONE || !setMeta("hms", next) || !commitWrite()) {
        const QString msg = QString::fromUtf8(sqlite3_errmsg(m_db));
        (void)rollbackWrite();
        return Result<quint64>::fail(msg);
    }
    return quint64(next);
}

QList<quint32> MailboxIndex::expungedSince(quint64 modseq, bool* complete) {
    QList<quint32> out;
    auto floor = metaValue("floor");
    *complete = floor && *floor >= 0 && qint64(modseq) >= *floor;
    Stmt q(m_db, "SELECT uid FROM expunged WHERE modseq > ? ORDER BY uid");
    if (!q.ok()) {
        *complete = false;
        return out;
    }
    q.bind(1, qint64(std::min<quint64>(modseq, quint64(INT64_MAX))));
    while (q.step() == SQLITE_ROW) out << quint32(q.integer(0));
    return out;
}

QHash<quint32, MailboxIndex::FileBlob> MailboxIndex::cachedBlobs(Blob kind) {
    QHash<quint32, FileBlob> out;
    Stmt q(m_db, kind == Blob::Header ? "SELECT uid, header, base FROM msg WHERE header IS NOT NULL"
                                      : "SELECT uid, spans, base FROM textparts");
    if (!q.ok()) return out;
    while (q.step() == SQLITE_ROW) out.insert(quint32(q.integer(0)), FileBlob{q.text(2), q.blob(1)});
    return out;
}

void MailboxIndex::storeBlob(Blob kind, quint32 uid, const QString& base, const QByteArray& bytes) {
    // (Only for the file the message's row names: never a row for a message that is gone.)
    Stmt q(kind == Blob::Header ? prepared(kHeaderSlot, "UPDATE msg SET header = ? WHERE uid = ? AND base = ?")
                                : prepared(kTextPartsSlot,
                                           "INSERT OR REPLACE INTO textparts(uid, base, spans)"
                                           " SELECT uid, base, ? FROM msg WHERE uid = ? AND base = ?"));
    if (!q.ok()) return;
    q.bind(1, bytes).bind(2, uid).bindText(3, base);
    q.step();  // a cache
}

QByteArray MailboxIndex::sortOrder(const QByteArray& criteria, const QString& generation) {
    Stmt q(m_db, "SELECT uids, generation FROM sort_order WHERE criteria = ?");
    if (!q.ok()) return {};
    q.bind(1, criteria);
    if (q.step() != SQLITE_ROW || q.text(1) != generation) return {};
    return q.blob(0);
}

void MailboxIndex::storeSortOrder(const QByteArray& criteria, const QString& generation, const QByteArray& uids) {
    Stmt q(m_db, "INSERT OR REPLACE INTO sort_order(criteria, generation, used, uids) VALUES(?, ?, ?, ?)");
    if (!q.ok()) return;
    q.bind(1, criteria).bindText(2, generation).bind(3, QDateTime::currentMSecsSinceEpoch()).bind(4, uids);
    if (q.step() != SQLITE_DONE) return;  // a cache
    Stmt trim(m_db,
              "DELETE FROM sort_order WHERE criteria NOT IN"
              " (SELECT criteria FROM sort_order ORDER BY used DESC LIMIT ?)");
    if (trim.ok()) trim.bind(1, kMaxSortOrders).step();
}

MailboxIndex::KnownFiles MailboxIndex::knownFiles() {
    KnownFiles out;
    Stmt q(m_db, "SELECT uid, base, size, mtime FROM msg WHERE size IS NOT NULL AND mtime IS NOT NULL ORDER BY uid");
    if (!q.ok()) return out;
    while (q.step() == SQLITE_ROW) {
        const QByteArrayView base = q.textBytes(1);
        out.m_rows.append({quint32(q.integer(0)), q.integer(2), q.integer(3), out.m_bases.size(), base.size()});
        out.m_bases.append(base);
    }
    if (!out.m_rows.isEmpty()) {
        const quint64 range = quint64(out.m_rows.last().uid) - out.m_rows.first().uid + 1;
        if (range <= quint64(out.m_rows.size()) * 4) {
            out.m_slot.fill(-1, qsizetype(range));
            for (qsizetype i = 0; i < out.m_rows.size(); ++i)
                out.m_slot[out.m_rows.at(i).uid - out.m_rows.first().uid] = i;
        }
    }
    return out;
}

bool MailboxIndex::KnownFiles::lookup(quint32 uid, const QString& base, qint64* size, qint64* mtimeMs) const {
    if (m_rows.isEmpty()) return false;
    auto it = m_rows.cend();
    if (!m_slot.isEmpty()) {
        const quint32 first = m_rows.first().uid;
        if (uid >= first && uid - first < quint64(m_slot.size()) && m_slot.at(uid - first) >= 0)
            it = m_rows.cbegin() + m_slot.at(uid - first);
    } else {
        it = std::lower_bound(m_rows.cbegin(), m_rows.cend(), uid, [](const Row& r, quint32 u) { return r.uid < u; });
    }
    if (it == m_rows.cend() || it->uid != uid) return false;
    if (!QAnyStringView::equal(QUtf8StringView(m_bases.constData() + it->baseAt, it->baseLen), base)) return false;
    *size = it->size;
    *mtimeMs = it->mtimeMs;
    return true;
}

MailboxIndex::Batch::Batch(MailboxIndex* index) {
    if (index && sqlite3_get_autocommit(index->m_db) && index->exec("BEGIN").ok()) m_index = index;
}

MailboxIndex::Batch::~Batch() {
    if (m_index) (void)m_index->exec("COMMIT");
}

std::optional<MailboxIndex::Cached> MailboxIndex::cached(quint32 uid, const QString& base) {
    Stmt q(prepared(kCachedSlot, "SELECT envelope, body, bodystructure, base FROM msg WHERE uid = ?"));
    if (!q.ok()) return std::nullopt;
    q.bind(1, uid);
    if (q.step() != SQLITE_ROW || q.isNull(0) || q.isNull(1) || q.isNull(2) || q.text(3) != base) return std::nullopt;
    return Cached{q.blob(0), q.blob(1), q.blob(2)};
}

QHash<quint32, MailboxIndex::CachedRow> MailboxIndex::cachedRange(quint32 first, quint32 last) {
    QHash<quint32, CachedRow> out;
    Stmt q(prepared(kCachedRangeSlot,
                    "SELECT uid, envelope, body, bodystructure, base FROM msg WHERE uid BETWEEN ? AND ?"
                    " AND envelope IS NOT NULL AND body IS NOT NULL AND bodystructure IS NOT NULL"));
    if (!q.ok()) return out;
    q.bind(1, first).bind(2, last);
    while (q.step() == SQLITE_ROW)
        out.insert(quint32(q.integer(0)), CachedRow{q.text(4), Cached{q.blob(1), q.blob(2), q.blob(3)}});
    return out;
}

void MailboxIndex::storeCached(quint32 uid, const QString& base, const Cached& c) {
    Stmt q(prepared(kStoreSlot, "UPDATE msg SET envelope = ?, body = ?, bodystructure = ? WHERE uid = ? AND base = ?"));
    if (!q.ok()) return;
    q.bind(1, c.envelope).bind(2, c.body).bind(3, c.bodyStructure).bind(4, uid).bindText(5, base);
    q.step();  // a cache: a failed write only costs a reparse later
}

}  // namespace postern::imap
