// commands_dns.cpp — posternctl dns lookup|records|check.
//   lookup   one query through the configured resolver (dns.servers), printed
//            in zone-file form with the DNSSEC status;
//   records  the records to publish (the wizard's record set) as a table, zone
//            file, CSV or JSON (the web panel's Domains page uses the same
//            records::hostFacts + records::render*);
//   check    records::runDnsCheck (the web panel's dashboard runs the same):
//            asks the domain's authoritative servers (or --server, or
//            dns.check_server) and reports per record ok / missing / wrong with
//            the fix; exit 1 when a required record is not right.
//   records and check: --domain D for another local domain than primary_domain
//   (its own DKIM keys); --public-ip defaults to public_addresses.
#include "ctl.h"

#include "core/dns.h"
#include "core/setting_keys.h"
#include "records/dns_check.h"
#include "records/host_facts.h"

#include <QHostAddress>

namespace postern::ctl {

namespace {

Result<DnsType> parseType(const QString& t) {
    static const QList<DnsType> all = {DnsType::A,     DnsType::AAAA, DnsType::MX,    DnsType::TXT, DnsType::PTR,
                                       DnsType::TLSA,  DnsType::SRV,  DnsType::CAA,   DnsType::NS,  DnsType::SOA,
                                       DnsType::CNAME, DnsType::DS,   DnsType::DNSKEY};
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
        resolver = std::make_unique<LdnsResolver>(QList<DnsServer>{*s}, int(get(config, keys::dns::timeout)));
    } else {
        resolver = makeResolver(config);
    }
    DnsAnswer a = resolver->query(ctx.args.at(0), *type);
    ctx.out << ";; status: " << toString(a.status)
            << (a.authenticated ? ", authenticated (AD)" : ", not authenticated");
    if (!a.error.isEmpty()) ctx.out << ", " << a.error;
    ctx.out << "\n";
    for (const DnsRecord& r : a.records)
        ctx.out << r.name << ".\t" << r.ttl << "\tIN\t" << toString(r.type) << "\t" << r.rdata << "\n";
    ctx.out.flush();
    return a.ok() || a.isNegative() ? 0 : 1;
}

QList<QHostAddress> publicIps(CtlContext& ctx) {
    QList<QHostAddress> out;
    for (const QString& ip : ctx.opt(QStringLiteral("public-ip")).split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        QHostAddress a;
        if (a.setAddress(ip.trimmed())) out << a;
    }
    return out;
}

int dnsRecords(CtlContext& ctx) {
    auto facts = records::hostFacts(ctx.configDir, publicIps(ctx), ctx.opt(QStringLiteral("domain")));
    if (!facts) return ctx.fail(facts.errorMessage());
    const QList<records::Record> recs = records::buildRecords(*facts);
    if (ctx.has(QStringLiteral("zone")))
        ctx.out << records::renderZone(recs, facts->domain);
    else if (ctx.has(QStringLiteral("csv")))
        ctx.out << records::renderCsv(recs, facts->domain);
    else if (ctx.has(QStringLiteral("json")))
        ctx.out << records::renderJson(recs, facts->domain);
    else
        ctx.out << records::renderTable(recs, facts->domain);
    ctx.out.flush();
    return 0;
}

int dnsCheck(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    if (ctx.has(QStringLiteral("server")))
        if (auto s = parseDnsServer(ctx.opt(QStringLiteral("server"))); !s) return ctx.usage(s.errorMessage());
    auto report = records::runDnsCheck(
        {ctx.configDir, ctx.opt(QStringLiteral("domain")), publicIps(ctx), ctx.opt(QStringLiteral("server"))});
    if (!report) return ctx.fail(report.errorMessage());
    ctx.out << records::renderCheck(*report);
    ctx.out.flush();
    return report->requiredOk() ? 0 : 1;
}

}  // namespace

void addDnsCommands(QList<Command>& out) {
    out << Command{{QStringLiteral("dns"), QStringLiteral("lookup")},
                   QStringLiteral("NAME TYPE [--server IP[:PORT]]"),
                   QStringLiteral("query DNS through Postern's resolver"),
                   {QStringLiteral("server")},
                   {},
                   dnsLookup};
    out << Command{{QStringLiteral("dns"), QStringLiteral("records")},
                   QStringLiteral("[--zone|--csv|--json] [--public-ip IP[,IP]] [--domain DOMAIN]"),
                   QStringLiteral("the DNS records to publish for this server"),
                   {QStringLiteral("public-ip"), QStringLiteral("domain")},
                   {QStringLiteral("zone"), QStringLiteral("csv"), QStringLiteral("json")},
                   dnsRecords};
    out << Command{{QStringLiteral("dns"), QStringLiteral("check")},
                   QStringLiteral("[--server IP[:PORT]] [--public-ip IP[,IP]] [--domain DOMAIN]"),
                   QStringLiteral("compare the published records with the expected ones"),
                   {QStringLiteral("server"), QStringLiteral("public-ip"), QStringLiteral("domain")},
                   {},
                   dnsCheck};
}

}  // namespace postern::ctl
