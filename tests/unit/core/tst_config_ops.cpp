// tst_config_ops.cpp — core/config_ops.h setSetting (the one "config set", used by
// posternctl and webd's helper) and the run-time-safe list: every listed key exists
// and needs no restart; RunTimeOnly refuses other and unknown keys; a bad value is
// refused with the schema's message and leaves the file alone; a good one is written
// in canonical form (range boundary: max passes, max+1 refused).
#include "core/config.h"
#include "core/config_ops.h"
#include "core/config_schema.h"

#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

using namespace postern;

class TstConfigOps : public QObject {
    Q_OBJECT

    static QByteArray file(const QTemporaryDir& dir) {
        QFile f(dir.filePath(QStringLiteral("postern.conf")));
        return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
    }

private Q_SLOTS:
    void runtimeSafeList() {
        int n = 0;
        for (const Setting& s : Schema::instance().all()) {
            if (!s.runtimeSafe) continue;
            ++n;
            QVERIFY2(!s.restart, qPrintable(s.key));
            QVERIFY2(s.type != SettingType::Path, qPrintable(s.key));
            QVERIFY2(!s.key.endsWith(QStringLiteral(".listen")), qPrintable(s.key));
            QVERIFY2(!s.key.startsWith(QStringLiteral("tls.")) && !s.key.startsWith(QStringLiteral("auth.")) &&
                         !s.key.startsWith(QStringLiteral("relay.")),
                     qPrintable(s.key));
        }
        QVERIFY(n >= 20);
        QVERIFY(Schema::instance().find(QStringLiteral("smtp.max_recipients"))->runtimeSafe);
        QVERIFY(!Schema::instance().find(QStringLiteral("relay.host"))->runtimeSafe);
    }

    void set_data() {
        QTest::addColumn<QString>("key");
        QTest::addColumn<QString>("value");
        QTest::addColumn<bool>("runtimeOnly");
        QTest::addColumn<QString>("error");    // empty: accepted
        QTest::addColumn<QString>("written");  // canonical value in the file
        QTest::newRow("at the maximum") << "smtp.max_recipients"
                                        << "100000" << true << ""
                                        << "100000";
        QTest::newRow("maximum + 1") << "smtp.max_recipients"
                                     << "100001" << true
                                     << "smtp.max_recipients: 100001 is outside the allowed range 1..100000"
                                     << "";
        QTest::newRow("not a number") << "smtp.max_recipients"
                                      << "many" << true << "smtp.max_recipients:"
                                      << "";
        QTest::newRow("canonical size") << "smtp.max_message_size"
                                        << "50m" << true << ""
                                        << "50M";
        QTest::newRow("enum") << "log.level"
                              << "warning" << true << ""
                              << "warning";
        QTest::newRow("enum, bad") << "log.level"
                                   << "loud" << true << "log.level:"
                                   << "";
        QTest::newRow("not run-time safe") << "relay.host"
                                           << "evil.example" << true << "relay.host cannot be changed here"
                                           << "";
        QTest::newRow("unknown, run-time") << "no.such"
                                           << "1" << true << "no.such cannot be changed here"
                                           << "";
        QTest::newRow("unknown, posternctl") << "no.such"
                                             << "1" << false << "unknown setting 'no.such'"
                                             << "";
        QTest::newRow("posternctl may set any") << "relay.host"
                                                << "smarthost.example" << false << ""
                                                << "smarthost.example";
        QTest::newRow("no second line through a value") << "recipient_delimiter"
                                                        << "+\nrelay.host = evil" << true << "must be a single line"
                                                        << "";
    }
    void set() {
        QFETCH(QString, key);
        QFETCH(QString, value);
        QFETCH(bool, runtimeOnly);
        QFETCH(QString, error);
        QFETCH(QString, written);
        QTemporaryDir dir;
        const QByteArray before = "hostname = mail.example.test\n";
        QFile f(dir.filePath(QStringLiteral("postern.conf")));
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(before);
        f.close();
        auto r = configops::setSetting(dir.path(), key, value,
                                       runtimeOnly ? configops::Scope::RunTimeOnly : configops::Scope::Any);
        if (!error.isEmpty()) {
            QVERIFY(!r.ok());
            QVERIFY2(r.errorMessage().contains(error), qPrintable(r.errorMessage()));
            QCOMPARE(file(dir), before);
            return;
        }
        QVERIFY2(r.ok(), qPrintable(r.errorMessage()));
        QCOMPARE(r->value, written);
        QVERIFY(file(dir).contains((key + QStringLiteral(" = ") + written + QLatin1Char('\n')).toUtf8()));
        QVERIFY(file(dir).startsWith(before));
        QVERIFY(!r->reloaded);  // no supervisor runs here
        QVERIFY(r->summary().startsWith(key + QStringLiteral(" = ") + written));
        auto loaded = Config::load(dir.path());
        QVERIFY(loaded.ok());
        QCOMPARE(loaded->value(key), written);
    }
};

QTEST_GUILESS_MAIN(TstConfigOps)
#include "tst_config_ops.moc"
