// tst_log.cpp — the log line format, quoting (no log injection) and rotation.
#include "core/log.h"

#include <QFile>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QtTest>

using namespace postern;

class TstLog : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void quoting_data() {
        QTest::addColumn<QString>("in");
        QTest::addColumn<QString>("out");
        QTest::newRow("plain") << "abc"
                               << "abc";
        QTest::newRow("empty") << ""
                               << "\"\"";
        QTest::newRow("space") << "a b"
                               << "\"a b\"";
        QTest::newRow("newline") << "a\r\nfake=1"
                                 << "\"a\\r\\nfake=1\"";
        QTest::newRow("quote") << "say \"hi\""
                               << "\"say \\\"hi\\\"\"";
        QTest::newRow("equals") << "a=b"
                                << "\"a=b\"";
        QTest::newRow("ctl") << QStringLiteral("a\x1b[31m") << "\"a\\x1b[31m\"";
        QTest::newRow("utf8") << "jörg"
                              << "jörg";
    }
    void quoting() {
        QFETCH(QString, in);
        QFETCH(QString, out);
        QCOMPARE(log::quoteValue(in), out);
    }

    void lineFormatAndRotation() {
        static qint64 nowMs = 1'800'000'000'000;
        log::setClock([] { return QDateTime::fromMSecsSinceEpoch(nowMs, Qt::UTC); });
        QTemporaryDir tmp;
        const QString file = tmp.filePath(QStringLiteral("mail.log"));
        log::init({QStringLiteral("postern-test"), file, log::Level::Info, false});
        log::write(log::Level::Info, u"abcd1234", u"smtp.connect",
                   log::Fields().add("remote", "192.0.2.1").add("tls", false));
        log::debug(u"hidden");
        log::warn(u"smtp.disconnect", log::Fields().add("reason", "client said\nQUIT"));
        QFile f(file);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QList<QByteArray> lines = f.readAll().split('\n');
        QCOMPARE(lines.size(), 3);  // two lines and the final empty piece
        static const QRegularExpression re(
            QStringLiteral("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z postern-test\\[\\d+\\]: info "
                           "session=abcd1234 smtp\\.connect remote=192\\.0\\.2\\.1 tls=no$"));
        QVERIFY2(re.match(QString::fromUtf8(lines.at(0))).hasMatch(), lines.at(0).constData());
        QVERIFY(lines.at(1).endsWith("warning smtp.disconnect reason=\"client said\\nQUIT\""));
        f.close();
        // Rotation: the file is moved away; the next line (after the 1 s check) lands in a new file.
        QVERIFY(QFile::rename(file, file + QStringLiteral(".1")));
        nowMs += 1000;  // not yet looked at again: still the moved file
        log::info(u"before.check");
        QVERIFY(!QFile::exists(file));
        nowMs += 1;
        log::info(u"after.rotate");
        QVERIFY(QFile::exists(file));
        QFile g(file);
        QVERIFY(g.open(QIODevice::ReadOnly));
        QVERIFY(g.readAll().contains("after.rotate"));
        log::setClock(nullptr);
    }

    void sessionIds() {
        const QString a = log::newSessionId();
        QCOMPARE(a.size(), 8);
        QVERIFY(a != log::newSessionId());
    }
};

QTEST_GUILESS_MAIN(TstLog)
#include "tst_log.moc"
