// accounts.h — mail domains, users and aliases, and how an address resolves.
//
// Files (in the config folder, plain text in widely known formats):
//   domains   one mail domain per line
//   users     Dovecot passwd-file: user@domain:{SCHEME}hash:uid:gid:gecos:home:shell:extra
//             (we write user and hash, userdb_quota_rule=*:storage=<N>B for a quota and
//             postern_admin=yes for a web panel administrator, postern_disabled=yes for a
//             disabled account; other fields and extra fields are kept as found.
//             postern_admin and postern_disabled are additive: a file without them
//             reads as "no administrators" and "every account enabled", so older files
//             need no migration, and Dovecot passes an unknown passdb extra field
//             through unused)
//   aliases   Postfix virtual(5) style: "source target, target ..." per line; a line
//             starting with white space continues the previous one; source
//             "@domain" is a catch-all; target "@domain" keeps the local part.
//   credentials, totp-secrets
//             two-factor state, app passwords, TOTP secrets (account_credentials.h);
//             missing files mean nobody has enrolled (installations from before
//             two-factor need no migration step).
// '#' comment lines and blank lines are kept across edits made by the tools.
//
// Resolution (Accounts::resolve) of a recipient in a local domain, first match wins:
//   1. an alias for the exact address           -> its targets, expanded recursively
//   2. a user with the exact address            -> that mailbox
//   3. with a recipient delimiter (user+tag@d): alias, then user, for user@d
//   4. a catch-all alias @d                     -> its targets
//   5. otherwise unknown (the SMTP daemon answers 550 5.1.1)
// An alias target equal to its source means "deliver here too" (the Postfix idiom).
// Expansion stops at depth 16; a cycle is reported as Loop with the path.
//
// AccountStore reads and writes the files: every edit runs under an exclusive
// flock on .accounts.lock, re-reads the files, applies the change, checks that
// no one replaced a file meanwhile (a hand edit) and writes atomically; on a
// conflict it starts over. current() gives daemons a cached snapshot that is
// reloaded when a file changes; a broken file keeps the last good snapshot and the
// error is reported once. How often the files are looked at (four stat calls):
//   Freshness::Cached  at most once a second (monotonic clock): recipient, alias and
//                      sending-right lookups, which run per message and recipient;
//   Freshness::Exact   now: every login and every panel request, so a password
//                      changed, an account disabled or two-factor login turned on is
//                      in force from the next login on, in every process (a write
//                      is complete, renamed into place, before its tool answers).
// Disabled accounts (UserRecord::disabled, Accounts::setDisabled): every login is refused
// (the authenticator answers as for a wrong password), open sessions are closed by the
// daemons (daemon_server.h), mail to the address is still accepted and delivered; the
// last enabled administrator cannot be disabled (someone must be able to re-enable).
// Security: hashes never leave this module except to the password verifier.
// totp-secrets is read only by modifyWithSecrets() (root / the instance owner), never
// by load() or current(), which the daemons use: they cannot read it (0600).
#pragma once

#include "account_credentials.h"
#include "result.h"

#include <QDateTime>
#include <QList>
#include <QMap>
#include <QMutex>
#include <QString>
#include <QStringList>
#include <functional>
#include <memory>

namespace postern {

struct UserRecord {
    QString address;          // normalised local@domain
    QString passwordHash;     // {SCHEME}... as stored
    qint64 quotaBytes = 0;    // 0 = unlimited
    bool admin = false;       // may use the administrator pages of the web panel (postern_admin=yes)
    bool disabled = false;    // no login anywhere; mail is still delivered (postern_disabled=yes)
    QStringList otherFields;  // passwd-file fields 3..7 as found (uid, gid, gecos, home, shell)
    QStringList otherExtra;   // extra fields we do not interpret, kept verbatim
};

struct Resolution {
    enum class Status { Ok, Unknown, NotLocal, Loop, TooDeep, Invalid };
    Status status = Status::Unknown;
    QStringList mailboxes;  // local users to deliver to (normalised, de-duplicated)
    QStringList forwards;   // non-local addresses to relay to
    QString detail;         // for Loop/TooDeep/Invalid: what happened, e.g. "a@x -> b@x -> a@x"
    bool ok() const { return status == Status::Ok; }
};

class Accounts {
public:
    static constexpr int kMaxAliasDepth = 16;

    // Parsing from file contents; errors name file and line.
    static Result<Accounts> parse(const QByteArray& domains, const QByteArray& users, const QByteArray& aliases,
                                  const QString& configDir = {});
    QByteArray serializeDomains() const;
    QByteArray serializeUsers() const;
    QByteArray serializeAliases() const;

    QStringList domains() const;
    bool isLocalDomain(const QString& domain) const;
    QList<UserRecord> users(const QString& domain = {}) const;
    const UserRecord* user(const QString& address) const;
    // Alias sources in file order, with their targets.
    QList<std::pair<QString, QStringList>> aliases(const QString& domain = {}) const;
    QStringList aliasTargets(const QString& source) const;

    Resolution resolve(const QString& address, const QString& delimiters = QStringLiteral("+")) const;
    // May authenticated `user` use `from` as envelope sender? Own address, own address with a
    // detail (user+tag@), or an alias (not a catch-all) whose expansion includes the user.
    bool maySendAs(const QString& user, const QString& from, const QString& delimiters = QStringLiteral("+")) const;

    // Edits. Each validates and returns a clear error; nothing changes on error.
    Status addDomain(const QString& domain);
    Status removeDomain(const QString& domain, bool force);
    Status addUser(const QString& address, const QString& passwordHash, qint64 quotaBytes = 0);
    Status removeUser(const QString& address, bool force);
    Status setPasswordHash(const QString& address, const QString& passwordHash);
    Status setQuota(const QString& address, qint64 quotaBytes);
    Status setAdmin(const QString& address, bool admin);
    // Refused for the last enabled administrator (when there are administrators at all).
    Status setDisabled(const QString& address, bool disabled);
    Status addAlias(const QString& source, const QStringList& targets);
    // Remove one target, or the whole alias when target is empty.
    Status removeAlias(const QString& source, const QString& target = {});
    // postmaster@ and abuse@ of `domain` -> admin, when not already defined.
    QStringList ensureRoleAliases(const QString& domain, const QString& admin);

    // Two-factor state and app passwords (file `credentials`, account_credentials.h).
    // Removing a user removes them too.
    const AccountCredentials& credentials() const { return m_credentials; }
    AccountCredentials& credentials() { return m_credentials; }
    Status setCredentials(AccountCredentials c);  // drops entries of addresses that are not users

    // Normalise an alias source ("local@domain" or "@domain").
    static Result<QString> normalizeSource(const QString& source);
    // Normalise an alias target ("local@domain" or "@domain").
    static Result<QString> normalizeTarget(const QString& target);

private:
    struct Line {
        QString key;   // domain / user address / alias source; empty for comments
        QString text;  // comment text, or the entry's own extra text (unused for entries)
    };
    // The three files, read in this order by parse(); errors name file and line.
    Status parseDomains(const QByteArray& domains, const QString& configDir);
    Status parseUsers(const QByteArray& users, const QString& configDir);
    Status parseAliases(const QByteArray& aliases, const QString& configDir);
    void expand(const QString& address, const QString& delimiters, QStringList& path, Resolution& out, int depth) const;
    QString userLine(const UserRecord& u) const;
    Status checkLoops() const;

    QList<Line> m_domainLines, m_userLines, m_aliasLines;
    QStringList m_domains;
    QMap<QString, UserRecord> m_users;
    QMap<QString, QStringList> m_aliases;
    AccountCredentials m_credentials;
};

class AccountStore {
public:
    explicit AccountStore(QString configDir);
    QString configDir() const { return m_dir; }
    QString domainsPath() const;
    QString usersPath() const;
    QString aliasesPath() const;
    QString credentialsPath() const;
    QString totpSecretsPath() const;

    Result<Accounts> load() const;
    // Apply `change` atomically (see file comment). Returns the change's error, if any.
    Status modify(const std::function<Status(Accounts&)>& change);
    // The same, with the TOTP secrets (read and written 0600 under the same lock,
    // after the other files). Every modify also drops the secrets of removed users.
    Status modifyWithSecrets(const std::function<Status(Accounts&, TotpSecrets&)>& change);
    // Cached snapshot for daemons; never null after the first successful load.
    enum class Freshness { Cached, Exact };
    std::shared_ptr<const Accounts> current(Freshness freshness = Freshness::Cached, QString* error = nullptr);
    // Tests: the clock that spaces Cached checks of the files (ms, monotonic by default).
    void setClock(std::function<qint64()> clock) { m_clock = std::move(clock); }

private:
    Status modifyImpl(const std::function<Status(Accounts&, TotpSecrets&)>& change);
    QString m_dir;
    QMutex m_mutex;
    std::function<qint64()> m_clock;
    std::shared_ptr<const Accounts> m_snapshot;
    qint64 m_lastCheckMs = 0;
    QList<qint64> m_stamps;
};

}  // namespace postern
