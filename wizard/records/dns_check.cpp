// dns_check.cpp — see dns_check.h.
#include "dns_check.h"

#include "host_facts.h"

#include "core/config.h"
#include "core/setting_keys.h"

namespace postern::records {

QString toString(RecordCheck::Status s) {
    switch (s) {
        case RecordCheck::Status::Ok:
            return QStringLiteral("ok");
        case RecordCheck::Status::Missing:
            return QStringLiteral("missing");
        case RecordCheck::Status::Wrong:
            return QStringLiteral("wrong");
        case RecordCheck::Status::Unknown:
            return QStringLiteral("unknown");
    }
    return {};
}

bool DnsCheckReport::requiredOk() const {
    for (const RecordCheck& c : records)
        if (c.record.level == u"Required" && c.record.type != u"PTR" && c.status != RecordCheck::Status::Ok)
            return false;
    return true;
}

namespace {

DnsType typeOf(const QString& t) {
    if (t == u"MX") return DnsType::MX;
    if (t == u"A") return DnsType::A;
    if (t == u"AAAA") return DnsType::AAAA;
    if (t == u"TXT") return DnsType::TXT;
    if (t == u"SRV") return DnsType::SRV;
    if (t == u"CNAME") return DnsType::CNAME;
    if (t == u"CAA") return DnsType::CAA;
    if (t == u"TLSA") return DnsType::TLSA;
    return DnsType::PTR;
}

QString squash(QString s) {
    s.remove(QLatin1Char(' '));
    return s.toLower();
}

QString shown(const DnsRecord& r) {
    if (r.type == DnsType::TXT) return QString::fromUtf8(r.text());
    return r.rdata;
}

// Whether one published record `r` is what the wanted record `rec` asks for. SPF, DMARC and
// TLS-RPT records count when of the right kind (the administrator may have tuned them); a
// placeholder address ("<...>") accepts any address.
bool matches(const Record& rec, const DnsRecord& r) {
    const QString v = shown(r);
    if (rec.type == u"MX") return r.preference == rec.priority && r.target + QLatin1Char('.') == rec.value;
    if (rec.type == u"A" || rec.type == u"AAAA")
        return rec.value.startsWith(QLatin1Char('<')) || QHostAddress(rec.value) == r.address;
    if (rec.type == u"SRV") return squash(r.rdata) == squash(QString::number(rec.priority) + rec.value);
    if (rec.type == u"TXT") {
        if (rec.value.startsWith(u"v=spf1")) return v.startsWith(u"v=spf1");
        if (rec.value.startsWith(u"v=DMARC1")) return v.startsWith(u"v=DMARC1");
        if (rec.value.startsWith(u"v=TLSRPTv1")) return v.startsWith(u"v=TLSRPTv1");
        return squash(v) == squash(rec.value);
    }
    if (rec.type == u"CNAME" || rec.type == u"PTR") return r.target + QLatin1Char('.') == rec.value;
    return squash(r.rdata) == squash(rec.value);
}

// Looks one wanted record up (PTR through the recursive resolver, the rest at the
// authoritative servers) and says what was found and how to fix it.
RecordCheck checkRecord(const Record& rec, const HostFacts& facts, Resolver& authoritative, Resolver& recursive) {
    RecordCheck c;
    c.record = rec;
    const QString name = fqdn(rec, facts.domain);
    Resolver& dns = rec.type == u"PTR" ? recursive : authoritative;
    const DnsType type = typeOf(rec.type);
    DnsAnswer a = dns.query(name.left(name.size() - 1), type);
    if (type == DnsType::CNAME && a.status == DnsAnswer::Status::NoData) {
        // A or AAAA at the name instead of the suggested CNAME is just as good.
        DnsAnswer addr = dns.query(name.left(name.size() - 1), DnsType::A);
        if (addr.ok()) {
            c.status = RecordCheck::Status::Ok;
            c.found = QStringLiteral("A ") + addr.records.first().rdata;
            return c;
        }
    }
    if (!a.ok() && !a.isNegative()) {
        c.status = RecordCheck::Status::Unknown;
        c.found = QStringLiteral("query failed: %1").arg(a.error.isEmpty() ? toString(a.status) : a.error);
        c.fix = QStringLiteral("check that the domain's name servers answer");
        return c;
    }
    QStringList found;
    for (const DnsRecord& r : a.records) found << shown(r);
    c.found = found.join(QStringLiteral(" | "));
    bool match = false;
    for (const DnsRecord& r : a.records) match |= matches(rec, r);
    if (match) {
        c.status = RecordCheck::Status::Ok;
    } else if (a.records.isEmpty()) {
        c.status = RecordCheck::Status::Missing;
        c.fix = rec.type == u"PTR"
                    ? QStringLiteral("ask your hosting provider to set this PTR record")
                    : QStringLiteral("add %1 %2 %3 at your registrar").arg(rec.name, rec.type, rec.value);
    } else {
        c.status = RecordCheck::Status::Wrong;
        c.fix = QStringLiteral("change it to: %1")
                    .arg(rec.priority >= 0 ? QString::number(rec.priority) + QLatin1Char(' ') + rec.value : rec.value);
    }
    return c;
}

// Notes on DNSSEC, the resolver's validation and each address of the MX host (reverse DNS,
// whether it is this server's).
QStringList hostNotes(const HostFacts& facts, Resolver& authoritative, Resolver& recursive) {
    QStringList notes;
    DnsAnswer dnskey = authoritative.query(facts.domain, DnsType::DNSKEY);
    notes << (dnskey.ok() ? QStringLiteral("DNSSEC: the zone is signed (DNSKEY present)")
                          : QStringLiteral("DNSSEC: the zone is not signed; DANE (TLSA) needs DNSSEC"));
    DnsAnswer mxA = recursive.query(facts.hostname, DnsType::A);
    if (!mxA.ok()) return notes;
    notes << QStringLiteral("validating resolver: %1")
                 .arg(mxA.authenticated ? QStringLiteral("yes (AD set)") : QStringLiteral("no AD bit"));
    for (const DnsRecord& r : mxA.records) {
        DnsAnswer ptr = recursive.query(reverseName(r.address), DnsType::PTR);
        bool fcrdns = false;
        for (const DnsRecord& p : ptr.records) fcrdns |= p.target == facts.hostname;
        notes << QStringLiteral("%1 -> %2 -> %3 (%4)")
                     .arg(facts.hostname, r.address.toString(),
                          ptr.records.isEmpty() ? QStringLiteral("no PTR") : ptr.records.first().target,
                          fcrdns ? QStringLiteral("forward-confirmed reverse DNS ok")
                                 : QStringLiteral("reverse DNS does not match"));
        if (!facts.publicV4.isEmpty() || !facts.publicV6.isEmpty()) {
            const bool ours = facts.publicV4.contains(r.address) || facts.publicV6.contains(r.address);
            notes << QStringLiteral("%1 %2 this server's public address")
                         .arg(r.address.toString(), ours ? QStringLiteral("is") : QStringLiteral("is NOT"));
        }
    }
    return notes;
}

}  // namespace

DnsCheckReport checkPublished(const HostFacts& facts, Resolver& authoritative, Resolver& recursive,
                              QDeadlineTimer deadline) {
    DnsCheckReport report;
    const QList<Record> wanted = buildRecords(facts);
    for (const Record& rec : wanted) {
        if (deadline.hasExpired()) {
            RecordCheck c;
            c.record = rec;
            c.status = RecordCheck::Status::Unknown;
            c.found = QStringLiteral("not asked: the check's time limit passed (slow or silent name servers)");
            c.fix = QStringLiteral("check that the domain's name servers answer");
            report.records << c;
            continue;
        }
        report.records << checkRecord(rec, facts, authoritative, recursive);
    }
    if (deadline.hasExpired()) {
        report.notes << QStringLiteral("DNSSEC and reverse DNS not checked: the check's time limit passed");
        return report;
    }
    report.notes << hostNotes(facts, authoritative, recursive);
    return report;
}

Result<DnsCheckReport> runDnsCheck(const DnsCheckRequest& request) {
    auto config = Config::load(request.configDir);
    if (!config) return config.error();
    auto facts = hostFacts(request.configDir, request.publicAddresses, request.domain);
    if (!facts) return facts.error();
    const int timeout = int(get(*config, keys::dns::timeout));
    std::unique_ptr<Resolver> recursive = makeResolver(*config);
    std::unique_ptr<Resolver> authoritative;
    const QString server = request.server.isEmpty() ? get(*config, keys::dns::checkServer) : request.server;
    if (!server.isEmpty()) {
        auto s = parseDnsServer(server);
        if (!s) return s.error();
        authoritative = std::make_unique<LdnsResolver>(QList<DnsServer>{*s}, timeout, false);
    } else {
        // Ask the domain's own name servers, not a cache.
        QList<DnsServer> servers;
        for (const DnsRecord& ns : recursive->query(facts->domain, DnsType::NS).records)
            for (DnsType t : {DnsType::A, DnsType::AAAA})
                for (const DnsRecord& a : recursive->query(ns.target, t).records) servers << DnsServer{a.address, 53};
        if (servers.isEmpty())
            return Result<DnsCheckReport>::fail(
                QStringLiteral("no name servers found for %1 (is the domain registered and delegated?)")
                    .arg(facts->domain));
        authoritative = std::make_unique<LdnsResolver>(servers, timeout, false);
    }
    return checkPublished(*facts, *authoritative, *recursive, request.deadline);
}

QString renderCheck(const DnsCheckReport& report) {
    QString out;
    for (const RecordCheck& c : report.records) {
        out += QStringLiteral("%1  %2 %3  %4\n")
                   .arg(toString(c.status), -8)
                   .arg(c.record.name, -24)
                   .arg(c.record.type, -5)
                   .arg(c.record.level);
        if (c.status != RecordCheck::Status::Ok) {
            out += QStringLiteral("          expected: %1%2\n")
                       .arg(c.record.priority >= 0 ? QString::number(c.record.priority) + QLatin1Char(' ') : QString(),
                            c.record.value);
            out +=
                QStringLiteral("          found:    %1\n").arg(c.found.isEmpty() ? QStringLiteral("nothing") : c.found);
            if (!c.fix.isEmpty()) out += QStringLiteral("          fix:      %1\n").arg(c.fix);
        }
    }
    for (const QString& n : report.notes) out += QStringLiteral("note: %1\n").arg(n);
    out += report.requiredOk() ? QStringLiteral("All required records are published.\n")
                               : QStringLiteral("Some required records are missing or wrong.\n");
    return out;
}

}  // namespace postern::records
