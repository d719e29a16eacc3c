// daemon_main.h — the common main() of every Postern daemon.
//
// runDaemon(argc, argv, spec):
//   1. parses --config DIR (else $POSTERN_CONFIG, else /etc/postern), --help (the
//      program's line of the service table, core/services.h), --version;
//   2. loads the configuration (errors: message on stderr, exit 78 = EX_CONFIG);
//   3. starts logging (mail.log in log_dir, stderr; exit 1 when root would have
//      to write through a link or hard link planted there); then refuses (exit 1,
//      one line) a data folder of a newer format than this build knows
//      (core/data_version.h);
//   3b. the daemon bootstrap every daemon shared by hand before: with spec.accounts
//      Read or Authenticate, loads the accounts (exit 1 with "accounts: <why>"
//      when they cannot be read); with Authenticate also makes the Authenticator
//      (authenticator.h) that SMTP, IMAP and POP3 check passwords with, and the
//      temporary block list (<data_dir>/block-list, core/block_list.h) that the
//      authenticator fills and the DaemonServer consults at every accept (and the
//      DaemonServer closes sessions of accounts disabled while logged in);
//   4. spec.create(ctx) builds the daemon's objects (ctx: the configuration, the
//      accounts and the authenticator of step 3b) and its DaemonServer, which
//      binds the program's listeners (exit 1 with the reason when a bind fails);
//   5. when started as root: hands the state folders to `system_user` (core/
//      process.h; a link planted in their place is refused) and drops root
//      (exit 1 if it cannot);
//   5b. checks that it can create, fsync, rename and remove a file in the run
//      and log folders and in every folder of spec.writableFolders; exit 1 with
//      one line naming the folder, the user and the fix when it cannot, before
//      any ready file (so the supervisor restarts it with back-off and logs why);
//      then migrates an older data folder to this build's format, once, under a
//      lock shared by all daemons (core/data_version.h; exit 1 when a step fails);
//      then, as the daemon user and never as root, maps the shared auth throttle
//      (<run_dir>/auth-throttle, in a folder that user owns; a warning
//      auth.throttle_not_shared when it cannot, the daemon then throttles alone)
//      and calls spec.started() (opens what else must be opened as the daemon user);
//   6. starts worker processes on the same sockets when spec.processesSetting
//      asks for more than one (workers.h), and writes <run_dir>/<program>.ready
//      with the real addresses (the first process only);
//   7. runs the event loop: SIGTERM/SIGINT -> graceful shutdown (sessions say
//      goodbye, 10 s grace), SIGHUP -> re-read the configuration; an invalid new
//      configuration is refused and logged, the old one stays (restart-only
//      settings are logged as such); then the authenticator takes the new
//      delays, then spec.reloaded() and a TLS reload.
#pragma once

#include "daemon_server.h"

#include "core/config.h"

#include <functional>

namespace postern {

class AccountStore;
class Authenticator;

// What a daemon needs of the accounts (step 3b).
enum class AccountUse {
    None,          // nothing
    Read,          // the accounts snapshot (postern-queued, postern-webd)
    Authenticate,  // the accounts and an Authenticator with the shared throttle (smtpd, imapd, pop3d)
};

// Given to spec.create(): what runDaemon made for the daemon. The pointers stay valid
// until the process exits.
struct DaemonContext {
    Config& config;
    QString program;
    AccountStore* accounts = nullptr;  // with AccountUse::Read or Authenticate
    Authenticator* auth = nullptr;     // with AccountUse::Authenticate
};

struct DaemonSpec {
    QString program;  // "postern-smtpd": a program of the service table (core/services.h)
    AccountUse accounts = AccountUse::None;
    std::function<Result<DaemonServer*>(DaemonContext& ctx, QObject* parent)> create;
    std::function<void(DaemonServer* server)> reloaded;  // optional
    std::function<void()> stopping;                      // optional, before shutdown starts
    // Optional: the folders this daemon writes besides run_dir and log_dir (step 5b).
    std::function<QStringList(const Config& config)> writableFolders;
    // Optional: after privileges are dropped and the folders checked, before "ready";
    // files shared with other daemons are opened here, never as root. A failure stops the start.
    std::function<Status()> started;
    // Optional: the Int setting with the number of processes (0 = one per CPU core).
    // With more than one, the first process starts the others after step 5 (workers.h).
    QString processesSetting;
};

int runDaemon(int argc, char** argv, const DaemonSpec& spec);

}  // namespace postern
