// actions.h — what postern-firewall, `posternctl firewall` and the wizard do, as
// library calls over typed values (no command line in between).
//
// Interface:
//   loadSetup(configDir)   the configuration, the ports it wants reachable
//                          (port_state.h) and what we recorded earlier (plan.h:
//                          loadRecordedState; `stateNote` says when an older
//                          version's file was used or ignored).
//   snapshotOf(captured, runner)  the tools' output of this host (captured empty)
//                          or of a capture folder (detect.h).
//   applyPlan(setup, plan, runner)  runs the plan (needs root), records the
//                          firewalld ports we added in the config folder (and
//                          retires an older version's file), reads the rules again
//                          and, when our rules live only in the kernel, installs the
//                          boot unit that puts them back (persist.h). Returns what
//                          ran (the log), the first failure and the rules after.
//   removeOurs(setup, snapshot, detection, runner, dryRun)  planRemove, run unless
//                          dryRun, the boot unit removed, the state file updated.
//   Request + runAction(action, request, out, err, runner)  the text and JSON
//                          output of `status`, `plan`, `apply` and `remove` over
//                          the calls above: what both command lines print.
//                          Exit status: 0 all ports open / removal done; 1 some port
//                          blocked or unknown; 2 configuration, tool or privilege errors.
//   runCapture(dir, out, err, runner)  saveSnapshot of this host into dir.
//
// Security: changing the packet filter needs root; runAction refuses apply and
// remove (without dryRun) before running anything when not root, and never on a
// capture. Commands are argument vectors for fixed tools (plan.h).
// Limits: those of the readers and the evaluator. Standards: none.
#pragma once

#include "detect.h"
#include "plan.h"
#include "report.h"

#include "core/config.h"
#include "core/result.h"

#include <QStringList>
#include <QTextStream>

namespace postern::firewall {

struct Setup {
    QString configDir;
    Config config;
    QList<ConfiguredPort> ports;
    FirewallState state;
    QString stateNote;
};

Result<Setup> loadSetup(const QString& configDir);
Result<Snapshot> snapshotOf(const QString& captured, const Runner& runner);

struct ApplyOutcome {
    Status status;    // the first failure: a command, the state file or the boot unit
    QStringList log;  // "$ command" lines and their output
    Report after;     // the rules read again after the plan ran
};
ApplyOutcome applyPlan(const Setup& setup, const Plan& plan, const Runner& runner);

struct RemoveOutcome {
    Plan plan;
    Status status;
    QStringList log;
};
RemoveOutcome removeOurs(const Setup& setup, const Snapshot& snapshot, const Detection& detection, const Runner& runner,
                         bool dryRun);

enum class Action { Status, Plan, Apply, Remove };

struct Request {
    QString configDir;
    QString captured;  // status and plan: evaluate this capture instead of this host
    bool json = false;
    bool dryRun = false;  // remove: only say what would be removed
};

int runAction(Action action, const Request& request, QTextStream& out, QTextStream& err, const Runner& runner);
int runCapture(const QString& dir, QTextStream& out, QTextStream& err, const Runner& runner);

}  // namespace postern::firewall
