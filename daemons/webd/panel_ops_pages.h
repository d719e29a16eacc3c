// panel_ops_pages.h — the web panel's operations pages (administrators only):
// the outbound queue, log search and the run-time settings. panel.cpp frames
// the pages (navigation, flash message, security headers), checks the session,
// the administrator flag and the CSRF token before calling anything here, and
// writes the audit line of every change (panel.audit ... action=queue.hold
// target=<id> result=...).
//
// Routes:
//   GET  /panel/queue[?state=S]            messages by state (all, or one of
//                                          incoming/active/deferred/hold/corrupt)
//   GET  /panel/queue/message?id=ID        envelope, attempts, each recipient's
//                                          status and last reply, the header summary
//   GET  /panel/queue/confirm?action=A&id=ID   the confirmation step of A
//   POST /panel/queue/{retry,hold,release,delete}   id, confirm=yes
//   GET  /panel/logs[?q=TERM]              log search (core/log_search.h)
//   GET  /panel/settings                   the run-time-safe settings with the
//                                          schema's help text, type and range
//   POST /panel/settings/set               key, value
// One implementation per operation: the queue operations are
// common/spool/queue_ops.h (as posternctl queue ...), the search is
// core/log_search.h (as posternctl log search), a setting is changed by
// core/config_ops.h setSetting (as posternctl config set), run by webd's
// privileged helper (account_broker.h op config.set).
// Privileges: the queue belongs to system_user, which webd runs as, so the
// queue operations run in webd itself — the same rights posternctl takes for
// them (it drops root to system_user first). Writing postern.conf needs root,
// hence the helper, which accepts only Setting::runtimeSafe keys.
// Blocking: the queue operations are a few small files (bounded reads); the log
// search reads the logs on a worker thread (QThreadPool) and answers through a
// queued call to `life` (dropped when the connection has gone).
// Security: every value shown (envelope fields, log lines, header text, the
// search term, setting values) is HTML-escaped; ids are validated before a path
// is built; the query parameters are cut to their limits before use.
// Limits (named, tested): kPanelQueueRows (200 messages listed; the count of all
// is shown), kPanelLogLines (500 result lines, then "more matched"), the term
// length kMaxLogTermLength (core/log_search.h, 200), kPanelSettingValue (1000
// characters of a submitted value).
#pragma once

#include "panel.h"

#include <QMap>
#include <functional>
#include <optional>

namespace postern::web {

inline constexpr int kPanelQueueRows = 200;
inline constexpr int kPanelLogLines = 500;
inline constexpr int kPanelSettingValue = 1000;

struct OpsPage {
    int code = 200;
    QString title;
    QString content;  // HTML, already escaped
};

struct OpsChange {
    QString action;  // for the audit line, e.g. "queue.hold"
    QString target;
    Result<QString> result;  // the visible result (flash message)
    QByteArray redirect;     // where the browser goes next (303)
};

// A GET below /panel/ that is ours: the page (through `done`, possibly later from the
// event loop; never after `life` is gone); false when the path is not ours.
bool opsGet(const PanelContext& ctx, const QString& path, const QString& query, const QByteArray& csrf, QObject* life,
            std::function<void(OpsPage)> done);

// A POST that is ours: the change is made and `done` called with its outcome (a setting:
// later, when webd's helper has answered; never after `life` is gone); false when the
// path is not ours.
bool opsPost(PanelContext& ctx, const QString& path, const QMap<QString, QString>& form, QObject* life,
             std::function<void(OpsChange)> done);

// The navigation links of these pages, for panel.cpp's header.
QString opsNavLinks();

}  // namespace postern::web
