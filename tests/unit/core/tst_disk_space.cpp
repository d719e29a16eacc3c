// tst_disk_space.cpp — the free-space decisions of core/disk_space.h: the admission
// rule at its boundaries (free = floor passes, floor - 1 refused; SIZE on top; no
// overflow at the extremes), the 80 % / 95 % levels, the cache of FreeSpaceGuard
// (one probe per folder and second, the smallest folder counts, recovery after space
// is freed, an unmeasurable folder never refuses) and a real statvfs.
#include "core/disk_space.h"

#include <QDir>
#include <QTemporaryDir>
#include <QtTest>

#include <limits>

using namespace postern;

class TstDiskSpace : public QObject {
    Q_OBJECT
private slots:
    void enoughStorage_data() {
        QTest::addColumn<quint64>("freeBytes");
        QTest::addColumn<qint64>("minFree");
        QTest::addColumn<qint64>("declared");
        QTest::addColumn<bool>("expected");
        const qint64 mib256 = qint64(256) << 20;
        QTest::newRow("free = floor") << quint64(mib256) << mib256 << qint64(0) << true;
        QTest::newRow("free = floor - 1") << quint64(mib256 - 1) << mib256 << qint64(0) << false;
        QTest::newRow("nothing free") << quint64(0) << mib256 << qint64(0) << false;
        QTest::newRow("rule off, nothing free") << quint64(0) << qint64(0) << qint64(0) << true;
        QTest::newRow("rule off, huge SIZE") << quint64(0) << qint64(0) << std::numeric_limits<qint64>::max() << true;
        QTest::newRow("SIZE fits exactly") << quint64(mib256 + 1000) << mib256 << qint64(1000) << true;
        QTest::newRow("SIZE one over") << quint64(mib256 + 1000) << mib256 << qint64(1001) << false;
        QTest::newRow("negative SIZE is 0") << quint64(mib256) << mib256 << qint64(-5) << true;
        QTest::newRow("max SIZE, max free")
            << std::numeric_limits<quint64>::max() << qint64(1) << std::numeric_limits<qint64>::max() << true;
        QTest::newRow("max SIZE, little free")
            << quint64(mib256 * 2) << mib256 << std::numeric_limits<qint64>::max() << false;
        QTest::newRow("max floor") << std::numeric_limits<quint64>::max() << std::numeric_limits<qint64>::max()
                                   << qint64(0) << true;
    }
    void enoughStorage() {
        QFETCH(quint64, freeBytes);
        QFETCH(qint64, minFree);
        QFETCH(qint64, declared);
        QFETCH(bool, expected);
        QCOMPARE(postern::enoughStorage(freeBytes, minFree, declared), expected);
    }

    void levels_data() {
        QTest::addColumn<quint64>("used");
        QTest::addColumn<quint64>("available");
        QTest::addColumn<int>("percent");
        QTest::addColumn<QString>("level");
        QTest::newRow("empty") << quint64(0) << quint64(1000) << 0 << QStringLiteral("ok");
        QTest::newRow("79 %") << quint64(79) << quint64(21) << 79 << QStringLiteral("ok");
        QTest::newRow("79.01 % rounds up to 80") << quint64(7901) << quint64(2099) << 80 << QStringLiteral("warning");
        QTest::newRow("80 %") << quint64(80) << quint64(20) << 80 << QStringLiteral("warning");
        QTest::newRow("94 %") << quint64(94) << quint64(6) << 94 << QStringLiteral("warning");
        QTest::newRow("95 %") << quint64(95) << quint64(5) << 95 << QStringLiteral("error");
        QTest::newRow("full") << quint64(100) << quint64(0) << 100 << QStringLiteral("error");
        QTest::newRow("nothing at all") << quint64(0) << quint64(0) << 0 << QStringLiteral("ok");
        QTest::newRow("64 TiB, 80 %") << (quint64(64) << 40) / 5 * 4 << (quint64(64) << 40) / 5 << 80
                                      << QStringLiteral("warning");
    }
    void levels() {
        QFETCH(quint64, used);
        QFETCH(quint64, available);
        QFETCH(int, percent);
        QFETCH(QString, level);
        DiskUsage u;
        u.usedBytes = used;
        u.availableBytes = available;
        u.totalBytes = used + available;
        QCOMPARE(u.percentUsed(), percent);
        QCOMPARE(toString(diskLevel(u)), level);
    }

    void guardCachesForASecondAndRecovers() {
        qint64 now = 5000;
        QHash<QString, quint64> freeBytes{{QStringLiteral("/mail"), 5000}, {QStringLiteral("/queue"), 3000}};
        int probes = 0;
        FreeSpaceGuard guard(
            {QStringLiteral("/mail"), QStringLiteral("/queue")},
            [&](const QString& path) -> Result<DiskUsage> {
                ++probes;
                DiskUsage u;
                u.availableBytes = freeBytes.value(path);
                return u;
            },
            [&] { return now; });
        QString detail;
        QVERIFY(guard.admit(3000, 0, &detail));  // the smaller folder (3000) is exactly at the floor
        QCOMPARE(probes, 2);
        QCOMPARE(guard.lastFree(), qint64(3000));
        QVERIFY(!guard.admit(3000, 1, &detail));  // SIZE=1 does not fit above it
        QVERIFY2(detail.contains(QStringLiteral("/queue has 3000 bytes free")), qPrintable(detail));
        QVERIFY(detail.contains(QStringLiteral("SIZE=1")));
        QCOMPARE(probes, 2);  // cached
        // The disk fills; within the second the cache still answers, after it the guard sees it.
        freeBytes[QStringLiteral("/queue")] = 10;
        now += FreeSpaceGuard::kCacheMs - 1;
        QVERIFY(guard.admit(3000, 0, &detail));
        QCOMPARE(probes, 2);
        now += 1;
        QVERIFY(!guard.admit(3000, 0, &detail));
        QCOMPARE(probes, 4);
        // Space is freed: accepted again at the next refresh, without a restart.
        freeBytes[QStringLiteral("/queue")] = 1 << 20;
        now += FreeSpaceGuard::kCacheMs;
        QVERIFY(guard.admit(3000, 0, &detail));
        QCOMPARE(guard.lastFree(), qint64(5000));
        // The rule off: no probe at all.
        now += FreeSpaceGuard::kCacheMs;
        QVERIFY(guard.admit(0, 0, &detail));
        QCOMPARE(probes, 6);
        // A clock that goes backwards does not freeze the cache.
        now -= 10 * FreeSpaceGuard::kCacheMs;
        QVERIFY(guard.admit(1, 0, &detail));
        QCOMPARE(probes, 8);
    }

    void unmeasurableFolderDoesNotRefuse() {
        FreeSpaceGuard guard({QStringLiteral("/gone")}, [](const QString&) {
            return Result<DiskUsage>::fail(QStringLiteral("statvfs /gone: No such file"), ENOENT);
        });
        QString detail;
        QVERIFY(guard.admit(qint64(1) << 40, 0, &detail));
        QCOMPARE(guard.lastFree(), qint64(-1));
    }

    void realStatvfs() {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        auto u = diskUsage(dir.path());
        QVERIFY2(u, qPrintable(u.errorMessage()));
        QVERIFY(u->totalBytes > 0);
        QVERIFY(u->usedBytes <= u->totalBytes);
        QVERIFY(u->availableBytes <= u->totalBytes);
        FreeSpaceGuard guard({dir.path()});
        QString detail;
        QVERIFY(guard.admit(1, 0, &detail) == (u->availableBytes >= 1));
        QVERIFY(!guard.admit(std::numeric_limits<qint64>::max(), 0, &detail));  // no disk is that large
        auto missing = diskUsage(dir.path() + QStringLiteral("/missing"));
        QVERIFY(!missing);
        QCOMPARE(missing.error().code, ENOENT);
    }

    // What posternctl status and the panel's dashboard list: one report per file system,
    // folders not made yet skipped, below smtp.min_free_space means Error.
    void reportsPerFileSystem() {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        QVERIFY(QDir(dir.path()).mkdir(QStringLiteral("mail")));
        const QStringList folders{dir.path(), dir.path() + QStringLiteral("/mail"),
                                  dir.path() + QStringLiteral("/queue-not-made")};
        auto reports = diskReports(folders, 0);
        QCOMPARE(reports.size(), 1);  // mail is on the same device; the queue does not exist yet
        QCOMPARE(reports.first().folder, dir.path());
        QVERIFY(reports.first().error.isEmpty());
        QVERIFY(!reports.first().belowFloor);
        QVERIFY(reports.first().level == diskLevel(reports.first().usage));
        auto full = diskReports(folders, std::numeric_limits<qint64>::max());
        QVERIFY(full.first().belowFloor);
        QVERIFY(full.first().level == DiskLevel::Error);
        QVERIFY(diskReports({dir.path() + QStringLiteral("/none")}, 0).isEmpty());
    }

    void humanBytes_data() {
        QTest::addColumn<quint64>("bytes");
        QTest::addColumn<QString>("text");
        QTest::newRow("0") << quint64(0) << QStringLiteral("0 B");
        QTest::newRow("1023") << quint64(1023) << QStringLiteral("1023 B");
        QTest::newRow("1024") << quint64(1024) << QStringLiteral("1.0 KiB");
        QTest::newRow("1.5M") << quint64(3) * 512 * 1024 << QStringLiteral("1.5 MiB");
        QTest::newRow("max") << std::numeric_limits<quint64>::max() << QStringLiteral("16384.0 PiB");
    }
    void humanBytes() {
        QFETCH(quint64, bytes);
        QFETCH(QString, text);
        QCOMPARE(postern::humanBytes(bytes), text);
    }
};

QTEST_GUILESS_MAIN(TstDiskSpace)
#include "tst_disk_space.moc"
