// atomic_file.h — durable file writes and advisory locks.
//
// Interface:
//   writeFileAtomic(path, bytes, mode)  temp file in the same folder, write,
//       fsync, rename over `path`, fsync the folder. Readers see the old or the
//       new content, never a mix; after it returns OK the content survives a
//       crash or power loss. When root replaces an existing file, the new file
//       keeps the old one's owner and group.
//   syncDirectory(dir)   fsync a folder (after creating/renaming entries in it).
//   ensureDirectory(dir, mode)  create `dir` and missing parents.
//   readFile(path, max)  a whole file, refusing more than `max` bytes.
//   removeFile(path)     unlink; a missing file is not an error.
//   FileLock             flock(2) on a lock file; exclusive or shared; released
//                        on destruction or process death (never stale).
//   FileStamp            (device, inode, size, mtime) of a file, to notice that
//                        somebody else replaced it between read and write.
// All return Result/Status; errno text is in the message.
//
// Security: temp names are created with O_EXCL|O_NOFOLLOW, mode given by the
// caller (secrets use 0600/0640); the temp file, the rename and the folder
// fsync all go through one descriptor of the folder. When the process runs as
// root, writeFileAtomic, ensureDirectory, readFile, removeFile and
// FileLock::acquire reach the folder through SafeDir (safe_path.h): no link
// planted below a folder another user can write (data_dir for root) is
// followed, readFile accepts only a regular file (never a FIFO), with one link
// when its folder is not trusted. Unprivileged callers (the daemons, on their
// own files) keep plain open(2), which costs nothing on their hot paths and
// cannot give them more than they have.
// Limits: none beyond the file system's and safe_path.h's.
#pragma once

#include "result.h"

#include <sys/types.h>
#include <QByteArray>
#include <QString>

namespace postern {

Status writeFileAtomic(const QString& path, const QByteArray& content, mode_t mode = 0644);
Status syncDirectory(const QString& dir);
// Create `dir` and missing parents with `mode`; existing folders are left as they are.
Status ensureDirectory(const QString& dir, mode_t mode = 0755);
// Read a whole file, refusing files larger than maxBytes.
Result<QByteArray> readFile(const QString& path, qint64 maxBytes = 64 * 1024 * 1024);
// Remove a file (not a folder); a missing one is not an error.
Status removeFile(const QString& path);

struct FileStamp {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = -1;
    qint64 mtimeNs = 0;
    bool exists = false;
    static FileStamp of(const QString& path);
    bool operator==(const FileStamp&) const = default;
};

// An exclusive flock(2) on a descriptor that stays open, for one scope (shared
// memory-mapped tables: the auth throttle, the daemons' shared counters).
// A descriptor < 0 is no lock at all.
class FlockGuard {
public:
    explicit FlockGuard(int fd);
    ~FlockGuard();
    FlockGuard(const FlockGuard&) = delete;
    FlockGuard& operator=(const FlockGuard&) = delete;

private:
    int m_fd;
};

class FileLock {
public:
    enum class Mode { Shared, Exclusive };
    FileLock() = default;
    ~FileLock();
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    FileLock(FileLock&& other) noexcept;
    FileLock& operator=(FileLock&& other) noexcept;

    // Blocks until the lock is held, or until timeoutMs elapses (-1: wait forever).
    static Result<FileLock> acquire(const QString& lockPath, Mode mode = Mode::Exclusive, int timeoutMs = 30000);
    bool held() const { return m_fd >= 0; }
    void release();

private:
    int m_fd = -1;
};

}  // namespace postern
