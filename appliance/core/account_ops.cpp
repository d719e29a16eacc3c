// account_ops.cpp — see account_ops.h.
#include "account_ops.h"

#include "address.h"
#include "dkim_keys.h"

namespace postern::accountops {

Status checkNewPassword(const QByteArray& password) {
    if (password.size() < kMinPasswordLength)
        return Status::fail(QStringLiteral("the password needs at least %1 characters").arg(kMinPasswordLength));
    if (password.size() > kMaxPasswordLength)
        return Status::fail(QStringLiteral("the password is longer than %1 bytes").arg(kMaxPasswordLength));
    for (char c : password)
        if (c == '\0' || c == '\n' || c == '\r')
            return Status::fail(QStringLiteral("the password contains a line break or NUL"));
    return {};
}

Result<QStringList> addUser(AccountStore& store, const HashParams& params, const QString& addressIn,
                            const QByteArray& password, qint64 quotaBytes, const QString& adminAddress) {
    auto addr = normalizeAddress(addressIn);
    if (!addr) return addr.error();
    if (quotaBytes < 0) return Status::fail(QStringLiteral("quota cannot be negative")).error();
    {  // check before the (slow) hashing: a typo should not cost a hash
        auto acc = store.load();
        if (!acc) return acc.error();
        const QString domain = addr->mid(addr->lastIndexOf(QLatin1Char('@')) + 1);
        if (!acc->isLocalDomain(domain))
            return Status::fail(
                       QStringLiteral("unknown domain %1 (add it first: posternctl domain add %1)").arg(domain))
                .error();
        if (acc->user(*addr)) return Status::fail(QStringLiteral("user %1 already exists").arg(*addr)).error();
    }
    if (auto st = checkNewPassword(password); !st) return st.error();
    auto hash = hashPassword(password, params);
    if (!hash) return hash.error();
    QStringList roles;
    Status st = store.modify([&](Accounts& acc) -> Status {
        roles.clear();
        if (auto s = acc.addUser(*addr, *hash, quotaBytes); !s) return s;
        const QString domain = addr->mid(addr->lastIndexOf(QLatin1Char('@')) + 1);
        roles = acc.ensureRoleAliases(domain, adminAddress.isEmpty() ? *addr : adminAddress);
        return {};
    });
    if (!st) return st.error();
    return roles;
}

Status setPassword(AccountStore& store, const HashParams& params, const QString& addressIn,
                   const QByteArray& password) {
    auto addr = normalizeAddress(addressIn);
    if (!addr) return addr.error();
    {
        auto acc = store.load();
        if (!acc) return acc.error();
        if (!acc->user(*addr)) return Status::fail(QStringLiteral("unknown user %1").arg(*addr));
    }
    if (auto st = checkNewPassword(password); !st) return st;
    auto hash = hashPassword(password, params);
    if (!hash) return hash.error();
    return store.modify([&](Accounts& acc) { return acc.setPasswordHash(*addr, *hash); });
}

Status setQuota(AccountStore& store, const QString& address, qint64 quotaBytes) {
    return store.modify([&](Accounts& acc) { return acc.setQuota(address, quotaBytes); });
}

Status setAdmin(AccountStore& store, const QString& address, bool admin) {
    return store.modify([&](Accounts& acc) { return acc.setAdmin(address, admin); });
}

Status setDisabled(AccountStore& store, const QString& address, bool disabled, const QString& actor) {
    auto a = normalizeAddress(address);
    if (!a) return a.error();
    if (disabled && !actor.isEmpty() && normalizeAddress(actor).valueOr(actor) == *a)
        return Status::fail(QStringLiteral("you cannot disable the account you are logged in with"));
    return store.modify([&](Accounts& acc) { return acc.setDisabled(*a, disabled); });
}

Status removeUser(AccountStore& store, const QString& address, bool force) {
    return store.modify([&](Accounts& acc) { return acc.removeUser(address, force); });
}

Result<DomainAdded> addDomain(AccountStore& store, const QString& configDir, const QString& domain,
                              const QString& adminAddress) {
    QString admin;
    if (!adminAddress.isEmpty()) {
        auto a = normalizeAddress(adminAddress);
        if (!a) return Result<DomainAdded>::fail(QStringLiteral("admin address: %1").arg(a.errorMessage()));
        admin = *a;
    }
    DomainAdded out;
    Status st = store.modify([&](Accounts& acc) -> Status {
        if (auto s = acc.addDomain(domain); !s) return s;
        out.domain = acc.domains().last();
        if (!admin.isEmpty()) out.roles = acc.ensureRoleAliases(out.domain, admin);
        return {};
    });
    if (!st) return st.error();
    // Outgoing mail of the domain is signed from the start.
    DkimKeyStore dkim(configDir);
    if (auto made = dkim.ensureKeys(out.domain); !made)
        out.dkimError = made.errorMessage();
    else
        out.dkimKeysCreated = int(made->size());
    return out;
}

Status removeDomain(AccountStore& store, const QString& domain, bool force) {
    return store.modify([&](Accounts& acc) { return acc.removeDomain(domain, force); });
}

Result<QString> addAlias(AccountStore& store, const QString& sourceIn, const QStringList& targets) {
    auto s = Accounts::normalizeSource(sourceIn);
    if (!s) return s.error();
    const QString source = *s;
    Status st = store.modify([&](Accounts& acc) { return acc.addAlias(source, targets); });
    if (!st) return st.error();
    return source;
}

Status removeAlias(AccountStore& store, const QString& source, const QString& target) {
    return store.modify([&](Accounts& acc) { return acc.removeAlias(source, target); });
}

}  // namespace postern::accountops
