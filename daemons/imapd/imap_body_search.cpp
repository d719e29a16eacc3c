// imap_body_search.cpp — see imap_body_search.h.
#include "imap_body_search.h"

namespace postern::imap {

namespace {

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
            p.hasIOrKSource = p.raw.contains("\xC4\xB0") || p.raw.contains("\xE2\x84\xAA");
        bytewise = !needle.hasIOrK || !*p.hasIOrKSource;
    }
    if (bytewise) {
        if (p.folded.isNull()) p.folded = p.raw.toLower();  // ASCII letters only
        return p.folded.contains(needle.bytes);
    }
    if (!p.lower) p.lower = mail::decodeCharset(p.raw, p.charset).toLower();
    return p.lower->contains(needle.lower);
}

}  // namespace postern::imap
