// session_io.h — the seam between a protocol session (no I/O) and the
// connection that owns the socket.
//
// A protocol session (SMTP, IMAP, POP3) implements ProtocolSession: it is fed
// bytes and events and answers through SessionIo, an interface the Connection
// implements (tests implement it with a recorder). The session never touches
// a socket, a timer or a thread.
//
// Contract:
//   start()        the connection is ready for the greeting (after the TLS
//                  handshake on implicit-TLS listeners).
//   consume(d, n)  bytes from the peer; returns how many were used. Unused bytes
//                  (an incomplete line) are offered again with more data. The
//                  session returns early after asking for STARTTLS, closing,
//                  or suspending; the connection then acts before feeding more.
//   tlsStarted()   the STARTTLS handshake completed: forget everything learned
//                  before it (RFC 3207 4.2, RFC 9051 6.2.1, RFC 2595 4).
//   writable()     output drained below the low-water mark after the session
//                  called io.notifyWhenWritable() (used to stream large output).
//   timedOut()     idle or total time limit reached: reply and close.
//   deadlinePassed()  the deadline the session set with io.setDeadline() (e.g.
//                  "logged in within 60 s of connecting") passed: reply and
//                  close. By default the same as timedOut().
//   shutdown()     the daemon is stopping: say goodbye (421 / BYE / -ERR) and close.
//   peerClosed()   the peer went away; no more output is possible.
//   beginPregreet() called instead of start() when the connection is ready:
//                  returns how long the peer must stay silent before the
//                  greeting (0: no wait, start() follows at once). It may send
//                  the first line of a multi-line greeting. The connection
//                  reads but feeds nothing meanwhile; when the time is over it
//                  calls start(). If the peer sends a byte before that,
//                  spokeTooSoon() is called instead (the session answers and
//                  closes; the connection closes if it did not).
//   authenticatedUser()  the account logged in on this session (empty: none); the
//                  daemon closes the sessions of an account that gets disabled.
//
// Security: STARTTLS is the connection's job: when the session calls
// io.startTls(), any bytes the client pipelined after the command are
// discarded and logged (CVE-2011-0411 class) before the handshake starts.
#pragma once

#include "core/services.h"

#include <QByteArray>
#include <QHostAddress>
#include <QString>

namespace postern {

struct ConnectionInfo {
    QString sessionId;
    ListenerMode mode = ListenerMode::Mx;
    QHostAddress peerAddress;
    quint16 peerPort = 0;
    QHostAddress localAddress;
    quint16 localPort = 0;
    bool tls = false;     // current state: true after implicit TLS or STARTTLS
    QString tlsProtocol;  // "TLSv1.3"
    QString tlsCipher;    // "TLS_AES_256_GCM_SHA384"
    int tlsBits = 0;
};

class SessionIo {
public:
    virtual ~SessionIo() = default;
    virtual void send(const QByteArray& bytes) = 0;
    // Queue nothing more after this: flush what was sent, then start the server-side handshake.
    virtual void startTls() = 0;
    // Flush pending output, then disconnect. `reason` goes to the log line of the disconnect.
    virtual void close(const QString& reason) = 0;
    // Stop feeding input until resume() (while waiting for a password check, a disk write, ...).
    virtual void suspend() = 0;
    virtual void resume() = 0;
    // Idle limit between reads; restarted by every read. 0 disables.
    virtual void setIdleTimeout(qint64 ms) = 0;
    // A deadline counted from the moment the client connected (TLS handshake
    // included), unlike the idle timeout not restarted by reads: when the
    // connection is `msSinceConnect` old, ProtocolSession::deadlinePassed() is
    // called (at once if it is already older). 0 removes it. Sessions use it for
    // "log in within N seconds" (IMAP, POP3) and "send the request within N
    // seconds" (web). Implementations without timers (recorders in tests) may
    // only record it.
    virtual void setDeadline(qint64 msSinceConnect) { (void)msSinceConnect; }
    // Ask for ProtocolSession::writable() once pending output is small again.
    virtual void notifyWhenWritable() = 0;
    virtual qint64 pendingOutput() const = 0;
    virtual const ConnectionInfo& info() const = 0;
    // True once the peer has closed its side of the connection (or the connection is over),
    // checked without reading: for work that is pointless once nobody waits for the answer.
    virtual bool peerHungUp() const { return false; }
};

class ProtocolSession {
public:
    virtual ~ProtocolSession() = default;
    virtual void start() = 0;
    virtual qsizetype consume(const char* data, qsizetype size) = 0;
    virtual void tlsStarted() = 0;
    virtual void writable() {}
    virtual void timedOut() = 0;
    virtual void deadlinePassed() { timedOut(); }
    virtual void shutdown() = 0;
    virtual void peerClosed() {}
    virtual qint64 beginPregreet() { return 0; }
    virtual void spokeTooSoon() {}
    // The normalised address this session is logged in as, empty before a login (or for
    // protocols without one): the daemon closes sessions of accounts that get disabled.
    virtual QString authenticatedUser() const { return {}; }
};

}  // namespace postern
