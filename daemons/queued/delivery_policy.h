// delivery_policy.h — where and how to deliver for one destination domain.
//
// resolveDestination(): MX lookup with ldns (RFC 5321 5.1): hosts by
// preference (equal preferences shuffled), each with its A/AAAA addresses;
// no MX -> the domain itself (implicit MX); a null MX (RFC 7505) or a domain
// that does not exist -> a permanent failure; DNS trouble -> temporary.
// MTA-STS (RFC 8461): fetchMtaSts() reads the _mta-sts TXT record, then the
// policy over HTTPS from mta-sts.<domain> (certificate verified), cached by
// id under <data>/state/mta-sts/. An "enforce" policy requires verified TLS
// and MX names matching its patterns. DANE (RFC 7672): TLSA records of
// _25._tcp.<mx> are used only when both the MX answer and the TLSA answer
// carry the AD bit of a validating resolver; the runner keeps the usable
// ones (dane.h usableForSmtp) and the client verifies with dane.h.
// All functions block (DNS, HTTPS); the runner calls them on a worker thread.
#pragma once

#include "smtp_client.h"

#include "core/dns.h"

#include <QHostAddress>
#include <QList>
#include <QString>
#include <QStringList>

namespace postern::outbound {

struct MxHost {
    QString name;
    int preference = 0;
    QList<QHostAddress> addresses;
};

struct Destination {
    enum class Status { Ok, NullMx, NoSuchDomain, TempFail };
    Status status = Status::TempFail;
    QList<MxHost> hosts;
    bool dnssec = false;   // the MX answer was authenticated
    QString error;
};
Destination resolveDestination(Resolver& dns, const QString& domain);

struct MtaStsPolicy {
    QString id;
    QString mode;          // enforce / testing / none
    QStringList mx;        // patterns, "*.example.org" allowed
    qint64 maxAge = 0;
    bool present() const { return !mode.isEmpty(); }
};
std::optional<MtaStsPolicy> parseMtaStsPolicy(const QByteArray& text);
bool mtaStsMxMatches(const QString& pattern, const QString& host);
// The domain's policy (fetched or from the cache); nullopt when it publishes none.
// `error` is set when a published policy could not be fetched (then: no policy applies,
// but an unexpired cached one is used, RFC 8461 5.1).
std::optional<MtaStsPolicy> fetchMtaSts(Resolver& dns, const QString& domain, const QString& cacheDir, quint16 httpsPort,
                                        const QList<QSslCertificate>& extraCa, QString* error);

// TLSA records for a host (empty unless DNSSEC-validated).
QList<DnsRecord> daneRecords(Resolver& dns, const QString& host, quint16 port);

}  // namespace postern::outbound
