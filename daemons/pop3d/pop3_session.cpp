// pop3_session.cpp — see pop3_session.h.
#include "pop3_session.h"

#include "core/log.h"

#include <cstring>

namespace postern::pop3 {

namespace {
constexpr qint64 kStreamChunk = 64 * 1024;
constexpr qint64 kStreamHighWater = 256 * 1024;
}  // namespace

Pop3Session::Pop3Session(SessionIo& io, Pop3Backend& backend, const SessionConfig& config)
    : m_io(io), m_backend(backend), m_config(config), m_alive(std::make_unique<QObject>()) {}

Pop3Session::~Pop3Session() = default;

const QList<Pop3Session::CommandSpec>& Pop3Session::commandTable() {
    //  verb     handler                 auth   trans  beforeTLS  args   usage (RFC 1939 3, 7; 2449; 2595; 5034)
    static const QList<CommandSpec> table = {
        {"CAPA", &Pop3Session::cmdCapa, true, true, true, 0, 0, "CAPA"},
        {"STLS", &Pop3Session::cmdStls, true, false, true, 0, 0, "STLS"},
        {"USER", &Pop3Session::cmdUser, true, false, false, 1, 1, "USER name"},
        {"PASS", &Pop3Session::cmdPass, true, false, false, 1, -1, "PASS password"},
        {"AUTH", &Pop3Session::cmdAuth, true, false, false, 0, 2, "AUTH [mechanism [initial-response]]"},
        {"QUIT", &Pop3Session::cmdQuit, true, true, true, 0, 0, "QUIT"},
        {"STAT", &Pop3Session::cmdStat, false, true, false, 0, 0, "STAT"},
        {"LIST", &Pop3Session::cmdList, false, true, false, 0, 1, "LIST [msg]"},
        {"RETR", &Pop3Session::cmdRetr, false, true, false, 1, 1, "RETR msg"},
        {"TOP", &Pop3Session::cmdTop, false, true, false, 2, 2, "TOP msg lines"},
        {"DELE", &Pop3Session::cmdDele, false, true, false, 1, 1, "DELE msg"},
        {"NOOP", &Pop3Session::cmdNoop, false, true, false, 0, 0, "NOOP"},
        {"RSET", &Pop3Session::cmdRset, false, true, false, 0, 0, "RSET"},
        {"UIDL", &Pop3Session::cmdUidl, false, true, false, 0, 1, "UIDL [msg]"},
    };
    return table;
}

void Pop3Session::start() {
    m_io.setIdleTimeout(m_config.idleTimeoutMs);
    m_io.setDeadline(m_config.loginDeadlineMs);
    ok(QStringLiteral("Postern POP3 server ready"));
}

void Pop3Session::ok(const QString& text) {
    m_io.send("+OK " + text.toUtf8() + "\r\n");
}

void Pop3Session::err(const QString& text) {
    m_io.send("-ERR " + text.toUtf8() + "\r\n");
    if (++m_errors >= m_config.maxErrors)
        closeWith("-ERR [SYS/TEMP] Too many errors, closing\r\n", QStringLiteral("too many errors"));
}

void Pop3Session::closeWith(const QByteArray& line, const QString& reason) {
    if (m_state == State::Closed) return;
    m_state = State::Closed;
    m_file.reset();
    m_io.send(line);
    m_drop.reset();  // releases the maildrop lock; nothing is committed
    m_io.close(reason);
}

void Pop3Session::timedOut() {
    closeWith("-ERR [SYS/TEMP] Idle timeout, closing\r\n", QStringLiteral("idle timeout"));
}

void Pop3Session::deadlinePassed() {
    if (m_state != State::Authorization) return;
    closeWith("-ERR Login not completed in time, closing\r\n", QStringLiteral("login deadline"));
}

void Pop3Session::shutdown() {
    if (m_phase == Phase::Waiting) return;  // a commit or login is finishing; the grace period covers it
    closeWith("-ERR [SYS/TEMP] Server shutting down, nothing was deleted\r\n", QStringLiteral("server shutting down"));
}

void Pop3Session::peerClosed() {
    // RFC 1939 6: without QUIT there is no UPDATE state; DELE marks are dropped.
    m_state = State::Closed;
    m_file.reset();
    m_drop.reset();
}

void Pop3Session::tlsStarted() {
    m_userCandidate.clear();
    m_sasl.reset();
    m_phase = Phase::Command;
}

qsizetype Pop3Session::consume(const char* data, qsizetype size) {
    if (m_state == State::Closed) return size;
    if (m_phase == Phase::Waiting || m_phase == Phase::Streaming) return 0;
    const void* nl = std::memchr(data, '\n', size_t(size));
    const int limit = m_phase == Phase::SaslResponse ? SaslServer::kMaxLine + 2 : m_config.maxLine;
    if (!nl) {
        if (size > limit) {
            m_discardingLongLine = true;
            return size;
        }
        return 0;
    }
    const qsizetype end = static_cast<const char*>(nl) - data;
    QByteArray line(data, end);
    if (line.endsWith('\r')) line.chop(1);
    if (m_discardingLongLine || end + 1 > limit) {
        m_discardingLongLine = false;
        m_phase = Phase::Command;
        m_sasl.reset();
        err(QStringLiteral("Line too long"));
        return end + 1;
    }
    if (m_phase == Phase::SaslResponse) {
        const SaslServer::Step step = m_sasl->next(line);
        m_phase = Phase::Command;
        if (step.kind == SaslServer::StepKind::Done) {
            const QString user = m_sasl->user();
            QByteArray pw = m_sasl->takePassword();
            m_sasl.reset();
            loginWith(user, std::move(pw));
        } else {
            m_sasl.reset();
            err(step.failure == SaslServer::Failure::Cancelled ? QStringLiteral("Authentication cancelled")
                                                               : QStringLiteral("[AUTH] Authentication failed"));
        }
        return end + 1;
    }
    dispatch(line);
    return end + 1;
}

void Pop3Session::dispatch(const QByteArray& raw) {
    // RFC 1939 3: keywords and arguments are printable characters. A NUL or another
    // control character (a bare CR, a TAB) is never part of a name or password.
    for (const char c : raw) {
        if (uchar(c) < 0x20 || uchar(c) == 0x7f) {
            if (m_state == State::Authorization && ++m_commandsBeforeAuth > m_config.maxCommandsBeforeAuth) {
                closeWith("-ERR [SYS/PERM] Too many commands without logging in\r\n",
                          QStringLiteral("too many commands before login"));
                return;
            }
            err(QStringLiteral("Invalid character in command"));
            return;
        }
    }
    const QString line = QString::fromUtf8(raw);
    const qsizetype sp = line.indexOf(QLatin1Char(' '));
    const QString verb = (sp < 0 ? line : line.left(sp)).toUpper();
    const QString rest = sp < 0 ? QString() : line.mid(sp + 1);
    if (m_state == State::Authorization && ++m_commandsBeforeAuth > m_config.maxCommandsBeforeAuth) {
        closeWith("-ERR [SYS/PERM] Too many commands without logging in\r\n",
                  QStringLiteral("too many commands before login"));
        return;
    }
    for (const CommandSpec& spec : commandTable()) {
        if (verb != QLatin1String(spec.verb)) continue;
        const bool allowed = (m_state == State::Authorization && spec.inAuthorization) ||
                             (m_state == State::Transaction && spec.inTransaction);
        if (!allowed) {
            err(QStringLiteral("Command not valid in this state"));
            return;
        }
        if (!tls() && !spec.allowedBeforeTls) {
            err(QStringLiteral("[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS"));
            return;
        }
        // PASS keeps the rest of the line whole (passwords may contain spaces).
        const QStringList args = spec.maxArgs < 0 ? (rest.isEmpty() ? QStringList() : QStringList{rest})
                                                  : rest.split(QLatin1Char(' '), Qt::SkipEmptyParts);
        if (args.size() < spec.minArgs || (spec.maxArgs >= 0 && args.size() > spec.maxArgs)) {
            err(QStringLiteral("Usage: %1").arg(QLatin1String(spec.usage)));
            return;
        }
        (this->*spec.handler)(args);
        return;
    }
    err(QStringLiteral("Unknown command"));
}

// ------------------------------------------------------------------ authorization

void Pop3Session::cmdCapa(const QStringList&) {
    QByteArray out =
        "+OK Capability list follows\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n";
    out += "EXPIRE NEVER\r\n";
    if (m_config.loginDelaySeconds > 0) out += "LOGIN-DELAY " + QByteArray::number(m_config.loginDelaySeconds) + "\r\n";
    if (!tls() && m_state == State::Authorization) out += "STLS\r\n";
    if (tls() && m_state == State::Authorization) out += "USER\r\nSASL PLAIN\r\n";
    out += "IMPLEMENTATION Postern\r\n.\r\n";
    m_io.send(out);
}

void Pop3Session::cmdStls(const QStringList&) {
    if (tls()) {
        err(QStringLiteral("Already using TLS"));
        return;
    }
    ok(QStringLiteral("Begin TLS negotiation"));
    m_io.startTls();
}

void Pop3Session::cmdUser(const QStringList& args) {
    if (args.size() != 1) {
        err(QStringLiteral("Usage: USER name"));
        return;
    }
    m_userCandidate = args.first();
    ok(QStringLiteral("Send your password"));
}

void Pop3Session::cmdPass(const QStringList& args) {
    if (m_userCandidate.isEmpty()) {
        err(QStringLiteral("Send USER first"));
        return;
    }
    const QString user = m_userCandidate;
    m_userCandidate.clear();
    loginWith(user, args.value(0).toUtf8());
}

void Pop3Session::cmdAuth(const QStringList& args) {
    if (args.isEmpty()) {  // RFC 1734 style listing, which clients still send
        m_io.send("+OK\r\nPLAIN\r\n.\r\n");
        return;
    }
    m_sasl = std::make_unique<SaslServer>();
    const SaslServer::Step step = m_sasl->start(args.first(), args.value(1).toLatin1(), args.size() > 1);
    switch (step.kind) {
        case SaslServer::StepKind::Challenge:
            if (args.first().toUpper() != u"PLAIN") {  // we offer PLAIN only (CAPA SASL PLAIN)
                m_sasl.reset();
                err(QStringLiteral("Unsupported authentication mechanism"));
                return;
            }
            m_phase = Phase::SaslResponse;
            m_io.send("+ " + step.challenge.toBase64() + "\r\n");
            return;
        case SaslServer::StepKind::Failed:
            m_sasl.reset();
            err(step.failure == SaslServer::Failure::BadMechanism
                    ? QStringLiteral("Unsupported authentication mechanism")
                    : QStringLiteral("[AUTH] Authentication failed"));
            return;
        case SaslServer::StepKind::Done: {
            if (m_sasl->mechanism() != u"PLAIN") {
                m_sasl.reset();
                err(QStringLiteral("Unsupported authentication mechanism"));
                return;
            }
            const QString user = m_sasl->user();
            QByteArray pw = m_sasl->takePassword();
            m_sasl.reset();
            loginWith(user, std::move(pw));
            return;
        }
    }
}

void Pop3Session::loginWith(const QString& login, QByteArray password) {
    m_phase = Phase::Waiting;
    m_io.suspend();
    const AuthRequest request{m_alive.get(), m_io.info().sessionId, m_io.info().peerAddress, login,
                              [io = &m_io] { return io->peerHungUp(); }};
    m_backend.authenticate(request, std::move(password), [this](AuthVerdict verdict, QString user) {
        if (m_state == State::Closed) return;
        if (verdict != AuthVerdict::Ok) {
            m_phase = Phase::Command;
            // RFC 3206: SYS/TEMP, the client may try again later; AUTH, the credentials are wrong.
            err(verdict == AuthVerdict::TempFail
                    ? QStringLiteral("[SYS/TEMP] Temporary authentication failure, try again later")
                    : QStringLiteral("[AUTH] Authentication failed"));
            m_io.resume();
            return;
        }
        m_backend.openMaildrop(
            m_alive.get(), user, m_config.loginDelaySeconds, [this, user](Result<std::shared_ptr<Maildrop>> drop) {
                if (m_state == State::Closed) return;
                m_phase = Phase::Command;
                if (!drop) {
                    if (drop.error().code == Maildrop::kLocked)
                        err(QStringLiteral("[IN-USE] Mailbox is locked by another POP3 session"));
                    else if (drop.error().code == Maildrop::kLoginDelay)
                        err(QStringLiteral("[LOGIN-DELAY] Minimum time between logins not reached"));
                    else {
                        log::write(log::Level::Error, m_io.info().sessionId, u"pop3.maildrop_failed",
                                   log::Fields().add("user", user).add("error", drop.errorMessage()));
                        err(QStringLiteral("[SYS/TEMP] Cannot open the mailbox now"));
                    }
                    m_io.resume();
                    return;
                }
                m_drop = *drop;
                m_user = user;
                m_state = State::Transaction;
                m_io.setDeadline(0);
                ok(QStringLiteral("Logged in, %1 messages (%2 octets)").arg(m_drop->messages().size()).arg(dropSize()));
                m_io.resume();
            });
    });
}

void Pop3Session::cmdQuit(const QStringList&) {
    if (m_state != State::Transaction) {
        closeWith("+OK Bye\r\n", QStringLiteral("QUIT"));
        return;
    }
    m_state = State::Update;
    m_phase = Phase::Waiting;
    m_io.suspend();
    const int deleted = int(m_deleted.size());
    const int left = int(m_drop->messages().size()) - deleted;
    // The commit runs on a worker with its own reference to the maildrop; the peer may
    // close meanwhile (peerClosed() drops m_drop), so the callback must not touch m_drop.
    m_backend.commit(m_alive.get(), m_drop, m_deleted, m_retrieved, [this, deleted, left](Status st) {
        log::write(st.ok() ? log::Level::Info : log::Level::Error, m_io.info().sessionId, u"pop3.quit",
                   log::Fields()
                       .add("user", m_user)
                       .add("deleted", deleted)
                       .add("retrieved", int(m_retrieved.size()))
                       .add("error", st.errorMessage()));
        if (m_state == State::Closed) return;  // the client hung up after QUIT: the deletions are done, nobody to tell
        m_state = State::Transaction;          // let closeWith act
        if (st.ok())
            closeWith(QStringLiteral("+OK Postern POP3 server signing off (%1 messages left)\r\n").arg(left).toUtf8(),
                      QStringLiteral("QUIT"));
        else
            closeWith("-ERR [SYS/TEMP] Some deleted messages were not removed\r\n", QStringLiteral("QUIT with errors"));
    });
}

// ------------------------------------------------------------------ transaction

qint64 Pop3Session::dropSize() const {
    qint64 total = 0;
    const auto& msgs = m_drop->messages();
    for (int i = 0; i < msgs.size(); ++i)
        if (!m_deleted.contains(i)) total += msgs.at(i).vsize;
    return total;
}

int Pop3Session::messageArg(const QString& arg, bool allowDeleted) {
    bool good = false;
    const int n = arg.toInt(&good);
    if (!good || n < 1 || n > m_drop->messages().size() || arg.size() > 10 || !arg.at(0).isDigit()) {
        err(QStringLiteral("No such message"));
        return -1;
    }
    if (!allowDeleted && m_deleted.contains(n - 1)) {
        err(QStringLiteral("Message %1 already deleted").arg(n));
        return -1;
    }
    return n - 1;
}

void Pop3Session::cmdStat(const QStringList&) {
    ok(QStringLiteral("%1 %2").arg(m_drop->messages().size() - m_deleted.size()).arg(dropSize()));
}

void Pop3Session::cmdList(const QStringList& args) {
    const auto& msgs = m_drop->messages();
    if (!args.isEmpty()) {
        const int i = messageArg(args.first());
        if (i >= 0) ok(QStringLiteral("%1 %2").arg(i + 1).arg(msgs.at(i).vsize));
        return;
    }
    QByteArray out =
        QStringLiteral("+OK %1 messages (%2 octets)\r\n").arg(msgs.size() - m_deleted.size()).arg(dropSize()).toUtf8();
    for (int i = 0; i < msgs.size(); ++i)
        if (!m_deleted.contains(i))
            out += QByteArray::number(i + 1) + ' ' + QByteArray::number(msgs.at(i).vsize) + "\r\n";
    out += ".\r\n";
    m_io.send(out);
}

void Pop3Session::cmdUidl(const QStringList& args) {
    const auto& msgs = m_drop->messages();
    if (!args.isEmpty()) {
        const int i = messageArg(args.first());
        if (i >= 0) ok(QStringLiteral("%1 %2").arg(i + 1).arg(m_drop->uidl(i)));
        return;
    }
    QByteArray out = "+OK Unique-ID listing follows\r\n";
    for (int i = 0; i < msgs.size(); ++i)
        if (!m_deleted.contains(i)) out += QByteArray::number(i + 1) + ' ' + m_drop->uidl(i).toLatin1() + "\r\n";
    out += ".\r\n";
    m_io.send(out);
}

void Pop3Session::cmdDele(const QStringList& args) {
    if (args.size() != 1) {
        err(QStringLiteral("Usage: DELE msg"));
        return;
    }
    const int i = messageArg(args.first());
    if (i < 0) return;
    m_deleted.insert(i);
    ok(QStringLiteral("Message %1 deleted").arg(i + 1));
}

void Pop3Session::cmdNoop(const QStringList&) {
    ok(QString());
}

void Pop3Session::cmdRset(const QStringList&) {
    m_deleted.clear();
    ok(QStringLiteral("Maildrop has %1 messages (%2 octets)").arg(m_drop->messages().size()).arg(dropSize()));
}

void Pop3Session::cmdRetr(const QStringList& args) {
    if (args.size() != 1) {
        err(QStringLiteral("Usage: RETR msg"));
        return;
    }
    const int i = messageArg(args.first());
    if (i < 0) return;
    startStream(i, -1);
}

void Pop3Session::cmdTop(const QStringList& args) {
    bool good = false;
    const int lines = args.value(1).toInt(&good);
    if (args.size() != 2 || !good || lines < 0) {
        err(QStringLiteral("Usage: TOP msg lines"));
        return;
    }
    const int i = messageArg(args.first());
    if (i < 0) return;
    startStream(i, lines);
}

void Pop3Session::startStream(int index, int bodyLines) {
    auto file = std::make_unique<QFile>(m_drop->path(index));
    if (!file->open(QIODevice::ReadOnly)) {
        // Another client (IMAP) expunged it meanwhile.
        err(QStringLiteral("[SYS/TEMP] Message %1 is no longer available").arg(index + 1));
        return;
    }
    m_file = std::move(file);
    m_atLineStart = true;
    m_prevCR = false;
    m_inBody = false;
    m_bodyLinesLeft = bodyLines;
    m_headerLineLength = 0;
    if (bodyLines < 0) m_retrieved.insert(index);  // RETR marks \Seen at QUIT; TOP does not (RFC 1939 notes)
    m_phase = Phase::Streaming;
    m_io.suspend();
    ok(bodyLines < 0 ? QStringLiteral("%1 octets").arg(m_drop->messages().at(index).vsize)
                     : QStringLiteral("Top of message follows"));
    pumpStream();
}

void Pop3Session::writable() {
    if (m_phase == Phase::Streaming) pumpStream();
}

void Pop3Session::pumpStream() {
    QByteArray out;
    char buf[kStreamChunk];
    bool finished = false;
    while (!finished && m_io.pendingOutput() + out.size() < kStreamHighWater) {
        const qint64 n = m_file->read(buf, sizeof buf);
        if (n <= 0) {
            finished = true;
            break;
        }
        out.reserve(out.size() + n + n / 32 + 16);
        for (qint64 k = 0; k < n; ++k) {
            const char c = buf[k];
            if (m_inBody && m_bodyLinesLeft == 0) {
                finished = true;
                break;
            }
            if (m_atLineStart && c == '.') out += '.';  // dot-stuffing (RFC 1939 3)
            if (c == '\n' && !m_prevCR) out += '\r';    // stored bare LF goes out as CRLF
            out += c;
            m_prevCR = c == '\r';
            if (c == '\n') {
                if (!m_inBody && m_headerLineLength == 0)
                    m_inBody = true;  // the empty line ends the header
                else if (m_inBody && m_bodyLinesLeft > 0)
                    --m_bodyLinesLeft;
                m_atLineStart = true;
                m_headerLineLength = 0;
            } else {
                m_atLineStart = false;
                if (c != '\r') ++m_headerLineLength;  // characters other than the line ending
            }
        }
    }
    if (finished) {
        if (!m_atLineStart) out += "\r\n";
        out += ".\r\n";
        m_file.reset();
        m_phase = Phase::Command;
        m_io.send(out);
        m_io.resume();
        return;
    }
    m_io.send(out);
    m_io.notifyWhenWritable();
}

}  // namespace postern::pop3
