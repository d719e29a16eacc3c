// tst_imap_session_input.cpp — what a hostile client can send an IMAP session
// before and after login, without sockets: a recording SessionIo, a backend
// that accepts one password, a temporary Maildir. Answers are compared byte for
// byte; input is fed one byte at a time and in one piece.
// Covers (issue 16): the pre-login crash line and mid-line literals get BAD and
// the session goes on; before login a literal is at most 8 KiB (8192 gets "+",
// 8193 gets NO [TOOBIG] without "+", a non-synchronising 8193 gets BYE); after
// login the APPEND limit applies; the process input budget refuses a literal it
// cannot hold with NO [LIMIT] (BYE for a non-synchronising one) and takes one
// that fits exactly; LITERAL- before login, LITERAL+ after; the login deadline.
#include "imapd/imap_session.h"
#include "recording_io.h"

#include <QCoreApplication>
#include <QTemporaryDir>
#include <QtTest>

using namespace postern;
using namespace postern::imap;
using postern::test::RecordingIo;

namespace {

class FakeBackend : public ImapBackend {
public:
    bool deferred = false;  // keep the answer until the test calls finish()
    std::function<void()> pending;
    void authenticate(const AuthRequest& request, QByteArray password, AuthDone done) override {
        const AuthVerdict verdict =
            request.login == u"alice@example.org" && password == "secret" ? AuthVerdict::Ok : AuthVerdict::Failed;
        const QString login = request.login;
        if (deferred)
            pending = [done, verdict, login] { done(verdict, login); };
        else
            done(verdict, login);
    }
    qint64 quotaOf(const QString&) override { return 0; }
};

struct Harness {
    QTemporaryDir dir;
    RecordingIo io;
    FakeBackend backend;
    SessionConfig config;
    std::unique_ptr<ImapSession> session;
    QByteArray buffer;
    int chunk;
    explicit Harness(int chunkSize, bool tls = true, SessionConfig c = {}) : config(std::move(c)), chunk(chunkSize) {
        io.connInfo.tls = tls;
        io.connInfo.mode = tls ? ListenerMode::Imaps : ListenerMode::Imap;
        config.mailDir = dir.path();
        session = std::make_unique<ImapSession>(io, backend, config);
        session->start();
    }
    QByteArray send(const QByteArray& bytes) {
        test::feed(*session, buffer, bytes, chunk);
        return io.take();
    }
    void login() {
        io.take();  // the greeting, when still there
        const QByteArray out = send("l1 LOGIN alice@example.org secret\r\n");
        QVERIFY2(out.startsWith("l1 OK [CAPABILITY "), out.constData());
    }
};

QList<int> chunkings() {
    return {1, 4096};
}

}  // namespace

class TstImapSessionInput : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // Defect 1 of issue 16: this line, before STARTTLS or login, crashed postern-imapd.
    void crashLineIsBad_data() {
        QTest::addColumn<bool>("tls");
        QTest::addColumn<QByteArray>("line");
        QTest::addColumn<QByteArray>("answer");
        const QByteArray midLine = "Syntax error: a literal must end its line ({n} CRLF)";
        QTest::newRow("plaintext 143") << false << QByteArray("a NOOP {9223372036854775807}x\r\n")
                                       << "a BAD " + midLine + "\r\n";
        QTest::newRow("tls") << true << QByteArray("a NOOP {9223372036854775807}x\r\n") << "a BAD " + midLine + "\r\n";
        QTest::newRow("small mid-line") << false << QByteArray("a NOOP {5}xxxxx\r\n") << "a BAD " + midLine + "\r\n";
        QTest::newRow("literal8 mid-line") << false << QByteArray("a NOOP ~{3}abc\r\n") << "a BAD " + midLine + "\r\n";
        QTest::newRow("mid-line login") << true << QByteArray("a LOGIN {17}alice@example.org secret\r\n")
                                        << "a BAD " + midLine + "\r\n";
        QTest::newRow("after a quoted string") << true << QByteArray("a LOGIN \"x\"{6}secret\r\n")
                                               << QByteArray("a BAD Syntax error: missing space between arguments\r\n");
    }
    void crashLineIsBad() {
        QFETCH(bool, tls);
        QFETCH(QByteArray, line);
        QFETCH(QByteArray, answer);
        for (int chunk : chunkings()) {
            Harness h(chunk, tls);
            h.io.take();
            QCOMPARE(h.send(line), answer);
            QCOMPARE(h.send("b NOOP\r\n"), QByteArray("b OK NOOP completed\r\n"));
            QVERIFY(!h.io.closed);
        }
    }

    // Defect 4 of issue 16: "+ Ready" for {20971520} before login.
    void literalsBeforeLogin_data() {
        QTest::addColumn<QByteArray>("input");
        QTest::addColumn<QByteArray>("answer");
        QTest::addColumn<bool>("closed");
        QTest::newRow("8192: taken") << QByteArray("a LOGIN {8192}\r\n") << QByteArray("+ Ready for literal data\r\n")
                                     << false;
        QTest::newRow("8193: refused before +")
            << QByteArray("a LOGIN {8193}\r\n")
            << QByteArray("a NO [TOOBIG] Literals before login are limited to 8192 octets\r\n") << false;
        QTest::newRow("20 MiB: refused before +")
            << QByteArray("a LOGIN {20971520}\r\n")
            << QByteArray("a NO [TOOBIG] Literals before login are limited to 8192 octets\r\n") << false;
        QTest::newRow("8193 non-sync: closed")
            << QByteArray("a LOGIN {8193+}\r\n")
            << QByteArray("* BYE [TOOBIG] Literals before login are limited to 8192 octets\r\n") << true;
        QTest::newRow("8192 non-sync: taken")
            << QByteArray("a LOGIN {8192+}\r\n" + QByteArray(8192, 'u') + " pw\r\n")
            << QByteArray("a NO [AUTHENTICATIONFAILED] Authentication failed\r\n") << false;
        QTest::newRow("huge literal8") << QByteArray("a LOGIN ~{99999999999999999999}\r\n")
                                       << QByteArray(
                                              "a NO [TOOBIG] Literals before login are limited to 8192 octets\r\n")
                                       << false;
    }
    void literalsBeforeLogin() {
        QFETCH(QByteArray, input);
        QFETCH(QByteArray, answer);
        QFETCH(bool, closed);
        for (const bool tls : {false, true}) {
            for (int chunk : chunkings()) {
                Harness h(chunk, tls);
                h.io.take();
                QByteArray expected = answer;
                if (!tls && answer.contains("AUTHENTICATIONFAILED"))
                    expected =
                        "a NO [PRIVACYREQUIRED] Use STARTTLS first; logins are disabled on unencrypted connections\r\n";
                QCOMPARE(h.send(input), expected);
                QCOMPARE(h.io.closed, closed);
                if (!closed && !answer.startsWith('+'))
                    QCOMPARE(h.send("b NOOP\r\n"), QByteArray("b OK NOOP completed\r\n"));
            }
        }
    }

    void literalLimitAfterLogin() {
        SessionConfig c;
        c.limits.maxLiteral = 100000;
        c.limits.maxCommand = 200000;
        for (int chunk : chunkings()) {
            Harness h(chunk, true, c);
            h.login();
            QCOMPARE(h.send("a APPEND INBOX {100001}\r\n"),
                     QByteArray("a NO [TOOBIG] Literal too big (limit 100000 octets)\r\n"));
            QCOMPARE(h.send("b APPEND INBOX {100000}\r\n"), QByteArray("+ Ready for literal data\r\n"));
            QByteArray msg = "Subject: big\r\n\r\n";
            msg += QByteArray(100000 - msg.size(), 'x');
            h.send(msg + "\r\n");
            QTRY_VERIFY(h.io.output.startsWith("b OK [APPENDUID "));  // stored on a worker thread
        }
    }

    // The process's input budget: NO [LIMIT] (temporary, not a bad command) for a literal
    // it cannot hold now; the literal that fits exactly is taken.
    void inputBudget() {
        for (int chunk : chunkings()) {
            InputBudget budget(200000);
            SessionConfig c;
            c.limits.maxLiteral = 1 << 20;
            c.limits.maxCommand = 2 << 20;
            c.maxBadCommands = 2;
            c.inputBudget = &budget;
            Harness h(chunk, true, c);
            h.login();
            QCOMPARE(budget.used(), qint64(0));
            for (int i = 0; i < 3; ++i)  // more than maxBadCommands: LIMIT does not count as bad
                QCOMPARE(h.send("a APPEND INBOX {300000}\r\n"),
                         QByteArray("a NO [LIMIT] Server busy: no room for this literal now, try again later\r\n"));
            QVERIFY(!h.io.closed);
            const QByteArray line = "b APPEND INBOX {199975}\r\n";
            QCOMPARE(line.size() + 199975, 200000);
            QCOMPARE(h.send(line), QByteArray("+ Ready for literal data\r\n"));
            QCOMPARE(budget.used(), qint64(200000));
            // Meanwhile another session's small literal (a password) still gets through.
            Harness other(chunk, true, c);
            other.io.take();
            QCOMPARE(other.send("x LOGIN {17}\r\n"), QByteArray("+ Ready for literal data\r\n"));
            QCOMPARE(other.send("alice@example.org {6+}\r\nsecret\r\n").left(19), QByteArray("x OK [CAPABILITY IM"));
            // ... but not a big one, and a non-synchronising one ends its connection.
            QCOMPARE(other.send("y APPEND INBOX {9000+}\r\n"),
                     QByteArray("* BYE [LIMIT] Server busy: no room for this literal now, try again later\r\n"));
            QVERIFY(other.io.closed);
            QByteArray msg = "Subject: fits\r\n\r\n";
            msg += QByteArray(199975 - msg.size(), 'x');
            h.send(msg + "\r\n");
            QTRY_VERIFY(h.io.output.startsWith("b OK [APPENDUID "));  // stored on a worker thread
            QCOMPARE(budget.used(), qint64(0));
        }
    }

    // Sequence sets resolve to each message once, in order, however the ranges overlap
    // (they are merged as intervals, so "1:*" repeated over a long line costs one pass).
    void sequenceSets_data() {
        QTest::addColumn<QByteArray>("command");
        QTest::addColumn<QByteArray>("answer");
        QTest::newRow("overlaps and repeats") << QByteArray("FETCH 3,1:2,2:4,1,4 (UID)") << QByteArray("1 2 3 4");
        QTest::newRow("reversed range") << QByteArray("FETCH 4:2 (UID)") << QByteArray("2 3 4");
        QTest::newRow("star") << QByteArray("FETCH 4:* (UID)") << QByteArray("4 5");
        QTest::newRow("star repeated") << QByteArray("FETCH " + QByteArray("1:*,").repeated(200) + "1 (UID)")
                                       << QByteArray("1 2 3 4 5");
        QTest::newRow("uid set") << QByteArray("UID FETCH 5,2:3 (UID)") << QByteArray("2 3 5");
        QTest::newRow("uid n:* above every uid") << QByteArray("UID FETCH 99:* (UID)") << QByteArray("5");
        QTest::newRow("uid range past the end") << QByteArray("UID FETCH 4:4294967295 (UID)") << QByteArray("4 5");
        QTest::newRow("uid range matching nothing") << QByteArray("UID FETCH 6:99 (UID)") << QByteArray("");
        QTest::newRow("number past 2^32") << QByteArray("FETCH 4294967296 (UID)") << QByteArray("BAD");
        QTest::newRow("beyond the mailbox") << QByteArray("FETCH 9 (UID)") << QByteArray("BAD");
    }
    void sequenceSets() {
        QFETCH(QByteArray, command);
        QFETCH(QByteArray, answer);
        Harness h(4096, true);
        h.login();
        for (int i = 1; i <= 5; ++i) {
            const QByteArray msg = "Subject: m" + QByteArray::number(i) + "\r\n\r\nbody\r\n";
            h.send("p" + QByteArray::number(i) + " APPEND INBOX {" + QByteArray::number(msg.size()) + "+}\r\n" + msg +
                   "\r\n");
            QTRY_VERIFY(h.io.output.contains("p" + QByteArray::number(i) + " OK"));
            h.io.take();
        }
        QVERIFY(h.send("s SELECT INBOX\r\n").contains("s OK"));
        const QByteArray out = h.send("f " + command + "\r\n");
        if (answer == "BAD") {
            QVERIFY2(out.startsWith("f BAD "), out.constData());
            return;
        }
        QByteArray uids;
        for (const QByteArray& line : out.split('\n')) {
            const qsizetype at = line.indexOf("FETCH (UID ");
            if (at < 0) continue;
            uids += (uids.isEmpty() ? "" : " ") + line.mid(at + 11, line.indexOf(')', at) - at - 11);
        }
        QCOMPARE(uids, answer);
        QVERIFY(out.endsWith("f OK FETCH completed\r\n"));
    }

    // Dates are digits as the grammar has them: no sign, a 4-digit year (issue 16: numbers from
    // the client read strictly everywhere).
    void strictDates_data() {
        QTest::addColumn<QByteArray>("key");
        QTest::addColumn<bool>("valid");
        QTest::newRow("plain") << QByteArray("SINCE 1-Nov-2026") << true;
        QTest::newRow("two-digit day") << QByteArray("BEFORE 02-Nov-2026") << true;
        QTest::newRow("signed year") << QByteArray("SINCE 1-Nov-+026") << false;
        QTest::newRow("negative year") << QByteArray("SINCE 1-Nov--202") << false;
        QTest::newRow("signed day") << QByteArray("SINCE +1-Nov-2026") << false;
        QTest::newRow("five-digit year") << QByteArray("SINCE 1-Nov-20260") << false;
        QTest::newRow("huge day") << QByteArray("SINCE 99999999999999999999-Nov-2026") << false;
    }
    void strictDates() {
        QFETCH(QByteArray, key);
        QFETCH(bool, valid);
        Harness h(4096, true);
        h.login();
        QVERIFY(h.send("s SELECT INBOX\r\n").contains("s OK"));
        const QByteArray out = h.send("q SEARCH " + key + "\r\n");
        QVERIFY2(out.startsWith(valid ? "* SEARCH" : "q BAD "), out.constData());
    }

    void strictAppendDateTime_data() {
        QTest::addColumn<QByteArray>("date");
        QTest::addColumn<bool>("valid");
        QTest::newRow("plain") << QByteArray("\"05-Nov-2026 10:00:00 +0100\"") << true;
        QTest::newRow("space day") << QByteArray("\" 5-Nov-2026 10:00:00 -0330\"") << true;
        QTest::newRow("signed zone digits") << QByteArray("\"05-Nov-2026 10:00:00 +-100\"") << false;
        QTest::newRow("zone minutes 60") << QByteArray("\"05-Nov-2026 10:00:00 +0160\"") << false;
        QTest::newRow("signed year") << QByteArray("\"05-Nov-+026 10:00:00 +0100\"") << false;
    }
    void strictAppendDateTime() {
        QFETCH(QByteArray, date);
        QFETCH(bool, valid);
        Harness h(4096, true);
        h.login();
        const QByteArray msg = "Subject: d\r\n\r\nbody\r\n";
        test::feed(*h.session, h.buffer,
                   "d APPEND INBOX " + date + " {" + QByteArray::number(msg.size()) + "+}\r\n" + msg + "\r\n", 4096);
        if (valid)
            QTRY_VERIFY2(h.io.output.startsWith("d OK [APPENDUID "), h.io.output.constData());
        else
            QCOMPARE(h.io.take(), QByteArray("d BAD Bad date-time\r\n"));
    }

    void capabilitiesNameTheLiteralLimits() {
        Harness h(4096, true);
        const QByteArray greeting = h.io.take();
        QVERIFY2(greeting.contains(" LITERAL- ") && !greeting.contains("LITERAL+"), greeting.constData());
        const QByteArray loggedIn = h.send("l1 LOGIN alice@example.org secret\r\n");
        QVERIFY2(loggedIn.contains(" LITERAL+ ") && !loggedIn.contains("LITERAL-"), loggedIn.constData());
    }

    void loginDeadline() {
        SessionConfig c;
        c.loginDeadlineMs = 1234;
        Harness h(4096, false, c);
        QCOMPARE(h.io.deadline, qint64(1234));
        h.io.take();
        QCOMPARE(h.send("a NOOP\r\n"), QByteArray("a OK NOOP completed\r\n"));
        QCOMPARE(h.io.deadline, qint64(1234));  // commands do not move it
        h.session->deadlinePassed();
        QCOMPARE(h.io.take(), QByteArray("* BYE Login not completed in time\r\n"));
        QVERIFY(h.io.closed);
        QCOMPARE(h.io.closeReason, QStringLiteral("login deadline"));
    }

    void loginRemovesTheDeadline() {
        Harness h(4096, true);
        h.io.take();
        h.login();
        QCOMPARE(h.io.deadline, qint64(0));
        h.session->deadlinePassed();
        QCOMPARE(h.io.take(), QByteArray());
        QVERIFY(!h.io.closed);
    }

    // The deadline passes while the password is being checked: the late answer logs nobody in.
    void deadlineDuringPasswordCheck() {
        Harness h(4096, true);
        h.io.take();
        h.backend.deferred = true;
        QCOMPARE(h.send("a LOGIN alice@example.org secret\r\n"), QByteArray());
        QVERIFY(h.io.suspended);
        h.session->deadlinePassed();
        QCOMPARE(h.io.take(), QByteArray("* BYE Login not completed in time\r\n"));
        QVERIFY(h.backend.pending);
        h.backend.pending();
        QCOMPARE(h.io.take(), QByteArray());
    }
};

QTEST_GUILESS_MAIN(TstImapSessionInput)
#include "tst_imap_session_input.moc"
