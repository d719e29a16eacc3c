// imap_binary.cpp — see imap_binary.h.
#include "imap_binary.h"

#include "imap_parser.h"

#include <cstring>

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
    if (it.sizeOnly || !tail.startsWith('<') || !tail.endsWith('>'))
        return std::nullopt;  // BINARY.SIZE takes no partial
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

std::optional<PartRef> resolvePart(const mail::MimePart& root, const QList<int>& numbers) {
    PartRef ref;
    const mail::MimePart* node = &root;
    bool atMessage = true;  // node is a message (the top one or an encapsulated one), not yet a part
    for (int n : numbers) {
        if (!atMessage) {
            if (node->isMultipart()) {
                if (n < 1 || n > node->children.size()) return std::nullopt;
                node = &node->children.at(n - 1);
                continue;
            }
            // A message/rfc822 part: its numbers are those of the message inside it.
            if (!node->isMessage() || node->children.isEmpty()) return std::nullopt;
            node = &node->children.first();
            atMessage = true;
        }
        if (node->isMultipart()) {
            if (n < 1 || n > node->children.size()) return std::nullopt;
            node = &node->children.at(n - 1);
        } else if (n != 1) {
            return std::nullopt;  // a message that is not multipart has only part 1: its body
        }
        atMessage = false;
    }
    ref.part = node;
    if (numbers.isEmpty())
        ref.message = &root;
    else if (node->isMessage() && !node->children.isEmpty())
        ref.message = &node->children.first();
    return ref;
}

BinaryResult binarySection(const QByteArray& msg, const mail::MimePart& root, const QList<int>& numbers) {
    using Status = BinaryResult::Status;
    if (numbers.isEmpty()) return {Status::Ok, msg};
    const auto ref = resolvePart(root, numbers);
    if (!ref) return {Status::NoSuchPart, {}};
    const mail::MimePart* part = ref->part;
    const QByteArray body = msg.mid(part->bodyStart, part->bodyEnd - part->bodyStart);
    if (part->isMultipart() || part->isMessage()) return {Status::Ok, body};
    auto decoded = decodeTransfer(body, part->encoding);
    if (!decoded) return {Status::UnknownCte, {}};
    return {Status::Ok, *decoded};
}

namespace {

bool needsEncoding(const QByteArray& msg, const mail::MimePart& p) {
    if (p.encoding == u"binary") return true;
    // NUL is never allowed outside binary (RFC 2045 2.7, 2.8).
    return std::memchr(msg.constData() + p.bodyStart, 0, size_t(p.bodyEnd - p.bodyStart)) != nullptr;
}

void collectBinaryLeaves(const QByteArray& msg, const mail::MimePart& p, QList<const mail::MimePart*>& out) {
    if (p.isMultipart() || p.isMessage()) {
        for (const mail::MimePart& c : p.children) collectBinaryLeaves(msg, c, out);
        return;
    }
    if (needsEncoding(msg, p)) out << &p;
}

}  // namespace

QByteArray encodeBinaryParts(const QByteArray& message) {
    const mail::MimePart root = mail::parseMime(message);
    QList<const mail::MimePart*> leaves;
    collectBinaryLeaves(message, root, leaves);
    if (leaves.isEmpty()) return message;
    QByteArray out;
    out.reserve(message.size() + message.size() / 3 + 256);
    qsizetype copied = 0;
    for (const mail::MimePart* p : leaves) {  // in message order, not overlapping
        out += message.mid(copied, p->headerStart - copied);
        // The part's header fields, Content-Transfer-Encoding replaced, then the blank line.
        for (const mail::HeaderField& f :
             mail::parseHeader(message.mid(p->headerStart, p->headerEnd - p->headerStart)).fields) {
            if (qstricmp(f.name.constData(), "content-transfer-encoding") == 0) continue;
            QByteArray field = message.mid(p->headerStart + f.start, f.end - f.start);
            if (!field.endsWith('\n')) field += "\r\n";
            out += field;
        }
        out += "Content-Transfer-Encoding: base64\r\n\r\n";
        const QByteArray encoded = message.mid(p->bodyStart, p->bodyEnd - p->bodyStart).toBase64();
        for (qsizetype i = 0; i < encoded.size(); i += 76) out += encoded.mid(i, 76) + "\r\n";
        copied = p->bodyEnd;
        // The line break before a following boundary belongs to the boundary (RFC 2046
        // 5.1.1): the base64 lines already end with one.
        if (!encoded.isEmpty()) {
            if (copied + 1 < message.size() && message.at(copied) == '\r' && message.at(copied + 1) == '\n')
                copied += 2;
            else if (copied < message.size() && message.at(copied) == '\n')
                copied += 1;
        }
    }
    out += message.mid(copied);
    return out;
}

QByteArray binaryLiteral(const QByteArray& data) {
    const QByteArray size = '{' + QByteArray::number(data.size()) + "}\r\n";
    return (data.contains('\0') ? '~' + size : size) + data;
}

}  // namespace postern::imap
