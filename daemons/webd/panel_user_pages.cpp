// panel_user_pages.cpp — see panel_user_pages.h.
#include "panel_user_pages.h"

#include "common/sieve/sieve_forms.h"
#include "common/sieve/sieve_store.h"

#include "core/log.h"
#include "core/two_factor.h"

#include <QDateTime>
#include <QHash>
#include <QPointer>

namespace postern::web {

namespace {

QString csrfField(const PanelSession& s) {
    return QStringLiteral("<input type=\"hidden\" name=\"csrf\" value=\"%1\">").arg(QString::fromLatin1(s.csrf));
}

QString when(qint64 secs) {
    if (secs <= 0) return QStringLiteral("never");
    return QDateTime::fromSecsSinceEpoch(secs, Qt::UTC).toString(QStringLiteral("yyyy-MM-dd HH:mm 'UTC'"));
}

void auditLine(const UserPageKit& k, const QString& action, const QString& target, const QString& result) {
    log::info(u"panel.audit", log::Fields()
                                  .add("user", k.session->user)
                                  .add("action", action)
                                  .add("target", target.isEmpty() ? QStringLiteral("-") : target.left(200))
                                  .add("remote", k.conn.peerAddress.toString())
                                  .add("result", result.left(300)));
}

// The session found again by its id when an answer comes later (null: it ended meanwhile).
PanelSession* findAgain(PanelContext& ctx, const QByteArray& id) {
    return ctx.sessions.find(id, ctx.clock ? ctx.clock() : QDateTime::currentMSecsSinceEpoch());
}

// The answer for a session that ended meanwhile: 303 to the login page.
PanelResponse toLogin() {
    PanelResponse login;
    login.code = 303;
    login.headers.append(qMakePair(QByteArray("Location"), QByteArray("/panel/login")));
    return login;
}

// Asks webd's helper (asynchronously, account_broker.h); `then` runs later with a kit
// rebuilt around the session, found again by its id (a 303 to the login page when it
// ended meanwhile), and its response is the answer. Never after `life` is gone.
using Then = std::function<PanelResponse(UserPageKit&, const Result<QStringList>&)>;
void withBroker(UserPageKit& k, const QStringList& request, QObject* life, const PanelReply& reply, Then then) {
    PanelContext& ctx = k.ctx;
    auto finish = [&ctx, id = k.sessionId, conn = k.conn, admin = k.admin, show = k.show, done = k.done, reply,
                   then = std::move(then)](const Result<QStringList>& r) {
        PanelSession* s = findAgain(ctx, id);
        if (!s) return reply(toLogin());
        UserPageKit again{ctx, conn, s, id, admin, show, done};
        reply(then(again, r));
    };
    if (!ctx.broker)
        return finish(Result<QStringList>::fail(QStringLiteral("changes are not available (no account helper)")));
    ctx.broker->callFields(request, life, finish);
}

// A failed answer as the Result<QString> the frame shows (its Error, code included, kept).
Result<QString> failure(const Result<QStringList>& r, const QString& unexpected = {}) {
    if (!r) return r.error();
    return Result<QString>::fail(unexpected.isEmpty() ? QStringLiteral("unexpected answer") : unexpected);
}

QString codeInput(const QString& id) {
    return QStringLiteral(
               "<label for=\"%1\">Code from the app (6 digits)</label><input type=\"text\" id=\"%1\" name=\"code\" "
               "inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9 ]{6,7}\" maxlength=\"7\" required>")
        .arg(id);
}

QString confirmForm(const PanelSession& s) {
    return QStringLiteral("<form class=\"box\" method=\"post\" action=\"/panel/security/2fa/confirm\">") +
           csrfField(s) + codeInput(QStringLiteral("confirm-code")) +
           QStringLiteral("<button type=\"submit\" id=\"confirm-2fa\">Turn on two-factor login</button></form>");
}

// ---------------------------------------------------------------- security page

QString securityPage(UserPageKit& k, const Result<QStringList>& st) {
    const PanelSession& s = *k.session;
    QString t;
    if (s.mustEnrol)
        t += QStringLiteral(
            "<p class=\"flash error\" role=\"status\">Administrators of this server must use two-factor login "
            "(auth.require_2fa_admins). Set it up below to reach the other pages.</p>");
    t += QStringLiteral("<h2>Two-factor login</h2>");
    if (!st || st->size() != 4) {
        t += QStringLiteral("<p>The state cannot be read: %1</p>")
                 .arg(htmlEscape(st ? QStringLiteral("bad answer") : st.errorMessage()));
    } else if (st->at(0) == u"1") {
        t += QStringLiteral(
                 "<p id=\"tfa-state\">Two-factor login is <strong>on</strong> since %1. Mail programs (IMAP, POP3, "
                 "SMTP) "
                 "need an app password; the account password no longer works for them.</p>")
                 .arg(htmlEscape(when(st->at(1).toLongLong())));
        t += QStringLiteral("<form class=\"box\" method=\"post\" action=\"/panel/security/2fa/disable\">") +
             csrfField(s) +
             QStringLiteral(
                 "<p>Turn two-factor login off with a code from the app, or with your password (lost phone).</p>") +
             codeInput(QStringLiteral("disable-code")).replace(QStringLiteral(" required>"), QStringLiteral(">")) +
             QStringLiteral(
                 "<label for=\"disable-password\">or your password</label><input type=\"password\" "
                 "id=\"disable-password\" "
                 "name=\"password\" autocomplete=\"current-password\">"
                 "<button type=\"submit\" class=\"danger\" id=\"disable-2fa\">Turn two-factor login "
                 "off</button></form>");
    } else {
        t += QStringLiteral(
            "<p id=\"tfa-state\">Two-factor login is <strong>off</strong>: your password alone logs in.</p>");
        t += QStringLiteral("<form class=\"box\" method=\"post\" action=\"/panel/security/2fa/enrol\">") +
             csrfField(s) +
             QStringLiteral(
                 "<p>You need an authenticator app (TOTP), e.g. on your phone.</p>"
                 "<button type=\"submit\" id=\"enrol-2fa\">Set up two-factor login</button></form>");
        if (st->at(2) == u"1")
            t += QStringLiteral(
                     "<p>A set-up is waiting for its first code (or start again above for a new QR code):</p>") +
                 confirmForm(s);
    }
    if (s.mustEnrol) return t;
    t += QStringLiteral(
        "<h2>App passwords</h2><p>For mail programs (IMAP, POP3, SMTP): each program gets its own, "
        "shown once, revocable. Required once two-factor login is on.</p>");
    TwoFactor tf(*k.ctx.accounts, k.ctx.config ? appPasswordUsageDir(*k.ctx.config) : QString());
    auto apps = tf.appPasswords(s.user);
    if (!apps) {
        t += QStringLiteral("<p>%1</p>").arg(htmlEscape(apps.errorMessage()));
    } else if (apps->isEmpty()) {
        t += QStringLiteral("<p id=\"apps\">None yet.</p>");
    } else {
        t += QStringLiteral(
            "<table id=\"apps\"><tr><th>Name</th><th class=\"opt\">Created</th><th>Last used</th><th></th></tr>");
        for (const AppPasswordInfo& a : *apps)
            t += QStringLiteral(
                     "<tr><td>%1</td><td class=\"opt\">%2</td><td>%3</td><td><form class=\"inline\" method=\"post\" "
                     "action=\"/panel/security/app/revoke\">%4<input type=\"hidden\" name=\"name\" value=\"%1\">"
                     "<button type=\"submit\" class=\"danger\">Revoke</button></form></td></tr>")
                     .arg(htmlEscape(a.name), htmlEscape(when(a.created)), htmlEscape(when(a.lastUsed)), csrfField(s));
        t += QStringLiteral("</table>");
    }
    t += QStringLiteral("<form class=\"box\" method=\"post\" action=\"/panel/security/app/add\">") + csrfField(s) +
         QStringLiteral(
             "<label for=\"app-name\">Name (e.g. laptop, phone: letters, digits, . _ -)</label>"
             "<input type=\"text\" id=\"app-name\" name=\"name\" maxlength=\"%1\" required>"
             "<button type=\"submit\" id=\"add-app\">Create app password</button></form>")
             .arg(kMaxAppPasswordName);
    return t;
}

PanelResponse enrolPage(UserPageKit& k, const Result<QStringList>& e) {
    if (!e || e->size() != 3)
        return k.done(k, QStringLiteral("2fa.enrol"), k.session->user, failure(e), "/panel/security");
    auditLine(k, QStringLiteral("2fa.enrol"), k.session->user, QStringLiteral("ok"));
    QString grouped;  // the secret in groups of 4, easier to type
    for (qsizetype i = 0; i < e->at(0).size(); i += 4)
        grouped += (i ? QStringLiteral(" ") : QString()) + e->at(0).mid(i, 4);
    // The SVG comes from core/qr_code.h: nothing of the text is written into it, only a path
    // of squares; presentation attributes, no style element or attribute, no script.
    const QString t =
        QStringLiteral(
            "<p>Scan this QR code with your authenticator app, then enter the code it shows.</p>"
            "<div class=\"qr\" id=\"qr\">%1</div>"
            "<p>Or type the secret in by hand (TOTP, SHA-1, 6 digits, 30 seconds):</p>"
            "<p><code id=\"secret\">%2</code></p><p class=\"muted\">URI: <code id=\"otpauth\">%3</code></p>")
            .arg(e->at(2), htmlEscape(grouped), htmlEscape(e->at(1))) +
        confirmForm(*k.session) +
        QStringLiteral("<p class=\"muted\">Two-factor login stays off until a code is confirmed.</p>");
    return k.show(k, QStringLiteral("Set up two-factor login"), t, 200);
}

PanelResponse appAddedPage(UserPageKit& k, const QString& name, const Result<QStringList>& p) {
    if (!p || p->size() != 2) return k.done(k, QStringLiteral("app.add"), name, failure(p), "/panel/security");
    auditLine(k, QStringLiteral("app.add"), name, QStringLiteral("ok"));
    const QString t =
        QStringLiteral(
            "<p class=\"flash\" role=\"status\">App password <strong>%1</strong> created. It is shown only "
            "this once: enter it in the mail program now, instead of your account password.</p>"
            "<p><code id=\"app-password\">%2</code></p><p class=\"muted\">The spaces are optional.</p>"
            "<p><a href=\"/panel/security\">Back to security</a></p>")
            .arg(htmlEscape(p->at(0)), htmlEscape(p->at(1)));
    return k.show(k, QStringLiteral("New app password"), t, 200);
}

// ---------------------------------------------------------------- filters page

QString filtersPage(UserPageKit& k) {
    const PanelSession& s = *k.session;
    const QString mailDir = k.ctx.mailDir;
    QString t;
    auto active = sieve::activeScriptName(mailDir, s.user);
    const QString act = active ? *active : QString();
    if (!active)
        t += QStringLiteral("<p>The filters cannot be read: %1</p>").arg(htmlEscape(active.errorMessage()));
    else if (act.isEmpty())
        t += QStringLiteral("<p id=\"filter-state\">No filter is active: mail is delivered to your inbox.</p>");
    else {
        t += QStringLiteral("<p id=\"filter-state\">Active filter: <strong>%1</strong>.</p>").arg(htmlEscape(act));
        if (auto text = sieve::readScript(mailDir, s.user, act))
            t += QStringLiteral("<pre id=\"active-script\">%1</pre>")
                     .arg(htmlEscape(QString::fromUtf8(text->left(16 * 1024))));
    }
    t += QStringLiteral(
        "<p class=\"muted\">One filter is active at a time: turning on forwarding replaces an active vacation reply "
        "and the other way round (both stay stored). Mail programs can edit filters with ManageSieve.</p>");
    const auto offForm = [&](const char* which) {
        return QStringLiteral("<form class=\"inline\" method=\"post\" action=\"/panel/filters/off\">") + csrfField(s) +
               QStringLiteral(
                   "<input type=\"hidden\" name=\"which\" value=\"%1\"><button type=\"submit\" class=\"danger\" "
                   "id=\"off-%1\">"
                   "Turn off</button></form>")
                   .arg(QLatin1String(which));
    };
    t += QStringLiteral("<h2>Forwarding</h2>");
    if (act == QLatin1String(sieve::kForwardScriptName))
        t += QStringLiteral("<p>Forwarding is on. ") + offForm(sieve::kForwardScriptName) + QStringLiteral("</p>");
    t += QStringLiteral("<form class=\"box\" method=\"post\" action=\"/panel/filters/forward\">") + csrfField(s) +
         QStringLiteral(
             "<label for=\"forward-to\">Forward to (up to %1 addresses, separated by commas)</label>"
             "<input type=\"text\" id=\"forward-to\" name=\"to\" required>"
             "<label><input type=\"checkbox\" id=\"forward-keep\" name=\"keep\" value=\"yes\" checked> Keep a copy "
             "here</label>"
             "<button type=\"submit\" id=\"forward-save\">Forward</button></form>")
             .arg(sieve::Limits{}.maxRedirects);
    t += QStringLiteral("<h2>Vacation reply</h2>");
    if (act == QLatin1String(sieve::kVacationScriptName))
        t += QStringLiteral("<p>The vacation reply is on. ") + offForm(sieve::kVacationScriptName) +
             QStringLiteral("</p>");
    t += QStringLiteral("<form class=\"box\" method=\"post\" action=\"/panel/filters/vacation\">") + csrfField(s) +
         QStringLiteral(
             "<label for=\"vacation-subject\">Subject (empty: \"Auto:\" and the original subject)</label>"
             "<input type=\"text\" id=\"vacation-subject\" name=\"subject\" maxlength=\"200\">"
             "<label for=\"vacation-text\">Text</label><textarea id=\"vacation-text\" name=\"text\" rows=\"6\" "
             "cols=\"50\" required></textarea>"
             "<label for=\"vacation-from\">From (optional)</label><input type=\"date\" id=\"vacation-from\" "
             "name=\"from\">"
             "<label for=\"vacation-until\">Until (optional, inclusive)</label><input type=\"date\" "
             "id=\"vacation-until\" name=\"until\">"
             "<label for=\"vacation-days\">Reply to the same sender at most once every N days</label>"
             "<input type=\"text\" id=\"vacation-days\" name=\"days\" inputmode=\"numeric\" value=\"%1\">"
             "<button type=\"submit\" id=\"vacation-save\">Turn on the vacation reply</button></form>")
             .arg(sieve::kDefaultVacationDays);
    return t;
}

Result<QString> installForm(UserPageKit& k, const char* name, const Result<QByteArray>& script, const QString& okText) {
    if (!script) return script.error();
    if (auto st = sieve::installGeneratedScript(k.ctx.mailDir, k.session->user, QLatin1String(name), *script,
                                                sieve::Quota::fromConfig(*k.ctx.config));
        !st)
        return st.error();
    return okText;
}

}  // namespace

bool isUserPage(const QString& path) {
    return path.startsWith(u"/panel/security") || path.startsWith(u"/panel/filters");
}

bool isEnrolmentPage(const QString& path) {
    return path == u"/panel/security" || path == u"/panel/security/2fa/enrol" || path == u"/panel/security/2fa/confirm";
}

void userPageGet(UserPageKit& k, const QString& path, QObject* life, PanelReply reply) {
    if (path == u"/panel/security")
        return withBroker(k, {QStringLiteral("2fa.status"), k.session->user}, life, reply,
                          [](UserPageKit& kit, const Result<QStringList>& st) {
                              return kit.show(kit, QStringLiteral("Security"), securityPage(kit, st), 200);
                          });
    if (path == u"/panel/filters")
        return reply(k.show(k, QStringLiteral("Forwarding and vacation"), filtersPage(k), 200));
    reply(k.show(k, QStringLiteral("Not found"), QStringLiteral("<p>No such page.</p>"), 404));
}

namespace {
// The POST forms of the security and filter pages; `f` is the form.
using UserPageAction = void (*)(UserPageKit& k, const QMap<QString, QString>& f, QObject* life,
                                const PanelReply& reply);

void enrolTwoFactor(UserPageKit& k, const QMap<QString, QString>& /*f*/, QObject* life, const PanelReply& reply) {
    const QString user = k.session->user;
    withBroker(k, {QStringLiteral("2fa.enrol"), user}, life, reply, enrolPage);
}

void confirmTwoFactor(UserPageKit& k, const QMap<QString, QString>& f, QObject* life, const PanelReply& reply) {
    const QString user = k.session->user;
    return withBroker(
        k, {QStringLiteral("2fa.confirm"), user, f.value(QStringLiteral("code"))}, life, reply,
        [user](UserPageKit& kit, const Result<QStringList>& r) {
            if (r) {
                kit.session->mustEnrol = false;
                kit.ctx.sessions.changed();
            }
            Result<QString> shown =
                QStringLiteral("Two-factor login is on. Mail programs now need an app password (create one below).");
            if (!r)
                shown = Error{r.errorMessage() + QStringLiteral(" (enter the current code, or set up again)"),
                              r.error().code};
            return kit.done(kit, QStringLiteral("2fa.confirm"), user, shown, "/panel/security");
        });
}

// The answer to "2fa.off" / "2fa.disable-code": back to the security page with the result.
auto twoFactorOffDone(const QString& user) {
    return [user](UserPageKit& kit, const Result<QStringList>& r) {
        return kit.done(kit, QStringLiteral("2fa.disable"), user,
                        r ? Result<QString>(QStringLiteral("Two-factor login is off.")) : failure(r),
                        "/panel/security");
    };
}

// Turning two-factor login off with the account password (no code given).
void disableTwoFactorWithPassword(UserPageKit& k, const QMap<QString, QString>& f, QObject* life,
                                  const PanelReply& reply) {
    const QString user = k.session->user;
    // The password through the login throttle, then the same core function as
    // `posternctl user 2fa disable` without --code.
    AuthRequest req;
    req.context = life;
    req.sessionId = k.conn.sessionId;
    req.peer = k.conn.peerAddress;
    req.login = user;
    PanelContext& ctx = k.ctx;
    const QByteArray id = k.sessionId;
    const ConnectionInfo conn = k.conn;
    auto show = k.show;
    auto done = k.done;
    ctx.auth->verify(req, QLatin1String(kPanelProtocol), f.value(QStringLiteral("password")).toUtf8(),
                     [&ctx, id, conn, user, admin = k.admin, done, show, reply, offDone = twoFactorOffDone(user),
                      life = QPointer<QObject>(life)](Authenticator::Outcome o) {
                         PanelSession* s = findAgain(ctx, id);
                         if (!s) return reply(toLogin());
                         UserPageKit again{ctx, conn, s, id, admin, show, done};
                         if (o.ok()) return withBroker(again, {QStringLiteral("2fa.off"), user}, life, reply, offDone);
                         const Result<QString> r =
                             Result<QString>::fail(o.verdict == AuthVerdict::TempFail
                                                       ? QStringLiteral("Too many attempts; try again shortly.")
                                                       : QStringLiteral("The password is wrong; nothing changed."));
                         reply(again.done(again, QStringLiteral("2fa.disable"), user, r, "/panel/security"));
                     });
}

void disableTwoFactor(UserPageKit& k, const QMap<QString, QString>& f, QObject* life, const PanelReply& reply) {
    const QString user = k.session->user;
    // auth.require_2fa_admins: an administrator keeps two-factor login (posternctl user 2fa
    // disable, the root's override, still can turn it off).
    if (k.admin && k.ctx.config && twoFactorRequired(*k.ctx.config, true))
        return reply(k.done(k, QStringLiteral("2fa.disable"), user,
                            Result<QString>::fail(QStringLiteral(
                                "Administrators must keep two-factor login on this server (auth.require_2fa_admins).")),
                            "/panel/security"));
    const QString code = f.value(QStringLiteral("code")).trimmed();
    if (!code.isEmpty())
        return withBroker(k, {QStringLiteral("2fa.disable-code"), user, code}, life, reply, twoFactorOffDone(user));
    if (f.value(QStringLiteral("password")).isEmpty() || !k.ctx.auth)
        return reply(k.done(k, QStringLiteral("2fa.disable"), user,
                            Result<QString>::fail(QStringLiteral("Enter a code or your password.")),
                            "/panel/security"));
    disableTwoFactorWithPassword(k, f, life, reply);
}

void addAppPassword(UserPageKit& k, const QMap<QString, QString>& f, QObject* life, const PanelReply& reply) {
    const QString user = k.session->user;
    const QString name = f.value(QStringLiteral("name")).trimmed();
    return withBroker(k, {QStringLiteral("app.add"), user, name}, life, reply,
                      [name](UserPageKit& kit, const Result<QStringList>& p) { return appAddedPage(kit, name, p); });
}

void revokeAppPassword(UserPageKit& k, const QMap<QString, QString>& f, QObject* life, const PanelReply& reply) {
    const QString user = k.session->user;
    const QString name = f.value(QStringLiteral("name"));
    return withBroker(k, {QStringLiteral("app.revoke"), user, name}, life, reply,
                      [name](UserPageKit& kit, const Result<QStringList>& r) {
                          return kit.done(
                              kit, QStringLiteral("app.revoke"), name,
                              r ? Result<QString>(QStringLiteral("App password %1 revoked.").arg(name)) : failure(r),
                              "/panel/security");
                      });
}

void forwardFilter(UserPageKit& k, const QMap<QString, QString>& f, QObject* /*life*/, const PanelReply& reply) {
    const QDate today = QDate::currentDate();
    const QString to = f.value(QStringLiteral("to"));
    auto r = installForm(
        k, sieve::kForwardScriptName,
        sieve::forwardingScript(to.split(u',', Qt::SkipEmptyParts), f.value(QStringLiteral("keep")) == u"yes", today),
        QStringLiteral("Forwarding is on."));
    return reply(k.done(k, QStringLiteral("sieve.forward"), to, r, "/panel/filters"));
}

void vacationFilter(UserPageKit& k, const QMap<QString, QString>& f, QObject* /*life*/, const PanelReply& reply) {
    const QDate today = QDate::currentDate();
    sieve::VacationForm form;
    form.subject = f.value(QStringLiteral("subject"));
    form.text = f.value(QStringLiteral("text"));
    form.from = f.value(QStringLiteral("from"));
    form.until = f.value(QStringLiteral("until"));
    const QString days = f.value(QStringLiteral("days")).trimmed();
    bool ok = true;
    if (!days.isEmpty()) form.days = days.toInt(&ok);
    auto r = ok ? installForm(k, sieve::kVacationScriptName, sieve::vacationScript(form, today),
                              QStringLiteral("The vacation reply is on."))
                : Result<QString>::fail(QStringLiteral("days must be a number"));
    return reply(
        k.done(k, QStringLiteral("sieve.vacation"), form.from + QLatin1Char('/') + form.until, r, "/panel/filters"));
}

void filterOff(UserPageKit& k, const QMap<QString, QString>& f, QObject* /*life*/, const PanelReply& reply) {
    const QString user = k.session->user;
    const QString which = f.value(QStringLiteral("which"));
    Result<QString> r = Result<QString>::fail(QStringLiteral("That filter is not the active one; nothing changed."));
    auto active = sieve::activeScriptName(k.ctx.mailDir, user);
    if (!active)
        r = active.error();
    else if ((which == QLatin1String(sieve::kForwardScriptName) ||
              which == QLatin1String(sieve::kVacationScriptName)) &&
             *active == which) {
        auto st = sieve::deactivateScripts(k.ctx.mailDir, user);
        r = st ? Result<QString>(which == QLatin1String(sieve::kForwardScriptName)
                                     ? QStringLiteral("Forwarding is off.")
                                     : QStringLiteral("The vacation reply is off."))
               : Result<QString>(st.error());
    }
    return reply(k.done(k, QStringLiteral("sieve.off"), which, r, "/panel/filters"));
}

// The one table of the user pages' changes: path -> handler.
const QHash<QString, UserPageAction>& userPageActions() {
    static const QHash<QString, UserPageAction> table = {
        {QStringLiteral("/panel/security/2fa/enrol"), enrolTwoFactor},
        {QStringLiteral("/panel/security/2fa/confirm"), confirmTwoFactor},
        {QStringLiteral("/panel/security/2fa/disable"), disableTwoFactor},
        {QStringLiteral("/panel/security/app/add"), addAppPassword},
        {QStringLiteral("/panel/security/app/revoke"), revokeAppPassword},
        {QStringLiteral("/panel/filters/forward"), forwardFilter},
        {QStringLiteral("/panel/filters/vacation"), vacationFilter},
        {QStringLiteral("/panel/filters/off"), filterOff},
    };
    return table;
}
}  // namespace

void userPagePost(UserPageKit& k, const QString& path, const QMap<QString, QString>& f, QObject* life,
                  PanelReply reply) {
    if (const UserPageAction action = userPageActions().value(path)) return action(k, f, life, reply);
    reply(k.show(k, QStringLiteral("Not found"), QStringLiteral("<p>No such page.</p>"), 404));
}

}  // namespace postern::web
