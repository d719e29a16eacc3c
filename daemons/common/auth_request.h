// auth_request.h — what a protocol session hands to its backend to check a
// login, and the three answers it can get back. Shared by SMTP, IMAP and POP3
// so their backends (and the fakes in tests and fuzz targets) agree.
//
// Interface:
//   AuthRequest   who asks: the session's lifetime object (`context`: no
//                 answer is delivered once it is destroyed), its log id, the
//                 client's address, the login name as sent, and `hungUp`, a
//                 probe the authenticator calls before it checks a password it
//                 had to delay (true: the client is gone, the check is skipped).
//   AuthVerdict   Ok; Failed (wrong name or password); TempFail (refused
//                 without checking the password: too many attempts in flight
//                 for this client or account; the client may try again later:
//                 454 4.7.0 / NO [UNAVAILABLE] / -ERR [SYS/TEMP]).
//   AuthDone      the answer, on the main thread, with the normalised login.
// Security: the password travels separately (a QByteArray the checker wipes).
#pragma once

#include <QHostAddress>
#include <QObject>
#include <QString>
#include <functional>

namespace postern {

struct AuthRequest {
    QObject* context = nullptr;
    QString sessionId;
    QHostAddress peer;
    QString login;
    std::function<bool()> hungUp;  // may be empty: never hung up
};

enum class AuthVerdict { Ok, Failed, TempFail };

using AuthDone = std::function<void(AuthVerdict verdict, QString user)>;

}  // namespace postern
