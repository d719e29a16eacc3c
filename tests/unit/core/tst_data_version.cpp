// tst_data_version.cpp — core/data_version.h on a real temporary data folder: reading
// the version file (missing, valid, garbage, too large), refusing a newer format with
// the operator's message, and the migration table: the real one (no file -> 1, once),
// fake steps injected here (each runs exactly once, in order, logged; a failing step
// leaves the version at the last completed one and runs again next time; a gap in the
// table stops with an error; a newer folder is not touched).
#include "core/config.h"
#include "core/data_version.h"

#include <QFile>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QtTest>

using namespace postern;

namespace {

Config configFor(const QString& dataDir) {
    auto c = Config::parse(QByteArray("data_dir = ") + QFile::encodeName(dataDir) + "\nlog.stderr = false\n",
                           QStringLiteral("postern.conf"), dataDir);
    return c.valueOr(Config());
}

void writeVersionFile(const Config& c, const QByteArray& content) {
    QFile f(dataVersionPath(c));
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write(content);
}

QByteArray versionFile(const Config& c) {
    QFile f(dataVersionPath(c));
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray("(missing)");
}

}  // namespace

class TstDataVersion : public QObject {
    Q_OBJECT
private slots:
    void read_data() {
        QTest::addColumn<QByteArray>("content");  // "(missing)": no file
        QTest::addColumn<int>("expected");        // -1: an error
        QTest::newRow("missing") << QByteArray("(missing)") << 0;
        QTest::newRow("1") << QByteArray("1\n") << 1;
        QTest::newRow("no newline") << QByteArray("7") << 7;
        QTest::newRow("spaces") << QByteArray("  2 \n") << 2;
        QTest::newRow("limit") << QByteArray("1000000\n") << 1000000;
        QTest::newRow("limit + 1") << QByteArray("1000001\n") << -1;
        QTest::newRow("empty") << QByteArray("") << -1;
        QTest::newRow("negative") << QByteArray("-1\n") << -1;
        QTest::newRow("word") << QByteArray("one\n") << -1;
        QTest::newRow("two numbers") << QByteArray("1 2\n") << -1;
        QTest::newRow("64 bytes") << QByteArray("1") + QByteArray(63, ' ') << 1;
        QTest::newRow("65 bytes") << QByteArray("1") + QByteArray(64, ' ') << -1;
    }
    void read() {
        QFETCH(QByteArray, content);
        QFETCH(int, expected);
        QTemporaryDir dir;
        const Config c = configFor(dir.path());
        if (content != "(missing)") writeVersionFile(c, content);
        auto v = readDataVersion(c);
        if (expected < 0) {
            QVERIFY(!v);
            QVERIFY2(!checkDataVersion(c), "an unreadable version refuses the start");
        } else {
            QVERIFY2(v, qPrintable(v.errorMessage()));
            QCOMPARE(*v, expected);
        }
    }

    void newerIsRefused() {
        QTemporaryDir dir;
        const Config c = configFor(dir.path());
        writeVersionFile(c, QByteArray::number(kDataFormatVersion) + '\n');
        QVERIFY(checkDataVersion(c));
        writeVersionFile(c, QByteArray::number(kDataFormatVersion + 1) + '\n');
        auto st = checkDataVersion(c);
        QVERIFY(!st);
        QCOMPARE(st.errorMessage(),
                 QStringLiteral(
                     "data folder %1 is format %2, this Postern knows up to %3: use a newer image or restore a backup")
                     .arg(dir.path())
                     .arg(kDataFormatVersion + 1)
                     .arg(kDataFormatVersion));
        // Migration refuses it too and leaves the file alone.
        QVERIFY(!migrateDataFolder(c));
        QCOMPARE(versionFile(c), QByteArray::number(kDataFormatVersion + 1) + '\n');
    }

    void realTableRecordsTheVersionOnce() {
        QTemporaryDir dir;
        const Config c = configFor(dir.path() + QStringLiteral("/data"));  // not made yet
        auto ran = migrateDataFolder(c);
        QVERIFY2(ran, qPrintable(ran.errorMessage()));
        QCOMPARE(*ran, 1);
        QCOMPARE(versionFile(c), QByteArray::number(kDataFormatVersion) + '\n');
        ran = migrateDataFolder(c);
        QVERIFY(ran);
        QCOMPARE(*ran, 0);
        // The table is a chain from the oldest format to the current one.
        int v = kOldestDataFormat;
        for (const MigrationStep& s : migrationSteps()) {
            QCOMPARE(s.from, v);
            QVERIFY(s.to > s.from);
            QVERIFY(!s.what.isEmpty());
            v = s.to;
        }
        QCOMPARE(v, kDataFormatVersion);
    }

    void fakeStepsRunOnceInOrder() {
        QTemporaryDir dir;
        const Config c = configFor(dir.path());
        QStringList calls;
        bool failTwo = true;
        QList<MigrationStep> steps = migrationSteps();
        steps << MigrationStep{1, 2, QStringLiteral("test step one"), [&](const Config&) -> Status {
                                   // Sees the version of the step before it.
                                   calls << QStringLiteral("1->2 at ") + QString::fromLatin1(versionFile(c).trimmed());
                                   return {};
                               }};
        steps << MigrationStep{2, 3, QStringLiteral("test step two"), [&](const Config&) -> Status {
                                   calls << QStringLiteral("2->3");
                                   if (failTwo) return Status::fail(QStringLiteral("disk on fire"));
                                   return {};
                               }};
        // The second step fails: the first is recorded, the error names the step.
        auto ran = migrateDataFolder(c, steps, 3);
        QVERIFY(!ran);
        QVERIFY2(ran.errorMessage().contains(QStringLiteral("from format 2 to 3 (test step two) failed: disk on fire")),
                 qPrintable(ran.errorMessage()));
        QCOMPARE(versionFile(c), QByteArray("2\n"));
        QCOMPARE(calls, (QStringList{QStringLiteral("1->2 at 1"), QStringLiteral("2->3")}));
        // Next start: only the failed step runs again.
        failTwo = false;
        ran = migrateDataFolder(c, steps, 3);
        QVERIFY2(ran, qPrintable(ran.errorMessage()));
        QCOMPARE(*ran, 1);
        QCOMPARE(versionFile(c), QByteArray("3\n"));
        QCOMPARE(calls, (QStringList{QStringLiteral("1->2 at 1"), QStringLiteral("2->3"), QStringLiteral("2->3")}));
        // And then nothing.
        ran = migrateDataFolder(c, steps, 3);
        QVERIFY(ran);
        QCOMPARE(*ran, 0);
        QCOMPARE(calls.size(), 3);
        // This build (format kDataFormatVersion) now refuses that folder.
        QVERIFY(!checkDataVersion(c));
    }

    // The upgrade test's step (an image carrying kTestStepMarker): one more format, a file only
    // the migration writes, and a build without the step refuses the result.
    void testOnlyStepUpgradesAndOlderBuildRefuses() {
        QTemporaryDir dir;
        const Config c = configFor(dir.path());
        const QString file = dir.path() + QLatin1Char('/') + QLatin1String(kTestStepFileName);
        QVERIFY(migrationSteps(false).size() + 1 == migrationSteps(true).size());
        QCOMPARE(migrationSteps(true).last().from, kDataFormatVersion);
        QVERIFY(QFileInfo::exists(QLatin1String(kTestStepMarker)) == (dataFormatVersion() == kDataFormatVersion + 1));
        auto ran = migrateDataFolder(c, migrationSteps(false), kDataFormatVersion);  // "image N"
        QVERIFY2(ran, qPrintable(ran.errorMessage()));
        QVERIFY(!QFileInfo::exists(file));
        ran = migrateDataFolder(c, migrationSteps(true), kDataFormatVersion + 1);  // "image N+1"
        QVERIFY2(ran, qPrintable(ran.errorMessage()));
        QCOMPARE(*ran, 1);
        QCOMPARE(versionFile(c), QByteArray::number(kDataFormatVersion + 1) + '\n');
        QVERIFY(QFileInfo::exists(file));
        QVERIFY(checkDataVersion(c, kDataFormatVersion + 1));
        const Status refused = checkDataVersion(c, kDataFormatVersion);  // "image N" again
        QVERIFY(!refused);
        QVERIFY2(refused.errorMessage().contains(QStringLiteral("format %1").arg(kDataFormatVersion + 1)),
                 qPrintable(refused.errorMessage()));
    }

    void gapInTheTableStops() {
        QTemporaryDir dir;
        const Config c = configFor(dir.path());
        QList<MigrationStep> steps = migrationSteps();
        steps << MigrationStep{2, 3, QStringLiteral("unreachable"), [](const Config&) -> Status { return {}; }};
        auto ran = migrateDataFolder(c, steps, 3);
        QVERIFY(!ran);
        QVERIFY2(ran.errorMessage().contains(QStringLiteral("is format 1 and no step migrates it")),
                 qPrintable(ran.errorMessage()));
        QCOMPARE(versionFile(c), QByteArray("1\n"));  // the steps that exist did run
    }
};

QTEST_GUILESS_MAIN(TstDataVersion)
#include "tst_data_version.moc"
