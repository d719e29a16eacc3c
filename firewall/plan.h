// plan.h — the smallest change that opens the configured mail ports, and its undo.
//
// Interface:
//   planOpen(snapshot, detection, results, ports)  commands for the backend that
//       blocks each port, placed where the block happens:
//         firewalld  firewall-cmd --permanent --zone=Z --add-port=P/tcp, then --reload
//         ufw        ufw allow P/tcp comment postern
//         nftables   one rule `tcp dport { P, ... } accept comment "postern"`
//                    inserted just before the rule that drops the ports (or
//                    appended when the chain policy drops them). A table of our
//                    own cannot do this: every base chain on the input hook must
//                    accept a packet, so an accept in another table never
//                    overrides the blocking chain's drop.
//         iptables   our chain POSTERN-INPUT (in the filter table) accepting the
//                    configured ports, jumped to from INPUT just before the rule
//                    that blocks them (appended when the policy blocks).
//       Ports already open produce no command; a port blocked by the operator's
//       own explicit rule (e.g. `ufw deny 25`) or blocked where we do not insert
//       is reported in notes, never overridden.
//   planRemove(snapshot, detection, state)  deletes only what we created: nft
//       rules with the comment "postern", the POSTERN-INPUT chain and the jumps
//       to it, ufw rules with the comment 'postern', firewalld ports recorded in
//       the state file when we added them.
//   runPlan(plan, runner)  runs the commands in order, stopping at the first
//       failure (whose stderr is the error).
//   FirewallState, loadState/saveState  what we added where removal cannot be
//       recognised from the ruleset itself (firewalld ports). The file lives in
//       the config folder (statePath), which only root can write: root decides
//       from it which ports to remove, so it must not be in data_dir, which the
//       daemon user owns. loadRecordedState also takes over a file left in
//       data_dir by an older version, but only one that root still owns (a
//       regular file with one link, reached by SafeDir): anything the daemon
//       user could have written there is ignored, with a note. Zone and ports
//       are checked (zone [A-Za-z0-9_.+-]{1,64}, ports "N/tcp" with N 1..65535).
//
// Security: commands are argument vectors for fixed tools, never shell text;
// port numbers and names come from the validated configuration. Nothing we did
// not create is edited or deleted.
// Limits: iptables multiport takes at most 15 ports; more are split over rules.
#pragma once

#include "detect.h"
#include "evaluate.h"
#include "port_state.h"

#include "core/config.h"
#include "core/result.h"

#include <QJsonObject>
#include <QList>
#include <QString>
#include <QStringList>

namespace postern::firewall {

inline constexpr const char* kOurComment = "postern";
inline constexpr const char* kOurChain = "POSTERN-INPUT";

struct Command {
    QString program;
    QStringList args;
    QString why;
    QString display() const;  // as a shell command line (quoted)
};

struct FirewallState {
    QString firewalldZone;
    QStringList firewalldPorts;  // "25/tcp", added by us
};

struct Plan {
    QList<Command> commands;
    QStringList notes;              // what we will not do, and how to keep the change across reboots
    FirewallState stateAfter;       // the state file's content once the plan ran
    bool blockedElsewhere = false;  // some port stays blocked or unknown after the plan
};

Plan planOpen(const Snapshot& snapshot, const Detection& detection, const QList<PortResult>& results,
              const QList<ConfiguredPort>& ports, const FirewallState& state);
Plan planRemove(const Snapshot& snapshot, const Detection& detection, const FirewallState& state);

// Runs each command; appends "$ command" and its output lines to `log`.
Status runPlan(const Plan& plan, const Runner& runner, QStringList* log);

Result<FirewallState> loadState(const QString& path);
Status saveState(const QString& path, const FirewallState& state);
// <config>/firewall-state.json, and where versions before it kept the file (<data_dir>).
QString statePath(const Config& config);
QString legacyStatePath(const Config& config);
// statePath, else a root-owned legacy file (see above); `note` says when a legacy file
// was used or ignored. After saveState(statePath) the caller removes the legacy file.
Result<FirewallState> loadRecordedState(const Config& config, QString* note);

QString renderPlan(const Plan& plan, const QString& heading);
QJsonObject planJson(const Plan& plan);

}  // namespace postern::firewall
