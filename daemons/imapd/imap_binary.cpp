// imap_binary.cpp — see imap_binary.h.
#include "imap_binary.h"

#include "imap_parser.h"

namespace postern::imap {

std::optional<BinaryItem> parseBinaryItem(const QByteArray& atom) {
    BinaryItem it;
    const QByteArray upper = atom.toUpper();
    it.peek = upper.startsWith("BINARY.PEEK[");
    it.sizeOnly = upper.startsWith("BINARY.SIZE[");
    if (!it.peek && !it.sizeOnly && !upper.startsWith("BINARY[")) return std::nullopt;
    const qsizetype open = atom.indexOf('[');
    const qsizetype close = atom.indexOf(']', open);
    if (close < 0) return std::nullopt;
    it.sectionText = atom.mid(open + 1, close - open - 1);
    if (!it.sectionText.isEmpty()) {
        const QList<QByteArray> numbers = it.sectionText.split('.');
        if (numbers.size() > 32) return std::nullopt;
        for (const QByteArray& n : numbers) {
            // nz-number, at most 6 digits; no HEADER/TEXT/MIME in section-binary.
            const auto v = n.size() <= 6 && !n.startsWith('0') ? parseNumber(n, kMaxNumber) : std::nullopt;
            if (!v) return std::nullopt;
            it.part << int(*v);
        }
    }
    const QByteArray tail = atom.mid(close + 1);
    if (tail.isEmpty()) return it;
    if (it.sizeOnly || !tail.startsWith('<') || !tail.endsWith('>')) return std::nullopt;  // BINARY.SIZE takes no partial
    const QList<QByteArray> p = tail.mid(1, tail.size() - 2).split('.');
    if (p.size() != 2) return std::nullopt;
    // partial = "<" number64 "." nz-number64 ">": digits only, overflow-checked.
    const auto start = parseNumber(p.at(0), kMaxNumber64);
    const auto length = parseNumber(p.at(1), kMaxNumber64);
    if (!start || !length || *length == 0) return std::nullopt;
    it.partialStart = qint64(*start);
    it.partialLength = qint64(*length);
    return it;
}

std::optional<QByteArray> decodeTransfer(const QByteArray& body, const QString& encoding) {
    if (encoding.isEmpty() || encoding == u"7bit" || encoding == u"8bit" || encoding == u"binary") return body;
    if (encoding == u"base64" || encoding == u"quoted-printable") return mail::decodeTransferEncoding(body, encoding);
    return std::nullopt;  // RFC 3516 4.3: the server says NO [UNKNOWN-CTE]
}

BinaryResult binarySection(const QByteArray& msg, const mail::MimePart& root, const QList<int>& numbers) {
    using Status = BinaryResult::Status;
    if (numbers.isEmpty()) return {Status::Ok, msg};
    // The same walk as BODY[n.m]: numbers index the parts of the current message;
    // stepping onto a message/rfc822 part makes its inner message the current one.
    const mail::MimePart* part = &root;
    const mail::MimePart* message = &root;
    bool atMessage = true;
    for (int n : numbers) {
        const mail::MimePart* base = atMessage ? message : part;
        const mail::MimePart* next = nullptr;
        if (base->isMultipart()) next = n >= 1 && n <= base->children.size() ? &base->children.at(n - 1) : nullptr;
        else if (atMessage && n == 1) next = message;
        if (!next) return {Status::NoSuchPart, {}};
        part = next;
        atMessage = false;
        if (part->isMessage() && !part->children.isEmpty() && part != message) {
            message = &part->children.first();
            atMessage = true;
        }
    }
    const QByteArray body = msg.mid(part->bodyStart, part->bodyEnd - part->bodyStart);
    if (part->isMultipart() || part->isMessage()) return {Status::Ok, body};
    auto decoded = decodeTransfer(body, part->encoding);
    if (!decoded) return {Status::UnknownCte, {}};
    return {Status::Ok, *decoded};
}

QByteArray binaryLiteral(const QByteArray& data) {
    const QByteArray size = '{' + QByteArray::number(data.size()) + "}\r\n";
    return (data.contains('\0') ? '~' + size : size) + data;
}

}  // namespace postern::imap
