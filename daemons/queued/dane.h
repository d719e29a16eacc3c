// dane.h — DANE authentication of an SMTP server's certificate chain
// (RFC 6698, RFC 7671, RFC 7672) with OpenSSL's own DANE verifier.
//
// Interface:
//   usableForSmtp(record)  RFC 7672 3.1: DANE-TA(2) and DANE-EE(3) with
//       selector 0/1 and matching type 0 (full), 1 (SHA-256, 32 octets) or
//       2 (SHA-512, 64 octets). PKIX-TA(0) and PKIX-EE(1) are unusable for
//       SMTP (3.1.3), as is anything else.
//   verifyDane(chainDer, tlsa, names)  the peer's chain (DER, leaf first, as
//       the server sent it) against the usable records:
//     DANE-EE(3)  the leaf's certificate (selector 0) or public key (1)
//                 matches; its names and validity dates are not checked
//                 (RFC 7672 3.1.1).
//     DANE-TA(2)  the certificate that matches (one the server sent, or a full
//                 certificate/key in a "2 0 0"/"2 1 0" record) becomes the only
//                 trust anchor; the leaf must chain to it with valid signatures
//                 and dates (RFC 7671 5.2.2), and show one of `names` (the
//                 TLSA base domain, i.e. the MX host name, RFC 7672 3.2.2;
//                 wildcards only as a whole left-most label).
//     Result: Authenticated (with the usage and depth that matched),
//     NoUsableRecords (the caller falls back to unauthenticated TLS, RFC
//     7672 2.2) or Failed with OpenSSL's reason.
// How: an SSL object is made only to hold OpenSSL's DANE state
// (SSL_dane_enable, SSL_dane_tlsa_add, DANE_FLAG_NO_DANE_EE_NAMECHECKS), and
// the chain is verified with X509_verify_cert on an otherwise empty trust
// store, exactly as libssl does during a handshake (X509_STORE_CTX_set0_dane).
// The SMTP client's TLS is a QSslSocket, whose SSL handle is not reachable;
// it calls this right after the handshake, before any SMTP command is sent.
// Security: everything here comes from the peer and from DNS (DNSSEC-validated
// by the caller). A certificate somewhere in the chain that matches a DANE-TA
// record proves nothing unless the leaf chains to it: that is the check.
#pragma once

#include "core/dns.h"

#include <QByteArray>
#include <QList>
#include <QString>
#include <QStringList>

namespace postern::outbound {

bool usableForSmtp(const DnsRecord& tlsa);

struct DaneVerdict {
    enum class Status { Authenticated, NoUsableRecords, Failed };
    Status status = Status::Failed;
    int usage = -1;  // the record that matched (Authenticated)
    int depth = -1;  // where in the chain it matched (0 = the leaf)
    QString reason;  // Failed: why
};
DaneVerdict verifyDane(const QList<QByteArray>& chainDer, const QList<DnsRecord>& tlsa, const QStringList& names);

}  // namespace postern::outbound
