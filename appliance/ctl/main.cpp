// main.cpp — posternctl, the administration command. See ctl.h.
//
// Security:
//   Exposes: no port. Network use is outgoing only: DNS queries, the ACME CA
//   (cert renew, HTTPS), `check` connecting to our own listeners, `import imap`
//   to the server being migrated from, restic to its repository.
//   Runs as: whoever calls it, normally root (the supervisor runs `cert renew`
//   as root). The queue commands drop to system_user first and for good.
//   Writes: the config folder (postern.conf, domains, users, aliases, DKIM and
//   TLS keys, dns-records.*; atomically, keeping owners), ACME challenge answers
//   in data_dir/acme/challenges (reached by SafeDir: a link planted there is
//   refused), queue files (as system_user); backups: a snapshot folder (root
//   0700; its data part written by a child running as system_user), restored
//   config and data folders (a new data folder built as root, handed over,
//   renamed into place); imported messages in Maildirs (as system_user);
//   export files (as system_user). Runs restic (backup run) with the password
//   file named in the settings; connects to other IMAP servers (import imap). Reads the status, ready and log
//   files in data_dir through SafeDir; sends SIGHUP only to a supervisor whose
//   status file root wrote (ctl.h supervisorPid()).
//   An attacker who controls it is root: it is the administrator's tool.
#include "ctl.h"

#include <QCoreApplication>
#include <cstdio>

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    QTextStream out(stdout);
    QTextStream err(stderr);
    return postern::ctl::runCtl(app.arguments(), out, err);
}
