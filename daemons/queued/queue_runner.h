// queue_runner.h — postern-queued's scheduler: takes messages from the spool
// (see common/spool/queue.h), has them signed and delivered, retries, bounces.
// It only schedules; the steps live elsewhere: admission.h (envelope read,
// DKIM signing via common/dkim/file_signer.h, move to active/),
// delivery_policy.h (routes, TLS policy, the SMTP client request and what its
// answer means per recipient), local_delivery.h (the one store operation,
// common/store/maildir_delivery.h), dsn.h (notices), runner_settings.h (the
// settings, mapped once).
//
// Life of a message:
//   incoming/  -> DKIM-signed when an authenticated user sent it (dkim.sign;
//                 the From domain's active keys, RSA and Ed25519), skipped when
//                 our signature is already there (a crash after signing), and
//                 never for a From: address the envelope's auth-user may not
//                 send as (Accounts::maySendAs; logged as queue.dkim_refused,
//                 the message goes out unsigned)
//   active/    -> pending recipients grouped by domain; per domain one job:
//                 local domain: Maildir delivery (local_delivery.h, fsync'd);
//                 else a Route (smarthost, or MX hosts from DNS with the
//                 domain's TLS policy: DANE > MTA-STS enforce > encrypted
//                 without authentication when TLSA records exist but none is
//                 usable (RFC 7672 2.2, 3.1.3) > opportunistic)
//                 tried host after host with SmtpClient until one answers.
//                 A job takes its recipients when it starts and gives an
//                 answer only to those it sent; each recipient is taken once
//                 per attempt. A forward that local delivery adds (an alias,
//                 an SRS bounce) gets a job of its own in the same attempt,
//                 even when its domain's job is running.
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

#include "delivery_policy.h"
#include "local_delivery.h"
#include "runner_settings.h"
#include "smtp_client.h"

#include "common/spool/queue.h"

#include "core/accounts.h"
#include "core/config.h"
#include "core/result.h"

#include <QFileSystemWatcher>
#include <QHash>
#include <QObject>
#include <QPointer>
#include <QSet>
#include <QTimer>
#include <memory>

namespace postern::outbound {

// Seconds until the next attempt after `attempts` failed attempts (>= 1).
qint64 retryDelay(int attempts, qint64 minS, qint64 maxS);

class QueueRunner : public QObject {
    Q_OBJECT
public:
    QueueRunner(const Config& config, AccountStore& accounts, QObject* parent = nullptr);
    ~QueueRunner() override;
    Status start();
    void reload();
    // The SRS codec for Sieve redirects and bounces to SRS addresses in local delivery (null: none).
    void setSrs(std::shared_ptr<const mail::Srs> srs) { m_srs = std::move(srs); }
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
    void domainDone(const std::shared_ptr<DomainJob>& job);
    void finishMessage(const std::shared_ptr<Message>& msg);
    void save(const Message& msg);
    // The job a recipient belongs to: its domain, or "[smarthost]" for every
    // remote recipient when relay.host is set.
    QString routeKey(const QString& address) const;
    QList<int> takeRecipients(Message& msg, const QString& domain) const;
    static QList<int> stillPending(const DomainJob& job);

    const Config& m_config;
    AccountStore& m_accounts;
    RunnerSettings m_s;
    std::shared_ptr<const mail::Srs> m_srs;
    QFileSystemWatcher m_watcher;
    QTimer m_scanTimer;   // coalesces scan requests
    QTimer m_retryTimer;  // the next deferred message falls due
    QHash<QString, std::shared_ptr<Message>> m_active;
    QSet<QString> m_admitting;
    QList<QPair<QString, spool::QueueState>> m_ready;  // (id, state) to admit, in order
    QHash<QString, int> m_domainJobs;                  // running jobs per destination domain
    QList<std::shared_ptr<DomainJob>> m_jobs;
    bool m_stopped = false;
};

}  // namespace postern::outbound
