// tst_address.cpp — domain and address normalisation, the address syntax check
// (isAtext, isDotAtom in both modes), plus-address splitting.
#include "core/address.h"
#include "core/paths.h"

#include <QtTest>

using namespace postern;

class TstAddress : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void domains_data() {
        QTest::addColumn<QString>("in");
        QTest::addColumn<QString>("out");  // empty = error
        QTest::newRow("lower") << "Example.ORG"
                               << "example.org";
        QTest::newRow("trailing dot") << "example.org."
                                      << "example.org";
        QTest::newRow("idn") << "bücher.example"
                             << "xn--bcher-kva.example";
        QTest::newRow("ace kept") << "xn--bcher-kva.example"
                                  << "xn--bcher-kva.example";
        QTest::newRow("single label") << "localhost"
                                      << "localhost";
        QTest::newRow("empty") << ""
                               << "";
        QTest::newRow("double dot") << "a..b"
                                    << "";
        QTest::newRow("space") << "a b.org"
                               << "";
        QTest::newRow("at") << "a@b.org"
                            << "";
        QTest::newRow("leading hyphen") << "-a.org"
                                        << "";
        QTest::newRow("label 63") << QString(63, QLatin1Char('a')) + ".org" << QString(63, QLatin1Char('a')) + ".org";
        QTest::newRow("label 64") << QString(64, QLatin1Char('a')) + ".org"
                                  << "";
        QTest::newRow("253 total") << (QString(62, QLatin1Char('a')) + ".").repeated(4).left(249) + ".org"
                                   << (QString(62, QLatin1Char('a')) + ".").repeated(4).left(249) + ".org";
        QTest::newRow("254 total") << (QString(62, QLatin1Char('a')) + ".").repeated(4).left(250) + ".org"
                                   << "";
        QTest::newRow("slash") << "a/b.org"
                               << "";
    }
    void domains() {
        QFETCH(QString, in);
        QFETCH(QString, out);
        auto r = normalizeDomain(in);
        if (out.isEmpty()) {
            QVERIFY(!r.ok());
            QVERIFY(!r.errorMessage().isEmpty());
        } else {
            QVERIFY2(r.ok(), qPrintable(r.errorMessage()));
            QCOMPARE(*r, out);
        }
    }

    void addresses_data() {
        QTest::addColumn<QString>("in");
        QTest::addColumn<QString>("out");
        QTest::newRow("simple") << "Alice@Example.org"
                                << "alice@example.org";
        QTest::newRow("dots") << "first.last@example.org"
                              << "first.last@example.org";
        QTest::newRow("utf8 local") << "Jörg@example.org"
                                    << "jörg@example.org";
        QTest::newRow("atext") << "a!#$%&'*+/=?^_`{|}~-b@example.org"
                               << "a!#$%&'*+/=?^_`{|}~-b@example.org";
        QTest::newRow("no at") << "alice"
                               << "";
        QTest::newRow("empty local") << "@example.org"
                                     << "";
        QTest::newRow("leading dot") << ".a@example.org"
                                     << "";
        QTest::newRow("trailing dot") << "a.@example.org"
                                      << "";
        QTest::newRow("quoted") << "\"a b\"@example.org"
                                << "";
        QTest::newRow("literal") << "a@[192.0.2.1]"
                                 << "";
        QTest::newRow("percent hack kept as atext") << "user%other@example.org"
                                                    << "user%other@example.org";
        QTest::newRow("space") << "a b@example.org"
                               << "";
        QTest::newRow("local 64") << QString(64, QLatin1Char('x')) + "@example.org"
                                  << QString(64, QLatin1Char('x')) + "@example.org";
        QTest::newRow("local 65") << QString(65, QLatin1Char('x')) + "@example.org"
                                  << "";
        QTest::newRow("ctl char") << "a\x01@example.org"
                                  << "";
    }
    void addresses() {
        QFETCH(QString, in);
        QFETCH(QString, out);
        auto r = normalizeAddress(in);
        if (out.isEmpty())
            QVERIFY(!r.ok());
        else {
            QVERIFY2(r.ok(), qPrintable(r.errorMessage()));
            QCOMPARE(*r, out);
        }
    }

    // The one address syntax check (accounts, SMTP paths, headers), at its boundaries: every
    // ASCII code point against RFC 5322 atext, and non-ASCII by mode (Printable refuses the
    // invisible and space characters and, per UTF-16 unit, surrogates; Any takes all).
    void atextAscii() {
        const QByteArray specials = "!#$%&'*+-/=?^_`{|}~";
        for (char32_t c = 0; c < 0x80; ++c) {
            const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
            const bool want = alnum || specials.contains(char(c));
            QVERIFY2(isAtext(c, NonAscii::Printable) == want, qPrintable(QString::number(uint(c))));
            QVERIFY2(isAtext(c, NonAscii::Any) == want, qPrintable(QString::number(uint(c))));
        }
    }
    void dotAtom_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<bool>("printable");
        QTest::addColumn<bool>("any");
        QTest::newRow("empty") << QString() << false << false;
        QTest::newRow("one letter") << "a" << true << true;
        QTest::newRow("inner dot") << "a.b" << true << true;
        QTest::newRow("leading dot") << ".a" << false << false;
        QTest::newRow("trailing dot") << "a." << false << false;
        QTest::newRow("double dot") << "a..b" << false << false;
        QTest::newRow("dot alone") << "." << false << false;
        QTest::newRow("all specials") << "!#$%&'*+-/=?^_`{|}~" << true << true;
        QTest::newRow("space") << "a b" << false << false;
        QTest::newRow("at") << "a@b" << false << false;
        QTest::newRow("quote") << "a\"b" << false << false;
        QTest::newRow("DEL") << "a\x7f" << false << false;
        QTest::newRow("e acute (U+00E9)") << QString::fromUtf8("j\xc3\xa9") << true << true;
        QTest::newRow("first non-ASCII U+0080") << QString(QChar(0x80)) << false << true;
        QTest::newRow("NEL U+0085") << "a" + QString(QChar(0x85)) << false << true;
        QTest::newRow("no-break space U+00A0") << "a" + QString(QChar(0xa0)) << false << true;
        QTest::newRow("zero-width space U+200B") << "a" + QString(QChar(0x200b)) << false << true;
        QTest::newRow("CJK U+4E2D") << QString(QChar(0x4e2d)) << true << true;
        QTest::newRow("outside the BMP U+1F600") << QString::fromUcs4(U"a\U0001F600") << false << true;
    }
    void dotAtom() {
        QFETCH(QString, text);
        QFETCH(bool, printable);
        QFETCH(bool, any);
        QCOMPARE(isDotAtom(text), printable);  // Printable is the default
        QCOMPARE(isDotAtom(text, NonAscii::Printable), printable);
        QCOMPARE(isDotAtom(text, NonAscii::Any), any);
    }

    void detail() {
        QCOMPARE(splitDetail(QStringLiteral("user+tag"), QStringLiteral("+")),
                 std::make_pair(QStringLiteral("user"), QStringLiteral("tag")));
        QCOMPARE(splitDetail(QStringLiteral("user+a+b"), QStringLiteral("+")),
                 std::make_pair(QStringLiteral("user"), QStringLiteral("a+b")));
        QCOMPARE(splitDetail(QStringLiteral("user-tag"), QStringLiteral("+-")),
                 std::make_pair(QStringLiteral("user"), QStringLiteral("tag")));
        QCOMPARE(splitDetail(QStringLiteral("user"), QStringLiteral("+")),
                 std::make_pair(QStringLiteral("user"), QString()));
        QCOMPARE(splitDetail(QStringLiteral("+tag"), QStringLiteral("+")),
                 std::make_pair(QStringLiteral("+tag"), QString()));
        QCOMPARE(splitDetail(QStringLiteral("user+tag"), QString()),
                 std::make_pair(QStringLiteral("user+tag"), QString()));
    }

    void pathSegments_data() {
        QTest::addColumn<QString>("in");
        QTest::addColumn<QString>("out");
        QTest::newRow("plain") << "alice"
                               << "alice";
        QTest::newRow("slash") << "a/b"
                               << "a%2Fb";
        QTest::newRow("dotdot") << ".."
                                << "%2E.";
        QTest::newRow("dot") << "."
                             << "%2E";
        QTest::newRow("empty") << ""
                               << "%00";
        QTest::newRow("utf8") << "jörg"
                              << "j%C3%B6rg";
        QTest::newRow("upper") << "A"
                               << "%41";
        QTest::newRow("percent") << "50%"
                                 << "50%25";
        QTest::newRow("nul") << QString(QChar(0)) << "%00";
    }
    void pathSegments() {
        QFETCH(QString, in);
        QFETCH(QString, out);
        QCOMPARE(encodePathSegment(in), out);
        QVERIFY(!encodePathSegment(in).contains(QLatin1Char('/')));
        if (!in.isEmpty()) QCOMPARE(decodePathSegment(encodePathSegment(in)), in);
    }
    void mailboxPaths() {
        QCOMPARE(mailboxHome(QStringLiteral("/m"), QStringLiteral("Alice@Example.org")),
                 QStringLiteral("/m/example.org/alice"));
        QCOMPARE(maildirRoot(QStringLiteral("/m"), QStringLiteral("a/b@example.org")),
                 QStringLiteral("/m/example.org/a%2Fb/Maildir"));
        QCOMPARE(mailboxHome(QStringLiteral("/m"), QStringLiteral("../x@example.org")),
                 QString());  // not a dot-atom: refused
        QCOMPARE(mailboxHome(QStringLiteral("/m"), QStringLiteral("garbage")), QString());
    }
};

QTEST_GUILESS_MAIN(TstAddress)
#include "tst_address.moc"
