// cli.h — the postern-firewall command line: parses the arguments into an
// Action and a Request and runs it with runAction (actions.h), which is also
// what `posternctl firewall` and the wizard call, without an argument vector.
//
//   postern-firewall [--config DIR] [--captured DIR] [--json] status
//   postern-firewall [--config DIR] [--captured DIR] [--json] plan [--apply]
//   postern-firewall [--config DIR] [--json] apply
//   postern-firewall [--config DIR] [--json] [--dry-run] remove
//   postern-firewall capture DIR
//
// status   backends, per port and family whether a remote client gets in and
//          which rule decides, local listeners, container advice.
// plan     the commands that would open the configured ports (nothing runs).
// apply    prints the plan, runs it, then reads the rules again and reports.
// remove   deletes what apply created (and only that).
// capture  writes the tool output this host gives into DIR (for --captured,
//          bug reports and golden-file tests).
// --captured DIR evaluates a capture instead of this host (status and plan only).
//
// Exit status: 0 all configured ports open (status, plan, apply) or removal
// done; 1 some port is blocked or unknown; 2 usage, configuration or tool
// errors.
// Security: changing the packet filter needs root; without it apply and
// remove refuse before running anything.
#pragma once

#include "detect.h"

#include <QStringList>
#include <QTextStream>

namespace postern::firewall {

int runFirewallCli(const QStringList& args, QTextStream& out, QTextStream& err, const Runner& runner);

}  // namespace postern::firewall
