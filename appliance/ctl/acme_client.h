// acme_client.h — an ACME client (RFC 8555) for the mail host's certificate,
// HTTP-01 challenges only, run by `posternctl cert renew` (and daily by the
// supervisor through that command).
//
// Flow: account key (EC P-256, <config>/acme/account.key, kept) -> directory
// -> nonce -> account (newAccount, terms agreed, contact acme.email) -> order
// for the names -> per authorization: the http-01 key authorization written
// to <data>/acme/challenges/<token> (served by postern-webd on port 80), the
// challenge triggered, the authorization polled -> a fresh EC P-256 key and a
// CSR (all names as SANs) -> finalize -> poll -> download the chain.
// Requests are JWS (ES256) with "jwk" for newAccount and "kid" afterwards;
// badNonce is retried once with the fresh nonce (RFC 8555 6.5).
// The caller installs the result (commands_cert.cpp).
// Limits: responses up to 1 MiB; each request 30 s; polling up to 60 s per
// authorization/order. Security: keys are written 0600/0640 through
// core/atomic_file; the account key never leaves this file. The challenge
// folder lies below data_dir, which the daemon user owns, and this runs as
// root: it is created, written and cleaned only through core/atomic_file,
// whose SafeDir walk (core/safe_path.h) refuses a link planted in place of
// acme/ or challenges/, so root writes nothing outside that folder.
#pragma once

#include "core/result.h"

#include <QByteArray>
#include <QList>
#include <QSslCertificate>
#include <QString>
#include <QStringList>
#include <functional>

namespace postern::acme {

struct Request {
    QString directoryUrl;
    QStringList names;                             // first = common name
    QString email;                                 // "" = no contact
    QString accountKeyPath;                        // created when missing
    QString challengeDir;                          // where http-01 answers go
    QList<QSslCertificate> extraCa;                // to trust a test CA (pebble)
    std::function<void(const QString&)> progress;  // one line per step
};

struct Issued {
    QByteArray chainPem;
    QByteArray keyPem;
};

Result<Issued> obtainCertificate(const Request& request);

// Helpers exposed for unit tests.
QByteArray base64Url(const QByteArray& data);
QByteArray jwkThumbprint(const QByteArray& jwkCanonicalJson);

}  // namespace postern::acme
