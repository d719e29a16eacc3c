// wizard.h — the first-run flow of postern-wizard.
//
// runWizard(): 1. detect the environment; 2. ask (interactive) or take
// flags / answers file / POSTERN_* environment (non-interactive; no answers
// at all = the demo); 3. run the checks and show each finding with its
// remedy; 4. show what would change on a configured system and apply the
// setup; 5. print the DNS records (and write them as files); 6. firewall;
// 7. launch the supervisor, probe every listener for its protocol greeting,
// print the client settings, and stay in the foreground (Ctrl-C stops).
#pragma once

#include "setup.h"

#include <QString>
#include <QStringList>

namespace postern::wizard {

struct WizardOptions {
    Answers answers;
    bool interactive = false;
    bool launch = true;
    bool bindGiven = false;
    bool pickFreePorts = false;      // demo/tests: take the next free port instead of failing
    bool skipNetworkChecks = false;
    bool applyFirewall = false;      // non-interactive: open the configured ports in the host firewall
    bool skipFirewall = false;       // do not read or change the firewall at all (tests, containers)
    QString outboundProbe = QStringLiteral("gmail-smtp-in.l.google.com:25");
    QStringList blocklists = {QStringLiteral("zen.spamhaus.org"), QStringLiteral("bl.spamcop.net")};
    QString supervisorPath;
};

enum class ListenerName { Smtp, Imap, Pop3, Http };
ListenerName kindOf(const QString& listener);
bool isImplicitTlsListener(const QString& listener);
// Empty when the listener at "host:port" greets like its protocol should; else what went wrong.
QString probeListener(const QString& listener, const QString& address, int timeoutMs);

int runWizard(const WizardOptions& options);
int launchAndWait(const WizardOptions& options, const Answers& answers);

}  // namespace postern::wizard
