// tst_dsn_params.cpp — RFC 3461 xtext, ORCPT (rfc822 and RFC 6533 utf-8) and
// ENVID, byte for byte: encoding, strict decoding, the canonical form sent to
// peers, values from older queue files, and the Original-Recipient text.
#include "common/mail/dsn_params.h"

#include <QtTest>

using namespace postern::mail;

class TstDsnParams : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void xtextEncode_data() {
        QTest::addColumn<QByteArray>("raw");
        QTest::addColumn<QByteArray>("xtext");
        QTest::newRow("plain") << QByteArray("alice@example.test") << QByteArray("alice@example.test");
        QTest::newRow("plus") << QByteArray("a+b@x") << QByteArray("a+2Bb@x");
        QTest::newRow("equals") << QByteArray("a=b") << QByteArray("a+3Db");
        QTest::newRow("space and tab") << QByteArray("a b\tc") << QByteArray("a+20b+09c");
        QTest::newRow("controls and DEL") << QByteArray("\x01\x7f", 2) << QByteArray("+01+7F");
        QTest::newRow("NUL") << QByteArray("\0", 1) << QByteArray("+00");
        QTest::newRow("utf-8 octets") << QByteArray("j\xc3\xb6rg") << QByteArray("j+C3+B6rg");
        QTest::newRow("edges kept") << QByteArray("!~\\\"") << QByteArray("!~\\\"");
        QTest::newRow("empty") << QByteArray() << QByteArray();
    }
    void xtextEncode() {
        QFETCH(QByteArray, raw);
        QFETCH(QByteArray, xtext);
        QCOMPARE(encodeXtext(raw), xtext);
        QCOMPARE(decodeXtext(xtext).value(), raw);
    }

    void xtextDecodeStrict_data() {
        QTest::addColumn<QByteArray>("xtext");
        QTest::newRow("lower-case hex") << QByteArray("a+2bb");
        QTest::newRow("one hex digit") << QByteArray("a+2");
        QTest::newRow("lone plus") << QByteArray("a+");
        QTest::newRow("plus then non-hex") << QByteArray("a+b@x");
        QTest::newRow("signed number") << QByteArray("+-1");
        QTest::newRow("space in hex") << QByteArray("+ 1");
        QTest::newRow("equals") << QByteArray("a=b");
        QTest::newRow("space") << QByteArray("a b");
        QTest::newRow("8-bit") << QByteArray("j\xc3\xb6rg");
        QTest::newRow("control") << QByteArray("a\x01");
    }
    void xtextDecodeStrict() {
        QFETCH(QByteArray, xtext);
        QVERIFY(!decodeXtext(xtext));
    }

    void utf8AddrXtext_data() {
        QTest::addColumn<QString>("address");
        QTest::addColumn<QByteArray>("encoded");
        QTest::newRow("ascii") << QStringLiteral("a@b.test") << QByteArray("a@b.test");
        QTest::newRow("latin-1 range, 2 digits") << QString::fromUtf8("jörg@b.test") << QByteArray("j\\x{F6}rg@b.test");
        QTest::newRow("3 digits") << QString::fromUtf8("ā@b") << QByteArray("\\x{101}@b");
        QTest::newRow("4 digits") << QString::fromUtf8("用户@例子.广告")
                                  << QByteArray("\\x{7528}\\x{6237}@\\x{4F8B}\\x{5B50}.\\x{5E7F}\\x{544A}");
        QTest::newRow("5 digits") << QString::fromUtf8("😀@b") << QByteArray("\\x{1F600}@b");
        QTest::newRow("specials") << QStringLiteral("a+b=c\\d e@x")
                                  << QByteArray("a\\x{2B}b\\x{3D}c\\x{5C}d\\x{20}e@x");
    }
    void utf8AddrXtext() {
        QFETCH(QString, address);
        QFETCH(QByteArray, encoded);
        QCOMPARE(encodeUtf8AddrXtext(address), encoded);
        QCOMPARE(decodeUtf8Addr(encoded, false).value(), address);
        // The xtext form is also valid xtext (all octets are xchars): safe for any DSN server.
        QVERIFY(decodeXtext(encoded).has_value());
    }

    void utf8AddrStrict_data() {
        QTest::addColumn<QByteArray>("text");
        QTest::addColumn<bool>("raw");
        QTest::addColumn<bool>("ok");
        QTest::newRow("unitext with SMTPUTF8") << QByteArray("j\xc3\xb6rg@b") << true << true;
        QTest::newRow("unitext without SMTPUTF8") << QByteArray("j\xc3\xb6rg@b") << false << false;
        QTest::newRow("broken UTF-8") << QByteArray("j\xc3rg@b") << true << false;
        QTest::newRow("lower-case hex") << QByteArray("j\\x{f6}rg@b") << false << false;
        QTest::newRow("one digit") << QByteArray("\\x{A}@b") << false << false;
        QTest::newRow("seven digits") << QByteArray("\\x{1000000}@b") << false << false;
        QTest::newRow("leading zero") << QByteArray("\\x{00F6}@b") << false << false;
        QTest::newRow("surrogate") << QByteArray("\\x{D800}@b") << false << false;
        QTest::newRow("above U+10FFFF") << QByteArray("\\x{110000}@b") << false << false;
        QTest::newRow("U+10FFFF") << QByteArray("\\x{10FFFF}@b") << false << true;
        QTest::newRow("embedded plain letter") << QByteArray("\\x{41}@b") << false << false;
        QTest::newRow("embedded NUL") << QByteArray("\\x{00}@b") << false << false;
        QTest::newRow("embedded LF") << QByteArray("\\x{0A}@b") << false << false;
        QTest::newRow("raw plus") << QByteArray("a+b@x") << true << false;
        QTest::newRow("raw backslash") << QByteArray("a\\b@x") << true << false;
        QTest::newRow("unterminated") << QByteArray("\\x{F6") << false << false;
        QTest::newRow("empty") << QByteArray() << true << false;
    }
    void utf8AddrStrict() {
        QFETCH(QByteArray, text);
        QFETCH(bool, raw);
        QFETCH(bool, ok);
        QCOMPARE(decodeUtf8Addr(text, raw).has_value(), ok);
    }

    void parseOrcpt_data() {
        QTest::addColumn<QByteArray>("value");
        QTest::addColumn<bool>("smtpUtf8");
        QTest::addColumn<QString>("address");  // "" = refused
        QTest::addColumn<QByteArray>("canonical");
        QTest::newRow("rfc822") << QByteArray("rfc822;a@x.test") << false << QStringLiteral("a@x.test")
                                << QByteArray("rfc822;a@x.test");
        QTest::newRow("rfc822 plus") << QByteArray("rfc822;a+2Bb@x.test") << false << QStringLiteral("a+b@x.test")
                                     << QByteArray("rfc822;a+2Bb@x.test");
        QTest::newRow("type case kept") << QByteArray("RFC822;a@x") << false << QStringLiteral("a@x")
                                        << QByteArray("RFC822;a@x");
        QTest::newRow("over-encoded, canonicalised")
            << QByteArray("rfc822;+61@x") << false << QStringLiteral("a@x") << QByteArray("rfc822;a@x");
        QTest::newRow("unencoded plus") << QByteArray("rfc822;a+b@x.test") << false << QString() << QByteArray();
        QTest::newRow("lower-case hex") << QByteArray("rfc822;a+2bb@x.test") << false << QString() << QByteArray();
        QTest::newRow("utf-8 octets in rfc822")
            << QByteArray("rfc822;j+C3+B6rg@x") << false << QString() << QByteArray();
        QTest::newRow("no type") << QByteArray(";a@x") << false << QString() << QByteArray();
        QTest::newRow("no semicolon") << QByteArray("a@x") << false << QString() << QByteArray();
        QTest::newRow("empty address") << QByteArray("rfc822;") << false << QString() << QByteArray();
        QTest::newRow("bad type") << QByteArray("rfc 822;a@x") << false << QString() << QByteArray();
        QTest::newRow("utf-8 xtext") << QByteArray("utf-8;j\\x{F6}rg@x") << false << QString::fromUtf8("jörg@x")
                                     << QByteArray("utf-8;j\\x{F6}rg@x");
        QTest::newRow("utf-8 unitext with SMTPUTF8") << QByteArray("utf-8;j\xc3\xb6rg@x") << true
                                                     << QString::fromUtf8("jörg@x") << QByteArray("utf-8;j\\x{F6}rg@x");
        QTest::newRow("utf-8 unitext without SMTPUTF8")
            << QByteArray("utf-8;j\xc3\xb6rg@x") << false << QString() << QByteArray();
        QTest::newRow("raw equals") << QByteArray("x400;c=de") << false << QString() << QByteArray();
        QTest::newRow("other type") << QByteArray("x400;c+3Dde+3Ba+3Dx") << false << QStringLiteral("c=de;a=x")
                                    << QByteArray("x400;c+3Dde;a+3Dx");
    }
    void parseOrcpt() {
        QFETCH(QByteArray, value);
        QFETCH(bool, smtpUtf8);
        QFETCH(QString, address);
        QFETCH(QByteArray, canonical);
        const auto o = postern::mail::parseOrcpt(value, smtpUtf8);
        if (address.isEmpty()) {
            QVERIFY(!o);
            return;
        }
        QVERIFY(o);
        QCOMPARE(o->address, address);
        QCOMPARE(formatOrcpt(*o), canonical);
    }

    void orcptLength() {
        const QByteArray prefix = "rfc822;";
        QByteArray at = prefix + QByteArray(kMaxOrcptLength - prefix.size() - 2, 'a') + "@x";
        QCOMPARE(at.size(), kMaxOrcptLength);
        QVERIFY(postern::mail::parseOrcpt(at, false));
        QVERIFY(!postern::mail::parseOrcpt("a" + at, false));
    }

    void forAddress_data() {
        QTest::addColumn<QString>("address");
        QTest::addColumn<QByteArray>("orcpt");
        QTest::newRow("plus address") << QStringLiteral("list+tag@example.test")
                                      << QByteArray("rfc822;list+2Btag@example.test");
        QTest::newRow("quoted with space") << QStringLiteral("\"a b\"@x") << QByteArray("rfc822;\"a+20b\"@x");
        QTest::newRow("utf-8") << QString::fromUtf8("jörg@例子.test")
                               << QByteArray("utf-8;j\\x{F6}rg@\\x{4F8B}\\x{5B50}.test");
    }
    void forAddress() {
        QFETCH(QString, address);
        QFETCH(QByteArray, orcpt);
        QCOMPARE(orcptForAddress(address), orcpt);
        QCOMPARE(storedOrcpt(QString::fromLatin1(orcpt))->address, address);
    }

    void stored_data() {
        QTest::addColumn<QString>("stored");
        QTest::addColumn<QByteArray>("sent");  // "" = not sent
        QTest::addColumn<QString>("report");
        QTest::newRow("canonical") << QStringLiteral("rfc822;a+2Bb@x") << QByteArray("rfc822;a+2Bb@x")
                                   << QStringLiteral("rfc822; a+b@x");
        QTest::newRow("legacy plus, unencoded")
            << QStringLiteral("rfc822;list+tag@example.test") << QByteArray("rfc822;list+2Btag@example.test")
            << QStringLiteral("rfc822; list+tag@example.test");
        QTest::newRow("legacy utf-8, unencoded")
            << QString::fromUtf8("rfc822;jörg@x") << QByteArray("utf-8;j\\x{F6}rg@x")
            << QStringLiteral("utf-8; j\\x{F6}rg@x");
        QTest::newRow("utf-8 canonical") << QStringLiteral("utf-8;j\\x{F6}rg@x") << QByteArray("utf-8;j\\x{F6}rg@x")
                                         << QStringLiteral("utf-8; j\\x{F6}rg@x");
        QTest::newRow("garbage") << QStringLiteral("no semicolon") << QByteArray() << QString();
        QTest::newRow("space in legacy value") << QStringLiteral("rfc822;a b@x+") << QByteArray() << QString();
    }
    void stored() {
        QFETCH(QString, stored);
        QFETCH(QByteArray, sent);
        QFETCH(QString, report);
        const auto o = storedOrcpt(stored);
        if (sent.isEmpty()) {
            QVERIFY(!o);
            return;
        }
        QVERIFY(o);
        QCOMPARE(formatOrcpt(*o), sent);
        QCOMPARE(orcptForReport(*o), report);
        // What we send always passes our own strict parser (and so a strict peer's).
        QVERIFY(postern::mail::parseOrcpt(sent, false));
    }

    void envid() {
        QCOMPARE(decodeEnvid("abc+2Bdef").value(), QStringLiteral("abc+def"));
        QCOMPARE(decodeEnvid(QByteArray(kMaxEnvidLength, 'x')).value().size(), kMaxEnvidLength);
        QVERIFY(!decodeEnvid(QByteArray(kMaxEnvidLength + 1, 'x')));
        QVERIFY(!decodeEnvid("a+0A"));     // decodes to a line feed
        QVERIFY(!decodeEnvid("a+C3+B6"));  // not ASCII
        QVERIFY(!decodeEnvid("a+2b"));
        QVERIFY(!decodeEnvid(""));
        QCOMPARE(encodeXtext("id 1+2"), QByteArray("id+201+2B2"));
    }
};

QTEST_GUILESS_MAIN(TstDsnParams)
#include "tst_dsn_params.moc"
