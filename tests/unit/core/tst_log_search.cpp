// tst_log_search.cpp — core/log_search.h: the term check at its limits (length
// boundary, control characters), the search over mail.log.1 + mail.log (term
// case-insensitive and literal, whole sessions and queue ids pulled in), the result
// cap at its boundary, an overlong line cut without its remainder becoming lines, and
// no log at all.
#include "core/log_search.h"

#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

using namespace postern;

class TstLogSearch : public QObject {
    Q_OBJECT

    static void write(const QString& path, const QByteArray& text) {
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
        f.write(text);
    }

private Q_SLOTS:
    void term_data() {
        QTest::addColumn<QString>("term");
        QTest::addColumn<bool>("ok");
        QTest::newRow("domain") << "gmail.com" << true;
        QTest::newRow("at the limit") << QString(kMaxLogTermLength, QLatin1Char('a')) << true;
        QTest::newRow("over the limit") << QString(kMaxLogTermLength + 1, QLatin1Char('a')) << false;
        QTest::newRow("empty") << "" << false;
        QTest::newRow("blank") << "   " << false;
        QTest::newRow("newline") << "a\nb" << false;
        QTest::newRow("nul") << QStringLiteral("a") + QChar(0) << false;
        QTest::newRow("del") << QStringLiteral("a\x7f") << false;
        QTest::newRow("markup is just text") << "<script>alert(1)</script>" << true;
        QTest::newRow("regex characters are just text") << ".*(" << true;
        QTest::newRow("non-ascii") << QString::fromUtf8("j\xc3\xb6rg") << true;
    }
    void term() {
        QFETCH(QString, term);
        QFETCH(bool, ok);
        QCOMPARE(validateLogTerm(term).ok(), ok);
    }

    void search() {
        QTemporaryDir dir;
        write(dir.filePath(QStringLiteral("mail.log.1")),
              "2026-12-01 smtpd session=AA1 connect from=192.0.2.1\n"
              "2026-12-01 smtpd session=AA1 rcpt to=<bob@Remote.TEST>\n"
              "2026-12-01 other session=BB2 nothing\n");
        write(dir.filePath(QStringLiteral("mail.log")),
              "2026-12-02 smtpd session=AA1 queued id=0123456789ABCDEF\n"
              "2026-12-02 queued id=0123456789ABCDEF delivered\n"
              "2026-12-02 other .* literal\n");
        auto r = searchLog(dir.path(), QStringLiteral("remote.test"), 0);
        QVERIFY2(r.ok(), qPrintable(r.errorMessage()));
        // The matching line (case-insensitive) and its session's other lines, over both files, in log order;
        // another session is left out.
        QCOMPARE(r->lines.size(), 3);
        QVERIFY(r->lines.at(0).contains(QStringLiteral("connect")));
        QVERIFY(r->lines.at(1).contains(QStringLiteral("rcpt")));
        QVERIFY(r->lines.at(2).contains(QStringLiteral("queued id=0123456789ABCDEF")));
        // A queue id as the term: every line of that message, and the whole session that queued it.
        r = searchLog(dir.path(), QStringLiteral("0123456789abcdef"), 0);
        QVERIFY(r.ok());
        QCOMPARE(r->lines.size(), 4);
        QVERIFY(r->lines.at(3).contains(QStringLiteral("delivered")));
        QVERIFY(!r->truncated);
        // A regex-looking term is matched literally.
        r = searchLog(dir.path(), QStringLiteral(".*"), 0);
        QVERIFY(r.ok());
        QCOMPARE(r->lines, QStringList{QStringLiteral("2026-12-02 other .* literal")});
        r = searchLog(dir.path(), QStringLiteral("nowhere.example"), 0);
        QVERIFY(r.ok());
        QVERIFY(r->lines.isEmpty());
    }

    void resultCapAtItsBoundary() {
        QTemporaryDir dir;
        QByteArray log;
        for (int i = 0; i < 5; ++i) log += "line match " + QByteArray::number(i) + "\n";
        write(dir.filePath(QStringLiteral("mail.log")), log);
        auto r = searchLog(dir.path(), QStringLiteral("match"), 5);
        QVERIFY(r.ok());
        QCOMPARE(r->lines.size(), 5);
        QVERIFY(!r->truncated);
        r = searchLog(dir.path(), QStringLiteral("match"), 4);
        QVERIFY(r.ok());
        QCOMPARE(r->lines.size(), 4);
        QVERIFY(r->truncated);
    }

    void overlongLineIsCut() {
        QTemporaryDir dir;
        // The tail of a line longer than kMaxLogLineBytes must not show up as a line of its own.
        const QByteArray longLine = "head " + QByteArray(int(kMaxLogLineBytes), 'x') + " tailneedle\n";
        write(dir.filePath(QStringLiteral("mail.log")), longLine + "next needle line\n");
        auto r = searchLog(dir.path(), QStringLiteral("needle"), 0);
        QVERIFY(r.ok());
        QCOMPARE(r->lines, QStringList{QStringLiteral("next needle line")});
    }

    void noLog() {
        QTemporaryDir dir;
        auto r = searchLog(dir.path(), QStringLiteral("x"), 0);
        QVERIFY(!r.ok());
        QVERIFY(r.errorMessage().contains(QStringLiteral("no log")));
        r = searchLog(dir.path(), QString(kMaxLogTermLength + 1, QLatin1Char('a')), 0);
        QVERIFY(!r.ok());
        QVERIFY(r.errorMessage().contains(QStringLiteral("too long")));
    }
};

QTEST_GUILESS_MAIN(TstLogSearch)
#include "tst_log_search.moc"
