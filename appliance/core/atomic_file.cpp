// atomic_file.cpp — see atomic_file.h.
#include "atomic_file.h"

#include "posix_io.h"
#include "safe_path.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRandomGenerator>
#include <QThread>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace postern {

namespace {
bool runningAsRoot() {
    return ::geteuid() == 0;
}

// A folder's descriptor: as root through the link-safe walk (safe_path.h), else open(2).
struct Folder {
    FileHandle fd;
    bool trusted = true;
};

Result<Folder> openFolder(const QString& dir) {
    Folder f;
    if (runningAsRoot()) {
        auto d = SafeDir::open(dir);
        if (!d) return d.error();
        f.fd = FileHandle(::fcntl(d->fd(), F_DUPFD_CLOEXEC, 0));
        f.trusted = d->trusted();
    } else {
        f.fd = FileHandle(::open(QFile::encodeName(dir).constData(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    }
    if (!f.fd.valid()) {
        const int err = errno;
        return Result<Folder>::fail(QStringLiteral("%1: cannot open folder: %2").arg(dir, errnoText(err)), err);
    }
    return f;
}
}  // namespace

Status syncDirectory(const QString& dir) {
    int fd = ::open(QFile::encodeName(dir).constData(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return Status::fail(QStringLiteral("%1: cannot open folder: %2").arg(dir, errnoText(err)), err);
    }
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0 && err != EINVAL)  // some file systems cannot sync folders; nothing more to do there
        return Status::fail(QStringLiteral("%1: fsync failed: %2").arg(dir, errnoText(err)), err);
    return {};
}

Status ensureDirectory(const QString& dir, mode_t mode) {
    if (runningAsRoot()) {
        auto d = SafeDir::open(QDir(dir).absolutePath(), mode);
        return d ? Status() : Status(d.error());
    }
    QFileInfo info(dir);
    if (info.isDir()) return {};
    if (info.exists()) return Status::fail(QStringLiteral("%1 exists and is not a folder").arg(dir));
    QString parent = info.absolutePath();
    if (parent != info.absoluteFilePath()) {
        if (auto st = ensureDirectory(parent, mode); !st) return st;
    }
    if (::mkdir(QFile::encodeName(dir).constData(), mode) != 0 && errno != EEXIST) {
        int err = errno;
        return Status::fail(QStringLiteral("%1: cannot create folder: %2").arg(dir, errnoText(err)), err);
    }
    return {};
}

Result<QByteArray> readFile(const QString& path, qint64 maxBytes) {
    if (runningAsRoot()) return readFileBelow(QFileInfo(path).absoluteFilePath(), maxBytes);
    int fd = ::open(QFile::encodeName(path).constData(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return Result<QByteArray>::fail(QStringLiteral("%1: cannot open: %2").arg(path, errnoText(err)), err);
    }
    auto out = readAll(fd, maxBytes, path);
    ::close(fd);
    return out;
}

Status writeFileAtomic(const QString& path, const QByteArray& content, mode_t mode) {
    QFileInfo info(path);
    const QString dir = info.absolutePath();
    const QByteArray name = QFile::encodeName(info.fileName());
    // Everything below happens relative to the folder's descriptor, so a folder
    // replaced by a link meanwhile cannot redirect the rename.
    auto folder = openFolder(dir);
    if (!folder) return folder.error();
    const int dirFd = folder->fd.fd();
    QByteArray tmpName;
    QString tmp;
    int fd = -1;
    for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
        tmpName = QFile::encodeName(QStringLiteral(".%1.tmp.%2.%3")
                                        .arg(info.fileName())
                                        .arg(::getpid())
                                        .arg(QRandomGenerator::system()->generate(), 8, 16, QLatin1Char('0')));
        tmp = dir + QLatin1Char('/') + QFile::decodeName(tmpName);
        fd = ::openat(dirFd, tmpName.constData(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0 && errno != EEXIST) {
            int err = errno;
            return Status::fail(QStringLiteral("%1: cannot create temporary file: %2").arg(tmp, errnoText(err)), err);
        }
    }
    if (fd < 0) return Status::fail(QStringLiteral("%1: cannot pick a temporary name").arg(path));
    ::fchmod(fd, mode);  // the umask may have narrowed it; the caller's mode is what was asked for
    // Replacing a file keeps its owner and group (e.g. users is root:postern 0640, so the
    // daemons can read it after dropping root). Only root can do this; others keep theirs.
    // A link is looked through only in a trusted folder (safe_path.h).
    struct stat old {};
    if (runningAsRoot() && ::fstatat(dirFd, name.constData(), &old, folder->trusted ? 0 : AT_SYMLINK_NOFOLLOW) == 0) {
        if (::fchown(fd, old.st_uid, old.st_gid) != 0) { /* best effort: the new file stays ours */
        }
    }
    auto fail = [&](Status st) {
        ::close(fd);
        ::unlinkat(dirFd, tmpName.constData(), 0);
        return st;
    };
    if (auto st = writeAll(fd, content, tmp); !st) return fail(st);
    if (::fsync(fd) != 0) {
        int err = errno;
        return fail(Status::fail(QStringLiteral("%1: fsync failed: %2").arg(tmp, errnoText(err)), err));
    }
    if (::close(fd) != 0) {
        int err = errno;
        ::unlinkat(dirFd, tmpName.constData(), 0);
        return Status::fail(QStringLiteral("%1: close failed: %2").arg(tmp, errnoText(err)), err);
    }
    if (::renameat(dirFd, tmpName.constData(), dirFd, name.constData()) != 0) {
        int err = errno;
        ::unlinkat(dirFd, tmpName.constData(), 0);
        return Status::fail(QStringLiteral("%1: rename failed: %2").arg(path, errnoText(err)), err);
    }
    if (::fsync(dirFd) != 0 && errno != EINVAL) {
        int err = errno;
        return Status::fail(QStringLiteral("%1: fsync failed: %2").arg(dir, errnoText(err)), err);
    }
    return {};
}

Status removeFile(const QString& path) {
    const QFileInfo info(path);
    if (runningAsRoot()) {
        auto d = SafeDir::open(info.absolutePath());
        if (!d) return d.error().code == ENOENT ? Status() : Status(d.error());
        return d->remove(info.fileName());
    }
    if (::unlink(QFile::encodeName(path).constData()) != 0 && errno != ENOENT) {
        int err = errno;
        return Status::fail(QStringLiteral("%1: cannot remove: %2").arg(path, errnoText(err)), err);
    }
    return {};
}

FileStamp FileStamp::of(const QString& path) {
    FileStamp s;
    struct stat st {};
    if (::stat(QFile::encodeName(path).constData(), &st) == 0) {
        s.exists = true;
        s.device = st.st_dev;
        s.inode = st.st_ino;
        s.size = st.st_size;
        s.mtimeNs = qint64(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    }
    return s;
}

FlockGuard::FlockGuard(int fd) : m_fd(fd) {
    if (m_fd >= 0) (void)retryOnEintr([this] { return ::flock(m_fd, LOCK_EX); });
}

FlockGuard::~FlockGuard() {
    if (m_fd >= 0) ::flock(m_fd, LOCK_UN);
}

FileLock::~FileLock() {
    release();
}

FileLock::FileLock(FileLock&& other) noexcept : m_fd(other.m_fd) {
    other.m_fd = -1;
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
    if (this != &other) {
        release();
        m_fd = other.m_fd;
        other.m_fd = -1;
    }
    return *this;
}

void FileLock::release() {
    if (m_fd >= 0) {
        ::flock(m_fd, LOCK_UN);
        ::close(m_fd);
        m_fd = -1;
    }
}

Result<FileLock> FileLock::acquire(const QString& lockPath, Mode mode, int timeoutMs) {
    int fd = -1;
    if (runningAsRoot()) {
        const QFileInfo info(lockPath);
        auto dir = SafeDir::open(info.absolutePath());
        if (!dir) return dir.error();
        auto h = dir->openFile(info.fileName(), O_RDWR | O_CREAT, 0600);
        if (!h) return h.error();
        fd = h->release();
    } else {
        fd = ::open(QFile::encodeName(lockPath).constData(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    }
    if (fd < 0) {
        int err = errno;
        return Result<FileLock>::fail(QStringLiteral("%1: cannot open lock file: %2").arg(lockPath, errnoText(err)),
                                      err);
    }
    const int op = (mode == Mode::Exclusive ? LOCK_EX : LOCK_SH);
    int waitedMs = 0;
    int pauseMs = 1;
    for (;;) {
        if (::flock(fd, op | LOCK_NB) == 0) break;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int err = errno;
            ::close(fd);
            return Result<FileLock>::fail(QStringLiteral("%1: flock failed: %2").arg(lockPath, errnoText(err)), err);
        }
        if (timeoutMs >= 0 && waitedMs >= timeoutMs) {
            ::close(fd);
            return Result<FileLock>::fail(
                QStringLiteral("%1: still locked by another process after %2 ms").arg(lockPath).arg(timeoutMs),
                EWOULDBLOCK);
        }
        QThread::msleep(pauseMs);
        waitedMs += pauseMs;
        pauseMs = std::min(pauseMs * 2, 50);
    }
    FileLock lock;
    lock.m_fd = fd;
    return lock;
}

}  // namespace postern
