// commands_config.cpp — posternctl config show|get|set|unset|check|reference.
#include "ctl.h"

#include "core/config_ops.h"

namespace postern::ctl {

namespace {

int configShow(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    ctx.out << config.render(ctx.has(QStringLiteral("changed")), ctx.has(QStringLiteral("docs")));
    ctx.out.flush();
    return 0;
}

int configGet(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("usage: config get KEY"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    if (!Schema::instance().find(ctx.args.first())) {
        const QString hint = Schema::instance().suggest(ctx.args.first());
        return ctx.fail(
            QStringLiteral("unknown setting '%1'%2")
                .arg(ctx.args.first(), hint.isEmpty() ? QString() : QStringLiteral(" (did you mean '%1'?)").arg(hint)));
    }
    ctx.out << config.value(ctx.args.first()) << Qt::endl;
    return 0;
}

// The one implementation (validate, lock, write, tell the supervisor) is core/config_ops.h,
// shared with the web panel's settings page.
int configSet(CtlContext& ctx) {
    if (ctx.args.size() != 2) return ctx.usage(QStringLiteral("usage: config set KEY VALUE"));
    auto change = configops::setSetting(ctx.configDir, ctx.args.at(0), ctx.args.at(1), configops::Scope::Any);
    if (!change) return ctx.fail(change.errorMessage());
    ctx.out << change->summary() << Qt::endl;
    return 0;
}

int configUnset(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("usage: config unset KEY"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    if (auto st = config.unset(ctx.args.first()); !st) return ctx.fail(st.errorMessage());
    if (auto st = config.save(); !st) return ctx.fail(st.errorMessage());
    ctx.out << ctx.args.first() << " = " << config.value(ctx.args.first()) << "   (default)" << Qt::endl;
    return 0;
}

int configCheck(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    ctx.out << config.filePath() << ": ok" << Qt::endl;
    return 0;
}

int configReference(CtlContext& ctx) {
    ctx.out << Config::reference();
    ctx.out.flush();
    return 0;
}

}  // namespace

void addConfigCommands(QList<Command>& out) {
    out << Command{{QStringLiteral("config"), QStringLiteral("show")},
                   QStringLiteral("[--changed] [--docs]"),
                   QStringLiteral("print the effective settings (--changed: only non-defaults)"),
                   {},
                   {QStringLiteral("changed"), QStringLiteral("docs")},
                   configShow};
    out << Command{{QStringLiteral("config"), QStringLiteral("get")},
                   QStringLiteral("KEY"),
                   QStringLiteral("print one setting"),
                   {},
                   {},
                   configGet};
    out << Command{{QStringLiteral("config"), QStringLiteral("set")},
                   QStringLiteral("KEY VALUE"),
                   QStringLiteral("change a setting (validated, written atomically)"),
                   {},
                   {},
                   configSet};
    out << Command{{QStringLiteral("config"), QStringLiteral("unset")},
                   QStringLiteral("KEY"),
                   QStringLiteral("return a setting to its default"),
                   {},
                   {},
                   configUnset};
    out << Command{{QStringLiteral("config"), QStringLiteral("check")},
                   {},
                   QStringLiteral("validate postern.conf"),
                   {},
                   {},
                   configCheck};
    out << Command{{QStringLiteral("config"), QStringLiteral("reference")},
                   {},
                   QStringLiteral("print every setting with type, default and meaning"),
                   {},
                   {},
                   configReference};
}

}  // namespace postern::ctl
