// tst_queue_ops.cpp — common/spool/queue_ops.h, the queue operations shared by
// posternctl and the panel: ids validated before any path (EINVAL), each action's
// allowed states (retry: deferred; hold: incoming/deferred; release: hold; delete:
// all but active), a message being delivered (active) never changed, release makes
// it due now, the listing cap, and the header summary (RFC 2047 decoded).
#include "common/spool/queue_ops.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cerrno>

using namespace postern;
using namespace postern::spool;

class TstQueueOps : public QObject {
    Q_OBJECT

    static QString enqueue(const QString& dir) {
        Envelope e;
        e.sender = QStringLiteral("alice@example.test");
        EnvelopeRecipient r;
        r.address = QStringLiteral("bob@remote.test");
        e.recipients << r;
        auto id =
            enqueueMessage(dir, e, "From: alice@example.test\r\nSubject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n\r\nhello\r\n");
        return id ? *id : QString();
    }

private Q_SLOTS:
    void ids_data() {
        QTest::addColumn<QString>("id");
        QTest::addColumn<int>("code");
        QTest::newRow("path") << "../../etc/passwd" << EINVAL;
        QTest::newRow("15 digits") << "0123456789ABCDE" << EINVAL;
        QTest::newRow("17 digits") << "0123456789ABCDEF0" << EINVAL;
        QTest::newRow("not hex") << "0123456789ABCDEG" << EINVAL;
        QTest::newRow("empty") << "" << EINVAL;
        QTest::newRow("valid, absent") << "0123456789ABCDEF" << ENOENT;
        QTest::newRow("lower case, absent") << "0123456789abcdef" << ENOENT;
    }
    void ids() {
        QFETCH(QString, id);
        QFETCH(int, code);
        QTemporaryDir dir;
        auto r = findMessage(dir.path(), id);
        QVERIFY(!r.ok());
        QCOMPARE(r.error().code, code);
        QCOMPARE(holdMessage(dir.path(), id).error().code, code);
        QCOMPARE(deleteMessage(dir.path(), id).error().code, code);
    }

    void lifecycle() {
        QTemporaryDir dir;
        const QString q = dir.path();
        const QString id = enqueue(q);
        QVERIFY(!id.isEmpty());
        QCOMPARE(toString(findMessage(q, id.toLower())->state),
                 QStringLiteral("incoming"));  // ids are case-insensitive
        QVERIFY(!retryMessage(q, id).ok());    // only deferred messages are retried
        QVERIFY(!releaseMessage(q, id).ok());  // only held ones are released
        auto r = holdMessage(q, id);
        QVERIFY2(r.ok(), qPrintable(r.errorMessage()));
        QCOMPARE(*r, id + QStringLiteral(" held"));
        QCOMPARE(toString(findMessage(q, id)->state), QStringLiteral("hold"));
        QVERIFY(!holdMessage(q, id).ok());
        r = releaseMessage(q, id);
        QVERIFY2(r.ok(), qPrintable(r.errorMessage()));
        QCOMPARE(toString(findMessage(q, id)->state), QStringLiteral("deferred"));
        QCOMPARE(findMessage(q, id)->envelope.nextAttempt, qint64(0));
        r = retryMessage(q, id);
        QVERIFY2(r.ok(), qPrintable(r.errorMessage()));
        QCOMPARE(*retryAll(q), 1);
        // Being delivered: nothing changes it.
        QVERIFY(moveMessage(q, id, QueueState::Deferred, QueueState::Active).ok());
        r = deleteMessage(q, id);
        QVERIFY(!r.ok());
        QVERIFY(r.errorMessage().contains(QStringLiteral("being delivered")));
        QVERIFY(moveMessage(q, id, QueueState::Active, QueueState::Deferred).ok());
        const auto header = headerSummary(q, QueueState::Deferred, id);
        QVERIFY(header.contains(qMakePair(QStringLiteral("subject"), QString::fromUtf8("gr\xc3\xbc\xc3\x9f"
                                                                                       "e"))));
        r = deleteMessage(q, id);
        QVERIFY2(r.ok(), qPrintable(r.errorMessage()));
        QCOMPARE(findMessage(q, id).error().code, ENOENT);
    }

    void listingCap() {
        QTemporaryDir dir;
        for (int i = 0; i < 3; ++i) QVERIFY(!enqueue(dir.path()).isEmpty());
        QueueListing l = listMessages(dir.path(), 3);
        QCOMPARE(l.total, 3);
        QCOMPARE(l.entries.size(), 3);
        l = listMessages(dir.path(), 2);
        QCOMPARE(l.total, 3);
        QCOMPARE(l.entries.size(), 2);
    }
};

QTEST_GUILESS_MAIN(TstQueueOps)
#include "tst_queue_ops.moc"
