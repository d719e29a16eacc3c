// local_delivery.cpp — see local_delivery.h.
#include "local_delivery.h"

#include "common/mail/dsn_params.h"
#include "common/store/maildir_delivery.h"

#include "core/posix_io.h"

#include <QFile>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace postern::outbound {

namespace {
// Every mailbox of one recipient, all or nothing.
store::StoreStatus storeCopies(const LocalJob& job, const Resolution& res, int fd, qint64 size) {
    store::Delivery delivery(job.mailDir);
    for (const QString& m : res.mailboxes) {
        const UserRecord* u = job.accounts->user(m);
        store::Content content;
        content.head = QStringLiteral("Return-Path: <%1>\r\nDelivered-To: %2\r\n").arg(job.env.sender, m).toUtf8();
        content.fd = fd;
        content.length = size;
        if (auto st = delivery.add(m, content, {}, u ? u->quotaBytes : 0); !st) return st;
    }
    return delivery.commit();
}

LocalOutcome deliverOne(const LocalJob& job, int i, int fd, qint64 size) {
    LocalOutcome out;
    const spool::EnvelopeRecipient& rcpt = job.env.recipients.at(i);
    const QString& address = rcpt.address;
    const Resolution res = job.accounts ? job.accounts->resolve(address) : Resolution{};
    if (!res.ok()) {
        out.status = LocalOutcome::Status::Failed;
        out.diagnostic = QStringLiteral("550 5.1.1 <%1>: no such mailbox here").arg(address);
        return out;
    }
    if (auto st = storeCopies(job, res, fd, size); !st) {
        const store::StoreError& e = st.error();
        out.status = e.temporary() ? LocalOutcome::Status::Deferred : LocalOutcome::Status::Failed;
        out.diagnostic = QStringLiteral("%1 %2 <%3>: %4").arg(e.smtpCode()).arg(e.enhancedCode(), address, e.text());
        out.detail = e.detail;
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
        for (const auto& existing : std::as_const(env.recipients)) dup |= existing.address.compare(outcome.forwards.at(f), Qt::CaseInsensitive) == 0;
        if (dup) continue;
        spool::EnvelopeRecipient nr;
        nr.address = outcome.forwards.at(f);
        nr.orcpt = outcome.forwardOrcpt.at(f);
        env.recipients << nr;
        added << nr.address;
    }
    return added;
}

QString toString(LocalOutcome::Status status) {
    switch (status) {
        case LocalOutcome::Status::Delivered: return QStringLiteral("delivered");
        case LocalOutcome::Status::Deferred: return QStringLiteral("deferred");
        case LocalOutcome::Status::Failed: return QStringLiteral("failed");
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
