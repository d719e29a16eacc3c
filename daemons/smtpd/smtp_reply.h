// smtp_reply.h — an SMTP reply as a value (RFC 5321 4.2, RFC 3463 enhanced codes).
//
// Every reply the daemon sends is a Reply: a three-digit code, an enhanced
// status code (RFC 2034/3463; empty only for the greeting, EHLO and HELO
// replies where RFC 2034 says none is used), and one or more text lines.
// render() produces "250-first\r\n250 last\r\n". Replies never contain
// client-supplied bytes unescaped (text is sanitised to printable ASCII).
#pragma once

#include <QByteArray>
#include <QString>
#include <QStringList>

namespace postern::smtp {

struct Reply {
    int code = 250;
    QString enhanced;   // "2.0.0"; empty for greeting/EHLO
    QStringList lines;  // at least one

    Reply() = default;
    Reply(int c, QString e, QString text) : code(c), enhanced(std::move(e)), lines{std::move(text)} {}
    Reply(int c, QString e, QStringList l) : code(c), enhanced(std::move(e)), lines(std::move(l)) {}

    QByteArray render() const {
        QByteArray out;
        const QStringList ls = lines.isEmpty() ? QStringList{QString()} : lines;
        for (qsizetype i = 0; i < ls.size(); ++i) {
            out += QByteArray::number(code);
            out += (i + 1 < ls.size()) ? '-' : ' ';
            if (!enhanced.isEmpty()) out += enhanced.toLatin1() + ' ';
            for (QChar c : ls.at(i)) out += (c.unicode() >= 0x20 && c.unicode() < 0x7f) ? char(c.unicode()) : '?';
            out += "\r\n";
        }
        return out;
    }
    // First line without the code, for logs.
    QString summary() const { return QStringLiteral("%1 %2 %3").arg(code).arg(enhanced, lines.value(0)); }
};

}  // namespace postern::smtp
