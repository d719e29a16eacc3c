// main.cpp — postern-webd: MTA-STS policy, autoconfig/autodiscover, ACME
// HTTP-01 answers, health and metrics on http.listen and https.listen.
//
// Security:
//   Exposes: http.listen (80) and https.listen (443) to the Internet: HTTP/1.x
//   requests from anyone (strict parser, kMaxBody and the connection limits).
//   Runs as: started as root (by postern-appliance) only to bind its ports;
//   before the first connection runDaemon() (common/daemon_main.h) hands the
//   state folders to system_user by descriptor (core/process.h; a link planted
//   there is refused), drops root for good (initgroups/setgid/setuid, checked)
//   and refuses to start unless it can write every folder it needs.
//   The web panel (/panel/, panel.h): logins through the shared Authenticator and
//   throttle (AccountUse::Authenticate, as imapd: webd reads the users file, 0640
//   root:<group>); changes to accounts, and to the run-time-safe settings in
//   postern.conf, through AccountBroker (account_broker.h), a helper forked here
//   while still root that keeps root's rights to rewrite those files and does
//   nothing else; webd itself stays unable to write them. The panel's queue page
//   changes the queue as system_user (common/spool/queue_ops.h).
//   Writes (as system_user): run/ (ready file, stats), mail.log, the panel's sessions
//   (<data_dir>/state/panel/sessions.json, 0600 in a 0700 folder; only SHA-256 of each
//   session id: panel_sessions.h), and the users' own
//   Sieve scripts (<mail_dir>/<domain>/<local>/sieve/, the panel's Forwarding page,
//   through common/sieve/sieve_store.h like postern-sieved). Reads
//   acme/challenges/ (answers posternctl writes there), the daemons' stats files
//   and queue folder sizes (for /metrics), the accounts' domains and the TLS key.
//   An attacker who controls it gets system_user (every mailbox, the queue, the
//   keys its group may read); it could answer ACME challenges, i.e. get a
//   certificate for our names. Not root.
#include "web_session.h"

#include "common/daemon_main.h"

#include "core/atomic_file.h"
#include "core/log.h"
#include "core/setting_keys.h"
#include "core/two_factor.h"

#include <QDateTime>

using namespace postern;

int main(int argc, char** argv) {
    static web::WebContext ctx;
    DaemonSpec spec;
    spec.program = QStringLiteral("postern-webd");
    spec.accounts = AccountUse::Authenticate;
    spec.create = [](DaemonContext& daemon, QObject* parent) -> Result<DaemonServer*> {
        const Config& config = daemon.config;
        ctx.config = &config;
        ctx.accounts = daemon.accounts;
        ctx.acmeDir = config.dataDir() + QStringLiteral("/acme/challenges");
        ctx.queueDir = config.queueDir();
        ctx.runDir = config.runDir();
        ctx.startedSecs = QDateTime::currentSecsSinceEpoch();
        ctx.requestDeadlineMs = get(config, keys::http::requestDeadline);
        // The panel: its account helper is forked now, before runDaemon drops root.
        static web::PanelContext panel;
        static std::unique_ptr<web::AccountBroker> broker;
        auto started = web::AccountBroker::start(config.configDir(), HashParams::fromConfig(config),
                                                 get(config, keys::general::adminAddress), appPasswordUsageDir(config));
        if (!started) return started.error();
        broker = std::move(*started);
        panel.config = &config;
        panel.accounts = daemon.accounts;
        panel.auth = daemon.auth;
        panel.broker = broker.get();
        panel.runDir = config.runDir();
        panel.queueDir = config.queueDir();
        panel.mailDir = config.mailDir();
        ctx.panel = &panel;
        auto* server = new DaemonServer(
            config, daemon.program,
            [](SessionIo& io, ListenerMode) { return std::make_unique<web::WebSession>(io, ctx); }, parent);
        server->setLimits(200, 20, [](ListenerMode) {
            return QByteArray("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        });
        return server;
    };
    // As the webd user (after root is dropped): the panel's sessions survive a restart
    // (panel_sessions.h), in a folder only that user can enter.
    spec.started = []() -> Status {
        if (!ctx.panel || !ctx.config) return {};
        const QString dir = ctx.config->dataDir() + QStringLiteral("/state/panel");
        if (auto st = ensureDirectory(dir, 0700); !st) {
            log::warn(u"panel.sessions_not_persisted", log::Fields().add("error", st.errorMessage()));
            return {};
        }
        ctx.panel->sessions.persistTo(dir + QStringLiteral("/sessions.json"), QDateTime::currentMSecsSinceEpoch());
        return {};
    };
    return runDaemon(argc, argv, spec);
}
