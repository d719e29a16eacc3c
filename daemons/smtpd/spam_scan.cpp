// spam_scan.cpp — see spam_scan.h.
#include "spam_scan.h"

#include "core/posix_io.h"

#include <QLocalSocket>
#include <QTcpSocket>

#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace postern::smtp {

Result<RspamdTarget> parseRspamdTarget(const QString& text) {
    RspamdTarget t;
    if (text.startsWith(QLatin1Char('/'))) {
        t.socketPath = text;
        return t;
    }
    const qsizetype colon = text.lastIndexOf(QLatin1Char(':'));
    if (colon <= 0)
        return Error{QStringLiteral("spam.rspamd_address: expected /path.sock or address:port, got \"%1\"").arg(text)};
    QString host = text.left(colon);
    if (host.startsWith(QLatin1Char('[')) && host.endsWith(QLatin1Char(']'))) host = host.mid(1, host.size() - 2);
    bool ok = false;
    const uint port = text.mid(colon + 1).toUInt(&ok);
    if (!ok || port == 0 || port > 65535 || !t.address.setAddress(host))
        return Error{QStringLiteral("spam.rspamd_address: expected /path.sock or address:port, got \"%1\"").arg(text)};
    if (!t.address.isLoopback())
        return Error{QStringLiteral("spam.rspamd_address: only loopback addresses (the message is sent in clear)")};
    t.port = quint16(port);
    return t;
}

RspamdScan::RspamdScan(QObject* parent, QByteArray head, int fd, qint64 offset, qint64 length, Done done)
    : QObject(parent),
      m_head(std::move(head)),
      m_fd(fd),
      m_next(offset),
      m_end(offset + length),
      m_done(std::move(done)) {}

void RspamdScan::start(QObject* parent, const RspamdTarget& target, QByteArray head, int fd, qint64 offset,
                       qint64 length, int timeoutMs, Done done) {
    auto* scan = new RspamdScan(parent, std::move(head), fd, offset, length, std::move(done));
    scan->m_timer.setSingleShot(true);
    connect(&scan->m_timer, &QTimer::timeout, scan,
            [scan, timeoutMs]() { scan->finish(Error{QStringLiteral("no verdict within %1 ms").arg(timeoutMs)}); });
    scan->m_timer.start(timeoutMs);
    if (!target.socketPath.isEmpty()) {
        auto* s = new QLocalSocket(scan);
        scan->m_socket = s;
        connect(s, &QLocalSocket::connected, scan, &RspamdScan::connected);
        connect(s, &QLocalSocket::errorOccurred, scan, [scan, s](QLocalSocket::LocalSocketError) {
            if (s->error() == QLocalSocket::PeerClosedError &&
                scan->m_parser.state() != spam::RspamdReplyParser::State::NeedMore)
                return;
            scan->finish(Error{QStringLiteral("rspamd socket: %1").arg(s->errorString())});
        });
        connect(s, &QLocalSocket::disconnected, scan, [scan]() { scan->readReply(); });
        s->connectToServer(target.socketPath);
    } else {
        auto* s = new QTcpSocket(scan);
        scan->m_socket = s;
        connect(s, &QTcpSocket::connected, scan, &RspamdScan::connected);
        connect(s, &QTcpSocket::errorOccurred, scan, [scan, s](QAbstractSocket::SocketError) {
            if (s->error() == QAbstractSocket::RemoteHostClosedError &&
                scan->m_parser.state() != spam::RspamdReplyParser::State::NeedMore)
                return;
            scan->finish(Error{QStringLiteral("rspamd: %1").arg(s->errorString())});
        });
        connect(s, &QTcpSocket::disconnected, scan, [scan]() { scan->readReply(); });
        s->connectToHost(target.address, target.port);
    }
}

void RspamdScan::connected() {
    connect(m_socket, &QIODevice::bytesWritten, this, &RspamdScan::pump);
    connect(m_socket, &QIODevice::readyRead, this, &RspamdScan::readReply);
    if (m_socket->write(m_head) != m_head.size()) return finish(Error{QStringLiteral("cannot write to rspamd")});
    m_head.clear();
    pump();
}

// Refill the socket's buffer from the spool file while it holds less than kMaxBuffered bytes.
void RspamdScan::pump() {
    QByteArray chunk;
    while (!m_finished && m_next < m_end && m_socket->bytesToWrite() < kMaxBuffered) {
        const qint64 want = std::min(kChunk, m_end - m_next);
        chunk.resize(want);
        const ssize_t n = retryOnEintr([&] { return ::pread(m_fd, chunk.data(), size_t(want), m_next); });
        if (n <= 0)
            return finish(Error{QStringLiteral("reading the spool file for rspamd: %1")
                                    .arg(n < 0 ? errnoText(errno) : QStringLiteral("file shorter than expected"))});
        m_next += n;
        if (m_socket->write(chunk.constData(), n) != n) return finish(Error{QStringLiteral("cannot write to rspamd")});
    }
}

void RspamdScan::readReply() {
    if (m_finished) return;
    char buf[16 * 1024];
    for (;;) {
        const qint64 n = m_socket->read(buf, sizeof buf);
        if (n <= 0) break;
        const auto st = m_parser.feed(buf, n);
        if (st == spam::RspamdReplyParser::State::Failed) return finish(Error{m_parser.error()});
    }
    if (m_parser.state() == spam::RspamdReplyParser::State::Done) {
        if (m_next < m_end) return finish(Error{QStringLiteral("rspamd answered before the whole message was sent")});
        return finish(m_parser.verdict());
    }
    // No more bytes will come after the peer closed: an incomplete reply is an error.
    bool closed = false;
    if (auto* l = qobject_cast<QLocalSocket*>(m_socket)) closed = l->state() == QLocalSocket::UnconnectedState;
    if (auto* t = qobject_cast<QTcpSocket*>(m_socket)) closed = t->state() == QAbstractSocket::UnconnectedState;
    if (closed) finish(Error{QStringLiteral("rspamd closed the connection before its reply was complete")});
}

void RspamdScan::finish(Result<spam::Verdict> r) {
    if (m_finished) return;
    m_finished = true;
    m_timer.stop();
    disconnect(m_socket, nullptr, this, nullptr);
    if (auto* l = qobject_cast<QLocalSocket*>(m_socket)) l->abort();
    if (auto* t = qobject_cast<QTcpSocket*>(m_socket)) t->abort();
    Done done = std::move(m_done);
    deleteLater();
    done(std::move(r));
}

}  // namespace postern::smtp
