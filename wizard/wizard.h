// wizard.h — the first-run flow of postern-wizard, as a list of steps.
//
// runWizard() runs wizardSteps() in order; each step is a function over the
// flow's state and typed library calls, prints its own section and either
// goes on or ends the run with an exit status:
//   detect    the environment (environment.h) and an existing configuration,
//             whose values become the defaults (re-running keeps what is there);
//   ask       the questions (interactive) or flags / answers file / POSTERN_*
//             environment (non-interactive; no answers at all = the demo);
//   check     the checks (checks.h) with each finding and its remedy; on a
//             terminal, offers a smarthost when outbound port 25 is blocked;
//   write     what changes on a configured system, then applySetup (setup.h),
//             and the DNS records to publish (records/);
//   firewall  the firewall library (firewall/actions.h): detect the backends,
//             evaluate every configured port, plan the smallest change, apply
//             it when asked (--apply-firewall, or a yes on the terminal) and
//             read the rules again;
//   launch    starts the supervisor with its output (the daemons' log lines)
//             kept off the terminal: they are in mail.log; the last lines are
//             kept and shown only when the start fails; waits for its ready file;
//   verify    probes every listener like a client (the protocol's greeting);
//   report    client settings and a summary, then stays in the foreground
//             with the supervisor (Ctrl-C stops both).
// --no-launch ends the run after the firewall step (the container entry point
// and the VM's first boot then start the supervisor themselves).
#pragma once

#include "setup.h"

#include <QString>
#include <QStringList>

namespace postern::firewall {
class Runner;
}

namespace postern::wizard {

struct WizardOptions {
    Answers answers;
    bool interactive = false;
    bool launch = true;
    bool bindGiven = false;
    bool pickFreePorts = false;  // demo/tests: take the next free port instead of failing
    bool skipNetworkChecks = false;
    bool applyFirewall = false;  // non-interactive: open the configured ports in the host firewall
    bool skipFirewall = false;   // do not read or change the firewall at all (tests, containers)
    QString outboundProbe = QStringLiteral("gmail-smtp-in.l.google.com:25");
    QStringList blocklists = {QStringLiteral("zen.spamhaus.org"), QStringLiteral("bl.spamcop.net")};
    QString supervisorPath;
    const firewall::Runner* firewallRunner = nullptr;  // null: the system's tools
};

// The step names in the order runWizard runs them.
QStringList wizardSteps();

// Empty when the listener `name` (a row of core/services.h) at "host:port" greets like its
// protocol should (TLS first on implicit-TLS listeners); else what went wrong.
QString probeListener(const QString& name, const QString& address, int timeoutMs);

int runWizard(const WizardOptions& options);

}  // namespace postern::wizard
