// tst_smtp_reply_reader.cpp — the outbound client's reply reader, fed whole,
// byte by byte and in random pieces: multi-line replies, CRLF and bare LF,
// and every limit at its boundary (a hostile MX must not make postern-queued
// buffer without bound or accept a reply that changes its code).
#include "queued/smtp_reply_reader.h"

#include <QRandomGenerator>
#include <QTest>

using namespace postern::outbound;

namespace {
// Feeds `input` in pieces of the given size (0: whole); returns the replies as "code:line|line" strings.
QStringList run(const QByteArray& input, int piece, QString* error) {
    SmtpReplyReader r;
    QStringList out;
    const qsizetype step = piece <= 0 ? qMax<qsizetype>(1, input.size()) : piece;
    for (qsizetype i = 0; i < input.size(); i += step)
        for (const SmtpReply& reply : r.feed(input.mid(i, step)))
            out << QString::number(reply.code) + u':' + reply.lines.join(u'|');
    *error = r.error();
    return out;
}
}  // namespace

class TstSmtpReplyReader : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void replies_data() {
        QTest::addColumn<QByteArray>("input");
        QTest::addColumn<QStringList>("replies");
        QTest::addColumn<bool>("fails");
        QTest::newRow("one line") << QByteArray("220 mx.test ESMTP\r\n") << QStringList{"220:mx.test ESMTP"} << false;
        QTest::newRow("multi-line EHLO") << QByteArray("250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
                                         << QStringList{"250:mx.test|PIPELINING|STARTTLS"} << false;
        QTest::newRow("bare code") << QByteArray("250\r\n") << QStringList{"250:"} << false;
        QTest::newRow("bare LF") << QByteArray("250-a\n250 b\n") << QStringList{"250:a|b"} << false;
        QTest::newRow("two replies pipelined")
            << QByteArray("250 ok\r\n550 5.1.1 no\r\n") << QStringList{"250:ok", "550:5.1.1 no"} << false;
        QTest::newRow("incomplete reply waits") << QByteArray("250-a\r\n250-b\r\n") << QStringList{} << false;
        QTest::newRow("1yz code refused") << QByteArray("150 go on\r\n") << QStringList{} << true;
        QTest::newRow("6yz code refused") << QByteArray("650 x\r\n") << QStringList{} << true;
        QTest::newRow("signed code refused") << QByteArray("+25 x\r\n") << QStringList{} << true;
        QTest::newRow("letters refused") << QByteArray("25a x\r\n") << QStringList{} << true;
        QTest::newRow("short line refused") << QByteArray("25\r\n") << QStringList{} << true;
        QTest::newRow("bad separator refused") << QByteArray("250_x\r\n") << QStringList{} << true;
        QTest::newRow("code changes mid-reply") << QByteArray("250-a\r\n550 b\r\n") << QStringList{} << true;
        QTest::newRow("reply before an error is kept")
            << QByteArray("220 hi\r\nxyz\r\n") << QStringList{"220:hi"} << true;
    }
    void replies() {
        QFETCH(QByteArray, input);
        QFETCH(QStringList, replies);
        QFETCH(bool, fails);
        for (int piece : {0, 1, 2, 3, 7}) {
            QString error;
            QCOMPARE(run(input, piece, &error), replies);
            QCOMPARE(!error.isEmpty(), fails);
        }
    }

    // kMaxLine octets (CRLF excluded) pass; one more fails, however it arrives.
    void lineLimit() {
        const QByteArray text(SmtpReplyReader::kMaxLine - 4, 'x');
        for (int piece : {0, 1, 1000}) {
            QString error;
            QCOMPARE(run("250 " + text + "\r\n", piece, &error), QStringList{"250:" + QString::fromLatin1(text)});
            QVERIFY(error.isEmpty());
            QCOMPARE(run("250 " + text + "x\r\n", piece, &error), QStringList{});
            QVERIFY(error.contains(u"longer than"));
        }
    }

    // An endless line without LF is refused once it passes the limit: nothing is buffered beyond it.
    void endlessLineIsRefused() {
        SmtpReplyReader r;
        const QByteArray chunk(1000, 'y');
        int fed = 0;
        while (!r.failed() && fed < 100) {
            QVERIFY(r.feed(chunk).isEmpty());
            ++fed;
        }
        QVERIFY(r.failed());
        QVERIFY(fed * 1000 <= SmtpReplyReader::kMaxPending + 1000);
        QVERIFY(r.feed("250 late\r\n").isEmpty());  // stays failed
    }

    // kMaxLines lines in one reply pass; one more fails (an endless "250-" stream is cut off).
    void linesPerReplyLimit() {
        QByteArray many;
        for (int i = 0; i < SmtpReplyReader::kMaxLines - 1; ++i) many += "250-line\r\n";
        QString error;
        QCOMPARE(run(many + "250 end\r\n", 0, &error).size(), 1);
        QVERIFY(error.isEmpty());
        QCOMPARE(run(many + "250-one more\r\n250 end\r\n", 0, &error), QStringList{});
        QVERIFY(error.contains(u"lines"));
    }

    void randomSplitsAgreeWithWhole() {
        QByteArray input;
        for (int i = 0; i < 50; ++i)
            input += "250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n354 go\r\n451 4.3.0 later\r\n";
        QString error;
        const QStringList whole = run(input, 0, &error);
        QCOMPARE(whole.size(), 150);
        auto* rng = QRandomGenerator::global();
        for (int round = 0; round < 20; ++round) {
            SmtpReplyReader r;
            QStringList got;
            for (qsizetype i = 0; i < input.size();) {
                const qsizetype n = 1 + rng->bounded(40);
                for (const SmtpReply& reply : r.feed(input.mid(i, n)))
                    got << QString::number(reply.code) + u':' + reply.lines.join(u'|');
                i += n;
            }
            QCOMPARE(got, whole);
        }
    }
};

QTEST_GUILESS_MAIN(TstSmtpReplyReader)
#include "tst_smtp_reply_reader.moc"
