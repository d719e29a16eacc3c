// store_error.h — why storing a message failed, classified once and said the
// same way by every protocol (SMTP local delivery, the queue runner's local
// delivery and its DSNs, IMAP APPEND, POP3 and the logs).
//
// Interface:
//   StoreError::fromErrno(err, detail, area)  the classification of an errno
//       from the store's system calls (the table below). Area::Spool is for
//       the queue's own files (postern-smtpd's spool file, the queue entry):
//       there EDQUOT is the server's quota, not a recipient's, so it counts as
//       DiskFull;
//   StoreError::overQuota(detail, messageAlone)  the store's own Maildir++
//       quota check: the mailbox is full, or the message alone is larger than
//       the whole quota;
//   temporary(), smtpCode(), enhancedCode(), text()  for SMTP replies, DSN
//       diagnostics, POP3 and logs; smtpReply() = "<code> <enhanced> <text>";
//   imapCode(), imapText()  for "NO [<code>] <text>";
//   detail  the cause with paths and errno text: for the operator's log only,
//       never sent to a client (it names files).
//   StoreStatus: success, or a StoreError (the store's Status).
//
// The table (RFC 5321 4.2.2/4.2.3, RFC 3463, RFC 9051 7.1):
//   kind              errno                 class  SMTP           IMAP
//   MailboxFull       EDQUOT, quota check   temp   452 4.2.2      OVERQUOTA
//   MessageOverQuota  quota check           perm   552 5.2.2      OVERQUOTA
//   DiskFull          ENOSPC, EDQUOT in     temp   452 4.3.1      OVERQUOTA
//                     the spool
//   TooLarge          EFBIG                 perm   552 5.3.4      LIMIT
//   Limit             EMLINK EMFILE ENFILE  temp   451 4.3.0      LIMIT
//                     ENAMETOOLONG
//   Local             anything else         temp   451 4.3.0      SERVERBUG
// Over quota: RFC 3463 3.3 calls X.2.2 "a persistent transient failure" (the
// user can make room), and RFC 5321 4.2.3 lists 452 for "insufficient system
// storage"; so a full mailbox is 452 4.2.2 and the sender's queue retries, as
// Dovecot LMTP answers with quota_full_tempfail=yes. Only a message larger
// than the whole quota can never fit: that one is 552 5.2.2, which is what
// Dovecot LMTP (by default) and Postfix's local/virtual agents (mbox_dsn:
// EDQUOT and EFBIG -> 5.2.2) answer for every over-quota message; retrying
// that one would only delay the bounce. A full disk is the server's problem,
// never the recipient's: 452 4.3.1 (RFC 3463 X.3.1 "mail system full";
// Postfix defers it with 4.3.0). EFBIG in a Maildir means the file system or
// RLIMIT_FSIZE cannot hold the file: 552 5.3.4 (X.3.4 "message too big for
// system"). IMAP says [OVERQUOTA] for the first three, as Dovecot does for
// quota and disk space alike (RFC 9051 7.1), [LIMIT] for EFBIG and the
// descriptor/link/name limits (as COPY/MOVE do), [SERVERBUG] for the rest.
// Security: the client-facing texts are fixed; detail stays in the log.
#pragma once

#include <QByteArray>
#include <QString>
#include <optional>

namespace postern::store {

struct StoreError {
    enum class Kind { MailboxFull, MessageOverQuota, DiskFull, TooLarge, Limit, Local };
    enum class Area { Mailbox, Spool };
    Kind kind = Kind::Local;
    int err = 0;     // errno, 0 for the store's own quota check
    QString detail;  // for the log

    static StoreError fromErrno(int err, QString detail, Area area = Area::Mailbox);
    static StoreError overQuota(QString detail, bool messageAlone);

    bool temporary() const;
    int smtpCode() const;
    QString enhancedCode() const;
    QString text() const;
    QString smtpReply() const;
    QByteArray imapCode() const;
    QString imapText() const;
};
QString toString(StoreError::Kind kind);

class [[nodiscard]] StoreStatus {
public:
    StoreStatus() = default;
    StoreStatus(StoreError error) : m_error(std::move(error)) {}  // NOLINT(google-explicit-constructor)
    bool ok() const { return !m_error.has_value(); }
    explicit operator bool() const { return ok(); }
    const StoreError& error() const { return *m_error; }

private:
    std::optional<StoreError> m_error;
};

}  // namespace postern::store
