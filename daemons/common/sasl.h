// sasl.h — server side of the SASL mechanisms we offer: PLAIN (RFC 4616) and
// LOGIN (draft-murchison-sasl-login), shared by SMTP AUTH (RFC 4954), IMAP
// AUTHENTICATE (RFC 9051 6.2.2) and POP3 AUTH (RFC 5034).
//
// Interface: SaslServer is a tiny state machine, no I/O.
//   start(mechanism, initialResponse)  -> Step
//   next(clientLine)                   -> Step
// A Step is: Challenge (send "334 <base64>" / "+ <base64>" with `challenge`),
// Done (credentials ready: authcid + password), or Failed (with a reason for the
// log and the RFC 4954 code: 501 syntax, 504 mechanism, 535 ... ). A client
// line of "*" cancels (RFC 4954 4: 501).
// Security: authzid must be empty or equal to authcid (no proxy login). The
// password is kept only until take(); nothing here is logged. Limits: decoded
// fields at most 1024 bytes; lines at most 12 KiB (RFC 4954 says 12288).
#pragma once

#include <QByteArray>
#include <QString>
#include <QStringList>

namespace postern {

class SaslServer {
public:
    static constexpr int kMaxLine = 12288;
    static constexpr int kMaxField = 1024;

    enum class StepKind { Challenge, Done, Failed };
    enum class Failure { None, Syntax, BadMechanism, Cancelled, AuthzidMismatch };
    struct Step {
        StepKind kind = StepKind::Failed;
        QByteArray challenge;  // raw (not yet base64) challenge text for Challenge
        Failure failure = Failure::None;
        QString reason;  // for the log
    };

    // initialResponse: the base64 text after the mechanism name (may be empty, or "=" for an empty response).
    Step start(const QString& mechanism, const QByteArray& initialResponse, bool hasInitialResponse);
    Step next(const QByteArray& line);

    QString user() const { return m_user; }
    QByteArray takePassword();
    QString mechanism() const { return m_mechanism; }

private:
    Step fail(Failure f, const QString& reason);
    Step plain(const QByteArray& b64);
    Step loginUser(const QByteArray& b64);
    bool decode(const QByteArray& b64, QByteArray* out);

    QString m_mechanism;
    int m_stage = 0;
    QString m_user;
    QByteArray m_password;
};

}  // namespace postern
