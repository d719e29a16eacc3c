// actions.cpp — see actions.h.
#include "actions.h"

#include "persist.h"

#include "core/atomic_file.h"

#include <QCoreApplication>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QStandardPaths>

#include <unistd.h>

namespace postern::firewall {

namespace {

void printJson(QTextStream& out, const QJsonObject& o) {
    out << QJsonDocument(o).toJson(QJsonDocument::Indented);
    out.flush();
}

// The postern-firewall program the boot unit runs: next to this program (posternctl and
// the wizard are installed beside it), else on the usual paths.
QString firewallProgram() {
    const QString sibling = QCoreApplication::applicationDirPath() + QStringLiteral("/postern-firewall");
    if (QFileInfo(sibling).isExecutable()) return sibling;
    QString found = QStandardPaths::findExecutable(QStringLiteral("postern-firewall"),
                                                   {QStringLiteral("/usr/sbin"), QStringLiteral("/usr/local/sbin")});
    if (found.isEmpty()) found = QStandardPaths::findExecutable(QStringLiteral("postern-firewall"));
    return found;
}

// After the state was written to the config folder, the copy of an older version goes.
Status saveAndRetire(const Setup& setup, const FirewallState& state) {
    Status saved = saveState(statePath(setup.config), state);
    if (saved) saved = removeFile(legacyStatePath(setup.config));
    return saved;
}

bool stateChanged(const Setup& setup, const FirewallState& after) {
    return after.firewalldPorts != setup.state.firewalldPorts || QFileInfo::exists(legacyStatePath(setup.config));
}

int statusCommand(const Report& report, const Request& req, QTextStream& out) {
    if (req.json)
        printJson(out, statusJson(report));
    else
        out << renderStatus(report);
    return report.allOpen() ? 0 : 1;
}

int planCommand(const Setup& setup, const Snapshot& snap, const Report& report, const Request& req, QTextStream& out) {
    const Plan plan = planOpen(snap, report.detection, report.results, setup.ports, setup.state);
    if (req.json)
        printJson(
            out, QJsonObject{{QStringLiteral("status"), statusJson(report)}, {QStringLiteral("plan"), planJson(plan)}});
    else
        out << renderStatus(report) << "\n"
            << renderPlan(plan, QStringLiteral("Plan (run with --apply, or `postern-firewall apply`)"));
    return report.allOpen() ? 0 : 1;
}

int applyCommand(const Setup& setup, const Snapshot& snap, const Report& report, const Request& req, QTextStream& out,
                 QTextStream& err, const Runner& runner) {
    const Plan plan = planOpen(snap, report.detection, report.results, setup.ports, setup.state);
    if (!req.json) {
        out << renderPlan(plan, QStringLiteral("Applying"));
        out.flush();
    }
    const ApplyOutcome applied = applyPlan(setup, plan, runner);
    if (req.json) {
        QJsonObject o{{QStringLiteral("plan"), planJson(plan)},
                      {QStringLiteral("log"), QJsonArray::fromStringList(applied.log)},
                      {QStringLiteral("ok"), applied.status.ok()},
                      {QStringLiteral("after"), statusJson(applied.after)}};
        if (!applied.status) o.insert(QStringLiteral("error"), applied.status.errorMessage());
        printJson(out, o);
    } else {
        for (const QString& l : applied.log) out << l << "\n";
        if (!applied.status) err << "postern-firewall: " << applied.status.errorMessage() << "\n";
        out << "\nAfter:\n" << renderStatus(applied.after);
    }
    if (!applied.status) return 2;
    return applied.after.allOpen() ? 0 : 1;
}

int removeCommand(const Setup& setup, const Snapshot& snap, const Report& report, const Request& req, QTextStream& out,
                  QTextStream& err, const Runner& runner) {
    const RemoveOutcome removed = removeOurs(setup, snap, report.detection, runner, req.dryRun);
    if (req.json) {
        QJsonObject o{{QStringLiteral("plan"), planJson(removed.plan)},
                      {QStringLiteral("log"), QJsonArray::fromStringList(removed.log)},
                      {QStringLiteral("ok"), removed.status.ok()}};
        if (!removed.status) o.insert(QStringLiteral("error"), removed.status.errorMessage());
        printJson(out, o);
    } else {
        out << renderPlan(removed.plan, req.dryRun ? QStringLiteral("Would remove") : QStringLiteral("Removing"));
        for (const QString& l : removed.log) out << l << "\n";
        if (!removed.status) err << "postern-firewall: " << removed.status.errorMessage() << "\n";
    }
    return removed.status ? 0 : 2;
}

}  // namespace

Result<Setup> loadSetup(const QString& configDir) {
    auto config = Config::load(configDir);
    if (!config) return config.error();
    Setup s;
    s.configDir = configDir;
    s.config = std::move(*config);
    s.ports = configuredPorts(s.config);
    // Root decides from this file which firewalld ports to remove: it lives in the config
    // folder, root's, never in data_dir, which the daemon user owns (plan.h).
    auto state = loadRecordedState(s.config, &s.stateNote);
    if (!state) return state.error();
    s.state = *state;
    return s;
}

Result<Snapshot> snapshotOf(const QString& captured, const Runner& runner) {
    if (captured.isEmpty()) return takeSnapshot(runner);
    return loadSnapshot(captured);
}

ApplyOutcome applyPlan(const Setup& setup, const Plan& plan, const Runner& runner) {
    ApplyOutcome o;
    o.status = runPlan(plan, runner, &o.log);
    if (o.status && stateChanged(setup, plan.stateAfter)) {
        Status saved = ensureDirectory(setup.config.configDir());
        if (saved) saved = saveAndRetire(setup, plan.stateAfter);
        if (!saved) o.status = saved;
    }
    o.after = buildReport(takeSnapshot(runner), setup.ports, false);
    // Rules of ours that live only in the kernel are put back at boot by our unit.
    if (o.status && liveOnlyRules(o.after.detection.ruleset)) {
        const QString program = firewallProgram();
        if (program.isEmpty())
            o.status = Status::fail(
                QStringLiteral("postern-firewall is not installed, so the rules cannot be re-applied at boot"));
        else
            o.status = installBootUnit(program, setup.configDir, &o.log);
    }
    return o;
}

RemoveOutcome removeOurs(const Setup& setup, const Snapshot& snapshot, const Detection& detection, const Runner& runner,
                         bool dryRun) {
    RemoveOutcome o;
    o.plan = planRemove(snapshot, detection, setup.state);
    if (dryRun) return o;
    o.status = runPlan(o.plan, runner, &o.log);
    if (o.status) o.status = removeBootUnit(&o.log);
    if (o.status && stateChanged(setup, o.plan.stateAfter))
        if (const Status saved = saveAndRetire(setup, o.plan.stateAfter); !saved) o.status = saved;
    return o;
}

int runAction(Action action, const Request& req, QTextStream& out, QTextStream& err, const Runner& runner) {
    const bool changes = action == Action::Apply || (action == Action::Remove && !req.dryRun);
    if (changes && !req.captured.isEmpty()) {
        err << "postern-firewall: " << (action == Action::Apply ? "apply" : "remove")
            << " works on this host, not on a capture\n";
        return 2;
    }
    if (changes && ::geteuid() != 0) {
        err << "postern-firewall: changing the packet filter needs root\n";
        return 2;
    }
    const Result<Setup> setup = loadSetup(req.configDir);
    if (!setup) {
        err << "postern-firewall: " << setup.errorMessage() << "\n";
        return 2;
    }
    if (!setup->stateNote.isEmpty()) err << "postern-firewall: note: " << setup->stateNote << "\n";
    const Result<Snapshot> snap = snapshotOf(req.captured, runner);
    if (!snap) {
        err << "postern-firewall: " << snap.errorMessage() << "\n";
        return 2;
    }
    const Report report = buildReport(*snap, setup->ports, req.captured.isEmpty());
    switch (action) {
        case Action::Status:
            return statusCommand(report, req, out);
        case Action::Plan:
            return planCommand(*setup, *snap, report, req, out);
        case Action::Apply:
            return applyCommand(*setup, *snap, report, req, out, err, runner);
        case Action::Remove:
            return removeCommand(*setup, *snap, report, req, out, err, runner);
    }
    return 2;
}

int runCapture(const QString& dir, QTextStream& out, QTextStream& err, const Runner& runner) {
    const Status s = saveSnapshot(takeSnapshot(runner), dir);
    if (!s) {
        err << "postern-firewall: " << s.errorMessage() << "\n";
        return 2;
    }
    out << "captured into " << dir << "\n";
    return 0;
}

}  // namespace postern::firewall
