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

BodyText::BodyText(const QByteArray& msg, const mail::MimePart& root) {
    collect(msg, root);
}

void BodyText::collect(const QByteArray& msg, const mail::MimePart& p) {
    if (p.isMultipart() || p.isMessage()) {
        for (const mail::MimePart& c : p.children) collect(msg, c);
        return;
    }
    if (p.type != u"text") return;
    Part part;
    part.raw = mail::decodeTransferEncoding(msg.mid(p.bodyStart, p.bodyEnd - p.bodyStart), p.encoding);
    part.charset = partCharset(p);
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
