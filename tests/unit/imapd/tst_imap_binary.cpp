// tst_imap_binary.cpp — FETCH BINARY helpers (RFC 3516): item parsing, part
// lookup (nested message/rfc822 included), base64 / quoted-printable decoding,
// UNKNOWN-CTE, and literal vs literal8 output.
#include "imapd/imap_binary.h"

#include <QtTest>

using namespace postern::imap;
using Status = BinaryResult::Status;

namespace {

QByteArray allOctets() {
    QByteArray b;
    for (int i = 0; i < 256; ++i) b += char(i);
    return b;
}

QByteArray base64Lines(const QByteArray& data) {
    const QByteArray b64 = data.toBase64();
    QByteArray out;
    for (qsizetype i = 0; i < b64.size(); i += 76) out += b64.mid(i, 76) + "\r\n";
    return out;
}

QByteArray sampleMessage() {
    return "From: a@example.test\r\nSubject: bin\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
           "boundary=\"B\"\r\n\r\n"
           "--B\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\n"
           "caf=C3=A9 soft=\r\nbreak=0D=0A\r\n"
           "--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
           base64Lines(allOctets()) +
           "--B\r\nContent-Type: application/x-thing\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n"
           "--B\r\nContent-Type: message/rfc822\r\n\r\n"
           "Subject: inner\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"
           "--B\r\nContent-Type: text/plain\r\n\r\nplain 7bit\r\n"
           "--B--\r\n";
}

}  // namespace

class TstImapBinary : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void parseItems_data() {
        QTest::addColumn<QByteArray>("atom");
        QTest::addColumn<bool>("valid");
        QTest::addColumn<bool>("peek");
        QTest::addColumn<bool>("sizeOnly");
        QTest::addColumn<QList<int>>("part");
        QTest::addColumn<qint64>("start");
        QTest::addColumn<qint64>("length");
        QTest::newRow("whole") << QByteArray("BINARY[]") << true << false << false << QList<int>{} << qint64(-1)
                               << qint64(-1);
        QTest::newRow("part") << QByteArray("binary[1]") << true << false << false << QList<int>{1} << qint64(-1)
                              << qint64(-1);
        QTest::newRow("peek partial") << QByteArray("BINARY.PEEK[2.10]<5.100>") << true << true << false
                                      << QList<int>{2, 10} << qint64(5) << qint64(100);
        QTest::newRow("size") << QByteArray("BINARY.SIZE[3]") << true << false << true << QList<int>{3} << qint64(-1)
                              << qint64(-1);
        QTest::newRow("size with partial")
            << QByteArray("BINARY.SIZE[3]<0.1>") << false << false << false << QList<int>{} << qint64(-1) << qint64(-1);
        QTest::newRow("text section") << QByteArray("BINARY[1.TEXT]") << false << false << false << QList<int>{}
                                      << qint64(-1) << qint64(-1);
        QTest::newRow("header section") << QByteArray("BINARY[HEADER]") << false << false << false << QList<int>{}
                                        << qint64(-1) << qint64(-1);
        QTest::newRow("zero part") << QByteArray("BINARY[0]") << false << false << false << QList<int>{} << qint64(-1)
                                   << qint64(-1);
        QTest::newRow("empty number") << QByteArray("BINARY[1..2]") << false << false << false << QList<int>{}
                                      << qint64(-1) << qint64(-1);
        QTest::newRow("zero length") << QByteArray("BINARY[1]<0.0>") << false << false << false << QList<int>{}
                                     << qint64(-1) << qint64(-1);
        // partial = "<" number64 "." nz-number64 ">": digits only, 63 bits, no wrap-around (issue 16).
        QTest::newRow("partial max") << QByteArray("BINARY[1]<9223372036854775807.9223372036854775807>") << true
                                     << false << false << QList<int>{1} << qint64(9223372036854775807)
                                     << qint64(9223372036854775807);
        QTest::newRow("partial 2^63") << QByteArray("BINARY[1]<9223372036854775808.1>") << false << false << false
                                      << QList<int>{} << qint64(-1) << qint64(-1);
        QTest::newRow("partial 2^64 length") << QByteArray("BINARY[1]<0.18446744073709551616>") << false << false
                                             << false << QList<int>{} << qint64(-1) << qint64(-1);
        QTest::newRow("partial plus sign")
            << QByteArray("BINARY[1]<+5.10>") << false << false << false << QList<int>{} << qint64(-1) << qint64(-1);
        QTest::newRow("partial minus zero")
            << QByteArray("BINARY[1]<-0.10>") << false << false << false << QList<int>{} << qint64(-1) << qint64(-1);
        QTest::newRow("partial empty start")
            << QByteArray("BINARY[1]<.10>") << false << false << false << QList<int>{} << qint64(-1) << qint64(-1);
        QTest::newRow("junk after") << QByteArray("BINARY[1]x") << false << false << false << QList<int>{} << qint64(-1)
                                    << qint64(-1);
        QTest::newRow("unclosed") << QByteArray("BINARY[1") << false << false << false << QList<int>{} << qint64(-1)
                                  << qint64(-1);
        QTest::newRow("not binary") << QByteArray("BODY[1]") << false << false << false << QList<int>{} << qint64(-1)
                                    << qint64(-1);
        QTest::newRow("too deep") << QByteArray("BINARY[" + QByteArray("1.").repeated(32) + "1]") << false << false
                                  << false << QList<int>{} << qint64(-1) << qint64(-1);
    }
    void parseItems() {
        QFETCH(QByteArray, atom);
        QFETCH(bool, valid);
        const auto it = parseBinaryItem(atom);
        QCOMPARE(it.has_value(), valid);
        if (!valid) return;
        QFETCH(bool, peek);
        QFETCH(bool, sizeOnly);
        QFETCH(QList<int>, part);
        QFETCH(qint64, start);
        QFETCH(qint64, length);
        QCOMPARE(it->peek, peek);
        QCOMPARE(it->sizeOnly, sizeOnly);
        QCOMPARE(it->part, part);
        QCOMPARE(it->partialStart, start);
        QCOMPARE(it->partialLength, length);
    }

    void sections() {
        const QByteArray msg = sampleMessage();
        const postern::mail::MimePart root = postern::mail::parseMime(msg);
        auto get = [&](const QList<int>& p) { return binarySection(msg, root, p); };

        BinaryResult r = get({1});
        QCOMPARE(r.status, Status::Ok);
        QCOMPARE(r.data, QByteArray("caf\xc3\xa9 softbreak\r\n"));  // QP, soft line break joined

        r = get({2});
        QCOMPARE(r.status, Status::Ok);
        QCOMPARE(r.data, allOctets());  // base64 back to the exact bytes, NUL included

        QCOMPARE(get({3}).status, Status::UnknownCte);

        r = get({4});  // message/rfc822 as it is
        QCOMPARE(r.status, Status::Ok);
        QVERIFY(r.data.startsWith("Subject: inner\r\n"));
        r = get({4, 1});  // the body of the inner message, its own base64 removed
        QCOMPARE(r.status, Status::Ok);
        QCOMPARE(r.data, QByteArray("hello"));

        r = get({5});
        QCOMPARE(r.status, Status::Ok);
        QCOMPARE(r.data, QByteArray("plain 7bit"));

        QCOMPARE(get({}).data, msg);
        QCOMPARE(get({9}).status, Status::NoSuchPart);
        QCOMPARE(get({2, 1}).status, Status::NoSuchPart);  // a leaf has no parts
        QCOMPARE(get({4, 2}).status, Status::NoSuchPart);
    }

    void singlePartMessage() {
        const QByteArray msg = "Subject: s\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n";
        const auto root = postern::mail::parseMime(msg);
        const BinaryResult r = binarySection(msg, root, {1});
        QCOMPARE(r.status, Status::Ok);
        QCOMPARE(r.data, QByteArray("\x00\x01\x02", 3));
        QCOMPARE(binarySection(msg, root, {2}).status, Status::NoSuchPart);
    }

    void decodeTransferEncodings() {
        QCOMPARE(decodeTransfer("a=3Db", QStringLiteral("quoted-printable")), std::optional<QByteArray>("a=b"));
        QCOMPARE(decodeTransfer("YQ==", QStringLiteral("base64")), std::optional<QByteArray>("a"));
        QCOMPARE(decodeTransfer("as is=3D", QStringLiteral("7bit")), std::optional<QByteArray>("as is=3D"));
        QCOMPARE(decodeTransfer("as is", QStringLiteral("8bit")), std::optional<QByteArray>("as is"));
        QCOMPARE(decodeTransfer("as is", QStringLiteral("binary")), std::optional<QByteArray>("as is"));
        QVERIFY(!decodeTransfer("x", QStringLiteral("x-uuencode")));
        QVERIFY(!decodeTransfer("x", QStringLiteral("base65")));
    }

    void literals() {
        QCOMPARE(binaryLiteral("abc"), QByteArray("{3}\r\nabc"));
        QCOMPARE(binaryLiteral(QByteArray("a\0b", 3)), QByteArray("~{3}\r\na\0b", 9));
        QCOMPARE(binaryLiteral("\xff\r\n"), QByteArray("{3}\r\n\xff\r\n"));  // 8-bit without NUL: a plain literal
        QCOMPARE(binaryLiteral(""), QByteArray("{0}\r\n"));
    }
};

QTEST_GUILESS_MAIN(TstImapBinary)
#include "tst_imap_binary.moc"
