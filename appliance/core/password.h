// password.h — password hashing, verification and the verification cache.
//
// Interface:
//   hashPassword(pw, params)  new hash: "{ARGON2ID}$argon2id$v=19$m=..,t=..,p=..$salt$hash"
//                             (the Dovecot passwd-file scheme prefix + the PHC string).
//   verifyPassword(pw, stored) accepts Argon2id/Argon2i PHC strings and, for
//                             migration from Dovecot/Postfix setups, SHA512-CRYPT ($6$),
//                             SHA256-CRYPT ($5$), bcrypt ($2b$/$2y$/$2a$) and yescrypt
//                             ($y$), with or without a {SCHEME} prefix. Comparison is
//                             constant-time. Anything else (including {PLAIN}) fails.
//   AuthCache                 remembers successful checks for a TTL, keyed by user and an
//                             HMAC of the password under a per-process random key (as
//                             Dovecot's auth cache does), so reconnecting clients skip the
//                             deliberately slow hash. Entries die when the stored hash changes.
//   generatePassword()        a random, readable password (about 115 bits).
//
// Hashing is slow on purpose (tens of ms): daemons call it from a worker thread.
// Security: passwords are never logged or kept beyond the call; the cache holds
// only HMAC digests. Thread-safe.
#pragma once

#include "result.h"

#include <QByteArray>
#include <QHash>
#include <QMutex>
#include <QString>
#include <chrono>
#include <functional>

namespace postern {

class Config;

struct HashParams {
    quint32 memoryKiB = 19456;
    quint32 iterations = 2;
    quint32 parallelism = 1;
    static HashParams fromConfig(const Config& config);
};

enum class PasswordScheme { Argon2id, Argon2i, Sha512Crypt, Sha256Crypt, Bcrypt, Yescrypt, Unsupported };
PasswordScheme passwordScheme(const QString& stored);
QString toString(PasswordScheme scheme);

Result<QString> hashPassword(const QByteArray& password, const HashParams& params);
bool verifyPassword(const QByteArray& password, const QString& stored);
// True when `stored` is not Argon2id with at least `params` (a login may upgrade it).
bool needsRehash(const QString& stored, const HashParams& params);
QString generatePassword();

class AuthCache {
public:
    AuthCache(std::chrono::milliseconds ttl, int maxEntries);
    // True when (user, password) was verified against exactly `stored` within the TTL.
    bool check(const QString& user, const QByteArray& password, const QString& stored);
    void remember(const QString& user, const QByteArray& password, const QString& stored);
    void forget(const QString& user);
    int size() const;
    // Milliseconds since the epoch; tests set a fake clock (the default is the system's).
    void setClock(std::function<qint64()> clock) { m_clock = std::move(clock); }

private:
    QByteArray digest(const QString& user, const QByteArray& password) const;
    struct Entry {
        QByteArray digest;
        QString stored;
        qint64 expiresMs = 0;
    };
    mutable QMutex m_mutex;
    QHash<QString, Entry> m_entries;
    QByteArray m_key;
    std::chrono::milliseconds m_ttl;
    int m_max;
    std::function<qint64()> m_clock;
    qint64 now() const;
};

}  // namespace postern
