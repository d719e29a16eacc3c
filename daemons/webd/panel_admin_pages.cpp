// panel_admin_pages.cpp — see panel_admin_pages.h.
#include "panel_admin_pages.h"

#include "records/host_facts.h"

#include "core/address.h"
#include "core/config_schema.h"
#include "core/delivery_log.h"
#include "core/disk_space.h"
#include "core/dkim_keys.h"
#include "core/setting_keys.h"
#include "core/tls.h"

#include <QDateTime>
#include <QUrl>

namespace postern::web::admin {

namespace {

QString enc(const QString& s) {
    return QString::fromLatin1(QUrl::toPercentEncoding(s));
}

QString certificateSection(const PanelContext& ctx) {
    QString t = QStringLiteral("<h2>Certificate</h2>");
    auto cert = certificateInfo(get(*ctx.config, keys::tls::cert));
    if (!cert) return t + QStringLiteral("<p class=\"flash error\">%1</p>").arg(htmlEscape(cert.errorMessage()));
    const qint64 days = QDateTime::currentDateTimeUtc().daysTo(cert->notAfter);
    const bool bad = days < 0;
    const bool soon = !bad && days < 14;
    t += QStringLiteral("<p%1>%2; expires %3 (%4)%5.</p>")
             .arg(bad    ? QStringLiteral(" class=\"flash error\"")
                  : soon ? QStringLiteral(" class=\"flash error\"")
                         : QString(),
                  htmlEscape(cert->dnsNames.join(QStringLiteral(", "))),
                  htmlEscape(cert->notAfter.toString(Qt::ISODate)),
                  bad ? QStringLiteral("EXPIRED %1 days ago").arg(-days) : QStringLiteral("in %1 days").arg(days),
                  cert->selfSigned ? QStringLiteral(", self-signed (posternctl cert acme gets a trusted one)")
                                   : QString());
    return t;
}

QString diskSection(const PanelContext& ctx) {
    const Config& c = *ctx.config;
    const qint64 minFree = get(c, keys::smtp::minFreeSpace);
    QString t = QStringLiteral("<h2>Disk</h2><table><tr><th>Folder</th><th>Used</th><th>Free</th><th>State</th></tr>");
    for (const DiskReport& r : diskReports({c.dataDir(), c.mailDir(), c.queueDir()}, minFree)) {
        if (!r.error.isEmpty()) {
            t += QStringLiteral("<tr><td>%1</td><td colspan=\"3\">%2</td></tr>")
                     .arg(htmlEscape(r.folder), htmlEscape(r.error));
            continue;
        }
        QString state;
        switch (r.level) {
            case DiskLevel::Ok:
                state = QStringLiteral("ok");
                break;
            case DiskLevel::Warning:
                state = QStringLiteral("WARNING: from %1 % used; free space or grow the disk").arg(kDiskErrorPercent);
                break;
            case DiskLevel::Error:
                state =
                    r.belowFloor
                        ? QStringLiteral("ERROR: below smtp.min_free_space (%1): new mail is refused with 452 4.3.1")
                              .arg(Schema::formatSize(minFree))
                        : QStringLiteral("ERROR: free space or grow the disk now");
                break;
        }
        t += QStringLiteral("<tr><td>%1</td><td>%2 %</td><td>%3 of %4</td><td class=\"%5\">%6</td></tr>")
                 .arg(htmlEscape(r.folder))
                 .arg(r.usage.percentUsed())
                 .arg(htmlEscape(humanBytes(r.usage.availableBytes)), htmlEscape(humanBytes(r.usage.totalBytes)),
                      r.level == DiskLevel::Ok ? QStringLiteral("st-ok") : QStringLiteral("st-bad"), htmlEscape(state));
    }
    return t + QStringLiteral(
                   "</table><p class=\"muted\">Warning from %1 % used, error from %2 % (as posternctl status).</p>")
                   .arg(kDiskWarningPercent)
                   .arg(kDiskErrorPercent);
}

QString failuresSection(const PanelContext& ctx) {
    QString t = QStringLiteral("<h2>Recent delivery failures</h2>");
    auto failures = readRecentDeliveryFailures(ctx.config->logDir(), kMaxFailuresShown);
    if (!failures) return t + QStringLiteral("<p>%1</p>").arg(htmlEscape(failures.errorMessage()));
    if (failures->isEmpty()) return t + QStringLiteral("<p>None in the recent log.</p>");
    t += QStringLiteral("<table><tr><th>Time</th><th>Recipient</th><th>Kind</th><th>Reason</th></tr>");
    for (const DeliveryFailure& f : std::as_const(*failures))
        t += QStringLiteral("<tr><td>%1</td><td>%2</td><td>%3</td><td>%4</td></tr>")
                 .arg(htmlEscape(f.time),
                      htmlEscape(f.recipient.isEmpty() ? QStringLiteral("(domain %1)").arg(f.domain) : f.recipient),
                      f.permanent ? QStringLiteral("failed (bounced)") : QStringLiteral("deferred (will retry)"),
                      htmlEscape(f.reason));
    return t + QStringLiteral(
                   "</table><p class=\"muted\">The newest %1 from mail.log; the queue page and posternctl log search "
                   "show more.</p>")
                   .arg(kMaxFailuresShown);
}

QString expected(const records::Record& r) {
    return (r.priority >= 0 ? QString::number(r.priority) + QLatin1Char(' ') : QString()) + r.value;
}

QString dnsSection(const DashboardProbe* p, bool running) {
    QString t = QStringLiteral("<h2>DNS status</h2>");
    if (!p)
        return t + QStringLiteral(
                       "<p>The DNS check is running (it asks the domain's name servers); reload in a few seconds.</p>");
    t += QStringLiteral(
             "<p class=\"muted\">%1 as its authoritative servers answered at %2 UTC%3 (posternctl dns check).</p>")
             .arg(htmlEscape(p->domain.isEmpty() ? QStringLiteral("The primary domain") : p->domain),
                  htmlEscape(QDateTime::fromMSecsSinceEpoch(p->finishedMs, Qt::UTC)
                                 .toString(QStringLiteral("yyyy-MM-dd HH:mm:ss"))),
                  running ? QStringLiteral("; a new check is running") : QString());
    if (!p->dns) return t + QStringLiteral("<p class=\"flash error\">%1</p>").arg(htmlEscape(p->dnsError));
    t += QStringLiteral(
        "<table class=\"dns\"><tr><th>Status</th><th>Name</th><th>Type</th><th class=\"opt\">Level</th><th>Expected / "
        "found / fix</th></tr>");
    for (const records::RecordCheck& c : p->dns->records) {
        const QString status = records::toString(c.status);
        QString detail = QStringLiteral("<code>%1</code>").arg(htmlEscape(expected(c.record)));
        if (c.status != records::RecordCheck::Status::Ok) {
            detail += QStringLiteral("<br>found: <code>%1</code>")
                          .arg(htmlEscape(c.found.isEmpty() ? QStringLiteral("nothing") : c.found));
            if (!c.fix.isEmpty())
                detail += QStringLiteral("<br><strong>fix:</strong> <code>%1</code>").arg(htmlEscape(c.fix));
        }
        t += QStringLiteral(
                 "<tr class=\"dns-%1\"><td class=\"%2\">%3</td><td>%4</td><td>%5</td><td "
                 "class=\"opt\">%6</td><td>%7</td></tr>")
                 .arg(status,
                      c.status == records::RecordCheck::Status::Ok ? QStringLiteral("st-ok") : QStringLiteral("st-bad"),
                      status.toUpper(), htmlEscape(c.record.name), htmlEscape(c.record.type),
                      htmlEscape(c.record.level), detail);
    }
    t += QStringLiteral("</table>");
    for (const QString& n : p->dns->notes) t += QStringLiteral("<p class=\"muted\">%1</p>").arg(htmlEscape(n));
    t += p->dns->requiredOk()
             ? QStringLiteral("<p>All required records are published.</p>")
             : QStringLiteral("<p class=\"flash error\">Some required records are missing or wrong.</p>");
    return t;
}

// One domain's DNS status in a table cell: ok, how many records are missing or wrong, or why
// it could not be checked (yet).
QString dnsSummary(const DomainDns* d) {
    if (!d || d->checkedMs == 0) return QStringLiteral("<span class=\"dns-unchecked\">not checked yet</span>");
    const QString when = QDateTime::fromMSecsSinceEpoch(d->checkedMs, Qt::UTC).toString(QStringLiteral("HH:mm"));
    if (!d->dns)
        return QStringLiteral("<span class=\"st-bad dns-error\">cannot check: %1</span>").arg(htmlEscape(d->error));
    int bad = 0, unknown = 0;
    for (const records::RecordCheck& c : d->dns->records) {
        if (c.status == records::RecordCheck::Status::Unknown)
            ++unknown;
        else if (c.status != records::RecordCheck::Status::Ok)
            ++bad;
    }
    QString t = d->dns->requiredOk()
                    ? QStringLiteral("<span class=\"st-ok dns-summary-ok\">required records ok</span>")
                    : QStringLiteral("<span class=\"st-bad dns-summary-bad\">%1 missing or wrong</span>").arg(bad);
    if (d->dns->requiredOk() && bad > 0) t += QStringLiteral(" (%1 optional missing or wrong)").arg(bad);
    if (unknown > 0) t += QStringLiteral(", %1 not asked").arg(unknown);
    return t + QStringLiteral(" <span class=\"muted\">at %1 UTC</span>").arg(htmlEscape(when));
}

const DomainDns* domainDns(const DashboardProbe* p, const QString& domain) {
    if (!p) return nullptr;
    for (const DomainDns& d : p->domains)
        if (d.domain == domain) return &d;
    return nullptr;
}

// The dashboard's line per hosted domain other than the primary one (whose records are above).
QString otherDomainsSection(const DashboardProbe* p) {
    if (!p || p->domains.size() < 2) return {};
    QString t = QStringLiteral(
        "<h3>Other domains</h3><table class=\"dns-domains\"><tr><th>Domain</th><th>DNS status</th></tr>");
    for (const DomainDns& d : p->domains.mid(1))
        t += QStringLiteral("<tr id=\"dns-%1\"><td><a href=\"/panel/domain?domain=%2\">%1</a></td><td>%3</td></tr>")
                 .arg(htmlEscape(d.domain), enc(d.domain), dnsSummary(&d));
    return t + QStringLiteral(
                   "</table><p class=\"muted\">At most %1 domains are checked per refresh (every %2 s), those checked "
                   "longest ago first.</p>")
                   .arg(kMaxDnsDomainsPerRun)
                   .arg(kProbeCacheMs / 1000);
}

std::optional<QString> localDomain(const Accounts& acc, const QString& domain) {
    auto d = normalizeDomain(domain.left(255));
    if (!d || !acc.isLocalDomain(*d)) return std::nullopt;
    return *d;
}

}  // namespace

QString dashboardSections(const PanelContext& ctx, const DashboardProbe* probe, bool running) {
    if (!ctx.config) return {};
    QString t = certificateSection(ctx) + diskSection(ctx);
    t += QStringLiteral("<h2>Spam filter</h2>");
    if (probe)
        t += QStringLiteral("<p%1>%2</p>")
                 .arg(probe->spamWarning ? QStringLiteral(" class=\"flash error\"") : QString(),
                      htmlEscape(probe->spamLine));
    else
        t += QStringLiteral("<p>Being checked; reload in a few seconds.</p>");
    return t + failuresSection(ctx) + dnsSection(probe, running) + otherDomainsSection(probe);
}

QString domainsPage(const Accounts& acc, const QString& csrfField, const DashboardProbe* probe) {
    QString t =
        QStringLiteral("<table><tr><th>Domain</th><th>Users</th><th>Aliases</th><th>DNS status</th><th></th></tr>");
    for (const QString& d : acc.domains())
        t += QStringLiteral(
                 "<tr id=\"domain-%5\"><td><a href=\"/panel/domain?domain=%1\">%2</a></td><td>%3</td><td>%4</td>"
                 "<td>%6</td><td><a href=\"/panel/domain?domain=%1\">DNS records and DKIM</a></td></tr>")
                 .arg(enc(d), htmlEscape(d))
                 .arg(acc.users(d).size())
                 .arg(acc.aliases(d).size())
                 .arg(htmlEscape(d), dnsSummary(domainDns(probe, d)));
    t += QStringLiteral(
        "<p class=\"muted\">DNS status as the domains' authoritative servers answered (posternctl dns check "
        "--domain D); refreshed in the background, reload to see new results.</p>");
    t += QStringLiteral(
             "</table><h2>Add a domain</h2><form class=\"box\" method=\"post\" action=\"/panel/domains/add\">") +
         csrfField +
         QStringLiteral(
             "<label for=\"domain\">Domain</label><input type=\"text\" id=\"domain\" name=\"domain\" required "
             "autocapitalize=\"none\" spellcheck=\"false\">"
             "<p class=\"muted\">postmaster@ and abuse@ of the new domain go to admin_address; DKIM keys are made at "
             "once. "
             "Then publish the domain's DNS records (its page shows them).</p><button type=\"submit\">Add "
             "domain</button></form>");
    t += QStringLiteral(
             "<h2>Remove a domain</h2><form class=\"box\" method=\"post\" action=\"/panel/domains/remove\">") +
         csrfField + QStringLiteral("<label for=\"rdomain\">Domain</label><select id=\"rdomain\" name=\"domain\">");
    for (const QString& d : acc.domains()) t += QStringLiteral("<option>%1</option>").arg(htmlEscape(d));
    t += QStringLiteral(
        "</select><label><input type=\"checkbox\" name=\"confirm\" value=\"yes\"> Remove it, together with its users "
        "and "
        "aliases (their stored mail stays on disk; mail to the domain is refused from then on)</label>"
        "<button type=\"submit\" class=\"danger\">Remove domain</button></form>");
    return t;
}

std::optional<QString> domainPage(const PanelContext& ctx, const Accounts& acc, const QString& domainIn,
                                  const QString& csrfField) {
    auto domain = localDomain(acc, domainIn);
    if (!domain) return std::nullopt;
    const QString d = htmlEscape(*domain);
    QString t;
    auto facts = records::hostFacts(ctx.config->configDir(), {}, *domain);
    if (!facts) return QStringLiteral("<p class=\"flash error\">%1</p>").arg(htmlEscape(facts.errorMessage()));
    const QList<records::Record> recs = records::buildRecords(*facts);
    t += QStringLiteral(
             "<p>Publish these records at your DNS provider (registrar) for <strong>%1</strong>. Select a value and "
             "copy it; "
             "\"@\" is the domain itself.</p>"
             "<p>Download: <a href=\"/panel/domain/records?domain=%2&amp;format=zone\" download>zone file</a> · "
             "<a href=\"/panel/domain/records?domain=%2&amp;format=csv\" download>CSV</a> · "
             "<a href=\"/panel/domain/records?domain=%2&amp;format=json\" download>JSON</a></p>")
             .arg(d, enc(*domain));
    t += QStringLiteral(
        "<table class=\"sheet\"><tr><th>Host</th><th>Type</th><th>Priority</th><th>Value</th><th "
        "class=\"opt\">TTL</th><th class=\"opt\">Why</th></tr>");
    int i = 0;
    for (const records::Record& r : recs) {
        ++i;
        t += QStringLiteral(
                 "<tr><td><input type=\"text\" readonly aria-label=\"host of record %1\" "
                 "value=\"%2\"></td><td>%3</td><td>%4</td>"
                 "<td><input type=\"text\" readonly aria-label=\"value of record %1\" value=\"%5\"></td><td "
                 "class=\"opt\">%6</td>"
                 "<td class=\"opt\">%7: %8</td></tr>")
                 .arg(i)
                 .arg(htmlEscape(r.name), htmlEscape(r.type), r.priority >= 0 ? QString::number(r.priority) : QString(),
                      htmlEscape(r.value))
                 .arg(r.ttl)
                 .arg(htmlEscape(r.level), htmlEscape(r.why));
    }
    t += QStringLiteral("</table>");
    if (facts->publicV4.isEmpty() && facts->publicV6.isEmpty())
        t += QStringLiteral(
            "<p class=\"muted\">This server's public address is not known: set it with "
            "<code>posternctl config set public_addresses IP</code> (the wizard sets it when it is given).</p>");
    // DKIM keys.
    t += QStringLiteral("<h2>DKIM keys</h2>");
    DkimKeyStore store(ctx.config->configDir());
    auto keys = store.keys(*domain);
    if (!keys) {
        t += QStringLiteral("<p class=\"flash error\">%1</p>").arg(htmlEscape(keys.errorMessage()));
    } else {
        t += QStringLiteral("<table><tr><th>Selector</th><th>Algorithm</th><th>State</th><th>Created</th></tr>");
        for (const DkimKey& k : std::as_const(*keys))
            t += QStringLiteral("<tr><td><code>%1</code></td><td>%2</td><td>%3</td><td>%4</td></tr>")
                     .arg(htmlEscape(k.selector), htmlEscape(k.algorithm),
                          k.active ? QStringLiteral("active (signs new mail)")
                                   : QStringLiteral("retiring (kept so mail it signed still verifies)"),
                          htmlEscape(k.created.toString(Qt::ISODate)));
        t += QStringLiteral("</table>");
    }
    t +=
        QStringLiteral("<form class=\"box\" method=\"post\" action=\"/panel/domain/dkim-rotate\">") + csrfField +
        QStringLiteral(
            "<input type=\"hidden\" name=\"domain\" value=\"%1\">"
            "<p>Rotating makes a new RSA and a new Ed25519 key with new selectors; they sign new mail from now on. "
            "Publish the new <code>SELECTOR._domainkey</code> TXT records shown above right away (until then receivers "
            "cannot verify the new signatures). Keep the old records published for a few days, then remove them and "
            "run "
            "<code>posternctl dkim remove-retired %1</code>.</p>"
            "<button type=\"submit\">Rotate DKIM keys</button></form>")
            .arg(d);
    return t;
}

std::optional<PanelResponse> recordsDownload(const PanelContext& ctx, const Accounts& acc, const QString& domainIn,
                                             const QString& format) {
    auto domain = localDomain(acc, domainIn);
    if (!domain) return std::nullopt;
    PanelResponse r;
    auto facts = records::hostFacts(ctx.config->configDir(), {}, *domain);
    if (!facts) {
        r.code = 500;
        r.contentType = "text/plain; charset=utf-8";
        r.body = facts.errorMessage().toUtf8() + '\n';
        return r;
    }
    const QList<records::Record> recs = records::buildRecords(*facts);
    QByteArray ext;
    if (format == u"zone") {
        r.body = records::renderZone(recs, *domain).toUtf8();
        r.contentType = "text/plain; charset=utf-8";
        ext = "zone";
    } else if (format == u"csv") {
        r.body = records::renderCsv(recs, *domain).toUtf8();
        r.contentType = "text/csv; charset=utf-8";
        ext = "csv";
    } else if (format == u"json") {
        r.body = records::renderJson(recs, *domain);
        r.contentType = "application/json";
        ext = "json";
    } else {
        r.code = 400;
        r.contentType = "text/plain; charset=utf-8";
        r.body = "format must be zone, csv or json\n";
        return r;
    }
    // The name is the normalised domain (A-labels: letters, digits, '-', '.'), safe in the header.
    r.headers.append({"Content-Disposition", "attachment; filename=\"" + domain->toLatin1() + "-dns." + ext + "\""});
    return r;
}

bool post(PanelContext& ctx, const QString& path, const QMap<QString, QString>& f, QObject* life,
          std::function<void(Change)> done) {
    const QString domain = f.value(QStringLiteral("domain")).trimmed();
    AccountBroker* b = ctx.broker;
    // The helper's answer, later; `then` turns it into the Change shown.
    auto call = [b, life, done](const QStringList& req, std::function<Change(const Result<QString>&)> then) {
        if (!b)
            return done(then(Result<QString>::fail(QStringLiteral("changes are not available (no account helper)"))));
        b->call(req, life, [done, then](const Result<QString>& r) { done(then(r)); });
    };
    const QByteArray domainUrl =
        "/panel/domain?domain=" + QUrl::toPercentEncoding(normalizeDomain(domain).valueOr(domain));
    std::weak_ptr<DashboardProbes> probes = ctx.probes;
    if (path == u"/panel/domains/add") {
        call({QStringLiteral("domain.add"), domain}, [domain, domainUrl, probes](const Result<QString>& r) {
            if (r)
                if (auto p = probes.lock()) p->invalidate();
            if (!r) return Change{QStringLiteral("domain.add"), domain, r, "/panel/domains"};
            QString text = *r;  // "domain D added[; roles ...]"
            if (!text.isEmpty()) text[0] = text.at(0).toUpper();
            return Change{QStringLiteral("domain.add"), domain,
                          Result<QString>(text + QStringLiteral(". Publish its DNS records below.")), domainUrl};
        });
        return true;
    }
    if (path == u"/panel/domains/remove") {
        if (f.value(QStringLiteral("confirm")) != u"yes")
            return done(Change{QStringLiteral("domain.del"), domain,
                               Result<QString>::fail(QStringLiteral("Not removed: tick the confirmation box.")),
                               "/panel/domains"}),
                   true;
        call({QStringLiteral("domain.del"), domain, QStringLiteral("force")}, [domain,
                                                                               probes](const Result<QString>& r) {
            if (r)
                if (auto p = probes.lock()) p->invalidate();
            return Change{
                QStringLiteral("domain.del"), domain,
                r ? Result<QString>(
                        QStringLiteral("Domain %1 removed, with its users and aliases; stored mail is kept on disk.")
                            .arg(domain))
                  : r,
                "/panel/domains"};
        });
        return true;
    }
    if (path == u"/panel/domain/dkim-rotate") {
        call({QStringLiteral("dkim.rotate"), domain}, [domain, domainUrl, probes](const Result<QString>& r) {
            if (r)
                if (auto p = probes.lock()) p->invalidate();
            return Change{QStringLiteral("dkim.rotate"), domain,
                          r ? Result<QString>(QStringLiteral("New DKIM keys %1 sign mail of %2 from now on: publish "
                                                             "their TXT records (the table below) now; "
                                                             "the old keys are kept, retiring.")
                                                  .arg(*r, domain))
                            : r,
                          domainUrl};
        });
        return true;
    }
    return false;
}

}  // namespace postern::web::admin
