// imap_body_search.cpp — see imap_body_search.h.
#include "imap_body_search.h"

#include <QVarLengthArray>

#include <algorithm>
#include <cstring>

namespace postern::imap {

namespace {

unsigned char lowerAscii(unsigned char c) {
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

// How common a byte is in mail text (lower: rarer), to pick the needle byte whose
// occurrences are looked for: letters by their English frequency, space and line ends
// the most common, other bytes rare.
int commonness(unsigned char c) {
    static constexpr char kLetters[] = "zqxjkvbpygfwmucldrhsnioate";  // rarest first
    if (c == ' ' || c == '\n' || c == '\r') return 40;
    if (const char* at = std::strchr(kLetters, c); at && c) return 10 + int(at - kLetters);
    return 0;
}

// hay.contains(bytes), by memchr on the first byte (a UTF-8 lead byte: none at all in
// ASCII text, so one fast pass), then a compare.
bool containsBytes(QByteArrayView hay, QByteArrayView bytes) {
    const char* h = hay.data();
    const char* end = h + hay.size();
    while (end - h >= bytes.size()) {
        const void* at = std::memchr(h, bytes[0], size_t(end - h - bytes.size() + 1));
        if (!at) return false;
        h = static_cast<const char*>(at);
        if (std::memcmp(h, bytes.data(), size_t(bytes.size())) == 0) return true;
        ++h;
    }
    return false;
}

// hay.toLower().contains(needle) for a needle whose letters are lower-case ASCII (ASCII
// letters of `hay` in either case match them; other bytes as they are), without the
// lower-cased copy: memchr finds the places of the needle's rarest byte in either case,
// and each is compared.
bool containsAsciiCaseless(QByteArrayView hay, QByteArrayView needle) {
    const qsizetype n = needle.size();
    if (n == 0) return true;
    if (hay.size() < n) return false;
    qsizetype k = 0;
    for (qsizetype i = 1; i < n; ++i)
        if (commonness(uchar(needle[i])) < commonness(uchar(needle[k]))) k = i;
    const unsigned char lo = uchar(needle[k]);
    const unsigned char up = lo >= 'a' && lo <= 'z' ? lo - ('a' - 'A') : lo;
    const char* h = hay.data();
    const qsizetype last = hay.size() - n + k;  // the anchor's last possible place
    auto next = [&](unsigned char c, qsizetype from) -> qsizetype {
        const void* at = std::memchr(h + from, c, size_t(last - from + 1));
        return at ? static_cast<const char*>(at) - h : -1;
    };
    qsizetype nextLo = -2, nextUp = up == lo ? -1 : -2;  // -2: not looked for yet; -1: none left
    for (qsizetype from = k; from <= last;) {
        if (nextLo != -1 && nextLo < from) nextLo = next(lo, from);
        if (nextUp != -1 && nextUp < from) nextUp = next(up, from);
        const qsizetype at = nextLo < 0 ? nextUp : (nextUp < 0 ? nextLo : std::min(nextLo, nextUp));
        if (at < 0) return false;
        const char* start = h + at - k;
        qsizetype i = 0;
        while (i < n && lowerAscii(uchar(start[i])) == uchar(needle[i])) ++i;
        if (i == n) return true;
        from = at + 1;
    }
    return false;
}

// The charset decodeCharset is given for a part: its charset parameter, UTF-8 when absent
// (RFC 2046 4.1.2: US-ASCII, read as UTF-8, its superset).
QByteArray partCharset(const mail::MimePart& p) {
    const QString charset = p.params.get(QStringLiteral("charset"));
    return charset.isEmpty() ? QByteArray("utf-8") : charset.toLatin1();
}

}  // namespace

BodyNeedle::BodyNeedle(const QByteArray& text) : lower(QString::fromUtf8(text).toLower()) {
    if (lower.isEmpty()) return;
    for (QChar c : std::as_const(lower))
        if (c.unicode() >= 0x80 || c == u'\n') return;
    bytes = lower.toLatin1();
    hasIOrK = bytes.contains('i') || bytes.contains('k');
    word = std::all_of(bytes.cbegin(), bytes.cend(),
                       [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); });
    spaceless = std::none_of(bytes.cbegin(), bytes.cend(), [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); });
}

std::optional<bool> plainHeaderContains(const QByteArray& raw, const BodyNeedle& needle) {
    if (needle.bytes.isEmpty() || !needle.spaceless) return std::nullopt;
    const char* const d = raw.constData();
    const qsizetype n = raw.size();
    for (qsizetype i = 0; i < n; ++i)  // (decodeHeaderText's own test for a plain value)
        if (uchar(d[i]) >= 0x80 || (d[i] == '=' && i + 1 < n && d[i + 1] == '?')) return std::nullopt;
    return containsAsciiCaseless(raw, needle.bytes);
}

QString addressSearchText(const QByteArray& raw) {
    QString out;
    for (const mail::Address& a : mail::parseAddressList(raw)) {
        if (a.groupEnd) {
            out += QLatin1Char(';');
            continue;
        }
        if (!out.isEmpty() && !out.endsWith(QLatin1Char(':'))) out += QStringLiteral(", ");
        if (a.groupStart) {
            out += a.local + QLatin1Char(':');
            continue;
        }
        const QString spec = a.domain.isEmpty() ? a.local : a.local + QLatin1Char('@') + a.domain;
        out += a.name.isEmpty() ? spec : a.name + QStringLiteral(" <") + spec + QLatin1Char('>');
    }
    return out.toLower();
}

bool addressMayContain(const QByteArray& raw, const BodyNeedle& needle) {
    if (!needle.word || needle.bytes.isEmpty()) return true;
    if (raw.contains("=?") || raw.contains('\\') || (raw.contains('<') && raw.contains('('))) return true;
    if (needle.hasIOrK && (containsBytes(raw, "\xC4\xB0") || containsBytes(raw, "\xE2\x84\xAA"))) return true;
    QVarLengthArray<char, 512> squeezed;
    for (const char c : raw)
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') squeezed.append(c);
    return containsAsciiCaseless(QByteArrayView(squeezed.constData(), squeezed.size()), needle.bytes);
}

namespace {

void collectSpans(const mail::MimePart& p, QList<TextPartSpan>& out) {
    if (p.isMultipart() || p.isMessage()) {
        for (const mail::MimePart& c : p.children) collectSpans(c, out);
        return;
    }
    if (p.type == u"text") out.append(TextPartSpan{p.bodyStart, p.bodyEnd, p.encoding, partCharset(p)});
}

// The kept form: "TP1", then per span its start and end (8 bytes each, little-endian), the
// encoding's UTF-8 length (1 byte) and bytes, the charset's length (2 bytes, little-endian)
// and bytes.
constexpr char kSpansMagic[] = "TP1";
constexpr qsizetype kSpansMagicSize = sizeof kSpansMagic - 1;

void putLittleEndian(QByteArray& out, quint64 v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.append(char((v >> (8 * i)) & 0xFF));
}

// Reads `bytes` little-endian bytes at *at (advanced); false when fewer are left.
bool takeLittleEndian(QByteArrayView in, qsizetype* at, int bytes, quint64* v) {
    if (in.size() - *at < bytes) return false;
    *v = 0;
    for (int i = 0; i < bytes; ++i) *v |= quint64(uchar(in[*at + i])) << (8 * i);
    *at += bytes;
    return true;
}

}  // namespace

QList<TextPartSpan> textPartSpans(const mail::MimePart& root) {
    QList<TextPartSpan> out;
    collectSpans(root, out);
    return out;
}

QByteArray encodeTextParts(const QList<TextPartSpan>& spans) {
    QByteArray out(kSpansMagic, kSpansMagicSize);
    qint64 previousEnd = 0;
    for (const TextPartSpan& s : spans) {
        const QByteArray encoding = s.encoding.toUtf8();
        if (s.start < previousEnd || s.end < s.start || encoding.size() > 0xFF || s.charset.size() > 0xFFFF) return {};
        previousEnd = s.end;
        putLittleEndian(out, quint64(s.start), 8);
        putLittleEndian(out, quint64(s.end), 8);
        putLittleEndian(out, quint64(encoding.size()), 1);
        out += encoding;
        putLittleEndian(out, quint64(s.charset.size()), 2);
        out += s.charset;
    }
    return out;
}

std::optional<QList<TextPartSpan>> decodeTextParts(QByteArrayView bytes, qint64 fileSize) {
    if (!bytes.startsWith(QByteArrayView(kSpansMagic, kSpansMagicSize))) return std::nullopt;
    QList<TextPartSpan> out;
    qsizetype at = kSpansMagicSize;
    quint64 previousEnd = 0;
    while (at < bytes.size()) {
        quint64 start = 0, end = 0, encodingSize = 0, charsetSize = 0;
        if (!takeLittleEndian(bytes, &at, 8, &start) || !takeLittleEndian(bytes, &at, 8, &end) ||
            !takeLittleEndian(bytes, &at, 1, &encodingSize) || bytes.size() - at < qsizetype(encodingSize))
            return std::nullopt;
        const QByteArrayView encoding = bytes.sliced(at, qsizetype(encodingSize));
        at += qsizetype(encodingSize);
        if (!takeLittleEndian(bytes, &at, 2, &charsetSize) || bytes.size() - at < qsizetype(charsetSize))
            return std::nullopt;
        const QByteArrayView charset = bytes.sliced(at, qsizetype(charsetSize));
        at += qsizetype(charsetSize);
        if (start < previousEnd || end < start || end > quint64(fileSize)) return std::nullopt;
        previousEnd = end;
        out.append(TextPartSpan{qint64(start), qint64(end), QString::fromUtf8(encoding), charset.toByteArray()});
    }
    return out;
}

BodyText::BodyText(const QByteArray& msg, const mail::MimePart& root) {
    for (const TextPartSpan& span : textPartSpans(root)) addPart(msg.mid(span.start, span.end - span.start), span);
}

void BodyText::addPart(const QByteArray& body, const TextPartSpan& span) {
    Part part;
    part.raw = mail::decodeTransferEncoding(body, span.encoding);
    part.charset = span.charset;
    // The names decodeCharset reads as UTF-8 and as Latin-1 (it compares them lower-cased).
    const QByteArray cs = part.charset.toLower();
    if (cs == "utf-8" || cs == "utf8" || cs == "us-ascii" || cs == "ascii")
        part.kind = Part::Charset::Utf8;
    else if (cs == "iso-8859-1" || cs == "latin1")
        part.kind = Part::Charset::Latin1;
    m_parts.append(std::move(part));
}

bool BodyText::contains(const BodyNeedle& needle) {
    if (needle.bytes.isEmpty()) {
        if (!m_joined) {
            QString text;
            for (const Part& p : std::as_const(m_parts)) {
                text += mail::decodeCharset(p.raw, p.charset);
                text += QLatin1Char('\n');
            }
            m_joined = text.toLower();
        }
        return m_joined->contains(needle.lower);
    }
    for (Part& p : m_parts)
        if (partContains(p, needle)) return true;
    return false;
}

bool BodyText::partContains(Part& p, const BodyNeedle& needle) {
    bool bytewise = p.kind == Part::Charset::Latin1;
    if (p.kind == Part::Charset::Utf8) {
        if (needle.hasIOrK && !p.hasIOrKSource)
            p.hasIOrKSource = containsBytes(p.raw, "\xC4\xB0") || containsBytes(p.raw, "\xE2\x84\xAA");
        bytewise = !needle.hasIOrK || !*p.hasIOrKSource;
    }
    if (bytewise) return containsAsciiCaseless(p.raw, needle.bytes);
    if (!p.lower) p.lower = mail::decodeCharset(p.raw, p.charset).toLower();
    return p.lower->contains(needle.lower);
}

}  // namespace postern::imap
