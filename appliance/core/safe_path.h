// safe_path.h — folders and files below folders other users can write, reached
// without following links those users planted.
//
// Why: root (postern-appliance, posternctl, postern-wizard, postern-firewall,
// and every daemon until it drops privileges) works on paths inside data_dir,
// which belongs to the daemon user. A plain open(), chown(), mkdir(), rename()
// or unlink() there follows any symbolic link the daemon user put in place of
// a folder or a file, so root would write, read, create, remove or hand over a
// file of the daemon user's choosing. Everything here works on descriptors.
//
// Trust rule. A folder is *trusted* when it is owned by root or by this
// process's user and has no group or other write bit: nobody else can change
// its entries. A symbolic link is followed only inside a trusted folder, or
// inside a sticky folder of root's or ours (/tmp) when root or we own the link
// (only an entry's owner can replace it there). Below any other folder — for
// root: data_dir and everything in it — a symbolic link is never followed.
// So /var/run -> /run and a TLS key linked into /etc/letsencrypt keep working,
// while `data/log -> /etc` fails with ELOOP and a message naming the link.
//
// Interface (Result/Status; messages name the path and what was found):
//   SafeDir::open(path, createMode)   walks the absolute `path` from "/" one
//       component at a time with openat(O_DIRECTORY|O_NOFOLLOW) under the rule
//       above; with createMode != 0 missing folders are made (mkdirat) with
//       that mode (the umask still applies, as for mkdir).
//   dir.subdir(name, createMode)      one more component, same rule.
//   dir.openFile(name, flags, mode)   openat(O_NOFOLLOW|O_NONBLOCK|O_NOCTTY)
//       (a link followed only under the rule), then fstat: it must be a regular
//       file (never a FIFO, socket or device: opening those has effects and a
//       FIFO blocks). In an untrusted folder it must also have exactly one link
//       (no hard link to another file of root's) and be owned by root, by us or
//       by the folder's owner. O_NONBLOCK is cleared again before returning.
//   dir.chownTo(uid, gid)             fchown of the folder itself.
//   dir.chownFile(name, uid, gid)     hand over one file: opened O_PATH|O_NOFOLLOW,
//       must be a regular file with one link owned by root or the new owner, then
//       fchownat(AT_EMPTY_PATH) on that very inode. A missing file is not an error.
//   dir.remove(name) / dir.rename(from, to) / dir.sync() / dir.entries() / dir.stat()
//   chownTree(dir, uid, gid, &skipped)  recursive hand-over that never leaves
//       the tree: every entry is opened O_PATH|O_NOFOLLOW and chowned through
//       that descriptor (links themselves, never their targets); files with
//       more than one link are left alone (listed in `skipped` unless they
//       already belong to uid:gid).
//   readFileBelow(path, maxBytes)     a whole regular file reached under the rule.
//   isTrusted(st)                     the rule for one folder's stat.
//
// atomic_file.h routes writeFileAtomic, ensureDirectory, readFile, removeFile
// and FileLock through this when the process runs as root, so every root code
// path that uses them is covered; code that chowns or opens by hand (process.cpp,
// log.cpp, the wizard) calls it directly.
//
// Limits: kMaxSymlinks (40, the kernel's own limit) links per walk;
// kMaxTreeDepth (64) folder levels for chownTree; kMaxNameBytes (255) per component.
#pragma once

#include "result.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <QByteArray>
#include <QString>
#include <QStringList>

namespace postern {

// An owned file descriptor (closed on destruction), movable.
class FileHandle {
public:
    FileHandle() = default;
    explicit FileHandle(int fd) : m_fd(fd) {}
    ~FileHandle();
    FileHandle(FileHandle&& other) noexcept : m_fd(other.m_fd) { other.m_fd = -1; }
    FileHandle& operator=(FileHandle&& other) noexcept;
    FileHandle(const FileHandle&) = delete;
    FileHandle& operator=(const FileHandle&) = delete;
    int fd() const { return m_fd; }
    int release() {
        const int fd = m_fd;
        m_fd = -1;
        return fd;
    }
    bool valid() const { return m_fd >= 0; }

private:
    int m_fd = -1;
};

class SafeDir {
public:
    static constexpr int kMaxSymlinks = 40;
    static constexpr int kMaxTreeDepth = 64;
    static constexpr int kMaxNameBytes = 255;

    static Result<SafeDir> open(const QString& path, mode_t createMode = 0);
    Result<SafeDir> subdir(const QString& name, mode_t createMode = 0) const;

    Result<FileHandle> openFile(const QString& name, int flags, mode_t mode = 0600) const;
    Status chownTo(uid_t uid, gid_t gid) const;
    Status chownFile(const QString& name, uid_t uid, gid_t gid) const;
    Status remove(const QString& name) const;  // a missing entry is not an error
    Status rename(const QString& from, const QString& to) const;
    Status sync() const;
    Result<QStringList> entries() const;  // names, without "." and ".."
    Result<struct stat> stat() const;

    int fd() const { return m_fd.fd(); }
    const QString& path() const { return m_path; }
    QString filePath(const QString& name) const { return m_path == u"/" ? u'/' + name : m_path + u'/' + name; }
    bool trusted() const { return m_trusted; }

private:
    SafeDir(FileHandle fd, QString path, bool trusted)
        : m_fd(std::move(fd)), m_path(std::move(path)), m_trusted(trusted) {}
    FileHandle m_fd;
    QString m_path;
    bool m_trusted = false;
};

// The trust rule for one folder (see above).
bool isTrusted(const struct stat& folder);

Status chownTree(const SafeDir& dir, uid_t uid, gid_t gid, QStringList* skipped);
Result<QByteArray> readFileBelow(const QString& path, qint64 maxBytes);

}  // namespace postern
