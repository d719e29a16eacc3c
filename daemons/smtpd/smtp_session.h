// smtp_session.h — one SMTP conversation as a state machine (no I/O).
//
// Modes (policy follows the listener's mode, never the port):
// Submission limits (authenticated users, any listener): the backend's sendLimit()
// is asked at MAIL (one more message), at each RCPT (one more recipient) and, counting
// them, at the end of DATA/BDAT; over a limit: 451 4.7.0 with the limit in the text,
// a "smtp.send_limited" log line and postern_smtp_send_limited_total{limit=...}.
//   MX           mail from other servers: STARTTLS offered, no AUTH, recipients
//                must be local (aliases may forward) — never an open relay.
//   Submission   587: STARTTLS required before anything but EHLO/HELO/NOOP/
//                RSET/QUIT/HELP; AUTH (only under TLS) required before MAIL;
//                MAIL FROM must belong to the user (553 5.7.1 otherwise); so
//                must the header's From:/Sender:, which the backend checks
//                once the content is complete (550 5.7.1, local_backend.h).
//   Submissions  465: implicit TLS, otherwise as Submission.
//
// Pre-greet check (MX only, smtp.greet_delay; after Postfix postscreen): the
// greeting is sent as "220-" first line, the rest after greetDelayMs; a client
// that sends anything before the final "220 " line breaks RFC 5321 4.3.1
// (bots do, to save time) and gets 554 5.5.1 and a closed connection.
//
// One command table (verb, handler, allowed before TLS on submission) and one
// reply path (reply()): every reply carries an RFC 3463 code; each 4xx/5xx
// (but 421 and the 452 for recipients over the limit) counts as an error and
// after smtp.max_errors the session says 421 and closes. STARTTLS resets everything (RFC 3207 4.2). DATA/BDAT content
// goes through ContentChecker into a spool file; 250 is sent only when the backend reports every copy durable. A failed
// write to the spool file is answered with the one store-failure mapping (common/store/store_error.h, as the server's
// own storage): 452 4.3.1 for a full disk or the daemon's quota, 451 4.3.0 otherwise. Before that can happen, MAIL FROM
// is answered 452 4.3.1 while the backend says the disk is nearly full (smtp.min_free_space, or a SIZE= that would not
// fit above it): nothing is accepted that might not fit.
//
// Limits (SessionConfig): command line length (512 octets incl. CRLF for all
// but MAIL/RCPT/AUTH, smtp_command.h), recipients (452 4.5.3 beyond
// maxRecipients, not counted as errors; at most maxRecipients +
// kExtraRcptCommands RCPT commands per transaction, then 421 and close),
// message size, content limits, errors, command and data idle timeouts.
// Standards: RFC 5321, 1869, 2920, 3030, 3207, 3461, 3463, 4954, 6152, 6409,
// 6531, 8314. Security: see the mode list; AUTH payloads are never logged.
#pragma once

#include "smtp_backend.h"
#include "smtp_reply.h"

#include "common/sasl.h"
#include "common/session_io.h"

#include <QObject>
#include <memory>
#include <optional>

namespace postern::smtp {

struct SessionConfig {
    QString hostname = QStringLiteral("localhost");
    qint64 maxMessageSize = 25 << 20;
    int maxRecipients = 100;
    int maxCommandLine = 2048;
    int maxErrors = 20;
    qint64 commandTimeoutMs = 300'000;
    qint64 dataTimeoutMs = 600'000;
    qint64 greetDelayMs = 0;  // MX only: silence required before the greeting ends (pre-greet check)
    ContentLimits content;
    bool logTranscript = false;
};

class SmtpSession : public ProtocolSession {
public:
    // RCPT commands answered per transaction beyond maxRecipients (with 452) before 421.
    static constexpr int kExtraRcptCommands = 1000;

    SmtpSession(SessionIo& io, SmtpBackend& backend, const SessionConfig& config);
    ~SmtpSession() override;

    void start() override;
    qsizetype consume(const char* data, qsizetype size) override;
    void tlsStarted() override;
    void timedOut() override;
    QString authenticatedUser() const override { return m_authUser; }
    void shutdown() override;
    void peerClosed() override;
    qint64 beginPregreet() override;
    void spokeTooSoon() override;

    // For tests and logs.
    bool authenticated() const { return !m_authUser.isEmpty(); }
    QString authUser() const { return m_authUser; }

private:
    enum class Phase { Command, Data, Bdat, Auth, Waiting, Closed };
    struct CommandSpec {
        Verb verb;
        void (SmtpSession::*handler)(const Command&);
        bool allowedBeforeTls;  // on submission listeners
    };
    static const QList<CommandSpec>& commandTable();

    qsizetype consumeCommandLine(const char* data, qsizetype size);
    qsizetype consumeAuthLine(const char* data, qsizetype size);
    qsizetype consumeBdat(const char* data, qsizetype size);
    void dispatch(const QByteArray& line);
    enum class CountsAsError { Yes, No };
    void reply(const Reply& r, CountsAsError counts = CountsAsError::Yes);
    void reply(int code, const char* enhanced, const QString& text) {
        reply(Reply(code, QString::fromLatin1(enhanced), text));
    }
    void resetTransaction();
    void closeWith(const Reply& r, const QString& reason);
    bool isSubmission() const;
    bool tls() const;
    void transcript(const QString& line);

    void cmdHelo(const Command& c);
    void cmdEhlo(const Command& c);
    void cmdMail(const Command& c);
    struct MailParameters {  // MAIL's ESMTP parameters, once checked
        bool smtpUtf8 = false;
        bool eightBit = false;  // BODY=8BITMIME
        QString ret;            // RET=FULL|HDRS, empty when not given
        QString envid;          // ENVID, decoded
        qint64 declaredSize = 0;
    };
    bool mailParameters(const Command& c, MailParameters* out);
    void cmdRcpt(const Command& c);
    bool rcptParameters(const Command& c, RecipientInfo* info);
    bool overSendLimit(qint64 messages, qint64 recipients, bool record);
    void cmdData(const Command& c);
    void cmdBdat(const Command& c);
    void cmdRset(const Command& c);
    void cmdVrfy(const Command& c);
    void cmdExpn(const Command& c);
    void cmdHelp(const Command& c);
    void cmdNoop(const Command& c);
    void cmdQuit(const Command& c);
    void cmdStartTls(const Command& c);
    void cmdAuth(const Command& c);

    bool beginContent();
    void finishContent();
    std::optional<Reply> contentRefusal(ContentIssue issue) const;
    void handleSaslStep(const SaslServer::Step& step);
    QByteArray receivedHeader() const;

    SessionIo& m_io;
    SmtpBackend& m_backend;
    SessionConfig m_config;
    std::unique_ptr<QObject> m_alive;  // context for async callbacks; dies with the session
    Phase m_phase = Phase::Command;
    int m_errors = 0;
    bool m_discardingLongLine = false;
    bool m_shutdownPending = false;

    // Identity (forgotten after STARTTLS).
    QString m_helo;
    bool m_esmtp = false;
    QString m_authUser;
    std::unique_ptr<SaslServer> m_sasl;

    // Transaction.
    std::optional<MailPath> m_mailFrom;
    bool m_smtpUtf8 = false;
    bool m_eightBitMime = false;
    QString m_ret, m_envid;
    qint64 m_declaredSize = 0;
    QList<RecipientInfo> m_recipients;
    int m_rcptCommands = 0;  // RCPT commands in this transaction, whatever their answer
    QString m_queueId;
    std::shared_ptr<SpoolBody> m_body;
    std::unique_ptr<ContentChecker> m_checker;
    std::unique_ptr<class DataReader> m_dataReader;
    qint64 m_bdatRemaining = 0;
    bool m_bdatLast = false;
    bool m_bdatFailed = false;  // an earlier chunk was refused; the rest is discarded until RSET
};

}  // namespace postern::smtp
