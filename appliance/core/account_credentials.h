// account_credentials.h — what an account has besides its password: the two-factor
// switch, its app passwords, and (root's only) the TOTP secrets.
//
// Files (config folder, written only through AccountStore, which locks and writes
// them atomically like the other account files; a missing file = nothing enrolled):
//   credentials   0640 like `users` (the daemons read it to log in):
//                   # postern-credentials 1
//                   2fa ADDRESS SINCE                 two-factor is on since SINCE (Unix s)
//                   app ADDRESS ID CREATED TAG HASH NAME
//                 ID: 16 hex digits, random, never reused (last-use records are keyed by
//                 it, not by the name: a revoked name added again starts unused);
//                 TAG: 4 hex digits, see appPasswordTag(); HASH: the project's password
//                 hash (password.h, Argon2id); NAME: [A-Za-z0-9._-], 1..kMaxAppPasswordName.
//   totp-secrets  0600, root's (or the instance owner's): the daemon user that reads
//                 `users` and `credentials` cannot read it (no mail protocol needs it):
//                   # postern-totp-secrets 1
//                   ADDRESS pending|active BASE32SECRET LASTSTEP CREATED
//                 LASTSTEP: the last TOTP time step accepted (replay protection).
// Format version: the first comment line; a file without it is read as format 1, a
// higher number is refused (a newer Postern wrote it). Entries of addresses that are no
// longer users are dropped when read and on the next write (a user deleted and created
// again starts without 2FA and app passwords).
//
// App passwords: generateAppPassword() makes 16 random lowercase letters (75 bits),
// shown as "abcd efgh ijkl mnop"; normalizeAppPassword() accepts them with or without
// spaces or dashes and in any case, and returns the 16 letters (empty when the text
// cannot be an app password, e.g. an ordinary account password).
// appPasswordTag(address, letters): 16 bits of SHA-256 over both, stored beside the hash.
// A login tries only the app passwords whose tag matches (nearly always exactly one),
// so a login costs one slow hash verify however many app passwords an account has.
// The tag tells someone who read the file 16 of the 75 bits; guessing the rest is
// still 2^59 Argon2id verifies (or 2^75 SHA-256), far beyond reach.
//
// Security: hashes and secrets never leave this module and two_factor.h except to
// the verifiers; nothing here logs them.
// Limits: kMaxAppPasswords (20) per account, refused at add and when reading a file
// with more; kMaxAppPasswordName (40) characters of name; kMaxCredentialLine (1024).
// Standards: none (formats are Postern's own, line-based like `users`).
#pragma once

#include "result.h"

#include <QByteArray>
#include <QList>
#include <QMap>
#include <QString>

namespace postern {

inline constexpr int kMaxAppPasswords = 20;
inline constexpr int kMaxAppPasswordName = 40;
inline constexpr int kMaxCredentialLine = 1024;
inline constexpr int kAppPasswordLetters = 16;
inline constexpr int kCredentialsFormat = 1;

struct AppPassword {
    QString id;  // 16 hex digits
    QString name;
    qint64 created = 0;  // Unix seconds
    quint16 tag = 0;
    QString hash;  // {ARGON2ID}...
};

class AccountCredentials {
public:
    static Result<AccountCredentials> parse(const QByteArray& data,
                                            const QString& where = QStringLiteral("credentials"));
    QByteArray serialize() const;

    bool twoFactorEnabled(const QString& address) const { return m_twoFactor.contains(address); }
    qint64 twoFactorSince(const QString& address) const { return m_twoFactor.value(address, 0); }
    void setTwoFactor(const QString& address, bool on, qint64 since);

    QList<AppPassword> appPasswords(const QString& address) const { return m_apps.value(address); }
    // Refuses a bad or duplicate name (case-insensitive) and the (kMaxAppPasswords+1)th.
    Status addAppPassword(const QString& address, const AppPassword& app);
    Status removeAppPassword(const QString& address, const QString& name);
    // Drops everything of `address` (user deleted).
    void removeUser(const QString& address);
    // Drops everything of addresses not in `users`.
    void keepOnly(const QList<QString>& users);

    static Status checkName(const QString& name);

private:
    QMap<QString, qint64> m_twoFactor;
    QMap<QString, QList<AppPassword>> m_apps;
};

QString generateAppPassword();  // "abcd efgh ijkl mnop"
QByteArray normalizeAppPassword(const QByteArray& text);
quint16 appPasswordTag(const QString& address, const QByteArray& letters);
QString newCredentialId();

struct TotpSecret {
    QByteArray secret;
    bool active = false;  // false: enrolment not confirmed yet
    qint64 lastStep = -1;
    qint64 created = 0;
};

class TotpSecrets {
public:
    static Result<TotpSecrets> parse(const QByteArray& data, const QString& where = QStringLiteral("totp-secrets"));
    QByteArray serialize() const;
    const TotpSecret* find(const QString& address) const;
    TotpSecret* find(const QString& address);
    void set(const QString& address, const TotpSecret& s) { m_entries.insert(address, s); }
    void remove(const QString& address) { m_entries.remove(address); }
    void keepOnly(const QList<QString>& users);
    bool operator==(const TotpSecrets& o) const;

private:
    QMap<QString, TotpSecret> m_entries;
};

}  // namespace postern
