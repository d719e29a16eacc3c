// maildir_folder.cpp — see maildir_folder.h.
#include "maildir_folder.h"

#include "maildir_delivery.h"
#include "maildir_names.h"

#include "core/atomic_file.h"
#include "core/posix_io.h"

#include <QDateTime>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QHash>
#include <QMutex>
#include <QRandomGenerator>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace postern::store {

namespace {
constexpr const char* kUidList = "/dovecot-uidlist";
constexpr const char* kUidLock = "/postern-uidlist.lock";

struct Known {
    quint32 uid;
    qint64 vsize;
};

struct UidList {
    quint32 validity = 0;
    quint32 next = 1;
    QString guid;
    QHash<QString, Known> byBase;
    qsizetype lines = 0;           // message lines in the file (some may name vanished files)
    bool endsWithNewline = false;  // a crash during an append can leave half a line
};

// Parsed uidlists by path (one event-loop thread per process, but sync() may run on a
// worker thread: hence the mutex). A folder's list is parsed again only when its file
// changed: another inode (a rewrite), size (an append) or modification time.
struct UidListCache {
    static constexpr qsizetype kMaxEntries = 512;
    struct Entry {
        FileStamp stamp;
        UidList list;
        qint64 usedMs = 0;
    };
    QMutex mutex;
    QHash<QString, Entry> byPath;
    QElapsedTimer clock;
    UidListCache() { clock.start(); }
    static UidListCache& instance() {
        static UidListCache c;
        return c;
    }
    // Callers hold the mutex.
    void insertLocked(const QString& path, const FileStamp& st, const UidList& list) {
        if (byPath.size() >= kMaxEntries) byPath.clear();
        byPath.insert(path, Entry{st, list, clock.elapsed()});
    }
    void put(const QString& path, const UidList& list) {
        const FileStamp st = FileStamp::of(path);
        QMutexLocker lock(&mutex);
        if (st.exists) insertLocked(path, st, list);
    }
};

// The pieces of `text` between `sep` bytes, in order, as views (split() without a list).
template <typename Fn>
void forEachPiece(QByteArrayView text, char sep, Fn fn) {
    for (qsizetype at = 0;;) {
        const qsizetype end = text.indexOf(sep, at);
        fn(text.sliced(at, (end < 0 ? text.size() : end) - at));
        if (end < 0) return;
        at = end + 1;
    }
}

// Read once per process and folder (100,000 lines in a large folder): the lines and their
// fields are views of the text; the base name is the only string made per line.
UidList parseUidList(const QByteArray& text) {
    UidList u;
    const QByteArrayView all(text);
    const qsizetype headerEnd = all.indexOf('\n');
    const QByteArrayView headerLine = all.first(headerEnd < 0 ? all.size() : headerEnd);
    bool first = true, known = false;
    forEachPiece(headerLine, ' ', [&](QByteArrayView h) {
        if (std::exchange(first, false)) {
            known = h == "3";
        } else if (!known) {
        } else if (h.startsWith('V')) {
            u.validity = h.sliced(1).toUInt();
        } else if (h.startsWith('N')) {
            u.next = h.sliced(1).toUInt();
        } else if (h.startsWith('G')) {
            u.guid = QString::fromLatin1(h.sliced(1));
        }
    });
    if (!known) return UidList();  // unknown version: rebuild (new UIDVALIDITY)
    u.endsWithNewline = text.endsWith('\n');
    if (headerEnd < 0) return u;
    u.byBase.reserve(all.count('\n'));
    forEachPiece(all.sliced(headerEnd + 1), '\n', [&](QByteArrayView l) {
        const qsizetype colon = l.indexOf(" :");
        if (colon <= 0) return;
        const QByteArrayView fieldsText = l.first(colon);
        const qsizetype uidEnd = fieldsText.indexOf(' ');
        bool ok = false;
        const quint32 uid = fieldsText.first(uidEnd < 0 ? colon : uidEnd).toUInt(&ok);
        if (!ok || uid == 0) return;
        Known k{uid, -1};
        if (uidEnd >= 0)
            forEachPiece(fieldsText.sliced(uidEnd + 1), ' ', [&](QByteArrayView f) {
                if (f.startsWith('W')) k.vsize = f.sliced(1).toLongLong();
            });
        // The base name: the file name without ":2,<flags>" (as parseFileName reads it).
        QByteArrayView name = l.sliced(colon + 2);
        if (const qsizetype info = name.indexOf(":2,"); info >= 0) name = name.first(info);
        u.byBase.insert(QString::fromUtf8(name), k);
        ++u.lines;
        // Appended lines do not update the header's N (Dovecot appends the same way).
        if (uid >= u.next) u.next = uid + 1;
    });
    return u;
}

UidList readUidList(const QString& path) {
    UidListCache& cache = UidListCache::instance();
    const FileStamp st = FileStamp::of(path);
    {
        QMutexLocker lock(&cache.mutex);
        auto it = cache.byPath.find(path);
        if (it != cache.byPath.end() && st.exists && it->stamp == st) {
            it->usedMs = cache.clock.elapsed();
            return it->list;
        }
    }
    auto text = readFile(path, 256 * 1024 * 1024);
    if (!text) return {};
    UidList u = parseUidList(*text);
    // Only a file that did not change while we read it may be cached under that stamp.
    if (FileStamp::of(path) == st) {
        QMutexLocker lock(&cache.mutex);
        cache.insertLocked(path, st, u);
    }
    return u;
}

QByteArray uidListLine(const MessageEntry& e) {
    return QByteArray::number(e.uid) + " W" + QByteArray::number(e.vsize) + " :" + e.base.toUtf8() + "\n";
}

// Adds lines at the end of the file and flushes them: one write and one fdatasync,
// where a rewrite costs a new file, two fsyncs and a rename.
Status appendToFile(const QString& path, const QByteArray& lines) {
    const int fd = ::open(QFile::encodeName(path).constData(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errnoError(path, errno);
    Status st = writeAll(fd, lines, path);
    if (st && ::fdatasync(fd) != 0) st = errnoError(path, errno);
    ::close(fd);
    return st;
}

bool plainName(const char* name) {
    return name[0] != '.' && std::strchr(name, '/') == nullptr;
}
}  // namespace

quint32 allocateUidValidity(const QString& maildirRoot) {
    const quint32 now = quint32(QDateTime::currentSecsSinceEpoch());
    auto lock = FileLock::acquire(maildirRoot + QStringLiteral("/postern-uidvalidity.lock"));
    if (!lock) return now;  // the root is not writable: the folder cannot be made either
    const QString path = maildirRoot + QStringLiteral("/postern-uidvalidity");
    quint32 last = 0;
    if (auto text = readFile(path, 64)) last = text->trimmed().toUInt();
    // Above the last one given out, so a folder recreated in the same second differs.
    const quint32 next = last < now ? now : (last == 0xffffffffu ? now : last + 1);
    (void)writeFileAtomic(path, QByteArray::number(next) + '\n', 0600);
    return next;
}

Result<FileLock> MaildirFolder::lockUidList(const QString& dir, int timeoutMs) {
    return FileLock::acquire(dir + QLatin1String(kUidLock), FileLock::Mode::Exclusive, timeoutMs);
}

Result<UidListContents> MaildirFolder::readUidListFile(const QString& path) {
    auto text = readFile(path, 256 * 1024 * 1024);
    if (!text) return text.error();
    const UidList u = parseUidList(*text);
    UidListContents out;
    out.uidValidity = u.validity;
    out.nextUid = u.next;
    for (auto it = u.byBase.cbegin(); it != u.byBase.cend(); ++it) out.uidByBase.insert(it.key(), it->uid);
    return out;
}

void MaildirFolder::dropIdleCaches(qint64 idleMs) {
    UidListCache& cache = UidListCache::instance();
    QMutexLocker lock(&cache.mutex);
    const qint64 now = cache.clock.elapsed();
    cache.byPath.removeIf([&](const auto& it) { return now - it.value().usedMs >= idleMs; });
}

Result<MaildirFolder> MaildirFolder::open(const QString& root, const QStringList& folder, bool create) {
    MaildirFolder f;
    f.m_root = root;
    QString folderDir;
    if (!folder.isEmpty()) {
        auto d = folderDirName(folder);
        if (!d) return d.error();
        folderDir = *d;
    }
    f.m_dir = folderDir.isEmpty() ? root : root + QLatin1Char('/') + folderDir;
    if (create) {
        if (auto st = ensureMaildir(root, folderDir); !st) return st.error();
    } else if (!QFileInfo(f.m_dir + QStringLiteral("/cur")).isDir()) {
        return Result<MaildirFolder>::fail(QStringLiteral("no such folder"), ENOENT);
    }
    return f;
}

QString MaildirFolder::messagePath(const MessageEntry& e) const {
    return m_dir + (e.inNew ? QStringLiteral("/new/") : QStringLiteral("/cur/")) + e.fileName;
}

qint64 MaildirFolder::computeVirtualSize(const QString& path) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return -1;
    qint64 size = 0;
    char prev = 0;
    char buf[65536];
    for (;;) {
        const qint64 n = f.read(buf, sizeof buf);
        if (n <= 0) break;
        for (qint64 i = 0; i < n; ++i) {
            if (buf[i] == '\n' && prev != '\r') ++size;  // a bare LF goes out as CRLF
            prev = buf[i];
        }
        size += n;
    }
    return size;
}

namespace {
// Size and time of one directory entry, taken relative to its directory (no path walk
// from the root and no path string per file). stat(2) semantics: a symlink is followed.
bool statEntry(int dirFd, const char* name, MessageEntry* e) {
    struct stat st {};
    if (::fstatat(dirFd, name, &st, 0) != 0 || !S_ISREG(st.st_mode)) return false;
    e->size = st.st_size;
    e->mtimeMs = qint64(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
    return true;
}

// The files of new/ and cur/, each with its UID in `list` (0: none yet), sizes and times
// from `known`, else from stat(2).
Result<QList<MessageEntry>> listMessages(const QString& dir, const UidList& list, const MaildirFolder::KnownFn& known) {
    QList<MessageEntry> found;
    found.reserve(list.byBase.size() + 16);
    for (const bool isNew : {true, false}) {
        const QString sub = dir + (isNew ? QStringLiteral("/new") : QStringLiteral("/cur"));
        DIR* d = ::opendir(QFile::encodeName(sub).constData());
        if (!d) return errnoError(sub, errno);
        const int dirFd = ::dirfd(d);
        while (dirent* de = ::readdir(d)) {
            if (!plainName(de->d_name)) continue;
            MessageEntry e;
            e.fileName = QFile::decodeName(de->d_name);
            e.inNew = isNew;
            const ParsedName p = parseFileName(e.fileName);
            e.base = p.base;
            e.flags = p.flags;
            e.vsize = p.vsize >= 0 ? p.vsize : -1;
            const auto numbered = list.byBase.constFind(e.base);
            if (numbered != list.byBase.cend()) e.uid = numbered->uid;
            if (de->d_type != DT_REG || !e.uid || !known || !known(e.uid, e.base, &e.size, &e.mtimeMs))
                if (!statEntry(dirFd, de->d_name, &e)) continue;
            found << e;
        }
        ::closedir(d);
    }
    return found;
}

// new/ and cur/ of a folder, open for many renames from one to the other: each rename is
// relative to the two directories (no path strings, no path walk per file; an import
// leaves tens of thousands of files in new/).
class NewAndCur {
public:
    explicit NewAndCur(const QString& dir)
        : m_new(openDir(dir + QStringLiteral("/new"))), m_cur(openDir(dir + QStringLiteral("/cur"))) {}
    ~NewAndCur() {
        for (const int fd : {m_new, m_cur})
            if (fd >= 0) ::close(fd);
    }
    NewAndCur(const NewAndCur&) = delete;
    NewAndCur& operator=(const NewAndCur&) = delete;
    bool ok() const { return m_new >= 0 && m_cur >= 0; }
    int newFd() const { return m_new; }
    // new/<from> -> cur/<to>.
    bool rename(const char* from, const QString& to) const {
        return ::renameat(m_new, from, m_cur, QFile::encodeName(to).constData()) == 0;
    }

private:
    static int openDir(const QString& path) {
        return ::open(QFile::encodeName(path).constData(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    int m_new, m_cur;
};

// The listed files of new/ into cur/, as "<base>:2,<flags>" (a failed rename leaves the
// file in new/, listed there).
void moveToCur(const QString& dir, QList<MessageEntry>& found) {
    if (std::none_of(found.cbegin(), found.cend(), [](const MessageEntry& e) { return e.inNew; })) return;
    const NewAndCur dirs(dir);
    if (!dirs.ok()) return;
    for (MessageEntry& e : found) {
        if (!e.inNew) continue;
        const QString to = withFlags(e.base, e.flags);
        if (dirs.rename(QFile::encodeName(e.fileName).constData(), to)) {
            e.inNew = false;
            e.fileName = to;
        }
    }
}

// A uidlist that lacks UIDVALIDITY or a GUID gets them (and must be rewritten).
void completeHeader(const QString& root, UidList& list, bool* changed, bool* rewrite) {
    if (list.validity == 0) {
        list.validity = allocateUidValidity(root);
        list.next = std::max<quint32>(list.next, 1);
        *changed = *rewrite = true;
    }
    if (list.guid.isEmpty()) {
        for (int i = 0; i < 4; ++i)
            list.guid += QStringLiteral("%1").arg(QRandomGenerator::system()->generate(), 8, 16, QLatin1Char('0'));
        *changed = *rewrite = true;
    }
}

// New messages' lines appended to the uidlist (one write, one fdatasync).
Status appendUidLines(const QString& listPath, UidList& list, QList<MessageEntry> added) {
    std::sort(added.begin(), added.end(), [](const MessageEntry& a, const MessageEntry& b) { return a.uid < b.uid; });
    QByteArray lines;
    for (const MessageEntry& e : added) lines += uidListLine(e);
    if (auto st = appendToFile(listPath, lines); !st) return st;
    for (const MessageEntry& e : added) list.byBase.insert(e.base, Known{e.uid, e.vsize});
    list.lines += added.size();
    UidListCache::instance().put(listPath, list);
    return {};
}

// Lines of expunged messages are not worth a write (and its fsync) of their own: a
// line without a file is ignored (here and by Dovecot). New messages are appended;
// the file is rewritten (dropping such lines) when they outnumber the live ones, or
// when a known line changes.
Status saveUidList(const QString& listPath, UidList& list, const QList<MessageEntry>& out, QList<MessageEntry> added,
                   bool rewrite) {
    const qsizetype stale = list.lines - (out.size() - added.size());
    if (!rewrite && list.endsWithNewline && stale <= std::max<qsizetype>(64, out.size()))
        return appendUidLines(listPath, list, std::move(added));
    QByteArray text = "3 V" + QByteArray::number(list.validity) + " N" + QByteArray::number(list.next) + " G" +
                      list.guid.toLatin1() + "\n";
    UidList written;
    written.validity = list.validity;
    written.next = list.next;
    written.guid = list.guid;
    written.endsWithNewline = true;
    for (const MessageEntry& e : out) {
        text += uidListLine(e);
        written.byBase.insert(e.base, Known{e.uid, e.vsize});
    }
    written.lines = out.size();
    if (auto st = writeFileAtomic(listPath, text, 0600); !st) return st;
    UidListCache::instance().put(listPath, written);
    return {};
}
}  // namespace

Result<QList<MessageEntry>> MaildirFolder::sync(bool moveNewToCur, const KnownFn& known) {
    auto lock = FileLock::acquire(m_dir + QLatin1String(kUidLock));
    if (!lock) return lock.error();
    const QString listPath = m_dir + QLatin1String(kUidList);
    UidList list = readUidList(listPath);
    bool changed = false;  // the file must be written
    bool rewrite = false;  // ... as a whole (else new lines are appended)
    completeHeader(m_root, list, &changed, &rewrite);
    auto listed = listMessages(m_dir, list, known);
    if (!listed) return listed.error();
    QList<MessageEntry> found = std::move(*listed);
    if (moveNewToCur) moveToCur(m_dir, found);
    // Known messages keep their UIDs (their order here does not matter: `out` is sorted by
    // UID below); new ones, after them, get the next UIDs in delivery order. Only the new
    // ones are sorted (a listing of a numbered folder sorts nothing).
    const auto unnumbered =
        std::partition(found.begin(), found.end(), [](const MessageEntry& e) { return e.uid != 0; });
    std::sort(unnumbered, found.end(), [](const MessageEntry& a, const MessageEntry& b) {
        return a.mtimeMs != b.mtimeMs ? a.mtimeMs < b.mtimeMs : a.base < b.base;
    });
    // The same message can be in new/ and cur/ during a rename: count it once. Only the
    // bases of new/ can repeat, so only they are remembered (usually none: no set at all).
    QSet<QString> inNew;
    for (const MessageEntry& e : found)
        if (e.inNew) inNew.insert(e.base);
    QSet<QString> seen;
    QList<MessageEntry> out;
    out.reserve(found.size());
    QList<MessageEntry> added;
    for (MessageEntry& e : found) {
        if (!inNew.isEmpty() && inNew.contains(e.base)) {
            if (seen.contains(e.base)) continue;
            seen.insert(e.base);
        }
        bool isNew = false;
        if (e.uid) {  // numbered by the uidlist (listMessages)
            if (e.vsize < 0) e.vsize = list.byBase.value(e.base, Known{0, -1}).vsize;
        } else {
            e.uid = list.next++;
            changed = isNew = true;
        }
        if (e.vsize < 0) {
            e.vsize = computeVirtualSize(messagePath(e));
            changed = true;
            rewrite = rewrite || !isNew;  // a known line gains its W=
        }
        if (isNew) added << e;
        out << e;
    }
    std::sort(out.begin(), out.end(), [](const MessageEntry& a, const MessageEntry& b) { return a.uid < b.uid; });
    if (changed)
        if (auto st = saveUidList(listPath, list, out, added, rewrite); !st) return st.error();
    m_uidValidity = list.validity;
    m_nextUid = list.next;
    m_guid = list.guid;
    m_uidListStamp = FileStamp::of(listPath);  // (still under the lock)
    return out;
}

void MaildirFolder::assumeListed(quint32 uidValidity, quint32 nextUid, const QString& guid, const FileStamp& uidList) {
    m_uidValidity = uidValidity;
    m_nextUid = nextUid;
    m_guid = guid;
    m_uidListStamp = uidList;
}

Result<int> MaildirFolder::moveNewToCur() {
    auto lock = FileLock::acquire(m_dir + QLatin1String(kUidLock));
    if (!lock) return lock.error();
    const NewAndCur dirs(m_dir);
    if (!dirs.ok()) return errnoError(m_dir, errno);
    // Our own descriptor for readdir: the renames use the other one.
    const int listFd = ::fcntl(dirs.newFd(), F_DUPFD_CLOEXEC, 0);
    DIR* d = listFd >= 0 ? ::fdopendir(listFd) : nullptr;
    if (!d) {
        const int err = errno;
        if (listFd >= 0) ::close(listFd);
        return errnoError(m_dir + QStringLiteral("/new"), err);
    }
    int moved = 0;
    while (dirent* de = ::readdir(d)) {
        if (!plainName(de->d_name)) continue;
        // What sync() would list: regular files (a symlink to one included).
        struct stat st {};
        if (de->d_type != DT_REG && (::fstatat(listFd, de->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))) continue;
        const ParsedName p = parseFileName(QFile::decodeName(de->d_name));
        if (dirs.rename(de->d_name, withFlags(p.base, p.flags))) ++moved;
    }
    ::closedir(d);
    return moved;
}

Result<QList<MessageEntry>> MaildirFolder::addOwn(const QStringList& curFileNames, qsizetype liveCount) {
    auto lock = FileLock::acquire(m_dir + QLatin1String(kUidLock));
    if (!lock) return lock.error();
    const QString listPath = m_dir + QLatin1String(kUidList);
    UidList list = readUidList(listPath);
    // Only the appending case of saveUidList(); anything else is sync()'s business.
    if (list.validity == 0 || list.guid.isEmpty() || !list.endsWithNewline ||
        (liveCount >= 0 && list.lines - liveCount > std::max<qsizetype>(64, liveCount + curFileNames.size())))
        return QList<MessageEntry>();
    QList<MessageEntry> out, added;
    for (const QString& name : curFileNames) {
        MessageEntry e;
        e.fileName = name;
        const ParsedName p = parseFileName(name);
        e.base = p.base;
        e.flags = p.flags;
        e.vsize = p.vsize;
        struct stat st {};
        const QString path = m_dir + QStringLiteral("/cur/") + name;
        if (::stat(QFile::encodeName(path).constData(), &st) != 0 || !S_ISREG(st.st_mode)) return QList<MessageEntry>();
        e.size = st.st_size;
        e.mtimeMs = qint64(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
        auto it = list.byBase.find(e.base);
        if (it != list.byBase.end()) {
            e.uid = it->uid;
            if (e.vsize < 0) e.vsize = it->vsize;
            out << e;
        } else {
            if (e.vsize < 0) e.vsize = computeVirtualSize(path);
            added << e;
        }
    }
    // New ones get the next UIDs in delivery order, as sync() gives them.
    std::sort(added.begin(), added.end(), [](const MessageEntry& a, const MessageEntry& b) {
        return a.mtimeMs != b.mtimeMs ? a.mtimeMs < b.mtimeMs : a.base < b.base;
    });
    for (MessageEntry& e : added) {
        e.uid = list.next++;
        out << e;
    }
    if (!added.isEmpty())
        if (auto st = appendUidLines(listPath, list, added); !st) return st.error();
    m_uidValidity = list.validity;
    m_nextUid = list.next;
    m_guid = list.guid;
    m_uidListStamp = FileStamp::of(listPath);
    std::sort(out.begin(), out.end(), [](const MessageEntry& a, const MessageEntry& b) { return a.uid < b.uid; });
    return out;
}

Result<QString> MaildirFolder::setFlags(MessageEntry& e, const QString& flags) {
    const QString name = withFlags(e.base, flags);
    const QString from = messagePath(e);
    const QString to = m_dir + QStringLiteral("/cur/") + name;
    if (from == to) return name;
    if (::rename(QFile::encodeName(from).constData(), QFile::encodeName(to).constData()) != 0)
        return errnoError(from, errno);
    e.fileName = name;
    e.inNew = false;
    e.flags = sortFlags(flags);
    return name;
}

Status MaildirFolder::expunge(const MessageEntry& e) {
    const QString path = messagePath(e);
    if (::unlink(QFile::encodeName(path).constData()) != 0 && errno != ENOENT) return errnoError(path, errno);
    MaildirQuota::add(m_root, -e.size, -1);
    return {};
}

}  // namespace postern::store
