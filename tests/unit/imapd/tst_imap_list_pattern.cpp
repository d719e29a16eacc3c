// tst_imap_list_pattern.cpp — LIST/LSUB wildcard matching (imap_list_pattern.h):
// RFC 9051 6.3.9 examples, the hierarchy delimiter rule of "%", INBOX matched
// case-insensitively, non-ASCII names (as decoded from modified UTF-7), the
// collapse of wildcard runs, pathological patterns that make a regular
// expression backtrack (results checked, not timed), and random patterns
// compared with a plain definition of the semantics written here.
#include "imapd/imap_list_pattern.h"

#include <QRandomGenerator>
#include <QtTest>

#include <functional>

using postern::imap::MailboxPattern;

namespace {

// The definition, written independently: memoised recursion over (pattern position,
// name position). Only for short inputs.
bool reference(const QString& p, const QString& n, QChar delim) {
    const bool inboxName = n.startsWith(QLatin1String("INBOX")) && (n.size() == 5 || n.at(5) == delim);
    QHash<quint64, bool> memo;
    std::function<bool(qsizetype, qsizetype)> go = [&](qsizetype i, qsizetype j) -> bool {
        const quint64 key = (quint64(i) << 32) | quint64(j);
        if (auto it = memo.constFind(key); it != memo.cend()) return *it;
        bool r;
        if (i == p.size()) {
            r = j == n.size();
        } else if (p.at(i) == u'*') {
            r = go(i + 1, j) || (j < n.size() && go(i, j + 1));
        } else if (p.at(i) == u'%') {
            r = go(i + 1, j) || (j < n.size() && n.at(j) != delim && go(i, j + 1));
        } else {
            const bool same =
                j < n.size() && (p.at(i) == n.at(j) || (inboxName && j < 5 && p.at(i).toLower() == n.at(j).toLower()));
            r = same && go(i + 1, j + 1);
        }
        memo.insert(key, r);
        return r;
    };
    return go(0, 0);
}

}  // namespace

class TstImapListPattern : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void matches_data() {
        QTest::addColumn<QString>("pattern");
        QTest::addColumn<QString>("name");
        QTest::addColumn<bool>("expected");
        auto row = [](const char* tag, const QString& p, const QString& n, bool e) {
            QTest::newRow(tag) << p << n << e;
        };
        // RFC 9051 6.3.9: "*" matches zero or more characters; "%" the same except the delimiter.
        row("star everything", QStringLiteral("*"), QStringLiteral("Work/Projects/2026"), true);
        row("star empty rest", QStringLiteral("Work*"), QStringLiteral("Work"), true);
        row("percent top level", QStringLiteral("%"), QStringLiteral("Work"), true);
        row("percent no delimiter", QStringLiteral("%"), QStringLiteral("Work/Projects"), false);
        row("percent one level", QStringLiteral("Work/%"), QStringLiteral("Work/Projects"), true);
        row("percent not two levels", QStringLiteral("Work/%"), QStringLiteral("Work/Projects/2026"), false);
        row("star two levels", QStringLiteral("Work/*"), QStringLiteral("Work/Projects/2026"), true);
        row("percent levels", QStringLiteral("%/%"), QStringLiteral("Work/Projects"), true);
        row("percent levels too deep", QStringLiteral("%/%"), QStringLiteral("Work/Projects/2026"), false);
        row("percent inside", QStringLiteral("W%s"), QStringLiteral("Works"), true);
        row("percent inside delimiter", QStringLiteral("W%s"), QStringLiteral("W/s"), false);
        row("percent empty", QStringLiteral("Work%"), QStringLiteral("Work"), true);
        row("literal exact", QStringLiteral("Sent"), QStringLiteral("Sent"), true);
        row("literal prefix only", QStringLiteral("Sen"), QStringLiteral("Sent"), false);
        row("literal longer", QStringLiteral("Sent2"), QStringLiteral("Sent"), false);
        row("case sensitive", QStringLiteral("sent"), QStringLiteral("Sent"), false);
        row("empty pattern", QString(), QStringLiteral("Sent"), false);
        row("regex characters are literal", QStringLiteral("a.c"), QStringLiteral("abc"), false);
        row("regex characters match themselves", QStringLiteral("a.c(d)+[e]^$\\"), QStringLiteral("a.c(d)+[e]^$\\"),
            true);
        row("backslash no escape", QStringLiteral("a\\*"), QStringLiteral("a\\bc"), true);
        // INBOX (RFC 9051 5.1): case-insensitive, also as the first level of a name.
        row("inbox lower", QStringLiteral("inbox"), QStringLiteral("INBOX"), true);
        row("inbox mixed star", QStringLiteral("Inb*"), QStringLiteral("INBOX"), true);
        row("inbox percent", QStringLiteral("i%"), QStringLiteral("INBOX"), true);
        row("inbox child", QStringLiteral("inbox/%"), QStringLiteral("INBOX/Lists"), true);
        row("inbox child case kept", QStringLiteral("inbox/lists"), QStringLiteral("INBOX/Lists"), false);
        row("inboxes is not inbox", QStringLiteral("inboxes"), QStringLiteral("INBOXes"), false);
        row("inbox wrong letters", QStringLiteral("inbix"), QStringLiteral("INBOX"), false);
        // Non-ASCII names (what modified UTF-7 decodes to) and surrogate pairs.
        row("umlaut literal", QStringLiteral("Entw\u00fcrfe"), QStringLiteral("Entw\u00fcrfe"), true);
        row("umlaut percent", QStringLiteral("Entw%rfe"), QStringLiteral("Entw\u00fcrfe"), true);
        row("cjk star", QStringLiteral("*\u4ef6"), QStringLiteral("\u90ae\u4ef6"), true);
        row("emoji percent", QStringLiteral("%/x"), QString::fromUtf8("\xf0\x9f\x93\x81/x"), true);
        row("emoji literal", QString::fromUtf8("\xf0\x9f\x93\x81*"), QString::fromUtf8("\xf0\x9f\x93\x81 Mail"), true);
        row("emoji other", QString::fromUtf8("\xf0\x9f\x93\x82*"), QString::fromUtf8("\xf0\x9f\x93\x81 Mail"), false);
        // Runs of wildcards.
        row("star percent", QStringLiteral("a*%b"), QStringLiteral("a/x/b"), true);
        row("percent star", QStringLiteral("a%*b"), QStringLiteral("a/x/b"), true);
        row("percent percent", QStringLiteral("a%%b"), QStringLiteral("a/b"), false);
        row("percent percent ok", QStringLiteral("a%%b"), QStringLiteral("axyb"), true);
        // Patterns that make a backtracking matcher take exponential time.
        const QString as = QString(40, QLatin1Char('a'));
        QString starA, pctA;
        for (int i = 0; i < 30; ++i) {
            starA += QStringLiteral("*a");
            pctA += QStringLiteral("%a");
        }
        row("star-a chain no b", starA + QStringLiteral("*b"), as, false);
        row("star-a chain b", starA + QStringLiteral("*b"), as + QLatin1Char('b'), true);
        row("percent-a chain no b", pctA + QStringLiteral("%b"), as, false);
        row("percent-a chain delimiter", pctA + QStringLiteral("%b"), as + QStringLiteral("/b"), false);
        row("percent-a chain b", pctA + QStringLiteral("%b"), as + QLatin1Char('b'), true);
        QString longStar;
        for (int i = 0; i < 500; ++i) longStar += QStringLiteral("*a");
        row("1000-char pattern, shorter name", longStar + QStringLiteral("*b"), QString(255, QLatin1Char('a')), false);
        row("1000-char pattern, long name", longStar + QStringLiteral("*b"), QString(2000, QLatin1Char('a')), false);
        row("1000-char pattern, long name b", longStar + QStringLiteral("*b"),
            QString(2000, QLatin1Char('a')) + QLatin1Char('b'), true);
        row("many stars", QString(30000, QLatin1Char('*')) + QLatin1Char('z'),
            QString(250, QLatin1Char('a')) + QLatin1Char('z'), true);
    }
    void matches() {
        QFETCH(QString, pattern);
        QFETCH(QString, name);
        QFETCH(bool, expected);
        QCOMPARE(MailboxPattern(pattern, QLatin1Char('/')).matches(name), expected);
        if (pattern.size() <= 200 && name.size() <= 200) QCOMPARE(reference(pattern, name, QLatin1Char('/')), expected);
    }

    void otherDelimiter() {
        QVERIFY(MailboxPattern(u"a.%", QLatin1Char('.')).matches(u"a.b"));
        QVERIFY(!MailboxPattern(u"a.%", QLatin1Char('.')).matches(u"a.b.c"));
        QVERIFY(MailboxPattern(u"a.%", QLatin1Char('.')).matches(u"a.b/c"));
    }

    // Random short patterns and names over a small alphabet, against the reference.
    void randomAgainstReference() {
        QRandomGenerator rng(20261202);
        const QString alphabet = QStringLiteral("ab/*%I");
        const QString nameAlphabet = QStringLiteral("ab/");
        for (int round = 0; round < 20000; ++round) {
            QString p, n;
            const int pl = int(rng.bounded(9)), nl = int(rng.bounded(10));
            for (int i = 0; i < pl; ++i) p += alphabet.at(int(rng.bounded(alphabet.size())));
            if (rng.bounded(4) == 0) n = QStringLiteral("INBOX");
            for (int i = 0; i < nl; ++i) n += nameAlphabet.at(int(rng.bounded(nameAlphabet.size())));
            if (rng.bounded(3) == 0) p.replace(QLatin1Char('I'), QStringLiteral("inbox"));
            const bool want = reference(p, n, QLatin1Char('/'));
            if (MailboxPattern(p, QLatin1Char('/')).matches(n) != want)
                QFAIL(qPrintable(QStringLiteral("pattern '%1' name '%2': expected %3").arg(p, n).arg(want)));
        }
    }
};

QTEST_GUILESS_MAIN(TstImapListPattern)
#include "tst_imap_list_pattern.moc"
