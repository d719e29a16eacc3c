// account_ops.h — the account operations shared by posternctl and the web panel
// (postern-webd): one implementation of each, with the same locking (every edit is
// one AccountStore::modify: lock, re-read, validate, atomic write) and validation.
//
// Interface (each returns a Status/Result with a message fit for the user):
//   addUser(store, params, address, password, quota, adminAddress)
//                      hashes the password (Argon2id, params), adds the user and
//                      points postmaster@/abuse@ of its domain at adminAddress (or
//                      at the new user when empty) when they are not defined yet;
//                      returns the role aliases added.
//   setPassword(store, params, address, password)
//   setQuota(store, address, bytes)            0 = unlimited
//   setAdmin(store, address, on)               the web panel's administrator flag
//   setDisabled(store, address, disabled, actor)
//                      disables (no login anywhere, open sessions closed by the daemons,
//                      mail still delivered) or enables an account. Refused for the
//                      account `actor` (the panel's logged-in administrator: nobody
//                      disables themselves; empty for posternctl) and for the last
//                      enabled administrator (Accounts::setDisabled).
//   removeUser(store, address, force)          mail on disk is kept (the message says so)
//   addAlias(store, source, targets)           returns the normalised source
//   removeAlias(store, source, target)         empty target: the whole alias
//   addDomain(store, configDir, domain, adminAddress)
//                      adds the domain, points postmaster@/abuse@ at adminAddress (when
//                      set) and makes its DKIM keys (DkimKeyStore::ensureKeys; a key
//                      error does not undo the domain: DomainAdded::dkimError says it)
//   removeDomain(store, domain, force)         Accounts::removeDomain's rules
//   checkNewPassword(password)                 kMinPasswordLength..kMaxPasswordLength bytes
// Security: the password is hashed here and never logged or returned.
// Limits: kMinPasswordLength (1) and kMaxPasswordLength (1024) bytes of UTF-8 for
// passwords set through these functions.
#pragma once

#include "accounts.h"
#include "password.h"

namespace postern::accountops {

inline constexpr qsizetype kMinPasswordLength = 1;  // posternctl has always accepted any non-empty password
inline constexpr qsizetype kMaxPasswordLength = 1024;

Status checkNewPassword(const QByteArray& password);
Result<QStringList> addUser(AccountStore& store, const HashParams& params, const QString& address,
                            const QByteArray& password, qint64 quotaBytes, const QString& adminAddress);
Status setPassword(AccountStore& store, const HashParams& params, const QString& address, const QByteArray& password);
Status setQuota(AccountStore& store, const QString& address, qint64 quotaBytes);
Status setAdmin(AccountStore& store, const QString& address, bool admin);
Status setDisabled(AccountStore& store, const QString& address, bool disabled, const QString& actor = {});
Status removeUser(AccountStore& store, const QString& address, bool force);
struct DomainAdded {
    QString domain;     // normalised
    QStringList roles;  // role aliases created
    int dkimKeysCreated = 0;
    QString dkimError;  // empty when the keys are in place
};
Result<DomainAdded> addDomain(AccountStore& store, const QString& configDir, const QString& domain,
                              const QString& adminAddress);
Status removeDomain(AccountStore& store, const QString& domain, bool force);
Result<QString> addAlias(AccountStore& store, const QString& source, const QStringList& targets);
Status removeAlias(AccountStore& store, const QString& source, const QString& target);

}  // namespace postern::accountops
