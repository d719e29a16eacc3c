// posix_io.h — the small POSIX I/O pieces every layer repeats: errno as text,
// retrying a call interrupted by a signal, writing a whole buffer, copying a
// byte range between files.
//
// Interface:
//   errnoText(err)             strerror(err) as a QString (locale text).
//   errnoError(what, err)      Error{"<what>: <errno text>", err}: the one way a
//                              failed system call becomes an Error.
//   retryOnEintr(call)         calls `call` again while it returns < 0 with
//                              errno == EINTR; returns its last result (errno
//                              intact on failure).
//   writeAll(fd, bytes, what)  write(2) until every byte is written; the
//                              failure names `what` (usually the path).
//   openForReading(path)       open(2) with O_RDONLY | O_CLOEXEC (path as
//                              QFile::encodeName has it), retried on EINTR: the
//                              descriptor, or -1 with errno set. One system
//                              call, where QFile costs more per small file.
//   readUpTo(fd, size, err)    up to `size` bytes read(2) from the descriptor's
//                              position, fewer only at its end or on an error (its
//                              errno in *err when err is given).
//   readAt(fd, offset, size, err)  the same from `offset` with pread(2): the
//                              descriptor's position is neither used nor moved.
//   readAll(fd, maxBytes, what)  read(2) to the end; more than maxBytes is
//                              EFBIG ("<what>: larger than <max> bytes"). A
//                              regular file is read into one buffer of its
//                              fstat(2) size (then on to its real end).
//   copyRange(in, offset, length, out, what)  `length` bytes of `in` from
//                              `offset` appended at `out`'s position:
//                              copy_file_range(2) (no copy through user space;
//                              reflinks where the file system has them), falling
//                              back to pread/write in 64 KiB blocks where the
//                              kernel cannot (another file system, memfd, ...).
//                              `in`'s own file offset is not used or moved. A
//                              source shorter than `length` is EIO.
// All return Status/Result with errno in Error::code.
// Security: none of these interpret data; `what` appears in operator logs only.
// Limits: none beyond the file system's.
#pragma once

#include "result.h"

#include <QByteArray>
#include <QByteArrayView>
#include <QString>

#include <cerrno>

namespace postern {

QString errnoText(int err);
Error errnoError(const QString& what, int err);

template <typename Call>
auto retryOnEintr(Call&& call) -> decltype(call()) {
    for (;;) {
        const auto r = call();
        if (r >= 0 || errno != EINTR) return r;
    }
}

Status writeAll(int fd, QByteArrayView bytes, const QString& what);
int openForReading(const QString& path);
QByteArray readUpTo(int fd, qint64 size, int* err = nullptr);
QByteArray readAt(int fd, qint64 offset, qint64 size, int* err = nullptr);
Result<QByteArray> readAll(int fd, qint64 maxBytes, const QString& what);
Status copyRange(int in, qint64 offset, qint64 length, int out, const QString& what);

}  // namespace postern
