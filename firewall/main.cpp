// main.cpp — postern-firewall: detect, evaluate, plan, apply and remove
// firewall rules for the mail ports. The command line is in cli.h.
//
// Security:
//   Exposes: no port. Input: the packet filter's own state (nft JSON,
//   iptables-save, ufw, firewall-cmd output), /proc, the configuration.
//   Runs as: root for apply and remove (status and plan also work unprivileged,
//   with less detail). Commands are argument vectors for fixed tools.
//   Writes: the packet filter (only rules carrying our comment or chain; ports
//   it recorded for firewalld), <config>/firewall-state.json (root's folder:
//   root removes what that file names, so it is never taken from data_dir,
//   which the daemon user owns, except a legacy file root still owns), and the
//   boot unit in /etc/systemd/system.
//   An attacker who controls it is root.
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
