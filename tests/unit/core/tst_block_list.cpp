// tst_block_list.cpp — the temporary block list (core/block_list.h): address and subnet
// parsing, matching (IPv4, IPv6 /48, IPv4-mapped), expiry on an injected clock (no sleeps),
// and the limits at their boundaries (entries, durations).
#include "core/block_list.h"

#include <QTemporaryDir>
#include <QTest>

using namespace postern;

class TestBlockList : public QObject {
    Q_OBJECT
private slots:
    void parseSubnet_data() {
        QTest::addColumn<QString>("in");
        QTest::addColumn<QString>("out");  // empty: refused
        QTest::newRow("v4") << "192.0.2.7"
                            << "192.0.2.7/32";
        QTest::newRow("v4 subnet, host bits cleared") << "192.0.2.7/24"
                                                      << "192.0.2.0/24";
        QTest::newRow("v4 /0") << "10.1.2.3/0"
                               << "0.0.0.0/0";
        QTest::newRow("v6") << "2001:db8::1"
                            << "2001:db8::1/128";
        QTest::newRow("v6 /48") << "2001:db8:1:2::5/48"
                                << "2001:db8:1::/48";
        QTest::newRow("mapped v4") << "::ffff:192.0.2.9"
                                   << "192.0.2.9/32";
        QTest::newRow("v4 prefix 33") << "192.0.2.7/33"
                                      << "";
        QTest::newRow("garbage") << "mail.example"
                                 << "";
        QTest::newRow("empty") << ""
                               << "";
        QTest::newRow("space inside") << "192.0.2.7 x"
                                      << "";
    }
    void parseSubnet() {
        QFETCH(QString, in);
        QFETCH(QString, out);
        auto r = BlockList::parseSubnet(in);
        if (out.isEmpty())
            QVERIFY(!r);
        else {
            QVERIFY2(r, qPrintable(r.errorMessage()));
            QCOMPARE(*r, out);
        }
    }

    void autoSubnet() {
        QCOMPARE(BlockList::autoBlockSubnet(QHostAddress(QStringLiteral("198.51.100.4"))),
                 QStringLiteral("198.51.100.4/32"));
        QCOMPARE(BlockList::autoBlockSubnet(QHostAddress(QStringLiteral("2001:db8:aa:bb::1"))),
                 QStringLiteral("2001:db8:aa::/48"));
        QCOMPARE(BlockList::autoBlockSubnet(QHostAddress(QStringLiteral("::ffff:198.51.100.4"))),
                 QStringLiteral("198.51.100.4/32"));
    }

    void blocksAndExpires() {
        QTemporaryDir dir;
        qint64 now = 1'000'000'000'000;
        BlockList writer(dir.filePath(QStringLiteral("block-list")));
        BlockList reader(dir.filePath(QStringLiteral("block-list")));  // another daemon
        writer.setClock([&] { return now; });
        reader.setClock([&] { return now; });
        const QHostAddress a(QStringLiteral("192.0.2.7")), b(QStringLiteral("192.0.2.8"));
        QVERIFY(!reader.blocked(a));
        QVERIFY(writer.add(QStringLiteral("192.0.2.7"), 60'000, QStringLiteral("auth")));
        auto e = reader.blocked(a);
        QVERIFY(e);
        QCOMPARE(e->subnet, QStringLiteral("192.0.2.7/32"));
        QCOMPARE(e->source, QStringLiteral("auth"));
        QVERIFY(!reader.blocked(b));
        QVERIFY(reader.blocked(QHostAddress(QStringLiteral("::ffff:192.0.2.7"))));  // mapped form
        now += 59'999;
        QVERIFY(reader.blocked(a));
        now += 1;  // until is exclusive
        QVERIFY(!reader.blocked(a));
        QCOMPARE(writer.list()->size(), 0);
        // IPv6 /48 covers the site.
        QVERIFY(writer.add(QStringLiteral("2001:db8:aa::/48"), 3'600'000, QStringLiteral("admin")));
        QVERIFY(reader.blocked(QHostAddress(QStringLiteral("2001:db8:aa:ffff::9"))));
        QVERIFY(!reader.blocked(QHostAddress(QStringLiteral("2001:db8:ab::9"))));
        // Adding again extends; remove takes it off.
        now += 1000;
        QVERIFY(writer.add(QStringLiteral("2001:db8:aa::1/48"), 7'200'000, QStringLiteral("admin")));
        QCOMPARE(writer.list()->size(), 1);
        QCOMPARE(writer.list()->first().untilMs, now + 7'200'000);
        QCOMPARE(*writer.remove(QStringLiteral("2001:db8:aa::/48")), true);
        QCOMPARE(*writer.remove(QStringLiteral("2001:db8:aa::/48")), false);
        QVERIFY(!reader.blocked(QHostAddress(QStringLiteral("2001:db8:aa::9"))));
    }

    void durationLimits_data() {
        QTest::addColumn<qint64>("ms");
        QTest::addColumn<bool>("ok");
        QTest::newRow("min") << BlockList::kMinDurationMs << true;
        QTest::newRow("min-1") << BlockList::kMinDurationMs - 1 << false;
        QTest::newRow("max") << BlockList::kMaxDurationMs << true;
        QTest::newRow("max+1") << BlockList::kMaxDurationMs + 1 << false;
        QTest::newRow("zero") << qint64(0) << false;
        QTest::newRow("negative") << qint64(-60'000) << false;
    }
    void durationLimits() {
        QFETCH(qint64, ms);
        QFETCH(bool, ok);
        QTemporaryDir dir;
        BlockList l(dir.filePath(QStringLiteral("block-list")));
        QCOMPARE(bool(l.add(QStringLiteral("192.0.2.1"), ms, QStringLiteral("admin"))), ok);
    }

    void entryLimit() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("block-list"));
        qint64 now = 1'000'000'000'000;
        // kMaxEntries - 1 entries written directly (one add() each would rewrite the file 4096 times).
        QList<BlockList::Entry> entries;
        for (int i = 0; i < BlockList::kMaxEntries - 1; ++i)
            entries << BlockList::Entry{QStringLiteral("10.%1.%2.1/32").arg(i / 256).arg(i % 256), now + 60'000,
                                        QStringLiteral("auth")};
        QVERIFY(writeFileAtomic(path, BlockList::serialize(entries), 0644));
        BlockList l(path);
        l.setClock([&] { return now; });
        QVERIFY(l.add(QStringLiteral("192.0.2.1"), 60'000, QStringLiteral("admin")));  // the limit-th entry
        QCOMPARE(l.list()->size(), BlockList::kMaxEntries);
        auto full = l.add(QStringLiteral("192.0.2.2"), 60'000, QStringLiteral("admin"));  // limit + 1
        QVERIFY(!full);
        QVERIFY(full.errorMessage().contains(QStringLiteral("full")));
        QVERIFY(l.add(QStringLiteral("192.0.2.1"), 120'000, QStringLiteral("admin")));  // extending one still works
        now += 60'000;  // the auth entries expire: room again
        QVERIFY(l.add(QStringLiteral("192.0.2.2"), 60'000, QStringLiteral("admin")));
        QCOMPARE(l.list()->size(), 2);
    }

    void parseIsStrict_data() {
        QTest::addColumn<QByteArray>("content");
        QTest::addColumn<int>("entries");
        QTest::newRow("good") << QByteArray("postern-block-list 1\n192.0.2.1/32 5 admin\n") << 1;
        QTest::newRow("no magic") << QByteArray("192.0.2.1/32 5 admin\n") << 0;
        QTest::newRow("not canonical") << QByteArray("postern-block-list 1\n192.0.2.1/24 5 admin\n") << 0;
        QTest::newRow("bad source") << QByteArray("postern-block-list 1\n192.0.2.1/32 5 root\n") << 0;
        QTest::newRow("bad time") << QByteArray("postern-block-list 1\n192.0.2.1/32 x admin\n") << 0;
        QTest::newRow("extra field") << QByteArray("postern-block-list 1\n192.0.2.1/32 5 admin x\n") << 0;
        QTest::newRow("one bad, one good") << QByteArray("postern-block-list 1\n\x01\x02\n10.0.0.1/32 5 auth\n") << 1;
    }
    void parseIsStrict() {
        QFETCH(QByteArray, content);
        QFETCH(int, entries);
        QCOMPARE(BlockList::parse(content).size(), entries);
    }
};

QTEST_GUILESS_MAIN(TestBlockList)
#include "tst_block_list.moc"
