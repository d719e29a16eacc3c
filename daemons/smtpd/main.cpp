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

using namespace postern;

namespace {

smtp::SessionConfig sessionConfig(const Config& c) {
    smtp::SessionConfig s;
    s.hostname = c.hostname();
    s.maxMessageSize = c.size(QStringLiteral("smtp.max_message_size"));
    s.maxRecipients = int(c.integer(QStringLiteral("smtp.max_recipients")));
    s.maxCommandLine = int(c.integer(QStringLiteral("smtp.max_command_line")));
    s.maxErrors = int(c.integer(QStringLiteral("smtp.max_errors")));
    s.commandTimeoutMs = c.durationMs(QStringLiteral("smtp.command_timeout"));
    s.dataTimeoutMs = c.durationMs(QStringLiteral("smtp.data_timeout"));
    s.greetDelayMs = c.durationMs(QStringLiteral("smtp.greet_delay"));
    s.content.maxLineLength = int(c.integer(QStringLiteral("smtp.max_line_length")));
    s.content.maxHeaderSize = c.size(QStringLiteral("smtp.max_header_size"));
    s.content.maxHeaderCount = int(c.integer(QStringLiteral("smtp.max_header_count")));
    s.content.normalizeBareLineEndings = c.value(QStringLiteral("smtp.bare_lf")) == u"normalize";
    s.logTranscript = c.flag(QStringLiteral("log.transcripts"));
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
        if (auto key = mail::loadOrCreateSrsKey(config.configDir(), config.value(QStringLiteral("system_user"))))
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
            int(config.integer(QStringLiteral("smtp.max_connections"))),
            int(config.integer(QStringLiteral("smtp.max_connections_per_ip"))), [host](ListenerMode) {
                return QStringLiteral("421 4.7.0 %1 Too many connections, try again later\r\n").arg(host).toUtf8();
            });
        Connection::Options opts;
        opts.maxSessionMs = config.durationMs(QStringLiteral("smtp.session_timeout"));
        opts.handshakeTimeoutMs = config.durationMs(QStringLiteral("tls.handshake_timeout"));
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
