// connection.h — one client connection: owns the socket, feeds the session.
//
// Interface: a Connection is created by the DaemonServer for each accepted
// socket, given its ProtocolSession, and started with begin(). It emits
// finished() once the socket is closed; the server deletes it later.
// It implements SessionIo (see session_io.h) for its session.
//
// What it does, in order of the conventions (CONVENTIONS.md 2 and 5):
//   * reads into a bounded buffer (QAbstractSocket::setReadBufferSize keeps
//     Qt from reading more from the kernel, so TCP itself pushes back);
//   * feeds the session while it is not suspended; stops reading while output
//     is above the high-water mark (a client that does not read its FETCH
//     answers cannot make us buffer without bound);
//   * implicit TLS: handshake first, greeting after `encrypted`;
//   * STARTTLS (session calls startTls()): discards and logs any bytes the
//     client pipelined after the command (in our buffer or the socket's),
//     flushes the plaintext reply, then starts the handshake (CVE-2011-0411);
//   * timeouts: TLS handshake, idle (set by the session), total session time;
//   * logs connect and disconnect with the reason, duration and byte counts.
//
// Limits: Options (input buffer, output water marks, handshake and session
// time). Security: never processes plaintext as if it were encrypted; never
// calls ignoreSslErrors() (we do not verify client certificates at all).
#pragma once

#include "session_io.h"

#include <QElapsedTimer>
#include <QObject>
#include <QPointer>
#include <QSslConfiguration>
#include <QSslSocket>
#include <QTimer>
#include <memory>

namespace postern {

class Connection : public QObject, public SessionIo {
    Q_OBJECT
public:
    struct Options {
        qint64 maxBufferedInput = 256 * 1024;   // bytes read but not yet consumed by the session
        qint64 outputHighWater = 1024 * 1024;   // stop reading above this much pending output
        qint64 outputLowWater = 128 * 1024;
        qint64 handshakeTimeoutMs = 30'000;
        qint64 maxSessionMs = 0;                 // 0: no limit
        qint64 closeTimeoutMs = 30'000;          // give up flushing to a peer that does not read
    };

    Connection(QSslSocket* socket, ListenerMode mode, const QSslConfiguration& tls, const Options& options,
               QObject* parent = nullptr);
    ~Connection() override;

    void setSession(std::unique_ptr<ProtocolSession> session) { m_session = std::move(session); }
    ProtocolSession* session() const { return m_session.get(); }
    void begin();
    // The daemon is stopping: let the session say goodbye.
    void shutdown();
    bool isClosing() const { return m_closing; }

    // SessionIo
    void send(const QByteArray& bytes) override;
    void startTls() override;
    void close(const QString& reason) override;
    void suspend() override;
    void resume() override;
    void setIdleTimeout(qint64 ms) override;
    void notifyWhenWritable() override;
    qint64 pendingOutput() const override;
    const ConnectionInfo& info() const override { return m_info; }

Q_SIGNALS:
    void finished();

private:
    void onReadyRead();
    void onBytesWritten();
    void onEncrypted();
    void onDisconnected();
    void onSocketError(QAbstractSocket::SocketError error);
    void onIdleTimeout();
    void onSessionTimeout();
    void process();
    void beginTlsHandshake();
    void fillTlsInfo();
    void finish(const QString& reason);
    void restartIdleTimer();

    QSslSocket* m_socket;
    std::unique_ptr<ProtocolSession> m_session;
    QSslConfiguration m_tls;
    Options m_options;
    ConnectionInfo m_info;
    QByteArray m_in;
    qsizetype m_inOffset = 0;
    bool m_suspended = false;
    bool m_tlsPending = false;   // session asked for STARTTLS; handshake not finished
    bool m_handshaking = false;
    bool m_closing = false;
    bool m_finished = false;
    bool m_wantWritable = false;
    bool m_processing = false;
    bool m_outputBlocked = false;
    QString m_closeReason;
    QTimer m_idleTimer;
    QTimer m_sessionTimer;
    QTimer m_handshakeTimer;
    QTimer m_closeTimer;
    QElapsedTimer m_age;
    qint64 m_bytesIn = 0;
    qint64 m_bytesOut = 0;
};

}  // namespace postern
