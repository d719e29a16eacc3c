// commands_twofactor.cpp — posternctl user 2fa enrol|confirm|disable|status and
// user app-password add|list|revoke.
//
// Every operation is core/two_factor.h's (the web panel calls the same functions):
// the account store's lock, validation and atomic writes. posternctl is the
// administrator's tool, so `2fa disable` without --code is the administrator's
// override (lost phone); with --code it is the user's own way.
// Output: the enrolment prints the QR code (terminal blocks), the otpauth URI and
// the secret; an app password is printed once and never again.
// Security: the TOTP secret is printed only by `enrol`, to whoever runs it (root or
// the instance's owner, who can read totp-secrets anyway); codes and app passwords
// are never logged.
#include "ctl.h"

#include "core/address.h"
#include "core/two_factor.h"

#include <QDateTime>
#include <QFile>

#include <unistd.h>
#include <cstdio>

namespace postern::ctl {

namespace {

QString when(qint64 secs) {
    if (secs <= 0) return QStringLiteral("never");
    return QDateTime::fromSecsSinceEpoch(secs, Qt::UTC).toString(Qt::ISODate);
}

QString readLine(QTextStream& out, const char* prompt) {
    out << prompt;
    out.flush();
    std::fflush(stdout);  // QTextStream(stdout) writes through stdio: a pipe would hold the prompt
    QFile in;
    if (!in.open(stdin, QIODevice::ReadOnly)) return {};
    QByteArray line = in.readLine(256);
    while (line.endsWith('\n') || line.endsWith('\r')) line.chop(1);
    return QString::fromUtf8(line).trimmed();
}

struct Env {
    Config config;
    std::unique_ptr<AccountStore> store;
    std::unique_ptr<TwoFactor> twoFactor;
};

bool open(CtlContext& ctx, Env& env) {
    if (!ctx.loadConfig(env.config)) return false;
    env.store = std::make_unique<AccountStore>(ctx.configDir);
    env.twoFactor = std::make_unique<TwoFactor>(*env.store, appPasswordUsageDir(env.config));
    return true;
}

int enrol(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("usage: user 2fa enrol ADDRESS [--code -]"));
    const QString codeOpt = ctx.opt(QStringLiteral("code"));
    if (ctx.has(QStringLiteral("code")) && codeOpt != u"-")
        return ctx.usage(
            QStringLiteral("--code takes '-' (read the code from standard input after the secret is shown); "
                           "or confirm later: user 2fa confirm ADDRESS CODE"));
    Env env;
    if (!open(ctx, env)) return 1;
    auto e = env.twoFactor->beginEnrolment(ctx.args.first());
    if (!e) return ctx.fail(e.errorMessage());
    ctx.out << "Scan this QR code with an authenticator app (or type the secret in by hand):\n\n"
            << e->terminal << "\n"
            << "uri:    " << e->uri << "\n"
            << "secret: " << e->secretBase32 << "\n"
            << "(TOTP, SHA-1, 6 digits, 30 seconds)\n\n";
    ctx.out.flush();
    std::fflush(stdout);
    QString code;
    if (ctx.has(QStringLiteral("code")))
        code = readLine(ctx.out, "code: ");
    else if (::isatty(STDIN_FILENO))
        code = readLine(ctx.out, "Code shown by the app (Enter to confirm later): ");
    if (code.isEmpty()) {
        ctx.out << "Two-factor login is NOT on yet. Confirm with a code from the app:\n"
                << "  posternctl user 2fa confirm " << e->address << " CODE" << Qt::endl;
        return ctx.has(QStringLiteral("code")) ? ctx.fail(QStringLiteral("no code on standard input")) : 0;
    }
    if (auto st = env.twoFactor->confirmEnrolment(e->address, code); !st)
        return ctx.fail(
            QStringLiteral("%1 (try again: posternctl user 2fa confirm %2 CODE)").arg(st.errorMessage(), e->address));
    ctx.out << "two-factor login is on for " << e->address
            << ": mail programs now need an app password (posternctl user app-password add " << e->address << " NAME)"
            << Qt::endl;
    return 0;
}

int confirm(CtlContext& ctx) {
    if (ctx.args.size() != 2) return ctx.usage(QStringLiteral("usage: user 2fa confirm ADDRESS CODE"));
    Env env;
    if (!open(ctx, env)) return 1;
    if (auto st = env.twoFactor->confirmEnrolment(ctx.args.at(0), ctx.args.at(1)); !st)
        return ctx.fail(st.errorMessage());
    const QString addr = normalizeAddress(ctx.args.first()).valueOr(ctx.args.first());
    ctx.out << "two-factor login is on for " << addr
            << ": mail programs now need an app password (posternctl user app-password add " << addr << " NAME)"
            << Qt::endl;
    return 0;
}

int disable(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("usage: user 2fa disable ADDRESS [--code CODE]"));
    Env env;
    if (!open(ctx, env)) return 1;
    const Status st = ctx.has(QStringLiteral("code"))
                          ? env.twoFactor->disableWithCode(ctx.args.first(), ctx.opt(QStringLiteral("code")))
                          : env.twoFactor->disableAsAdmin(ctx.args.first());
    if (!st) return ctx.fail(st.errorMessage());
    ctx.out << "two-factor login is off for " << normalizeAddress(ctx.args.first()).valueOr(ctx.args.first())
            << " (the account password works for mail again; app passwords stay valid)" << Qt::endl;
    return 0;
}

int status(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("usage: user 2fa status ADDRESS"));
    Env env;
    if (!open(ctx, env)) return 1;
    auto s = env.twoFactor->status(ctx.args.first());
    if (!s) return ctx.fail(s.errorMessage());
    if (s->enabled)
        ctx.out << "two-factor: on since " << when(s->since) << "\n";
    else
        ctx.out << "two-factor: off" << (s->pending ? " (enrolment waiting for a confirming code)" : "") << "\n";
    ctx.out << "app passwords: " << s->appPasswords << " (of at most " << kMaxAppPasswords << ")\n";
    ctx.out << "mail login with the account password: " << (s->enabled ? "refused (app passwords only)" : "accepted")
            << Qt::endl;
    return 0;
}

int appAdd(CtlContext& ctx) {
    if (ctx.args.size() != 2) return ctx.usage(QStringLiteral("usage: user app-password add ADDRESS NAME"));
    Env env;
    if (!open(ctx, env)) return 1;
    auto p = env.twoFactor->addAppPassword(ctx.args.at(0), ctx.args.at(1), HashParams::fromConfig(env.config));
    if (!p) return ctx.fail(p.errorMessage());
    ctx.out << "app password " << p->name << " for " << normalizeAddress(ctx.args.first()).valueOr(ctx.args.first())
            << ":\n"
            << "  " << p->password << "\n"
            << "(shown once; the spaces are optional; use it instead of the account password in IMAP, POP3 and SMTP)"
            << Qt::endl;
    return 0;
}

int appList(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("usage: user app-password list ADDRESS"));
    Env env;
    if (!open(ctx, env)) return 1;
    auto list = env.twoFactor->appPasswords(ctx.args.first());
    if (!list) return ctx.fail(list.errorMessage());
    for (const AppPasswordInfo& a : *list)
        ctx.out << a.name << "\tcreated=" << when(a.created) << "\tlast-used=" << when(a.lastUsed) << "\n";
    ctx.out.flush();
    return 0;
}

int appRevoke(CtlContext& ctx) {
    if (ctx.args.size() != 2) return ctx.usage(QStringLiteral("usage: user app-password revoke ADDRESS NAME"));
    Env env;
    if (!open(ctx, env)) return 1;
    if (auto st = env.twoFactor->revokeAppPassword(ctx.args.at(0), ctx.args.at(1)); !st)
        return ctx.fail(st.errorMessage());
    ctx.out << "revoked app password " << ctx.args.at(1) << " of "
            << normalizeAddress(ctx.args.first()).valueOr(ctx.args.first()) << Qt::endl;
    return 0;
}

}  // namespace

void addTwoFactorCommands(QList<Command>& out) {
    const QString user = QStringLiteral("user"), tf = QStringLiteral("2fa"), app = QStringLiteral("app-password");
    out << Command{
        {user, tf, QStringLiteral("enrol")},
        QStringLiteral("ADDRESS [--code -]"),
        QStringLiteral(
            "start two-factor login: QR code, URI, then a confirming code (asked, or from stdin with --code -)"),
        {QStringLiteral("code")},
        {},
        enrol};
    out << Command{{user, tf, QStringLiteral("confirm")},
                   QStringLiteral("ADDRESS CODE"),
                   QStringLiteral("turn two-factor login on with a code from the app"),
                   {},
                   {},
                   confirm};
    out << Command{{user, tf, QStringLiteral("disable")},
                   QStringLiteral("ADDRESS [--code CODE]"),
                   QStringLiteral("turn two-factor login off (without --code: as administrator)"),
                   {QStringLiteral("code")},
                   {},
                   disable};
    out << Command{{user, tf, QStringLiteral("status")},
                   QStringLiteral("ADDRESS"),
                   QStringLiteral("show two-factor state"),
                   {},
                   {},
                   status};
    out << Command{{user, app, QStringLiteral("add")},
                   QStringLiteral("ADDRESS NAME"),
                   QStringLiteral("create an app password for IMAP/POP3/SMTP (printed once)"),
                   {},
                   {},
                   appAdd};
    out << Command{{user, app, QStringLiteral("list")},
                   QStringLiteral("ADDRESS"),
                   QStringLiteral("list app passwords: name, created, last used"),
                   {},
                   {},
                   appList};
    out << Command{{user, app, QStringLiteral("revoke")},
                   QStringLiteral("ADDRESS NAME"),
                   QStringLiteral("revoke an app password"),
                   {},
                   {},
                   appRevoke};
}

}  // namespace postern::ctl
