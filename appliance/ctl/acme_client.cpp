// acme_client.cpp — see acme_client.h.
#include "acme_client.h"

#include "core/atomic_file.h"

#include <QCryptographicHash>
#include <QDir>
#include <QEventLoop>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QSslConfiguration>
#include <QThread>
#include <QTimer>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace postern::acme {

namespace {
constexpr int kTimeoutMs = 30'000;
constexpr qint64 kMaxResponse = 1024 * 1024;

using PKey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

QByteArray bioBytes(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    return QByteArray(data, int(n));
}

QByteArray pemOfKey(EVP_PKEY* key) {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    QByteArray out = bioBytes(bio);
    BIO_free(bio);
    return out;
}

PKey newEcKey() {
    return PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
}

PKey loadKey(const QByteArray& pem) {
    BIO* bio = BIO_new_mem_buf(pem.constData(), int(pem.size()));
    EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    return PKey(k, EVP_PKEY_free);
}

QByteArray bnBytes(const BIGNUM* bn, int len) {
    QByteArray out(len, '\0');
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), len);
    return out;
}

// {"crv":"P-256","kty":"EC","x":"...","y":"..."}: members in lexicographic order (RFC 7638).
QByteArray jwkJson(EVP_PKEY* key) {
    BIGNUM* x = nullptr;
    BIGNUM* y = nullptr;
    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x);
    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y);
    const QByteArray out = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" + base64Url(bnBytes(x, 32)) + "\",\"y\":\"" +
                           base64Url(bnBytes(y, 32)) + "\"}";
    BN_free(x);
    BN_free(y);
    return out;
}

// ES256: ECDSA over SHA-256, signature as R||S (32 bytes each), RFC 7518 3.4.
QByteArray signEs256(EVP_PKEY* key, const QByteArray& data) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t len = 0;
    QByteArray der;
    if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
        EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.constData()),
                       size_t(data.size())) == 1) {
        der.resize(qsizetype(len));
        if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len,
                           reinterpret_cast<const unsigned char*>(data.constData()), size_t(data.size())) == 1)
            der.resize(qsizetype(len));
        else
            der.clear();
    }
    EVP_MD_CTX_free(ctx);
    if (der.isEmpty()) return {};
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.constData());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, long(der.size()));
    if (!sig) return {};
    const QByteArray raw = bnBytes(ECDSA_SIG_get0_r(sig), 32) + bnBytes(ECDSA_SIG_get0_s(sig), 32);
    ECDSA_SIG_free(sig);
    return raw;
}

Result<QByteArray> makeCsr(EVP_PKEY* key, const QStringList& names) {
    X509_REQ* req = X509_REQ_new();
    X509_NAME* subject = X509_REQ_get_subject_name(req);
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(names.first().toUtf8().constData()), -1, -1, 0);
    X509_REQ_set_pubkey(req, key);
    QStringList sans;
    for (const QString& n : names) sans << QStringLiteral("DNS:") + n;
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION* ext =
        X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, sans.join(QLatin1Char(',')).toUtf8().constData());
    if (ext) sk_X509_EXTENSION_push(exts, ext);
    X509_REQ_add_extensions(req, exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    const bool ok = ext && X509_REQ_sign(req, key, EVP_sha256()) > 0;
    unsigned char* der = nullptr;
    const int len = ok ? i2d_X509_REQ(req, &der) : 0;
    QByteArray out = len > 0 ? QByteArray(reinterpret_cast<char*>(der), len) : QByteArray();
    OPENSSL_free(der);
    X509_REQ_free(req);
    ERR_clear_error();
    if (out.isEmpty()) return Result<QByteArray>::fail(QStringLiteral("cannot build the certificate request"));
    return out;
}

struct Response {
    int status = 0;
    QByteArray body;
    QByteArray location;
    QByteArray nonce;
    QString error;  // transport error
    QJsonObject json() const { return QJsonDocument::fromJson(body).object(); }
};

class Session {
public:
    Session(const Request& r, EVP_PKEY* accountKey) : m_req(r), m_key(accountKey) {
        m_tls = QSslConfiguration::defaultConfiguration();
        QList<QSslCertificate> cas = m_tls.caCertificates();
        cas << r.extraCa;
        m_tls.setCaCertificates(cas);
        m_tls.setProtocol(QSsl::TlsV1_2OrLater);
    }

    Response http(const QByteArray& method, const QString& url, const QByteArray& body = {}) {
        QNetworkRequest req{QUrl(url)};
        req.setSslConfiguration(m_tls);
        req.setTransferTimeout(kTimeoutMs);
        req.setHeader(QNetworkRequest::UserAgentHeader, QByteArrayLiteral("Postern-ACME/" POSTERN_VERSION));
        if (!body.isNull())
            req.setHeader(QNetworkRequest::ContentTypeHeader, QByteArrayLiteral("application/jose+json"));
        QNetworkReply* reply = method == "GET"    ? m_nam.get(req)
                               : method == "HEAD" ? m_nam.head(req)
                                                  : m_nam.post(req, body);
        QEventLoop loop;
        QObject::connect(reply, &QNetworkReply::finished, &loop, &QEventLoop::quit);
        loop.exec();
        Response r;
        r.status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
        r.body = reply->read(kMaxResponse);
        r.location = reply->rawHeader("Location");
        r.nonce = reply->rawHeader("Replay-Nonce");
        if (reply->error() != QNetworkReply::NoError && r.status == 0) r.error = reply->errorString();
        reply->deleteLater();
        if (!r.nonce.isEmpty()) m_nonce = r.nonce;
        return r;
    }

    // A signed POST (payload "" = POST-as-GET); retried once on badNonce.
    Response post(const QString& url, const QByteArray& payload, bool useJwk = false) {
        for (int attempt = 0; attempt < 2; ++attempt) {
            if (m_nonce.isEmpty()) http("HEAD", m_newNonce);
            QByteArray header = "{\"alg\":\"ES256\",\"nonce\":\"" + m_nonce + "\",\"url\":\"" + url.toUtf8() + "\",";
            header += useJwk ? "\"jwk\":" + jwkJson(m_key) + "}" : "\"kid\":\"" + m_kid + "\"}";
            m_nonce.clear();
            const QByteArray protectedB64 = base64Url(header);
            const QByteArray payloadB64 = base64Url(payload);
            const QByteArray sig = signEs256(m_key, protectedB64 + '.' + payloadB64);
            const QByteArray jws = "{\"protected\":\"" + protectedB64 + "\",\"payload\":\"" + payloadB64 +
                                   "\",\"signature\":\"" + base64Url(sig) + "\"}";
            Response r = http("POST", url, jws);
            if (r.status == 400 &&
                r.json().value(QStringLiteral("type")).toString().endsWith(QStringLiteral(":badNonce")))
                continue;
            return r;
        }
        return http("POST", url, "{}");  // unreachable in practice; keeps the signature simple
    }

    static QString problem(const Response& r) {
        if (!r.error.isEmpty()) return r.error;
        const QJsonObject o = r.json();
        return QStringLiteral("HTTP %1 %2 %3")
            .arg(r.status)
            .arg(o.value(QStringLiteral("type")).toString(), o.value(QStringLiteral("detail")).toString());
    }

    void progress(const QString& s) const {
        if (m_req.progress) m_req.progress(s);
    }

    // Polls a resource (POST-as-GET) until its status leaves "pending"/"processing".
    Result<QJsonObject> poll(const QString& url) {
        for (int i = 0; i < 60; ++i) {
            Response r = post(url, QByteArray());
            if (r.status != 200) return Result<QJsonObject>::fail(problem(r));
            const QJsonObject o = r.json();
            const QString st = o.value(QStringLiteral("status")).toString();
            if (st != u"pending" && st != u"processing") return o;
            QThread::msleep(1000);
        }
        return Result<QJsonObject>::fail(QStringLiteral("%1 stayed pending for a minute").arg(url));
    }

    Result<Issued> run() {
        auto urls = readDirectory();
        if (!urls) return urls.error();
        if (auto st = registerAccount(urls->newAccount); !st) return st.error();
        auto order = placeOrder(urls->newOrder);
        if (!order) return order.error();
        if (auto st = authorizeAll(order->json); !st) return st.error();
        return finalize(*order);
    }

private:
    struct Directory {
        QString newAccount, newOrder;
    };
    struct Order {
        QString url;
        QJsonObject json;
    };

    // The CA's directory: where to get nonces, accounts and orders.
    Result<Directory> readDirectory() {
        const Response dir = http("GET", m_req.directoryUrl);
        if (dir.status != 200)
            return Result<Directory>::fail(
                QStringLiteral("ACME directory %1: %2").arg(m_req.directoryUrl, problem(dir)));
        const QJsonObject d = dir.json();
        m_newNonce = d.value(QStringLiteral("newNonce")).toString();
        Directory urls{d.value(QStringLiteral("newAccount")).toString(),
                       d.value(QStringLiteral("newOrder")).toString()};
        if (m_newNonce.isEmpty() || urls.newAccount.isEmpty() || urls.newOrder.isEmpty())
            return Result<Directory>::fail(QStringLiteral("not an ACME directory"));
        return urls;
    }

    // Creates (or finds) the account of our key; its URL becomes the "kid" of later requests.
    Status registerAccount(const QString& newAccount) {
        QJsonObject acct{{QStringLiteral("termsOfServiceAgreed"), true}};
        if (!m_req.email.isEmpty())
            acct.insert(QStringLiteral("contact"), QJsonArray{QStringLiteral("mailto:") + m_req.email});
        const Response a = post(newAccount, QJsonDocument(acct).toJson(QJsonDocument::Compact), true);
        if (a.status != 200 && a.status != 201) return Status::fail(QStringLiteral("account: %1").arg(problem(a)));
        m_kid = a.location;
        progress(QStringLiteral("account %1").arg(QString::fromUtf8(m_kid)));
        return {};
    }

    Result<Order> placeOrder(const QString& newOrder) {
        QJsonArray ids;
        for (const QString& n : m_req.names)
            ids << QJsonObject{{QStringLiteral("type"), QStringLiteral("dns")}, {QStringLiteral("value"), n}};
        const Response o = post(
            newOrder, QJsonDocument(QJsonObject{{QStringLiteral("identifiers"), ids}}).toJson(QJsonDocument::Compact));
        if (o.status != 201) return Result<Order>::fail(QStringLiteral("order: %1").arg(problem(o)));
        progress(QStringLiteral("order for %1").arg(m_req.names.join(QStringLiteral(", "))));
        return Order{QString::fromUtf8(o.location), o.json()};
    }

    // Answers the http-01 challenge of every authorization of the order; the challenge files
    // written are removed again whatever the outcome.
    Status authorizeAll(const QJsonObject& order) {
        const QByteArray thumb = jwkThumbprint(jwkJson(m_key));
        // challengeDir is below data_dir, the daemon user's: as root, ensureDirectory,
        // writeFileAtomic and removeFile reach it by SafeDir and refuse a planted link.
        if (auto st = ensureDirectory(m_req.challengeDir, 0755); !st)
            return Status::fail(QStringLiteral("challenge folder: %1").arg(st.errorMessage()));
        QStringList written;
        Status result;
        for (const QJsonValue& authUrl : order.value(QStringLiteral("authorizations")).toArray()) {
            result = authorize(authUrl.toString(), thumb, &written);
            if (!result) break;
        }
        for (const QString& f : std::as_const(written)) (void)removeFile(f);
        return result;
    }

    // One authorization: nothing to do when valid already, else its http-01 challenge.
    Status authorize(const QString& authUrl, const QByteArray& thumb, QStringList* written) {
        const Response az = post(authUrl, QByteArray());
        if (az.status != 200) return Status::fail(QStringLiteral("authorization: %1").arg(problem(az)));
        const QJsonObject auth = az.json();
        const QString name =
            auth.value(QStringLiteral("identifier")).toObject().value(QStringLiteral("value")).toString();
        if (auth.value(QStringLiteral("status")).toString() == u"valid") return {};
        QJsonObject challenge;
        for (const QJsonValue& c : auth.value(QStringLiteral("challenges")).toArray())
            if (c.toObject().value(QStringLiteral("type")).toString() == u"http-01") challenge = c.toObject();
        const QString token = challenge.value(QStringLiteral("token")).toString();
        static const QRegularExpression tokenRe(QStringLiteral("^[A-Za-z0-9_-]{1,256}$"));
        if (challenge.isEmpty() || !tokenRe.match(token).hasMatch())
            return Status::fail(QStringLiteral("%1: the CA offers no usable http-01 challenge").arg(name));
        const QString file = m_req.challengeDir + QLatin1Char('/') + token;
        if (auto st = writeFileAtomic(file, token.toUtf8() + '.' + thumb, 0644); !st)
            return Status::fail(st.errorMessage());
        *written << file;
        const Response go = post(challenge.value(QStringLiteral("url")).toString(), "{}");
        if (go.status != 200) return Status::fail(QStringLiteral("%1: challenge: %2").arg(name, problem(go)));
        auto done = poll(authUrl);
        if (!done) return Status::fail(done.errorMessage());
        if (done->value(QStringLiteral("status")).toString() != u"valid") {
            QString why;
            for (const QJsonValue& c : done->value(QStringLiteral("challenges")).toArray())
                if (c.toObject().contains(QStringLiteral("error")))
                    why = c.toObject()
                              .value(QStringLiteral("error"))
                              .toObject()
                              .value(QStringLiteral("detail"))
                              .toString();
            return Status::fail(
                QStringLiteral("%1 was not validated: %2 (is port 80 reachable from the Internet, and does %1 "
                               "point to this host?)")
                    .arg(name, why));
        }
        progress(QStringLiteral("%1 validated").arg(name));
        return {};
    }

    // A new key and its CSR to the order's finalize URL; then the certificate, once issued.
    Result<Issued> finalize(const Order& order) {
        PKey certKey = newEcKey();
        auto csr = makeCsr(certKey.get(), m_req.names);
        if (!csr) return Result<Issued>(csr.error());
        const Response fin =
            post(order.json.value(QStringLiteral("finalize")).toString(),
                 QJsonDocument(QJsonObject{{QStringLiteral("csr"), QString::fromLatin1(base64Url(*csr))}})
                     .toJson(QJsonDocument::Compact));
        if (fin.status != 200) return Result<Issued>::fail(QStringLiteral("finalize: %1").arg(problem(fin)));
        auto finalOrder = poll(order.url);
        if (!finalOrder) return Result<Issued>(finalOrder.error());
        if (finalOrder->value(QStringLiteral("status")).toString() != u"valid")
            return Result<Issued>::fail(
                QStringLiteral("the order ended as '%1'").arg(finalOrder->value(QStringLiteral("status")).toString()));
        const Response cert = post(finalOrder->value(QStringLiteral("certificate")).toString(), QByteArray());
        if (cert.status != 200 || !cert.body.contains("BEGIN CERTIFICATE"))
            return Result<Issued>::fail(QStringLiteral("download: %1").arg(problem(cert)));
        progress(QStringLiteral("certificate issued"));
        return Issued{cert.body, pemOfKey(certKey.get())};
    }
    const Request& m_req;
    EVP_PKEY* m_key;
    QNetworkAccessManager m_nam;
    QSslConfiguration m_tls;
    QString m_newNonce;
    QByteArray m_nonce;
    QByteArray m_kid;
};
}  // namespace

QByteArray base64Url(const QByteArray& data) {
    return data.toBase64(QByteArray::Base64UrlEncoding | QByteArray::OmitTrailingEquals);
}

QByteArray jwkThumbprint(const QByteArray& jwkCanonicalJson) {
    return base64Url(QCryptographicHash::hash(jwkCanonicalJson, QCryptographicHash::Sha256));
}

Result<Issued> obtainCertificate(const Request& request) {
    if (request.names.isEmpty()) return Result<Issued>::fail(QStringLiteral("no names to certify"));
    PKey account(nullptr, EVP_PKEY_free);
    QFile kf(request.accountKeyPath);
    if (kf.open(QIODevice::ReadOnly)) account = loadKey(kf.readAll());
    if (!account) {
        account = newEcKey();
        if (!account) return Result<Issued>::fail(QStringLiteral("cannot create the ACME account key"));
        if (auto st = ensureDirectory(QFileInfo(request.accountKeyPath).absolutePath(), 0700); !st)
            return Result<Issued>::fail(st.errorMessage());
        if (auto st = writeFileAtomic(request.accountKeyPath, pemOfKey(account.get()), 0600); !st)
            return Result<Issued>::fail(st.errorMessage());
    }
    Session s(request, account.get());
    return s.run();
}

}  // namespace postern::acme
