// tst_update_announcement.cpp — the version comparison and the announcement document parser of
// core/update_announcement.h: boundaries of every limit, hostile documents, every prefix of a
// valid document (a cut transfer must fail cleanly or parse to the same thing).
#include "core/update_announcement.h"

#include <QTest>

using namespace postern;

class TstUpdateAnnouncement : public QObject {
    Q_OBJECT
private slots:
    void parseVersion_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("parts");  // "" = refused
        QTest::newRow("one") << "1"
                             << "1";
        QTest::newRow("three") << "0.1.0"
                               << "0.1.0";
        QTest::newRow("v prefix") << "v2.3"
                                  << "2.3";
        QTest::newRow("four parts (limit)") << "1.2.3.4"
                                            << "1.2.3.4";
        QTest::newRow("five parts (limit+1)") << "1.2.3.4.5"
                                              << "";
        QTest::newRow("six digits (limit)") << "999999.0"
                                            << "999999.0";
        QTest::newRow("seven digits (limit+1)") << "1000000.0"
                                                << "";
        QTest::newRow("huge") << "99999999999999999999"
                              << "";
        QTest::newRow("leading zeros") << "01.002"
                                       << "1.2";
        QTest::newRow("empty") << ""
                               << "";
        QTest::newRow("v only") << "v"
                                << "";
        QTest::newRow("VV") << "vv1"
                            << "";
        QTest::newRow("trailing dot") << "1.2."
                                      << "";
        QTest::newRow("leading dot") << ".1"
                                     << "";
        QTest::newRow("double dot") << "1..2"
                                    << "";
        QTest::newRow("sign") << "-1"
                              << "";
        QTest::newRow("plus") << "+1"
                              << "";
        QTest::newRow("pre-release") << "1.2.0-rc1"
                                     << "";
        QTest::newRow("blank inside") << "1. 2"
                                      << "";
        QTest::newRow("trailing blank") << "1.2 "
                                        << "";
        QTest::newRow("arabic-indic digit") << QString::fromUtf8("1.\u0662") << "";
        QTest::newRow("fullwidth digit") << QString::fromUtf8("\uFF11") << "";
        QTest::newRow("nul") << QString(QLatin1String("1\0", 2)) << "";
    }
    void parseVersion() {
        QFETCH(QString, text);
        QFETCH(QString, parts);
        const auto v = postern::parseVersion(text);
        if (parts.isEmpty()) {
            QVERIFY2(!v, qPrintable(text));
        } else {
            QVERIFY2(v.has_value(), qPrintable(text));
            QStringList got;
            for (quint32 p : *v) got << QString::number(p);
            QCOMPARE(got.join(QLatin1Char('.')), parts);
        }
    }

    void compare_data() {
        QTest::addColumn<QString>("a");
        QTest::addColumn<QString>("b");
        QTest::addColumn<int>("expected");  // -1, 0, 1; 2 = not comparable
        QTest::newRow("equal") << "0.1.0"
                               << "0.1.0" << 0;
        QTest::newRow("missing parts are 0") << "1.2"
                                             << "1.2.0.0" << 0;
        QTest::newRow("patch newer") << "0.1.1"
                                     << "0.1.0" << 1;
        QTest::newRow("minor older") << "0.1.9"
                                     << "0.2.0" << -1;
        QTest::newRow("numeric, not text") << "0.10.0"
                                           << "0.9.0" << 1;
        QTest::newRow("longer is newer") << "1.2.0.1"
                                         << "1.2" << 1;
        QTest::newRow("v prefix") << "v1.0"
                                  << "1.0" << 0;
        QTest::newRow("max parts") << "999999.999999.999999.999999"
                                   << "999999.999999.999999.999998" << 1;
        QTest::newRow("invalid left") << "1.x"
                                      << "1.0" << 2;
        QTest::newRow("invalid right") << "1.0"
                                       << "" << 2;
    }
    void compare() {
        QFETCH(QString, a);
        QFETCH(QString, b);
        QFETCH(int, expected);
        const auto c = compareVersions(a, b);
        if (expected == 2) {
            QVERIFY(!c);
        } else {
            QVERIFY(c.has_value());
            QCOMPARE(*c < 0 ? -1 : *c > 0 ? 1 : 0, expected);
            const auto r = compareVersions(b, a);  // antisymmetric
            QCOMPARE(*r < 0 ? -1 : *r > 0 ? 1 : 0, -expected);
        }
    }

    void parse_data() {
        QTest::addColumn<QByteArray>("doc");
        QTest::addColumn<QString>("version");  // "" = refused
        QTest::addColumn<QString>("url");
        QTest::addColumn<QString>("notes");
        QTest::addColumn<QString>("error");  // part of the error when refused
        QTest::newRow("json full")
            << QByteArray("{\"version\":\"0.2.0\",\"url\":\"https://example.org/p\",\"notes\":\"fixes\"}") << "0.2.0"
            << "https://example.org/p"
            << "fixes"
            << "";
        QTest::newRow("json version only") << QByteArray(" {\"version\": \"v1.0\"}\n") << "1.0"
                                           << ""
                                           << ""
                                           << "";
        QTest::newRow("json unknown members ignored")
            << QByteArray("{\"version\":\"1\",\"sha256\":\"ab\",\"x\":[1,2]}") << "1"
            << ""
            << ""
            << "";
        QTest::newRow("json null url") << QByteArray("{\"version\":\"1\",\"url\":null}") << "1"
                                       << ""
                                       << ""
                                       << "";
        QTest::newRow("text") << QByteArray("0.3.1\n") << "0.3.1"
                              << ""
                              << ""
                              << "";
        QTest::newRow("text with url") << QByteArray("0.3.1\thttp://mirror.example/postern\nmore lines\n") << "0.3.1"
                                       << "http://mirror.example/postern"
                                       << ""
                                       << "";
        QTest::newRow("crlf") << QByteArray("0.3.1 https://e.example/\r\n") << "0.3.1"
                              << "https://e.example/"
                              << ""
                              << "";
        QTest::newRow("json no version") << QByteArray("{\"url\":\"https://e.example/\"}") << ""
                                         << ""
                                         << ""
                                         << "no \"version\"";
        QTest::newRow("json version number") << QByteArray("{\"version\":2}") << ""
                                             << ""
                                             << ""
                                             << "no \"version\"";
        QTest::newRow("json array") << QByteArray("[\"1.0\"]") << ""
                                    << ""
                                    << ""
                                    << "not a version";
        QTest::newRow("json broken") << QByteArray("{\"version\":\"1.0\"") << ""
                                     << ""
                                     << ""
                                     << "not a JSON object";
        QTest::newRow("json url not string") << QByteArray("{\"version\":\"1\",\"url\":5}") << ""
                                             << ""
                                             << ""
                                             << "\"url\" is not";
        QTest::newRow("json notes not string") << QByteArray("{\"version\":\"1\",\"notes\":{}}") << ""
                                               << ""
                                               << ""
                                               << "\"notes\" is not";
        QTest::newRow("bad version") << QByteArray("{\"version\":\"1.0; rm -rf /\"}") << ""
                                     << ""
                                     << ""
                                     << "not a version";
        QTest::newRow("html error page") << QByteArray("<html><body>404</body></html>") << ""
                                         << ""
                                         << ""
                                         << "not a version";
        QTest::newRow("empty") << QByteArray("") << ""
                               << ""
                               << ""
                               << "not \"VERSION";
        QTest::newRow("three words") << QByteArray("1.0 https://a.example/ extra") << ""
                                     << ""
                                     << ""
                                     << "not \"VERSION";
        QTest::newRow("javascript url") << QByteArray("{\"version\":\"1\",\"url\":\"javascript:alert(1)\"}") << ""
                                        << ""
                                        << ""
                                        << "not an http(s) URL";
        QTest::newRow("file url") << QByteArray("1.0 file:///etc/shadow") << ""
                                  << ""
                                  << ""
                                  << "not an http(s) URL";
        QTest::newRow("url with escape") << QByteArray("{\"version\":\"1\",\"url\":\"https://e.example/\\u001b[2J\"}")
                                         << ""
                                         << ""
                                         << ""
                                         << "control characters";
        QTest::newRow("notes with escape")
            << QByteArray("{\"version\":\"1\",\"notes\":\"ok\\u001b]0;owned\\u0007\"}") << ""
            << ""
            << ""
            << "control characters";
        QTest::newRow("notes with newline") << QByteArray("{\"version\":\"1\",\"notes\":\"a\\nb\"}") << ""
                                            << ""
                                            << ""
                                            << "control characters";
        QTest::newRow("notes with bidi override") << QByteArray("{\"version\":\"1\",\"notes\":\"a\\u202eb\"}") << ""
                                                  << ""
                                                  << ""
                                                  << "control characters";
        const QByteArray head = "{\"version\":\"1\",\"notes\":\"";
        const QByteArray tail = "\"}";
        QTest::newRow("notes at limit") << head + QByteArray(kMaxNotesChars, 'n') + tail << "1"
                                        << "" << QString(kMaxNotesChars, u'n') << "";
        QTest::newRow("notes over limit") << head + QByteArray(kMaxNotesChars + 1, 'n') + tail << ""
                                          << ""
                                          << ""
                                          << "notes are longer";
        const QByteArray urlHead = "1 https://e.example/";
        const QByteArray urlAtLimit = urlHead + QByteArray(kMaxUrlChars - (urlHead.size() - 2), 'u');
        QTest::newRow("url at limit") << urlAtLimit << "1" << QString::fromLatin1(urlAtLimit.mid(2)) << ""
                                      << "";
        QTest::newRow("url over limit") << urlAtLimit + "u"
                                        << ""
                                        << ""
                                        << ""
                                        << "longer than";
        const QByteArray padded = "9.9.9" + QByteArray(kMaxAnnouncementBytes - 5, '\n');
        QTest::newRow("document at limit") << padded << "9.9.9"
                                           << ""
                                           << ""
                                           << "";
        QTest::newRow("document over limit") << padded + "\n"
                                             << ""
                                             << ""
                                             << ""
                                             << "larger than 4096 bytes";
        QTest::newRow("invalid utf-8") << QByteArray("1.0 https://e.example/\xff\xfe") << ""
                                       << ""
                                       << ""
                                       << "not plain ASCII";
        QTest::newRow("non-ascii url") << QByteArray("1.0 https://\xd0\xb5xample.org/") << ""
                                       << ""
                                       << ""
                                       << "not plain ASCII";
    }
    void parse() {
        QFETCH(QByteArray, doc);
        QFETCH(QString, version);
        QFETCH(QString, url);
        QFETCH(QString, notes);
        QFETCH(QString, error);
        auto a = parseAnnouncement(doc);
        if (version.isEmpty()) {
            QVERIFY2(!a, qPrintable(a ? a->version : QString()));
            QVERIFY2(a.errorMessage().contains(error), qPrintable(a.errorMessage()));
            return;
        }
        QVERIFY2(a.ok(), qPrintable(a.errorMessage()));
        QCOMPARE(a->version, version);
        QCOMPARE(a->url, url);
        QCOMPARE(a->notes, notes);
    }

    // A transfer cut anywhere: every prefix is refused or gives exactly the full document's result
    // (the text form parses the prefix's first line, so a cut version must still be a valid one).
    void everyPrefix() {
        for (const QByteArray& doc :
             {QByteArray("{\"version\":\"12.3.4\",\"url\":\"https://example.org/x\",\"notes\":\"n\"}"),
              QByteArray("12.3.4 https://example.org/x\n")}) {
            for (qsizetype n = 0; n <= doc.size(); ++n) {
                auto a = parseAnnouncement(doc.left(n));
                if (!a) continue;
                QVERIFY(postern::parseVersion(a->version).has_value());
                QVERIFY(a->url.isEmpty() || a->url.startsWith(QLatin1String("http")));
            }
            QVERIFY(parseAnnouncement(doc).ok());
        }
    }

    void line() {
        UpdateCheck c;
        c.checked = QDateTime(QDate(2026, 12, 3), QTime(10, 0), Qt::UTC);
        c.ok = true;
        c.announcement = {QStringLiteral("0.2.0"), QStringLiteral("https://e.example/0.2.0"),
                          QStringLiteral("security fixes")};
        bool newer = false;
        QCOMPARE(
            announcementLine(c, QStringLiteral("0.1.0"), &newer),
            QStringLiteral("newer image 0.2.0 available (running 0.1.0): https://e.example/0.2.0 (security fixes)"));
        QVERIFY(newer);
        QCOMPARE(announcementLine(c, QStringLiteral("0.2.0"), &newer),
                 QStringLiteral("up to date (running 0.2.0, announced 0.2.0, checked 2026-12-03T10:00:00Z)"));
        QVERIFY(!newer);
        QVERIFY(announcementLine(c, QStringLiteral("0.3.0"), &newer).startsWith(QLatin1String("up to date")));
        QVERIFY(!newer);
        c.ok = false;
        c.error = QStringLiteral("http://127.0.0.1:1/: Connection refused");
        QCOMPARE(announcementLine(c, QStringLiteral("0.1.0"), &newer),
                 QStringLiteral("cannot check for a newer image: http://127.0.0.1:1/: Connection refused (checked "
                                "2026-12-03T10:00:00Z)"));
        QVERIFY(!newer);
    }
};

QTEST_GUILESS_MAIN(TstUpdateAnnouncement)
#include "tst_update_announcement.moc"
