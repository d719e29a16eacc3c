// sieve_outbound.cpp — see sieve_outbound.h.
#include "sieve_outbound.h"

#include "sieve_store.h"
#include "sieve_vacation.h"

#include "common/spool/queue.h"

#include <QDateTime>

namespace postern::sieve {

namespace {
qint64 nowOf(const Outbound& out) {
    return out.now ? out.now : QDateTime::currentSecsSinceEpoch();
}

QString domainOf(const QString& address) {
    return address.section(QLatin1Char('@'), -1).toLower();
}
}  // namespace

QStringList queueRedirects(const Outbound& out, const QString& mailbox, Plan& plan, const Original& original) {
    QStringList log;
    bool keepInstead = false;
    for (const Plan::Redirect& r : std::as_const(plan.redirects)) {
        spool::Envelope env;
        env.sender = original.sender;
        // SRS for foreign senders; the null sender stays null; our own domains pass SPF as they are.
        const bool rewrite =
            !original.sender.isEmpty() && !(out.isLocalDomain && out.isLocalDomain(domainOf(original.sender)));
        QString error;
        if (rewrite) {
            if (!out.srs)
                error = QStringLiteral("no SRS key");
            else
                env.sender = out.srs->forward(original.sender, domainOf(mailbox), nowOf(out));
            if (error.isEmpty() && env.sender.isEmpty()) error = QStringLiteral("sender cannot be rewritten");
        }
        env.bodyType = original.eightBit ? QStringLiteral("8BITMIME") : QStringLiteral("7BIT");
        env.smtpUtf8 = original.smtpUtf8;
        spool::EnvelopeRecipient to;
        to.address = r.address;
        env.recipients << to;
        if (error.isEmpty()) {
            const QByteArray head = "Delivered-To: " + mailbox.toUtf8() + "\r\n" + original.head;
            auto id = spool::enqueueMessage(out.queueDir, env, head, original.fd, original.offset, original.length);
            if (id) {
                log << QStringLiteral("redirect to %1 queued as %2 sender=<%3>").arg(r.address, *id, env.sender);
                continue;
            }
            error = id.errorMessage();
        }
        log << QStringLiteral("redirect to %1 failed: %2%3")
                   .arg(r.address, error, r.copy ? QString() : QStringLiteral("; kept in INBOX"));
        keepInstead = keepInstead || !r.copy;
    }
    if (keepInstead) {
        bool inbox = false;
        for (const Plan::Copy& c : std::as_const(plan.copies)) inbox = inbox || c.folder.isEmpty();
        if (!inbox) plan.copies << Plan::Copy{};
    }
    return log;
}

QStringList sendVacation(const Outbound& out, const QString& mailDir, const QString& mailbox, const Plan& plan) {
    if (!plan.vacation) return {};
    const VacationReply& r = *plan.vacation;
    auto claimed = claimReply(scriptDir(mailDir, mailbox), r.to, r.handle, r.periodSeconds, nowOf(out));
    if (!claimed) return {QStringLiteral("vacation reply to %1 not sent: %2").arg(r.to, claimed.errorMessage())};
    if (!*claimed)
        return {QStringLiteral("vacation: %1 was answered within the last %2 s").arg(r.to).arg(r.periodSeconds)};
    spool::Envelope env;
    env.sender = QString();  // RFC 3834 3.3: a reply to a reply goes nowhere
    env.authUser = mailbox;  // DKIM: the signer checks From: against this user
    env.bodyType = r.eightBit ? QStringLiteral("8BITMIME") : QStringLiteral("7BIT");
    spool::EnvelopeRecipient to;
    to.address = r.to;
    env.recipients << to;
    auto id = spool::enqueueMessage(out.queueDir, env, r.message);
    if (!id) return {QStringLiteral("vacation reply to %1 not queued: %2").arg(r.to, id.errorMessage())};
    return {QStringLiteral("vacation reply to %1 queued as %2").arg(r.to, *id)};
}

}  // namespace postern::sieve
