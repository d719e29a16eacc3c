// panel_ops_pages.cpp — see panel_ops_pages.h.
#include "panel_ops_pages.h"

#include "common/spool/queue_ops.h"

#include "core/config.h"
#include "core/config_schema.h"
#include "core/log_search.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QMetaObject>
#include <QPointer>
#include <QThreadPool>
#include <QUrl>

#include <limits>

namespace postern::web {

namespace {

QString esc(const QString& s) {
    return htmlEscape(s);
}
QString csrfInput(const QByteArray& csrf) {
    return QStringLiteral("<input type=\"hidden\" name=\"csrf\" value=\"%1\">").arg(QString::fromLatin1(csrf));
}
QString when(qint64 t) {
    return t ? QDateTime::fromSecsSinceEpoch(t).toUTC().toString(Qt::ISODate) : QStringLiteral("now");
}
QString idUrl(const QString& path, const QString& id) {
    return path + QStringLiteral("?id=") + QString::fromLatin1(QUrl::toPercentEncoding(id));
}

// ---------------------------------------------------------------- queue

struct QueueAction {
    const char* name;  // the route and the audit action's suffix
    const char* verb;  // the button
    const char* what;  // what happens, said before confirming
    Result<QString> (*run)(const QString&, const QString&);
};

const QList<QueueAction>& queueActions() {
    static const QList<QueueAction> actions{
        {"retry", "Retry now", "The deferred message becomes due now; the queue runner tries it at its next scan.",
         spool::retryMessage},
        {"hold", "Hold", "The message stays in the queue but is not delivered until released.", spool::holdMessage},
        {"release", "Release", "The held message goes back to the deferred queue, due now.", spool::releaseMessage},
        {"delete", "Delete", "The message is removed from the queue for good. No bounce is sent to the sender.",
         spool::deleteMessage},
    };
    return actions;
}

const QueueAction* queueAction(const QString& name) {
    for (const QueueAction& a : queueActions())
        if (name == QLatin1String(a.name)) return &a;
    return nullptr;
}

// Which actions apply to a message in `state` (spool/queue_ops.h decides again when run).
bool applies(const QString& action, spool::QueueState state) {
    using S = spool::QueueState;
    if (action == u"retry") return state == S::Deferred;
    if (action == u"hold") return state == S::Incoming || state == S::Deferred;
    if (action == u"release") return state == S::Hold;
    if (action == u"delete") return state != S::Active;
    return false;
}

QString recipientsCell(const spool::Envelope& e) {
    QString t;
    for (const spool::EnvelopeRecipient& r : e.recipients) {
        t += QStringLiteral("<div>%1 &lt;%2&gt;").arg(esc(spool::toString(r.status)), esc(r.address));
        if (!r.diagnostic.isEmpty()) t += QStringLiteral("<br><span class=\"muted\">%1</span>").arg(esc(r.diagnostic));
        t += QStringLiteral("</div>");
    }
    return t;
}

OpsPage queuePage(const PanelContext& ctx, const QString& query) {
    const QString wanted = queryParameter(query, QStringLiteral("state")).left(16);
    std::optional<spool::QueueState> filter;
    for (const spool::QueueState s : spool::queueStates())
        if (wanted == spool::toString(s)) filter = s;
    const spool::QueueListing all = spool::listMessages(ctx.queueDir, std::numeric_limits<int>::max());
    QMap<spool::QueueState, int> counts;
    for (const spool::QueueEntry& q : all.entries) counts[q.state] += 1;
    QString t = QStringLiteral("<p>Show: <a href=\"/panel/queue\">all (%1)</a>").arg(all.total);
    for (const spool::QueueState s : spool::queueStates())
        t += QStringLiteral(" · <a href=\"/panel/queue?state=%1\">%1 (%2)</a>")
                 .arg(esc(spool::toString(s)))
                 .arg(counts.value(s));
    t += QStringLiteral("</p>");
    for (const QString& e : all.errors) t += QStringLiteral("<p class=\"flash error\">%1</p>").arg(esc(e));
    QString rows;
    int shown = 0, matching = 0;
    for (const spool::QueueEntry& q : all.entries) {
        if (filter && q.state != *filter) continue;
        ++matching;
        if (shown >= kPanelQueueRows) continue;
        ++shown;
        const spool::Envelope& e = q.envelope;
        QString state = esc(spool::toString(q.state));
        if (q.state == spool::QueueState::Deferred)
            state += QStringLiteral("<br><span class=\"muted\">%1 attempt(s), next %2</span>")
                         .arg(e.attempts)
                         .arg(esc(when(e.nextAttempt)));
        rows += QStringLiteral(
                    "<tr><td><a href=\"%1\"><code>%2</code></a></td><td>%3</td><td "
                    "class=\"opt\">%4</td><td>&lt;%5&gt;</td><td>%6</td></tr>")
                    .arg(esc(idUrl(QStringLiteral("/panel/queue/message"), e.id)), esc(e.id), state,
                         esc(when(e.arrival)), esc(e.sender), recipientsCell(e));
    }
    if (matching == 0)
        return {200, QStringLiteral("Queue"),
                t + QStringLiteral("<p id=\"queue-empty\">No messages%1.</p>")
                        .arg(filter ? QStringLiteral(" in this state") : QString())};
    t += QStringLiteral(
             "<table id=\"queue\"><tr><th>Id</th><th>State</th><th class=\"opt\">Arrived "
             "(UTC)</th><th>Sender</th><th>Recipients</th></tr>") +
         rows + QStringLiteral("</table>");
    if (matching > shown)
        t += QStringLiteral("<p class=\"muted\">%1 more not shown (the first %2 are listed).</p>")
                 .arg(matching - shown)
                 .arg(kPanelQueueRows);
    return {200, QStringLiteral("Queue"), t};
}

OpsPage messagePage(const PanelContext& ctx, const QString& query) {
    const QString id = queryParameter(query, QStringLiteral("id")).left(64);
    auto found = spool::findMessage(ctx.queueDir, id);
    if (!found)
        return {404, QStringLiteral("Queue"),
                QStringLiteral("<p class=\"flash error\">%1</p><p><a href=\"/panel/queue\">Back to the queue</a></p>")
                    .arg(esc(found.errorMessage()))};
    const spool::Envelope& e = found->envelope;
    QString t = QStringLiteral("<table id=\"envelope\">");
    auto row = [&t](const QString& k, const QString& v) {
        t += QStringLiteral("<tr><th>%1</th><td>%2</td></tr>").arg(esc(k), esc(v));
    };
    row(QStringLiteral("Id"), e.id);
    row(QStringLiteral("State"), spool::toString(found->state));
    row(QStringLiteral("Arrived (UTC)"), when(e.arrival));
    row(QStringLiteral("Sender"),
        QStringLiteral("<%1>%2").arg(
            e.sender, e.authUser.isEmpty() ? QString() : QStringLiteral(" (authenticated as %1)").arg(e.authUser)));
    row(QStringLiteral("Client"), e.clientAddress + QLatin1Char(' ') + e.clientHelo);
    row(QStringLiteral("Size"), QStringLiteral("%1 bytes, %2%3")
                                    .arg(e.size)
                                    .arg(e.bodyType, e.smtpUtf8 ? QStringLiteral(", SMTPUTF8") : QString()));
    row(QStringLiteral("Attempts"),
        e.attempts
            ? QStringLiteral("%1, first %2, next %3").arg(e.attempts).arg(when(e.firstAttempt), when(e.nextAttempt))
            : QStringLiteral("0"));
    for (const auto& [name, value] : spool::headerSummary(ctx.queueDir, found->state, e.id)) row(name, value);
    t += QStringLiteral(
        "</table><h2>Recipients</h2><table id=\"recipients\"><tr><th>Recipient</th><th>Status</th><th>Last "
        "reply</th></tr>");
    for (const spool::EnvelopeRecipient& r : e.recipients)
        t += QStringLiteral("<tr><td>%1</td><td>%2</td><td>%3</td></tr>")
                 .arg(esc(r.address), esc(spool::toString(r.status)),
                      esc(r.diagnostic +
                          (r.remoteMta.isEmpty() ? QString() : QStringLiteral(" (from %1)").arg(r.remoteMta))));
    t += QStringLiteral("</table><h2>Actions</h2>");
    if (found->state == spool::QueueState::Active)
        t += QStringLiteral("<p>Being delivered right now; reload in a moment to change it.</p>");
    for (const QueueAction& a : queueActions()) {
        if (!applies(QLatin1String(a.name), found->state)) continue;
        t += QStringLiteral(
                 "<form class=\"inline\" method=\"get\" action=\"/panel/queue/confirm\"><input type=\"hidden\" "
                 "name=\"action\" value=\"%1\">"
                 "<input type=\"hidden\" name=\"id\" value=\"%2\"><button type=\"submit\"%3>%4…</button></form> ")
                 .arg(QLatin1String(a.name), esc(e.id),
                      a.name == QLatin1String("delete") ? QStringLiteral(" class=\"danger\"") : QString(),
                      QLatin1String(a.verb));
    }
    return {200, QStringLiteral("Message %1").arg(e.id), t};
}

OpsPage confirmPage(const PanelContext& ctx, const QString& query, const QByteArray& csrf) {
    const QueueAction* a = queueAction(queryParameter(query, QStringLiteral("action")).left(16));
    const QString id = queryParameter(query, QStringLiteral("id")).left(64);
    auto found = spool::findMessage(ctx.queueDir, id);
    if (!a || !found)
        return {404, QStringLiteral("Queue"),
                QStringLiteral("<p class=\"flash error\">%1</p><p><a href=\"/panel/queue\">Back to the queue</a></p>")
                    .arg(esc(!a ? QStringLiteral("No such action.") : found.errorMessage()))};
    const spool::Envelope& e = found->envelope;
    QStringList rcpts;
    for (const spool::EnvelopeRecipient& r : e.recipients) rcpts << r.address;
    const QString danger = a->name == QLatin1String("delete") ? QStringLiteral(" class=\"danger\"") : QString();
    // Concatenated, not chained arg(): a '%1' in a sender must stay text.
    const QString t =
        QStringLiteral("<form class=\"box\" method=\"post\" action=\"/panel/queue/") + QLatin1String(a->name) +
        QStringLiteral("\">") + csrfInput(csrf) + QStringLiteral("<input type=\"hidden\" name=\"id\" value=\"") +
        esc(e.id) + QStringLiteral("\"><p>") + QLatin1String(a->verb) + QStringLiteral(" the message <code>") +
        esc(e.id) + QStringLiteral("</code> from &lt;") + esc(e.sender) + QStringLiteral("&gt; to ") +
        esc(rcpts.join(QStringLiteral(", "))) + QStringLiteral(" (") + esc(spool::toString(found->state)) +
        QStringLiteral(")?</p><p>") + QLatin1String(a->what) +
        QStringLiteral("</p><input type=\"hidden\" name=\"confirm\" value=\"yes\"><button type=\"submit\"") + danger +
        QStringLiteral(">Yes, ") + QString::fromLatin1(a->verb).toLower() + QStringLiteral("</button> <a href=\"") +
        esc(idUrl(QStringLiteral("/panel/queue/message"), e.id)) + QStringLiteral("\">Cancel</a></form>");
    return {200, QStringLiteral("Confirm: %1").arg(QLatin1String(a->verb)), t};
}

// ---------------------------------------------------------------- log search

QString logForm(const QString& term) {
    return QStringLiteral(
               "<form class=\"box\" method=\"get\" action=\"/panel/logs\"><label for=\"q\">Search mail.log for (a "
               "domain, an address, a "
               "queue id; whole sessions and messages are shown)</label><input type=\"text\" id=\"q\" name=\"q\" "
               "maxlength=\"%1\" value=\"%2\">"
               "<button type=\"submit\">Search</button></form>")
        .arg(kMaxLogTermLength)
        .arg(esc(term));
}

OpsPage logResult(const QString& term, const Result<LogSearch>& found) {
    QString t = logForm(term);
    if (!found)
        return {200, QStringLiteral("Log search"),
                t + QStringLiteral("<p class=\"flash error\" role=\"status\">%1</p>").arg(esc(found.errorMessage()))};
    for (const QString& w : found->warnings) t += QStringLiteral("<p class=\"flash error\">%1</p>").arg(esc(w));
    if (found->lines.isEmpty())
        return {200, QStringLiteral("Log search"),
                t + QStringLiteral("<p id=\"log-none\">Nothing mentions “%1”.</p>").arg(esc(term))};
    t += QStringLiteral("<p>%1 line(s).</p><pre id=\"log\">").arg(found->lines.size());
    for (const QString& l : found->lines) t += esc(l) + QLatin1Char('\n');
    t += QStringLiteral("</pre>");
    if (found->truncated)
        t += QStringLiteral(
                 "<p class=\"muted\" id=\"log-truncated\">More lines matched; the first %1 are shown. Search for "
                 "something narrower (a queue id).</p>")
                 .arg(kPanelLogLines);
    return {200, QStringLiteral("Log search"), t};
}

void logPage(const PanelContext& ctx, const QString& query, QObject* life, std::function<void(OpsPage)> done) {
    const QString term = queryParameter(query, QStringLiteral("q"));
    if (term.isEmpty()) return done({200, QStringLiteral("Log search"), logForm({})});
    if (auto st = validateLogTerm(term); !st)
        return done(
            {400, QStringLiteral("Log search"),
             logForm(term.left(kMaxLogTermLength)) +
                 QStringLiteral("<p class=\"flash error\" role=\"status\">%1</p>").arg(esc(st.errorMessage()))});
    const QString logDir = ctx.config ? ctx.config->logDir() : QString();
    QPointer<QObject> guard(life);
    // Reading the logs may take a while: a worker thread; the answer comes back through `life`'s thread.
    QThreadPool::globalInstance()->start([logDir, term, guard, done = std::move(done)]() mutable {
        Result<LogSearch> found = searchLog(logDir, term, kPanelLogLines);
        OpsPage page = logResult(term, found);
        // Back to the main thread through the application object; `guard` is only looked at there.
        QMetaObject::invokeMethod(
            QCoreApplication::instance(),
            [guard, page = std::move(page), done = std::move(done)]() {
                if (guard) done(page);
            },
            Qt::QueuedConnection);
    });
}

// ---------------------------------------------------------------- settings

OpsPage settingsPage(const PanelContext& ctx, const QByteArray& csrf) {
    auto fresh =
        ctx.config ? Config::load(ctx.config->configDir()) : Result<Config>::fail(QStringLiteral("no configuration"));
    const Config* config = fresh ? &*fresh : ctx.config;
    QString t = QStringLiteral(
        "<p>These settings are safe to change while the appliance runs. A change is checked, written to "
        "postern.conf and the daemons are told to reload, as <code>posternctl config set</code> does. "
        "Other settings: <code>posternctl config set KEY VALUE</code>.</p>");
    if (!fresh) t += QStringLiteral("<p class=\"flash error\">%1</p>").arg(esc(fresh.errorMessage()));
    QString section;
    for (const Setting& s : Schema::instance().all()) {
        if (!s.runtimeSafe) continue;
        if (s.section != section) {
            section = s.section;
            t += QStringLiteral("<h2>%1</h2>").arg(esc(section));
        }
        QString type = toString(s.type);
        if (s.type == SettingType::Enum)
            type += QStringLiteral(": ") + s.choices.join(QStringLiteral(", "));
        else if (s.max > s.min)
            type += QStringLiteral(", %1 to %2")
                        .arg(s.type == SettingType::Size ? Schema::formatSize(s.min) : QString::number(s.min),
                             s.type == SettingType::Size ? Schema::formatSize(s.max) : QString::number(s.max));
        if (s.type == SettingType::Duration) type += QStringLiteral(" seconds (30s, 5m, 4h, 2d)");
        const QString id = QString(s.key).replace(QLatin1Char('.'), QLatin1Char('-'));
        t += QStringLiteral(
                 "<form class=\"box\" method=\"post\" action=\"/panel/settings/set\" id=\"setting-%1\">%2<input "
                 "type=\"hidden\" name=\"key\" value=\"%3\">"
                 "<label for=\"v-%1\"><code>%3</code></label><p class=\"muted\">%4 (%5; default %6)</p>"
                 "<input type=\"text\" id=\"v-%1\" name=\"value\" maxlength=\"%7\" value=\"%8\"> <button "
                 "type=\"submit\">Save</button></form>")
                 .arg(id, csrfInput(csrf), esc(s.key), esc(s.doc), esc(type),
                      esc(s.defaultValue.isEmpty() ? QStringLiteral("empty") : s.defaultValue),
                      QString::number(kPanelSettingValue), esc(config ? config->value(s.key) : s.defaultValue));
    }
    return {200, QStringLiteral("Settings"), t};
}

}  // namespace

QString opsNavLinks() {
    return QStringLiteral(
        "<a href=\"/panel/queue\">Queue</a><a href=\"/panel/logs\">Log search</a><a "
        "href=\"/panel/settings\">Settings</a>");
}

bool opsGet(const PanelContext& ctx, const QString& path, const QString& query, const QByteArray& csrf, QObject* life,
            std::function<void(OpsPage)> done) {
    if (path == u"/panel/queue") return done(queuePage(ctx, query)), true;
    if (path == u"/panel/queue/message") return done(messagePage(ctx, query)), true;
    if (path == u"/panel/queue/confirm") return done(confirmPage(ctx, query, csrf)), true;
    if (path == u"/panel/logs") return logPage(ctx, query, life, std::move(done)), true;
    if (path == u"/panel/settings") return done(settingsPage(ctx, csrf)), true;
    return false;
}

bool opsPost(PanelContext& ctx, const QString& path, const QMap<QString, QString>& form, QObject* life,
             std::function<void(OpsChange)> done) {
    if (path.startsWith(u"/panel/queue/")) {
        const QueueAction* a = queueAction(path.mid(13));
        if (!a) return false;
        const QString id = form.value(QStringLiteral("id")).left(64);
        const QString action = QStringLiteral("queue.") + QLatin1String(a->name);
        const QByteArray back = idUrl(QStringLiteral("/panel/queue/message"), id).toLatin1();
        if (form.value(QStringLiteral("confirm")) != u"yes")
            return done({action, id,
                         Result<QString>::fail(QStringLiteral("Nothing changed: the action was not confirmed.")),
                         back}),
                   true;
        Result<QString> r = a->run(ctx.queueDir, id);
        // After a delete the message page is gone: back to the list.
        return done({action, id, r ? Result<QString>(*r + QLatin1Char('.')) : r,
                     r && a->name == QLatin1String("delete") ? QByteArray("/panel/queue") : back}),
               true;
    }
    if (path == u"/panel/settings/set") {
        const QString key = form.value(QStringLiteral("key")).left(100);
        const QString value = form.value(QStringLiteral("value"));
        const QByteArray back =
            "/panel/settings#setting-" +
            QString(key).replace(QLatin1Char('.'), QLatin1Char('-')).toLatin1().toPercentEncoding("-");
        if (value.size() > kPanelSettingValue)
            return done({QStringLiteral("config.set"), key,
                         Result<QString>::fail(
                             QStringLiteral("The value is too long (at most %1 characters).").arg(kPanelSettingValue)),
                         back}),
                   true;
        if (!ctx.broker)
            return done({QStringLiteral("config.set"), key,
                         Result<QString>::fail(QStringLiteral("changes are not available (no helper)")), back}),
                   true;
        const QString target = key + QStringLiteral(" = ") + value.left(100);
        ctx.broker->call({QStringLiteral("config.set"), key, value}, life,
                         [target, back, done = std::move(done)](Result<QString> r) {
                             done({QStringLiteral("config.set"), target, std::move(r), back});
                         });
        return true;
    }
    return false;
}

}  // namespace postern::web
