// tst_auth.cpp — the shared login throttle and the Authenticator.
//
// The throttle's policy (auth_throttle.h) with an injected clock: penalties
// doubling to a cap and forgotten after the window; the wait coming before the
// check; attempts in flight per address and per account (caps, temporary
// refusals); the account side for unknown addresses while known-good addresses
// pass at once; a success forgiving only the owner's own failures; abandoned
// attempts counting as failures; IPv6 keyed by /48; sharing through the mapped
// file between instances as between processes, and leases of a crashed process
// (a forked child) reclaimed. Then the Authenticator with real hashing: the
// wait before the check, a client that hangs up during the wait (no check, a
// failure), parallel attempts from one address, the owner from a known address.
#include "common/authenticator.h"

#include "core/atomic_file.h"
#include "core/totp.h"
#include "core/two_factor.h"

#include <QElapsedTimer>
#include <QTemporaryDir>
#include <QtTest>

#include <sys/wait.h>
#include <unistd.h>

using namespace postern;

namespace {
using Outcome = AuthThrottle::Outcome;

struct ManualClock {
    qint64 now = 1'000'000'000'000;
    std::function<qint64()> fn() {
        return [this] { return now; };
    }
};

const QString kAlice = QStringLiteral("alice@example.org");
QHostAddress ip(const char* text) {
    return QHostAddress(QString::fromLatin1(text));
}

// One attempt that is checked at once and fails.
void failOnce(AuthThrottle& t, const QHostAddress& from, const QString& user) {
    const auto a = t.admit(from, user);
    QVERIFY2(a.proceed(), qPrintable(a.reason));
    t.finish(a, Outcome::Failure);
}
}  // namespace

class TstAuth : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // ---------------------------------------------------------------- policy, one process

    void penaltyDoublesCapsAndComesBeforeTheCheck() {
        ManualClock clock;
        AuthThrottle t;
        t.setClock(clock.fn());
        t.setPolicy({100, 500, 60'000});
        const QHostAddress a = ip("192.0.2.7");
        const QList<qint64> expected{0, 100, 200, 400, 500, 500};
        for (int i = 0; i < expected.size(); ++i) {
            // A new account name each time: only the address's own record decides.
            const auto adm = t.admit(a, QStringLiteral("u%1@x").arg(i));
            QVERIFY(adm.proceed());
            QCOMPARE(adm.delayMs, expected.at(i));
            t.finish(adm, Outcome::Failure);
        }
        QCOMPARE(t.failures(AuthThrottle::ipKey(a)), 6);
        QCOMPARE(t.penaltyAfterFailure(a), 500);
        // Another address starts clean; its failure answer still waits failure_delay.
        QCOMPARE(t.admit(ip("192.0.2.8"), QString()).delayMs, 0);
        QCOMPARE(t.penaltyAfterFailure(ip("192.0.2.9")), 100);
    }

    void windowForgets() {
        ManualClock clock;
        AuthThrottle t;
        t.setClock(clock.fn());
        t.setPolicy({100, 1000, 150});
        const QHostAddress a = ip("192.0.2.9");
        for (int i = 0; i < 6; ++i) failOnce(t, a, {});
        QCOMPARE(t.admit(a, {}).delayMs, 1000);
        clock.now += 151;
        QCOMPARE(t.failures(AuthThrottle::ipKey(a)), 0);
        const auto adm = t.admit(a, {});
        QVERIFY(adm.proceed());
        QCOMPARE(adm.delayMs, 0);
    }

    // Many users behind one NAT address who logged in from there before log in together:
    // their attempts count apart from unknown ones (kMaxInFlightKnownPerAddress), so ten at
    // once all run; an unknown account there is still limited as before, and once the
    // address has a failure, known-good attempts go one at a time too.
    void knownGoodInFlightPerAddress() {
        ManualClock clock;
        AuthThrottle t;
        t.setClock(clock.fn());
        t.setPolicy({100, 1000, 60'000});
        const QHostAddress a = ip("198.51.100.5");
        for (int i = 0; i < 10; ++i) t.finish(t.admit(a, QStringLiteral("user%1@x").arg(i)), Outcome::Success);
        QList<AuthThrottle::Admission> running;
        for (int i = 0; i < 10; ++i) {
            running << t.admit(a, QStringLiteral("user%1@x").arg(i));
            QVERIFY2(running.last().proceed(), qPrintable(running.last().reason));
            QVERIFY(running.last().knownGood);
        }
        // Unknown accounts from the same address: their own limit, unaffected by the ten.
        for (int i = 0; i < AuthThrottle::kMaxInFlightPerAddress; ++i) {
            running << t.admit(a, QStringLiteral("stranger%1@x").arg(i));
            QVERIFY(running.last().proceed());
        }
        QCOMPARE(t.admit(a, QStringLiteral("stranger9@x")).reason, QStringLiteral("address busy"));
        for (auto& r : running) t.finish(r, Outcome::Success);
        running.clear();
        // The known-good allowance has its limit.
        for (int i = 0; i < AuthThrottle::kMaxInFlightKnownPerAddress; ++i)
            t.finish(t.admit(a, QStringLiteral("k%1@x").arg(i)), Outcome::Success);
        for (int i = 0; i < AuthThrottle::kMaxInFlightKnownPerAddress; ++i) {
            running << t.admit(a, QStringLiteral("k%1@x").arg(i));
            QVERIFY(running.last().proceed());
        }
        QCOMPARE(t.admit(a, QStringLiteral("user0@x")).reason, QStringLiteral("address busy"));
        for (auto& r : running) t.finish(r, Outcome::Success);
        running.clear();
        // A failure from the address: known-good attempts go one at a time again.
        t.finish(t.admit(a, QStringLiteral("nobody@x")), Outcome::Failure);
        clock.now += 1000;
        const auto first = t.admit(a, QStringLiteral("user1@x"));
        QVERIFY(first.proceed());
        QCOMPARE(t.admit(a, QStringLiteral("user2@x")).reason, QStringLiteral("address busy"));
        t.finish(first, Outcome::Success);
    }

    // Attempts in flight: three from a clean address at once, one from an address with
    // failures; more are refused at once (no check, no wait) and the count never leaks.
    void inFlightPerAddress() {
        ManualClock clock;
        AuthThrottle t;
        t.setClock(clock.fn());
        t.setPolicy({100, 1000, 60'000});
        const QHostAddress a = ip("198.51.100.4");
        QList<AuthThrottle::Admission> running;
        for (int i = 0; i < AuthThrottle::kMaxInFlightPerAddress; ++i) {
            running << t.admit(a, QStringLiteral("u%1@x").arg(i));
            QVERIFY(running.last().proceed());
            QCOMPARE(running.last().delayMs, 0);
        }
        QCOMPARE(t.inFlight(a), AuthThrottle::kMaxInFlightPerAddress);
        const auto refused = t.admit(a, QStringLiteral("u9@x"));
        QVERIFY(!refused.proceed());
        QCOMPARE(refused.reason, QStringLiteral("address busy"));
        t.finish(refused, Outcome::Failure);  // a refusal holds nothing and counts nothing
        QCOMPARE(t.failures(AuthThrottle::ipKey(a)), 0);
        // Two fail: the address is now suspect, one attempt at a time.
        t.finish(running.takeFirst(), Outcome::Failure);
        t.finish(running.takeFirst(), Outcome::Failure);
        QCOMPARE(t.inFlight(a), 1);
        QVERIFY(!t.admit(a, QStringLiteral("u8@x")).proceed());
        t.finish(running.takeFirst(), Outcome::Failure);
        QCOMPARE(t.inFlight(a), 0);
        const auto next = t.admit(a, QStringLiteral("u8@x"));
        QVERIFY(next.proceed());
        QCOMPARE(next.delayMs, 400);  // 3 failures: 100, 200, 400
        QVERIFY(!t.admit(a, QStringLiteral("u7@x")).proceed());
        // Other addresses are not affected.
        QVERIFY(t.admit(ip("198.51.100.5"), QStringLiteral("u7@x")).proceed());
    }

    // The scenario of issue 16: an attacker on A guesses alice's password; alice, from B
    // where she logged in before, gets in at once; the attacker's next guess from A waits
    // before its check; a second attacker address C that never failed gets the account's
    // delay before its check, and only one such attempt runs at a time; B still passes at once.
    void accountSideAndKnownAddresses() {
        ManualClock clock;
        AuthThrottle t;
        t.setClock(clock.fn());
        t.setPolicy({100, 1000, 60'000});
        const QHostAddress a = ip("203.0.113.1"), b = ip("192.0.2.50"), c = ip("198.51.100.77"),
                           d = ip("198.51.100.78");
        auto ok = t.admit(b, kAlice);
        QVERIFY(ok.proceed() && !ok.knownGood);
        t.finish(ok, Outcome::Success);
        QVERIFY(t.isKnownGood(kAlice, b));
        for (int i = 0; i < 5; ++i) {
            auto g = t.admit(a, kAlice);
            QVERIFY(g.proceed());
            clock.now += g.delayMs + 1;
            t.finish(g, Outcome::Failure);
        }
        QCOMPARE(t.failures(AuthThrottle::userKey(kAlice)), 5);
        auto fromB = t.admit(b, kAlice);
        QVERIFY(fromB.proceed());
        QVERIFY(fromB.knownGood);
        QCOMPARE(fromB.delayMs, 0);
        t.finish(fromB, Outcome::Success);
        auto fromA = t.admit(a, kAlice);
        QVERIFY(fromA.proceed());
        QCOMPARE(fromA.delayMs, 1000);  // its own 5 failures: 100·2^4 capped at 1000
        t.finish(fromA, Outcome::Failure);
        auto fromC = t.admit(c, kAlice);
        QVERIFY(fromC.proceed());
        QVERIFY(!fromC.knownGood);
        QCOMPARE(fromC.delayMs, 1000);  // the account's 6 failures, before any check
        // While C's attempt is in flight, no other unknown address may try alice...
        const auto fromD = t.admit(d, kAlice);
        QVERIFY(!fromD.proceed());
        QCOMPARE(fromD.reason, QStringLiteral("account busy"));
        // ...but D may try another account, and alice from B still passes at once.
        QVERIFY(t.admit(d, QStringLiteral("bob@example.org")).proceed());
        auto again = t.admit(b, kAlice);
        QVERIFY(again.proceed());
        QCOMPARE(again.delayMs, 0);
        t.finish(fromC, Outcome::Failure);
        t.finish(again, Outcome::Success);
        // The owner's success did not clear the attacker's failures on the account.
        QCOMPARE(t.failures(AuthThrottle::userKey(kAlice)), 7);
        QCOMPARE(t.failures(AuthThrottle::ipKey(a)), 6);
    }

    // A clean account lets three unknown addresses try at once, not more.
    void inFlightPerCleanAccount() {
        ManualClock clock;
        AuthThrottle t;
        t.setClock(clock.fn());
        t.setPolicy({100, 1000, 60'000});
        for (int i = 0; i < AuthThrottle::kMaxInFlightPerAccount; ++i)
            QVERIFY(t.admit(QHostAddress(quint32(0xC6336400 + i)), kAlice).proceed());
        const auto refused = t.admit(QHostAddress(quint32(0xC6336480)), kAlice);
        QVERIFY(!refused.proceed());
        QCOMPARE(refused.reason, QStringLiteral("account busy"));
    }

    // A success takes the owner's own failures (this account from this address) off the
    // address and the account, and nobody else's.
    void successForgivesOnlyOwnFailures() {
        ManualClock clock;
        AuthThrottle t;
        t.setClock(clock.fn());
        t.setPolicy({100, 1000, 60'000});
        const QHostAddress home = ip("192.0.2.60");
        failOnce(t, home, QStringLiteral("mallory@example.org"));  // someone else at the same NAT
        failOnce(t, home, kAlice);
        failOnce(t, ip("203.0.113.9"), kAlice);  // an attacker elsewhere
        QCOMPARE(t.failures(AuthThrottle::ipKey(home)), 2);
        QCOMPARE(t.failures(AuthThrottle::userKey(kAlice)), 2);
        auto ok = t.admit(home, kAlice);
        QVERIFY(ok.proceed());
        QCOMPARE(ok.delayMs, 200);  // before the check: the address has 2 failures
        t.finish(ok, Outcome::Success);
        QCOMPARE(t.failures(AuthThrottle::ipKey(home)), 1);      // mallory's stays
        QCOMPARE(t.failures(AuthThrottle::userKey(kAlice)), 1);  // the attacker's stays
        QCOMPARE(t.failures(AuthThrottle::pairKey(kAlice, AuthThrottle::ipKey(home))), 0);
    }

    // Hanging up during the wait counts as a failure: the next attempt waits longer.
    void abandonedCountsAsFailure() {
        ManualClock clock;
        AuthThrottle t;
        t.setClock(clock.fn());
        t.setPolicy({100, 1000, 60'000});
        const QHostAddress a = ip("203.0.113.20");
        failOnce(t, a, kAlice);
        auto waiting = t.admit(a, kAlice);
        QCOMPARE(waiting.delayMs, 100);
        t.finish(waiting, Outcome::Abandoned);
        QCOMPARE(t.failures(AuthThrottle::ipKey(a)), 2);
        QCOMPARE(t.inFlight(a), 0);
        QCOMPARE(t.admit(a, kAlice).delayMs, 200);
    }

    // IPv6 clients are keyed by /48 (one site's allocation), IPv4 by /32.
    void ipKey_data() {
        QTest::addColumn<QString>("a");
        QTest::addColumn<QString>("b");
        QTest::addColumn<bool>("same");
        QTest::newRow("same /64") << "2001:db8:1:2:aaaa::1"
                                  << "2001:db8:1:2:bbbb::9" << true;
        QTest::newRow("other /64, same /56") << "2001:db8:1:2::1"
                                             << "2001:db8:1:3::1" << true;
        QTest::newRow("other /56, same /48") << "2001:db8:1:100::1"
                                             << "2001:db8:1:ff00::1" << true;
        QTest::newRow("other /48") << "2001:db8:1::1"
                                   << "2001:db8:2::1" << false;
        QTest::newRow("bit 47") << "2001:db8:0::1"
                                << "2001:db8:1::1" << false;
        QTest::newRow("ipv4 /32") << "192.0.2.1"
                                  << "192.0.2.2" << false;
        QTest::newRow("mapped ipv4") << "::ffff:192.0.2.1"
                                     << "192.0.2.1" << true;
    }
    void ipKey() {
        QFETCH(QString, a);
        QFETCH(QString, b);
        QFETCH(bool, same);
        QCOMPARE(AuthThrottle::ipKey(QHostAddress(a)) == AuthThrottle::ipKey(QHostAddress(b)), same);
    }
    void ipKeyText() {
        QCOMPARE(AuthThrottle::ipKey(ip("2001:db8:1:2:3:4:5:6")), QStringLiteral("ip:2001:db8:1::/48"));
        QCOMPARE(AuthThrottle::ipKey(ip("::ffff:192.0.2.1")), QStringLiteral("ip:192.0.2.1"));
    }

    void manyKeysDoNotCrash() {
        ManualClock clock;
        AuthThrottle t;
        t.setClock(clock.fn());
        t.setPolicy({1, 2, 60'000});
        for (int i = 0; i < 3 * AuthThrottle::kSlots; ++i) {
            clock.now += 1;
            failOnce(t, QHostAddress(quint32(0x0a000000 + i)), QStringLiteral("u%1@x").arg(i));
        }
        // The newest entries are remembered.
        QCOMPARE(t.failures(AuthThrottle::userKey(QStringLiteral("u%1@x").arg(3 * AuthThrottle::kSlots - 1))), 1);
        // More attempts in flight than leases: refused, never a crash.
        int admitted = 0;
        for (int i = 0; i < AuthThrottle::kLeases + 10; ++i)
            admitted += t.admit(QHostAddress(quint32(0x0b000000 + i)), {}).proceed();
        QCOMPARE(admitted, AuthThrottle::kLeases);
    }

    // ---------------------------------------------------------------- shared file

    void sharedBetweenInstances() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("auth-throttle"));
        AuthThrottle imap, pop3;  // two daemons mapping the same file
        QVERIFY(imap.open(path, {100, 1000, 60'000}).ok());
        QVERIFY(pop3.open(path, {100, 1000, 60'000}).ok());
        const QHostAddress a = ip("198.51.100.1");
        for (int i = 0; i < 5; ++i) failOnce(imap, a, QStringLiteral("x@y"));
        QCOMPARE(pop3.failures(AuthThrottle::ipKey(a)), 5);
        QVERIFY(pop3.admit(a, {}).delayMs > 0);
        // The attempt pop3 holds counts in imap too: the address may have one at a time.
        QCOMPARE(imap.inFlight(a), 1);
        QCOMPARE(imap.admit(a, {}).reason, QStringLiteral("address busy"));
        QCOMPARE(QFileInfo(path).size(),
                 qint64(64 + 24 * AuthThrottle::kSlots + 16 * AuthThrottle::kKnownSlots + 40 * AuthThrottle::kLeases));
    }

    // A process that dies with attempts in flight leaves no count behind.
    void crashedProcessLeavesNoLease() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("auth-throttle"));
        AuthThrottle t;
        QVERIFY(t.open(path, {100, 1000, 60'000}).ok());
        const QHostAddress a = ip("198.51.100.2");
        const pid_t child = ::fork();
        QVERIFY(child >= 0);
        if (child == 0) {
            AuthThrottle c;
            int code = c.open(path, {100, 1000, 60'000}).ok() ? 0 : 1;
            for (int i = 0; i < 3; ++i) code |= c.admit(a, QStringLiteral("u%1@x").arg(i)).proceed() ? 0 : 2;
            ::_exit(code);  // "crashes" with three attempts in flight
        }
        int status = 0;
        QCOMPARE(::waitpid(child, &status, 0), child);
        QCOMPARE(WEXITSTATUS(status), 0);
        QCOMPARE(t.inFlight(a), 0);
        QVERIFY(t.admit(a, {}).proceed());
    }

    // A file left by the previous layout (24-byte slots, no header) is replaced, not misread.
    void oldLayoutIsReset() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("auth-throttle"));
        QVERIFY(writeFileAtomic(path, QByteArray(24 * 8192, '\xff'), 0600).ok());
        AuthThrottle t;
        QVERIFY(t.open(path, {100, 1000, 60'000}).ok());
        const QHostAddress a = ip("198.51.100.3");
        QCOMPARE(t.inFlight(a), 0);
        const auto adm = t.admit(a, kAlice);
        QVERIFY(adm.proceed());
        QCOMPARE(adm.delayMs, 0);
    }

    // The file is opened as root in a folder the daemon user owns: a symbolic or hard link
    // planted there must not make root size or wipe another file.
    void linksAreLeftAlone() {
        QTemporaryDir dir;
        const QString victim = dir.filePath(QStringLiteral("precious"));
        QVERIFY(writeFileAtomic(victim, "do not touch", 0600).ok());
        const QString hard = dir.filePath(QStringLiteral("auth-throttle"));
        QCOMPARE(::link(QFile::encodeName(victim).constData(), QFile::encodeName(hard).constData()), 0);
        AuthThrottle t;
        QVERIFY(!t.open(hard, {}).ok());
        const QString soft = dir.filePath(QStringLiteral("auth-throttle-2"));
        QVERIFY(QFile::link(victim, soft));
        QVERIFY(!t.open(soft, {}).ok());
        QCOMPARE(*readFile(victim), QByteArray("do not touch"));
        // It still works, on its own memory.
        QVERIFY(t.admit(ip("192.0.2.1"), {}).proceed());
    }

    // ---------------------------------------------------------------- the Authenticator

    void authenticator() {
        QTemporaryDir dir;
        QVERIFY(writeFileAtomic(dir.filePath(QStringLiteral("postern.conf")),
                                "primary_domain = example.org\nauth.argon2_memory = 1M\nauth.argon2_iterations = 1\n"
                                "auth.failure_delay = 300ms\nauth.failure_delay_max = 1s\n")
                    .ok());
        auto config = Config::load(dir.path());
        QVERIFY(config.ok());
        AccountStore store(dir.path());
        const QString hash = *hashPassword("right", HashParams::fromConfig(*config));
        QVERIFY(store
                    .modify([&](Accounts& a) -> Status {
                        if (auto s = a.addDomain(QStringLiteral("example.org")); !s) return s;
                        return a.addUser(QStringLiteral("alice@example.org"), hash);
                    })
                    .ok());
        Authenticator auth(*config, &store);
        QObject context;
        auto run = [&](const QHostAddress& from, const QString& login, const QByteArray& pw, qint64* elapsed,
                       std::function<bool()> hungUp = {}) {
            std::optional<Authenticator::Outcome> out;
            QElapsedTimer t;
            t.start();
            auth.verify(AuthRequest{&context, QStringLiteral("s1"), from, login, hungUp}, QStringLiteral("test"), pw,
                        [&](Authenticator::Outcome o) { out = o; });
            [&] { QTRY_VERIFY_WITH_TIMEOUT(out.has_value(), 10000); }();
            if (elapsed) *elapsed = t.elapsed();
            return out.value_or(Authenticator::Outcome{});
        };
        const QHostAddress home = ip("127.0.0.5"), attacker = ip("127.0.0.6"), third = ip("127.0.0.7"),
                           fourth = ip("127.0.0.8");
        qint64 ms = 0;
        auto ok = run(home, QStringLiteral("Alice@Example.org"), "right", &ms);
        QVERIFY(ok.ok());
        QCOMPARE(ok.user, QStringLiteral("alice@example.org"));
        QCOMPARE(auth.cache().size(), 1);
        QVERIFY(run(home, QStringLiteral("alice"), "right", nullptr).ok());  // bare local part + primary_domain
        // The attacker fails: the failure answer waits, and so does its next attempt, before the check.
        auto bad = run(attacker, QStringLiteral("alice@example.org"), "wrong", &ms);
        QVERIFY(!bad.ok());
        QCOMPARE(bad.reason, QStringLiteral("bad password"));
        QVERIFY2(ms >= 290, qPrintable(QString::number(ms)));
        auto unknown = run(attacker, QStringLiteral("nobody@example.org"), "right", &ms);
        QCOMPARE(unknown.reason, QStringLiteral("unknown user"));
        QVERIFY2(ms >= 290 + 590, qPrintable(QString::number(ms)));  // 300 before the check, 600 after
        // The owner from her known address: at once, although her account has a recent failure.
        QCOMPARE(auth.throttle().failures(AuthThrottle::userKey(QStringLiteral("alice@example.org"))), 1);
        QVERIFY(run(home, QStringLiteral("alice@example.org"), "right", &ms).ok());
        QVERIFY2(ms < 250, qPrintable(QString::number(ms)));
        // An address that never failed but is unknown to alice: the account's delay, before the
        // check (a success has no delay after it).
        QVERIFY(run(third, QStringLiteral("alice@example.org"), "right", &ms).ok());
        QVERIFY2(ms >= 290, qPrintable(QString::number(ms)));
        // Even the right password from the attacker's address waits before it is checked.
        QVERIFY(run(attacker, QStringLiteral("alice@example.org"), "right", &ms).ok());
        QVERIFY2(ms >= 590, qPrintable(QString::number(ms)));  // 2 failures: 600 ms

        // A client that hangs up during the wait: its password is never checked (the right
        // one here: a check would have said Ok), and the attempt counts as a failure.
        run(fourth, QStringLiteral("nobody@example.org"), "x", nullptr);  // one failure: the next attempt waits
        QCOMPARE(auth.throttle().failures(AuthThrottle::ipKey(fourth)), 1);
        bool asked = false;
        auto gone = run(fourth, QStringLiteral("alice@example.org"), "right", &ms, [&] {
            asked = true;
            return true;
        });
        QVERIFY(asked);
        QVERIFY(gone.verdict == AuthVerdict::TempFail);
        QCOMPARE(gone.reason, QStringLiteral("client gone"));
        QVERIFY2(ms >= 290, qPrintable(QString::number(ms)));
        QCOMPARE(auth.throttle().failures(AuthThrottle::ipKey(fourth)), 2);
        QCOMPARE(auth.throttle().inFlight(fourth), 0);

        // A deleted context during the wait: the callback never runs, the attempt counts.
        bool called = false;
        {
            QObject going;
            auth.verify(AuthRequest{&going, QStringLiteral("s2"), fourth, QStringLiteral("alice@example.org"), {}},
                        QStringLiteral("test"), "right", [&](Authenticator::Outcome) { called = true; });
            QCOMPARE(auth.throttle().inFlight(fourth), 1);
        }
        QTRY_COMPARE_WITH_TIMEOUT(auth.throttle().inFlight(fourth), 0, 5000);
        // The attempt has ended (no answer is scheduled for a context that is gone): run
        // whatever is queued, then the callback must still not have run.
        QCoreApplication::sendPostedEvents();
        QCoreApplication::processEvents();
        QVERIFY(!called);
        QCOMPARE(auth.throttle().failures(AuthThrottle::ipKey(fourth)), 3);
    }

    // App passwords and two-factor in the one login path: without 2FA both the account
    // password and an app password work; with 2FA on only app passwords (with or without
    // spaces, any case); the account password, even the right one, fails exactly like a
    // wrong one (same reason text to the client, counted by the throttle); a failed app
    // password counts as a failure; a revoked one is refused; each check costs one hash.
    void appPasswordsAndTwoFactor() {
        QTemporaryDir dir;
        QVERIFY(
            writeFileAtomic(
                dir.filePath(QStringLiteral("postern.conf")),
                "primary_domain = example.org\ndata_dir = data\nauth.argon2_memory = 1M\nauth.argon2_iterations = 1\n"
                "auth.failure_delay = 0s\nauth.failure_delay_max = 0s\nauth.cache_ttl = 0\n")
                .ok());
        auto config = Config::load(dir.path());
        QVERIFY(config.ok());
        AccountStore store(dir.path());
        qint64 clockMs = 1'000'000;
        store.setClock([&] { return clockMs; });
        const QString hash = *hashPassword("right", HashParams::fromConfig(*config));
        QVERIFY(store
                    .modify([&](Accounts& a) -> Status {
                        if (auto s = a.addDomain(QStringLiteral("example.org")); !s) return s;
                        return a.addUser(kAlice, hash);
                    })
                    .ok());
        qint64 nowSecs = 1'700'000'000;
        TwoFactor tf(store, appPasswordUsageDir(*config), [&] { return nowSecs; });
        auto app = tf.addAppPassword(kAlice, QStringLiteral("phone"), HashParams::fromConfig(*config));
        QVERIFY(app.ok());
        const QByteArray appPw = app->password.toLatin1();
        Authenticator auth(*config, &store);
        QObject context;
        const QHostAddress from = ip("127.0.0.9");
        auto run = [&](const QByteArray& pw, const char* protocol = "test") {
            std::optional<Authenticator::Outcome> out;
            auth.verify(AuthRequest{&context, QStringLiteral("s1"), from, kAlice, {}}, QLatin1String(protocol), pw,
                        [&](Authenticator::Outcome o) { out = o; });
            [&] { QTRY_VERIFY_WITH_TIMEOUT(out.has_value(), 10000); }();
            return out.value_or(Authenticator::Outcome{});
        };
        auto reload = [&] { clockMs += 2000; };  // the snapshot is re-checked at most once a second
        // 2FA off: both work for mail; the panel takes the account password only.
        QVERIFY(run("right").ok());
        QVERIFY(run(appPw).ok());
        QVERIFY(run("right", kPanelProtocol).ok());
        QVERIFY(!run(appPw, kPanelProtocol).ok());
        QVERIFY(run(QByteArray(appPw).replace(' ', "").toUpper()).ok());
        QVERIFY(tf.appPasswords(kAlice)->first().lastUsed > 0);
        // 2FA on: the account password no longer works for mail; app passwords do.
        QVERIFY(tf.beginEnrolment(kAlice).ok());
        {
            auto s = TotpSecrets::parse(*readFile(store.totpSecretsPath()));
            QVERIFY(tf.confirmEnrolment(kAlice, totpCode(s->find(kAlice)->secret, nowSecs)).ok());
        }
        reload();
        const int failuresBefore = auth.throttle().failures(AuthThrottle::ipKey(from));
        auto refused = run("right");
        QVERIFY(!refused.ok());
        QVERIFY(refused.verdict == AuthVerdict::Failed);
        QCOMPARE(auth.throttle().failures(AuthThrottle::ipKey(from)), failuresBefore + 1);
        auto wrong = run("wrong");
        QVERIFY(wrong.verdict == AuthVerdict::Failed);
        QCOMPARE(refused.reason, wrong.reason);  // the right password is not told apart
        QVERIFY(run(appPw).ok());
        // The panel: the account password (its code step is its own), never an app password.
        QVERIFY(run("right", kPanelProtocol).ok());
        QVERIFY(!run(appPw, kPanelProtocol).ok());
        // A wrong app password (right shape) is a failure for the throttle.
        const int f2 = auth.throttle().failures(AuthThrottle::ipKey(from));
        QVERIFY(!run("aaaa bbbb cccc dddd").ok());
        QCOMPARE(auth.throttle().failures(AuthThrottle::ipKey(from)), f2 + 1);
        // Revoked: refused.
        QVERIFY(tf.revokeAppPassword(kAlice, QStringLiteral("phone")).ok());
        reload();
        QVERIFY(!run(appPw).ok());
        // 2FA off again (administrator): the account password works again.
        QVERIFY(tf.disableAsAdmin(kAlice).ok());
        reload();
        QVERIFY(run("right").ok());
    }

    // Ten attempts at once from one clean address: three are checked, seven are refused at
    // once with a temporary failure, without their passwords being checked.
    void parallelAttemptsFromOneAddress() {
        QTemporaryDir dir;
        QVERIFY(writeFileAtomic(dir.filePath(QStringLiteral("postern.conf")),
                                "primary_domain = example.org\nauth.argon2_memory = 1M\nauth.argon2_iterations = 1\n"
                                "auth.failure_delay = 200ms\nauth.failure_delay_max = 1s\n")
                    .ok());
        auto config = Config::load(dir.path());
        QVERIFY(config.ok());
        AccountStore store(dir.path());
        QVERIFY(store
                    .modify([&](Accounts& a) -> Status {
                        if (auto s = a.addDomain(QStringLiteral("example.org")); !s) return s;
                        return a.addUser(QStringLiteral("alice@example.org"),
                                         *hashPassword("right", HashParams::fromConfig(*config)));
                    })
                    .ok());
        Authenticator auth(*config, &store);
        QObject context;
        QList<Authenticator::Outcome> outcomes;
        for (int i = 0; i < 10; ++i)
            auth.verify(AuthRequest{&context,
                                    QStringLiteral("p%1").arg(i),
                                    ip("127.0.0.9"),
                                    QStringLiteral("u%1@example.org").arg(i),
                                    {}},
                        QStringLiteral("test"), "right", [&](Authenticator::Outcome o) { outcomes << o; });
        QCOMPARE(auth.throttle().inFlight(ip("127.0.0.9")), AuthThrottle::kMaxInFlightPerAddress);
        QTRY_COMPARE_WITH_TIMEOUT(outcomes.size(), 10, 10000);
        int temp = 0, failed = 0;
        for (const auto& o : outcomes) {
            temp += o.verdict == AuthVerdict::TempFail;
            failed += o.verdict == AuthVerdict::Failed;
        }
        QCOMPARE(failed, AuthThrottle::kMaxInFlightPerAddress);
        QCOMPARE(temp, 10 - AuthThrottle::kMaxInFlightPerAddress);
        QCOMPARE(auth.throttle().failures(AuthThrottle::ipKey(ip("127.0.0.9"))), AuthThrottle::kMaxInFlightPerAddress);
    }
};

QTEST_GUILESS_MAIN(TstAuth)
#include "tst_auth.moc"
