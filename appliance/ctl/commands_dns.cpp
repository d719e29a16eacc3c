// commands_dns.cpp — posternctl dns lookup: one query through the configured
// resolver (dns.servers), printed in zone-file form with the DNSSEC status.
// The wizard's `dns records` / `dns check` commands live with the wizard.
#include "ctl.h"

#include "core/dns.h"

namespace postern::ctl {

namespace {

Result<DnsType> parseType(const QString& t) {
    static const QList<DnsType> all = {DnsType::A,    DnsType::AAAA, DnsType::MX,  DnsType::TXT, DnsType::PTR,
                                       DnsType::TLSA, DnsType::SRV,  DnsType::CAA, DnsType::NS,  DnsType::SOA,
                                       DnsType::CNAME, DnsType::DS, DnsType::DNSKEY};
    for (DnsType d : all)
        if (toString(d).compare(t, Qt::CaseInsensitive) == 0) return d;
    return Result<DnsType>::fail(QStringLiteral("unknown record type '%1'").arg(t));
}

int dnsLookup(CtlContext& ctx) {
    if (ctx.args.size() != 2) return ctx.usage(QStringLiteral("usage: dns lookup NAME TYPE [--server IP[:PORT]]"));
    auto type = parseType(ctx.args.at(1));
    if (!type) return ctx.usage(type.errorMessage());
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    std::unique_ptr<Resolver> resolver;
    if (ctx.has(QStringLiteral("server"))) {
        auto s = parseDnsServer(ctx.opt(QStringLiteral("server")));
        if (!s) return ctx.usage(s.errorMessage());
        resolver = std::make_unique<LdnsResolver>(QList<DnsServer>{*s}, int(config.durationMs(QStringLiteral("dns.timeout"))));
    } else {
        resolver = makeResolver(config);
    }
    DnsAnswer a = resolver->query(ctx.args.at(0), *type);
    ctx.out << ";; status: " << toString(a.status) << (a.authenticated ? ", authenticated (AD)" : ", not authenticated");
    if (!a.error.isEmpty()) ctx.out << ", " << a.error;
    ctx.out << "\n";
    for (const DnsRecord& r : a.records)
        ctx.out << r.name << ".\t" << r.ttl << "\tIN\t" << toString(r.type) << "\t" << r.rdata << "\n";
    ctx.out.flush();
    return a.ok() || a.isNegative() ? 0 : 1;
}

}  // namespace

void addDnsCommands(QList<Command>& out) {
    out << Command{{QStringLiteral("dns"), QStringLiteral("lookup")}, QStringLiteral("NAME TYPE [--server IP[:PORT]]"),
                   QStringLiteral("query DNS through Postern's resolver"), {QStringLiteral("server")}, {}, dnsLookup};
}

}  // namespace postern::ctl
