// tst_pop3_session.cpp — the POP3 session without sockets: a recording
// SessionIo, a backend that accepts one password and opens a real Maildir
// maildrop in a temporary folder. Answers are compared byte for byte; input is
// fed one byte at a time and in one piece.
// Covers (RFC 1939 3): every command takes exactly the arguments its grammar
// allows (LIST 1 2, STAT x, UIDL 1 2, QUIT x, ... get -ERR), NUL and other
// control characters in any line (USER, PASS, others) get -ERR, and the login
// deadline (set at the greeting, removed at login, BYE-like -ERR when it passes).
#include "pop3d/pop3_session.h"
#include "recording_io.h"

#include "core/paths.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

using namespace postern;
using namespace postern::pop3;
using postern::test::RecordingIo;

namespace {

const QString kUser = QStringLiteral("alice@example.org");

class FakeBackend : public Pop3Backend {
public:
    QString mailDir;
    void authenticate(const AuthRequest& request, QByteArray password, AuthDone done) override {
        done(request.login == kUser && password == "secret word" ? AuthVerdict::Ok : AuthVerdict::Failed,
             request.login);
    }
    void openMaildrop(QObject*, const QString& user, qint64,
                      std::function<void(Result<std::shared_ptr<Maildrop>>)> done) override {
        done(Maildrop::open(mailDir, user));
    }
    void commit(QObject*, std::shared_ptr<Maildrop> drop, QSet<int> deleted, QSet<int> retrieved,
                std::function<void(Status)> done) override {
        done(drop->commit(deleted, retrieved));
    }
};

struct Harness {
    QTemporaryDir dir;
    RecordingIo io;
    FakeBackend backend;
    SessionConfig config;
    std::unique_ptr<Pop3Session> session;
    QByteArray buffer;
    int chunk = 1;
    explicit Harness(int chunkSize, bool tls = true) : chunk(chunkSize) {
        io.connInfo.tls = tls;
        io.connInfo.mode = ListenerMode::Pop3s;
        backend.mailDir = dir.path();
        const QString root = maildirRoot(dir.path(), kUser);
        for (const char* sub : {"new", "cur", "tmp"}) QDir().mkpath(root + QLatin1Char('/') + QLatin1String(sub));
        for (int i = 1; i <= 2; ++i) {
            QFile f(root + QStringLiteral("/new/100%1.M1P1.test").arg(i));
            if (f.open(QIODevice::WriteOnly)) f.write("Subject: m" + QByteArray::number(i) + "\r\n\r\nbody\r\n");
        }
        config.loginDeadlineMs = 45'000;
        session = std::make_unique<Pop3Session>(io, backend, config);
        session->start();
        io.take();
    }
    QByteArray send(const QByteArray& bytes) {
        test::feed(*session, buffer, bytes, chunk);
        return io.take();
    }
    void login() {
        QCOMPARE(send("USER alice@example.org\r\n"), QByteArray("+OK Send your password\r\n"));
        QVERIFY(send("PASS secret word\r\n").startsWith("+OK Logged in, 2 messages"));
    }
};

}  // namespace

class TstPop3Session : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void extraArgumentsAreRefused_data() {
        QTest::addColumn<int>("chunk");
        QTest::addColumn<QByteArray>("line");
        QTest::addColumn<QByteArray>("answer");
        for (int chunk : {1, 4096}) {
            const QByteArray c = chunk == 1 ? "bytes: " : "piece: ";
            QTest::newRow(c + "LIST 1 2")
                << chunk << QByteArray("LIST 1 2\r\n") << QByteArray("-ERR Usage: LIST [msg]\r\n");
            QTest::newRow(c + "STAT x") << chunk << QByteArray("STAT x\r\n") << QByteArray("-ERR Usage: STAT\r\n");
            QTest::newRow(c + "UIDL 1 2")
                << chunk << QByteArray("UIDL 1 2\r\n") << QByteArray("-ERR Usage: UIDL [msg]\r\n");
            QTest::newRow(c + "NOOP x") << chunk << QByteArray("NOOP x\r\n") << QByteArray("-ERR Usage: NOOP\r\n");
            QTest::newRow(c + "RSET x") << chunk << QByteArray("RSET x\r\n") << QByteArray("-ERR Usage: RSET\r\n");
            QTest::newRow(c + "RETR 1 2")
                << chunk << QByteArray("RETR 1 2\r\n") << QByteArray("-ERR Usage: RETR msg\r\n");
            QTest::newRow(c + "RETR") << chunk << QByteArray("RETR\r\n") << QByteArray("-ERR Usage: RETR msg\r\n");
            QTest::newRow(c + "DELE 1 1")
                << chunk << QByteArray("DELE 1 1\r\n") << QByteArray("-ERR Usage: DELE msg\r\n");
            QTest::newRow(c + "TOP 1 1 1")
                << chunk << QByteArray("TOP 1 1 1\r\n") << QByteArray("-ERR Usage: TOP msg lines\r\n");
            QTest::newRow(c + "QUIT x") << chunk << QByteArray("QUIT x\r\n") << QByteArray("-ERR Usage: QUIT\r\n");
            QTest::newRow(c + "CAPA x") << chunk << QByteArray("CAPA x\r\n") << QByteArray("-ERR Usage: CAPA\r\n");
            // The limits themselves are accepted.
            QTest::newRow(c + "LIST 1") << chunk << QByteArray("LIST 1\r\n") << QByteArray("+OK 1 21\r\n");
            QTest::newRow(c + "STAT") << chunk << QByteArray("STAT\r\n") << QByteArray("+OK 2 42\r\n");
            QTest::newRow(c + "NOOP") << chunk << QByteArray("NOOP\r\n") << QByteArray("+OK \r\n");
        }
    }
    void extraArgumentsAreRefused() {
        QFETCH(int, chunk);
        QFETCH(QByteArray, line);
        QFETCH(QByteArray, answer);
        Harness h(chunk);
        h.login();
        QCOMPARE(h.send(line), answer);
        QVERIFY(!h.io.closed);
        // The session goes on: the maildrop is still there, nothing was deleted.
        QCOMPARE(h.send("STAT\r\n"), QByteArray("+OK 2 42\r\n"));
    }

    void extraArgumentsBeforeLogin_data() {
        QTest::addColumn<QByteArray>("line");
        QTest::addColumn<QByteArray>("answer");
        QTest::newRow("USER a b") << QByteArray("USER a b\r\n") << QByteArray("-ERR Usage: USER name\r\n");
        QTest::newRow("USER") << QByteArray("USER\r\n") << QByteArray("-ERR Usage: USER name\r\n");
        QTest::newRow("PASS") << QByteArray("PASS\r\n") << QByteArray("-ERR Usage: PASS password\r\n");
        QTest::newRow("STLS x") << QByteArray("STLS x\r\n") << QByteArray("-ERR Usage: STLS\r\n");
        QTest::newRow("AUTH a b c") << QByteArray("AUTH PLAIN x y\r\n")
                                    << QByteArray("-ERR Usage: AUTH [mechanism [initial-response]]\r\n");
        QTest::newRow("QUIT x") << QByteArray("QUIT x\r\n") << QByteArray("-ERR Usage: QUIT\r\n");
    }
    void extraArgumentsBeforeLogin() {
        QFETCH(QByteArray, line);
        QFETCH(QByteArray, answer);
        for (int chunk : {1, 4096}) {
            Harness h(chunk);
            QCOMPARE(h.send(line), answer);
            QVERIFY(!h.io.closed);
            QCOMPARE(h.send("QUIT\r\n"), QByteArray("+OK Bye\r\n"));
            QVERIFY(h.io.closed);
        }
    }

    void passwordWithSpacesStillWorks() {
        Harness h(1);
        h.login();  // "PASS secret word": the rest of the line is one argument
        QCOMPARE(h.send("QUIT\r\n"), QByteArray("+OK Postern POP3 server signing off (2 messages left)\r\n"));
    }

    void controlCharactersAreRefused_data() {
        QTest::addColumn<QByteArray>("line");
        QTest::addColumn<bool>("afterLogin");
        QTest::newRow("NUL in USER") << QByteArray("USER alice@example.org\0x\r\n", 26) << false;
        QTest::newRow("NUL at the end of USER") << QByteArray("USER alice@example.org\0\r\n", 25) << false;
        QTest::newRow("NUL in PASS") << QByteArray("PASS secret\0word\r\n", 18) << false;
        QTest::newRow("NUL in the verb") << QByteArray("CA\0PA\r\n", 7) << false;
        QTest::newRow("TAB in USER") << QByteArray("USER\talice@example.org\r\n") << false;
        QTest::newRow("bare CR in USER") << QByteArray("USER alice\r@example.org\r\n") << false;
        QTest::newRow("DEL in USER") << QByteArray("USER alice\x7f\r\n") << false;
        QTest::newRow("ESC in LIST") << QByteArray("LIST \x1b[1\r\n") << true;
        QTest::newRow("NUL in RETR") << QByteArray("RETR 1\0\r\n", 9) << true;
    }
    void controlCharactersAreRefused() {
        QFETCH(QByteArray, line);
        QFETCH(bool, afterLogin);
        for (int chunk : {1, 4096}) {
            Harness h(chunk);
            if (afterLogin) h.login();
            QCOMPARE(h.send(line), QByteArray("-ERR Invalid character in command\r\n"));
            QVERIFY(!h.io.closed);
            if (!afterLogin) {
                // A NUL-carrying USER did not become the candidate: PASS has no USER to go with.
                QCOMPARE(h.send("PASS secret word\r\n"), QByteArray("-ERR Send USER first\r\n"));
                h.login();
            }
            QCOMPARE(h.send("STAT\r\n"), QByteArray("+OK 2 42\r\n"));
        }
    }

    void utf8PasswordIsNotAControlCharacter() {
        Harness h(1);
        QCOMPARE(h.send("USER alice@example.org\r\n"), QByteArray("+OK Send your password\r\n"));
        QCOMPARE(h.send("PASS p\xc3\xa4ss\r\n"), QByteArray("-ERR [AUTH] Authentication failed\r\n"));
    }

    void loginDeadline() {
        Harness h(4096);
        QCOMPARE(h.io.deadline, qint64(45'000));  // set with the greeting
        h.session->deadlinePassed();
        QCOMPARE(h.io.take(), QByteArray("-ERR Login not completed in time, closing\r\n"));
        QVERIFY(h.io.closed);
        QCOMPARE(h.io.closeReason, QStringLiteral("login deadline"));
    }

    void loginRemovesTheDeadline() {
        Harness h(4096);
        h.login();
        QCOMPARE(h.io.deadline, qint64(0));
        h.session->deadlinePassed();  // a stale timer: nothing happens
        QCOMPARE(h.io.take(), QByteArray());
        QVERIFY(!h.io.closed);
    }
};

QTEST_GUILESS_MAIN(TstPop3Session)
#include "tst_pop3_session.moc"
