// smtp_data.h — reading message content: DATA (dot-terminated, RFC 5321
// 4.1.1.4 and 4.5.2) and BDAT chunks (RFC 3030), and checking it on the way.
//
// ContentChecker receives message content (already dot-unstuffed) and
//   * enforces limits: total size, line length (incl. CRLF), header section
//     size and field count — an exceeded limit is recorded, the rest of the
//     message is read and discarded, and the session refuses it at the end;
//   * finds bare LF and bare CR (SMTP smuggling, CVE-2023-51764 class):
//     recorded as BareLineEnding ("reject" policy) or rewritten to CRLF
//     ("normalize" policy) before anything is stored;
//   * refuses NUL bytes;
//   * writes the content to a BodySink (the spool file) in 64 KiB blocks.
// DataReader splits the raw DATA stream: only <CRLF>.<CRLF> ends the message
// (a line start is only ever after a real CRLF, so "\n.\n", "\n.\r\n",
// "\r\n.\n", "\r.\r\n" never end it); a leading dot of a line is removed.
// It never consumes bytes after the terminating ".\r\n": those are the next
// commands (pipelining).
//
// Both are incremental: feed() may be called with any split of the input,
// one byte at a time included, and returns how many bytes it used.
#pragma once

#include <QByteArray>
#include <QString>

namespace postern::smtp {

class BodySink {
public:
    virtual ~BodySink() = default;
    // False when the write failed (disk full, I/O error); errorCode() then says why (errno).
    virtual bool write(const char* data, qsizetype size) = 0;
    virtual int errorCode() const = 0;
};

struct ContentLimits {
    qint64 maxMessageSize = 25 << 20;
    int maxLineLength = 1000;  // octets incl. CRLF
    qint64 maxHeaderSize = 1 << 20;
    int maxHeaderCount = 1000;
    bool normalizeBareLineEndings = false;
};

enum class ContentIssue {
    None,
    TooBig,
    LineTooLong,
    HeaderTooBig,
    TooManyHeaders,
    BareLineEnding,
    NulByte,
    WriteFailed
};
QString toString(ContentIssue issue);

class ContentChecker {
public:
    ContentChecker(const ContentLimits& limits, BodySink* sink);
    void append(const char* data, qsizetype size);
    // Call once at the end of the content: resolves a trailing CR, flushes the buffer.
    void finish();
    ContentIssue issue() const { return m_issue; }
    int sinkError() const { return m_sinkError; }
    qint64 size() const { return m_size; }  // content bytes seen (after normalisation)
    bool sawEightBit() const { return m_eightBit; }

private:
    void emitByte(char c);
    void note(ContentIssue issue);
    void flush();

    ContentLimits m_limits;
    BodySink* m_sink;
    QByteArray m_out;
    ContentIssue m_issue = ContentIssue::None;
    int m_sinkError = 0;
    qint64 m_size = 0;
    int m_lineLength = 0;
    bool m_pendingCR = false;  // a CR whose next byte has not been seen yet
    bool m_inHeader = true;
    bool m_lineStart = true;
    qint64 m_headerSize = 0;
    int m_headerCount = 0;
    bool m_eightBit = false;
    bool m_discard = false;
};

class DataReader {
public:
    explicit DataReader(ContentChecker* checker) : m_checker(checker) {}
    qsizetype feed(const char* data, qsizetype size);
    bool done() const { return m_done; }

private:
    ContentChecker* m_checker;
    bool m_lineStart = true;  // at the start of a line (after a real CRLF)
    bool m_prevCR = false;    // last byte given to the checker was CR
    bool m_done = false;
};

}  // namespace postern::smtp
