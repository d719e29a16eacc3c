// panel.cpp — see panel.h.
#include "panel.h"
#include "panel_ops_pages.h"

#include "core/two_factor.h"

#include "panel_admin_pages.h"
#include "panel_user_pages.h"
#include "web_content.h"

#include "common/spool/queue.h"
#include "common/store/maildir_delivery.h"

#include "core/address.h"
#include "core/config_schema.h"
#include "core/log.h"
#include "core/paths.h"
#include "core/setting_keys.h"

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QHash>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QPointer>
#include <QUrl>

namespace postern::web {

namespace {

const char kCss[] =
    "*{box-sizing:border-box}body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#f6f6f4;line-"
    "height:1.4}"
    "header{background:#23395b;color:#fff;padding:.6em 1em;display:flex;flex-wrap:wrap;gap:.8em;align-items:center}"
    "header a{color:#fff}header .who{margin-left:auto;font-size:.9em}main{max-width:60em;margin:0 auto;padding:1em}"
    "h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}table{border-collapse:collapse;width:100%;background:#fff}"
    "th,td{text-align:left;padding:.35em .5em;border-bottom:1px solid #ddd;vertical-align:top;word-break:break-all}"
    "form.box{background:#fff;padding:1em;border:1px solid #ddd;margin:.8em 0}label{display:block;margin:.5em 0 "
    ".2em;font-weight:600}"
    "input[type=text],input[type=email],input[type=password]{width:100%;max-width:28em;padding:.45em;font-size:1em}"
    "button{padding:.45em "
    "1em;font-size:1em;margin-top:.6em;cursor:pointer}button.danger{background:#a40000;color:#fff;border:0}"
    "form.inline{display:inline}.flash{padding:.7em;border:1px solid #2e7d32;background:#e8f5e9;margin:.8em 0}"
    ".flash.error{border-color:#a40000;background:#fdecea}.muted{color:#555;font-size:.9em}code{word-break:break-all}"
    ".qr svg{max-width:100%;height:auto;border:1px solid #ddd}textarea{width:100%;max-width:36em;font-size:1em}"
    "input[type=date]{font-size:1em;padding:.3em}pre{background:#fff;border:1px solid "
    "#ddd;padding:.6em;white-space:pre-wrap}"
    "@media(max-width:40em){th.opt,td.opt{display:none}}";

qint64 nowMs(const PanelContext& ctx) {
    return ctx.clock ? ctx.clock() : QDateTime::currentMSecsSinceEpoch();
}

void audit(const ConnectionInfo& conn, const QString& user, const QString& action, const QString& target,
           const QString& result) {
    log::info(u"panel.audit", log::Fields()
                                  .add("user", user.isEmpty() ? QStringLiteral("-") : user)
                                  .add("action", action)
                                  .add("target", target.isEmpty() ? QStringLiteral("-") : target.left(200))
                                  .add("remote", conn.peerAddress.toString())
                                  .add("result", result.left(300)));
}

PanelResponse redirect(const QByteArray& location, QList<QPair<QByteArray, QByteArray>> extra = {}) {
    PanelResponse r;
    r.code = 303;
    r.contentType = "text/plain; charset=utf-8";
    r.body = "see " + location + "\n";
    r.headers = std::move(extra);
    r.headers.append({"Location", location});
    return r;
}

QString formatSize(qint64 bytes) {
    return bytes <= 0 ? QStringLiteral("unlimited") : Schema::formatSize(bytes);
}

// "12.3 MiB of 1G" from the Maildir++ maildirsize bookkeeping (the numbers delivery enforces).
QString quotaText(const PanelContext& ctx, const UserRecord& u) {
    if (ctx.mailDir.isEmpty()) return formatSize(u.quotaBytes);
    auto used = store::MaildirQuota::usage(maildirRoot(ctx.mailDir, u.address), u.quotaBytes);
    const QString usedText = used ? QStringLiteral("%1 MiB").arg(double(used->first) / (1024.0 * 1024.0), 0, 'f', 1)
                                  : QStringLiteral("0.0 MiB");  // no Maildir yet: nothing delivered
    return QStringLiteral("%1 of %2").arg(usedText, formatSize(u.quotaBytes));
}

// The page frame: header with navigation for the role, the flash message, the content.
QByteArray page(const QString& title, const PanelSession* s, bool admin, const QString& content,
                const QString& flash = {}, bool flashError = false) {
    QString h =
        QStringLiteral(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>%1 · Postern</title><link rel=\"stylesheet\" href=\"/panel/style.css\"></head><body><header>"
            "<strong>Postern</strong>")
            .arg(htmlEscape(title));
    if (s) {
        if (admin)
            h += QStringLiteral(
                     "<a href=\"/panel/\">Dashboard</a><a href=\"/panel/users\">Users</a><a "
                     "href=\"/panel/aliases\">Aliases</a><a href=\"/panel/domains\">Domains</a>") +
                 opsNavLinks();
        h += QStringLiteral(
                 "<a href=\"/panel/account\">My account</a><a href=\"/panel/security\">Security</a>"
                 "<a href=\"/panel/filters\">Forwarding</a><span class=\"who\">%1 "
                 "<form class=\"inline\" method=\"post\" action=\"/panel/logout\"><input type=\"hidden\" name=\"csrf\" "
                 "value=\"%2\">"
                 "<button type=\"submit\">Log out</button></form></span>")
                 .arg(htmlEscape(s->user), QString::fromLatin1(s->csrf));
    }
    h += QStringLiteral("</header><main><h1>%1</h1>").arg(htmlEscape(title));
    if (!flash.isEmpty())
        h += QStringLiteral("<p class=\"flash%1\" role=\"status\">%2</p>")
                 .arg(flashError ? QStringLiteral(" error") : QString(), htmlEscape(flash));
    h += content + QStringLiteral("</main></body></html>\n");
    return h.toUtf8();
}

QString csrfField(const PanelSession& s) {
    return QStringLiteral("<input type=\"hidden\" name=\"csrf\" value=\"%1\">").arg(QString::fromLatin1(s.csrf));
}

PanelResponse html(int code, QByteArray body, QList<QPair<QByteArray, QByteArray>> extra = {}) {
    PanelResponse r;
    r.code = code;
    r.body = std::move(body);
    r.headers = std::move(extra);
    return r;
}

PanelResponse loginPage(int code, const QString& message, const QString& address = {}) {
    const QByteArray token = PanelSessions::randomToken();
    const QString form =
        QStringLiteral(
            "<form class=\"box\" method=\"post\" action=\"/panel/login\"><input type=\"hidden\" name=\"csrf\" "
            "value=\"%1\">"
            "<label for=\"address\">Mail address</label><input type=\"email\" id=\"address\" name=\"address\" "
            "autocomplete=\"username\" required value=\"%2\">"
            "<label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" "
            "autocomplete=\"current-password\" required>"
            "<button type=\"submit\">Log in</button></form>")
            .arg(QString::fromLatin1(token), htmlEscape(address));
    return html(code, page(QStringLiteral("Log in"), nullptr, false, form, message, !message.isEmpty()),
                {{"Set-Cookie", PanelSessions::setCookie(kLoginCookie, token, 600)}});
}

// ---------------------------------------------------------------- pages

QString servicesTable(const PanelContext& ctx) {
    QFile f(ctx.runDir + QStringLiteral("/postern-appliance.status"));
    if (!f.open(QIODevice::ReadOnly))
        return QStringLiteral("<p>The supervisor has not reported (postern-appliance not running?).</p>");
    const QJsonObject st = QJsonDocument::fromJson(f.read(1 << 20)).object();
    QString t =
        QStringLiteral(
            "<p class=\"muted\">As reported by the supervisor at %1.</p><table><tr><th>Service</th><th>State</th>"
            "<th class=\"opt\">Listeners</th></tr>")
            .arg(htmlEscape(st.value(QStringLiteral("updated")).toString()));
    for (const QJsonValue& v : st.value(QStringLiteral("services")).toArray()) {
        const QJsonObject s = v.toObject();
        QStringList listeners;
        const QJsonObject l = s.value(QStringLiteral("listeners")).toObject();
        for (auto it = l.begin(); it != l.end(); ++it) listeners << it.key() + QLatin1Char(' ') + it.value().toString();
        t += QStringLiteral("<tr><td>%1</td><td>%2</td><td class=\"opt\">%3</td></tr>")
                 .arg(htmlEscape(s.value(QStringLiteral("name")).toString()),
                      htmlEscape(s.value(QStringLiteral("state")).toString()),
                      htmlEscape(listeners.join(QStringLiteral(", "))));
    }
    return t + QStringLiteral("</table>");
}

QString dashboard(const PanelContext& ctx) {
    QString q = QStringLiteral("<h2>Outbound queue</h2><table><tr><th>State</th><th>Messages</th></tr>");
    for (const spool::QueueState state : spool::queueStates()) {
        const int n =
            int(QDir(spool::stateDir(ctx.queueDir, state)).entryList({QStringLiteral("*.env")}, QDir::Files).size());
        q += QStringLiteral("<tr><td>%1</td><td>%2</td></tr>").arg(htmlEscape(spool::toString(state))).arg(n);
    }
    q += QStringLiteral("</table>");
    return QStringLiteral("<h2>Services</h2>") + servicesTable(ctx) + q;
}

QString usersPage(const PanelContext& ctx, const Accounts& acc, const PanelSession& s) {
    QString t =
        QStringLiteral("<table><tr><th>Address</th><th class=\"opt\">Quota used</th><th>Role</th><th>State</th></tr>");
    for (const UserRecord& u : acc.users()) {
        t += QStringLiteral(
                 "<tr><td><a href=\"/panel/user?address=%1\">%2</a></td><td class=\"opt\">%3</td><td>%4</td><td>%5</td>"
                 "</tr>")
                 .arg(QString::fromLatin1(QUrl::toPercentEncoding(u.address)), htmlEscape(u.address),
                      htmlEscape(quotaText(ctx, u)), u.admin ? QStringLiteral("administrator") : QStringLiteral("user"),
                      u.disabled ? QStringLiteral("<strong>disabled</strong>") : QStringLiteral("enabled"));
    }
    t +=
        QStringLiteral("</table><h2>Add a user</h2><form class=\"box\" method=\"post\" action=\"/panel/users/add\">") +
        csrfField(s) +
        QStringLiteral(
            "<label for=\"address\">Mail address</label><input type=\"email\" id=\"address\" name=\"address\" required>"
            "<label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" "
            "autocomplete=\"new-password\" required>"
            "<label for=\"quota\">Quota (e.g. 2G; empty or 0: unlimited)</label><input type=\"text\" id=\"quota\" "
            "name=\"quota\">"
            "<button type=\"submit\">Add user</button></form>");
    return t;
}

QString userPage(const PanelContext& ctx, const Accounts& acc, const UserRecord& u, const PanelSession& s) {
    const QString a = htmlEscape(u.address);
    const QString hidden =
        csrfField(s) + QStringLiteral("<input type=\"hidden\" name=\"address\" value=\"%1\">").arg(a);
    QStringList aliasesOf;
    for (const auto& [src, targets] : acc.aliases())
        if (targets.contains(u.address)) aliasesOf << src;
    QString t =
        QStringLiteral("<p>Quota: %1. Role: %2. State: %4.%3</p>")
            .arg(htmlEscape(quotaText(ctx, u)), u.admin ? QStringLiteral("administrator") : QStringLiteral("user"),
                 aliasesOf.isEmpty() ? QString()
                                     : QStringLiteral(" Aliases delivering here: ") +
                                           htmlEscape(aliasesOf.join(QStringLiteral(", "))) + QLatin1Char('.'),
                 u.disabled ? QStringLiteral("<strong>disabled</strong>") : QStringLiteral("enabled"));
    t +=
        QStringLiteral("<h2>Reset password</h2><form class=\"box\" method=\"post\" action=\"/panel/users/password\">") +
        hidden +
        QStringLiteral(
            "<label for=\"password\">New password</label><input type=\"password\" id=\"password\" name=\"password\" "
            "autocomplete=\"new-password\" required><button type=\"submit\">Set password</button></form>");
    t += QStringLiteral("<h2>Quota</h2><form class=\"box\" method=\"post\" action=\"/panel/users/quota\">") + hidden +
         QStringLiteral(
             "<label for=\"quota\">Quota (e.g. 2G; 0: unlimited)</label><input type=\"text\" id=\"quota\" "
             "name=\"quota\" value=\"%1\">"
             "<button type=\"submit\">Set quota</button></form>")
             .arg(u.quotaBytes > 0 ? htmlEscape(Schema::formatSize(u.quotaBytes)) : QStringLiteral("0"));
    t += QStringLiteral("<h2>Administrator</h2><form class=\"box\" method=\"post\" action=\"/panel/users/admin\">") +
         hidden +
         QStringLiteral("<input type=\"hidden\" name=\"admin\" value=\"%1\"><button type=\"submit\">%2</button></form>")
             .arg(u.admin ? QStringLiteral("off") : QStringLiteral("on"),
                  u.admin ? QStringLiteral("Remove administrator rights") : QStringLiteral("Make administrator"));
    // Disable / enable (accountops::setDisabled through the account helper).
    if (u.disabled)
        t += QStringLiteral("<h2>Enable</h2><form class=\"box\" method=\"post\" action=\"/panel/users/enable\">") +
             hidden +
             QStringLiteral(
                 "<p>%1 is disabled. Enabling it lets it log in again with its password and app passwords.</p>"
                 "<button type=\"submit\">Enable user</button></form>")
                 .arg(a);
    else
        t += QStringLiteral("<h2>Disable</h2><form class=\"box\" method=\"post\" action=\"/panel/users/disable\">") +
             hidden +
             QStringLiteral(
                 "<p>Disabling %1 stops every login (mail programs, app passwords, this panel) and closes its open "
                 "sessions. Mail to it is still accepted and delivered, and nothing is deleted: enable it again "
                 "at any time.</p><button type=\"submit\" class=\"danger\">Disable user</button></form>")
                 .arg(a);
    t += QStringLiteral("<h2>Delete</h2><form class=\"box\" method=\"post\" action=\"/panel/users/delete\">") + hidden +
         QStringLiteral(
             "<p>Deleting %1 removes the account: it can no longer log in, and new mail to it is refused (550 5.1.1) "
             "unless an alias takes it. It is also removed from the targets of aliases; an alias that pointed only to "
             "it "
             "blocks the deletion (change the alias first). <strong>The mail already stored is kept on disk</strong>, "
             "in the mail folder; delete it by hand when no longer needed.</p>"
             "<label><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> Yes, delete %1</label>"
             "<button type=\"submit\" class=\"danger\">Delete user</button></form>")
             .arg(a);
    return t;
}

QString aliasesPage(const PanelContext& ctx, const Accounts& acc, const PanelSession& s, const QString& resolveQuery) {
    QString t = QStringLiteral("<table><tr><th>Source</th><th>Targets</th><th></th></tr>");
    for (const auto& [src, targets] : acc.aliases()) {
        t += QStringLiteral(
                 "<tr><td>%1</td><td>%2</td><td><form class=\"inline\" method=\"post\" "
                 "action=\"/panel/aliases/remove\">%3"
                 "<input type=\"hidden\" name=\"source\" value=\"%1\"><button "
                 "type=\"submit\">Remove</button></form></td></tr>")
                 .arg(htmlEscape(src), htmlEscape(targets.join(QStringLiteral(", "))), csrfField(s));
    }
    t += QStringLiteral(
             "</table><h2>Add an alias</h2><form class=\"box\" method=\"post\" action=\"/panel/aliases/add\">") +
         csrfField(s) +
         QStringLiteral(
             "<label for=\"source\">Address (or @domain for a catch-all)</label><input type=\"text\" id=\"source\" "
             "name=\"source\" required>"
             "<label for=\"targets\">Deliver to (addresses, separated by commas)</label><input type=\"text\" "
             "id=\"targets\" name=\"targets\" required>"
             "<button type=\"submit\">Add alias</button></form>");
    t += QStringLiteral(
             "<h2>Where would this address go?</h2><form class=\"box\" method=\"get\" action=\"/panel/aliases\">"
             "<label for=\"resolve\">Address</label><input type=\"text\" id=\"resolve\" name=\"resolve\" value=\"%1\">"
             "<button type=\"submit\">Look up</button></form>")
             .arg(htmlEscape(resolveQuery));
    if (!resolveQuery.isEmpty()) {
        const Resolution r = acc.resolve(resolveQuery, get(*ctx.config, keys::general::recipientDelimiter));
        QString answer;
        switch (r.status) {
            case Resolution::Status::Ok:
                for (const QString& m : r.mailboxes) answer += QStringLiteral("<li>mailbox %1</li>").arg(htmlEscape(m));
                for (const QString& f : r.forwards)
                    answer += QStringLiteral("<li>forwarded to %1</li>").arg(htmlEscape(f));
                answer = QStringLiteral("<ul id=\"resolution\">") + answer + QStringLiteral("</ul>");
                break;
            case Resolution::Status::NotLocal:
                answer = QStringLiteral("<p id=\"resolution\">Not a local domain: sent out to the Internet.</p>");
                break;
            case Resolution::Status::Unknown:
                answer = QStringLiteral("<p id=\"resolution\">No such user or alias: refused (550 5.1.1).</p>");
                break;
            default:
                answer = QStringLiteral("<p id=\"resolution\">Problem: %1</p>").arg(htmlEscape(r.detail));
                break;
        }
        t += answer;
    }
    return t;
}

QString accountPage(const PanelContext& ctx, const Accounts& acc, const PanelSession& s) {
    const UserRecord* u = acc.user(s.user);
    QString t = QStringLiteral("<p>Address: <strong>%1</strong>. Quota: %2.</p>")
                    .arg(htmlEscape(s.user), htmlEscape(u ? quotaText(ctx, *u) : formatSize(0)));
    t += QStringLiteral(
             "<h2>Change password</h2><form class=\"box\" method=\"post\" action=\"/panel/account/password\">") +
         csrfField(s) +
         QStringLiteral(
             "<label for=\"current\">Current password</label><input type=\"password\" id=\"current\" name=\"current\" "
             "autocomplete=\"current-password\" required>"
             "<label for=\"password\">New password</label><input type=\"password\" id=\"password\" name=\"password\" "
             "autocomplete=\"new-password\" required>"
             "<label for=\"repeat\">New password again</label><input type=\"password\" id=\"repeat\" name=\"repeat\" "
             "autocomplete=\"new-password\" required><button type=\"submit\">Change password</button></form>");
    const Site site = siteFrom(*ctx.config, acc);
    t += QStringLiteral(
        "<h2>Mail client settings</h2><table><tr><th>Protocol</th><th>Server</th><th>Port</th><th>Security</th></tr>");
    for (const MailService& m : site.services)
        t += QStringLiteral("<tr><td>%1</td><td>%2</td><td>%3</td><td>%4</td></tr>")
                 .arg(htmlEscape(m.protocol.toUpper()), htmlEscape(site.hostname))
                 .arg(m.port)
                 .arg(m.socketType == u"SSL" ? QStringLiteral("SSL/TLS") : QStringLiteral("STARTTLS"));
    t +=
        QStringLiteral(
            "</table><p>User name: <code>%1</code>; password: your password. Thunderbird and iOS/macOS Mail find these "
            "settings by themselves from the address.</p>")
            .arg(htmlEscape(s.user));
    return t;
}

// ---------------------------------------------------------------- handlers

struct Call {
    PanelContext& ctx;
    const HttpRequest& r;
    const ConnectionInfo& conn;
    PanelSession* session = nullptr;
    QByteArray sessionId;
    bool admin = false;
    std::shared_ptr<const Accounts> acc;
    QObject* life = nullptr;
};

PanelResponse show(Call& c, const QString& title, const QString& content) {
    PanelSession& s = *c.session;
    const QString flash = s.flash;
    const bool error = s.flashError;
    s.flash.clear();
    return html(200, page(title, c.session, c.admin, content, flash, error));
}

// webd's account helper could not take or answer the request (account_broker.h): not a
// refusal of the change but a server condition, shown as its own page (503 with
// Retry-After when the queue is full, 504 after a timeout, 502 without a helper).
std::optional<PanelResponse> brokerTrouble(const Result<QString>& result, const PanelSession* s, bool admin) {
    if (result) return std::nullopt;
    const int code = result.error().code;
    QString text;
    QList<QPair<QByteArray, QByteArray>> extra;
    if (code == kBrokerBusy) {
        text = QStringLiteral(
            "<p id=\"busy\">The server is busy with other changes: nothing was changed. Please go back and try "
            "again in a moment.</p>");
        extra.append(qMakePair(QByteArray("Retry-After"), QByteArray("5")));
    } else if (code == kBrokerTimeout) {
        text = QStringLiteral(
            "<p id=\"timeout\">The change was not confirmed in time: it may or may not have been made. Check the "
            "page before trying again. Further changes need postern-webd restarted (the supervisor does it).</p>");
    } else if (code == kBrokerGone) {
        text = QStringLiteral(
            "<p id=\"unavailable\">Changes are not available right now (postern-webd's account helper is not "
            "running); restart postern-webd.</p>");
    } else {
        return std::nullopt;
    }
    return html(code,
                page(code == kBrokerBusy ? QStringLiteral("Busy") : QStringLiteral("Not available"), s, admin,
                     text + QStringLiteral("<p class=\"muted\">%1</p>").arg(htmlEscape(result.errorMessage()))),
                extra);
}

// After a change: the result goes into the session and the browser is sent to `to` (303).
PanelResponse done(Call& c, const QString& action, const QString& target, const Result<QString>& result,
                   const QByteArray& to) {
    audit(c.conn, c.session->user, action, target,
          result ? QStringLiteral("ok") : QStringLiteral("error: ") + result.errorMessage());
    if (auto trouble = brokerTrouble(result, c.session, c.admin)) return *trouble;
    c.session->flash = result ? *result : result.errorMessage();
    c.session->flashError = !result;
    return redirect(to);
}

// The operations pages (panel_ops_pages.h) answer through these, possibly later: the session
// is looked up again by its id.
PanelResponse opsPage(PanelContext& ctx, const QByteArray& sessionId, OpsPage p) {
    PanelSession* s = ctx.sessions.find(sessionId, nowMs(ctx));
    if (!s) return redirect("/panel/login");
    const QString flash = s->flash;
    const bool error = s->flashError;
    s->flash.clear();
    return html(p.code, page(p.title, s, true, p.content, flash, error));
}

PanelResponse opsDone(PanelContext& ctx, const QByteArray& sessionId, const ConnectionInfo& conn, OpsChange ch) {
    PanelSession* s = ctx.sessions.find(sessionId, nowMs(ctx));
    audit(conn, s ? s->user : QString(), ch.action, ch.target,
          ch.result ? QStringLiteral("ok") : QStringLiteral("error: ") + ch.result.errorMessage());
    if (!s) return redirect("/panel/login");
    if (auto trouble = brokerTrouble(ch.result, s, true)) return *trouble;
    s->flash = ch.result ? *ch.result : ch.result.errorMessage();
    s->flashError = !ch.result;
    return redirect(ch.redirect);
}

Result<qint64> parseQuota(const QString& text) {
    if (text.trimmed().isEmpty() || text.trimmed() == u"0") return qint64(0);
    return Schema::parseSize(text.trimmed());
}

QByteArray userUrl(const QString& address) {
    return "/panel/user?address=" + QUrl::toPercentEncoding(address);
}

// Asks the helper (asynchronously, account_broker.h); the answer becomes the audit line and
// the flash message. `map` turns the helper's answer into what the page says; `after` runs
// on success (sessions) and may name another page to go to.
void ask(Call& c, QObject* life, const PanelReply& reply, const QStringList& request, const QString& action,
         const QString& target, const QByteArray& to, std::function<Result<QString>(const Result<QString>&)> map,
         std::function<QByteArray()> after = {}) {
    PanelContext& ctx = c.ctx;
    ctx.broker->call(request, life,
                     [&ctx, id = c.sessionId, conn = c.conn, reply, action, target, to, map, after](Result<QString> r) {
                         const Result<QString> shown = map(r);
                         QByteArray next = to;
                         if (shown && after) {
                             const QByteArray other = after();
                             if (!other.isEmpty()) next = other;
                         }
                         reply(opsDone(ctx, id, conn, OpsChange{action, target, shown, next}));
                     });
}

// The account changes of the admin pages (POST /panel/users/..., /panel/aliases/...), each
// asking the helper through ask(); `f` is the form.
using AdminAction = void (*)(Call& c, const QMap<QString, QString>& f, QObject* life, const PanelReply& reply);

QString formAddress(const QMap<QString, QString>& f) {
    return f.value(QStringLiteral("address")).trimmed();
}

void addUser(Call& c, const QMap<QString, QString>& f, QObject* life, const PanelReply& reply) {
    const QString address = formAddress(f);
    auto quota = parseQuota(f.value(QStringLiteral("quota")));
    if (!quota)
        return reply(
            done(c, QStringLiteral("user.add"), address, Result<QString>::fail(quota.errorMessage()), "/panel/users"));
    return ask(c, life, reply,
               {QStringLiteral("user.add"), address, f.value(QStringLiteral("password")), QString::number(*quota)},
               QStringLiteral("user.add"), address, "/panel/users", [address](const Result<QString>& r) {
                   return r ? Result<QString>(QStringLiteral("User %1 %2.").arg(address, *r)) : r;
               });
}

void setUserPassword(Call& c, const QMap<QString, QString>& f, QObject* life, const PanelReply& reply) {
    PanelContext& ctx = c.ctx;
    const QString address = formAddress(f);
    const QString me = c.session->user;
    return ask(
        c, life, reply, {QStringLiteral("user.passwd"), address, f.value(QStringLiteral("password"))},
        QStringLiteral("user.passwd"), address, userUrl(address),
        [address](const Result<QString>& r) {
            return r ? Result<QString>(QStringLiteral("Password of %1 changed.").arg(address)) : r;
        },
        [&ctx, address, me]() -> QByteArray {
            ctx.sessions.removeUser(normalizeAddress(address).valueOr(address));  // other sessions of that user end
            return normalizeAddress(address).valueOr(QString()) == me ? QByteArray("/panel/login")
                                                                      : QByteArray();  // ours went with them
        });
}

void setUserQuota(Call& c, const QMap<QString, QString>& f, QObject* life, const PanelReply& reply) {
    const QString address = formAddress(f);
    auto quota = parseQuota(f.value(QStringLiteral("quota")));
    if (!quota)
        return reply(done(c, QStringLiteral("user.quota"), address, Result<QString>::fail(quota.errorMessage()),
                          userUrl(address)));
    const qint64 q = *quota;
    return ask(c, life, reply, {QStringLiteral("user.quota"), address, QString::number(q)},
               QStringLiteral("user.quota"), address, userUrl(address), [address, q](const Result<QString>& r) {
                   return r ? Result<QString>(QStringLiteral("Quota of %1 is %2.").arg(address, formatSize(q))) : r;
               });
}

void setUserAdmin(Call& c, const QMap<QString, QString>& f, QObject* life, const PanelReply& reply) {
    const QString address = formAddress(f);
    const QString on = f.value(QStringLiteral("admin"));
    if (normalizeAddress(address).valueOr(QString()) == c.session->user && on == u"off")
        return reply(done(c, QStringLiteral("user.admin"), address,
                          Result<QString>::fail(QStringLiteral(
                              "You cannot remove your own administrator rights here (posternctl user admin can).")),
                          userUrl(address)));
    return ask(c, life, reply, {QStringLiteral("user.admin"), address, on}, QStringLiteral("user.admin ") + on, address,
               userUrl(address), [address, on](const Result<QString>& r) {
                   return r ? Result<QString>(QStringLiteral("%1 is %2 an administrator.")
                                                  .arg(address, on == u"on" ? QString() : QStringLiteral("no longer")))
                            : r;
               });
}

void setUserEnabled(Call& c, const QMap<QString, QString>& f, QObject* life, const PanelReply& reply, bool disable) {
    PanelContext& ctx = c.ctx;
    const QString address = formAddress(f);
    // The core refuses our own account and the last enabled administrator.
    const QStringList request = disable ? QStringList{QStringLiteral("user.disable"), address, c.session->user}
                                        : QStringList{QStringLiteral("user.enable"), address};
    return ask(
        c, life, reply, request, request.first(), address, userUrl(address),
        [address, disable](const Result<QString>& r) {
            return r ? Result<QString>(
                           disable ? QStringLiteral("%1 is disabled; mail to it is still delivered.").arg(address)
                                   : QStringLiteral("%1 is enabled.").arg(address))
                     : r;
        },
        [&ctx, address, disable]() -> QByteArray {
            if (disable) ctx.sessions.removeUser(normalizeAddress(address).valueOr(address));  // its sessions end
            return QByteArray();
        });
}

void disableUser(Call& c, const QMap<QString, QString>& f, QObject* life, const PanelReply& reply) {
    setUserEnabled(c, f, life, reply, true);
}

void enableUser(Call& c, const QMap<QString, QString>& f, QObject* life, const PanelReply& reply) {
    setUserEnabled(c, f, life, reply, false);
}

void deleteUser(Call& c, const QMap<QString, QString>& f, QObject* life, const PanelReply& reply) {
    PanelContext& ctx = c.ctx;
    const QString address = formAddress(f);
    if (f.value(QStringLiteral("confirm")) != u"yes")
        return reply(done(c, QStringLiteral("user.del"), address,
                          Result<QString>::fail(QStringLiteral("Not deleted: tick the confirmation box.")),
                          userUrl(address)));
    if (normalizeAddress(address).valueOr(QString()) == c.session->user)
        return reply(
            done(c, QStringLiteral("user.del"), address,
                 Result<QString>::fail(QStringLiteral("You cannot delete the account you are logged in with.")),
                 userUrl(address)));
    return ask(
        c, life, reply, {QStringLiteral("user.del"), address}, QStringLiteral("user.del"), address, userUrl(address),
        [address](const Result<QString>& r) {
            return r ? Result<QString>(QStringLiteral("User %1 deleted; the stored mail is kept on disk.").arg(address))
                     : r;
        },
        [&ctx, address]() -> QByteArray {
            ctx.sessions.removeUser(normalizeAddress(address).valueOr(address));
            return "/panel/users";
        });
}

void addAlias(Call& c, const QMap<QString, QString>& f, QObject* life, const PanelReply& reply) {
    const QString source = f.value(QStringLiteral("source")).trimmed();
    return ask(c, life, reply, {QStringLiteral("alias.add"), source, f.value(QStringLiteral("targets"))},
               QStringLiteral("alias.add"), source + QStringLiteral(" -> ") + f.value(QStringLiteral("targets")),
               "/panel/aliases",
               [](const Result<QString>& r) { return r ? Result<QString>(*r + QLatin1Char('.')) : r; });
}

void removeAlias(Call& c, const QMap<QString, QString>& f, QObject* life, const PanelReply& reply) {
    const QString source = f.value(QStringLiteral("source")).trimmed();
    QStringList req{QStringLiteral("alias.del"), source};
    if (!f.value(QStringLiteral("target")).isEmpty()) req << f.value(QStringLiteral("target"));
    return ask(c, life, reply, req, QStringLiteral("alias.del"), source, "/panel/aliases",
               [source](const Result<QString>& r) {
                   return r ? Result<QString>(QStringLiteral("Alias %1 removed.").arg(source)) : r;
               });
}

// The one table of the account changes: path -> handler.
const QHash<QString, AdminAction>& adminActions() {
    static const QHash<QString, AdminAction> table = {
        {QStringLiteral("/panel/users/add"), addUser},
        {QStringLiteral("/panel/users/password"), setUserPassword},
        {QStringLiteral("/panel/users/quota"), setUserQuota},
        {QStringLiteral("/panel/users/admin"), setUserAdmin},
        {QStringLiteral("/panel/users/disable"), disableUser},
        {QStringLiteral("/panel/users/enable"), enableUser},
        {QStringLiteral("/panel/users/delete"), deleteUser},
        {QStringLiteral("/panel/aliases/add"), addAlias},
        {QStringLiteral("/panel/aliases/remove"), removeAlias},
    };
    return table;
}

void adminPost(Call& c, const QString& path, const QMap<QString, QString>& f, QObject* life, const PanelReply& reply) {
    PanelContext& ctx = c.ctx;
    if (admin::post(ctx, path, f, life, [&ctx, id = c.sessionId, conn = c.conn, reply](admin::Change ch) {
            reply(opsDone(ctx, id, conn, OpsChange{ch.action, ch.target, ch.result, ch.to}));
        }))
        return;
    AccountBroker* b = ctx.broker;
    if (!b)
        return reply(done(c, path, {},
                          Result<QString>::fail(QStringLiteral("changes are not available (no account helper)")),
                          "/panel/"));
    if (const AdminAction action = adminActions().value(path)) return action(c, f, life, reply);
    reply(html(404, page(QStringLiteral("Not found"), c.session, c.admin, QStringLiteral("<p>No such page.</p>"))));
}

bool isForm(const HttpRequest& r) {
    const QByteArray ct = r.header("content-type").toLower();
    return ct == "application/x-www-form-urlencoded" || ct.startsWith("application/x-www-form-urlencoded;");
}

void login(PanelContext& ctx, const HttpRequest& r, const QMap<QString, QString>& f, const ConnectionInfo& conn,
           QObject* life, PanelReply reply) {
    const QByteArray cookieToken = PanelSessions::cookieValue(r.header("cookie"), kLoginCookie);
    if (!PanelSessions::wellFormed(cookieToken) ||
        !PanelSessions::tokenEqual(cookieToken, f.value(QStringLiteral("csrf")).toLatin1())) {
        audit(conn, f.value(QStringLiteral("address")).left(100), QStringLiteral("login"), {},
              QStringLiteral("refused: CSRF token"));
        return reply(loginPage(403, QStringLiteral("The form had expired; please log in again.")));
    }
    if (!ctx.auth) return reply(loginPage(503, QStringLiteral("Logins are not available.")));
    AuthRequest req;
    req.context = life;
    req.sessionId = conn.sessionId;
    req.peer = conn.peerAddress;
    req.login = f.value(QStringLiteral("address")).trimmed();
    const QString login = req.login;
    ctx.auth->verify(
        req, QLatin1String(kPanelProtocol), f.value(QStringLiteral("password")).toUtf8(),
        [&ctx, conn, login, reply](Authenticator::Outcome o) {
            if (o.verdict == AuthVerdict::TempFail) {
                audit(conn, login.left(100), QStringLiteral("login"), {}, QStringLiteral("tempfail"));
                return reply(loginPage(429, QStringLiteral("Too many attempts; wait a little and try again."), login));
            }
            if (!o.ok()) {
                audit(conn, login.left(100), QStringLiteral("login"), {}, QStringLiteral("failed"));
                return reply(loginPage(401, QStringLiteral("Wrong address or password."), login));
            }
            // Exact, not the once-a-second snapshot: two-factor login turned on a moment
            // ago must already be asked for.
            const auto acc = ctx.accounts->current(AccountStore::Freshness::Exact);
            if (acc && secondFactorRequired(*acc, o.user)) {
                // The password was right; the session waits for the code (panel_pending.h).
                const QByteArray pid = ctx.pending.create(o.user, nowMs(ctx));
                audit(conn, o.user, QStringLiteral("login"), {}, QStringLiteral("password ok, code asked"));
                return reply(
                    redirect("/panel/login/code",
                             {{"Set-Cookie", PanelSessions::setCookie(kPendingCookie, pid, kPendingLoginMs / 1000)},
                              {"Set-Cookie", PanelSessions::setCookie(kLoginCookie, "", 0)}}));
            }
            // auth.require_2fa_admins: an administrator without two-factor login gets a
            // session that reaches only the enrolment (panel.h says why not a refusal).
            const UserRecord* rec = acc ? acc->user(o.user) : nullptr;
            const bool mustEnrol = rec && ctx.config && twoFactorRequired(*ctx.config, rec->admin);
            if (mustEnrol) {
                const QByteArray id = ctx.sessions.create(o.user, nowMs(ctx));
                ctx.sessions.find(id, nowMs(ctx))->mustEnrol = true;
                ctx.sessions.changed();  // kept across a restart too (panel_sessions.h)
                audit(conn, o.user, QStringLiteral("login"), {}, QStringLiteral("ok, two-factor enrolment required"));
                return reply(redirect("/panel/security",
                                      {{"Set-Cookie", PanelSessions::setCookie(kSessionCookie, id, kAbsoluteMs / 1000)},
                                       {"Set-Cookie", PanelSessions::setCookie(kLoginCookie, "", 0)}}));
            }
            const QByteArray id = ctx.sessions.create(o.user, nowMs(ctx));
            audit(conn, o.user, QStringLiteral("login"), {}, QStringLiteral("ok"));
            reply(redirect("/panel/", {{"Set-Cookie", PanelSessions::setCookie(kSessionCookie, id, kAbsoluteMs / 1000)},
                                       {"Set-Cookie", PanelSessions::setCookie(kLoginCookie, "", 0)}}));
        });
}

// ---------------------------------------------------------------- the code step (TOTP)

PanelResponse codePage(int code, const PendingLogin& p, const QString& message) {
    const QString form =
        QStringLiteral(
            "<p>Two-factor login is on for <strong>%1</strong>: enter the code your authenticator app shows.</p>"
            "<form class=\"box\" method=\"post\" action=\"/panel/login/code\"><input type=\"hidden\" name=\"csrf\" "
            "value=\"%2\">"
            "<label for=\"code\">Code (6 digits)</label><input type=\"text\" id=\"code\" name=\"code\" "
            "inputmode=\"numeric\" "
            "autocomplete=\"one-time-code\" pattern=\"[0-9 ]{6,7}\" maxlength=\"7\" required autofocus>"
            "<button type=\"submit\">Log in</button></form><p><a href=\"/panel/login\">Start again</a></p>")
            .arg(htmlEscape(p.user), QString::fromLatin1(p.csrf));
    return html(code, page(QStringLiteral("Login code"), nullptr, false, form, message, !message.isEmpty()));
}

void loginCode(PanelContext& ctx, const HttpRequest& r, bool get, const QMap<QString, QString>& f,
               const ConnectionInfo& conn, QObject* life, PanelReply reply) {
    const QByteArray pid = PanelSessions::cookieValue(r.header("cookie"), kPendingCookie);
    const QByteArray clear = PanelSessions::setCookie(kPendingCookie, "", 0);
    if (get) {
        const PendingLogin* p = ctx.pending.find(pid, nowMs(ctx));
        if (!p) return reply(redirect("/panel/login", {{"Set-Cookie", clear}}));
        return reply(codePage(200, *p, {}));
    }
    const PendingLogin* p = ctx.pending.find(pid, nowMs(ctx));
    if (!p) return reply(loginPage(401, QStringLiteral("The login had expired; please log in again.")));
    if (!PanelSessions::tokenEqual(f.value(QStringLiteral("csrf")).toLatin1(), p->csrf)) {
        audit(conn, p->user, QStringLiteral("login.code"), {}, QStringLiteral("refused: CSRF token"));
        return reply(codePage(403, *p, QStringLiteral("The form was not sent from this panel.")));
    }
    auto claimed = ctx.pending.claim(pid, nowMs(ctx));
    if (!claimed)
        return reply(codePage(429, *p, QStringLiteral("A code is being checked already; wait for its answer.")));
    if (!ctx.auth || !ctx.broker) {
        ctx.pending.settle(pid, false);
        return reply(loginPage(503, QStringLiteral("Logins are not available.")));
    }
    const QString user = claimed->user;
    const QString code = f.value(QStringLiteral("code"));
    AuthRequest req;
    req.context = life;
    req.sessionId = conn.sessionId;
    req.peer = conn.peerAddress;
    req.login = user;
    AccountBroker* broker = ctx.broker;
    ctx.auth->verifySecondFactor(
        req, QLatin1String(kPanelProtocol),
        [broker, auth = ctx.auth, user, code](Authenticator::SecondFactorAnswer answer) {
            // Asynchronous (account_broker.h); the Authenticator is the context: it lives as
            // long as the broker, so the throttle always hears the answer.
            broker->call({QStringLiteral("2fa.verify"), user, code}, auth, [answer](const Result<QString>& verdict) {
                if (verdict) return answer(Authenticator::SecondFactor::Accepted);
                const int why = verdict.error().code;
                answer(why == kBrokerBusy || why == kBrokerTimeout || why == kBrokerGone
                           ? Authenticator::SecondFactor::Unavailable
                           : Authenticator::SecondFactor::Refused);
            });
        },
        [&ctx, conn, pid, user, clear, reply](Authenticator::Outcome o) {
            const bool unavailable = o.reason == QLatin1String(kSecondFactorUnavailable);
            if (unavailable)
                ctx.pending.release(pid);  // not a wrong code: neither counted nor used
            else
                ctx.pending.settle(pid, o.ok());
            if (!o.ok()) {
                audit(conn, user, QStringLiteral("login.code"), {},
                      o.verdict == AuthVerdict::TempFail ? QStringLiteral("tempfail") : QStringLiteral("failed"));
                const PendingLogin* left = ctx.pending.find(pid, nowMs(ctx));
                if (unavailable)  // not the user's fault: a 503 page, the login may be tried again
                    return reply(
                        html(503,
                             page(QStringLiteral("Busy"), nullptr, false,
                                  QStringLiteral("<p id=\"busy\">The server could not check the code just "
                                                 "now. Please <a href=\"/panel/login/code\">try again</a> in a "
                                                 "moment.</p>")),
                             {{"Retry-After", "5"}}));
                const QString why = o.verdict == AuthVerdict::TempFail
                                        ? QStringLiteral("Too many attempts; wait a little and try again.")
                                        : QStringLiteral("Wrong or already used code.");
                if (!left) return reply(loginPage(401, why + QStringLiteral(" Please log in again."), user));
                return reply(codePage(o.verdict == AuthVerdict::TempFail ? 429 : 401, *left, why));
            }
            auto acc = ctx.accounts->current(AccountStore::Freshness::Exact);
            if (!acc || !acc->user(user) || acc->user(user)->disabled)  // disabled during the code step
                return reply(loginPage(401, QStringLiteral("Wrong address or password.")));
            const QByteArray id = ctx.sessions.create(user, nowMs(ctx));
            audit(conn, user, QStringLiteral("login"), {}, QStringLiteral("ok (password and code)"));
            reply(redirect("/panel/", {{"Set-Cookie", PanelSessions::setCookie(kSessionCookie, id, kAbsoluteMs / 1000)},
                                       {"Set-Cookie", clear}}));
        });
}

// The user pages' frame (panel_user_pages.h).
PanelResponse kitShow(UserPageKit& k, const QString& title, const QString& content, int code) {
    PanelSession& s = *k.session;
    const QString flash = s.flash;
    const bool error = s.flashError;
    s.flash.clear();
    return html(code, page(title, k.session, k.admin, content, flash, error));
}

PanelResponse kitDone(UserPageKit& k, const QString& action, const QString& target, const Result<QString>& result,
                      const QByteArray& to) {
    audit(k.conn, k.session->user, action, target,
          result ? QStringLiteral("ok") : QStringLiteral("error: ") + result.errorMessage());
    if (auto trouble = brokerTrouble(result, k.session, k.admin)) return *trouble;
    k.session->flash = result ? *result : result.errorMessage();
    k.session->flashError = !result;
    return redirect(to);
}

PanelResponse getPage(Call& c, const QString& path) {
    if (path == u"/panel/" || path == u"/panel") {
        if (!c.admin) return redirect("/panel/account");
        return show(c, QStringLiteral("Dashboard"), dashboard(c.ctx));
    }
    if (path == u"/panel/account") return show(c, QStringLiteral("My account"), accountPage(c.ctx, *c.acc, *c.session));
    if (!c.admin)
        return html(403, page(QStringLiteral("Not allowed"), c.session, false,
                              QStringLiteral("<p>This page is for administrators.</p>")));
    if (path == u"/panel/users") return show(c, QStringLiteral("Users"), usersPage(c.ctx, *c.acc, *c.session));
    if (path == u"/panel/user") {
        const QString address =
            normalizeAddress(queryParameter(c.r.query, QStringLiteral("address"))).valueOr(QString());
        const UserRecord* u = c.acc->user(address);
        if (!u)
            return html(404, page(QStringLiteral("No such user"), c.session, true,
                                  QStringLiteral("<p><a href=\"/panel/users\">Back to the users</a></p>")));
        return show(c, u->address, userPage(c.ctx, *c.acc, *u, *c.session));
    }
    if (path == u"/panel/domains") {
        // The latest DNS status, never waited for (a stale one starts a background run).
        if (!c.ctx.probes)
            c.ctx.probes = std::make_shared<DashboardProbes>(c.ctx.config ? c.ctx.config->configDir() : QString());
        QStringList hosted = c.acc->domains();
        if (c.ctx.config && !get(*c.ctx.config, keys::general::primaryDomain).isEmpty())
            hosted << get(*c.ctx.config, keys::general::primaryDomain);
        hosted.removeDuplicates();
        c.ctx.probes->refresh(hosted);
        const auto probe = c.ctx.probes->latest();
        return show(c, QStringLiteral("Domains"), admin::domainsPage(*c.acc, csrfField(*c.session), probe.get()));
    }
    if (path == u"/panel/domain") {
        const QString d = queryParameter(c.r.query, QStringLiteral("domain"));
        if (auto content = admin::domainPage(c.ctx, *c.acc, d, csrfField(*c.session)))
            return show(c, QStringLiteral("Domain ") + normalizeDomain(d).valueOr(d), *content);
        return html(404, page(QStringLiteral("No such domain"), c.session, true,
                              QStringLiteral("<p><a href=\"/panel/domains\">Back to the domains</a></p>")));
    }
    if (path == u"/panel/domain/records") {
        if (auto file = admin::recordsDownload(c.ctx, *c.acc, queryParameter(c.r.query, QStringLiteral("domain")),
                                               queryParameter(c.r.query, QStringLiteral("format"))))
            return *file;
        return html(404, page(QStringLiteral("No such domain"), c.session, true,
                              QStringLiteral("<p><a href=\"/panel/domains\">Back to the domains</a></p>")));
    }
    if (path == u"/panel/aliases")
        return show(
            c, QStringLiteral("Aliases"),
            aliasesPage(c.ctx, *c.acc, *c.session, queryParameter(c.r.query, QStringLiteral("resolve")).left(320)));
    return html(404, page(QStringLiteral("Not found"), c.session, c.admin, QStringLiteral("<p>No such page.</p>")));
}

// The dashboard waits (asynchronously, at most kProbeWaitMs) for the checks that must not
// run on the event loop (dashboard_probes.h).
void dashboardPage(Call& c, PanelReply reply) {
    PanelContext& ctx = c.ctx;
    if (!ctx.probes) ctx.probes = std::make_shared<DashboardProbes>(ctx.config ? ctx.config->configDir() : QString());
    const QByteArray id = c.sessionId;
    QObject* life = c.life;
    ctx.probes->get(life, [&ctx, id, reply](std::shared_ptr<const DashboardProbe> probe, bool running) {
        PanelSession* s = ctx.sessions.find(id, nowMs(ctx));
        if (!s) return reply(redirect("/panel/login"));
        const QString flash = s->flash;
        const bool error = s->flashError;
        s->flash.clear();
        reply(html(200, page(QStringLiteral("Dashboard"), s, true,
                             dashboard(ctx) + admin::dashboardSections(ctx, probe.get(), running), flash, error)));
    });
}

void ownPassword(Call& c, const QMap<QString, QString>& f, QObject* life, PanelReply reply) {
    const QString user = c.session->user;
    const QByteArray id = c.sessionId;
    PanelContext& ctx = c.ctx;
    const ConnectionInfo conn = c.conn;
    if (f.value(QStringLiteral("password")) != f.value(QStringLiteral("repeat"))) {
        c.session->flash = QStringLiteral("The new passwords differ; nothing changed.");
        c.session->flashError = true;
        return reply(redirect("/panel/account"));
    }
    if (!ctx.auth) return reply(redirect("/panel/account"));
    AuthRequest req;
    req.context = life;
    req.sessionId = conn.sessionId;
    req.peer = conn.peerAddress;
    req.login = user;
    const QString newPassword = f.value(QStringLiteral("password"));
    ctx.auth->verify(
        req, QLatin1String(kPanelProtocol), f.value(QStringLiteral("current")).toUtf8(),
        [&ctx, conn, user, id, newPassword, reply, life = QPointer<QObject>(life)](Authenticator::Outcome o) {
            PanelSession* s = ctx.sessions.find(id, nowMs(ctx));
            if (!s) return reply(redirect("/panel/login"));
            Result<QString> r = Result<QString>::fail(
                o.verdict == AuthVerdict::TempFail ? QStringLiteral("Too many attempts; try again shortly.")
                                                   : QStringLiteral("The current password is wrong; nothing changed."));
            // Then the helper, asynchronously; `finish` writes the audit line and answers.
            auto finish = [&ctx, conn, user, id, reply](const Result<QString>& answer) {
                audit(conn, user, QStringLiteral("account.passwd"), user,
                      answer ? QStringLiteral("ok") : QStringLiteral("error: ") + answer.errorMessage());
                if (answer) {
                    ctx.sessions.removeUser(user);  // every session of the account ends, this one included
                    return reply(loginPage(200, QStringLiteral("Password changed; log in with the new one.")));
                }
                PanelSession* now = ctx.sessions.find(id, nowMs(ctx));
                if (!now) return reply(redirect("/panel/login"));
                if (auto trouble = brokerTrouble(answer, now, false)) return reply(*trouble);
                now->flash = answer.errorMessage();
                now->flashError = true;
                reply(redirect("/panel/account"));
            };
            if (!o.ok()) return finish(r);
            if (!ctx.broker) return finish(Result<QString>::fail(QStringLiteral("changes are not available")));
            ctx.broker->call({QStringLiteral("user.passwd"), user, newPassword}, life.data(), finish);
        });
}

}  // namespace

QString htmlEscape(const QString& s) {
    QString out;
    out.reserve(s.size());
    for (const QChar ch : s) {
        switch (ch.unicode()) {
            case '&':
                out += QStringLiteral("&amp;");
                break;
            case '<':
                out += QStringLiteral("&lt;");
                break;
            case '>':
                out += QStringLiteral("&gt;");
                break;
            case '"':
                out += QStringLiteral("&quot;");
                break;
            case '\'':
                out += QStringLiteral("&#39;");
                break;
            default:
                out += ch;
        }
    }
    return out;
}

QList<QPair<QByteArray, QByteArray>> panelSecurityHeaders() {
    return {{"Content-Security-Policy",
             "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri "
             "'none'; "
             "frame-ancestors 'none'"},
            {"X-Frame-Options", "DENY"},
            {"Cache-Control", "no-store"},
            {"Referrer-Policy", "no-referrer"}};
    // No Strict-Transport-Security: until ACME has run, the appliance has a self-signed
    // certificate, and HSTS would forbid the browser's "accept this certificate" step.
}

bool secondFactorRequired(const Accounts& accounts, const QString& user) {
    // Two-factor login on for the account: the password alone opens no session (the code step follows).
    return accounts.credentials().twoFactorEnabled(user);
}

namespace {
// The request's session (from its cookie) and a fresh read of the accounts; a session whose
// account is gone or disabled ends here (c.session null).
void findSession(Call& c) {
    PanelContext& ctx = c.ctx;
    c.sessionId = PanelSessions::cookieValue(c.r.header("cookie"), kSessionCookie);
    c.session = ctx.sessions.find(c.sessionId, nowMs(ctx));
    // Exact, not the once-a-second snapshot: a page shows the change just made.
    c.acc = ctx.accounts->current(AccountStore::Freshness::Exact);
    if (c.session && (!c.acc || !c.acc->user(c.session->user) ||
                      c.acc->user(c.session->user)->disabled)) {  // the account is gone or disabled
        ctx.sessions.removeUser(c.session->user);
        c.session = nullptr;
    }
}

// A POST of a logged-in session: the CSRF check first, then the page the path names.
void postChange(Call& c, UserPageKit& kit, const QMap<QString, QString>& form, const PanelReply& reply) {
    PanelContext& ctx = c.ctx;
    const ConnectionInfo& conn = c.conn;
    const QString& path = c.r.path;
    QObject* life = c.life;
    // Every change: the session's CSRF token, compared in constant time, before anything else.
    if (!PanelSessions::tokenEqual(form.value(QStringLiteral("csrf")).toLatin1(), c.session->csrf)) {
        audit(conn, c.session->user, path.mid(7), {}, QStringLiteral("refused: CSRF token"));
        return reply(html(
            403,
            page(QStringLiteral("Refused"), c.session, c.admin,
                 QStringLiteral(
                     "<p>The form was not sent from this panel (CSRF token missing or wrong). Nothing changed.</p>"))));
    }
    if (path == u"/panel/logout") {
        audit(conn, c.session->user, QStringLiteral("logout"), {}, QStringLiteral("ok"));
        ctx.sessions.remove(c.sessionId);
        return reply(redirect("/panel/login", {{"Set-Cookie", PanelSessions::setCookie(kSessionCookie, "", 0)}}));
    }
    if (path == u"/panel/account/password") return ownPassword(c, form, life, reply);
    if (isUserPage(path)) return userPagePost(kit, path, form, life, reply);
    if (!c.admin) {
        audit(conn, c.session->user, path.mid(7), {}, QStringLiteral("refused: not an administrator"));
        return reply(html(403, page(QStringLiteral("Not allowed"), c.session, false,
                                    QStringLiteral("<p>This is for administrators.</p>"))));
    }
    if (opsPost(ctx, path, form, life,
                [&ctx, id = c.sessionId, conn, reply](OpsChange ch) { reply(opsDone(ctx, id, conn, std::move(ch))); }))
        return;
    adminPost(c, path, form, life, reply);
}
}  // namespace

void handlePanel(PanelContext& ctx, const HttpRequest& r, const QByteArray& body, const ConnectionInfo& conn,
                 QObject* life, PanelReply replyIn) {
    PanelReply reply = [replyIn](PanelResponse resp) {
        resp.headers += panelSecurityHeaders();
        replyIn(std::move(resp));
    };
    const QString& path = r.path;
    const bool get = r.method == "GET" || r.method == "HEAD";
    const bool post = r.method == "POST";
    if (!get && !post) return reply(html(405, "GET or POST only\n", {{"Allow", "GET, HEAD, POST"}}));
    if (path == u"/panel/style.css") {
        PanelResponse css = html(200, QByteArray(kCss) + admin::kAdminCss);
        css.contentType = "text/css; charset=utf-8";
        return reply(css);
    }
    QMap<QString, QString> form;
    if (post) {
        if (!isForm(r))
            return reply(html(
                415, page(QStringLiteral("Unsupported form"), nullptr, false, QStringLiteral("<p>Forms only.</p>"))));
        auto parsed = parseForm(body);
        if (!parsed)
            return reply(html(400, page(QStringLiteral("Bad request"), nullptr, false,
                                        QStringLiteral("<p>%1</p>").arg(htmlEscape(parsed.errorMessage())))));
        form = *parsed;
    }
    if (path == u"/panel/login") {
        if (get) return reply(loginPage(200, {}));
        return login(ctx, r, form, conn, life, reply);
    }
    if (path == u"/panel/login/code") return loginCode(ctx, r, get, form, conn, life, reply);
    Call c{ctx, r, conn};
    c.life = life;
    findSession(c);
    if (!c.session)
        return reply(redirect("/panel/login", {{"Set-Cookie", PanelSessions::setCookie(kSessionCookie, "", 0)}}));
    c.admin = c.acc->user(c.session->user)->admin && !c.session->mustEnrol;
    if (c.session->mustEnrol && !isEnrolmentPage(path) && path != u"/panel/logout") {
        if (get) return reply(redirect("/panel/security"));
        audit(conn, c.session->user, path.mid(7), {}, QStringLiteral("refused: two-factor enrolment required"));
        return reply(html(403, page(QStringLiteral("Not allowed"), c.session, false,
                                    QStringLiteral("<p>Set up two-factor login first.</p>"))));
    }
    if (get && c.admin && (path == u"/panel/" || path == u"/panel")) return dashboardPage(c, reply);
    if (get && c.admin && opsGet(ctx, path, r.query, c.session->csrf, life, [&ctx, id = c.sessionId, reply](OpsPage p) {
            reply(opsPage(ctx, id, std::move(p)));
        }))
        return;  // queue, log search, settings (panel_ops_pages.h)
    UserPageKit kit{ctx, conn, c.session, c.sessionId, c.admin, kitShow, kitDone};
    if (get && isUserPage(path)) return userPageGet(kit, path, life, reply);
    if (get) return reply(getPage(c, path));
    postChange(c, kit, form, reply);
}

}  // namespace postern::web
