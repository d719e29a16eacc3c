// main.cpp — postern-firewall: detect, evaluate, plan, apply and remove
// firewall rules for the mail ports. The command line is in cli.h.
#include "cli.h"

#include <QCoreApplication>
#include <QTextStream>

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    QTextStream out(stdout);
    QTextStream err(stderr);
    const postern::firewall::SystemRunner runner;
    return postern::firewall::runFirewallCli(app.arguments(), out, err, runner);
}
