// safe_path.cpp — see safe_path.h.
#include "safe_path.h"

#include "posix_io.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace postern {

namespace {

QString userName(uid_t uid) {
    struct passwd pw {};
    struct passwd* found = nullptr;
    char buf[4096];
    if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found) return QString::fromLocal8Bit(pw.pw_name);
    return QStringLiteral("uid %1").arg(uid);
}

QString modeText(mode_t m) {
    return QStringLiteral("%1").arg(m & 07777, 4, 8, QLatin1Char('0'));
}

QString describeFolder(const QString& path, const struct stat& st) {
    return QStringLiteral("%1 (owner %2, mode %3)").arg(path, userName(st.st_uid), modeText(st.st_mode));
}

QString joinPath(const QString& dir, const QString& name) {
    if (name == u"..") return QDir::cleanPath(dir + QStringLiteral("/.."));
    return dir == u"/" ? u'/' + name : dir + u'/' + name;
}

// A link found in `folder` may be followed (safe_path.h, "Trust rule").
bool linkFollowable(const struct stat& folder, const struct stat& link) {
    if (isTrusted(folder)) return true;
    const bool ownerOk = folder.st_uid == 0 || folder.st_uid == ::geteuid();
    const bool linkOk = link.st_uid == 0 || link.st_uid == ::geteuid();
    return ownerOk && (folder.st_mode & S_ISVTX) && linkOk;
}

Error notFollowed(const QString& link, const QString& folder, const struct stat& folderSt) {
    return makeError(
        QStringLiteral("%1 is a symbolic link in %2, a folder other users can write; refusing to follow it")
            .arg(link, describeFolder(folder, folderSt)),
        ELOOP);
}

bool validName(const QString& name) {
    return !name.isEmpty() && name != u"." && name != u".." && !name.contains(u'/') && !name.contains(QChar(0));
}

Result<QByteArray> encodedName(const QString& name) {
    if (!validName(name)) return Result<QByteArray>::fail(QStringLiteral("'%1' is not a file name").arg(name), EINVAL);
    QByteArray n = QFile::encodeName(name);
    if (n.size() > SafeDir::kMaxNameBytes)
        return Result<QByteArray>::fail(
            QStringLiteral("'%1' is longer than %2 bytes").arg(name).arg(SafeDir::kMaxNameBytes), ENAMETOOLONG);
    return n;
}

struct WalkState {
    FileHandle fd;
    struct stat st {};
    QString shown;  // the path walked so far, for messages
};

Result<WalkState> openRoot() {
    WalkState w;
    w.fd = FileHandle(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!w.fd.valid() || ::fstat(w.fd.fd(), &w.st) != 0) {
        const int err = errno;
        return Result<WalkState>::fail(QStringLiteral("/: cannot open: %1").arg(errnoText(err)), err);
    }
    w.shown = QStringLiteral("/");
    return w;
}

// Walks `todo` (components, front first) from `w`; links are expanded in place.
Result<WalkState> walk(WalkState w, QStringList todo, mode_t createMode, int* links) {
    int creations = 0;
    while (!todo.isEmpty()) {
        const QString name = todo.takeFirst();
        if (name.isEmpty() || name == u".") continue;
        const QByteArray n = QFile::encodeName(name);
        if (n.size() > SafeDir::kMaxNameBytes)
            return Result<WalkState>::fail(QStringLiteral("%1: a name is longer than %2 bytes")
                                               .arg(joinPath(w.shown, name))
                                               .arg(SafeDir::kMaxNameBytes),
                                           ENAMETOOLONG);
        const QString here = joinPath(w.shown, name);
        struct stat st {};
        if (::fstatat(w.fd.fd(), n.constData(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            const int err = errno;
            if (err == ENOENT && createMode != 0 && name != u".." && ++creations <= 16) {
                if (::mkdirat(w.fd.fd(), n.constData(), createMode) != 0 && errno != EEXIST) {
                    const int e = errno;
                    return Result<WalkState>::fail(
                        QStringLiteral("%1: cannot create folder: %2").arg(here, errnoText(e)), e);
                }
                todo.prepend(name);
                continue;
            }
            return Result<WalkState>::fail(QStringLiteral("%1: %2").arg(here, errnoText(err)), err);
        }
        if (S_ISLNK(st.st_mode)) {
            if (!linkFollowable(w.st, st)) return notFollowed(here, w.shown, w.st);
            if (++*links > SafeDir::kMaxSymlinks)
                return Result<WalkState>::fail(
                    QStringLiteral("%1: more than %2 symbolic links").arg(here).arg(SafeDir::kMaxSymlinks), ELOOP);
            QByteArray target(4096, '\0');
            const ssize_t len = ::readlinkat(w.fd.fd(), n.constData(), target.data(), size_t(target.size()));
            if (len < 0 || len >= target.size()) {
                const int err = len < 0 ? errno : ENAMETOOLONG;
                return Result<WalkState>::fail(QStringLiteral("%1: cannot read the link: %2").arg(here, errnoText(err)),
                                               err);
            }
            target.truncate(len);
            const QString t = QFile::decodeName(target);
            if (t.startsWith(u'/')) {
                auto root = openRoot();
                if (!root) return root;
                w = std::move(*root);
            }
            todo = t.split(u'/', Qt::SkipEmptyParts) + todo;
            continue;
        }
        if (!S_ISDIR(st.st_mode))
            return Result<WalkState>::fail(QStringLiteral("%1 exists and is not a folder").arg(here), ENOTDIR);
        FileHandle next(::openat(w.fd.fd(), n.constData(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        struct stat nst {};
        if (!next.valid() || ::fstat(next.fd(), &nst) != 0) {
            const int err = errno;
            if (err == ELOOP || err == ENOTDIR)  // replaced by a link or a file since the fstatat
                return Result<WalkState>::fail(
                    QStringLiteral("%1 changed while it was opened (now not a folder)").arg(here), ELOOP);
            return Result<WalkState>::fail(QStringLiteral("%1: cannot open: %2").arg(here, errnoText(err)), err);
        }
        w.fd = std::move(next);
        w.st = nst;
        w.shown = here;
    }
    return w;
}

}  // namespace

FileHandle::~FileHandle() {
    if (m_fd >= 0) ::close(m_fd);
}

FileHandle& FileHandle::operator=(FileHandle&& other) noexcept {
    if (this != &other) {
        if (m_fd >= 0) ::close(m_fd);
        m_fd = other.m_fd;
        other.m_fd = -1;
    }
    return *this;
}

bool isTrusted(const struct stat& folder) {
    if (folder.st_uid != 0 && folder.st_uid != ::geteuid()) return false;
    return (folder.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

Result<SafeDir> SafeDir::open(const QString& path, mode_t createMode) {
    if (!path.startsWith(u'/'))
        return Result<SafeDir>::fail(QStringLiteral("%1: not an absolute path").arg(path), EINVAL);
    auto root = openRoot();
    if (!root) return root.error();
    int links = 0;
    // ".." in the request is resolved by name first, as the configuration does (only a
    // trusted link's target can bring one into the walk).
    const QString clean = QDir::cleanPath(path);
    auto w = walk(std::move(*root), clean.split(u'/', Qt::SkipEmptyParts), createMode, &links);
    if (!w) return w.error();
    // The walked O_PATH descriptor becomes a readable one (fsync, readdir); without
    // read permission on the folder the O_PATH descriptor is kept.
    FileHandle readable(::openat(w->fd.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    return SafeDir(readable.valid() ? std::move(readable) : std::move(w->fd), clean, isTrusted(w->st));
}

Result<SafeDir> SafeDir::subdir(const QString& name, mode_t createMode) const {
    auto n = encodedName(name);
    if (!n) return n.error();
    WalkState w;
    w.fd = FileHandle(::fcntl(fd(), F_DUPFD_CLOEXEC, 0));
    if (!w.fd.valid() || ::fstat(w.fd.fd(), &w.st) != 0) {
        const int err = errno;
        return Result<SafeDir>::fail(QStringLiteral("%1: %2").arg(m_path, errnoText(err)), err);
    }
    w.shown = m_path;
    int links = 0;
    auto done = walk(std::move(w), {name}, createMode, &links);
    if (!done) return done.error();
    FileHandle readable(::openat(done->fd.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    return SafeDir(readable.valid() ? std::move(readable) : std::move(done->fd), filePath(name), isTrusted(done->st));
}

Result<struct stat> SafeDir::stat() const {
    struct stat st {};
    if (::fstat(fd(), &st) != 0) {
        const int err = errno;
        return Result<struct stat>::fail(QStringLiteral("%1: %2").arg(m_path, errnoText(err)), err);
    }
    return st;
}

Result<FileHandle> SafeDir::openFile(const QString& name, int flags, mode_t mode) const {
    auto n = encodedName(name);
    if (!n) return n.error();
    const QString here = filePath(name);
    auto dirSt = stat();
    if (!dirSt) return dirSt.error();
    // O_TRUNC only after the checks: truncating first would already harm a hard-linked file.
    const int openFlags = (flags & ~O_TRUNC) | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    FileHandle h(::openat(fd(), n->constData(), openFlags, mode));
    if (!h.valid()) {
        const int err = errno;
        struct stat lst {};
        if (err == ELOOP && ::fstatat(fd(), n->constData(), &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode)) {
            if (!linkFollowable(*dirSt, lst)) return notFollowed(here, m_path, *dirSt);
            // Follow it: walk to the target's folder under the same rule, then open the leaf there.
            QByteArray target(4096, '\0');
            const ssize_t len = ::readlinkat(fd(), n->constData(), target.data(), size_t(target.size()));
            if (len <= 0 || len >= target.size())
                return Result<FileHandle>::fail(QStringLiteral("%1: cannot read the link").arg(here), ELOOP);
            target.truncate(len);
            const QString t = QFile::decodeName(target);
            QStringList parts = t.split(u'/', Qt::SkipEmptyParts);
            if (parts.isEmpty())
                return Result<FileHandle>::fail(QStringLiteral("%1: the link points to a folder").arg(here), EISDIR);
            const QString leaf = parts.takeLast();
            WalkState start;
            if (t.startsWith(u'/')) {
                auto root = openRoot();
                if (!root) return root.error();
                start = std::move(*root);
            } else {
                start.fd = FileHandle(::fcntl(fd(), F_DUPFD_CLOEXEC, 0));
                start.st = *dirSt;
                start.shown = m_path;
            }
            int links = 1;
            auto w = walk(std::move(start), parts, 0, &links);
            if (!w) return w.error();
            FileHandle readable(::openat(w->fd.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            const SafeDir parent(readable.valid() ? std::move(readable) : std::move(w->fd), w->shown, isTrusted(w->st));
            if (leaf == u"..")
                return Result<FileHandle>::fail(QStringLiteral("%1: the link points to a folder").arg(here), EISDIR);
            return parent.openFile(leaf, flags & ~O_CREAT, mode);
        }
        if (err == ENXIO)  // O_WRONLY on a FIFO nobody reads
            return Result<FileHandle>::fail(QStringLiteral("%1 is not a regular file (a FIFO); refusing it").arg(here),
                                            ENXIO);
        return Result<FileHandle>::fail(QStringLiteral("%1: cannot open: %2").arg(here, errnoText(err)), err);
    }
    struct stat st {};
    if (::fstat(h.fd(), &st) != 0) {
        const int err = errno;
        return Result<FileHandle>::fail(QStringLiteral("%1: %2").arg(here, errnoText(err)), err);
    }
    if (!S_ISREG(st.st_mode))
        return Result<FileHandle>::fail(QStringLiteral("%1 is not a regular file; refusing it").arg(here), EINVAL);
    if (!m_trusted) {
        if (st.st_nlink != 1)
            return Result<FileHandle>::fail(
                QStringLiteral("%1 has %2 hard links in a folder other users can write; refusing it")
                    .arg(here)
                    .arg(st.st_nlink),
                EMLINK);
        if (st.st_uid != 0 && st.st_uid != ::geteuid() && st.st_uid != dirSt->st_uid)
            return Result<FileHandle>::fail(
                QStringLiteral("%1 belongs to %2, not to root or the folder's owner; refusing it")
                    .arg(here, userName(st.st_uid)),
                EPERM);
    }
    const int fl = ::fcntl(h.fd(), F_GETFL);
    if (fl >= 0) ::fcntl(h.fd(), F_SETFL, fl & ~O_NONBLOCK);
    if ((flags & O_TRUNC) && ::ftruncate(h.fd(), 0) != 0) {
        const int err = errno;
        return Result<FileHandle>::fail(QStringLiteral("%1: cannot truncate: %2").arg(here, errnoText(err)), err);
    }
    return h;
}

Status SafeDir::chownTo(uid_t uid, gid_t gid) const {
    if (::fchownat(fd(), "", uid, gid, AT_EMPTY_PATH) != 0) {
        const int err = errno;
        return Status::fail(QStringLiteral("%1: cannot give to %2: %3").arg(m_path, userName(uid), errnoText(err)),
                            err);
    }
    return {};
}

Status SafeDir::chownFile(const QString& name, uid_t uid, gid_t gid) const {
    auto n = encodedName(name);
    if (!n) return n.error();
    const QString here = filePath(name);
    FileHandle h(::openat(fd(), n->constData(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!h.valid()) {
        const int err = errno;
        if (err == ENOENT) return {};
        return Status::fail(QStringLiteral("%1: cannot open: %2").arg(here, errnoText(err)), err);
    }
    struct stat st {};
    if (::fstat(h.fd(), &st) != 0) {
        const int err = errno;
        return Status::fail(QStringLiteral("%1: %2").arg(here, errnoText(err)), err);
    }
    if (S_ISLNK(st.st_mode))
        return Status::fail(QStringLiteral("%1 is a symbolic link; refusing to hand it over (remove it)").arg(here),
                            ELOOP);
    if (!S_ISREG(st.st_mode))
        return Status::fail(QStringLiteral("%1 is not a regular file; refusing to hand it over (remove it)").arg(here),
                            EINVAL);
    if (st.st_nlink != 1)
        return Status::fail(
            QStringLiteral("%1 has %2 hard links; refusing to hand it over (remove it)").arg(here).arg(st.st_nlink),
            EMLINK);
    if (st.st_uid != 0 && st.st_uid != uid && st.st_uid != ::geteuid())
        return Status::fail(QStringLiteral("%1 belongs to %2; refusing to hand it over").arg(here, userName(st.st_uid)),
                            EPERM);
    if (st.st_uid == uid && st.st_gid == gid) return {};
    if (::fchownat(h.fd(), "", uid, gid, AT_EMPTY_PATH) != 0) {
        const int err = errno;
        return Status::fail(QStringLiteral("%1: cannot give to %2: %3").arg(here, userName(uid), errnoText(err)), err);
    }
    return {};
}

Status SafeDir::remove(const QString& name) const {
    auto n = encodedName(name);
    if (!n) return n.error();
    if (::unlinkat(fd(), n->constData(), 0) != 0 && errno != ENOENT) {
        const int err = errno;
        return Status::fail(QStringLiteral("%1: cannot remove: %2").arg(filePath(name), errnoText(err)), err);
    }
    return {};
}

Status SafeDir::rename(const QString& from, const QString& to) const {
    auto a = encodedName(from);
    if (!a) return a.error();
    auto b = encodedName(to);
    if (!b) return b.error();
    if (::renameat(fd(), a->constData(), fd(), b->constData()) != 0) {
        const int err = errno;
        return Status::fail(QStringLiteral("%1: rename failed: %2").arg(filePath(to), errnoText(err)), err);
    }
    return {};
}

Status SafeDir::sync() const {
    if (::fsync(fd()) != 0 && errno != EINVAL) {  // some file systems cannot sync folders
        const int err = errno;
        return Status::fail(QStringLiteral("%1: fsync failed: %2").arg(m_path, errnoText(err)), err);
    }
    return {};
}

Result<QStringList> SafeDir::entries() const {
    const int copy = ::openat(fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = copy >= 0 ? ::fdopendir(copy) : nullptr;
    if (!d) {
        const int err = errno;
        if (copy >= 0) ::close(copy);
        return Result<QStringList>::fail(QStringLiteral("%1: cannot list: %2").arg(m_path, errnoText(err)), err);
    }
    QStringList out;
    while (struct dirent* e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        out << QFile::decodeName(e->d_name);
    }
    ::closedir(d);
    return out;
}

namespace {
Status chownTreeAt(int dirFd, const QString& path, uid_t uid, gid_t gid, QStringList* skipped, int depth) {
    if (depth > SafeDir::kMaxTreeDepth)
        return Status::fail(QStringLiteral("%1: more than %2 folder levels").arg(path).arg(SafeDir::kMaxTreeDepth),
                            ELOOP);
    if (::fchownat(dirFd, "", uid, gid, AT_EMPTY_PATH) != 0) {
        const int err = errno;
        return Status::fail(QStringLiteral("%1: cannot give away: %2").arg(path, errnoText(err)), err);
    }
    const int copy = ::openat(dirFd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = copy >= 0 ? ::fdopendir(copy) : nullptr;
    if (!d) {
        const int err = errno;
        if (copy >= 0) ::close(copy);
        return Status::fail(QStringLiteral("%1: cannot list: %2").arg(path, errnoText(err)), err);
    }
    Status result;
    while (struct dirent* e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        const QString here = joinPath(path, QFile::decodeName(e->d_name));
        // O_PATH|O_NOFOLLOW: the entry itself (a link stays a link), whatever it is.
        FileHandle h(::openat(dirFd, e->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
        struct stat st {};
        if (!h.valid() || ::fstat(h.fd(), &st) != 0) {
            if (errno == ENOENT) continue;  // gone meanwhile
            const int err = errno;
            result = Status::fail(QStringLiteral("%1: %2").arg(here, errnoText(err)), err);
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            FileHandle sub(::openat(h.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!sub.valid()) {
                const int err = errno;
                result = Status::fail(QStringLiteral("%1: cannot open: %2").arg(here, errnoText(err)), err);
                break;
            }
            if (auto st2 = chownTreeAt(sub.fd(), here, uid, gid, skipped, depth + 1); !st2) {
                result = st2;
                break;
            }
            continue;
        }
        if (!S_ISLNK(st.st_mode) && st.st_nlink > 1) {
            // The same inode is also elsewhere, perhaps outside the tree: never give it away.
            if (skipped && (st.st_uid != uid || st.st_gid != gid)) skipped->append(here);
            continue;
        }
        if (::fchownat(h.fd(), "", uid, gid, AT_EMPTY_PATH) != 0) {
            const int err = errno;
            result = Status::fail(QStringLiteral("%1: cannot give away: %2").arg(here, errnoText(err)), err);
            break;
        }
    }
    ::closedir(d);
    return result;
}
}  // namespace

Status chownTree(const SafeDir& dir, uid_t uid, gid_t gid, QStringList* skipped) {
    return chownTreeAt(dir.fd(), dir.path(), uid, gid, skipped, 0);
}

Result<QByteArray> readFileBelow(const QString& path, qint64 maxBytes) {
    const QFileInfo info(path);
    auto dir = SafeDir::open(info.absolutePath());
    if (!dir) return dir.error();
    auto h = dir->openFile(info.fileName(), O_RDONLY);
    if (!h) return h.error();
    return readAll(h->fd(), maxBytes, path);
}

}  // namespace postern
