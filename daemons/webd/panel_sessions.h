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
//   persistTo(path, now)              keep the sessions in `path` too (webd: <data_dir>/
//                                     state/panel/sessions.json), loading what is there:
//                                     sessions survive a webd restart. Expired entries and
//                                     entries last used in the future (a clock set back) are
//                                     dropped on load; times must be whole numbers of ms in
//                                     [0, 2^53] (else the entry is malformed); a file that is unreadable, too large,
//                                     of another version or with any malformed entry is
//                                     ignored as a whole (log line panel.sessions_corrupt;
//                                     it is replaced at the next change), never a crash.
//                                     Written (core/atomic_file.h writeFileAtomic: temp,
//                                     fsync, rename; mode 0600, owner the webd user, which
//                                     writes it after dropping root) on create, logout,
//                                     removeUser, expiry, changed() (the enrolment flag),
//                                     and when a session's idle clock moved kPersistTouchMs
//                                     or more since it was last written (so an idle expiry
//                                     after a restart comes at most that much early, never late).
//   changed()                         write now (after setting mustEnrol).
// File (JSON): {"version":1,"sessions":[{"id_sha256":64 hex,"user","csrf":64 hex,
// "created_ms","last_used_ms","must_enrol"}]}; the flash message is not kept.
// Security: sessions are keyed by SHA-256 of the id, so a lookup's timing says nothing
// useful about stored ids, and neither the map nor the file ever holds the id itself
// (the file holds each session's CSRF token, useless without the cookie). The CSRF token
// is bound to the session and compared in constant time.
// Limits: kMaxSessions (1000; when full, the session used longest ago is dropped),
// kMaxSessionsPerUser (20; the user's oldest is dropped), idle kIdleMs (30 min),
// absolute kAbsoluteMs (12 h), the same on load; the file at most kMaxSessionFileBytes
// (1 MiB; 1000 sessions take about 300 KiB). Standards: RFC 6265 (cookies), RFC 6265bis
// SameSite.
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
inline constexpr qint64 kPersistTouchMs = 60'000;
inline constexpr qint64 kMaxSessionFileBytes = 1024 * 1024;
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
    void persistTo(const QString& path, qint64 nowMs);
    void changed() { save(); }

    static QByteArray randomToken();                  // 64 hex digits from 32 random bytes
    static bool wellFormed(const QByteArray& token);  // exactly 64 lower-case hex digits
    static bool tokenEqual(const QByteArray& a, const QByteArray& b);
    static QByteArray cookieValue(const QByteArray& cookieHeader, const QByteArray& name);
    static QByteArray setCookie(const QByteArray& name, const QByteArray& value, qint64 maxAgeSecs);

private:
    static QByteArray key(const QByteArray& id);
    bool dropOldest(const QString& user);
    void save();
    QHash<QByteArray, PanelSession> m_sessions;  // SHA-256(id) -> session
    QHash<QByteArray, qint64> m_savedLastUsed;   // SHA-256(id) -> lastUsedMs as written
    QString m_path;                              // empty: memory only
    bool m_saveFailed = false;                   // logged once until a save works again
};

}  // namespace postern::web
