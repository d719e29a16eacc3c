// smtp_client.h — one outbound SMTP transaction (RFC 5321) to one host.
//
// Interface: SmtpClient(request).start(); finished(result) is emitted once.
// Sequence: connect (timeout) -> 220 -> EHLO (HELO when EHLO is refused) ->
// STARTTLS when offered (required by policy: MTA-STS enforce, smarthost, DANE)
// -> EHLO again -> AUTH PLAIN (smarthost) -> MAIL FROM + RCPT TO pipelined
// when PIPELINING is offered -> DATA with the body streamed from the queue
// file (dot-stuffed, bounded write buffer) -> QUIT.
// TLS policy:
//   Opportunistic  STARTTLS when offered, certificate not required to verify
//                  (RFC 7435); the result is recorded for the log.
//   Encrypted      TLS required, certificate not checked: the MX publishes
//                  TLSA records but none is usable (RFC 7672 2.2, 3.1.3).
//   Verified       TLS required and the certificate must verify for the MX
//                  name against the system CAs (+ outbound.ca_file).
//   Dane           TLS required and the chain must pass dane.h's verifyDane()
//                  right after the handshake, before any command is sent:
//                  DANE-EE(3) the leaf matches (no name or date checks);
//                  DANE-TA(2) the leaf chains to the matching certificate and
//                  shows the MX name (RFC 7671, 7672). PKIX usages ignored.
// DSN parameters (RFC 3461) go out only when DSN is offered: ENVID as xtext,
// ORCPT re-encoded from the stored value (common/mail/dsn_params.h).
// 8BITMIME / SMTPUTF8 are used only when offered; a message that needs one
// the server lacks is refused here permanently (5.6.3 / 5.6.7) rather than
// mangled.
// Per-recipient results carry the server's reply so the runner can retry
// 4xx and bounce 5xx. Replies are read by SmtpReplyReader (bounded lines,
// lines per reply and buffered bytes; a malformed reply ends the attempt as
// a temporary error). Security: the password is sent only inside TLS.
#pragma once

#include "smtp_reply_reader.h"

#include "core/dns.h"

#include <QFile>
#include <QObject>
#include <QSslCertificate>
#include <QSslSocket>
#include <QStringList>
#include <QTimer>
#include <memory>

namespace postern::outbound {

struct TlsPolicy {
    enum class Mode { Opportunistic, Encrypted, Verified, Dane };
    Mode mode = Mode::Opportunistic;
    QString verifyName;     // the name the certificate must show (Verified)
    QList<DnsRecord> tlsa;  // Dane
    QList<QSslCertificate> extraCa;
    QString reason;  // why this mode (for logs): "mta-sts enforce", "dane", "smarthost"
};

struct ClientRequest {
    QString address;  // IP to connect to
    quint16 port = 25;
    QString mxName;  // host name (SNI, verification, logs)
    QString helo;
    bool implicitTls = false;
    TlsPolicy tls;
    QString authUser;
    QByteArray authPassword;
    QString sender;  // "" = null sender
    QStringList recipients;
    QStringList notify, orcpt;  // per recipient, may be empty strings
    QString bodyPath;
    bool eightBit = false;
    bool smtpUtf8 = false;
    QString ret, envid;
    qint64 connectTimeoutMs = 30'000;
    qint64 commandTimeoutMs = 300'000;
};

struct Reply {
    int code = 0;
    QString text;  // "550 5.1.1 User unknown" style, one line
    bool ok() const { return code >= 200 && code < 300; }
    bool permanent() const { return code >= 500; }
};

struct ClientResult {
    bool connected = false;
    QString error;            // transport or protocol error for the whole attempt (temporary)
    Reply transaction;        // a reply that decided for every recipient (greeting, MAIL, DATA); code 0 when none
    QList<Reply> recipients;  // per recipient (same order as the request); code 0 when not reached
    QString tlsVersion;
    bool tlsVerified = false;
    QString dane;  // DANE outcome for the log ("DANE-TA:1" = usage:depth), "" when not used
};

class SmtpClient : public QObject {
    Q_OBJECT
public:
    explicit SmtpClient(ClientRequest request, QObject* parent = nullptr);
    ~SmtpClient() override;
    void start();

Q_SIGNALS:
    void finished(const postern::outbound::ClientResult& result);

private:
    enum class Step { Connect, Greeting, Ehlo, Helo, StartTls, Ehlo2, Auth, Mail, Rcpt, Data, Body, Quit, Done };
    void onConnected();
    void onEncrypted();
    void onReadyRead();
    void onTimeout();
    void onError();
    void handleReply(const Reply& r, const QStringList& lines);
    void failTransaction(const Reply& r);
    void ehloReplied(const Reply& r, const QStringList& lines);
    void startTlsReplied(const Reply& r);
    void rcptReplied(const Reply& r);
    void dataReplied(const Reply& r);
    void send(const QByteArray& line);
    void sendEhlo();
    void afterEhlo(const QStringList& lines);
    void startTransaction();
    QByteArray rcptCommand(int index) const;
    void pumpBody();
    void finish(const QString& error = {});
    bool checkDane(QString* why);
    void armTimer(qint64 ms);

    ClientRequest m_req;
    ClientResult m_result;
    std::unique_ptr<QSslSocket> m_socket;
    QTimer m_timer;
    Step m_step = Step::Connect;
    SmtpReplyReader m_replies;
    QStringList m_capabilities;
    bool m_tls = false;
    bool m_pipelining = false;
    int m_pendingRcptReplies = 0;
    int m_nextRcpt = 0;
    int m_accepted = 0;
    std::unique_ptr<QFile> m_body;
    bool m_atLineStart = true;
    bool m_lastWasCR = false;
    bool m_finished = false;
};

}  // namespace postern::outbound
