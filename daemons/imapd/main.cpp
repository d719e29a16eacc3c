// main.cpp — postern-imapd: IMAP on imap.listen (STARTTLS) and imaps.listen (implicit TLS).
//
// Security:
//   Exposes: imap.listen (143) and imaps.listen (993) to the Internet: IMAP
//   commands and literals from anyone before login (small limits), and every
//   command of a logged-in user after it.
//   Runs as: started as root (by postern-appliance) only to bind its ports;
//   before the first connection runDaemon() (common/daemon_main.h) hands the
//   state folders to system_user by descriptor (core/process.h; a link planted
//   there is refused), drops root for good (initgroups/setgid/setuid, checked)
//   and refuses to start unless it can write every folder it needs.
//   With imap.processes > 1 the first process starts the workers only after
//   that; workers never run as root.
//   Writes (as system_user): the Maildirs below mail/ (flags, COPY/MOVE,
//   APPEND, EXPUNGE, dovecot-uidlist, subscriptions, the SQLite index files),
//   run/ (ready file, stats, counters, auth-throttle), mail.log and, with
//   spam.enabled, the learn spool <data_dir>/spam-learn (hard links to messages the
//   users filed into or out of Junk; common/spam/learn_spool.h), which one imapd
//   process drains to Rspamd's controller socket (common/spam/rspamd_learner.h).
//   Reads the accounts, the TLS key (root's, readable by its group) and, while
//   still root, the Rspamd controller password (<config>/spam/controller.password,
//   0600 root; kept in memory, never logged).
//   An attacker who controls it gets system_user: every mailbox of every user,
//   the password hashes and keys its group may read, the queue. Not root.
#include "imap_index.h"
#include "imap_mailbox.h"
#include "imap_session.h"

#include "common/authenticator.h"
#include "common/daemon_main.h"
#include "common/spam/learn_spool.h"
#include "common/spam/rspamd_learner.h"
#include "common/store/maildir_folder.h"

#include "core/accounts.h"
#include "core/atomic_file.h"
#include "core/log.h"
#include "core/setting_keys.h"
#include "core/spam_engine.h"
#include "core/stats.h"

#include <QTimer>

#include <malloc.h>

using namespace postern;

namespace {

class LocalImapBackend : public imap::ImapBackend {
public:
    LocalImapBackend(AccountStore& accounts, Authenticator& auth) : m_accounts(accounts), m_auth(auth) {}
    void authenticate(const AuthRequest& request, QByteArray password, AuthDone done) override {
        m_auth.verify(request, QStringLiteral("imap"), std::move(password),
                      [done = std::move(done)](Authenticator::Outcome o) { done(o.verdict, o.user); });
    }
    qint64 quotaOf(const QString& user) override {
        const UserRecord* u = m_accounts.current()->user(user);
        return u ? u->quotaBytes : 0;
    }
    // Queued only (a link and a small file); the learner sends it when Rspamd takes it.
    void learn(const QString& user, bool spam, const QString& messagePath) override {
        if (!spool) return;
        QString error;
        const auto cls = spam ? postern::spam::LearnClass::Spam : postern::spam::LearnClass::Ham;
        const auto queued = spool->enqueue(cls, user, messagePath, &error);
        if (queued == postern::spam::LearnSpool::Enqueued::Queued) {
            if (learner) learner->kick();
            return;
        }
        stats::add(QStringLiteral("postern_spam_learns_total"),
                   {{QStringLiteral("class"), postern::spam::toString(cls)},
                    {QStringLiteral("result"), QStringLiteral("not_queued")}});
        log::warn(u"spam.learn_not_queued",
                  log::Fields().add("user", user).add("class", postern::spam::toString(cls)).add("error", error));
    }

    std::unique_ptr<postern::spam::LearnSpool> spool;  // with spam.enabled
    postern::spam::RspamdLearner* learner = nullptr;   // a child of the server

private:
    AccountStore& m_accounts;
    Authenticator& m_auth;
};

imap::SessionConfig sessionConfig(const Config& c) {
    imap::SessionConfig s;
    s.hostname = c.hostname();
    s.limits.maxLine = qsizetype(get(c, keys::imap::maxLineLength));
    s.appendLimit = get(c, keys::smtp::maxMessageSize);
    s.limits.maxLiteral = s.appendLimit;
    s.limits.maxCommand = s.appendLimit + 4 * s.limits.maxLine;
    s.idleTimeoutMs = get(c, keys::imap::idleTimeout);
    s.loginDeadlineMs = get(c, keys::imap::loginDeadline);
    s.inputBudget = &InputBudget::process();
    s.maxSessionsPerUser = int(get(c, keys::imap::maxSessionsPerUser));
    s.maxBadCommands = int(get(c, keys::imap::maxBadCommands));
    s.mailDir = c.mailDir();
    return s;
}

struct ImapDaemon {
    const Config* config = nullptr;
    std::unique_ptr<LocalImapBackend> backend;
    imap::SessionConfig sessionConfig;
    QByteArray controllerPassword;  // read as root in create()
    QObject* server = nullptr;
};

QString learnSpoolDir(const Config& c) {
    return c.dataDir() + QStringLiteral("/spam-learn");
}

}  // namespace

int main(int argc, char** argv) {
    static ImapDaemon d;
    DaemonSpec spec;
    spec.program = QStringLiteral("postern-imapd");
    spec.accounts = AccountUse::Authenticate;
    spec.processesSetting = keys::imap::processes.str();
    spec.create = [](DaemonContext& ctx, QObject* parent) -> Result<DaemonServer*> {
        const Config& config = ctx.config;
        d.config = &config;
        d.backend = std::make_unique<LocalImapBackend>(*ctx.accounts, *ctx.auth);
        d.sessionConfig = sessionConfig(config);
        if (get(config, keys::spam::enabled)) {
            // Before root is dropped: the controller password is root's (0600). Unix-socket
            // clients of Rspamd's controller are trusted by Rspamd anyway; we send it still.
            const SpamPaths sp = spamPaths(config, config.configDir());
            if (auto pw = readFile(sp.passwordFile, 1024)) d.controllerPassword = pw->trimmed();
        }
        InputBudget::process().setLimit(get(config, keys::imap::maxBufferedInput));
        auto* server = new DaemonServer(
            config, ctx.program,
            [](SessionIo& io, ListenerMode) {
                return std::make_unique<imap::ImapSession>(io, *d.backend, d.sessionConfig);
            },
            parent);
        server->setLimits(int(get(config, keys::imap::maxConnections)),
                          int(get(config, keys::imap::maxConnectionsPerIp)),
                          [](ListenerMode) { return QByteArray("* BYE Too many connections, try again later\r\n"); });
        Connection::Options opts;
        opts.maxBufferedInput = 1024 * 1024;
        opts.inputBudget = &InputBudget::process();  // with the sessions' commands and literals
        opts.handshakeTimeoutMs = get(config, keys::tls::handshakeTimeout);
        server->setConnectionOptions(opts);
        // Idle clients need no open SQLite handle nor parsed uidlist: drop those unused
        // for 10 s and give the memory back to the kernel (imap_index.h).
        auto* sweep = new QTimer(server);
        sweep->setInterval(5000);
        QObject::connect(sweep, &QTimer::timeout, server, [] {
            store::MaildirFolder::dropIdleCaches(10'000);
            if (const int closed = imap::MailboxIndex::closeIdle(10'000); closed > 0) {
                malloc_trim(0);
                log::debug(u"imap.index.closed_idle", log::Fields().add("handles", closed));
            }
        });
        sweep->start();
        d.server = server;
        return server;
    };
    // As the daemon user: the learn spool and its learner (spam.enabled only). A spool that
    // cannot be made only turns learning off (logged); mail service goes on.
    spec.started = []() -> Status {
        const Config& config = *d.config;
        if (!get(config, keys::spam::enabled)) return {};
        auto spool = std::make_unique<postern::spam::LearnSpool>(learnSpoolDir(config));
        if (auto st = spool->open(); !st) {
            log::warn(u"spam.learn_spool_unavailable",
                      log::Fields().add("dir", spool->dir()).add("error", st.errorMessage()));
            return {};
        }
        const SpamPaths sp = spamPaths(config, config.configDir());
        d.backend->learner = new postern::spam::RspamdLearner(*spool, sp.controllerSocket, d.controllerPassword,
                                                              int(get(config, keys::spam::timeout)), d.server);
        d.backend->spool = std::move(spool);
        return {};
    };
    spec.writableFolders = [](const Config& config) { return QStringList{config.mailDir()}; };
    // Folder listings due to be kept on disk are written before the process goes: the
    // next process takes them instead of listing (imap_kept_listing.h).
    spec.stopping = [] { imap::MailboxView::keepDueSnapshots(); };
    spec.reloaded = [](DaemonServer*) {
        d.sessionConfig = sessionConfig(*d.config);
        InputBudget::process().setLimit(get(*d.config, keys::imap::maxBufferedInput));
    };
    return runDaemon(argc, argv, spec);
}
