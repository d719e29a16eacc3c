// local_delivery.cpp — see local_delivery.h.
#include "local_delivery.h"

#include "common/mail/dsn_params.h"
#include "common/mail/message_file.h"
#include "common/sieve/sieve_delivery.h"
#include "common/sieve/sieve_outbound.h"
#include "common/sieve/sieve_store.h"
#include "common/store/maildir_delivery.h"

#include "core/log.h"
#include "core/posix_io.h"
#include "core/stats.h"

#include <QDateTime>
#include <QFile>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace postern::outbound {

namespace {
// How much of the queued file's header block Sieve looks at (our trace fields in front
// of the client's header, bounded like smtpd's smtp.max_header_size + room).
constexpr qint64 kMaxHeaderBytes = 256 * 1024;

void logPlan(const LocalJob& job, const QString& mailbox, const sieve::Plan& plan) {
    if (plan.script.isEmpty() && plan.error.isEmpty()) return;
    auto fields = log::Fields().add("id", job.env.id).add("mailbox", mailbox).add("script", plan.script);
    if (!plan.error.isEmpty()) {
        log::warn(u"sieve.error", fields.add("detail", plan.error).add("fallback", "keep"));
        return;
    }
    log::info(u"sieve", fields.add("actions", plan.actions.join(QStringLiteral("; "))));
    for (const QString& note : plan.notes)
        log::info(u"sieve.note", log::Fields().add("id", job.env.id).add("mailbox", mailbox).add("detail", note));
}

// Every mailbox of one recipient, all or nothing; each mailbox's Sieve script decides its
// folders (common/sieve/sieve_delivery.h). *rejected: the reason when every mailbox of the
// recipient rejects (the recipient then fails and the queue bounces, RFC 5429 2.1).
store::StoreStatus storeCopies(const LocalJob& job, const QString& address, const Resolution& res, int fd, qint64 size,
                               std::optional<QString>* rejected) {
    QList<sieve::Plan> plans;
    auto message = mail::MessageFile::read(fd, size, kMaxHeaderBytes);
    for (const QString& m : res.mailboxes) {
        sieve::PlanInput in;
        if (message) {
            in.header = message->header();
            in.bodyOffset = message->bodyOffset();
            in.bodyLength = message->bodySize();
        }
        in.bodyFd = fd;
        in.size = size;
        in.envelopeFrom = job.env.sender;
        in.envelopeTo = address;
        in.delimiters = job.delimiters;
        in.maySendAs = [&job, &m](const QString& a) { return job.accounts->maySendAs(m, a, job.delimiters); };
        in.globals = job.sieveGlobals;
        plans << sieve::planDelivery(job.mailDir, m, in, sieve::processScriptCache());
        logPlan(job, m, plans.last());
    }
    bool allReject = !plans.isEmpty();
    for (const sieve::Plan& p : plans) allReject = allReject && p.reject;
    if (allReject) {
        *rejected = plans.first().rejectReason;
        return {};
    }
    // Sieve redirects into the queue first (common/sieve/sieve_outbound.h); one that cannot be
    // queued becomes a copy into INBOX.
    sieve::Outbound outbound;
    outbound.queueDir = job.queueDir;
    outbound.srs = job.srs;
    outbound.isLocalDomain = [&job](const QString& domain) {
        return job.accounts && job.accounts->isLocalDomain(domain);
    };
    for (qsizetype i = 0; i < res.mailboxes.size(); ++i) {
        if (plans.at(i).redirects.isEmpty() || plans.at(i).reject) continue;
        sieve::Original original;
        original.fd = fd;
        original.length = size;
        original.sender = job.env.sender;
        original.eightBit = job.env.bodyType == u"8BITMIME";
        original.smtpUtf8 = job.env.smtpUtf8;
        for (const QString& line : sieve::queueRedirects(outbound, res.mailboxes.at(i), plans[i], original))
            log::info(u"sieve.redirect",
                      log::Fields().add("id", job.env.id).add("mailbox", res.mailboxes.at(i)).add("detail", line));
    }
    store::Delivery delivery(job.mailDir);
    for (qsizetype i = 0; i < res.mailboxes.size(); ++i) {
        const QString& m = res.mailboxes.at(i);
        const UserRecord* u = job.accounts->user(m);
        store::Content content;
        content.head = QStringLiteral("Return-Path: <%1>\r\nDelivered-To: %2\r\n").arg(job.env.sender, m).toUtf8();
        content.fd = fd;
        content.length = size;
        const QList<sieve::Plan::Copy> copies =
            plans.at(i).reject ? QList<sieve::Plan::Copy>{sieve::Plan::Copy{}} : plans.at(i).copies;
        for (const sieve::Plan::Copy& copy : copies)
            if (auto st = delivery.add(m, content, copy.folder, u ? u->quotaBytes : 0, copy.flags, copy.keywords); !st)
                return st;
        if (!plans.at(i).notice.isEmpty()) {  // the note about a broken script, once per script version
            store::Content notice;
            notice.head =
                QStringLiteral("Return-Path: <>\r\nDelivered-To: %1\r\n").arg(m).toUtf8() + plans.at(i).notice;
            if (auto st = delivery.add(m, notice); !st) return st;
        }
    }
    if (auto st = delivery.commit(); !st) return st;
    // Vacation replies once the copies are durable; a failure here is only logged.
    for (qsizetype i = 0; i < res.mailboxes.size(); ++i)
        for (const QString& line : sieve::sendVacation(outbound, job.mailDir, res.mailboxes.at(i), plans.at(i)))
            log::info(u"sieve.vacation",
                      log::Fields().add("id", job.env.id).add("mailbox", res.mailboxes.at(i)).add("detail", line));
    return {};
}

// A Sieve reject reason for a DSN's diagnostic: printable ASCII on one line, bounded.
QString rejectText(const QString& reason) {
    QString out;
    for (QChar ch : reason.simplified())
        if (ch.unicode() >= 0x20 && ch.unicode() < 0x7f) out += ch;
    if (out.size() > 200) out = out.left(200);
    return out.isEmpty() ? QStringLiteral("Message rejected by the recipient's filter") : out;
}

LocalOutcome deliverOne(const LocalJob& job, int i, int fd, qint64 size) {
    LocalOutcome out;
    const spool::EnvelopeRecipient& rcpt = job.env.recipients.at(i);
    const QString& address = rcpt.address;
    // An SRS0 address of ours (a bounce of a redirected message, common/mail/srs.h): passed
    // back to the original sender as a new recipient; a bad or expired one fails.
    if (const QString local = address.section(u'@', 0, -2); mail::isSrsLocalPart(local)) {
        const mail::Srs::Decoded d =
            job.srs ? job.srs->reverse(local, QDateTime::currentSecsSinceEpoch()) : mail::Srs::Decoded{};
        if (d.status != mail::Srs::Status::Valid) {
            out.status = LocalOutcome::Status::Failed;
            out.diagnostic = QStringLiteral("550 5.1.1 <%1>: invalid SRS address (%2)")
                                 .arg(address, job.srs ? mail::toString(d.status) : QStringLiteral("no key"));
            return out;
        }
        out.status = LocalOutcome::Status::Delivered;
        out.diagnostic = QStringLiteral("250 2.0.0 SRS address, passed on to the original sender");
        out.forwards << d.original;
        out.forwardOrcpt << (rcpt.orcpt.isEmpty() ? QString::fromLatin1(mail::orcptForAddress(address)) : rcpt.orcpt);
        return out;
    }
    const Resolution res = job.accounts ? job.accounts->resolve(address) : Resolution{};
    if (!res.ok()) {
        out.status = LocalOutcome::Status::Failed;
        out.diagnostic = QStringLiteral("550 5.1.1 <%1>: no such mailbox here").arg(address);
        return out;
    }
    std::optional<QString> rejected;
    if (auto st = storeCopies(job, address, res, fd, size, &rejected); !st) {
        const store::StoreError& e = st.error();
        out.status = e.temporary() ? LocalOutcome::Status::Deferred : LocalOutcome::Status::Failed;
        out.diagnostic = QStringLiteral("%1 %2 <%3>: %4").arg(e.smtpCode()).arg(e.enhancedCode(), address, e.text());
        out.detail = e.detail;
        return out;
    }
    if (rejected) {  // Sieve reject: the recipient fails, the queue sends the bounce (DSN)
        out.status = LocalOutcome::Status::Failed;
        out.diagnostic = QStringLiteral("550 5.7.1 <%1>: %2").arg(address, rejectText(*rejected));
        return out;
    }
    out.status = LocalOutcome::Status::Delivered;
    out.diagnostic = QStringLiteral("250 2.0.0 delivered to %1 mailbox(es)").arg(res.mailboxes.size());
    for (const QString& f : res.forwards) {
        out.forwards << f;
        out.forwardOrcpt << (rcpt.orcpt.isEmpty() ? QString::fromLatin1(mail::orcptForAddress(address)) : rcpt.orcpt);
    }
    return out;
}
}  // namespace

QStringList addForwards(spool::Envelope& env, const LocalOutcome& outcome) {
    QStringList added;
    for (qsizetype f = 0; f < outcome.forwards.size(); ++f) {
        bool dup = false;
        for (const auto& existing : std::as_const(env.recipients))
            dup |= existing.address.compare(outcome.forwards.at(f), Qt::CaseInsensitive) == 0;
        if (dup) continue;
        spool::EnvelopeRecipient nr;
        nr.address = outcome.forwards.at(f);
        nr.orcpt = outcome.forwardOrcpt.at(f);
        env.recipients << nr;
        added << nr.address;
    }
    return added;
}

QStringList applyLocalOutcomes(spool::Envelope& env, const QList<int>& indexes, const QList<LocalOutcome>& outcomes,
                               const QString& hostname, QList<int>* failed) {
    QStringList added;
    for (qsizetype k = 0; k < indexes.size() && k < outcomes.size(); ++k) {
        const LocalOutcome& o = outcomes.at(k);
        auto& rc = env.recipients[indexes.at(k)];
        rc.diagnostic = o.diagnostic;
        rc.remoteMta = hostname;
        if (o.status == LocalOutcome::Status::Delivered) rc.status = spool::EnvelopeRecipient::Status::Sent;
        if (o.status == LocalOutcome::Status::Failed) {
            rc.status = spool::EnvelopeRecipient::Status::Failed;
            *failed << indexes.at(k);
        }
        stats::add(QStringLiteral("postern_local_deliveries_total"), {{QStringLiteral("result"), toString(o.status)}});
        log::Fields fields;
        fields.add("id", env.id).add("to", rc.address).add("result", rc.diagnostic);
        if (!o.detail.isEmpty()) fields.add("detail", o.detail);
        log::info(u"delivery.local", fields);
        added << addForwards(env, o);
    }
    return added;
}

QString toString(LocalOutcome::Status status) {
    switch (status) {
        case LocalOutcome::Status::Delivered:
            return QStringLiteral("delivered");
        case LocalOutcome::Status::Deferred:
            return QStringLiteral("deferred");
        case LocalOutcome::Status::Failed:
            return QStringLiteral("failed");
    }
    return {};
}

QList<LocalOutcome> deliverLocally(const LocalJob& job) {
    QList<LocalOutcome> out;
    const int fd = ::open(QFile::encodeName(job.bodyPath).constData(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    const bool readable = fd >= 0 && ::fstat(fd, &st) == 0;
    const QString unreadable = readable ? QString() : errnoError(job.bodyPath, errno).message;
    for (int i : job.indexes) {
        if (!readable) {
            LocalOutcome o;
            o.diagnostic = QStringLiteral("cannot read the queued message");
            o.detail = unreadable;
            out << o;
            continue;
        }
        out << deliverOne(job, i, fd, st.st_size);
    }
    if (fd >= 0) ::close(fd);
    return out;
}

}  // namespace postern::outbound
