// sasl.cpp — see sasl.h.
#include "sasl.h"

#include <openssl/crypto.h>

namespace postern {

SaslServer::Step SaslServer::fail(Failure f, const QString& reason) {
    Step s;
    s.kind = StepKind::Failed;
    s.failure = f;
    s.reason = reason;
    OPENSSL_cleanse(m_password.data(), size_t(m_password.size()));
    m_password.clear();
    return s;
}

bool SaslServer::decode(const QByteArray& b64In, QByteArray* out) {
    QByteArray b64 = b64In.trimmed();
    if (b64 == "=") {  // RFC 4954 4: "=" is an empty initial response
        out->clear();
        return true;
    }
    if (b64.size() > kMaxLine) return false;
    auto r = QByteArray::fromBase64Encoding(b64, QByteArray::AbortOnBase64DecodingErrors);
    if (!r) return false;
    *out = r.decoded;
    return true;
}

SaslServer::Step SaslServer::plain(const QByteArray& b64) {
    QByteArray raw;
    if (!decode(b64, &raw)) return fail(Failure::Syntax, QStringLiteral("invalid base64"));
    // message = [authzid] NUL authcid NUL passwd   (RFC 4616 2)
    const QList<QByteArray> parts = raw.split('\0');
    OPENSSL_cleanse(raw.data(), size_t(raw.size()));
    if (parts.size() != 3) return fail(Failure::Syntax, QStringLiteral("PLAIN needs authzid NUL authcid NUL password"));
    const QByteArray& authzid = parts.at(0);
    const QByteArray& authcid = parts.at(1);
    if (authcid.isEmpty() || parts.at(2).isEmpty())
        return fail(Failure::Syntax, QStringLiteral("empty user or password"));
    if (authcid.size() > kMaxField || parts.at(2).size() > kMaxField || authzid.size() > kMaxField)
        return fail(Failure::Syntax, QStringLiteral("field too long"));
    const QString user = QString::fromUtf8(authcid);
    if (user.toUtf8() != authcid) return fail(Failure::Syntax, QStringLiteral("user name is not UTF-8"));
    if (!authzid.isEmpty() && QString::fromUtf8(authzid).compare(user, Qt::CaseInsensitive) != 0)
        return fail(Failure::AuthzidMismatch, QStringLiteral("authorization identity differs from the login"));
    m_user = user;
    m_password = parts.at(2);
    Step s;
    s.kind = StepKind::Done;
    return s;
}

// LOGIN: the user name (as the initial response or the answer to "Username:"); next, "Password:".
SaslServer::Step SaslServer::loginUser(const QByteArray& b64) {
    QByteArray user;
    if (!decode(b64, &user) || user.isEmpty() || user.size() > kMaxField)
        return fail(Failure::Syntax, QStringLiteral("invalid user name"));
    m_user = QString::fromUtf8(user);
    m_stage = 2;
    Step s;
    s.kind = StepKind::Challenge;
    s.challenge = "Password:";
    return s;
}

SaslServer::Step SaslServer::start(const QString& mechanism, const QByteArray& initialResponse,
                                   bool hasInitialResponse) {
    m_mechanism = mechanism.toUpper();
    m_stage = 0;
    m_user.clear();
    m_password.clear();
    if (m_mechanism == u"PLAIN") {
        if (hasInitialResponse) return plain(initialResponse);
        m_stage = 1;
        Step s;
        s.kind = StepKind::Challenge;  // empty challenge: "334 " / "+ "
        return s;
    }
    if (m_mechanism == u"LOGIN") {
        if (hasInitialResponse) return loginUser(initialResponse);
        m_stage = 1;
        Step s;
        s.kind = StepKind::Challenge;
        s.challenge = "Username:";
        return s;
    }
    return fail(Failure::BadMechanism, QStringLiteral("unsupported mechanism"));
}

SaslServer::Step SaslServer::next(const QByteArray& lineIn) {
    const QByteArray line = lineIn.trimmed();
    if (line == "*") return fail(Failure::Cancelled, QStringLiteral("client cancelled"));
    if (m_mechanism == u"PLAIN" && m_stage == 1) return plain(line);
    if (m_mechanism == u"LOGIN" && m_stage == 1) return loginUser(line);
    if (m_mechanism == u"LOGIN" && m_stage == 2) {
        QByteArray pw;
        if (!decode(line, &pw) || pw.isEmpty() || pw.size() > kMaxField)
            return fail(Failure::Syntax, QStringLiteral("invalid password encoding"));
        m_password = pw;
        m_stage = 3;
        Step s;
        s.kind = StepKind::Done;
        return s;
    }
    return fail(Failure::Syntax, QStringLiteral("unexpected SASL response"));
}

QByteArray SaslServer::takePassword() {
    QByteArray p = m_password;
    OPENSSL_cleanse(m_password.data(), size_t(m_password.size()));
    m_password.clear();
    return p;
}

}  // namespace postern
