// web_content.cpp — see web_content.h.
#include "web_content.h"

#include "core/address.h"
#include "core/services.h"
#include "core/setting_keys.h"

namespace postern::web {

namespace {
QString xml(const QString& s) {
    return s.toHtmlEscaped();
}

// The domain an address belongs to when it is one of ours, else the primary domain.
QString siteDomain(const Site& site, const QString& email) {
    auto norm = normalizeAddress(email);
    if (norm) {
        const QString d = norm->section(QLatin1Char('@'), -1);
        if (site.domains.contains(d)) return d;
    }
    return site.primaryDomain;
}

QString validEmail(const QString& email) {
    auto norm = normalizeAddress(email);
    return norm ? *norm : QString();
}
}  // namespace

Site siteFrom(const Config& config, const Accounts& accounts) {
    Site s;
    s.hostname = config.hostname();
    s.primaryDomain = get(config, keys::general::primaryDomain);
    s.domains = accounts.domains();
    if (s.primaryDomain.isEmpty() && !s.domains.isEmpty()) s.primaryDomain = s.domains.first();
    s.mtaStsMode = get(config, keys::mtaSts::mode);
    // The listeners clients use, in the order clients should prefer them (core/services.h).
    for (const ListenerInfo& l : clientListeners()) {
        const auto addrs = config.listeners(l.settingKey());
        if (addrs.isEmpty()) continue;  // disabled
        const quint16 port = addrs.first().port ? addrs.first().port : l.standardPort;
        s.services << MailService{toString(l.protocol),
                                  l.implicitTls ? QStringLiteral("SSL") : QStringLiteral("STARTTLS"), port};
    }
    return s;
}

QByteArray mtaStsPolicy(const Site& site) {
    const QString mode = site.mtaStsMode.isEmpty() ? QStringLiteral("testing") : site.mtaStsMode;
    const int maxAge = mode == u"none" ? 86400 : 604800;
    return QStringLiteral("version: STSv1\r\nmode: %1\r\nmx: %2\r\nmax_age: %3\r\n")
        .arg(mode, site.hostname)
        .arg(maxAge)
        .toUtf8();
}

QByteArray autoconfigXml(const Site& site, const QString& email) {
    const QString domain = siteDomain(site, email);
    QString out;
    out += QStringLiteral("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n");
    out += QStringLiteral("  <emailProvider id=\"%1\">\n").arg(xml(domain));
    for (const QString& d : site.domains) out += QStringLiteral("    <domain>%1</domain>\n").arg(xml(d));
    out += QStringLiteral("    <displayName>%1 mail</displayName>\n    <displayShortName>%1</displayShortName>\n")
               .arg(xml(domain));
    for (const MailService& s : site.services) {
        const bool outgoing = s.protocol == u"smtp";
        out += outgoing ? QStringLiteral("    <outgoingServer type=\"smtp\">\n")
                        : QStringLiteral("    <incomingServer type=\"%1\">\n").arg(s.protocol);
        out +=
            QStringLiteral("      <hostname>%1</hostname>\n      <port>%2</port>\n      <socketType>%3</socketType>\n")
                .arg(xml(site.hostname))
                .arg(s.port)
                .arg(s.socketType);
        out += QStringLiteral(
            "      <authentication>password-cleartext</authentication>\n      <username>%EMAILADDRESS%</username>\n");
        out += outgoing ? QStringLiteral("    </outgoingServer>\n") : QStringLiteral("    </incomingServer>\n");
    }
    out += QStringLiteral("  </emailProvider>\n</clientConfig>\n");
    return out.toUtf8();
}

QByteArray autodiscoverXml(const Site& site, const QString& email) {
    const QString login = validEmail(email);
    QString out;
    out += QStringLiteral(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n"
        "  <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n"
        "    <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n");
    QStringList seen;
    for (const MailService& s : site.services) {
        // One entry per protocol: the first listed (implicit TLS) is preferred.
        if (seen.contains(s.protocol)) continue;
        seen << s.protocol;
        out += QStringLiteral(
                   "      <Protocol>\n        <Type>%1</Type>\n        <Server>%2</Server>\n        <Port>%3</Port>\n")
                   .arg(s.protocol.toUpper(), xml(site.hostname))
                   .arg(s.port);
        if (s.socketType == u"SSL")
            out += QStringLiteral("        <SSL>on</SSL>\n");
        else
            out += QStringLiteral("        <SSL>off</SSL>\n        <Encryption>TLS</Encryption>\n");
        out += QStringLiteral("        <SPA>off</SPA>\n        <AuthRequired>on</AuthRequired>\n");
        if (!login.isEmpty()) out += QStringLiteral("        <LoginName>%1</LoginName>\n").arg(xml(login));
        out += QStringLiteral("      </Protocol>\n");
    }
    out += QStringLiteral("    </Account>\n  </Response>\n</Autodiscover>\n");
    return out.toUtf8();
}

QString autodiscoverEmail(const QByteArray& body) {
    const qsizetype open = body.indexOf("<EMailAddress>");
    if (open < 0) return {};
    const qsizetype start = open + 14;
    const qsizetype close = body.indexOf("</EMailAddress>", start);
    if (close < 0 || close - start > 320) return {};
    return validEmail(QString::fromUtf8(body.mid(start, close - start)).trimmed());
}

}  // namespace postern::web
