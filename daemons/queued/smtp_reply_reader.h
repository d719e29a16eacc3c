// smtp_reply_reader.h — reading a server's SMTP replies (RFC 5321 4.2), no I/O.
//
// Interface: SmtpReplyReader::feed(bytes) appends what the socket gave and
// returns the replies completed by it, in order, or an error that ends the
// connection. A reply is one or more lines "ddd-text" ending with "ddd text"
// (or a bare "ddd"); `lines` holds each line's text, `code` the number.
//
// Wire grammar accepted (RFC 5321 4.2):
//   reply-line = code ( "-" / SP ) [ text ] CRLF   /   code CRLF
//   code       = %x32-35 DIGIT DIGIT     (2yz .. 5yz)
// Every line of a multi-line reply must carry the same code (4.2.1: "the
// same code on each line"). A bare LF ending a line is tolerated (servers
// that send it exist; it changes nothing here).
//
// Security: the peer is any host on the Internet (an MX we deliver to).
// Limits, each an error (the connection is given up, the message retried
// later): kMaxLine octets per line (RFC 5321 4.5.3.1.5 says 512; real
// servers exceed it in EHLO answers, so 2,048), kMaxLines lines per reply,
// kMaxPending octets buffered without a complete line. Nothing grows beyond
// them, however long the peer keeps talking.
#pragma once

#include <QByteArray>
#include <QList>
#include <QString>
#include <QStringList>

namespace postern::outbound {

struct SmtpReply {
    int code = 0;
    QStringList lines;     // the text of each line, without code, separator and CRLF
    QString text() const;  // "250 last line" (for logs and results)
};

class SmtpReplyReader {
public:
    static constexpr qsizetype kMaxLine = 2048;
    static constexpr int kMaxLines = 200;
    static constexpr qsizetype kMaxPending = kMaxLine + 2;

    // Complete replies found so far; on a protocol error returns what was complete before it
    // and sets error() (then the reader stays in error).
    QList<SmtpReply> feed(const QByteArray& bytes);
    bool failed() const { return !m_error.isEmpty(); }
    QString error() const { return m_error; }

private:
    bool takeLine(const QByteArray& line, QList<SmtpReply>* out);
    QByteArray m_pending;
    SmtpReply m_current;
    QString m_error;
};

}  // namespace postern::outbound
