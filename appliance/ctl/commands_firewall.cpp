// commands_firewall.cpp — posternctl firewall status|plan|apply|remove: the same
// actions as postern-firewall (firewall/actions.h), called with posternctl's
// --config and options; no argument vector is built. apply and remove change the
// packet filter and are root-only (Command::needsRoot; remove --dry-run is not).
#include "ctl.h"

#include "firewall/actions.h"

namespace postern::ctl {

namespace {
int runFirewall(CtlContext& ctx, firewall::Action action) {
    if (!ctx.args.isEmpty()) return ctx.usage(QStringLiteral("unexpected argument %1").arg(ctx.args.first()));
    firewall::Request req;
    req.configDir = ctx.configDir;
    req.captured = ctx.opt(QStringLiteral("captured"));
    req.json = ctx.has(QStringLiteral("json"));
    req.dryRun = ctx.has(QStringLiteral("dry-run"));
    const firewall::SystemRunner runner;
    return firewall::runAction(action, req, ctx.out, ctx.err, runner);
}
}  // namespace

void addFirewallCommands(QList<Command>& out) {
    const QString fw = QStringLiteral("firewall");
    const QStringList json{QStringLiteral("json")};
    out << Command{{fw, QStringLiteral("status")},
                   QStringLiteral("[--json] [--captured DIR]"),
                   QStringLiteral("whether each mail port gets through the host firewall, and which rule decides"),
                   {QStringLiteral("captured")},
                   json,
                   [](CtlContext& c) { return runFirewall(c, firewall::Action::Status); }};
    out << Command{{fw, QStringLiteral("plan")},
                   QStringLiteral("[--json] [--captured DIR]"),
                   QStringLiteral("the commands that would open the mail ports"),
                   {QStringLiteral("captured")},
                   json,
                   [](CtlContext& c) { return runFirewall(c, firewall::Action::Plan); }};
    out << Command{{fw, QStringLiteral("apply")},
                   QStringLiteral("[--json]"),
                   QStringLiteral("open the mail ports"),
                   {},
                   json,
                   [](CtlContext& c) { return runFirewall(c, firewall::Action::Apply); },
                   true};
    out << Command{{fw, QStringLiteral("remove")},
                   QStringLiteral("[--json] [--dry-run]"),
                   QStringLiteral("remove what apply added"),
                   {},
                   {QStringLiteral("json"), QStringLiteral("dry-run")},
                   [](CtlContext& c) { return runFirewall(c, firewall::Action::Remove); },
                   true};
}

}  // namespace postern::ctl
