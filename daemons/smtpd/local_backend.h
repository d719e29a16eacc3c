// local_backend.h — the real SmtpBackend: accounts, authenticator, spool,
// Maildir delivery and the outbound queue.
//
// Recipient policy (the open-relay guard lives here and nowhere else):
//   * local domain: the address must resolve through Accounts::resolve (users,
//     aliases, plus-addressing, catch-all); quoted local parts and address
//     literals are never local mailboxes; '%' and '!' are ordinary characters
//     of a local part that no user has, so "user%other@local" is unknown;
//   * any other domain: accepted only from an authenticated user (then queued);
//   * RCPT TO:<Postmaster> (no domain) means postmaster@<primary_domain>.
// Sender policy for submission (authenticated users): MAIL FROM must be an
// address the user may send as (maySendAs: own address, +detail, aliases that
// lead to the user); so must every From: mailbox and the Sender: of the
// header, checked when the content is complete, before anything is stored:
// otherwise "550 5.7.1 From: header address <x> not owned by user u" (also for
// two From: fields or an unparsable one; a missing From: is accepted, see
// common/mail/header_identity.h). The DKIM signer in postern-queued checks
// the From: domain again against the queue envelope's auth-user.
// Delivery (on a worker thread): the header block is read back from the spool
// file once (common/mail/message_file.h; at most smtp.max_header_size plus
// 64 KiB for our trace fields), the body is only streamed: for DKIM (body
// hash computed over the file) and into the Maildir copies. Mail without
// AUTH gets SPF/DKIM/DMARC results (common/senderauth); forged results
// claiming our name are removed by writing the cleaned header and then the
// body range of the spool file into each copy. One Maildir copy per distinct
// local mailbox with "Return-Path" and "Delivered-To" (and our
// Authentication-Results) in front, written by the one store operation
// (common/store/maildir_delivery.h); remote recipients into the queue. The
// queue is prepared first, the Maildir copies committed, then the queue entry
// committed, so a failure answers 4xx without leaving half a delivery behind.
// Sieve: before the copies are written, each local mailbox's active script
// (common/sieve/sieve_delivery.h) chooses the folders and flags of its copies
// (none: INBOX; DMARC quarantine turns INBOX into Junk); when every local
// mailbox rejects (reject/ereject) and nothing goes to remote recipients the
// message is refused "550 5.7.1 <reason>"; a mailbox that rejects among other
// recipients keeps the message (logged). A script error keeps it too.
// Sieve redirects are queued (SRS sender, common/sieve/sieve_outbound.h) before
// the copies are written (one that cannot be queued becomes a copy into
// INBOX); vacation replies are queued after everything is durable and never
// fail the delivery (none for spam or DMARC-quarantined mail: no backscatter).
// RCPT TO an SRS0 address of a local domain (common/mail/srs.h): valid -> the
// original sender becomes a remote recipient (the bounce goes back through
// the queue); bad hash, expired or malformed -> 550 5.1.1.
// Failures are answered with the one mapping of common/store/store_error.h
// (e.g. 452 4.3.1 disk full, 452 4.2.2 mailbox full, 552 5.2.2 message larger
// than the whole quota).
// Spam filter (spam.enabled, mail without AUTH): delivery runs in two halves on the
// worker pool with an Rspamd scan between them on the main thread (spam_scan.h, POST
// /checkv2 streamed from the spool file, with envelope, client, TLS facts and our
// SPF/DKIM/DMARC results). X-Spam-* fields from outside are removed like forged results.
// The verdict maps through the spam.action_* settings (common/spam/rspamd_protocol.h):
// 550 5.7.1 / 451 4.7.1 before anything is stored, or the copies get X-Spam-Status and
// X-Spam-Score in front and go to Junk (the same store operation, folder "Junk"; users
// in spam.inbox_users keep INBOX) or INBOX. Rspamd down, slow (spam.timeout) or
// answering nonsense: "X-Spam-Status: unchecked" (counted as
// postern_spam_scans_total{result="unchecked"}) or 451 4.7.1 (spam.on_failure). Remote
// recipients (aliases forwarding elsewhere) get the spool file as it is.
// Submission limits: sendLimit() reads the smtp.user_* settings and the user's file in
// <data_dir>/send-rate (common/send_rate.h), shared by every process and restart.
// Submitted mail (authenticated user) is scanned too when spam.enabled and
// spam.scan_outbound (Rspamd gets the user in "User", so its modules treat the message as
// authenticated outbound mail): Rspamd's "reject" answers 550 5.7.1 before anything is
// stored; every other action delivers the message as submitted (no Junk, no X-Spam-*
// fields); Rspamd down or slow: delivered (whatever spam.on_failure says, which is for
// inbound mail), logged and counted in postern_spam_outbound_scans_total{result=...}.
// Free space: storageAvailable() applies smtp.min_free_space to the file systems of
// mail/ and queue/ (the smaller free space counts), statvfs cached for 1 s.
// Limits: the header block read back: smtp.max_header_size + 64 KiB (larger:
// not checked, "none (message not checked)"; submissions refused with 550).
#pragma once

#include "smtp_backend.h"

#include "common/authenticator.h"
#include "common/mail/srs.h"

#include "core/accounts.h"
#include "core/config.h"
#include "core/disk_space.h"

#include <QThreadPool>

namespace postern::smtp {

class LocalBackend : public SmtpBackend {
public:
    LocalBackend(const Config& config, AccountStore& accounts, Authenticator& auth);

    RcptVerdict checkRecipient(const MailPath& path, bool authenticated, qint64 messageSize, RecipientInfo* out,
                               QString* detail) override;
    bool maySendAs(const QString& user, const MailPath& from) override;
    bool vrfyAllowed() const override;
    bool storageAvailable(qint64 declaredSize, QString* detail) override;
    void authenticate(const AuthRequest& request, QByteArray password, AuthDone done) override;
    std::shared_ptr<SpoolBody> openBody(QString* error) override;
    void deliver(QObject* context, MessageJob job, std::function<void(DeliveryOutcome)> done) override;
    std::optional<SendLimitHit> sendLimit(const QString& user, qint64 messages, qint64 recipients, bool record,
                                          QString* error) override;

    // Removes spool files of messages that were being received when the daemon stopped.
    void cleanSpoolTmp();
    // The SRS key's codec (Sieve redirects, bounces to SRS addresses); null: none.
    void setSrs(std::shared_ptr<const mail::Srs> srs) { m_srs = std::move(srs); }

private:
    const Config& m_config;
    AccountStore& m_accounts;
    Authenticator& m_auth;
    QThreadPool m_pool;
    FreeSpaceGuard m_space;  // the mail and queue folders' file systems
    std::shared_ptr<const mail::Srs> m_srs;
    SendRateStore m_sendRate;  // <data_dir>/send-rate
};

}  // namespace postern::smtp
