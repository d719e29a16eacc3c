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
// Standards: RFC 3464, RFC 3463, RFC 6522, RFC 3834 (Auto-Submitted).
// Security: diagnostic texts come from remote servers; they are stripped of
// control characters and bounded before they go into headers.
#pragma once

#include <QByteArray>
#include <QDateTime>
#include <QList>
#include <QString>

namespace postern::outbound {

struct DsnRecipient {
    QString address;     // final recipient
    QString orcpt;       // as stored in the envelope (wire form, common/mail/dsn_params.h), or ""
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
    QByteArray original;   // the queued message (header + body)
    qint64 maxReturnBytes = 1024 * 1024;
};

QString statusFromReply(const QString& reply, const QString& fallback);
QByteArray buildDsn(const DsnInput& input, const QDateTime& now = QDateTime::currentDateTimeUtc());

}  // namespace postern::outbound
