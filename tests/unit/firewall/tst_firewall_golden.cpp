// tst_firewall_golden.cpp — golden-file tests on rulesets captured with the real
// tools (data/<case>/, made by data/capture.sh): for each capture the status
// report, the plan that opens the ten default ports and the removal plan
// must equal data/<case>/expected.txt. POSTERN_UPDATE_GOLDEN=1 rewrites the
// expected files (review the diff by hand before committing).
#include "firewall/detect.h"
#include "firewall/plan.h"
#include "firewall/report.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QtTest>

using namespace postern::firewall;

namespace {

QString render(const Snapshot& snap) {
    const QList<ConfiguredPort> ports = defaultPorts();
    const Report report = buildReport(snap, ports, false);
    QString out = QStringLiteral("== status\n") + renderStatus(report);
    out += QStringLiteral("== plan\n") +
           renderPlan(planOpen(snap, report.detection, report.results, ports, FirewallState{}), QStringLiteral("Plan"));
    out += QStringLiteral("== remove\n") +
           renderPlan(planRemove(snap, report.detection, FirewallState{}), QStringLiteral("Remove"));
    return out;
}

}  // namespace

class TstFirewallGolden : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void golden_data() {
        QTest::addColumn<QString>("dir");
        const QDir data(QStringLiteral(POSTERN_TEST_DIR "/data"));
        const QStringList cases = data.entryList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name);
        for (const char* needed :
             {"empty", "nft-default-drop", "ufw-debian", "firewalld-public", "iptables-docker", "postern-block"})
            QVERIFY2(cases.contains(QLatin1String(needed)), needed);
        for (const QString& c : cases)
            if (c != u"src") QTest::newRow(qPrintable(c)) << data.absoluteFilePath(c);
    }
    void golden() {
        QFETCH(QString, dir);
        const auto snap = loadSnapshot(dir);
        QVERIFY2(snap.ok(), qPrintable(snap.errorMessage()));
        QVERIFY(snap->root);
        const QString actual = render(*snap);
        QFile f(dir + QStringLiteral("/expected.txt"));
        if (qEnvironmentVariableIntValue("POSTERN_UPDATE_GOLDEN") == 1) {
            QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
            f.write(actual.toUtf8());
            qWarning("rewrote %s", qPrintable(f.fileName()));
            return;
        }
        QVERIFY2(f.open(QIODevice::ReadOnly), qPrintable(f.fileName() + QStringLiteral(" is missing")));
        const QStringList want = QString::fromUtf8(f.readAll()).split(QLatin1Char('\n'));
        const QStringList got = actual.split(QLatin1Char('\n'));
        for (qsizetype i = 0; i < qMin(want.size(), got.size()); ++i)
            QVERIFY2(
                want.at(i) == got.at(i),
                qPrintable(QStringLiteral("line %1:\n want: %2\n  got: %3").arg(i + 1).arg(want.at(i), got.at(i))));
        QCOMPARE(got.size(), want.size());
    }

    // The JSON report carries the same verdicts as the text.
    void jsonMatchesText() {
        const auto snap = loadSnapshot(QStringLiteral(POSTERN_TEST_DIR "/data/nft-default-drop"));
        QVERIFY(snap.ok());
        const Report report = buildReport(*snap, defaultPorts(), false);
        const QJsonObject o = statusJson(report);
        QCOMPARE(o.value(u"backends").toArray().first().toString(), QStringLiteral("nftables"));
        const QJsonArray ports = o.value(u"ports").toArray();
        QCOMPARE(ports.size(), 20);  // ten ports, two families
        int open = 0;
        for (const QJsonValue& p : ports) open += p.toObject().value(u"status").toString() == u"open";
        QCOMPARE(open, 4);  // 80 and 443, IPv4 and IPv6
        QCOMPARE(o.value(u"all_open").toBool(), false);
    }
};

QTEST_GUILESS_MAIN(TstFirewallGolden)
#include "tst_firewall_golden.moc"
