// imap_kept_listing.cpp — see imap_kept_listing.h.
#include "imap_kept_listing.h"

#include "imap_index.h"

#include "core/posix_io.h"

#include <QFile>
#include <QHash>
#include <QStringEncoder>

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <ctime>

namespace postern::imap {

namespace {

// File layout (native byte order; a machine of the other order fails the magic's
// version check and lists): a fixed header, the GUID, the rows, a checksum of all
// bytes before it.
constexpr char kMagic[8] = {'P', 'S', 'T', 'N', 'L', 'S', 'T', '\n'};
struct Header {
    char magic[8];
    quint32 version;
    quint32 count;   // rows
    quint64 length;  // the whole file, checksum included
    qint64 curMtimeNs, newMtimeNs, takenAtNs;
    quint64 uidDevice, uidInode;
    qint64 uidSize, uidMtimeNs;
    quint64 uidExists;
    quint64 hms;
    quint32 uidValidity, nextUid;
    quint32 guidLen, reserved;
};
struct Row {
    quint32 uid;
    quint8 inNew;
    quint8 fullName;  // 1: the file name is stored whole, else it is base + the stored tail
    quint16 reserved;
    quint32 baseLen, tailLen, flagsLen, reserved2;
    quint64 modseq;
    qint64 size, vsize, mtimeMs;
};

// Detects truncation and damage (not an adversary: whoever can write the file can
// write the Maildir).
quint64 checksum(QByteArrayView b) {
    quint64 h = 0x9e3779b97f4a7c15ull ^ quint64(b.size());
    qsizetype i = 0;
    for (; i + 8 <= b.size(); i += 8) {
        quint64 w;
        std::memcpy(&w, b.data() + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    quint64 w = 0;
    std::memcpy(&w, b.data() + i, size_t(b.size() - i));
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 32);
}

template <typename T>
void put(QByteArray& out, const T& v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// `text` in UTF-8 at the end of `out` (as QString::toUtf8() gives it); its length in bytes.
quint32 appendUtf8(QByteArray& out, QStringEncoder& utf8, QStringView text) {
    const qsizetype at = out.size();
    out.resize(at + utf8.requiredSpace(text.size()));
    const char* end = utf8.appendToBuffer(out.data() + at, text);
    out.truncate(end - out.constData());
    return quint32(out.size() - at);
}

// Bounds-checked reading of `bytes`.
class Reader {
public:
    explicit Reader(QByteArrayView bytes) : m_bytes(bytes) {}
    template <typename T>
    bool get(T* v) {
        if (m_bytes.size() - m_at < qsizetype(sizeof(T))) return false;
        std::memcpy(v, m_bytes.data() + m_at, sizeof(T));
        m_at += sizeof(T);
        return true;
    }
    bool text(quint32 len, QString* out) {
        if (m_bytes.size() - m_at < qsizetype(len)) return false;
        *out = QString::fromUtf8(m_bytes.data() + m_at, qsizetype(len));
        m_at += len;
        return true;
    }
    // The same for strings that repeat (flags): one shared copy of each distinct value.
    bool sharedText(quint32 len, QHash<QByteArrayView, QString>* seen, QString* out) {
        if (m_bytes.size() - m_at < qsizetype(len)) return false;
        const QByteArrayView v(m_bytes.data() + m_at, qsizetype(len));
        auto it = seen->constFind(v);
        if (it == seen->cend()) it = seen->insert(v, QString::fromUtf8(v));
        *out = *it;
        m_at += len;
        return true;
    }
    qsizetype left() const { return m_bytes.size() - m_at; }

private:
    QByteArrayView m_bytes;
    qsizetype m_at = 0;
};

bool validHeader(const Header& h) {
    return std::memcmp(h.magic, kMagic, sizeof kMagic) == 0 && h.version == KeptListing::kVersion && h.uidExists <= 1;
}

ListingStamps stampsOf(const Header& h) {
    ListingStamps s;
    s.curMtimeNs = h.curMtimeNs;
    s.newMtimeNs = h.newMtimeNs;
    s.takenAtNs = h.takenAtNs;
    s.uidList.device = dev_t(h.uidDevice);
    s.uidList.inode = ino_t(h.uidInode);
    s.uidList.size = off_t(h.uidSize);
    s.uidList.mtimeNs = h.uidMtimeNs;
    s.uidList.exists = h.uidExists != 0;
    s.hms = h.hms;
    return s;
}

qint64 mtimeNs(const struct stat& st) {
    return qint64(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

// Local file systems that stamp times with this kernel's clock and keep nanoseconds
// (where their inodes have room: see fineTimes).
bool localFineFileSystem(const QByteArray& path) {
    struct statfs fs {};
    if (::statfs(path.constData(), &fs) != 0) return false;
    switch (static_cast<unsigned long>(fs.f_type)) {
        case EXT4_SUPER_MAGIC:  // (also ext2/ext3: whole seconds, caught by fineTimes)
        case XFS_SUPER_MAGIC:
        case BTRFS_SUPER_MAGIC:
        case TMPFS_MAGIC:
        case F2FS_SUPER_MAGIC:
        case OVERLAYFS_SUPER_MAGIC:
            return true;
        default:
            return false;
    }
}

// Both mtimes carry a sub-second part: the file system keeps one (a whole-second time
// system gives none; a fine one gives exactly .000000000 once in a billion, and then
// only the wider window applies).
bool fineTimes(const struct stat& a, const struct stat& b) {
    return a.st_mtim.tv_nsec != 0 && b.st_mtim.tv_nsec != 0;
}

}  // namespace

DirStamps DirStamps::of(const QString& folderDir) {
    DirStamps d;
    // The clock first: a change after the stat(2)s below happens after this moment.
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    d.atNs = qint64(now.tv_sec) * 1000000000LL + now.tv_nsec;
    struct stat cur {
    }, nw{};
    const QByteArray curPath = QFile::encodeName(folderDir + QStringLiteral("/cur"));
    d.ok = ::stat(curPath.constData(), &cur) == 0 &&
           ::stat(QFile::encodeName(folderDir + QStringLiteral("/new")).constData(), &nw) == 0;
    if (d.ok) {
        d.curMtimeNs = mtimeNs(cur);
        d.newMtimeNs = mtimeNs(nw);
        if (fineTimes(cur, nw) && localFineFileSystem(curPath)) d.quietNs = KeptListing::kFineQuietNs;
    }
    return d;
}

bool KeptListing::quiet(qint64 curMtimeNs, qint64 newMtimeNs, qint64 atNs, qint64 windowNs) {
    // (Subtractions of nanosecond times since 1970: no overflow before the year 2262.)
    return atNs - curMtimeNs > windowNs && atNs - newMtimeNs > windowNs;
}

bool KeptListing::trustworthy(const DirStamps& now, const FileStamp& uidListNow) const {
    return now.ok && stamps.hms != 0 && quiet(stamps.curMtimeNs, stamps.newMtimeNs, stamps.takenAtNs, now.quietNs) &&
           now.curMtimeNs == stamps.curMtimeNs && now.newMtimeNs == stamps.newMtimeNs && uidListNow.exists &&
           uidListNow == stamps.uidList;
}

QByteArray KeptListing::encode() const {
    QByteArray out;
    out.reserve(sizeof(Header) + messages.size() * (sizeof(Row) + 64) + 64);
    Header h{};
    std::memcpy(h.magic, kMagic, sizeof kMagic);
    h.version = kVersion;
    h.count = quint32(messages.size());
    h.curMtimeNs = stamps.curMtimeNs;
    h.newMtimeNs = stamps.newMtimeNs;
    h.takenAtNs = stamps.takenAtNs;
    h.uidDevice = quint64(stamps.uidList.device);
    h.uidInode = quint64(stamps.uidList.inode);
    h.uidSize = qint64(stamps.uidList.size);
    h.uidMtimeNs = stamps.uidList.mtimeNs;
    h.uidExists = stamps.uidList.exists ? 1 : 0;
    h.hms = stamps.hms;
    h.uidValidity = uidValidity;
    h.nextUid = nextUid;
    const QByteArray g = guid.toUtf8();
    h.guidLen = quint32(g.size());
    put(out, h);
    out += g;
    QStringEncoder utf8(QStringEncoder::Utf8);
    for (const Message& m : messages) {
        const bool tailOnly = m.fileName.startsWith(m.base);
        Row r{};
        r.uid = m.uid;
        r.inNew = m.inNew ? 1 : 0;
        r.fullName = tailOnly ? 0 : 1;
        r.modseq = m.modseq;
        r.size = m.size;
        r.vsize = m.vsize;
        r.mtimeMs = m.mtimeMs;
        // The row, then its strings encoded in place (no array per string: 100,000 rows);
        // the row's lengths are filled in after.
        const qsizetype rowAt = out.size();
        put(out, r);
        r.baseLen = appendUtf8(out, utf8, m.base);
        r.tailLen = appendUtf8(out, utf8, tailOnly ? QStringView(m.fileName).sliced(m.base.size()) : m.fileName);
        r.flagsLen = appendUtf8(out, utf8, m.flags);
        std::memcpy(out.data() + rowAt, &r, sizeof r);
    }
    const quint64 length = quint64(out.size()) + sizeof(quint64);
    std::memcpy(out.data() + offsetof(Header, length), &length, sizeof length);
    put(out, checksum(out));
    return out;
}

std::optional<KeptListing> KeptListing::decode(QByteArrayView bytes) {
    Header h{};
    if (bytes.size() < qsizetype(sizeof(Header) + sizeof(quint64))) return std::nullopt;
    std::memcpy(&h, bytes.data(), sizeof h);
    if (!validHeader(h) || h.length != quint64(bytes.size())) return std::nullopt;
    const QByteArrayView body = bytes.first(bytes.size() - qsizetype(sizeof(quint64)));
    quint64 sum = 0;
    std::memcpy(&sum, bytes.data() + body.size(), sizeof sum);
    if (sum != checksum(body)) return std::nullopt;
    Reader in(body.sliced(sizeof(Header)));
    KeptListing k;
    k.stamps = stampsOf(h);
    k.uidValidity = h.uidValidity;
    k.nextUid = h.nextUid;
    if (h.uidValidity == 0 || !in.text(h.guidLen, &k.guid)) return std::nullopt;
    if (quint64(h.count) > quint64(in.left()) / sizeof(Row)) return std::nullopt;
    k.messages.reserve(h.count);
    quint32 last = 0;
    QHash<QByteArrayView, QString> flagTexts;  // views of `bytes`, which outlives it
    for (quint32 i = 0; i < h.count; ++i) {
        Row r{};
        Message m;
        QString tail;
        if (!in.get(&r) || !in.text(r.baseLen, &m.base) || !in.text(r.tailLen, &tail) ||
            !in.sharedText(r.flagsLen, &flagTexts, &m.flags))
            return std::nullopt;
        // UIDs ascend and stay below the next UID; sizes are sizes.
        if (r.uid <= last || r.uid >= h.nextUid || r.inNew > 1 || r.fullName > 1 || r.size < 0 || r.vsize < 0 ||
            m.base.isEmpty())
            return std::nullopt;
        last = r.uid;
        m.uid = r.uid;
        m.inNew = r.inNew != 0;
        m.fileName = r.fullName ? tail : m.base + tail;
        // A name is one entry of new/ or cur/: never a path out of them (as the listing
        // itself would never produce one).
        if (m.fileName.contains(u'/') || m.fileName.contains(QChar(0)) || m.fileName.startsWith(u'.'))
            return std::nullopt;
        m.modseq = r.modseq;
        m.size = r.size;
        m.vsize = r.vsize;
        m.mtimeMs = r.mtimeMs;
        k.messages << std::move(m);
    }
    if (in.left() != 0) return std::nullopt;
    return k;
}

QString KeptListing::pathIn(const QString& folderDir) {
    return folderDir + QLatin1Char('/') + QLatin1String(kFileName);
}

std::optional<KeptListing> KeptListing::load(const QString& folderDir) {
    auto bytes = readFile(pathIn(folderDir), qint64(1) << 30);
    if (!bytes) return std::nullopt;
    return decode(*bytes);
}

std::optional<ListingStamps> KeptListing::loadStamps(const QString& folderDir) {
    QFile f(pathIn(folderDir));
    if (!f.open(QIODevice::ReadOnly)) return std::nullopt;
    Header h{};
    if (f.read(reinterpret_cast<char*>(&h), sizeof h) != qint64(sizeof h) || !validHeader(h) ||
        h.length != quint64(f.size()))
        return std::nullopt;
    return stampsOf(h);
}

// Written like the index (a cache, synchronous=NORMAL): a temporary file renamed over the
// old one, not fsync'd (an fsync of a 100,000-message listing cost ~150 ms of the SELECT).
// After a crash the name holds the old listing, the new one, or a damaged file: the
// stamps and the seal decide, as for any other file.
Status KeptListing::save(const QString& folderDir) const {
    // The index file's permission bits (the process that writes one writes the other).
    struct stat st {};
    const QString index = folderDir + QLatin1Char('/') + QLatin1String(MailboxIndex::kFileName);
    const mode_t mode = ::stat(QFile::encodeName(index).constData(), &st) == 0 ? (st.st_mode & 0777) : 0600;
    const QString path = pathIn(folderDir);
    const QString tmp = path + QStringLiteral(".tmp.%1").arg(::getpid());
    const QByteArray tmpName = QFile::encodeName(tmp);
    (void)::unlink(tmpName.constData());  // left by a crash of a process with this pid
    const int fd = ::open(tmpName.constData(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) return errnoError(tmp, errno);
    ::fchmod(fd, mode);  // (the umask may have narrowed it)
    Status written = writeAll(fd, encode(), tmp);
    ::close(fd);
    if (written && ::rename(tmpName.constData(), QFile::encodeName(path).constData()) != 0)
        written = errnoError(path, errno);
    if (!written) (void)::unlink(tmpName.constData());
    return written;
}

void KeptListing::remove(const QString& folderDir) {
    (void)::unlink(QFile::encodeName(pathIn(folderDir)).constData());
}

}  // namespace postern::imap
