// panel_sessions.h — login sessions, cookies and CSRF tokens of the web panel.
//
// Interface:
//   PanelSessions::create(user, now)  a new session: id = 32 random bytes (256 bits,
//                                     QRandomGenerator::system, i.e. the kernel's CSPRNG),
//                                     sent as 64 lower-case hex digits; its own CSRF token,
//                                     32 more random bytes. Returns the id.
//   find(id, now)                     the live session, or nullptr (unknown, malformed,
//                                     idle longer than kIdleMs, older than kAbsoluteMs:
//                                     then it is removed); a hit refreshes the idle clock.
//   remove(id), removeUser(user)      logout; every session of a user (deleted, password reset)
//   tokenEqual(a, b)                  constant-time comparison (CRYPTO_memcmp) of tokens of
//                                     equal length; different lengths are unequal at once
//                                     (the length of our tokens is public).
//   cookieValue(header, name)         the value of cookie `name` in a Cookie header
//                                     (RFC 6265 5.4 syntax: "a=b; c=d"); empty when absent
//                                     or given twice (an injected duplicate is not guessed at).
//   setCookie(name, value, maxAgeSecs) a Set-Cookie value: HttpOnly; Secure; SameSite=Strict;
//                                     Path=/ (maxAgeSecs 0: delete the cookie).
// Security: sessions live in the webd process's memory only (a restart logs everyone
// out); they are keyed by SHA-256 of the id, so a lookup's timing says nothing useful
// about stored ids, and the map never holds the id itself. The CSRF token is bound to
// the session and compared in constant time.
// Limits: kMaxSessions (1000; when full, the session used longest ago is dropped),
// kMaxSessionsPerUser (20; the user's oldest is dropped), idle kIdleMs (30 min),
// absolute kAbsoluteMs (12 h). Standards: RFC 6265 (cookies), RFC 6265bis SameSite.
#pragma once

#include <QByteArray>
#include <QHash>
#include <QString>

namespace postern::web {

inline constexpr int kSessionIdBytes = 32;
inline constexpr qint64 kIdleMs = 30LL * 60 * 1000;
inline constexpr qint64 kAbsoluteMs = 12LL * 3600 * 1000;
inline constexpr int kMaxSessions = 1000;
inline constexpr int kMaxSessionsPerUser = 20;
inline constexpr char kSessionCookie[] = "postern_session";
inline constexpr char kLoginCookie[] = "postern_login";

struct PanelSession {
    QString user;     // normalised address
    QByteArray csrf;  // 64 hex digits
    qint64 createdMs = 0;
    qint64 lastUsedMs = 0;
    QString flash;  // the result of the last change, shown once on the next page
    bool flashError = false;
    // auth.require_2fa_admins and an administrator without two-factor login: until the
    // enrolment is confirmed this session reaches only the enrolment pages and logout.
    bool mustEnrol = false;
};

class PanelSessions {
public:
    QByteArray create(const QString& user, qint64 nowMs);
    PanelSession* find(const QByteArray& id, qint64 nowMs);
    void remove(const QByteArray& id);
    void removeUser(const QString& user);
    int size() const { return int(m_sessions.size()); }

    static QByteArray randomToken();                  // 64 hex digits from 32 random bytes
    static bool wellFormed(const QByteArray& token);  // exactly 64 lower-case hex digits
    static bool tokenEqual(const QByteArray& a, const QByteArray& b);
    static QByteArray cookieValue(const QByteArray& cookieHeader, const QByteArray& name);
    static QByteArray setCookie(const QByteArray& name, const QByteArray& value, qint64 maxAgeSecs);

private:
    static QByteArray key(const QByteArray& id);
    void dropOldest(const QString& user);
    QHash<QByteArray, PanelSession> m_sessions;  // SHA-256(id) -> session
};

}  // namespace postern::web
