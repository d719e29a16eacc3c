// commands_accounts.cpp — posternctl domain|user|alias|resolve.
//
// The domain, user and alias edits are core/account_ops.h, which the web panel calls too.
// Every edit goes through AccountStore::modify (lock, re-read, atomic write),
// so posternctl, the wizard and a hand edit never corrupt each other.
// Passwords are hashed with the configured Argon2id cost and never printed,
// except a generated one, once, on stdout.
#include "ctl.h"

#include "core/account_ops.h"
#include "core/accounts.h"
#include "core/address.h"
#include "core/config_schema.h"
#include "core/dkim_keys.h"
#include "core/password.h"
#include "core/setting_keys.h"

namespace postern::ctl {

namespace {

QString formatSize(qint64 bytes) {
    if (bytes <= 0) return QStringLiteral("-");
    const char* units[] = {"B", "K", "M", "G", "T"};
    int u = 0;
    qint64 v = bytes;
    while (u < 4 && v % 1024 == 0 && v >= 1024) {
        v /= 1024;
        ++u;
    }
    return QString::number(v) + QLatin1String(units[u]);
}

int domainAdd(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("usage: domain add DOMAIN [--admin ADDRESS]"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    const QString admin = ctx.opt(QStringLiteral("admin"), get(config, keys::general::adminAddress));
    AccountStore store(ctx.configDir);
    auto added = accountops::addDomain(store, ctx.configDir, ctx.args.first(), admin);
    if (!added)
        return ctx.fail(ctx.has(QStringLiteral("admin")) &&
                                added.errorMessage().startsWith(QStringLiteral("admin address:"))
                            ? QStringLiteral("--admin: ") + added.errorMessage().mid(15)
                            : added.errorMessage());
    const QString& domain = added->domain;
    ctx.out << "added domain " << domain << Qt::endl;
    // The records to publish are in `posternctl dns records`.
    if (!added->dkimError.isEmpty())
        ctx.err << "posternctl: DKIM keys for " << domain << ": " << added->dkimError << Qt::endl;
    else if (added->dkimKeysCreated > 0)
        ctx.out << "  DKIM keys created (" << added->dkimKeysCreated
                << "); publish them: posternctl dns records --domain " << domain << Qt::endl;
    if (!added->roles.isEmpty())
        ctx.out << "  " << added->roles.join(QStringLiteral(", ")) << " -> " << normalizeAddress(admin).valueOr(admin)
                << Qt::endl;
    else if (admin.isEmpty())
        ctx.out << "  postmaster@" << domain << " and abuse@" << domain
                << " will point to the first user you add (or use --admin)" << Qt::endl;
    return 0;
}

int domainDel(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("usage: domain del DOMAIN [--force]"));
    AccountStore store(ctx.configDir);
    Status st = accountops::removeDomain(store, ctx.args.first(), ctx.has(QStringLiteral("force")));
    if (!st) return ctx.fail(st.errorMessage());
    ctx.out << "removed domain " << normalizeDomain(ctx.args.first()).valueOr(ctx.args.first()) << Qt::endl;
    return 0;
}

int domainList(CtlContext& ctx) {
    AccountStore store(ctx.configDir);
    auto acc = store.load();
    if (!acc) return ctx.fail(acc.errorMessage());
    for (const QString& d : acc->domains())
        ctx.out << d << "\t" << acc->users(d).size() << " users\t" << acc->aliases(d).size() << " aliases\n";
    ctx.out.flush();
    return 0;
}

int userAdd(CtlContext& ctx) {
    if (ctx.args.size() != 1)
        return ctx.usage(QStringLiteral("usage: user add ADDRESS [--password-stdin|--generate] [--quota SIZE]"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    qint64 quota = 0;
    if (ctx.has(QStringLiteral("quota"))) {
        auto q = Schema::parseSize(ctx.opt(QStringLiteral("quota")));
        if (!q) return ctx.usage(QStringLiteral("--quota: %1").arg(q.errorMessage()));
        quota = *q;
    }
    auto addr = normalizeAddress(ctx.args.first());
    if (!addr) return ctx.fail(addr.errorMessage());
    // Check before asking for a password: a typo should not cost a prompt.
    AccountStore store(ctx.configDir);
    {
        auto acc = store.load();
        if (!acc) return ctx.fail(acc.errorMessage());
        const QString domain = addr->mid(addr->lastIndexOf(QLatin1Char('@')) + 1);
        if (!acc->isLocalDomain(domain))
            return ctx.fail(QStringLiteral("unknown domain %1 (add it first: posternctl domain add %1)").arg(domain));
        if (acc->user(*addr)) return ctx.fail(QStringLiteral("user %1 already exists").arg(*addr));
    }
    QString error;
    bool generated = false;
    const QString password = readNewPassword(ctx, &error, &generated);
    if (password.isEmpty()) return ctx.fail(error);
    auto roles = accountops::addUser(store, HashParams::fromConfig(config), *addr, password.toUtf8(), quota,
                                     get(config, keys::general::adminAddress));
    if (!roles) return ctx.fail(roles.errorMessage());
    ctx.out << "added user " << *addr << Qt::endl;
    if (generated) ctx.out << "password: " << password << "   (shown once; store it now)" << Qt::endl;
    if (!roles->isEmpty())
        ctx.out << "  " << roles->join(QStringLiteral(", ")) << " now deliver to this user" << Qt::endl;
    return 0;
}

int userDel(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("usage: user del ADDRESS [--force]"));
    AccountStore store(ctx.configDir);
    Status st = accountops::removeUser(store, ctx.args.first(), ctx.has(QStringLiteral("force")));
    if (!st) return ctx.fail(st.errorMessage());
    ctx.out << "removed user " << normalizeAddress(ctx.args.first()).valueOr(ctx.args.first())
            << " (the mailbox folder is kept; delete it by hand when no longer needed)" << Qt::endl;
    return 0;
}

int userAdmin(CtlContext& ctx) {
    if (ctx.args.size() != 2 || (ctx.args.at(1) != u"on" && ctx.args.at(1) != u"off"))
        return ctx.usage(QStringLiteral("usage: user admin ADDRESS on|off"));
    AccountStore store(ctx.configDir);
    const bool on = ctx.args.at(1) == u"on";
    Status st = accountops::setAdmin(store, ctx.args.first(), on);
    if (!st) return ctx.fail(st.errorMessage());
    ctx.out << normalizeAddress(ctx.args.first()).valueOr(ctx.args.first())
            << (on ? " is an administrator of the web panel" : " is no longer an administrator of the web panel")
            << Qt::endl;
    return 0;
}

// Disabled: no login anywhere (wrong-password answer), open sessions closed, mail still delivered.
int userSetDisabled(CtlContext& ctx, bool disabled) {
    if (ctx.args.size() != 1)
        return ctx.usage(disabled ? QStringLiteral("usage: user disable ADDRESS")
                                  : QStringLiteral("usage: user enable ADDRESS"));
    AccountStore store(ctx.configDir);
    Status st = accountops::setDisabled(store, ctx.args.first(), disabled);
    if (!st) return ctx.fail(st.errorMessage());
    ctx.out << normalizeAddress(ctx.args.first()).valueOr(ctx.args.first())
            << (disabled ? " is disabled: it cannot log in (open sessions are closed within seconds); mail to it is "
                           "still delivered"
                         : " is enabled: it can log in again")
            << Qt::endl;
    return 0;
}

int userDisable(CtlContext& ctx) {
    return userSetDisabled(ctx, true);
}

int userEnable(CtlContext& ctx) {
    return userSetDisabled(ctx, false);
}

int userList(CtlContext& ctx) {
    AccountStore store(ctx.configDir);
    auto acc = store.load();
    if (!acc) return ctx.fail(acc.errorMessage());
    QString domain;
    if (!ctx.args.isEmpty()) {
        auto d = normalizeDomain(ctx.args.first());
        if (!d) return ctx.fail(d.errorMessage());
        if (!acc->isLocalDomain(*d)) return ctx.fail(QStringLiteral("unknown domain %1").arg(*d));
        domain = *d;
    }
    for (const UserRecord& u : acc->users(domain))
        ctx.out << u.address << "\tquota=" << formatSize(u.quotaBytes)
                << "\tscheme=" << toString(passwordScheme(u.passwordHash)) << (u.admin ? "\tadmin" : "")
                << (u.disabled ? "\tdisabled" : "") << "\n";
    ctx.out.flush();
    return 0;
}

int userPasswd(CtlContext& ctx) {
    if (ctx.args.size() != 1)
        return ctx.usage(QStringLiteral("usage: user passwd ADDRESS [--password-stdin|--generate]"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    auto addr = normalizeAddress(ctx.args.first());
    if (!addr) return ctx.fail(addr.errorMessage());
    AccountStore store(ctx.configDir);
    {
        auto acc = store.load();
        if (!acc) return ctx.fail(acc.errorMessage());
        if (!acc->user(*addr)) return ctx.fail(QStringLiteral("unknown user %1").arg(*addr));
    }
    QString error;
    bool generated = false;
    const QString password = readNewPassword(ctx, &error, &generated);
    if (password.isEmpty()) return ctx.fail(error);
    Status st = accountops::setPassword(store, HashParams::fromConfig(config), *addr, password.toUtf8());
    if (!st) return ctx.fail(st.errorMessage());
    ctx.out << "changed password of " << *addr << Qt::endl;
    if (generated) ctx.out << "password: " << password << "   (shown once; store it now)" << Qt::endl;
    return 0;
}

int userQuota(CtlContext& ctx) {
    if (ctx.args.size() != 2) return ctx.usage(QStringLiteral("usage: user quota ADDRESS SIZE (0 = unlimited)"));
    auto q = Schema::parseSize(ctx.args.at(1));
    if (!q) return ctx.usage(q.errorMessage());
    AccountStore store(ctx.configDir);
    Status st = accountops::setQuota(store, ctx.args.first(), *q);
    if (!st) return ctx.fail(st.errorMessage());
    ctx.out << "quota of " << normalizeAddress(ctx.args.first()).valueOr(ctx.args.first()) << " is " << formatSize(*q)
            << Qt::endl;
    return 0;
}

int aliasAdd(CtlContext& ctx) {
    if (ctx.args.size() < 2) return ctx.usage(QStringLiteral("usage: alias add SOURCE TARGET [TARGET...]"));
    QStringList targets;
    for (const QString& t : ctx.args.mid(1))
        for (const QString& part : t.split(QLatin1Char(','), Qt::SkipEmptyParts)) targets << part.trimmed();
    AccountStore store(ctx.configDir);
    auto source = accountops::addAlias(store, ctx.args.first(), targets);
    if (!source) return ctx.fail(source.errorMessage());
    ctx.out << "alias " << *source << " -> " << targets.join(QStringLiteral(", ")) << Qt::endl;
    return 0;
}

int aliasDel(CtlContext& ctx) {
    if (ctx.args.isEmpty() || ctx.args.size() > 2) return ctx.usage(QStringLiteral("usage: alias del SOURCE [TARGET]"));
    AccountStore store(ctx.configDir);
    Status st = accountops::removeAlias(store, ctx.args.first(), ctx.args.value(1));
    if (!st) return ctx.fail(st.errorMessage());
    ctx.out << "removed " << (ctx.args.size() == 2 ? QStringLiteral("target %1 of ").arg(ctx.args.at(1)) : QString())
            << "alias " << ctx.args.first() << Qt::endl;
    return 0;
}

int aliasList(CtlContext& ctx) {
    AccountStore store(ctx.configDir);
    auto acc = store.load();
    if (!acc) return ctx.fail(acc.errorMessage());
    QString domain;
    if (!ctx.args.isEmpty()) {
        auto d = normalizeDomain(ctx.args.first());
        if (!d) return ctx.fail(d.errorMessage());
        domain = *d;
    }
    for (const auto& [src, targets] : acc->aliases(domain))
        ctx.out << src << "\t" << targets.join(QStringLiteral(", ")) << "\n";
    ctx.out.flush();
    return 0;
}

int resolveCmd(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("usage: resolve ADDRESS"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    AccountStore store(ctx.configDir);
    auto acc = store.load();
    if (!acc) return ctx.fail(acc.errorMessage());
    Resolution r = acc->resolve(ctx.args.first(), get(config, keys::general::recipientDelimiter));
    switch (r.status) {
        case Resolution::Status::Ok:
            for (const QString& m : r.mailboxes) ctx.out << "mailbox\t" << m << "\n";
            for (const QString& f : r.forwards) ctx.out << "forward\t" << f << "\n";
            ctx.out.flush();
            return 0;
        case Resolution::Status::NotLocal:
            return ctx.fail(QStringLiteral("%1 is not in a local domain").arg(ctx.args.first()));
        case Resolution::Status::Unknown:
            return ctx.fail(QStringLiteral("%1: no such user or alias").arg(ctx.args.first()));
        case Resolution::Status::Loop:
            return ctx.fail(QStringLiteral("alias loop: %1").arg(r.detail));
        case Resolution::Status::TooDeep:
            return ctx.fail(QStringLiteral("aliases nest too deep: %1").arg(r.detail));
        case Resolution::Status::Invalid:
            return ctx.fail(r.detail);
    }
    return 1;
}

}  // namespace

// Long because it is the one table of posternctl's account commands (domain, user, alias,
// resolve): one row per command with its usage, help text, options and handler.
void addAccountCommands(QList<Command>& out) {
    out << Command{{QStringLiteral("domain"), QStringLiteral("add")},
                   QStringLiteral("DOMAIN [--admin ADDRESS]"),
                   QStringLiteral("serve mail for DOMAIN"),
                   {QStringLiteral("admin")},
                   {},
                   domainAdd};
    out << Command{{QStringLiteral("domain"), QStringLiteral("del")},
                   QStringLiteral("DOMAIN [--force]"),
                   QStringLiteral("stop serving DOMAIN"),
                   {},
                   {QStringLiteral("force")},
                   domainDel};
    out << Command{
        {QStringLiteral("domain"), QStringLiteral("list")}, {}, QStringLiteral("list domains"), {}, {}, domainList};
    out << Command{{QStringLiteral("user"), QStringLiteral("add")},
                   QStringLiteral("ADDRESS [--password-stdin|--generate] [--quota SIZE]"),
                   QStringLiteral("create a mailbox user"),
                   {QStringLiteral("quota")},
                   {QStringLiteral("password-stdin"), QStringLiteral("generate")},
                   userAdd};
    out << Command{{QStringLiteral("user"), QStringLiteral("del")},
                   QStringLiteral("ADDRESS [--force]"),
                   QStringLiteral("remove a user (mail is kept on disk)"),
                   {},
                   {QStringLiteral("force")},
                   userDel};
    out << Command{{QStringLiteral("user"), QStringLiteral("list")},
                   QStringLiteral("[DOMAIN]"),
                   QStringLiteral("list users"),
                   {},
                   {},
                   userList};
    out << Command{{QStringLiteral("user"), QStringLiteral("passwd")},
                   QStringLiteral("ADDRESS [--password-stdin|--generate]"),
                   QStringLiteral("set a user's password"),
                   {},
                   {QStringLiteral("password-stdin"), QStringLiteral("generate")},
                   userPasswd};
    out << Command{{QStringLiteral("user"), QStringLiteral("quota")},
                   QStringLiteral("ADDRESS SIZE"),
                   QStringLiteral("set a user's quota (0 = unlimited)"),
                   {},
                   {},
                   userQuota};
    out << Command{{QStringLiteral("user"), QStringLiteral("admin")},
                   QStringLiteral("ADDRESS on|off"),
                   QStringLiteral("make a user an administrator of the web panel, or not"),
                   {},
                   {},
                   userAdmin};
    out << Command{{QStringLiteral("user"), QStringLiteral("disable")},
                   QStringLiteral("ADDRESS"),
                   QStringLiteral("stop a user from logging in (mail to it is still delivered)"),
                   {},
                   {},
                   userDisable};
    out << Command{{QStringLiteral("user"), QStringLiteral("enable")},
                   QStringLiteral("ADDRESS"),
                   QStringLiteral("let a disabled user log in again"),
                   {},
                   {},
                   userEnable};
    out << Command{{QStringLiteral("alias"), QStringLiteral("add")},
                   QStringLiteral("SOURCE TARGET [TARGET...]"),
                   QStringLiteral("forward SOURCE (or @domain) to targets"),
                   {},
                   {},
                   aliasAdd};
    out << Command{{QStringLiteral("alias"), QStringLiteral("del")},
                   QStringLiteral("SOURCE [TARGET]"),
                   QStringLiteral("remove an alias or one of its targets"),
                   {},
                   {},
                   aliasDel};
    out << Command{{QStringLiteral("alias"), QStringLiteral("list")},
                   QStringLiteral("[DOMAIN]"),
                   QStringLiteral("list aliases"),
                   {},
                   {},
                   aliasList};
    out << Command{{QStringLiteral("resolve")},
                   QStringLiteral("ADDRESS"),
                   QStringLiteral("show where mail for ADDRESS is delivered"),
                   {},
                   {},
                   resolveCmd};
}

}  // namespace postern::ctl
