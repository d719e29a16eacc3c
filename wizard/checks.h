// checks.h — the wizard's checks: small functions that each return findings.
//
// A Finding says what was checked (id), how it went (ok / warning /
// problem), what was seen, and what to do about it, in plain words. No check
// stops the wizard by itself; the flow decides. The packet filter is not a
// check here: the wizard's firewall step asks the firewall library (firewall/).
// Network checks take explicit targets and short timeouts so that tests can
// point them at loopback servers.
#pragma once

#include "core/dns.h"

#include <QHostAddress>
#include <QList>
#include <QString>

namespace postern::wizard {

enum class Severity { Ok, Warning, Problem };
QString toString(Severity s);

struct Finding {
    QString id;
    Severity severity = Severity::Ok;
    QString observed;
    QString remedy;  // empty for ok
};

// Can we listen on address:port? Names the program holding it when not.
Finding checkPort(const QString& service, const QHostAddress& bind, quint16 port);
// Can this host open outbound TCP connections to port 25 (many providers block it)?
// Id "outbound25"; when `host` cannot even be resolved the finding is "dns.resolution"
// instead (a problem: name resolution does not work, so port 25 could not be tried).
Finding checkOutbound25(const QString& host, quint16 port, int timeoutMs);
// Does `hostname` resolve to one of `ours`?
Finding checkHostnameResolves(Resolver& dns, const QString& hostname, const QList<QHostAddress>& ours);
// Reverse DNS of each public address should name `hostname`.
QList<Finding> checkReverseDns(Resolver& dns, const QString& hostname, const QList<QHostAddress>& publicAddresses);
// Is an IPv4 address listed on one of the DNS blocklists `zones`?
QList<Finding> checkBlocklists(Resolver& dns, const QList<QHostAddress>& publicV4, const QStringList& zones);

}  // namespace postern::wizard
