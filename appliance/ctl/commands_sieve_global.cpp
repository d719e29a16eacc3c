// commands_sieve_global.cpp — posternctl sieve global: the administrator's Sieve
// scripts (RFC 6609 :global includes, and the before/after scripts that run
// around every user's own script: settings sieve.before and sieve.after).
//   sieve global list                  the scripts, and which run before/after
//   sieve global show NAME             print one
//   sieve global put NAME FILE         store one (FILE "-": stdin); refused with
//                                      line:column when it does not compile
//   sieve global remove NAME           delete one (refused while sieve.before or
//                                      sieve.after names it)
// Storage: <config>/sieve/global/<NAME>.sieve (common/sieve/sieve_store.h), mode
// 0644 in folders of mode 0755 so the daemons (their own user) can read them.
// Security: the config folder belongs to root; these commands write there with
// the caller's rights (as root in the appliance) and never touch data_dir. NAME
// is validated before any path is made from it.
// Limits: a script at most sieve::Limits::maxScriptBytes (1 MiB).
#include "ctl.h"

#include "common/sieve/sieve.h"
#include "common/sieve/sieve_store.h"

#include <QFile>

namespace postern::ctl {

namespace {

Result<QByteArray> readScriptFile(const QString& file) {
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

int globalList(CtlContext& ctx) {
    if (!ctx.args.isEmpty()) return ctx.usage(QStringLiteral("sieve global list"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    auto list = sieve::listGlobalScripts(config.configDir());
    if (!list) return ctx.fail(list.errorMessage());
    const sieve::GlobalScripts g = sieve::GlobalScripts::fromConfig(config);
    for (const sieve::ScriptInfo& s : *list) {
        QString role;
        if (g.before.contains(s.name)) role = QStringLiteral("  (runs before users' scripts)");
        if (g.after.contains(s.name)) role += QStringLiteral("  (runs after users' scripts)");
        ctx.out << s.name << "  " << s.size << " bytes" << role << Qt::endl;
    }
    for (const QString& n : g.before + g.after) {
        bool found = false;
        for (const sieve::ScriptInfo& s : *list) found = found || s.name == n;
        if (!found) ctx.out << "warning: sieve.before/sieve.after names '" << n << "', which is not stored" << Qt::endl;
    }
    return 0;
}

int globalShow(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("sieve global show NAME"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    auto text = sieve::readGlobalScript(config.configDir(), ctx.args.at(0));
    if (!text) return ctx.fail(text.errorMessage());
    ctx.out << QString::fromUtf8(*text);
    ctx.out.flush();
    return 0;
}

int globalPut(CtlContext& ctx) {
    if (ctx.args.size() != 2) return ctx.usage(QStringLiteral("sieve global put NAME FILE"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    auto source = readScriptFile(ctx.args.at(1));
    if (!source) return ctx.fail(source.errorMessage());
    if (auto st = sieve::putGlobalScript(config.configDir(), ctx.args.at(0), *source); !st)
        return ctx.fail(st.errorMessage());
    ctx.out << "global script '" << ctx.args.at(0) << "' stored" << Qt::endl;
    return 0;
}

int globalRemove(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("sieve global remove NAME"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    const sieve::GlobalScripts g = sieve::GlobalScripts::fromConfig(config);
    if (g.before.contains(ctx.args.at(0)) || g.after.contains(ctx.args.at(0)))
        return ctx.fail(QStringLiteral("'%1' is named by sieve.before or sieve.after; change the setting first")
                            .arg(ctx.args.at(0)));
    if (auto st = sieve::deleteGlobalScript(config.configDir(), ctx.args.at(0)); !st)
        return ctx.fail(st.errorMessage());
    ctx.out << "global script '" << ctx.args.at(0) << "' removed" << Qt::endl;
    return 0;
}

}  // namespace

void addSieveGlobalCommands(QList<Command>& out) {
    const QString s = QStringLiteral("sieve"), g = QStringLiteral("global");
    out << Command{{s, g, QStringLiteral("list")},
                   QString(),
                   QStringLiteral("the administrator's global Sieve scripts"),
                   {},
                   {},
                   globalList};
    out << Command{{s, g, QStringLiteral("show")},
                   QStringLiteral("NAME"),
                   QStringLiteral("print a global Sieve script"),
                   {},
                   {},
                   globalShow};
    out << Command{
        {s, g, QStringLiteral("put")},
        QStringLiteral("NAME FILE"),
        QStringLiteral("store a global Sieve script (include :global; sieve.before/sieve.after run it for everyone)"),
        {},
        {},
        globalPut};
    out << Command{{s, g, QStringLiteral("remove")},
                   QStringLiteral("NAME"),
                   QStringLiteral("delete a global Sieve script"),
                   {},
                   {},
                   globalRemove};
}

}  // namespace postern::ctl
