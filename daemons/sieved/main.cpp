// main.cpp — postern-sieved: ManageSieve (RFC 5804) on sieve.listen (4190, STARTTLS).
//
// Security:
//   Exposes: sieve.listen (4190) to the Internet: ManageSieve commands from
//   anyone (CAPABILITY, STARTTLS, AUTHENTICATE under TLS), then a user's script
//   operations on that user's own scripts only.
//   Runs as: started as root (by postern-appliance) only to bind its port;
//   runDaemon() (common/daemon_main.h) hands the state folders to system_user
//   and drops root for good before the first connection. A daemon of its own
//   (not a listener in postern-imapd): it needs no Maildir, index or queue
//   access in its code paths, a crash or compromise of the script editor does
//   not take IMAP down, and it can be turned off (sieve.listen = "") without
//   touching IMAP. It runs as the same system_user because the scripts live
//   beside the Maildirs (<mail_dir>/<domain>/<local>/sieve/), owned by that user,
//   and delivery (postern-smtpd, postern-queued) reads them as that user.
//   Writes (as system_user): <mail_dir>/<domain>/<local>/sieve/ (scripts and
//   the active pointer, through common/sieve/sieve_store), run/ (ready file,
//   auth-throttle) and mail.log. Reads the accounts and the TLS key.
//   An attacker who controls it gets system_user (every mailbox, the password
//   hashes its group may read). Not root.
#include "managesieve_session.h"
#include "sieve_backend.h"

#include "common/daemon_main.h"
#include "core/setting_keys.h"

using namespace postern;

namespace {

managesieve::SessionConfig sessionConfig(const Config& c) {
    managesieve::SessionConfig s;
    s.maxLine = int(get(c, keys::sieve::maxLineLength));
    s.maxLiteralBeforeAuth = get(c, keys::sieve::maxLiteralBeforeAuth);
    s.maxLiteralAfterAuth = get(c, keys::sieve::maxLiteral);
    s.maxErrors = int(get(c, keys::sieve::maxErrors));
    s.maxCommandsBeforeAuth = int(get(c, keys::sieve::maxCommandsBeforeAuth));
    s.idleTimeoutMs = get(c, keys::sieve::idleTimeout);
    s.loginDeadlineMs = get(c, keys::sieve::loginDeadline);
    s.quota = sieve::Quota::fromConfig(c);
    return s;
}

struct SieveDaemon {
    const Config* config = nullptr;
    std::unique_ptr<managesieve::LocalSieveBackend> backend;
    managesieve::SessionConfig sessionConfig;
};

}  // namespace

int main(int argc, char** argv) {
    static SieveDaemon d;
    DaemonSpec spec;
    spec.program = QStringLiteral("postern-sieved");
    spec.accounts = AccountUse::Authenticate;
    spec.create = [](DaemonContext& ctx, QObject* parent) -> Result<DaemonServer*> {
        const Config& config = ctx.config;
        d.config = &config;
        d.backend = std::make_unique<managesieve::LocalSieveBackend>(config, *ctx.auth);
        d.sessionConfig = sessionConfig(config);
        auto* server = new DaemonServer(
            config, ctx.program,
            [](SessionIo& io, ListenerMode) {
                return std::make_unique<managesieve::ManageSieveSession>(io, *d.backend, d.sessionConfig);
            },
            parent);
        server->setLimits(
            int(get(config, keys::sieve::maxConnections)), int(get(config, keys::sieve::maxConnectionsPerIp)),
            [](ListenerMode) { return QByteArray("BYE (TRYLATER) \"Too many connections, try again later\"\r\n"); });
        return server;
    };
    spec.writableFolders = [](const Config& config) { return QStringList{config.mailDir()}; };
    spec.reloaded = [](DaemonServer*) { d.sessionConfig = sessionConfig(*d.config); };
    return runDaemon(argc, argv, spec);
}
