// tst_config.cpp — the configuration model: every parse error path (one file
// per case in broken-configs/, first line "# expect: <message>"), typed
// accessors, defaults, path resolution, comment-preserving edits, rendering.
#include "core/config.h"

#include <QDir>
#include <QTemporaryDir>
#include <QtTest>

using namespace postern;

class TstConfig : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void brokenConfigs_data() {
        QTest::addColumn<QString>("file");
        QDir dir(QStringLiteral(POSTERN_TEST_DIR "/broken-configs"));
        const auto files = dir.entryList({QStringLiteral("*.conf")}, QDir::Files, QDir::Name);
        QVERIFY(files.size() >= 20);
        for (const QString& f : files) QTest::newRow(qPrintable(f)) << dir.absoluteFilePath(f);
    }
    void brokenConfigs() {
        QFETCH(QString, file);
        QFile f(file);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray bytes = f.readAll();
        const QByteArray first = bytes.left(bytes.indexOf('\n'));
        QVERIFY2(first.startsWith("# expect: "), "first line must be '# expect: <message>'");
        const QString expected = QString::fromUtf8(first.mid(10));
        auto c = Config::parse(bytes, QStringLiteral("postern.conf"), QStringLiteral("/etc/postern"));
        QVERIFY2(!c.ok(), "a broken config was accepted");
        QCOMPARE(c.errorMessage(), expected);
    }

    void defaultsWhenMissing() {
        QTemporaryDir tmp;
        auto c = Config::load(tmp.path());
        QVERIFY(c.ok());
        QCOMPARE(c->value(QStringLiteral("smtp.max_recipients")), QStringLiteral("100"));
        QCOMPARE(c->integer(QStringLiteral("smtp.max_recipients")), 100);
        QCOMPARE(c->size(QStringLiteral("smtp.max_message_size")), qint64(25) << 20);
        QCOMPARE(c->durationMs(QStringLiteral("smtp.command_timeout")), 300000);
        QCOMPARE(c->flag(QStringLiteral("smtp.vrfy")), false);
        QCOMPARE(c->dataDir(), QStringLiteral("/var/lib/postern"));
        QCOMPARE(c->logDir(), QStringLiteral("/var/lib/postern/log"));
        QCOMPARE(c->runDir(), QStringLiteral("/var/lib/postern/run"));
        const auto l = c->listeners(QStringLiteral("smtp.listen"));
        QCOMPARE(l.size(), 1);
        QCOMPARE(l.first().port, 25);
        QCOMPARE(l.first().address, QHostAddress(QHostAddress::Any));
    }

    void typedValues_data() {
        QTest::addColumn<QString>("key");
        QTest::addColumn<QString>("value");
        QTest::addColumn<QString>("canonical");
        QTest::newRow("size-lower") << "smtp.max_message_size"
                                    << "10m"
                                    << "10M";
        QTest::newRow("size-bytes") << "smtp.max_message_size"
                                    << "2048"
                                    << "2048";
        QTest::newRow("bool-yes") << "smtp.vrfy"
                                  << "yes"
                                  << "true";
        QTest::newRow("bool-off") << "smtp.vrfy"
                                  << "off"
                                  << "false";
        QTest::newRow("duration") << "smtp.command_timeout"
                                  << "90S"
                                  << "90s";
        QTest::newRow("listen-v6") << "smtp.listen"
                                   << "[::1]:2525,127.0.0.1:2525"
                                   << "[::1]:2525, 127.0.0.1:2525";
        QTest::newRow("listen-empty") << "pop3.listen"
                                      << ""
                                      << "";
        QTest::newRow("listen-port0") << "imap.listen"
                                      << "127.0.0.1:0"
                                      << "127.0.0.1:0";
        QTest::newRow("hostname-idn") << "hostname"
                                      << "Mail.Bücher.example"
                                      << "mail.xn--bcher-kva.example";
        QTest::newRow("email") << "admin_address"
                               << "Admin@Example.ORG"
                               << "admin@example.org";
        QTest::newRow("enum-case") << "log.level"
                                   << "DEBUG"
                                   << "debug";
        QTest::newRow("list") << "dns.servers"
                              << " 127.0.0.1:5353 ,, ::1 "
                              << "127.0.0.1:5353, ::1";
    }
    void typedValues() {
        QFETCH(QString, key);
        QFETCH(QString, value);
        QFETCH(QString, canonical);
        auto c = Config::parse((key + QStringLiteral(" = ") + value + QLatin1Char('\n')).toUtf8(),
                               QStringLiteral("t.conf"), QStringLiteral("/cfg"));
        QVERIFY2(c.ok(), qPrintable(c.errorMessage()));
        QCOMPARE(c->value(key), canonical);
        QVERIFY(c->isSet(key));
    }

    void boundaries() {
        // Inclusive ranges: min and max accepted, one past refused.
        auto ok = [](const char* text) { return Config::parse(text, QStringLiteral("t"), QStringLiteral("/c")).ok(); };
        QVERIFY(ok("smtp.max_recipients = 1\n"));
        QVERIFY(ok("smtp.max_recipients = 100000\n"));
        QVERIFY(!ok("smtp.max_recipients = 100001\n"));
        QVERIFY(ok("smtp.max_message_size = 1024\n"));
        QVERIFY(!ok("smtp.max_message_size = 1023\n"));
        QVERIFY(ok("smtp.max_message_size = 2G\n"));
        QVERIFY(!ok("smtp.max_message_size = 2049M\n"));
        QVERIFY(ok("imap.idle_timeout = 30m\n"));
        QVERIFY(!ok("imap.idle_timeout = 1799s\n"));
        QVERIFY(ok("smtp.listen = 127.0.0.1:65535\n"));
        QVERIFY(!ok("smtp.listen = 127.0.0.1:65536\n"));
        QVERIFY(!ok("smtp.max_message_size = 99999999999999999T\n"));
    }

    void relativePaths() {
        auto c = Config::parse("data_dir = data\ntls.cert = /abs/cert.pem\nlog_dir = ../logs\n", QStringLiteral("t"),
                               QStringLiteral("/srv/postern"));
        QVERIFY(c.ok());
        QCOMPARE(c->dataDir(), QStringLiteral("/srv/postern/data"));
        QCOMPARE(c->mailDir(), QStringLiteral("/srv/postern/data/mail"));
        QCOMPARE(c->queueDir(), QStringLiteral("/srv/postern/data/queue"));
        QCOMPARE(c->path(QStringLiteral("tls.cert")), QStringLiteral("/abs/cert.pem"));
        QCOMPARE(c->path(QStringLiteral("tls.key")), QStringLiteral("/srv/postern/tls/key.pem"));
        QCOMPARE(c->logDir(), QStringLiteral("/srv/logs"));
    }

    void editsKeepComments() {
        QTemporaryDir tmp;
        const QByteArray original =
            "# my mail server\nhostname = mail.example.org\n\n# limits\nsmtp.max_recipients = 50\n";
        QFile f(tmp.filePath(QStringLiteral("postern.conf")));
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(original);
        f.close();
        auto c = Config::load(tmp.path());
        QVERIFY(c.ok());
        QCOMPARE(c->serialize(), original);  // round trip is exact
        QVERIFY(c->set(QStringLiteral("smtp.max_recipients"), QStringLiteral("200")).ok());
        QVERIFY(c->set(QStringLiteral("smtp.vrfy"), QStringLiteral("yes")).ok());
        QVERIFY(c->unset(QStringLiteral("hostname")).ok());
        QVERIFY(!c->set(QStringLiteral("smtp.max_recipients"), QStringLiteral("-1")).ok());
        QVERIFY(!c->set(QStringLiteral("nonsense"), QStringLiteral("1")).ok());
        QVERIFY(c->save().ok());
        auto again = Config::load(tmp.path());
        QVERIFY(again.ok());
        QCOMPARE(again->serialize(),
                 QByteArray("# my mail server\n\n# limits\nsmtp.max_recipients = 200\nsmtp.vrfy = true\n"));
        QCOMPARE(again->integer(QStringLiteral("smtp.max_recipients")), 200);
    }

    void renderChangedOnly() {
        auto c =
            Config::parse("smtp.max_recipients = 100\nsmtp.vrfy = true\n", QStringLiteral("t"), QStringLiteral("/c"));
        QVERIFY(c.ok());
        // Setting a key to its default is not a change.
        QCOMPARE(c->render(true), QStringLiteral("smtp.vrfy = true\n"));
        const QString all = c->render(false);
        QVERIFY(all.contains(QStringLiteral("smtp.max_recipients = 100\n")));
        QVERIFY(all.contains(QStringLiteral("imap.listen = *:143\n")));
        QCOMPARE(all.count(QLatin1Char('\n')), Schema::instance().all().size());
    }

    void schemaIsConsistent() {
        // Every default validates to itself, every key is unique and documented.
        QSet<QString> keys;
        for (const Setting& s : Schema::instance().all()) {
            QVERIFY2(!keys.contains(s.key), qPrintable(s.key));
            keys.insert(s.key);
            QVERIFY2(!s.doc.isEmpty(), qPrintable(s.key));
            auto v = Schema::validate(s, s.defaultValue);
            QVERIFY2(v.ok(), qPrintable(s.key + QStringLiteral(": ") + v.errorMessage()));
            QCOMPARE(*v, s.defaultValue);
        }
    }

    void configDirResolution() {
        qputenv("POSTERN_CONFIG", "/from/env");
        QCOMPARE(resolveConfigDir({QStringLiteral("prog"), QStringLiteral("--config"), QStringLiteral("/a")}),
                 QStringLiteral("/a"));
        QCOMPARE(resolveConfigDir({QStringLiteral("prog"), QStringLiteral("--config=/b")}), QStringLiteral("/b"));
        QCOMPARE(resolveConfigDir({QStringLiteral("prog")}), QStringLiteral("/from/env"));
        qunsetenv("POSTERN_CONFIG");
        QCOMPARE(resolveConfigDir({QStringLiteral("prog")}), QStringLiteral("/etc/postern"));
    }

    void reference() {
        const QString ref = Config::reference();
        QVERIFY(ref.contains(QStringLiteral("| `smtp.max_message_size` | size 1024..2147483648 | `25M` |")));
    }
};

QTEST_GUILESS_MAIN(TstConfig)
#include "tst_config.moc"
