// tst_managesieve_session.cpp — the ManageSieve session (RFC 5804) without
// sockets: a recording SessionIo and a backend that checks one password and
// runs the real script store (common/sieve/sieve_store.h) in a temporary
// mail folder. Every conversation is fed one byte at a time and in one piece.
// Covers: capabilities before and after STARTTLS (no SASL mechanism, STARTTLS
// advertised, before TLS; sent again after the handshake), AUTHENTICATE only
// under TLS (PLAIN with an initial response, PLAIN and LOGIN with
// continuations, "*" cancels), every script command and its response codes,
// the literal limits before login (maxLiteralBeforeAuth passes, +1 BYE) and
// after (maxLiteralAfterAuth passes, +1 BYE), HAVESPACE at the size limit,
// commands before login, errors before BYE, the login deadline.
#include "recording_io.h"
#include "sieved/managesieve_session.h"

#include "common/sieve/sieve.h"
#include "common/sieve/sieve_store.h"

#include <QTemporaryDir>
#include <QtTest>

using namespace postern;
using namespace postern::managesieve;
using postern::test::RecordingIo;

namespace {

const QString kUser = QStringLiteral("alice@example.org");

class FakeBackend : public SieveBackend {
public:
    QString mailDir;
    void authenticate(const AuthRequest& request, QByteArray password, AuthDone done) override {
        done(request.login == kUser && password == "secret word" ? AuthVerdict::Ok
             : request.login == u"busy@example.org"              ? AuthVerdict::TempFail
                                                                 : AuthVerdict::Failed,
             request.login);
    }
    void run(QObject*, std::function<StoreReply(const QString&)> work, std::function<void(StoreReply)> done) override {
        done(work(mailDir));
    }
};

QByteArray plainB64(const QByteArray& user, const QByteArray& pw) {
    return (QByteArray(1, '\0') + user + QByteArray(1, '\0') + pw).toBase64();
}

struct Harness {
    QTemporaryDir dir;
    RecordingIo io;
    FakeBackend backend;
    SessionConfig config;
    std::unique_ptr<ManageSieveSession> session;
    QByteArray buffer;
    int chunk = 1;
    QByteArray greeting;
    explicit Harness(int chunkSize, bool tls = true, SessionConfig cfg = {}) : config(cfg), chunk(chunkSize) {
        io.connInfo.tls = tls;
        io.connInfo.mode = ListenerMode::ManageSieve;
        backend.mailDir = dir.path();
        session = std::make_unique<ManageSieveSession>(io, backend, config);
        session->start();
        greeting = io.take();
    }
    QByteArray send(const QByteArray& bytes) {
        test::feed(*session, buffer, bytes, chunk);
        return io.take();
    }
    void login() {
        QCOMPARE(send("AUTHENTICATE \"PLAIN\" \"" + plainB64("alice@example.org", "secret word") + "\"\r\n"),
                 QByteArray("OK \"Logged in\"\r\n"));
    }
};

}  // namespace

class TstManageSieveSession : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void greetingAndStartTls() {
        Harness h(1, /*tls=*/false);
        QVERIFY(h.greeting.startsWith("\"IMPLEMENTATION\" \"Postern\"\r\n\"SASL\" \"\"\r\n\"SIEVE\" \""));
        QVERIFY(h.greeting.contains("\"STARTTLS\"\r\n"));
        QVERIFY(h.greeting.contains("\"VERSION\" \"1.0\"\r\n"));
        QVERIFY(h.greeting.contains("\"MAXREDIRECTS\" \"4\"\r\n"));
        QVERIFY(h.greeting.contains(" fileinto ") || h.greeting.contains("\"fileinto "));
        QVERIFY(!h.greeting.contains("NOTIFY"));
        QVERIFY(h.greeting.endsWith("OK \"Postern ManageSieve ready\"\r\n"));
        QCOMPARE(h.io.deadline, h.config.loginDeadlineMs);
        // No login before TLS (RFC 5804 15.1).
        QCOMPARE(h.send("AUTHENTICATE \"PLAIN\" \"" + plainB64("alice@example.org", "secret word") + "\"\r\n"),
                 QByteArray("NO (ENCRYPT-NEEDED) \"Authentication requires TLS: use STARTTLS first\"\r\n"));
        QCOMPARE(h.send("STARTTLS\r\n"), QByteArray("OK \"Begin TLS negotiation\"\r\n"));
        QVERIFY(h.io.startTlsRequested);
        h.io.connInfo.tls = true;
        h.session->tlsStarted();
        const QByteArray again = h.io.take();
        QVERIFY(again.contains("\"SASL\" \"PLAIN LOGIN\"\r\n"));
        QVERIFY(!again.contains("STARTTLS"));
        QVERIFY(again.endsWith("OK \"TLS negotiation successful\"\r\n"));
        QCOMPARE(h.send("STARTTLS\r\n"), QByteArray("NO \"Already using TLS\"\r\n"));
        h.login();
        QCOMPARE(h.io.deadline, 0);
        QVERIFY(h.send("CAPABILITY\r\n").contains("\"OWNER\" \"alice@example.org\"\r\n"));
    }

    void scripts_data() {
        QTest::addColumn<int>("chunk");
        QTest::newRow("byte by byte") << 1;
        QTest::newRow("whole") << 100000;
    }
    void scripts() {
        QFETCH(int, chunk);
        Harness h(chunk);
        QCOMPARE(h.send("LISTSCRIPTS\r\n"), QByteArray("NO \"Log in first (AUTHENTICATE)\"\r\n"));
        h.login();
        QCOMPARE(h.send("LISTSCRIPTS\r\n"), QByteArray("OK\r\n"));
        const QByteArray script =
            "require \"fileinto\";\r\nif header :contains \"subject\" \"x\" { fileinto \"X\"; }\r\n";
        QCOMPARE(h.send("PUTSCRIPT \"work\" {" + QByteArray::number(script.size()) + "+}\r\n" + script + "\r\n"),
                 QByteArray("OK\r\n"));
        // Validation errors with line:column in the NO reply (RFC 5804 2.6).
        const QByteArray noRequire = h.send("PUTSCRIPT \"bad\" {20+}\r\nkeep;\r\nfileinto \"x\";\r\n");
        QVERIFY2(noRequire.startsWith("NO \"bad: 2:1: "), noRequire.constData());
        QCOMPARE(h.send("CHECKSCRIPT \"keep;\"\r\n"), QByteArray("OK\r\n"));
        // RFC 6609 3.2: a personal include must name a stored script (unless :optional).
        QCOMPARE(h.send("CHECKSCRIPT \"require \\\"include\\\"; include \\\"nope\\\";\"\r\n"),
                 QByteArray("NO \"1:28: included script \\\"nope\\\" does not exist\"\r\n"));
        QCOMPARE(h.send("CHECKSCRIPT \"require \\\"include\\\"; include :optional \\\"nope\\\";\"\r\n"),
                 QByteArray("OK\r\n"));
        const QByteArray checkBad = h.send("CHECKSCRIPT \"keep;\\\\\"\r\n");
        QVERIFY2(checkBad.startsWith("NO \"1:6: "), checkBad.constData());
        const QByteArray putBad = h.send("PUTSCRIPT \"bad\" \"if true {\"\r\n");
        QVERIFY2(putBad.startsWith("NO \"bad: 1:"), putBad.constData());
        QCOMPARE(h.send("LISTSCRIPTS\r\n"), QByteArray("\"work\"\r\nOK\r\n"));
        QCOMPARE(h.send("SETACTIVE \"nope\"\r\n").left(17), QByteArray("NO (NONEXISTENT) "));
        QCOMPARE(h.send("SETACTIVE \"work\"\r\n"), QByteArray("OK\r\n"));
        QCOMPARE(h.send("LISTSCRIPTS\r\n"), QByteArray("\"work\" ACTIVE\r\nOK\r\n"));
        QCOMPARE(h.send("GETSCRIPT \"work\"\r\n"),
                 "{" + QByteArray::number(script.size()) + "}\r\n" + script + "\r\nOK\r\n");
        QCOMPARE(h.send("GETSCRIPT \"nope\"\r\n").left(17), QByteArray("NO (NONEXISTENT) "));
        QCOMPARE(h.send("DELETESCRIPT \"work\"\r\n").left(12), QByteArray("NO (ACTIVE) "));
        QCOMPARE(h.send("PUTSCRIPT \"other\" \"keep;\"\r\n"), QByteArray("OK\r\n"));
        QCOMPARE(h.send("RENAMESCRIPT \"work\" \"other\"\r\n").left(19), QByteArray("NO (ALREADYEXISTS) "));
        QCOMPARE(h.send("RENAMESCRIPT \"nope\" \"x\"\r\n").left(17), QByteArray("NO (NONEXISTENT) "));
        QCOMPARE(h.send("RENAMESCRIPT \"work\" \"mail\"\r\n"), QByteArray("OK\r\n"));  // stays active (2.11.1)
        QCOMPARE(h.send("LISTSCRIPTS\r\n"), QByteArray("\"mail\" ACTIVE\r\n\"other\"\r\nOK\r\n"));
        QCOMPARE(*sieve::activeScriptName(h.dir.path(), kUser), QStringLiteral("mail"));  // what delivery reads
        QCOMPARE(h.send("SETACTIVE \"\"\r\n"), QByteArray("OK\r\n"));                     // 2.8: deactivate
        QCOMPARE(h.send("DELETESCRIPT \"mail\"\r\n"), QByteArray("OK\r\n"));
        QCOMPARE(h.send("DELETESCRIPT \"mail\"\r\n").left(17), QByteArray("NO (NONEXISTENT) "));
        QCOMPARE(h.send("LISTSCRIPTS\r\n"), QByteArray("\"other\"\r\nOK\r\n"));
        QCOMPARE(h.send("PUTSCRIPT \"a b\" \"keep;\"\r\n").left(4), QByteArray("NO \""));  // names: [A-Za-z0-9._-]
        QCOMPARE(h.send("NOOP \"t1\"\r\n"), QByteArray("OK (TAG \"t1\") \"Done\"\r\n"));
        QCOMPARE(h.send("AUTHENTICATE \"PLAIN\"\r\n"), QByteArray("NO \"Already logged in\"\r\n"));
        QCOMPARE(h.send("UNAUTHENTICATE\r\n"), QByteArray("OK\r\n"));
        QCOMPARE(h.send("LISTSCRIPTS\r\n"), QByteArray("NO \"Log in first (AUTHENTICATE)\"\r\n"));
        QCOMPARE(h.send("LOGOUT\r\n"), QByteArray("OK \"Logout completed\"\r\n"));
        QVERIFY(h.io.closed);
    }

    void haveSpace() {
        Harness h(1);
        h.login();
        const qint64 max = sieve::Limits{}.maxScriptBytes;
        QCOMPARE(h.send("HAVESPACE \"s\" " + QByteArray::number(max) + "\r\n"), QByteArray("OK\r\n"));
        QCOMPARE(h.send("HAVESPACE \"s\" " + QByteArray::number(max + 1) + "\r\n").left(19),
                 QByteArray("NO (QUOTA/MAXSIZE) "));
        for (int i = 0; i < sieve::kMaxScriptsPerUser; ++i)
            QVERIFY(sieve::putScript(h.dir.path(), kUser, QStringLiteral("s%1").arg(i), "keep;").ok());
        QCOMPARE(h.send("HAVESPACE \"s0\" 10\r\n"), QByteArray("OK\r\n"));  // replacing does not count twice
        QCOMPARE(h.send("HAVESPACE \"new\" 10\r\n").left(22), QByteArray("NO (QUOTA/MAXSCRIPTS) "));
        QCOMPARE(h.send("PUTSCRIPT \"new\" \"keep;\"\r\n").left(22), QByteArray("NO (QUOTA/MAXSCRIPTS) "));
        QCOMPARE(h.send("HAVESPACE \"x\" \"10\"\r\n"), QByteArray("NO \"Usage: HAVESPACE name size\"\r\n"));
    }

    // sieve.max_scripts / sieve.max_script_size (SessionConfig::quota): the limit passes,
    // limit+1 is refused by HAVESPACE and by PUTSCRIPT (which stores nothing then).
    void configuredQuota_data() {
        QTest::addColumn<int>("maxScripts");
        QTest::addColumn<qint64>("maxBytes");
        QTest::newRow("1 script, 1K") << 1 << qint64(1024);
        QTest::newRow("3 scripts, 2000 bytes") << 3 << qint64(2000);
    }
    void configuredQuota() {
        QFETCH(int, maxScripts);
        QFETCH(qint64, maxBytes);
        SessionConfig cfg;
        cfg.quota.maxScripts = maxScripts;
        cfg.quota.maxScriptBytes = maxBytes;
        Harness h(7, true, cfg);
        h.login();
        QCOMPARE(h.send("HAVESPACE \"a\" " + QByteArray::number(maxBytes) + "\r\n"), QByteArray("OK\r\n"));
        QCOMPARE(h.send("HAVESPACE \"a\" " + QByteArray::number(maxBytes + 1) + "\r\n").left(19),
                 QByteArray("NO (QUOTA/MAXSIZE) "));
        // A script of exactly maxBytes is stored; one byte more is refused.
        const QByteArray atLimit = "#" + QByteArray(maxBytes - 7, 'x') + "\nkeep;";
        QCOMPARE(atLimit.size(), maxBytes);
        const QByteArray put = "PUTSCRIPT \"s0\" {" + QByteArray::number(atLimit.size()) + "+}\r\n" + atLimit + "\r\n";
        QCOMPARE(h.send(put), QByteArray("OK\r\n"));
        const QByteArray over = "#" + atLimit;
        QCOMPARE(h.send("PUTSCRIPT \"big\" {" + QByteArray::number(over.size()) + "+}\r\n" + over + "\r\n").left(19),
                 QByteArray("NO (QUOTA/MAXSIZE) "));
        for (int i = 1; i < maxScripts; ++i)
            QCOMPARE(h.send("PUTSCRIPT \"s" + QByteArray::number(i) + "\" \"keep;\"\r\n"), QByteArray("OK\r\n"));
        QCOMPARE(h.send("HAVESPACE \"s0\" 10\r\n"), QByteArray("OK\r\n"));  // replacing does not count twice
        QCOMPARE(h.send("HAVESPACE \"new\" 10\r\n").left(22), QByteArray("NO (QUOTA/MAXSCRIPTS) "));
        QCOMPARE(h.send("PUTSCRIPT \"new\" \"keep;\"\r\n").left(22), QByteArray("NO (QUOTA/MAXSCRIPTS) "));
        QCOMPARE(sieve::listScripts(h.dir.path(), kUser)->size(), maxScripts);
    }

    void sasl_data() {
        QTest::addColumn<QByteArray>("conversation");  // C: lines joined, S: expected output
        QTest::addColumn<QByteArray>("expected");
        QTest::addColumn<bool>("loggedIn");
        const QByteArray pl = plainB64("alice@example.org", "secret word");
        QTest::newRow("plain continuation") << QByteArray("AUTHENTICATE \"plain\"\r\n\"" + pl + "\"\r\n")
                                            << QByteArray("\"\"\r\nOK \"Logged in\"\r\n") << true;
        QTest::newRow("plain literal response")
            << QByteArray("AUTHENTICATE \"PLAIN\"\r\n{" + QByteArray::number(pl.size()) + "+}\r\n" + pl + "\r\n")
            << QByteArray("\"\"\r\nOK \"Logged in\"\r\n") << true;
        QTest::newRow("login") << QByteArray("AUTHENTICATE \"LOGIN\"\r\n\"" +
                                             QByteArray("alice@example.org").toBase64() + "\"\r\n\"" +
                                             QByteArray("secret word").toBase64() + "\"\r\n")
                               << QByteArray("\"VXNlcm5hbWU6\"\r\n\"UGFzc3dvcmQ6\"\r\nOK \"Logged in\"\r\n") << true;
        QTest::newRow("cancel") << QByteArray("AUTHENTICATE \"PLAIN\"\r\n\"*\"\r\nNOOP\r\n")
                                << QByteArray("\"\"\r\nNO \"Authentication cancelled\"\r\nOK \"Done\"\r\n") << false;
        QTest::newRow("wrong password") << QByteArray("AUTHENTICATE \"PLAIN\" \"" +
                                                      plainB64("alice@example.org", "nope") + "\"\r\n")
                                        << QByteArray("NO \"Authentication failed\"\r\n") << false;
        QTest::newRow("throttled") << QByteArray("AUTHENTICATE \"PLAIN\" \"" + plainB64("busy@example.org", "x") +
                                                 "\"\r\n")
                                   << QByteArray("NO (TRYLATER) \"Too many login attempts, try again later\"\r\n")
                                   << false;
        QTest::newRow("other mechanism") << QByteArray("AUTHENTICATE \"CRAM-MD5\"\r\n")
                                         << QByteArray("NO \"Unsupported mechanism (PLAIN and LOGIN are offered)\"\r\n")
                                         << false;
        QTest::newRow("atom response") << QByteArray("AUTHENTICATE \"PLAIN\"\r\n" + pl + "\r\nNOOP\r\n")
                                       << QByteArray("\"\"\r\nNO \"Expected a string or a number\"\r\nOK \"Done\"\r\n")
                                       << false;
    }
    void sasl() {
        QFETCH(QByteArray, conversation);
        QFETCH(QByteArray, expected);
        QFETCH(bool, loggedIn);
        for (int chunk : {1, 100000}) {
            Harness h(chunk);
            QCOMPARE(h.send(conversation), expected);
            QCOMPARE(h.send("LISTSCRIPTS\r\n") == "OK\r\n", loggedIn);
        }
    }

    // Before login a literal may be at most maxLiteralBeforeAuth; after it maxLiteralAfterAuth.
    void literalLimits() {
        SessionConfig cfg;
        cfg.maxLiteralBeforeAuth = 100;
        cfg.maxLiteralAfterAuth = 200;
        {
            Harness h(1, true, cfg);
            QCOMPARE(h.send("NOOP {100+}\r\n" + QByteArray(100, 't') + "\r\n"),
                     "OK (TAG \"" + QByteArray(100, 't') + "\") \"Done\"\r\n");
            QCOMPARE(h.send("NOOP {101+}\r\n"), QByteArray("BYE \"Literal too large\"\r\n"));
            QVERIFY(h.io.closed);
        }
        {
            Harness h(1, true, cfg);
            h.login();
            const QByteArray script = "keep;" + QByteArray(195, ' ');
            QCOMPARE(h.send("PUTSCRIPT \"s\" {200+}\r\n" + script + "\r\n"), QByteArray("OK\r\n"));
            QCOMPARE(h.send("PUTSCRIPT \"s\" {201+}\r\n"), QByteArray("BYE \"Literal too large\"\r\n"));
            QVERIFY(h.io.closed);
        }
    }

    void lineLimit() {
        SessionConfig cfg;
        cfg.maxLine = 64;
        Harness h(1, true, cfg);
        QCOMPARE(h.send("NOOP \"" + QByteArray(55, 'a') + "\"\r\n").left(8), QByteArray("OK (TAG "));
        QCOMPARE(h.send("NOOP \"" + QByteArray(56, 'a') + "\"\r\n"), QByteArray("BYE \"Line too long\"\r\n"));
        QVERIFY(h.io.closed);
    }

    void commandsBeforeAuth() {
        SessionConfig cfg;
        cfg.maxCommandsBeforeAuth = 3;
        Harness h(1, true, cfg);
        QByteArray all;
        for (int i = 0; i < 3; ++i) all += h.send("NOOP\r\n");
        QCOMPARE(all, QByteArray("OK \"Done\"\r\n").repeated(3));
        QCOMPARE(h.send("NOOP\r\n"), QByteArray("BYE \"Too many commands without logging in\"\r\n"));
        QVERIFY(h.io.closed);
    }

    void errorsBeforeBye() {
        SessionConfig cfg;
        cfg.maxErrors = 3;
        Harness h(1, true, cfg);
        QCOMPARE(h.send("FOO\r\n"), QByteArray("NO \"Unknown command\"\r\n"));
        QCOMPARE(h.send("NOOP x\r\n"), QByteArray("NO \"Expected a string or a number\"\r\n"));
        QCOMPARE(h.send("GETSCRIPT\r\n"),
                 QByteArray("NO \"Log in first (AUTHENTICATE)\"\r\nBYE \"Too many errors\"\r\n"));
        QVERIFY(h.io.closed);
        QCOMPARE(h.send("NOOP\r\n"), QByteArray());  // nothing after BYE
    }

    void deadlineAndShutdown() {
        Harness h(1);
        h.session->deadlinePassed();
        QCOMPARE(h.io.take(), QByteArray("BYE \"Login not completed in time\"\r\n"));
        Harness h2(1);
        h2.login();
        h2.session->deadlinePassed();
        QCOMPARE(h2.io.take(), QByteArray());
        h2.session->shutdown();
        QCOMPARE(h2.io.take(), QByteArray("BYE (TRYLATER) \"Server shutting down\"\r\n"));
    }

    void quoting() {
        QCOMPARE(ManageSieveSession::quote("a\"b\\"), QByteArray("\"a\\\"b\\\\\""));
        QCOMPARE(ManageSieveSession::quote("a\r\nb"), QByteArray("{4}\r\na\r\nb"));
        QCOMPARE(ManageSieveSession::quote(QByteArray(1025, 'x')), "{1025}\r\n" + QByteArray(1025, 'x'));
    }
};

QTEST_GUILESS_MAIN(TstManageSieveSession)
#include "tst_managesieve_session.moc"
