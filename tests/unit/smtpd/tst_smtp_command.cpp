// tst_smtp_command.cpp — SMTP command-line parsing: verbs, paths, ESMTP
// parameters, the relay-trick address forms, and every syntax error.
#include "smtpd/smtp_command.h"

#include <QtTest>

using namespace postern::smtp;

class TstSmtpCommand : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void paths_data() {
        QTest::addColumn<QByteArray>("line");
        QTest::addColumn<QString>("address");
        QTest::addColumn<bool>("quoted");
        QTest::addColumn<bool>("route");
        QTest::newRow("plain") << QByteArray("MAIL FROM:<a@example.org>") << "a@example.org" << false << false;
        QTest::newRow("space after colon")
            << QByteArray("MAIL FROM: <a@example.org>") << "a@example.org" << false << false;
        QTest::newRow("lower verb") << QByteArray("mail from:<a@example.org>") << "a@example.org" << false << false;
        QTest::newRow("null") << QByteArray("MAIL FROM:<>") << "" << false << false;
        QTest::newRow("quoted") << QByteArray("RCPT TO:<\"user@other\"@example.org>") << "\"user@other\"@example.org"
                                << true << false;
        QTest::newRow("quoted escape") << QByteArray("RCPT TO:<\"a\\\"b\"@example.org>") << "\"a\\\"b\"@example.org"
                                       << true << false;
        QTest::newRow("source route") << QByteArray("RCPT TO:<@relay.test,@b.test:user@example.org>")
                                      << "user@example.org" << false << true;
        QTest::newRow("percent hack") << QByteArray("RCPT TO:<user%other.test@example.org>")
                                      << "user%other.test@example.org" << false << false;
        QTest::newRow("bang path") << QByteArray("RCPT TO:<other.test!user@example.org>")
                                   << "other.test!user@example.org" << false << false;
        QTest::newRow("literal") << QByteArray("RCPT TO:<u@[192.0.2.1]>") << "u@[192.0.2.1]" << false << false;
        QTest::newRow("literal v6") << QByteArray("RCPT TO:<u@[IPv6:2001:db8::1]>") << "u@[IPv6:2001:db8::1]" << false
                                    << false;
        QTest::newRow("postmaster") << QByteArray("RCPT TO:<Postmaster>") << "postmaster" << false << false;
        QTest::newRow("utf8") << QByteArray("RCPT TO:<jörg@bücher.example>") << QString::fromUtf8("jörg@bücher.example")
                              << false << false;
    }
    void paths() {
        QFETCH(QByteArray, line);
        QFETCH(QString, address);
        QFETCH(bool, quoted);
        QFETCH(bool, route);
        ParseResult r = parseCommand(line);
        if (auto* e = std::get_if<ParseError>(&r)) QFAIL(qPrintable(e->reply.summary()));
        const Command& c = std::get<Command>(r);
        QCOMPARE(c.path.address(), address);
        QCOMPARE(c.path.quotedLocal, quoted);
        QCOMPARE(c.path.hadSourceRoute, route);
    }

    void params() {
        ParseResult r = parseCommand("MAIL FROM:<a@b.test> SIZE=1000 BODY=8BITMIME SMTPUTF8 ENVID=abc+2Bdef RET=HDRS");
        const Command& c = std::get<Command>(r);
        QCOMPARE(c.param(QStringLiteral("SIZE")), QStringLiteral("1000"));
        QCOMPARE(c.param(QStringLiteral("BODY")), QStringLiteral("8BITMIME"));
        QVERIFY(c.hasParam(QStringLiteral("SMTPUTF8")));
        QCOMPARE(c.param(QStringLiteral("RET")), QStringLiteral("HDRS"));
        QCOMPARE(*decodeXtext(c.param(QStringLiteral("ENVID"))), QStringLiteral("abc+def"));
        ParseResult q = parseCommand("RCPT TO:<\"a b\"@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+40y");
        QCOMPARE(std::get<Command>(q).path.local, QStringLiteral("a b"));
        QCOMPARE(std::get<Command>(q).param(QStringLiteral("NOTIFY")), QStringLiteral("SUCCESS,FAILURE"));
    }

    void errors_data() {
        QTest::addColumn<QByteArray>("line");
        QTest::addColumn<int>("code");
        QTest::addColumn<QString>("enhanced");
        QTest::newRow("unknown verb") << QByteArray("FROB x") << 500 << "5.5.2";
        QTest::newRow("empty") << QByteArray("") << 500 << "5.5.2";
        QTest::newRow("no colon") << QByteArray("MAIL <a@b.test>") << 501 << "5.5.4";
        QTest::newRow("no brackets") << QByteArray("MAIL FROM:a@b.test") << 501 << "5.5.4";
        QTest::newRow("unterminated") << QByteArray("MAIL FROM:<a@b.test") << 501 << "5.5.4";
        QTest::newRow("no domain") << QByteArray("RCPT TO:<user>") << 501 << "5.1.3";
        QTest::newRow("bad domain") << QByteArray("RCPT TO:<u@bad..test>") << 501 << "5.1.3";
        QTest::newRow("double dot local") << QByteArray("RCPT TO:<a..b@x.test>") << 501 << "5.1.3";
        QTest::newRow("null rcpt") << QByteArray("RCPT TO:<>") << 501 << "5.1.3";
        QTest::newRow("bad literal") << QByteArray("RCPT TO:<u@[999.1.1.1]>") << 501 << "5.1.3";
        QTest::newRow("unterminated quote") << QByteArray("RCPT TO:<\"abc@x.test>") << 501 << "5.5.4";
        QTest::newRow("junk after path") << QByteArray("MAIL FROM:<a@b.test>junk") << 501 << "5.5.4";
        QTest::newRow("bad param") << QByteArray("MAIL FROM:<a@b.test> -X=1") << 501 << "5.5.4";
        QTest::newRow("empty param value") << QByteArray("MAIL FROM:<a@b.test> SIZE=") << 501 << "5.5.4";
        QTest::newRow("duplicate param") << QByteArray("MAIL FROM:<a@b.test> SIZE=1 SIZE=2") << 501 << "5.5.4";
        QTest::newRow("data with arg") << QByteArray("DATA now") << 501 << "5.5.4";
        QTest::newRow("ehlo without name") << QByteArray("EHLO") << 501 << "5.5.4";
        QTest::newRow("control char") << QByteArray("NOOP \x01") << 500 << "5.5.2";
        QTest::newRow("invalid utf8") << QByteArray("NOOP \xff") << 500 << "5.5.2";
        QTest::newRow("local part 65") << QByteArray("RCPT TO:<") + QByteArray(65, 'a') + "@x.test>" << 501 << "5.1.3";
        // RFC 5321 4.5.3.1.4: 512 octets with CRLF, i.e. 510 here (the 510-octet rows are in lineLimit()).
        QTest::newRow("ehlo 511") << "EHLO " + QByteArray(506, 'a') << 500 << "5.5.2";
        QTest::newRow("helo 511") << "HELO " + QByteArray(506, 'a') << 500 << "5.5.2";
        QTest::newRow("vrfy 511") << "VRFY " + QByteArray(506, 'a') << 500 << "5.5.2";
        QTest::newRow("mail postmaster") << QByteArray("MAIL FROM:<Postmaster>") << 501 << "5.1.7";
    }
    void errors() {
        QFETCH(QByteArray, line);
        QFETCH(int, code);
        QFETCH(QString, enhanced);
        ParseResult r = parseCommand(line);
        QVERIFY(std::holds_alternative<ParseError>(r));
        QCOMPARE(std::get<ParseError>(r).reply.code, code);
        QCOMPARE(std::get<ParseError>(r).reply.enhanced, enhanced);
    }

    // The longest lines that pass (510 octets + CRLF = 512), and MAIL/RCPT/AUTH beyond it.
    void lineLimit_data() {
        QTest::addColumn<QByteArray>("line");
        QTest::addColumn<int>("verb");
        QTest::newRow("ehlo 510") << "EHLO " + QByteArray(505, 'a') << int(Verb::Ehlo);
        QTest::newRow("helo 510") << "HELO " + QByteArray(505, 'a') << int(Verb::Helo);
        QTest::newRow("rcpt 600") << "RCPT TO:<a@x.test> ORCPT=rfc822;" + QByteArray(568, 'b') << int(Verb::Rcpt);
        QTest::newRow("mail 600") << "MAIL FROM:<a@x.test> ENVID=" + QByteArray(573, 'b') << int(Verb::Mail);
        QTest::newRow("auth 600") << "AUTH PLAIN " + QByteArray(589, 'A') << int(Verb::Auth);
    }
    void lineLimit() {
        QFETCH(QByteArray, line);
        QFETCH(int, verb);
        QVERIFY(line.size() == kMaxBaseCommandLine - 2 || line.size() == 600);
        ParseResult r = parseCommand(line);
        if (auto* e = std::get_if<ParseError>(&r)) QFAIL(qPrintable(e->reply.summary()));
        QCOMPARE(int(std::get<Command>(r).verb), verb);
    }

    void xtext() {
        QCOMPARE(*decodeXtext(QStringLiteral("a+2Bb")), QStringLiteral("a+b"));
        QVERIFY(!decodeXtext(QStringLiteral("a+2")).has_value());
        QVERIFY(!decodeXtext(QStringLiteral("a=b")).has_value());
        QVERIFY(!decodeXtext(QStringLiteral("a b")).has_value());
        // RFC 3461 4: hexchar is "+" and two upper-case hex digits; the decoded value is printable ASCII.
        QVERIFY(!decodeXtext(QStringLiteral("a+2bb")).has_value());
        QVERIFY(!decodeXtext(QStringLiteral("a+ 1")).has_value());
        QVERIFY(!decodeXtext(QStringLiteral("a+0A")).has_value());
        QVERIFY(!decodeXtext(QStringLiteral("a+C3+B6")).has_value());
    }

    void replyRendering() {
        Reply r(250, QStringLiteral("2.0.0"), QStringList{QStringLiteral("one"), QStringLiteral("two\r\nINJECT")});
        QCOMPARE(r.render(), QByteArray("250-2.0.0 one\r\n250 2.0.0 two??INJECT\r\n"));
        QCOMPARE(Reply(220, QString(), QStringLiteral("hi")).render(), QByteArray("220 hi\r\n"));
    }
};

QTEST_GUILESS_MAIN(TstSmtpCommand)
#include "tst_smtp_command.moc"
