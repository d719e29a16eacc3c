// dsn.h — delivery status notifications (RFC 3464, RFC 3462/6522
// multipart/report) for bounces and delay notices.
//
// Interface: buildDsn(input) -> the complete message (CRLF line endings) to
// queue with the null sender to the original envelope sender.
//   Part 1 text/plain: what happened, in words, per recipient.
//   Part 2 message/delivery-status: Reporting-MTA, Original-Envelope-Id,
//          Arrival-Date; per recipient Original-Recipient, Final-Recipient,
//          Action (failed / delayed), Status, Remote-MTA, Diagnostic-Code,
//          Will-Retry-Until (delayed).
//   Part 3 the original message (message/rfc822) when RET=FULL or not given
//          and it is at most `maxReturnBytes`, else its header
//          (text/rfc822-headers).
// statusFromReply("550 5.1.1 No such user") -> "5.1.1"; a reply without an
// enhanced code gives "<class>.0.0"; no reply gives the fallback.
// noticeFor(env, recipients, delay, ...) -> the input for the failure (or delay)
// notice about those recipients of a queued message: only the ones whose
// NOTIFY asks for it (RFC 3461 4.1: none given = failures and delays), none
// at all for the null sender (RFC 5321 6.1, RFC 3464: no bounce loops); each
// with its status from its last reply (an expired temporary failure becomes
// 4.4.7, RFC 3463), and the original read from the queued file (at most
// maxReturnBytes + 1 bytes are read: larger ones return the header only).
// queueNotice() writes it into the queue (common/spool: fsync'd before it
// returns, so a bounce is durable before the message that caused it goes).
// Standards: RFC 3464, RFC 3463, RFC 6522, RFC 3834 (Auto-Submitted).
// Security: diagnostic texts come from remote servers; they are stripped of
// control characters and bounded before they go into headers.
#pragma once

#include "common/spool/queue.h"

#include <QByteArray>
#include <QDateTime>
#include <QList>
#include <QString>

namespace postern::outbound {

struct DsnRecipient {
    QString address;  // final recipient
    QString orcpt;    // as stored in the envelope (wire form, common/mail/dsn_params.h), or ""
    bool delayed = false;
    QString status;      // "5.1.1"
    QString diagnostic;  // remote reply or local explanation
    QString remoteMta;   // host name, or ""
};

struct DsnInput {
    QString reportingMta;  // our host name
    QString recipient;     // who gets the report (the original envelope sender)
    QString envid;
    QDateTime arrival;
    QDateTime retryUntil;  // for delay notices
    QString ret;           // FULL / HDRS / ""
    QList<DsnRecipient> recipients;
    QByteArray original;  // the queued message (header + body)
    qint64 maxReturnBytes = 1024 * 1024;
};

QString statusFromReply(const QString& reply, const QString& fallback);

struct Notice {
    DsnInput input;
    QList<int> recipients;  // the envelope's recipients it reports; empty: no notice is due
};
Notice noticeFor(const spool::Envelope& env, const QList<int>& recipients, bool delay, const QString& reportingMta,
                 qint64 lifetimeS, const QString& bodyPath);
// Queues the notice (from the null sender to the original sender, same body
// type) into incoming/; returns its queue id.
Result<QString> queueNotice(const QString& queueDir, const spool::Envelope& original, const Notice& notice);
// The failure (or, with `delay`, delay) notice about `recipients` of `env`, a message in
// active/ of `queueDir`: noticeFor + queueNotice, counted (postern_dsn_total) and logged
// (queue.bounce / queue.delay_notice). Nothing when no notice is due.
Status notifySender(const QString& queueDir, const spool::Envelope& env, const QList<int>& recipients, bool delay,
                    const QString& reportingMta, qint64 lifetimeS);
QByteArray buildDsn(const DsnInput& input, const QDateTime& now = QDateTime::currentDateTimeUtc());

}  // namespace postern::outbound
