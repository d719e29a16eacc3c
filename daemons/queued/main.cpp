// main.cpp — postern-queued: the outbound queue runner. No listeners; it
// watches the spool that postern-smtpd writes (see queue_runner.h).
//
// Security:
//   Exposes: no port. Its input from outside is what it fetches: other MX
//   hosts' SMTP replies and certificates, DNS answers (MX, TLSA, MTA-STS TXT)
//   and MTA-STS policies over HTTPS; and the queue files postern-smtpd wrote.
//   Runs as: started as root (by postern-appliance); it binds nothing, so
//   runDaemon() (common/daemon_main.h) at once hands the state folders to
//   system_user by descriptor (core/process.h; a link planted there is
//   refused), drops root for good (initgroups/setgid/setuid, checked) and
//   refuses to start unless it can write every folder it needs. The queue
//   runner starts only after that.
//   Writes (as system_user): queue/{tmp,incoming,active,deferred,hold,corrupt},
//   Maildirs below mail/ (bounces to local senders), state/mta-sts/ (cached
//   policies), run/ (ready file, stats) and mail.log. Reads the DKIM keys and
//   relay.password_file (root's, readable by its group), and <config>/srs.key
//   (the SRS secret, made as root at start when missing, 0600 system_user's).
//   An attacker who controls it gets system_user and can send mail as any
//   hosted domain with our DKIM signatures and the smarthost login; every
//   mailbox. Not root.
#include "queue_runner.h"

#include "common/daemon_main.h"
#include "common/mail/srs.h"
#include "common/spool/queue.h"

#include "core/log.h"
#include "core/setting_keys.h"

#include <QCoreApplication>

using namespace postern;

namespace {
struct QueueDaemon {
    outbound::QueueRunner* runner = nullptr;
};
}  // namespace

int main(int argc, char** argv) {
    static QueueDaemon d;
    DaemonSpec spec;
    spec.program = QStringLiteral("postern-queued");
    spec.accounts = AccountUse::Read;
    spec.create = [](DaemonContext& ctx, QObject* parent) -> Result<DaemonServer*> {
        auto* server = new DaemonServer(ctx.config, ctx.program, nullptr, parent);  // no listener rows: listens nowhere
        d.runner = new outbound::QueueRunner(ctx.config, *ctx.accounts, server);
        // The SRS key (common/mail/srs.h), as root while still root; shared with postern-smtpd.
        if (auto key = mail::loadOrCreateSrsKey(ctx.config.configDir(), get(ctx.config, keys::general::systemUser)))
            d.runner->setSrs(std::make_shared<const mail::Srs>(*key));
        else
            log::warn(
                u"srs.no_key",
                log::Fields().add("error", key.errorMessage()).add("effect", "Sieve redirects are kept in INBOX"));
        // Start after privileges are dropped and the loop runs: files it creates belong to the mail user.
        QMetaObject::invokeMethod(
            server,
            [] {
                if (auto st = d.runner->start(); !st) {
                    log::error(u"queue.start_failed", log::Fields().add("error", st.errorMessage()));
                    QCoreApplication::exit(1);
                }
            },
            Qt::QueuedConnection);
        return server;
    };
    spec.writableFolders = [](const Config& config) {
        QStringList dirs{config.mailDir(), config.dataDir() + QStringLiteral("/state/mta-sts"),
                         config.queueDir() + QStringLiteral("/tmp")};
        for (const spool::QueueState state : spool::queueStates()) dirs << spool::stateDir(config.queueDir(), state);
        return dirs;
    };
    spec.reloaded = [](DaemonServer*) { d.runner->reload(); };
    spec.stopping = [] { d.runner->stop(); };
    return runDaemon(argc, argv, spec);
}
