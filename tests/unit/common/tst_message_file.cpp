// tst_message_file.cpp — the message as the delivery path reads it
// (common/mail/message_file.h) and DKIM's streamed body hash (common/dkim).
//
// Covers: the header block read from a file at its bound (the limit passes,
// one byte less is "incomplete"), CRLF and LF blank lines, a message that is
// all header, an empty header; the body reader over a file and over bytes;
// body canonicalisation (simple and relaxed) fed whole, one byte at a time and
// in random pieces, against a direct transcription of RFC 6376 3.4.3/3.4.4
// (the whole-buffer code the project used before) on listed edge cases and on
// random bodies; l= (the hashed prefix and the canonical length). DKIM over a
// MessageFile and the queue's file signer: tst_outbound.
#include "common/dkim/dkim.h"
#include "common/mail/message_file.h"

#include <QCryptographicHash>
#include <QRandomGenerator>
#include <QTemporaryFile>
#include <QtTest>

using namespace postern;
using namespace postern::dkim;
using postern::mail::MessageFile;

namespace {
// RFC 6376 3.4.4 relaxed body canonicalisation, whole buffer, written as the RFC says it.
QByteArray referenceRelaxed(const QByteArray& body) {
    QByteArray out;
    qsizetype pos = 0;
    while (pos < body.size()) {
        const qsizetype nl = body.indexOf('\n', pos);
        const qsizetype end = nl < 0 ? body.size() : nl + 1;
        QByteArray line = body.mid(pos, end - pos);
        while (line.endsWith('\n') || line.endsWith('\r')) line.chop(1);
        QByteArray c;
        bool ws = false;
        for (char ch : line) {
            if (ch == ' ' || ch == '\t') {
                ws = true;
                continue;
            }
            if (ws) c += ' ';
            ws = false;
            c += ch;
        }
        out += c + "\r\n";
        pos = end;
    }
    while (out.endsWith("\r\n\r\n")) out.chop(2);
    if (out == "\r\n") out.clear();
    return out;
}

// RFC 6376 3.4.3 simple body canonicalisation, whole buffer.
QByteArray referenceSimple(const QByteArray& body) {
    QByteArray b = body;
    while (b.endsWith("\r\n\r\n")) b.chop(2);
    if (b.isEmpty() || b == "\r\n") return "\r\n";
    if (!b.endsWith("\r\n")) b += "\r\n";
    return b;
}

// The canonical body fed in pieces of `chunk` bytes (0: random sizes).
QByteArray streamed(BodyCanon canon, const QByteArray& body, int chunk, QRandomGenerator* random = nullptr) {
    QByteArray out;
    BodyCanonicalizer c(canon, [&out](QByteArrayView b) { out += b; });
    for (qsizetype i = 0; i < body.size();) {
        const qsizetype n = chunk > 0 ? chunk : 1 + qsizetype(random->bounded(7));
        c.feed(QByteArrayView(body).sliced(i, std::min(n, body.size() - i)));
        i += n;
    }
    c.finish();
    return out;
}

}  // namespace

class TstMessageFile : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void headerBlock_data() {
        QTest::addColumn<QByteArray>("message");
        QTest::addColumn<qint64>("maxHeader");
        QTest::addColumn<QByteArray>("header");
        QTest::addColumn<bool>("complete");
        const QByteArray m = "Subject: a\r\nX: b\r\n\r\nbody\r\n";  // header block: 20 bytes
        QTest::newRow("at the limit") << m << qint64(20) << QByteArray("Subject: a\r\nX: b\r\n\r\n") << true;
        QTest::newRow("limit - 1") << m << qint64(19) << QByteArray("Subject: a\r\nX: b\r\n\r") << false;
        QTest::newRow("roomy") << m << qint64(1 << 20) << QByteArray("Subject: a\r\nX: b\r\n\r\n") << true;
        QTest::newRow("LF blank line") << QByteArray("A: 1\n\nbody") << qint64(100) << QByteArray("A: 1\n\n") << true;
        QTest::newRow("all header") << QByteArray("A: 1\r\nB: 2\r\n") << qint64(100) << QByteArray("A: 1\r\nB: 2\r\n")
                                    << true;
        QTest::newRow("all header, over the limit")
            << QByteArray("A: 1\r\nB: 2\r\n") << qint64(5) << QByteArray("A: 1\r") << false;
        QTest::newRow("empty header") << QByteArray("\r\nbody\r\n") << qint64(100) << QByteArray("\r\n") << true;
        QTest::newRow("lone CR is no blank line")
            << QByteArray("A: 1\r\n\rB") << qint64(100) << QByteArray("A: 1\r\n\rB") << true;
        QTest::newRow("empty") << QByteArray() << qint64(100) << QByteArray() << true;
        // A header larger than one read (16 KiB) is still found.
        const QByteArray big = "X: " + QByteArray(40000, 'y') + "\r\n\r\nbody";
        QTest::newRow("big header") << big << qint64(1 << 20) << big.left(big.indexOf("\r\n\r\n") + 4) << true;
    }
    void headerBlock() {
        QFETCH(QByteArray, message);
        QFETCH(qint64, maxHeader);
        QFETCH(QByteArray, header);
        QFETCH(bool, complete);
        QTemporaryFile f;
        QVERIFY(f.open());
        f.write(message);
        f.flush();
        auto m = MessageFile::read(f.handle(), message.size(), maxHeader);
        QVERIFY(m.ok());
        QCOMPARE(m->header(), header);
        QCOMPARE(m->headerComplete(), complete);
        QCOMPARE(m->size(), qint64(message.size()));
        if (!complete) return;
        QCOMPARE(m->bodyOffset(), qint64(header.size()));
        // The body reader gives exactly the rest, in small reads.
        auto body = m->body();
        QByteArray read;
        char buf[3];
        for (qint64 n; (n = body->read(buf, sizeof buf)) > 0;) read.append(buf, n);
        QCOMPARE(header + read, message);
        // The same message from bytes in memory.
        const MessageFile fromBytes = MessageFile::fromBytes(message);
        QCOMPARE(fromBytes.header(), header);
        QCOMPARE(fromBytes.bodyOffset(), m->bodyOffset());
        QByteArray again(int(message.size()), Qt::Uninitialized);
        QCOMPARE(fromBytes.body()->read(again.data(), again.size()), qint64(message.size() - header.size()));
    }

    void shortFileIsAnError() {
        QTemporaryFile f;
        QVERIFY(f.open());
        f.write("A: 1\r\n");
        f.flush();
        QVERIFY(!MessageFile::read(f.handle(), 100, 1000).ok());
    }

    void canonicalization_data() {
        QTest::addColumn<QByteArray>("body");
        int row = 0;
        for (const char* b : {"",
                              "\r\n",
                              "\r\n\r\n",
                              "a",
                              "a\r\n",
                              "a\r\n\r\n\r\n",
                              " a  b \r\n\t\r\n",
                              "a\n\nb\n",
                              "a \r\r\n",
                              "a\r b\r\n",
                              "a \rb",
                              "a\r \r\n",
                              "\r",
                              "\r\r\n",
                              "a\r\n\r",
                              "x\r\n \t \r\n",
                              "  \r\n\r\nz",
                              "a\r\n\r\nb\r\n\r\n",
                              "a\t\tb\r\n",
                              "\n",
                              "\r\n\n",
                              "a\rb\rc",
                              "trailing   ",
                              "\r\n \r\n"})
            QTest::newRow(qPrintable(
                QStringLiteral("%1: %2").arg(++row).arg(QString::fromLatin1(QByteArray(b).toPercentEncoding()))))
                << QByteArray(b);
        // RFC 6376 3.4.5's example body.
        QTest::newRow("rfc 6376 3.4.5") << QByteArray(" C \r\nD \t E\r\n\r\n\r\n");
    }
    void canonicalization() {
        QFETCH(QByteArray, body);
        QRandomGenerator random(7);
        for (int chunk : {0, 1, 2, 3, 1 << 20}) {
            QCOMPARE(streamed(BodyCanon::Relaxed, body, chunk, &random), referenceRelaxed(body));
            QCOMPARE(streamed(BodyCanon::Simple, body, chunk, &random), referenceSimple(body));
        }
        QCOMPARE(canonicalizeBodyRelaxed(body), referenceRelaxed(body));
    }

    void rfcExample() {
        // RFC 6376 3.4.5: relaxed " C\r\nD E\r\n", simple " C \r\nD \t E\r\n".
        const QByteArray body = " C \r\nD \t E\r\n\r\n\r\n";
        QCOMPARE(streamed(BodyCanon::Relaxed, body, 1), QByteArray(" C\r\nD E\r\n"));
        QCOMPARE(streamed(BodyCanon::Simple, body, 1), QByteArray(" C \r\nD \t E\r\n"));
    }

    // Random bodies over the characters that matter, random pieces.
    void randomBodies() {
        QRandomGenerator random(2026);
        const char alphabet[] = {'a', 'b', ' ', '\t', '\r', '\n', '\r', '\n'};
        for (int round = 0; round < 3000; ++round) {
            QByteArray body;
            const int n = int(random.bounded(40));
            for (int i = 0; i < n; ++i) body += alphabet[random.bounded(int(sizeof alphabet))];
            QCOMPARE(streamed(BodyCanon::Relaxed, body, 0, &random), referenceRelaxed(body));
            QCOMPARE(streamed(BodyCanon::Simple, body, 0, &random), referenceSimple(body));
        }
    }

    // l=: only the first `limit` canonical bytes are hashed; the whole length is known.
    void hasherLimit() {
        const QByteArray body = "line one\r\nline two  \r\n\r\n";
        const QByteArray canonical = referenceRelaxed(body);
        for (qint64 limit :
             {qint64(-1), qint64(0), qint64(5), qint64(canonical.size()), qint64(canonical.size() + 10)}) {
            BodyHasher h(BodyCanon::Relaxed, limit);
            for (char c : body) h.feed(QByteArrayView(&c, 1));
            const QByteArray digest = h.finish();
            const QByteArray expected =
                QCryptographicHash::hash(limit < 0 ? canonical : canonical.left(limit), QCryptographicHash::Sha256);
            QCOMPARE(digest, expected);
            QCOMPARE(h.canonicalLength(), qint64(canonical.size()));
        }
    }
};

QTEST_GUILESS_MAIN(TstMessageFile)
#include "tst_message_file.moc"
