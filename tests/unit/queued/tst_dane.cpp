// tst_dane.cpp — DANE verification of a server's chain (dane.h) with
// certificates made at test time (OpenSSL API): DANE-TA chains, the
// man-in-the-middle who shows a self-signed leaf next to the real CA,
// name and date checks for DANE-TA, none for DANE-EE, full certificates in
// the record, unusable PKIX usages, and which records count as usable.
#include "queued/dane.h"

#include <QCryptographicHash>
#include <QtTest>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

using namespace postern;
using namespace postern::outbound;

namespace {

struct KeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct CertFree {
    void operator()(X509* p) const { X509_free(p); }
};
using Key = std::shared_ptr<EVP_PKEY>;
using Cert = std::shared_ptr<X509>;

Key newKey() {
    return Key(EVP_EC_gen("P-256"), KeyFree{});
}

void addExt(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    QVERIFY(ext);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

// A certificate for `cn` (SAN = `dns`, none when empty), signed by issuer/issuerKey (self-signed when null).
Cert makeCert(const QByteArray& cn, const QByteArray& dns, const Key& key, const Cert& issuer, const Key& issuerKey,
              bool ca, long notBeforeSecs = -3600, long notAfterSecs = 86400) {
    static long serial = 1;
    Cert c(X509_new(), CertFree{});
    X509_set_version(c.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c.get()), serial++);
    X509_gmtime_adj(X509_getm_notBefore(c.get()), notBeforeSecs);
    X509_gmtime_adj(X509_getm_notAfter(c.get()), notAfterSecs);
    X509_set_pubkey(c.get(), key.get());
    X509_NAME* name = X509_get_subject_name(c.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.constData()), -1, -1,
                               0);
    X509_set_issuer_name(c.get(), issuer ? X509_get_subject_name(issuer.get()) : name);
    X509* iss = issuer ? issuer.get() : c.get();
    addExt(c.get(), iss, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (ca) addExt(c.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    addExt(c.get(), iss, NID_subject_key_identifier, "hash");
    addExt(c.get(), iss, NID_authority_key_identifier, "keyid:always");
    if (!dns.isEmpty()) addExt(c.get(), iss, NID_subject_alt_name, ("DNS:" + dns).constData());
    X509_sign(c.get(), (issuerKey ? issuerKey : key).get(), EVP_sha256());
    return c;
}

QByteArray der(const Cert& c) {
    unsigned char* out = nullptr;
    const int n = i2d_X509(c.get(), &out);
    QByteArray b(reinterpret_cast<const char*>(out), n);
    OPENSSL_free(out);
    return b;
}

QByteArray spki(const Cert& c) {
    unsigned char* out = nullptr;
    const int n = i2d_PUBKEY(X509_get0_pubkey(c.get()), &out);
    QByteArray b(reinterpret_cast<const char*>(out), n);
    OPENSSL_free(out);
    return b;
}

DnsRecord tlsa(int usage, int selector, int mtype, const QByteArray& data) {
    DnsRecord r;
    r.type = DnsType::TLSA;
    r.usage = usage;
    r.selector = selector;
    r.matchingType = mtype;
    r.data = data;
    return r;
}

QByteArray sha256(const QByteArray& b) {
    return QCryptographicHash::hash(b, QCryptographicHash::Sha256);
}
QByteArray sha512(const QByteArray& b) {
    return QCryptographicHash::hash(b, QCryptographicHash::Sha512);
}

}  // namespace

Q_DECLARE_METATYPE(QList<DnsRecord>)

class TstDane : public QObject {
    Q_OBJECT
private:
    Key m_caKey, m_leafKey, m_evilKey;
    Cert m_ca, m_leaf, m_wildLeaf, m_otherNameLeaf, m_expiredLeaf, m_selfSignedLeaf, m_rogueCa, m_rogueLeaf;

private Q_SLOTS:
    void initTestCase() {
        m_caKey = newKey();
        m_leafKey = newKey();
        m_evilKey = newKey();
        m_ca = makeCert("Test CA", {}, m_caKey, nullptr, nullptr, true);
        m_leaf = makeCert("mx.dane.test", "mx.dane.test", m_leafKey, m_ca, m_caKey, false);
        m_wildLeaf = makeCert("wild", "*.dane.test", m_leafKey, m_ca, m_caKey, false);
        m_otherNameLeaf = makeCert("elsewhere.test", "elsewhere.test", m_leafKey, m_ca, m_caKey, false);
        m_expiredLeaf = makeCert("mx.dane.test", "mx.dane.test", m_leafKey, m_ca, m_caKey, false, -7200, -3600);
        // The attacker: a self-signed leaf with the right name, and a CA of his own that copies the real one's name.
        m_selfSignedLeaf = makeCert("mx.dane.test", "mx.dane.test", m_evilKey, nullptr, nullptr, false);
        m_rogueCa = makeCert("Test CA", {}, m_evilKey, nullptr, nullptr, true);
        m_rogueLeaf = makeCert("mx.dane.test", "mx.dane.test", m_evilKey, m_rogueCa, m_evilKey, false);
        QVERIFY(m_ca && m_leaf && m_selfSignedLeaf && m_rogueLeaf);
    }

    void verify_data() {
        QTest::addColumn<QList<QByteArray>>("chain");
        QTest::addColumn<QList<DnsRecord>>("records");
        QTest::addColumn<QString>("expected");  // "TA:1", "EE:0", "unusable", or "!" + part of the reason
        const QByteArray ca = der(m_ca), leaf = der(m_leaf);
        const DnsRecord ta201 = tlsa(2, 0, 1, sha256(ca));
        QTest::newRow("DANE-TA 2 0 1, CA sent")
            << QList<QByteArray>{leaf, ca} << QList<DnsRecord>{ta201} << QStringLiteral("TA:1");
        QTest::newRow("DANE-TA 2 1 1 (CA key)")
            << QList<QByteArray>{leaf, ca} << QList<DnsRecord>{tlsa(2, 1, 1, sha256(spki(m_ca)))}
            << QStringLiteral("TA:1");
        QTest::newRow("DANE-TA 2 0 2 (SHA-512)")
            << QList<QByteArray>{leaf, ca} << QList<DnsRecord>{tlsa(2, 0, 2, sha512(ca))} << QStringLiteral("TA:1");
        QTest::newRow("DANE-TA 2 0 0, CA only in DNS")
            << QList<QByteArray>{leaf} << QList<DnsRecord>{tlsa(2, 0, 0, ca)} << QStringLiteral("TA:1");
        QTest::newRow("DANE-TA wildcard name")
            << QList<QByteArray>{der(m_wildLeaf), ca} << QList<DnsRecord>{ta201} << QStringLiteral("TA:1");
        QTest::newRow("MITM: self-signed leaf + the real CA")
            << QList<QByteArray>{der(m_selfSignedLeaf), ca} << QList<DnsRecord>{ta201} << QStringLiteral("!");
        QTest::newRow("MITM: rogue CA with the same name + the real CA")
            << QList<QByteArray>{der(m_rogueLeaf), ca, der(m_rogueCa)} << QList<DnsRecord>{ta201}
            << QStringLiteral("!");
        QTest::newRow("MITM: the real CA alone")
            << QList<QByteArray>{ca} << QList<DnsRecord>{ta201} << QStringLiteral("!");
        QTest::newRow("DANE-TA, CA neither sent nor in DNS")
            << QList<QByteArray>{leaf} << QList<DnsRecord>{ta201} << QStringLiteral("!matches no TLSA record");
        QTest::newRow("DANE-TA, wrong name") << QList<QByteArray>{der(m_otherNameLeaf), ca} << QList<DnsRecord>{ta201}
                                             << QStringLiteral("!hostname mismatch");
        QTest::newRow("DANE-TA, expired leaf")
            << QList<QByteArray>{der(m_expiredLeaf), ca} << QList<DnsRecord>{ta201} << QStringLiteral("!expired");
        QTest::newRow("DANE-EE 3 1 1, any name")
            << QList<QByteArray>{der(m_otherNameLeaf)} << QList<DnsRecord>{tlsa(3, 1, 1, sha256(spki(m_leaf)))}
            << QStringLiteral("EE:0");
        QTest::newRow("DANE-EE 3 0 1, expired, issuer not sent")
            << QList<QByteArray>{der(m_expiredLeaf)} << QList<DnsRecord>{tlsa(3, 0, 1, sha256(der(m_expiredLeaf)))}
            << QStringLiteral("EE:0");
        QTest::newRow("DANE-EE, self-signed")
            << QList<QByteArray>{der(m_selfSignedLeaf)}
            << QList<DnsRecord>{tlsa(3, 1, 1, sha256(spki(m_selfSignedLeaf)))} << QStringLiteral("EE:0");
        QTest::newRow("DANE-EE, other key")
            << QList<QByteArray>{der(m_selfSignedLeaf)} << QList<DnsRecord>{tlsa(3, 1, 1, sha256(spki(m_leaf)))}
            << QStringLiteral("!matches no TLSA record");
        QTest::newRow("DANE-EE matching the CA, not the leaf")
            << QList<QByteArray>{leaf, ca} << QList<DnsRecord>{tlsa(3, 0, 1, sha256(ca))}
            << QStringLiteral("!matches no TLSA record");
        QTest::newRow("one bad, one good record")
            << QList<QByteArray>{leaf, ca} << QList<DnsRecord>{tlsa(3, 1, 1, QByteArray(32, 'x')), ta201}
            << QStringLiteral("TA:1");
        QTest::newRow("only PKIX usages")
            << QList<QByteArray>{leaf, ca}
            << QList<DnsRecord>{tlsa(0, 0, 1, sha256(ca)), tlsa(1, 1, 1, sha256(spki(m_leaf)))}
            << QStringLiteral("unusable");
        QTest::newRow("malformed full certificate")
            << QList<QByteArray>{leaf, ca} << QList<DnsRecord>{tlsa(2, 0, 0, "not a certificate")}
            << QStringLiteral("unusable");
        QTest::newRow("digest of the wrong length")
            << QList<QByteArray>{leaf, ca} << QList<DnsRecord>{tlsa(2, 0, 1, sha256(ca).left(31))}
            << QStringLiteral("unusable");
        QTest::newRow("no certificate") << QList<QByteArray>{} << QList<DnsRecord>{ta201}
                                        << QStringLiteral("!no certificate");
        QTest::newRow("garbage certificate")
            << QList<QByteArray>{QByteArray("junk")} << QList<DnsRecord>{ta201} << QStringLiteral("!cannot be parsed");
    }
    void verify() {
        QFETCH(QList<QByteArray>, chain);
        QFETCH(QList<DnsRecord>, records);
        QFETCH(QString, expected);
        const DaneVerdict v = verifyDane(chain, records, {QStringLiteral("mx.dane.test")});
        if (expected == u"unusable") {
            QVERIFY2(v.status == DaneVerdict::Status::NoUsableRecords, qPrintable(v.reason));
        } else if (expected.startsWith(QLatin1Char('!'))) {
            QVERIFY2(v.status == DaneVerdict::Status::Failed, "not refused");
            QVERIFY2(v.reason.contains(expected.mid(1), Qt::CaseInsensitive), qPrintable(v.reason));
        } else {
            QVERIFY2(v.status == DaneVerdict::Status::Authenticated, qPrintable(v.reason));
            QCOMPARE(
                QStringLiteral("%1:%2").arg(v.usage == 2 ? QStringLiteral("TA") : QStringLiteral("EE")).arg(v.depth),
                expected);
        }
    }

    void usable_data() {
        QTest::addColumn<int>("usage");
        QTest::addColumn<int>("selector");
        QTest::addColumn<int>("mtype");
        QTest::addColumn<int>("length");
        QTest::addColumn<bool>("usable");
        QTest::newRow("3 1 1") << 3 << 1 << 1 << 32 << true;
        QTest::newRow("2 0 1") << 2 << 0 << 1 << 32 << true;
        QTest::newRow("2 0 2") << 2 << 0 << 2 << 64 << true;
        QTest::newRow("3 0 0") << 3 << 0 << 0 << 300 << true;
        QTest::newRow("PKIX-TA") << 0 << 0 << 1 << 32 << false;
        QTest::newRow("PKIX-EE") << 1 << 1 << 1 << 32 << false;
        QTest::newRow("usage 4") << 4 << 1 << 1 << 32 << false;
        QTest::newRow("selector 2") << 3 << 2 << 1 << 32 << false;
        QTest::newRow("mtype 3") << 3 << 1 << 3 << 32 << false;
        QTest::newRow("short SHA-256") << 3 << 1 << 1 << 31 << false;
        QTest::newRow("long SHA-256") << 3 << 1 << 1 << 33 << false;
        QTest::newRow("short SHA-512") << 3 << 1 << 2 << 63 << false;
        QTest::newRow("empty full") << 3 << 1 << 0 << 0 << false;
    }
    void usable() {
        QFETCH(int, usage);
        QFETCH(int, selector);
        QFETCH(int, mtype);
        QFETCH(int, length);
        QFETCH(bool, usable);
        QCOMPARE(usableForSmtp(tlsa(usage, selector, mtype, QByteArray(length, 'a'))), usable);
        DnsRecord notTlsa = tlsa(usage, selector, mtype, QByteArray(length, 'a'));
        notTlsa.type = DnsType::CNAME;
        QVERIFY(!usableForSmtp(notTlsa));
    }
};

QTEST_GUILESS_MAIN(TstDane)
#include "tst_dane.moc"
