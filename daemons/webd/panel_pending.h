// panel_pending.h — the web panel's pending logins: the state between a correct
// account password and the second factor (the TOTP code) of an account with
// two-factor login on. It is not a session: it opens no page but the code form.
//
// Interface:
//   PendingLogins::create(user, now)  a new pending login: id = 32 random bytes sent as
//                                     64 hex digits (cookie postern_pending), its own CSRF
//                                     token for the code form. Returns the id.
//   find(id, now)                     the live pending login (to show the code form), or
//                                     nullptr (unknown, malformed, expired: then removed).
//                                     Expiry is absolute: kPendingLoginMs after create().
//   claim(id, now)                    starts checking a code: a copy of the pending login,
//                                     or nothing when it is unknown, expired or already
//                                     being checked (one code at a time per pending login:
//                                     two parallel requests cannot both use it).
//   settle(id, success)               the code's result: success removes it (single use: one
//                                     pending login gives at most one session); a failure
//                                     counts, and the kMaxCodeFailures-th removes it (the
//                                     password must be given again). Unknown id: nothing.
//   release(id)                       the check could not decide (webd's helper busy or
//                                     gone): checking ends, nothing is counted or used.
//   remove(id)
//   A check whose client hangs up before the answer is never settled: that pending login
//   stays claimed until it expires (the user logs in again; nothing is let in).
// Security: kept in webd's memory only, keyed by SHA-256 of the id like PanelSessions;
// the id is bound to an HttpOnly; Secure; SameSite=Strict cookie and the form carries the
// pending login's own CSRF token (constant-time compare by the caller). Every code is also
// checked through the login throttle (Authenticator::verifySecondFactor) and TwoFactor's
// replay protection; this class only bounds how long and how often one password may be
// followed by code guesses.
// Limits: kPendingLoginMs (5 min, at the boundary expired), kMaxCodeFailures (3) wrong codes
// per pending login, kMaxPendingLogins (1000; when full, the oldest is dropped),
// kMaxPendingPerUser (5; the user's oldest is dropped).
#pragma once

#include <QByteArray>
#include <QHash>
#include <QString>
#include <optional>

namespace postern::web {

inline constexpr qint64 kPendingLoginMs = 5LL * 60 * 1000;
inline constexpr int kMaxCodeFailures = 3;
inline constexpr int kMaxPendingLogins = 1000;
inline constexpr int kMaxPendingPerUser = 5;
inline constexpr char kPendingCookie[] = "postern_pending";

struct PendingLogin {
    QString user;     // normalised address, password already verified
    QByteArray csrf;  // 64 hex digits, for the code form
    qint64 createdMs = 0;
    int failures = 0;
    bool checking = false;
};

class PendingLogins {
public:
    QByteArray create(const QString& user, qint64 nowMs);
    const PendingLogin* find(const QByteArray& id, qint64 nowMs);
    std::optional<PendingLogin> claim(const QByteArray& id, qint64 nowMs);
    void settle(const QByteArray& id, bool success);
    void release(const QByteArray& id);
    void remove(const QByteArray& id);
    int size() const { return int(m_pending.size()); }

private:
    PendingLogin* live(const QByteArray& id, qint64 nowMs);
    void dropOldest(const QString& user);
    QHash<QByteArray, PendingLogin> m_pending;  // SHA-256(id) -> pending login
};

}  // namespace postern::web
