// model.cpp — see model.h.
#include "model.h"

#include "core/services.h"

#include <arpa/inet.h>
#include <netdb.h>

namespace postern::firewall {

QString toString(IpFamily f) {
    return f == IpFamily::V4 ? QStringLiteral("ipv4") : QStringLiteral("ipv6");
}

QString toString(Backend b) {
    switch (b) {
        case Backend::Nftables:
            return QStringLiteral("nftables");
        case Backend::IptablesNft:
            return QStringLiteral("iptables-nft");
        case Backend::IptablesLegacy:
            return QStringLiteral("iptables-legacy");
        case Backend::Ufw:
            return QStringLiteral("ufw");
        case Backend::Firewalld:
            return QStringLiteral("firewalld");
    }
    return {};
}

bool isIptables(Backend b) {
    return b == Backend::IptablesNft || b == Backend::IptablesLegacy;
}

QString toString(Verdict v) {
    switch (v) {
        case Verdict::None:
            return QStringLiteral("continue");
        case Verdict::Accept:
            return QStringLiteral("accept");
        case Verdict::Drop:
            return QStringLiteral("drop");
        case Verdict::Reject:
            return QStringLiteral("reject");
        case Verdict::Jump:
            return QStringLiteral("jump");
        case Verdict::Goto:
            return QStringLiteral("goto");
        case Verdict::Return:
            return QStringLiteral("return");
        case Verdict::Redirect:
            return QStringLiteral("redirect");
        case Verdict::Unknown:
            return QStringLiteral("unknown");
    }
    return {};
}

QString toString(Hook h) {
    switch (h) {
        case Hook::None:
            return QString();
        case Hook::Prerouting:
            return QStringLiteral("prerouting");
        case Hook::Input:
            return QStringLiteral("input");
        case Hook::Forward:
            return QStringLiteral("forward");
        case Hook::Output:
            return QStringLiteral("output");
        case Hook::Postrouting:
            return QStringLiteral("postrouting");
        case Hook::Ingress:
            return QStringLiteral("ingress");
        case Hook::Other:
            return QStringLiteral("other");
    }
    return {};
}

int protocolNumber(const QString& name) {
    bool ok = false;
    const int n = name.toInt(&ok);
    if (ok) return (n >= 0 && n <= 255) ? n : -1;
    static const QList<QPair<const char*, int>> kKnown = {
        {"tcp", 6},   {"udp", 17},      {"icmp", 1}, {"igmp", 2}, {"ipv6-icmp", 58}, {"icmpv6", 58}, {"sctp", 132},
        {"dccp", 33}, {"udplite", 136}, {"esp", 50}, {"ah", 51},  {"gre", 47},       {"comp", 108},  {"ipv6", 41}};
    const QString lower = name.toLower();
    for (const auto& [n2, num] : kKnown)
        if (lower == QLatin1String(n2)) return num;
    const QByteArray latin = lower.toLatin1();
    if (const protoent* p = ::getprotobyname(latin.constData())) return p->p_proto;
    return -1;
}

int servicePort(const QString& name) {
    bool ok = false;
    const int n = name.toInt(&ok);
    if (ok) return (n >= 0 && n <= 65535) ? n : -1;
    // Our listeners' names are their IANA service names (core/services.h); two more that
    // operators' rules commonly name. /etc/services may be missing in a minimal image.
    if (const int ours = serviceNamePort(name); ours >= 0) return ours;
    static const QList<QPair<const char*, int>> kKnown = {{"ssh", 22}, {"domain", 53}};
    const QString lower = name.toLower();
    for (const auto& [n2, num] : kKnown)
        if (lower == QLatin1String(n2)) return num;
    const QByteArray latin = lower.toLatin1();
    if (const servent* s = ::getservbyname(latin.constData(), "tcp")) return ntohs(quint16(s->s_port));
    return -1;
}

bool PortSet::contains(int port) const {
    for (const auto& r : ranges)
        if (port >= r.first && port <= r.second) return true;
    return false;
}

QString PortSet::toString() const {
    QStringList parts;
    for (const auto& r : ranges)
        parts << (r.first == r.second ? QString::number(r.first) : QStringLiteral("%1-%2").arg(r.first).arg(r.second));
    return parts.join(QLatin1Char(','));
}

bool Chain::appliesTo(IpFamily f) const {
    if (family == u"inet") return true;
    if (family == u"ip") return f == IpFamily::V4;
    if (family == u"ip6") return f == IpFamily::V6;
    return false;  // netdev, bridge, arp: not on the IP input path
}

QString Chain::id() const {
    return QStringLiteral("%1 %2 %3 %4").arg(toString(backend), family, table, name);
}

const Chain* Ruleset::find(Backend backend, const QString& family, const QString& table, const QString& name) const {
    for (const Chain& c : chains)
        if (c.backend == backend && c.family == family && c.table == table && c.name == name) return &c;
    return nullptr;
}

void Ruleset::append(const Ruleset& other) {
    chains << other.chains;
    notes << other.notes;
}

}  // namespace postern::firewall
