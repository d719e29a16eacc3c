// dashboard_probes.cpp — see dashboard_probes.h.
#include "dashboard_probes.h"

#include "core/config.h"
#include "core/spam_status.h"

#include <QDateTime>
#include <QTimer>

namespace postern::web {

DashboardProbes::DashboardProbes(QString configDir, QObject* parent)
    : QObject(parent), m_configDir(std::move(configDir)) {
    m_pool.setMaxThreadCount(1);
}

DashboardProbes::~DashboardProbes() {
    m_pool.waitForDone();
}

DashboardProbe DashboardProbes::run(const QString& configDir) {
    DashboardProbe p;
    auto config = Config::load(configDir);
    if (!config) {
        p.spamLine = QStringLiteral("spam filter: unknown (%1)").arg(config.errorMessage());
        p.dnsError = config.errorMessage();
    } else {
        p.spamLine = spamStatusLine(*config, configDir, &p.spamWarning);
        p.domain = config->value(QStringLiteral("primary_domain"));
        auto report = wizard::runDnsCheck({configDir, {}, {}, {}, QDeadlineTimer(kDnsCheckRunLimitMs)});
        if (report)
            p.dns = *report;
        else
            p.dnsError = report.errorMessage();
    }
    p.finishedMs = QDateTime::currentMSecsSinceEpoch();
    return p;
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
    m_running = true;
    const QString dir = m_configDir;
    m_pool.start([this, dir] {
        auto result = std::make_shared<const DashboardProbe>(run(dir));
        // Back to the loop thread; `this` outlives the run (the destructor waits for it).
        QMetaObject::invokeMethod(
            this, [this, result] { finished(result); }, Qt::QueuedConnection);
    });
}

void DashboardProbes::finished(std::shared_ptr<const DashboardProbe> result) {
    m_running = false;
    m_last = std::move(result);
    const QList<Waiter> waiters = std::exchange(m_waiters, {});
    for (const Waiter& w : waiters) {
        if (!w.life || *w.answered) continue;
        *w.answered = true;
        w.done(m_last, false);
    }
}

}  // namespace postern::web
