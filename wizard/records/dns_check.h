// dns_check.h — checking the published DNS records against what Postern expects
// (in the records library: `posternctl dns check`, the wizard and the web panel's
// dashboard run this one check).
//
// checkPublished(facts, authoritative, recursive): for every record of
// buildRecords(facts), asks the domain's authoritative servers directly
// (`authoritative`, with recursion off, so no cache hides a fresh or missing
// record) and classifies it: ok, missing, or wrong (with what was found) and
// the fix. Policy records the user may tighten (SPF, DMARC) are checked for
// presence and version tag, not byte for byte. PTR records live in the
// provider's reverse zone and go through `recursive`, together with
// forward-confirmed reverse DNS and whether the MX host points at us.
// DNSSEC: a DNSKEY at the apex means the zone is signed; the AD bit of the
// recursive resolver says whether it validates.
#pragma once

#include "dns_records.h"

#include "core/dns.h"

#include <QDeadlineTimer>
#include <QList>
#include <QString>

namespace postern::records {

struct RecordCheck {
    Record record;
    enum class Status { Ok, Missing, Wrong, Unknown } status = Status::Unknown;
    QString found;  // what DNS holds (empty when nothing)
    QString fix;
};
QString toString(RecordCheck::Status s);

struct DnsCheckReport {
    QList<RecordCheck> records;
    QStringList notes;  // DNSSEC, FCrDNS, ...
    bool requiredOk() const;
};

// `deadline`: once it has passed, the records not asked yet are Unknown ("not asked: the
// check's time limit passed") and the notes' queries are skipped (the web panel bounds its run).
DnsCheckReport checkPublished(const HostFacts& facts, Resolver& authoritative, Resolver& recursive,
                              QDeadlineTimer deadline = QDeadlineTimer(QDeadlineTimer::Forever));

// The whole check as `posternctl dns check` and the web panel's dashboard run it: the
// record set of `domain` (empty: primary_domain; hostFacts()), asked of `server`
// (ip[:port]; empty: dns.check_server; empty too: the domain's NS records, resolved
// through the configured resolver, port 53). Blocking (many queries, each bounded by
// dns.timeout): never call it on an event loop thread.
struct DnsCheckRequest {
    QString configDir;
    QString domain;
    QList<QHostAddress> publicAddresses;  // empty: public_addresses of the configuration
    QString server;
    QDeadlineTimer deadline = QDeadlineTimer(QDeadlineTimer::Forever);
};
Result<DnsCheckReport> runDnsCheck(const DnsCheckRequest& request);
QString renderCheck(const DnsCheckReport& report);

}  // namespace postern::records
