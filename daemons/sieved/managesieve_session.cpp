// managesieve_session.cpp — see managesieve_session.h.
#include "managesieve_session.h"

#include "common/sieve/sieve.h"
#include "common/sieve/sieve_store.h"

#include "core/log.h"

#include <cerrno>

namespace postern::managesieve {

namespace {
QString argText(const Argument& a) {
    return QString::fromUtf8(a.value);
}
}  // namespace

ManageSieveSession::ManageSieveSession(SessionIo& io, SieveBackend& backend, const SessionConfig& config)
    : m_io(io), m_backend(backend), m_config(config), m_alive(std::make_unique<QObject>()) {
    applyLimits();
}

ManageSieveSession::~ManageSieveSession() = default;

const QList<ManageSieveSession::CommandSpec>& ManageSieveSession::commandTable() {
    //  verb              handler                               before after  args  usage (RFC 5804 2.x)
    static const QList<CommandSpec> table = {
        {"CAPABILITY", &ManageSieveSession::cmdCapability, true, true, 0, 0, "CAPABILITY"},
        {"STARTTLS", &ManageSieveSession::cmdStartTls, true, false, 0, 0, "STARTTLS"},
        {"AUTHENTICATE", &ManageSieveSession::cmdAuthenticate, true, false, 1, 2,
         "AUTHENTICATE mechanism [initial-response]"},
        {"LOGOUT", &ManageSieveSession::cmdLogout, true, true, 0, 0, "LOGOUT"},
        {"NOOP", &ManageSieveSession::cmdNoop, true, true, 0, 1, "NOOP [tag]"},
        {"UNAUTHENTICATE", &ManageSieveSession::cmdUnauthenticate, false, true, 0, 0, "UNAUTHENTICATE"},
        {"HAVESPACE", &ManageSieveSession::cmdHaveSpace, false, true, 2, 2, "HAVESPACE name size"},
        {"PUTSCRIPT", &ManageSieveSession::cmdPutScript, false, true, 2, 2, "PUTSCRIPT name script"},
        {"CHECKSCRIPT", &ManageSieveSession::cmdCheckScript, false, true, 1, 1, "CHECKSCRIPT script"},
        {"LISTSCRIPTS", &ManageSieveSession::cmdListScripts, false, true, 0, 0, "LISTSCRIPTS"},
        {"SETACTIVE", &ManageSieveSession::cmdSetActive, false, true, 1, 1, "SETACTIVE name"},
        {"GETSCRIPT", &ManageSieveSession::cmdGetScript, false, true, 1, 1, "GETSCRIPT name"},
        {"DELETESCRIPT", &ManageSieveSession::cmdDeleteScript, false, true, 1, 1, "DELETESCRIPT name"},
        {"RENAMESCRIPT", &ManageSieveSession::cmdRenameScript, false, true, 2, 2, "RENAMESCRIPT old new"},
    };
    return table;
}

QByteArray ManageSieveSession::quote(const QByteArray& text) {
    bool quotable = text.size() <= Parser::kMaxQuoted;
    for (const char c : text)
        if (c == '\r' || c == '\n' || c == '\0') quotable = false;
    if (!quotable) return '{' + QByteArray::number(text.size()) + "}\r\n" + text;  // literal-s2c (RFC 5804 4)
    QByteArray out = "\"";
    for (const char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + '"';
}

void ManageSieveSession::applyLimits() {
    Parser::Limits l;
    l.maxLine = m_config.maxLine;
    l.maxLiteral = m_state == State::Authenticated ? m_config.maxLiteralAfterAuth : m_config.maxLiteralBeforeAuth;
    m_parser.setLimits(l);
}

QByteArray ManageSieveSession::capabilities() const {
    QByteArray out = "\"IMPLEMENTATION\" \"Postern\"\r\n";
    // RFC 5804 2.1, 15.1: no password mechanism before TLS.
    const bool canLogin = tls() && m_state == State::NotAuthenticated;
    out += "\"SASL\" " + quote(canLogin ? "PLAIN LOGIN" : "") + "\r\n";
    out += "\"SIEVE\" " + quote(sieve::supportedExtensions().join(QLatin1Char(' ')).toUtf8()) + "\r\n";
    if (!tls()) out += "\"STARTTLS\"\r\n";
    out += "\"MAXREDIRECTS\" " + quote(QByteArray::number(sieve::Limits{}.maxRedirects)) + "\r\n";
    if (m_state == State::Authenticated) out += "\"OWNER\" " + quote(m_user.toUtf8()) + "\r\n";
    out += "\"UNAUTHENTICATE\"\r\n";
    out += "\"VERSION\" \"1.0\"\r\n";
    return out;
}

void ManageSieveSession::start() {
    m_io.setIdleTimeout(m_config.idleTimeoutMs);
    m_io.setDeadline(m_config.loginDeadlineMs);
    m_io.send(capabilities() + "OK \"Postern ManageSieve ready\"\r\n");
}

void ManageSieveSession::ok(const QString& text, const QByteArray& code) {
    QByteArray out = "OK";
    if (!code.isEmpty()) out += " (" + code + ')';
    if (!text.isEmpty()) out += ' ' + quote(text.toUtf8());
    m_io.send(out + "\r\n");
}

void ManageSieveSession::no(const QString& text, const QByteArray& code, bool countsAsError) {
    QByteArray out = "NO";
    if (!code.isEmpty()) out += " (" + code + ')';
    m_io.send(out + ' ' + quote(text.toUtf8()) + "\r\n");
    if (countsAsError && ++m_errors >= m_config.maxErrors)
        bye(QStringLiteral("Too many errors"), QStringLiteral("too many errors"));
}

void ManageSieveSession::bye(const QString& text, const QString& reason, const QByteArray& code) {
    if (m_state == State::Closed) return;
    m_state = State::Closed;
    m_sasl.reset();
    QByteArray out = "BYE";
    if (!code.isEmpty()) out += " (" + code + ')';
    m_io.send(out + ' ' + quote(text.toUtf8()) + "\r\n");
    m_io.close(reason);
}

void ManageSieveSession::timedOut() {
    bye(QStringLiteral("Idle timeout"), QStringLiteral("idle timeout"));
}

void ManageSieveSession::deadlinePassed() {
    if (m_state != State::NotAuthenticated) return;
    bye(QStringLiteral("Login not completed in time"), QStringLiteral("login deadline"));
}

void ManageSieveSession::shutdown() {
    if (m_waiting) return;  // a store write or login is finishing; the grace period covers it
    bye(QStringLiteral("Server shutting down"), QStringLiteral("server shutting down"), "TRYLATER");
}

void ManageSieveSession::peerClosed() {
    m_state = State::Closed;
    m_sasl.reset();
}

void ManageSieveSession::tlsStarted() {
    // RFC 5804 2.2: forget what was learned before; send the capabilities again.
    m_sasl.reset();
    m_parser.reset();
    m_parser.setMode(Parser::Mode::Command);
    m_state = State::NotAuthenticated;
    m_user.clear();
    applyLimits();
    m_io.send(capabilities() + "OK \"TLS negotiation successful\"\r\n");
}

qsizetype ManageSieveSession::consume(const char* data, qsizetype size) {
    if (m_state == State::Closed) return size;
    if (m_waiting) return 0;
    Parser::Result r = m_parser.feed(data, size);
    switch (r.status) {
        case Parser::Status::NeedMore:
            return r.used;
        case Parser::Status::Fatal:
            bye(r.error, r.error.toLower());
            return size;
        case Parser::Status::Error:
            if (m_sasl) {
                m_sasl.reset();
                m_parser.setMode(Parser::Mode::Command);
            }
            if (m_state == State::NotAuthenticated && ++m_commandsBeforeAuth > m_config.maxCommandsBeforeAuth) {
                bye(QStringLiteral("Too many commands without logging in"),
                    QStringLiteral("too many commands before login"));
                return size;
            }
            no(r.error, {}, true);
            return r.used;
        case Parser::Status::Command:
            if (m_sasl)
                saslResponse(r.command);
            else
                dispatch(r.command);
            return r.used;
    }
    return r.used;
}

void ManageSieveSession::dispatch(const Command& command) {
    if (m_state == State::NotAuthenticated && ++m_commandsBeforeAuth > m_config.maxCommandsBeforeAuth) {
        bye(QStringLiteral("Too many commands without logging in"), QStringLiteral("too many commands before login"));
        return;
    }
    for (const CommandSpec& spec : commandTable()) {
        if (command.verb != spec.verb) continue;
        const bool allowed = m_state == State::Authenticated ? spec.afterAuth : spec.beforeAuth;
        if (!allowed) {
            no(m_state == State::Authenticated ? QStringLiteral("Already logged in")
                                               : QStringLiteral("Log in first (AUTHENTICATE)"),
               {}, true);
            return;
        }
        if (command.arguments.size() < spec.minArgs || command.arguments.size() > spec.maxArgs) {
            no(QStringLiteral("Usage: %1").arg(QLatin1String(spec.usage)), {}, true);
            return;
        }
        (this->*spec.handler)(command.arguments);
        return;
    }
    no(QStringLiteral("Unknown command"), {}, true);
}

bool ManageSieveSession::stringArgs(const QList<Argument>& args) {
    for (const Argument& a : args)
        if (a.kind != Argument::Kind::String) {
            no(QStringLiteral("Expected a string"), {}, true);
            return false;
        }
    return true;
}

// ------------------------------------------------------------------ before login

void ManageSieveSession::cmdCapability(const QList<Argument>&) {
    m_io.send(capabilities() + "OK\r\n");
}

void ManageSieveSession::cmdStartTls(const QList<Argument>&) {
    if (tls()) {
        no(QStringLiteral("Already using TLS"), {}, true);
        return;
    }
    ok(QStringLiteral("Begin TLS negotiation"));
    m_io.startTls();  // drops pipelined plaintext (session_io.h)
}

void ManageSieveSession::cmdAuthenticate(const QList<Argument>& args) {
    if (!stringArgs(args)) return;
    if (!tls()) {  // RFC 5804 15.1; CONVENTIONS 5.4
        no(QStringLiteral("Authentication requires TLS: use STARTTLS first"), "ENCRYPT-NEEDED", true);
        return;
    }
    const QString mechanism = argText(args.first()).toUpper();
    if (mechanism != u"PLAIN" && mechanism != u"LOGIN") {
        no(QStringLiteral("Unsupported mechanism (PLAIN and LOGIN are offered)"), {}, true);
        return;
    }
    m_sasl = std::make_unique<SaslServer>();
    const QByteArray initial = args.size() > 1 ? args.at(1).value : QByteArray();
    const SaslServer::Step step =
        m_sasl->start(mechanism, initial.isEmpty() ? QByteArray("=") : initial, args.size() > 1);
    switch (step.kind) {
        case SaslServer::StepKind::Challenge:
            m_parser.setMode(Parser::Mode::SaslResponse);
            m_io.send(quote(step.challenge.toBase64()) + "\r\n");  // RFC 5804 2.1: a string
            return;
        case SaslServer::StepKind::Failed:
            m_sasl.reset();
            no(QStringLiteral("Authentication failed"), {}, true);
            return;
        case SaslServer::StepKind::Done: {
            const QString user = m_sasl->user();
            QByteArray pw = m_sasl->takePassword();
            m_sasl.reset();
            loginWith(user, std::move(pw));
            return;
        }
    }
}

void ManageSieveSession::saslResponse(const Command& command) {
    if (command.arguments.size() != 1 || command.arguments.first().kind != Argument::Kind::String) {
        m_sasl.reset();
        m_parser.setMode(Parser::Mode::Command);
        no(QStringLiteral("Expected one string as the SASL response"), {}, true);
        return;
    }
    // "*" cancels (RFC 5804 2.1); SaslServer::next knows it too.
    const SaslServer::Step step = m_sasl->next(command.arguments.first().value);
    switch (step.kind) {
        case SaslServer::StepKind::Challenge:
            m_io.send(quote(step.challenge.toBase64()) + "\r\n");
            return;
        case SaslServer::StepKind::Failed:
            m_sasl.reset();
            m_parser.setMode(Parser::Mode::Command);
            no(step.failure == SaslServer::Failure::Cancelled ? QStringLiteral("Authentication cancelled")
                                                              : QStringLiteral("Authentication failed"),
               {}, true);
            return;
        case SaslServer::StepKind::Done: {
            m_parser.setMode(Parser::Mode::Command);
            const QString user = m_sasl->user();
            QByteArray pw = m_sasl->takePassword();
            m_sasl.reset();
            loginWith(user, std::move(pw));
            return;
        }
    }
}

void ManageSieveSession::loginWith(const QString& login, QByteArray password) {
    m_waiting = true;
    m_io.suspend();
    const AuthRequest request{m_alive.get(), m_io.info().sessionId, m_io.info().peerAddress, login,
                              [io = &m_io] { return io->peerHungUp(); }};
    m_backend.authenticate(request, std::move(password), [this](AuthVerdict verdict, QString user) {
        if (m_state == State::Closed) return;
        m_waiting = false;
        if (verdict == AuthVerdict::Ok) {
            m_state = State::Authenticated;
            m_user = user;
            m_errors = 0;
            m_io.setDeadline(0);
            applyLimits();
            ok(QStringLiteral("Logged in"));
        } else if (verdict == AuthVerdict::TempFail) {
            no(QStringLiteral("Too many login attempts, try again later"), "TRYLATER");
        } else {
            no(QStringLiteral("Authentication failed"), {}, true);
        }
        m_io.resume();
    });
}

void ManageSieveSession::cmdLogout(const QList<Argument>&) {
    if (m_state == State::Closed) return;
    m_state = State::Closed;
    m_io.send("OK \"Logout completed\"\r\n");
    m_io.close(QStringLiteral("LOGOUT"));
}

void ManageSieveSession::cmdNoop(const QList<Argument>& args) {
    if (!stringArgs(args)) return;
    if (args.isEmpty())
        ok(QStringLiteral("Done"));
    else
        ok(QStringLiteral("Done"), "TAG " + quote(args.first().value));  // RFC 5804 2.13
}

void ManageSieveSession::cmdUnauthenticate(const QList<Argument>&) {
    // RFC 5804 2.14.1: back to the non-authenticated state; TLS stays.
    m_state = State::NotAuthenticated;
    m_user.clear();
    m_commandsBeforeAuth = 0;
    applyLimits();
    ok();
}

// ------------------------------------------------------------------ script operations

void ManageSieveSession::storeOp(std::function<StoreReply(const QString&, const QString&)> work,
                                 std::function<void(const StoreReply&)> answer) {
    m_waiting = true;
    m_io.suspend();
    const QString user = m_user;
    m_backend.run(
        m_alive.get(), [work = std::move(work), user](const QString& mailDir) { return work(mailDir, user); },
        [this, answer = std::move(answer)](StoreReply reply) {
            if (m_state == State::Closed) return;
            m_waiting = false;
            answer(reply);
            m_io.resume();
        });
}

void ManageSieveSession::storeError(const Status& st) {
    switch (st.error().code) {
        case ENOENT:
            no(st.errorMessage(), "NONEXISTENT");
            return;
        case EEXIST:
            no(st.errorMessage(), "ALREADYEXISTS");
            return;
        case EBUSY:
            no(st.errorMessage(), "ACTIVE");
            return;
        case EFBIG:
            no(st.errorMessage(), "QUOTA/MAXSIZE");
            return;
        case EDQUOT:
            no(st.errorMessage(), "QUOTA/MAXSCRIPTS");
            return;
        default:
            break;
    }
    if (st.error().code > 0) {  // a file system error: details to the log only
        log::write(log::Level::Error, m_io.info().sessionId, u"managesieve.store_failed",
                   log::Fields().add("user", m_user).add("error", st.errorMessage()));
        no(QStringLiteral("Cannot access the scripts now"), "TRYLATER");
        return;
    }
    no(st.errorMessage());  // names, compile errors (line:column), ...
}

void ManageSieveSession::cmdHaveSpace(const QList<Argument>& args) {
    if (args.at(0).kind != Argument::Kind::String || args.at(1).kind != Argument::Kind::Number) {
        no(QStringLiteral("Usage: HAVESPACE name size"), {}, true);
        return;
    }
    const QString name = argText(args.at(0));
    const qint64 size = qint64(args.at(1).number);  // at most 2^32-1: fits
    storeOp(
        [name, size, quota = m_config.quota](const QString& mailDir, const QString& user) {
            return StoreReply{sieve::checkSpace(mailDir, user, name, size, quota), {}, {}};
        },
        [this](const StoreReply& r) {
            if (r.status)
                ok();
            else
                storeError(r.status);
        });
}

void ManageSieveSession::cmdPutScript(const QList<Argument>& args) {
    if (!stringArgs(args)) return;
    const QString name = argText(args.at(0));
    const QByteArray source = args.at(1).value;
    storeOp(
        [name, source, quota = m_config.quota](const QString& mailDir, const QString& user) {
            return StoreReply{sieve::putScript(mailDir, user, name, source, quota), {}, {}};
        },
        [this](const StoreReply& r) {
            if (r.status)
                ok();
            else
                storeError(r.status);
        });
}

void ManageSieveSession::cmdCheckScript(const QList<Argument>& args) {
    if (!stringArgs(args)) return;
    const QByteArray source = args.at(0).value;
    storeOp(
        [source](const QString& mailDir, const QString& user) {
            const qint64 max = sieve::Limits{}.maxScriptBytes;
            if (source.size() > max)
                return StoreReply{
                    Status::fail(QStringLiteral("larger than %1 bytes (the limit)").arg(max), EFBIG), {}, {}};
            auto compiled = sieve::compile(source);
            if (!compiled) return StoreReply{Status::fail(compiled.errorMessage()), {}, {}};  // line:column
            // RFC 6609 3.2: personal includes must exist (the script has no name here).
            return StoreReply{sieve::checkIncludes(mailDir, user, QString(), *compiled), {}, {}};
        },
        [this](const StoreReply& r) {
            if (r.status)
                ok();
            else
                storeError(r.status);
        });
}

void ManageSieveSession::cmdListScripts(const QList<Argument>&) {
    storeOp(
        [](const QString& mailDir, const QString& user) {
            StoreReply r;
            auto list = sieve::listScripts(mailDir, user);
            if (!list)
                r.status = list.error();
            else
                for (const sieve::ScriptInfo& s : *list) r.list << std::pair{s.name, s.active};
            return r;
        },
        [this](const StoreReply& r) {
            if (!r.status) {
                storeError(r.status);
                return;
            }
            QByteArray out;
            for (const auto& [name, active] : r.list) out += quote(name.toUtf8()) + (active ? " ACTIVE\r\n" : "\r\n");
            m_io.send(out + "OK\r\n");
        });
}

void ManageSieveSession::cmdSetActive(const QList<Argument>& args) {
    if (!stringArgs(args)) return;
    const QString name = argText(args.at(0));
    storeOp(
        [name](const QString& mailDir, const QString& user) {
            // RFC 5804 2.8: the empty name deactivates.
            return StoreReply{
                name.isEmpty() ? sieve::deactivateScripts(mailDir, user) : sieve::activateScript(mailDir, user, name),
                {},
                {}};
        },
        [this](const StoreReply& r) {
            if (r.status)
                ok();
            else
                storeError(r.status);
        });
}

void ManageSieveSession::cmdGetScript(const QList<Argument>& args) {
    if (!stringArgs(args)) return;
    const QString name = argText(args.at(0));
    storeOp(
        [name](const QString& mailDir, const QString& user) {
            StoreReply r;
            auto bytes = sieve::readScript(mailDir, user, name);
            if (!bytes)
                r.status = bytes.error();
            else
                r.script = *bytes;
            return r;
        },
        [this](const StoreReply& r) {
            if (!r.status) {
                storeError(r.status);
                return;
            }
            // RFC 5804 2.9: the script as a literal, CRLF, then OK.
            m_io.send('{' + QByteArray::number(r.script.size()) + "}\r\n" + r.script + "\r\nOK\r\n");
        });
}

void ManageSieveSession::cmdDeleteScript(const QList<Argument>& args) {
    if (!stringArgs(args)) return;
    const QString name = argText(args.at(0));
    storeOp(
        [name](const QString& mailDir, const QString& user) {
            return StoreReply{sieve::deleteScript(mailDir, user, name), {}, {}};  // EBUSY: NO (ACTIVE), 2.10
        },
        [this](const StoreReply& r) {
            if (r.status)
                ok();
            else
                storeError(r.status);
        });
}

void ManageSieveSession::cmdRenameScript(const QList<Argument>& args) {
    if (!stringArgs(args)) return;
    const QString from = argText(args.at(0)), to = argText(args.at(1));
    storeOp(
        [from, to](const QString& mailDir, const QString& user) {
            return StoreReply{sieve::renameScript(mailDir, user, from, to), {}, {}};
        },
        [this](const StoreReply& r) {
            if (r.status)
                ok();
            else
                storeError(r.status);
        });
}

}  // namespace postern::managesieve
