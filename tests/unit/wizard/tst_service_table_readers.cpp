// tst_service_table_readers.cpp — every reader of the listener table (core/services.h)
// agrees with it: the wizard's port sets and --port names, the DNS sheet's SRV
// records (order, priorities, ports, "not offered"), the firewall's configured and
// default ports and its service names, the supervisor's service table, and
// postern-webd's client autoconfiguration. A row added to the table shows up in all
// of them; these tests say where to look when one does not.
#include "records/dns_records.h"
#include "records/host_facts.h"
#include "wizard/wizard.h"

#include "firewall/model.h"
#include "firewall/port_state.h"
#include "supervisor/supervisor.h"
#include "webd/web_content.h"

#include "core/accounts.h"
#include "core/config.h"
#include "core/services.h"

#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

using namespace postern;

namespace {
Config configWith(const QByteArray& text) {
    auto c = Config::parse(text, QStringLiteral("postern.conf"), QStringLiteral("/tmp"));
    if (!c) qFatal("%s", qPrintable(c.errorMessage()));
    return *c;
}
}  // namespace

class TstServiceTableReaders : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void wizardPorts() {
        const QMap<QString, quint16> standard = wizard::standardPorts();
        const QMap<QString, quint16> demo = wizard::unprivilegedPorts();
        QCOMPARE(standard.size(), listeners().size());
        QCOMPARE(demo.size(), listeners().size());
        for (const ListenerInfo& l : listeners()) {
            QCOMPARE(standard.value(l.name), l.standardPort);
            QCOMPARE(demo.value(l.name), l.demoPort);
        }
    }

    void wizardSteps() {
        QCOMPARE(wizard::wizardSteps(),
                 QStringList({"detect", "ask", "check", "write", "firewall", "launch", "verify", "report"}));
    }

    void srvRecords_data() {
        QTest::addColumn<QList<int>>("notOffered");
        QTest::addColumn<QStringList>("expected");  // "name prio value"
        QTest::newRow("all offered") << QList<int>{} << QStringList{"_submissions._tcp 0 1 465 mail.example.org.",
                                                                    "_submission._tcp 5 1 587 mail.example.org.",
                                                                    "_imaps._tcp 0 1 993 mail.example.org.",
                                                                    "_imap._tcp 5 1 143 mail.example.org.",
                                                                    "_pop3s._tcp 10 1 995 mail.example.org.",
                                                                    "_pop3._tcp 15 1 110 mail.example.org.",
                                                                    "_sieve._tcp 0 1 4190 mail.example.org."};
        QTest::newRow("no pop3") << QList<int>{int(ListenerMode::Pop3), int(ListenerMode::Pop3s)}
                                 << QStringList{"_submissions._tcp 0 1 465 mail.example.org.",
                                                "_submission._tcp 5 1 587 mail.example.org.",
                                                "_imaps._tcp 0 1 993 mail.example.org.",
                                                "_imap._tcp 5 1 143 mail.example.org.",
                                                "_pop3s._tcp 0 0 0 .",
                                                "_pop3._tcp 0 0 0 .",
                                                "_sieve._tcp 0 1 4190 mail.example.org."};
        QTest::newRow("no managesieve") << QList<int>{int(ListenerMode::ManageSieve)}
                                        << QStringList{"_submissions._tcp 0 1 465 mail.example.org.",
                                                       "_submission._tcp 5 1 587 mail.example.org.",
                                                       "_imaps._tcp 0 1 993 mail.example.org.",
                                                       "_imap._tcp 5 1 143 mail.example.org.",
                                                       "_pop3s._tcp 10 1 995 mail.example.org.",
                                                       "_pop3._tcp 15 1 110 mail.example.org.",
                                                       "_sieve._tcp 0 0 0 ."};
    }
    void srvRecords() {
        QFETCH(QList<int>, notOffered);
        QFETCH(QStringList, expected);
        records::HostFacts f;
        f.domain = QStringLiteral("example.org");
        f.hostname = QStringLiteral("mail.example.org");
        f.reportAddress = QStringLiteral("postmaster@example.org");
        for (const int m : notOffered) f.notOffered << ListenerMode(m);
        QStringList srv;
        for (const records::Record& r : records::buildRecords(f))
            if (r.type == u"SRV" && r.name != u"_autodiscover._tcp")
                srv << QStringLiteral("%1 %2 %3").arg(r.name).arg(r.priority).arg(r.value);
        QCOMPARE(srv, expected);
    }

    void hostFactsFromConfig() {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        QFile conf(dir.filePath(QStringLiteral("postern.conf")));
        QVERIFY(conf.open(QIODevice::WriteOnly));
        conf.write("primary_domain = example.org\nimaps.listen =\npop3.listen =\n");
        conf.close();
        auto facts = records::hostFacts(dir.path(), {});
        QVERIFY2(facts, qPrintable(facts.errorMessage()));
        QVERIFY(facts->notOffered == QList<ListenerMode>({ListenerMode::Imaps, ListenerMode::Pop3}));
    }

    void firewallPorts() {
        const QList<firewall::ConfiguredPort> defaults = firewall::defaultPorts();
        QCOMPARE(defaults.size(), listeners().size());
        for (qsizetype i = 0; i < defaults.size(); ++i) {
            QCOMPARE(defaults.at(i).service, listeners().at(i).name);
            QCOMPARE(defaults.at(i).port, listeners().at(i).standardPort);
        }
        // A disabled listener and port 0 are left out; every other row is read from its key.
        const Config c = configWith("smtp.listen = 127.0.0.2:2525\nsubmission.listen =\nimap.listen = *:0\n");
        QStringList seen;
        for (const firewall::ConfiguredPort& p : firewall::configuredPorts(c))
            seen << QStringLiteral("%1:%2").arg(p.service).arg(p.port);
        QCOMPARE(seen, QStringList({"smtp:2525", "submissions:465", "imaps:993", "pop3:110", "pop3s:995", "http:80",
                                    "https:443", "sieve:4190"}));
        // Rules written with service names resolve through the table (and the system's aliases).
        QCOMPARE(firewall::servicePort(QStringLiteral("submissions")), 465);
        QCOMPARE(firewall::servicePort(QStringLiteral("smtps")), 465);
        QCOMPARE(firewall::servicePort(QStringLiteral("imap2")), 143);
        QCOMPARE(firewall::servicePort(QStringLiteral("ssh")), 22);
    }

    void supervisorServices() {
        QStringList rows;
        for (const ServiceSpec& s : serviceTable())
            rows << QStringLiteral("%1[%2]%3")
                            .arg(s.program, s.listenerKeys.join(QLatin1Char(',')),
                                 s.withoutListeners ? (s.enabledBy.isEmpty() ? QStringLiteral(" always")
                                                                             : QStringLiteral(" if ") + s.enabledBy)
                                                    : QString()) +
                        (s.engine ? QStringLiteral(" engine") : QString());
        QCOMPARE(rows, QStringList({"unbound[] if dns.resolver engine", "redis-server[] if spam.enabled engine",
                                    "rspamd[] if spam.enabled engine",
                                    "postern-smtpd[smtp.listen,submission.listen,submissions.listen]",
                                    "postern-imapd[imap.listen,imaps.listen]",
                                    "postern-pop3d[pop3.listen,pop3s.listen]", "postern-sieved[sieve.listen]",
                                    "postern-queued[] always", "postern-webd[http.listen,https.listen]"}));
    }

    void webAutoconfig() {
        auto accounts = Accounts::parse("example.org\n", "", "");
        QVERIFY(accounts);
        const web::Site site =
            web::siteFrom(configWith("hostname = mail.example.org\nimaps.listen = *:0\npop3.listen =\n"), *accounts);
        QStringList services;
        for (const web::MailService& s : site.services)
            services << QStringLiteral("%1 %2 %3").arg(s.protocol, s.socketType).arg(s.port);
        // Port 0 ("the OS chooses") is published as the standard port; a disabled listener not at all.
        QCOMPARE(services, QStringList({"imap SSL 993", "imap STARTTLS 143", "pop3 SSL 995", "smtp SSL 465",
                                        "smtp STARTTLS 587"}));
    }
};

QTEST_GUILESS_MAIN(TstServiceTableReaders)
#include "tst_service_table_readers.moc"
