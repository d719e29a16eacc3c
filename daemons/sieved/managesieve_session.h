// managesieve_session.h — one ManageSieve conversation (RFC 5804) as a state
// machine (no I/O): parsed commands in, replies and actions out through SessionIo.
//
// States: NotAuthenticated -> (STARTTLS, AUTHENTICATE) -> Authenticated
// (-> UNAUTHENTICATE back) -> LOGOUT. One command table: verb, handler, the
// states it is allowed in, argument counts.
//   CAPABILITY, STARTTLS, AUTHENTICATE PLAIN|LOGIN [initial], LOGOUT, NOOP [tag],
//   HAVESPACE name size, PUTSCRIPT name script, CHECKSCRIPT script, LISTSCRIPTS,
//   SETACTIVE name ("" deactivates), GETSCRIPT name, DELETESCRIPT name,
//   RENAMESCRIPT old new, UNAUTHENTICATE.
// The script operations call the one script store (common/sieve/sieve_store.h,
// shared with `posternctl sieve`) through the backend, which runs them off the
// event loop; errors of the store map to RFC 5804 response codes (NONEXISTENT,
// ACTIVE, ALREADYEXISTS, QUOTA/MAXSIZE, QUOTA/MAXSCRIPTS); a script that does not
// compile is refused with "line:column: text" in the NO reply (2.6).
// STARTTLS: the connection discards pipelined plaintext (session_io.h); after the
// handshake everything is forgotten and the capabilities are sent again (2.2).
// AUTHENTICATE only under TLS (RFC 5804 2.1, 15; CONVENTIONS 5.4): before it the
// SASL capability is empty. Passwords are checked by the shared Authenticator
// with its throttle (like IMAP); never logged.
//
// Limits (SessionConfig, from the sieve.* settings):
//   maxLine               one command line, CRLF included (literals excluded)
//   maxLiteralBeforeAuth  literals of one command before login (small: a SASL response)
//   maxLiteralAfterAuth   literals of one command after login (a script: sieve::Limits::maxScriptBytes)
//   maxErrors             NO replies to bad commands before BYE
//   maxCommandsBeforeAuth commands before a successful login, then BYE
//   idleTimeoutMs, loginDeadlineMs (from connect; commands do not extend it)
//   quota                 scripts per user and bytes per script (sieve.max_scripts,
//                         sieve.max_script_size): HAVESPACE and PUTSCRIPT answer
//                         NO (QUOTA/MAXSCRIPTS) / NO (QUOTA/MAXSIZE) at limit+1
// A line or literal over its limit gets BYE and the connection closes (the
// stream cannot be resynchronised); other bad input gets NO and the session goes on.
// Standards: RFC 5804 (ManageSieve), RFC 4616 (PLAIN), RFC 5228 (scripts).
// Deviation: no NOTIFY capability (the enotify extension is not implemented);
// no SASL mechanism besides PLAIN and LOGIN; no referrals; no proxy login.
#pragma once

#include "managesieve_parser.h"

#include "common/auth_request.h"
#include "common/sasl.h"
#include "common/session_io.h"
#include "common/sieve/sieve_store.h"

#include "core/result.h"

#include <QObject>
#include <QStringList>
#include <functional>
#include <memory>

namespace postern::managesieve {

struct SessionConfig {
    int maxLine = 8192;
    qint64 maxLiteralBeforeAuth = 4096;
    qint64 maxLiteralAfterAuth = 1024 * 1024;
    int maxErrors = 10;
    int maxCommandsBeforeAuth = 20;
    qint64 idleTimeoutMs = 30 * 60'000;
    qint64 loginDeadlineMs = 60'000;
    sieve::Quota quota;  // sieve.max_scripts, sieve.max_script_size (HAVESPACE, PUTSCRIPT)
};

// What a script operation answers: ok, or the store's error (Error::code: errno
// values as in sieve_store.h) and, for GETSCRIPT/LISTSCRIPTS, the data.
struct StoreReply {
    Status status;
    QByteArray script;                     // GETSCRIPT
    QList<std::pair<QString, bool>> list;  // LISTSCRIPTS: (name, active)
};

class SieveBackend {
public:
    virtual ~SieveBackend() = default;
    virtual void authenticate(const AuthRequest& request, QByteArray password, AuthDone done) = 0;
    // Runs `work` (script store calls for `user`) away from the event loop and
    // hands its answer to `done` later, unless `context` was deleted.
    virtual void run(QObject* context, std::function<StoreReply(const QString& mailDir)> work,
                     std::function<void(StoreReply)> done) = 0;
};

class ManageSieveSession : public ProtocolSession {
public:
    ManageSieveSession(SessionIo& io, SieveBackend& backend, const SessionConfig& config);
    ~ManageSieveSession() override;

    void start() override;
    qsizetype consume(const char* data, qsizetype size) override;
    void tlsStarted() override;
    void timedOut() override;
    QString authenticatedUser() const override { return m_user; }
    void deadlinePassed() override;
    void shutdown() override;
    void peerClosed() override;

    // The capability lines (RFC 5804 1.7) as sent now, ending before the OK.
    QByteArray capabilities() const;
    // A string as the protocol writes it: quoted when it can be, else a literal.
    static QByteArray quote(const QByteArray& text);

private:
    enum class State { NotAuthenticated, Authenticated, Closed };
    struct CommandSpec {
        const char* verb;
        void (ManageSieveSession::*handler)(const QList<Argument>& args);
        bool beforeAuth;
        bool afterAuth;
        int minArgs, maxArgs;
        const char* usage;
    };
    static const QList<CommandSpec>& commandTable();

    void dispatch(const Command& command);
    void saslResponse(const Command& command);
    void ok(const QString& text = {}, const QByteArray& code = {});
    void no(const QString& text, const QByteArray& code = {}, bool countsAsError = false);
    void bye(const QString& text, const QString& reason, const QByteArray& code = {});
    bool tls() const { return m_io.info().tls; }
    void applyLimits();
    void loginWith(const QString& login, QByteArray password);
    // Runs a store operation, then answers with `answer` (waiting meanwhile).
    void storeOp(std::function<StoreReply(const QString& mailDir, const QString& user)> work,
                 std::function<void(const StoreReply&)> answer);
    void storeError(const Status& st);
    bool stringArgs(const QList<Argument>& args);

    void cmdCapability(const QList<Argument>&);
    void cmdStartTls(const QList<Argument>&);
    void cmdAuthenticate(const QList<Argument>&);
    void cmdLogout(const QList<Argument>&);
    void cmdNoop(const QList<Argument>&);
    void cmdUnauthenticate(const QList<Argument>&);
    void cmdHaveSpace(const QList<Argument>&);
    void cmdPutScript(const QList<Argument>&);
    void cmdCheckScript(const QList<Argument>&);
    void cmdListScripts(const QList<Argument>&);
    void cmdSetActive(const QList<Argument>&);
    void cmdGetScript(const QList<Argument>&);
    void cmdDeleteScript(const QList<Argument>&);
    void cmdRenameScript(const QList<Argument>&);

    SessionIo& m_io;
    SieveBackend& m_backend;
    SessionConfig m_config;
    std::unique_ptr<QObject> m_alive;
    Parser m_parser;
    State m_state = State::NotAuthenticated;
    bool m_waiting = false;
    int m_errors = 0;
    int m_commandsBeforeAuth = 0;
    QString m_user;
    std::unique_ptr<SaslServer> m_sasl;
};

}  // namespace postern::managesieve
