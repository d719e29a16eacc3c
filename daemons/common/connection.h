// connection.h — one client connection: owns the socket, feeds the session.
//
// Interface: a Connection is created by the DaemonServer for each accepted
// socket descriptor (it takes ownership), given its ProtocolSession, and
// started with begin(). It emits finished() once the socket is closed; the
// server deletes it later. It implements SessionIo (see session_io.h).
//
// The socket is a plain non-blocking descriptor watched by two QSocketNotifiers,
// with an OpenSSL SSL object on it once TLS starts (made from the daemon's one
// shared SSL_CTX, core/tls.h). Not QSslSocket: that one builds an SSL_CTX per
// socket and keeps four ring-buffer chunks (16-32 KiB each) for the life of the
// connection, ~100 KiB per idle IMAP client. Here an idle connection holds no
// buffers: input and output are QByteArrays emptied (freed) once used, and
// OpenSSL frees its record buffers (SSL_MODE_RELEASE_BUFFERS).
//
// What it does, in order of the conventions (CONVENTIONS.md 2 and 5):
//   * reads into a bounded buffer and stops reading from the kernel when it is
//     full, so TCP itself pushes back;
//   * feeds the session while it is not suspended; stops reading while output
//     is above the high-water mark (a client that does not read its FETCH
//     answers cannot make us buffer without bound);
//   * implicit TLS: handshake first, greeting after it completes;
//   * pre-greet wait (ProtocolSession::beginPregreet, SMTP MX): input that
//     arrives before the greeting is not fed; the session says why and the
//     connection closes;
//   * STARTTLS (session calls startTls()): discards and logs any bytes the
//     client pipelined after the command (in our buffer or the kernel's),
//     flushes the plaintext reply, then starts the handshake (CVE-2011-0411);
//   * timeouts: TLS handshake, idle (set by the session), total session time,
//     and a deadline the session sets (setDeadline: "logged in within N s of
//     connecting"), which reads do not restart;
//   * counts its input buffer in the process's InputBudget (Options::inputBudget,
//     when set): once the process holds its budget, a connection that already
//     holds a read chunk (kIoChunk, 16 KiB) reads no more until the budget has
//     room again (checked every Options::budgetRetryMs, kBudgetRetryMs by
//     default), so TCP pushes back;
//   * logs connect and disconnect with the reason, duration and byte counts.
//
// Limits: Options (input buffer, output water marks, handshake and session
// time, process input budget). Security: never processes plaintext as if it
// were encrypted; TLS 1.2+ only (the shared context); we do not ask for client
// certificates.
#pragma once

#include "input_budget.h"
#include "session_io.h"

#include "core/tls.h"

#include <QElapsedTimer>
#include <QObject>
#include <QSocketNotifier>
#include <QTimer>
#include <memory>

typedef struct ssl_st SSL;

namespace postern {

class Connection : public QObject, public SessionIo {
    Q_OBJECT
public:
    static constexpr int kBudgetRetryMs = 100;
    struct Options {
        qint64 maxBufferedInput = 256 * 1024;  // bytes read but not yet consumed by the session
        qint64 outputHighWater = 1024 * 1024;  // stop reading above this much pending output
        qint64 outputLowWater = 128 * 1024;
        qint64 handshakeTimeoutMs = 30'000;
        qint64 maxSessionMs = 0;             // 0: no limit
        qint64 closeTimeoutMs = 30'000;      // give up flushing to a peer that does not read
        InputBudget* inputBudget = nullptr;  // process-wide count of unread input (nullptr: none)
        int budgetRetryMs = kBudgetRetryMs;  // how often a paused connection looks again (tests shorten it)
    };

    // `descriptor`: an accepted TCP socket; the Connection owns (and closes) it.
    Connection(qintptr descriptor, ListenerMode mode, ServerTlsContext tls, const Options& options,
               QObject* parent = nullptr);
    ~Connection() override;

    // The peer of an accepted socket; false when it is already gone (ENOTCONN).
    // IPv4-mapped IPv6 addresses (dual-stack listener) come back as IPv4.
    static bool peerOf(qintptr descriptor, QHostAddress* address, quint16* port);

    void setSession(std::unique_ptr<ProtocolSession> session) { m_session = std::move(session); }
    ProtocolSession* session() const { return m_session.get(); }
    void begin();
    // The daemon is stopping: let the session say goodbye.
    void shutdown();
    // The client's address was blocked while connected (core/block_list.h), or its account
    // disabled: the session is told the peer is gone (it produces nothing more), `line`
    // is sent when the stream can carry it (not during a TLS handshake or before a
    // STARTTLS one), then closed; `reason` goes to the disconnect's log line.
    void closeBlocked(const QByteArray& line, const QString& reason = QStringLiteral("address blocked"));

    // SessionIo
    void send(const QByteArray& bytes) override;
    void startTls() override;
    void close(const QString& reason) override;
    bool peerHungUp() const override;
    void suspend() override;
    void resume() override;
    void setIdleTimeout(qint64 ms) override;
    void setDeadline(qint64 msSinceConnect) override;
    void notifyWhenWritable() override;
    qint64 pendingOutput() const override;
    const ConnectionInfo& info() const override { return m_info; }

    // State, for tests and diagnostics: a deadline is set and has not fired; reading is
    // paused by the process's input budget (retried every Options::budgetRetryMs).
    bool deadlinePending() const { return m_deadlineTimer.isActive(); }
    bool pausedByBudget() const { return m_budgetRetry.isActive(); }

Q_SIGNALS:
    void finished();

private:
    enum class ReadResult { Data, WouldBlock, Eof, Failed };
    enum class WriteResult { Wrote, WouldBlock, Failed };

    void onReadable();
    void onWritable();
    void process();
    void afterFeeding();  // process()'s tail: what the stop means
    bool canReadInput() const;
    ReadResult readInput(qint64 room);
    WriteResult writeSome(const char* data, qint64 size, qint64* written);
    void flushOutput();
    void afterOutputProgress();
    void updateNotifiers();
    qint64 discardPipelinedPlaintext();
    void beginTlsHandshake();
    void startSsl();
    void continueHandshake();
    void onEncrypted();
    void onDisconnected();
    void onIdleTimeout();
    void onSessionTimeout();
    void onDeadline();
    bool budgetAllowsRead() const;
    void accountInput() { m_inLease.setTo(m_in.size()); }
    void fillTlsInfo();
    void failIo(const QString& reason);
    void finish(const QString& reason);
    void closeSocket(bool graceful);
    void restartIdleTimer();

    int m_fd;
    SSL* m_ssl = nullptr;  // from beginTlsHandshake() on
    ServerTlsContext m_tlsContext;
    QSocketNotifier m_readNotifier;
    QSocketNotifier m_writeNotifier;
    std::unique_ptr<ProtocolSession> m_session;
    Options m_options;
    ConnectionInfo m_info;
    QByteArray m_in;  // read, not yet consumed by the session
    qsizetype m_inOffset = 0;
    QByteArray m_out;  // sent by the session, not yet taken by the kernel / SSL
    qsizetype m_outOffset = 0;
    QString m_ioError;       // why the last read or write failed
    bool m_readable = true;  // the socket may have input (cleared when a read would block)
    bool m_peerEof = false;
    bool m_sslWantsWrite = false;   // the handshake waits for the socket to take its output
    bool m_readWantsWrite = false;  // SSL_read must write before it can read on
    bool m_suspended = false;
    bool m_tlsPending = false;   // session asked for STARTTLS; handshake not started
    bool m_handshaking = false;  // flushing the plaintext reply, then the TLS handshake
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
    QTimer m_pregreetTimer;
    bool m_pregreet = false;  // waiting for the peer to stay silent until the greeting
    void greet();
    void spokeBeforeGreeting(qsizetype bytes);
    void endPregreet();
    QTimer m_deadlineTimer;
    QTimer m_budgetRetry;  // reading paused by the process's input budget
    InputBudget::Lease m_inLease;
    QElapsedTimer m_age;
    qint64 m_bytesIn = 0;
    qint64 m_bytesOut = 0;
};

}  // namespace postern
