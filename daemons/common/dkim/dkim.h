// dkim.h — DKIM signatures (RFC 6376) with RSA-SHA256 and Ed25519-SHA256
// (RFC 8463), relaxed/relaxed canonicalisation.
//
// Interface:
//   canonicalizeHeaderRelaxed(name, value) / canonicalizeBodyRelaxed(body)
//   BodyCanonicalizer  simple or relaxed body canonicalisation (RFC 6376
//       3.4.3, 3.4.4) fed in pieces of any size, one byte at a time included:
//       the output equals that of the whole body at once. Held back while
//       undecided: a run of empty lines (and, for simple, a CR) at the end.
//   BodyHasher  the bh= digest over a canonicalizer's first `limit` bytes
//       (l=, RFC 6376 3.5), with the whole canonical length for checking l=.
//   signMessage(message, domain, selector, keyPem, now)  -> the complete
//       "DKIM-Signature: ..." header field (folded, CRLF-terminated) to put in
//       front of the message. Signs From (over-signed, so no second From can be
//       added), To, Cc, Subject, Date, Message-ID, Reply-To, In-Reply-To,
//       References, MIME-Version, Content-Type, Content-Transfer-Encoding —
//       those present.
//   verifyMessage(message, resolver) -> per-signature results (pass/fail/
//       temperror/permerror/none) for Authentication-Results (RFC 8601).
//   Both take the message as a mail::MessageFile (header block in memory,
//   body streamed once through every hasher that is needed: at most one per
//   signature) or as bytes in memory.
// The key type (RSA or Ed25519) comes from the PEM key.
// Security: input messages are untrusted; header parsing is bounded by the
// header block (MessageFile's bound), the body is never held whole; keys are
// read only through core/dkim_keys.h.
// Limits: kMaxSignatures signatures verified per message (more are ignored).
#pragma once

#include "common/mail/message_file.h"

#include "core/dns.h"
#include "core/result.h"

#include <QByteArray>
#include <QCryptographicHash>
#include <QDateTime>
#include <QList>
#include <QString>
#include <functional>

namespace postern::dkim {

inline constexpr int kMaxSignatures = 8;

QByteArray canonicalizeHeaderRelaxed(const QByteArray& name, const QByteArray& value);
QByteArray canonicalizeBodyRelaxed(const QByteArray& body);

enum class BodyCanon { Simple, Relaxed };

class BodyCanonicalizer {
public:
    using Sink = std::function<void(QByteArrayView)>;
    BodyCanonicalizer(BodyCanon canon, Sink sink);
    void feed(QByteArrayView data);
    void finish();  // once, after the last feed

private:
    void feedRelaxed(char c);
    void feedSimple(char c);
    void content(char c);  // relaxed: a byte of a non-empty line
    void flushCarriageReturns();
    void out(QByteArrayView bytes);
    void outCrlf(qint64 times);
    void flush();

    BodyCanon m_canon;
    Sink m_sink;
    QByteArray m_buffer;        // output not yet given to the sink
    qint64 m_heldEmpty = 0;     // relaxed: empty lines not yet known to be inside the body
    qint64 m_heldCrlf = 0;      // simple: CRLF pairs that may be the trailing run
    qint64 m_pendingCr = 0;     // CRs that may end the line (relaxed) / may start a CRLF (simple: 0 or 1)
    bool m_pendingWsp = false;  // relaxed: whitespace to write as one SP if more content follows
    bool m_lineHasContent = false;
};

class BodyHasher {
public:
    explicit BodyHasher(BodyCanon canon, qint64 limit = -1);
    BodyHasher(const BodyHasher&) = delete;  // the canonicalizer's sink points back here
    BodyHasher& operator=(const BodyHasher&) = delete;
    void feed(QByteArrayView data) { m_canon.feed(data); }
    QByteArray finish();  // the SHA-256 digest (raw)
    qint64 canonicalLength() const { return m_length; }

private:
    QCryptographicHash m_hash{QCryptographicHash::Sha256};
    qint64 m_limit;
    qint64 m_length = 0;
    BodyCanonicalizer m_canon;
};

Result<QByteArray> signMessage(const mail::MessageFile& message, const QString& domain, const QString& selector,
                               const QByteArray& keyPem, const QDateTime& now = QDateTime::currentDateTimeUtc());
Result<QByteArray> signMessage(const QByteArray& message, const QString& domain, const QString& selector,
                               const QByteArray& keyPem, const QDateTime& now = QDateTime::currentDateTimeUtc());

struct VerifyResult {
    enum class Status { Pass, Fail, TempError, PermError, Neutral };
    Status status = Status::PermError;
    QString domain;    // d=
    QString selector;  // s=
    QString reason;    // human-readable detail
};
QString toString(VerifyResult::Status s);
// Verifies every DKIM-Signature in the message (at most kMaxSignatures). Empty list: no signature.
QList<VerifyResult> verifyMessage(const mail::MessageFile& message, Resolver& dns);
QList<VerifyResult> verifyMessage(const QByteArray& message, Resolver& dns);

}  // namespace postern::dkim
