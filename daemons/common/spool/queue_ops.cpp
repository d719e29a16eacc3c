// queue_ops.cpp — see queue_ops.h.
#include "queue_ops.h"

#include "common/mail/message.h"

#include <QFile>

#include <cerrno>
#include <optional>

namespace postern::spool {

namespace {

Status makeDue(const QString& queueDir, QueueState state, Envelope e) {
    e.nextAttempt = 0;
    return saveEnvelope(queueDir, state, e);
}

// Moves the message from one of `from` to `to`; no `to`: deletes it.
Result<QString> move(const QString& queueDir, const QString& id, const QList<QueueState>& from,
                     std::optional<QueueState> to, const QString& verb) {
    auto found = findMessage(queueDir, id);
    if (!found) return found.error();
    const QueueState state = found->state;
    const Envelope& e = found->envelope;
    if (state == QueueState::Active)
        return Result<QString>::fail(
            QStringLiteral("%1 is being delivered right now; try again in a moment").arg(e.id));
    if (!from.contains(state)) {
        QStringList names;
        for (const QueueState s : from) names << toString(s);
        return Result<QString>::fail(QStringLiteral("%1 is %2; '%3' works on %4 messages")
                                         .arg(e.id, toString(state), verb, names.join(QLatin1Char('/'))));
    }
    if (!to) {
        if (auto st = removeMessage(queueDir, state, e.id); !st) return st.error();
        return QStringLiteral("%1 deleted (no bounce sent)").arg(e.id);
    }
    if (*to == QueueState::Deferred)
        if (auto st = makeDue(queueDir, state, e); !st) return st.error();
    if (auto st = moveMessage(queueDir, e.id, state, *to); !st) return st.error();
    return QStringLiteral("%1 %2").arg(
        e.id, *to == QueueState::Hold ? QStringLiteral("held") : QStringLiteral("released, due now"));
}

}  // namespace

QueueListing listMessages(const QString& queueDir, int max) {
    QueueListing out;
    const QList<QueueEntry> all = listQueue(queueDir, &out.errors);
    out.total = int(all.size());
    out.entries = all.mid(0, qMax(0, max));
    return out;
}

Result<QueueEntry> findMessage(const QString& queueDir, const QString& rawId) {
    const QString id = rawId.toUpper();
    if (!isValidQueueId(id))
        return Result<QueueEntry>::fail(
            QStringLiteral("'%1' is not a queue id (16 hex digits; see the queue list)").arg(rawId.left(64)), EINVAL);
    const std::optional<QueueState> state = stateOf(queueDir, id);
    if (!state) return Result<QueueEntry>::fail(QStringLiteral("no message %1 in the queue").arg(id), ENOENT);
    auto env = readEnvelope(queueDir, *state, id);
    if (!env) {
        // Moved by the queue runner between the two looks: say so rather than "does not parse".
        if (env.error().code == ENOENT)
            return Result<QueueEntry>::fail(QStringLiteral("%1 moved just now; try again").arg(id), ENOENT);
        return Result<QueueEntry>::fail(
            QStringLiteral("%1: %2").arg(envelopePath(queueDir, *state, id), env.errorMessage()));
    }
    return QueueEntry{*state, *env};
}

QList<QPair<QString, QString>> headerSummary(const QString& queueDir, QueueState state, const QString& id) {
    QList<QPair<QString, QString>> out;
    if (!isValidQueueId(id)) return out;
    QFile body(bodyPath(queueDir, state, id));
    if (!body.open(QIODevice::ReadOnly)) return out;
    const mail::Header h = mail::parseHeader(body.read(kMaxHeaderRead));
    for (const mail::HeaderField& f : h.fields)
        for (const char* name : {"From", "To", "Cc", "Subject", "Date", "Message-ID"})
            if (f.name.compare(name, Qt::CaseInsensitive) == 0)
                out.append({QString::fromLatin1(name).toLower(), mail::decodeHeaderText(f.value).simplified()});
    return out;
}

Result<QString> retryMessage(const QString& queueDir, const QString& id) {
    auto found = findMessage(queueDir, id);
    if (!found) return found.error();
    if (found->state != QueueState::Deferred)
        return Result<QString>::fail(QStringLiteral("%1 is %2, not deferred (release held messages with 'release')")
                                         .arg(found->envelope.id, toString(found->state)));
    if (auto st = makeDue(queueDir, found->state, found->envelope); !st) return st.error();
    return QStringLiteral("%1 due now").arg(found->envelope.id);
}

Result<int> retryAll(const QString& queueDir) {
    int n = 0;
    for (const QueueEntry& q : listQueue(queueDir)) {
        if (q.state != QueueState::Deferred) continue;
        if (auto st = makeDue(queueDir, q.state, q.envelope); !st) return st.error();
        ++n;
    }
    return n;
}

Result<QString> holdMessage(const QString& queueDir, const QString& id) {
    return move(queueDir, id, {QueueState::Incoming, QueueState::Deferred}, QueueState::Hold, QStringLiteral("hold"));
}

Result<QString> releaseMessage(const QString& queueDir, const QString& id) {
    return move(queueDir, id, {QueueState::Hold}, QueueState::Deferred, QStringLiteral("release"));
}

Result<QString> deleteMessage(const QString& queueDir, const QString& id) {
    return move(queueDir, id, {QueueState::Incoming, QueueState::Deferred, QueueState::Hold, QueueState::Corrupt},
                std::nullopt, QStringLiteral("delete"));
}

}  // namespace postern::spool
