// dkim.h — DKIM signatures (RFC 6376) with RSA-SHA256 and Ed25519-SHA256
// (RFC 8463), relaxed/relaxed canonicalisation.
//
// Interface:
//   canonicalizeHeaderRelaxed(name, value) / canonicalizeBodyRelaxed(body)
//   signMessage(message, domain, selector, keyPem, now)  -> the complete
//       "DKIM-Signature: ..." header field (folded, CRLF-terminated) to put in
//       front of the message. Signs From (over-signed, so no second From can be
//       added), To, Cc, Subject, Date, Message-ID, Reply-To, In-Reply-To,
//       References, MIME-Version, Content-Type, Content-Transfer-Encoding —
//       those present.
//   verifyMessage(message, resolver) -> per-signature results (pass/fail/
//       temperror/permerror/none) for Authentication-Results (RFC 8601).
// The key type (RSA or Ed25519) comes from the PEM key.
// Security: input messages are untrusted; all parsing is bounded by the
// message size; keys are read only through core/dkim_keys.h.
#pragma once

#include "core/dns.h"
#include "core/result.h"

#include <QByteArray>
#include <QDateTime>
#include <QList>
#include <QString>

namespace postern::dkim {

QByteArray canonicalizeHeaderRelaxed(const QByteArray& name, const QByteArray& value);
QByteArray canonicalizeBodyRelaxed(const QByteArray& body);

Result<QByteArray> signMessage(const QByteArray& message, const QString& domain, const QString& selector, const QByteArray& keyPem,
                               const QDateTime& now = QDateTime::currentDateTimeUtc());

struct VerifyResult {
    enum class Status { Pass, Fail, TempError, PermError, Neutral };
    Status status = Status::PermError;
    QString domain;    // d=
    QString selector;  // s=
    QString reason;    // human-readable detail
};
QString toString(VerifyResult::Status s);
// Verifies every DKIM-Signature in the message (at most 8). Empty list: no signature.
QList<VerifyResult> verifyMessage(const QByteArray& message, Resolver& dns);

}  // namespace postern::dkim
