// dns.h — DNS lookups through ldns, behind the Resolver interface.
//
// Interface:
//   Resolver::query(name, type) -> DnsAnswer: status (Ok, NxDomain, NoData,
//       ServFail, Refused, Timeout, Error), the answer records of the asked type
//       (CNAME chains followed by the server), and `authenticated`: the AD bit
//       of a validating resolver we were told to trust (RFC 4035 3.2.3; RFC 6698
//       and RFC 7672 use it for DANE when the resolver is local and trusted).
//   LdnsResolver            servers from the config (`dns.servers`, ip or ip:port)
//                           or /etc/resolv.conf; EDNS0 with DO set; TCP fallback
//                           on truncation. One instance per thread (ldns is not
//                           thread-safe): daemons create one per worker.
//   makeResolver(config)    the configured resolver: configuredDnsServers(config), i.e.
//                           dns.servers, else the bundled unbound (resolver_engine.h)
//                           when dns.resolver = bundled, else /etc/resolv.conf.
//   reverseName(address)    "4.3.2.1.in-addr.arpa" / ip6.arpa name for PTR.
//
// Blocking: query() waits for the network (bounded by dns.timeout); call it
// from a worker thread in daemons. Security: answers are untrusted input;
// record data is length-checked by ldns and exposed as plain values.
#pragma once

#include "result.h"

#include <QByteArray>
#include <QHostAddress>
#include <QList>
#include <QString>
#include <QStringList>
#include <memory>

namespace postern {

class Config;

enum class DnsType { A, AAAA, MX, TXT, PTR, TLSA, SRV, CAA, NS, SOA, CNAME, DS, DNSKEY };
QString toString(DnsType type);

struct DnsRecord {
    QString name;  // owner, lower case, without the final dot
    DnsType type = DnsType::A;
    quint32 ttl = 0;
    QString rdata;  // presentation form of the whole RDATA, as a zone file shows it
    // Typed views (filled for the types they belong to):
    QHostAddress address;       // A, AAAA
    int preference = 0;         // MX preference, SRV priority
    int weight = 0;             // SRV
    int port = 0;               // SRV
    QString target;             // MX exchange, SRV/PTR/CNAME/NS target (no final dot; "." stays ".")
    QList<QByteArray> strings;  // TXT character-strings, raw
    int usage = 0, selector = 0, matchingType = 0;  // TLSA
    QByteArray data;                                // TLSA association data (binary)
    int flags = 0;                                  // CAA flags
    QString tag;                                    // CAA tag
    QString value;                                  // CAA value
    QByteArray text() const;                        // TXT strings concatenated (RFC 7208 3.3, RFC 6376 3.6.2.2)
};

struct DnsAnswer {
    enum class Status { Ok, NxDomain, NoData, ServFail, Refused, Timeout, Error };
    Status status = Status::Error;
    bool authenticated = false;  // AD bit from a trusted validating resolver
    QList<DnsRecord> records;
    QString error;  // for Error/Timeout: what went wrong
    bool ok() const { return status == Status::Ok; }
    // Both "the name does not exist" and "no record of that type" (not a failure of DNS itself).
    bool isNegative() const { return status == Status::NxDomain || status == Status::NoData; }
};
QString toString(DnsAnswer::Status status);

class Resolver {
public:
    virtual ~Resolver() = default;
    virtual DnsAnswer query(const QString& name, DnsType type) = 0;
};

struct DnsServer {
    QHostAddress address;
    quint16 port = 53;
};

class LdnsResolver final : public Resolver {
public:
    // Empty servers: use /etc/resolv.conf.
    explicit LdnsResolver(const QList<DnsServer>& servers = {}, int timeoutMs = 5000, bool recursionDesired = true);
    ~LdnsResolver() override;
    LdnsResolver(const LdnsResolver&) = delete;
    LdnsResolver& operator=(const LdnsResolver&) = delete;
    DnsAnswer query(const QString& name, DnsType type) override;

private:
    struct Impl;
    std::unique_ptr<Impl> d;
    QString m_initError;
};

// Parses "ip", "ip:port" and "[v6]:port".
Result<DnsServer> parseDnsServer(const QString& text);
// The servers Postern asks: dns.servers when set; else the bundled resolver
// (dns.resolver = bundled, the supervisor's unbound on dns.resolver_listen); else empty
// (the caller falls back to /etc/resolv.conf).
QList<DnsServer> configuredDnsServers(const Config& config);
bool bundledResolverInUse(const Config& config);                 // dns.resolver = bundled and dns.servers empty
Result<DnsServer> bundledResolverAddress(const Config& config);  // dns.resolver_listen; loopback only
// One line for people (the wizard, posternctl status): which resolver is used.
QString resolverSummary(const Config& config);
std::unique_ptr<Resolver> makeResolver(const Config& config);
QString reverseName(const QHostAddress& address);

}  // namespace postern
