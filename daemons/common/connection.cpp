// connection.cpp — see connection.h.
#include "connection.h"

#include "core/log.h"
#include "core/posix_io.h"
#include "core/stats.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>

namespace postern {

namespace {
// Bytes moved per read or write call: one TLS record's worth.
constexpr qint64 kIoChunk = 16 * 1024;

// OpenSSL writes with write(2), not send(MSG_NOSIGNAL): a peer that went away must
// give EPIPE, not kill the process. The daemons already ignore SIGPIPE
// (unix_signals.cpp); this covers every other user of Connection (tests).
void ignoreSigpipe() {
    static std::once_flag once;
    std::call_once(once, [] { ::signal(SIGPIPE, SIG_IGN); });
}

// The first queued OpenSSL error as text (the queue is emptied: it is per thread).
QString takeOpenSslError() {
    return postern::takeOpenSslError(QStringLiteral("unexpected end of stream"));
}

bool peerWentAway(int err) {
    return err == ECONNRESET || err == EPIPE || err == ETIMEDOUT;
}

bool addressOf(int fd, bool peer, QHostAddress* address, quint16* port) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    auto* sa = reinterpret_cast<sockaddr*>(&ss);
    if ((peer ? ::getpeername(fd, sa, &len) : ::getsockname(fd, sa, &len)) != 0) return false;
    QHostAddress a(sa);
    bool isV4 = false;
    const quint32 v4 = a.toIPv4Address(&isV4);
    if (a.protocol() == QAbstractSocket::IPv6Protocol && isV4) a = QHostAddress(v4);  // ::ffff:a.b.c.d
    *address = a;
    *port = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(sa)->sin6_port)
                                     : ntohs(reinterpret_cast<sockaddr_in*>(sa)->sin_port);
    return true;
}
}  // namespace

bool Connection::peerOf(qintptr descriptor, QHostAddress* address, quint16* port) {
    return addressOf(int(descriptor), true, address, port);
}

Connection::Connection(qintptr descriptor, ListenerMode mode, ServerTlsContext tls, const Options& options,
                       QObject* parent)
    : QObject(parent),
      m_fd(int(descriptor)),
      m_tlsContext(std::move(tls)),
      m_readNotifier(descriptor, QSocketNotifier::Read),
      m_writeNotifier(descriptor, QSocketNotifier::Write),
      m_options(options),
      m_inLease(options.inputBudget) {
    ignoreSigpipe();
    ::fcntl(m_fd, F_SETFL, ::fcntl(m_fd, F_GETFL) | O_NONBLOCK);
    // OpenSSL writes a handshake flight (and a TLS 1.3 server its session tickets) in
    // several small writes; with Nagle each waits for the client's delayed ACK (40 ms).
    // Our own replies are whole: nothing to gain from Nagle.
    const int one = 1;
    ::setsockopt(m_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    m_info.sessionId = log::newSessionId();
    m_info.mode = mode;
    addressOf(m_fd, true, &m_info.peerAddress, &m_info.peerPort);
    addressOf(m_fd, false, &m_info.localAddress, &m_info.localPort);
    m_age.start();

    m_writeNotifier.setEnabled(false);
    connect(&m_readNotifier, &QSocketNotifier::activated, this, &Connection::onReadable);
    connect(&m_writeNotifier, &QSocketNotifier::activated, this, &Connection::onWritable);
    m_idleTimer.setSingleShot(true);
    m_sessionTimer.setSingleShot(true);
    m_handshakeTimer.setSingleShot(true);
    m_closeTimer.setSingleShot(true);
    m_pregreetTimer.setSingleShot(true);
    // A coarse timer may fire up to 5 % early; the pre-greet wait is a promise to the peer ("talk
    // before N ms and you are dropped"), so it must never end before N ms.
    m_pregreetTimer.setTimerType(Qt::PreciseTimer);
    connect(&m_pregreetTimer, &QTimer::timeout, this, &Connection::endPregreet);
    m_deadlineTimer.setSingleShot(true);
    m_budgetRetry.setSingleShot(true);
    m_budgetRetry.setInterval(std::max(1, m_options.budgetRetryMs));
    connect(&m_deadlineTimer, &QTimer::timeout, this, &Connection::onDeadline);
    connect(&m_budgetRetry, &QTimer::timeout, this, [this] {
        process();
        updateNotifiers();
    });
    connect(&m_idleTimer, &QTimer::timeout, this, &Connection::onIdleTimeout);
    connect(&m_sessionTimer, &QTimer::timeout, this, &Connection::onSessionTimeout);
    connect(&m_handshakeTimer, &QTimer::timeout, this, [this] { finish(QStringLiteral("TLS handshake timeout")); });
    connect(&m_closeTimer, &QTimer::timeout, this,
            [this] { finish(QStringLiteral("%1 (peer did not read)").arg(m_closeReason)); });
}

Connection::~Connection() {
    closeSocket(false);
}

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
    greet();
    process();
}

void Connection::greet() {
    if (!m_session) return;
    const qint64 waitMs = m_session->beginPregreet();
    if (waitMs <= 0) {
        m_session->start();
        return;
    }
    m_pregreet = true;
    m_pregreetTimer.start(int(std::min<qint64>(waitMs, INT_MAX)));
}

// The peer kept silent until now: greet it and feed what it sends from here on.
void Connection::endPregreet() {
    if (!m_pregreet || m_closing || m_finished) return;
    m_pregreet = false;
    if (m_session) m_session->start();
    process();
}

// ---- TLS ---------------------------------------------------------------------

// STARTTLS or implicit TLS. The plaintext reply to STARTTLS must leave before any
// TLS record, so the SSL object only takes over the socket once m_out is empty.
void Connection::beginTlsHandshake() {
    m_handshaking = true;
    m_handshakeTimer.start(int(m_options.handshakeTimeoutMs));
    if (pendingOutput() == 0)
        startSsl();
    else
        updateNotifiers();  // flushOutput() calls startSsl() once the reply is out
}

void Connection::startSsl() {
    if (!m_tlsContext) {
        finish(QStringLiteral("TLS handshake failed: no server certificate loaded"));
        return;
    }
    m_ssl = SSL_new(m_tlsContext.get());
    if (!m_ssl || SSL_set_fd(m_ssl, m_fd) != 1) {
        finish(QStringLiteral("TLS handshake failed: %1").arg(takeOpenSslError()));
        return;
    }
    SSL_set_accept_state(m_ssl);
    continueHandshake();
}

void Connection::continueHandshake() {
    ERR_clear_error();
    const int r = SSL_do_handshake(m_ssl);
    if (r == 1) {
        onEncrypted();
        return;
    }
    const int err = SSL_get_error(m_ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        m_sslWantsWrite = err == SSL_ERROR_WANT_WRITE;
        updateNotifiers();
        return;
    }
    const QString why = err == SSL_ERROR_SYSCALL && errno != 0 ? errnoText(errno) : takeOpenSslError();
    finish(QStringLiteral("TLS handshake failed: %1").arg(why));
}

void Connection::fillTlsInfo() {
    m_info.tls = true;
    const SSL_CIPHER* c = SSL_get_current_cipher(m_ssl);
    m_info.tlsCipher = QString::fromLatin1(SSL_CIPHER_get_name(c));
    m_info.tlsBits = SSL_CIPHER_get_bits(c, nullptr);
    m_info.tlsProtocol = QString::fromLatin1(SSL_get_version(m_ssl));  // "TLSv1.3", "TLSv1.2"
}

void Connection::onEncrypted() {
    m_handshakeTimer.stop();
    m_handshaking = false;
    m_sslWantsWrite = false;
    m_readable = true;  // the client may have sent its first command with its Finished
    fillTlsInfo();
    stats::add(QStringLiteral("postern_tls_sessions_total"), {{QStringLiteral("listener"), listenerName(m_info.mode)},
                                                              {QStringLiteral("version"), m_info.tlsProtocol}});
    log::write(log::Level::Info, m_info.sessionId, u"tls",
               log::Fields().add("version", m_info.tlsProtocol).add("cipher", m_info.tlsCipher));
    const bool wasStartTls = m_tlsPending;
    m_tlsPending = false;
    restartIdleTimer();
    if (m_session) {
        if (wasStartTls)
            m_session->tlsStarted();
        else
            greet();
    }
    process();
}

void Connection::startTls() {
    if (m_info.tls || m_tlsPending || m_closing) return;
    m_tlsPending = true;
}

// ---- socket I/O -------------------------------------------------------------

Connection::ReadResult Connection::readInput(qint64 room) {
    char buf[kIoChunk];
    const int want = int(std::min(room, kIoChunk));
    qint64 got = 0;
    if (m_ssl) {
        ERR_clear_error();
        const int r = SSL_read(m_ssl, buf, want);
        if (r <= 0) {
            const int err = SSL_get_error(m_ssl, r);
            if (err == SSL_ERROR_WANT_READ) return ReadResult::WouldBlock;
            if (err == SSL_ERROR_WANT_WRITE) {  // a TLS 1.3 KeyUpdate answer did not fit the socket
                m_readWantsWrite = true;
                return ReadResult::WouldBlock;
            }
            if (err == SSL_ERROR_ZERO_RETURN) return ReadResult::Eof;  // close_notify, or EOF (IGNORE_UNEXPECTED_EOF)
            if (err == SSL_ERROR_SYSCALL && peerWentAway(errno)) return ReadResult::Eof;
            m_ioError = err == SSL_ERROR_SYSCALL && errno != 0
                            ? QStringLiteral("socket error: %1").arg(errnoText(errno))
                            : QStringLiteral("TLS error: %1").arg(takeOpenSslError());
            return ReadResult::Failed;
        }
        got = r;
    } else {
        const ssize_t r = retryOnEintr([&] { return ::recv(m_fd, buf, size_t(want), 0); });
        if (r == 0) return ReadResult::Eof;
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return ReadResult::WouldBlock;
            if (peerWentAway(errno)) return ReadResult::Eof;
            m_ioError = QStringLiteral("socket error: %1").arg(errnoText(errno));
            return ReadResult::Failed;
        }
        got = r;
    }
    m_bytesIn += got;
    m_in.append(buf, got);
    return ReadResult::Data;
}

Connection::WriteResult Connection::writeSome(const char* data, qint64 size, qint64* written) {
    // Never less than a retried SSL_write had (OpenSSL requires it): m_out only grows at the end.
    const int n = int(std::min(size, kIoChunk));
    if (m_ssl) {
        ERR_clear_error();
        const int r = SSL_write(m_ssl, data, n);
        if (r > 0) {
            *written = r;
            return WriteResult::Wrote;
        }
        const int err = SSL_get_error(m_ssl, r);
        if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) return WriteResult::WouldBlock;
        m_ioError = err == SSL_ERROR_SYSCALL && peerWentAway(errno) ? QStringLiteral("peer closed the connection")
                    : err == SSL_ERROR_SYSCALL && errno != 0 ? QStringLiteral("socket error: %1").arg(errnoText(errno))
                                                             : QStringLiteral("TLS error: %1").arg(takeOpenSslError());
        return WriteResult::Failed;
    }
    const ssize_t r = retryOnEintr([&] { return ::send(m_fd, data, size_t(n), MSG_NOSIGNAL); });
    if (r >= 0) {
        *written = r;
        return WriteResult::Wrote;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return WriteResult::WouldBlock;
    m_ioError = peerWentAway(errno) ? QStringLiteral("peer closed the connection")
                                    : QStringLiteral("socket error: %1").arg(errnoText(errno));
    return WriteResult::Failed;
}

// Write what the socket takes now; the write notifier brings us back for the rest.
void Connection::flushOutput() {
    if (m_finished || (m_handshaking && m_ssl)) return;  // no application data during the handshake
    bool progressed = false;
    while (m_outOffset < m_out.size()) {
        qint64 written = 0;
        const WriteResult r = writeSome(m_out.constData() + m_outOffset, m_out.size() - m_outOffset, &written);
        if (r == WriteResult::Failed) {
            failIo(m_ioError);
            return;
        }
        if (r == WriteResult::WouldBlock) break;
        m_outOffset += written;
        progressed = true;
    }
    if (m_outOffset == m_out.size()) {
        m_out = QByteArray();  // an idle connection keeps no output buffer
        m_outOffset = 0;
    } else if (m_outOffset >= 256 * 1024) {
        m_out.remove(0, m_outOffset);
        m_outOffset = 0;
    }
    if (m_handshaking && !m_ssl && pendingOutput() == 0) {
        startSsl();  // the plaintext STARTTLS reply is out
        return;
    }
    updateNotifiers();
    if (progressed) afterOutputProgress();
}

void Connection::send(const QByteArray& bytes) {
    if (m_finished || bytes.isEmpty()) return;
    m_bytesOut += bytes.size();
    if (m_out.isEmpty())
        m_out = bytes;  // shares the caller's buffer, no copy
    else
        m_out.append(bytes);
    if (pendingOutput() > m_options.outputHighWater) m_outputBlocked = true;
    // Written from the event loop (the write notifier fires at once on a writable
    // socket), never from inside the session's call: errors must not re-enter it.
    updateNotifiers();
}

qint64 Connection::pendingOutput() const {
    return m_out.size() - m_outOffset;
}

bool Connection::canReadInput() const {
    return !m_finished && !m_closing && !m_tlsPending && !m_handshaking && !m_suspended && !m_outputBlocked &&
           !m_peerEof && m_in.size() - m_inOffset < m_options.maxBufferedInput && budgetAllowsRead();
}

// A connection may always hold one read chunk (so every session makes progress);
// more only while the process's input budget has a chunk to spare.
bool Connection::budgetAllowsRead() const {
    if (!m_options.inputBudget) return true;
    return m_in.size() - m_inOffset < kIoChunk || m_options.inputBudget->available() >= kIoChunk;
}

// Level-triggered notifiers: each is enabled only while its event would be acted on,
// so an unread socket (suspended session, full buffer) costs no CPU.
void Connection::updateNotifiers() {
    if (m_fd < 0) return;
    const bool handshakeIo = m_handshaking && m_ssl;
    m_readNotifier.setEnabled(handshakeIo ? !m_sslWantsWrite : canReadInput());
    // Reading paused only by the budget: look again soon (the notifier cannot tell us).
    if (!handshakeIo && !budgetAllowsRead() && !m_finished && !m_closing && !m_peerEof && !m_budgetRetry.isActive())
        m_budgetRetry.start();
    m_writeNotifier.setEnabled(handshakeIo ? m_sslWantsWrite : pendingOutput() > 0 || m_readWantsWrite);
}

void Connection::onReadable() {
    if (m_finished) return;
    if (m_handshaking && m_ssl) {
        continueHandshake();
        return;
    }
    m_readable = true;
    restartIdleTimer();
    process();
}

void Connection::onWritable() {
    if (m_finished) return;
    if (m_handshaking && m_ssl) {
        continueHandshake();
        return;
    }
    if (m_readWantsWrite) {
        m_readWantsWrite = false;
        m_readable = true;
        process();
    }
    flushOutput();
}

// ---- feeding the session ------------------------------------------------------

// The loop's exits and the m_processing guard stay together here, so the re-entrancy
// rule is read in one place; what each stop means (suspended, half-closed, STARTTLS)
// is decided afterwards, outside the guard, by afterFeeding().
void Connection::process() {
    if (m_processing || m_finished) return;  // re-entered from a session callback
    m_processing = true;
    for (;;) {
        if (m_closing || m_tlsPending || m_handshaking || m_suspended || m_outputBlocked) break;
        // Read what fits into our buffer (and into the process's input budget).
        if (m_readable && !m_peerEof && m_in.size() - m_inOffset < m_options.maxBufferedInput && budgetAllowsRead()) {
            const ReadResult r = readInput(m_options.maxBufferedInput - (m_in.size() - m_inOffset));
            accountInput();
            switch (r) {
                case ReadResult::Data:
                    break;
                case ReadResult::WouldBlock:
                    m_readable = false;
                    break;
                case ReadResult::Eof:
                    m_peerEof = true;
                    break;
                case ReadResult::Failed:
                    m_processing = false;
                    failIo(m_ioError);
                    return;
            }
        }
        const qsizetype available = m_in.size() - m_inOffset;
        if (m_pregreet) {
            if (available > 0) {
                m_processing = false;
                spokeBeforeGreeting(available);
                return;
            }
            if (!m_readable || m_peerEof) break;
            continue;
        }
        if (available == 0 || !m_session) break;
        const qsizetype used = m_session->consume(m_in.constData() + m_inOffset, available);
        m_inOffset += std::clamp<qsizetype>(used, 0, available);
        if (m_inOffset == m_in.size()) {
            m_in = QByteArray();  // an idle connection keeps no input buffer
            m_inOffset = 0;
        } else if (m_inOffset > 64 * 1024) {
            m_in.remove(0, m_inOffset);
            m_inOffset = 0;
        }
        accountInput();
        if (used <= 0) {
            // The session needs more bytes. If our buffer is full it can never get them.
            if (m_in.size() - m_inOffset >= m_options.maxBufferedInput) {
                m_processing = false;
                close(QStringLiteral("input buffer limit exceeded"));
                return;
            }
            if (!m_readable || m_peerEof || !budgetAllowsRead()) break;
        }
    }
    m_processing = false;
    if (m_finished) return;
    afterFeeding();
}

// process() stopped feeding the session: close after a half-close, start the STARTTLS
// handshake, or wait for the socket (or the suspended session) again.
void Connection::afterFeeding() {
    if (m_peerEof) {
        // The session is still working on the last command (a delivery's fsync, a password
        // check): it resumes, answers, and we come back here to send that answer.
        if (m_suspended) {
            updateNotifiers();
            return;
        }
        if (pendingOutput() > 0) {
            // Half-closed (shutdown(SHUT_WR) after the last command): the client can still
            // read the answers it asked for. Send them, then close (or give up at the
            // close timeout, or when a write fails because the peer is gone entirely).
            if (!m_closing && m_session) m_session->peerClosed();
            close(QStringLiteral("peer closed the connection"));
            updateNotifiers();
            return;
        }
        onDisconnected();
        return;
    }
    if (m_tlsPending && !m_handshaking) {
        // STARTTLS: everything after the command is plaintext the client must not have sent.
        const qint64 pipelined = discardPipelinedPlaintext();
        if (pipelined > 0)
            log::write(log::Level::Warning, m_info.sessionId, u"starttls.pipelined_plaintext_discarded",
                       log::Fields().add("bytes", pipelined).add("remote", m_info.peerAddress.toString()));
        beginTlsHandshake();
        return;
    }
    updateNotifiers();
}

// What is left in our buffer and what already waits in the kernel: our STARTTLS
// reply has not been written yet, so none of it can be the client's TLS hello.
qint64 Connection::discardPipelinedPlaintext() {
    qint64 dropped = m_in.size() - m_inOffset;
    m_in = QByteArray();
    m_inOffset = 0;
    accountInput();
    char buf[4096];
    for (;;) {
        const ssize_t r = retryOnEintr([&] { return ::recv(m_fd, buf, sizeof buf, MSG_DONTWAIT); });
        if (r <= 0) break;
        dropped += r;
    }
    return dropped;
}

// Pre-greet check (as Postfix postscreen): a client that talks before the greeting is
// complete is a bot that does not follow RFC 5321 4.3.1. Nothing it sent is fed.
void Connection::spokeBeforeGreeting(qsizetype bytes) {
    m_pregreet = false;
    m_pregreetTimer.stop();
    log::write(log::Level::Info, m_info.sessionId, u"pregreet",
               log::Fields()
                   .add("remote", m_info.peerAddress.toString())
                   .add("bytes", qint64(bytes))
                   .add("after_ms", m_age.elapsed()));
    stats::add(QStringLiteral("postern_pregreet_total"), {{QStringLiteral("listener"), listenerName(m_info.mode)}});
    m_in = QByteArray();
    m_inOffset = 0;
    if (m_session) m_session->spokeTooSoon();
    close(QStringLiteral("talked before the greeting"));
    updateNotifiers();
}

void Connection::close(const QString& reason) {
    if (m_closing || m_finished) return;
    m_closing = true;
    m_closeReason = reason;
    m_idleTimer.stop();
    m_closeTimer.start(int(m_options.closeTimeoutMs));
    if (pendingOutput() == 0)
        finish(reason);
    else
        updateNotifiers();  // flushOutput() finishes once everything left
}

// While a session is suspended nothing is read, so the end of the peer's stream is
// only visible to poll(): POLLRDHUP once it shut down its side, POLLHUP/POLLERR once gone.
bool Connection::peerHungUp() const {
    if (m_finished || m_fd < 0 || m_peerEof) return true;
    pollfd p{m_fd, short(POLLRDHUP), 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void Connection::suspend() {
    m_suspended = true;
    updateNotifiers();
}

void Connection::resume() {
    if (!m_suspended) return;
    m_suspended = false;
    // Continue from the event loop, never from inside the caller's stack.
    QMetaObject::invokeMethod(
        this, [this] { process(); }, Qt::QueuedConnection);
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

void Connection::setDeadline(qint64 msSinceConnect) {
    if (msSinceConnect <= 0) {
        m_deadlineTimer.stop();
        return;
    }
    const qint64 left = std::max<qint64>(0, msSinceConnect - m_age.elapsed());
    m_deadlineTimer.start(int(std::min<qint64>(left, INT_MAX)));
}

void Connection::restartIdleTimer() {
    if (m_idleTimer.interval() > 0 && !m_closing) m_idleTimer.start();
}

void Connection::notifyWhenWritable() {
    m_wantWritable = true;
    if (pendingOutput() <= m_options.outputLowWater)
        QMetaObject::invokeMethod(
            this, [this] { afterOutputProgress(); }, Qt::QueuedConnection);
}

void Connection::afterOutputProgress() {
    if (m_finished) return;
    const qint64 pending = pendingOutput();
    if (m_closing) {
        if (pending == 0) finish(m_closeReason);
        return;
    }
    if (pending > m_options.outputLowWater) return;
    if (m_outputBlocked) {
        m_outputBlocked = false;
        QMetaObject::invokeMethod(
            this, [this] { process(); }, Qt::QueuedConnection);
    }
    if (m_wantWritable && m_session) {
        m_wantWritable = false;
        m_session->writable();
    }
}

// ---- timeouts and the end -------------------------------------------------------

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

void Connection::onDeadline() {
    if (m_closing || m_finished) return;
    log::write(log::Level::Info, m_info.sessionId, u"timeout",
               log::Fields().add("kind", "deadline").add("after_ms", m_age.elapsed()));
    if (m_session) m_session->deadlinePassed();
    if (!m_closing) close(QStringLiteral("deadline passed"));
}

void Connection::shutdown() {
    if (m_closing || m_finished) return;
    if (m_session && !m_handshaking) m_session->shutdown();
    if (!m_closing) close(QStringLiteral("server shutting down"));
}

void Connection::closeBlocked(const QByteArray& line, const QString& reason) {
    if (m_closing || m_finished) return;
    const bool handshake = m_handshaking || m_tlsPending || (isImplicitTls(m_info.mode) && !m_info.tls);
    if (m_session && !handshake) m_session->peerClosed();
    if (!handshake) send(line);
    close(reason);
}

void Connection::onDisconnected() {
    if (m_finished) return;
    if (!m_closing && m_session) m_session->peerClosed();
    finish(m_closing ? m_closeReason : QStringLiteral("peer closed the connection"));
}

// A read or write failed: the peer is gone or the stream is broken.
void Connection::failIo(const QString& reason) {
    if (m_finished) return;
    if (m_handshaking) {
        finish(QStringLiteral("TLS handshake failed: %1").arg(reason));
        return;
    }
    if (!m_closing && m_session) m_session->peerClosed();
    finish(m_closing ? QStringLiteral("%1 (%2)").arg(m_closeReason, reason) : reason);
}

void Connection::finish(const QString& reason) {
    if (m_finished) return;
    m_finished = true;
    m_idleTimer.stop();
    m_sessionTimer.stop();
    m_handshakeTimer.stop();
    m_closeTimer.stop();
    m_pregreetTimer.stop();
    m_deadlineTimer.stop();
    m_budgetRetry.stop();
    log::write(log::Level::Info, m_info.sessionId, u"disconnect",
               log::Fields()
                   .add("reason", reason)
                   .add("duration_ms", m_age.elapsed())
                   .add("in", m_bytesIn)
                   .add("out", m_bytesOut));
    closeSocket(m_closing && pendingOutput() == 0);
    Q_EMIT finished();
}

// Graceful: everything was sent; say close_notify on TLS. Either way the descriptor
// is closed now and every buffer released (the object itself goes on deleteLater).
void Connection::closeSocket(bool graceful) {
    if (m_fd < 0) return;
    m_readNotifier.setEnabled(false);
    m_writeNotifier.setEnabled(false);
    if (m_ssl) {
        if (graceful && m_info.tls) SSL_shutdown(m_ssl);  // one try; we do not wait for the peer's
        SSL_free(m_ssl);
        m_ssl = nullptr;
        ERR_clear_error();
    }
    ::close(m_fd);
    m_fd = -1;
    m_in = QByteArray();
    m_out = QByteArray();
    m_inOffset = m_outOffset = 0;
    accountInput();
}

}  // namespace postern
