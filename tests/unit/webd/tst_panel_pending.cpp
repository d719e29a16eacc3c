// tst_panel_pending.cpp — the panel's pending logins (panel_pending.h): expiry at its
// boundary (kPendingLoginMs - 1 alive, kPendingLoginMs gone), single use (a success
// removes it; a second claim while one is being checked is refused), the wrong-code
// limit at its boundary (kMaxCodeFailures - 1 kept, kMaxCodeFailures removed), the
// per-user and global limits, malformed ids; and the Sieve forms the panel and
// posternctl share (sieve_forms.h): they compile, values cannot add commands, limits.
#include "webd/panel_pending.h"
#include "webd/panel_sessions.h"

#include "common/sieve/sieve.h"
#include "common/sieve/sieve_forms.h"

#include <QtTest>

using namespace postern;
using namespace postern::web;

class TstPanelPending : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void expiry_data() {
        QTest::addColumn<qint64>("age");
        QTest::addColumn<bool>("alive");
        QTest::newRow("fresh") << qint64(0) << true;
        QTest::newRow("just before the limit") << kPendingLoginMs - 1 << true;
        QTest::newRow("at the limit") << kPendingLoginMs << false;
        QTest::newRow("after") << kPendingLoginMs + 1 << false;
        QTest::newRow("clock went back") << qint64(-1) << false;
    }
    void expiry() {
        QFETCH(qint64, age);
        QFETCH(bool, alive);
        PendingLogins p;
        const qint64 t0 = 1'000'000;
        const QByteArray id = p.create(QStringLiteral("a@x.test"), t0);
        QVERIFY(PanelSessions::wellFormed(id));
        QCOMPARE(p.find(id, t0 + age) != nullptr, alive);
        QCOMPARE(p.claim(id, t0 + age).has_value(), alive);
        QCOMPARE(p.size(), alive ? 1 : 0);  // an expired one is removed when seen
    }

    void singleUse() {
        PendingLogins p;
        const QByteArray id = p.create(QStringLiteral("a@x.test"), 0);
        const PendingLogin* found = p.find(id, 1);
        QVERIFY(found);
        QCOMPARE(found->user, QStringLiteral("a@x.test"));
        QVERIFY(PanelSessions::wellFormed(found->csrf));
        QVERIFY(found->csrf != id);
        auto first = p.claim(id, 1);
        QVERIFY(first);
        QVERIFY(!p.claim(id, 2));  // one check at a time: a parallel request gets nothing
        p.settle(id, true);
        QVERIFY(!p.find(id, 3));  // used: gone
        QVERIFY(!p.claim(id, 3));
        p.settle(id, true);  // unknown: no effect
        QCOMPARE(p.size(), 0);
    }

    void wrongCodesUpToTheLimit() {
        PendingLogins p;
        const QByteArray id = p.create(QStringLiteral("a@x.test"), 0);
        for (int i = 1; i < kMaxCodeFailures; ++i) {
            QVERIFY(p.claim(id, i));
            p.settle(id, false);
            QVERIFY2(p.find(id, i), "kept below the limit");
            QCOMPARE(p.find(id, i)->failures, i);
        }
        QVERIFY(p.claim(id, 10));
        p.settle(id, false);  // the kMaxCodeFailures-th wrong code
        QVERIFY(!p.find(id, 11));
        QVERIFY(!p.claim(id, 11));
    }

    void malformedAndUnknownIds_data() {
        QTest::addColumn<QByteArray>("id");
        QTest::newRow("empty") << QByteArray();
        QTest::newRow("short") << QByteArray(63, 'a');
        QTest::newRow("long") << QByteArray(65, 'a');
        QTest::newRow("upper case") << QByteArray(64, 'A');
        QTest::newRow("unknown") << QByteArray(64, 'a');
    }
    void malformedAndUnknownIds() {
        QFETCH(QByteArray, id);
        PendingLogins p;
        p.create(QStringLiteral("a@x.test"), 0);
        QVERIFY(!p.find(id, 1));
        QVERIFY(!p.claim(id, 1));
        p.settle(id, false);
        p.remove(id);
        QCOMPARE(p.size(), 1);
    }

    void limits() {
        PendingLogins p;
        QList<QByteArray> ids;
        for (int i = 0; i < kMaxPendingPerUser; ++i) ids << p.create(QStringLiteral("a@x.test"), i);
        QCOMPARE(p.size(), kMaxPendingPerUser);
        QVERIFY(p.find(ids.first(), 10));
        p.create(QStringLiteral("a@x.test"), 20);  // one more for the user: the user's oldest goes
        QCOMPARE(p.size(), kMaxPendingPerUser);
        QVERIFY(!p.find(ids.first(), 21));
        QVERIFY(p.find(ids.at(1), 21));
        PendingLogins all;
        const QByteArray first = all.create(QStringLiteral("u0@x.test"), 0);
        for (int i = 1; i < kMaxPendingLogins; ++i) all.create(QStringLiteral("u%1@x.test").arg(i), i);
        QCOMPARE(all.size(), kMaxPendingLogins);
        all.create(QStringLiteral("new@x.test"), kMaxPendingLogins);
        QCOMPARE(all.size(), kMaxPendingLogins);
        QVERIFY(!all.find(first, kMaxPendingLogins + 1));
    }

    // ---- the shared Sieve forms
    void forwarding_data() {
        QTest::addColumn<QStringList>("targets");
        QTest::addColumn<bool>("keep");
        QTest::addColumn<bool>("ok");
        QTest::addColumn<QString>("contains");
        QTest::newRow("one, no copy") << QStringList{"bob@remote.test"} << false << true
                                      << "\nredirect \"bob@remote.test\";\n";
        QTest::newRow("keep a copy") << QStringList{"bob@remote.test"} << true << true
                                     << "require \"copy\";\nredirect :copy \"bob@remote.test\";";
        QTest::newRow("duplicates dropped, normalised") << QStringList{" Bob@Remote.TEST ", "bob@remote.test"} << false
                                                        << true << "\nredirect \"bob@remote.test\";\n";
        QTest::newRow("at the limit") << QStringList{"a@r.test", "b@r.test", "c@r.test", "d@r.test"} << false << true
                                      << "redirect \"d@r.test\";";
        QTest::newRow("one over the limit")
            << QStringList{"a@r.test", "b@r.test", "c@r.test", "d@r.test", "e@r.test"} << false << false << "";
        QTest::newRow("not an address") << QStringList{"bob\"; discard; \"@r.test"} << false << false << "";
        QTest::newRow("none") << QStringList{" "} << false << false << "";
    }
    void forwarding() {
        QFETCH(QStringList, targets);
        QFETCH(bool, keep);
        QFETCH(bool, ok);
        QFETCH(QString, contains);
        auto s = sieve::forwardingScript(targets, keep, QDate(2026, 12, 3));
        QCOMPARE(s.ok(), ok);
        if (!ok) return;
        QVERIFY2(QString::fromUtf8(*s).contains(contains), s->constData());
        QVERIFY(s->startsWith("# Forwarding, generated by Postern on 2026-12-03."));
        QCOMPARE(s->count("redirect "),
                 qsizetype(targets.size() == 2 && targets.at(1) == u"bob@remote.test" ? 1 : targets.size()));
        auto compiled = sieve::compile(*s);
        QVERIFY2(compiled.ok(), qPrintable(compiled.errorMessage()));
    }

    void vacation_data() {
        QTest::addColumn<QString>("subject");
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("from");
        QTest::addColumn<QString>("until");
        QTest::addColumn<int>("days");
        QTest::addColumn<bool>("ok");
        QTest::addColumn<QString>("contains");
        QTest::newRow("plain") << "Away"
                               << "Back soon."
                               << ""
                               << "" << 7 << true
                               << "require \"vacation\";\nvacation :days 7 :subject \"Away\" text:\nBack soon.\n.\n;";
        QTest::newRow("dates") << ""
                               << "x"
                               << "2026-12-24"
                               << "2027-01-02" << 1 << true
                               << "if allof (currentdate :value \"ge\" \"date\" \"2026-12-24\", currentdate :value "
                                  "\"le\" \"date\" \"2027-01-02\")";
        QTest::newRow("quotes in the subject stay a string")
            << "a\" ; discard ; \""
            << "x"
            << ""
            << "" << 7 << true << ":subject \"a\\\" ; discard ; \\\"\"";
        QTest::newRow("a dot line is stuffed") << ""
                                               << "one\n.\ndiscard;"
                                               << ""
                                               << "" << 7 << true << "one\n..\ndiscard;\n.\n;";
        QTest::newRow("days at the limit") << ""
                                           << "x"
                                           << ""
                                           << "" << sieve::kMaxVacationDays << true << ":days 365";
        QTest::newRow("days over the limit") << ""
                                             << "x"
                                             << ""
                                             << "" << sieve::kMaxVacationDays + 1 << false << "";
        QTest::newRow("days zero") << ""
                                   << "x"
                                   << ""
                                   << "" << 0 << false << "";
        QTest::newRow("empty text") << "s"
                                    << " "
                                    << ""
                                    << "" << 7 << false << "";
        QTest::newRow("bad date") << ""
                                  << "x"
                                  << "2026-13-01"
                                  << "" << 7 << false << "";
        QTest::newRow("end before start") << ""
                                          << "x"
                                          << "2026-12-24"
                                          << "2026-12-23" << 7 << false << "";
        QTest::newRow("two-line subject") << "a\r\nBcc: x@y"
                                          << "x"
                                          << ""
                                          << "" << 7 << false << "";
        QTest::newRow("text at the limit") << "" << QString(sieve::kMaxVacationTextBytes, QLatin1Char('x')) << ""
                                           << "" << 7 << true << "xxx";
        QTest::newRow("text at the limit, all dot lines")
            << "" << QStringLiteral(".\n").repeated(sieve::kMaxVacationTextBytes / 2) << ""
            << "" << 7 << true << "..\n..\n";
        QTest::newRow("text over the limit") << "" << QString(sieve::kMaxVacationTextBytes + 1, QLatin1Char('x')) << ""
                                             << "" << 7 << false << "";
    }
    void vacation() {
        QFETCH(QString, subject);
        QFETCH(QString, text);
        QFETCH(QString, from);
        QFETCH(QString, until);
        QFETCH(int, days);
        QFETCH(bool, ok);
        QFETCH(QString, contains);
        sieve::VacationForm f{subject, text, from, until, days};
        auto s = sieve::vacationScript(f, QDate(2026, 12, 3));
        QCOMPARE(s.ok(), ok);
        if (!ok) return;
        QVERIFY2(QString::fromUtf8(*s).contains(contains), s->constData());
        auto compiled = sieve::compile(*s);
        QVERIFY2(compiled.ok(), qPrintable(compiled.errorMessage()));
        // A value never adds a command: the only action is the vacation.
        QCOMPARE(compiled->commands.isEmpty(), false);
        QString flat;
        std::function<void(const QList<sieve::Node>&)> walk = [&](const QList<sieve::Node>& nodes) {
            for (const sieve::Node& n : nodes) {
                flat += n.name + QLatin1Char(' ');
                walk(n.block);
            }
        };
        walk(compiled->commands);
        QVERIFY2(!flat.contains(QStringLiteral("discard")), qPrintable(flat));
    }
};

QTEST_GUILESS_MAIN(TstPanelPending)
#include "tst_panel_pending.moc"
