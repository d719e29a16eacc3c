// queue.cpp — see queue.h.
#include "queue.h"

#include "core/atomic_file.h"
#include "core/posix_io.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRandomGenerator>
#include <QRegularExpression>

#include <limits>

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>

namespace postern::spool {

QString toString(QueueState s) {
    switch (s) {
        case QueueState::Incoming:
            return QStringLiteral("incoming");
        case QueueState::Active:
            return QStringLiteral("active");
        case QueueState::Deferred:
            return QStringLiteral("deferred");
        case QueueState::Hold:
            return QStringLiteral("hold");
        case QueueState::Corrupt:
            return QStringLiteral("corrupt");
    }
    return {};
}

const QList<QueueState>& queueStates() {
    static const QList<QueueState> all{QueueState::Incoming, QueueState::Active, QueueState::Deferred, QueueState::Hold,
                                       QueueState::Corrupt};
    return all;
}

QString stateDir(const QString& queueDir, QueueState s) {
    return queueDir + QLatin1Char('/') + toString(s);
}

bool isValidQueueId(const QString& id) {
    static const QRegularExpression re(QStringLiteral("^[0-9A-F]{16}$"));
    return re.match(id).hasMatch();
}

QString newQueueId() {
    // 8 hex digits of time (sortable) + 8 random: unique without coordination.
    const quint32 t = quint32(QDateTime::currentSecsSinceEpoch());
    const quint32 r = QRandomGenerator::system()->generate();
    return QStringLiteral("%1%2").arg(t, 8, 16, QLatin1Char('0')).arg(r, 8, 16, QLatin1Char('0')).toUpper();
}

QString toString(EnvelopeRecipient::Status s) {
    switch (s) {
        case EnvelopeRecipient::Status::Pending:
            return QStringLiteral("pending");
        case EnvelopeRecipient::Status::Sent:
            return QStringLiteral("sent");
        case EnvelopeRecipient::Status::Failed:
            return QStringLiteral("failed");
    }
    return {};
}

bool Envelope::done() const {
    for (const EnvelopeRecipient& r : recipients)
        if (r.status == EnvelopeRecipient::Status::Pending) return false;
    return true;
}

QByteArray Envelope::serialize() const {
    QByteArray out = "POSTERN-QUEUE " + QByteArray::number(kEnvelopeVersion) + "\n";
    auto field = [&](const char* key, const QString& value) {
        QString v = value;
        v.remove(QLatin1Char('\r'));
        v.remove(QLatin1Char('\n'));
        out += key;
        out += ": ";
        out += v.toUtf8();
        out += '\n';
    };
    field("id", id);
    field("arrival", QString::number(arrival));
    field("sender", sender);
    field("auth-user", authUser);
    field("client", clientAddress + QLatin1Char(' ') + clientHelo);
    field("body", bodyType);
    field("smtputf8", smtpUtf8 ? QStringLiteral("yes") : QStringLiteral("no"));
    field("ret", ret);
    field("envid", envid);
    field("size", QString::number(size));
    field("attempts", QString::number(attempts));
    field("first-attempt", QString::number(firstAttempt));
    field("next-attempt", QString::number(nextAttempt));
    field("delay-notified", delayNotified ? QStringLiteral("yes") : QStringLiteral("no"));
    for (const EnvelopeRecipient& r : recipients) {
        field("recipient", QStringLiteral("%1 notify=%2 orcpt=%3 status=%4")
                               .arg(r.address, r.notify.isEmpty() ? QStringLiteral("-") : r.notify,
                                    r.orcpt.isEmpty() ? QStringLiteral("-") : r.orcpt, toString(r.status)));
        if (!r.diagnostic.isEmpty()) field("diagnostic", r.address + QLatin1Char(' ') + r.diagnostic);
        if (!r.remoteMta.isEmpty()) field("remote-mta", r.address + QLatin1Char(' ') + r.remoteMta);
    }
    for (const QString& e : extra) {
        QString v = e;
        v.remove(QLatin1Char('\r'));
        v.remove(QLatin1Char('\n'));
        out += v.toUtf8() + '\n';
    }
    return out;
}

Result<Envelope> Envelope::parse(const QByteArray& text) {
    Envelope e;
    const QList<QByteArray> lines = text.split('\n');
    if (lines.isEmpty() || !lines.first().startsWith("POSTERN-QUEUE "))
        return Result<Envelope>::fail(QStringLiteral("not a Postern queue envelope"));
    bool ok = false;
    const int version = lines.first().mid(14).toInt(&ok);
    if (!ok || version < 1) return Result<Envelope>::fail(QStringLiteral("bad envelope version line"));
    if (version > kEnvelopeVersion)
        return Result<Envelope>::fail(
            QStringLiteral("envelope version %1 is newer than this program (%2)").arg(version).arg(kEnvelopeVersion));
    for (qsizetype i = 1; i < lines.size(); ++i) {
        const QString line = QString::fromUtf8(lines.at(i));
        if (line.isEmpty()) continue;
        const qsizetype colon = line.indexOf(QStringLiteral(": "));
        const QString key = colon < 0 ? line : line.left(colon);
        const QString value = colon < 0 ? QString() : line.mid(colon + 2);
        if (key == u"id")
            e.id = value;
        else if (key == u"arrival")
            e.arrival = value.toLongLong();
        else if (key == u"sender")
            e.sender = value;
        else if (key == u"auth-user")
            e.authUser = value;
        else if (key == u"client") {
            e.clientAddress = value.section(QLatin1Char(' '), 0, 0);
            e.clientHelo = value.section(QLatin1Char(' '), 1);
        } else if (key == u"body")
            e.bodyType = value;
        else if (key == u"smtputf8")
            e.smtpUtf8 = value == u"yes";
        else if (key == u"ret")
            e.ret = value;
        else if (key == u"envid")
            e.envid = value;
        else if (key == u"size")
            e.size = value.toLongLong();
        else if (key == u"recipient") {
            EnvelopeRecipient r;
            const QStringList parts = value.split(QLatin1Char(' '));
            r.address = parts.value(0);
            for (const QString& p : parts.mid(1)) {
                if (p.startsWith(u"notify=") && p != u"notify=-")
                    r.notify = p.mid(7);
                else if (p.startsWith(u"orcpt=") && p != u"orcpt=-")
                    r.orcpt = p.mid(6);
                else if (p == u"status=sent")
                    r.status = EnvelopeRecipient::Status::Sent;
                else if (p == u"status=failed")
                    r.status = EnvelopeRecipient::Status::Failed;
            }
            if (r.address.isEmpty())
                return Result<Envelope>::fail(QStringLiteral("line %1: empty recipient").arg(i + 1));
            e.recipients << r;
        } else if (key == u"attempts")
            e.attempts = value.toInt();
        else if (key == u"first-attempt")
            e.firstAttempt = value.toLongLong();
        else if (key == u"next-attempt")
            e.nextAttempt = value.toLongLong();
        else if (key == u"delay-notified")
            e.delayNotified = value == u"yes";
        else if (key == u"diagnostic" || key == u"remote-mta") {
            const QString addr = value.section(QLatin1Char(' '), 0, 0);
            const QString rest = value.section(QLatin1Char(' '), 1);
            for (EnvelopeRecipient& r : e.recipients)
                if (r.address == addr) (key == u"diagnostic" ? r.diagnostic : r.remoteMta) = rest;
        } else {
            e.extra << line;
        }
    }
    if (!isValidQueueId(e.id)) return Result<Envelope>::fail(QStringLiteral("missing or invalid queue id"));
    if (e.recipients.isEmpty()) return Result<Envelope>::fail(QStringLiteral("no recipients"));
    return e;
}

Status writeNewFileSynced(const QString& path, const QByteArray& data) {
    const int fd =
        ::open(QFile::encodeName(path).constData(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return errnoError(path, errno);
    Status st = writeAll(fd, data, path);
    if (st && ::fsync(fd) != 0) st = errnoError(path, errno);
    if (::close(fd) != 0 && st) st = errnoError(path, errno);
    if (!st) ::unlink(QFile::encodeName(path).constData());
    return st;
}

QueueWriter::QueueWriter(QString queueDir) : m_dir(std::move(queueDir)) {}

QueueWriter::~QueueWriter() {
    if (m_prepared && !m_committed) abort();
}

Status QueueWriter::prepare(const Envelope& envelope, const QString& bodyPath) {
    if (!isValidQueueId(envelope.id)) return Status::fail(QStringLiteral("invalid queue id '%1'").arg(envelope.id));
    const QString incoming = stateDir(m_dir, QueueState::Incoming);
    if (auto st = ensureDirectory(incoming, 0700); !st) return st;
    m_id = envelope.id;
    m_body = incoming + QLatin1Char('/') + m_id + QStringLiteral(".body");
    m_env = incoming + QLatin1Char('/') + m_id + QStringLiteral(".env");
    m_envTmp = incoming + QStringLiteral("/.") + m_id + QStringLiteral(".env.tmp");
    // The body must be on disk before anything points at it.
    const int fd = ::open(QFile::encodeName(bodyPath).constData(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
        const int e = errno;
        if (fd >= 0) ::close(fd);
        return errnoError(bodyPath, e);
    }
    ::close(fd);
    if (::link(QFile::encodeName(bodyPath).constData(), QFile::encodeName(m_body).constData()) != 0)
        return errnoError(m_body, errno);
    m_prepared = true;
    // The temporary envelope is fully written and fsync'd; commit() only renames it.
    ::unlink(QFile::encodeName(m_envTmp).constData());
    if (auto st = writeNewFileSynced(m_envTmp, envelope.serialize()); !st) {
        abort();
        return st;
    }
    return {};
}

Status QueueWriter::commit() {
    if (!m_prepared) return Status::fail(QStringLiteral("nothing prepared"));
    if (::rename(QFile::encodeName(m_envTmp).constData(), QFile::encodeName(m_env).constData()) != 0) {
        const int e = errno;
        abort();
        return errnoError(m_env, e);
    }
    m_committed = true;
    return syncDirectory(stateDir(m_dir, QueueState::Incoming));
}

void QueueWriter::abort() {
    if (!m_envTmp.isEmpty()) ::unlink(QFile::encodeName(m_envTmp).constData());
    if (!m_body.isEmpty()) ::unlink(QFile::encodeName(m_body).constData());
    m_prepared = false;
}

QString envelopePath(const QString& queueDir, QueueState state, const QString& id) {
    return stateDir(queueDir, state) + QLatin1Char('/') + id + QStringLiteral(".env");
}

QString bodyPath(const QString& queueDir, QueueState state, const QString& id) {
    return stateDir(queueDir, state) + QLatin1Char('/') + id + QStringLiteral(".body");
}

Status saveEnvelope(const QString& queueDir, QueueState state, const Envelope& envelope) {
    if (!isValidQueueId(envelope.id)) return Status::fail(QStringLiteral("invalid queue id"));
    return writeFileAtomic(envelopePath(queueDir, state, envelope.id), envelope.serialize(), 0600);
}

Status moveMessage(const QString& queueDir, const QString& id, QueueState from, QueueState to) {
    if (!isValidQueueId(id)) return Status::fail(QStringLiteral("invalid queue id"));
    if (auto st = ensureDirectory(stateDir(queueDir, to), 0700); !st) return st;
    auto mv = [](const QString& a, const QString& b) -> Status {
        if (::rename(QFile::encodeName(a).constData(), QFile::encodeName(b).constData()) != 0)
            return errnoError(a, errno);
        return {};
    };
    // Body first: an envelope is never visible without its body.
    if (QFileInfo::exists(bodyPath(queueDir, from, id)))
        if (auto st = mv(bodyPath(queueDir, from, id), bodyPath(queueDir, to, id)); !st) return st;
    if (auto st = mv(envelopePath(queueDir, from, id), envelopePath(queueDir, to, id)); !st) return st;
    if (auto st = syncDirectory(stateDir(queueDir, to)); !st) return st;
    return syncDirectory(stateDir(queueDir, from));
}

Status removeMessage(const QString& queueDir, QueueState state, const QString& id) {
    if (!isValidQueueId(id)) return Status::fail(QStringLiteral("invalid queue id"));
    ::unlink(QFile::encodeName(envelopePath(queueDir, state, id)).constData());
    ::unlink(QFile::encodeName(bodyPath(queueDir, state, id)).constData());
    return syncDirectory(stateDir(queueDir, state));
}

std::optional<QueueState> stateOf(const QString& queueDir, const QString& id) {
    if (!isValidQueueId(id)) return std::nullopt;
    for (const QueueState st : queueStates())
        if (QFileInfo::exists(envelopePath(queueDir, st, id))) return st;
    return std::nullopt;
}

QList<QueueEntry> listQueue(const QString& queueDir, QStringList* errors) {
    QList<QueueEntry> out;
    for (const QueueState state : queueStates()) {
        const QDir d(stateDir(queueDir, state));
        for (const QString& name : d.entryList({QStringLiteral("*.env")}, QDir::Files, QDir::Name)) {
            auto text = readFile(d.filePath(name), 1 << 20);
            auto env = text ? Envelope::parse(*text) : Result<Envelope>(text.error());
            if (!env) {
                if (errors) errors->append(QStringLiteral("%1/%2: %3").arg(toString(state), name, env.errorMessage()));
                continue;
            }
            out << QueueEntry{state, *env};
        }
    }
    return out;
}

Result<Envelope> readEnvelope(const QString& queueDir, QueueState state, const QString& id) {
    if (!isValidQueueId(id)) return Result<Envelope>::fail(QStringLiteral("invalid queue id"), EINVAL);
    QFile f(envelopePath(queueDir, state, id));
    if (!f.open(QIODevice::ReadOnly))
        return Result<Envelope>::fail(QStringLiteral("%1: %2").arg(f.fileName(), f.errorString()), ENOENT);
    return Envelope::parse(f.read(kMaxEnvelopeBytes));
}

namespace {
// The one way a message made here (a DSN, a vacation reply, a redirected copy) enters the
// queue: its file written to tmp/ by `write`, fsync'd, then QueueWriter (prepare + commit).
template <typename Write>
Result<QString> enqueueNew(const QString& queueDir, Envelope env, qint64 size, Write write) {
    const QString tmpDir = queueDir + QStringLiteral("/tmp");
    if (auto st = ensureDirectory(tmpDir, 0700); !st) return st.error();
    env.id = newQueueId();
    env.size = size;
    if (env.arrival == 0) env.arrival = QDateTime::currentSecsSinceEpoch();
    const QString tmp = tmpDir + QLatin1Char('/') + env.id;
    if (auto st = write(tmp); !st) return st.error();
    QueueWriter writer(queueDir);
    Status st = writer.prepare(env, tmp);
    if (st) st = writer.commit();
    ::unlink(QFile::encodeName(tmp).constData());
    if (!st) return st.error();
    return env.id;
}
}  // namespace

Result<QString> enqueueMessage(const QString& queueDir, Envelope env, const QByteArray& content) {
    return enqueueNew(queueDir, std::move(env), content.size(),
                      [&](const QString& tmp) { return writeNewFileSynced(tmp, content); });
}

Result<QString> enqueueMessage(const QString& queueDir, Envelope env, const QByteArray& head, int fd, qint64 offset,
                               qint64 length) {
    if (head.size() > std::numeric_limits<qint64>::max() - length)
        return Result<QString>::fail(QStringLiteral("message too large"));
    return enqueueNew(queueDir, std::move(env), head.size() + length, [&](const QString& tmp) -> Status {
        const int out =
            ::open(QFile::encodeName(tmp).constData(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (out < 0) return errnoError(tmp, errno);
        Status st = writeAll(out, head, tmp);
        if (st) st = copyRange(fd, offset, length, out, tmp);
        if (st && ::fsync(out) != 0) st = errnoError(tmp, errno);
        if (::close(out) != 0 && st) st = errnoError(tmp, errno);
        if (!st) ::unlink(QFile::encodeName(tmp).constData());
        return st;
    });
}

}  // namespace postern::spool
