// tst_smtp_data.cpp — the DATA reader and content checker: only CRLF.CRLF
// ends a message (every SMTP-smuggling variant is tested fed one byte at a
// time and in random splits), dot-unstuffing, bare LF/CR policy, and every
// content limit exactly at its boundary.
#include "smtpd/smtp_data.h"

#include <QRandomGenerator>
#include <QtTest>

using namespace postern::smtp;

namespace {
class MemorySink : public BodySink {
public:
    QByteArray data;
    qint64 failAfter = -1;
    bool write(const char* d, qsizetype n) override {
        if (failAfter >= 0 && data.size() + n > failAfter) return false;
        data.append(d, n);
        return true;
    }
    int errorCode() const override { return 28; }  // ENOSPC
};

struct Run {
    QByteArray stored;
    qsizetype consumed = 0;
    bool done = false;
    ContentIssue issue = ContentIssue::None;
};

// Feeds `input` in pieces of `chunk` bytes (0 = random sizes) until the reader says done.
Run read(const QByteArray& input, int chunk, ContentLimits limits = {}) {
    MemorySink sink;
    ContentChecker checker(limits, &sink);
    DataReader reader(&checker);
    Run r;
    QByteArray pending;
    qsizetype offset = 0;
    while (offset < input.size() && !reader.done()) {
        const int n = chunk > 0 ? chunk : 1 + int(QRandomGenerator::global()->bounded(7));
        pending += input.mid(offset, n);
        offset += n;
        const qsizetype used = reader.feed(pending.constData(), pending.size());
        r.consumed += used;
        pending.remove(0, used);
    }
    r.done = reader.done();
    r.stored = sink.data;
    r.issue = checker.issue();
    return r;
}
}  // namespace

class TstSmtpData : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void ends_data() {
        QTest::addColumn<QByteArray>("input");
        QTest::addColumn<QByteArray>("stored");
        QTest::addColumn<int>("consumed");  // -1: all of input
        QTest::newRow("simple") << QByteArray("Subject: x\r\n\r\nbody\r\n.\r\n")
                                << QByteArray("Subject: x\r\n\r\nbody\r\n") << -1;
        QTest::newRow("empty message") << QByteArray(".\r\n") << QByteArray() << -1;
        QTest::newRow("dot stuffing") << QByteArray("..line\r\n...\r\n.\r\n") << QByteArray(".line\r\n..\r\n") << -1;
        QTest::newRow("pipelined after end") << QByteArray("a\r\n.\r\nQUIT\r\n") << QByteArray("a\r\n") << 6;
        QTest::newRow("dot not at line start") << QByteArray("a.\r\nb\r\n.\r\n") << QByteArray("a.\r\nb\r\n") << -1;
    }
    void ends() {
        QFETCH(QByteArray, input);
        QFETCH(QByteArray, stored);
        QFETCH(int, consumed);
        for (int chunk : {1, 2, 3, 1000, 0, 0, 0}) {
            Run r = read(input, chunk);
            QVERIFY(r.done);
            QCOMPARE(r.stored, stored);
            QCOMPARE(r.consumed, consumed < 0 ? input.size() : qsizetype(consumed));
            QCOMPARE(int(r.issue), int(ContentIssue::None));
        }
    }

    // SMTP smuggling (CVE-2023-51764 class): none of these may end the message early.
    void smuggling_data() {
        QTest::addColumn<QByteArray>("trick");
        QTest::newRow("LF.LF") << QByteArray("\n.\n");
        QTest::newRow("LF.CRLF") << QByteArray("\n.\r\n");
        QTest::newRow("CRLF.LF") << QByteArray("\r\n.\n");
        QTest::newRow("CR.CRLF") << QByteArray("\r.\r\n");
        QTest::newRow("CRLF.CR") << QByteArray("\r\n.\r");
        QTest::newRow("CR.CR") << QByteArray("\r.\r");
        QTest::newRow("LF.CR") << QByteArray("\n.\r");
    }
    void smuggling() {
        QFETCH(QByteArray, trick);
        const QByteArray input = "Subject: a\r\n\r\nfirst" + trick +
                                 "MAIL FROM:<evil@x.test>\r\nRCPT TO:<v@y.test>\r\nDATA\r\nforged\r\n.\r\n";
        for (int chunk : {1, 0, 0, 1000}) {
            for (bool normalize : {false, true}) {
                ContentLimits limits;
                limits.normalizeBareLineEndings = normalize;
                Run r = read(input, chunk, limits);
                QVERIFY(r.done);
                // Only the final CRLF.CRLF ended it: the "smuggled" commands are message content.
                QCOMPARE(r.consumed, input.size());
                if (!normalize) {
                    QCOMPARE(int(r.issue), int(ContentIssue::BareLineEnding));
                } else {
                    QCOMPARE(int(r.issue), int(ContentIssue::None));
                    QVERIFY(!r.stored.contains("\n.\n"));
                    // Every line ending in what was stored is CRLF.
                    for (qsizetype i = 0; i < r.stored.size(); ++i) {
                        if (r.stored.at(i) == '\n') QCOMPARE(r.stored.at(i - 1), '\r');
                        if (r.stored.at(i) == '\r') QCOMPARE(r.stored.at(i + 1), '\n');
                    }
                }
            }
        }
    }

    void crCrLfVariantEndsOnlyAtRealCrlfDot() {
        // "\r\r\n.\r\n": the bytes do contain CRLF.CRLF; what comes after is not message content.
        const QByteArray input = "a\r\r\n.\r\nMAIL FROM:<x@y.test>\r\n";
        Run r = read(input, 1);
        QVERIFY(r.done);
        QCOMPARE(r.consumed, qsizetype(7));
        QCOMPARE(int(r.issue), int(ContentIssue::BareLineEnding));  // the bare CR is refused ("reject")
    }

    void limits() {
        ContentLimits l;
        l.maxMessageSize = 20;
        // Exactly at the limit is fine; one byte more is refused (the rest is read and dropped).
        QCOMPARE(int(read(QByteArray(18, 'a') + "\r\n.\r\n", 0, l).issue), int(ContentIssue::None));
        Run big = read(QByteArray(19, 'a') + "\r\n.\r\n", 0, l);
        QVERIFY(big.done);
        QCOMPARE(int(big.issue), int(ContentIssue::TooBig));
        QVERIFY(big.stored.size() <= 20);

        ContentLimits line;
        line.maxLineLength = 10;  // incl. CRLF
        QCOMPARE(int(read(QByteArray(8, 'x') + "\r\n.\r\n", 1, line).issue), int(ContentIssue::None));
        QCOMPARE(int(read(QByteArray(9, 'x') + "\r\n.\r\n", 1, line).issue), int(ContentIssue::LineTooLong));

        ContentLimits hdr;
        hdr.maxHeaderCount = 2;
        QCOMPARE(int(read("A: 1\r\nB: 2\r\n continued\r\n\r\nC: not a header\r\n.\r\n", 1, hdr).issue),
                 int(ContentIssue::None));
        QCOMPARE(int(read("A: 1\r\nB: 2\r\nC: 3\r\n\r\nbody\r\n.\r\n", 1, hdr).issue),
                 int(ContentIssue::TooManyHeaders));

        ContentLimits hsize;
        hsize.maxHeaderSize = 12;
        QCOMPARE(int(read("A: 12345\r\n\r\n.\r\n", 1, hsize).issue), int(ContentIssue::None));
        QCOMPARE(int(read("A: 123456\r\n\r\n.\r\n", 1, hsize).issue), int(ContentIssue::HeaderTooBig));
    }

    void nulRefused() { QCOMPARE(int(read(QByteArray("a\0b\r\n.\r\n", 8), 1).issue), int(ContentIssue::NulByte)); }

    void sinkFailure() {
        MemorySink sink;
        sink.failAfter = 10;
        ContentChecker c({}, &sink);
        DataReader r(&c);
        QByteArray in = "Subject: big\r\n\r\n";
        for (int i = 0; i < 2000; ++i) in += QByteArray(60, 'x') + "\r\n";  // 124 KB in short lines
        in += ".\r\n";
        qsizetype used = 0;
        while (!r.done()) used += r.feed(in.constData() + used, in.size() - used);
        QCOMPARE(int(c.issue()), int(ContentIssue::WriteFailed));
        QCOMPARE(c.sinkError(), 28);
    }

    void eightBitDetected() {
        MemorySink sink;
        ContentChecker c({}, &sink);
        c.append("caf\xc3\xa9\r\n", 7);
        c.finish();
        QVERIFY(c.sawEightBit());
    }
};

QTEST_GUILESS_MAIN(TstSmtpData)
#include "tst_smtp_data.moc"
