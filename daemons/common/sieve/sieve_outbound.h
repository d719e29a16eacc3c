// sieve_outbound.h — a Sieve plan's mail that leaves the mailbox: redirects
// and the vacation reply, both put into the outbound queue through the one
// path of common/spool/queue.h (enqueueMessage: tmp/, fsync, link, envelope
// renamed into incoming/, folder fsync'd), so postern-queued delivers them
// like any mail: retried, bounced, DKIM-signed (vacation replies carry the
// user as the envelope's auth-user, so the signer's From: check applies).
// Used by both local deliveries (postern-smtpd's LocalBackend and
// postern-queued's local delivery).
//
// Interface:
//   queueRedirects(out, mailbox, plan, original) — before the Maildir copies
//     are written. Each redirect is queued as a new message: "Delivered-To:
//     <mailbox>" (the loop counter of sieve_delivery.h), then the message as
//     received; to the target; envelope sender rewritten with SRS (mail/srs.h)
//     in the mailbox's domain, except the null sender (stays null) and senders
//     of our own domains (SPF passes already); no auth-user (the original
//     DKIM signatures are passed on untouched, not re-signed). A redirect that
//     cannot be queued (no SRS key, disk full, ...) is logged and replaced by
//     a copy into INBOX when it had cancelled the implicit keep: mail is never
//     lost to a failed redirect. Returns the log lines.
//   sendVacation(out, mailDir, mailbox, plan) — after the copies are durable.
//     Claims (sieve_vacation.h claimReply, in the user's sieve folder) and
//     queues the reply from the null sender; any failure is logged and never
//     touches the delivery of the original. Returns the log lines.
// Blocking: file I/O and fsync; delivery workers only.
// Standards: RFC 5228 4.2 (redirect), RFC 3894 (:copy), RFC 5230, RFC 3834.
#pragma once

#include "sieve_delivery.h"

#include "common/mail/srs.h"

#include <functional>
#include <memory>

namespace postern::sieve {

struct Outbound {
    QString queueDir;
    std::shared_ptr<const mail::Srs> srs;  // null: no SRS key, redirects are kept instead
    std::function<bool(const QString& domain)> isLocalDomain;
    qint64 now = 0;  // unix seconds; 0: the current time
};

struct Original {
    QByteArray head;  // written before the range (e.g. our Authentication-Results)
    int fd = -1;
    qint64 offset = 0, length = 0;
    QString sender;  // the envelope sender; empty: the null sender
    bool eightBit = false, smtpUtf8 = false;
};

QStringList queueRedirects(const Outbound& out, const QString& mailbox, Plan& plan, const Original& original);
QStringList sendVacation(const Outbound& out, const QString& mailDir, const QString& mailbox, const Plan& plan);

}  // namespace postern::sieve
