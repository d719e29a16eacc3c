// smtp_data.cpp — see smtp_data.h.
#include "smtp_data.h"

#include <cstring>

namespace postern::smtp {

QString toString(ContentIssue issue) {
    switch (issue) {
        case ContentIssue::None:
            return QStringLiteral("none");
        case ContentIssue::TooBig:
            return QStringLiteral("too-big");
        case ContentIssue::LineTooLong:
            return QStringLiteral("line-too-long");
        case ContentIssue::HeaderTooBig:
            return QStringLiteral("header-too-big");
        case ContentIssue::TooManyHeaders:
            return QStringLiteral("too-many-headers");
        case ContentIssue::BareLineEnding:
            return QStringLiteral("bare-line-ending");
        case ContentIssue::NulByte:
            return QStringLiteral("nul-byte");
        case ContentIssue::WriteFailed:
            return QStringLiteral("write-failed");
    }
    return {};
}

ContentChecker::ContentChecker(const ContentLimits& limits, BodySink* sink) : m_limits(limits), m_sink(sink) {
    m_out.reserve(64 * 1024);
}

void ContentChecker::note(ContentIssue issue) {
    if (m_issue == ContentIssue::None) m_issue = issue;
    m_discard = true;  // nothing more is stored once the message is known to be refused
}

void ContentChecker::flush() {
    if (m_out.isEmpty()) return;
    if (!m_discard && m_sink && !m_sink->write(m_out.constData(), m_out.size())) {
        m_sinkError = m_sink->errorCode();
        note(ContentIssue::WriteFailed);
    }
    m_out.clear();
}

void ContentChecker::emitByte(char c) {
    ++m_size;
    if (m_size > m_limits.maxMessageSize) {
        note(ContentIssue::TooBig);
        return;
    }
    if (c == '\0') note(ContentIssue::NulByte);
    if (uchar(c) >= 0x80) m_eightBit = true;
    ++m_lineLength;
    if (m_inHeader) {
        ++m_headerSize;
        if (m_lineStart && c != ' ' && c != '\t' && c != '\r') {
            if (++m_headerCount > m_limits.maxHeaderCount) note(ContentIssue::TooManyHeaders);
        }
        if (m_headerSize > m_limits.maxHeaderSize) note(ContentIssue::HeaderTooBig);
    }
    m_lineStart = false;
    if (c == '\n') {
        if (m_lineLength > m_limits.maxLineLength) note(ContentIssue::LineTooLong);
        // An empty line (just CRLF) ends the header section.
        if (m_inHeader && m_lineLength == 2) m_inHeader = false;
        m_lineLength = 0;
        m_lineStart = true;
    } else if (m_lineLength > m_limits.maxLineLength) {
        note(ContentIssue::LineTooLong);
    }
    if (!m_discard) {
        m_out.append(c);
        if (m_out.size() >= 64 * 1024) flush();
    }
}

void ContentChecker::append(const char* data, qsizetype size) {
    for (qsizetype i = 0; i < size; ++i) {
        const char c = data[i];
        if (m_pendingCR) {
            m_pendingCR = false;
            if (c == '\n') {
                emitByte('\r');
                emitByte('\n');
                continue;
            }
            // Bare CR.
            if (m_limits.normalizeBareLineEndings) {
                emitByte('\r');
                emitByte('\n');
            } else {
                note(ContentIssue::BareLineEnding);
                emitByte('\r');
            }
        }
        if (c == '\r') {
            m_pendingCR = true;
            continue;
        }
        if (c == '\n') {  // bare LF
            if (m_limits.normalizeBareLineEndings) {
                emitByte('\r');
                emitByte('\n');
            } else {
                note(ContentIssue::BareLineEnding);
                emitByte('\n');
            }
            continue;
        }
        emitByte(c);
    }
}

void ContentChecker::finish() {
    if (m_pendingCR) {
        m_pendingCR = false;
        if (m_limits.normalizeBareLineEndings) {
            emitByte('\r');
            emitByte('\n');
        } else {
            note(ContentIssue::BareLineEnding);
            emitByte('\r');
        }
    }
    flush();
}

qsizetype DataReader::feed(const char* data, qsizetype size) {
    qsizetype i = 0;
    while (i < size && !m_done) {
        if (m_lineStart && data[i] == '.') {
            // Need ".\r\n" (end) or "." + anything else (dot-stuffed line): look at up to 2 more bytes.
            if (size - i < 2) return i;  // wait for more
            if (data[i + 1] == '\r') {
                if (size - i < 3) return i;
                if (data[i + 2] == '\n') {
                    m_done = true;
                    m_checker->finish();
                    return i + 3;
                }
            }
            ++i;  // drop the stuffing dot (RFC 5321 4.5.2)
            m_lineStart = false;
            continue;
        }
        // Copy up to and including the next LF.
        const void* nl = std::memchr(data + i, '\n', size_t(size - i));
        const qsizetype end = nl ? (static_cast<const char*>(nl) - data) + 1 : size;
        const bool realCRLF = nl && ((end - 2 >= i && data[end - 2] == '\r') || (end - 1 == i && m_prevCR));
        m_checker->append(data + i, end - i);
        m_prevCR = data[end - 1] == '\r';
        m_lineStart = nl && realCRLF;
        i = end;
    }
    return i;
}

}  // namespace postern::smtp
