// tst_block_nftables.cpp — the block list as an nftables table (core/block_nftables.h): the
// script text byte by byte (IPv4, IPv6, hosts and subnets, expired entries left out, timeouts
// rounded up to whole seconds, an empty list, no ports), entries inside broader ones with the
// resync time they need, the element and timeout limits, the removal script, and the ports
// taken from the listener settings. The same text is run by the real nft in
// tests/integration/appliance/test_block_nftables.py.
#include "core/block_nftables.h"
#include "core/config.h"

#include <QTest>

using namespace postern;

namespace {

constexpr qint64 kNow = 1'800'000'000'000;  // ms

BlockList::Entry entry(const char* subnet, qint64 untilMs, const char* source = "auth") {
    return BlockList::Entry{QString::fromLatin1(subnet), untilMs, QString::fromLatin1(source)};
}

QByteArray table(const QByteArray& v4, const QByteArray& v6, const QByteArray& rules) {
    return "table inet postern_block\n"
           "delete table inet postern_block\n"
           "table inet postern_block {\n"
           "\tset blocked_v4 {\n"
           "\t\ttype ipv4_addr\n"
           "\t\tflags interval,timeout\n" +
           (v4.isEmpty() ? QByteArray() : "\t\telements = { " + v4 + " }\n") +
           "\t}\n"
           "\tset blocked_v6 {\n"
           "\t\ttype ipv6_addr\n"
           "\t\tflags interval,timeout\n" +
           (v6.isEmpty() ? QByteArray() : "\t\telements = { " + v6 + " }\n") +
           "\t}\n"
           "\tchain input {\n"
           "\t\ttype filter hook input priority -10; policy accept;\n" +
           rules +
           "\t}\n"
           "}\n";
}

const QByteArray kRules25and587 =
    "\t\ttcp dport { 25, 587 } ip saddr @blocked_v4 drop\n"
    "\t\ttcp dport { 25, 587 } ip6 saddr @blocked_v6 drop\n";

}  // namespace

class TestBlockNftables : public QObject {
    Q_OBJECT
private slots:
    void empty() {
        const auto s = blocknft::syncScript({}, kNow, {25, 587});
        QCOMPARE(s.text, table({}, {}, kRules25and587));
        QCOMPARE(s.elements, 0);
        QCOMPARE(s.leftOut, 0);
        QCOMPARE(s.resyncAtMs, 0);
    }

    void hostsSubnetsExpiryRounding() {
        const QList<BlockList::Entry> entries{
            entry("192.0.2.7/32", kNow + 3'600'000),        // exactly 3600 s
            entry("2001:db8::1/128", kNow + 1'500),         // 1.5 s -> 2 s
            entry("203.0.113.9/32", kNow),                  // expires now: left out
            entry("198.51.100.0/24", kNow + 1, "admin"),    // 1 ms -> 1 s
            entry("2001:db8:1::/48", kNow + 60'000),        // IPv6 subnet
            entry("203.0.113.10/32", kNow - 5),             // expired: left out
            entry("0.0.0.0/0", kNow - 1),                   // expired: left out (would cover all)
            entry("2001:db8:2::/64", kNow + 999, "admin"),  // 0.999 s -> 1 s
        };
        const auto s = blocknft::syncScript(entries, kNow, {25, 587});
        QCOMPARE(s.text, table("192.0.2.7 timeout 3600s, 198.51.100.0/24 timeout 1s",
                               "2001:db8::1 timeout 2s, 2001:db8:1::/48 timeout 60s, 2001:db8:2::/64 timeout 1s",
                               kRules25and587));
        QCOMPARE(s.elements, 5);
        QCOMPARE(s.resyncAtMs, 0);
    }

    void onePortAndNoPorts() {
        const QList<BlockList::Entry> entries{entry("192.0.2.7/32", kNow + 60'000)};
        QCOMPARE(blocknft::syncScript(entries, kNow, {993}).text,
                 table("192.0.2.7 timeout 60s", {},
                       "\t\ttcp dport { 993 } ip saddr @blocked_v4 drop\n"
                       "\t\ttcp dport { 993 } ip6 saddr @blocked_v6 drop\n"));
        // No listener with a port: the sets stay (posternctl shows them), nothing is dropped.
        QCOMPARE(blocknft::syncScript(entries, kNow, {}).text, table("192.0.2.7 timeout 60s", {}, {}));
    }

    // An interval set refuses overlapping elements; the broader entry stands for the narrower.
    void nested_data() {
        QTest::addColumn<QList<BlockList::Entry>>("entries");
        QTest::addColumn<QByteArray>("v4");
        QTest::addColumn<QByteArray>("v6");
        QTest::addColumn<qint64>("resyncAt");
        QTest::newRow("host inside a subnet that lasts longer")
            << QList<BlockList::Entry>{entry("192.0.2.7/32", kNow + 60'000), entry("192.0.2.0/24", kNow + 120'000)}
            << QByteArray("192.0.2.0/24 timeout 120s") << QByteArray() << qint64(0);
        QTest::newRow("host outlives its subnet: resync when the subnet expires")
            << QList<BlockList::Entry>{entry("192.0.2.0/24", kNow + 60'000), entry("192.0.2.7/32", kNow + 3'600'000)}
            << QByteArray("192.0.2.0/24 timeout 60s") << QByteArray() << kNow + 60'000;
        QTest::newRow("the same subnet twice (a doctored file): the later expiry")
            << QList<BlockList::Entry>{entry("192.0.2.7/32", kNow + 10'000), entry("192.0.2.7/32", kNow + 20'000)}
            << QByteArray("192.0.2.7 timeout 20s") << QByteArray() << qint64(0);
        QTest::newRow("three levels: the broadest stands, resync at its end")
            << QList<BlockList::Entry>{entry("10.1.2.3/32", kNow + 90'000), entry("10.1.0.0/16", kNow + 30'000),
                                       entry("10.0.0.0/8", kNow + 20'000), entry("10.2.0.0/16", kNow + 10'000)}
            << QByteArray("10.0.0.0/8 timeout 20s") << QByteArray() << kNow + 20'000;
        QTest::newRow("neighbours do not cover each other")
            << QList<BlockList::Entry>{entry("192.0.2.0/25", kNow + 1'000), entry("192.0.2.128/25", kNow + 2'000),
                                       entry("192.0.3.1/32", kNow + 3'000)}
            << QByteArray("192.0.2.0/25 timeout 1s, 192.0.2.128/25 timeout 2s, 192.0.3.1 timeout 3s") << QByteArray()
            << qint64(0);
        QTest::newRow("IPv6 host inside an automatic /48")
            << QList<BlockList::Entry>{entry("2001:db8:5::/48", kNow + 5'000),
                                       entry("2001:db8:5:1::9/128", kNow + 9'000),
                                       entry("2001:db8:6::1/128", kNow + 1'000)}
            << QByteArray() << QByteArray("2001:db8:5::/48 timeout 5s, 2001:db8:6::1 timeout 1s") << kNow + 5'000;
        QTest::newRow("v4 and v6 never cover each other")
            << QList<BlockList::Entry>{entry("0.0.0.0/1", kNow + 1'000), entry("::/1", kNow + 2'000),
                                       entry("::1/128", kNow + 3'000)}
            << QByteArray("0.0.0.0/1 timeout 1s") << QByteArray("::/1 timeout 2s") << kNow + 2'000;
    }
    void nested() {
        QFETCH(QList<BlockList::Entry>, entries);
        QFETCH(QByteArray, v4);
        QFETCH(QByteArray, v6);
        QFETCH(qint64, resyncAt);
        const auto s = blocknft::syncScript(entries, kNow, {25, 587});
        QCOMPARE(s.text, table(v4, v6, kRules25and587));
        QCOMPARE(s.resyncAtMs, resyncAt);
    }

    void elementLimit() {
        QList<BlockList::Entry> entries;
        for (int i = 0; i < BlockList::kMaxEntries + 10; ++i)
            entries << entry(
                QByteArray("10." + QByteArray::number(i / 256) + '.' + QByteArray::number(i % 256) + ".1/32")
                    .constData(),
                kNow + 60'000);
        const auto s = blocknft::syncScript(entries, kNow, {25});
        QCOMPARE(s.elements, BlockList::kMaxEntries);
        QCOMPARE(s.leftOut, 10);
        QVERIFY(s.text.contains("10.15.255.1 timeout 60s }"));  // entry 4095, the last one kept
        QVERIFY(!s.text.contains("10.16.0.1 "));
        QCOMPARE(s.text.count(" timeout 60s"), BlockList::kMaxEntries);
    }

    void timeoutCapped() {
        // Only a doctored file gets beyond 30 days: the kernel gets 30 days, and a resync then.
        const qint64 max = BlockList::kMaxDurationMs;
        const auto s = blocknft::syncScript({entry("192.0.2.7/32", kNow + max + 1), entry("192.0.2.8/32", kNow + max)},
                                            kNow, {25, 587});
        QCOMPARE(s.text, table("192.0.2.7 timeout 2592000s, 192.0.2.8 timeout 2592000s", {}, kRules25and587));
        QCOMPARE(s.resyncAtMs, kNow + max);
    }

    void removeScriptAndArguments() {
        QCOMPARE(blocknft::removeScript(), QByteArray("table inet postern_block\ndelete table inet postern_block\n"));
        QCOMPARE(blocknft::nftArguments(), (QStringList{QStringLiteral("-f"), QStringLiteral("-")}));
    }

    void blockedPorts() {
        // Defaults: every listener of core/services.h on its standard port.
        auto defaults = Config::parse("", QStringLiteral("postern.conf"), QStringLiteral("/etc/postern"));
        QVERIFY(defaults.ok());
        QCOMPARE(blocknft::blockedPorts(*defaults), (QList<quint16>{25, 80, 110, 143, 443, 465, 587, 993, 995, 4190}));
        // Port 0 (chosen by the OS), empty listeners and duplicates are left out; sorted.
        auto custom = Config::parse(
            "smtp.listen = 0.0.0.0:2525, [::]:2525\nsubmission.listen = 127.0.0.1:0\n"
            "submissions.listen =\nimap.listen =\nimaps.listen = 127.0.0.1:1993\n"
            "pop3.listen =\npop3s.listen =\nhttp.listen =\nhttps.listen =\nsieve.listen =\n",
            QStringLiteral("postern.conf"), QStringLiteral("/etc/postern"));
        QVERIFY2(custom.ok(), qPrintable(custom.errorMessage()));
        QCOMPARE(blocknft::blockedPorts(*custom), (QList<quint16>{1993, 2525}));
    }
};

QTEST_GUILESS_MAIN(TestBlockNftables)
#include "tst_block_nftables.moc"
