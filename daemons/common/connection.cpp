// connection.cpp — see connection.h.
#include "connection.h"

#include "core/log.h"
#include "core/stats.h"

#include <QSslCipher>

namespace postern {

Connection::Connection(QSslSocket* socket, ListenerMode mode, const QSslConfiguration& tls, const Options& options,
                       QObject* parent)
    : QObject(parent), m_socket(socket), m_tls(tls), m_options(options) {
    m_socket->setParent(this);
    m_socket->setReadBufferSize(64 * 1024);
    m_info.sessionId = log::newSessionId();
    m_info.mode = mode;
    m_info.peerAddress = m_socket->peerAddress();
    if (m_info.peerAddress.protocol() == QAbstractSocket::IPv6Protocol) {
        bool isV4 = false;
        const quint32 v4 = m_info.peerAddress.toIPv4Address(&isV4);
        if (isV4) m_info.peerAddress = QHostAddress(v4);  // ::ffff:a.b.c.d from a dual-stack listener
    }
    m_info.peerPort = m_socket->peerPort();
    m_info.localAddress = m_socket->localAddress();
    m_info.localPort = m_socket->localPort();
    m_age.start();

    m_idleTimer.setSingleShot(true);
    m_sessionTimer.setSingleShot(true);
    m_handshakeTimer.setSingleShot(true);
    m_closeTimer.setSingleShot(true);
    connect(&m_idleTimer, &QTimer::timeout, this, &Connection::onIdleTimeout);
    connect(&m_sessionTimer, &QTimer::timeout, this, &Connection::onSessionTimeout);
    connect(&m_handshakeTimer, &QTimer::timeout, this, [this] { finish(QStringLiteral("TLS handshake timeout")); });
    connect(&m_closeTimer, &QTimer::timeout, this, [this] { finish(QStringLiteral("%1 (peer did not read)").arg(m_closeReason)); });
    connect(m_socket, &QSslSocket::readyRead, this, &Connection::onReadyRead);
    connect(m_socket, &QSslSocket::encryptedBytesWritten, this, &Connection::onBytesWritten);
    connect(m_socket, &QSslSocket::bytesWritten, this, &Connection::onBytesWritten);
    connect(m_socket, &QSslSocket::encrypted, this, &Connection::onEncrypted);
    connect(m_socket, &QSslSocket::disconnected, this, &Connection::onDisconnected);
    connect(m_socket, &QSslSocket::errorOccurred, this, &Connection::onSocketError);
    connect(m_socket, &QSslSocket::sslErrors, this, [this](const QList<QSslError>& errors) {
        // We never ask for client certificates, so there is nothing to accept here.
        QStringList e;
        for (const QSslError& err : errors) e << err.errorString();
        finish(QStringLiteral("TLS error: %1").arg(e.join(QStringLiteral("; "))));
    });
}

Connection::~Connection() = default;

void Connection::begin() {
    log::write(log::Level::Info, m_info.sessionId, u"connect",
               log::Fields()
                   .add("listener", listenerName(m_info.mode))
                   .add("remote", m_info.peerAddress.toString())
                   .add("port", int(m_info.peerPort)));
    if (m_options.maxSessionMs > 0) m_sessionTimer.start(int(std::min<qint64>(m_options.maxSessionMs, INT_MAX)));
    if (isImplicitTls(m_info.mode)) {
        beginTlsHandshake();
        return;
    }
    if (m_session) m_session->start();
    process();
}

void Connection::beginTlsHandshake() {
    m_handshaking = true;
    m_socket->setSslConfiguration(m_tls);
    m_handshakeTimer.start(int(m_options.handshakeTimeoutMs));
    m_socket->startServerEncryption();
}

void Connection::fillTlsInfo() {
    m_info.tls = true;
    const QSslCipher c = m_socket->sessionCipher();
    m_info.tlsCipher = c.name();
    m_info.tlsBits = c.usedBits();
    switch (m_socket->sessionProtocol()) {
        case QSsl::TlsV1_3: m_info.tlsProtocol = QStringLiteral("TLSv1.3"); break;
        case QSsl::TlsV1_2: m_info.tlsProtocol = QStringLiteral("TLSv1.2"); break;
        default: m_info.tlsProtocol = c.protocolString(); break;
    }
}

void Connection::onEncrypted() {
    m_handshakeTimer.stop();
    m_handshaking = false;
    fillTlsInfo();
    stats::add(QStringLiteral("postern_tls_sessions_total"),
               {{QStringLiteral("listener"), listenerName(m_info.mode)}, {QStringLiteral("version"), m_info.tlsProtocol}});
    log::write(log::Level::Info, m_info.sessionId, u"tls",
               log::Fields().add("version", m_info.tlsProtocol).add("cipher", m_info.tlsCipher));
    const bool wasStartTls = m_tlsPending;
    m_tlsPending = false;
    restartIdleTimer();
    if (!m_session) return;
    if (wasStartTls) m_session->tlsStarted();
    else m_session->start();
    process();
}

void Connection::startTls() {
    if (m_info.tls || m_tlsPending || m_closing) return;
    m_tlsPending = true;
}

void Connection::send(const QByteArray& bytes) {
    if (m_finished || bytes.isEmpty()) return;
    m_bytesOut += bytes.size();
    m_socket->write(bytes);
    if (pendingOutput() > m_options.outputHighWater) m_outputBlocked = true;
}

qint64 Connection::pendingOutput() const { return m_socket->bytesToWrite() + m_socket->encryptedBytesToWrite(); }

void Connection::close(const QString& reason) {
    if (m_closing || m_finished) return;
    m_closing = true;
    m_closeReason = reason;
    m_idleTimer.stop();
    m_socket->flush();
    m_closeTimer.start(int(m_options.closeTimeoutMs));
    if (pendingOutput() == 0) finish(reason);
    // else onBytesWritten finishes once everything left.
}

void Connection::suspend() { m_suspended = true; }

void Connection::resume() {
    if (!m_suspended) return;
    m_suspended = false;
    // Continue from the event loop, never from inside the caller's stack.
    QMetaObject::invokeMethod(this, [this] { process(); }, Qt::QueuedConnection);
}

void Connection::setIdleTimeout(qint64 ms) {
    if (ms <= 0) {
        m_idleTimer.stop();
        m_idleTimer.setInterval(0);
        return;
    }
    m_idleTimer.setInterval(int(std::min<qint64>(ms, INT_MAX)));
    m_idleTimer.start();
}

void Connection::restartIdleTimer() {
    if (m_idleTimer.interval() > 0 && !m_closing) m_idleTimer.start();
}

void Connection::notifyWhenWritable() {
    m_wantWritable = true;
    if (pendingOutput() <= m_options.outputLowWater)
        QMetaObject::invokeMethod(this, [this] { onBytesWritten(); }, Qt::QueuedConnection);
}

void Connection::onReadyRead() {
    if (m_finished) return;
    restartIdleTimer();
    process();
}

void Connection::process() {
    if (m_processing || m_finished) return;  // re-entered from a session callback
    m_processing = true;
    for (;;) {
        if (m_closing || m_tlsPending || m_handshaking || m_suspended || m_outputBlocked) break;
        // Read what fits into our buffer.
        if (m_in.size() - m_inOffset < m_options.maxBufferedInput && m_socket->bytesAvailable() > 0) {
            const qint64 room = m_options.maxBufferedInput - (m_in.size() - m_inOffset);
            const QByteArray chunk = m_socket->read(room);
            m_bytesIn += chunk.size();
            m_in.append(chunk);
        }
        const qsizetype available = m_in.size() - m_inOffset;
        if (available == 0 || !m_session) break;
        const qsizetype used = m_session->consume(m_in.constData() + m_inOffset, available);
        m_inOffset += std::clamp<qsizetype>(used, 0, available);
        if (m_inOffset == m_in.size()) {
            m_in.clear();
            m_inOffset = 0;
        } else if (m_inOffset > 64 * 1024) {
            m_in.remove(0, m_inOffset);
            m_inOffset = 0;
        }
        if (used <= 0) {
            // The session needs more bytes. If our buffer is full it can never get them.
            if (m_in.size() - m_inOffset >= m_options.maxBufferedInput) {
                m_processing = false;
                close(QStringLiteral("input buffer limit exceeded"));
                return;
            }
            if (m_socket->bytesAvailable() == 0) break;
        }
    }
    m_processing = false;
    if (m_tlsPending && !m_handshaking && !m_finished) {
        // STARTTLS: everything after the command is plaintext the client must not have sent.
        const qint64 pipelined = (m_in.size() - m_inOffset) + m_socket->bytesAvailable();
        if (pipelined > 0) {
            log::write(log::Level::Warning, m_info.sessionId, u"starttls.pipelined_plaintext_discarded",
                       log::Fields().add("bytes", pipelined).add("remote", m_info.peerAddress.toString()));
            m_socket->readAll();
        }
        m_in.clear();
        m_inOffset = 0;
        m_socket->flush();  // the plaintext "ready" reply leaves before any TLS record
        beginTlsHandshake();
    }
}

void Connection::onBytesWritten() {
    if (m_finished) return;
    const qint64 pending = pendingOutput();
    if (m_closing) {
        if (pending == 0) finish(m_closeReason);
        return;
    }
    if (pending > m_options.outputLowWater) return;
    if (m_outputBlocked) {
        m_outputBlocked = false;
        QMetaObject::invokeMethod(this, [this] { process(); }, Qt::QueuedConnection);
    }
    if (m_wantWritable && m_session) {
        m_wantWritable = false;
        m_session->writable();
    }
}

void Connection::onIdleTimeout() {
    if (m_closing || m_finished) return;
    log::write(log::Level::Info, m_info.sessionId, u"timeout", log::Fields().add("kind", "idle"));
    if (m_session) m_session->timedOut();
    if (!m_closing) close(QStringLiteral("idle timeout"));
}

void Connection::onSessionTimeout() {
    if (m_closing || m_finished) return;
    log::write(log::Level::Info, m_info.sessionId, u"timeout", log::Fields().add("kind", "session"));
    if (m_session) m_session->timedOut();
    if (!m_closing) close(QStringLiteral("session time limit"));
}

void Connection::shutdown() {
    if (m_closing || m_finished) return;
    if (m_session && !m_handshaking) m_session->shutdown();
    if (!m_closing) close(QStringLiteral("server shutting down"));
}

void Connection::onDisconnected() {
    if (m_finished) return;
    if (!m_closing && m_session) m_session->peerClosed();
    finish(m_closing ? m_closeReason : QStringLiteral("peer closed the connection"));
}

void Connection::onSocketError(QAbstractSocket::SocketError error) {
    if (m_finished) return;
    if (error == QAbstractSocket::RemoteHostClosedError) {
        onDisconnected();
        return;
    }
    if (m_handshaking) {
        finish(QStringLiteral("TLS handshake failed: %1").arg(m_socket->errorString()));
        return;
    }
    if (!m_closing && m_session) m_session->peerClosed();
    finish(QStringLiteral("socket error: %1").arg(m_socket->errorString()));
}

void Connection::finish(const QString& reason) {
    if (m_finished) return;
    m_finished = true;
    m_idleTimer.stop();
    m_sessionTimer.stop();
    m_handshakeTimer.stop();
    m_closeTimer.stop();
    log::write(log::Level::Info, m_info.sessionId, u"disconnect",
               log::Fields()
                   .add("reason", reason)
                   .add("duration_ms", m_age.elapsed())
                   .add("in", m_bytesIn)
                   .add("out", m_bytesOut));
    m_socket->disconnect(this);
    if (m_socket->state() != QAbstractSocket::UnconnectedState) {
        if (m_closing && pendingOutput() == 0) m_socket->disconnectFromHost();
        else m_socket->abort();
    }
    Q_EMIT finished();
}

}  // namespace postern
