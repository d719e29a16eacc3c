// tst_resolver_engine.cpp — the bundled resolver (core/resolver_engine.h, core/dns.h):
// unbound.conf generated from postern.conf (listen address, loopback-only access, no
// daemonizing or user switch, the trust anchor from a file or the built-in root DS,
// forward zones as insecure forward-zone blocks, the control socket), which servers
// Postern asks (dns.servers, else the bundled resolver, else resolv.conf), which servers
// Rspamd is given, when the supervisor runs unbound (serviceOffReason), and the parsers'
// refusals (non-loopback listen address, bad forward zones, more than kMaxForwardZones);
// and Rspamd's trimmed modules (neural, history_redis off); Rspamd's statistic section
// (statisticConf: the shared and the per-user Bayes classifier, spam.bayes_min_learns at and
// past its bounds, the stale per-user-only classifier-bayes.conf removed).
#include "core/config.h"
#include "core/dns.h"
#include "core/resolver_engine.h"
#include "core/services.h"
#include "core/spam_engine.h"

#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

using namespace postern;

namespace {

Config parse(const QByteArray& text) {
    auto c = Config::parse("data_dir = /srv/p\n" + text, QStringLiteral("postern.conf"), QStringLiteral("/etc/p"));
    if (!c) qFatal("config: %s", qPrintable(c.errorMessage()));
    return *c;
}

}  // namespace

class TstResolverEngine : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void servers_data() {
        QTest::addColumn<QByteArray>("conf");
        QTest::addColumn<QStringList>("servers");  // what configuredDnsServers gives, "ip:port"
        QTest::addColumn<bool>("bundled");
        QTest::addColumn<QString>("offReason");  // why the supervisor runs no unbound
        QTest::newRow("default: bundled") << QByteArray() << QStringList{"127.0.0.1:5335"} << true << QString();
        QTest::newRow("other port") << QByteArray("dns.resolver_listen = 127.0.0.1:5301\n")
                                    << QStringList{"127.0.0.1:5301"} << true << QString();
        QTest::newRow("v6 loopback") << QByteArray("dns.resolver_listen = [::1]:5301\n") << QStringList{"::1:5301"}
                                     << true << QString();
        QTest::newRow("dns.servers overrides")
            << QByteArray("dns.servers = 192.0.2.1, 192.0.2.2:5353\n") << QStringList{"192.0.2.1:53", "192.0.2.2:5353"}
            << false << QStringLiteral("dns.servers is set");
        QTest::newRow("system") << QByteArray("dns.resolver = system\n") << QStringList{} << false
                                << QStringLiteral("dns.resolver is system");
        QTest::newRow("not loopback: refused, not used")
            << QByteArray("dns.resolver_listen = 192.0.2.7:5335\n") << QStringList{} << true << QString();
    }
    void servers() {
        QFETCH(QByteArray, conf);
        QFETCH(QStringList, servers);
        QFETCH(bool, bundled);
        QFETCH(QString, offReason);
        const Config c = parse(conf);
        QStringList got;
        for (const DnsServer& s : configuredDnsServers(c))
            got << QStringLiteral("%1:%2").arg(s.address.toString()).arg(s.port);
        QCOMPARE(got, servers);
        QCOMPARE(bundledResolverInUse(c), bundled);
        const ServiceInfo* unbound = findService(QStringLiteral("unbound"));
        QVERIFY(unbound && unbound->engine);
        QCOMPARE(serviceOffReason(*unbound, c), offReason);
        // The spam engines keep their own switch.
        QCOMPARE(serviceOffReason(*findService(QStringLiteral("rspamd")), parse("spam.enabled = false\n")),
                 QStringLiteral("spam.enabled is off"));
    }

    void config() {
        const Config c = parse(
            "dns.resolver_listen = 127.0.0.1:5301\n"
            "dns.forward_zones = corp.example=10.0.0.53, Lab.Test.=127.0.0.1:5300, corp.example=10.0.0.54:5353\n");
        const ResolverPaths p = resolverPaths(c, QStringLiteral("/etc/p"));
        QCOMPARE(p.unboundConf, QStringLiteral("/etc/p/dns/unbound.conf"));
        QCOMPARE(p.controlSocket, QStringLiteral("/srv/p/run/dns/unbound.ctl"));
        auto text = unboundConfig(
            c, p,
            RootAnchor{QStringLiteral("/usr/share/dns/root.key"), {}, QStringLiteral("/usr/share/dns/root.hints")});
        QVERIFY2(text, qPrintable(text.errorMessage()));
        const QByteArray t = *text;
        for (const char* line : {"server:\n",
                                 "  interface: 127.0.0.1@5301\n",
                                 "  port: 5301\n",
                                 "  access-control: 0.0.0.0/0 refuse\n",
                                 "  access-control: 127.0.0.0/8 allow\n",
                                 "  do-daemonize: no\n",
                                 "  username: \"\"\n",
                                 "  chroot: \"\"\n",
                                 "  directory: \"/srv/p/run/dns\"\n",
                                 "  logfile: \"\"\n",
                                 "  use-syslog: no\n",
                                 "  num-threads: 1\n",
                                 "  trust-anchor-file: \"/usr/share/dns/root.key\"\n",
                                 "  root-hints: \"/usr/share/dns/root.hints\"\n",
                                 "  do-not-query-localhost: no\n",
                                 "  domain-insecure: \"corp.example.\"\n",
                                 "  domain-insecure: \"lab.test.\"\n",
                                 "  local-zone: \"lab.test.\" transparent\n",
                                 "remote-control:\n",
                                 "  control-use-cert: no\n",
                                 "  control-interface: \"/srv/p/run/dns/unbound.ctl\"\n",
                                 "forward-zone:\n  name: \"corp.example.\"\n  forward-addr: 10.0.0.53@53\n  "
                                 "forward-addr: 10.0.0.54@5353\n",
                                 "forward-zone:\n  name: \"lab.test.\"\n  forward-addr: 127.0.0.1@5300\n"})
            QVERIFY2(t.contains(line), line);
        QVERIFY(!t.contains("trust-anchor:"));
        QCOMPARE(t.count("forward-zone:"), 2);

        // No anchor file: the built-in root DS records; no forward zone: localhost not queried.
        auto plain =
            unboundConfig(parse(""), p, RootAnchor{{}, QStringLiteral(". IN DS 1 8 2 AA\n. IN DS 2 8 2 BB"), {}});
        QVERIFY(plain);
        QVERIFY(plain->contains("  trust-anchor: \". IN DS 1 8 2 AA\"\n  trust-anchor: \". IN DS 2 8 2 BB\"\n"));
        QVERIFY(!plain->contains("trust-anchor-file"));
        QVERIFY(!plain->contains("root-hints"));
        QVERIFY(!plain->contains("do-not-query-localhost"));
        QVERIFY(!plain->contains("forward-zone"));
        QVERIFY(plain->contains("  interface: 127.0.0.1@5335\n"));
        // What this machine offers is one of the two, never neither.
        const RootAnchor found = findRootAnchor();
        QVERIFY(found.file.isEmpty() != found.ds.isEmpty());
        if (found.file.isEmpty()) QVERIFY(found.ds.contains(QStringLiteral(". IN DS 20326 8 2 E06D44B8")));
    }

    void refusals_data() {
        QTest::addColumn<QByteArray>("conf");
        QTest::addColumn<QString>("error");
        QTest::newRow("listen not loopback")
            << QByteArray("dns.resolver_listen = 0.0.0.0:5335\n") << QStringLiteral("not a loopback");
        QTest::newRow("listen not an address")
            << QByteArray("dns.resolver_listen = localhost:5335\n") << QStringLiteral("not an IP");
        QTest::newRow("zone without server")
            << QByteArray("dns.forward_zones = corp.example\n") << QStringLiteral("expected zone=ip");
        QTest::newRow("zone bad name") << QByteArray("dns.forward_zones = \"a b\"=10.0.0.1\n")
                                       << QStringLiteral("bad zone name");
        QTest::newRow("zone quote") << QByteArray("dns.forward_zones = x\"y=10.0.0.1\n")
                                    << QStringLiteral("bad zone name");
        QTest::newRow("zone bad server") << QByteArray("dns.forward_zones = corp.example=ns.corp.example\n")
                                         << QStringLiteral("not an IP");
        QTest::newRow("zone bad port") << QByteArray("dns.forward_zones = corp.example=10.0.0.1:0\n")
                                       << QStringLiteral("bad port");
    }
    void refusals() {
        QFETCH(QByteArray, conf);
        QFETCH(QString, error);
        auto c = Config::parse("data_dir = /srv/p\n" + conf, QStringLiteral("postern.conf"), QStringLiteral("/etc/p"));
        if (!c) {  // refused by the schema already: fine, as long as it says so
            QVERIFY(!c.errorMessage().isEmpty());
            return;
        }
        auto text = unboundConfig(*c, resolverPaths(*c, QStringLiteral("/etc/p")), RootAnchor{});
        QVERIFY(!text);
        QVERIFY2(text.errorMessage().contains(error), qPrintable(text.errorMessage()));
    }

    void forwardZoneLimit() {
        // kMaxForwardZones zones pass, one more is refused.
        for (int n : {kMaxForwardZones, kMaxForwardZones + 1}) {
            QStringList zones;
            for (int i = 0; i < n; ++i) zones << QStringLiteral("z%1.example=10.0.0.1").arg(i);
            const Config c = parse("dns.forward_zones = " + zones.join(QStringLiteral(", ")).toUtf8() + "\n");
            auto text = unboundConfig(c, resolverPaths(c, QStringLiteral("/etc/p")), RootAnchor{});
            QCOMPARE(bool(text), n <= kMaxForwardZones);
        }
    }

    void rspamdGetsTheResolver() {
        // Rspamd's options.inc names the bundled resolver by default, dns.servers when set.
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        for (const auto& [conf, expect] : QList<QPair<QByteArray, QByteArray>>{
                 {"dns.resolver_listen = 127.0.0.1:5301\n", "nameserver = [\"127.0.0.1:5301\"];"},
                 {"dns.servers = 192.0.2.1\n", "nameserver = [\"192.0.2.1:53\"];"},
                 {"dns.resolver_listen = [::1]:5301\n", "nameserver = [\"[::1]:5301\"];"},
                 {"dns.resolver = system\n", ""}}) {
            auto c = Config::parse("data_dir = " + dir.path().toUtf8() + "/data\n" + conf,
                                   QStringLiteral("postern.conf"), dir.path());
            QVERIFY(c);
            const SpamPaths paths = spamPaths(*c, dir.path());
            QVERIFY(writeSpamEngineConfig(*c, paths, UserIds{}));
            QFile f(paths.rspamdConfDir + QStringLiteral("/override.d/options.inc"));
            QVERIFY(f.open(QIODevice::ReadOnly));
            const QByteArray options = f.readAll();
            if (expect.isEmpty())
                QVERIFY2(!options.contains("nameserver"), options.constData());
            else
                QVERIFY2(options.contains(expect), options.constData());
            // The memory trim (tests/bench/README.md): neural and history_redis off.
            for (const char* module : {"neural.conf", "history_redis.conf"}) {
                QFile m(paths.rspamdConfDir + QStringLiteral("/local.d/") + QLatin1String(module));
                QVERIFY(m.open(QIODevice::ReadOnly));
                QVERIFY(m.readAll().contains("\nenabled = false;\n"));
            }
        }
    }

    void bayesStatistics_data() {
        QTest::addColumn<QByteArray>("conf");
        QTest::addColumn<bool>("accepted");
        QTest::addColumn<QByteArray>("minLearns");
        QTest::newRow("default") << QByteArray() << true << QByteArray("min_learns = 200;");
        QTest::newRow("lower bound") << QByteArray("spam.bayes_min_learns = 1\n") << true
                                     << QByteArray("min_learns = 1;");
        QTest::newRow("below") << QByteArray("spam.bayes_min_learns = 0\n") << false << QByteArray();
        QTest::newRow("upper bound") << QByteArray("spam.bayes_min_learns = 1000000\n") << true
                                     << QByteArray("min_learns = 1000000;");
        QTest::newRow("above") << QByteArray("spam.bayes_min_learns = 1000001\n") << false << QByteArray();
    }
    void bayesStatistics() {
        QFETCH(QByteArray, conf);
        QFETCH(bool, accepted);
        QFETCH(QByteArray, minLearns);
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        auto c = Config::parse("data_dir = " + dir.path().toUtf8() + "/data\n" + conf, QStringLiteral("postern.conf"),
                               dir.path());
        QCOMPARE(bool(c), accepted);
        if (!accepted) return;
        const SpamPaths paths = spamPaths(*c, dir.path());
        const QString stale = paths.rspamdConfDir + QStringLiteral("/local.d/classifier-bayes.conf");
        QVERIFY(QDir().mkpath(paths.rspamdConfDir + QStringLiteral("/local.d")));
        QFile old(stale);
        QVERIFY(old.open(QIODevice::WriteOnly));
        old.write("users_enabled = true;\n");
        old.close();
        QVERIFY(writeSpamEngineConfig(*c, paths, UserIds{}));
        QVERIFY(!QFile::exists(stale));
        QFile f(paths.rspamdConfDir + QStringLiteral("/override.d/statistic.conf"));
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray st = f.readAll();
        QCOMPARE(st, "# Generated by the Postern supervisor from postern.conf; edits are overwritten.\n" +
                         statisticConf(*c));
        // Two classifiers, both with the limit; only the second per user, and only the shared
        // one with Rspamd's learn condition.
        QCOMPARE(st.count("classifier \"bayes\" {"), 2);
        QCOMPARE(st.count(minLearns), 2);
        const qsizetype second = st.indexOf("name = \"bayes_user\";");
        QVERIFY(st.indexOf("name = \"bayes\";") < second);
        QVERIFY(st.indexOf("symbol = \"BAYES_SPAM\"; spam = true;") < second);
        QVERIFY(st.indexOf("symbol = \"BAYES_SPAM_USER\"; spam = true;") > second);
        QVERIFY(st.indexOf("per_user = ") > second);
        QCOMPARE(st.count("per_user = "), 1);
        QVERIFY(st.indexOf("learn_condition") < second);
        QCOMPARE(st.count("learn_condition"), 1);
        QFile composites(paths.rspamdConfDir + QStringLiteral("/local.d/composites.conf"));
        QVERIFY(composites.open(QIODevice::ReadOnly));
        QVERIFY(composites.readAll().contains("(-BAYES_SPAM_USER | -BAYES_HAM_USER) & (~BAYES_SPAM | ~BAYES_HAM)"));
    }
};

QTEST_GUILESS_MAIN(TstResolverEngine)
#include "tst_resolver_engine.moc"
