// imap_session.h — one IMAP conversation as a state machine (no socket I/O).
//
// States (RFC 9051 3): NotAuthenticated -> Authenticated -> Selected -> Logout.
// One command table (commandTable()): name, handler, states in which it is
// valid, "allowed before TLS", "UID variant exists". Handlers live in
// commands/*.cpp, one file per family; each first checks (state, syntax,
// policy -> BAD/NO with a clear text) and then proceeds.
// Pre-TLS on port 143: CAPABILITY shows STARTTLS and LOGINDISABLED, no AUTH=
// mechanisms; LOGIN/AUTHENTICATE are refused (RFC 9051 6.2.3, RFC 2595 3.2).
// STARTTLS resets all state (the connection drops pipelined plaintext).
// Literals: synchronising literals get "+ Ready"; sizes beyond the limits are
// refused before the client sends them (CommandReader): NO [TOOBIG] for a too
// big one, NO [LIMIT] when the process's input budget (imap.max_buffered_input)
// cannot hold it now; a refused non-synchronising literal (its octets are
// already on the way) gets BYE and the connection is closed (RFC 7888 4).
// Before login only small literals are taken (ReaderLimits::...BeforeAuth,
// 8 KiB: a password) and LITERAL- is advertised instead of LITERAL+ (RFC 7888
// 5: non-synchronising literals up to 4096 octets).
// Before login the session also has a deadline (SessionConfig::loginDeadlineMs,
// imap.login_deadline, counted from connect; commands do not extend it): not
// logged in by then, it gets "* BYE" and is closed.
// Mailbox changes made by other sessions, processes or deliveries (new
// messages, expunges, flag changes, new keywords) are reported at the end of
// every command that completes with OK or NO while a mailbox is selected,
// right before its tagged response (RFC 9051 7.3.1/7.5.1, RFC 3501 7.3.1/
// 7.4.1), and new messages and flag changes also at the start of the
// commands that work on messages (FETCH STORE SEARCH SORT THREAD COPY MOVE
// EXPUNGE), so that they see them (no EXPUNGE there: the command's sequence
// numbers mean what the client knew): EXISTS (and RECENT for IMAP4rev1), EXPUNGE or (QRESYNC) VANISHED,
// FETCH FLAGS (with MODSEQ once CONDSTORE is on), FLAGS/PERMANENTFLAGS when
// keywords appeared. No EXPUNGE is sent at the end of FETCH, STORE, SEARCH
// (nor SORT, THREAD, which answer with sequence numbers like SEARCH) when
// they use sequence numbers: the vanished messages stay as ghosts until a
// later command may report them. Whether anything changed is asked of the
// process's shared folder watcher (folder_watch.h), so a command after which
// nothing changed costs no listing of the folder; during IDLE the same watcher
// reports changes within ~100 ms. With CONDSTORE on, a command after which the
// mailbox's highest mod-sequence is above what the client was last told ends
// with OK [HIGHESTMODSEQ n] (RFC 7162, as RFC 5162 3.3-3.5 ask for EXPUNGE and
// CLOSE; not while an expunge waits to be reported), and the first CONDSTORE
// enabling command while a mailbox is selected sends * OK [HIGHESTMODSEQ n].
// \Recent (RFC 3501 2.3.2) is kept for sessions that did not ENABLE
// IMAP4rev2: see MailboxView (imap_mailbox.h) and MailboxIndex's claim.
// Limits: line, command and literal sizes (imap_parser.h; small before
// login), the process's input budget, bad commands before disconnect, the
// login deadline, idle timeout (>= 30 minutes, RFC 9051 5.4), IDLE re-armed
// per command.
// Message files are read on the event-loop thread (page-cache reads); large
// FETCH responses are queued in 64 KiB pieces with output backpressure.
#pragma once

#include "folder_watch.h"
#include "imap_mailbox.h"
#include "imap_parser.h"

#include "common/auth_request.h"
#include "common/sasl.h"
#include "common/session_io.h"

#include <QHostAddress>
#include <QObject>
#include <QTimer>
#include <functional>
#include <memory>
#include <optional>

namespace postern::imap {

struct SessionConfig {
    QString hostname = QStringLiteral("localhost");
    ReaderLimits limits;
    qint64 idleTimeoutMs = 30 * 60 * 1000;
    qint64 preAuthTimeoutMs = 60 * 1000;  // idle, before login
    qint64 loginDeadlineMs = 60 * 1000;   // from connect to a successful login (0: none)
    InputBudget* inputBudget = nullptr;   // the process's count of buffered input (nullptr: none)
    int maxBadCommands = 20;
    qint64 appendLimit = 25 << 20;
    int maxSessionsPerUser = 50;  // logged-in sessions of one user in this process
    QString mailDir;
};

class ImapBackend {
public:
    virtual ~ImapBackend() = default;
    virtual void authenticate(const AuthRequest& request, QByteArray password, AuthDone done) = 0;
    // Quota of a user in bytes (0 = none).
    virtual qint64 quotaOf(const QString& user) = 0;
    // The user filed a message as spam (COPY/MOVE/APPEND into the \Junk folder) or as
    // ham (out of \Junk into another folder but \Trash); `messagePath` is the stored
    // copy. Called after the copy is durable and before the reply; it must not wait (the
    // daemon queues a learn request, common/spam/learn_spool.h). Default: nothing.
    virtual void learn(const QString& user, bool spam, const QString& messagePath) {
        (void)user;
        (void)spam;
        (void)messagePath;
    }
};

class ImapSession : public ProtocolSession {
public:
    ImapSession(SessionIo& io, ImapBackend& backend, const SessionConfig& config);
    ~ImapSession() override;

    void start() override;
    qsizetype consume(const char* data, qsizetype size) override;
    void tlsStarted() override;
    void writable() override;
    void timedOut() override;
    QString authenticatedUser() const override { return m_user; }
    void deadlinePassed() override;
    void shutdown() override;
    void peerClosed() override;

    // Used by command handlers (commands/*.cpp).
    enum class State { NotAuthenticated, Authenticated, Selected, Logout };
    struct Request {
        QByteArray tag;
        QByteArray name;  // upper case, without "UID "
        bool uid = false;
        QList<Token> args;
    };
    void untagged(const QByteArray& line);  // "* " + line + CRLF
    void tagged(const Request& r, const char* status, const QString& text, const QByteArray& code = {});
    void ok(const Request& r, const QString& text, const QByteArray& code = {}) { tagged(r, "OK", text, code); }
    void no(const Request& r, const QString& text, const QByteArray& code = {}) { tagged(r, "NO", text, code); }
    void bad(const Request& r, const QString& text);
    void sendRaw(const QByteArray& bytes) { m_io.send(bytes); }
    // Run `step` now and again each time the output drains, until it returns true;
    // input is not read meanwhile (responses stay in order, memory stays bounded).
    void runWithBackpressure(std::function<bool()> step);
    // Sync the selected mailbox and send EXPUNGE/EXISTS/FETCH for what changed.
    void reportChanges(bool allowExpunge);
    // CONDSTORE is on from now on (RFC 7162 3.1): the first time, with a mailbox
    // selected, the client is told its HIGHESTMODSEQ.
    void enableCondstore();

private:
    friend struct Commands;
    enum class Phase { Command, SaslResponse, Idle, Waiting, Closed };
    using Handler = void (*)(ImapSession&, const Request&);
    struct CommandSpec {
        const char* name;
        Handler handler;
        bool notAuthenticated, authenticated, selected;
        bool allowedBeforeTls;
        bool uidVariant;
        bool usesMessages = false;  // works on the selected mailbox's messages: changes are announced first
    };
    static const QList<CommandSpec>& commandTable();

    void dispatch(const RawCommand& raw);
    void literalRefused(bool nonSync);
    void closeWith(const QByteArray& line, const QString& reason);
    void countBad();
    QByteArray capabilities() const;
    bool tls() const { return m_io.info().tls; }
    void finishLogin(const Request& r, AuthVerdict verdict, const QString& user);
    AuthRequest authRequest(const QString& login);
    void startIdleWatch();
    void stopIdleWatch();
    // Before a tagged OK/NO: the changes due at the end of the command (see the header).
    QByteArray endOfCommand(const Request& r, const char* status, const QByteArray& code);

    SessionIo& m_io;
    ImapBackend& m_backend;
    SessionConfig m_config;
    std::unique_ptr<QObject> m_alive;
    CommandReader m_reader;
    State m_state = State::NotAuthenticated;
    Phase m_phase = Phase::Command;
    int m_badCommands = 0;
    QString m_user;       // set once logged in (and counted in the per-user session table)
    bool m_utf8 = false;  // ENABLE UTF8=ACCEPT or IMAP4rev2
    bool m_rev2 = false;
    bool m_condstore = false;  // RFC 7162: MODSEQ in every untagged FETCH from now on
    bool m_qresync = false;    // ENABLE QRESYNC: VANISHED instead of EXPUNGE
    std::unique_ptr<SaslServer> m_sasl;
    Request m_pending;  // the command waiting for an async result / SASL / IDLE
    std::unique_ptr<UserMailboxes> m_mailboxes;
    std::optional<MailboxView> m_selected;
    QTimer m_idleDebounce;
    QTimer m_idlePoll;             // IDLE on a folder the watcher cannot watch: look every few seconds
    quint64 m_modseqReported = 0;  // the selected mailbox's HIGHESTMODSEQ the client was last told
    // A long response in progress (FETCH of many bodies): called again whenever the
    // output has drained; returns true when the command has finished.
    std::function<bool()> m_continuation;
};

}  // namespace postern::imap
