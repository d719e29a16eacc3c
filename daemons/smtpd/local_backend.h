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
// Delivery (on a worker thread): one Maildir copy per distinct local mailbox
// with "Return-Path" and "Delivered-To" in front of the spool file (which
// starts with our Received header), remote recipients into the queue; the
// queue is prepared first, the Maildir copies committed, then the queue entry
// committed, so a failure answers 4xx without leaving half a delivery behind.
#pragma once

#include "smtp_backend.h"

#include "common/authenticator.h"

#include "core/accounts.h"
#include "core/config.h"

#include <QThreadPool>

namespace postern::smtp {

class LocalBackend : public SmtpBackend {
public:
    LocalBackend(const Config& config, AccountStore& accounts, Authenticator& auth);

    RcptVerdict checkRecipient(const MailPath& path, bool authenticated, qint64 messageSize, RecipientInfo* out,
                               QString* detail) override;
    bool maySendAs(const QString& user, const MailPath& from) override;
    bool vrfyAllowed() const override;
    void authenticate(const AuthRequest& request, QByteArray password, AuthDone done) override;
    std::shared_ptr<SpoolBody> openBody(QString* error) override;
    void deliver(QObject* context, MessageJob job, std::function<void(DeliveryOutcome)> done) override;

    // Removes spool files of messages that were being received when the daemon stopped.
    void cleanSpoolTmp();

private:
    const Config& m_config;
    AccountStore& m_accounts;
    Authenticator& m_auth;
    QThreadPool m_pool;
};

}  // namespace postern::smtp
