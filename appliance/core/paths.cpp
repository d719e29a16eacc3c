// paths.cpp — see paths.h.
#include "paths.h"

#include "address.h"

namespace postern {

QString encodePathSegment(const QString& text) {
    const QByteArray utf8 = text.toUtf8();
    QString out;
    for (char ch : utf8) {
        const unsigned char c = static_cast<unsigned char>(ch);
        const bool plain = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '+' ||
                           c == '=' || c == '-';
        if (plain)
            out += QLatin1Char(char(c));
        else
            out += QLatin1Char('%') + QStringLiteral("%1").arg(c, 2, 16, QLatin1Char('0')).toUpper();
    }
    // Names made only of dots would be "." or ".."; a leading dot would hide the folder.
    if (out.isEmpty()) return QStringLiteral("%00");
    if (out.startsWith(QLatin1Char('.'))) out.replace(0, 1, QStringLiteral("%2E"));
    return out;
}

QString decodePathSegment(const QString& segment) {
    return QString::fromUtf8(QByteArray::fromPercentEncoding(segment.toLatin1()));
}

QString mailboxHome(const QString& mailDir, const QString& address) {
    auto a = MailAddress::parse(address);
    if (!a || mailDir.isEmpty()) return {};
    return mailDir + QLatin1Char('/') + encodePathSegment(a->domain) + QLatin1Char('/') + encodePathSegment(a->local);
}

QString maildirRoot(const QString& mailDir, const QString& address) {
    const QString home = mailboxHome(mailDir, address);
    return home.isEmpty() ? home : home + QStringLiteral("/Maildir");
}

}  // namespace postern
