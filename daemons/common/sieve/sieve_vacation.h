// sieve_vacation.h — the Sieve vacation action (RFC 5230, RFC 6131) carried
// out: whether a reply is due (RFC 3834 rules), the reply message, and the
// per-user record of whom we answered, so each sender gets one reply per period.
//
// Interface:
//   whyNoReply(facts) -> nullopt when a reply is due, else the reason (logged).
//     No reply (each a row of the unit test's table):
//       - to the null sender (RFC 5230 4.6, RFC 3834 2);
//       - to mail with Auto-Submitted other than "no" (RFC 3834 5, RFC 5230 4.6);
//       - to mailing-list mail: List-Id, List-Help, List-Subscribe,
//         List-Unsubscribe, List-Post, List-Owner, List-Archive (RFC 2369,
//         2919), or Precedence bulk/list/junk (RFC 3834 2: a SHOULD NOT);
//       - to senders that are not people: local parts MAILER-DAEMON,
//         LISTSERV, majordomo, owner-*, *-request, *-bounces (RFC 3834 2);
//       - to ourselves: the sender is the user's address, one of :addresses
//         or the :from address (RFC 5230 4.5);
//       - when none of the user's addresses (the envelope recipient with and
//         without +detail, the mailbox, :addresses) is in To, Cc, Bcc,
//         Resent-To, Resent-Cc or Resent-Bcc (RFC 5230 4.5).
//   buildReply(action, facts, fromAddress, now) -> Reply: to the envelope
//     sender (RFC 5230 4.3, RFC 3834 4), from `fromAddress`, with
//     Auto-Submitted: auto-replied (RFC 3834 5.1, RFC 5230 5.7), In-Reply-To
//     and References (RFC 5230 5.8), Subject :subject or "Auto: <original>"
//     (RFC 5230 5.3, RFC 3834 3.1.5), Date, Message-ID, MIME-Version; the
//     reason as text/plain UTF-8 (base64 when not ASCII), or with :mime as the
//     MIME entity the script wrote (RFC 5230 4.7; only its Content-* fields
//     are kept, so a script cannot add From, To, Bcc or Subject fields). The envelope sender of the
//     reply is the null sender (RFC 3834 3.3: no replies to replies).
//   handleOf(action): :handle, or a hash of :subject, :from, :mime and the
//     reason (RFC 5230 4.2: a changed text is a new vacation).
//   claimReply(dir, sender, handle, period, now) -> true when no reply went to
//     `sender` for `handle` in the `period` seconds before `now`, and records
//     this one; false when one did. Records live in <dir>/.vacation (one line
//     per (sender, handle): "<unix time> <sha256 hex>", no address in clear),
//     rewritten with core/atomic_file (temp, fsync, rename: a crash leaves the
//     old or the new file) under an flock of <dir>/.vacation.lock (daemons
//     and their threads deliver for one user at the same time). `now` is
//     passed in (the tests' clock). Expired lines are dropped when written.
// Security: every header looked at comes from the sender. Texts that go into
// the reply's header are unfolded, stripped of control characters and
// bounded (kMaxSubjectChars); a non-ASCII subject is RFC 2047 encoded.
// Limits: kMaxVacationEntries (10000) records per user: beyond, the oldest
//   are dropped (a sender may then get a second reply early); periods are cut
//   to kMaxVacationSeconds (365 days); kMaxSubjectChars (200).
// Standards: RFC 5230, RFC 6131, RFC 3834, RFC 2369, RFC 2919, RFC 2047.
#pragma once

#include "sieve.h"

#include <QDateTime>
#include <QString>
#include <QStringList>
#include <optional>

namespace postern::sieve {

inline constexpr int kMaxVacationEntries = 10000;
inline constexpr qint64 kMaxVacationSeconds = 365LL * 86400;
inline constexpr int kMaxSubjectChars = 200;

struct VacationFacts {
    QByteArray header;     // the incoming message's header block
    QString envelopeFrom;  // empty: the null sender
    QString envelopeTo;    // the recipient as given in RCPT TO (maybe with +detail)
    QString mailbox;       // the user's own address
    QString delimiters = QStringLiteral("+");
};

std::optional<QString> whyNoReply(const Action& vacation, const VacationFacts& facts);

struct VacationReply {
    QString to;          // the envelope recipient of the reply (the original envelope sender)
    QString from;        // its From: address
    QByteArray message;  // CRLF line endings
    bool eightBit = false;
    QString handle;
    qint64 periodSeconds = 0;
};
VacationReply buildReply(const Action& vacation, const VacationFacts& facts, const QString& fromAddress,
                         const QDateTime& now = QDateTime::currentDateTimeUtc());
QString handleOf(const Action& vacation);

Result<bool> claimReply(const QString& dir, const QString& sender, const QString& handle, qint64 periodSeconds,
                        qint64 now);

}  // namespace postern::sieve
