// dashboard_probes.h — the slow parts of the web panel's dashboard, run off webd's event loop.
//
// Two probes block for seconds: the DNS status (records::runDnsCheck, the same function as
// `posternctl dns check [--domain D]`: a domain's record set asked of its authoritative
// servers, many ldns queries each bounded by dns.timeout) of every hosted domain, and the spam filter's
// health (spamStatusLine, the same as `posternctl status`: Rspamd's GET /ping, up to
// kSpamPingTimeoutMs). webd has one event loop serving every connection, so neither may run
// on it. DashboardProbes runs both on its own one-thread QThreadPool (one ldns resolver per
// run, created and used on that thread), and hands the result back to the loop thread by a
// queued call. Results are cached for kProbeCacheMs, so reloading the dashboard (or several
// administrators) starts at most one run at a time and one per cache period.
//
// Interface:
//   DashboardProbes(configDir)
//   get(life, done)  calls done(result, running) on the loop thread: at once with the
//                    cached result when it is younger than kProbeCacheMs; otherwise starts a
//                    run (unless one is under way) and calls done when it ends, or after
//                    kProbeWaitMs with the previous result (possibly null) and running = true,
//                    whichever comes first. done is never called after `life` is destroyed.
//   invalidate()     the next get() starts a new run (after a DKIM rotation, a domain change).
// Security: nothing from the request reaches the probes (the configuration decides what is
// asked); the DNS answers are data, escaped by the page that shows them.
// Every hosted domain: a run checks primary_domain first, then at most
// kMaxDnsDomainsPerRun - 1 other domains, those checked longest ago (never checked first);
// the others keep the result of an earlier run (cached per domain on the loop thread, with
// the time it was checked) and come in later runs, so with many domains the whole set is
// covered over several refreshes while no run gets longer. A domain no longer hosted is
// forgotten. Once the run's time limit has passed no further domain is started.
//   latest()         the last result without waiting (the Domains page), and refresh()
//                    starts a run when it is older than kProbeCacheMs or was made for
//                    another set of hosted domains (one added or removed), without a waiter.
// Limits: kProbeCacheMs (60 s); kProbeWaitMs (8 s) a page waits; kDnsCheckRunLimitMs (10 s)
// for the DNS check's queries, all domains of a run together (records not asked by then are
// shown as unknown); kMaxDnsDomainsPerRun (5) domains checked per run, so a run
// ends within that plus one query (dns.timeout) and the spam ping (kSpamPingTimeoutMs); the
// destructor (webd stopping) waits for a run under way, at most that long.
#pragma once

#include "records/dns_check.h"

#include <QHash>
#include <QObject>
#include <QPointer>
#include <QThreadPool>

#include <functional>
#include <memory>
#include <optional>

namespace postern::web {

inline constexpr qint64 kProbeCacheMs = 60'000;
inline constexpr int kProbeWaitMs = 8'000;
inline constexpr int kDnsCheckRunLimitMs = 10'000;
inline constexpr int kMaxDnsDomainsPerRun = 5;

// The DNS status of one hosted domain.
struct DomainDns {
    QString domain;
    qint64 checkedMs = 0;  // ms since the epoch; 0: not checked yet
    std::optional<records::DnsCheckReport> dns;
    QString error;  // when checked and dns is empty
};

struct DashboardProbe {
    qint64 finishedMs = 0;  // ms since the epoch
    QString spamLine;
    bool spamWarning = false;
    QString domain;  // the domain checked
    std::optional<records::DnsCheckReport> dns;
    QString dnsError;  // when dns is empty
    // Every hosted domain (primary_domain first), each with its latest check (this run's
    // or an earlier one's) or none yet.
    QList<DomainDns> domains;
    QStringList hosted;  // the run's list of hosted domains
};

class DashboardProbes final : public QObject {
    Q_OBJECT
public:
    using Done = std::function<void(std::shared_ptr<const DashboardProbe>, bool running)>;
    explicit DashboardProbes(QString configDir, QObject* parent = nullptr);
    ~DashboardProbes() override;

    void get(QObject* life, Done done);
    void invalidate() { m_last.reset(); }
    std::shared_ptr<const DashboardProbe> latest() const { return m_last; }
    // hosted: the domains hosted now; a last result made for another set is stale too.
    void refresh(const QStringList& hosted = {});

    // The work itself (blocking), public for tests: `lastChecked` (domain -> ms) picks the
    // other domains of this run; the result's `domains` holds only those checked now.
    static DashboardProbe run(const QString& configDir, const QHash<QString, qint64>& lastChecked = {});

private:
    struct Waiter {
        QPointer<QObject> life;
        Done done;
        std::shared_ptr<bool> answered;
    };
    void finished(std::shared_ptr<const DashboardProbe> result);
    void startRun();

    QString m_configDir;
    QThreadPool m_pool;
    bool m_running = false;
    std::shared_ptr<const DashboardProbe> m_last;
    QList<Waiter> m_waiters;
    QHash<QString, DomainDns> m_domains;  // the latest check of each hosted domain
};

}  // namespace postern::web
