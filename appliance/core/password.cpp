// password.cpp — see password.h.
#include "password.h"

#include "config.h"
#include "setting_keys.h"

#include <QDateTime>
#include <QRandomGenerator>

#include <argon2.h>
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <cstring>
#include <memory>

namespace postern {

namespace {
// Strip a Dovecot-style {SCHEME} prefix; returns the scheme name upper-cased (or empty).
QString stripPrefix(const QString& stored, QString* rest) {
    if (stored.startsWith(QLatin1Char('{'))) {
        const qsizetype end = stored.indexOf(QLatin1Char('}'));
        if (end > 0) {
            *rest = stored.mid(end + 1);
            return stored.mid(1, end - 1).toUpper();
        }
    }
    *rest = stored;
    return {};
}

bool cryptVerify(const QByteArray& password, const QByteArray& setting) {
    auto data = std::make_unique<crypt_data>();
    std::memset(data.get(), 0, sizeof(crypt_data));
    const char* out = crypt_r(password.constData(), setting.constData(), data.get());
    if (!out || out[0] == '*') return false;
    const size_t n = std::strlen(out);
    if (n != size_t(setting.size())) return false;
    return CRYPTO_memcmp(out, setting.constData(), n) == 0;
}
}  // namespace

HashParams HashParams::fromConfig(const Config& config) {
    HashParams p;
    p.memoryKiB = quint32(get(config, keys::auth::argon2Memory) / 1024);
    p.iterations = quint32(get(config, keys::auth::argon2Iterations));
    p.parallelism = quint32(get(config, keys::auth::argon2Parallelism));
    return p;
}

PasswordScheme passwordScheme(const QString& storedIn) {
    QString rest;
    const QString prefix = stripPrefix(storedIn, &rest);
    if (rest.startsWith(u"$argon2id$")) return PasswordScheme::Argon2id;
    if (rest.startsWith(u"$argon2i$")) return PasswordScheme::Argon2i;
    if (rest.startsWith(u"$6$")) return PasswordScheme::Sha512Crypt;
    if (rest.startsWith(u"$5$")) return PasswordScheme::Sha256Crypt;
    if (rest.startsWith(u"$2b$") || rest.startsWith(u"$2y$") || rest.startsWith(u"$2a$")) return PasswordScheme::Bcrypt;
    if (rest.startsWith(u"$y$")) return PasswordScheme::Yescrypt;
    Q_UNUSED(prefix);
    return PasswordScheme::Unsupported;
}

QString toString(PasswordScheme scheme) {
    switch (scheme) {
        case PasswordScheme::Argon2id:
            return QStringLiteral("ARGON2ID");
        case PasswordScheme::Argon2i:
            return QStringLiteral("ARGON2I");
        case PasswordScheme::Sha512Crypt:
            return QStringLiteral("SHA512-CRYPT");
        case PasswordScheme::Sha256Crypt:
            return QStringLiteral("SHA256-CRYPT");
        case PasswordScheme::Bcrypt:
            return QStringLiteral("BLF-CRYPT");
        case PasswordScheme::Yescrypt:
            return QStringLiteral("YESCRYPT");
        case PasswordScheme::Unsupported:
            return QStringLiteral("unsupported");
    }
    return {};
}

Result<QString> hashPassword(const QByteArray& password, const HashParams& params) {
    constexpr size_t kSaltLen = 16;
    constexpr size_t kHashLen = 32;
    unsigned char salt[kSaltLen];
    if (RAND_bytes(salt, sizeof salt) != 1) return Result<QString>::fail(QStringLiteral("no randomness for a salt"));
    const size_t encLen =
        argon2_encodedlen(params.iterations, params.memoryKiB, params.parallelism, kSaltLen, kHashLen, Argon2_id);
    QByteArray encoded(qsizetype(encLen), '\0');
    int rc = argon2id_hash_encoded(params.iterations, params.memoryKiB, params.parallelism, password.constData(),
                                   size_t(password.size()), salt, kSaltLen, kHashLen, encoded.data(), encLen);
    if (rc != ARGON2_OK)
        return Result<QString>::fail(
            QStringLiteral("argon2id failed: %1").arg(QString::fromLatin1(argon2_error_message(rc))));
    encoded.truncate(qsizetype(std::strlen(encoded.constData())));
    return QStringLiteral("{ARGON2ID}") + QString::fromLatin1(encoded);
}

bool verifyPassword(const QByteArray& password, const QString& stored) {
    QString rest;
    stripPrefix(stored, &rest);
    const QByteArray enc = rest.toLatin1();
    if (password.contains('\0')) return false;
    switch (passwordScheme(stored)) {
        case PasswordScheme::Argon2id:
            return argon2id_verify(enc.constData(), password.constData(), size_t(password.size())) == ARGON2_OK;
        case PasswordScheme::Argon2i:
            return argon2i_verify(enc.constData(), password.constData(), size_t(password.size())) == ARGON2_OK;
        case PasswordScheme::Sha512Crypt:
        case PasswordScheme::Sha256Crypt:
        case PasswordScheme::Bcrypt:
        case PasswordScheme::Yescrypt:
            return cryptVerify(password, enc);
        case PasswordScheme::Unsupported:
            return false;
    }
    return false;
}

bool needsRehash(const QString& stored, const HashParams& params) {
    if (passwordScheme(stored) != PasswordScheme::Argon2id) return true;
    // $argon2id$v=19$m=19456,t=2,p=1$...
    const qsizetype m = stored.indexOf(QStringLiteral("$m="));
    if (m < 0) return true;
    const QString paramText = stored.mid(m + 1).section(QLatin1Char('$'), 0, 0);
    quint32 mem = 0, t = 0, p = 0;
    for (const QString& kv : paramText.split(QLatin1Char(','))) {
        if (kv.startsWith(u"m="))
            mem = kv.mid(2).toUInt();
        else if (kv.startsWith(u"t="))
            t = kv.mid(2).toUInt();
        else if (kv.startsWith(u"p="))
            p = kv.mid(2).toUInt();
    }
    return mem < params.memoryKiB || t < params.iterations || p == 0;
}

QString generatePassword() {
    // No 0/O, 1/l/I: passwords get read aloud and typed from paper.
    static const char kAlphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    constexpr int kAlphabetSize = int(sizeof kAlphabet) - 1;
    QString out;
    for (int group = 0; group < 4; ++group) {
        if (group) out += QLatin1Char('-');
        for (int i = 0; i < 5; ++i) out += QLatin1Char(kAlphabet[QRandomGenerator::system()->bounded(kAlphabetSize)]);
    }
    return out;
}

AuthCache::AuthCache(std::chrono::milliseconds ttl, int maxEntries) : m_ttl(ttl), m_max(maxEntries) {
    m_key.resize(32);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(m_key.data()), int(m_key.size())) != 1) {
        for (char& c : m_key) c = char(QRandomGenerator::system()->generate());
    }
}

QByteArray AuthCache::digest(const QString& user, const QByteArray& password) const {
    QByteArray msg = user.toUtf8();
    msg.append('\0');
    msg.append(password);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), m_key.constData(), int(m_key.size()), reinterpret_cast<const unsigned char*>(msg.constData()),
         size_t(msg.size()), out, &len);
    OPENSSL_cleanse(msg.data(), size_t(msg.size()));
    return QByteArray(reinterpret_cast<const char*>(out), int(len));
}

bool AuthCache::check(const QString& user, const QByteArray& password, const QString& stored) {
    if (m_ttl.count() <= 0 || m_max <= 0) return false;
    const QByteArray d = digest(user, password);
    QMutexLocker lock(&m_mutex);
    auto it = m_entries.find(user);
    if (it == m_entries.end()) return false;
    if (it->expiresMs < now() || it->stored != stored) {
        m_entries.erase(it);
        return false;
    }
    return it->digest.size() == d.size() && CRYPTO_memcmp(it->digest.constData(), d.constData(), size_t(d.size())) == 0;
}

void AuthCache::remember(const QString& user, const QByteArray& password, const QString& stored) {
    if (m_ttl.count() <= 0 || m_max <= 0) return;
    const QByteArray d = digest(user, password);
    const qint64 now = this->now();
    QMutexLocker lock(&m_mutex);
    if (m_entries.size() >= m_max && !m_entries.contains(user)) {
        m_entries.removeIf([now](const auto& it) { return it.value().expiresMs < now; });
        while (m_entries.size() >= m_max) m_entries.erase(m_entries.begin());
    }
    m_entries.insert(user, Entry{d, stored, now + m_ttl.count()});
}

void AuthCache::forget(const QString& user) {
    QMutexLocker lock(&m_mutex);
    m_entries.remove(user);
}

qint64 AuthCache::now() const {
    return m_clock ? m_clock() : QDateTime::currentMSecsSinceEpoch();
}

int AuthCache::size() const {
    QMutexLocker lock(&m_mutex);
    return int(m_entries.size());
}

}  // namespace postern
