// tst_dns_parse.cpp — resolver configuration parsing and reverse names.
// Real queries are tested against NSD on loopback in the integration suite.
#include "core/dns.h"

#include <QtTest>

using namespace postern;

class TstDnsParse : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void servers() {
        auto a = parseDnsServer(QStringLiteral("127.0.0.1"));
        QVERIFY(a.ok());
        QCOMPARE(a->port, 53);
        auto b = parseDnsServer(QStringLiteral("127.0.0.1:5353"));
        QVERIFY(b.ok());
        QCOMPARE(b->port, 5353);
        auto c = parseDnsServer(QStringLiteral("[::1]:5300"));
        QVERIFY(c.ok());
        QCOMPARE(c->address, QHostAddress(QStringLiteral("::1")));
        QCOMPARE(c->port, 5300);
        auto d = parseDnsServer(QStringLiteral("::1"));
        QVERIFY(d.ok());
        QCOMPARE(d->port, 53);
        QVERIFY(!parseDnsServer(QStringLiteral("dns.example")).ok());
        QVERIFY(!parseDnsServer(QStringLiteral("127.0.0.1:0")).ok());
        QVERIFY(!parseDnsServer(QStringLiteral("127.0.0.1:99999")).ok());
        QVERIFY(!parseDnsServer(QStringLiteral("[::1")).ok());
    }
    void reverse() {
        QCOMPARE(reverseName(QHostAddress(QStringLiteral("192.0.2.10"))), QStringLiteral("10.2.0.192.in-addr.arpa"));
        QCOMPARE(reverseName(QHostAddress(QStringLiteral("2001:db8::1"))),
                 QStringLiteral("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"));
    }
    void unreachableServerTimesOut() {
        // A loopback port with nothing behind it: a clear failure, fast, no hang.
        LdnsResolver r({DnsServer{QHostAddress(QStringLiteral("127.0.0.1")), 9}}, 300);
        DnsAnswer a = r.query(QStringLiteral("example.test"), DnsType::MX);
        QVERIFY(!a.ok());
        QVERIFY(!a.isNegative());
    }
};

QTEST_GUILESS_MAIN(TstDnsParse)
#include "tst_dns_parse.moc"
