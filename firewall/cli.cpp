// cli.cpp — see cli.h.
#include "cli.h"

#include "persist.h"
#include "plan.h"
#include "report.h"

#include "core/atomic_file.h"
#include "core/config.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QStandardPaths>
#include <QJsonArray>
#include <QJsonDocument>
#include <unistd.h>

namespace postern::firewall {

namespace {

int usage(QTextStream& err, const QString& message) {
    err << "postern-firewall: " << message << "\n"
        << "usage: postern-firewall [--config DIR] [--captured DIR] [--json] status|plan [--apply]|apply|remove [--dry-run]|capture DIR\n";
    err.flush();
    return 2;
}

void printJson(QTextStream& out, const QJsonObject& o) {
    out << QJsonDocument(o).toJson(QJsonDocument::Indented);
    out.flush();
}

// The postern-firewall program the boot unit runs: next to this program (posternctl and
// the wizard are installed beside it), else on the usual paths.
QString firewallProgram() {
    const QString sibling = QCoreApplication::applicationDirPath() + QStringLiteral("/postern-firewall");
    if (QFileInfo(sibling).isExecutable()) return sibling;
    QString found = QStandardPaths::findExecutable(QStringLiteral("postern-firewall"), {QStringLiteral("/usr/sbin"), QStringLiteral("/usr/local/sbin")});
    if (found.isEmpty()) found = QStandardPaths::findExecutable(QStringLiteral("postern-firewall"));
    return found;
}

}  // namespace

int runFirewallCli(const QStringList& args, QTextStream& out, QTextStream& err, const Runner& runner) {
    QString command;
    QString captured;
    QString captureDir;
    bool json = false;
    bool applyFlag = false;
    bool dryRun = false;
    for (qsizetype i = 1; i < args.size(); ++i) {
        const QString& a = args.at(i);
        if (a == u"--config" || a == u"-c") {
            ++i;  // read by resolveConfigDir
        } else if (a.startsWith(u"--config=")) {
        } else if (a == u"--json") {
            json = true;
        } else if (a == u"--apply") {
            applyFlag = true;
        } else if (a == u"--dry-run") {
            dryRun = true;
        } else if (a == u"--captured") {
            if (++i >= args.size()) return usage(err, QStringLiteral("--captured needs a folder"));
            captured = args.at(i);
        } else if (a == u"--help" || a == u"-h") {
            out << "usage: postern-firewall [--config DIR] [--captured DIR] [--json] status|plan [--apply]|apply|remove [--dry-run]|capture DIR\n";
            return 0;
        } else if (command.isEmpty() && (a == u"status" || a == u"plan" || a == u"apply" || a == u"remove" || a == u"capture")) {
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
    const bool changes = command == u"apply" || (command == u"remove" && !dryRun);
    if (changes && !captured.isEmpty()) return usage(err, QStringLiteral("%1 works on this host, not on a capture").arg(command));
    if (changes && ::geteuid() != 0) {
        err << "postern-firewall: changing the packet filter needs root\n";
        return 2;
    }

    if (command == u"capture") {
        const Status s = saveSnapshot(takeSnapshot(runner), captureDir);
        if (!s) {
            err << "postern-firewall: " << s.errorMessage() << "\n";
            return 2;
        }
        out << "captured into " << captureDir << "\n";
        return 0;
    }

    const Result<Config> config = Config::load(resolveConfigDir(args));
    if (!config) {
        err << "postern-firewall: " << config.errorMessage() << "\n";
        return 2;
    }
    const QList<ConfiguredPort> ports = configuredPorts(*config);
    // Root decides from this file which firewalld ports to remove: it lives in the config
    // folder, root's, never in data_dir, which the daemon user owns (plan.h).
    QString stateNote;
    const Result<FirewallState> state = loadRecordedState(*config, &stateNote);
    if (!state) {
        err << "postern-firewall: " << state.errorMessage() << "\n";
        return 2;
    }
    if (!stateNote.isEmpty()) err << "postern-firewall: note: " << stateNote << "\n";
    const QString stateFile = statePath(*config);
    // After the state was written to the config folder, the copy of an older version goes.
    auto saveAndRetire = [&](const FirewallState& st) {
        Status saved = saveState(stateFile, st);
        if (saved) saved = removeFile(legacyStatePath(*config));
        return saved;
    };
    Snapshot snap;
    if (captured.isEmpty()) {
        snap = takeSnapshot(runner);
    } else {
        const Result<Snapshot> loaded = loadSnapshot(captured);
        if (!loaded) {
            err << "postern-firewall: " << loaded.errorMessage() << "\n";
            return 2;
        }
        snap = *loaded;
    }
    const Report report = buildReport(snap, ports, captured.isEmpty());

    if (command == u"status") {
        if (json) printJson(out, statusJson(report));
        else out << renderStatus(report);
        return report.allOpen() ? 0 : 1;
    }
    if (command == u"remove") {
        const Plan plan = planRemove(snap, report.detection, *state);
        QStringList log;
        Status ran;
        if (!dryRun) ran = runPlan(plan, runner, &log);
        if (ran && !dryRun) ran = removeBootUnit(&log);
        if (ran && !dryRun && (plan.stateAfter.firewalldPorts != state->firewalldPorts || QFileInfo::exists(legacyStatePath(*config)))) {
            const Status saved = saveAndRetire(plan.stateAfter);
            if (!saved) ran = saved;
        }
        if (json) {
            QJsonObject o{{QStringLiteral("plan"), planJson(plan)}, {QStringLiteral("log"), QJsonArray::fromStringList(log)},
                          {QStringLiteral("ok"), ran.ok()}};
            if (!ran) o.insert(QStringLiteral("error"), ran.errorMessage());
            printJson(out, o);
        } else {
            out << renderPlan(plan, dryRun ? QStringLiteral("Would remove") : QStringLiteral("Removing"));
            for (const QString& l : log) out << l << "\n";
            if (!ran) err << "postern-firewall: " << ran.errorMessage() << "\n";
        }
        return ran ? 0 : 2;
    }

    const Plan plan = planOpen(snap, report.detection, report.results, ports, *state);
    if (command == u"plan") {
        if (json) {
            printJson(out, QJsonObject{{QStringLiteral("status"), statusJson(report)}, {QStringLiteral("plan"), planJson(plan)}});
        } else {
            out << renderStatus(report) << "\n" << renderPlan(plan, QStringLiteral("Plan (run with --apply, or `postern-firewall apply`)"));
        }
        return report.allOpen() ? 0 : 1;
    }

    // apply: print, run, record, verify.
    if (!json) {
        out << renderPlan(plan, QStringLiteral("Applying"));
        out.flush();
    }
    QStringList log;
    Status ran = runPlan(plan, runner, &log);
    if (ran && (plan.stateAfter.firewalldPorts != state->firewalldPorts || QFileInfo::exists(legacyStatePath(*config)))) {
        Status saved = ensureDirectory(config->configDir());
        if (saved) saved = saveAndRetire(plan.stateAfter);
        if (!saved) ran = saved;
    }
    const Report after = buildReport(takeSnapshot(runner), ports, false);
    // Rules of ours that live only in the kernel are put back at boot by our unit.
    if (ran && liveOnlyRules(after.detection.ruleset)) {
        const QString program = firewallProgram();
        if (program.isEmpty())
            ran = Status::fail(QStringLiteral("postern-firewall is not installed, so the rules cannot be re-applied at boot"));
        else
            ran = installBootUnit(program, resolveConfigDir(args), &log);
    }
    if (json) {
        QJsonObject o{{QStringLiteral("plan"), planJson(plan)}, {QStringLiteral("log"), QJsonArray::fromStringList(log)},
                      {QStringLiteral("ok"), ran.ok()}, {QStringLiteral("after"), statusJson(after)}};
        if (!ran) o.insert(QStringLiteral("error"), ran.errorMessage());
        printJson(out, o);
    } else {
        for (const QString& l : log) out << l << "\n";
        if (!ran) err << "postern-firewall: " << ran.errorMessage() << "\n";
        out << "\nAfter:\n" << renderStatus(after);
    }
    if (!ran) return 2;
    return after.allOpen() ? 0 : 1;
}

}  // namespace postern::firewall
