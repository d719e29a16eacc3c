// cli.cpp — see cli.h. Parses the arguments; the work is in actions.h.
#include "cli.h"

#include "actions.h"

#include "core/config.h"

namespace postern::firewall {

namespace {

constexpr const char* kUsage =
    "usage: postern-firewall [--config DIR] [--captured DIR] [--json] status|plan [--apply]|apply|remove "
    "[--dry-run]|capture DIR\n";

int usage(QTextStream& err, const QString& message) {
    err << "postern-firewall: " << message << "\n" << kUsage;
    err.flush();
    return 2;
}

}  // namespace

int runFirewallCli(const QStringList& args, QTextStream& out, QTextStream& err, const Runner& runner) {
    QString command;
    QString captureDir;
    Request req;
    bool applyFlag = false;
    for (qsizetype i = 1; i < args.size(); ++i) {
        const QString& a = args.at(i);
        if (a == u"--config" || a == u"-c") {
            ++i;  // read by resolveConfigDir
        } else if (a.startsWith(u"--config=")) {
        } else if (a == u"--json") {
            req.json = true;
        } else if (a == u"--apply") {
            applyFlag = true;
        } else if (a == u"--dry-run") {
            req.dryRun = true;
        } else if (a == u"--captured") {
            if (++i >= args.size()) return usage(err, QStringLiteral("--captured needs a folder"));
            req.captured = args.at(i);
        } else if (a == u"--help" || a == u"-h") {
            out << kUsage;
            return 0;
        } else if (command.isEmpty() &&
                   (a == u"status" || a == u"plan" || a == u"apply" || a == u"remove" || a == u"capture")) {
            command = a;
            if (a == u"capture") {
                if (++i >= args.size()) return usage(err, QStringLiteral("capture needs a folder"));
                captureDir = args.at(i);
            }
        } else {
            return usage(err, QStringLiteral("unknown argument %1").arg(a));
        }
    }
    if (command.isEmpty()) command = QStringLiteral("status");
    if (command == u"plan" && applyFlag) command = QStringLiteral("apply");
    if (command == u"capture") return runCapture(captureDir, out, err, runner);
    const Action action = command == u"status"  ? Action::Status
                          : command == u"plan"  ? Action::Plan
                          : command == u"apply" ? Action::Apply
                                                : Action::Remove;
    const bool changes = action == Action::Apply || (action == Action::Remove && !req.dryRun);
    if (changes && !req.captured.isEmpty())
        return usage(err, QStringLiteral("%1 works on this host, not on a capture").arg(command));
    req.configDir = resolveConfigDir(args);
    return runAction(action, req, out, err, runner);
}

}  // namespace postern::firewall
