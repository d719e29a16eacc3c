// tst_connection.cpp — the connection layer over real loopback sockets, with a
// tiny line-echo protocol session: greeting, pipelined lines, STARTTLS with
// plaintext injection (the injected bytes must never reach the session),
// implicit TLS, idle timeout, the session's deadline (not extended by
// activity), per-address connection limits, input limit, the process input
// budget (reading pauses instead of buffering more), graceful shutdown, the
// pre-greet wait (input before the greeting never reaches the session), a
// hang-up seen while the session is suspended, sessions of a client closed once its
// address is blocked (others untouched).
#include "common/daemon_server.h"
#include "core/block_list.h"

#include "core/tls.h"

#include <QSignalSpy>
#include <QSslSocket>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QtTest>

#include <sys/socket.h>

using namespace postern;

namespace {
// "ECHO x" -> "x", "STARTTLS" -> "OK tls" + startTls, "QUIT" -> close. Lines end in CRLF.
class EchoSession : public ProtocolSession {
public:
    EchoSession(SessionIo& io, QStringList* seen, qint64 pregreetMs = 0)
        : m_io(io), m_seen(seen), m_pregreetMs(pregreetMs) {}
    void start() override { m_io.send(m_io.info().tls ? "HELLO tls\r\n" : "HELLO\r\n"); }
    qint64 beginPregreet() override {
        if (m_pregreetMs > 0) m_io.send("WAIT\r\n");
        return m_pregreetMs;
    }
    void spokeTooSoon() override {
        m_seen->append(QStringLiteral("<too soon>"));
        m_io.send("TOO SOON\r\n");
        m_io.close(QStringLiteral("pregreet"));
    }
    qsizetype consume(const char* data, qsizetype size) override {
        const QByteArray view = QByteArray::fromRawData(data, size);
        const qsizetype nl = view.indexOf("\r\n");
        if (nl < 0) return 0;
        const QByteArray line(data, nl);
        m_seen->append(QString::fromLatin1(line));
        if (line == "STARTTLS") {
            m_io.send("OK tls\r\n");
            m_io.startTls();
        } else if (line == "HOLD") {  // like a session waiting for a password check
            m_io.suspend();
        } else if (line == "QUIT") {
            m_io.send("BYE\r\n");
            m_io.close(QStringLiteral("quit"));
        } else if (line.startsWith("ECHO ")) {
            m_io.send(line.mid(5) + "\r\n");
        } else {
            m_io.send("ERR\r\n");
        }
        return nl + 2;
    }
    void tlsStarted() override { m_io.send("TLS " + m_io.info().tlsProtocol.toLatin1() + "\r\n"); }
    void timedOut() override {
        m_io.send("TIMEOUT\r\n");
        m_io.close(QStringLiteral("idle"));
    }
    void deadlinePassed() override {
        m_io.send("DEADLINE\r\n");
        m_io.close(QStringLiteral("deadline"));
    }
    void shutdown() override {
        m_io.send("SHUTDOWN\r\n");
        m_io.close(QStringLiteral("shutdown"));
    }

private:
    SessionIo& m_io;
    QStringList* m_seen;
    qint64 m_pregreetMs;
};

// Client and server share this thread: wait by running the event loop, never by blocking.
template <typename F>
bool spin(F cond, int timeoutMs = 10000) {
    QElapsedTimer t;
    t.start();
    while (!cond()) {
        if (t.elapsed() > timeoutMs) return false;
        QTest::qWait(5);
    }
    return true;
}
QByteArray readLine(QAbstractSocket& s, int timeoutMs = 5000) {
    spin([&] { return s.canReadLine() || s.state() == QAbstractSocket::UnconnectedState; }, timeoutMs);
    return s.readLine().trimmed();
}
bool connected(QAbstractSocket& s) {
    return spin([&] { return s.state() == QAbstractSocket::ConnectedState; });
}
bool disconnected(QAbstractSocket& s, int timeoutMs = 10000) {
    return spin([&] { return s.state() == QAbstractSocket::UnconnectedState; }, timeoutMs);
}
bool encrypted(QSslSocket& s, int timeoutMs = 10000) {
    return spin([&] { return s.isEncrypted() || s.state() == QAbstractSocket::UnconnectedState; }, timeoutMs) &&
           s.isEncrypted();
}
}  // namespace

class TstConnection : public QObject {
    Q_OBJECT
private:
    QTemporaryDir m_dir;
    std::unique_ptr<Config> m_config;
    QStringList m_seen;
    qint64 m_pregreetMs = 0;
    std::unique_ptr<DaemonServer> m_server;

    quint16 port(const char* name) {
        return quint16(m_server->listenerAddresses()
                           .value(QString::fromLatin1(name))
                           .first()
                           .section(QLatin1Char(':'), -1)
                           .toUInt());
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(generateSelfSigned(m_dir.filePath(QStringLiteral("tls/cert.pem")),
                                   m_dir.filePath(QStringLiteral("tls/key.pem")), {QStringLiteral("localhost")})
                    .ok());
        // postern-smtpd's listeners (core/services.h), submission switched off.
        auto c = Config::parse("smtp.listen = 127.0.0.1:0\nsubmission.listen =\nsubmissions.listen = 127.0.0.1:0\n",
                               QStringLiteral("t"), m_dir.path());
        QVERIFY(c.ok());
        m_config = std::make_unique<Config>(*c);
    }
    void init() {
        m_seen.clear();
        m_server = std::make_unique<DaemonServer>(
            *m_config, QStringLiteral("postern-smtpd"),
            [this](SessionIo& io, ListenerMode) { return std::make_unique<EchoSession>(io, &m_seen, m_pregreetMs); });
        m_server->setLimits(100, 3, [](ListenerMode) { return QByteArray("BUSY\r\n"); });
        QVERIFY(m_server->start().ok());
    }
    void cleanup() {
        m_server.reset();
        m_pregreetMs = 0;
    }

    void greetingAndPipelining() {
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QVERIFY(connected(s));
        QCOMPARE(readLine(s), QByteArray("HELLO"));
        s.write("ECHO one\r\nECHO two\r\nECHO three\r\n");  // one write, three commands
        QCOMPARE(readLine(s), QByteArray("one"));
        QCOMPARE(readLine(s), QByteArray("two"));
        QCOMPARE(readLine(s), QByteArray("three"));
        s.write("QUIT\r\n");
        QCOMPARE(readLine(s), QByteArray("BYE"));
        QVERIFY(disconnected(s, 5000));
    }

    void startTlsDiscardsPipelinedPlaintext() {
        QSslSocket s;
        s.setPeerVerifyMode(QSslSocket::VerifyNone);
        s.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QVERIFY(connected(s));
        QCOMPARE(readLine(s), QByteArray("HELLO"));
        // The classic injection: a command smuggled in the same packet as STARTTLS.
        s.write("STARTTLS\r\nECHO injected\r\n");
        QCOMPARE(readLine(s), QByteArray("OK tls"));
        s.startClientEncryption();
        QVERIFY2(encrypted(s), qPrintable(s.errorString()));
        QCOMPARE(readLine(s).left(7), QByteArray("TLS TLS"));
        s.write("ECHO secure\r\n");
        QCOMPARE(readLine(s), QByteArray("secure"));
        QVERIFY(!m_seen.contains(QStringLiteral("ECHO injected")));
        QCOMPARE(m_seen, (QStringList{QStringLiteral("STARTTLS"), QStringLiteral("ECHO secure")}));
        QCOMPARE(s.sessionProtocol() == QSsl::TlsV1_3 || s.sessionProtocol() == QSsl::TlsV1_2, true);
    }

    void implicitTls() {
        QSslSocket s;
        s.setPeerVerifyMode(QSslSocket::VerifyNone);
        s.connectToHostEncrypted(QStringLiteral("127.0.0.1"), port("submissions"));
        QVERIFY2(encrypted(s), qPrintable(s.errorString()));
        QCOMPARE(readLine(s), QByteArray("HELLO tls"));
        s.write("ECHO x\r\n");
        QCOMPARE(readLine(s), QByteArray("x"));
    }

    void oldTlsRefused() {
        QSslSocket s;
        s.setPeerVerifyMode(QSslSocket::VerifyNone);
        QT_WARNING_PUSH
        QT_WARNING_DISABLE_DEPRECATED
        s.setProtocol(QSsl::TlsV1_1);  // RFC 8996: must not be accepted
        QT_WARNING_POP
        s.connectToHostEncrypted(QStringLiteral("127.0.0.1"), port("submissions"));
        QVERIFY(!encrypted(s, 5000));
    }

    void plaintextOnImplicitTlsPortIsDropped() {
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, port("submissions"));
        QVERIFY(connected(s));
        s.write("EHLO x\r\n");
        QVERIFY(disconnected(s));
        QVERIFY(m_seen.isEmpty());
    }

    void idleTimeout() {
        // The session sets no idle timeout itself here; set one through a connection hook.
        QObject::connect(m_server.get(), &DaemonServer::connectionOpened, this,
                         [](Connection* c) { c->setIdleTimeout(200); });
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QVERIFY(connected(s));
        QCOMPARE(readLine(s), QByteArray("HELLO"));
        QCOMPARE(readLine(s, 5000), QByteArray("TIMEOUT"));
        QVERIFY(disconnected(s, 5000));
    }

    void perAddressLimit() {
        QList<QTcpSocket*> socks;
        for (int i = 0; i < 3; ++i) {
            auto* s = new QTcpSocket(this);
            s->connectToHost(QHostAddress::LocalHost, port("smtp"));
            QVERIFY(connected(*s));
            QCOMPARE(readLine(*s), QByteArray("HELLO"));
            socks << s;
        }
        QTcpSocket fourth;
        fourth.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QCOMPARE(readLine(fourth), QByteArray("BUSY"));  // refused at once, with a protocol line
        QVERIFY(disconnected(fourth, 5000));
        qDeleteAll(socks);
        // Slots free up again once the others are gone.
        QTRY_COMPARE(m_server->connectionCount(), 0);
        QTcpSocket again;
        again.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QVERIFY(connected(again));
        QCOMPARE(readLine(again), QByteArray("HELLO"));
    }

    void halfClosedClientStillGetsItsAnswers() {
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QVERIFY(connected(s));
        QCOMPARE(readLine(s), QByteArray("HELLO"));
        // The lines and the end of input arrive together: the server reads both in one go.
        const char lines[] = "ECHO one\r\nECHO two\r\n";
        QCOMPARE(::send(int(s.socketDescriptor()), lines, sizeof lines - 1, 0), qint64(sizeof lines - 1));
        QCOMPARE(::shutdown(int(s.socketDescriptor()), SHUT_WR), 0);  // "no more from me"
        QCOMPARE(readLine(s), QByteArray("one"));
        QCOMPARE(readLine(s), QByteArray("two"));
        QVERIFY(disconnected(s));
        QTRY_COMPARE(m_server->connectionCount(), 0);
    }

    void unterminatedInputIsBounded() {
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QVERIFY(connected(s));
        QCOMPARE(readLine(s), QByteArray("HELLO"));
        // The echo session never consumes a line without CRLF; the connection's cap must end it.
        const QByteArray junk(64 * 1024, 'x');
        for (int i = 0; i < 8 && s.state() == QAbstractSocket::ConnectedState; ++i) {
            s.write(junk);
            spin([&] { return s.bytesToWrite() == 0 || s.state() != QAbstractSocket::ConnectedState; }, 2000);
        }
        QVERIFY(disconnected(s, 10000));
    }

    // A polite client waits for the whole greeting and then works normally.
    void pregreetPoliteClient() {
        m_pregreetMs = 100;
        QTcpSocket s;
        QElapsedTimer t;
        t.start();
        s.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QVERIFY(connected(s));
        QCOMPARE(readLine(s), QByteArray("WAIT"));
        QCOMPARE(readLine(s), QByteArray("HELLO"));
        QVERIFY2(t.elapsed() >= 100, qPrintable(QString::number(t.elapsed())));
        s.write("ECHO fine\r\n");
        QCOMPARE(readLine(s), QByteArray("fine"));
        QCOMPARE(m_seen, QStringList{QStringLiteral("ECHO fine")});
    }

    // Input before the greeting: the session is told, is never fed it, and the connection closes.
    void pregreetTalkerIsDropped_data() {
        QTest::addColumn<bool>("afterFirstLine");
        QTest::newRow("at once") << false;
        QTest::newRow("after the first line") << true;
    }
    void pregreetTalkerIsDropped() {
        QFETCH(bool, afterFirstLine);
        m_pregreetMs = 5000;
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QVERIFY(connected(s));
        if (afterFirstLine) QCOMPARE(readLine(s), QByteArray("WAIT"));
        QElapsedTimer t;
        t.start();
        s.write("ECHO early\r\n");
        if (!afterFirstLine) QCOMPARE(readLine(s), QByteArray("WAIT"));
        QCOMPARE(readLine(s), QByteArray("TOO SOON"));
        QVERIFY(disconnected(s));
        QVERIFY2(t.elapsed() < 4000, qPrintable(QString::number(t.elapsed())));  // at once, not after the wait
        QCOMPARE(m_seen, QStringList{QStringLiteral("<too soon>")});
        QTRY_COMPARE(m_server->connectionCount(), 0);
    }

    // No wait asked (every session but SMTP on MX): greeted at once, input is fed.
    void noPregreetWithoutWait() {
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QVERIFY(connected(s));
        s.write("ECHO early\r\n");
        QCOMPARE(readLine(s), QByteArray("HELLO"));
        QCOMPARE(readLine(s), QByteArray("early"));
    }

    // While a session is suspended nothing is read, yet a peer that hung up (or shut down its
    // side) must be visible: the authenticator skips the check of a client that is gone.
    void peerHungUpWhileSuspended_data() {
        QTest::addColumn<bool>("halfClose");
        QTest::newRow("close") << false;
        QTest::newRow("shutdown write side") << true;
    }
    void peerHungUpWhileSuspended() {
        QFETCH(bool, halfClose);
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QVERIFY(connected(s));
        QCOMPARE(readLine(s), QByteArray("HELLO"));
        s.write("HOLD\r\n");
        QTRY_COMPARE(m_seen, QStringList{QStringLiteral("HOLD")});
        QCOMPARE(m_server->connections().size(), 1);
        Connection* c = m_server->connections().first();
        // A live peer whose input waits unread (the session is suspended) has not hung up.
        s.write("ECHO unread\r\n");
        QVERIFY(spin([&] { return s.bytesToWrite() == 0; }));
        QVERIFY(!c->peerHungUp());
        if (halfClose)
            QCOMPARE(::shutdown(int(s.socketDescriptor()), SHUT_WR), 0);
        else
            s.abort();
        QTRY_VERIFY(c->peerHungUp());
    }

    // A deadline counts from connect; unlike the idle timer, traffic does not move it
    // (issue 16: a pre-login client sending NOOP every few seconds held its slot forever).
    void deadlineIsNotExtendedByActivity() {
        QObject::connect(m_server.get(), &DaemonServer::connectionOpened, this, [](Connection* c) {
            c->setIdleTimeout(5000);  // each line below comes well within the idle time
            c->setDeadline(300);
        });
        QTcpSocket s;
        QElapsedTimer age;
        age.start();
        s.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QVERIFY(connected(s));
        QCOMPARE(readLine(s), QByteArray("HELLO"));
        QByteArray last;
        for (int i = 0; i < 200; ++i) {
            if (s.state() == QAbstractSocket::ConnectedState) s.write("ECHO ping\r\n");
            last = readLine(s, 5000);  // a line already received is read even after the close
            if (last != "ping") break;
            QTest::qWait(20);
        }
        QCOMPARE(last, QByteArray("DEADLINE"));  // the session was told, and said goodbye
        QVERIFY(age.elapsed() >= 300 - 15);      // Qt's coarse timers may fire up to 5 % early
        QVERIFY(disconnected(s, 5000));
    }

    void deadlineAlreadyPassedFiresAtOnce() {
        Connection* opened = nullptr;
        QObject::connect(m_server.get(), &DaemonServer::connectionOpened, this, [&](Connection* c) { opened = c; });
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QVERIFY(connected(s));
        QCOMPARE(readLine(s), QByteArray("HELLO"));
        QVERIFY(opened);
        // The connection's age started before `opened` was set: once this timer has passed
        // 1 ms, a deadline of 1 ms after connect lies in the past.
        QElapsedTimer sinceOpened;
        sinceOpened.start();
        QVERIFY(spin([&] { return sinceOpened.hasExpired(1); }, 5000));
        opened->setDeadline(1);
        QCOMPARE(readLine(s), QByteArray("DEADLINE"));
        QVERIFY(disconnected(s, 5000));
    }

    void removedDeadlineDoesNotFire() {
        Connection* opened = nullptr;
        QObject::connect(m_server.get(), &DaemonServer::connectionOpened, this, [&](Connection* c) {
            opened = c;
            c->setDeadline(200);
            QVERIFY(c->deadlinePending());
            c->setDeadline(0);
        });
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QVERIFY(connected(s));
        QCOMPARE(readLine(s), QByteArray("HELLO"));
        QVERIFY(opened);
        QVERIFY(!opened->deadlinePending());  // no timer left to fire
        s.write("ECHO still\r\n");
        QCOMPARE(readLine(s), QByteArray("still"));
    }

    // The process's input budget: a client that sends much and never ends its line holds
    // at most its budget share plus one read chunk; reading stops (TCP pushes back) and
    // other clients still get their lines read and answered.
    void inputBudgetPausesReading() {
        InputBudget budget(40 * 1024);
        Connection::Options opts;
        opts.inputBudget = &budget;
        opts.budgetRetryMs = 10;  // the default (kBudgetRetryMs) is 100: a few retries here are 10x faster
        m_server->setConnectionOptions(opts);
        // A paused connection reads nothing, so it cannot see its peer leave: its idle
        // timer (never restarted while paused) ends it.
        Connection* greedyConn = nullptr;
        QObject::connect(m_server.get(), &DaemonServer::connectionOpened, this, [&](Connection* c) {
            if (!greedyConn) greedyConn = c;
            c->setIdleTimeout(5000);
        });
        QTcpSocket greedy;
        greedy.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QVERIFY(connected(greedy));
        QCOMPARE(readLine(greedy), QByteArray("HELLO"));
        greedy.write(QByteArray(200 * 1024, 'x'));  // no CRLF: the echo session keeps it all unconsumed
        QVERIFY(spin([&] { return budget.used() >= 32 * 1024; }, 5000));
        QVERIFY(greedyConn);
        QVERIFY(spin([&] { return greedyConn->pausedByBudget(); }, 5000));
        QTest::qWait(5 * opts.budgetRetryMs);  // a few retry periods: reading must have stopped
        QVERIFY(greedyConn->pausedByBudget());
        QVERIFY2(budget.used() <= 40 * 1024 + 16 * 1024, qPrintable(QString::number(budget.used())));
        QCOMPARE(greedy.state(), QAbstractSocket::ConnectedState);  // paused, not closed
        QTcpSocket polite;
        polite.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QVERIFY(connected(polite));
        QCOMPARE(readLine(polite), QByteArray("HELLO"));
        polite.write("ECHO served\r\n");
        QCOMPARE(readLine(polite), QByteArray("served"));
        greedyConn->setIdleTimeout(50);  // served: no need to wait out the long idle time
        greedy.abort();
        polite.abort();
        QTRY_COMPARE_WITH_TIMEOUT(m_server->connectionCount(), 0, 10000);
        QCOMPARE(budget.used(), qint64(0));  // everything given back
    }

    void blockedAddressLosesOpenSessions() {
        BlockList list(m_dir.filePath(QStringLiteral("block-list")));
        m_server->setBlockList(&list, 50);
        QTcpSocket keep, plain;
        QSslSocket tls;
        QVERIFY(plain.bind(QHostAddress(QStringLiteral("127.0.0.2"))));
        QVERIFY(tls.bind(QHostAddress(QStringLiteral("127.0.0.2"))));
        keep.connectToHost(QHostAddress::LocalHost, port("smtp"));
        plain.connectToHost(QHostAddress::LocalHost, port("smtp"));
        tls.setPeerVerifyMode(QSslSocket::VerifyNone);
        tls.connectToHostEncrypted(QStringLiteral("127.0.0.1"), port("submissions"));
        QVERIFY(encrypted(tls));
        for (QAbstractSocket* s : {static_cast<QAbstractSocket*>(&keep), static_cast<QAbstractSocket*>(&plain),
                                   static_cast<QAbstractSocket*>(&tls)})
            QVERIFY(readLine(*s).startsWith("HELLO"));
        plain.write("HOLD\r\n");  // suspended, like a session waiting for a password check
        QTRY_VERIFY(m_seen.contains(QStringLiteral("HOLD")));
        // Another process (posternctl block add, or the auth throttle) blocks 127.0.0.2.
        BlockList other(list.path());
        QVERIFY(other.add(QStringLiteral("127.0.0.2"), 60'000, QStringLiteral("admin")).ok());
        QCOMPARE(readLine(plain),
                 QByteArray("421 4.7.1 Your address is blocked for now (too many failed logins), closing connection"));
        QVERIFY(disconnected(plain));
        QCOMPARE(readLine(tls),
                 QByteArray("421 4.7.1 Your address is blocked for now (too many failed logins), closing connection"));
        QVERIFY(disconnected(tls));
        QTRY_COMPARE(m_server->connectionCount(), 1);
        keep.write("ECHO still here\r\n");  // another address: untouched
        QCOMPARE(readLine(keep), QByteArray("still here"));
        // New connections from the blocked address are refused at accept.
        QTcpSocket again;
        QVERIFY(again.bind(QHostAddress(QStringLiteral("127.0.0.2"))));
        again.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QCOMPARE(readLine(again), QByteArray("554 5.7.1 Your address is blocked for now (too many failed logins)"));
        m_server->setBlockList(nullptr);
    }

    void shutdownSaysGoodbye() {
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, port("smtp"));
        QVERIFY(connected(s));
        QCOMPARE(readLine(s), QByteArray("HELLO"));
        bool done = false;
        m_server->shutdown(2000, [&] { done = true; });
        QCOMPARE(readLine(s), QByteArray("SHUTDOWN"));
        QTRY_VERIFY(done);
        QTcpSocket late;
        late.connectToHost(QHostAddress::LocalHost, port("smtp"));
        // Nothing listens any more: the connection is refused.
        QVERIFY(spin([&] { return late.state() == QAbstractSocket::UnconnectedState; }, 5000));
        QCOMPARE(late.error(), QAbstractSocket::ConnectionRefusedError);
    }
};

QTEST_GUILESS_MAIN(TstConnection)
#include "tst_connection.moc"
