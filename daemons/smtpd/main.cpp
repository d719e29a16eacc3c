// main.cpp — postern-smtpd: the SMTP daemon (MX, submission, submissions).
//
// Security:
//   Exposes: smtp.listen (MX, port 25), submission.listen (587, STARTTLS) and
//   submissions.listen (465, TLS) to the Internet: commands, AUTH credentials
//   and message content from anyone, under the smtp.* limits; DNS answers for
//   SPF/DKIM/DMARC on the MX listener.
//   Runs as: started as root (by postern-appliance) only to bind its ports;
//   before the first connection runDaemon() (common/daemon_main.h) hands the
//   state folders to system_user by descriptor (core/process.h; a link planted
//   there is refused), drops root for good (initgroups/setgid/setuid, checked)
//   and refuses to start unless it can write every folder it needs.
//   Writes (as system_user): Maildirs below mail/ (local delivery), queue/tmp
//   and queue/incoming (mail for other domains), run/ (ready file, stats, the
//   shared auth-throttle and counters) and mail.log. Reads the accounts, the
//   TLS key and the DKIM keys (root's, readable by its group); reads (or, the
//   first time, as root before dropping it, creates) <config>/srs.key, the SRS
//   secret (0600, owned by system_user; common/mail/srs.h).
//   An attacker who controls it gets system_user: every mailbox, the outbound
//   queue (mail that postern-queued signs and sends), the password hashes and
//   keys its group may read, the other daemons' state files. Not root: nothing
//   root does later follows what it leaves in data_dir (core/safe_path.h).
#include "local_backend.h"
#include "smtp_session.h"

#include "common/daemon_main.h"
#include "common/mail/srs.h"
#include "common/spool/queue.h"

#include "core/log.h"
#include "core/setting_keys.h"

using namespace postern;

namespace {

smtp::SessionConfig sessionConfig(const Config& c) {
    smtp::SessionConfig s;
    s.hostname = c.hostname();
    s.maxMessageSize = get(c, keys::smtp::maxMessageSize);
    s.maxRecipients = int(get(c, keys::smtp::maxRecipients));
    s.maxCommandLine = int(get(c, keys::smtp::maxCommandLine));
    s.maxErrors = int(get(c, keys::smtp::maxErrors));
    s.commandTimeoutMs = get(c, keys::smtp::commandTimeout);
    s.dataTimeoutMs = get(c, keys::smtp::dataTimeout);
    s.greetDelayMs = get(c, keys::smtp::greetDelay);
    s.content.maxLineLength = int(get(c, keys::smtp::maxLineLength));
    s.content.maxHeaderSize = get(c, keys::smtp::maxHeaderSize);
    s.content.maxHeaderCount = int(get(c, keys::smtp::maxHeaderCount));
    s.content.normalizeBareLineEndings = get(c, keys::smtp::bareLf) == u"normalize";
    s.logTranscript = get(c, keys::log::transcripts);
    return s;
}

struct SmtpDaemon {
    std::unique_ptr<smtp::LocalBackend> backend;
    smtp::SessionConfig sessionConfig;
    const Config* config = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
    static SmtpDaemon d;
    DaemonSpec spec;
    spec.program = QStringLiteral("postern-smtpd");
    spec.accounts = AccountUse::Authenticate;
    spec.create = [](DaemonContext& ctx, QObject* parent) -> Result<DaemonServer*> {
        const Config& config = ctx.config;
        d.config = &config;
        d.backend = std::make_unique<smtp::LocalBackend>(config, *ctx.accounts, *ctx.auth);
        // The SRS key (Sieve redirects), made once in the config folder; read (or made) here, while
        // still root when started by the supervisor; given to system_user so workers can read it.
        if (auto key = mail::loadOrCreateSrsKey(config.configDir(), get(config, keys::general::systemUser)))
            d.backend->setSrs(std::make_shared<const mail::Srs>(*key));
        else
            log::warn(
                u"srs.no_key",
                log::Fields().add("error", key.errorMessage()).add("effect", "Sieve redirects are kept in INBOX"));
        d.sessionConfig = sessionConfig(config);
        auto* server = new DaemonServer(
            config, ctx.program,
            [](SessionIo& io, ListenerMode) {
                return std::make_unique<smtp::SmtpSession>(io, *d.backend, d.sessionConfig);
            },
            parent);
        const QString host = d.sessionConfig.hostname;
        server->setLimits(
            int(get(config, keys::smtp::maxConnections)), int(get(config, keys::smtp::maxConnectionsPerIp)),
            [host](ListenerMode) {
                return QStringLiteral("421 4.7.0 %1 Too many connections, try again later\r\n").arg(host).toUtf8();
            });
        Connection::Options opts;
        opts.maxSessionMs = get(config, keys::smtp::sessionTimeout);
        opts.handshakeTimeoutMs = get(config, keys::tls::handshakeTimeout);
        server->setConnectionOptions(opts);
        return server;
    };
    spec.writableFolders = [](const Config& config) {
        return QStringList{config.mailDir(), config.queueDir() + QStringLiteral("/tmp"),
                           spool::stateDir(config.queueDir(), spool::QueueState::Incoming)};
    };
    // As the mail user, never as root: queue/tmp is in a folder it owns.
    spec.started = []() -> Status {
        d.backend->cleanSpoolTmp();
        return {};
    };
    spec.reloaded = [](DaemonServer*) {
        // New connections use the new limits; running sessions keep theirs.
        d.sessionConfig = sessionConfig(*d.config);
    };
    return runDaemon(argc, argv, spec);
}
