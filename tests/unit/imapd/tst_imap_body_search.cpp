// tst_imap_body_search.cpp — SEARCH BODY/TEXT's body text (imap_body_search.h): the claims
// its byte search rests on, checked over every code point and byte sequence that matters;
// byte-by-byte rows for the edge cases; and a differential run against the reference (the
// algorithm SEARCH used before: every text part decoded, joined, lower-cased, searched)
// over thousands of generated messages and needles.
#include "imapd/imap_body_search.h"

#include "body_search_reference.h"

#include <QRandomGenerator>
#include <QtTest>

using namespace postern;
using namespace postern::imap;

namespace {

bool referenceContains(const QByteArray& msg, const QByteArray& needleUtf8) {
    return reference::contains(msg, needleUtf8);
}

bool newContains(const QByteArray& msg, const QByteArray& needleUtf8) {
    const mail::MimePart root = mail::parseMime(msg);
    BodyText text(msg, root);
    return text.contains(BodyNeedle(needleUtf8));
}

// Maximal runs of non-ASCII units become one 0x80 marker: the shape a byte search relies on.
QByteArray asciiShape(const QByteArray& bytes) {
    QByteArray out;
    for (char c : bytes) {
        if (uchar(c) < 0x80)
            out += c;
        else if (!out.endsWith('\x80'))
            out += '\x80';
    }
    return out;
}
QByteArray asciiShape(const QString& s) {
    QByteArray out;
    for (QChar c : s) {
        if (c.unicode() < 0x80)
            out += char(c.unicode());
        else if (!out.endsWith('\x80'))
            out += '\x80';
    }
    return out;
}

QByteArray singlePart(const QByteArray& body, const QByteArray& charset, const QByteArray& cte = "8bit") {
    QByteArray m = "From: a@example.test\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain";
    if (!charset.isNull()) m += "; charset=\"" + charset + '"';
    m += "\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n" + body;
    return m;
}

// ---- The generator for the differential run.
class Gen {
public:
    explicit Gen(quint32 seed) : m_r(seed) {}
    int n(int below) { return int(m_r.bounded(below)); }

    QString words() {
        static const QStringList vocab = {
            QStringLiteral("Hello"),      QStringLiteral("WORLD"),         QStringLiteral("invoice"),
            QStringLiteral("Kitten"),     QStringLiteral("\u0130stanbul"), QStringLiteral("\u212Aelvin"),
            QStringLiteral("kelvin"),     QStringLiteral("\u0131i"),       QStringLiteral("Stra\u00DFe"),
            QStringLiteral("\u00DCber"),  QStringLiteral("\u00FCber"),     QStringLiteral("\u03A3\u0391\u03A3"),
            QStringLiteral("caf\u00E9"),  QStringLiteral("na\u00EFve"),    QStringLiteral("\u00C5ngstr\u00F6m"),
            QStringLiteral("\u212Bx"),    QStringLiteral("meeting"),       QStringLiteral("=3D"),
            QStringLiteral("\U0001F600"), QStringLiteral("x\u0307y"),      QStringLiteral("DINNER"),
            QStringLiteral("report"),     QStringLiteral("\u00C0\u00E0"),  QStringLiteral("\u1E9E"),
        };
        QString out;
        const int count = 1 + n(25);
        for (int i = 0; i < count; ++i) {
            out += vocab.at(n(int(vocab.size())));
            const int sep = n(10);
            out += sep == 0 ? QStringLiteral("\r\n") : sep == 1 ? QStringLiteral("\n") : QStringLiteral(" ");
        }
        return out;
    }
    // The text in some encoding, sometimes with bytes no charset expects.
    QByteArray bytesOf(const QString& text) {
        QByteArray b = n(3) == 0 ? text.toLatin1() : text.toUtf8();
        static const QList<QByteArray> odd = {
            "\xC4", "\xB0",         "\xC4\xB0",     "\xE2\x84",         "\xE2\x84\xAA", "\xFF", "\xC0\xAF",
            "\x00", "\xEF\xBB\xBF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE1\xBA",     "\r",   "\xCC\x87"};
        const int corrupt = n(4) == 0 ? 1 + n(4) : 0;
        for (int i = 0; i < corrupt; ++i) b.insert(n(int(b.size()) + 1), odd.at(n(int(odd.size()))));
        return b;
    }
    QByteArray charset() {
        static const QList<QByteArray> sets = {
            QByteArray(), "utf-8",      "UTF-8",      "utf8",   "us-ascii",     "US-ASCII",
            "ascii",      "iso-8859-1", "ISO-8859-1", "latin1", "windows-1252", "iso-8859-15",
            "koi8-r",     "x-bogus",    "iso8859-1",  "",       "utf-16"};
        return sets.at(n(int(sets.size())));
    }
    // Body bytes in a transfer encoding; the Content-Transfer-Encoding value goes to *cte.
    QByteArray encode(const QByteArray& raw, QByteArray* cte) {
        switch (n(5)) {
            case 0: {
                *cte = n(2) ? "base64" : "BASE64";
                const QByteArray b64 = raw.toBase64();
                QByteArray out;
                for (qsizetype i = 0; i < b64.size(); i += 76) out += b64.mid(i, 76) + "\r\n";
                return out;
            }
            case 1: {
                *cte = "quoted-printable";
                QByteArray out;
                int col = 0;
                for (char c : raw) {
                    QByteArray piece;
                    if (c == '\r' || c == '\n')
                        piece = QByteArray(1, c);
                    else if (uchar(c) >= 0x80 || c == '=' || uchar(c) < 0x20 || n(20) == 0)
                        piece = '=' + (n(2) ? QByteArray(1, c).toHex().toUpper() : QByteArray(1, c).toHex());
                    else
                        piece = QByteArray(1, c);
                    if (c != '\r' && c != '\n' && col + piece.size() > 72) {
                        out += "=\r\n";
                        col = 0;
                    }
                    out += piece;
                    col = c == '\n' ? 0 : col + int(piece.size());
                }
                return out;
            }
            case 2:
                *cte = "7bit";
                return raw;
            case 3:
                *cte = "8bit";
                return raw;
            default:
                *cte = "binary";
                return raw;
        }
    }
    QByteArray leaf(QList<QString>* texts) {
        const QString text = words();
        texts->append(text);
        QByteArray cte;
        const QByteArray body = encode(bytesOf(text), &cte);
        static const QList<QByteArray> types = {"text/plain", "text/html", "TEXT/Plain", "application/octet-stream",
                                                "image/png"};
        QByteArray h = "Content-Type: " + types.at(n(int(types.size())));
        const QByteArray cs = charset();
        if (!cs.isNull()) h += "; charset=" + cs;
        if (n(6) == 0) h = QByteArray();  // no Content-Type: text/plain; charset=us-ascii
        if (!h.isEmpty()) h += "\r\n";
        h += "Content-Transfer-Encoding: " + cte + "\r\n";
        return h + "\r\n" + body;
    }
    QByteArray entity(int depth, QList<QString>* texts) {
        const int kind = depth >= 3 ? 0 : n(4);
        if (kind <= 1) return leaf(texts);
        if (kind == 2) {
            return "Content-Type: message/rfc822\r\n\r\nFrom: b@example.test\r\nSubject: inner\r\n" +
                   entity(depth + 1, texts);
        }
        const QByteArray boundary = "b" + QByteArray::number(depth) + "_" + QByteArray::number(n(1000));
        QByteArray out = "Content-Type: multipart/" + QByteArray(n(2) ? "mixed" : "alternative") + "; boundary=\"" +
                         boundary + "\"\r\n\r\npreamble\r\n";
        const int parts = 1 + n(3);
        for (int i = 0; i < parts; ++i) out += "--" + boundary + "\r\n" + entity(depth + 1, texts) + "\r\n";
        out += "--" + boundary + "--\r\nepilogue\r\n";
        return out;
    }
    QByteArray message(QList<QString>* texts) {
        return "From: a@example.test\r\nTo: c@example.test\r\nSubject: gen\r\nMIME-Version: 1.0\r\n" + entity(0, texts);
    }
    // Needles: fixed ones, and slices of the message's words in mixed case.
    QList<QByteArray> needles(const QList<QString>& texts) {
        QList<QByteArray> out = {"",
                                 "hello",
                                 "HELLO",
                                 "world",
                                 "i",
                                 "k",
                                 "K",
                                 "\n",
                                 "o\nw",
                                 "\r\n",
                                 "stanbul",
                                 "\xC4\xB0",
                                 "i\xCC\x87",
                                 "elvin",
                                 "ber",
                                 "\xC3\xBC"
                                 "ber",
                                 "strasse",
                                 "stra\xC3\x9F"
                                 "e",
                                 "caf",
                                 "=",
                                 "\xEF\xBF\xBD",
                                 "\r",
                                 "\xCF\x83",
                                 "meeting report",
                                 "inv",
                                 "dinner",
                                 "x",
                                 "y",
                                 "o\r"};
        out << QByteArray("\0", 1) << QByteArray("a\0b", 3);
        for (int i = 0; i < 6 && !texts.isEmpty(); ++i) {
            const QString& t = texts.at(n(int(texts.size())));
            if (t.isEmpty()) continue;
            const int from = n(int(t.size()));
            QString slice = t.mid(from, 1 + n(12));
            if (n(2)) slice = slice.toUpper();
            out << slice.toUtf8();
        }
        return out;
    }

private:
    QRandomGenerator m_r;
};

}  // namespace

class TstImapBodySearch : public QObject {
    Q_OBJECT
private slots:
    // No non-ASCII character lower-cases to anything ASCII, except U+0130 (to "i" U+0307)
    // and U+212A (to "k"): the header's second claim.
    void nonAsciiLowersToAsciiOnlyForDottedIAndKelvin() {
        for (char32_t cp = 0x80; cp <= 0x10FFFF; ++cp) {
            if (cp >= 0xD800 && cp <= 0xDFFF) continue;
            const QString lower = QString::fromUcs4(&cp, 1).toLower();
            QByteArray ascii;
            for (QChar c : lower)
                if (c.unicode() < 0x80) ascii += char(c.unicode());
            if (cp == 0x130)
                QCOMPARE(ascii, QByteArray("i"));
            else if (cp == 0x212A)
                QCOMPARE(ascii, QByteArray("k"));
            else if (!ascii.isEmpty())
                QFAIL(qPrintable(QStringLiteral("U+%1 lowers to ASCII").arg(quint32(cp), 4, 16, QLatin1Char('0'))));
        }
    }
    // decodeCharset of the UTF-8 and Latin-1 names keeps every ASCII byte as that character,
    // in place, and turns every other byte sequence into at least one non-ASCII character:
    // every 1- and 2-byte non-ASCII sequence between ASCII letters, and random strings.
    void utf8AndLatin1KeepTheAsciiShape() {
        const QList<QByteArray> names = {"utf-8", "UTF-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1"};
        for (const QByteArray& cs : names) {
            for (int a = 0x80; a < 0x100; ++a) {
                for (int b = 0; b < 0x100; ++b) {
                    QByteArray bytes = "x";
                    bytes += char(a);
                    bytes += char(b);
                    bytes += "y";
                    QCOMPARE(asciiShape(mail::decodeCharset(bytes, cs)), asciiShape(bytes));
                }
            }
            QRandomGenerator r(7);
            for (int i = 0; i < 20000; ++i) {
                QByteArray bytes;
                const int len = int(r.bounded(1, 24));
                for (int j = 0; j < len; ++j)
                    bytes += char(r.bounded(3) == 0 ? r.bounded(0x20, 0x7F) : r.bounded(0x100));
                QCOMPARE(asciiShape(mail::decodeCharset(bytes, cs)), asciiShape(bytes));
            }
        }
    }
    // U+0130 and U+212A come out of UTF-8 decoding only from their own encodings.
    void dottedIAndKelvinOnlyFromTheirEncodings() {
        for (quint32 v = 0; v < (1u << 24); v += 1) {
            const uchar b0 = uchar(v >> 16), b1 = uchar(v >> 8), b2 = uchar(v);
            if (b0 < 0xC0) {  // a lead byte is needed for either
                v |= 0xFFFF;
                continue;
            }
            const char bytes[3] = {char(b0), char(b1), char(b2)};
            const QByteArray in(bytes, 3);
            const QString s = mail::decodeCharset(in, "utf-8");
            if (s.contains(QChar(0x130))) QVERIFY(in.contains("\xC4\xB0"));
            if (s.contains(QChar(0x212A))) QVERIFY(in.contains("\xE2\x84\xAA"));
        }
    }

    void rows_data() {
        QTest::addColumn<QByteArray>("message");
        QTest::addColumn<QByteArray>("needle");
        QTest::addColumn<bool>("expected");
        const QByteArray twoParts =
            "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nfoo\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nbar\r\n--B--\r\n";
        QTest::newRow("ascii upper") << singlePart("HELLO World", "utf-8") << QByteArray("hello w") << true;
        QTest::newRow("needle upper") << singlePart("hello", "us-ascii") << QByteArray("HeLLo") << true;
        QTest::newRow("dotted I is i") << singlePart("\xC4\xB0", "utf-8") << QByteArray("i") << true;
        QTest::newRow("dotted I not istanbul")
            << singlePart("\xC4\xB0stanbul", "utf-8") << QByteArray("istanbul") << false;
        QTest::newRow("dotted I stanbul") << singlePart("\xC4\xB0stanbul", "utf-8") << QByteArray("stanbul") << true;
        QTest::newRow("dotted I in latin-1") << singlePart("\xC4\xB0", "iso-8859-1") << QByteArray("i") << false;
        QTest::newRow("kelvin is k") << singlePart("\xE2\x84\xAA", "UTF-8") << QByteArray("k") << true;
        QTest::newRow("kelvin needle K") << singlePart(
                                                "\xE2\x84\xAA"
                                                "elvin",
                                                "utf8")
                                         << QByteArray("KELVIN") << true;
        QTest::newRow("kelvin in qp") << singlePart("=E2=84=AAelvin", "utf-8", "quoted-printable")
                                      << QByteArray("kelvin") << true;
        QTest::newRow("kelvin cut") << singlePart(
                                           "\xE2\x84"
                                           "elvin",
                                           "utf-8")
                                    << QByteArray("kelvin") << false;
        QTest::newRow("invalid between") << singlePart(
                                                "a\xC4"
                                                "b",
                                                "utf-8")
                                         << QByteArray("ab") << false;
        QTest::newRow("invalid then ascii") << singlePart(
                                                   "a\xC4"
                                                   "b",
                                                   "utf-8")
                                            << QByteArray("b") << true;
        QTest::newRow("replacement char") << singlePart(
                                                 "a\xFF"
                                                 "b",
                                                 "utf-8")
                                          << QByteArray(
                                                 "a\xEF\xBF\xBD"
                                                 "b")
                                          << true;
        QTest::newRow("latin-1 umlaut") << singlePart(
                                               "\xDC"
                                               "ber",
                                               "latin1")
                                        << QByteArray(
                                               "\xC3\xBC"
                                               "ber")
                                        << true;
        QTest::newRow("latin-1 ascii") << singlePart(
                                              "\xDC"
                                              "BER",
                                              "ISO-8859-1")
                                       << QByteArray("ber") << true;
        QTest::newRow("windows-1252 euro") << singlePart("\x80", "windows-1252") << QByteArray("\xE2\x82\xAC") << true;
        QTest::newRow("qp utf-8") << singlePart("caf=C3=A9 ok", "utf-8", "quoted-printable")
                                  << QByteArray("CAF\xC3\x89 OK") << true;
        QTest::newRow("qp lower hex") << singlePart("a=3db", "utf-8", "quoted-printable") << QByteArray("a=b") << true;
        QTest::newRow("base64") << singlePart(QByteArray("Stra\xC3\x9F"
                                                         "e")
                                                  .toBase64(),
                                              "utf-8", "base64")
                                << QByteArray(
                                       "STRA\xC3\x9F"
                                       "E")
                                << true;
        QTest::newRow("no ss for sz") << singlePart(
                                             "Stra\xC3\x9F"
                                             "e",
                                             "utf-8")
                                      << QByteArray("strasse") << false;
        QTest::newRow("not across parts") << twoParts << QByteArray("foobar") << false;
        QTest::newRow("newline joins parts") << twoParts << QByteArray("foo\nbar") << true;
        QTest::newRow("empty needle") << twoParts << QByteArray("") << true;
        QTest::newRow("attachment not text")
            << QByteArray("Content-Type: application/octet-stream\r\n\r\nhello") << QByteArray("hello") << false;
        QTest::newRow("nul byte") << singlePart(QByteArray("a\0b", 3), "utf-8") << QByteArray("b") << true;
    }
    void rows() {
        QFETCH(QByteArray, message);
        QFETCH(QByteArray, needle);
        QFETCH(bool, expected);
        QCOMPARE(referenceContains(message, needle), expected);
        QCOMPARE(newContains(message, needle), expected);
    }

    // Thousands of generated messages, each with fixed and sliced needles, through one
    // BodyText (its per-part caches in play) and a fresh one, against the reference.
    // The byte search looks for the needle's rarest byte in either case and compares
    // around it: every place of the needle in the text (first and last bytes included),
    // letters in random case, and near misses (one byte changed), against the reference.
    void caselessSearchAtEveryPlace() {
        QRandomGenerator rng(4122026);
        const QList<QByteArray> needles = {"invoice", "quokka", "a", "zz", "x-y 9", "e.e", "kiwi", "qq"};
        for (const QByteArray& needle : needles) {
            for (int at = 0; at <= 12; ++at) {
                QByteArray word = needle;
                for (char& c : word)
                    if (c >= 'a' && c <= 'z' && rng.bounded(2)) c = char(c - 32);
                QByteArray miss = word;
                miss[rng.bounded(int(miss.size()))] = '#';
                for (const QByteArray& placed : {word, miss}) {
                    const QByteArray body = QByteArray(at, 'b') + placed + QByteArray(rng.bounded(3), 'c');
                    const QByteArray msg = singlePart(body, "utf-8");
                    QCOMPARE(newContains(msg, needle), referenceContains(msg, needle));
                }
                QVERIFY(newContains(singlePart(QByteArray(at, 'b') + word, "utf-8"), needle));
            }
        }
    }

    // FROM/TO/CC/BCC skip parsing a field whose bytes cannot hold the needle: never when the
    // parsed address text holds it. Fields made of every form the address parser knows
    // (quoted names with and without escapes, encoded words, comments inside and outside
    // <...>, obsolete "addr (Name)", groups, routes, spaces and folding inside domains,
    // non-ASCII and the two characters that lower-case to ASCII), needles taken from the
    // address text (hits) and from elsewhere (misses).
    void addressFilterNeverHidesAMatch() {
        QRandomGenerator rng(4122027);
        const QList<QByteArray> words = {"Jan",
                                         "kowalski",
                                         "KOW",
                                         "Zo\xc3\xab",
                                         "\xc4\xb0stanbul",
                                         "\xe2\x84\xaa"
                                         "elvin",
                                         "anna",
                                         "B0b",
                                         "x9",
                                         "Mi\xc5\x82osz",
                                         "kIwi",
                                         "team"};
        auto word = [&] { return words.at(int(rng.bounded(int(words.size())))); };
        auto domain = [&]() -> QByteArray {
            switch (rng.bounded(4)) {
                case 0:
                    return word() + ".test";
                case 1:
                    return "exa mple.te st";
                case 2:
                    return word() + "\r\n ." + word();
                default:
                    return "[10.0.0.1]";
            }
        };
        auto address = [&]() -> QByteArray {
            const QByteArray spec = word() + (rng.bounded(3) == 0 ? "." + word() : QByteArray()) + "@" + domain();
            switch (rng.bounded(9)) {
                case 0:
                    return spec;
                case 1:
                    return word() + " " + word() + " <" + spec + ">";
                case 2:
                    return "\"" + word() + " " + word() + "\" <" + spec + ">";
                case 3:
                    return "\"" + word() + " \\\"" + word() + "\\\"\" <" + spec + ">";
                case 4:
                    return "=?utf-8?q?" + word() + "_" + word() + "?= <" + spec + ">";
                case 5:
                    return spec + " (" + word() + " " + word() + ")";
                case 6:
                    return "<" + word() + "(" + word() + ")" + word() + "@" + domain() + ">";
                case 7:
                    return "<@route.test:" + spec + ">";
                default:
                    return "\"" + word() + "\"" + word() + " <" + spec + "> (" + word() + ")";
            }
        };
        int hits = 0, skipped = 0, misses = 0;
        for (int round = 0; round < 4000; ++round) {
            QByteArray raw;
            const int n = 1 + int(rng.bounded(3));
            if (rng.bounded(5) == 0) raw = word() + ": ";
            for (int i = 0; i < n; ++i) raw += (i ? ",\r\n " : "") + address();
            if (raw.endsWith(": ") == false && raw.contains(": ") && !raw.startsWith("<")) raw += ";";
            const QString text = addressSearchText(raw);
            QList<QByteArray> needles;
            for (int j = 0; j < 4; ++j) {
                // A run of ASCII letters and digits of the address text (a hit when there is one).
                const qsizetype at = text.isEmpty() ? 0 : qsizetype(rng.bounded(int(text.size())));
                QByteArray run;
                for (qsizetype i = at; i < text.size() && run.size() < 1 + int(rng.bounded(8)); ++i) {
                    const QChar c = text.at(i);
                    if (c.unicode() >= 0x80 || !c.isLetterOrNumber()) break;
                    run += char(c.unicode());
                }
                if (!run.isEmpty()) needles << (rng.bounded(2) ? run.toUpper() : run);
                needles << word().toLower() << QByteArray("k") << QByteArray("i") << QByteArray("zz9");
            }
            for (const QByteArray& needle : std::as_const(needles)) {
                const BodyNeedle bn(needle);
                const bool inText = text.contains(bn.lower);
                const bool may = addressMayContain(raw, bn);
                if (inText && !may)
                    QFAIL(qPrintable(QStringLiteral("needle %1 in \"%2\" but the filter skipped %3")
                                         .arg(QString::fromUtf8(needle), text,
                                              QString::fromLatin1(raw.toPercentEncoding(" <>@\"(),:;.")))));
                hits += inText;
                misses += !inText;
                skipped += !may;
            }
        }
        qInfo("%d hits, %d misses, %d skipped without parsing", hits, misses, skipped);
        QVERIFY(hits > 1000);
        QVERIFY(skipped > misses / 4);  // the filter does skip work
    }

    // plainHeaderContains against decodeHeaderText(raw).toLower() over generated header
    // values (folds, tabs, CR/LF alone, encoded words, 8-bit bytes) and needles (with and
    // without white space, in either case): whenever it answers, the answer is the
    // decoder's; it answers for plain values and spaceless needles.
    void plainHeaderSameAsDecoder() {
        QRandomGenerator rng(20261205);
        static const char* const pieces[] = {
            "Budget", "budget",      " ",   "\t",  "\r\n ", "\r\n\t",  "\r", "\n", "=?", "=?utf-8?q?Caf=C3=A9?=",
            "?=",     "caf\xc3\xa9", "Re:", "[x]", "-",     "INVOICE", "q",  "e"};
        static const char* const needles[] = {"budget", "BUDGET", "get b", "invoice", "re:", "[x]",          "café",
                                              "q",      "\t",     "et\r",  "=?",      "x]-", "budget budget"};
        int answered = 0, hits = 0;
        for (int round = 0; round < 20000; ++round) {
            QByteArray raw;
            const int n = int(rng.bounded(8));
            for (int i = 0; i < n; ++i) raw += pieces[rng.bounded(int(std::size(pieces)))];
            for (const char* text : needles) {
                const BodyNeedle needle{QByteArray(text)};
                const bool want = mail::decodeHeaderText(raw).toLower().contains(needle.lower);
                const std::optional<bool> got = plainHeaderContains(raw, needle);
                if (got && *got != want)
                    QFAIL(qPrintable(QStringLiteral("value %1, needle %2: decoder %3")
                                         .arg(QString::fromLatin1(raw.toPercentEncoding()), QString::fromUtf8(text))
                                         .arg(want)));
                const bool plain = !raw.contains("=?") &&
                                   std::all_of(raw.cbegin(), raw.cend(), [](char c) { return uchar(c) < 0x80; });
                QCOMPARE(bool(got), plain && needle.spaceless && !needle.bytes.isEmpty());
                answered += bool(got);
                hits += got.value_or(false);
            }
        }
        qInfo("%d answered from the bytes, %d of them matches", answered, hits);
        QVERIFY(hits > answered / 10);
    }

    // The text part spans and their kept form, byte by byte.
    void textPartSpansKeptForm() {
        const QByteArray msg =
            "Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            "--b\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            "caf=E9\r\n"
            "--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            "emVicmE=\r\n"
            "--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner text\r\n"
            "--b--\r\n";
        const mail::MimePart root = mail::parseMime(msg);
        const QList<TextPartSpan> spans = textPartSpans(root);
        QCOMPARE(spans.size(), 2);  // the attachment is not text; the inner message's body is
        QCOMPARE(msg.mid(spans[0].start, spans[0].end - spans[0].start), QByteArray("caf=E9"));
        QCOMPARE(spans[0].encoding, QStringLiteral("quoted-printable"));
        QCOMPARE(spans[0].charset, QByteArray("ISO-8859-1"));
        QCOMPARE(msg.mid(spans[1].start, spans[1].end - spans[1].start), QByteArray("inner text"));
        QCOMPARE(spans[1].charset, QByteArray("us-ascii"));  // no Content-Type: RFC 2045 5.2's default

        const QByteArray kept = encodeTextParts(spans);
        QVERIFY(kept.startsWith("TP1"));
        QCOMPARE(decodeTextParts(kept, msg.size()), std::optional(spans));
        QCOMPARE(decodeTextParts(encodeTextParts({}), 0),
                 std::optional(QList<TextPartSpan>{}));  // no text part: kept too
        // Not what encodeTextParts wrote for this file: the caller parses the message instead.
        QCOMPARE(decodeTextParts(kept, spans[1].end - 1), std::nullopt);  // a range past the file's end
        QCOMPARE(decodeTextParts(QByteArray("TP2") + kept.mid(3), msg.size()), std::nullopt);
        QCOMPARE(decodeTextParts(QByteArray(), msg.size()), std::nullopt);
        const qsizetype firstEnds = encodeTextParts({spans[0]}).size();
        for (qsizetype cut = 4; cut < kept.size(); ++cut)  // every truncation: inside a span, refused
            if (cut == firstEnds)
                QCOMPARE(decodeTextParts(kept.left(cut), msg.size()), std::optional(QList<TextPartSpan>{spans[0]}));
            else
                QVERIFY2(!decodeTextParts(kept.left(cut), msg.size()), qPrintable(QString::number(cut)));
        QList<TextPartSpan> reversed{spans[1], spans[0]};
        QVERIFY(encodeTextParts(reversed).isEmpty());  // out of order: not kept
        QVERIFY(!decodeTextParts(kept.left(3) + encodeTextParts({spans[1]}).mid(3) + encodeTextParts({spans[0]}).mid(3),
                                 msg.size()));
        TextPartSpan backwards = spans[0];
        std::swap(backwards.start, backwards.end);
        QVERIFY(encodeTextParts({backwards}).isEmpty());
        TextPartSpan longName = spans[0];
        longName.encoding = QString(256, u'x');
        QVERIFY(encodeTextParts({longName}).isEmpty());  // over the format's limit: not kept
        longName.encoding = QString(255, u'x');
        QCOMPARE(decodeTextParts(encodeTextParts({longName}), msg.size()),
                 std::optional(QList<TextPartSpan>{longName}));
    }

    void sameAsReference() {
        Gen g(20261204);
        int hits = 0, total = 0;
        for (int m = 0; m < 3000; ++m) {
            QList<QString> texts;
            const QByteArray msg = g.message(&texts);
            const mail::MimePart root = mail::parseMime(msg);
            BodyText shared(msg, root);
            // The same text from the spans as the index keeps them (no parse on that path).
            const QByteArray kept = encodeTextParts(textPartSpans(root));
            const auto spans = decodeTextParts(kept, msg.size());
            QVERIFY(!kept.isEmpty() && spans);
            QCOMPARE(*spans, textPartSpans(root));
            BodyText fromSpans;
            for (const TextPartSpan& span : *spans) fromSpans.addPart(msg.mid(span.start, span.end - span.start), span);
            for (const QByteArray& needle : g.needles(texts)) {
                const bool want = referenceContains(msg, needle);
                const bool got = shared.contains(BodyNeedle(needle));
                if (want != got || newContains(msg, needle) != want || fromSpans.contains(BodyNeedle(needle)) != want)
                    QFAIL(qPrintable(QStringLiteral("message %1, needle %2: reference %3\n%4")
                                         .arg(m)
                                         .arg(QString::fromLatin1(needle.toHex()))
                                         .arg(want)
                                         .arg(QString::fromLatin1(msg.toPercentEncoding(" \r\n:;=/\"-<>@.")))));
                hits += want;
                ++total;
            }
        }
        qInfo("%d of %d searches matched", hits, total);
        QVERIFY(hits > total / 5);  // the needles are not all misses
    }
};

QTEST_GUILESS_MAIN(TstImapBodySearch)
#include "tst_imap_body_search.moc"
