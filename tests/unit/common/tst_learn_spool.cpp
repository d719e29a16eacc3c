// tst_learn_spool.cpp — the spam learn spool (common/spam/learn_spool.h): enqueue links the
// message and writes the request, pending() gives them oldest first and survives a new
// LearnSpool on the same folder (a restart), the queue limit at its boundary, strict request
// parsing, orphan sweeping; and the learner's request head and status-line parser.
#include "common/spam/learn_spool.h"
#include "common/spam/rspamd_learner.h"

#include <QFile>
#include <QTemporaryDir>
#include <QTest>

#include <sys/stat.h>

using namespace postern;
using namespace postern::spam;

namespace {
QString writeMessage(const QTemporaryDir& dir, const QString& name) {
    const QString p = dir.filePath(name);
    QFile f(p);
    if (!f.open(QIODevice::WriteOnly)) return {};
    f.write("Subject: x\r\n\r\nbody\r\n");
    return p;
}
}  // namespace

class TestLearnSpool : public QObject {
    Q_OBJECT
private slots:
    void enqueueAndDrain() {
        QTemporaryDir dir;
        const QString msg = writeMessage(dir, QStringLiteral("m1"));
        const QString msg2 = writeMessage(dir, QStringLiteral("m2"));
        {
            LearnSpool spool(dir.filePath(QStringLiteral("spool")));
            QVERIFY(spool.open());
            QCOMPARE(spool.enqueue(LearnClass::Spam, QStringLiteral("alice@example.test"), msg),
                     LearnSpool::Enqueued::Queued);
            QCOMPARE(spool.enqueue(LearnClass::Ham, QStringLiteral("bob@example.test"), msg2),
                     LearnSpool::Enqueued::Queued);
            QCOMPARE(spool.count(), 2);
        }
        QFile::remove(msg);  // the user expunges it: the spool's link keeps the message
        LearnSpool again(dir.filePath(QStringLiteral("spool")));  // after a restart
        QVERIFY(again.open());
        QCOMPARE(again.count(), 2);
        auto p = again.pending(10);
        QVERIFY(p);
        QCOMPARE(p->size(), 2);
        QVERIFY(p->at(0).cls == LearnClass::Spam);
        QCOMPARE(p->at(0).user, QStringLiteral("alice@example.test"));
        QVERIFY(p->at(1).cls == LearnClass::Ham);
        QCOMPARE(p->at(1).user, QStringLiteral("bob@example.test"));
        QFile f(p->at(0).messagePath);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(f.readAll(), QByteArray("Subject: x\r\n\r\nbody\r\n"));
        again.remove(p->at(0));
        QCOMPARE(again.count(), 1);
        QVERIFY(!QFile::exists(p->at(0).messagePath));
        QCOMPARE(again.pending(10)->size(), 1);
        QFileInfo spoolDir(dir.filePath(QStringLiteral("spool")));
        QCOMPARE(int(spoolDir.permissions() & (QFile::ReadGroup | QFile::ReadOther)), 0);
    }

    void limit() {
        QTemporaryDir dir;
        const QString msg = writeMessage(dir, QStringLiteral("m"));
        LearnSpool spool(dir.filePath(QStringLiteral("spool")), 3);
        QVERIFY(spool.open());
        for (int i = 0; i < 3; ++i)
            QCOMPARE(spool.enqueue(LearnClass::Spam, QStringLiteral("u@x.test"), msg), LearnSpool::Enqueued::Queued);
        QString error;
        QCOMPARE(spool.enqueue(LearnClass::Spam, QStringLiteral("u@x.test"), msg, &error),
                 LearnSpool::Enqueued::Full);  // limit + 1
        QVERIFY(error.contains(QStringLiteral("limit")));
        QCOMPARE(spool.pending(10)->size(), 3);  // nothing half-written was left
        spool.remove(spool.pending(1)->first());
        QCOMPARE(spool.enqueue(LearnClass::Spam, QStringLiteral("u@x.test"), msg), LearnSpool::Enqueued::Queued);
        QCOMPARE(kMaxLearnQueue, 10000);
    }

    void failures() {
        QTemporaryDir dir;
        LearnSpool spool(dir.filePath(QStringLiteral("spool")));
        QVERIFY(spool.open());
        QCOMPARE(spool.enqueue(LearnClass::Spam, QStringLiteral("u@x.test"), dir.filePath(QStringLiteral("missing"))),
                 LearnSpool::Enqueued::Failed);
        const QString msg = writeMessage(dir, QStringLiteral("m"));
        QCOMPARE(spool.enqueue(LearnClass::Spam, QString(kMaxLearnUser + 1, QLatin1Char('u')), msg),
                 LearnSpool::Enqueued::Failed);
        QCOMPARE(spool.enqueue(LearnClass::Spam, QString(kMaxLearnUser, QLatin1Char('u')), msg),
                 LearnSpool::Enqueued::Queued);
        QCOMPARE(spool.pending(10)->size(), 1);
    }

    void parseRequest_data() {
        QTest::addColumn<QByteArray>("content");
        QTest::addColumn<QString>("user");  // empty: refused
        QTest::newRow("good") << LearnSpool::requestContent(QStringLiteral("a@b.test")) << "a@b.test";
        QTest::newRow("no version") << QByteArray("a@b.test\n") << "";
        QTest::newRow("truncated") << QByteArray("postern-learn 1\na@b.test") << "";
        QTest::newRow("empty user") << QByteArray("postern-learn 1\n\n") << "";
        QTest::newRow("CR in user") << QByteArray("postern-learn 1\na\r@b\n") << "";
        QTest::newRow("two lines") << QByteArray("postern-learn 1\na\nb\n") << "";
    }
    void parseRequest() {
        QFETCH(QByteArray, content);
        QFETCH(QString, user);
        // a good request cut at any length (a torn write) never parses
        if (!user.isEmpty())
            for (qsizetype n = 0; n < content.size(); ++n) QVERIFY(!LearnSpool::parseRequest(content.left(n)));
        auto r = LearnSpool::parseRequest(content);
        if (user.isEmpty())
            QVERIFY(!r);
        else
            QCOMPARE(*r, user);
    }

    void brokenRequestIsDropped() {
        QTemporaryDir dir;
        LearnSpool spool(dir.filePath(QStringLiteral("spool")));
        QVERIFY(spool.open());
        QFile bad(dir.filePath(QStringLiteral("spool/1.2.3.spam")));
        QVERIFY(bad.open(QIODevice::WriteOnly));
        bad.write("nonsense");
        bad.close();
        // names outside the id grammar are ignored
        QFile odd(dir.filePath(QStringLiteral("spool/evil.name.spam")));
        QVERIFY(odd.open(QIODevice::WriteOnly));
        odd.close();
        QCOMPARE(spool.pending(10)->size(), 0);
        QVERIFY(!QFile::exists(dir.filePath(QStringLiteral("spool/1.2.3.spam"))));
        QVERIFY(QFile::exists(dir.filePath(QStringLiteral("spool/evil.name.spam"))));
    }

    void orphansSwept() {
        QTemporaryDir dir;
        LearnSpool spool(dir.filePath(QStringLiteral("spool")));
        QVERIFY(spool.open());
        for (const char* n : {"spool/100.1.1.eml", "spool/100.1.2.tmp", "spool/100.1.3.eml", "spool/100.1.3.ham"}) {
            QFile f(dir.filePath(QString::fromLatin1(n)));
            QVERIFY(f.open(QIODevice::WriteOnly));
        }
        QCOMPARE(spool.sweepOrphans(3600), 2);  // the .eml without request and the .tmp
        QVERIFY(QFile::exists(dir.filePath(QStringLiteral("spool/100.1.3.eml"))));
    }

    void requestHead() {
        const QByteArray h = RspamdLearner::requestHead(LearnClass::Ham, QStringLiteral("a@b.test"), "pw", 42);
        QCOMPARE(h, QByteArray("POST /learnham HTTP/1.0\r\nPassword: pw\r\nDeliver-To: a@b.test\r\nContent-Length: "
                               "42\r\nConnection: close\r\n\r\n"));
        QVERIFY(!RspamdLearner::requestHead(LearnClass::Spam, QStringLiteral("a\r\nX: y"), {}, 1).contains("\r\nX: y"));
        QVERIFY(RspamdLearner::requestHead(LearnClass::Spam, QStringLiteral("a"), {}, 1)
                    .startsWith("POST /learnspam HTTP/1.0\r\nDeliver-To: a\r\n"));
    }

    void statusOf_data() {
        QTest::addColumn<QByteArray>("reply");
        QTest::addColumn<int>("code");
        QTest::newRow("200") << QByteArray("HTTP/1.1 200 OK\r\n\r\n{}") << 200;
        QTest::newRow("208") << QByteArray("HTTP/1.1 208 <m@x> has been already learned as spam, ignore it\r\n") << 208;
        QTest::newRow("no reason") << QByteArray("HTTP/1.0 500\r\n") << 500;
        QTest::newRow("short") << QByteArray("HTTP/1.1 20") << -1;
        QTest::newRow("letters") << QByteArray("HTTP/1.1 2x0 OK\r\n") << -1;
        QTest::newRow("four digits") << QByteArray("HTTP/1.1 2000 OK\r\n") << -1;
        QTest::newRow("not http") << QByteArray("SMTP/1.1 200 OK\r\n") << -1;
        QTest::newRow("empty") << QByteArray() << -1;
    }
    void statusOf() {
        QFETCH(QByteArray, reply);
        QFETCH(int, code);
        QCOMPARE(RspamdLearner::statusOf(reply), code);
    }
};

QTEST_GUILESS_MAIN(TestLearnSpool)
#include "tst_learn_spool.moc"
