// checks.cpp — see checks.h.
#include "checks.h"

#include "core/sockets.h"

#include <QTcpServer>
#include <QTcpSocket>

namespace postern::wizard {

QString toString(Severity s) {
    switch (s) {
        case Severity::Ok:
            return QStringLiteral("ok");
        case Severity::Warning:
            return QStringLiteral("warning");
        case Severity::Problem:
            return QStringLiteral("problem");
    }
    return {};
}

Finding checkPort(const QString& service, const QHostAddress& bind, quint16 port) {
    Finding f;
    f.id = QStringLiteral("port.%1").arg(service);
    QTcpServer probe;
    if (probe.listen(bind, port)) {
        f.observed = QStringLiteral("%1 port %2 is free").arg(service).arg(port);
        return f;
    }
    if (probe.serverError() == QAbstractSocket::SocketAccessError) {
        f.severity = Severity::Problem;
        f.observed = QStringLiteral("%1 port %2 needs root to bind").arg(service).arg(port);
        f.remedy = QStringLiteral(
            "run the appliance as root (the daemons drop privileges after binding), or choose a port above 1023");
        return f;
    }
    f.severity = Severity::Problem;
    const QList<ListeningSocket> holders = listenersOnPort(port);
    QStringList names;
    for (const ListeningSocket& h : holders)
        if (!h.program.isEmpty()) names << QStringLiteral("%1 (pid %2)").arg(h.program).arg(h.pid);
    names.removeDuplicates();
    f.observed = QStringLiteral("%1 port %2 is already in use%3")
                     .arg(service)
                     .arg(port)
                     .arg(names.isEmpty() ? QString() : QStringLiteral(" by ") + names.join(QStringLiteral(", ")));
    QString hint;
    const QString all = names.join(QLatin1Char(' '));
    if (all.contains(QStringLiteral("master")))
        hint = QStringLiteral(" — this looks like Postfix: systemctl disable --now postfix");
    else if (all.contains(QStringLiteral("exim")))
        hint = QStringLiteral(" — this looks like Exim: systemctl disable --now exim4");
    else if (all.contains(QStringLiteral("dovecot")))
        hint = QStringLiteral(" — this is Dovecot: systemctl disable --now dovecot");
    else if (all.contains(QStringLiteral("sendmail")))
        hint = QStringLiteral(" — this is Sendmail: systemctl disable --now sendmail");
    f.remedy = QStringLiteral("stop the other mail server, or give Postern another port%1").arg(hint);
    return f;
}

Finding checkOutbound25(const QString& host, quint16 port, int timeoutMs) {
    Finding f;
    f.id = QStringLiteral("outbound25");
    QTcpSocket s;
    s.connectToHost(host, port);
    if (s.waitForConnected(timeoutMs)) {
        f.observed = QStringLiteral("outbound connections to %1 port %2 work").arg(host).arg(port);
        s.abort();
        return f;
    }
    // The name did not resolve (or the lookup never answered): that is not a blocked port.
    if (s.error() == QAbstractSocket::HostNotFoundError || s.state() == QAbstractSocket::HostLookupState) {
        const QString why = s.state() == QAbstractSocket::HostLookupState
                                ? QStringLiteral("no answer within %1 ms").arg(timeoutMs)
                                : s.errorString();
        s.abort();
        f.id = QStringLiteral("dns.resolution");
        f.severity = Severity::Problem;
        f.observed =
            QStringLiteral(
                "name resolution failed: %1 could not be looked up (%2), so outbound port %3 could not be checked")
                .arg(host, why)
                .arg(port);
        f.remedy =
            QStringLiteral(
                "this machine cannot resolve names, and a mail server cannot deliver without DNS: check the name "
                "servers "
                "in /etc/resolv.conf (in a container: the --dns option of podman/docker run) and that they answer "
                "(e.g. `getent hosts %1`), then run postern-wizard again")
                .arg(host);
        return f;
    }
    f.severity = Severity::Warning;
    f.observed = QStringLiteral("could not connect to %1 port %2 within %3 ms (%4)")
                     .arg(host)
                     .arg(port)
                     .arg(timeoutMs)
                     .arg(s.errorString());
    f.remedy = QStringLiteral(
        "many hosting providers block outbound port 25: ask them to open it, or configure a smarthost "
        "(relay.host) that accepts your mail on port 587");
    return f;
}

Finding checkHostnameResolves(Resolver& dns, const QString& hostname, const QList<QHostAddress>& ours) {
    Finding f;
    f.id = QStringLiteral("dns.hostname");
    QList<QHostAddress> found;
    bool failed = false;
    for (DnsType t : {DnsType::A, DnsType::AAAA}) {
        DnsAnswer a = dns.query(hostname, t);
        if (!a.ok() && !a.isNegative()) failed = true;
        for (const DnsRecord& r : a.records) found << r.address;
    }
    if (found.isEmpty()) {
        f.severity = failed ? Severity::Warning : Severity::Problem;
        f.observed = failed ? QStringLiteral("could not look up %1 (DNS not reachable)").arg(hostname)
                            : QStringLiteral("%1 has no A or AAAA record yet").arg(hostname);
        f.remedy = QStringLiteral("publish the A (and AAAA) record for %1 shown below").arg(hostname);
        return f;
    }
    QStringList shown;
    bool match = false;
    for (const QHostAddress& a : found) {
        shown << a.toString();
        if (ours.contains(a)) match = true;
    }
    f.observed = QStringLiteral("%1 resolves to %2").arg(hostname, shown.join(QStringLiteral(", ")));
    if (!match) {
        f.severity = Severity::Warning;
        f.remedy = QStringLiteral(
            "none of these addresses is on this machine; fine behind NAT (port forwarding), otherwise fix the record");
    }
    return f;
}

QList<Finding> checkReverseDns(Resolver& dns, const QString& hostname, const QList<QHostAddress>& publicAddresses) {
    QList<Finding> out;
    for (const QHostAddress& a : publicAddresses) {
        Finding f;
        f.id = QStringLiteral("dns.ptr.%1").arg(a.toString());
        DnsAnswer ans = dns.query(reverseName(a), DnsType::PTR);
        QStringList names;
        for (const DnsRecord& r : ans.records) names << r.target;
        if (names.contains(hostname)) {
            f.observed = QStringLiteral("reverse DNS of %1 is %2").arg(a.toString(), hostname);
        } else {
            f.severity = Severity::Problem;
            f.observed = names.isEmpty() ? QStringLiteral("%1 has no reverse DNS (PTR) record").arg(a.toString())
                                         : QStringLiteral("reverse DNS of %1 is %2, not %3")
                                               .arg(a.toString(), names.join(QStringLiteral(", ")), hostname);
            f.remedy = QStringLiteral(
                           "ask your hosting provider to set the PTR of %1 to %2 (large mail providers refuse mail "
                           "without it)")
                           .arg(a.toString(), hostname);
        }
        out << f;
    }
    return out;
}

QList<Finding> checkBlocklists(Resolver& dns, const QList<QHostAddress>& publicV4, const QStringList& zones) {
    QList<Finding> out;
    for (const QHostAddress& a : publicV4) {
        const quint32 v = a.toIPv4Address();
        const QString rev =
            QStringLiteral("%1.%2.%3.%4").arg(v & 0xff).arg((v >> 8) & 0xff).arg((v >> 16) & 0xff).arg(v >> 24);
        for (const QString& zone : zones) {
            Finding f;
            f.id = QStringLiteral("dnsbl.%1.%2").arg(zone, a.toString());
            DnsAnswer ans = dns.query(rev + QLatin1Char('.') + zone, DnsType::A);
            bool listed = false;
            for (const DnsRecord& r : ans.records)
                if ((r.address.toIPv4Address() >> 24) == 127) listed = true;
            if (listed) {
                f.severity = Severity::Problem;
                f.observed = QStringLiteral("%1 is listed on %2").arg(a.toString(), zone);
                f.remedy = QStringLiteral(
                    "request delisting at the list's web site; until then many receivers will refuse your mail");
            } else if (!ans.ok() && !ans.isNegative()) {
                f.severity = Severity::Warning;
                f.observed = QStringLiteral("could not ask %1 (%2)").arg(zone, toString(ans.status));
                f.remedy = QStringLiteral("check again later");
            } else {
                f.observed = QStringLiteral("%1 is not listed on %2").arg(a.toString(), zone);
            }
            out << f;
        }
    }
    return out;
}

}  // namespace postern::wizard
