// resolver_engine.h — the bundled DNS resolver: unbound, a local caching, DNSSEC-validating
// resolver the supervisor runs when dns.resolver = bundled and dns.servers is empty
// (core/dns.h bundledResolverInUse). Postern's DNS (configuredDnsServers) and Rspamd
// (core/spam_engine.h) then ask it. DNSBLs such as Spamhaus refuse queries that come
// through the big public resolvers, and DANE needs a validating resolver we can trust:
// one on loopback is both.
//
// Interface:
//   resolverPaths(config, configDir)  every path in one place (see ResolverPaths).
//   unboundConfig(config, paths, anchor)  the text of unbound.conf (pure: unit-tested):
//       listens on dns.resolver_listen only (loopback, UDP and TCP), no daemonizing, no
//       chroot, no user switch (the supervisor already runs it as system_user), logs to
//       stderr, no pid file; small caches (4 MB messages, 8 MB RRsets) and one thread;
//       refuses queries from anything but loopback; the remote-control channel only on a
//       unix socket in the run folder without certificates (readiness, posternctl status);
//       the root trust anchor (see RootAnchor); dns.forward_zones as forward-zone blocks,
//       each domain-insecure (not validated) and a transparent local-zone (so a special-use
//       name unbound answers itself, such as .test, is asked too), and do-not-query-localhost off when one of
//       them points at loopback.
//   findRootAnchor()  the trust anchor: /usr/share/dns/root.key (Debian dns-root-data,
//       kept current by package updates), else /var/lib/unbound/root.key (unbound-anchor),
//       else the built-in DS of the root KSK-2017 (key tag 20326), so the resolver starts
//       with no network and no file written beforehand. Root hints: dns-root-data's
//       /usr/share/dns/root.hints when present, else unbound's compiled-in list.
//   writeResolverConfig(config, paths, ids)  writes <config>/dns/unbound.conf as root
//       (root:<daemon group> 0640 in a 0750 folder).
//   unboundCommand(paths)  `unbound -d -p -c <conf>`.
//   resolverEngineSocket(paths)  the control socket: accepting connections means ready.
//   parseForwardZone(text)  "zone=ip[:port]" -> zone and server (Result).
// Security: unbound runs as system_user (the supervisor drops root before exec) and reads a
// root-owned configuration; it answers loopback only (access-control) and binds loopback only
// (bundledResolverAddress refuses anything else). Answers of forwarded zones are not validated:
// they are the admin's own servers.
// Limits: message cache 4 MB, RRset cache 8 MB, 1 thread; kMaxForwardZones forward zones.
#pragma once

#include "dns.h"
#include "process.h"
#include "result.h"

#include <QString>
#include <QStringList>

namespace postern {

class Config;

inline constexpr int kMaxForwardZones = 64;

struct ResolverPaths {
    QString configDir;      // <config>/dns (0750 root:<group>)
    QString unboundConf;    // <config>/dns/unbound.conf
    QString runDir;         // <run>/dns (daemon user): working folder, control socket
    QString controlSocket;  // <run>/dns/unbound.ctl
};
ResolverPaths resolverPaths(const Config& config, const QString& configDir);

struct RootAnchor {
    QString file;       // a trust-anchor file, or empty: use ds
    QString ds;         // ". IN DS ..." when no file was found
    QString rootHints;  // root hints file, or empty: unbound's built-in list
};
RootAnchor findRootAnchor();

struct ForwardZone {
    QString zone;  // lower case, no final dot
    DnsServer server;
};
Result<ForwardZone> parseForwardZone(const QString& text);

Result<QByteArray> unboundConfig(const Config& config, const ResolverPaths& paths, const RootAnchor& anchor);
Status writeResolverConfig(const Config& config, const ResolverPaths& paths, const UserIds& ids);

struct ResolverCommand {
    QString program;
    QStringList arguments;
};
ResolverCommand unboundCommand(const ResolverPaths& paths);
QString resolverEngineSocket(const ResolverPaths& paths);

}  // namespace postern
