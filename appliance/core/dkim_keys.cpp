// dkim_keys.cpp — see dkim_keys.h.
#include "dkim_keys.h"

#include "address.h"
#include "atomic_file.h"

#include <QFile>
#include <QFileInfo>

#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

namespace postern {

namespace {
QString keyPath(const QString& dir, const QString& selector) {
    return dir + QLatin1Char('/') + selector + QStringLiteral(".key");
}

QByteArray bioBytes(BIO* b) {
    char* data = nullptr;
    const long len = BIO_get_mem_data(b, &data);
    return QByteArray(data, int(len));
}
}  // namespace

DkimKeyStore::DkimKeyStore(QString configDir) : m_dir(std::move(configDir)) {}

QString DkimKeyStore::domainDir(const QString& domain) const {
    return m_dir + QStringLiteral("/dkim/") + normalizeDomain(domain).valueOr(QStringLiteral("invalid"));
}

Result<QList<DkimKey>> DkimKeyStore::keys(const QString& domain) const {
    if (!isValidDomain(domain)) return Result<QList<DkimKey>>::fail(QStringLiteral("invalid domain '%1'").arg(domain));
    const QString manifest = domainDir(domain) + QStringLiteral("/keys");
    QList<DkimKey> out;
    if (!QFileInfo::exists(manifest)) return out;
    auto text = readFile(manifest, 1 << 16);
    if (!text) return text.error();
    int n = 0;
    for (const QByteArray& line : text->split('\n')) {
        ++n;
        const QByteArray t = line.trimmed();
        if (t.isEmpty() || t.startsWith('#')) continue;
        const QList<QByteArray> f = t.split(' ');
        if (f.size() < 4 || (f.at(1) != "rsa" && f.at(1) != "ed25519") ||
            (f.at(2) != "active" && f.at(2) != "retiring"))
            return Result<QList<DkimKey>>::fail(
                QStringLiteral("%1:%2: expected 'selector rsa|ed25519 active|retiring yyyy-mm-dd'")
                    .arg(manifest)
                    .arg(n));
        DkimKey k;
        k.selector = QString::fromLatin1(f.at(0));
        k.algorithm = QString::fromLatin1(f.at(1));
        k.active = f.at(2) == "active";
        k.created = QDate::fromString(QString::fromLatin1(f.at(3)), Qt::ISODate);
        out << k;
    }
    return out;
}

Status DkimKeyStore::saveManifest(const QString& domain, const QList<DkimKey>& keys) const {
    QByteArray text = "# DKIM keys of this domain: selector algorithm state created (posternctl dkim ...)\n";
    for (const DkimKey& k : keys)
        text += k.selector.toLatin1() + ' ' + k.algorithm.toLatin1() + ' ' + (k.active ? "active" : "retiring") + ' ' +
                k.created.toString(Qt::ISODate).toLatin1() + '\n';
    return writeFileAtomic(domainDir(domain) + QStringLiteral("/keys"), text, 0644);
}

// Run as root (posternctl), a new key must stay readable by the daemons' group:
// it gets the group of <config>/dkim, which the wizard gave to the mail user. (Not the
// group of <config> itself: that folder stays root:root, and keys made by posternctl or the
// panel's root helper were root:root 0640, unreadable by postern-queued, which signs.)
static void shareLikeStore(const QString& configDir, const QStringList& paths) {
    if (::geteuid() != 0) return;
    struct stat st {};
    if (::stat(QFile::encodeName(configDir + QStringLiteral("/dkim")).constData(), &st) != 0 || st.st_gid == 0) return;
    for (const QString& p : paths) {
        if (::chown(QFile::encodeName(p).constData(), 0, st.st_gid) !=
            0) { /* best effort: posternctl status shows unreadable keys */
        }
    }
}

Result<DkimKey> DkimKeyStore::generate(const QString& domain, const QString& algorithm) {
    if (algorithm != u"rsa" && algorithm != u"ed25519")
        return Result<DkimKey>::fail(QStringLiteral("algorithm must be rsa or ed25519"));
    auto existing = keys(domain);
    if (!existing) return existing.error();
    const QString dir = domainDir(domain);
    if (auto st = ensureDirectory(dir, 0750); !st) return st.error();
    EVP_PKEY* pkey = algorithm == u"rsa" ? EVP_RSA_gen(2048) : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    if (!pkey) return Result<DkimKey>::fail(QStringLiteral("key generation failed"));
    BIO* bio = BIO_new(BIO_s_mem());
    const bool written = PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    const QByteArray pem = bioBytes(bio);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    if (!written) return Result<DkimKey>::fail(QStringLiteral("cannot encode the key"));
    DkimKey k;
    k.algorithm = algorithm;
    k.created = QDate::currentDate();
    const QString base = QStringLiteral("p%1%2").arg(k.created.toString(QStringLiteral("yyyyMMdd")),
                                                     algorithm == u"rsa" ? QStringLiteral("r") : QStringLiteral("e"));
    k.selector = base;
    for (int i = 2; QFileInfo::exists(keyPath(dir, k.selector)); ++i) k.selector = base + QString::number(i);
    if (auto st = writeFileAtomic(keyPath(dir, k.selector), pem, 0640); !st) return st.error();
    shareLikeStore(m_dir, {dir, keyPath(dir, k.selector)});
    QList<DkimKey> list = *existing;
    for (DkimKey& old : list)
        if (old.algorithm == algorithm) old.active = false;
    list << k;
    if (auto st = saveManifest(domain, list); !st) return st.error();
    return k;
}

Result<QList<DkimKey>> DkimKeyStore::ensureKeys(const QString& domain) {
    auto existing = keys(domain);
    if (!existing) return existing.error();
    QList<DkimKey> made;
    for (const char* algName : {"rsa", "ed25519"}) {
        const QString alg = QString::fromLatin1(algName);
        bool have = false;
        for (const DkimKey& k : *existing)
            if (k.algorithm == alg && k.active) have = true;
        if (have) continue;
        auto k = generate(domain, alg);
        if (!k) return k.error();
        made << *k;
    }
    return made;
}

Result<QList<DkimKey>> DkimKeyStore::rotate(const QString& domain) {
    QList<DkimKey> made;
    for (const QString& alg : {QStringLiteral("rsa"), QStringLiteral("ed25519")}) {
        auto k = generate(domain, alg);
        if (!k) return k.error();
        made << *k;
    }
    return made;
}

Result<QStringList> DkimKeyStore::removeRetired(const QString& domain) {
    auto existing = keys(domain);
    if (!existing) return existing.error();
    QList<DkimKey> keep;
    QStringList removed;
    for (const DkimKey& k : *existing) {
        if (k.active) {
            keep << k;
            continue;
        }
        QFile::remove(keyPath(domainDir(domain), k.selector));
        removed << k.selector;
    }
    if (auto st = saveManifest(domain, keep); !st) return st.error();
    return removed;
}

Result<QByteArray> DkimKeyStore::privateKeyPem(const QString& domain, const QString& selector) const {
    if (selector.contains(QLatin1Char('/')) || selector.startsWith(QLatin1Char('.')))
        return Result<QByteArray>::fail(QStringLiteral("invalid selector"));
    return readFile(keyPath(domainDir(domain), selector), 1 << 16);
}

Result<QString> DkimKeyStore::publicRecord(const QString& domain, const QString& selector) const {
    auto pem = privateKeyPem(domain, selector);
    if (!pem) return pem.error();
    BIO* bio = BIO_new_mem_buf(pem->constData(), int(pem->size()));
    EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (!pkey) return Result<QString>::fail(QStringLiteral("%1: not a PEM private key").arg(selector));
    QString record;
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519) {
        // RFC 8463 4.2: p= is the raw 32-byte public key, base64.
        unsigned char raw[32];
        size_t len = sizeof raw;
        if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) == 1)
            record = QStringLiteral("v=DKIM1; k=ed25519; p=") +
                     QString::fromLatin1(QByteArray(reinterpret_cast<char*>(raw), int(len)).toBase64());
    } else {
        // RFC 6376 3.6.1: p= is the DER SubjectPublicKeyInfo, base64.
        unsigned char* der = nullptr;
        const int len = i2d_PUBKEY(pkey, &der);
        if (len > 0) {
            record = QStringLiteral("v=DKIM1; k=rsa; p=") +
                     QString::fromLatin1(QByteArray(reinterpret_cast<char*>(der), len).toBase64());
            OPENSSL_free(der);
        }
    }
    EVP_PKEY_free(pkey);
    if (record.isEmpty()) return Result<QString>::fail(QStringLiteral("cannot encode the public key"));
    return record;
}

}  // namespace postern
