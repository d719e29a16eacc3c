// two_factor.h — the operations on two-factor login and app passwords, used by
// posternctl and the web panel (webd's AccountBroker, panel_user_pages.h): one
// implementation, one lock.
//
// Interface (TwoFactor over an AccountStore; every change goes through
// AccountStore::modifyWithSecrets: lock, re-read, change, atomic write; the clock
// is injectable, Unix seconds):
//   beginEnrolment(address)       a new 160-bit secret, stored as *pending* (2FA stays
//                                 off); returns the otpauth URI, the secret in base32,
//                                 the QR code as SVG (panel) and as terminal blocks.
//                                 Refused while 2FA is on (disable first). Calling it
//                                 again replaces a pending secret.
//   confirmEnrolment(address, code) turns 2FA on when `code` is valid for the pending
//                                 secret (the code is then used: replay protection).
//   verifyCode(address, code)     the panel's second login step: OK only when 2FA is on
//                                 and `code` is valid and newer than the last code
//                                 accepted for this account (RFC 6238 section 5.2);
//                                 records its step before answering.
//   disableWithCode(address, code) the user turns 2FA off (needs a valid code).
//   disableAsAdmin(address)       an administrator turns it off (lost phone); also
//                                 drops a pending enrolment.
//   status(address)               on/off since when, pending enrolment, app passwords.
//   addAppPassword(address, name, hashParams)
//                                 16 random letters, hashed with hashPassword() (slow:
//                                 call from a worker thread in a daemon); the clear
//                                 text is returned once and never stored.
//   appPasswords(address)         name, created, last used (0 = never).
//   revokeAppPassword(address, name)
//   twoFactorRequired(config, isAdmin)  true when `auth.require_2fa_admins` is on and the
//                                 account is an administrator (the admin flag comes
//                                 with the web panel; its login calls this).
//   recordAppPasswordUse(dir, id, now) / appPasswordLastUsed(dir, id)
//                                 "last used" is the mtime of <data_dir>/state/app-passwords/<id>
//                                 (appPasswordUsageDir): the daemons touch it as the daemon
//                                 user (they cannot write the config folder); readers as
//                                 root go through SafeDir and never follow a link there.
// Errors are one line for the operator or user; a wrong code and a reused code give
// the same message ("wrong or already used code").
// Security: secrets live only in totp-secrets (0600, see account_credentials.h); they
// leave this module only inside the TotpEnrolment shown to the user who enrols.
// Guessing codes is limited by the caller (the panel uses the login throttle).
// Limits: see totp.h and account_credentials.h (kMaxAppPasswords per account).
// Standards: RFC 6238, RFC 4226.
#pragma once

#include "accounts.h"
#include "password.h"
#include "result.h"

#include <QString>
#include <functional>

namespace postern {

class Config;

struct TotpEnrolment {
    QString address;
    QString secretBase32;
    QString uri;
    QString svg;       // standalone <svg>, safe to embed
    QString terminal;  // UTF-8 half blocks, lines ending in '\n'
};

struct TwoFactorStatus {
    bool enabled = false;
    qint64 since = 0;
    bool pending = false;
    int appPasswords = 0;
};

struct NewAppPassword {
    QString name;
    QString password;  // "abcd efgh ijkl mnop": show once
};

struct AppPasswordInfo {
    QString name;
    qint64 created = 0;
    qint64 lastUsed = 0;  // 0: never
};

class TwoFactor {
public:
    using Clock = std::function<qint64()>;
    TwoFactor(AccountStore& store, QString usageDir, Clock clock = {});

    Result<TotpEnrolment> beginEnrolment(const QString& address);
    Status confirmEnrolment(const QString& address, const QString& code);
    Status verifyCode(const QString& address, const QString& code);
    Status disableWithCode(const QString& address, const QString& code);
    Status disableAsAdmin(const QString& address);
    Result<TwoFactorStatus> status(const QString& address) const;

    Result<NewAppPassword> addAppPassword(const QString& address, const QString& name, const HashParams& params);
    Result<QList<AppPasswordInfo>> appPasswords(const QString& address) const;
    Status revokeAppPassword(const QString& address, const QString& name);

private:
    qint64 now() const;
    Status checkCode(TotpSecrets& secrets, const QString& address, const QString& code, bool wantActive);
    AccountStore& m_store;
    QString m_usageDir;
    Clock m_clock;
};

bool twoFactorRequired(const Config& config, bool isAdmin);
QString appPasswordUsageDir(const Config& config);
Status recordAppPasswordUse(const QString& dir, const QString& id, qint64 now);
qint64 appPasswordLastUsed(const QString& dir, const QString& id);

}  // namespace postern
