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
// Security: ids are validated before any path is built (spool::isValidQueueId).
// Every queue command first gives up root for system_user (CtlContext::
// runAsDaemonUser): the spool belongs to the daemon user, who could otherwise
// point its files and folders at files of root's.
#include "ctl.h"

#include "common/mail/message.h"
#include "common/spool/queue.h"

#include <QDateTime>
#include <QFile>

namespace postern::ctl {

namespace {

QString age(qint64 since) {
    const qint64 s = QDateTime::currentSecsSinceEpoch() - since;
    if (s < 120) return QStringLiteral("%1s").arg(s);
    if (s < 7200) return QStringLiteral("%1m").arg(s / 60);
    if (s < 172800) return QStringLiteral("%1h").arg(s / 3600);
    return QStringLiteral("%1d").arg(s / 86400);
}

QString when(qint64 t) { return t ? QDateTime::fromSecsSinceEpoch(t).toString(Qt::ISODate) : QStringLiteral("now"); }

// 0 when found; else the exit status (message printed).
int findMessage(CtlContext& ctx, const Config& config, spool::QueueState* state, spool::Envelope* env) {
    const QString id = ctx.args.value(0).toUpper();
    if (!spool::isValidQueueId(id))
        return ctx.usage(QStringLiteral("'%1' is not a queue id (16 hex digits; see posternctl queue list)").arg(ctx.args.value(0)));
    const std::optional<spool::QueueState> found = spool::stateOf(config.queueDir(), id);
    if (!found) return ctx.fail(QStringLiteral("no message %1 in the queue").arg(id));
    *state = *found;
    QFile f(spool::envelopePath(config.queueDir(), *state, id));
    if (!f.open(QIODevice::ReadOnly)) {
        return ctx.fail(QStringLiteral("%1: %2").arg(f.fileName(), f.errorString()));
    }
    auto parsed = spool::Envelope::parse(f.read(1024 * 1024));
    if (!parsed) {
        return ctx.fail(QStringLiteral("%1: %2").arg(f.fileName(), parsed.errorMessage()));
    }
    *env = *parsed;
    return 0;
}

int queueList(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config) || !ctx.runAsDaemonUser(config)) return 1;
    QStringList errors;
    const QList<spool::QueueEntry> entries = spool::listQueue(config.queueDir(), &errors);
    for (const QString& e : errors) ctx.err << "posternctl: " << e << Qt::endl;
    if (entries.isEmpty()) {
        ctx.out << "queue is empty" << Qt::endl;
        return errors.isEmpty() ? 0 : 1;
    }
    for (const spool::QueueEntry& q : entries) {
        const spool::Envelope& e = q.envelope;
        ctx.out << e.id << "  " << spool::toString(q.state).leftJustified(9) << " age " << age(e.arrival).leftJustified(5) << " " << e.size << " bytes  from <"
                << e.sender << ">";
        if (q.state == spool::QueueState::Deferred) ctx.out << "  attempts " << e.attempts << ", next " << when(e.nextAttempt);
        ctx.out << Qt::endl;
        for (const spool::EnvelopeRecipient& r : e.recipients) {
            ctx.out << "    " << spool::toString(r.status).leftJustified(8) << " <" << r.address << ">";
            if (!r.diagnostic.isEmpty()) ctx.out << "  " << r.diagnostic;
            ctx.out << Qt::endl;
        }
    }
    ctx.out << entries.size() << " message(s)" << Qt::endl;
    return errors.isEmpty() ? 0 : 1;
}

int queueShow(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config) || !ctx.runAsDaemonUser(config)) return 1;
    spool::QueueState state;
    spool::Envelope e;
    if (int rc = findMessage(ctx, config, &state, &e)) return rc;
    ctx.out << "id:        " << e.id << Qt::endl
            << "state:     " << spool::toString(state) << Qt::endl
            << "arrived:   " << when(e.arrival) << Qt::endl
            << "sender:    <" << e.sender << ">" << (e.authUser.isEmpty() ? QString() : QStringLiteral(" (authenticated as %1)").arg(e.authUser)) << Qt::endl
            << "client:    " << e.clientAddress << " " << e.clientHelo << Qt::endl
            << "size:      " << e.size << " bytes, " << e.bodyType << (e.smtpUtf8 ? ", SMTPUTF8" : "") << Qt::endl
            << "attempts:  " << e.attempts << (e.attempts ? QStringLiteral(", first %1, next %2").arg(when(e.firstAttempt), when(e.nextAttempt)) : QString())
            << Qt::endl;
    for (const spool::EnvelopeRecipient& r : e.recipients) {
        ctx.out << "recipient: <" << r.address << "> " << spool::toString(r.status);
        if (!r.remoteMta.isEmpty()) ctx.out << " via " << r.remoteMta;
        if (!r.diagnostic.isEmpty()) ctx.out << ": " << r.diagnostic;
        ctx.out << Qt::endl;
    }
    QFile body(spool::bodyPath(config.queueDir(), state, e.id));
    if (body.open(QIODevice::ReadOnly)) {
        const mail::Header h = mail::parseHeader(body.read(256 * 1024));
        for (const mail::HeaderField& f : h.fields) {
            for (const char* name : {"From", "To", "Cc", "Subject", "Date", "Message-ID"}) {
                if (f.name.compare(name, Qt::CaseInsensitive) == 0)
                    ctx.out << QString::fromLatin1(name).toLower().append(QLatin1Char(':')).leftJustified(11) << mail::decodeHeaderText(f.value).simplified()
                            << Qt::endl;
            }
        }
    }
    return 0;
}

Status makeDue(const Config& config, spool::QueueState state, spool::Envelope e) {
    e.nextAttempt = 0;
    return spool::saveEnvelope(config.queueDir(), state, e);
}

int queueRetry(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config) || !ctx.runAsDaemonUser(config)) return 1;
    if (ctx.has(QStringLiteral("all"))) {
        int n = 0;
        for (const spool::QueueEntry& q : spool::listQueue(config.queueDir())) {
            if (q.state != spool::QueueState::Deferred) continue;
            if (auto st = makeDue(config, q.state, q.envelope); !st) return ctx.fail(st.errorMessage());
            ++n;
        }
        ctx.out << n << " deferred message(s) due now" << Qt::endl;
        return 0;
    }
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("queue retry ID | --all"));
    spool::QueueState state;
    spool::Envelope e;
    if (int rc = findMessage(ctx, config, &state, &e)) return rc;
    if (state != spool::QueueState::Deferred)
        return ctx.fail(QStringLiteral("%1 is %2, not deferred (release held messages with 'queue release')").arg(e.id, spool::toString(state)));
    if (auto st = makeDue(config, state, e); !st) return ctx.fail(st.errorMessage());
    ctx.out << e.id << " due now" << Qt::endl;
    return 0;
}

// Moves the message named on the command line from one of `from` to `to`; no `to`: deletes it.
int queueMove(CtlContext& ctx, const QList<spool::QueueState>& from, std::optional<spool::QueueState> to, const QString& verb) {
    Config config;
    if (!ctx.loadConfig(config) || !ctx.runAsDaemonUser(config)) return 1;
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("queue %1 ID").arg(verb));
    spool::QueueState state;
    spool::Envelope e;
    if (int rc = findMessage(ctx, config, &state, &e)) return rc;
    if (state == spool::QueueState::Active)
        return ctx.fail(QStringLiteral("%1 is being delivered right now; try again in a moment").arg(e.id));
    if (!from.contains(state)) {
        QStringList names;
        for (const spool::QueueState s : from) names << spool::toString(s);
        return ctx.fail(QStringLiteral("%1 is %2; '%3' works on %4 messages").arg(e.id, spool::toString(state), verb, names.join(QLatin1Char('/'))));
    }
    if (!to) {
        if (auto st = spool::removeMessage(config.queueDir(), state, e.id); !st) return ctx.fail(st.errorMessage());
        ctx.out << e.id << " deleted (no bounce sent)" << Qt::endl;
        return 0;
    }
    if (*to == spool::QueueState::Deferred) {
        if (auto st = makeDue(config, state, e); !st) return ctx.fail(st.errorMessage());
    }
    if (auto st = spool::moveMessage(config.queueDir(), e.id, state, *to); !st) return ctx.fail(st.errorMessage());
    ctx.out << e.id << " " << (*to == spool::QueueState::Hold ? "held" : "released, due now") << Qt::endl;
    return 0;
}

}  // namespace

void addQueueCommands(QList<Command>& out) {
    const QString q = QStringLiteral("queue");
    out << Command{{q, QStringLiteral("list")}, {}, QStringLiteral("queued messages with each recipient's status and last reply"), {}, {}, queueList};
    out << Command{{q, QStringLiteral("show")}, QStringLiteral("ID"), QStringLiteral("one message's envelope, attempts and header"), {}, {}, queueShow};
    out << Command{{q, QStringLiteral("retry")}, QStringLiteral("ID | --all"), QStringLiteral("deliver deferred mail now"), {}, {QStringLiteral("all")},
                   queueRetry};
    out << Command{{q, QStringLiteral("delete")}, QStringLiteral("ID"), QStringLiteral("remove a message without bouncing it"), {}, {},
                   [](CtlContext& c) {
                       using S = spool::QueueState;
                       return queueMove(c, {S::Incoming, S::Deferred, S::Hold, S::Corrupt}, std::nullopt, QStringLiteral("delete"));
                   }};
    out << Command{{q, QStringLiteral("hold")}, QStringLiteral("ID"), QStringLiteral("keep a message from being delivered"), {}, {},
                   [](CtlContext& c) {
                       using S = spool::QueueState;
                       return queueMove(c, {S::Incoming, S::Deferred}, S::Hold, QStringLiteral("hold"));
                   }};
    out << Command{{q, QStringLiteral("release")}, QStringLiteral("ID"), QStringLiteral("let a held message be delivered again"), {}, {},
                   [](CtlContext& c) {
                       using S = spool::QueueState;
                       return queueMove(c, {S::Hold}, S::Deferred, QStringLiteral("release"));
                   }};
}

}  // namespace postern::ctl
