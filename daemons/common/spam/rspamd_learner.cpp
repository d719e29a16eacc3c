// rspamd_learner.cpp — see rspamd_learner.h.
#include "rspamd_learner.h"

#include "core/log.h"
#include "core/stats.h"

#include <QLocalSocket>

namespace postern::spam {

RspamdLearner::RspamdLearner(LearnSpool& spool, QString controllerSocket, QByteArray password, int timeoutMs,
                             QObject* parent)
    : QObject(parent),
      m_spool(spool),
      m_socketPath(std::move(controllerSocket)),
      m_password(std::move(password)),
      m_timeoutMs(timeoutMs) {
    m_poll.setInterval(5000);
    connect(&m_poll, &QTimer::timeout, this, [this] {
        // A process that does not drain still refreshes its count of the spool (the queue
        // limit it checks in enqueue()), here and not on the IMAP command's path.
        if (!m_spool.drainLock()) (void)m_spool.pending(0);
        tick();
    });
    m_poll.start();
    m_timeout.setSingleShot(true);
    connect(&m_timeout, &QTimer::timeout, this, [this] { fail(QStringLiteral("no answer within the timeout")); });
    QTimer::singleShot(0, this, &RspamdLearner::tick);  // what waited across a restart
}

RspamdLearner::~RspamdLearner() {
    if (m_socket) {
        m_socket->disconnect(this);
        m_socket->abort();
        delete m_socket;
    }
}

void RspamdLearner::setIntervals(int pollMs, int retryMs) {
    m_poll.setInterval(pollMs);
    m_retryMs = retryMs;
}

void RspamdLearner::kick() {
    if (m_socket || m_waitingToRetry) return;
    QTimer::singleShot(0, this, &RspamdLearner::tick);
}

QByteArray RspamdLearner::requestHead(LearnClass cls, const QString& user, const QByteArray& password, qint64 length) {
    QByteArray head = cls == LearnClass::Spam ? "POST /learnspam HTTP/1.0\r\n" : "POST /learnham HTTP/1.0\r\n";
    if (!password.isEmpty()) head += "Password: " + password + "\r\n";
    QByteArray u = user.toUtf8();
    u.replace('\r', ' ').replace('\n', ' ');
    head += "Deliver-To: " + u + "\r\nContent-Length: " + QByteArray::number(length) + "\r\nConnection: close\r\n\r\n";
    return head;
}

int RspamdLearner::statusOf(const QByteArray& reply) {
    // "HTTP/1." DIGIT SP 3DIGIT (SP / CR)
    if (reply.size() < 12 || !reply.startsWith("HTTP/1.") || reply.at(8) != ' ') return -1;
    int code = 0;
    for (int i = 9; i < 12; ++i) {
        const char c = reply.at(i);
        if (c < '0' || c > '9') return -1;
        code = code * 10 + (c - '0');
    }
    if (reply.size() > 12 && reply.at(12) != ' ' && reply.at(12) != '\r') return -1;
    return code;
}

void RspamdLearner::tick() {
    if (m_socket) return;
    if (m_waitingToRetry) {
        if (m_sinceFailure.elapsed() < m_retryMs) return;
        m_waitingToRetry = false;
    }
    if (!m_spool.drainLock()) return;
    if (m_watch.directories().isEmpty()) {
        m_watch.addPath(m_spool.dir());
        connect(&m_watch, &QFileSystemWatcher::directoryChanged, this, &RspamdLearner::kick);
    }
    if (m_batch.isEmpty()) {
        m_spool.sweepOrphans(3600);
        auto next = m_spool.pending(kBatch);
        if (!next) {
            log::warn(u"spam.learn_spool_unreadable", log::Fields().add("error", next.errorMessage()));
            return;
        }
        m_batch = *next;
    }
    startNext();
}

void RspamdLearner::startNext() {
    while (!m_batch.isEmpty()) {
        LearnEntry e = m_batch.takeFirst();
        auto file = std::make_unique<QFile>(e.messagePath);
        if (!file->open(QIODevice::ReadOnly)) {  // gone (removed by hand, or by another drainer before)
            m_spool.remove(e);
            continue;
        }
        m_file = std::move(file);
        m_current = e;
        m_reply.clear();
        m_socket = new QLocalSocket(this);
        connect(m_socket, &QLocalSocket::connected, this, [this] {
            const QByteArray head = requestHead(m_current->cls, m_current->user, m_password, m_file->size());
            m_socket->write(head);
            pump();
        });
        connect(m_socket, &QLocalSocket::bytesWritten, this, &RspamdLearner::pump);
        connect(m_socket, &QLocalSocket::readyRead, this, [this] {
            m_reply += m_socket->read(kMaxReply - m_reply.size());
            if (m_reply.size() >= kMaxReply) finished();
        });
        connect(m_socket, &QLocalSocket::disconnected, this, &RspamdLearner::finished);
        connect(m_socket, &QLocalSocket::errorOccurred, this, [this](QLocalSocket::LocalSocketError err) {
            if (err == QLocalSocket::PeerClosedError) return;  // disconnected() follows
            fail(m_socket->errorString());
        });
        m_timeout.start(m_timeoutMs);
        m_socket->connectToServer(m_socketPath);
        return;
    }
}

void RspamdLearner::pump() {
    if (!m_socket || !m_file || m_socket->state() != QLocalSocket::ConnectedState) return;
    while (!m_file->atEnd() && m_socket->bytesToWrite() < kMaxBuffered) {
        const QByteArray chunk = m_file->read(kChunk);
        if (chunk.isEmpty()) {
            fail(QStringLiteral("read %1: %2").arg(m_file->fileName(), m_file->errorString()));
            return;
        }
        m_socket->write(chunk);
    }
}

void RspamdLearner::finished() {
    if (!m_socket || !m_current) return;
    if (m_socket->bytesAvailable() > 0 && m_reply.size() < kMaxReply)
        m_reply += m_socket->read(kMaxReply - m_reply.size());
    const int code = statusOf(m_reply);
    if (code < 0) {
        fail(m_reply.isEmpty() ? QStringLiteral("connection closed without an answer")
                               : QStringLiteral("malformed answer"));
        return;
    }
    const LearnEntry e = *m_current;
    const QByteArray firstLine =
        m_reply.left(std::min<qsizetype>(m_reply.indexOf('\r') < 0 ? 200 : m_reply.indexOf('\r'), 200));
    m_timeout.stop();
    m_socket->disconnect(this);
    m_socket->abort();
    m_socket->deleteLater();
    m_socket = nullptr;
    m_file.reset();
    m_current.reset();
    auto fields = [&](const char* result) {
        return log::Fields()
            .add("user", e.user)
            .add("class", toString(e.cls))
            .add("result", result)
            .add("status", code);
    };
    auto count = [&](const QString& result) {
        stats::add(QStringLiteral("postern_spam_learns_total"),
                   {{QStringLiteral("class"), toString(e.cls)}, {QStringLiteral("result"), result}});
    };
    if (code >= 200 && code < 300) {
        m_serverErrors.remove(e.id);
        m_spool.remove(e);
        const char* result = code == 200 ? "learned" : "skipped";
        count(QLatin1String(result));
        log::info(u"spam.learn", fields(result).add("detail", QString::fromUtf8(firstLine.mid(13))));
        startNext();
        if (!m_socket) kick();
        return;
    }
    if (code >= 400 && code < 500) {
        m_serverErrors.remove(e.id);
        m_spool.remove(e);
        count(QStringLiteral("refused"));
        log::warn(u"spam.learn", fields("refused").add("detail", QString::fromUtf8(firstLine.mid(13))));
        startNext();
        if (!m_socket) kick();
        return;
    }
    const int errors = ++m_serverErrors[e.id];
    if (errors >= kMaxServerErrors) {
        m_serverErrors.remove(e.id);
        m_spool.remove(e);
        count(QStringLiteral("dropped"));
        log::warn(u"spam.learn",
                  fields("dropped").add("detail", QStringLiteral("%1 server errors in a row").arg(errors)));
        startNext();
        if (!m_socket) kick();
        return;
    }
    count(QStringLiteral("deferred"));
    log::warn(u"spam.learn", fields("deferred").add("detail", QString::fromUtf8(firstLine.mid(13))));
    deferAll();
}

void RspamdLearner::fail(const QString& why) {
    if (!m_current) return;
    log::warn(u"spam.learn", log::Fields()
                                 .add("user", m_current->user)
                                 .add("class", toString(m_current->cls))
                                 .add("result", "deferred")
                                 .add("detail", why));
    stats::add(QStringLiteral("postern_spam_learns_total"), {{QStringLiteral("class"), toString(m_current->cls)},
                                                             {QStringLiteral("result"), QStringLiteral("deferred")}});
    m_timeout.stop();
    if (m_socket) {
        m_socket->disconnect(this);
        m_socket->abort();
        m_socket->deleteLater();
        m_socket = nullptr;
    }
    m_file.reset();
    m_current.reset();
    deferAll();
}

// Rspamd cannot take requests now: keep everything, look again after m_retryMs.
void RspamdLearner::deferAll() {
    m_batch.clear();
    m_waitingToRetry = true;
    m_sinceFailure.start();
    QTimer::singleShot(m_retryMs, this, &RspamdLearner::tick);
}

}  // namespace postern::spam
