// commands_firewall.cpp — posternctl firewall status|plan|apply|remove: the
// same commands as postern-firewall (firewall/cli.h), with posternctl's
// --config. Options after the command words (--json, --dry-run, --captured DIR)
// are passed on unchanged.
#include "ctl.h"

#include "cli.h"

namespace postern::ctl {

namespace {
int forward(CtlContext& ctx, const QString& sub) {
    QStringList args{QStringLiteral("postern-firewall"), QStringLiteral("--config"), ctx.configDir};  // argv style
    for (auto it = ctx.opts.cbegin(); it != ctx.opts.cend(); ++it) {
        args << QStringLiteral("--") + it.key();
        if (!it.value().isEmpty()) args << it.value();
    }
    args << sub << ctx.args;
    const firewall::SystemRunner runner;
    return firewall::runFirewallCli(args, ctx.out, ctx.err, runner);
}
}  // namespace

void addFirewallCommands(QList<Command>& out) {
    const QString fw = QStringLiteral("firewall");
    const QStringList flags{QStringLiteral("json"), QStringLiteral("dry-run")};
    out << Command{{fw, QStringLiteral("status")}, QStringLiteral("[--json] [--captured DIR]"),
                   QStringLiteral("whether each mail port gets through the host firewall, and which rule decides"),
                   {QStringLiteral("captured")}, flags, [](CtlContext& c) { return forward(c, QStringLiteral("status")); }};
    out << Command{{fw, QStringLiteral("plan")}, QStringLiteral("[--json]"), QStringLiteral("the commands that would open the mail ports"),
                   {QStringLiteral("captured")}, flags, [](CtlContext& c) { return forward(c, QStringLiteral("plan")); }};
    out << Command{{fw, QStringLiteral("apply")}, QStringLiteral("[--json]"), QStringLiteral("open the mail ports (root)"), {}, flags,
                   [](CtlContext& c) { return forward(c, QStringLiteral("apply")); }, true};
    out << Command{{fw, QStringLiteral("remove")}, QStringLiteral("[--dry-run]"), QStringLiteral("remove what apply added (root)"), {}, flags,
                   [](CtlContext& c) { return forward(c, QStringLiteral("remove")); }, true};
}

}  // namespace postern::ctl
