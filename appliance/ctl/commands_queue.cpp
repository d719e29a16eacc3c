// commands_queue.cpp — posternctl queue list|show|retry|delete|hold|release.
//   list              every queued message: id, state, age, size, sender, and per
//                     recipient its status and last reply; next attempt.
//   show ID           the envelope and the message header (From, To, Subject, Date).
//   retry ID|--all    deferred message(s) due now (postern-queued notices the change).
//   delete ID         remove a message (any state but active).
//   hold ID           keep a message from being delivered (incoming/deferred -> hold).
//   release ID        back to deferred, due now.
// Messages in active/ are being delivered by postern-queued at this moment: they
// are shown but not changed (try again in a moment).
// The operations themselves are common/spool/queue_ops.h (shared with the web panel).
// Security: ids are validated before any path is built (spool::isValidQueueId).
// Every queue command first gives up root for system_user (CtlContext::
// runAsDaemonUser): the spool belongs to the daemon user, who could otherwise
// point its files and folders at files of root's.
#include "ctl.h"

#include "common/spool/queue_ops.h"

#include <QDateTime>

#include <cerrno>
#include <limits>

namespace postern::ctl {

namespace {

QString age(qint64 since) {
    const qint64 s = QDateTime::currentSecsSinceEpoch() - since;
    if (s < 120) return QStringLiteral("%1s").arg(s);
    if (s < 7200) return QStringLiteral("%1m").arg(s / 60);
    if (s < 172800) return QStringLiteral("%1h").arg(s / 3600);
    return QStringLiteral("%1d").arg(s / 86400);
}

QString when(qint64 t) {
    return t ? QDateTime::fromSecsSinceEpoch(t).toString(Qt::ISODate) : QStringLiteral("now");
}

// 0 when found; else the exit status (message printed). The lookup is spool::findMessage.
int findMessage(CtlContext& ctx, const Config& config, spool::QueueState* state, spool::Envelope* env) {
    auto found = spool::findMessage(config.queueDir(), ctx.args.value(0));
    if (!found) return found.error().code == EINVAL ? ctx.usage(found.errorMessage()) : ctx.fail(found.errorMessage());
    *state = found->state;
    *env = found->envelope;
    return 0;
}

int queueList(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config) || !ctx.runAsDaemonUser(config)) return 1;
    const spool::QueueListing listing = spool::listMessages(config.queueDir(), std::numeric_limits<int>::max());
    for (const QString& e : listing.errors) ctx.err << "posternctl: " << e << Qt::endl;
    const QList<spool::QueueEntry>& entries = listing.entries;
    if (entries.isEmpty()) {
        ctx.out << "queue is empty" << Qt::endl;
        return listing.errors.isEmpty() ? 0 : 1;
    }
    for (const spool::QueueEntry& q : entries) {
        const spool::Envelope& e = q.envelope;
        ctx.out << e.id << "  " << spool::toString(q.state).leftJustified(9) << " age "
                << age(e.arrival).leftJustified(5) << " " << e.size << " bytes  from <" << e.sender << ">";
        if (q.state == spool::QueueState::Deferred)
            ctx.out << "  attempts " << e.attempts << ", next " << when(e.nextAttempt);
        ctx.out << Qt::endl;
        for (const spool::EnvelopeRecipient& r : e.recipients) {
            ctx.out << "    " << spool::toString(r.status).leftJustified(8) << " <" << r.address << ">";
            if (!r.diagnostic.isEmpty()) ctx.out << "  " << r.diagnostic;
            ctx.out << Qt::endl;
        }
    }
    ctx.out << entries.size() << " message(s)" << Qt::endl;
    return listing.errors.isEmpty() ? 0 : 1;
}

int queueShow(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config) || !ctx.runAsDaemonUser(config)) return 1;
    spool::QueueState state = spool::QueueState::Incoming;
    spool::Envelope e;
    if (int rc = findMessage(ctx, config, &state, &e)) return rc;
    ctx.out << "id:        " << e.id << Qt::endl
            << "state:     " << spool::toString(state) << Qt::endl
            << "arrived:   " << when(e.arrival) << Qt::endl
            << "sender:    <" << e.sender << ">"
            << (e.authUser.isEmpty() ? QString() : QStringLiteral(" (authenticated as %1)").arg(e.authUser)) << Qt::endl
            << "client:    " << e.clientAddress << " " << e.clientHelo << Qt::endl
            << "size:      " << e.size << " bytes, " << e.bodyType << (e.smtpUtf8 ? ", SMTPUTF8" : "") << Qt::endl
            << "attempts:  " << e.attempts
            << (e.attempts ? QStringLiteral(", first %1, next %2").arg(when(e.firstAttempt), when(e.nextAttempt))
                           : QString())
            << Qt::endl;
    for (const spool::EnvelopeRecipient& r : e.recipients) {
        ctx.out << "recipient: <" << r.address << "> " << spool::toString(r.status);
        if (!r.remoteMta.isEmpty()) ctx.out << " via " << r.remoteMta;
        if (!r.diagnostic.isEmpty()) ctx.out << ": " << r.diagnostic;
        ctx.out << Qt::endl;
    }
    for (const auto& [name, value] : spool::headerSummary(config.queueDir(), state, e.id))
        ctx.out << QString(name + QLatin1Char(':')).leftJustified(11) << value << Qt::endl;
    return 0;
}

int print(CtlContext& ctx, const Result<QString>& r) {
    if (!r) return r.error().code == EINVAL ? ctx.usage(r.errorMessage()) : ctx.fail(r.errorMessage());
    ctx.out << *r << Qt::endl;
    return 0;
}

int queueRetry(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config) || !ctx.runAsDaemonUser(config)) return 1;
    if (ctx.has(QStringLiteral("all"))) {
        auto n = spool::retryAll(config.queueDir());
        if (!n) return ctx.fail(n.errorMessage());
        ctx.out << *n << " deferred message(s) due now" << Qt::endl;
        return 0;
    }
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("queue retry ID | --all"));
    return print(ctx, spool::retryMessage(config.queueDir(), ctx.args.first()));
}

// hold, release, delete: the one implementation is in spool/queue_ops.h.
int queueChange(CtlContext& ctx, const QString& verb, Result<QString> (*op)(const QString&, const QString&)) {
    Config config;
    if (!ctx.loadConfig(config) || !ctx.runAsDaemonUser(config)) return 1;
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("queue %1 ID").arg(verb));
    return print(ctx, op(config.queueDir(), ctx.args.first()));
}

}  // namespace

void addQueueCommands(QList<Command>& out) {
    const QString q = QStringLiteral("queue");
    out << Command{{q, QStringLiteral("list")},
                   {},
                   QStringLiteral("queued messages with each recipient's status and last reply"),
                   {},
                   {},
                   queueList};
    out << Command{{q, QStringLiteral("show")},
                   QStringLiteral("ID"),
                   QStringLiteral("one message's envelope, attempts and header"),
                   {},
                   {},
                   queueShow};
    out << Command{{q, QStringLiteral("retry")},
                   QStringLiteral("ID | --all"),
                   QStringLiteral("deliver deferred mail now"),
                   {},
                   {QStringLiteral("all")},
                   queueRetry};
    out << Command{{q, QStringLiteral("delete")},
                   QStringLiteral("ID"),
                   QStringLiteral("remove a message without bouncing it"),
                   {},
                   {},
                   [](CtlContext& c) { return queueChange(c, QStringLiteral("delete"), spool::deleteMessage); }};
    out << Command{{q, QStringLiteral("hold")},
                   QStringLiteral("ID"),
                   QStringLiteral("keep a message from being delivered"),
                   {},
                   {},
                   [](CtlContext& c) { return queueChange(c, QStringLiteral("hold"), spool::holdMessage); }};
    out << Command{{q, QStringLiteral("release")},
                   QStringLiteral("ID"),
                   QStringLiteral("let a held message be delivered again"),
                   {},
                   {},
                   [](CtlContext& c) { return queueChange(c, QStringLiteral("release"), spool::releaseMessage); }};
}

}  // namespace postern::ctl
