// panel_user_pages.h — the web panel's self-service pages for a user's own account:
// two-factor login and app passwords (/panel/security) and mail filters, i.e.
// forwarding and a vacation reply (/panel/filters).
//
// Routes (POST: CSRF checked by panel.cpp before these run):
//   GET  /panel/security                       2FA state, app passwords (name, created, last use)
//   POST /panel/security/2fa/enrol             new secret: QR code (inline SVG, no script or
//                                              style: passes the CSP), the secret as text, the
//                                              otpauth URI, and the confirm form (shown once)
//   POST /panel/security/2fa/confirm  code     turns 2FA on (ends a forced-enrolment session's
//                                              restriction, auth.require_2fa_admins)
//   POST /panel/security/2fa/disable  code | password   (refused for an administrator
//                                              while auth.require_2fa_admins is on)
//   POST /panel/security/app/add      name     the password is shown once in the answer
//   POST /panel/security/app/revoke   name
//   GET  /panel/filters                        the active script and the two forms
//   POST /panel/filters/forward  to, keep      POST /panel/filters/vacation subject, text,
//   POST /panel/filters/off      which=forward|vacation       from, until, days
// Everything goes through the functions posternctl uses: two-factor and app passwords
// through the AccountBroker (core/two_factor.h, root's helper: the TOTP secrets are
// root's); the list of app passwords is read here with TwoFactor::appPasswords (it needs
// no secret); filters through common/sieve/sieve_forms.h and sieve_store.h as the daemon
// user webd runs as (the same files ManageSieve serves, active at once).
// Security: a user only ever acts on their own address (the session's); a password to
// turn 2FA off is checked by the Authenticator (the login throttle); codes and app
// passwords are never logged; every change is an audit line (panel.audit).
#pragma once

#include "panel.h"

#include <optional>

namespace postern::web {

// What panel.cpp lends the user pages: the logged-in session and its page frame.
struct UserPageKit {
    PanelContext& ctx;
    const ConnectionInfo& conn;
    PanelSession* session = nullptr;
    QByteArray sessionId;
    bool admin = false;
    // A page in the frame (navigation for the role), with the session's flash shown once.
    PanelResponse (*show)(UserPageKit& kit, const QString& title, const QString& content, int code) = nullptr;
    // After a change: audit line, the result as the next page's flash, 303 to `to`.
    PanelResponse (*done)(UserPageKit& kit, const QString& action, const QString& target, const Result<QString>& result,
                          const QByteArray& to) = nullptr;
};

// The user pages' routes: true when `path` is one of them (then `reply` is called once).
bool isUserPage(const QString& path);
// While a session must enrol (auth.require_2fa_admins), only these are open.
bool isEnrolmentPage(const QString& path);
// Both answer later (webd's helper is asked asynchronously), never after `life` is gone.
void userPageGet(UserPageKit& kit, const QString& path, QObject* life, PanelReply reply);
void userPagePost(UserPageKit& kit, const QString& path, const QMap<QString, QString>& form, QObject* life,
                  PanelReply reply);

}  // namespace postern::web
