// tst_imap_parser.cpp — IMAP command framing (CommandReader) and argument
// parsing (ArgParser) without sockets, every input fed in one piece, one byte
// at a time and in odd splits (2, 3, 7 octets).
// Covers: a literal only where a line ENDS with its announcement (the pre-login
// crash line "a NOOP {9223372036854775807}x" and every mid-line variant are BAD,
// never a read outside the command); literal sizes of any length (overflow);
// literal8; every limit at its boundary (line, literal after and before login,
// command after and before login, the process input budget), limit passes and
// limit + 1 is refused before any "+"; the budget is given back; parseNumber().
#include "imapd/imap_parser.h"

#include <QtTest>
#include <vector>

using namespace postern;
using namespace postern::imap;
using Event = CommandReader::Event;
using Refusal = CommandReader::Refusal;

namespace {

struct Outcome {
    QList<Event> events;  // every event other than None, in order
    std::vector<RawCommand> commands;
    QList<Refusal> refusals;
    qsizetype unused = 0;  // bytes the reader never took
};

// Feeds `input` in pieces of `chunk` octets as a connection would (unused bytes are
// offered again with the next piece); takes each command, resets after refusals.
Outcome run(CommandReader& reader, const QByteArray& input, int chunk) {
    Outcome o;
    QByteArray pending;
    for (qsizetype i = 0; i < input.size(); i += chunk) {
        pending += input.mid(i, chunk);
        while (!pending.isEmpty()) {
            Event ev = Event::None;
            const qsizetype used = reader.feed(pending.constData(), pending.size(), &ev);
            pending.remove(0, used);
            if (ev == Event::None) {
                if (used == 0) break;
                continue;
            }
            o.events << ev;
            if (ev == Event::Command) {
                o.commands.push_back(reader.takeCommand());
            } else if (ev == Event::LiteralRefused || ev == Event::NonSyncLiteralRefused) {
                o.refusals << reader.refusal();
                reader.reset();
            } else if (ev == Event::LineTooLong) {
                reader.reset();
            }
        }
    }
    o.unused = pending.size();
    return o;
}

QList<int> chunkings() {
    return {1, 2, 3, 7, 1 << 20};
}

// Arguments of a framed command, or the parser's error.
std::optional<QList<Token>> args(const RawCommand& c, QString* error = nullptr) {
    ArgParser p(c);
    QByteArray tag, name;
    if (!p.header(&tag, &name)) {
        if (error) *error = QStringLiteral("no header");
        return std::nullopt;
    }
    auto rest = p.rest();
    if (!rest && error) *error = p.error();
    return rest;
}

}  // namespace

Q_DECLARE_METATYPE(Event)
Q_DECLARE_METATYPE(Refusal)

class TstImapParser : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // Defect 1 of issue 16: a literal announced in the middle of a line was parsed by
    // ArgParser with "dataStart + n" overflowing; the read position went negative.
    void literalOnlyAtEndOfLine_data() {
        QTest::addColumn<QByteArray>("line");
        QTest::newRow("the crash line") << QByteArray("a NOOP {9223372036854775807}x\r\n");
        QTest::newRow("small mid-line literal") << QByteArray("a LOGIN {5}hello world\r\n");
        QTest::newRow("mid-line literal, space after") << QByteArray("a LOGIN {3} abc\r\n");
        QTest::newRow("literal8 mid-line") << QByteArray("a NOOP ~{9223372036854775807}x\r\n");
        QTest::newRow("non-sync mid-line") << QByteArray("a NOOP {4+}abcd\r\n");
        QTest::newRow("in a list") << QByteArray("a FETCH 1 ({5}x BODY)\r\n");
        QTest::newRow("beyond 64 bits") << QByteArray("a NOOP {18446744073709551616}y\r\n");
        QTest::newRow("max qint64 minus one") << QByteArray("a NOOP {9223372036854775806}yy\r\n");
        QTest::newRow("negative") << QByteArray("a NOOP {-1}x\r\n");
        QTest::newRow("negative at the end") << QByteArray("a NOOP {-1}\r\n");
        QTest::newRow("not a number at the end") << QByteArray("a NOOP {abc}\r\n");
        QTest::newRow("plus only") << QByteArray("a NOOP {+}\r\n");
        QTest::newRow("empty braces") << QByteArray("a NOOP {}\r\n");
        QTest::newRow("space inside") << QByteArray("a NOOP { 5}\r\n");
        QTest::newRow("two announcements, first mid-line") << QByteArray("a LOGIN {3}x {3}y\r\n");
    }
    void literalOnlyAtEndOfLine() {
        QFETCH(QByteArray, line);
        for (int chunk : chunkings()) {
            CommandReader reader({});
            Outcome o = run(reader, line, chunk);
            QCOMPARE(o.events, QList<Event>{Event::Command});  // no "+", nothing framed as a literal
            QVERIFY(o.commands.front().literals.isEmpty());
            QString error;
            QVERIFY(!args(o.commands.front(), &error));
            QVERIFY2(!error.isEmpty(), qPrintable(error));
        }
    }

    void literalAtEndOfLine() {
        const QByteArray input = "a LOGIN {5}\r\nalice {3+}\r\npwd\r\n";
        for (int chunk : chunkings()) {
            CommandReader reader({});
            Outcome o = run(reader, input, chunk);
            QCOMPARE(o.events, (QList<Event>{Event::Continue, Event::Command}));
            QCOMPARE(o.commands.front().literals.size(), 2);
            auto a = args(o.commands.front());
            QVERIFY(a);
            QCOMPARE(a->size(), 2);
            QCOMPARE(a->at(0).text, QByteArray("alice"));
            QVERIFY(a->at(0).literal);
            QCOMPARE(a->at(1).text, QByteArray("pwd"));
            QVERIFY(a->at(1).literal);
        }
    }

    // The data of a literal is data: braces, quotes, CRLF and NUL inside it are not syntax.
    void literalDataIsOpaque() {
        const QByteArray data("x {9223372036854775807}\r\n\"(\0~{1}", 30);
        const QByteArray input = "a APPEND INBOX ~{" + QByteArray::number(data.size()) + "}\r\n" + data + "\r\n";
        for (int chunk : chunkings()) {
            CommandReader reader({});
            reader.setAuthenticated(true);
            Outcome o = run(reader, input, chunk);
            QCOMPARE(o.events, (QList<Event>{Event::Continue, Event::Command}));
            auto a = args(o.commands.front());
            QVERIFY(a);
            QCOMPARE(a->size(), 2);
            QCOMPARE(a->at(1).text, data);
            QVERIFY(a->at(1).literal);
            QVERIFY(a->at(1).binary);
        }
    }

    // A literal whose last octet is CR, followed by the command's final bare LF: the CR is data.
    void finalLineEndingIsNotLiteralData() {
        for (int chunk : chunkings()) {
            CommandReader reader({});
            Outcome o = run(reader, "a LOGIN u {1}\r\n\r\n", chunk);
            QCOMPARE(o.events, (QList<Event>{Event::Continue, Event::Command}));
            auto a = args(o.commands.front());
            QVERIFY(a);
            QCOMPARE(a->at(1).text, QByteArray("\r"));
        }
    }

    void argumentsNeedSpaces() {
        for (const QByteArray& line : {QByteArray("a LOGIN \"a\"\"b\"\r\n"), QByteArray("a LOGIN u {1}\r\nxy\r\n")}) {
            CommandReader reader({});
            Outcome o = run(reader, line, 1);
            QCOMPARE(o.events.last(), Event::Command);
            QString error;
            QVERIFY(!args(o.commands.back(), &error));
            QCOMPARE(error, QStringLiteral("missing space between arguments"));
        }
    }

    // Literal sizes with any count of digits: leading zeros are fine, values past
    // number64 are refused (not wrapped), before any "+".
    void literalSizes_data() {
        QTest::addColumn<QByteArray>("announce");
        QTest::addColumn<Event>("event");
        QTest::addColumn<Refusal>("refusal");
        QTest::newRow("leading zeros") << QByteArray("{00000000000000000000000000005}") << Event::Continue
                                       << Refusal::None;
        QTest::newRow("19 digits") << QByteArray("{9223372036854775807}") << Event::LiteralRefused << Refusal::TooBig;
        QTest::newRow("number64 + 1") << QByteArray("{9223372036854775808}") << Event::LiteralRefused
                                      << Refusal::TooBig;
        QTest::newRow("2^64") << QByteArray("{18446744073709551616}") << Event::LiteralRefused << Refusal::TooBig;
        QTest::newRow("40 digits") << QByteArray("{9999999999999999999999999999999999999999}") << Event::LiteralRefused
                                   << Refusal::TooBig;
        QTest::newRow("40 digits non-sync") << QByteArray("{9999999999999999999999999999999999999999+}")
                                            << Event::NonSyncLiteralRefused << Refusal::TooBig;
        QTest::newRow("literal8 huge") << QByteArray("~{99999999999999999999}") << Event::LiteralRefused
                                       << Refusal::TooBig;
        QTest::newRow("dash is synchronising") << QByteArray("{5-}") << Event::Continue << Refusal::None;
    }
    void literalSizes() {
        QFETCH(QByteArray, announce);
        QFETCH(Event, event);
        QFETCH(Refusal, refusal);
        for (int chunk : chunkings()) {
            CommandReader reader({});
            reader.setAuthenticated(true);
            Outcome o = run(reader, "a APPEND INBOX " + announce + "\r\n", chunk);
            QCOMPARE(o.events, QList<Event>{event});
            if (refusal != Refusal::None) QCOMPARE(o.refusals, QList<Refusal>{refusal});
        }
    }

    // Limits, each at its boundary: the limit is taken, limit + 1 is refused before "+".
    void literalLimits_data() {
        QTest::addColumn<bool>("authenticated");
        QTest::addColumn<qint64>("size");
        QTest::addColumn<bool>("nonSync");
        QTest::addColumn<Event>("event");
        QTest::addColumn<Refusal>("refusal");
        const qint64 before = ReaderLimits{}.maxLiteralBeforeAuth;
        QCOMPARE(before, qint64(8192));
        QTest::newRow("before login: 8192") << false << before << false << Event::Continue << Refusal::None;
        QTest::newRow("before login: 8193")
            << false << before + 1 << false << Event::LiteralRefused << Refusal::TooBigBeforeAuth;
        QTest::newRow("before login: 20 MiB")
            << false << qint64(20 << 20) << false << Event::LiteralRefused << Refusal::TooBigBeforeAuth;
        QTest::newRow("before login: 8192 non-sync") << false << before << true << Event::Command << Refusal::None;
        QTest::newRow("before login: 8193 non-sync")
            << false << before + 1 << true << Event::NonSyncLiteralRefused << Refusal::TooBigBeforeAuth;
        QTest::newRow("after login: 100000") << true << qint64(100000) << false << Event::Continue << Refusal::None;
        QTest::newRow("after login: 100001")
            << true << qint64(100001) << false << Event::LiteralRefused << Refusal::TooBig;
        QTest::newRow("after login: 100001 non-sync")
            << true << qint64(100001) << true << Event::NonSyncLiteralRefused << Refusal::TooBig;
    }
    void literalLimits() {
        QFETCH(bool, authenticated);
        QFETCH(qint64, size);
        QFETCH(bool, nonSync);
        QFETCH(Event, event);
        QFETCH(Refusal, refusal);
        ReaderLimits limits;
        limits.maxLiteral = 100000;
        limits.maxCommand = 200000;
        const QByteArray line = "a LOGIN {" + QByteArray::number(size) + (nonSync ? "+" : "") + "}\r\n";
        // Announced and, when taken, sent: the user name as a literal and a password atom.
        const QByteArray input = line + (event == Event::LiteralRefused || event == Event::NonSyncLiteralRefused
                                             ? QByteArray()
                                             : QByteArray(size, 'u') + " pw\r\n");
        for (int chunk : {1, 7, 1 << 20}) {
            CommandReader reader(limits);
            reader.setAuthenticated(authenticated);
            Outcome o = run(reader, input, chunk);
            if (event == Event::Continue)
                QCOMPARE(o.events, (QList<Event>{Event::Continue, Event::Command}));
            else
                QCOMPARE(o.events, QList<Event>{event});
            if (refusal != Refusal::None) {
                QCOMPARE(o.refusals, QList<Refusal>{refusal});
                QCOMPARE(reader.refusalLimit(), authenticated ? limits.maxLiteral : limits.maxLiteralBeforeAuth);
            } else {
                auto a = args(o.commands.front());
                QVERIFY(a);
                QCOMPARE(qint64(a->at(0).text.size()), size);
            }
        }
    }

    // The whole command (lines, literals, line endings) before login: limit passes, limit + 1 refused.
    void commandLimitBeforeLogin() {
        ReaderLimits limits;
        limits.maxLiteralBeforeAuth = 1 << 20;
        limits.maxCommandBeforeAuth = 4096;
        for (const qint64 extra : {0, 1}) {
            const QByteArray head = "a LOGIN u {";
            // line = head + digits + "}\r\n"; total = line + n + "\r\n" (4 digits either way)
            const qint64 n = limits.maxCommandBeforeAuth - (head.size() + 4 + 3) - 2 + extra;
            const QByteArray line = head + QByteArray::number(n) + "}\r\n";
            QCOMPARE(QByteArray::number(n).size(), 4);
            for (int chunk : {1, 1 << 20}) {
                CommandReader reader(limits);
                Outcome o = run(reader, line + (extra ? QByteArray() : QByteArray(n, 'p') + "\r\n"), chunk);
                if (extra) {
                    QCOMPARE(o.events, QList<Event>{Event::LiteralRefused});
                    QCOMPARE(o.refusals, QList<Refusal>{Refusal::CommandTooBig});
                } else {
                    QCOMPARE(o.events, (QList<Event>{Event::Continue, Event::Command}));
                    QCOMPARE(qint64(o.commands.front().bytes.size()), limits.maxCommandBeforeAuth);
                }
            }
        }
        // A line after the literal counts too: one octet too many and the line is refused.
        CommandReader reader(limits);
        const QByteArray first = "a LOGIN {10}\r\n";
        const QByteArray tail = ' ' + QByteArray(limits.maxCommandBeforeAuth - first.size() - 10 - 3 + 1, 'x') + "\r\n";
        Outcome o = run(reader, first + QByteArray(10, 'u') + tail, 1);
        QCOMPARE(o.events, (QList<Event>{Event::Continue, Event::LineTooLong}));
    }

    void lineLimit() {
        ReaderLimits limits;
        limits.maxLine = 1024;
        for (int chunk : chunkings()) {
            for (const bool authenticated : {false, true}) {
                CommandReader reader(limits);
                reader.setAuthenticated(authenticated);
                const QByteArray exact = "a NOOP " + QByteArray(1024 - 7, 'x');
                QCOMPARE(exact.size(), 1024);
                Outcome o = run(reader, exact + "\r\n" + exact + "x\r\nb NOOP\r\n", chunk);
                QCOMPARE(o.events, (QList<Event>{Event::Command, Event::LineTooLong, Event::Command}));
                QCOMPARE(o.commands.back().bytes, QByteArray("b NOOP\r\n"));
                // The tag of a too-long line is kept for the BAD answer.
                CommandReader r2(limits);
                r2.setAuthenticated(authenticated);
                Event ev;
                const QByteArray longLine = exact + "xyz";
                r2.feed(longLine.constData(), longLine.size(), &ev);
                QCOMPARE(r2.currentTag(), QByteArray("a"));
            }
        }
    }

    // The process-wide input budget: a literal is reserved before its "+"; one that does
    // not fit is refused (Busy); small ones always pass; everything is given back.
    void inputBudget() {
        InputBudget budget(100000);
        ReaderLimits limits;
        limits.maxLiteral = 1 << 20;
        limits.maxCommand = 2 << 20;
        const QByteArray head = "a APPEND INBOX {";
        for (const qint64 extra : {0, 1}) {
            // The line (counted as it arrives) plus the literal: exactly the budget, or one more.
            const qint64 lineSize = head.size() + 5 + 3;
            const qint64 n = 100000 - lineSize + extra;
            QCOMPARE(QByteArray::number(n).size(), 5);
            CommandReader reader(limits, &budget);
            reader.setAuthenticated(true);
            Outcome o = run(reader, head + QByteArray::number(n) + "}\r\n", 1 << 20);
            if (extra) {
                QCOMPARE(o.events, QList<Event>{Event::LiteralRefused});
                QCOMPARE(o.refusals, QList<Refusal>{Refusal::Busy});
                QCOMPARE(budget.used(), qint64(0));  // the refused command's line was given back
            } else {
                QCOMPARE(o.events, QList<Event>{Event::Continue});
                QCOMPARE(budget.used(), qint64(100000));
                QCOMPARE(reader.heldBytes(), qint64(100000));
                // A small literal still passes on another connection, counted past the limit.
                CommandReader small(limits, &budget);
                small.setAuthenticated(true);
                Outcome s = run(small, "b LOGIN {8192}\r\n", 1 << 20);
                QCOMPARE(s.events, QList<Event>{Event::Continue});
                QVERIFY(budget.used() > 100000);
                small.reset();
                QCOMPARE(budget.used(), qint64(100000));
                // A second large one does not.
                CommandReader other(limits, &budget);
                other.setAuthenticated(true);
                Outcome b = run(other, "c APPEND INBOX {8193}\r\n", 1 << 20);
                QCOMPARE(b.refusals, QList<Refusal>{Refusal::Busy});
                // The command keeps its share while it is handled, then gives it back.
                Outcome rest = run(reader, QByteArray(n, 'm') + "\r\n", 4096);
                QCOMPARE(rest.events, QList<Event>{Event::Command});
                QCOMPARE(budget.used(), qint64(100000 + 2));
                QCOMPARE(rest.commands.front().lease.held(), qint64(100000 + 2));
                rest.commands.clear();
                QCOMPARE(budget.used(), qint64(0));
                Outcome again = run(other, "c APPEND INBOX {8193}\r\n", 1 << 20);
                QCOMPARE(again.events, QList<Event>{Event::Continue});
            }
        }
    }

    void readerLeaseFollowsResets() {
        InputBudget budget;
        {
            CommandReader reader({}, &budget);
            Outcome o = run(reader, "a LOGIN {100}\r\n", 1);
            QCOMPARE(o.events, QList<Event>{Event::Continue});
            QCOMPARE(budget.used(), qint64(15 + 100));
            reader.reset();
            QCOMPARE(budget.used(), qint64(0));
            run(reader, "a LOGIN {100}\r\npartial", 1);
            QCOMPARE(budget.used(), qint64(15 + 100));
        }
        QCOMPARE(budget.used(), qint64(0));  // a reader that dies gives everything back
    }

    void parseNumber_data() {
        QTest::addColumn<QByteArray>("text");
        QTest::addColumn<quint64>("max");
        QTest::addColumn<bool>("valid");
        QTest::addColumn<quint64>("value");
        QTest::newRow("empty") << QByteArray() << kMaxNumber << false << quint64(0);
        QTest::newRow("zero") << QByteArray("0") << kMaxNumber << true << quint64(0);
        QTest::newRow("leading zeros") << QByteArray("000000000000000000000000042") << kMaxNumber << true
                                       << quint64(42);
        QTest::newRow("2^32-1") << QByteArray("4294967295") << kMaxNumber << true << quint64(4294967295u);
        QTest::newRow("2^32") << QByteArray("4294967296") << kMaxNumber << false << quint64(0);
        QTest::newRow("2^63-1") << QByteArray("9223372036854775807") << kMaxNumber64 << true << kMaxNumber64;
        QTest::newRow("2^63") << QByteArray("9223372036854775808") << kMaxNumber64 << false << quint64(0);
        QTest::newRow("2^64") << QByteArray("18446744073709551616") << kMaxNumber64 << false << quint64(0);
        QTest::newRow("30 nines") << QByteArray(30, '9') << kMaxNumber64 << false << quint64(0);
        QTest::newRow("plus") << QByteArray("+1") << kMaxNumber << false << quint64(0);
        QTest::newRow("minus") << QByteArray("-1") << kMaxNumber << false << quint64(0);
        QTest::newRow("space") << QByteArray(" 1") << kMaxNumber << false << quint64(0);
        QTest::newRow("trailing space") << QByteArray("1 ") << kMaxNumber << false << quint64(0);
        QTest::newRow("hex") << QByteArray("0x10") << kMaxNumber << false << quint64(0);
        QTest::newRow("small max") << QByteArray("32") << quint64(31) << false << quint64(0);
        QTest::newRow("max zero") << QByteArray("5") << quint64(0) << false << quint64(0);
    }
    void parseNumber() {
        QFETCH(QByteArray, text);
        QFETCH(quint64, max);
        QFETCH(bool, valid);
        QFETCH(quint64, value);
        const auto n = imap::parseNumber(text, max);
        QCOMPARE(bool(n), valid);
        if (valid) QCOMPARE(*n, value);
    }

    // Whatever the split, the reader sees the same commands.
    void splitsAgree() {
        const QByteArray session =
            "a1 LOGIN {5}\r\nalice {3+}\r\npwd\r\n"
            "a2 SELECT INBOX\r\n"
            "a3 APPEND INBOX (\\Seen) {12}\r\nSubject: x\r\n\r\n"
            "a4 NOOP {99999999999999999999}x\r\n"
            "a5 SEARCH CHARSET UTF-8 SUBJECT {3+}\r\n\xc3\xa4x\r\n"
            "a6 LOGOUT\r\n";
        QList<QByteArray> reference;
        for (int chunk : chunkings()) {
            CommandReader reader({});
            reader.setAuthenticated(true);
            Outcome o = run(reader, session, chunk);
            QList<QByteArray> seen;
            for (const RawCommand& c : o.commands) seen << c.bytes;
            if (reference.isEmpty()) reference = seen;
            QCOMPARE(seen, reference);
            QCOMPARE(seen.size(), 6);
            QCOMPARE(o.unused, 0);
        }
    }
};

QTEST_GUILESS_MAIN(TstImapParser)
#include "tst_imap_parser.moc"
