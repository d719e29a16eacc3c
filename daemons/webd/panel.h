// panel.h — the web control panel of postern-webd, under /panel/ (HTTPS only).
//
// Routes (all HTML pages server-rendered; GET shows, POST changes then 303-redirects):
//   GET  /panel/style.css                     the stylesheet (no login needed)
//   GET  /panel/login, POST /panel/login      address + password; login CSRF by a
//                                             double-submit cookie (postern_login)
//   POST /panel/logout
//   GET  /panel/                              administrators: dashboard; users: /panel/account
//   GET  /panel/account                       own password change, client settings, quota
//   POST /panel/account/password              current + new password (current checked first)
//   GET  /panel/users, GET /panel/user?address=A            (administrators)
//   POST /panel/users/{add,password,quota,admin,delete}     (administrators)
//   GET  /panel/aliases[?resolve=ADDRESS], POST /panel/aliases/{add,remove}  (administrators)
//   /panel/queue..., /panel/logs, /panel/settings...   (administrators): panel_ops_pages.h
// Login: Authenticator::verify (the mail protocols' authenticator and shared
// throttle, protocol "web": the account password only, never an app password); then an
// account with two-factor login on is refused (secondFactorRequired(): no code step yet),
// and so is an administrator without it when auth.require_2fa_admins is on.
// Changes go through the AccountBroker (account_broker.h: the core functions of
// posternctl, applied by webd's privileged helper).
// Security: every POST needs the session's CSRF token (constant-time check) and a
// urlencoded body of at most kMaxFormBody; administrators are re-checked against
// the current accounts on every request (revoking the flag or deleting the user
// takes effect at once). Every page carries Content-Security-Policy (default-src
// 'self'; no inline script or style; frame-ancestors 'none'), X-Frame-Options DENY,
// Cache-Control no-store, X-Content-Type-Options nosniff, Referrer-Policy no-referrer;
// every value shown is HTML-escaped (htmlEscape). Every change, login and logout
// is one audit line in mail.log: panel.audit user= action= target= remote= result=;
// passwords are never logged.
#pragma once

#include "account_broker.h"
#include "http_request.h"
#include "panel_sessions.h"

#include "common/authenticator.h"
#include "common/session_io.h"

#include "core/accounts.h"
#include "core/config.h"

#include <QObject>
#include <functional>

namespace postern::web {

struct PanelResponse {
    int code = 200;
    QByteArray contentType = "text/html; charset=utf-8";
    QByteArray body;
    QList<QPair<QByteArray, QByteArray>> headers;
};
using PanelReply = std::function<void(PanelResponse)>;

struct PanelContext {
    const Config* config = nullptr;
    AccountStore* accounts = nullptr;
    Authenticator* auth = nullptr;
    AccountBroker* broker = nullptr;
    QString runDir, queueDir, mailDir;
    PanelSessions sessions;
    std::function<qint64()> clock;  // ms since the epoch; tests may replace it
};

// '&', '<', '>', '"' and '\'' as character references.
QString htmlEscape(const QString& s);
// The security headers of every panel response.
QList<QPair<QByteArray, QByteArray>> panelSecurityHeaders();
// True when `user` has two-factor login on. The panel has no code step yet, so such a
// login is refused (never let in on the password alone); the code step goes here.
bool secondFactorRequired(const Accounts& accounts, const QString& user);

// Serves one request below /panel/ (TLS already checked by the caller). `life` is
// the connection's lifetime object: reply is never called after it is destroyed.
void handlePanel(PanelContext& ctx, const HttpRequest& request, const QByteArray& body, const ConnectionInfo& conn, QObject* life,
                 PanelReply reply);

}  // namespace postern::web
