// tst_send_rate — per-user submission limits (common/send_rate.h): the sliding windows at
// their boundaries with an injected clock (limit passes, limit+1 refused, the window's span
// exactly), the file shared by two store objects (two processes) and kept across restarts,
// users apart, and the file parsed strictly (fed byte by byte: every prefix is harmless).
#include "common/send_rate.h"

#include <QFile>
#include <QTemporaryDir>
#include <QTest>

using namespace postern;

namespace {
// An hour-bucket-aligned and day-bucket-aligned start (multiple of 900 s).
constexpr qint64 kT0 = 1'800'000'000 - (1'800'000'000 % 900);
}  // namespace

class TestSendRate : public QObject {
    Q_OBJECT

private slots:
    void messagesPerHourBoundary_data() {
        QTest::addColumn<qint64>("limit");
        QTest::newRow("1") << qint64(1);
        QTest::newRow("3") << qint64(3);
        QTest::newRow("50") << qint64(50);
    }
    void messagesPerHourBoundary() {
        QFETCH(qint64, limit);
        SendLimits l;
        l.messagesPerHour = limit;
        SendWindows w;
        for (qint64 i = 0; i < limit; ++i) {
            QVERIFY(!w.exceeded(l, kT0, 1, 0));  // the limit passes
            w.add(kT0, 1, 1);
        }
        const auto hit = w.exceeded(l, kT0, 1, 0);  // limit + 1 refused
        QVERIFY(hit);
        QCOMPARE(hit->name, QStringLiteral("messages_per_hour"));
        QCOMPARE(hit->limit, limit);
        QCOMPARE(hit->used, limit);
        QVERIFY(w.exceeded(l, kT0 + 3599, 1, 0));   // one second before the span ends: still counted
        QVERIFY(!w.exceeded(l, kT0 + 3600, 1, 0));  // the span over: free again
        QCOMPARE(w.messagesIn(SendWindows::Window::Hour, kT0 + 3599), limit);
        QCOMPARE(w.messagesIn(SendWindows::Window::Hour, kT0 + 3600), qint64(0));
        QCOMPARE(w.messagesIn(SendWindows::Window::Day, kT0 + 3600), limit);  // the day still counts them
    }

    void slidingNotFixed() {
        // 2 per hour: one at T0, one at T0+30 min; at T0+60 min the first left, the second not.
        SendLimits l;
        l.messagesPerHour = 2;
        SendWindows w;
        w.add(kT0, 1, 1);
        w.add(kT0 + 1800, 1, 1);
        QVERIFY(w.exceeded(l, kT0 + 3599, 1, 0));
        QVERIFY(!w.exceeded(l, kT0 + 3600, 1, 0));
        w.add(kT0 + 3600, 1, 1);
        QVERIFY(w.exceeded(l, kT0 + 5399, 1, 0));
        QVERIFY(!w.exceeded(l, kT0 + 5400, 1, 0));
    }

    void dayAndRecipientLimits_data() {
        QTest::addColumn<int>("which");  // 0 messages/day, 1 recipients/hour, 2 recipients/day
        QTest::newRow("messages_per_day") << 0;
        QTest::newRow("recipients_per_hour") << 1;
        QTest::newRow("recipients_per_day") << 2;
    }
    void dayAndRecipientLimits() {
        QFETCH(int, which);
        SendLimits l;
        SendWindows w;
        if (which == 0) {
            l.messagesPerDay = 4;
            for (int i = 0; i < 4; ++i) w.add(kT0 + i * 3600, 1, 1);  // spread: the hour never holds 4
            QVERIFY(w.exceeded(l, kT0 + 86399, 1, 0));
            QCOMPARE(w.exceeded(l, kT0 + 86399, 1, 0)->name, QStringLiteral("messages_per_day"));
            QVERIFY(!w.exceeded(l, kT0 + 86400, 1, 0));  // the first one left the day
        } else {
            const bool hour = which == 1;
            (hour ? l.recipientsPerHour : l.recipientsPerDay) = 10;
            w.add(kT0, 1, 7);
            QVERIFY(!w.exceeded(l, kT0, 1, 3));         // 7 + 3 = 10: passes
            const auto hit = w.exceeded(l, kT0, 1, 4);  // 11: refused
            QVERIFY(hit);
            QCOMPARE(hit->name, hour ? QStringLiteral("recipients_per_hour") : QStringLiteral("recipients_per_day"));
            const qint64 span = hour ? 3600 : 86400;
            QVERIFY(w.exceeded(l, kT0 + span - 1, 1, 4));
            QVERIFY(!w.exceeded(l, kT0 + span, 1, 4));
        }
    }

    void zeroMeansNoLimit() {
        SendWindows w;
        w.add(kT0, 1'000'000, 1'000'000);
        QVERIFY(!w.exceeded(SendLimits{}, kT0, 1, 1));
        QVERIFY(!SendLimits{}.any());
    }

    void serializeRoundTripAndStrictParse() {
        SendWindows w;
        w.add(kT0, 2, 5);
        w.add(kT0 + 700, 1, 1);
        const QByteArray text = w.serialize(kT0 + 700);
        const SendWindows back = SendWindows::parse(text);
        QCOMPARE(back.messagesIn(SendWindows::Window::Hour, kT0 + 700), qint64(3));
        QCOMPARE(back.recipientsIn(SendWindows::Window::Day, kT0 + 700), qint64(6));
        QCOMPARE(back.serialize(kT0 + 700), text);
        // Every prefix, fed as the file would be cut: never more than the whole says.
        for (qsizetype n = 0; n <= text.size(); ++n) {
            const SendWindows part = SendWindows::parse(text.left(n));
            QVERIFY(part.messagesIn(SendWindows::Window::Day, kT0 + 700) <= 3);
        }
        // Garbage, overflow, wrong magic: ignored lines, no crash.
        const SendWindows bad = SendWindows::parse(
            "postern-send-rate 1\nh 1 2\nx 1 1 1\nh -1 1 1\nh 1 99999999999999999999 1\n"
            "d " +
            QByteArray::number(kT0 / 900) + " 4 4\n");
        QCOMPARE(bad.messagesIn(SendWindows::Window::Day, kT0), qint64(4));
        QCOMPARE(bad.messagesIn(SendWindows::Window::Hour, kT0), qint64(0));
        QCOMPARE(SendWindows::parse("other 1\nd 1 1 1\n").messagesIn(SendWindows::Window::Day, 900), qint64(0));
    }

    void storeSharedAcrossProcessesAndRestarts() {
        QTemporaryDir dir;
        qint64 now = kT0;
        SendLimits l;
        l.messagesPerHour = 2;
        SendRateStore a(dir.filePath(QStringLiteral("send-rate"))), b(dir.filePath(QStringLiteral("send-rate")));
        a.setClock([&] { return now; });
        b.setClock([&] { return now; });
        const QString alice = QStringLiteral("alice@example.test");
        QVERIFY(!a.record(alice, l, 1, 1)->has_value());
        QVERIFY(!b.check(alice, l, 1, 0)->has_value());
        QVERIFY(!b.record(QStringLiteral("Alice@Example.test"), l, 1, 1)->has_value());  // same user, other case
        QVERIFY(a.check(alice, l, 1, 0)->has_value());                                   // seen by the other "process"
        QVERIFY(a.record(alice, l, 1, 1)->has_value());                                  // refused and not counted
        QVERIFY(!a.check(QStringLiteral("bob@example.test"), l, 1, 0)->has_value());     // other users apart
        {
            SendRateStore restarted(dir.filePath(QStringLiteral("send-rate")));
            restarted.setClock([&] { return now; });
            QVERIFY(restarted.check(alice, l, 1, 0)->has_value());
        }
        now = kT0 + 3600;
        QVERIFY(!a.record(alice, l, 1, 1)->has_value());
        // The file holds no user name.
        QFile f(a.fileFor(alice));
        QVERIFY(f.open(QIODevice::ReadOnly));
        QVERIFY(!f.readAll().contains("alice"));
        QVERIFY(!a.fileFor(alice).contains(QStringLiteral("alice")));
    }
};

QTEST_GUILESS_MAIN(TestSendRate)
#include "tst_send_rate.moc"
