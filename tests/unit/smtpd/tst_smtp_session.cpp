// tst_smtp_session.cpp — the SMTP session state machine without sockets:
// a recording SessionIo and an in-memory backend. Input is fed one byte at a
// time (and in one piece) to prove the session handles any split. Covers the
// listener-mode policies, relay refusal, STARTTLS resets, pipelining order,
// AUTH, DATA/BDAT, limits, errors-before-disconnect and shutdown.
#include "recording_io.h"
#include "smtpd/smtp_session.h"

#include "core/disk_space.h"

#include <QCoreApplication>
#include <QtTest>

#include <cerrno>

using namespace postern;
using namespace postern::smtp;
using postern::test::RecordingIo;

namespace {

class MemoryBody : public SpoolBody {
public:
    QByteArray data;
    int failWith = 0;       // errno of a failing write (0: writes succeed)
    int failFromWrite = 0;  // the first write that fails (0: the Received header)
    int writes = 0;
    bool write(const char* d, qsizetype n) override {
        if (failWith && writes++ >= failFromWrite) return false;
        data.append(d, n);
        return true;
    }
    int errorCode() const override { return failWith; }
    QString queueId() const override { return QStringLiteral("0123456789ABCDEF"); }
    QString path() const override { return {}; }
    int fd() const override { return -1; }
    qint64 size() const override { return data.size(); }
};

class FakeBackend : public SmtpBackend {
public:
    QStringList localUsers{QStringLiteral("alice@example.org"), QStringLiteral("bob@example.org")};
    QList<MessageJob> delivered;
    std::shared_ptr<MemoryBody> lastBody;
    DeliveryOutcome outcome{DeliveryOutcome::Status::Delivered, 250, QStringLiteral("2.0.0"), {}, {}};
    RcptVerdict checkRecipient(const MailPath& p, bool authenticated, qint64, RecipientInfo* out, QString*) override {
        const QString dom = p.domain.toLower();
        if (dom == u"example.org") {
            if (p.quotedLocal) return RcptVerdict::Unknown;
            const QString a = p.local.toLower() + QStringLiteral("@example.org");
            if (!localUsers.contains(a)) return RcptVerdict::Unknown;
            out->address = a;
            out->mailboxes = {a};
            return RcptVerdict::Ok;
        }
        if (!authenticated) return RcptVerdict::RelayDenied;
        out->address = p.address();
        out->forwards = {p.address()};
        return RcptVerdict::Ok;
    }
    bool maySendAs(const QString& user, const MailPath& from) override { return from.address().toLower() == user; }
    bool vrfyAllowed() const override { return false; }
    qint64 freeSpace = -1;  // -1: plenty; otherwise the admission rule of core/disk_space.h with minFree 1000
    bool storageAvailable(qint64 declaredSize, QString* detail) override {
        if (freeSpace < 0 || enoughStorage(quint64(freeSpace), 1000, declaredSize)) return true;
        *detail = QStringLiteral("test disk full");
        return false;
    }
    void authenticate(const AuthRequest& request, QByteArray password, AuthDone done) override {
        if (password == "busy") return done(AuthVerdict::TempFail, request.login);
        done(request.login == u"alice@example.org" && password == "secret" ? AuthVerdict::Ok : AuthVerdict::Failed,
             request.login);
    }
    int spoolFailWith = 0, spoolFailFromWrite = 0;
    std::shared_ptr<SpoolBody> openBody(QString*) override {
        lastBody = std::make_shared<MemoryBody>();
        lastBody->failWith = spoolFailWith;
        lastBody->failFromWrite = spoolFailFromWrite;
        return lastBody;
    }
    void deliver(QObject*, MessageJob job, std::function<void(DeliveryOutcome)> done) override {
        delivered << job;
        done(outcome);
    }
};

struct Harness {
    RecordingIo io;
    FakeBackend backend;
    SessionConfig config;
    std::unique_ptr<SmtpSession> session;
    QByteArray buffer;
    explicit Harness(ListenerMode mode, bool tls = false, SessionConfig c = {}) : config(c) {
        io.connInfo.mode = mode;
        io.connInfo.tls = tls;
        io.connInfo.tlsProtocol = QStringLiteral("TLSv1.3");
        io.connInfo.tlsCipher = QStringLiteral("TLS_AES_256_GCM_SHA384");
        io.connInfo.peerAddress = QHostAddress(QStringLiteral("192.0.2.7"));
        config.hostname = QStringLiteral("mx.example.org");
        session = std::make_unique<SmtpSession>(io, backend, config);
        session->start();
    }
    // Sends client bytes (one at a time by default) and returns the server's reply codes, in order.
    QList<int> send(const QByteArray& bytes, int chunk = 1) {
        postern::test::feed(*session, buffer, bytes, chunk);
        QList<int> codes;
        for (const QByteArray& line : io.take().split('\n')) {
            if (line.size() >= 4 && line.at(3) == ' ') codes << line.left(3).toInt();
        }
        return codes;
    }
    void becomeTls() {
        io.connInfo.tls = true;
        io.startTlsRequested = false;
        session->tlsStarted();
    }
};

}  // namespace

class TstSmtpSession : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void mxDeliversLocally() {
        Harness h(ListenerMode::Mx);
        QVERIFY(h.io.take().startsWith("220 mx.example.org ESMTP"));
        QCOMPARE(h.send("EHLO client.test\r\n"), QList<int>{250});
        QCOMPARE(h.send("MAIL FROM:<someone@remote.test>\r\nRCPT TO:<Alice@example.org>\r\nDATA\r\n"),
                 (QList<int>{250, 250, 354}));
        QCOMPARE(h.send("Subject: hi\r\n\r\nhello\r\n..dot\r\n.\r\n"), QList<int>{250});
        QCOMPARE(h.backend.delivered.size(), 1);
        const MessageJob& job = h.backend.delivered.first();
        QCOMPARE(job.sender, QStringLiteral("someone@remote.test"));
        QCOMPARE(job.recipients.first().mailboxes, QStringList{QStringLiteral("alice@example.org")});
        const QByteArray body = h.backend.lastBody->data;
        QVERIFY(
            body.startsWith("Received: from client.test ([192.0.2.7])\r\n\tby mx.example.org (Postern) with ESMTP id "
                            "0123456789ABCDEF"));
        QVERIFY(body.endsWith("Subject: hi\r\n\r\nhello\r\n.dot\r\n"));
    }

    void mxRefusesRelay_data() {
        QTest::addColumn<QByteArray>("rcpt");
        QTest::addColumn<int>("code");
        QTest::newRow("remote domain") << QByteArray("RCPT TO:<victim@elsewhere.test>") << 554;
        QTest::newRow("percent hack") << QByteArray("RCPT TO:<victim%elsewhere.test@example.org>") << 550;
        QTest::newRow("quoted") << QByteArray("RCPT TO:<\"victim@elsewhere.test\"@example.org>") << 550;
        QTest::newRow("source route") << QByteArray("RCPT TO:<@example.org:victim@elsewhere.test>") << 554;
        QTest::newRow("bang path") << QByteArray("RCPT TO:<elsewhere.test!victim@example.org>") << 550;
        QTest::newRow("unknown local") << QByteArray("RCPT TO:<nobody@example.org>") << 550;
    }
    void mxRefusesRelay() {
        QFETCH(QByteArray, rcpt);
        QFETCH(int, code);
        Harness h(ListenerMode::Mx);
        h.send("EHLO x\r\nMAIL FROM:<a@remote.test>\r\n");
        QCOMPARE(h.send(rcpt + "\r\n"), QList<int>{code});
        QCOMPARE(h.send("DATA\r\n"), QList<int>{554});  // no valid recipients
    }

    void mxOffersStartTlsNotAuth() {
        Harness h(ListenerMode::Mx);
        h.io.take();
        h.send("EHLO x\r\n");
        // The EHLO reply went out in send(); check it by asking again.
        h.session->consume("EHLO x\r\n", 8);
        const QByteArray ehlo = h.io.take();
        QVERIFY(ehlo.contains("250-STARTTLS"));
        QVERIFY(!ehlo.contains("AUTH"));
        QVERIFY(ehlo.contains("250-PIPELINING") && ehlo.contains("250-CHUNKING") && ehlo.contains("250-SMTPUTF8"));
        QCOMPARE(h.send("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==\r\n"), QList<int>{502});
    }

    void submissionRequiresTlsThenAuth() {
        Harness h(ListenerMode::Submission);
        h.io.take();
        QCOMPARE(h.send("EHLO x\r\n"), QList<int>{250});
        QCOMPARE(h.send("MAIL FROM:<alice@example.org>\r\n"), QList<int>{530});
        QCOMPARE(h.send("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==\r\n"), QList<int>{530});
        QCOMPARE(h.send("STARTTLS\r\n"), QList<int>{220});
        QVERIFY(h.io.startTlsRequested);
        h.becomeTls();
        QCOMPARE(h.send("MAIL FROM:<alice@example.org>\r\n"), QList<int>{503});  // EHLO again first
        h.send("EHLO x\r\n");
        QCOMPARE(h.send("MAIL FROM:<alice@example.org>\r\n"), QList<int>{530});  // AUTH first
        QCOMPARE(h.send("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHdyb25n\r\n"), QList<int>{535});
        QCOMPARE(h.send("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==\r\n"), QList<int>{235});
        QCOMPARE(h.send("MAIL FROM:<bob@example.org>\r\n"), QList<int>{553});  // not hers
        QCOMPARE(h.send("MAIL FROM:<>\r\n"), QList<int>{553});
        QCOMPARE(h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<friend@elsewhere.test>\r\n"),
                 (QList<int>{250, 250}));
        QCOMPARE(h.send("DATA\r\nhi\r\n.\r\n"), (QList<int>{354, 250}));
        QCOMPARE(h.backend.delivered.first().authUser, QStringLiteral("alice@example.org"));
        QVERIFY(h.backend.lastBody->data.contains("with ESMTPSA id"));
        QVERIFY(h.backend.lastBody->data.contains("(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384"));
        QVERIFY(h.backend.lastBody->data.contains("(authenticated sender: alice@example.org)"));
    }

    void authLoginTwoStep() {
        Harness h(ListenerMode::Submissions, true);
        h.io.take();
        h.send("EHLO x\r\n");
        QCOMPARE(h.send("AUTH LOGIN\r\n"), QList<int>{334});
        QCOMPARE(h.send(QByteArray("alice@example.org").toBase64() + "\r\n"), QList<int>{334});
        QCOMPARE(h.send(QByteArray("secret").toBase64() + "\r\n"), QList<int>{235});
        QVERIFY(h.session->authenticated());
        QCOMPARE(h.send("AUTH LOGIN\r\n"), QList<int>{503});  // already authenticated
    }

    // The authenticator refused without checking (too many attempts in flight): RFC 4954 6 454.
    void authTemporaryFailure() {
        Harness h(ListenerMode::Submissions, true);
        h.io.take();
        h.send("EHLO x\r\n");
        QCOMPARE(h.send("AUTH PLAIN " + QByteArray("\0alice@example.org\0busy", 23).toBase64() + "\r\n"),
                 QList<int>{454});
        QVERIFY(!h.session->authenticated());
        QCOMPARE(h.send("AUTH PLAIN " + QByteArray("\0alice@example.org\0secret", 25).toBase64() + "\r\n"),
                 QList<int>{235});
    }

    void startTlsForgetsEverything() {
        Harness h(ListenerMode::Mx);
        h.io.take();
        h.send("EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\n");
        QCOMPARE(h.send("STARTTLS\r\n"), QList<int>{220});
        h.becomeTls();
        QCOMPARE(h.send("RCPT TO:<alice@example.org>\r\n"), QList<int>{503});  // the transaction is gone
        QCOMPARE(h.send("STARTTLS\r\n"), QList<int>{503});                     // and TLS is on already
    }

    void pipeliningKeepsOrder() {
        Harness h(ListenerMode::Mx);
        h.io.take();
        const QByteArray batch =
            "EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\n"
            "RCPT TO:<bob@example.org>\r\nDATA\r\n";
        QCOMPARE(h.send(batch, batch.size()), (QList<int>{250, 250, 250, 550, 250, 354}));
        QCOMPARE(h.send("x\r\n.\r\nQUIT\r\n", 100), (QList<int>{250, 221}));
        QCOMPARE(h.backend.delivered.first().recipients.size(), 2);
        QVERIFY(h.io.closed);
    }

    void bdat() {
        Harness h(ListenerMode::Mx);
        h.io.take();
        h.send("EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\n");
        QCOMPARE(h.send("BDAT 5\r\nab\r\nc"), QList<int>{250});
        QCOMPARE(h.send("BDAT 3 LAST\r\nd\r\n"), QList<int>{250});
        QVERIFY(h.backend.lastBody->data.endsWith("ab\r\ncd\r\n"));
        QCOMPARE(h.backend.delivered.size(), 1);
        QCOMPARE(h.send("BDAT x\r\n"), QList<int>{501});
        QVERIFY(h.io.closed);  // after a bad BDAT size we cannot know where commands resume
    }

    void bareLfCommandRefused() {
        Harness h(ListenerMode::Mx);
        h.io.take();
        QCOMPARE(h.send("EHLO x\nMAIL FROM:<a@remote.test>\r\n"), QList<int>{500});
    }

    void limits() {
        SessionConfig c;
        c.maxRecipients = 2;
        c.maxCommandLine = 64;
        c.maxMessageSize = 1000;
        Harness h(ListenerMode::Mx, false, c);
        h.io.take();
        h.send("EHLO x\r\nMAIL FROM:<a@remote.test>\r\n");
        QCOMPARE(h.send("RCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<alice@example.org>\r\n"),
                 (QList<int>{250, 250, 452}));
        QCOMPARE(h.send("NOOP " + QByteArray(57, 'x') + "\r\n"), QList<int>{250});  // 64 octets incl. CRLF
        QCOMPARE(h.send("NOOP " + QByteArray(58, 'x') + "\r\n"), QList<int>{500});  // 65
        QCOMPARE(h.send("RSET\r\nMAIL FROM:<a@remote.test> SIZE=1001\r\n"), (QList<int>{250, 552}));
        QCOMPARE(h.send("MAIL FROM:<a@remote.test> SIZE=1000\r\n"), QList<int>{250});
    }

    // RFC 5321 4.5.3.1.8: recipients over the limit get 452 and the transaction goes on with the
    // accepted ones; the 452s are not errors (the default smtp.max_errors is 20).
    void recipientsOverTheLimitKeepTheTransaction() {
        Harness h(ListenerMode::Mx);
        h.io.take();
        QByteArray rcpts;
        for (int i = 0; i < 120; ++i) rcpts += "RCPT TO:<alice@example.org>\r\n";
        QCOMPARE(h.send("EHLO x\r\nMAIL FROM:<a@remote.test>\r\n" + rcpts + "DATA\r\n", 4096),
                 QList<int>{250} + QList<int>{250} + QList<int>(100, 250) + QList<int>(20, 452) + QList<int>{354});
        QVERIFY(!h.io.closed);
        QCOMPARE(h.send("Subject: many\r\n\r\nhi\r\n.\r\n"), QList<int>{250});
        QCOMPARE(h.backend.delivered.size(), 1);
        QCOMPARE(h.backend.delivered.first().recipients.size(), 100);
        // A new transaction starts counting again.
        QCOMPARE(h.send("MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.org>\r\n"), (QList<int>{250, 250}));
    }

    // The work per transaction stays bounded: maxRecipients + kExtraRcptCommands RCPT commands are
    // answered, the next one gets 421 and the connection is closed.
    void rcptCommandCap() {
        SessionConfig c;
        c.maxRecipients = 2;
        Harness h(ListenerMode::Mx, false, c);
        h.io.take();
        h.send("EHLO x\r\nMAIL FROM:<a@remote.test>\r\n");
        QByteArray rcpts;
        const int cap = c.maxRecipients + SmtpSession::kExtraRcptCommands;
        for (int i = 0; i < cap; ++i) rcpts += "RCPT TO:<alice@example.org>\r\n";
        const QList<int> codes = h.send(rcpts, 1 << 20);
        QCOMPARE(codes.size(), cap);
        QCOMPARE(codes.count(250), 2);
        QCOMPARE(codes.count(452), cap - 2);
        QVERIFY(!h.io.closed);  // the limit itself passes
        QCOMPARE(h.send("RCPT TO:<alice@example.org>\r\n"), QList<int>{421});
        QVERIFY(h.io.closed);
        QCOMPARE(h.io.closeReason, QStringLiteral("too many RCPT commands"));
    }

    // RFC 5321 4.5.3.1.4: 512 octets incl. CRLF for EHLO/HELO (and all but MAIL/RCPT/AUTH), byte
    // exact, fed one byte at a time, although the reader takes up to smtp.max_command_line.
    void commandLineLimit_data() {
        QTest::addColumn<QByteArray>("line");
        QTest::addColumn<int>("code");
        QTest::newRow("EHLO 512") << "EHLO " + QByteArray(505, 'a') + "\r\n" << 250;
        QTest::newRow("EHLO 513") << "EHLO " + QByteArray(506, 'a') + "\r\n" << 500;
        QTest::newRow("HELO 512") << "HELO " + QByteArray(505, 'a') + "\r\n" << 250;
        QTest::newRow("HELO 513") << "HELO " + QByteArray(506, 'a') + "\r\n" << 500;
        QTest::newRow("NOOP 513") << "NOOP " + QByteArray(506, 'a') + "\r\n" << 500;
        QTest::newRow("EHLO 2048") << "EHLO " + QByteArray(2041, 'a') + "\r\n" << 500;
    }
    void commandLineLimit() {
        QFETCH(QByteArray, line);
        QFETCH(int, code);
        QCOMPARE(line.size(), code == 250 ? 512 : line.size());
        Harness h(ListenerMode::Mx);  // smtp.max_command_line: 2048
        h.io.take();
        QCOMPARE(h.send(line), QList<int>{code});
        QVERIFY(!h.io.closed);
        QCOMPARE(h.send("NOOP\r\n"), QList<int>{250});  // the session goes on
    }
    void mailAndRcptMayBeLonger() {
        Harness h(ListenerMode::Mx);
        h.io.take();
        h.send("EHLO x\r\nMAIL FROM:<a@remote.test>\r\n");
        const QByteArray rcpt =
            "RCPT TO:<alice@example.org> NOTIFY=SUCCESS ORCPT=rfc822;" + QByteArray(480, 'b') + "\r\n";
        QVERIFY(rcpt.size() > 512);
        QCOMPARE(h.send(rcpt), QList<int>{250});
    }

    // Pre-greet check: on MX the greeting is "220-" first, the final line after the wait; a
    // client that talks before it gets 554 5.5.1 and the connection is closed.
    void pregreet_data() {
        QTest::addColumn<int>("mode");
        QTest::addColumn<qint64>("delay");
        QTest::addColumn<qint64>("expected");
        QTest::newRow("mx") << int(ListenerMode::Mx) << qint64(700) << qint64(700);
        QTest::newRow("mx, off") << int(ListenerMode::Mx) << qint64(0) << qint64(0);
        QTest::newRow("submission") << int(ListenerMode::Submission) << qint64(700) << qint64(0);
        QTest::newRow("submissions") << int(ListenerMode::Submissions) << qint64(700) << qint64(0);
    }
    void pregreet() {
        QFETCH(int, mode);
        QFETCH(qint64, delay);
        QFETCH(qint64, expected);
        RecordingIo io;
        io.connInfo.mode = ListenerMode(mode);
        FakeBackend backend;
        SessionConfig c;
        c.hostname = QStringLiteral("mx.example.org");
        c.greetDelayMs = delay;
        SmtpSession polite(io, backend, c);
        QCOMPARE(polite.beginPregreet(), expected);
        QCOMPARE(io.take(), expected ? QByteArray("220-mx.example.org ESMTP Postern\r\n") : QByteArray());
        polite.start();
        QCOMPARE(io.take(), QByteArray("220 mx.example.org ESMTP Postern\r\n"));
        if (!expected) return;
        RecordingIo io2;
        io2.connInfo.mode = ListenerMode(mode);
        SmtpSession rude(io2, backend, c);
        QCOMPARE(rude.beginPregreet(), expected);
        io2.take();
        rude.spokeTooSoon();
        QVERIFY(io2.take().startsWith("554 5.5.1 "));
        QVERIFY(io2.closed);
    }

    void tooManyErrorsCloses() {
        SessionConfig c;
        c.maxErrors = 3;
        Harness h(ListenerMode::Mx, false, c);
        h.io.take();
        QCOMPARE(h.send("FOO\r\nBAR\r\n"), (QList<int>{500, 500}));
        QCOMPARE(h.send("BAZ\r\n"), (QList<int>{500, 421}));
        QVERIFY(h.io.closed);
    }

    void smtputf8Required() {
        Harness h(ListenerMode::Mx);
        h.io.take();
        h.send("EHLO x\r\n");
        QCOMPARE(h.send("MAIL FROM:<jörg@remote.test>\r\n"), QList<int>{553});
        QCOMPARE(h.send("MAIL FROM:<jörg@remote.test> SMTPUTF8\r\n"), QList<int>{250});
    }

    void vrfyAndHelp() {
        Harness h(ListenerMode::Mx);
        h.io.take();
        QCOMPARE(h.send("VRFY alice\r\n"), QList<int>{252});
        QCOMPARE(h.send("HELP\r\n"), QList<int>{214});
        QCOMPARE(h.send("NOOP\r\n"), QList<int>{250});
    }

    void deliveryFailureIsTemporary() {
        Harness h(ListenerMode::Mx);
        h.io.take();
        h.backend.outcome = DeliveryOutcome{DeliveryOutcome::Status::TempFail,
                                            452,
                                            QStringLiteral("4.3.1"),
                                            QStringLiteral("Insufficient system storage"),
                                            {}};
        h.send("EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
        QCOMPARE(h.send("x\r\n.\r\n"), QList<int>{452});
        QCOMPARE(h.send("MAIL FROM:<a@remote.test>\r\n"), QList<int>{250});  // the transaction was reset
    }

    void shutdownSays421() {
        Harness h(ListenerMode::Mx);
        h.io.take();
        h.session->shutdown();
        QVERIFY(h.io.take().startsWith("421 4.3.2"));
        QVERIFY(h.io.closed);
    }

    // RFC 5321 4.2.2 / RFC 3463 X.3.1: while the disk is nearly full, MAIL FROM is refused
    // with 452 4.3.1 and no transaction starts; RFC 1870 6.1: also a SIZE= that would not fit
    // above the floor (the fake's floor is 1000 bytes). Space freed: accepted again.
    void storageLowAtMailFrom_data() {
        QTest::addColumn<qint64>("freeSpace");
        QTest::addColumn<QByteArray>("params");
        QTest::addColumn<int>("code");
        QTest::newRow("plenty") << qint64(-1) << QByteArray() << 250;
        QTest::newRow("free = floor") << qint64(1000) << QByteArray() << 250;
        QTest::newRow("free = floor - 1") << qint64(999) << QByteArray() << 452;
        QTest::newRow("nothing free") << qint64(0) << QByteArray() << 452;
        QTest::newRow("SIZE fits exactly") << qint64(1500) << QByteArray(" SIZE=500") << 250;
        QTest::newRow("SIZE one byte over") << qint64(1500) << QByteArray(" SIZE=501") << 452;
        QTest::newRow("SIZE=0") << qint64(1000) << QByteArray(" SIZE=0") << 250;
    }
    void storageLowAtMailFrom() {
        QFETCH(qint64, freeSpace);
        QFETCH(QByteArray, params);
        QFETCH(int, code);
        Harness h(ListenerMode::Mx);
        h.send("EHLO client.test\r\n");
        h.io.take();
        h.backend.freeSpace = freeSpace;
        postern::test::feed(*h.session, h.buffer, "MAIL FROM:<someone@remote.test>" + params + "\r\n", 1);
        const QByteArray out = h.io.take();
        if (code == 250) {
            QCOMPARE(out, QByteArray("250 2.1.0 Sender OK\r\n"));
            return;
        }
        QCOMPARE(out, QByteArray("452 4.3.1 Insufficient system storage\r\n"));
        // No transaction was opened.
        QCOMPARE(h.send("RCPT TO:<alice@example.org>\r\n"), QList<int>{503});
        // Space is back: the same command is accepted and the message delivered.
        h.backend.freeSpace = -1;
        QCOMPARE(h.send("MAIL FROM:<someone@remote.test>" + params + "\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n"),
                 (QList<int>{250, 250, 354}));
        QCOMPARE(h.send("Subject: x\r\n\r\nbody\r\n.\r\n"), QList<int>{250});
        QCOMPARE(h.backend.delivered.size(), 1);
    }

    // A failed write to the spool file (at our Received header, or in the content) is
    // answered with the one store-failure mapping, the spool being the server's storage.
    void spoolWriteFailure_data() {
        QTest::addColumn<int>("err");
        QTest::addColumn<int>("failFromWrite");
        QTest::addColumn<QByteArray>("reply");
        for (int at : {0, 1}) {
            const QByteArray where = at == 0 ? " at Received" : " in content";
            QTest::newRow("ENOSPC" + where) << ENOSPC << at << QByteArray("452 4.3.1 Insufficient system storage\r\n");
            QTest::newRow("EDQUOT" + where) << EDQUOT << at << QByteArray("452 4.3.1 Insufficient system storage\r\n");
            QTest::newRow("EIO" + where) << EIO << at
                                         << QByteArray("451 4.3.0 Local error in processing, try again later\r\n");
        }
    }
    void spoolWriteFailure() {
        QFETCH(int, err);
        QFETCH(int, failFromWrite);
        QFETCH(QByteArray, reply);
        Harness h(ListenerMode::Mx);
        h.backend.spoolFailWith = err;
        h.backend.spoolFailFromWrite = failFromWrite;
        h.send("EHLO client.test\r\nMAIL FROM:<someone@remote.test>\r\nRCPT TO:<alice@example.org>\r\n");
        postern::test::feed(*h.session, h.buffer, "DATA\r\n", 1);
        QByteArray out = h.io.take();
        if (failFromWrite == 0) {
            QCOMPARE(out, reply);  // DATA refused before the 354
            return;
        }
        QVERIFY(out.startsWith("354 "));
        postern::test::feed(*h.session, h.buffer, "Subject: x\r\n\r\nbody\r\n.\r\n", 1);
        QCOMPARE(h.io.take(), reply);
        QVERIFY(h.backend.delivered.isEmpty());
    }
};

QTEST_GUILESS_MAIN(TstSmtpSession)
#include "tst_smtp_session.moc"
