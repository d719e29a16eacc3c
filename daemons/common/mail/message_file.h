// message_file.h — a stored message as the delivery path reads it: the header
// block once, in memory and bounded; the body only ever in chunks.
//
// This is the interface for everything that inspects a message between the
// spool and the mailbox (sender authentication and DKIM today; spam scanning
// and Sieve next): none of them needs the whole message in memory.
//
// Interface:
//   MessageFile::read(fd, size, maxHeaderBytes)  reads the header block of the
//       message in `fd` (bytes 0..size) once: everything up to and including
//       the first empty line ("\r\n" or "\n" alone on a line), at most
//       maxHeaderBytes. headerComplete() is false when no empty line was
//       found within the bound (then header() is the first maxHeaderBytes
//       bytes and nothing should trust it as the whole header). A message
//       without an empty line that ends within the bound is all header.
//   MessageFile::fromBytes(message)  the same over bytes in memory (tests,
//       small messages built in memory).
//   withHeader(header)  the same message with another header block in front of
//       the same body (e.g. without forged fields); size() stays the stored one.
//   header(), headerComplete(), bodyOffset(), bodySize(), size(), fd().
//   body()  a new BodyReader over [bodyOffset, size): read(buf, max) returns
//       bytes read, 0 at the end, -1 on an I/O error (errno kept). Readers are
//       independent (pread, no shared file offset), so several may run.
// The descriptor is borrowed: the caller keeps it open while the
// MessageFile and its readers are used.
// Security: the input is untrusted mail; only the header block (bounded by
// maxHeaderBytes) is ever held in memory.
// Limits: maxHeaderBytes per message (the caller's: smtp.max_header_size plus
// room for our own trace fields); body chunks of kChunk bytes.
#pragma once

#include "core/result.h"

#include <QByteArray>
#include <memory>

namespace postern::mail {

class BodyReader {
public:
    virtual ~BodyReader() = default;
    // Up to `max` bytes into `buffer`: the count, 0 at the end, -1 on error (errno set).
    virtual qint64 read(char* buffer, qint64 max) = 0;
};

class MessageFile {
public:
    static constexpr qint64 kChunk = 64 * 1024;

    static Result<MessageFile> read(int fd, qint64 size, qint64 maxHeaderBytes);
    static MessageFile fromBytes(QByteArray message);
    MessageFile withHeader(QByteArray header) const;

    const QByteArray& header() const { return m_header; }
    bool headerComplete() const { return m_complete; }
    qint64 bodyOffset() const { return m_bodyOffset; }
    qint64 bodySize() const { return m_size - m_bodyOffset; }
    qint64 size() const { return m_size; }
    int fd() const { return m_fd; }
    std::unique_ptr<BodyReader> body() const;

private:
    MessageFile() = default;

    QByteArray m_header;
    QByteArray m_memory;  // fromBytes(): the whole message
    int m_fd = -1;
    qint64 m_size = 0;
    qint64 m_bodyOffset = 0;
    bool m_complete = false;
};

}  // namespace postern::mail
