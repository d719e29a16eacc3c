// header_identity.h — who a message says it is from: its From: and Sender:
// header fields, parsed strictly, for the submission policy (postern-smtpd)
// and the DKIM signer (postern-queued).
//
// Interface:
//   headerFields(message, names)  every field of the header block (up to the
//       first empty line) whose name is one of `names` (case-insensitive; blanks
//       between name and colon ignored, as RFC 5322 4.5.3 obs-syntax allows),
//       unfolded (CRLF before white space removed). Unlike parseHeader() there
//       is no cap on the number of fields scanned, so no field can hide behind
//       thousands of others. headerFieldSpans() also gives each field's byte range.
//   parseMailboxList(value, allowGroups, &error)  RFC 5322 3.4 mailbox-list
//       (address-list with groups when allowGroups, RFC 6854), strictly: every
//       byte must belong to the grammar, otherwise nullopt and the reason.
//       Accepted: comments (nested up to kMaxCommentDepth) anywhere CFWS may
//       be, folding white space, quoted strings, domain literals, obsolete
//       phrases with dots, RFC 2047 encoded words in display names (decoded
//       for display only) and RFC 6532 UTF-8. Refused: obsolete source routes
//       ("<@a:b@c>"), empty list members, nested groups, missing '@'.
//   headerIdentity(message)  the From: and Sender: mailboxes, or the problem
//       that makes them unusable (two From: fields, unparsable, no mailbox).
//   checkSubmitterIdentity(message, user, mayUse)  the submission rule: every
//       From: mailbox and the Sender: mailbox must be addresses `mayUse`
//       accepts (the same rule as MAIL FROM: the user's own address, its
//       +detail forms, aliases that lead to the user). Returns the refusal text
//       for a "550 5.7.1" reply, or nullopt when the message may go.
// Policy on a missing From: RFC 5322 3.6 requires one, but Postfix accepts such
// a submission (and adds a From: for local clients only). A message without
// From: claims no identity that could be forged and is never DKIM-signed, so it
// is accepted unchanged rather than refused (scripts that send bare bodies keep
// working). Two From: fields, or two Sender: fields, are refused (RFC 5322 3.6
// allows one of each): receivers disagree on which one counts.
// Security: the input is the submitter's message. Parsing is linear in the
// input and iterative (no recursion); comment nesting (kMaxCommentDepth) and
// mailboxes per field (kMaxIdentityMailboxes) are bounded, beyond -> refused.
// Addresses in refusal texts are reduced to printable ASCII and shortened.
// Standards: RFC 5322 3.2.1-3.4.1, 3.6, 3.6.2, 4.4, 4.5.3; RFC 6854; RFC 6532;
// RFC 2047 (display names).
#pragma once

#include <QByteArray>
#include <QList>
#include <QString>
#include <QStringList>
#include <functional>
#include <optional>

namespace postern::mail {

inline constexpr int kMaxCommentDepth = 32;
inline constexpr int kMaxIdentityMailboxes = 100;

struct IdentityMailbox {
    QString display;           // decoded display name, "" when none
    QString local;             // unquoted local part
    QString domain;            // as written (a domain literal keeps its brackets)
    bool quotedLocal = false;  // the local part needs quoting (not a dot-atom)
    QString address() const;   // local@domain, the local part quoted again when needed
};

// Unfolded values of the header fields named `names`, in order.
QList<QByteArray> headerFields(const QByteArray& message, const QList<QByteArray>& names);
// The same with where each field is: [start, end) covers its continuation lines and line ends.
struct FieldSpan {
    QByteArray value;
    qsizetype start = 0, end = 0;
};
QList<FieldSpan> headerFieldSpans(const QByteArray& message, const QList<QByteArray>& names);

std::optional<QList<IdentityMailbox>> parseMailboxList(const QByteArray& value, bool allowGroups, QString* error);

struct HeaderIdentity {
    enum class Problem { None, DuplicateFrom, BadFrom, EmptyFrom, DuplicateSender, BadSender };
    Problem problem = Problem::None;
    QString detail;  // the parser's reason for BadFrom / BadSender
    bool hasFrom = false;
    QList<IdentityMailbox> from;  // From: mailboxes (group members included)
    std::optional<IdentityMailbox> sender;
};
HeaderIdentity headerIdentity(const QByteArray& message);

std::optional<QString> checkSubmitterIdentity(const QByteArray& message, const QString& user,
                                              const std::function<bool(const QString& address)>& mayUse);

}  // namespace postern::mail
