// dashboard_probes.cpp — see dashboard_probes.h.
#include "dashboard_probes.h"

#include "core/accounts.h"
#include "core/config.h"
#include "core/setting_keys.h"
#include "core/spam_status.h"

#include <QDateTime>
#include <QDeadlineTimer>
#include <QSet>

#include <QTimer>
#include <algorithm>

namespace postern::web {

DashboardProbes::DashboardProbes(QString configDir, QObject* parent)
    : QObject(parent), m_configDir(std::move(configDir)) {
    m_pool.setMaxThreadCount(1);
}

DashboardProbes::~DashboardProbes() {
    m_pool.waitForDone();
}

DashboardProbe DashboardProbes::run(const QString& configDir, const QHash<QString, qint64>& lastChecked) {
    DashboardProbe p;
    auto config = Config::load(configDir);
    if (!config) {
        p.spamLine = QStringLiteral("spam filter: unknown (%1)").arg(config.errorMessage());
        p.dnsError = config.errorMessage();
    } else {
        p.spamLine = spamStatusLine(*config, configDir, &p.spamWarning);
        p.domain = postern::get(*config, keys::general::primaryDomain);  // DashboardProbes::get hides it
        // One time limit for the whole run, every domain's queries together.
        const QDeadlineTimer deadline(kDnsCheckRunLimitMs);
        auto report = records::runDnsCheck({configDir, {}, {}, {}, deadline});
        if (report)
            p.dns = *report;
        else
            p.dnsError = report.errorMessage();
        DomainDns primary{p.domain, QDateTime::currentMSecsSinceEpoch(), p.dns, p.dnsError};
        p.domains << primary;
        // The other hosted domains, those checked longest ago first (never checked: first of all).
        QStringList others;
        if (auto acc = AccountStore(configDir).load())
            for (const QString& d : acc->domains())
                if (d != p.domain) others << d;
        p.hosted = QStringList{p.domain} + others;
        std::stable_sort(others.begin(), others.end(), [&](const QString& a, const QString& b) {
            return lastChecked.value(a, 0) < lastChecked.value(b, 0);
        });
        for (const QString& d : others.mid(0, kMaxDnsDomainsPerRun - 1)) {
            if (deadline.hasExpired()) break;  // the rest in a later run
            DomainDns one{d, 0, std::nullopt, {}};
            auto r = records::runDnsCheck({configDir, d, {}, {}, deadline});
            if (r)
                one.dns = *r;
            else
                one.error = r.errorMessage();
            one.checkedMs = QDateTime::currentMSecsSinceEpoch();
            p.domains << one;
        }
    }
    p.finishedMs = QDateTime::currentMSecsSinceEpoch();
    return p;
}

void DashboardProbes::refresh(const QStringList& hosted) {
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    if (m_running) return;
    const bool fresh = m_last && now - m_last->finishedMs < kProbeCacheMs && now >= m_last->finishedMs;
    const bool sameDomains =
        !m_last || hosted.isEmpty() ||
        QSet<QString>(hosted.cbegin(), hosted.cend()) == QSet<QString>(m_last->hosted.cbegin(), m_last->hosted.cend());
    if (fresh && sameDomains) return;
    startRun();
}

void DashboardProbes::startRun() {
    m_running = true;
    const QString dir = m_configDir;
    QHash<QString, qint64> lastChecked;
    for (auto it = m_domains.cbegin(); it != m_domains.cend(); ++it) lastChecked.insert(it.key(), it->checkedMs);
    m_pool.start([this, dir, lastChecked] {
        auto result = std::make_shared<const DashboardProbe>(run(dir, lastChecked));
        // Back to the loop thread; `this` outlives the run (the destructor waits for it).
        QMetaObject::invokeMethod(
            this, [this, result] { finished(result); }, Qt::QueuedConnection);
    });
}

void DashboardProbes::get(QObject* life, Done done) {
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    if (m_last && now - m_last->finishedMs < kProbeCacheMs && now >= m_last->finishedMs) return done(m_last, m_running);
    auto answered = std::make_shared<bool>(false);
    m_waiters << Waiter{QPointer<QObject>(life), done, answered};
    // The page does not wait for ever: after kProbeWaitMs it shows what there is.
    QTimer::singleShot(kProbeWaitMs, life, [this, done, answered] {
        if (*answered) return;
        *answered = true;
        done(m_last, true);
    });
    if (m_running) return;
    startRun();
}

void DashboardProbes::finished(std::shared_ptr<const DashboardProbe> result) {
    m_running = false;
    // Merge this run's domains into the per-domain cache; forget domains no longer hosted.
    for (const DomainDns& d : result->domains) m_domains.insert(d.domain, d);
    if (!result->hosted.isEmpty())
        m_domains.removeIf([&](const auto& it) { return !result->hosted.contains(it.key()); });
    auto merged = std::make_shared<DashboardProbe>(*result);
    merged->domains.clear();
    for (const QString& d : result->hosted) merged->domains << m_domains.value(d, DomainDns{d, 0, std::nullopt, {}});
    m_last = std::move(merged);
    const QList<Waiter> waiters = std::exchange(m_waiters, {});
    for (const Waiter& w : waiters) {
        if (!w.life || *w.answered) continue;
        *w.answered = true;
        w.done(m_last, false);
    }
}

}  // namespace postern::web
