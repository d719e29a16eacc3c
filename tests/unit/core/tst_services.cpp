// tst_services.cpp — the table of listeners and services (core/services.h): every
// row's values (so a change is deliberate), the invariants the readers rely on
// (rows in enum order, unique names and ports, every program a service), and the
// settings generated from it (<name>.listen with the standard port as default).
#include "core/config.h"
#include "core/config_schema.h"
#include "core/services.h"

#include <QSet>
#include <QtTest>

using namespace postern;

class TstServices : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void rows_data() {
        QTest::addColumn<int>("mode");
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("protocol");
        QTest::addColumn<int>("port");
        QTest::addColumn<int>("demo");
        QTest::addColumn<bool>("implicitTls");
        QTest::addColumn<QString>("program");
        QTest::addColumn<QString>("srv");
        QTest::addColumn<int>("srvPriority");
        using M = ListenerMode;
        QTest::newRow("smtp") << int(M::Mx) << "smtp"
                              << "smtp" << 25 << 2525 << false << "postern-smtpd"
                              << "" << -1;
        QTest::newRow("submission") << int(M::Submission) << "submission"
                                    << "smtp" << 587 << 2587 << false << "postern-smtpd"
                                    << "_submission._tcp" << 5;
        QTest::newRow("submissions") << int(M::Submissions) << "submissions"
                                     << "smtp" << 465 << 2465 << true << "postern-smtpd"
                                     << "_submissions._tcp" << 0;
        QTest::newRow("imap") << int(M::Imap) << "imap"
                              << "imap" << 143 << 2143 << false << "postern-imapd"
                              << "_imap._tcp" << 5;
        QTest::newRow("imaps") << int(M::Imaps) << "imaps"
                               << "imap" << 993 << 2993 << true << "postern-imapd"
                               << "_imaps._tcp" << 0;
        QTest::newRow("pop3") << int(M::Pop3) << "pop3"
                              << "pop3" << 110 << 2110 << false << "postern-pop3d"
                              << "_pop3._tcp" << 15;
        QTest::newRow("pop3s") << int(M::Pop3s) << "pop3s"
                               << "pop3" << 995 << 2995 << true << "postern-pop3d"
                               << "_pop3s._tcp" << 10;
        QTest::newRow("http") << int(M::Http) << "http"
                              << "http" << 80 << 8080 << false << "postern-webd"
                              << "" << -1;
        QTest::newRow("https") << int(M::Https) << "https"
                               << "http" << 443 << 8443 << true << "postern-webd"
                               << "" << -1;
        QTest::newRow("sieve") << int(M::ManageSieve) << "sieve"
                               << "managesieve" << 4190 << 14190 << false << "postern-sieved"
                               << "_sieve._tcp" << 0;
    }
    void rows() {
        QFETCH(int, mode);
        QFETCH(QString, name);
        QFETCH(QString, protocol);
        QFETCH(int, port);
        QFETCH(int, demo);
        QFETCH(bool, implicitTls);
        QFETCH(QString, program);
        QFETCH(QString, srv);
        QFETCH(int, srvPriority);
        const ListenerInfo& l = listenerInfo(ListenerMode(mode));
        QCOMPARE(int(l.mode), mode);  // rows are in enum order: listenerInfo() indexes by mode
        QCOMPARE(l.name, name);
        QCOMPARE(listenerName(ListenerMode(mode)), name);
        QCOMPARE(toString(l.protocol), protocol);
        QCOMPARE(int(l.standardPort), port);
        QCOMPARE(int(l.demoPort), demo);
        QVERIFY(l.demoPort > 1023);  // the demo runs without root
        QCOMPARE(l.implicitTls, implicitTls);
        QCOMPARE(isImplicitTls(ListenerMode(mode)), implicitTls);
        QCOMPARE(l.program, program);
        QCOMPARE(l.srvService, srv);
        QCOMPARE(l.srvPriority, srvPriority);
        QCOMPARE(l.settingKey(), name + QStringLiteral(".listen"));
        QCOMPARE(findListener(name), &l);
        QCOMPARE(serviceNamePort(name), port);  // names are IANA service names
        QVERIFY(!l.title.isEmpty());
        QVERIFY(!l.doc.isEmpty());
    }

    void invariants() {
        QSet<QString> names;
        QSet<quint16> ports, demoPorts;
        for (const ListenerInfo& l : listeners()) {
            QVERIFY2(!names.contains(l.name), qPrintable(l.name));
            QVERIFY2(!ports.contains(l.standardPort), qPrintable(l.name));
            QVERIFY2(!demoPorts.contains(l.demoPort), qPrintable(l.name));
            names << l.name;
            ports << l.standardPort;
            demoPorts << l.demoPort;
            QVERIFY2(findService(l.program), qPrintable(l.program));  // the supervisor starts it
            QCOMPARE(l.srvService.isEmpty(), l.srvPriority < 0);
        }
        QCOMPARE(listenerNames(), QStringList({"smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s",
                                               "http", "https", "sieve"}));
        for (const ServiceInfo& s : services()) {
            // A program without listeners must say it runs anyway, or it would never start.
            QCOMPARE(listenersOf(s.program).isEmpty(), s.withoutListeners);
            QVERIFY(!s.description.isEmpty());
        }
        QStringList programs;
        for (const ServiceInfo& s : services()) programs << s.program;
        QCOMPARE(programs, QStringList({"unbound", "redis-server", "rspamd", "postern-smtpd", "postern-imapd",
                                        "postern-pop3d", "postern-sieved", "postern-queued", "postern-webd"}));
        for (const ServiceInfo& s : services())  // the engines run only with the spam filter or the bundled resolver
            QCOMPARE(s.engine, s.enabledBy == u"spam.enabled" || s.enabledBy == u"dns.resolver");
        QCOMPARE(findListener(QStringLiteral("nope")), nullptr);
        QCOMPARE(findService(QStringLiteral("postern-nope")), nullptr);
    }

    void clientOrder() {
        // Incoming first, implicit TLS before STARTTLS (RFC 8314 5.1): autoconfig's order.
        QStringList order;
        for (const ListenerInfo& l : clientListeners()) order << l.name;
        QCOMPARE(order, QStringList({"imaps", "imap", "pop3s", "pop3", "submissions", "submission"}));
    }

    void serviceNames_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<int>("port");
        QTest::newRow("alias smtps") << "smtps" << 465;
        QTest::newRow("alias imap2") << "imap2" << 143;
        QTest::newRow("upper case") << "SMTP" << 25;
        QTest::newRow("not ours") << "ssh" << -1;
        QTest::newRow("empty") << "" << -1;
    }
    void serviceNames() {
        QFETCH(QString, name);
        QFETCH(int, port);
        QCOMPARE(serviceNamePort(name), port);
    }

    void settingsComeFromTheTable() {
        QStringList keys;
        for (const Setting& s : Schema::instance().all())
            if (s.section == u"listeners") keys << s.key;
        QStringList expected;
        for (const ListenerInfo& l : listeners()) {
            expected << l.settingKey();
            const Setting* s = Schema::instance().find(l.settingKey());
            QVERIFY(s);
            QVERIFY(s->type == SettingType::ListenList);
            QCOMPARE(s->defaultValue, QStringLiteral("*:%1").arg(l.standardPort));
            QCOMPARE(s->doc, l.doc);
            QVERIFY(s->restart);
        }
        QCOMPARE(keys, expected);
        const Config defaults;
        for (const ListenerInfo& l : listeners())
            QCOMPARE(defaults.listeners(l.settingKey()).value(0).port, l.standardPort);
    }
};

QTEST_GUILESS_MAIN(TstServices)
#include "tst_services.moc"
