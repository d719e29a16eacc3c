// tls.h — TLS settings built in one place, and certificate generation.
//
// Interface:
//   serverTlsContext(config)  the one OpenSSL SSL_CTX every server connection of a
//       daemon shares (until the certificate is reloaded): certificate chain and key
//       from tls.cert/tls.key, TLS 1.2 or later (tls.min_version), no client
//       certificates requested, OpenSSL's default cipher list, no compression or
//       renegotiation, stateless session tickets only, and SSL_MODE_RELEASE_BUFFERS
//       (an idle connection holds no record buffers). Errors name the file.
//   clientTlsConfiguration()        for outbound connections and self-checks.
//   generateSelfSigned(...)         ECDSA P-256 key + self-signed X.509v3 cert with
//       the given DNS names as SANs, written atomically (key 0600).
//   CertificateInfo certificateInfo(path)  subject, names, expiry, self-signed?
//
// Security: the private key file is written 0600 and read only here. Standards:
// RFC 8996 (no TLS 1.0/1.1), RFC 8314 (implicit TLS), RFC 5280 (SAN).
#pragma once

#include "result.h"

#include <QDateTime>
#include <QSslConfiguration>
#include <QString>
#include <QStringList>
#include <memory>

typedef struct ssl_ctx_st SSL_CTX;

namespace postern {

class Config;

// Shared: each connection's SSL object also holds a reference, so replacing the
// context (certificate reload) never pulls it from under a live connection.
using ServerTlsContext = std::shared_ptr<SSL_CTX>;
Result<ServerTlsContext> serverTlsContext(const Config& config);
// The first queued OpenSSL error of this thread as text, the queue emptied;
// `whenNone` if there was none.
QString takeOpenSslError(const QString& whenNone);
QSslConfiguration clientTlsConfiguration();

Status generateSelfSigned(const QString& certPath, const QString& keyPath, const QStringList& dnsNames, int days = 825);

struct CertificateInfo {
    QString subject;
    QStringList dnsNames;
    QDateTime notBefore;
    QDateTime notAfter;
    bool selfSigned = false;
    QString issuer;
};
Result<CertificateInfo> certificateInfo(const QString& certPath);
// The first certificate of `certPem` and the private key `keyPem` belong together
// (OpenSSL X509_check_private_key); errors say what is wrong with which.
Status checkKeyPair(const QByteArray& certPem, const QByteArray& keyPem);

}  // namespace postern
