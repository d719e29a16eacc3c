// tst_auth.cpp — the shared failed-login throttle (doubling, cap, window,
// sharing through the mapped file between instances as between processes)
// and the Authenticator (worker-thread verification, cache, delayed failures,
// unknown users, bare local parts).
#include "common/authenticator.h"

#include "core/atomic_file.h"

#include <QElapsedTimer>
#include <QTemporaryDir>
#include <QtTest>

using namespace postern;

class TstAuth : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void penaltyDoublesAndCaps() {
        AuthThrottle t;
        t.setPolicy({100, 500, 60'000});
        const QHostAddress ip(QStringLiteral("192.0.2.7"));
        QCOMPARE(t.preDelayFor(ip), 0);
        t.recordFailure(ip, QStringLiteral("a@x"));
        QCOMPARE(t.delayFor(ip, QStringLiteral("a@x")), 100);
        t.recordFailure(ip, QStringLiteral("a@x"));
        QCOMPARE(t.delayFor(ip, QStringLiteral("a@x")), 200);
        t.recordFailure(ip, QStringLiteral("a@x"));
        QCOMPARE(t.delayFor(ip, QStringLiteral("a@x")), 400);
        t.recordFailure(ip, QStringLiteral("a@x"));
        QCOMPARE(t.delayFor(ip, QStringLiteral("a@x")), 500);  // capped
        QCOMPARE(t.preDelayFor(ip), 0);                      // 4 < threshold
        t.recordFailure(ip, QString());
        QCOMPARE(t.preDelayFor(ip), 500);                    // 5 failures from this client
        // Another client and another account start fresh.
        QCOMPARE(t.delayFor(QHostAddress(QStringLiteral("192.0.2.8")), QStringLiteral("b@x")), 100);
        // The account's own count: a success of the owner clears it, the client's stays.
        QCOMPARE(t.failures(AuthThrottle::userKey(QStringLiteral("a@x"))), 4);
        t.recordSuccess(ip, QStringLiteral("a@x"));
        QCOMPARE(t.failures(AuthThrottle::userKey(QStringLiteral("a@x"))), 0);
        QCOMPARE(t.failures(AuthThrottle::ipKey(ip)), 5);
    }

    void ipv6GroupedBy64() {
        QCOMPARE(AuthThrottle::ipKey(QHostAddress(QStringLiteral("2001:db8:1:2:aaaa::1"))),
                 AuthThrottle::ipKey(QHostAddress(QStringLiteral("2001:db8:1:2:bbbb::9"))));
        QVERIFY(AuthThrottle::ipKey(QHostAddress(QStringLiteral("2001:db8:1:2::1"))) !=
                AuthThrottle::ipKey(QHostAddress(QStringLiteral("2001:db8:1:3::1"))));
        QCOMPARE(AuthThrottle::ipKey(QHostAddress(QStringLiteral("::ffff:192.0.2.1"))), QStringLiteral("ip:192.0.2.1"));
    }

    void windowForgets() {
        AuthThrottle t;
        t.setPolicy({100, 1000, 150});
        const QHostAddress ip(QStringLiteral("192.0.2.9"));
        for (int i = 0; i < 6; ++i) t.recordFailure(ip, {});
        QVERIFY(t.preDelayFor(ip) > 0);
        QTest::qWait(250);
        QCOMPARE(t.preDelayFor(ip), 0);
        QCOMPARE(t.failures(AuthThrottle::ipKey(ip)), 0);
    }

    void sharedBetweenInstances() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("auth-throttle"));
        AuthThrottle imap, pop3;  // two daemons mapping the same file
        QVERIFY(imap.open(path, {100, 1000, 60'000}).ok());
        QVERIFY(pop3.open(path, {100, 1000, 60'000}).ok());
        const QHostAddress ip(QStringLiteral("198.51.100.1"));
        for (int i = 0; i < 5; ++i) imap.recordFailure(ip, QStringLiteral("x@y"));
        QCOMPARE(pop3.failures(AuthThrottle::ipKey(ip)), 5);
        QVERIFY(pop3.preDelayFor(ip) > 0);
        QCOMPARE(QFileInfo(path).size(), qint64(24) * AuthThrottle::kSlots);
    }

    void manyKeysDoNotCrash() {
        AuthThrottle t;
        t.setPolicy({1, 2, 60'000});
        for (int i = 0; i < 3 * AuthThrottle::kSlots; ++i)
            t.recordFailure(QHostAddress(quint32(0x0a000000 + i)), QStringLiteral("u%1@x").arg(i));
        // The newest entries are remembered.
        QCOMPARE(t.failures(AuthThrottle::userKey(QStringLiteral("u%1@x").arg(3 * AuthThrottle::kSlots - 1))), 1);
    }

    void authenticator() {
        QTemporaryDir dir;
        QVERIFY(writeFileAtomic(dir.filePath(QStringLiteral("postern.conf")),
                                "primary_domain = example.org\nauth.argon2_memory = 1M\nauth.argon2_iterations = 1\n"
                                "auth.failure_delay = 300ms\nauth.failure_delay_max = 1s\n").ok());
        auto config = Config::load(dir.path());
        QVERIFY(config.ok());
        AccountStore store(dir.path());
        const QString hash = *hashPassword("right", HashParams::fromConfig(*config));
        QVERIFY(store.modify([&](Accounts& a) -> Status {
            if (auto s = a.addDomain(QStringLiteral("example.org")); !s) return s;
            return a.addUser(QStringLiteral("alice@example.org"), hash);
        }).ok());
        Authenticator auth(*config, &store);
        QObject context;
        const QHostAddress ip(QStringLiteral("127.0.0.5"));
        auto run = [&](const QString& login, const QByteArray& pw, qint64* elapsed) {
            std::optional<Authenticator::Outcome> out;
            QElapsedTimer t;
            t.start();
            auth.verify(&context, QStringLiteral("test"), QStringLiteral("s1"), ip, login, pw, [&](Authenticator::Outcome o) { out = o; });
            [&] { QTRY_VERIFY_WITH_TIMEOUT(out.has_value(), 10000); }();
            if (elapsed) *elapsed = t.elapsed();
            return out.value_or(Authenticator::Outcome{});
        };
        qint64 ms = 0;
        auto ok = run(QStringLiteral("Alice@Example.org"), "right", &ms);
        QVERIFY(ok.ok());
        QCOMPARE(ok.user, QStringLiteral("alice@example.org"));
        QCOMPARE(auth.cache().size(), 1);
        QVERIFY(run(QStringLiteral("alice"), "right", nullptr).ok());  // bare local part + primary_domain
        auto bad = run(QStringLiteral("alice@example.org"), "wrong", &ms);
        QVERIFY(!bad.ok());
        QCOMPARE(bad.reason, QStringLiteral("bad password"));
        QVERIFY2(ms >= 290, qPrintable(QString::number(ms)));  // the failure answer waited for the penalty
        auto unknown = run(QStringLiteral("nobody@example.org"), "right", &ms);
        QCOMPARE(unknown.reason, QStringLiteral("unknown user"));
        // The correct password still works right after failures on the account (no lockout).
        QVERIFY(run(QStringLiteral("alice@example.org"), "right", nullptr).ok());
        // A deleted context: the callback never runs.
        bool called = false;
        {
            QObject gone;
            auth.verify(&gone, QStringLiteral("test"), QStringLiteral("s2"), ip, QStringLiteral("alice@example.org"), "wrong",
                        [&](Authenticator::Outcome) { called = true; });
        }
        QTest::qWait(1500);
        QVERIFY(!called);
    }
};

QTEST_GUILESS_MAIN(TstAuth)
#include "tst_auth.moc"
