// tst_delivery_log.cpp — reading delivery failures back from mail.log lines
// (core/delivery_log.h): the events taken and left, quoting as log.h writes it (a round
// trip through log::Fields), malformed lines, the kMaxLogLine and kMaxLogFields limits,
// every prefix of a line, and the newest-first selection of recentDeliveryFailures().
#include "core/delivery_log.h"
#include "core/log.h"

#include <QFile>
#include <QTemporaryDir>
#include <QTest>

using namespace postern;

namespace {
const QByteArray kHead = "2026-12-03T10:00:00.000Z postern-queued[42]: info ";
}

class TstDeliveryLog : public QObject {
    Q_OBJECT
private slots:
    void failures_data() {
        QTest::addColumn<QByteArray>("line");
        QTest::addColumn<bool>("isFailure");
        QTest::addColumn<bool>("permanent");
        QTest::addColumn<QString>("recipient");
        QTest::addColumn<QString>("domain");
        QTest::addColumn<QString>("reason");
        QTest::newRow("remote failed")
            << kHead +
                   "delivery.remote id=abc to=bob@remote.example relay=mx tls=yes status=failed reply=\"550 5.1.1 no\""
            << true << true << "bob@remote.example"
            << "remote.example"
            << "550 5.1.1 no";
        QTest::newRow("remote pending") << kHead +
                                               "delivery.remote id=abc to=b@r.example status=pending reply=\"421 busy\""
                                        << true << false << "b@r.example"
                                        << "r.example"
                                        << "421 busy";
        QTest::newRow("remote sent") << kHead + "delivery.remote id=abc to=b@r.example status=sent reply=\"250 ok\""
                                     << false << false << ""
                                     << ""
                                     << "";
        QTest::newRow("route failed")
            << kHead + "delivery.route_failed id=abc domain=nx.example permanent=yes error=\"no MX, no A\"" << true
            << true << ""
            << "nx.example"
            << "no MX, no A";
        QTest::newRow("route temp") << kHead +
                                           "delivery.route_failed id=abc domain=nx.example permanent=no error=timeout"
                                    << true << false << ""
                                    << "nx.example"
                                    << "timeout";
        QTest::newRow("local quota") << kHead +
                                            "delivery.local id=abc to=a@example.test result=\"452 4.2.2 over quota\""
                                     << true << false << "a@example.test"
                                     << "example.test"
                                     << "452 4.2.2 over quota";
        QTest::newRow("local 5xx") << kHead + "delivery.local id=abc to=a@example.test result=\"550 5.1.1 unknown\""
                                   << true << true << "a@example.test"
                                   << "example.test"
                                   << "550 5.1.1 unknown";
        QTest::newRow("local ok") << kHead + "delivery.local id=abc to=a@example.test result=\"250 2.0.0 delivered\""
                                  << false << false << ""
                                  << ""
                                  << "";
        QTest::newRow("with session") << kHead + "session=1234abcd delivery.remote to=b@r.example status=failed reply=x"
                                      << true << true << "b@r.example"
                                      << "r.example"
                                      << "x";
        QTest::newRow("escapes") << kHead +
                                        "delivery.remote to=b@r.example status=failed reply=\"a\\\"b\\\\c\\nd\\x01\""
                                 << true << true << "b@r.example"
                                 << "r.example" << QStringLiteral("a\"b\\c\nd\x01");
        QTest::newRow("other event") << kHead + "queue.deferred id=abc pending=1" << false << false << ""
                                     << ""
                                     << "";
        QTest::newRow("unterminated quote")
            << kHead + "delivery.remote to=b@r.example status=failed reply=\"550" << false << false << ""
            << ""
            << "";
        QTest::newRow("bad escape") << kHead + "delivery.remote to=b@r.example status=failed reply=\"5\\q\"" << false
                                    << false << ""
                                    << ""
                                    << "";
        QTest::newRow("short hex escape")
            << kHead + "delivery.remote to=b@r.example status=failed reply=\"5\\x1\"" << false << false << ""
            << ""
            << "";
        QTest::newRow("trailing space") << kHead + "delivery.remote to=b@r.example status=failed " << false << false
                                        << ""
                                        << ""
                                        << "";
        QTest::newRow("no key") << kHead + "delivery.remote =x status=failed" << false << false << ""
                                << ""
                                << "";
        QTest::newRow("no program") << QByteArray(
                                           "2026-12-03T10:00:00.000Z info delivery.remote to=b@r.example status=failed")
                                    << false << false << ""
                                    << ""
                                    << "";
        QTest::newRow("quote in token") << kHead + "delivery.remote to=b\"@r.example status=failed" << false << false
                                        << ""
                                        << ""
                                        << "";
        QTest::newRow("empty") << QByteArray() << false << false << ""
                               << ""
                               << "";
    }
    void failures() {
        QFETCH(QByteArray, line);
        QFETCH(bool, isFailure);
        auto f = parseDeliveryFailure(line);
        QCOMPARE(f.has_value(), isFailure);
        if (!f) return;
        QFETCH(bool, permanent);
        QFETCH(QString, recipient);
        QFETCH(QString, domain);
        QFETCH(QString, reason);
        QCOMPARE(f->permanent, permanent);
        QCOMPARE(f->recipient, recipient);
        QCOMPARE(f->domain, domain);
        QCOMPARE(f->reason, reason);
        QCOMPARE(f->time, QStringLiteral("2026-12-03T10:00:00.000Z"));
        // The same line with its newline parses the same.
        QVERIFY(parseDeliveryFailure(line + '\n').has_value());
    }

    // What log::Fields writes, parseLogLine reads back unchanged.
    void roundTripThroughTheLogger_data() {
        QTest::addColumn<QString>("value");
        QTest::newRow("plain") << QStringLiteral("token");
        QTest::newRow("spaces") << QStringLiteral("550 5.1.1 <x@y>: no such user");
        QTest::newRow("quotes and backslash") << QStringLiteral("a \"quoted\" \\ thing = x");
        QTest::newRow("controls") << QStringLiteral("line\r\nnext\tTab\x01\x7f");
        QTest::newRow("empty") << QString();
        QTest::newRow("utf8") << QStringLiteral("Grüße 550");
    }
    void roundTripThroughTheLogger() {
        QFETCH(QString, value);
        const QString text = log::Fields().add("to", "b@r.example").add("status", "failed").add("reply", value).text();
        auto f = parseDeliveryFailure(kHead + "delivery.remote " + text.toUtf8());
        QVERIFY2(f.has_value(), qPrintable(text));
        QCOMPARE(f->reason, value);
    }

    void everyPrefixIsSafe() {
        const QByteArray line =
            kHead + "session=ab delivery.remote to=b@r.example status=failed reply=\"550 \\\"x\\\" \\x01 y\"";
        QVERIFY(parseDeliveryFailure(line));
        for (qsizetype n = 0; n < line.size(); ++n) {
            auto f = parseLogLine(line.left(n));  // must not crash; a cut quoted value is refused
            if (n > line.indexOf("reply=\"") + 6) QVERIFY2(!f, qPrintable(QString::number(n)));
        }
    }

    void lineLengthLimit() {
        const QByteArray start = kHead + "delivery.remote to=b@r.example status=failed reply=";
        QByteArray atLimit = start + QByteArray(kMaxLogLine - start.size(), 'x');
        QCOMPARE(atLimit.size(), kMaxLogLine);
        QVERIFY(parseDeliveryFailure(atLimit));
        QVERIFY(!parseDeliveryFailure(atLimit + 'x'));
    }

    void fieldCountLimit() {
        QByteArray line = kHead + "delivery.remote to=b@r.example status=failed";
        for (int i = 2; i < kMaxLogFields; ++i) line += " k" + QByteArray::number(i) + "=v";
        QCOMPARE(parseLogLine(line)->fields.size(), kMaxLogFields);
        QVERIFY(parseDeliveryFailure(line));
        QVERIFY(!parseDeliveryFailure(line + " one=more"));
    }

    void newestFirstAndCut() {
        QByteArray tail = "d.example status=failed reply=cut-line\n";
        tail += kHead + "delivery.remote to=a@x.example status=failed reply=first\n";
        tail += kHead + "smtp.connect remote=192.0.2.1\n";
        tail += kHead + "delivery.remote to=b@x.example status=pending reply=second\n";
        tail += kHead + "delivery.remote to=c@x.example status=failed reply=third\n";
        auto all = recentDeliveryFailures(tail, 10, true);
        QCOMPARE(all.size(), 3);
        QCOMPARE(all.at(0).reason, QStringLiteral("third"));
        QCOMPARE(all.at(2).reason, QStringLiteral("first"));
        auto two = recentDeliveryFailures(tail, 2, true);
        QCOMPARE(two.size(), 2);
        QCOMPARE(two.at(1).reason, QStringLiteral("second"));
        QCOMPARE(recentDeliveryFailures(tail, 0, true).size(), 0);
        // Not cut: the first line counts (it is whole).
        QByteArray whole =
            kHead + "delivery.remote to=z@x.example status=failed reply=zero\n" + tail.mid(tail.indexOf('\n') + 1);
        QCOMPARE(recentDeliveryFailures(whole, 10, false).size(), 4);
        QCOMPARE(recentDeliveryFailures(whole, 10, true).size(), 3);
    }

    void readsTheLogFile() {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        QCOMPARE(readRecentDeliveryFailures(dir.path(), 10)->size(), 0);  // no log yet
        QFile f(dir.path() + QStringLiteral("/mail.log"));
        QVERIFY(f.open(QIODevice::WriteOnly));
        // More than kDeliveryLogTailBytes: only the tail is read, and its cut first line is skipped.
        const QByteArray old = kHead + "delivery.remote to=old@x.example status=failed reply=old\n";
        while (f.size() < kDeliveryLogTailBytes + 1000) f.write(old);
        f.write(kHead + "delivery.remote to=new@x.example status=failed reply=new\n");
        f.close();
        auto got = readRecentDeliveryFailures(dir.path(), 3);
        QVERIFY(got);
        QCOMPARE(got->size(), 3);
        QCOMPARE(got->at(0).recipient, QStringLiteral("new@x.example"));
    }
};

QTEST_GUILESS_MAIN(TstDeliveryLog)
#include "tst_delivery_log.moc"
