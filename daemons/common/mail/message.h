// message.h — reading RFC 5322 messages and their MIME structure.
//
// Interface:
//   parseHeader(bytes)          header fields (name + raw unfolded value), in order.
//   MimePart / parseMime(bytes) the MIME tree (RFC 2045/2046): content type and
//       parameters (RFC 2231 continuations and charsets decoded), transfer
//       encoding, id, description, disposition, language, location, the byte
//       ranges of each part's header and body, body size and line count, and
//       the child parts of multipart/* and message/rfc822.
//   decodeHeaderText(raw)       RFC 2047 encoded-words -> Unicode.
//   decodeCharset(bytes, cs)    text in a MIME charset -> Unicode (body parts).
//   parseAddressList(raw)       RFC 5322 address lists incl. groups and
//                               obsolete forms (source routes; a comment after a
//                               bare addr-spec is its display name), as (display
//                               name, route, local, domain).
//   parseDate(raw)              RFC 5322 date-time (and common obsolete forms).
// Security: the input is untrusted mail. Limits: nesting depth kMaxDepth,
// kMaxParts parts per message, header fields kMaxFields; beyond them the rest
// is treated as an opaque body (never an error, never recursion without bound).
// Offsets always stay within the input.
#pragma once

#include <QByteArray>
#include <QDateTime>
#include <QList>
#include <QString>
#include <utility>

namespace postern::mail {

inline constexpr int kMaxDepth = 32;
inline constexpr int kMaxParts = 2000;
inline constexpr int kMaxFields = 5000;

struct HeaderField {
    QByteArray name;               // as written
    QByteArray value;              // unfolded (CRLF+WSP -> WSP), leading space trimmed
    qsizetype start = 0, end = 0;  // [start, end) of the field in the message, continuation lines included
};

struct Header {
    QList<HeaderField> fields;
    QByteArray value(const char* name) const;  // first field with that name (case-insensitive)
    QList<QByteArray> values(const char* name) const;
};

// Header of `message` (up to the first empty line). *bodyOffset = start of the body.
Header parseHeader(const QByteArray& message, qsizetype* bodyOffset = nullptr);
// parseHeader(message).values(name), without building the other fields (SEARCH on a
// header key looks at one field of every message).
QList<QByteArray> headerValues(const QByteArray& message, const char* name);

struct MimeParams {
    QList<std::pair<QString, QString>> list;  // lower-case names, decoded values
    QString get(const QString& name) const;
};

struct MimePart {
    QString type = QStringLiteral("text");      // lower case
    QString subtype = QStringLiteral("plain");  // lower case
    MimeParams params;
    QString id, description, encoding = QStringLiteral("7bit");
    QString disposition;  // lower case, empty when absent
    MimeParams dispositionParams;
    QString language, location, md5;
    qsizetype headerStart = 0, headerEnd = 0;  // [start, end) of this part's header (incl. blank line)
    qsizetype bodyStart = 0, bodyEnd = 0;      // [start, end) of the body
    qint64 lines = 0;                          // body lines (text/*, message/*; 0 for others)
    QList<MimePart> children;                  // multipart parts, or the one message/rfc822 part
    bool isMultipart() const { return type == u"multipart"; }
    bool isMessage() const { return type == u"message" && (subtype == u"rfc822" || subtype == u"global"); }
};

MimePart parseMime(const QByteArray& message);

QString decodeHeaderText(const QByteArray& raw);
// Text in `charset` (a MIME charset name, any case; empty: UTF-8 when valid, else
// Latin-1; unknown: Latin-1) -> Unicode, of any length (a body part's text).
QString decodeCharset(const QByteArray& bytes, const QByteArray& charset);

struct Address {
    QString name;   // display name (decoded); for "user@host (Real Name)", the comment
    QString local;  // local part (group start: group name with domain empty; group end: both empty)
    QString domain;
    QString route;       // obsolete source route "@a,@b" (RFC 5322 4.4), empty when none
    QByteArray rawName;  // display name as written (for IMAP ENVELOPE, which wants it undecoded); group start: the
                         // group phrase
    bool groupStart = false;
    bool groupEnd = false;
};
QList<Address> parseAddressList(const QByteArray& raw);

QDateTime parseDate(const QByteArray& raw);
// RFC 5322 3.3 date-time in local time with a numeric zone: "Tue, 24 Nov 2026 18:00:00 +0000".
QString formatDate(const QDateTime& when);

// Decode a body with its transfer encoding (base64, quoted-printable; others as is).
QByteArray decodeTransferEncoding(const QByteArray& body, const QString& encoding);

}  // namespace postern::mail
