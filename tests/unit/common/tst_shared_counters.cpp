// tst_shared_counters — SharedCounters: limits counted over several processes'
// columns in one mapped file, a restarted process's column forgotten, the
// in-memory mode, and a full probe window failing open.
#include "common/shared_counters.h"

#include <QTemporaryDir>
#include <QTest>

using namespace postern;

class TestSharedCounters : public QObject {
    Q_OBJECT

private slots:
    void limitsCountOverAllColumns() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("x.counts"));
        SharedCounters first, second;
        QVERIFY(first.open(path, 0, true).ok());
        QVERIFY(second.open(path, 1, false).ok());  // another process, same file
        QVERIFY(first.isShared());
        QVERIFY(first.tryAcquire(QStringLiteral("user:a"), 3));
        QVERIFY(second.tryAcquire(QStringLiteral("user:a"), 3));
        QVERIFY(second.tryAcquire(QStringLiteral("user:a"), 3));
        QVERIFY(!first.tryAcquire(QStringLiteral("user:a"), 3));  // 3 in all, whoever asks
        QCOMPARE(first.total(QStringLiteral("user:a")), 3);
        QVERIFY(first.tryAcquire(QStringLiteral("user:b"), 3));  // other keys are apart
        first.release(QStringLiteral("user:a"));
        first.release(QStringLiteral("user:a"));  // never below zero in a column
        QCOMPARE(second.total(QStringLiteral("user:a")), 2);
        QVERIFY(second.tryAcquire(QStringLiteral("user:a"), 3));
    }

    void restartedProcessIsForgotten() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("x.counts"));
        SharedCounters first;
        QVERIFY(first.open(path, 0, true).ok());
        {
            SharedCounters crashed;
            QVERIFY(crashed.open(path, 2, false).ok());
            QVERIFY(crashed.tryAcquire(QStringLiteral("ip:192.0.2.1"), 2));
            QVERIFY(crashed.tryAcquire(QStringLiteral("ip:192.0.2.1"), 2));
        }  // killed without releasing
        QVERIFY(!first.tryAcquire(QStringLiteral("ip:192.0.2.1"), 2));
        SharedCounters replacement;
        QVERIFY(replacement.open(path, 2, false).ok());  // same column: zeroed
        QCOMPARE(first.total(QStringLiteral("ip:192.0.2.1")), 0);
        QVERIFY(first.tryAcquire(QStringLiteral("ip:192.0.2.1"), 2));
        QVERIFY(!replacement.open(path, SharedCounters::kColumns, false).ok());
    }

    void withoutAFileCountsInMemory() {
        SharedCounters local;
        QVERIFY(!local.isShared());
        QVERIFY(local.tryAcquire(QStringLiteral("k"), 1));
        QVERIFY(!local.tryAcquire(QStringLiteral("k"), 1));
        local.release(QStringLiteral("k"));
        QCOMPARE(local.total(QStringLiteral("k")), 0);
        QVERIFY(local.tryAcquire(QStringLiteral("k"), 1));
    }

    void manyKeysReuseFreedSlots() {
        QTemporaryDir dir;
        SharedCounters c;
        QVERIFY(c.open(dir.filePath(QStringLiteral("x.counts")), 0, true).ok());
        // More keys over time than slots: released keys leave their slots for others.
        for (int round = 0; round < 3; ++round) {
            for (int i = 0; i < SharedCounters::kSlots / 2; ++i)
                QVERIFY(c.tryAcquire(QStringLiteral("k%1-%2").arg(round).arg(i), 1));
            for (int i = 0; i < SharedCounters::kSlots / 2; ++i) c.release(QStringLiteral("k%1-%2").arg(round).arg(i));
        }
        QVERIFY(c.tryAcquire(QStringLiteral("last"), 1));
        QVERIFY(!c.tryAcquire(QStringLiteral("last"), 1));
    }
};

QTEST_GUILESS_MAIN(TestSharedCounters)
#include "tst_shared_counters.moc"
