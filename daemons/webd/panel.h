// panel.h — the web control panel of postern-webd, under /panel/ (HTTPS only).
//
// Routes (all HTML pages server-rendered; GET shows, POST changes then 303-redirects):
//   GET  /panel/style.css                     the stylesheet (no login needed)
//   GET  /panel/login, POST /panel/login      address + password; login CSRF by a
//                                             double-submit cookie (postern_login)
//   GET  /panel/login/code, POST /panel/login/code   the second step of an account with
//                                             two-factor login on: the 6-digit TOTP code
//   POST /panel/logout
//   GET  /panel/                              administrators: dashboard; users: /panel/account
//   GET  /panel/account                       own password change, client settings, quota
//   POST /panel/account/password              current + new password (current checked first)
//   GET  /panel/users, GET /panel/user?address=A            (administrators)
//   POST /panel/users/{add,password,quota,admin,delete}     (administrators)
//   GET  /panel/aliases[?resolve=ADDRESS], POST /panel/aliases/{add,remove}  (administrators)
//   GET  /panel/domains, /panel/domain?domain=D, /panel/domain/records?domain=D&format=F,
//   POST /panel/domains/{add,remove}, /panel/domain/dkim-rotate   (administrators;
//                                             panel_admin_pages.h, which also adds the
//                                             dashboard's health and DNS status sections)
//   /panel/security (2FA enrolment, app passwords), /panel/filters (forwarding, vacation):
//                                             every user, own account: panel_user_pages.h
//   /panel/queue..., /panel/logs, /panel/settings...   (administrators): panel_ops_pages.h
// Login: Authenticator::verify (the mail protocols' authenticator and shared
// throttle, protocol "web": the account password only, never an app password). For an
// account with two-factor login on (secondFactorRequired()) a correct password creates
// no session but a pending login (panel_pending.h: 5 minutes, one code check at a time,
// 3 wrong codes, single use; cookie postern_pending, its own CSRF token) and shows the
// code page; the code is checked by Authenticator::verifySecondFactor (the same throttle:
// counted, delayed, logged result=failed for fail2ban) calling TwoFactor::verifyCode
// through the AccountBroker (RFC 6238 window, replay protection: a code accepted once
// is refused after). Only then is a session created.
// auth.require_2fa_admins: an administrator without two-factor login gets a session
// restricted to the enrolment pages (/panel/security, its 2fa/enrol and 2fa/confirm)
// and logout until a code is confirmed. Why not refuse (the earlier behaviour): refusing
// leaves the administrator no way forward but a root shell (posternctl user 2fa enrol),
// and the panel exists so that none is needed; admin pages and admin changes stay
// closed to a password alone either way. Known residue: someone holding only the
// password of an administrator who has not enrolled yet can enrol their own device —
// the same exposure as before the flag was set; enrol administrators (posternctl) before
// turning the flag on to close it.
// Changes go through the AccountBroker (account_broker.h: the core functions of
// posternctl, applied by webd's privileged helper), asynchronously: a request waiting for
// the helper never holds up other connections (the 2FA code step's check included). When
// the helper cannot take or answer a request the page says so with its own status: 503
// and Retry-After (kMaxQueued requests already waiting; nothing changed), 504 (no answer
// within kCallTimeoutMs: the change may or may not have been made), 502 (no helper).
// Sessions are kept in <data_dir>/state/panel/sessions.json and survive a restart
// (panel_sessions.h: only SHA-256 of each id, mode 0600).
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
#include "panel_pending.h"
#include "panel_sessions.h"

#include "common/authenticator.h"
#include "common/session_io.h"

#include "core/accounts.h"
#include "core/config.h"

#include <QObject>
#include <functional>
#include <memory>

namespace postern::web {

class DashboardProbes;

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
    PendingLogins pending;                    // password given, TOTP code not yet
    std::function<qint64()> clock;            // ms since the epoch; tests may replace it
    std::shared_ptr<DashboardProbes> probes;  // the dashboard's slow checks (made at first use)
};

// '&', '<', '>', '"' and '\'' as character references.
QString htmlEscape(const QString& s);
// The security headers of every panel response.
QList<QPair<QByteArray, QByteArray>> panelSecurityHeaders();
// True when `user` has two-factor login on: the password alone opens no session, the
// login continues with the code step (/panel/login/code).
bool secondFactorRequired(const Accounts& accounts, const QString& user);

// Serves one request below /panel/ (TLS already checked by the caller). `life` is
// the connection's lifetime object: reply is never called after it is destroyed.
void handlePanel(PanelContext& ctx, const HttpRequest& request, const QByteArray& body, const ConnectionInfo& conn,
                 QObject* life, PanelReply reply);

}  // namespace postern::web
