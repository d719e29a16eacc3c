// imap_session.cpp — see imap_session.h. Command handlers: commands/*.cpp.
#include "imap_session.h"

#include "commands/commands.h"
#include "common/shared_counters.h"

#include "core/log.h"
#include "core/paths.h"

#include <cstring>

namespace postern::imap {

ImapSession::ImapSession(SessionIo& io, ImapBackend& backend, const SessionConfig& config)
    : m_io(io),
      m_backend(backend),
      m_config(config),
      m_alive(std::make_unique<QObject>()),
      m_reader(config.limits, config.inputBudget) {
    m_idleDebounce.setSingleShot(true);
    m_idleDebounce.setInterval(100);
    QObject::connect(&m_idleDebounce, &QTimer::timeout, m_alive.get(), [this] {
        if (m_phase == Phase::Idle) reportChanges(true);
    });
    m_idlePoll.setInterval(5000);
    QObject::connect(&m_idlePoll, &QTimer::timeout, m_alive.get(), [this] {
        if (m_phase == Phase::Idle) reportChanges(true);
    });
}

namespace {
// Logged-in sessions per user, counted over all postern-imapd processes (imap.processes).
QString sessionKey(const QString& user) {
    return QStringLiteral("imap-user:") + user;
}
}  // namespace

ImapSession::~ImapSession() {
    if (!m_user.isEmpty()) SharedCounters::process().release(sessionKey(m_user));
}

const QList<ImapSession::CommandSpec>& ImapSession::commandTable() {
    //            name           handler                      NA     A      S      preTLS uid    messages
    static const QList<CommandSpec> table = {
        {"CAPABILITY", &Commands::capability, true, true, true, true, false},
        {"NOOP", &Commands::noop, true, true, true, true, false},
        {"LOGOUT", &Commands::logout, true, true, true, true, false},
        {"STARTTLS", &Commands::starttls, true, false, false, true, false},
        {"LOGIN", &Commands::login, true, false, false, false, false},
        {"AUTHENTICATE", &Commands::authenticate, true, false, false, false, false},
        {"ID", &Commands::id, true, true, true, true, false},
        {"ENABLE", &Commands::enable, false, true, true, false, false},
        {"NAMESPACE", &Commands::namespace_, false, true, true, false, false},
        {"SELECT", &Commands::select, false, true, true, false, false},
        {"EXAMINE", &Commands::select, false, true, true, false, false},
        {"CREATE", &Commands::create, false, true, true, false, false},
        {"DELETE", &Commands::delete_, false, true, true, false, false},
        {"RENAME", &Commands::rename, false, true, true, false, false},
        {"SUBSCRIBE", &Commands::subscribe, false, true, true, false, false},
        {"UNSUBSCRIBE", &Commands::subscribe, false, true, true, false, false},
        {"LIST", &Commands::list, false, true, true, false, false},
        {"LSUB", &Commands::list, false, true, true, false, false},
        {"STATUS", &Commands::status, false, true, true, false, false},
        {"APPEND", &Commands::append, false, true, true, false, false},
        {"GETQUOTAROOT", &Commands::getquotaroot, false, true, true, false, false},
        {"GETQUOTA", &Commands::getquota, false, true, true, false, false},
        {"IDLE", &Commands::idle, false, true, true, false, false},
        {"CHECK", &Commands::check, false, false, true, false, false},
        {"CLOSE", &Commands::close, false, false, true, false, false},
        {"UNSELECT", &Commands::unselect, false, false, true, false, false},
        {"EXPUNGE", &Commands::expunge, false, false, true, false, true, true},
        {"SEARCH", &Commands::search, false, false, true, false, true, true},
        {"SORT", &Commands::sort, false, false, true, false, true, true},
        {"THREAD", &Commands::thread, false, false, true, false, true, true},
        {"FETCH", &Commands::fetch, false, false, true, false, true, true},
        {"STORE", &Commands::store, false, false, true, false, true, true},
        {"COPY", &Commands::copy, false, false, true, false, true, true},
        {"MOVE", &Commands::move, false, false, true, false, true, true},
    };
    return table;
}

QByteArray ImapSession::capabilities() const {
    QByteArray caps = "IMAP4rev1 IMAP4rev2";
    if (m_state == State::NotAuthenticated) {
        if (!tls())
            caps += " STARTTLS LOGINDISABLED";
        else
            caps += " AUTH=PLAIN SASL-IR";
    }
    // RFC 7888: before login literals are small (imap_parser.h), so only LITERAL- (non-synchronising
    // literals up to 4096 octets) is promised; LITERAL+ once logged in.
    caps += m_state == State::NotAuthenticated ? " LITERAL-" : " LITERAL+";
    caps +=
        " ENABLE IDLE NAMESPACE ID UIDPLUS MOVE UNSELECT CHILDREN SPECIAL-USE LIST-EXTENDED LIST-STATUS"
        " ESEARCH CONDSTORE QRESYNC SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES BINARY QUOTA "
        "QUOTA=RES-STORAGE"
        " STATUS=SIZE UTF8=ACCEPT APPENDLIMIT=" +
        QByteArray::number(m_config.appendLimit);
    return caps;
}

void ImapSession::start() {
    m_io.setIdleTimeout(m_config.preAuthTimeoutMs);
    m_io.setDeadline(m_config.loginDeadlineMs);
    m_io.send("* OK [CAPABILITY " + capabilities() + "] " + m_config.hostname.toUtf8() + " Postern IMAP ready\r\n");
}

void ImapSession::untagged(const QByteArray& line) {
    m_io.send("* " + line + "\r\n");
}

void ImapSession::tagged(const Request& r, const char* status, const QString& text, const QByteArray& codeIn) {
    const QByteArray code = endOfCommand(r, status, codeIn);
    QByteArray out = r.tag + ' ' + status + ' ';
    if (!code.isEmpty()) out += '[' + code + "] ";
    out += text.toUtf8() + "\r\n";
    m_io.send(out);
}

void ImapSession::bad(const Request& r, const QString& text) {
    tagged(r, "BAD", text);
    countBad();
}

void ImapSession::countBad() {
    if (++m_badCommands >= m_config.maxBadCommands)
        closeWith("* BYE Too many invalid commands\r\n", QStringLiteral("too many bad commands"));
}

void ImapSession::closeWith(const QByteArray& line, const QString& reason) {
    if (m_phase == Phase::Closed) return;
    m_phase = Phase::Closed;
    m_state = State::Logout;
    stopIdleWatch();
    m_io.send(line);
    m_io.close(reason);
}

void ImapSession::timedOut() {
    closeWith("* BYE Autologout; idle for too long\r\n", QStringLiteral("idle timeout"));
}

void ImapSession::deadlinePassed() {
    if (m_state != State::NotAuthenticated) return;
    closeWith("* BYE Login not completed in time\r\n", QStringLiteral("login deadline"));
}

void ImapSession::shutdown() {
    closeWith("* BYE Server shutting down\r\n", QStringLiteral("server shutting down"));
}

void ImapSession::peerClosed() {
    m_phase = Phase::Closed;
    stopIdleWatch();
}

void ImapSession::tlsStarted() {
    m_reader.reset();
    m_sasl.reset();
    m_phase = Phase::Command;
}

void ImapSession::writable() {
    if (!m_continuation || m_phase == Phase::Closed) return;
    if (m_continuation()) {
        m_continuation = nullptr;
        m_phase = Phase::Command;
        m_io.resume();
    } else {
        m_io.notifyWhenWritable();
    }
}

void ImapSession::runWithBackpressure(std::function<bool()> step) {
    if (step()) return;
    m_continuation = std::move(step);
    m_phase = Phase::Waiting;
    m_io.suspend();
    m_io.notifyWhenWritable();
}

qsizetype ImapSession::consume(const char* data, qsizetype size) {
    if (m_phase == Phase::Closed) return size;
    if (m_phase == Phase::Waiting) return 0;
    if (m_phase == Phase::SaslResponse || m_phase == Phase::Idle) {
        const char* nl = static_cast<const char*>(std::memchr(data, '\n', size_t(size)));
        if (!nl) {
            if (size > SaslServer::kMaxLine + 2) {
                closeWith("* BYE Line too long\r\n", QStringLiteral("line too long"));
                return size;
            }
            return 0;
        }
        QByteArray line(data, nl - data);
        if (line.endsWith('\r')) line.chop(1);
        const qsizetype used = (nl - data) + 1;
        if (m_phase == Phase::Idle) {
            if (line.toUpper() != "DONE") {
                bad(m_pending, QStringLiteral("Expected DONE"));
            } else {
                stopIdleWatch();
                reportChanges(true);
                ok(m_pending, QStringLiteral("IDLE terminated"));
            }
            m_phase = Phase::Command;
            m_io.setIdleTimeout(m_config.idleTimeoutMs);
            return used;
        }
        Commands::saslResponse(*this, line);
        return used;
    }
    CommandReader::Event ev = CommandReader::Event::None;
    const qsizetype used = m_reader.feed(data, size, &ev);
    switch (ev) {
        case CommandReader::Event::None:
            break;
        case CommandReader::Event::Continue:
            m_io.send("+ Ready for literal data\r\n");
            break;
        case CommandReader::Event::LineTooLong: {
            Request r;
            r.tag = m_reader.currentTag();
            m_reader.reset();
            // Before login a whole command is at most maxCommandBeforeAuth, so its lines are too.
            const qint64 limit = m_state == State::NotAuthenticated
                                     ? std::min<qint64>(m_config.limits.maxLine, m_config.limits.maxCommandBeforeAuth)
                                     : qint64(m_config.limits.maxLine);
            bad(r, QStringLiteral("Command line too long (limit %1 octets)").arg(limit));
            break;
        }
        case CommandReader::Event::LiteralRefused:
            literalRefused(false);
            break;
        case CommandReader::Event::NonSyncLiteralRefused:
            literalRefused(true);
            return size;
        case CommandReader::Event::Command:
            dispatch(m_reader.takeCommand());
            break;
    }
    return used;
}

// A literal the reader would not take. Nothing of it was read: a synchronising one
// never got its "+"; a non-synchronising one is on its way, so the connection ends.
void ImapSession::literalRefused(bool nonSync) {
    using Refusal = CommandReader::Refusal;
    const Refusal why = m_reader.refusal();
    const qint64 limit = m_reader.refusalLimit();
    Request r;
    r.tag = m_reader.currentTag();
    m_reader.reset();
    QString text;
    QByteArray code = "TOOBIG";  // RFC 9051 7.1 (and RFC 7889 APPENDLIMIT for APPEND)
    switch (why) {
        case Refusal::TooBigBeforeAuth:
            text = QStringLiteral("Literals before login are limited to %1 octets").arg(limit);
            break;
        case Refusal::CommandTooBig:
            text = QStringLiteral("Command too big (limit %1 octets)").arg(limit);
            break;
        case Refusal::Busy:
            code = "LIMIT";  // RFC 5530: a temporary, server-wide condition
            text = QStringLiteral("Server busy: no room for this literal now, try again later");
            break;
        case Refusal::TooBig:
        case Refusal::None:
            text = QStringLiteral("Literal too big (limit %1 octets)").arg(limit);
            break;
    }
    log::write(
        log::Level::Info, m_io.info().sessionId, u"imap.literal_refused",
        log::Fields().add("reason", code == "LIMIT" ? "budget" : "size").add("limit", limit).add("non_sync", nonSync));
    if (nonSync) {
        // RFC 7888 4: the client did not wait for "+"; reading the octets to skip them would
        // be what the limit exists to prevent.
        closeWith("* BYE [" + code + "] " + text.toUtf8() + "\r\n", QStringLiteral("literal refused"));
        return;
    }
    no(r, text, code);
    if (why != Refusal::Busy) countBad();
}

void ImapSession::dispatch(const RawCommand& raw) {
    ArgParser p(raw);
    Request r;
    if (!p.header(&r.tag, &r.name)) {
        r.tag = r.tag.isEmpty() ? QByteArray("*") : r.tag;
        if (raw.bytes.trimmed().isEmpty()) return;  // empty line: ignore, as most servers do
        bad(r, QStringLiteral("Missing tag or command"));
        return;
    }
    if (r.name == "UID") {
        auto sub = p.next();
        if (!sub || sub->kind != Token::Kind::Atom) {
            bad(r, QStringLiteral("UID needs a command"));
            return;
        }
        r.uid = true;
        r.name = sub->text.toUpper();
    }
    auto args = p.rest();
    if (!args) {
        bad(r, QStringLiteral("Syntax error: %1").arg(p.error()));
        return;
    }
    r.args = *args;
    for (const CommandSpec& spec : commandTable()) {
        if (r.name != spec.name) continue;
        if (r.uid && !spec.uidVariant) {
            bad(r, QStringLiteral("UID %1 is not a command").arg(QString::fromLatin1(r.name)));
            return;
        }
        const bool valid = (m_state == State::NotAuthenticated && spec.notAuthenticated) ||
                           (m_state == State::Authenticated && spec.authenticated) ||
                           (m_state == State::Selected && spec.selected);
        if (!valid) {
            bad(r, m_state == State::NotAuthenticated ? QStringLiteral("Log in first")
                                                      : QStringLiteral("Command not valid in this state"));
            return;
        }
        if (!tls() && !spec.allowedBeforeTls && m_state == State::NotAuthenticated) {
            // RFC 9051 6.2.3 / RFC 2595: no credentials before TLS.
            no(r, QStringLiteral("Use STARTTLS first; logins are disabled on unencrypted connections"),
               "PRIVACYREQUIRED");
            return;
        }
        if (m_state == State::Selected && m_selected && spec.usesMessages) {
            // What arrived or changed since the last command is announced before this one
            // works on the messages (so SEARCH right after a delivery finds it), never an
            // EXPUNGE here: the client's sequence numbers in this command mean what it knew.
            reportChanges(false);
        }
        spec.handler(*this, r);
        return;
    }
    bad(r, QStringLiteral("Unknown command %1").arg(QString::fromLatin1(r.name.left(40))));
}

AuthRequest ImapSession::authRequest(const QString& login) {
    return AuthRequest{m_alive.get(), m_io.info().sessionId, m_io.info().peerAddress, login,
                       [io = &m_io] { return io->peerHungUp(); }};
}

void ImapSession::finishLogin(const Request& r, AuthVerdict verdict, const QString& user) {
    if (m_phase == Phase::Closed) return;  // the login deadline passed (or the server stops) meanwhile
    m_phase = Phase::Command;
    if (verdict == AuthVerdict::TempFail) {
        // RFC 5530 UNAVAILABLE: too many attempts at once from here or for this account; later.
        no(r, QStringLiteral("Temporary authentication failure, try again later"), "UNAVAILABLE");
        m_io.resume();
        return;
    }
    if (verdict != AuthVerdict::Ok) {
        no(r, QStringLiteral("Authentication failed"), "AUTHENTICATIONFAILED");
        m_io.resume();
        return;
    }
    if (!SharedCounters::process().tryAcquire(sessionKey(user), m_config.maxSessionsPerUser)) {
        log::write(log::Level::Warning, m_io.info().sessionId, u"imap.session_limit",
                   log::Fields().add("user", user).add("limit", m_config.maxSessionsPerUser));
        no(r,
           QStringLiteral("Too many sessions for this user (%1); close another client first")
               .arg(m_config.maxSessionsPerUser),
           "LIMIT");
        m_io.resume();
        return;
    }
    m_user = user;
    m_mailboxes = std::make_unique<UserMailboxes>(maildirRoot(m_config.mailDir, user));
    if (auto st = m_mailboxes->ensureDefaults(); !st) {
        log::write(log::Level::Error, m_io.info().sessionId, u"imap.mailbox_setup_failed",
                   log::Fields().add("user", user).add("error", st.errorMessage()));
        m_mailboxes.reset();
        SharedCounters::process().release(sessionKey(user));
        m_user.clear();
        no(r, QStringLiteral("Mailbox is not available now"), "UNAVAILABLE");
        m_io.resume();
        return;
    }
    m_state = State::Authenticated;
    m_reader.setAuthenticated(true);
    m_io.setDeadline(0);
    m_io.setIdleTimeout(m_config.idleTimeoutMs);
    ok(r, QStringLiteral("Logged in"), "CAPABILITY " + capabilities());
    m_io.resume();
}

void ImapSession::reportChanges(bool allowExpunge) {
    if (!m_selected) return;
    auto changes = m_selected->refresh(allowExpunge);
    if (!changes) return;
    Commands::sendChanges(*this, *changes);
}

QByteArray ImapSession::endOfCommand(const Request& r, const char* status, const QByteArray& code) {
    // BAD: the command did not run; the next one reports what changed meanwhile.
    if (m_state != State::Selected || !m_selected || m_phase == Phase::Closed || std::strcmp(status, "BAD") == 0)
        return code;
    // RFC 9051 7.5.1: no EXPUNGE at the end of FETCH, STORE or SEARCH by sequence number
    // (SORT and THREAD answer with sequence numbers too); a UID command may have them.
    const bool seqCommand = !r.uid && (r.name == "FETCH" || r.name == "STORE" || r.name == "SEARCH" ||
                                       r.name == "SORT" || r.name == "THREAD");
    reportChanges(!seqCommand);
    // RFC 7162 (RFC 5162 3.3-3.5 for EXPUNGE): once the mailbox's mod-sequence is above the
    // one the client was last told, a CONDSTORE client learns the new value, where the tagged
    // response has room. Not while an expunge waits to be reported (a ghost): a client keeping
    // that value would never hear of it from a later QRESYNC (its mod-sequence is below).
    if (r.name == "SELECT" || r.name == "EXAMINE") {
        m_modseqReported = m_selected->highestModseq();  // the answer carried it
        return code;
    }
    if (m_condstore && code.isEmpty() && std::strcmp(status, "OK") == 0 &&
        m_selected->highestModseq() > m_modseqReported && m_modseqReported && !m_selected->hasGhosts()) {
        m_modseqReported = m_selected->highestModseq();
        return "HIGHESTMODSEQ " + QByteArray::number(m_modseqReported);
    }
    return code;
}

void ImapSession::enableCondstore() {
    if (m_condstore) return;
    m_condstore = true;
    // RFC 7162 3.1: the first CONDSTORE enabling command reports the selected mailbox's
    // HIGHESTMODSEQ (unless it was selected with NOMODSEQ).
    if (m_state == State::Selected && m_selected && m_selected->highestModseq()) {
        m_modseqReported = m_selected->highestModseq();
        untagged("OK [HIGHESTMODSEQ " + QByteArray::number(m_modseqReported) + "] Highest");
    }
}

void ImapSession::startIdleWatch() {
    if (!m_selected) return;
    if (!m_selected->setChangeNotify([this] { m_idleDebounce.start(); })) m_idlePoll.start();
}

void ImapSession::stopIdleWatch() {
    if (m_selected) m_selected->setChangeNotify(nullptr);
    m_idleDebounce.stop();
    m_idlePoll.stop();
}

}  // namespace postern::imap
