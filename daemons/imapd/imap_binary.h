// imap_binary.h — the socket-free part of FETCH BINARY (RFC 3516, RFC 9051
// 6.4.5): parsing the BINARY / BINARY.PEEK / BINARY.SIZE items, finding the
// addressed part, removing its Content-Transfer-Encoding, and choosing between
// a literal and a literal8 for the answer. commands/fetch.cpp calls these.
//
// Interface and return conventions:
//   parseBinaryItem(atom)       nullopt when the atom is not a well-formed
//                               BINARY item ("BINARY[1.2]<0.100>").
//   binarySection(msg, root, p) Ok with the decoded bytes; NoSuchPart (the
//                               response shows NIL, or 0 for BINARY.SIZE);
//                               UnknownCte (the command fails with
//                               NO [UNKNOWN-CTE]).
//   decodeTransfer(body, cte)   nullopt for an encoding we do not know.
//   binaryLiteral(data)         "~{n}\r\n" + data when data holds a NUL (RFC
//                               3516 4.2: NUL only in literal8), else "{n}\r\n".
// Grammar (RFC 9051 9): section-binary = "[" [section-part] "]";
//   section-part = nz-number *("." nz-number); partial = "<" number64 "." nz-number64 ">"
//   (read with parseNumber(): digits only, overflow-checked).
// BINARY[] is the whole message as stored; a multipart or message/rfc822
// part is sent as it is (their encoding can only be 7bit/8bit/binary).
// Quoted-printable is decoded per RFC 2045 6.7 (transport padding removed, soft
// line breaks joined) before BINARY.SIZE counts.
// Security: message bytes are untrusted; part numbers are checked against the
// parsed structure and partial ranges are clamped to the data.
// Limits: at most 32 part numbers of at most 6 digits (as BODY[]).
#pragma once

#include "common/mail/message.h"

#include <QByteArray>
#include <QList>
#include <optional>

namespace postern::imap {

struct BinaryItem {
    bool peek = false;
    bool sizeOnly = false;   // BINARY.SIZE
    QList<int> part;         // empty: the whole message
    QByteArray sectionText;  // "1.2", as the client wrote it
    qint64 partialStart = -1, partialLength = -1;
};
std::optional<BinaryItem> parseBinaryItem(const QByteArray& atom);

// RFC 9051 6.4.5 part numbers: "1.2.3" addresses parts of the message; a part of type
// message/rfc822 has nested part numbers that refer to parts of the message it holds,
// whose single body is part 1 when it is not multipart (so for a top-level
// message/rfc822, BODY[1] is the whole encapsulated message and BODY[1.1] its body).
// `part` is the addressed part (its body is BODY[n], its header BODY[n.MIME]);
// `message` is the message a message/rfc822 part holds (BODY[n.HEADER], [n.TEXT]),
// null for other parts. Empty numbers: the message itself. nullopt: no such part.
struct PartRef {
    const mail::MimePart* part = nullptr;
    const mail::MimePart* message = nullptr;
};
std::optional<PartRef> resolvePart(const mail::MimePart& root, const QList<int>& numbers);

// RFC 3516 4.4: APPEND of a literal8 may carry parts with binary content (NUL octets,
// Content-Transfer-Encoding: binary). They are stored base64-encoded (as Dovecot does),
// so that BODY[] never needs to send a NUL (RFC 9051 4.3: not allowed in a literal) and
// line endings can be normalised safely; BINARY[n] decodes them back to the very octets
// that were sent. Other parts and the rest of the message are kept as they are. Returns
// the message unchanged when no part needs it.
QByteArray encodeBinaryParts(const QByteArray& message);

struct BinaryResult {
    enum class Status { Ok, NoSuchPart, UnknownCte } status = Status::Ok;
    QByteArray data;
};
BinaryResult binarySection(const QByteArray& msg, const mail::MimePart& root, const QList<int>& part);

std::optional<QByteArray> decodeTransfer(const QByteArray& body, const QString& encoding);

QByteArray binaryLiteral(const QByteArray& data);

}  // namespace postern::imap
