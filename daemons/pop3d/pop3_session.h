// pop3_session.h — one POP3 conversation as a state machine (no I/O).
//
// States (RFC 1939 3): AUTHORIZATION -> TRANSACTION -> UPDATE (on QUIT).
// One command table: verb, handler, state, allowed before TLS. USER/PASS and
// AUTH are offered and accepted only under TLS (RFC 2595, RFC 8314); STLS
// resets everything (the connection discards pipelined plaintext).
// Multi-line answers are dot-stuffed and end with ".\r\n"; sizes in STAT and
// LIST are the CRLF sizes RETR sends. RETR/TOP stream the file in blocks with
// output backpressure (never the whole message in memory). DELE marks only;
// messages are expunged in the UPDATE state after QUIT; a dropped connection
// deletes nothing. Retrieved messages are marked \Seen at QUIT.
//
// Input checks (RFC 1939 3): a command line holds printable characters only
// (no NUL, no other control character; UTF-8 is let through for passwords), and
// each command takes exactly the arguments its grammar allows (LIST [msg],
// QUIT, ...): anything else gets -ERR and counts as an error.
// Limits (SessionConfig): command line 255 octets incl. CRLF (RFC 2449 4),
// errors before disconnect, commands before authentication, idle timeout, and
// a login deadline (pop3.login_deadline, counted from connect; commands do not
// extend it): not logged in by then, the client gets -ERR and is disconnected.
// Standards: RFC 1939, 2449 (CAPA, RESP-CODES), 2595 (STLS), 3206
// (SYS/AUTH codes), 5034 (SASL AUTH), 8314. Passwords are never logged.
#pragma once

#include "maildrop.h"

#include "common/auth_request.h"
#include "common/sasl.h"
#include "common/session_io.h"

#include <QFile>
#include <QHostAddress>
#include <QObject>
#include <QSet>
#include <functional>
#include <memory>

namespace postern::pop3 {

struct SessionConfig {
    QString hostname = QStringLiteral("localhost");
    int maxLine = 255;
    int maxErrors = 10;
    int maxCommandsBeforeAuth = 20;
    qint64 idleTimeoutMs = 600'000;
    qint64 loginDeadlineMs = 60'000;  // from connect to a successful login (0: none)
    qint64 loginDelaySeconds = 0;     // advertised in CAPA when > 0
};

class Pop3Backend {
public:
    virtual ~Pop3Backend() = default;
    virtual void authenticate(const AuthRequest& request, QByteArray password, AuthDone done) = 0;
    virtual void openMaildrop(QObject* context, const QString& user, qint64 loginDelaySeconds,
                              std::function<void(Result<std::shared_ptr<Maildrop>>)> done) = 0;
    virtual void commit(QObject* context, std::shared_ptr<Maildrop> drop, QSet<int> deleted, QSet<int> retrieved,
                        std::function<void(Status)> done) = 0;
};

class Pop3Session : public ProtocolSession {
public:
    Pop3Session(SessionIo& io, Pop3Backend& backend, const SessionConfig& config);
    ~Pop3Session() override;

    void start() override;
    qsizetype consume(const char* data, qsizetype size) override;
    void tlsStarted() override;
    void writable() override;
    void timedOut() override;
    QString authenticatedUser() const override { return m_user; }
    void deadlinePassed() override;
    void shutdown() override;
    void peerClosed() override;

private:
    enum class State { Authorization, Transaction, Update, Closed };
    enum class Phase { Command, SaslResponse, Waiting, Streaming };
    struct CommandSpec {
        const char* verb;
        void (Pop3Session::*handler)(const QStringList& args);
        bool inAuthorization;
        bool inTransaction;
        bool allowedBeforeTls;
        int minArgs, maxArgs;  // -1: the rest of the line is one argument (PASS)
        const char* usage;
    };
    static const QList<CommandSpec>& commandTable();

    void dispatch(const QByteArray& line);
    void ok(const QString& text);
    void err(const QString& text);
    void closeWith(const QByteArray& line, const QString& reason);
    bool tls() const { return m_io.info().tls; }
    int messageArg(const QString& arg, bool allowDeleted = false);
    qint64 dropSize() const;
    void loginWith(const QString& user, QByteArray password);
    void startStream(int index, int bodyLines);
    void pumpStream();

    void cmdCapa(const QStringList&);
    void cmdStls(const QStringList&);
    void cmdUser(const QStringList&);
    void cmdPass(const QStringList&);
    void cmdAuth(const QStringList&);
    void cmdQuit(const QStringList&);
    void cmdStat(const QStringList&);
    void cmdList(const QStringList&);
    void cmdRetr(const QStringList&);
    void cmdTop(const QStringList&);
    void cmdDele(const QStringList&);
    void cmdNoop(const QStringList&);
    void cmdRset(const QStringList&);
    void cmdUidl(const QStringList&);

    SessionIo& m_io;
    Pop3Backend& m_backend;
    SessionConfig m_config;
    std::unique_ptr<QObject> m_alive;
    State m_state = State::Authorization;
    Phase m_phase = Phase::Command;
    int m_errors = 0;
    int m_commandsBeforeAuth = 0;
    bool m_discardingLongLine = false;
    QString m_userCandidate;
    QString m_user;
    std::unique_ptr<SaslServer> m_sasl;
    std::shared_ptr<Maildrop> m_drop;
    QSet<int> m_deleted;
    QSet<int> m_retrieved;
    // Streaming of RETR/TOP.
    std::unique_ptr<QFile> m_file;
    bool m_atLineStart = true;
    bool m_prevCR = false;
    bool m_inBody = false;
    int m_bodyLinesLeft = -1;  // -1: whole message
    int m_headerLineLength = 0;
};

}  // namespace postern::pop3
