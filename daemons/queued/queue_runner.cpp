// queue_runner.cpp — see queue_runner.h.
#include "queue_runner.h"

#include "admission.h"
#include "delivery_policy.h"
#include "dsn.h"
#include "local_delivery.h"

#include "common/async.h"

#include "core/atomic_file.h"
#include "core/log.h"
#include "core/stats.h"

#include <QCoreApplication>
#include <QDir>

namespace postern::outbound {

namespace {
constexpr int kMaxRescanMs = 60'000;
constexpr const char* kSmarthostKey = "[smarthost]";

QString domainOf(const QString& address) {
    return address.section(QLatin1Char('@'), -1).toLower();
}
}  // namespace

qint64 retryDelay(int attempts, qint64 minS, qint64 maxS) {
    qint64 d = std::max<qint64>(1, minS);
    for (int i = 1; i < attempts && d < maxS; ++i) d *= 2;
    return std::min(d, std::max(minS, maxS));
}

struct QueueRunner::Message {
    spool::Envelope env;
    QStringList waiting;  // domains with pending recipients, not started yet
    QSet<int> taken;      // recipients a job of this run has taken (each is tried once per run)
    int running = 0;
    QList<int> failedNow;  // recipients that failed in this run (for the bounce)
};

struct QueueRunner::DomainJob {
    std::shared_ptr<Message> msg;
    QString domain;
    QList<int> recipients;  // taken at the start: only these are sent and given this job's verdict
    Route route;
    int next = 0;
    QPointer<SmtpClient> client;
    QString lastError;
};

QueueRunner::QueueRunner(const Config& config, AccountStore& accounts, QObject* parent)
    : QObject(parent), m_config(config), m_accounts(accounts), m_s(runnerSettings(config)) {
    m_scanTimer.setSingleShot(true);
    m_scanTimer.setInterval(50);  // coalesce bursts of directory events
    connect(&m_scanTimer, &QTimer::timeout, this, &QueueRunner::scan);
    m_retryTimer.setSingleShot(true);
    connect(&m_retryTimer, &QTimer::timeout, this, &QueueRunner::scan);
    connect(&m_watcher, &QFileSystemWatcher::directoryChanged, this, [this] { scheduleScan(); });
}

QueueRunner::~QueueRunner() = default;

Status QueueRunner::start() {
    QStringList folders{m_s.queueDir + QStringLiteral("/tmp")};
    for (const spool::QueueState state : spool::queueStates()) folders << spool::stateDir(m_s.queueDir, state);
    for (const QString& folder : std::as_const(folders)) {
        if (auto st = ensureDirectory(folder, 0700); !st) return st;
    }
    // Crash recovery: whatever a previous runner had in flight is due again now.
    QDir active(spool::stateDir(m_s.queueDir, spool::QueueState::Active));
    for (const QString& name : active.entryList({QStringLiteral("*.env")}, QDir::Files)) {
        const QString id = name.chopped(4);
        if (!spool::isValidQueueId(id)) continue;
        if (auto st = spool::moveMessage(m_s.queueDir, id, spool::QueueState::Active, spool::QueueState::Deferred); !st)
            log::error(u"queue.recover_failed", log::Fields().add("id", id).add("error", st.errorMessage()));
        else
            log::info(u"queue.recovered", log::Fields().add("id", id));
    }
    m_watcher.addPath(spool::stateDir(m_s.queueDir, spool::QueueState::Incoming));
    m_watcher.addPath(spool::stateDir(m_s.queueDir, spool::QueueState::Deferred));
    scan();
    return Status{};
}

void QueueRunner::reload() {
    m_s = runnerSettings(m_config);
    scheduleScan();
}

void QueueRunner::scheduleScan() {
    if (!m_stopped && !m_scanTimer.isActive()) m_scanTimer.start();
}

void QueueRunner::scan() {
    if (m_stopped) return;
    QSet<QString> known;
    for (const auto& r : m_ready) known.insert(r.first);
    auto isBusy = [&](const QString& id) {
        return known.contains(id) || m_active.contains(id) || m_admitting.contains(id);
    };
    QDir incoming(spool::stateDir(m_s.queueDir, spool::QueueState::Incoming));
    QStringList names = incoming.entryList({QStringLiteral("*.env")}, QDir::Files, QDir::Name);
    for (const QString& name : names) {
        const QString id = name.chopped(4);
        if (!spool::isValidQueueId(id) || isBusy(id)) continue;
        m_ready.append({id, spool::QueueState::Incoming});
        known.insert(id);
    }
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    qint64 earliest = 0;
    QDir deferred(spool::stateDir(m_s.queueDir, spool::QueueState::Deferred));
    for (const QString& name : deferred.entryList({QStringLiteral("*.env")}, QDir::Files, QDir::Name)) {
        const QString id = name.chopped(4);
        if (!spool::isValidQueueId(id) || isBusy(id)) continue;
        auto env = spool::readEnvelope(m_s.queueDir, spool::QueueState::Deferred, id);
        if (!env && env.error().code == ENOENT) continue;
        if (!env) {
            log::error(u"queue.bad_envelope", log::Fields().add("id", id).add("error", env.errorMessage()));
            if (auto st = spool::moveMessage(m_s.queueDir, id, spool::QueueState::Deferred, spool::QueueState::Corrupt);
                !st)
                log::error(u"queue.move_failed", log::Fields().add("id", id).add("error", st.errorMessage()));
            continue;
        }
        if (env->nextAttempt <= now) {
            m_ready.append({id, spool::QueueState::Deferred});
            known.insert(id);
        } else if (earliest == 0 || env->nextAttempt < earliest) {
            earliest = env->nextAttempt;
        }
    }
    const qint64 waitMs = earliest ? std::min<qint64>((earliest - now) * 1000, kMaxRescanMs) : kMaxRescanMs;
    m_retryTimer.start(int(std::max<qint64>(waitMs, 100)));
    pump();
}

void QueueRunner::pump() {
    if (m_stopped) return;
    while (!m_ready.isEmpty() && m_active.size() + m_admitting.size() < m_s.maxDeliveries) {
        const auto [id, state] = m_ready.takeFirst();
        admit(id, state);
    }
    for (const auto& msg : std::as_const(m_active)) {
        for (qsizetype i = 0; i < msg->waiting.size();) {
            const QString domain = msg->waiting.at(i);
            if (m_domainJobs.value(domain) >= m_s.maxPerDomain) {
                ++i;
                continue;
            }
            msg->waiting.removeAt(i);
            startDomain(msg, domain);
        }
    }
}

void QueueRunner::admit(const QString& id, spool::QueueState fromState) {
    m_admitting.insert(id);
    runAsync(
        this,
        [s = m_s, accounts = m_accounts.current(), id, fromState] {
            return admitFromSpool(s, accounts, id, fromState);
        },
        [this, id](const Admitted& a) {
            m_admitting.remove(id);
            if (a.warn)
                log::warn(u"queue.dkim_refused", log::Fields().add("id", id).add("result", a.note));
            else if (!a.note.isEmpty())
                log::info(u"queue.dkim", log::Fields().add("id", id).add("result", a.note));
            if (!a.env) {
                if (!a.error.isEmpty())
                    log::error(u"queue.admit_failed", log::Fields().add("id", id).add("error", a.error));
                pump();
                return;
            }
            if (m_stopped) {
                if (auto st =
                        spool::moveMessage(m_s.queueDir, id, spool::QueueState::Active, spool::QueueState::Deferred);
                    !st)
                    log::error(u"queue.move_failed", log::Fields().add("id", id).add("error", st.errorMessage()));
                return;
            }
            auto msg = std::make_shared<Message>();
            msg->env = *a.env;
            activated(msg);
        });
}

void QueueRunner::activated(std::shared_ptr<Message> msg) {
    spool::Envelope& env = msg->env;
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    ++env.attempts;
    if (env.firstAttempt == 0) env.firstAttempt = now;
    for (const auto& r : env.recipients) {
        if (r.status != spool::EnvelopeRecipient::Status::Pending) continue;
        const QString d = routeKey(r.address);
        if (!msg->waiting.contains(d)) msg->waiting << d;
    }
    m_active.insert(env.id, msg);
    log::info(u"queue.attempt", log::Fields()
                                    .add("id", env.id)
                                    .add("from", env.sender)
                                    .add("attempt", env.attempts)
                                    .add("domains", msg->waiting.join(QLatin1Char(','))));
    if (msg->waiting.isEmpty()) {
        finishMessage(msg);
        return;
    }
    pump();
}

QString QueueRunner::routeKey(const QString& address) const {
    const QString domain = domainOf(address);
    if (m_s.relayHost.isEmpty()) return domain;
    auto accounts = m_accounts.current();
    if (accounts && accounts->isLocalDomain(domain)) return domain;
    return QString::fromLatin1(kSmarthostKey);  // one transaction for all remote recipients
}

QList<int> QueueRunner::takeRecipients(Message& msg, const QString& domain) const {
    QList<int> out;
    for (int i = 0; i < msg.env.recipients.size(); ++i) {
        const auto& r = msg.env.recipients.at(i);
        if (r.status == spool::EnvelopeRecipient::Status::Pending && !msg.taken.contains(i) &&
            routeKey(r.address) == domain) {
            out << i;
            msg.taken.insert(i);
        }
    }
    return out;
}

QList<int> QueueRunner::stillPending(const DomainJob& job) {
    QList<int> out;
    for (int i : job.recipients)
        if (job.msg->env.recipients.at(i).status == spool::EnvelopeRecipient::Status::Pending) out << i;
    return out;
}

void QueueRunner::startDomain(const std::shared_ptr<Message>& msg, const QString& domain) {
    auto job = std::make_shared<DomainJob>();
    job->msg = msg;
    job->domain = domain;
    // A job owns the recipients it takes now. A forward that local delivery adds to a domain
    // whose job is already running waits for a job of its own, so it is neither sent in a
    // transaction it was not part of nor given that transaction's verdict.
    job->recipients = takeRecipients(*msg, domain);
    if (job->recipients.isEmpty()) return;
    ++msg->running;
    ++m_domainJobs[domain];
    m_jobs << job;
    const auto accounts = m_accounts.current();
    const bool local = accounts && accounts->isLocalDomain(domain);
    runAsync(
        this, [s = m_s, domain, local]() { return computeRoute(s, domain, local); },
        [this, job](Route route) {
            if (m_stopped) return;
            job->route = std::move(route);
            switch (job->route.status) {
                case Route::Status::Local:
                    runLocal(job);
                    return;
                case Route::Status::PermFail:
                case Route::Status::TempFail:
                    applyRouteFailure(job->msg->env, stillPending(*job), job->route, job->domain, &job->msg->failedNow);
                    save(*job->msg);
                    domainDone(job);
                    return;
                case Route::Status::Ok:
                    tryNextTarget(job);
                    return;
            }
        });
}

void QueueRunner::runLocal(const std::shared_ptr<DomainJob>& job) {
    LocalJob local;
    local.indexes = stillPending(*job);
    local.env = job->msg->env;
    local.accounts = m_accounts.current();
    local.mailDir = m_s.mailDir;
    local.sieveGlobals = m_s.sieveGlobals;
    local.bodyPath = spool::bodyPath(m_s.queueDir, spool::QueueState::Active, local.env.id);
    local.queueDir = m_s.queueDir;
    local.delimiters = m_s.delimiters;
    local.srs = m_srs;
    runAsync(
        this, [local] { return deliverLocally(local); },
        [this, job, indexes = local.indexes](const QList<LocalOutcome>& outcomes) {
            if (m_stopped) return;
            Message& msg = *job->msg;
            for (const QString& added : applyLocalOutcomes(msg.env, indexes, outcomes, m_s.hostname, &msg.failedNow)) {
                const QString d = routeKey(added);
                if (!msg.waiting.contains(d)) msg.waiting << d;
            }
            save(*job->msg);
            domainDone(job);
        });
}

void QueueRunner::tryNextTarget(const std::shared_ptr<DomainJob>& job) {
    if (m_stopped) return;
    const QList<int> indexes = stillPending(*job);
    if (indexes.isEmpty() || job->next >= job->route.targets.size()) {
        for (int i : indexes) {
            auto& r = job->msg->env.recipients[i];
            if (!job->lastError.isEmpty()) r.diagnostic = job->lastError;
        }
        save(*job->msg);
        domainDone(job);
        return;
    }
    const Target target = job->route.targets.at(job->next++);
    auto* client = new SmtpClient(clientRequest(m_s, job->route, target, job->msg->env, indexes), this);
    job->client = client;
    connect(client, &SmtpClient::finished, this, [this, job, target, indexes, client](const ClientResult& result) {
        client->deleteLater();
        job->client = nullptr;
        if (m_stopped) return;
        // The verdict is for the recipients of this request, in its order.
        const bool answered =
            applyAttempt(job->msg->env, indexes, target, result, &job->msg->failedNow, &job->lastError);
        save(*job->msg);
        if (answered)
            domainDone(job);
        else
            tryNextTarget(job);
    });
    client->start();
}

void QueueRunner::domainDone(const std::shared_ptr<DomainJob>& job) {
    m_jobs.removeOne(job);
    if (--m_domainJobs[job->domain] <= 0) m_domainJobs.remove(job->domain);
    auto msg = job->msg;
    --msg->running;
    if (msg->running == 0 && msg->waiting.isEmpty()) finishMessage(msg);
    pump();
}

void QueueRunner::save(const Message& msg) {
    if (auto st = spool::saveEnvelope(m_s.queueDir, spool::QueueState::Active, msg.env); !st)
        log::error(u"queue.save_failed", log::Fields().add("id", msg.env.id).add("error", st.errorMessage()));
}

void QueueRunner::finishMessage(const std::shared_ptr<Message>& msg) {
    spool::Envelope& env = msg->env;
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    QList<int> failed = msg->failedNow;
    QList<int> pending;
    for (int i = 0; i < env.recipients.size(); ++i)
        if (env.recipients.at(i).status == spool::EnvelopeRecipient::Status::Pending) pending << i;
    const bool expired = !pending.isEmpty() && now - env.arrival >= m_s.lifetimeS;
    if (expired) {
        for (int i : pending) {
            auto& r = env.recipients[i];
            r.status = spool::EnvelopeRecipient::Status::Failed;
            r.diagnostic =
                QStringLiteral("message expired after %1 without delivery; last error: %2")
                    .arg(QString::number(m_s.lifetimeS / 3600.0, 'f', 1) + QStringLiteral(" h"), r.diagnostic);
            failed << i;
        }
        pending.clear();
    }
    // A bounce must be durable before the message that caused it can go.
    if (!failed.isEmpty()) {
        if (auto st = notifySender(m_s.queueDir, env, failed, false, m_s.hostname, m_s.lifetimeS); !st) {
            log::error(u"queue.bounce_failed", log::Fields().add("id", env.id).add("error", st.errorMessage()));
            for (int i : failed)
                env.recipients[i].status = spool::EnvelopeRecipient::Status::Pending;  // try again later
            pending << failed;
        }
    }
    msg->failedNow.clear();
    m_active.remove(env.id);
    if (pending.isEmpty()) {
        if (auto st = spool::removeMessage(m_s.queueDir, spool::QueueState::Active, env.id); !st)
            log::error(u"queue.remove_failed", log::Fields().add("id", env.id).add("error", st.errorMessage()));
        log::info(u"queue.done",
                  log::Fields().add("id", env.id).add("attempts", env.attempts).add("failed", qint64(failed.size())));
        pump();
        return;
    }
    if (!env.delayNotified && m_s.delayWarningS > 0 && now - env.arrival >= m_s.delayWarningS) {
        if (auto st = notifySender(m_s.queueDir, env, pending, true, m_s.hostname, m_s.lifetimeS); st)
            env.delayNotified = true;
        else
            log::error(u"queue.delay_notice_failed", log::Fields().add("id", env.id).add("error", st.errorMessage()));
    }
    env.nextAttempt = now + retryDelay(env.attempts, m_s.retryMinS, m_s.retryMaxS);
    save(*msg);
    if (auto st = spool::moveMessage(m_s.queueDir, env.id, spool::QueueState::Active, spool::QueueState::Deferred); !st)
        log::error(u"queue.defer_failed", log::Fields().add("id", env.id).add("error", st.errorMessage()));
    const QString next = QDateTime::fromSecsSinceEpoch(env.nextAttempt).toUTC().toString(Qt::ISODate);
    log::info(u"queue.deferred",
              log::Fields().add("id", env.id).add("pending", qint64(pending.size())).add("next_attempt", next));
    pump();
}

void QueueRunner::stop() {
    if (m_stopped) return;
    // Let blocking work finish and apply its results, so the envelopes say what was done.
    QThreadPool::globalInstance()->waitForDone(30'000);
    QCoreApplication::sendPostedEvents();
    m_stopped = true;
    m_scanTimer.stop();
    m_retryTimer.stop();
    for (const auto& job : std::as_const(m_jobs)) {
        if (job->client) delete job->client.data();
    }
    m_jobs.clear();
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    for (const auto& msg : std::as_const(m_active)) {
        if (!msg->failedNow.isEmpty()) {
            if (auto st = notifySender(m_s.queueDir, msg->env, msg->failedNow, false, m_s.hostname, m_s.lifetimeS);
                !st) {
                for (int i : std::as_const(msg->failedNow))
                    msg->env.recipients[i].status = spool::EnvelopeRecipient::Status::Pending;
            }
        }
        msg->env.nextAttempt = now;
        save(*msg);
        if (auto st =
                spool::moveMessage(m_s.queueDir, msg->env.id, spool::QueueState::Active, spool::QueueState::Deferred);
            !st)
            log::error(u"queue.move_failed", log::Fields().add("id", msg->env.id).add("error", st.errorMessage()));
    }
    m_active.clear();
}

}  // namespace postern::outbound
