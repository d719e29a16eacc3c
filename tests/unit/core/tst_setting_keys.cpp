// tst_setting_keys.cpp — the typed keys (core/setting_keys.h) agree with the schema
// (core/config_schema.h, settings/*.cpp) in both directions: every key names a declared
// setting whose type its kind reads, and every declared setting has exactly one key. So a
// setting added on one side only, a renamed key or a changed type fails here; a typo at a
// call site does not compile. Then get() returns what Config's accessors return.
#include "core/config.h"
#include "core/config_schema.h"
#include "core/setting_keys.h"

#include <QSet>
#include <QtTest>

using namespace postern;

class TstSettingKeys : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void everyKeyIsASettingOfItsKind() {
        for (const SettingKeyInfo& k : kAllSettingKeys) {
            const QString name = QString::fromLatin1(k.name);
            const Setting* s = Schema::instance().find(name);
            QVERIFY2(s, qPrintable(name + QStringLiteral(": no such setting in the schema")));
            QVERIFY2(keyKindOf(s->type) == k.kind,
                     qPrintable(name + QStringLiteral(": the key's kind does not read a ") + toString(s->type)));
        }
    }

    void everySettingHasOneKey() {
        QSet<QString> names;
        for (const SettingKeyInfo& k : kAllSettingKeys) {
            const QString name = QString::fromLatin1(k.name);
            QVERIFY2(!names.contains(name), qPrintable(name + QStringLiteral(": two keys")));
            names.insert(name);
        }
        for (const Setting& s : Schema::instance().all())
            QVERIFY2(names.contains(s.key), qPrintable(s.key + QStringLiteral(": no key in setting_keys.h")));
        QCOMPARE(qsizetype(kAllSettingKeys.size()), Schema::instance().all().size());
    }

    void kinds() {
        // One row per kind, including the string kinds that several setting types share.
        QCOMPARE(keys::smtp::maxRecipients.kind, KeyKind::Int);
        QCOMPARE(keys::smtp::vrfy.kind, KeyKind::Flag);
        QCOMPARE(keys::smtp::commandTimeout.kind, KeyKind::Duration);
        QCOMPARE(keys::smtp::maxMessageSize.kind, KeyKind::Size);
        QCOMPARE(keys::tls::cert.kind, KeyKind::Path);
        QCOMPARE(keys::smtp::listen.kind, KeyKind::Listen);
        QCOMPARE(keys::dns::servers.kind, KeyKind::List);
        QCOMPARE(keys::smtp::bareLf.kind, KeyKind::String);           // Enum
        QCOMPARE(keys::general::hostname.kind, KeyKind::String);      // HostName
        QCOMPARE(keys::general::adminAddress.kind, KeyKind::String);  // Email
        QCOMPARE(keys::log::toStderr.str(), QStringLiteral("log.stderr"));
        QCOMPARE(keys::general::dataDir.str(), QStringLiteral("data_dir"));
    }

    // get() is Config's accessor for the key's kind: set values and defaults alike.
    void getReadsTheConfig() {
        const QByteArray text =
            "smtp.max_recipients = 7\n"
            "smtp.vrfy = yes\n"
            "smtp.command_timeout = 90s\n"
            "smtp.max_message_size = 10M\n"
            "tls.cert = certs/fullchain.pem\n"
            "smtp.listen = 127.0.0.1:2525, [::1]:2526\n"
            "dns.servers = 192.0.2.1, 192.0.2.2:5353\n"
            "smtp.bare_lf = normalize\n";
        auto parsed = Config::parse(text, QStringLiteral("postern.conf"), QStringLiteral("/etc/postern-test"));
        QVERIFY2(parsed.ok(), qPrintable(parsed.errorMessage()));
        const Config& c = parsed.value();
        QCOMPARE(get(c, keys::smtp::maxRecipients), qint64(7));
        QCOMPARE(get(c, keys::smtp::vrfy), true);
        QCOMPARE(get(c, keys::smtp::commandTimeout), qint64(90'000));
        QCOMPARE(get(c, keys::smtp::maxMessageSize), qint64(10) << 20);
        QCOMPARE(get(c, keys::tls::cert), QStringLiteral("/etc/postern-test/certs/fullchain.pem"));
        const QList<ListenAddress> l = get(c, keys::smtp::listen);
        QCOMPARE(l.size(), 2);
        QCOMPARE(l[0].toString(), QStringLiteral("127.0.0.1:2525"));
        QCOMPARE(l[1].toString(), QStringLiteral("[::1]:2526"));
        QCOMPARE(get(c, keys::dns::servers),
                 (QStringList{QStringLiteral("192.0.2.1"), QStringLiteral("192.0.2.2:5353")}));
        QCOMPARE(get(c, keys::smtp::bareLf), QStringLiteral("normalize"));
        QVERIFY(isSet(c, keys::smtp::bareLf));
        // Not set: the schema's default.
        QVERIFY(!isSet(c, keys::smtp::maxErrors));
        QCOMPARE(get(c, keys::smtp::maxErrors), qint64(20));
        QCOMPARE(get(c, keys::queue::lifetime), qint64(5) * 86'400'000);
        QCOMPARE(get(c, keys::smtp::dataTimeout), c.durationMs(QStringLiteral("smtp.data_timeout")));
        QCOMPARE(get(c, keys::general::dataDir), QStringLiteral("/var/lib/postern"));
        QCOMPARE(get(c, keys::general::logDir), QString());
    }
};

QTEST_GUILESS_MAIN(TstSettingKeys)
#include "tst_setting_keys.moc"
