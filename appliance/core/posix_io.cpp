// posix_io.cpp — see posix_io.h.
#include "posix_io.h"

#include <QFile>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cstring>

namespace postern {

QString errnoText(int err) {
    return QString::fromLocal8Bit(std::strerror(err));
}

Error errnoError(const QString& what, int err) {
    return Error{QStringLiteral("%1: %2").arg(what, errnoText(err)), err};
}

Status writeAll(int fd, QByteArrayView bytes, const QString& what) {
    const char* p = bytes.data();
    qsizetype left = bytes.size();
    while (left > 0) {
        const ssize_t n = retryOnEintr([&] { return ::write(fd, p, size_t(left)); });
        if (n < 0) return errnoError(what, errno);
        if (n == 0) return errnoError(what, EIO);
        p += n;
        left -= n;
    }
    return {};
}

int openForReading(const QString& path) {
    const QByteArray native = QFile::encodeName(path);
    return retryOnEintr([&] { return ::open(native.constData(), O_RDONLY | O_CLOEXEC); });
}

QByteArray readUpTo(int fd, qint64 size, int* err) {
    QByteArray out(qsizetype(size), Qt::Uninitialized);
    qsizetype got = 0;
    while (got < out.size()) {
        const ssize_t n = retryOnEintr([&] { return ::read(fd, out.data() + got, size_t(out.size() - got)); });
        if (n < 0 && err) *err = errno;
        if (n <= 0) break;
        got += n;
    }
    out.truncate(got);
    return out;
}

QByteArray readAt(int fd, qint64 offset, qint64 size, int* err) {
    QByteArray out(qsizetype(size), Qt::Uninitialized);
    qsizetype got = 0;
    while (got < out.size()) {
        const ssize_t n =
            retryOnEintr([&] { return ::pread(fd, out.data() + got, size_t(out.size() - got), off_t(offset + got)); });
        if (n < 0 && err) *err = errno;
        if (n <= 0) break;
        got += n;
    }
    out.truncate(got);
    return out;
}

namespace {

// readAll's first step: a regular file's rest (size less position) read straight into a
// buffer of that size, no copy through a stack buffer. Empty when it cannot be sized;
// shorter when the file shrank meanwhile; the errno in *err on a read error.
QByteArray readSized(int fd, qint64 maxBytes, int* err) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return {};
    const off_t at = ::lseek(fd, 0, SEEK_CUR);
    if (at < 0 || st.st_size <= at || st.st_size - at > maxBytes) return {};
    QByteArray out = readUpTo(fd, st.st_size - at, err);
    return *err ? QByteArray() : out;
}

}  // namespace

Result<QByteArray> readAll(int fd, qint64 maxBytes, const QString& what) {
    int sizedErr = 0;
    QByteArray out = readSized(fd, maxBytes, &sizedErr);
    if (sizedErr != 0)
        return Result<QByteArray>::fail(QStringLiteral("%1: read failed: %2").arg(what, errnoText(sizedErr)), sizedErr);
    char buffer[65536];  // the rest (all of it when the file could not be sized; what it gained since)
    for (;;) {
        const ssize_t n = retryOnEintr([&] { return ::read(fd, buffer, sizeof buffer); });
        if (n < 0) {
            const int err = errno;
            return Result<QByteArray>::fail(QStringLiteral("%1: read failed: %2").arg(what, errnoText(err)), err);
        }
        if (n == 0) return out;
        if (n > maxBytes - out.size())
            return Result<QByteArray>::fail(QStringLiteral("%1: larger than %2 bytes").arg(what).arg(maxBytes), EFBIG);
        out.append(buffer, n);
    }
}

Status copyRange(int in, qint64 offset, qint64 length, int out, const QString& what) {
    loff_t from = offset;
    qint64 left = length;
    while (left > 0) {
        const ssize_t n = retryOnEintr([&] { return ::copy_file_range(in, &from, out, nullptr, size_t(left), 0); });
        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) break;
        if (n < 0) return errnoError(what, errno);
        if (n == 0) return Status::fail(QStringLiteral("%1: the source is shorter than announced").arg(what), EIO);
        left -= n;
    }
    char buffer[65536];
    while (left > 0) {  // the kernel cannot copy between these two: through user space
        const ssize_t n = retryOnEintr(
            [&] { return ::pread(in, buffer, size_t(std::min<qint64>(left, qint64(sizeof buffer))), off_t(from)); });
        if (n < 0) return errnoError(what, errno);
        if (n == 0) return Status::fail(QStringLiteral("%1: the source is shorter than announced").arg(what), EIO);
        if (auto st = writeAll(out, QByteArrayView(buffer, n), what); !st) return st;
        from += n;
        left -= n;
    }
    return {};
}

}  // namespace postern
