// queue_runner.h — postern-queued's scheduler: takes messages from the spool
// (see common/spool/queue.h), signs them, delivers them, retries, bounces.
//
// Life of a message:
//   incoming/  -> DKIM-signed when an authenticated user sent it (dkim.sign;
//                 the From domain's active keys, RSA and Ed25519), skipped when
//                 our signature is already there (a crash after signing), and
//                 never for a From: address the envelope's auth-user may not
//                 send as (Accounts::maySendAs; logged as queue.dkim_refused,
//                 the message goes out unsigned)
//   active/    -> pending recipients grouped by domain; per domain one job:
//                 local domain: Maildir delivery (store::Delivery, fsync'd);
//                 else a Route (smarthost, or MX hosts from DNS with the
//                 domain's TLS policy: DANE > MTA-STS enforce > encrypted
//                 without authentication when TLSA records exist but none is
//                 usable (RFC 7672 2.2, 3.1.3) > opportunistic)
//                 tried host after host with SmtpClient until one answers.
//                 After every answer the envelope is rewritten (atomic), so a
//                 recipient confirmed once is never sent to again, even after
//                 kill -9.
//   done       -> failure DSN for recipients that failed now (unless NOTIFY
//                 says otherwise or the sender is null), message removed;
//   not done   -> expired (queue.lifetime): remaining recipients fail and bounce;
//                 else delay DSN once after queue.delay_warning, and
//                 deferred/ with next-attempt = now + retry_min * 2^(n-1),
//                 at most retry_max.
// At start, messages left in active/ by a crash go back to deferred/ due now.
// Limits: outbound.max_deliveries messages at once, outbound.max_per_domain
// jobs per destination domain; timeouts from outbound.*.
// Threads: DNS, HTTPS (MTA-STS), signing and Maildir writes run on the thread
// pool (runAsync); all queue state changes happen on the main thread.
// Not done: connection reuse across messages to the same host.
#pragma once

#include "smtp_client.h"

#include "common/spool/queue.h"

#include "core/accounts.h"
#include "core/config.h"
#include "core/dns.h"
#include "core/result.h"

#include <QFileSystemWatcher>
#include <QHash>
#include <QObject>
#include <QPointer>
#include <QSet>
#include <QTimer>
#include <memory>

namespace postern::outbound {

struct RunnerSettings {
    QString hostname, queueDir, mailDir, configDir, mtaStsCacheDir;
    qint64 lifetimeS = 5 * 86400, retryMinS = 300, retryMaxS = 4 * 3600, delayWarningS = 4 * 3600;
    int maxDeliveries = 20, maxPerDomain = 4;
    quint16 mxPort = 25, mtaStsPort = 443;
    qint64 connectTimeoutMs = 30'000, commandTimeoutMs = 300'000;
    bool dane = true, mtaSts = true, dkimSign = true;
    QString caFile;
    QString relayHost, relayUser, relayPasswordFile;
    bool relayImplicitTls = false;
    QList<DnsServer> dnsServers;
    int dnsTimeoutMs = 5000;
};
RunnerSettings runnerSettings(const Config& config);

// Seconds until the next attempt after `attempts` failed attempts (>= 1).
qint64 retryDelay(int attempts, qint64 minS, qint64 maxS);

// Where to try one domain's mail, computed on a worker thread.
struct Target {
    QString address;
    quint16 port = 25;
    QString host;
    bool implicitTls = false;
    TlsPolicy tls;
};
struct Route {
    enum class Status { Ok, TempFail, PermFail, Local };
    Status status = Status::TempFail;
    QString reply;  // for failures: an SMTP-style "550 5.1.10 ..." text
    QList<Target> targets;
    QString authUser;
    QByteArray authPassword;
};
Route computeRoute(const RunnerSettings& s, const QString& domain, bool localDomain);

// Writes a new message into incoming/ (the runner picks it up). Used for DSNs.
Result<QString> enqueueMessage(const QString& queueDir, spool::Envelope envelope, const QByteArray& content);

class QueueRunner : public QObject {
    Q_OBJECT
public:
    QueueRunner(const Config& config, AccountStore& accounts, QObject* parent = nullptr);
    ~QueueRunner() override;
    Status start();
    void reload();
    // Synchronous: lets running work finish its bookkeeping, aborts SMTP sessions,
    // and returns every active message to deferred/ (due now).
    void stop();

private:
    struct Message;
    struct DomainJob;
    void scheduleScan();
    void scan();
    void pump();
    void admit(const QString& id, spool::QueueState fromState);
    void activated(std::shared_ptr<Message> msg);
    void startDomain(const std::shared_ptr<Message>& msg, const QString& domain);
    void runLocal(const std::shared_ptr<DomainJob>& job);
    void tryNextTarget(const std::shared_ptr<DomainJob>& job);
    void applyResult(const std::shared_ptr<DomainJob>& job, const Target& target, const ClientResult& result, bool* answered);
    void domainDone(const std::shared_ptr<DomainJob>& job);
    void finishMessage(const std::shared_ptr<Message>& msg);
    Status notifySender(const Message& msg, const QList<int>& recipients, bool delay);
    void save(const Message& msg);
    // The job a recipient belongs to: its domain, or "[smarthost]" for every
    // remote recipient when relay.host is set.
    QString routeKey(const QString& address) const;
    QList<int> jobRecipients(const Message& msg, const QString& domain) const;

    const Config& m_config;
    AccountStore& m_accounts;
    RunnerSettings m_s;
    QFileSystemWatcher m_watcher;
    QTimer m_scanTimer;   // coalesces scan requests
    QTimer m_retryTimer;  // the next deferred message falls due
    QHash<QString, std::shared_ptr<Message>> m_active;
    QSet<QString> m_admitting;
    QList<QPair<QString, spool::QueueState>> m_ready;  // (id, state) to admit, in order
    QHash<QString, int> m_domainJobs;        // running jobs per destination domain
    QList<std::shared_ptr<DomainJob>> m_jobs;
    bool m_stopped = false;
};

}  // namespace postern::outbound
