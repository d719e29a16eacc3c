// smtp_client.cpp — see smtp_client.h.
#include "smtp_client.h"

#include "dane.h"

#include "common/mail/dsn_params.h"

#include <QCryptographicHash>
#include <QFile>
#include <QSslCipher>
#include <QSslConfiguration>
#include <QSslKey>

namespace postern::outbound {

namespace {
constexpr qint64 kWriteHighWater = 256 * 1024;

}  // namespace

SmtpClient::SmtpClient(ClientRequest request, QObject* parent) : QObject(parent), m_req(std::move(request)) {
    m_timer.setSingleShot(true);
    connect(&m_timer, &QTimer::timeout, this, &SmtpClient::onTimeout);
    for (qsizetype i = 0; i < m_req.recipients.size(); ++i) m_result.recipients << Reply{};
}

SmtpClient::~SmtpClient() = default;

void SmtpClient::armTimer(qint64 ms) {
    m_timer.start(int(std::min<qint64>(ms, INT_MAX)));
}

void SmtpClient::start() {
    m_socket = std::make_unique<QSslSocket>();
    m_socket->setReadBufferSize(256 * 1024);
    QSslConfiguration tls = QSslConfiguration::defaultConfiguration();
    tls.setProtocol(QSsl::TlsV1_2OrLater);
    QList<QSslCertificate> cas = tls.caCertificates();
    cas << m_req.tls.extraCa;
    tls.setCaCertificates(cas);
    if (m_req.tls.mode == TlsPolicy::Mode::Verified) {
        tls.setPeerVerifyMode(QSslSocket::VerifyPeer);
    } else {
        tls.setPeerVerifyMode(
            QSslSocket::VerifyNone);  // opportunistic (RFC 7435) or DANE (checked after the handshake)
    }
    m_socket->setSslConfiguration(tls);
    m_socket->setPeerVerifyName(m_req.tls.verifyName.isEmpty() ? m_req.mxName : m_req.tls.verifyName);
    connect(m_socket.get(), &QSslSocket::connected, this, &SmtpClient::onConnected);
    connect(m_socket.get(), &QSslSocket::encrypted, this, &SmtpClient::onEncrypted);
    connect(m_socket.get(), &QSslSocket::readyRead, this, &SmtpClient::onReadyRead);
    connect(m_socket.get(), &QSslSocket::bytesWritten, this, [this] {
        if (m_step == Step::Body) pumpBody();
    });
    connect(m_socket.get(), &QSslSocket::encryptedBytesWritten, this, [this] {
        if (m_step == Step::Body) pumpBody();
    });
    connect(m_socket.get(), &QSslSocket::errorOccurred, this, [this] { onError(); });
    connect(m_socket.get(), &QSslSocket::sslErrors, this, [this](const QList<QSslError>& errors) {
        // Qt reports errors (a host name mismatch) even with VerifyNone, and then goes on with the
        // handshake. Only the Verified policy refuses here: opportunistic and encrypted-only TLS
        // take any certificate (RFC 7435; RFC 7672 2.2), DANE checks the chain itself in onEncrypted().
        if (m_req.tls.mode != TlsPolicy::Mode::Verified) return;
        QStringList e;
        for (const QSslError& err : errors) e << err.errorString();
        finish(QStringLiteral("TLS certificate of %1 did not verify (%2)")
                   .arg(m_req.mxName, e.join(QStringLiteral("; "))));
    });
    armTimer(m_req.connectTimeoutMs);
    if (m_req.implicitTls)
        m_socket->connectToHostEncrypted(m_req.address, m_req.port, m_req.mxName);
    else
        m_socket->connectToHost(m_req.address, m_req.port);
}

void SmtpClient::onConnected() {
    m_result.connected = true;
    if (m_req.implicitTls) return;  // wait for `encrypted`
    m_step = Step::Greeting;
    armTimer(m_req.commandTimeoutMs);
}

void SmtpClient::onEncrypted() {
    m_tls = true;
    m_result.tlsVersion =
        m_socket->sessionProtocol() == QSsl::TlsV1_3 ? QStringLiteral("TLSv1.3") : QStringLiteral("TLSv1.2");
    const QList<QSslError> errors = QSslCertificate::verify(m_socket->peerCertificateChain(), m_req.mxName);
    m_result.tlsVerified = errors.isEmpty();
    if (m_req.tls.mode == TlsPolicy::Mode::Dane) {
        QString why;
        if (!checkDane(&why)) {
            finish(QStringLiteral("DANE: the certificate of %1 %2").arg(m_req.mxName, why));
            return;
        }
    }
    if (m_req.implicitTls) {
        m_step = Step::Greeting;
        armTimer(m_req.commandTimeoutMs);
        return;
    }
    m_step = Step::Ehlo2;
    sendEhlo();
}

// RFC 7671/7672 through OpenSSL's DANE verifier (dane.h): DANE-EE matches the leaf;
// DANE-TA makes the matching certificate the only anchor the leaf must chain to,
// with the MX host name (the TLSA base domain) checked.
bool SmtpClient::checkDane(QString* why) {
    QList<QByteArray> chain;
    for (const QSslCertificate& c : m_socket->peerCertificateChain()) chain << c.toDer();
    const DaneVerdict v = verifyDane(chain, m_req.tls.tlsa, {m_req.mxName});
    switch (v.status) {
        case DaneVerdict::Status::Authenticated:
            m_result.tlsVerified = true;
            m_result.dane = QStringLiteral("DANE-%1:%2")
                                .arg(v.usage == 2 ? QStringLiteral("TA") : QStringLiteral("EE"))
                                .arg(v.depth);
            return true;
        case DaneVerdict::Status::NoUsableRecords:
            // RFC 7672 2.2: TLS stays mandatory, without authentication (the runner normally
            // never asks for DANE then; this covers records OpenSSL itself cannot use).
            m_result.dane = QStringLiteral("no usable TLSA record");
            return true;
        case DaneVerdict::Status::Failed:
            *why = v.reason;
            return false;
    }
    return false;
}

void SmtpClient::send(const QByteArray& line) {
    m_socket->write(line + "\r\n");
    armTimer(m_req.commandTimeoutMs);
}

void SmtpClient::sendEhlo() {
    m_capabilities.clear();
    send("EHLO " + m_req.helo.toUtf8());
}

void SmtpClient::onReadyRead() {
    // The reader bounds lines, lines per reply and buffered bytes (smtp_reply_reader.h).
    const QList<SmtpReply> replies = m_replies.feed(m_socket->readAll());
    for (const SmtpReply& reply : replies) {
        if (m_finished) return;
        Reply r;
        r.code = reply.code;
        r.text = reply.text();
        handleReply(r, reply.lines);
    }
    if (!m_finished && m_replies.failed()) finish(QStringLiteral("%1: %2").arg(m_req.mxName, m_replies.error()));
}

// The client's state machine: one step per command sent, its reply decides the next step.
// Steps with more than one outcome have a function of their own below.
void SmtpClient::handleReply(const Reply& r, const QStringList& lines) {
    switch (m_step) {
        case Step::Greeting:
            if (!r.ok()) return failTransaction(r);
            m_step = Step::Ehlo;
            sendEhlo();
            return;
        case Step::Ehlo:
        case Step::Ehlo2:
            return ehloReplied(r, lines);
        case Step::Helo:
            if (!r.ok()) return failTransaction(r);
            afterEhlo({});
            return;
        case Step::StartTls:
            return startTlsReplied(r);
        case Step::Auth:
            if (r.code != 235) return failTransaction(r);
            startTransaction();
            return;
        case Step::Mail:
            // RCPT replies pipelined behind a failed MAIL are 503s; the MAIL reply decides.
            if (!r.ok()) return failTransaction(r);
            m_step = Step::Rcpt;
            if (!m_pipelining) {
                m_nextRcpt = 0;
                send(rcptCommand(0));
            }
            return;
        case Step::Rcpt:
            return rcptReplied(r);
        case Step::Data:
            return dataReplied(r);
        case Step::Body:
            m_result.transaction = r;  // the final reply applies to every accepted recipient
            m_step = Step::Quit;
            send("QUIT");
            return;
        case Step::Quit:
            return finish();
        default:
            return;
    }
}

// A reply that ends the transaction for every recipient.
void SmtpClient::failTransaction(const Reply& r) {
    m_result.transaction = r;
    finish();
}

void SmtpClient::ehloReplied(const Reply& r, const QStringList& lines) {
    if (!r.ok()) {
        if (m_step == Step::Ehlo && (r.code == 500 || r.code == 502)) {  // an old server: HELO
            m_step = Step::Helo;
            send("HELO " + m_req.helo.toUtf8());
            return;
        }
        return failTransaction(r);
    }
    afterEhlo(lines);
}

void SmtpClient::startTlsReplied(const Reply& r) {
    if (r.code != 220) {
        if (m_req.tls.mode != TlsPolicy::Mode::Opportunistic)
            return finish(
                QStringLiteral("%1 refused STARTTLS (%2), which the policy requires").arg(m_req.mxName, r.text));
        startTransaction();  // opportunistic: carry on without TLS
        return;
    }
    m_step = Step::Connect;  // until `encrypted`
    armTimer(m_req.connectTimeoutMs);
    m_socket->startClientEncryption();
}

// One RCPT reply, in the order sent; after the last, DATA when any was accepted, else QUIT.
void SmtpClient::rcptReplied(const Reply& r) {
    m_result.recipients[m_nextRcpt] = r;
    if (r.ok()) ++m_accepted;
    ++m_nextRcpt;
    if (m_nextRcpt < m_req.recipients.size()) {
        if (!m_pipelining) send(rcptCommand(m_nextRcpt));
        return;
    }
    if (m_accepted == 0) {
        m_step = Step::Quit;
        send("QUIT");
        return;
    }
    m_step = Step::Data;
    send("DATA");
}

void SmtpClient::dataReplied(const Reply& r) {
    if (r.code != 354) return failTransaction(r);
    m_body = std::make_unique<QFile>(m_req.bodyPath);
    if (!m_body->open(QIODevice::ReadOnly)) return finish(QStringLiteral("cannot read the queued message"));
    m_step = Step::Body;
    pumpBody();
}

void SmtpClient::afterEhlo(const QStringList& lines) {
    for (qsizetype i = 1; i < lines.size(); ++i)
        m_capabilities << lines.at(i).section(QLatin1Char(' '), 0, 0).toUpper();
    m_pipelining = m_capabilities.contains(QStringLiteral("PIPELINING"));
    if (!m_tls && !m_req.implicitTls) {
        if (m_capabilities.contains(QStringLiteral("STARTTLS"))) {
            m_step = Step::StartTls;
            send("STARTTLS");
            return;
        }
        if (m_req.tls.mode != TlsPolicy::Mode::Opportunistic)
            return finish(QStringLiteral("%1 does not offer STARTTLS, which the policy requires (%2)")
                              .arg(m_req.mxName, m_req.tls.reason));
    }
    if (!m_req.authUser.isEmpty()) {
        if (!m_tls) return finish(QStringLiteral("refusing to send the smarthost password without TLS"));
        m_step = Step::Auth;
        QByteArray plain = QByteArray(1, '\0') + m_req.authUser.toUtf8() + '\0' + m_req.authPassword;
        send("AUTH PLAIN " + plain.toBase64());
        return;
    }
    startTransaction();
}

void SmtpClient::startTransaction() {
    if (m_req.smtpUtf8 && !m_capabilities.contains(QStringLiteral("SMTPUTF8"))) {
        m_result.transaction = Reply{
            553,
            QStringLiteral("553 5.6.7 the receiving server does not support SMTPUTF8 (internationalized addresses)")};
        return finish();
    }
    if (m_req.eightBit && !m_capabilities.contains(QStringLiteral("8BITMIME"))) {
        m_result.transaction =
            Reply{554, QStringLiteral("554 5.6.3 the receiving server does not accept 8-bit content (8BITMIME)")};
        return finish();
    }
    QByteArray mail = "MAIL FROM:<" + m_req.sender.toUtf8() + ">";
    QFile f(m_req.bodyPath);
    if (m_capabilities.contains(QStringLiteral("SIZE"))) mail += " SIZE=" + QByteArray::number(f.size());
    if (m_req.eightBit) mail += " BODY=8BITMIME";
    if (m_req.smtpUtf8) mail += " SMTPUTF8";
    if (m_capabilities.contains(QStringLiteral("DSN"))) {
        if (!m_req.ret.isEmpty()) mail += " RET=" + m_req.ret.toLatin1();
        if (!m_req.envid.isEmpty())
            mail += " ENVID=" + postern::mail::encodeXtext(m_req.envid.toUtf8());  // RFC 3461 4.4
    }
    m_step = Step::Mail;
    m_nextRcpt = 0;
    if (!m_pipelining) {
        send(mail);
        return;
    }
    // RFC 2920: MAIL and every RCPT in one write; replies are read in order.
    QByteArray batch = mail + "\r\n";
    for (int i = 0; i < m_req.recipients.size(); ++i) batch += rcptCommand(i) + "\r\n";
    m_socket->write(batch);
    armTimer(m_req.commandTimeoutMs);
}

QByteArray SmtpClient::rcptCommand(int i) const {
    QByteArray cmd = "RCPT TO:<" + m_req.recipients.at(i).toUtf8() + ">";
    if (m_capabilities.contains(QStringLiteral("DSN"))) {  // RFC 3461: pass the sender's requests on
        if (!m_req.notify.value(i).isEmpty()) cmd += " NOTIFY=" + m_req.notify.value(i).toLatin1();
        // RFC 3461 4.2 / RFC 6533 3: re-encoded from the stored value, so the peer
        // always gets valid xtext (also for envelopes written before values were encoded).
        if (const auto o = mail::storedOrcpt(m_req.orcpt.value(i)); o && !m_req.orcpt.value(i).isEmpty())
            cmd += " ORCPT=" + mail::formatOrcpt(*o);
    }
    return cmd;
}

void SmtpClient::pumpBody() {
    if (!m_body) return;
    armTimer(m_req.commandTimeoutMs);
    while (m_socket->bytesToWrite() + m_socket->encryptedBytesToWrite() < kWriteHighWater) {
        const QByteArray chunk = m_body->read(64 * 1024);
        if (chunk.isEmpty()) {
            // End of data: make sure the last line ends, then the terminating dot.
            QByteArray tail;
            if (!m_atLineStart) tail += "\r\n";
            tail += ".\r\n";
            m_socket->write(tail);
            m_body.reset();
            m_step = Step::Body;  // the next reply is the DATA result
            return;
        }
        QByteArray out;
        out.reserve(chunk.size() + 64);
        for (char c : chunk) {
            if (m_atLineStart && c == '.') out += '.';  // dot-stuffing (RFC 5321 4.5.2)
            if (c == '\n' && !m_lastWasCR) out += '\r';
            out += c;
            m_lastWasCR = c == '\r';
            m_atLineStart = c == '\n';
        }
        m_socket->write(out);
    }
}

void SmtpClient::onTimeout() {
    finish(QStringLiteral("timeout talking to %1").arg(m_req.mxName));
}

void SmtpClient::onError() {
    if (m_finished) return;
    if (m_step == Step::Quit) return finish();  // the server closed after QUIT
    finish(QStringLiteral("%1: %2").arg(m_req.mxName, m_socket->errorString()));
}

void SmtpClient::finish(const QString& error) {
    if (m_finished) return;
    m_finished = true;
    m_timer.stop();
    if (!error.isEmpty()) m_result.error = error;
    if (m_socket) {
        m_socket->disconnect(this);
        m_socket->abort();
    }
    QMetaObject::invokeMethod(
        this, [this] { Q_EMIT finished(m_result); }, Qt::QueuedConnection);
}

}  // namespace postern::outbound
