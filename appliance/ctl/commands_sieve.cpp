// commands_sieve.cpp — posternctl sieve: a user's Sieve scripts (mail filters).
//   sieve list USER                    the scripts, the active one marked
//   sieve show USER NAME               print a script
//   sieve put USER NAME FILE [--activate]   store a script (FILE "-": stdin);
//                                      refused with line:column when it does not compile
//   sieve activate USER NAME / sieve deactivate USER
//   sieve delete USER NAME             (not the active one)
//   sieve check FILE | USER NAME       compile only; errors as FILE:line:column: text
//   sieve forward USER --to A[,B] [--keep] [--name N]
//   sieve vacation USER --subject S --text T [--from YYYY-MM-DD] [--until YYYY-MM-DD]
//                       [--days N] [--name N]
//       generate an editable script, store it and make it the active one (the
//       previously active script stays stored, inactive): common/sieve/sieve_forms.h,
//       the same function as the web panel's Forwarding page.
// Storage and layout: common/sieve/sieve_store.h (<mail_dir>/<domain>/<local>/sieve/).
// Security: FILE is read with the caller's rights (it may be root's), then every
// command drops to the daemon user (runAsDaemonUser) before it touches data_dir,
// so no link the daemon user planted there is followed with root's rights, and
// the files created belong to the daemon user. USER must be a user of
// accounts (aliases have no scripts).
// Limits: a script file at most sieve::Limits::maxScriptBytes (1 MiB); names and
// counts as in sieve_store.h.
// Redirect and vacation are carried out at delivery (common/sieve/sieve_outbound.h);
// scripts that use them get a one-line note saying how (SRS sender, once per
// sender and period, RFC 3834 rules).
#include "ctl.h"
#include "imap_import.h"

#include "common/sieve/sieve.h"
#include "common/sieve/sieve_forms.h"
#include "common/sieve/sieve_store.h"

#include "core/address.h"

#include <QDate>
#include <QFile>
#include <QRegularExpression>

namespace postern::ctl {

namespace {

const char* kNotYet =
    "note: redirected mail leaves through the outbound queue with an SRS sender (bounces come back to the "
    "original sender); a vacation reply goes once per sender and period, never to lists, automatic mail "
    "or the null sender, and only when the user's address is in To/Cc";

Result<QByteArray> readInput(const QString& file) {
    QFile f;
    if (file == u"-") {
        if (!f.open(stdin, QIODevice::ReadOnly)) return Result<QByteArray>::fail(QStringLiteral("cannot read stdin"));
    } else {
        f.setFileName(file);
        if (!f.open(QIODevice::ReadOnly))
            return Result<QByteArray>::fail(QStringLiteral("%1: %2").arg(file, f.errorString()));
    }
    const qint64 max = sieve::Limits{}.maxScriptBytes;
    QByteArray data = f.read(max + 1);
    if (data.size() > max)
        return Result<QByteArray>::fail(QStringLiteral("%1: larger than %2 bytes").arg(file).arg(max));
    return data;
}

// Loads the config, checks USER, drops to the daemon user. Empty on failure (printed).
QString prepare(CtlContext& ctx, Config& config, const QString& user) {
    if (!ctx.loadConfig(config)) return {};
    const QString address = localUser(ctx, config, user);
    if (address.isEmpty()) return {};
    if (!ctx.runAsDaemonUser(config)) return {};
    return address;
}

bool usesRedirectOrVacation(const QByteArray& source) {
    auto s = sieve::compile(source);
    if (!s) return false;
    std::function<bool(const QList<sieve::Node>&)> walk = [&](const QList<sieve::Node>& nodes) {
        for (const sieve::Node& n : nodes)
            if (n.name == u"redirect" || n.name == u"vacation" || walk(n.block)) return true;
        return false;
    };
    return walk(s->commands);
}

int sieveList(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("sieve list USER"));
    Config config;
    const QString address = prepare(ctx, config, ctx.args.at(0));
    if (address.isEmpty()) return 1;
    auto list = sieve::listScripts(config.mailDir(), address);
    if (!list) return ctx.fail(list.errorMessage());
    if (list->isEmpty()) ctx.out << "no scripts for " << address << Qt::endl;
    for (const auto& s : *list)
        ctx.out << s.name << "\t" << s.size << " bytes" << (s.active ? "\tactive" : "") << Qt::endl;
    return 0;
}

int sieveShow(CtlContext& ctx) {
    if (ctx.args.size() != 2) return ctx.usage(QStringLiteral("sieve show USER NAME"));
    Config config;
    const QString address = prepare(ctx, config, ctx.args.at(0));
    if (address.isEmpty()) return 1;
    auto text = sieve::readScript(config.mailDir(), address, ctx.args.at(1));
    if (!text) return ctx.fail(text.errorMessage());
    ctx.out << QString::fromUtf8(*text);
    ctx.out.flush();
    return 0;
}

int storeAndMaybeActivate(CtlContext& ctx, const Config& config, const QString& address, const QString& name,
                          const QByteArray& source, bool activate) {
    if (auto st = sieve::putScript(config.mailDir(), address, name, source, sieve::Quota::fromConfig(config)); !st)
        return ctx.fail(st.errorMessage());
    if (activate)
        if (auto st = sieve::activateScript(config.mailDir(), address, name); !st) return ctx.fail(st.errorMessage());
    ctx.out << "script '" << name << "' stored for " << address << (activate ? " and active" : "") << Qt::endl;
    if (usesRedirectOrVacation(source)) ctx.out << kNotYet << Qt::endl;
    return 0;
}

int sievePut(CtlContext& ctx) {
    if (ctx.args.size() != 3) return ctx.usage(QStringLiteral("sieve put USER NAME FILE [--activate]"));
    if (!sieve::validScriptName(ctx.args.at(1)))
        return ctx.usage(QStringLiteral("invalid script name '%1' (A-Z a-z 0-9 . _ -)").arg(ctx.args.at(1)));
    auto source = readInput(ctx.args.at(2));  // with the caller's rights, before dropping them
    if (!source) return ctx.fail(source.errorMessage());
    Config config;
    const QString address = prepare(ctx, config, ctx.args.at(0));
    if (address.isEmpty()) return 1;
    return storeAndMaybeActivate(ctx, config, address, ctx.args.at(1), *source, ctx.has(QStringLiteral("activate")));
}

int sieveActivate(CtlContext& ctx) {
    if (ctx.args.size() != 2) return ctx.usage(QStringLiteral("sieve activate USER NAME"));
    Config config;
    const QString address = prepare(ctx, config, ctx.args.at(0));
    if (address.isEmpty()) return 1;
    if (auto st = sieve::activateScript(config.mailDir(), address, ctx.args.at(1)); !st)
        return ctx.fail(st.errorMessage());
    ctx.out << "script '" << ctx.args.at(1) << "' is active for " << address << Qt::endl;
    return 0;
}

int sieveDeactivate(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("sieve deactivate USER"));
    Config config;
    const QString address = prepare(ctx, config, ctx.args.at(0));
    if (address.isEmpty()) return 1;
    if (auto st = sieve::deactivateScripts(config.mailDir(), address); !st) return ctx.fail(st.errorMessage());
    ctx.out << "no script is active for " << address << Qt::endl;
    return 0;
}

int sieveDelete(CtlContext& ctx) {
    if (ctx.args.size() != 2) return ctx.usage(QStringLiteral("sieve delete USER NAME"));
    Config config;
    const QString address = prepare(ctx, config, ctx.args.at(0));
    if (address.isEmpty()) return 1;
    if (auto st = sieve::deleteScript(config.mailDir(), address, ctx.args.at(1)); !st)
        return ctx.fail(st.errorMessage());
    ctx.out << "script '" << ctx.args.at(1) << "' deleted for " << address << Qt::endl;
    return 0;
}

int sieveCheck(CtlContext& ctx) {
    QByteArray source;
    QString label;
    if (ctx.args.size() == 1) {
        label = ctx.args.at(0);
        auto in = readInput(label);
        if (!in) return ctx.fail(in.errorMessage());
        source = *in;
    } else if (ctx.args.size() == 2) {
        Config config;
        const QString address = prepare(ctx, config, ctx.args.at(0));
        if (address.isEmpty()) return 1;
        label = ctx.args.at(1);
        auto in = sieve::readScript(config.mailDir(), address, label);
        if (!in) return ctx.fail(in.errorMessage());
        source = *in;
    } else {
        return ctx.usage(QStringLiteral("sieve check FILE | sieve check USER NAME"));
    }
    auto compiled = sieve::compile(source);
    if (!compiled) {
        ctx.err << label << ":" << compiled.errorMessage() << Qt::endl;
        return 1;
    }
    ctx.out << label << ": ok (extensions: "
            << (compiled->required.isEmpty() ? QStringLiteral("none") : compiled->required.join(QStringLiteral(", ")))
            << ")" << Qt::endl;
    if (usesRedirectOrVacation(source)) ctx.out << kNotYet << Qt::endl;
    return 0;
}

int installGenerated(CtlContext& ctx, const QString& user, const QString& name, const Result<QByteArray>& script) {
    if (!script) return ctx.usage(script.errorMessage());
    if (!sieve::validScriptName(name))
        return ctx.usage(QStringLiteral("invalid script name '%1' (A-Z a-z 0-9 . _ -)").arg(name));
    Config config;
    const QString address = prepare(ctx, config, user);
    if (address.isEmpty()) return 1;
    if (auto st =
            sieve::installGeneratedScript(config.mailDir(), address, name, *script, sieve::Quota::fromConfig(config));
        !st)
        return ctx.fail(st.errorMessage());
    ctx.out << "script '" << name << "' stored for " << address << " and active" << Qt::endl;
    if (usesRedirectOrVacation(*script)) ctx.out << kNotYet << Qt::endl;
    return 0;
}

// The scripts come from sieve_forms.h, the same function as the web panel's Forwarding page.
int sieveForward(CtlContext& ctx) {
    if (ctx.args.size() != 1 || ctx.opt(QStringLiteral("to")).isEmpty())
        return ctx.usage(QStringLiteral("sieve forward USER --to ADDR[,ADDR] [--keep] [--name NAME]"));
    const auto script = sieve::forwardingScript(ctx.opt(QStringLiteral("to")).split(u',', Qt::SkipEmptyParts),
                                                ctx.has(QStringLiteral("keep")), QDate::currentDate());
    return installGenerated(ctx, ctx.args.at(0),
                            ctx.opt(QStringLiteral("name"), QLatin1String(sieve::kForwardScriptName)), script);
}

int sieveVacation(CtlContext& ctx) {
    const QString usage = QStringLiteral(
        "sieve vacation USER --subject S --text T [--from YYYY-MM-DD] [--until YYYY-MM-DD] [--days N] [--name NAME]");
    if (ctx.args.size() != 1 || ctx.opt(QStringLiteral("text")).isEmpty()) return ctx.usage(usage);
    sieve::VacationForm form;
    form.subject = ctx.opt(QStringLiteral("subject"));
    form.text = ctx.opt(QStringLiteral("text"));
    form.from = ctx.opt(QStringLiteral("from"));
    form.until = ctx.opt(QStringLiteral("until"));
    if (ctx.has(QStringLiteral("days"))) {
        bool ok = false;
        form.days = ctx.opt(QStringLiteral("days")).toInt(&ok);
        if (!ok) return ctx.usage(QStringLiteral("--days must be 1..%1").arg(sieve::kMaxVacationDays));
    }
    return installGenerated(ctx, ctx.args.at(0),
                            ctx.opt(QStringLiteral("name"), QLatin1String(sieve::kVacationScriptName)),
                            sieve::vacationScript(form, QDate::currentDate()));
}

}  // namespace

void addSieveCommands(QList<Command>& out) {
    const QString s = QStringLiteral("sieve");
    out << Command{{s, QStringLiteral("list")},
                   QStringLiteral("USER"),
                   QStringLiteral("list a user's Sieve scripts (mail filters)"),
                   {},
                   {},
                   sieveList};
    out << Command{{s, QStringLiteral("show")},
                   QStringLiteral("USER NAME"),
                   QStringLiteral("print a Sieve script"),
                   {},
                   {},
                   sieveShow};
    out << Command{{s, QStringLiteral("put")},
                   QStringLiteral("USER NAME FILE [--activate]"),
                   QStringLiteral("store a Sieve script (FILE - for stdin); refused if it does not compile"),
                   {},
                   {QStringLiteral("activate")},
                   sievePut};
    out << Command{{s, QStringLiteral("activate")},
                   QStringLiteral("USER NAME"),
                   QStringLiteral("make a script the one that runs at delivery"),
                   {},
                   {},
                   sieveActivate};
    out << Command{{s, QStringLiteral("deactivate")},
                   QStringLiteral("USER"),
                   QStringLiteral("run no script for a user"),
                   {},
                   {},
                   sieveDeactivate};
    out << Command{{s, QStringLiteral("delete")},
                   QStringLiteral("USER NAME"),
                   QStringLiteral("delete an inactive script"),
                   {},
                   {},
                   sieveDelete};
    out << Command{{s, QStringLiteral("check")},
                   QStringLiteral("FILE | USER NAME"),
                   QStringLiteral("check a Sieve script (errors as line:column)"),
                   {},
                   {},
                   sieveCheck};
    out << Command{{s, QStringLiteral("forward")},
                   QStringLiteral("USER --to ADDR[,ADDR] [--keep] [--name NAME]"),
                   QStringLiteral("generate and activate a forwarding script"),
                   {QStringLiteral("to"), QStringLiteral("name")},
                   {QStringLiteral("keep")},
                   sieveForward};
    out << Command{{s, QStringLiteral("vacation")},
                   QStringLiteral("USER --text T [--subject S] [--from DATE] [--until DATE] [--days N]"),
                   QStringLiteral("generate and activate a vacation (out-of-office) script"),
                   {QStringLiteral("subject"), QStringLiteral("text"), QStringLiteral("from"), QStringLiteral("until"),
                    QStringLiteral("days"), QStringLiteral("name")},
                   {},
                   sieveVacation};
}

}  // namespace postern::ctl
