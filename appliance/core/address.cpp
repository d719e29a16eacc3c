// address.cpp — see address.h.
#include "address.h"

#include <QUrl>

namespace postern {

namespace {

bool isLdhLabel(QStringView label) {
    if (label.isEmpty() || label.size() > kMaxLabelOctets) return false;
    if (label.front() == QLatin1Char('-') || label.back() == QLatin1Char('-')) return false;
    for (QChar c : label) {
        const char16_t u = c.unicode();
        if (!((u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || u == '-' || u == '_')) return false;
    }
    return true;
}

}  // namespace

bool isAtext(char32_t u, NonAscii nonAscii) {
    if (u >= 0x80) return nonAscii == NonAscii::Any || (QChar::isPrint(u) && !QChar::isSpace(u));
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9')) return true;
    switch (u) {
        case '!':
        case '#':
        case '$':
        case '%':
        case '&':
        case '\'':
        case '*':
        case '+':
        case '-':
        case '/':
        case '=':
        case '?':
        case '^':
        case '_':
        case '`':
        case '{':
        case '|':
        case '}':
        case '~':
            return true;
        default:
            return false;
    }
}

bool isDotAtom(QStringView local, NonAscii nonAscii) {
    if (local.isEmpty()) return false;
    bool lastDot = true;  // a leading dot is as wrong as a double dot
    for (QChar c : local) {
        if (c == QLatin1Char('.')) {
            if (lastDot) return false;
            lastDot = true;
        } else if (isAtext(c.unicode(), nonAscii)) {
            lastDot = false;
        } else {
            return false;
        }
    }
    return !lastDot;
}

Result<QString> normalizeDomain(QStringView domainIn) {
    QString domain = domainIn.trimmed().toString();
    if (domain.endsWith(QLatin1Char('.'))) domain.chop(1);
    if (domain.isEmpty()) return Result<QString>::fail(QStringLiteral("empty domain"));
    for (QChar c : domain) {
        if (c.unicode() < 0x21 || c == QLatin1Char('@') || c == QLatin1Char('/') || c == QLatin1Char('\\'))
            return Result<QString>::fail(
                QStringLiteral("domain '%1' contains a character not allowed in host names").arg(domain));
    }
    if (domain.startsWith(QLatin1Char('.')) || domain.contains(QStringLiteral("..")))
        return Result<QString>::fail(QStringLiteral("domain '%1' has an empty label").arg(domain));
    QByteArray ace = QUrl::toAce(domain);
    if (ace.isEmpty())
        return Result<QString>::fail(QStringLiteral("'%1' is not a valid international domain name").arg(domain));
    QString lower = QString::fromLatin1(ace).toLower();
    if (lower.size() > kMaxDomainOctets)
        return Result<QString>::fail(QStringLiteral("domain is longer than %1 characters").arg(kMaxDomainOctets));
    const auto labels = QStringView(lower).split(QLatin1Char('.'));
    for (QStringView label : labels) {
        if (label.isEmpty()) return Result<QString>::fail(QStringLiteral("domain '%1' has an empty label").arg(domain));
        if (label.size() > kMaxLabelOctets)
            return Result<QString>::fail(
                QStringLiteral("a label of '%1' is longer than %2 characters").arg(domain).arg(kMaxLabelOctets));
        if (!isLdhLabel(label))
            return Result<QString>::fail(
                QStringLiteral("'%1' is not a valid domain (labels are letters, digits and inner hyphens)")
                    .arg(domain));
    }
    return lower;
}

bool isValidDomain(QStringView domain) {
    return normalizeDomain(domain).ok();
}

Result<MailAddress> MailAddress::parse(QStringView text) {
    QStringView t = text.trimmed();
    const qsizetype at = t.lastIndexOf(QLatin1Char('@'));
    if (at < 0) return Result<MailAddress>::fail(QStringLiteral("'%1' is not an address (no @)").arg(t));
    QStringView local = t.left(at);
    QStringView domain = t.mid(at + 1);
    if (local.isEmpty()) return Result<MailAddress>::fail(QStringLiteral("'%1' has an empty local part").arg(t));
    if (local.startsWith(QLatin1Char('"')))
        return Result<MailAddress>::fail(QStringLiteral("'%1': quoted local parts are not accepted here").arg(t));
    if (!isDotAtom(local))
        return Result<MailAddress>::fail(
            QStringLiteral("'%1': local part has characters that need quoting or misplaced dots").arg(t));
    if (local.toUtf8().size() > kMaxLocalPartOctets)
        return Result<MailAddress>::fail(
            QStringLiteral("'%1': local part longer than %2 octets").arg(t).arg(kMaxLocalPartOctets));
    if (domain.startsWith(QLatin1Char('[')))
        return Result<MailAddress>::fail(QStringLiteral("'%1': address literals are not accepted here").arg(t));
    auto d = normalizeDomain(domain);
    if (!d) return Result<MailAddress>::fail(QStringLiteral("'%1': %2").arg(t, d.errorMessage()));
    MailAddress a;
    a.local = local.toString().toLower();
    a.domain = d.value();
    return a;
}

Result<QString> normalizeAddress(QStringView text) {
    auto a = MailAddress::parse(text);
    if (!a) return a.error();
    return a->toString();
}

std::pair<QString, QString> splitDetail(const QString& local, const QString& delimiters) {
    if (delimiters.isEmpty()) return {local, QString()};
    for (qsizetype i = 0; i < local.size(); ++i) {
        if (delimiters.contains(local.at(i)) && i > 0) return {local.left(i), local.mid(i + 1)};
    }
    return {local, QString()};
}

}  // namespace postern
