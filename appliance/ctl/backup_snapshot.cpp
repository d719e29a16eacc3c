// backup_snapshot.cpp — see backup_snapshot.h.
#include "backup_snapshot.h"

#include "ctl.h"

#include "common/spool/queue.h"
#include "common/store/maildir_folder.h"
#include "common/store/maildir_names.h"

#include "core/atomic_file.h"
#include "core/data_version.h"
#include "core/posix_io.h"
#include "core/process.h"
#include "core/safe_path.h"
#include "core/setting_keys.h"

#include <QCryptographicHash>
#include <QDateTime>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QHash>
#include <QSet>

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>

namespace postern::ctl::backup {

namespace {

QByteArray enc(const QString& p) {
    return QFile::encodeName(p);
}

// ---------------------------------------------------------------- progress

class Progress {
public:
    explicit Progress(int fd, QString what) : m_fd(fd), m_what(std::move(what)) {
        m_tty = fd >= 0 && ::isatty(fd);
        m_clock.start();
    }
    void add(qint64 files, qint64 bytes) {
        m_files += files;
        m_bytes += bytes;
        if (m_tty && m_clock.elapsed() - m_last >= 200) {
            m_last = m_clock.elapsed();
            write(QStringLiteral("\r%1: %2 files, %3 MB ")
                      .arg(m_what)
                      .arg(m_files)
                      .arg(double(m_bytes) / 1e6, 0, 'f', 1));
        }
    }
    void done() {
        if (m_tty && m_last > 0) write(QStringLiteral("\r%1\r").arg(QString(60, QLatin1Char(' '))));
    }
    qint64 elapsedMs() const { return m_clock.elapsed(); }

private:
    void write(const QString& s) {
        const QByteArray b = s.toUtf8();
        (void)!::write(m_fd, b.constData(), size_t(b.size()));
    }
    int m_fd;
    QString m_what;
    bool m_tty = false;
    QElapsedTimer m_clock;
    qint64 m_last = 0, m_files = 0, m_bytes = 0;
};

// ---------------------------------------------------------------- file helpers

// SHA-256 and size of what is readable from `fd` (from its current offset).
Status hashFd(int fd, QByteArray* hex, qint64* size, const QString& what) {
    QCryptographicHash h(QCryptographicHash::Sha256);
    char buf[65536];
    qint64 total = 0;
    for (;;) {
        const ssize_t n = retryOnEintr([&] { return ::read(fd, buf, sizeof buf); });
        if (n < 0) return errnoError(what, errno);
        if (n == 0) break;
        h.addData(QByteArrayView(buf, n));
        total += n;
    }
    *hex = h.result().toHex();
    *size = total;
    return {};
}

// Copies in -> out, hashing what passes; keeps nothing else.
Status copyHashing(int in, int out, QByteArray* hex, qint64* size, const QString& what) {
    QCryptographicHash h(QCryptographicHash::Sha256);
    char buf[65536];
    qint64 total = 0;
    for (;;) {
        const ssize_t n = retryOnEintr([&] { return ::read(in, buf, sizeof buf); });
        if (n < 0) return errnoError(what, errno);
        if (n == 0) break;
        h.addData(QByteArrayView(buf, n));
        if (auto st = writeAll(out, QByteArrayView(buf, n), what); !st) return st;
        total += n;
    }
    *hex = h.result().toHex();
    *size = total;
    return {};
}

qint64 mtimeNs(const struct stat& st) {
    return qint64(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

void setTimes(int fd, qint64 ns) {
    struct timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = time_t(ns / 1000000000LL);
    ts[0].tv_nsec = ts[1].tv_nsec = long(ns % 1000000000LL);
    ::futimens(fd, ts);
}

QStringList listDir(const QString& path, int* error = nullptr) {
    QStringList out;
    DIR* d = ::opendir(enc(path).constData());
    if (!d) {
        if (error) *error = errno;
        return out;
    }
    while (dirent* e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        out << QFile::decodeName(e->d_name);
    }
    ::closedir(d);
    out.sort();
    return out;
}

bool isSkippedStateFile(const QString& name) {
    // Caches and locks: the IMAP index is rebuilt from the Maildir with the same UIDs.
    return name.startsWith(QStringLiteral("postern-index.sqlite")) || name.endsWith(QStringLiteral(".lock"));
}

// Opens `rel` ('/'-separated) below the folder `rootFd`, never following a link.
// `parentOwner` gets the owner of the folder holding the last component.
int openBelow(int rootFd, const QString& rel, int flags, uid_t* parentOwner = nullptr) {
    const QStringList parts = rel.split(QLatin1Char('/'));
    int dirFd = ::dup(rootFd);
    if (dirFd < 0) return -1;
    for (qsizetype i = 0; i + 1 < parts.size(); ++i) {
        const QString& p = parts.at(i);
        if (p.isEmpty() || p == u"." || p == u"..") {
            ::close(dirFd);
            errno = EINVAL;
            return -1;
        }
        const int next = ::openat(dirFd, enc(p).constData(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        ::close(dirFd);
        if (next < 0) return -1;
        dirFd = next;
    }
    if (parentOwner) {
        struct stat st {};
        *parentOwner = ::fstat(dirFd, &st) == 0 ? st.st_uid : uid_t(-1);
    }
    const QString last = parts.last();
    if (last.isEmpty() || last == u"." || last == u"..") {
        ::close(dirFd);
        errno = EINVAL;
        return -1;
    }
    const int fd = ::openat(dirFd, enc(last).constData(), flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    const int saved = errno;
    ::close(dirFd);
    errno = saved;
    return fd;
}

// Opens a regular file of the snapshot for reading: no link followed, no FIFO or
// device; in a folder root does not own, the file must be that folder owner's.
Result<FileHandle> openSnapshotFile(int rootFd, const QString& rel, struct stat* st) {
    uid_t parentOwner = 0;
    FileHandle h(openBelow(rootFd, rel, O_RDONLY, &parentOwner));
    if (!h.valid()) return Result<FileHandle>::fail(QStringLiteral("%1: %2").arg(rel, errnoText(errno)), errno);
    if (::fstat(h.fd(), st) != 0 || !S_ISREG(st->st_mode))
        return Result<FileHandle>::fail(QStringLiteral("%1: not a regular file").arg(rel), EINVAL);
    if (parentOwner != 0 && parentOwner != ::geteuid() && st->st_uid != parentOwner)
        return Result<FileHandle>::fail(
            QStringLiteral("%1: owned by uid %2, not by its folder's owner").arg(rel).arg(st->st_uid), EPERM);
    const int fl = ::fcntl(h.fd(), F_GETFL);
    if (fl >= 0) ::fcntl(h.fd(), F_SETFL, fl & ~O_NONBLOCK);
    return h;
}

QString ownerToken(uid_t id, int daemonId, bool group) {
    if (id == 0) return QStringLiteral("root");
    if (daemonId >= 0 && id == uid_t(daemonId)) return QStringLiteral("daemon");
    Q_UNUSED(group);
    return QString::number(id);
}

int resolveToken(const QString& token, int daemonId) {
    if (token == u"root") return 0;
    if (token == u"daemon") return daemonId >= 0 ? daemonId : int(::geteuid());
    bool ok = false;
    const int n = token.toInt(&ok);
    return ok && n >= 0 ? n : 0;
}

QByteArray entryLine(const ManifestEntry& e) {
    if (e.isDir)
        return "D " + QByteArray::number(e.mode, 8) + ' ' + e.owner.toUtf8() + ' ' + e.group.toUtf8() + ' ' +
               encodePath(e.path) + '\n';
    return "F " + e.sha256 + ' ' + QByteArray::number(e.size) + ' ' + QByteArray::number(e.mode, 8) + ' ' +
           e.owner.toUtf8() + ' ' + e.group.toUtf8() + ' ' + QByteArray::number(e.mtimeNs) + ' ' + encodePath(e.path) +
           '\n';
}

bool isMessagePath(const QString& rel) {
    // data/mail/<domain>/<local>/Maildir/[.Folder/](cur|new)/<name>
    const QStringList p = rel.split(QLatin1Char('/'));
    if (p.size() < 7 || p.at(0) != u"data" || p.at(1) != u"mail" || p.at(4) != u"Maildir") return false;
    const QString& sub = p.at(p.size() - 2);
    if (sub != u"cur" && sub != u"new") return false;
    return p.size() == 7 || (p.size() == 8 && p.at(5).startsWith(QLatin1Char('.')));
}

}  // namespace

// ---------------------------------------------------------------- manifest

QByteArray encodePath(const QString& path) {
    return QFile::encodeName(path).toPercentEncoding("/:,=+@!$&'()*;");
}

Result<QString> decodePath(const QByteArray& encoded) {
    if (encoded.isEmpty()) return Result<QString>::fail(QStringLiteral("empty path"));
    const QString p = QFile::decodeName(QByteArray::fromPercentEncoding(encoded));
    for (const QString& part : p.split(QLatin1Char('/')))
        if (part.isEmpty() || part == u"." || part == u"..")
            return Result<QString>::fail(
                QStringLiteral("path '%1' leaves the snapshot").arg(QString::fromUtf8(encoded)));
    if (p.contains(QChar(0))) return Result<QString>::fail(QStringLiteral("path with NUL"));
    return p;
}

QByteArray Manifest::serialize() const {
    QByteArray out = "POSTERN-BACKUP 1\ncreated " + created.toUtf8() + "\nhost " + host.toUtf8() + '\n';
    qint64 n = 0, b = 0;
    for (const ManifestEntry& e : entries) {
        out += entryLine(e);
        if (!e.isDir) {
            ++n;
            b += e.size;
        }
    }
    out += "end " + QByteArray::number(n) + ' ' + QByteArray::number(b) + '\n';
    return out;
}

Result<Manifest> Manifest::parse(const QByteArray& text) {
    Manifest m;
    const QList<QByteArray> lines = text.split('\n');
    if (lines.isEmpty() || lines.first() != "POSTERN-BACKUP 1")
        return Result<Manifest>::fail(
            QStringLiteral("not a Postern backup manifest (first line must be 'POSTERN-BACKUP 1')"));
    QSet<QString> seen;
    for (qsizetype i = 1; i < lines.size(); ++i) {
        const QByteArray& l = lines.at(i);
        if (l.isEmpty()) continue;
        if (m.complete)
            return Result<Manifest>::fail(QStringLiteral("manifest line %1: text after the end line").arg(i + 1));
        const QList<QByteArray> f = l.split(' ');
        auto bad = [&](const QString& why) {
            return Result<Manifest>::fail(QStringLiteral("manifest line %1: %2").arg(i + 1).arg(why));
        };
        if (f.first() == "created" && f.size() == 2)
            m.created = QString::fromUtf8(f.at(1));
        else if (f.first() == "host" && f.size() == 2)
            m.host = QString::fromUtf8(f.at(1));
        else if (f.first() == "end" && f.size() == 3) {
            bool ok1 = false, ok2 = false;
            m.files = f.at(1).toLongLong(&ok1);
            m.bytes = f.at(2).toLongLong(&ok2);
            if (!ok1 || !ok2) return bad(QStringLiteral("bad end line"));
            m.complete = true;
        } else if ((f.first() == "D" && f.size() == 5) || (f.first() == "F" && f.size() == 8)) {
            ManifestEntry e;
            e.isDir = f.first() == "D";
            bool ok = true, okMode = false;
            const int base = e.isDir ? 1 : 3;
            if (!e.isDir) {
                e.sha256 = f.at(1);
                e.size = f.at(2).toLongLong(&ok);
                if (!ok || e.size < 0 || e.sha256.size() != 64) return bad(QStringLiteral("bad size or hash"));
                e.mtimeNs = f.at(6).toLongLong(&ok);
                if (!ok) return bad(QStringLiteral("bad time"));
            }
            e.mode = f.at(base).toUInt(&okMode, 8);
            if (!okMode || e.mode > 07777) return bad(QStringLiteral("bad mode"));
            e.owner = QString::fromUtf8(f.at(base + 1));
            e.group = QString::fromUtf8(f.at(base + 2));
            auto p = decodePath(f.last());
            if (!p) return bad(p.errorMessage());
            e.path = *p;
            if (!e.path.startsWith(QStringLiteral("config/")) && !e.path.startsWith(QStringLiteral("data/")) &&
                e.path != u"config" && e.path != u"data")
                return bad(QStringLiteral("path '%1' is neither below config/ nor data/").arg(e.path));
            if (seen.contains(e.path)) return bad(QStringLiteral("'%1' listed twice").arg(e.path));
            seen.insert(e.path);
            m.entries << e;
        } else {
            return bad(QStringLiteral("unknown record"));
        }
    }
    return m;
}

QString checkMessageHeader(const QByteArray& bytes) {
    if (bytes.isEmpty()) return QStringLiteral("empty file");
    qsizetype pos = 0;
    int fields = 0;
    int lineNo = 0;
    while (pos < bytes.size()) {
        qsizetype nl = bytes.indexOf('\n', pos);
        const bool last = nl < 0;
        if (last) nl = bytes.size();
        QByteArrayView line(bytes.constData() + pos, nl - pos);
        if (line.endsWith('\r')) line.chop(1);
        ++lineNo;
        pos = nl + 1;
        if (line.isEmpty()) return fields > 0 ? QString() : QStringLiteral("no header fields before the body");
        if (line.front() == ' ' || line.front() == '\t') {
            if (fields == 0) return QStringLiteral("line 1 is a continuation line");
            continue;
        }
        const qsizetype colon = line.indexOf(':');
        if (colon <= 0) return QStringLiteral("line %1 is not a header field").arg(lineNo);
        for (qsizetype i = 0; i < colon; ++i) {
            const uchar c = uchar(line.at(i));
            if (c < 33 || c > 126)
                return QStringLiteral("line %1 has a bad field name").arg(lineNo);  // RFC 5322 2.2 ftext
        }
        ++fields;
        if (last) break;
    }
    if (bytes.size() >= kMessageCheckBytes)
        return QStringLiteral("header longer than %1 bytes").arg(kMessageCheckBytes);
    return fields > 0 ? QString() : QStringLiteral("no header fields");
}

Status removeTree(const QString& path) {
    const QFileInfo info(path);
    const int parent = ::open(enc(info.absolutePath()).constData(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (parent < 0) return errno == ENOENT ? Status() : Status(errnoError(info.absolutePath(), errno));
    std::function<Status(int, const QByteArray&, int)> rm = [&](int dirFd, const QByteArray& name,
                                                                int depth) -> Status {
        if (depth > kMaxTreeDepth) return Status::fail(QStringLiteral("%1: too deep").arg(path), ELOOP);
        struct stat st {};
        if (::fstatat(dirFd, name.constData(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return errno == ENOENT ? Status() : Status(errnoError(path, errno));
        if (S_ISDIR(st.st_mode)) {
            const int fd = ::openat(dirFd, name.constData(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) return errnoError(path, errno);
            DIR* d = ::fdopendir(fd);
            if (!d) {
                ::close(fd);
                return errnoError(path, errno);
            }
            QList<QByteArray> names;
            while (dirent* e = ::readdir(d))
                if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
                    names << QByteArray(e->d_name);
            Status result;
            for (const QByteArray& n : names)
                if (auto s = rm(::dirfd(d), n, depth + 1); !s && result) result = s;
            ::closedir(d);
            if (!result) return result;
            if (::unlinkat(dirFd, name.constData(), AT_REMOVEDIR) != 0) return errnoError(path, errno);
            return {};
        }
        if (::unlinkat(dirFd, name.constData(), 0) != 0 && errno != ENOENT) return errnoError(path, errno);
        return {};
    };
    Status st = rm(parent, enc(info.fileName()), 0);
    ::close(parent);
    return st;
}

// ================================================================ create

namespace {

// The part that runs as the daemon user, in a child process: everything below data_dir.
class DataSnapshot {
public:
    DataSnapshot(const Config& config, QString dst, int out, int progressFd)
        : m_config(config), m_dst(std::move(dst)), m_out(out), m_progress(progressFd, QStringLiteral("backup")) {}

    int run() {
        if (!mkdirEmit(QString(), 0700)) return 1;
        snapshotMail();
        snapshotQueue();
        snapshotDataVersion();
        flush();
        m_progress.done();
        // Counters for the parent's summary line.
        const QByteArray c = "C " + QByteArray::number(m_hardLinks) + ' ' + QByteArray::number(m_copies) + ' ' +
                             QByteArray::number(m_folders) + ' ' + QByteArray::number(m_queued) + ' ' +
                             QByteArray::number(m_later) + '\n';
        (void)writeAll(m_out, c, QStringLiteral("pipe"));
        if (!m_errors.isEmpty()) {
            for (const QString& e : std::as_const(m_errors)) {
                const QByteArray line = "posternctl: " + e.toUtf8() + '\n';
                (void)!::write(STDERR_FILENO, line.constData(), size_t(line.size()));
            }
            return 1;
        }
        return 0;
    }

private:
    QString dstPath(const QString& rel) const { return rel.isEmpty() ? m_dst : m_dst + QLatin1Char('/') + rel; }
    static QString relName(const QString& rel) {
        return rel.isEmpty() ? QStringLiteral("data") : QStringLiteral("data/") + rel;
    }

    void error(const QString& e) { m_errors << e; }

    void emitLine(const QByteArray& line) {
        m_buffer += line;
        if (m_buffer.size() > 64 * 1024) flush();
    }
    void flush() {
        if (m_buffer.isEmpty()) return;
        if (auto st = writeAll(m_out, m_buffer, QStringLiteral("pipe")); !st) error(st.errorMessage());
        m_buffer.clear();
    }

    bool mkdirEmit(const QString& rel, uint mode) {
        const QString p = dstPath(rel);
        if (!rel.isEmpty() && ::mkdir(enc(p).constData(), mode) != 0 && errno != EEXIST) {
            error(QStringLiteral("%1: %2").arg(relName(rel), errnoText(errno)));
            return false;
        }
        ManifestEntry e;
        e.isDir = true;
        e.mode = mode;
        e.owner = e.group = QStringLiteral("daemon");
        e.path = relName(rel);
        emitLine(entryLine(e));
        return true;
    }

    // Hashes the file now in the snapshot and reports it.
    void emitFile(const QString& rel) {
        const int fd = ::open(enc(dstPath(rel)).constData(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            error(QStringLiteral("%1: %2").arg(relName(rel), errnoText(errno)));
            return;
        }
        struct stat st {};
        ManifestEntry e;
        if (::fstat(fd, &st) != 0) {
            error(QStringLiteral("%1: %2").arg(relName(rel), errnoText(errno)));
            ::close(fd);
            return;
        }
        if (auto s = hashFd(fd, &e.sha256, &e.size, relName(rel)); !s) error(s.errorMessage());
        ::close(fd);
        e.mode = st.st_mode & 07777;
        e.owner = e.group = QStringLiteral("daemon");
        e.mtimeNs = mtimeNs(st);
        e.path = relName(rel);
        emitLine(entryLine(e));
        m_progress.add(1, e.size);
    }

    // A real copy of a (mutable) file, keeping mode and time.
    Status copyFile(const QString& src, const QString& rel) {
        const int in = ::open(enc(src).constData(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (in < 0) return errnoError(src, errno);
        struct stat st {};
        if (::fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
            ::close(in);
            return Status::fail(QStringLiteral("%1: not a regular file").arg(src), EINVAL);
        }
        ::fcntl(in, F_SETFL, ::fcntl(in, F_GETFL) & ~O_NONBLOCK);
        const int out = ::open(enc(dstPath(rel)).constData(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                               st.st_mode & 0777);
        if (out < 0) {
            const int e = errno;
            ::close(in);
            return errnoError(relName(rel), e);
        }
        QByteArray hex;
        qint64 size = 0;
        Status s = copyHashing(in, out, &hex, &size, relName(rel));
        if (s) setTimes(out, mtimeNs(st));
        ::close(in);
        ::close(out);
        if (s) ++m_copies;
        return s;
    }

    // A message file: a hard link while links work, else a copy. ENOENT is returned as is.
    Status linkOrCopy(const QString& src, const QString& rel) {
        if (m_tryLinks) {
            if (::linkat(AT_FDCWD, enc(src).constData(), AT_FDCWD, enc(dstPath(rel)).constData(), 0) == 0) {
                ++m_hardLinks;
                return {};
            }
            if (errno == ENOENT) return errnoError(src, ENOENT);
            if (errno != EXDEV && errno != EPERM && errno != EMLINK && errno != EOPNOTSUPP)
                return errnoError(src, errno);
            if (errno == EXDEV || errno == EOPNOTSUPP) m_tryLinks = false;
        }
        return copyFile(src, rel);
    }

    void copyPlainTree(const QString& src, const QString& rel, int depth) {
        if (depth > kMaxTreeDepth) {
            error(QStringLiteral("%1: more than %2 folder levels").arg(src).arg(kMaxTreeDepth));
            return;
        }
        if (!mkdirEmit(rel, 0700)) return;
        for (const QString& name : listDir(src)) {
            const QString s = src + QLatin1Char('/') + name;
            struct stat st {};
            if (::lstat(enc(s).constData(), &st) != 0) continue;
            if (S_ISDIR(st.st_mode))
                copyPlainTree(s, rel + QLatin1Char('/') + name, depth + 1);
            else if (S_ISREG(st.st_mode) && !isSkippedStateFile(name)) {
                if (auto c = copyFile(s, rel + QLatin1Char('/') + name); c)
                    emitFile(rel + QLatin1Char('/') + name);
                else if (c.error().code != ENOENT)
                    error(c.errorMessage());
            }
        }
    }

    // The data format number (core/data_version.h) travels with the data it describes: a
    // restore onto a newer build is then migrated from the right format, and an older
    // build refuses data newer than itself instead of misreading it.
    void snapshotDataVersion() {
        const QString rel = QLatin1String(kDataVersionFileName);
        if (auto c = copyFile(dataVersionPath(m_config), rel); c)
            emitFile(rel);
        else if (c.error().code != ENOENT)
            error(c.errorMessage());
    }

    void snapshotMail() {
        const QString mail = m_config.mailDir();
        if (!QFileInfo(mail).isDir()) return;
        if (!mkdirEmit(QStringLiteral("mail"), 0700)) return;
        for (const QString& domain : listDir(mail)) {
            const QString d = mail + QLatin1Char('/') + domain;
            if (!QFileInfo(d).isDir() || QFileInfo(d).isSymLink()) continue;
            const QString relD = QStringLiteral("mail/") + domain;
            if (!mkdirEmit(relD, 0700)) continue;
            for (const QString& local : listDir(d)) {
                const QString home = d + QLatin1Char('/') + local;
                if (!QFileInfo(home).isDir() || QFileInfo(home).isSymLink()) continue;
                snapshotHome(home, relD + QLatin1Char('/') + local);
            }
        }
    }

    void snapshotHome(const QString& home, const QString& rel) {
        if (!mkdirEmit(rel, 0700)) return;
        for (const QString& name : listDir(home)) {
            const QString s = home + QLatin1Char('/') + name;
            struct stat st {};
            if (::lstat(enc(s).constData(), &st) != 0) continue;
            const QString r = rel + QLatin1Char('/') + name;
            if (S_ISDIR(st.st_mode) && name == u"Maildir")
                snapshotMaildir(s, r);
            else if (S_ISDIR(st.st_mode))
                copyPlainTree(s, r, 1);
            else if (S_ISREG(st.st_mode) && !isSkippedStateFile(name)) {
                if (auto c = copyFile(s, r); c)
                    emitFile(r);
                else if (c.error().code != ENOENT)
                    error(c.errorMessage());
            }
        }
    }

    void snapshotMaildir(const QString& root, const QString& rel) {
        if (!mkdirEmit(rel, 0700)) return;
        snapshotFolder(root, {}, root, rel);
        for (const QString& name : listDir(root)) {
            const QString s = root + QLatin1Char('/') + name;
            struct stat st {};
            if (::lstat(enc(s).constData(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
            if (name == u"cur" || name == u"new" || name == u"tmp") continue;
            const QString r = rel + QLatin1Char('/') + name;
            if (name.startsWith(QLatin1Char('.')) && QFileInfo(s + QStringLiteral("/cur")).isDir())
                snapshotFolder(root, store::folderParts(name), s, r);
            else
                copyPlainTree(s, r, 2);
        }
    }

    // One Maildir++ folder: its uidlist and files in one locked moment.
    void snapshotFolder(const QString& root, const QStringList& parts, const QString& dir, const QString& rel) {
        ++m_folders;
        const bool inbox = dir == root;
        const bool synced = (inbox || !parts.isEmpty()) && syncFolder(root, parts, dir);
        if (!inbox && !mkdirEmit(rel, 0700)) return;
        for (const char* sub : {"cur", "new", "tmp"})
            if (!mkdirEmit(rel + QLatin1Char('/') + QLatin1String(sub), 0700)) return;
        QStringList done;     // rel paths to report
        QStringList pending;  // names (sub/name) to copy after the lock
        if (!copyFolderLocked(dir, rel, synced, &done, &pending)) return;
        copyPendingMessages(dir, rel, pending, &done);
        for (const QString& r : std::as_const(done)) emitFile(r);
    }

    // Every message present now gets its UID first (what POP3 does on login). True when the
    // folder's uidlist is up to date.
    bool syncFolder(const QString& root, const QStringList& parts, const QString& dir) {
        auto folder = store::MaildirFolder::open(root, parts, false);
        if (!folder) return false;
        if (auto s = folder->sync(false); !s) {
            error(QStringLiteral("%1: %2").arg(dir, s.errorMessage()));
            return false;
        }
        return true;
    }

    // Under the folder's uidlist lock: copies the folder's own files (uidlist, keywords) and
    // links its messages; with links not working, the message names go to `pending`. False
    // when the lock cannot be taken.
    bool copyFolderLocked(const QString& dir, const QString& rel, bool synced, QStringList* done,
                          QStringList* pending) {
        auto lock = store::MaildirFolder::lockUidList(dir);
        if (!lock) {
            error(QStringLiteral("%1: cannot lock the uidlist: %2").arg(dir, lock.errorMessage()));
            return false;
        }
        for (const QString& name : listDir(dir)) {
            const QString s = dir + QLatin1Char('/') + name;
            struct stat st {};
            if (::lstat(enc(s).constData(), &st) != 0 || !S_ISREG(st.st_mode) || isSkippedStateFile(name)) continue;
            if (auto c = copyFile(s, rel + QLatin1Char('/') + name); c)
                *done << rel + QLatin1Char('/') + name;
            else if (c.error().code != ENOENT)
                error(c.errorMessage());
        }
        // Messages delivered after our sync() have no UID yet: they arrived after the
        // backup started and are left for the next one (the snapshot's uidlist must name
        // every message it holds).
        std::optional<store::UidListContents> uids;
        if (synced) {
            auto u = store::MaildirFolder::readUidListFile(dir + QLatin1Char('/') +
                                                           QLatin1String(store::MaildirFolder::kUidListName));
            if (u && u->uidValidity != 0) uids = *u;
        }
        for (const char* sub : {"new", "cur"}) {
            const QString subDir = dir + QLatin1Char('/') + QLatin1String(sub);
            for (const QString& name : listDir(subDir)) {
                if (name.startsWith(QLatin1Char('.'))) continue;
                if (uids && !uids->uidByBase.contains(store::parseFileName(name).base)) {
                    ++m_later;
                    continue;
                }
                const QString r = rel + QLatin1Char('/') + QLatin1String(sub) + QLatin1Char('/') + name;
                if (!m_tryLinks) {
                    *pending << QLatin1String(sub) + QLatin1Char('/') + name;
                    continue;
                }
                if (auto c = linkOrCopy(subDir + QLatin1Char('/') + name, r); c)
                    *done << r;
                else if (c.error().code != ENOENT)
                    error(c.errorMessage());
            }
        }
        return true;
    }

    // Copies (another file system) are made after the lock is released: a message
    // renamed meanwhile (new flags) is found again by its base name.
    void copyPendingMessages(const QString& dir, const QString& rel, const QStringList& pending, QStringList* done) {
        for (const QString& subName : pending) {
            const QString name = subName.section(QLatin1Char('/'), 1);
            QString r = rel + QLatin1Char('/') + subName;
            auto c = copyFile(dir + QLatin1Char('/') + subName, r);
            if (!c && c.error().code == ENOENT) {
                const QString base = store::parseFileName(name).base;
                for (const char* s2 : {"cur", "new"}) {
                    for (const QString& n2 : listDir(dir + QLatin1Char('/') + QLatin1String(s2))) {
                        if (store::parseFileName(n2).base != base) continue;
                        r = rel + QLatin1Char('/') + QLatin1String(s2) + QLatin1Char('/') + n2;
                        c = copyFile(dir + QLatin1Char('/') + QLatin1String(s2) + QLatin1Char('/') + n2, r);
                        break;
                    }
                    if (c || c.error().code != ENOENT) break;
                }
            }
            if (c)
                *done << r;
            else if (c.error().code != ENOENT)
                error(c.errorMessage());  // expunged meanwhile: gone
        }
    }

    void snapshotQueue() {
        const QString queue = m_config.queueDir();
        if (!QFileInfo(queue).isDir()) return;
        if (!mkdirEmit(QStringLiteral("queue"), 0700)) return;
        for (const spool::QueueState state : spool::queueStates())
            if (!mkdirEmit(QStringLiteral("queue/") + spool::toString(state), 0700)) return;
        QSet<QString> done;
        for (const spool::QueueState state : spool::queueStates()) {
            for (const QString& name : listDir(spool::stateDir(queue, state))) {
                if (!name.endsWith(QStringLiteral(".env"))) continue;
                const QString id = name.chopped(4);
                if (!spool::isValidQueueId(id) || done.contains(id)) continue;
                std::optional<spool::QueueState> at = state;
                for (int attempt = 0; attempt < 5 && at; ++attempt) {
                    // Body first, envelope last (the envelope is what makes a message exist).
                    const QString relBody = QStringLiteral("queue/%1/%2.body").arg(spool::toString(*at), id),
                                  relEnv = QStringLiteral("queue/%1/%2.env").arg(spool::toString(*at), id);
                    Status b = linkOrCopy(spool::bodyPath(queue, *at, id), relBody);
                    Status e = b ? linkOrCopy(spool::envelopePath(queue, *at, id), relEnv) : Status(b);
                    if (b && e) {
                        emitFile(relBody);
                        emitFile(relEnv);
                        done.insert(id);
                        ++m_queued;
                        break;
                    }
                    ::unlink(enc(dstPath(relBody)).constData());
                    ::unlink(enc(dstPath(relEnv)).constData());
                    const Status& failed = b ? e : b;
                    if (failed.error().code != ENOENT) {
                        error(failed.errorMessage());
                        break;
                    }
                    at = spool::stateOf(queue, id);  // moved on meanwhile (or delivered: gone)
                }
            }
        }
    }

    const Config& m_config;
    QString m_dst;
    int m_out;
    Progress m_progress;
    QByteArray m_buffer;
    QStringList m_errors;
    bool m_tryLinks = true;
    qint64 m_hardLinks = 0, m_copies = 0, m_folders = 0, m_queued = 0, m_later = 0;
};

struct ConfigCopy {
    QStringList skip;  // absolute folders not to enter
    int daemonUid = -1, daemonGid = -1;
    QList<ManifestEntry> entries;
    Progress* progress = nullptr;
};

Status copyConfigTree(ConfigCopy& c, const QString& src, const QString& dstRoot, const QString& rel, int depth) {
    if (depth > kMaxTreeDepth) return Status::fail(QStringLiteral("%1: too deep").arg(src), ELOOP);
    struct stat dst {};
    if (::stat(enc(src).constData(), &dst) != 0) return errnoError(src, errno);
    const QString target = dstRoot + QLatin1Char('/') + rel;
    if (::mkdir(enc(target).constData(), 0700) != 0 && errno != EEXIST) return errnoError(target, errno);
    ManifestEntry d;
    d.isDir = true;
    d.mode = dst.st_mode & 07777;
    d.owner = ownerToken(dst.st_uid, c.daemonUid, false);
    d.group = ownerToken(dst.st_gid, c.daemonGid, true);
    d.path = rel;
    c.entries << d;
    for (const QString& name : listDir(src)) {
        const QString s = src + QLatin1Char('/') + name;
        const QFileInfo info(s);
        const QString canonical = info.canonicalFilePath();
        bool skipped = false;
        for (const QString& k : c.skip)
            if (!k.isEmpty() && (canonical == k || info.absoluteFilePath() == k)) skipped = true;
        if (skipped) continue;
        // The config folder is root's: links in it are the administrator's (a TLS key
        // linked into /etc/letsencrypt) and are copied as the files they name.
        struct stat st {};
        if (::stat(enc(s).constData(), &st) != 0) continue;
        const QString r = rel + QLatin1Char('/') + name;
        if (S_ISDIR(st.st_mode)) {
            if (info.isSymLink()) continue;  // a linked folder is not ours to copy
            if (auto x = copyConfigTree(c, s, dstRoot, r, depth + 1); !x) return x;
            continue;
        }
        if (!S_ISREG(st.st_mode)) continue;
        const int in = ::open(enc(s).constData(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (in < 0) return errnoError(s, errno);
        struct stat fst {};
        ::fstat(in, &fst);
        if (!S_ISREG(fst.st_mode)) {
            ::close(in);
            continue;
        }
        ::fcntl(in, F_SETFL, ::fcntl(in, F_GETFL) & ~O_NONBLOCK);
        const int out = ::open(enc(dstRoot + QLatin1Char('/') + r).constData(),
                               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0) {
            const int e = errno;
            ::close(in);
            return errnoError(dstRoot + QLatin1Char('/') + r, e);
        }
        ManifestEntry f;
        Status x = copyHashing(in, out, &f.sha256, &f.size, s);
        setTimes(out, mtimeNs(fst));
        ::close(in);
        ::close(out);
        if (!x) return x;
        f.mode = fst.st_mode & 07777;
        f.owner = ownerToken(fst.st_uid, c.daemonUid, false);
        f.group = ownerToken(fst.st_gid, c.daemonGid, true);
        f.mtimeNs = mtimeNs(fst);
        f.path = r;
        c.entries << f;
        if (c.progress) c.progress->add(1, f.size);
    }
    return {};
}

bool folderIsEmpty(const QString& path) {
    int err = 0;
    const QStringList entries = listDir(path, &err);
    return err == ENOENT || (err == 0 && entries.isEmpty());
}

// The owner of the daemons' files: system_user's ids when running as root, else our own.
Result<UserIds> daemonIds(const Config& config) {
    if (::geteuid() != 0) return UserIds{int(::geteuid()), int(::getegid())};
    return lookupUser(get(config, keys::general::systemUser));
}

// Makes DIR: new or empty, and ours (the snapshot holds the keys), mode 0700.
Status makeSnapshotDir(const QString& dir) {
    if (!folderIsEmpty(dir))
        return Status::fail(QStringLiteral("%1 exists and is not empty; give a new folder").arg(dir), EEXIST);
    if (auto st = ensureDirectory(QFileInfo(dir).absolutePath(), 0755); !st) return st;
    if (::mkdir(enc(dir).constData(), 0700) != 0 && errno != EEXIST) return errnoError(dir, errno);
    struct stat dst {};
    // An empty folder given by the caller must be ours: the snapshot holds the keys.
    if (::lstat(enc(dir).constData(), &dst) != 0 || !S_ISDIR(dst.st_mode) || dst.st_uid != ::geteuid())
        return Status::fail(QStringLiteral("%1 must be a folder of the user running posternctl").arg(dir), EPERM);
    ::chmod(enc(dir).constData(), 0700);
    return {};
}

// Step 1: the config folder, copied as root into DIR/config; returns its records.
Result<QList<ManifestEntry>> snapshotConfig(const Config& config, const QString& dir, const UserIds& ids,
                                            Progress& progress) {
    ConfigCopy cc;
    cc.daemonUid = ids.uid;
    cc.daemonGid = ids.gid;
    cc.progress = &progress;
    for (const QString& p :
         {config.dataDir(), config.logDir(), config.runDir(), get(config, keys::backup::stagingDir), dir})
        if (!p.isEmpty()) cc.skip << QFileInfo(p).canonicalFilePath() << QFileInfo(p).absoluteFilePath();
    if (auto st = copyConfigTree(cc, config.configDir(), dir, QStringLiteral("config"), 0); !st) return st.error();
    return cc.entries;
}

// Step 2: DIR/data, made by a child running as the daemon user through an inherited
// descriptor. Returns what the child wrote to the pipe (its records and counters).
Result<QByteArray> snapshotData(const Config& config, const QString& dir, const UserIds& ids, int progressFd) {
    const QString dataPath = dir + QStringLiteral("/data");
    if (::mkdir(enc(dataPath).constData(), 0700) != 0) return errnoError(dataPath, errno);
    const int dataFd = ::open(enc(dataPath).constData(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dataFd < 0) return errnoError(dataPath, errno);
    if (::geteuid() == 0 && ::fchown(dataFd, uid_t(ids.uid), gid_t(ids.gid)) != 0) {
        const int e = errno;
        ::close(dataFd);
        return errnoError(dataPath, e);
    }
    int pipeFds[2];
    if (::pipe2(pipeFds, O_CLOEXEC) != 0) {
        ::close(dataFd);
        return errnoError(QStringLiteral("pipe"), errno);
    }
    const pid_t child = ::fork();
    if (child < 0) {
        ::close(dataFd);
        return errnoError(QStringLiteral("fork"), errno);
    }
    if (child == 0) {
        ::close(pipeFds[0]);
        if (auto st = dropPrivileges(get(config, keys::general::systemUser)); !st) {
            const QByteArray m = "posternctl: " + st.errorMessage().toUtf8() + '\n';
            (void)!::write(STDERR_FILENO, m.constData(), size_t(m.size()));
            ::_exit(1);
        }
        DataSnapshot snap(config, QStringLiteral("/proc/self/fd/%1").arg(dataFd), pipeFds[1], progressFd);
        const int rc = snap.run();
        ::close(pipeFds[1]);
        ::_exit(rc);
    }
    ::close(pipeFds[1]);
    ::close(dataFd);
    QByteArray fromChild;
    char buf[65536];
    for (;;) {
        const ssize_t n = retryOnEintr([&] { return ::read(pipeFds[0], buf, sizeof buf); });
        if (n <= 0) break;
        fromChild.append(buf, n);
    }
    ::close(pipeFds[0]);
    int status = 0;
    retryOnEintr([&] { return ::waitpid(child, &status, 0); });
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return Result<QByteArray>::fail(
            QStringLiteral("the snapshot of %1 failed (see above); %2 is incomplete (no manifest)")
                .arg(config.dataDir(), dir));
    return fromChild;
}

// Adds the child's records to `m` and its counters ("C" line) to `sum`.
Status addDataRecords(const QByteArray& fromChild, Manifest& m, Summary& sum) {
    const QList<QByteArray> lines = fromChild.split('\n');
    QByteArray text = "POSTERN-BACKUP 1\n";
    for (const QByteArray& l : lines) {
        if (l.startsWith("C ")) {
            const QList<QByteArray> f = l.split(' ');
            if (f.size() == 6) {
                sum.hardLinks = f.at(1).toLongLong();
                sum.copies = f.at(2).toLongLong();
                sum.folders = f.at(3).toLongLong();
                sum.queued = f.at(4).toLongLong();
                sum.arrivedDuring = f.at(5).toLongLong();
            }
        } else if (!l.isEmpty()) {
            text += l + '\n';
        }
    }
    // The child's records pass through the same parser as any manifest (paths stay inside data/).
    auto childPart = Manifest::parse(text);
    if (!childPart) return Status::fail(QStringLiteral("snapshot records: %1").arg(childPart.errorMessage()));
    m.entries += childPart->entries;
    return {};
}

void countEntries(const Manifest& m, Summary& sum) {
    for (const ManifestEntry& e : std::as_const(m.entries)) {
        if (e.isDir) continue;
        ++sum.files;
        sum.bytes += e.size;
        if (e.path.startsWith(QStringLiteral("config/"))) ++sum.configFiles;
        if (isMessagePath(e.path)) {
            ++sum.messages;
            sum.messageBytes += e.size;
        }
    }
}

}  // namespace

Result<Summary> createSnapshot(const Config& config, const QString& dirArg, int progressFd) {
    const QString dir = QFileInfo(dirArg).absoluteFilePath();
    if (auto st = makeSnapshotDir(dir); !st) return st.error();
    auto ids = daemonIds(config);
    if (!ids) return ids.error();
    Progress progress(progressFd, QStringLiteral("backup"));
    auto configEntries = snapshotConfig(config, dir, *ids, progress);
    if (!configEntries) return configEntries.error();
    auto fromChild = snapshotData(config, dir, *ids, progressFd);
    if (!fromChild) return fromChild.error();
    Manifest m;
    m.created = QDateTime::currentDateTimeUtc().toString(Qt::ISODateWithMs);
    m.host = config.hostname();
    m.entries = *configEntries;
    Summary sum;
    if (auto st = addDataRecords(*fromChild, m, sum); !st) return st.error();
    countEntries(m, sum);
    // Everything on disk first (one syncfs for the thousands of files), then the manifest.
    const int dfd = ::open(enc(dir).constData(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::syncfs(dfd);
        ::close(dfd);
    }
    if (auto st = writeFileAtomic(dir + QLatin1Char('/') + QLatin1String(kManifestName), m.serialize(), 0600); !st)
        return st.error();
    progress.done();
    return sum;
}

// ================================================================ verify

namespace {

// A snapshot folder opened for reading, and its parsed manifest.
struct OpenedSnapshot {
    FileHandle root;
    Manifest manifest;
};

// Opens DIR and reads its manifest (at most kMaxManifestBytes, no link followed). When the
// manifest cannot be opened, *noManifest is set and the error says why.
Result<OpenedSnapshot> openSnapshot(const QString& dir, bool* noManifest) {
    *noManifest = false;
    OpenedSnapshot s;
    s.root = FileHandle(::open(enc(dir).constData(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!s.root.valid()) return errnoError(dir, errno);
    struct stat mst {};
    auto mh = openSnapshotFile(s.root.fd(), QLatin1String(kManifestName), &mst);
    if (!mh) {
        *noManifest = true;
        return mh.error();
    }
    if (mst.st_size > kMaxManifestBytes)
        return Result<OpenedSnapshot>::fail(QStringLiteral("manifest larger than %1 bytes").arg(kMaxManifestBytes));
    QFile mf;
    if (!mf.open(mh->release(), QIODevice::ReadOnly, QFileDevice::AutoCloseHandle))
        return Result<OpenedSnapshot>::fail(QStringLiteral("cannot read the manifest"));
    auto manifest = Manifest::parse(mf.readAll());
    if (!manifest) return manifest.error();
    s.manifest = *manifest;
    return s;
}

// What verify learns while it reads the snapshot, and the problems it finds.
struct Verification {
    int rootFd = -1;
    QString dir;
    Summary sum;
    QSet<QString> listed;
    QHash<QString, QStringList> messagesByFolder;  // folder rel path -> message base names
    QSet<QString> uidlists;
    qint64 files = 0, bytes = 0;
};

// The head of the message file `fd` (from its start) must parse as header fields.
void checkMessageFile(Verification& v, const ManifestEntry& e, int fd, qint64 size) {
    ++v.sum.messages;
    v.sum.messageBytes += size;
    ::lseek(fd, 0, SEEK_SET);
    QByteArray head(int(std::min<qint64>(size, kMessageCheckBytes)), '\0');
    qsizetype got = 0;
    while (got < head.size()) {
        const ssize_t n = ::read(fd, head.data() + got, size_t(head.size() - got));
        if (n <= 0) break;
        got += n;
    }
    head.truncate(got);
    if (const QString why = checkMessageHeader(head); !why.isEmpty())
        v.sum.problems << QStringLiteral("%1: not a message: %2").arg(e.path, why);
    const QString folder = e.path.section(QLatin1Char('/'), 0, -3);
    v.messagesByFolder[folder] << store::parseFileName(e.path.section(QLatin1Char('/'), -1)).base;
}

// One file record: present, a regular file, of the recorded size and hash.
void verifyFile(Verification& v, const ManifestEntry& e, Progress& progress) {
    ++v.files;
    v.bytes += e.size;
    struct stat st {};
    auto h = openSnapshotFile(v.rootFd, e.path, &st);
    if (!h) {
        v.sum.problems << h.errorMessage();
        return;
    }
    if (st.st_size != e.size)
        v.sum.problems << QStringLiteral("%1: %2 bytes, the manifest says %3").arg(e.path).arg(st.st_size).arg(e.size);
    QByteArray hex;
    qint64 size = 0;
    if (auto s = hashFd(h->fd(), &hex, &size, e.path); !s) {
        v.sum.problems << s.errorMessage();
        return;
    }
    if (hex != e.sha256)
        v.sum.problems << QStringLiteral("%1: content differs from the manifest (SHA-256)").arg(e.path);
    progress.add(1, size);
    if (isMessagePath(e.path)) {
        checkMessageFile(v, e, h->fd(), size);
    } else if (e.path.endsWith(QLatin1Char('/') + QLatin1String(store::MaildirFolder::kUidListName))) {
        v.uidlists.insert(e.path.section(QLatin1Char('/'), 0, -2));
    } else if (e.path.startsWith(QStringLiteral("data/queue/"))) {
        if (e.path.endsWith(QStringLiteral(".env"))) ++v.sum.queued;
    }
}

// Each folder's uidlist must name every message of the folder, with distinct UIDs.
void verifyUidLists(Verification& v) {
    for (auto it = v.messagesByFolder.cbegin(); it != v.messagesByFolder.cend(); ++it) {
        ++v.sum.folders;
        if (!v.uidlists.contains(it.key())) {
            v.sum.problems << QStringLiteral("%1: %2 message(s) but no %3")
                                  .arg(it.key())
                                  .arg(it->size())
                                  .arg(QLatin1String(store::MaildirFolder::kUidListName));
            continue;
        }
        auto list = store::MaildirFolder::readUidListFile(v.dir + QLatin1Char('/') + it.key() + QLatin1Char('/') +
                                                          QLatin1String(store::MaildirFolder::kUidListName));
        if (!list || list->uidValidity == 0) {
            v.sum.problems << QStringLiteral("%1: unreadable uidlist%2")
                                  .arg(it.key(), list ? QString() : QStringLiteral(" (") + list.errorMessage() + u')');
            continue;
        }
        QHash<quint32, QString> byUid;
        for (const QString& base : *it) {
            const quint32 uid = list->uidByBase.value(base);
            if (uid == 0)
                v.sum.problems << QStringLiteral("%1: message %2 has no UID in the uidlist").arg(it.key(), base);
            else if (byUid.contains(uid))
                v.sum.problems << QStringLiteral("%1: UID %2 given to two messages").arg(it.key()).arg(uid);
            else if (uid >= list->nextUid)
                v.sum.problems << QStringLiteral("%1: UID %2 is not below the next UID %3")
                                      .arg(it.key())
                                      .arg(uid)
                                      .arg(list->nextUid);
            else
                byUid.insert(uid, base);
        }
    }
}

// Files nobody listed (added or renamed after the backup), below the folder `dfd`.
void findUnlisted(Verification& v, int dfd, const QString& rel, int depth) {
    if (depth > kMaxTreeDepth) return;
    const int copy = ::openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = copy >= 0 ? ::fdopendir(copy) : nullptr;
    if (!d) return;
    while (dirent* de = ::readdir(d)) {
        if (std::strcmp(de->d_name, ".") == 0 || std::strcmp(de->d_name, "..") == 0) continue;
        const QString name = QFile::decodeName(de->d_name);
        const QString r = rel.isEmpty() ? name : rel + QLatin1Char('/') + name;
        if (rel.isEmpty() && name == QLatin1String(kManifestName)) continue;
        if (!v.listed.contains(r)) v.sum.problems << QStringLiteral("%1: not in the manifest").arg(r);
        struct stat st {};
        if (::fstatat(::dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
            v.listed.contains(r)) {
            const int sub = ::openat(::dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                findUnlisted(v, sub, r, depth + 1);
                ::close(sub);
            }
        }
    }
    ::closedir(d);
}

}  // namespace

Result<Summary> verifySnapshot(const QString& dirArg, int progressFd) {
    const QString dir = QFileInfo(dirArg).absoluteFilePath();
    bool noManifest = false;
    auto snap = openSnapshot(dir, &noManifest);
    if (!snap && noManifest)
        return Result<Summary>::fail(
            QStringLiteral("%1: no manifest (%2): not a backup, or an unfinished one").arg(dir, snap.errorMessage()));
    if (!snap) return snap.error();
    const int rootFd = snap->root.fd();
    const Manifest* manifest = &snap->manifest;
    Verification v;
    v.rootFd = rootFd;
    v.dir = dir;
    if (!manifest->complete)
        v.sum.problems << QStringLiteral("the manifest has no end line: the backup did not finish");
    Progress progress(progressFd, QStringLiteral("verify"));
    for (const ManifestEntry& e : std::as_const(manifest->entries)) {
        v.listed.insert(e.path);
        if (!e.isDir) {
            verifyFile(v, e, progress);
            continue;
        }
        const int fd = openBelow(rootFd, e.path, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
            v.sum.problems << QStringLiteral("%1: folder missing (%2)").arg(e.path, errnoText(errno));
        else
            ::close(fd);
    }
    verifyUidLists(v);
    findUnlisted(v, rootFd, QString(), 0);
    if (manifest->complete && (manifest->files != v.files || manifest->bytes != v.bytes))
        v.sum.problems << QStringLiteral("the end line counts %1 files / %2 bytes, the records %3 / %4")
                              .arg(manifest->files)
                              .arg(manifest->bytes)
                              .arg(v.files)
                              .arg(v.bytes);
    v.sum.files = v.files;
    v.sum.bytes = v.bytes;
    progress.done();
    return v.sum;
}

// ================================================================ restore

namespace {

QString stamp() {
    return QDateTime::currentDateTimeUtc().toString(QStringLiteral("yyyyMMdd-HHmmss"));
}

// Writes the entries below `prefix` ("config" or "data") of the snapshot into the
// folder `targetFd` (a folder only we can write), verifying each file's hash.
Status writeEntries(int rootFd, const Manifest& m, const QString& prefix, const QString& targetPath, int daemonUid,
                    int daemonGid, bool chownNow, Progress& progress, Summary& sum) {
    for (const ManifestEntry& e : m.entries) {
        if (e.path != prefix && !e.path.startsWith(prefix + QLatin1Char('/'))) continue;
        const QString rel = e.path.mid(prefix.size() + 1);
        const QString target = rel.isEmpty() ? targetPath : targetPath + QLatin1Char('/') + rel;
        if (e.isDir) {
            if (!rel.isEmpty() && ::mkdir(enc(target).constData(), 0700) != 0 && errno != EEXIST)
                return errnoError(target, errno);
            ::chmod(enc(target).constData(), e.mode & 07777);
            if (chownNow)
                (void)!::lchown(enc(target).constData(), uid_t(resolveToken(e.owner, daemonUid)),
                                gid_t(resolveToken(e.group, daemonGid)));
            continue;
        }
        struct stat st {};
        auto in = openSnapshotFile(rootFd, e.path, &st);
        if (!in) return in.error();
        const int out = ::open(enc(target).constData(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0) return errnoError(target, errno);
        QByteArray hex;
        qint64 size = 0;
        Status s = copyHashing(in->fd(), out, &hex, &size, e.path);
        if (s && hex != e.sha256)
            s = Status::fail(
                QStringLiteral("%1: content differs from the manifest (SHA-256); run posternctl backup verify")
                    .arg(e.path),
                EIO);
        if (s) {
            ::fchmod(out, e.mode & 07777);
            if (chownNow)
                (void)!::fchown(out, uid_t(resolveToken(e.owner, daemonUid)), gid_t(resolveToken(e.group, daemonGid)));
            setTimes(out, e.mtimeNs);
        }
        ::close(out);
        if (!s) return s;
        ++sum.files;
        sum.bytes += size;
        if (isMessagePath(e.path)) {
            ++sum.messages;
            sum.messageBytes += size;
        }
        if (e.path.startsWith(QStringLiteral("data/queue/")) && e.path.endsWith(QStringLiteral(".env"))) ++sum.queued;
        if (prefix == u"config") ++sum.configFiles;
        progress.add(1, size);
    }
    return {};
}

// The configuration recorded in the snapshot (its system_user and data_dir), with
// --data-dir applied; it names the target's config folder.
Result<Config> snapshotSettings(int rootFd, const RestoreOptions& options) {
    struct stat cst {};
    auto confFile = openSnapshotFile(rootFd, QStringLiteral("config/") + QLatin1String(kConfigFileName), &cst);
    QByteArray confText;
    if (confFile) {
        QFile f;
        if (f.open(confFile->release(), QIODevice::ReadOnly, QFileDevice::AutoCloseHandle))
            confText = f.read(4 * 1024 * 1024);
    }
    const QString configDir = QFileInfo(options.configDir).absoluteFilePath();
    auto parsed = Config::parse(confText, configDir + QLatin1Char('/') + QLatin1String(kConfigFileName), configDir);
    if (!parsed) return parsed.error();
    Config config = *parsed;
    if (!options.dataDir.isEmpty())
        if (auto st = config.set(keys::general::dataDir.str(), QFileInfo(options.dataDir).absoluteFilePath()); !st)
            return st.error();
    return config;
}

// Where and as whom a restore writes, and what it has written so far.
struct RestoreTarget {
    int rootFd = -1;
    const Manifest* manifest = nullptr;
    QString configDir, dataDir;
    UserIds ids;
    bool root = false;
    Progress* progress = nullptr;
    Summary sum;
};

// Refuses a target that is running, or that holds an instance without --force. Sets
// *configInUse.
Status checkTarget(const RestoreTarget& t, bool force, bool* configInUse) {
    // An appliance running on the target would write into what we replace.
    if (QFileInfo::exists(t.configDir + QLatin1Char('/') + QLatin1String(kConfigFileName))) {
        if (auto running = Config::load(t.configDir); running) {
            if (supervisorPid(*running) > 0)
                return Status::fail(QStringLiteral("the appliance is running on %1; stop it first").arg(t.configDir));
        }
    }
    *configInUse = !folderIsEmpty(t.configDir);
    const bool dataInUse = !folderIsEmpty(t.dataDir) && !t.dataDir.startsWith(t.configDir + QLatin1Char('/'));
    if ((*configInUse || dataInUse) && !force)
        return Status::fail(
            QStringLiteral("%1 holds an instance already; restore onto a fresh one, or give --force to move it aside")
                .arg(*configInUse ? t.configDir : t.dataDir),
            EEXIST);
    return {};
}

// Existing folders are moved aside whole, never merged with the backup.
Status moveAside(const RestoreTarget& t, bool configInUse, QStringList* moved) {
    const QString suffix = QStringLiteral(".before-restore-") + stamp();
    if (configInUse) {
        if (::rename(enc(t.configDir).constData(), enc(t.configDir + suffix).constData()) != 0)
            return errnoError(t.configDir, errno);
        *moved << t.configDir + suffix;
    }
    if (!folderIsEmpty(t.dataDir)) {  // (data inside the config folder moved with it)
        if (::rename(enc(t.dataDir).constData(), enc(t.dataDir + suffix).constData()) != 0)
            return errnoError(t.dataDir, errno);
        *moved << t.dataDir + suffix;
    } else {
        ::rmdir(enc(t.dataDir).constData());
    }
    return {};
}

// config/: written by root, owners as recorded; --data-dir saved in the restored settings.
Status restoreConfig(RestoreTarget& t, const RestoreOptions& options) {
    if (auto st = ensureDirectory(QFileInfo(t.configDir).absolutePath(), 0755); !st) return st;
    if (::mkdir(enc(t.configDir).constData(), 0700) != 0 && errno != EEXIST) return errnoError(t.configDir, errno);
    if (auto st = writeEntries(t.rootFd, *t.manifest, QStringLiteral("config"), t.configDir, t.ids.uid, t.ids.gid,
                               t.root, *t.progress, t.sum);
        !st)
        return st;
    if (!options.dataDir.isEmpty()) {
        auto saved = Config::load(t.configDir);
        if (!saved) return saved.error();
        if (auto st = saved->set(keys::general::dataDir.str(), QFileInfo(options.dataDir).absoluteFilePath()); !st)
            return st;
        if (auto st = saved->save(); !st) return st;
    }
    return {};
}

// data/: into a new root-only folder beside data_dir, then handed over and renamed into place.
Status restoreData(RestoreTarget& t) {
    if (auto st = ensureDirectory(QFileInfo(t.dataDir).absolutePath(), 0755); !st) return st;
    const QString building = t.dataDir + QStringLiteral(".restoring");
    if (auto st = removeTree(building); !st) return st;
    if (::mkdir(enc(building).constData(), 0700) != 0) return errnoError(building, errno);
    if (auto st = writeEntries(t.rootFd, *t.manifest, QStringLiteral("data"), building, t.ids.uid, t.ids.gid, false,
                               *t.progress, t.sum);
        !st)
        return st;
    if (t.root) {
        auto sd = SafeDir::open(building);
        if (!sd) return sd.error();
        QStringList skipped;
        if (auto st = chownTree(*sd, uid_t(t.ids.uid), gid_t(t.ids.gid), &skipped); !st) return st;
    }
    const int bfd = ::open(enc(building).constData(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bfd >= 0) {
        ::syncfs(bfd);
        ::close(bfd);
    }
    if (::rename(enc(building).constData(), enc(t.dataDir).constData()) != 0) return errnoError(t.dataDir, errno);
    (void)syncDirectory(QFileInfo(t.dataDir).absolutePath());
    return {};
}

}  // namespace

Result<Summary> restoreSnapshot(const QString& dirArg, const RestoreOptions& options, int progressFd,
                                QStringList* moved) {
    const QString dir = QFileInfo(dirArg).absoluteFilePath();
    bool noManifest = false;
    auto snap = openSnapshot(dir, &noManifest);
    if (!snap && noManifest)
        return Result<Summary>::fail(QStringLiteral("%1: no manifest: not a backup, or an unfinished one").arg(dir));
    if (!snap) return snap.error();
    const int rootFd = snap->root.fd();
    const Manifest* manifest = &snap->manifest;
    if (!manifest->complete)
        return Result<Summary>::fail(QStringLiteral("the backup did not finish (no end line in its manifest)"));
    auto config = snapshotSettings(rootFd, options);
    if (!config) return config.error();
    RestoreTarget t;
    t.rootFd = rootFd;
    t.manifest = manifest;
    t.configDir = QFileInfo(options.configDir).absoluteFilePath();
    t.dataDir = config->dataDir();
    t.root = ::geteuid() == 0;
    auto ids = daemonIds(*config);
    if (!ids)
        return Result<Summary>::fail(
            QStringLiteral("%1 (create that user first, or restore on a machine that has it)").arg(ids.errorMessage()));
    t.ids = *ids;
    bool configInUse = false;
    if (auto st = checkTarget(t, options.force, &configInUse); !st) return st.error();
    Progress progress(progressFd, QStringLiteral("restore"));
    t.progress = &progress;
    if (auto st = moveAside(t, configInUse, moved); !st) return st.error();
    if (auto st = restoreConfig(t, options); !st) return st.error();
    if (auto st = restoreData(t); !st) return st.error();
    progress.done();
    return t.sum;
}

}  // namespace postern::ctl::backup
