// tst_security_updates.cpp — securityUpdatesLine() on a folder laid out like a system root:
// every case of the line, the staleness boundary (kStaleRunDays), the first-day grace.
#include "ctl/security_updates.h"

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

using namespace postern;

namespace {

void put(const QString& root, const QString& path, const QByteArray& text, qint64 mtime = -1) {
    const QString full = root + path;
    QVERIFY(QDir().mkpath(QFileInfo(full).absolutePath()));
    QFile f(full);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write(text);
    QVERIFY(f.flush());
    if (mtime >= 0) QVERIFY(f.setFileTime(QDateTime::fromSecsSinceEpoch(mtime), QFileDevice::FileModificationTime));
}

const qint64 kNow = 1'796'000'000;

void automatic(const QString& root) {
    put(root, QStringLiteral("/etc/apt/apt.conf.d/20auto-upgrades"),
        "APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n");
    put(root, QStringLiteral("/usr/bin/unattended-upgrade"), "#!/usr/bin/python3\n");
}

}  // namespace

class TstSecurityUpdates : public QObject {
    Q_OBJECT
private slots:
    void plainMachine() {
        QTemporaryDir d;
        bool w = true;
        QCOMPARE(securityUpdatesLine(d.path(), kNow, &w),
                 QStringLiteral("security updates: not automatic here (no unattended-upgrades)"));
        QVERIFY(!w);
    }

    void container() {
        QTemporaryDir d;
        put(d.path(), QStringLiteral("/run/.containerenv"), "");
        bool w = true;
        QVERIFY(securityUpdatesLine(d.path(), kNow, &w).startsWith(QStringLiteral("security updates: by image")));
        QVERIFY(!w);
    }

    // Turned off in the configuration, or the program missing: not automatic.
    void switchedOffOrMissing() {
        QTemporaryDir d;
        automatic(d.path());
        put(d.path(), QStringLiteral("/etc/apt/apt.conf.d/20auto-upgrades"),
            "APT::Periodic::Unattended-Upgrade \"0\";\n");
        QVERIFY(securityUpdatesLine(d.path(), kNow, nullptr).contains(QStringLiteral("not automatic")));
        QTemporaryDir e;
        put(e.path(), QStringLiteral("/etc/apt/apt.conf.d/20auto-upgrades"),
            "APT::Periodic::Unattended-Upgrade \"1\";\n");
        QVERIFY(securityUpdatesLine(e.path(), kNow, nullptr).contains(QStringLiteral("not automatic")));
    }

    void lastRunAndStalenessBoundary_data() {
        QTest::addColumn<qint64>("ago");
        QTest::addColumn<bool>("stale");
        QTest::newRow("an hour") << qint64(3600) << false;
        QTest::newRow("limit") << qint64(kStaleRunDays) * 86400 << false;
        QTest::newRow("limit + 1 s") << qint64(kStaleRunDays) * 86400 + 1 << true;
    }
    void lastRunAndStalenessBoundary() {
        QFETCH(qint64, ago);
        QFETCH(bool, stale);
        QTemporaryDir d;
        automatic(d.path());
        put(d.path(), QStringLiteral("/var/lib/apt/periodic/unattended-upgrades-stamp"), "", kNow - ago);
        bool w = !stale;
        const QString line = securityUpdatesLine(d.path(), kNow, &w);
        QCOMPARE(w, stale);
        if (stale)
            QVERIFY2(line.contains(QStringLiteral("WARNING: automatic, but the last run was 3 days ago")),
                     qPrintable(line));
        else
            QVERIFY2(line.startsWith(QStringLiteral("security updates: automatic (unattended-upgrades), last run ")),
                     qPrintable(line));
    }

    // No run yet: fine on the first day after installation, a warning after.
    void neverRun_data() {
        QTest::addColumn<qint64>("installedAgo");
        QTest::addColumn<bool>("warn");
        QTest::newRow("fresh") << qint64(600) << false;
        QTest::newRow("a day") << qint64(86400) << false;
        QTest::newRow("a day + 1 s") << qint64(86401) << true;
    }
    void neverRun() {
        QFETCH(qint64, installedAgo);
        QFETCH(bool, warn);
        QTemporaryDir d;
        automatic(d.path());
        put(d.path(), QStringLiteral("/etc/machine-id"), "0123456789abcdef0123456789abcdef\n", kNow - installedAgo);
        bool w = !warn;
        const QString line = securityUpdatesLine(d.path(), kNow, &w);
        QCOMPARE(w, warn);
        QVERIFY2(line.contains(warn ? QStringLiteral("not run yet") : QStringLiteral("first run within a day")),
                 qPrintable(line));
    }

    void rebootRequired() {
        QTemporaryDir d;
        automatic(d.path());
        put(d.path(), QStringLiteral("/var/lib/apt/periodic/unattended-upgrades-stamp"), "", kNow - 60);
        put(d.path(), QStringLiteral("/run/reboot-required"), "*** System restart required ***\n");
        put(d.path(), QStringLiteral("/run/reboot-required.pkgs"), "linux-image-6.1.0-99-cloud-amd64\nlibc6\nlibc6\n");
        bool w = false;
        QCOMPARE(securityUpdatesLine(d.path(), kNow, &w),
                 QStringLiteral("security updates: WARNING: a reboot is needed to finish updates "
                                "(linux-image-6.1.0-99-cloud-amd64, libc6)"));
        QVERIFY(w);
    }
};

QTEST_GUILESS_MAIN(TstSecurityUpdates)
#include "tst_security_updates.moc"
