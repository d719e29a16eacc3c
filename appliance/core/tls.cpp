// tls.cpp — see tls.h.
#include "tls.h"

#include "atomic_file.h"
#include "config.h"
#include "setting_keys.h"

#include <QFile>
#include <QFileInfo>
#include <QSslCertificate>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <memory>

namespace postern {

QSslConfiguration clientTlsConfiguration() {
    QSslConfiguration c = QSslConfiguration::defaultConfiguration();
    c.setProtocol(QSsl::TlsV1_2OrLater);
    c.setSslOption(QSsl::SslOptionDisableCompression, true);
    return c;
}

namespace {
template <typename T, void (*F)(T*)>
struct Deleter {
    void operator()(T* p) const { F(p); }
};
using PKeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

QByteArray bioToBytes(BIO* bio) {
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    return QByteArray(data, int(len));
}

bool addExt(X509* cert, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext) return false;
    bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

QString openSslError() {
    return takeOpenSslError(QStringLiteral("unknown OpenSSL error"));
}

// tls.cert: the leaf certificate, then any intermediates, all PEM.
Status useCertificateChain(SSL_CTX* ctx, const QString& certPath, const QByteArray& pem) {
    BioPtr bio(BIO_new_mem_buf(pem.constData(), int(pem.size())));
    X509Ptr leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!leaf) {
        ERR_clear_error();
        return Status::fail(QStringLiteral("%1: no PEM certificate found").arg(certPath));
    }
    if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1)
        return Status::fail(QStringLiteral("%1: %2").arg(certPath, openSslError()));
    while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
        if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {  // takes ownership on success only
            X509_free(extra);
            return Status::fail(QStringLiteral("%1: %2").arg(certPath, openSslError()));
        }
    }
    ERR_clear_error();  // the loop ends on "no start line"
    return {};
}

Status usePrivateKey(SSL_CTX* ctx, const QString& keyPath, const QByteArray& pem) {
    BioPtr bio(BIO_new_mem_buf(pem.constData(), int(pem.size())));
    PKeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!key) {
        ERR_clear_error();
        return Status::fail(QStringLiteral("%1: no usable unencrypted PEM private key").arg(keyPath));
    }
    if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        return Status::fail(QStringLiteral("%1: %2").arg(keyPath, openSslError()));
    return {};
}
}  // namespace

QString takeOpenSslError(const QString& whenNone) {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return whenNone;
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return QString::fromLatin1(buf);
}

Result<ServerTlsContext> serverTlsContext(const Config& config) {
    const QString certPath = get(config, keys::tls::cert);
    const QString keyPath = get(config, keys::tls::key);
    auto certBytes = readFile(certPath, 1 << 20);
    if (!certBytes)
        return Result<ServerTlsContext>::fail(QStringLiteral("TLS certificate: %1").arg(certBytes.errorMessage()));
    auto keyBytes = readFile(keyPath, 1 << 20);
    if (!keyBytes) return Result<ServerTlsContext>::fail(QStringLiteral("TLS key: %1").arg(keyBytes.errorMessage()));

    ServerTlsContext ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
    if (!ctx) return Result<ServerTlsContext>::fail(QStringLiteral("TLS: %1").arg(openSslError()));
    // RFC 8996: nothing below TLS 1.2.
    const bool tls13Only = get(config, keys::tls::minVersion) == u"1.3";
    SSL_CTX_set_min_proto_version(ctx.get(), tls13Only ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                       SSL_OP_IGNORE_UNEXPECTED_EOF);  // most mail clients just drop TCP
    // RELEASE_BUFFERS: an idle connection gives its ~34 KiB of record buffers back.
    // The other two let Connection retry a partial write from a moved QByteArray.
    SSL_CTX_set_mode(ctx.get(),
                     SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Resumption by stateless tickets only: a server-side session cache would grow
    // with every client that ever connected.
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_dh_auto(ctx.get(), 1);                        // RFC 7919 groups for DHE suites
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);  // we do not ask clients for certificates
    if (auto st = useCertificateChain(ctx.get(), certPath, *certBytes); !st) return st.error();
    if (auto st = usePrivateKey(ctx.get(), keyPath, *keyBytes); !st) return st.error();
    return ctx;
}

Status generateSelfSigned(const QString& certPath, const QString& keyPath, const QStringList& dnsNames, int days) {
    if (dnsNames.isEmpty()) return Status::fail(QStringLiteral("a certificate needs at least one name"));
    PKeyPtr key(EVP_EC_gen("P-256"));
    if (!key) return Status::fail(QStringLiteral("cannot generate an EC key"));
    X509Ptr cert(X509_new());
    X509_set_version(cert.get(), 2);
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1) return Status::fail(QStringLiteral("no randomness for a serial"));
    serial[0] &= 0x7f;
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), long(days) * 86400);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    const QByteArray cn = dnsNames.first().toUtf8();
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.constData()), -1,
                               -1, 0);
    X509_set_issuer_name(cert.get(), name);
    QStringList sans;
    for (const QString& n : dnsNames) sans << QStringLiteral("DNS:") + n;
    const QByteArray sanText = sans.join(QLatin1Char(',')).toUtf8();
    if (!addExt(cert.get(), NID_subject_alt_name, sanText.constData()) ||
        !addExt(cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
        !addExt(cert.get(), NID_key_usage, "critical,digitalSignature") ||
        !addExt(cert.get(), NID_ext_key_usage, "serverAuth") || !addExt(cert.get(), NID_subject_key_identifier, "hash"))
        return Status::fail(QStringLiteral("cannot add certificate extensions"));
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0)
        return Status::fail(QStringLiteral("cannot sign the certificate"));

    BioPtr keyBio(BIO_new(BIO_s_mem()));
    BioPtr certBio(BIO_new(BIO_s_mem()));
    if (PEM_write_bio_PrivateKey(keyBio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
        PEM_write_bio_X509(certBio.get(), cert.get()) != 1)
        return Status::fail(QStringLiteral("cannot encode the certificate"));
    if (auto st = ensureDirectory(QFileInfo(keyPath).absolutePath(), 0755); !st) return st;
    if (auto st = ensureDirectory(QFileInfo(certPath).absolutePath(), 0755); !st) return st;
    if (auto st = writeFileAtomic(keyPath, bioToBytes(keyBio.get()), 0600); !st) return st;
    return writeFileAtomic(certPath, bioToBytes(certBio.get()), 0644);
}

Result<CertificateInfo> certificateInfo(const QString& certPath) {
    auto bytes = readFile(certPath, 1 << 20);
    if (!bytes) return bytes.error();
    const QList<QSslCertificate> chain = QSslCertificate::fromData(*bytes, QSsl::Pem);
    if (chain.isEmpty() || chain.first().isNull())
        return Result<CertificateInfo>::fail(QStringLiteral("%1: no PEM certificate found").arg(certPath));
    const QSslCertificate& c = chain.first();
    CertificateInfo info;
    info.subject = c.subjectDisplayName();
    info.issuer = c.issuerDisplayName();
    info.notBefore = c.effectiveDate();
    info.notAfter = c.expiryDate();
    info.selfSigned = c.isSelfSigned();
    for (const QString& n : c.subjectAlternativeNames().values(QSsl::DnsEntry)) info.dnsNames << n;
    return info;
}

Status checkKeyPair(const QByteArray& certPem, const QByteArray& keyPem) {
    BIO* cb = BIO_new_mem_buf(certPem.constData(), int(certPem.size()));
    X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
    BIO_free(cb);
    if (!cert) return Status::fail(QStringLiteral("not a PEM certificate"));
    BIO* kb = BIO_new_mem_buf(keyPem.constData(), int(keyPem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
    BIO_free(kb);
    if (!key) {
        X509_free(cert);
        return Status::fail(QStringLiteral("not an unencrypted PEM private key"));
    }
    const bool match = X509_check_private_key(cert, key) == 1;
    EVP_PKEY_free(key);
    X509_free(cert);
    ERR_clear_error();
    if (!match) return Status::fail(QStringLiteral("the private key does not belong to the certificate"));
    return {};
}

}  // namespace postern
