// dsn.cpp — see dsn.h.
#include "dsn.h"

#include "common/mail/dsn_params.h"
#include "common/mail/message.h"

#include "core/log.h"
#include "core/stats.h"

#include <QFile>
#include <QRandomGenerator>
#include <QRegularExpression>

namespace postern::outbound {

namespace {
constexpr int kMaxDiagnostic = 900;

// Remote text for a header: printable ASCII only, bounded.
QString clean(const QString& s, int max = kMaxDiagnostic) {
    QString out;
    for (QChar c : s.left(max)) out += (c.unicode() >= 0x20 && c.unicode() < 0x7f) ? c : QLatin1Char('?');
    return out;
}

QByteArray crlf(const QString& s) {
    return s.toUtf8() + "\r\n";
}

// The original message's header block (up to the empty line).
QByteArray headerPart(const QByteArray& message) {
    qsizetype bodyOffset = 0;
    mail::parseHeader(message, &bodyOffset);
    if (bodyOffset <= 0 || bodyOffset > message.size()) return message;
    return message.left(bodyOffset);
}
}  // namespace

QString statusFromReply(const QString& reply, const QString& fallback) {
    static const QRegularExpression enhanced(QStringLiteral("^([245])\\d\\d[ -]([245]\\.\\d{1,3}\\.\\d{1,3})\\b"));
    const auto m = enhanced.match(reply);
    if (m.hasMatch() && m.captured(1) == m.captured(2).left(1)) return m.captured(2);
    static const QRegularExpression basic(QStringLiteral("^([45])\\d\\d\\b"));
    const auto b = basic.match(reply);
    if (b.hasMatch()) return b.captured(1) + QStringLiteral(".0.0");
    return fallback;
}

namespace {

// The report's own header fields (RFC 3464 2, RFC 3834 for Auto-Submitted).
QByteArray dsnHeader(const DsnInput& in, const QDateTime& now, bool anyFailed, const QString& boundary) {
    const QString date = mail::formatDate(now);
    QByteArray out;
    out += crlf(QStringLiteral("From: Mail Delivery System <MAILER-DAEMON@%1>").arg(in.reportingMta));
    out += crlf(QStringLiteral("To: <%1>").arg(in.recipient));
    out += crlf(anyFailed ? QStringLiteral("Subject: Undelivered Mail Returned to Sender")
                          : QStringLiteral("Subject: Delayed Mail (still being retried)"));
    out += crlf(QStringLiteral("Date: %1").arg(date));
    out += crlf(QStringLiteral("Message-ID: <%1.%2@%3>")
                    .arg(now.toSecsSinceEpoch())
                    .arg(QRandomGenerator::system()->generate64(), 16, 16, QLatin1Char('0'))
                    .arg(in.reportingMta));
    out += crlf(QStringLiteral("Auto-Submitted: auto-replied"));
    out += crlf(QStringLiteral("MIME-Version: 1.0"));
    out += crlf(QStringLiteral("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%1\"")
                    .arg(boundary));
    out += "\r\n";
    out += "This is a MIME-encapsulated delivery status notification.\r\n\r\n";
    return out;
}

// Part 1: in words.
QByteArray humanPart(const DsnInput& in, bool anyFailed, const QString& boundary) {
    QByteArray out;
    out += crlf(QStringLiteral("--%1").arg(boundary));
    out += "Content-Type: text/plain; charset=us-ascii\r\nContent-Description: Notification\r\n\r\n";
    out += crlf(QStringLiteral("This is the mail system at host %1.").arg(in.reportingMta));
    out += "\r\n";
    if (anyFailed) {
        out +=
            "Your message could not be delivered to one or more recipients.\r\n"
            "The error reported for each is below; this is final, nothing more will be tried.\r\n\r\n";
    } else {
        out +=
            crlf(QStringLiteral("Your message has not been delivered yet to the recipients below. Delivery will be\r\n"
                                "retried until %1; you need not do anything now.")
                     .arg(mail::formatDate(in.retryUntil)));
        out += "\r\n";
    }
    for (const DsnRecipient& r : in.recipients) {
        out += crlf(QStringLiteral("<%1>: %2").arg(clean(r.address, 300), clean(r.diagnostic)));
    }
    out += "\r\n";
    return out;
}

// One recipient's per-recipient fields (RFC 3464 2.3).
QByteArray recipientFields(const DsnInput& in, const DsnRecipient& r) {
    QByteArray out = "\r\n";
    if (const auto o = mail::storedOrcpt(r.orcpt);
        o && !r.orcpt.isEmpty())  // RFC 3464 2.3.1: decoded; RFC 6533 3 for utf-8
        out += crlf(QStringLiteral("Original-Recipient: %1").arg(clean(mail::orcptForReport(*o), 600)));
    out += crlf(QStringLiteral("Final-Recipient: rfc822; %1").arg(clean(r.address, 300)));
    out += crlf(QStringLiteral("Action: %1").arg(r.delayed ? QStringLiteral("delayed") : QStringLiteral("failed")));
    out += crlf(QStringLiteral("Status: %1").arg(r.status));
    if (!r.remoteMta.isEmpty()) out += crlf(QStringLiteral("Remote-MTA: dns; %1").arg(clean(r.remoteMta, 255)));
    static const QRegularExpression smtpReply(QStringLiteral("^[245]\\d\\d[ -]"));
    const bool fromSmtp = smtpReply.match(r.diagnostic).hasMatch();
    out += crlf(QStringLiteral("Diagnostic-Code: %1; %2")
                    .arg(fromSmtp ? QStringLiteral("smtp") : QStringLiteral("x-postern"), clean(r.diagnostic)));
    if (r.delayed && in.retryUntil.isValid())
        out += crlf(QStringLiteral("Will-Retry-Until: %1").arg(mail::formatDate(in.retryUntil)));
    return out;
}

// Part 2: for programs (RFC 3464).
QByteArray statusPart(const DsnInput& in, const QString& boundary) {
    QByteArray out;
    out += crlf(QStringLiteral("--%1").arg(boundary));
    out += "Content-Type: message/delivery-status\r\nContent-Description: Delivery report\r\n\r\n";
    out += crlf(QStringLiteral("Reporting-MTA: dns; %1").arg(in.reportingMta));
    if (!in.envid.isEmpty()) out += crlf(QStringLiteral("Original-Envelope-Id: %1").arg(clean(in.envid, 100)));
    if (in.arrival.isValid()) out += crlf(QStringLiteral("Arrival-Date: %1").arg(mail::formatDate(in.arrival)));
    for (const DsnRecipient& r : in.recipients) out += recipientFields(in, r);
    out += "\r\n";
    return out;
}

// Part 3: the message, or its header; then the closing boundary.
QByteArray returnedPart(const DsnInput& in, const QString& boundary) {
    QByteArray out;
    const bool full =
        in.ret.compare(QStringLiteral("HDRS"), Qt::CaseInsensitive) != 0 && in.original.size() <= in.maxReturnBytes;
    out += crlf(QStringLiteral("--%1").arg(boundary));
    if (full) {
        out += "Content-Type: message/rfc822\r\nContent-Description: Undelivered message\r\n\r\n";
        out += in.original;
    } else {
        out += "Content-Type: text/rfc822-headers\r\nContent-Description: Undelivered message header\r\n\r\n";
        out += headerPart(in.original);
    }
    if (!out.endsWith("\r\n")) out += "\r\n";
    out += crlf(QStringLiteral("--%1--").arg(boundary));
    return out;
}

}  // namespace

QByteArray buildDsn(const DsnInput& in, const QDateTime& now) {
    bool anyFailed = false;
    for (const DsnRecipient& r : in.recipients) anyFailed |= !r.delayed;
    const QString boundary = QStringLiteral("=_postern_%1_%2")
                                 .arg(now.toSecsSinceEpoch())
                                 .arg(QRandomGenerator::system()->generate64(), 16, 16, QLatin1Char('0'));
    QByteArray out = dsnHeader(in, now, anyFailed, boundary);  // after the boundary: the second random number
    out += humanPart(in, anyFailed, boundary);
    out += statusPart(in, boundary);
    out += returnedPart(in, boundary);
    return out;
}

namespace {
bool wantsNotice(const QString& notify, const char* what) {
    if (notify.isEmpty()) return true;  // RFC 3461 4.1: the MTA's default (failures and delays)
    return notify.toUpper().split(QLatin1Char(',')).contains(QString::fromLatin1(what));
}
}  // namespace

Notice noticeFor(const spool::Envelope& env, const QList<int>& recipients, bool delay, const QString& reportingMta,
                 qint64 lifetimeS, const QString& bodyPath) {
    Notice n;
    // Never a DSN to the null sender (RFC 5321 6.1, RFC 3464): that is how bounce loops start.
    if (env.sender.isEmpty()) return n;
    for (int i : recipients)
        if (wantsNotice(env.recipients.at(i).notify, delay ? "DELAY" : "FAILURE")) n.recipients << i;
    if (n.recipients.isEmpty()) return n;
    DsnInput& in = n.input;
    in.reportingMta = reportingMta;
    in.recipient = env.sender;
    in.envid = env.envid;
    in.arrival = QDateTime::fromSecsSinceEpoch(env.arrival);
    in.retryUntil = QDateTime::fromSecsSinceEpoch(env.arrival + lifetimeS);
    in.ret = env.ret;
    for (int i : n.recipients) {
        const auto& r = env.recipients.at(i);
        DsnRecipient d;
        d.address = r.address;
        d.orcpt = r.orcpt;
        d.delayed = delay;
        d.status = statusFromReply(r.diagnostic, delay ? QStringLiteral("4.4.1") : QStringLiteral("5.4.7"));
        if (!delay && d.status.startsWith(QLatin1Char('4'))) d.status = QStringLiteral("4.4.7");  // expired (RFC 3463)
        d.diagnostic = r.diagnostic.isEmpty() ? QStringLiteral("no further detail") : r.diagnostic;
        d.remoteMta = r.remoteMta;
        in.recipients << d;
    }
    QFile body(bodyPath);
    if (body.open(QIODevice::ReadOnly)) in.original = body.read(in.maxReturnBytes + 1);
    if (in.original.size() > in.maxReturnBytes) in.ret = QStringLiteral("HDRS");
    return n;
}

Result<QString> queueNotice(const QString& queueDir, const spool::Envelope& original, const Notice& notice) {
    spool::Envelope env;
    env.sender = QString();
    env.bodyType = original.bodyType;
    env.smtpUtf8 = original.smtpUtf8;
    spool::EnvelopeRecipient to;
    to.address = original.sender;
    env.recipients << to;
    return spool::enqueueMessage(queueDir, env, buildDsn(notice.input));
}

Status notifySender(const QString& queueDir, const spool::Envelope& env, const QList<int>& recipients, bool delay,
                    const QString& reportingMta, qint64 lifetimeS) {
    const Notice notice = noticeFor(env, recipients, delay, reportingMta, lifetimeS,
                                    spool::bodyPath(queueDir, spool::QueueState::Active, env.id));
    if (notice.recipients.isEmpty()) return Status{};
    auto id = queueNotice(queueDir, env, notice);
    if (!id) return Status(id.error());
    stats::add(QStringLiteral("postern_dsn_total"),
               {{QStringLiteral("type"), delay ? QStringLiteral("delay") : QStringLiteral("failure")}});
    log::info(delay ? u"queue.delay_notice" : u"queue.bounce",
              log::Fields()
                  .add("id", env.id)
                  .add("dsn_id", *id)
                  .add("to", env.sender)
                  .add("recipients", qint64(notice.recipients.size())));
    return Status{};
}

}  // namespace postern::outbound
