// body_search_reference.h — SEARCH BODY/TEXT's body text as SEARCH computed it before
// imap_body_search (every text part transfer-decoded, read in its charset, joined with
// '\n', lower-cased, searched). Kept unchanged as the reference the faster BodyText is
// compared with, by tst_imap_body_search and by the fuzz target fuzz_imap_body_search.
#pragma once

#include "common/mail/message.h"

#include <QByteArray>
#include <QString>

namespace postern::imap::reference {

inline void collectText(const QByteArray& msg, const mail::MimePart& p, QString& out) {
    if (p.isMultipart() || p.isMessage()) {
        for (const mail::MimePart& c : p.children) collectText(msg, c, out);
        return;
    }
    if (p.type != u"text") return;
    const QByteArray raw = mail::decodeTransferEncoding(msg.mid(p.bodyStart, p.bodyEnd - p.bodyStart), p.encoding);
    const QString charset = p.params.get(QStringLiteral("charset"));
    out += mail::decodeCharset(raw, charset.isEmpty() ? QByteArray("utf-8") : charset.toLatin1());
    out += QLatin1Char('\n');
}

inline bool contains(const QByteArray& msg, const QByteArray& needleUtf8) {
    QString text;
    collectText(msg, mail::parseMime(msg), text);
    return text.toLower().contains(QString::fromUtf8(needleUtf8).toLower());
}

}  // namespace postern::imap::reference
