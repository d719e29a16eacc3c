// dns_records.cpp — see dns_records.h.
#include "dns_records.h"

#include "core/dns.h"

#include <QCryptographicHash>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <algorithm>

namespace postern::records {

namespace {
QString relativeTo(const QString& name, const QString& domain) {
    if (name == domain) return QStringLiteral("@");
    if (name.endsWith(QLatin1Char('.') + domain)) return name.left(name.size() - domain.size() - 1);
    return name + QLatin1Char('.');  // outside the zone: absolute
}
}  // namespace

MtaStsPolicy mtaStsPolicy(const HostFacts& f) {
    MtaStsPolicy p;
    // RFC 8461 3.2: CRLF line endings, "mx" per MX host.
    p.text = QStringLiteral("version: STSv1\r\nmode: %1\r\nmx: %2\r\nmax_age: %3\r\n")
                 .arg(f.mtaStsMode, f.hostname)
                 .arg(f.mtaStsMaxAge);
    // RFC 8461 3.1: id is 1-32 alphanumerics; derived from the policy so it changes exactly when the policy does.
    p.id = QString::fromLatin1(QCryptographicHash::hash(p.text.toUtf8(), QCryptographicHash::Sha256).toHex().left(20));
    return p;
}

namespace {

// The sheet being built: rows in the order the administrator reads them.
struct Sheet {
    const HostFacts& f;
    QList<Record> out;
    void add(QString name, QString type, int prio, QString value, QString level, QString why) {
        out << Record{std::move(name), std::move(type),  prio,          std::move(value),
                      f.ttl,           std::move(level), std::move(why)};
    }
};

// RFC 6186 SRV records for the listeners that have one. RFC 8314 5.1: implicit TLS
// preferred (lower priority number); each protocol's records together.
void addSrvRecords(Sheet& s, const QString& hostFqdn) {
    QList<ListenerInfo> srvRows;
    for (const ListenerInfo& l : listeners())
        if (!l.srvService.isEmpty()) srvRows << l;
    std::stable_sort(srvRows.begin(), srvRows.end(), [](const ListenerInfo& a, const ListenerInfo& b) {
        return a.protocol != b.protocol ? a.protocol < b.protocol : a.srvPriority < b.srvPriority;
    });
    for (const ListenerInfo& l : std::as_const(srvRows)) {
        if (!s.f.notOffered.contains(l.mode))
            s.add(l.srvService, QStringLiteral("SRV"), l.srvPriority,
                  QStringLiteral("1 %1 %2").arg(l.standardPort).arg(hostFqdn), QStringLiteral("Recommended"),
                  QStringLiteral("Lets mail clients find %1 by themselves (%2)")
                      .arg(l.title, l.protocol == Protocol::ManageSieve ? QStringLiteral("RFC 5804")
                                                                        : QStringLiteral("RFC 6186")));
        else
            s.add(l.srvService, QStringLiteral("SRV"), 0, QStringLiteral("0 0 ."), QStringLiteral("Optional"),
                  QStringLiteral("%1 is not offered here (target \".\")").arg(l.title));
    }
}

}  // namespace

QList<Record> buildRecords(const HostFacts& f) {
    Sheet sheet{f, {}};
    const QString host = relativeTo(f.hostname, f.domain);
    const QString hostFqdn = f.hostname + QLatin1Char('.');
    auto add = [&sheet](QString name, QString type, int prio, QString value, QString level, QString why) {
        sheet.add(std::move(name), std::move(type), prio, std::move(value), std::move(level), std::move(why));
    };
    add(QStringLiteral("@"), QStringLiteral("MX"), 10, hostFqdn, QStringLiteral("Required"),
        QStringLiteral("Tells other servers that %1 receives mail for %2").arg(f.hostname, f.domain));
    for (const QHostAddress& a : f.publicV4)
        add(host, QStringLiteral("A"), -1, a.toString(), QStringLiteral("Required"),
            QStringLiteral("The mail host's IPv4 address"));
    for (const QHostAddress& a : f.publicV6)
        add(host, QStringLiteral("AAAA"), -1, a.toString(), QStringLiteral("Recommended"),
            QStringLiteral("The mail host's IPv6 address"));
    if (f.publicV4.isEmpty() && f.publicV6.isEmpty())
        add(host, QStringLiteral("A"), -1, QStringLiteral("<your public IPv4 address>"), QStringLiteral("Required"),
            QStringLiteral("No public address was found on this machine: use the address the Internet sees (NAT)"));
    add(QStringLiteral("@"), QStringLiteral("TXT"), -1, QStringLiteral("v=spf1 mx %1").arg(f.spfAll),
        QStringLiteral("Required"),
        QStringLiteral("SPF: only your MX host may send for %1 (use -all once everything sends through it)")
            .arg(f.domain));
    for (const DkimPublication& d : f.dkim)
        add(d.selector + QStringLiteral("._domainkey"), QStringLiteral("TXT"), -1, d.txt,
            d.rsa ? QStringLiteral("Required") : QStringLiteral("Recommended"),
            d.rsa ? QStringLiteral("DKIM public key (RSA) that receivers use to verify our signatures")
                  : QStringLiteral("DKIM public key (Ed25519, RFC 8463); receivers that know it check it too"));
    add(QStringLiteral("_dmarc"), QStringLiteral("TXT"), -1,
        QStringLiteral("v=DMARC1; p=none; rua=mailto:%1; adkim=r; aspf=r").arg(f.reportAddress),
        QStringLiteral("Recommended"),
        QStringLiteral("DMARC: start with p=none and read the reports; then move to p=quarantine and p=reject"));
    const MtaStsPolicy sts = mtaStsPolicy(f);
    add(QStringLiteral("_mta-sts"), QStringLiteral("TXT"), -1, QStringLiteral("v=STSv1; id=%1").arg(sts.id),
        QStringLiteral("Recommended"),
        QStringLiteral("MTA-STS: senders must use TLS to reach you (policy served at https://mta-sts.%1/)")
            .arg(f.domain));
    add(QStringLiteral("mta-sts"), QStringLiteral("CNAME"), -1, hostFqdn, QStringLiteral("Recommended"),
        QStringLiteral("Where the MTA-STS policy is served (this server's web service)"));
    add(QStringLiteral("_smtp._tls"), QStringLiteral("TXT"), -1,
        QStringLiteral("v=TLSRPTv1; rua=mailto:%1").arg(f.reportAddress), QStringLiteral("Optional"),
        QStringLiteral("TLS-RPT: other servers report TLS problems reaching you"));
    addSrvRecords(sheet, hostFqdn);
    add(QStringLiteral("autoconfig"), QStringLiteral("CNAME"), -1, hostFqdn, QStringLiteral("Optional"),
        QStringLiteral("Thunderbird and others fetch client settings from https://autoconfig.%1/").arg(f.domain));
    add(QStringLiteral("autodiscover"), QStringLiteral("CNAME"), -1, hostFqdn, QStringLiteral("Optional"),
        QStringLiteral("Outlook looks for its settings here"));
    add(QStringLiteral("_autodiscover._tcp"), QStringLiteral("SRV"), 0,
        QStringLiteral("0 %1 %2").arg(listenerInfo(ListenerMode::Https).standardPort).arg(hostFqdn),
        QStringLiteral("Optional"), QStringLiteral("Outlook's fallback way to find the autodiscover service"));
    add(QStringLiteral("@"), QStringLiteral("CAA"), -1, QStringLiteral("0 issue \"letsencrypt.org\""),
        QStringLiteral("Optional"),
        QStringLiteral("Only Let's Encrypt may issue certificates for %1 (RFC 8659)").arg(f.domain));
    if (f.dnssecSigned && !f.tlsaSpkiSha256Hex.isEmpty())
        add(QStringLiteral("_%1._tcp.").arg(listenerInfo(ListenerMode::Mx).standardPort) + host, QStringLiteral("TLSA"),
            -1, QStringLiteral("3 1 1 ") + f.tlsaSpkiSha256Hex, QStringLiteral("Optional"),
            QStringLiteral("DANE: senders that validate DNSSEC pin this server's key (RFC 7672)"));
    for (const QHostAddress& a : f.publicV4 + f.publicV6)
        add(reverseName(a) + QLatin1Char('.'), QStringLiteral("PTR"), -1, hostFqdn, QStringLiteral("Required"),
            QStringLiteral("Reverse DNS of %1 must name the mail host; set it in your hosting provider's panel")
                .arg(a.toString()));
    return sheet.out;
}

QString fqdn(const Record& r, const QString& domain) {
    if (r.name == u"@") return domain + QLatin1Char('.');
    if (r.name.endsWith(QLatin1Char('.'))) return r.name;
    return r.name + QLatin1Char('.') + domain + QLatin1Char('.');
}

QString zoneTxt(const QString& value) {
    const QByteArray bytes = value.toUtf8();
    QStringList parts;
    for (qsizetype i = 0; i < bytes.size(); i += 255) {
        QString chunk = QString::fromUtf8(bytes.mid(i, 255));
        chunk.replace(QLatin1Char('\\'), QStringLiteral("\\\\"));
        chunk.replace(QLatin1Char('"'), QStringLiteral("\\\""));
        parts << QLatin1Char('"') + chunk + QLatin1Char('"');
    }
    if (parts.isEmpty()) parts << QStringLiteral("\"\"");
    return parts.join(QLatin1Char(' '));
}

QString renderTable(const QList<Record>& records, const QString& domain) {
    QString out = QStringLiteral("DNS records for %1 (copy each row into your registrar's DNS form)\n\n").arg(domain);
    int w = 4;
    for (const Record& r : records) w = std::max(w, int(r.name.size()));
    w = std::min(w, 40);
    out += QStringLiteral("%1  %2  %3  %4  %5  %6\n")
               .arg(QStringLiteral("Level"), -11)
               .arg(QStringLiteral("Host"), -w)
               .arg(QStringLiteral("Type"), -5)
               .arg(QStringLiteral("Prio"), -4)
               .arg(QStringLiteral("TTL"), -5)
               .arg(QStringLiteral("Value"));
    for (const Record& r : records) {
        out += QStringLiteral("%1  %2  %3  %4  %5  %6\n")
                   .arg(r.level, -11)
                   .arg(r.name, -w)
                   .arg(r.type, -5)
                   .arg(r.priority >= 0 ? QString::number(r.priority) : QStringLiteral("-"), -4)
                   .arg(r.ttl, -5)
                   .arg(r.value);
        out += QStringLiteral("             %1\n").arg(r.why);
    }
    out += QStringLiteral(
               "\nHost is relative to %1 (\"@\" means %1 itself); some registrars want the full name instead.\n"
               "Paste long TXT values as one string; the form splits them if needed.\n")
               .arg(domain);
    return out;
}

QString renderZone(const QList<Record>& records, const QString& domain) {
    QString out = QStringLiteral("; Postern DNS records for %1 (zone-file fragment)\n$ORIGIN %1.\n").arg(domain);
    for (const Record& r : records) {
        QString rdata = r.value;
        if (r.type == u"TXT") rdata = zoneTxt(r.value);
        if (r.priority >= 0) rdata = QString::number(r.priority) + QLatin1Char(' ') + rdata;
        const QString line = QStringLiteral("%1\t%2\tIN\t%3\t%4").arg(fqdn(r, domain)).arg(r.ttl).arg(r.type, rdata);
        out += QStringLiteral("; %1: %2\n").arg(r.level, r.why);
        // PTR records belong to the provider's reverse zone, not to this one; a value we could not
        // know (the public address behind NAT) must be filled in by hand.
        const bool comment = r.type == u"PTR" || r.value.startsWith(QLatin1Char('<'));
        out += (comment ? QStringLiteral("; ") : QString()) + line + QLatin1Char('\n');
    }
    return out;
}

QString renderCsv(const QList<Record>& records, const QString& domain) {
    auto q = [](QString s) {
        return QLatin1Char('"') + s.replace(QLatin1Char('"'), QStringLiteral("\"\"")) + QLatin1Char('"');
    };
    QString out = QStringLiteral("level,host,fqdn,type,priority,ttl,value,why\n");
    for (const Record& r : records)
        out += QStringList{q(r.level),
                           q(r.name),
                           q(fqdn(r, domain)),
                           q(r.type),
                           r.priority >= 0 ? QString::number(r.priority) : QString(),
                           QString::number(r.ttl),
                           q(r.value),
                           q(r.why)}
                   .join(QLatin1Char(',')) +
               QLatin1Char('\n');
    return out;
}

QByteArray renderJson(const QList<Record>& records, const QString& domain) {
    QJsonArray arr;
    for (const Record& r : records) {
        QJsonObject o;
        o.insert(QStringLiteral("level"), r.level);
        o.insert(QStringLiteral("host"), r.name);
        o.insert(QStringLiteral("fqdn"), fqdn(r, domain));
        o.insert(QStringLiteral("type"), r.type);
        if (r.priority >= 0) o.insert(QStringLiteral("priority"), r.priority);
        o.insert(QStringLiteral("ttl"), r.ttl);
        o.insert(QStringLiteral("value"), r.value);
        o.insert(QStringLiteral("why"), r.why);
        arr.append(o);
    }
    QJsonObject root;
    root.insert(QStringLiteral("domain"), domain);
    root.insert(QStringLiteral("records"), arr);
    return QJsonDocument(root).toJson(QJsonDocument::Indented);
}

}  // namespace postern::records
