// message_file.cpp — see message_file.h.
#include "message_file.h"

#include "core/posix_io.h"

#include <unistd.h>
#include <algorithm>
#include <cstring>

namespace postern::mail {

namespace {
constexpr qint64 kHeaderChunk = 16 * 1024;  // the header block is read in pieces this big

// The end of the header block in `data` (just after the empty line), scanning
// lines from `*lineStart`; -1 when not found yet (*lineStart: the first line
// not known to be complete).
qsizetype headerEnd(const QByteArray& data, qsizetype* lineStart) {
    for (;;) {
        const qsizetype nl = data.indexOf('\n', *lineStart);
        if (nl < 0) return -1;
        const qsizetype length = nl + 1 - *lineStart;
        if (length == 1 || (length == 2 && data.at(*lineStart) == '\r')) return nl + 1;
        *lineStart = nl + 1;
    }
}

class FileBodyReader : public BodyReader {
public:
    FileBodyReader(int fd, qint64 from, qint64 end) : m_fd(fd), m_pos(from), m_end(end) {}
    qint64 read(char* buffer, qint64 max) override {
        const qint64 want = std::min(max, m_end - m_pos);
        if (want <= 0) return 0;
        const ssize_t n = retryOnEintr([&] { return ::pread(m_fd, buffer, size_t(want), off_t(m_pos)); });
        if (n > 0) m_pos += n;
        return n;
    }

private:
    int m_fd;
    qint64 m_pos, m_end;
};

class MemoryBodyReader : public BodyReader {
public:
    MemoryBodyReader(const QByteArray& bytes, qint64 from) : m_bytes(bytes), m_pos(from) {}
    qint64 read(char* buffer, qint64 max) override {
        const qint64 n = std::min(max, qint64(m_bytes.size()) - m_pos);
        if (n <= 0) return 0;
        std::memcpy(buffer, m_bytes.constData() + m_pos, size_t(n));
        m_pos += n;
        return n;
    }

private:
    QByteArray m_bytes;  // implicitly shared with the MessageFile
    qint64 m_pos;
};
}  // namespace

Result<MessageFile> MessageFile::read(int fd, qint64 size, qint64 maxHeaderBytes) {
    MessageFile m;
    m.m_fd = fd;
    m.m_size = size;
    const qint64 want = std::min(size, std::max<qint64>(maxHeaderBytes, 0));
    qsizetype lineStart = 0;
    qsizetype end = -1;
    while (end < 0 && m.m_header.size() < want) {
        const qint64 piece = std::min(kHeaderChunk, want - m.m_header.size());
        const qsizetype at = m.m_header.size();
        m.m_header.resize(at + piece);
        const ssize_t n = retryOnEintr([&] { return ::pread(fd, m.m_header.data() + at, size_t(piece), off_t(at)); });
        if (n < 0) return errnoError(QStringLiteral("reading the message header"), errno);
        m.m_header.resize(at + n);
        if (n == 0) return Result<MessageFile>::fail(QStringLiteral("the message file is shorter than announced"), EIO);
        end = headerEnd(m.m_header, &lineStart);
    }
    if (end >= 0) {
        m.m_header.truncate(end);
        m.m_bodyOffset = end;
        m.m_complete = true;
    } else {
        m.m_bodyOffset = m.m_header.size();
        m.m_complete = want == size;  // the whole message and no empty line: all header
    }
    return m;
}

MessageFile MessageFile::fromBytes(QByteArray message) {
    MessageFile m;
    m.m_size = message.size();
    m.m_memory = std::move(message);
    qsizetype lineStart = 0;
    const qsizetype end = headerEnd(m.m_memory, &lineStart);
    m.m_bodyOffset = end >= 0 ? end : m.m_memory.size();
    m.m_header = m.m_memory.left(m.m_bodyOffset);
    m.m_complete = true;
    return m;
}

MessageFile MessageFile::withHeader(QByteArray header) const {
    MessageFile m = *this;
    m.m_header = std::move(header);
    return m;
}

std::unique_ptr<BodyReader> MessageFile::body() const {
    if (m_fd < 0) return std::make_unique<MemoryBodyReader>(m_memory, m_bodyOffset);
    return std::make_unique<FileBodyReader>(m_fd, m_bodyOffset, m_size);
}

}  // namespace postern::mail
