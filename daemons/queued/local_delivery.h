// local_delivery.h — the queue runner's delivery to local mailboxes: queued
// mail for a hosted domain (bounces to local senders, mail that came in
// through an alias, submissions to local users).
//
// Interface: deliverLocally(job) -> one LocalOutcome per recipient (same
// order as job.indexes). Each recipient address is resolved again (users,
// aliases, catch-all) and every mailbox it leads to gets its copy, written
// with the one store operation (common/store/maildir_delivery.h: tmp/, fsync,
// rename into new/, fsync of new/) with "Return-Path" and "Delivered-To" in
// front of the queued file, all or nothing per recipient. Each mailbox's
// active Sieve script decides the folders and flags of its copies
// (common/sieve/sieve_delivery.h; none: INBOX); when every mailbox of a
// recipient rejects (Sieve reject/ereject) the recipient fails with
// "550 5.7.1 <address>: <reason>" and the queue sends the bounce. Aliases that point
// elsewhere become new recipients (forwards, with the ORCPT of the address
// the sender used, RFC 3461 4.2). Sieve redirects and vacation replies are
// queued as new messages (common/sieve/sieve_outbound.h: redirects before the
// copies, a failed one kept in INBOX; replies after, never failing the
// delivery). A recipient that is a valid SRS0 address of ours
// (common/mail/srs.h) is delivered by becoming a forward to the original
// sender; an invalid or expired one fails "550 5.1.1".
// Outcome per recipient: Delivered (diagnostic "250 2.0.0 ..."), Deferred or
// Failed, with the store failure said as the one mapping
// (common/store/store_error.h) does: "<code> <enhanced> <address>: <text>",
// e.g. "452 4.2.2 <a@b>: Mailbox full, try again later"; an address that no
// longer resolves fails "550 5.1.1 <a@b>: no such mailbox here"; an
// unreadable queue file defers. The detail (paths, errno) is only logged.
// Blocking: file I/O and fsync; run it on a worker thread.
#pragma once

#include "common/mail/srs.h"
#include "common/sieve/sieve_store.h"
#include "common/spool/queue.h"

#include "core/accounts.h"

#include <QList>
#include <QString>
#include <QStringList>
#include <memory>

namespace postern::outbound {

struct LocalJob {
    QList<int> indexes;  // recipients of `env` to deliver
    spool::Envelope env;
    std::shared_ptr<const Accounts> accounts;
    QString mailDir;
    sieve::GlobalScripts sieveGlobals;  // sieve.before/after, the global script folder
    QString bodyPath;                   // the queued message file
    QString queueDir;                   // Sieve redirects and vacation replies are queued here
    QString delimiters = QStringLiteral("+");
    std::shared_ptr<const mail::Srs> srs;  // null: no SRS key (redirects kept, SRS addresses fail)
};

struct LocalOutcome {
    enum class Status { Delivered, Deferred, Failed };
    Status status = Status::Deferred;
    QString diagnostic;    // the SMTP-style line for the envelope and DSNs
    QString detail;        // for the log only
    QStringList forwards;  // new remote recipients (aliases that point elsewhere)
    QStringList forwardOrcpt;
};

QString toString(LocalOutcome::Status status);  // delivered / deferred / failed
QList<LocalOutcome> deliverLocally(const LocalJob& job);
// The outcome's forwards that `env` does not have yet, added as pending recipients
// (with their ORCPT); returns their addresses.
QStringList addForwards(spool::Envelope& env, const LocalOutcome& outcome);
// deliverLocally()'s outcomes applied to the recipients `indexes` of `env`: status,
// diagnostic and remote MTA (`hostname`: ours), the failures appended to *failed, one
// `delivery.local` log line and one count of postern_local_deliveries_total each, and
// their forwards added (addForwards). Returns the addresses added, in order.
QStringList applyLocalOutcomes(spool::Envelope& env, const QList<int>& indexes, const QList<LocalOutcome>& outcomes,
                               const QString& hostname, QList<int>* failed);

}  // namespace postern::outbound
