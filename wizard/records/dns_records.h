// dns_records.h — what Postern asks the user to publish in DNS, as a pure
// function of the configuration and the host's facts.
//
// Interface:
//   buildRecords(facts)  the record set: MX, A/AAAA of the mail host, SPF,
//       DKIM per selector, DMARC (p=none with a report address, to tighten
//       later), MTA-STS TXT + the mta-sts host, TLS-RPT, RFC 6186/8314 SRV
//       records (one per listener of the table in core/services.h that has an
//       SRV name, with its priority; "0 0 ." for those not offered),
//       autoconfig/autodiscover names, CAA, TLSA (only when the zone is
//       DNSSEC-signed), and the PTR value to ask the hosting provider for.
//       Each record has a level (Required/Recommended/Optional) and one line
//       of why.
//   renderTable()  for web forms: Host relative to the domain ("@" = apex),
//       Type, Priority, Value (long TXT as one string), TTL.
//   renderZone()   a zone-file fragment: FQDNs ending in ".", TXT values over
//       255 bytes split into several quoted strings (RFC 1035 3.3.14), PTR as
//       a comment (it lives in the provider's reverse zone).
//   renderCsv(), renderJson().
//   mtaStsPolicy() the RFC 8461 policy text and its id (changes with the text).
// Standards: RFC 1035, 6186, 8314, 7208, 6376, 8463, 7489, 8461, 8460, 6698, 8659.
#pragma once

#include "core/services.h"

#include <QByteArray>
#include <QHostAddress>
#include <QList>
#include <QString>
#include <QStringList>

namespace postern::records {

struct DkimPublication {
    QString selector;
    QString txt;  // "v=DKIM1; k=rsa; p=..."
    bool rsa = true;
};

struct HostFacts {
    QString domain;    // A-labels
    QString hostname;  // mail host, A-labels
    QList<QHostAddress> publicV4, publicV6;
    QList<DkimPublication> dkim;
    QString reportAddress;                    // DMARC rua / TLS-RPT rua
    QString spfAll = QStringLiteral("~all");  // "~all" or "-all"
    QString mtaStsMode = QStringLiteral("testing");
    qint64 mtaStsMaxAge = 604800;
    bool dnssecSigned = false;
    QString tlsaSpkiSha256Hex;       // for "3 1 1" TLSA; empty: no TLSA
    QList<ListenerMode> notOffered;  // listeners switched off (empty <name>.listen)
    int ttl = 3600;
};

struct Record {
    QString name;       // relative to the domain: "@", "mail", "_dmarc"; or an FQDN ending in "."
    QString type;       // MX A AAAA TXT SRV CNAME CAA TLSA PTR
    int priority = -1;  // MX preference, SRV priority (-1: none)
    QString value;      // presentation form without priority (TXT unquoted, one string)
    int ttl = 3600;
    QString level;  // Required / Recommended / Optional
    QString why;
};

struct MtaStsPolicy {
    QString text;
    QString id;
};

MtaStsPolicy mtaStsPolicy(const HostFacts& facts);
QList<Record> buildRecords(const HostFacts& facts);
QString fqdn(const Record& r, const QString& domain);
QString renderTable(const QList<Record>& records, const QString& domain);
QString renderZone(const QList<Record>& records, const QString& domain);
QString renderCsv(const QList<Record>& records, const QString& domain);
QByteArray renderJson(const QList<Record>& records, const QString& domain);
// TXT value as zone-file character-strings: "<=255 bytes" "..." (RFC 1035).
QString zoneTxt(const QString& value);

}  // namespace postern::records
