// tst_senderauth.cpp — inbound sender authentication pieces that need no
// network: the RFC 8601 authserv-id of Authentication-Results fields and the
// removal of forged ones that claim our name (comments, folding, quoting,
// version numbers, tabs, case), and the SPF time budget, driven by a fake
// resolver that advances a fake clock instead of sleeping.
#include "common/mail/header_identity.h"
#include "common/senderauth/inbound.h"
#include "common/senderauth/spf.h"

#include <QtTest>

using namespace postern;
using namespace postern::senderauth;

namespace {
// Answers from a table; every query costs `costMs` on the fake clock.
class ClockResolver : public Resolver {
public:
    QHash<QString, QByteArray> txt;  // name -> TXT record
    qint64 costMs = 0;
    qint64 now = 0;
    int queries = 0;
    DnsAnswer query(const QString& name, DnsType type) override {
        ++queries;
        now += costMs;
        DnsAnswer a;
        a.status = DnsAnswer::Status::NoData;
        if (type == DnsType::TXT && txt.contains(name)) {
            a.status = DnsAnswer::Status::Ok;
            DnsRecord r;
            r.name = name;
            r.type = DnsType::TXT;
            r.strings << txt.value(name);
            a.records << r;
        } else if (type == DnsType::A && name.startsWith(QStringLiteral("host"))) {
            a.status = DnsAnswer::Status::Ok;
            DnsRecord r;
            r.name = name;
            r.type = DnsType::A;
            r.address = QHostAddress(QStringLiteral("198.51.100.7"));
            a.records << r;
        }
        return a;
    }
};
}  // namespace

class TstSenderAuth : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void authservId_data() {
        QTest::addColumn<QByteArray>("value");
        QTest::addColumn<QString>("id");  // "" = malformed
        QTest::newRow("plain") << QByteArray(" mx.example.org; dkim=pass") << QStringLiteral("mx.example.org");
        QTest::newRow("leading comment") << QByteArray(" (comment) mx.example.org; dkim=pass")
                                         << QStringLiteral("mx.example.org");
        QTest::newRow("nested comment") << QByteArray("(a (b) \\) c) mx.example.org;dkim=pass")
                                        << QStringLiteral("mx.example.org");
        QTest::newRow("comment after") << QByteArray("mx.example.org(x); spf=pass") << QStringLiteral("mx.example.org");
        QTest::newRow("version") << QByteArray("mx.example.org 1; spf=pass") << QStringLiteral("mx.example.org");
        QTest::newRow("version after comment")
            << QByteArray("mx.example.org (v) 1 (w); spf=pass") << QStringLiteral("mx.example.org");
        QTest::newRow("quoted") << QByteArray("\"mx.example.org\"; dkim=pass") << QStringLiteral("mx.example.org");
        QTest::newRow("quoted with escape")
            << QByteArray("\"mx\\.example.org\"; dkim=pass") << QStringLiteral("mx.example.org");
        QTest::newRow("tabs and folding")
            << QByteArray("\t(c)\tmx.example.org\t;\r\n\tdkim=pass") << QStringLiteral("mx.example.org");
        QTest::newRow("none") << QByteArray("mx.example.org; none") << QStringLiteral("mx.example.org");
        QTest::newRow("other host") << QByteArray("mx.example.org.evil.test; dkim=pass")
                                    << QStringLiteral("mx.example.org.evil.test");
        QTest::newRow("no semicolon") << QByteArray("mx.example.org dkim=pass") << QString();
        QTest::newRow("tspecial inside") << QByteArray("mx.example.org/x; dkim=pass") << QString();
        QTest::newRow("unterminated comment") << QByteArray("(mx.example.org; dkim=pass") << QString();
        QTest::newRow("unterminated quote") << QByteArray("\"mx.example.org; dkim=pass") << QString();
        QTest::newRow("empty") << QByteArray("  ") << QString();
        const int depth = postern::mail::kMaxCommentDepth;
        QTest::newRow("comments at the nesting limit")
            << QByteArray(depth, '(') + QByteArray(depth, ')') + " mx.example.org; none"
            << QStringLiteral("mx.example.org");
        QTest::newRow("comments one too deep")
            << QByteArray(depth + 1, '(') + QByteArray(depth + 1, ')') + " mx.example.org; none" << QString();
    }
    void authservId() {
        QFETCH(QByteArray, value);
        QFETCH(QString, id);
        const auto got = authservIdOf(value);
        if (id.isEmpty())
            QVERIFY2(!got, qPrintable(got.value_or(QString())));
        else
            QCOMPARE(got.value_or(QStringLiteral("<none>")), id);
    }

    void stripForged_data() {
        QTest::addColumn<QByteArray>("field");
        QTest::addColumn<bool>("removed");
        QTest::newRow("plain") << QByteArray("Authentication-Results: mx.example.org; dkim=pass\r\n") << true;
        QTest::newRow("leading comment") << QByteArray(
                                                "Authentication-Results: (comment) mx.example.org; dkim=pass\r\n")
                                         << true;
        QTest::newRow("comment glued") << QByteArray("Authentication-Results:(x)mx.example.org;dkim=pass\r\n") << true;
        QTest::newRow("folded before id")
            << QByteArray("Authentication-Results:\r\n\tmx.example.org;\r\n\tdkim=pass\r\n") << true;
        QTest::newRow("folded comment") << QByteArray("Authentication-Results: (a\r\n b) mx.example.org; dkim=pass\r\n")
                                        << true;
        QTest::newRow("quoted") << QByteArray("Authentication-Results: \"mx.example.org\"; dkim=pass\r\n") << true;
        QTest::newRow("version") << QByteArray("Authentication-Results: mx.example.org 1; dkim=pass\r\n") << true;
        QTest::newRow("tabs") << QByteArray("Authentication-Results:\t\tmx.example.org\t;\tdkim=pass\r\n") << true;
        QTest::newRow("upper case") << QByteArray("Authentication-Results: MX.Example.ORG; dkim=pass\r\n") << true;
        QTest::newRow("field name case") << QByteArray("authentication-results: mx.example.org; dkim=pass\r\n") << true;
        QTest::newRow("malformed but naming us")
            << QByteArray("Authentication-Results: mx.example.org dkim=pass\r\n") << true;
        QTest::newRow("someone else's") << QByteArray("Authentication-Results: mx.other.test; dkim=pass\r\n") << false;
        QTest::newRow("our name as a suffix")
            << QByteArray("Authentication-Results: evil.mx.example.org; dkim=pass\r\n") << false;
        QTest::newRow("our name only in a result")
            << QByteArray("Authentication-Results: mx.other.test; dkim=pass header.d=mx.example.org\r\n") << false;
    }
    void stripForged() {
        QFETCH(QByteArray, field);
        QFETCH(bool, removed);
        const QByteArray head = "Received: from x\r\n";
        const QByteArray tail = "Subject: hi\r\n\r\nAuthentication-Results: mx.example.org; dkim=pass\r\n";
        bool changed = false;
        const QByteArray out = stripForgedResults(head + field + tail, QStringLiteral("mx.example.org"), &changed);
        QCOMPARE(changed, removed);
        QCOMPARE(out, removed ? head + tail : head + field + tail);  // the body is never touched
    }

    void stripForgedBehindManyFields() {
        QByteArray msg;
        for (int i = 0; i < 6000; ++i) msg += "X-Pad: " + QByteArray::number(i) + "\r\n";
        msg += "Authentication-Results: (x) mx.example.org; dkim=pass\r\n\r\nbody\r\n";
        bool changed = false;
        const QByteArray out = stripForgedResults(msg, QStringLiteral("mx.example.org"), &changed);
        QVERIFY(changed);
        QVERIFY(!out.contains("Authentication-Results"));
    }

    void spfWithinBudget_data() {
        QTest::addColumn<qint64>("budget");
        QTest::addColumn<QString>("status");
        // TXT, A host1, A host2: three queries of 10 ms -> 30 ms in all.
        QTest::newRow("budget = time used") << qint64(30) << QStringLiteral("fail");
        QTest::newRow("budget one ms short") << qint64(29) << QStringLiteral("temperror");
        QTest::newRow("default budget") << kSpfTimeBudgetMs << QStringLiteral("fail");
    }
    void spfWithinBudget() {
        QFETCH(qint64, budget);
        QFETCH(QString, status);
        ClockResolver dns;
        dns.costMs = 10;
        dns.txt.insert(QStringLiteral("sender.test"), "v=spf1 a:host1.sender.test a:host2.sender.test -all");
        SpfOptions opt;
        opt.budgetMs = budget;
        opt.clockMs = [&dns] { return dns.now; };
        const SpfResult r = checkSpf(dns, QHostAddress(QStringLiteral("192.0.2.1")), QStringLiteral("a@sender.test"),
                                     QStringLiteral("helo.test"), QStringLiteral("mx.test"), opt);
        QCOMPARE(toString(r.status), status);
        QCOMPARE(dns.queries, 3);
        if (status == u"temperror") QVERIFY2(r.reason.contains(QStringLiteral("time budget")), qPrintable(r.reason));
    }

    void spfHostileZoneStopsAtBudget() {
        // Every name answers slowly (5 s) with another include: without a budget the 10-term limit
        // would allow 11 queries (55 s); the budget of 20 s stops it after the fifth.
        ClockResolver dns;
        dns.costMs = 5000;
        for (int i = 0; i <= 12; ++i)
            dns.txt.insert(QStringLiteral("d%1.test").arg(i),
                           QStringLiteral("v=spf1 include:d%1.test -all").arg(i + 1).toLatin1());
        qint64 start = 0;
        SpfOptions opt;  // the default budget
        opt.clockMs = [&dns] { return dns.now; };
        start = dns.now;
        const SpfResult r = checkSpf(dns, QHostAddress(QStringLiteral("192.0.2.1")), QStringLiteral("a@d0.test"),
                                     QStringLiteral("h.test"), QStringLiteral("mx.test"), opt);
        QCOMPARE(toString(r.status), QStringLiteral("temperror"));
        QVERIFY(r.reason.contains(QStringLiteral("time budget")));
        QCOMPARE(dns.queries, 5);  // at 0, 5, 10, 15, 20 s; none after 20 s
        QVERIFY(dns.now - start <= kSpfTimeBudgetMs + dns.costMs);
    }

    void spfMacroDigits_data() {
        QTest::addColumn<QString>("digits");
        QTest::addColumn<QString>("status");
        // RFC 7208 7.3: the digit transformer keeps that many labels; Postern allows up to 128.
        QTest::newRow("1") << QStringLiteral("1") << QStringLiteral("fail");
        QTest::newRow("128: the limit") << QStringLiteral("128") << QStringLiteral("fail");
        QTest::newRow("129: over it") << QStringLiteral("129") << QStringLiteral("permerror");
        // 4294967297 is 1 modulo 2^32: an accumulating int would wrap around to an allowed value.
        QTest::newRow("2^32 + 1") << QStringLiteral("4294967297") << QStringLiteral("permerror");
        QTest::newRow("600 digits") << QString(600, u'9') << QStringLiteral("permerror");
    }
    void spfMacroDigits() {
        QFETCH(QString, digits);
        QFETCH(QString, status);
        ClockResolver dns;
        dns.txt.insert(QStringLiteral("sender.test"),
                       QStringLiteral("v=spf1 a:%{d%1}.x.test -all").arg(digits).toLatin1());
        const SpfResult r = checkSpf(dns, QHostAddress(QStringLiteral("192.0.2.1")), QStringLiteral("a@sender.test"),
                                     QStringLiteral("h.test"));
        QCOMPARE(toString(r.status), status);
    }

    void spfRealClockDefault() {
        // Without a clock the evaluator uses a steady clock; a quick evaluation is unaffected.
        ClockResolver dns;
        dns.txt.insert(QStringLiteral("sender.test"), "v=spf1 ip4:192.0.2.0/24 -all");
        const SpfResult r = checkSpf(dns, QHostAddress(QStringLiteral("192.0.2.1")), QStringLiteral("a@sender.test"),
                                     QStringLiteral("h.test"));
        QCOMPARE(toString(r.status), QStringLiteral("pass"));
    }
};

QTEST_GUILESS_MAIN(TstSenderAuth)
#include "tst_senderauth.moc"
