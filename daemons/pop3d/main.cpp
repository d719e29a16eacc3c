// main.cpp — postern-pop3d: POP3 on pop3.listen (STLS) and pop3s.listen (implicit TLS).
//
// Security:
//   Exposes: pop3.listen (110) and pop3s.listen (995) to the Internet: POP3
//   command lines from anyone (USER/PASS, AUTH), then a user's commands.
//   Runs as: started as root (by postern-appliance) only to bind its ports;
//   before the first connection runDaemon() (common/daemon_main.h) hands the
//   state folders to system_user by descriptor (core/process.h; a link planted
//   there is refused), drops root for good (initgroups/setgid/setuid, checked)
//   and refuses to start unless it can write every folder it needs.
//   Writes (as system_user): the Maildirs below mail/ (DELE, dovecot-uidlist),
//   run/ (ready file, stats, auth-throttle) and mail.log. Reads the accounts
//   and the TLS key (root's, readable by its group).
//   An attacker who controls it gets system_user: every mailbox, the password
//   hashes and keys its group may read, the queue. Not root.
#include "pop3_backend.h"
#include "pop3_session.h"

#include "common/daemon_main.h"
#include "core/setting_keys.h"

using namespace postern;

namespace {

pop3::SessionConfig sessionConfig(const Config& c) {
    pop3::SessionConfig s;
    s.hostname = c.hostname();
    s.maxLine = int(get(c, keys::pop3::maxLineLength));
    s.maxErrors = int(get(c, keys::pop3::maxErrors));
    s.maxCommandsBeforeAuth = int(get(c, keys::pop3::maxCommandsBeforeAuth));
    s.idleTimeoutMs = get(c, keys::pop3::idleTimeout);
    s.loginDeadlineMs = get(c, keys::pop3::loginDeadline);
    s.loginDelaySeconds = get(c, keys::pop3::loginDelay) / 1000;
    return s;
}

struct Pop3Daemon {
    const Config* config = nullptr;
    std::unique_ptr<pop3::LocalPop3Backend> backend;
    pop3::SessionConfig sessionConfig;
};

}  // namespace

int main(int argc, char** argv) {
    static Pop3Daemon d;
    DaemonSpec spec;
    spec.program = QStringLiteral("postern-pop3d");
    spec.accounts = AccountUse::Authenticate;
    spec.create = [](DaemonContext& ctx, QObject* parent) -> Result<DaemonServer*> {
        const Config& config = ctx.config;
        d.config = &config;
        d.backend = std::make_unique<pop3::LocalPop3Backend>(config, *ctx.auth);
        d.sessionConfig = sessionConfig(config);
        auto* server = new DaemonServer(
            config, ctx.program,
            [](SessionIo& io, ListenerMode) {
                return std::make_unique<pop3::Pop3Session>(io, *d.backend, d.sessionConfig);
            },
            parent);
        server->setLimits(
            int(get(config, keys::pop3::maxConnections)), int(get(config, keys::pop3::maxConnectionsPerIp)),
            [](ListenerMode) { return QByteArray("-ERR [SYS/TEMP] Too many connections, try again later\r\n"); });
        return server;
    };
    spec.writableFolders = [](const Config& config) { return QStringList{config.mailDir()}; };
    spec.reloaded = [](DaemonServer*) { d.sessionConfig = sessionConfig(*d.config); };
    return runDaemon(argc, argv, spec);
}
