// dane.cpp — see dane.h.
#include "dane.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <memory>

namespace postern::outbound {

namespace {
struct SslCtxFree {
    void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct SslFree {
    void operator()(SSL* p) const { SSL_free(p); }
};
struct StoreFree {
    void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
struct StoreCtxFree {
    void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};
struct ChainFree {
    void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
};

DaneVerdict failed(const QString& why) {
    DaneVerdict v;
    v.status = DaneVerdict::Status::Failed;
    v.reason = why;
    return v;
}
}  // namespace

bool usableForSmtp(const DnsRecord& r) {
    if (r.type != DnsType::TLSA) return false;
    if (r.usage != 2 && r.usage != 3) return false;  // RFC 7672 3.1.3: PKIX usages are unusable for SMTP
    if (r.selector != 0 && r.selector != 1) return false;
    switch (r.matchingType) {
        case 0:
            return !r.data.isEmpty();
        case 1:
            return r.data.size() == 32;
        case 2:
            return r.data.size() == 64;
        default:
            return false;
    }
}

DaneVerdict verifyDane(const QList<QByteArray>& chainDer, const QList<DnsRecord>& tlsa, const QStringList& names) {
    if (names.isEmpty() || names.first().isEmpty()) return failed(QStringLiteral("no reference name"));
    std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx || SSL_CTX_dane_enable(ctx.get()) <= 0) return failed(QStringLiteral("OpenSSL DANE setup failed"));
    std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
    if (!ssl || SSL_dane_enable(ssl.get(), names.first().toUtf8().constData()) <= 0)  // the TLSA base domain
        return failed(QStringLiteral("OpenSSL DANE setup failed"));
    for (qsizetype i = 1; i < names.size(); ++i)
        if (SSL_add1_host(ssl.get(), names.at(i).toUtf8().constData()) != 1)
            return failed(QStringLiteral("bad reference name"));
    SSL_set_hostflags(ssl.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_dane_set_flags(ssl.get(), DANE_FLAG_NO_DANE_EE_NAMECHECKS);  // RFC 7672 3.1.1: DANE-EE ignores names
    int usable = 0;
    for (const DnsRecord& r : tlsa) {
        if (!usableForSmtp(r)) continue;
        // > 0 added, 0 unusable (e.g. an unknown digest), < 0 malformed (a "2 0 0" that is no certificate): skipped.
        if (SSL_dane_tlsa_add(ssl.get(), uint8_t(r.usage), uint8_t(r.selector), uint8_t(r.matchingType),
                              reinterpret_cast<const unsigned char*>(r.data.constData()), size_t(r.data.size())) > 0)
            ++usable;
    }
    if (usable == 0) {
        DaneVerdict v;
        v.status = DaneVerdict::Status::NoUsableRecords;
        v.reason = QStringLiteral("no usable TLSA record");
        return v;
    }
    std::unique_ptr<STACK_OF(X509), ChainFree> chain(sk_X509_new_null());
    if (!chain) return failed(QStringLiteral("out of memory"));
    for (const QByteArray& der : chainDer) {
        const unsigned char* p = reinterpret_cast<const unsigned char*>(der.constData());
        X509* cert = d2i_X509(nullptr, &p, long(der.size()));
        if (!cert || p != reinterpret_cast<const unsigned char*>(der.constData()) + der.size()) {
            X509_free(cert);
            return failed(QStringLiteral("the server sent a certificate that cannot be parsed"));
        }
        if (!sk_X509_push(chain.get(), cert)) {
            X509_free(cert);
            return failed(QStringLiteral("out of memory"));
        }
    }
    if (sk_X509_num(chain.get()) == 0) return failed(QStringLiteral("the server sent no certificate"));
    // Trust nothing but what the TLSA records designate (DANE-TA anchors, DANE-EE leaf).
    std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
    std::unique_ptr<X509_STORE_CTX, StoreCtxFree> vctx(X509_STORE_CTX_new());
    if (!store || !vctx ||
        X509_STORE_CTX_init(vctx.get(), store.get(), sk_X509_value(chain.get(), 0), chain.get()) != 1)
        return failed(QStringLiteral("OpenSSL verification setup failed"));
    // As libssl's ssl_verify_cert_chain(): the SSL object's DANE state and verify parameters.
    X509_STORE_CTX_set_ex_data(vctx.get(), SSL_get_ex_data_X509_STORE_CTX_idx(), ssl.get());
    X509_STORE_CTX_set0_dane(vctx.get(), SSL_get0_dane(ssl.get()));
    X509_STORE_CTX_set_default(vctx.get(), "ssl_server");
    X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(vctx.get()), SSL_get0_param(ssl.get()));
    const int ok = X509_verify_cert(vctx.get());
    if (ok != 1) {
        const int err = X509_STORE_CTX_get_error(vctx.get());
        DaneVerdict v =
            failed(err == X509_V_ERR_DANE_NO_MATCH ? QStringLiteral("matches no TLSA record")
                                                   : QStringLiteral("%1 (certificate depth %2)")
                                                         .arg(QString::fromLatin1(X509_verify_cert_error_string(err)))
                                                         .arg(X509_STORE_CTX_get_error_depth(vctx.get())));
        return v;
    }
    DaneVerdict v;
    v.status = DaneVerdict::Status::Authenticated;
    uint8_t usage = 0, selector = 0, mtype = 0;
    const unsigned char* data = nullptr;
    size_t dlen = 0;
    v.depth = SSL_get0_dane_tlsa(ssl.get(), &usage, &selector, &mtype, &data, &dlen);
    if (v.depth >= 0) v.usage = usage;
    return v;
}

}  // namespace postern::outbound
