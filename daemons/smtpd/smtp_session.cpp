// smtp_session.cpp — see smtp_session.h.
#include "smtp_session.h"

#include "common/mail/dsn_params.h"
#include "common/mail/message.h"
#include "common/store/store_error.h"

#include "core/log.h"
#include "core/stats.h"

#include <QDateTime>
#include <QLocale>

#include <cstring>

namespace postern::smtp {

namespace {
// A failed write to the spool file: the one mapping (common/store/store_error.h), as the
// server's own storage (disk full or the daemon's quota: 452 4.3.1).
Reply spoolFailure(int err) {
    const auto e = store::StoreError::fromErrno(err, {}, store::StoreError::Area::Spool);
    return Reply(e.smtpCode(), e.enhancedCode(), e.text());
}

constexpr int kMaxAuthLine = SaslServer::kMaxLine + 2;

QString dateHeaderValue() {
    return mail::formatDate(QDateTime::currentDateTime());
}

// Text that came from the client, made safe for a header comment / reply.
QString sanitize(const QString& s, int max = 200) {
    QString out;
    for (QChar c : s.left(max))
        out += (c.unicode() >= 0x21 && c.unicode() < 0x7f && c != QLatin1Char('(') && c != QLatin1Char(')'))
                   ? c
                   : QLatin1Char('_');
    return out;
}
}  // namespace

SmtpSession::SmtpSession(SessionIo& io, SmtpBackend& backend, const SessionConfig& config)
    : m_io(io), m_backend(backend), m_config(config), m_alive(std::make_unique<QObject>()) {}

SmtpSession::~SmtpSession() = default;

const QList<SmtpSession::CommandSpec>& SmtpSession::commandTable() {
    static const QList<CommandSpec> table = {
        {Verb::Helo, &SmtpSession::cmdHelo, true},         {Verb::Ehlo, &SmtpSession::cmdEhlo, true},
        {Verb::Mail, &SmtpSession::cmdMail, false},        {Verb::Rcpt, &SmtpSession::cmdRcpt, false},
        {Verb::Data, &SmtpSession::cmdData, false},        {Verb::Bdat, &SmtpSession::cmdBdat, false},
        {Verb::Rset, &SmtpSession::cmdRset, true},         {Verb::Vrfy, &SmtpSession::cmdVrfy, false},
        {Verb::Expn, &SmtpSession::cmdExpn, false},        {Verb::Help, &SmtpSession::cmdHelp, true},
        {Verb::Noop, &SmtpSession::cmdNoop, true},         {Verb::Quit, &SmtpSession::cmdQuit, true},
        {Verb::StartTls, &SmtpSession::cmdStartTls, true}, {Verb::Auth, &SmtpSession::cmdAuth, false},
    };
    return table;
}

bool SmtpSession::isSubmission() const {
    return m_io.info().mode == ListenerMode::Submission || m_io.info().mode == ListenerMode::Submissions;
}

bool SmtpSession::tls() const {
    return m_io.info().tls;
}

void SmtpSession::transcript(const QString& line) {
    if (m_config.logTranscript)
        log::write(log::Level::Debug, m_io.info().sessionId, u"smtp.transcript", log::Fields().add("line", line));
}

void SmtpSession::start() {
    m_io.setIdleTimeout(m_config.commandTimeoutMs);
    reply(Reply(220, QString(), QStringLiteral("%1 ESMTP Postern").arg(m_config.hostname)));
}

qint64 SmtpSession::beginPregreet() {
    if (m_io.info().mode != ListenerMode::Mx || m_config.greetDelayMs <= 0) return 0;
    // The first line of a multi-line greeting (RFC 5321 4.2.1); start() sends the last one.
    // A client must wait for the final line; one that answers the first is caught too.
    const QString first = QStringLiteral("%1 ESMTP Postern").arg(m_config.hostname);
    transcript(QStringLiteral("S: 220-") + first);
    m_io.send("220-" + first.toUtf8() + "\r\n");
    return m_config.greetDelayMs;
}

void SmtpSession::spokeTooSoon() {
    transcript(QStringLiteral("C: <input before the greeting>"));
    closeWith(Reply(554, QStringLiteral("5.5.1"),
                    QStringLiteral("%1 Protocol error: talking before the greeting").arg(m_config.hostname)),
              QStringLiteral("talked before the greeting"));
}

void SmtpSession::reply(const Reply& r, CountsAsError counts) {
    if (m_phase == Phase::Closed) return;
    transcript(QStringLiteral("S: ") + r.summary());
    m_io.send(r.render());
    if (r.code >= 400 && r.code != 421 && counts == CountsAsError::Yes) {
        if (++m_errors >= m_config.maxErrors) {
            closeWith(
                Reply(421, QStringLiteral("4.7.0"), QStringLiteral("%1 Error: too many errors").arg(m_config.hostname)),
                QStringLiteral("too many errors"));
        }
    }
}

void SmtpSession::closeWith(const Reply& r, const QString& reason) {
    if (m_phase == Phase::Closed) return;
    transcript(QStringLiteral("S: ") + r.summary());
    m_io.send(r.render());
    m_phase = Phase::Closed;
    resetTransaction();
    m_io.close(reason);
}

void SmtpSession::resetTransaction() {
    m_mailFrom.reset();
    m_smtpUtf8 = false;
    m_eightBitMime = false;
    m_ret.clear();
    m_envid.clear();
    m_declaredSize = 0;
    m_recipients.clear();
    m_rcptCommands = 0;
    m_queueId.clear();
    m_body.reset();
    m_checker.reset();
    m_dataReader.reset();
    m_bdatRemaining = 0;
    m_bdatLast = false;
    m_bdatFailed = false;
}

void SmtpSession::timedOut() {
    closeWith(Reply(421, QStringLiteral("4.4.2"), QStringLiteral("%1 Error: timeout exceeded").arg(m_config.hostname)),
              QStringLiteral("timeout"));
}

void SmtpSession::shutdown() {
    if (m_phase == Phase::Waiting) {  // a delivery or login is finishing; its reply comes first
        m_shutdownPending = true;
        return;
    }
    closeWith(Reply(421, QStringLiteral("4.3.2"),
                    QStringLiteral("%1 Service shutting down, try again later").arg(m_config.hostname)),
              QStringLiteral("server shutting down"));
}

void SmtpSession::peerClosed() {
    m_phase = Phase::Closed;
    resetTransaction();
}

void SmtpSession::tlsStarted() {
    // RFC 3207 4.2: forget everything learned before the handshake.
    m_helo.clear();
    m_esmtp = false;
    m_authUser.clear();
    m_sasl.reset();
    resetTransaction();
    m_phase = Phase::Command;
}

qsizetype SmtpSession::consume(const char* data, qsizetype size) {
    switch (m_phase) {
        case Phase::Command:
            return consumeCommandLine(data, size);
        case Phase::Auth:
            return consumeAuthLine(data, size);
        case Phase::Data: {
            const qsizetype used = m_dataReader->feed(data, size);
            if (m_dataReader->done()) finishContent();
            return used;
        }
        case Phase::Bdat:
            return consumeBdat(data, size);
        case Phase::Waiting:
            return 0;
        case Phase::Closed:
            return size;  // drain whatever still arrives
    }
    return size;
}

qsizetype SmtpSession::consumeCommandLine(const char* data, qsizetype size) {
    const char* crlf = nullptr;
    for (const char* p = data;
         (p = static_cast<const char*>(std::memchr(p, '\n', size_t(size - (p - data))))) != nullptr; ++p) {
        if (p > data && p[-1] == '\r') {
            crlf = p - 1;
            break;
        }
        // A bare LF inside a command line: not a line end (only CRLF is), see below.
    }
    if (!crlf) {
        if (size > m_config.maxCommandLine) {
            m_discardingLongLine = true;  // consume and drop; answer once the line ends
            // Keep the last byte: it may be the CR of a CRLF split across reads.
            return size - 1;
        }
        return 0;
    }
    const qsizetype lineLen = crlf - data;
    const qsizetype used = lineLen + 2;
    if (m_discardingLongLine || lineLen + 2 > m_config.maxCommandLine) {
        m_discardingLongLine = false;
        transcript(QStringLiteral("C: <line too long>"));
        reply(500, "5.5.2", QStringLiteral("Line too long (limit %1 octets)").arg(m_config.maxCommandLine));
        return used;
    }
    QByteArray line(data, lineLen);
    if (line.contains('\n') || line.contains('\r')) {
        // Bare LF/CR in a command: the smuggling vector; never guess where the line ends.
        transcript(QStringLiteral("C: <bare CR or LF>"));
        reply(500, "5.5.2", QStringLiteral("Bare CR or LF in command; lines must end with CRLF"));
        return used;
    }
    dispatch(line);
    return used;
}

void SmtpSession::dispatch(const QByteArray& line) {
    ParseResult parsed = parseCommand(line);
    if (auto* e = std::get_if<ParseError>(&parsed)) {
        transcript(QStringLiteral("C: ") + QString::fromUtf8(line.left(200)));
        reply(e->reply);
        return;
    }
    const Command& cmd = std::get<Command>(parsed);
    transcript(QStringLiteral("C: ") +
               (cmd.verb == Verb::Auth ? QStringLiteral("AUTH <redacted>") : QString::fromUtf8(line.left(200))));
    for (const CommandSpec& spec : commandTable()) {
        if (spec.verb != cmd.verb) continue;
        if (isSubmission() && !tls() && !spec.allowedBeforeTls) {
            reply(530, "5.7.0", QStringLiteral("Must issue a STARTTLS command first"));
            return;
        }
        (this->*spec.handler)(cmd);
        return;
    }
    reply(502, "5.5.1", QStringLiteral("Command not implemented"));
}

// ------------------------------------------------------------------ greeting

void SmtpSession::cmdHelo(const Command& c) {
    resetTransaction();
    m_helo = sanitize(c.argument.section(QLatin1Char(' '), 0, 0));
    m_esmtp = false;
    reply(Reply(250, QString(), m_config.hostname));
}

void SmtpSession::cmdEhlo(const Command& c) {
    resetTransaction();
    m_helo = sanitize(c.argument.section(QLatin1Char(' '), 0, 0));
    m_esmtp = true;
    QStringList lines{
        QStringLiteral("%1 Hello %2 [%3]").arg(m_config.hostname, m_helo, m_io.info().peerAddress.toString())};
    lines << QStringLiteral("PIPELINING") << QStringLiteral("SIZE %1").arg(m_config.maxMessageSize)
          << QStringLiteral("8BITMIME") << QStringLiteral("SMTPUTF8") << QStringLiteral("ENHANCEDSTATUSCODES")
          << QStringLiteral("CHUNKING") << QStringLiteral("DSN");
    if (!tls()) lines << QStringLiteral("STARTTLS");
    // AUTH only for users' submission, and only inside TLS (RFC 4954 4, RFC 8314).
    if (isSubmission() && tls() && m_authUser.isEmpty()) lines << QStringLiteral("AUTH PLAIN LOGIN");
    lines << QStringLiteral("HELP");
    reply(Reply(250, QString(), lines));
}

// ------------------------------------------------------------------ envelope

// MAIL's ESMTP parameters (SIZE RFC 1870, BODY RFC 6152, SMTPUTF8 RFC 6531, RET and ENVID
// RFC 3461, AUTH RFC 4954), checked in the order given; false after the error reply.
bool SmtpSession::mailParameters(const Command& c, MailParameters* out) {
    for (const auto& [key, value] : c.params) {
        if (key == u"SIZE") {
            bool ok = false;
            out->declaredSize = value.toLongLong(&ok);
            if (!ok || out->declaredSize < 0 || value.size() > 20) {
                reply(501, "5.5.4", QStringLiteral("Bad SIZE parameter"));
                return false;
            }
            if (out->declaredSize > m_config.maxMessageSize) {
                reply(552, "5.3.4",
                      QStringLiteral("Message size exceeds fixed limit of %1 bytes").arg(m_config.maxMessageSize));
                return false;
            }
        } else if (key == u"BODY") {
            const QString v = value.toUpper();
            if (v == u"8BITMIME")
                out->eightBit = true;
            else if (v != u"7BIT") {
                reply(555, "5.5.4", QStringLiteral("Unsupported BODY type"));
                return false;
            }
        } else if (key == u"SMTPUTF8") {
            if (!value.isEmpty()) {
                reply(501, "5.5.4", QStringLiteral("SMTPUTF8 takes no value"));
                return false;
            }
            out->smtpUtf8 = true;
        } else if (key == u"RET") {
            const QString v = value.toUpper();
            if (v != u"FULL" && v != u"HDRS") {
                reply(501, "5.5.4", QStringLiteral("RET must be FULL or HDRS"));
                return false;
            }
            out->ret = v;
        } else if (key == u"ENVID") {
            auto decoded = decodeXtext(value);
            if (!decoded || value.size() > 100) {
                reply(501, "5.5.4", QStringLiteral("Bad ENVID parameter"));
                return false;
            }
            out->envid = *decoded;
        } else if (key == u"AUTH") {
            // RFC 4954 5: accepted and not trusted (we do not relay for other servers).
        } else {
            reply(555, "5.5.4", QStringLiteral("Unsupported parameter %1").arg(key));
            return false;
        }
    }
    return true;
}

void SmtpSession::cmdMail(const Command& c) {
    if (m_helo.isEmpty()) {
        reply(503, "5.5.1", QStringLiteral("Send EHLO or HELO first"));
        return;
    }
    if (m_mailFrom) {
        reply(503, "5.5.1", QStringLiteral("Nested MAIL command"));
        return;
    }
    if (isSubmission() && m_authUser.isEmpty()) {
        reply(530, "5.7.0", QStringLiteral("Authentication required"));
        return;
    }
    MailParameters params;
    if (!mailParameters(c, &params)) return;
    if (c.path.hasUtf8 && !params.smtpUtf8) {
        reply(553, "5.6.7", QStringLiteral("Non-ASCII address requires SMTPUTF8"));
        return;
    }
    if (isSubmission()) {
        if (c.path.isNull || !m_backend.maySendAs(m_authUser, c.path)) {
            reply(553, "5.7.1", QStringLiteral("Sender address rejected: not owned by user %1").arg(m_authUser));
            return;
        }
    }
    if (!m_authUser.isEmpty() && overSendLimit(1, 0, false)) return;
    // RFC 5321 4.2.2 / RFC 3463 X.3.1 (and RFC 1870 6.1 for SIZE=): refuse while the
    // disk is nearly full, before the client sends a message we might not be able to store.
    if (QString why; !m_backend.storageAvailable(params.declaredSize, &why)) {
        log::write(log::Level::Warning, m_io.info().sessionId, u"smtp.storage_low", log::Fields().add("detail", why));
        reply(452, "4.3.1", QStringLiteral("Insufficient system storage"));
        return;
    }
    m_mailFrom = c.path;
    m_smtpUtf8 = params.smtpUtf8;
    m_eightBitMime = params.eightBit;
    m_ret = params.ret;
    m_envid = params.envid;
    m_declaredSize = params.declaredSize;
    reply(250, "2.1.0", QStringLiteral("Sender OK"));
}

// Per-user submission limits (smtp_backend.h sendLimit): true after the 451 4.7.0 was sent.
bool SmtpSession::overSendLimit(qint64 messages, qint64 recipients, bool record) {
    QString error;
    const std::optional<SendLimitHit> hit = m_backend.sendLimit(m_authUser, messages, recipients, record, &error);
    if (!error.isEmpty())
        log::write(log::Level::Error, m_io.info().sessionId, u"smtp.send_limit_error",
                   log::Fields().add("user", m_authUser).add("error", error));
    if (!hit) return false;
    log::write(log::Level::Warning, m_io.info().sessionId, u"smtp.send_limited",
               log::Fields()
                   .add("user", m_authUser)
                   .add("limit", hit->name)
                   .add("max", hit->limit)
                   .add("used", hit->used)
                   .add("remote", m_io.info().peerAddress.toString()));
    stats::add(QStringLiteral("postern_smtp_send_limited_total"), {{QStringLiteral("limit"), hit->name}});
    QString what = hit->name;
    what.replace(QStringLiteral("_per_"), QStringLiteral(" per ")).replace(QLatin1Char('_'), QLatin1Char(' '));
    reply(451, "4.7.0",
          QStringLiteral("Sending limit reached for %1: at most %2 %3; try again later")
              .arg(m_authUser)
              .arg(hit->limit)
              .arg(what));
    return true;
}

// RCPT TO's DSN parameters (RFC 3461 4.1 NOTIFY, 4.2 ORCPT; RFC 6533 3); false after
// the refusal was sent.
bool SmtpSession::rcptParameters(const Command& c, RecipientInfo* info) {
    for (const auto& [key, value] : c.params) {
        if (key == u"NOTIFY") {
            const QStringList parts = value.toUpper().split(QLatin1Char(','));
            bool ok = !parts.isEmpty();
            for (const QString& p : parts)
                if (p != u"NEVER" && p != u"SUCCESS" && p != u"FAILURE" && p != u"DELAY") ok = false;
            if (parts.contains(QStringLiteral("NEVER")) && parts.size() > 1) ok = false;
            if (!ok) {
                reply(501, "5.5.4", QStringLiteral("Bad NOTIFY parameter"));
                return false;
            }
            info->notify = parts.join(QLatin1Char(','));
        } else if (key == u"ORCPT") {
            const auto orcpt = mail::parseOrcpt(value.toUtf8(), m_smtpUtf8);  // RFC 3461 4.2, RFC 6533 3
            if (!orcpt) {
                reply(501, "5.5.4", QStringLiteral("Bad ORCPT parameter"));
                return false;
            }
            info->orcpt = QString::fromLatin1(mail::formatOrcpt(*orcpt));  // kept in the canonical wire form
        } else {
            reply(555, "5.5.4", QStringLiteral("Unsupported parameter %1").arg(key));
            return false;
        }
    }
    return true;
}

void SmtpSession::cmdRcpt(const Command& c) {
    if (!m_mailFrom) {
        reply(503, "5.5.1", QStringLiteral("Need MAIL command"));
        return;
    }
    if (m_body) {
        reply(503, "5.5.1", QStringLiteral("RCPT not allowed during BDAT"));
        return;
    }
    // Bounded work per transaction: answer at most maxRecipients + kExtraRcptCommands RCPT
    // commands (accepted, refused or over the limit alike), then give up on the client.
    if (++m_rcptCommands > m_config.maxRecipients + kExtraRcptCommands) {
        closeWith(Reply(421, QStringLiteral("4.7.0"),
                        QStringLiteral("%1 Error: too many RCPT commands").arg(m_config.hostname)),
                  QStringLiteral("too many RCPT commands"));
        return;
    }
    if (m_recipients.size() >= m_config.maxRecipients) {
        // RFC 5321 4.5.3.1.8: 452 for the recipients over the limit; the client sends them in
        // another transaction, and DATA goes to the accepted ones. Not a client error: it does
        // not count towards smtp.max_errors.
        reply(Reply(452, QStringLiteral("4.5.3"),
                    QStringLiteral("Too many recipients (limit %1)").arg(m_config.maxRecipients)),
              CountsAsError::No);
        return;
    }
    if (c.path.hasUtf8 && !m_smtpUtf8) {
        reply(553, "5.6.7", QStringLiteral("Non-ASCII address requires SMTPUTF8"));
        return;
    }
    RecipientInfo info;
    if (!rcptParameters(c, &info)) return;
    QString detail;
    const RcptVerdict v = m_backend.checkRecipient(c.path, !m_authUser.isEmpty(), m_declaredSize, &info, &detail);
    const QString shown = sanitize(c.path.address(), 300);
    switch (v) {
        case RcptVerdict::Ok:
            if (!m_authUser.isEmpty() && overSendLimit(1, m_recipients.size() + 1, false)) return;
            m_recipients << info;
            reply(250, "2.1.5", QStringLiteral("Recipient OK"));
            return;
        case RcptVerdict::Unknown:
            log::write(log::Level::Info, m_io.info().sessionId, u"smtp.rcpt_rejected",
                       log::Fields().add("rcpt", c.path.address()).add("reason", "unknown user"));
            reply(550, "5.1.1", QStringLiteral("<%1>: Recipient address rejected: User unknown").arg(shown));
            return;
        case RcptVerdict::RelayDenied:
            log::write(log::Level::Info, m_io.info().sessionId, u"smtp.rcpt_rejected",
                       log::Fields()
                           .add("rcpt", c.path.address())
                           .add("reason", "relay denied")
                           .add("remote", m_io.info().peerAddress.toString()));
            reply(554, "5.7.1", QStringLiteral("<%1>: Relay access denied").arg(shown));
            return;
        case RcptVerdict::MailboxFull:
            reply(452, "4.2.2", QStringLiteral("<%1>: Mailbox full").arg(shown));
            return;
        case RcptVerdict::BadAddress:
            reply(553, "5.1.3",
                  QStringLiteral("<%1>: Address not accepted here%2")
                      .arg(shown, detail.isEmpty() ? QString() : QStringLiteral(" (") + detail + QLatin1Char(')')));
            return;
        case RcptVerdict::TempFail:
            reply(451, "4.3.0", QStringLiteral("<%1>: Temporary lookup failure").arg(shown));
            return;
    }
}

// ------------------------------------------------------------------ content

bool SmtpSession::beginContent() {
    if (!m_mailFrom) {
        reply(503, "5.5.1", QStringLiteral("Need MAIL command"));
        return false;
    }
    if (m_recipients.isEmpty()) {
        reply(554, "5.5.1", QStringLiteral("No valid recipients"));
        return false;
    }
    QString error;
    m_body = m_backend.openBody(&error);
    if (!m_body) {
        log::write(log::Level::Error, m_io.info().sessionId, u"smtp.spool_failed", log::Fields().add("error", error));
        reply(451, "4.3.0", QStringLiteral("Temporary failure: cannot store the message now"));
        return false;
    }
    m_queueId = m_body->queueId();
    ContentLimits limits = m_config.content;
    limits.maxMessageSize = m_config.maxMessageSize;
    m_checker = std::make_unique<ContentChecker>(limits, m_body.get());
    // Our Received header starts the stored message (RFC 5321 4.4); it is not counted against SIZE.
    const QByteArray received = receivedHeader();
    if (!m_body->write(received.constData(), received.size())) {
        reply(spoolFailure(m_body->errorCode()));
        m_body.reset();
        m_checker.reset();
        return false;
    }
    return true;
}

QByteArray SmtpSession::receivedHeader() const {
    const ConnectionInfo& info = m_io.info();
    QString with = m_smtpUtf8 ? QStringLiteral("UTF8SMTP") : m_esmtp ? QStringLiteral("ESMTP") : QStringLiteral("SMTP");
    if (tls()) with += QLatin1Char('S');
    if (!m_authUser.isEmpty()) with += QLatin1Char('A');  // RFC 3848
    QString h = QStringLiteral("Received: from %1 ([%2])\r\n\tby %3 (Postern) with %4 id %5")
                    .arg(m_helo.isEmpty() ? QStringLiteral("unknown") : m_helo, info.peerAddress.toString(),
                         m_config.hostname, with, m_queueId);
    if (tls())
        h += QStringLiteral("\r\n\t(using %1 with cipher %2 (%3/%3 bits))")
                 .arg(info.tlsProtocol, info.tlsCipher)
                 .arg(info.tlsBits);
    if (!m_authUser.isEmpty()) h += QStringLiteral("\r\n\t(authenticated sender: %1)").arg(m_authUser);
    if (m_recipients.size() == 1) h += QStringLiteral("\r\n\tfor <%1>").arg(m_recipients.first().address);
    h += QStringLiteral("; %1\r\n").arg(dateHeaderValue());
    return h.toUtf8();
}

void SmtpSession::cmdData(const Command&) {
    if (m_body) {
        reply(503, "5.5.1", QStringLiteral("DATA not allowed after BDAT"));
        return;
    }
    if (!beginContent()) return;
    m_dataReader = std::make_unique<DataReader>(m_checker.get());
    m_phase = Phase::Data;
    m_io.setIdleTimeout(m_config.dataTimeoutMs);
    reply(Reply(354, QString(), QStringLiteral("End data with <CR><LF>.<CR><LF>")));
}

void SmtpSession::cmdBdat(const Command& c) {
    const QStringList parts = c.argument.split(QLatin1Char(' '), Qt::SkipEmptyParts);
    bool ok = false;
    const qint64 size = parts.value(0).toLongLong(&ok);
    const bool last = parts.size() == 2 && parts.at(1).compare(QLatin1String("LAST"), Qt::CaseInsensitive) == 0;
    if (!ok || size < 0 || parts.value(0).size() > 18 || parts.size() > 2 || (parts.size() == 2 && !last)) {
        // RFC 3030 2: we cannot know how many bytes follow; close rather than read them as commands.
        closeWith(Reply(501, QStringLiteral("5.5.4"), QStringLiteral("Bad BDAT syntax; closing")),
                  QStringLiteral("bad BDAT syntax"));
        return;
    }
    m_bdatRemaining = size;
    m_bdatLast = last;
    if (!m_body && !m_bdatFailed) {
        if (!beginContent()) {
            m_bdatFailed = true;  // still read the chunk, then answer with the stored error
        }
    }
    m_phase = Phase::Bdat;
    m_io.setIdleTimeout(m_config.dataTimeoutMs);
    if (size == 0) consumeBdat(nullptr, 0);
}

qsizetype SmtpSession::consumeBdat(const char* data, qsizetype size) {
    const qsizetype n = qsizetype(std::min<qint64>(m_bdatRemaining, size));
    if (n > 0 && m_checker && !m_bdatFailed) m_checker->append(data, n);
    m_bdatRemaining -= n;
    if (m_bdatRemaining > 0) return n;
    m_phase = Phase::Command;
    m_io.setIdleTimeout(m_config.commandTimeoutMs);
    if (m_bdatFailed || !m_checker) {
        reply(503, "5.5.1", QStringLiteral("Previous BDAT failed; send RSET"));
        return n;
    }
    if (m_bdatLast) {
        m_checker->finish();
        finishContent();
    } else {
        reply(250, "2.0.0", QStringLiteral("%1 octets received").arg(m_checker->size()));
    }
    return n;
}

// The reply for content that cannot be accepted (a limit exceeded, a bad byte, the spool
// file not written), nullopt when it may go on to delivery.
std::optional<Reply> SmtpSession::contentRefusal(ContentIssue issue) const {
    switch (issue) {
        case ContentIssue::None:
            return std::nullopt;
        case ContentIssue::TooBig:
            return Reply(552, QStringLiteral("5.3.4"),
                         QStringLiteral("Message size exceeds fixed limit of %1 bytes").arg(m_config.maxMessageSize));
        case ContentIssue::LineTooLong:
            return Reply(
                552, QStringLiteral("5.3.4"),
                QStringLiteral("Message has a line longer than %1 octets").arg(m_config.content.maxLineLength));
        case ContentIssue::HeaderTooBig:
            return Reply(552, QStringLiteral("5.3.4"),
                         QStringLiteral("Message header exceeds %1 bytes").arg(m_config.content.maxHeaderSize));
        case ContentIssue::TooManyHeaders:
            return Reply(552, QStringLiteral("5.3.4"),
                         QStringLiteral("Message has more than %1 header fields").arg(m_config.content.maxHeaderCount));
        case ContentIssue::BareLineEnding:
            return Reply(554, QStringLiteral("5.6.11"),
                         QStringLiteral("Message contains bare CR or LF; lines must end with CRLF"));
        case ContentIssue::NulByte:
            return Reply(554, QStringLiteral("5.6.0"), QStringLiteral("Message contains NUL characters"));
        case ContentIssue::WriteFailed:
            return spoolFailure(m_checker->sinkError());
    }
    return std::nullopt;
}

void SmtpSession::finishContent() {
    m_phase = Phase::Command;
    m_io.setIdleTimeout(m_config.commandTimeoutMs);
    const ContentIssue issue = m_checker->issue();
    const qint64 size = m_checker->size();
    if (const std::optional<Reply> refusal = contentRefusal(issue)) {
        log::write(log::Level::Info, m_io.info().sessionId, u"smtp.message_refused",
                   log::Fields()
                       .add("queue_id", m_queueId)
                       .add("from", m_mailFrom ? m_mailFrom->address() : QString())
                       .add("size", size)
                       .add("reason", toString(issue)));
        resetTransaction();
        return reply(*refusal);
    }
    if (!m_authUser.isEmpty() && overSendLimit(1, m_recipients.size(), true)) return resetTransaction();
    MessageJob job;
    job.queueId = m_queueId;
    job.sender = m_mailFrom->address();
    job.authUser = m_authUser;
    job.clientAddress = m_io.info().peerAddress.toString();
    job.clientHelo = m_helo;
    if (tls()) {
        job.tlsProtocol = m_io.info().tlsProtocol;
        job.tlsCipher = m_io.info().tlsCipher;
    }
    job.eightBit = m_eightBitMime || m_checker->sawEightBit();
    job.smtpUtf8 = m_smtpUtf8;
    job.ret = m_ret;
    job.envid = m_envid;
    job.recipients = m_recipients;
    job.body = m_body;
    job.sessionId = m_io.info().sessionId;
    m_phase = Phase::Waiting;
    m_io.suspend();
    const QString from = job.sender;
    QStringList to;
    for (const RecipientInfo& r : m_recipients) to << r.address;
    // The peer may hang up while the delivery runs (peerClosed() resets the transaction),
    // so everything the callback reports is captured now.
    m_backend.deliver(m_alive.get(), std::move(job), [this, size, from, to, id = m_queueId](DeliveryOutcome o) {
        const ConnectionInfo& info = m_io.info();
        log::write(o.status == DeliveryOutcome::Status::Delivered ? log::Level::Info : log::Level::Warning,
                   info.sessionId, u"smtp.message",
                   log::Fields()
                       .add("queue_id", id)
                       .add("from", from)
                       .add("to", to.join(QLatin1Char(',')))
                       .add("size", size)
                       .add("tls", info.tls ? info.tlsProtocol : QStringLiteral("no"))
                       .add("auth_user", m_authUser)
                       .add("result",
                            o.status == DeliveryOutcome::Status::Delivered ? QStringLiteral("delivered") : o.detail));
        stats::add(
            QStringLiteral("postern_smtp_messages_total"),
            {{QStringLiteral("listener"), listenerName(info.mode)},
             {QStringLiteral("result"), o.status == DeliveryOutcome::Status::Delivered  ? QStringLiteral("accepted")
                                        : o.status == DeliveryOutcome::Status::PermFail ? QStringLiteral("rejected")
                                                                                        : QStringLiteral("tempfail")}});
        resetTransaction();
        if (m_phase == Phase::Closed) return;
        m_phase = Phase::Command;
        if (o.status == DeliveryOutcome::Status::Delivered)
            reply(250, "2.0.0", QStringLiteral("Ok: queued as %1").arg(id));
        else
            reply(Reply(o.code, o.enhanced, o.text));
        if (m_shutdownPending) return shutdown();
        m_io.resume();
    });
}

// ------------------------------------------------------------------ misc

void SmtpSession::cmdRset(const Command&) {
    resetTransaction();
    reply(250, "2.0.0", QStringLiteral("OK"));
}

void SmtpSession::cmdVrfy(const Command&) {
    // RFC 5321 3.5.3: 252 when we will not say whether a user exists.
    reply(252, "2.5.0", QStringLiteral("Cannot VRFY user, but will accept message and attempt delivery"));
}

void SmtpSession::cmdExpn(const Command&) {
    reply(502, "5.5.1", QStringLiteral("EXPN not available"));
}

void SmtpSession::cmdHelp(const Command&) {
    reply(Reply(
        214, QStringLiteral("2.0.0"),
        QStringList{QStringLiteral("Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT STARTTLS AUTH VRFY HELP"),
                    QStringLiteral("See RFC 5321")}));
}

void SmtpSession::cmdNoop(const Command&) {
    reply(250, "2.0.0", QStringLiteral("OK"));
}

void SmtpSession::cmdQuit(const Command&) {
    closeWith(Reply(221, QStringLiteral("2.0.0"), QStringLiteral("Bye")), QStringLiteral("QUIT"));
}

void SmtpSession::cmdStartTls(const Command&) {
    if (tls()) {
        reply(503, "5.5.1", QStringLiteral("TLS already active"));
        return;
    }
    reply(220, "2.0.0", QStringLiteral("Ready to start TLS"));
    m_io.startTls();  // the connection discards anything pipelined after this line
}

void SmtpSession::cmdAuth(const Command& c) {
    if (!isSubmission()) {
        reply(502, "5.5.1", QStringLiteral("AUTH not available here; use the submission port"));
        return;
    }
    if (!tls()) {  // unreachable through the table for submission, kept as a second lock
        reply(538, "5.7.11", QStringLiteral("Encryption required for requested authentication mechanism"));
        return;
    }
    if (!m_authUser.isEmpty()) {
        reply(503, "5.5.1", QStringLiteral("Already authenticated"));
        return;
    }
    if (m_mailFrom) {
        reply(503, "5.5.1", QStringLiteral("AUTH not allowed during a mail transaction"));
        return;
    }
    if (m_helo.isEmpty()) {
        reply(503, "5.5.1", QStringLiteral("Send EHLO first"));
        return;
    }
    const QString mech = c.argument.section(QLatin1Char(' '), 0, 0);
    const QString initial = c.argument.section(QLatin1Char(' '), 1, 1);
    m_sasl = std::make_unique<SaslServer>();
    handleSaslStep(m_sasl->start(mech, initial.toLatin1(), !initial.isEmpty()));
}

qsizetype SmtpSession::consumeAuthLine(const char* data, qsizetype size) {
    const void* nl = std::memchr(data, '\n', size_t(size));
    if (!nl) {
        if (size > kMaxAuthLine) {
            m_phase = Phase::Command;
            m_sasl.reset();
            m_discardingLongLine = true;
            return size - 1;
        }
        return 0;
    }
    const qsizetype end = static_cast<const char*>(nl) - data;
    QByteArray line(data, end);
    if (line.endsWith('\r')) line.chop(1);
    transcript(QStringLiteral("C: <SASL response redacted>"));
    handleSaslStep(m_sasl->next(line));
    return end + 1;
}

void SmtpSession::handleSaslStep(const SaslServer::Step& step) {
    switch (step.kind) {
        case SaslServer::StepKind::Challenge:
            m_phase = Phase::Auth;
            transcript(QStringLiteral("S: 334 <challenge>"));
            m_io.send("334 " + step.challenge.toBase64() + "\r\n");
            return;
        case SaslServer::StepKind::Failed:
            m_phase = Phase::Command;
            m_sasl.reset();
            switch (step.failure) {
                case SaslServer::Failure::Cancelled:
                    reply(501, "5.0.0", QStringLiteral("Authentication cancelled"));
                    return;
                case SaslServer::Failure::BadMechanism:
                    reply(504, "5.5.4", QStringLiteral("Unrecognized authentication type"));
                    return;
                case SaslServer::Failure::AuthzidMismatch:
                    reply(535, "5.7.8", QStringLiteral("Authentication credentials invalid"));
                    return;
                default:
                    reply(501, "5.5.2", QStringLiteral("Malformed authentication response"));
                    return;
            }
        case SaslServer::StepKind::Done: {
            m_phase = Phase::Waiting;
            m_io.suspend();
            const QString user = m_sasl->user();
            QByteArray password = m_sasl->takePassword();
            m_sasl.reset();
            const AuthRequest request{m_alive.get(), m_io.info().sessionId, m_io.info().peerAddress, user,
                                      [io = &m_io] { return io->peerHungUp(); }};
            m_backend.authenticate(request, std::move(password), [this](AuthVerdict verdict, QString normalized) {
                if (m_phase == Phase::Closed) return;
                m_phase = Phase::Command;
                if (verdict == AuthVerdict::Ok) {
                    m_authUser = normalized;
                    reply(235, "2.7.0", QStringLiteral("Authentication successful"));
                } else if (verdict == AuthVerdict::TempFail) {
                    reply(454, "4.7.0",
                          QStringLiteral("Temporary authentication failure, try again later"));  // RFC 4954 6
                } else {
                    reply(535, "5.7.8", QStringLiteral("Authentication credentials invalid"));
                }
                if (m_shutdownPending) return shutdown();
                m_io.resume();
            });
            return;
        }
    }
}

}  // namespace postern::smtp
