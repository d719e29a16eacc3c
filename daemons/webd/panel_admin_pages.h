// panel_admin_pages.h — the web panel's administrator pages for the server itself:
// the dashboard's health sections and the Domains pages (panel.h frames and routes them).
//
// Routes (administrators only; panel.cpp dispatches):
//   GET  /panel/                      dashboard: panel.cpp's services and queue, then
//                                     dashboardSections(): certificate and expiry, disk of
//                                     the data/mail/queue file systems (80 % warning, 95 %
//                                     error, smtp.min_free_space: core/disk_space.h, as
//                                     `posternctl status`), spam filter health and the DNS
//                                     status (dashboard_probes.h, off the event loop: the
//                                     primary domain's records, one line per other domain), the
//                                     recent delivery failures (core/delivery_log.h)
//   GET  /panel/domains               list with each domain's DNS status (the last result of
//                                     dashboard_probes.h, never waited for; a stale one starts
//                                     a background run), add form, remove form per domain
//   GET  /panel/domain?domain=D       D's registrar sheet (records::buildRecords of
//                                     records::hostFacts, as `posternctl dns records
//                                     --domain D`): every value in a read-only field,
//                                     downloads, DKIM keys and rotation
//   GET  /panel/domain/records?domain=D&format=zone|csv|json
//                                     the sheet as a file (the same renderers as posternctl)
//   POST /panel/domains/{add,remove}, /panel/domain/dkim-rotate
//                                     through the AccountBroker: domain.add, domain.del,
//                                     dkim.rotate (core: accountops::addDomain/removeDomain,
//                                     DkimKeyStore::rotate — posternctl's functions)
// Interface: the functions return page content (HTML, every value escaped with
// htmlEscape) or, for POSTs, the result to show and where to go next (asynchronously:
// AccountBroker::call).
// Security: `domain` from the query is normalised (normalizeDomain) and must be a local
// domain before anything is read for it; downloads carry Content-Disposition attachment and
// a fixed file name built from the normalised domain. No script: values are in read-only
// inputs the user selects and copies (CSP script-src 'none' stays).
// Limits: kMaxFailuresShown (10) delivery failures, from the last kDeliveryLogTailBytes of
// mail.log.
#pragma once

#include "dashboard_probes.h"
#include "panel.h"

#include <optional>

namespace postern::web::admin {

inline constexpr int kMaxFailuresShown = 10;

// Appended to the panel's stylesheet (/panel/style.css).
inline constexpr char kAdminCss[] =
    ".st-ok{color:#1b5e20;font-weight:600}.st-bad{color:#a40000;font-weight:600}"
    "table.sheet input{width:100%;min-width:8em;font-family:monospace;font-size:.9em;padding:.25em}"
    "table.dns code{font-size:.85em}table.dns td:not(:last-child),table.sheet td:nth-child(2),table.sheet "
    "td:nth-child(3),"
    "table.sheet td:nth-child(5){word-break:normal;white-space:nowrap}table.sheet "
    "td:last-child{word-break:normal;font-size:.9em}"
    "table.sheet td:first-child{width:22%}table.sheet td:nth-child(4){width:42%}"
    "select{padding:.4em;font-size:1em}";

QString dashboardSections(const PanelContext& ctx, const DashboardProbe* probe, bool running);
// probe: the latest DNS status (DashboardProbes::latest(), null: none yet), a column per domain.
QString domainsPage(const Accounts& acc, const QString& csrfField, const DashboardProbe* probe);
// nullopt: not a local domain (404).
std::optional<QString> domainPage(const PanelContext& ctx, const Accounts& acc, const QString& domain,
                                  const QString& csrfField);
std::optional<PanelResponse> recordsDownload(const PanelContext& ctx, const Accounts& acc, const QString& domain,
                                             const QString& format);

struct Change {
    QString action;
    QString target;
    Result<QString> result = QString();
    QByteArray to;
};
// False: not one of the paths above. Otherwise `done` gets the result later, from the
// event loop, when webd's helper has answered (never after `life` is gone).
bool post(PanelContext& ctx, const QString& path, const QMap<QString, QString>& form, QObject* life,
          std::function<void(Change)> done);

}  // namespace postern::web::admin
