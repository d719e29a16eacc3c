// tst_managesieve_parser.cpp — the ManageSieve framing and tokeniser (RFC 5804 4)
// without sockets. Every row is fed one byte at a time and in one piece; the
// results (commands, errors, fatal errors) must be the same either way.
// Limits at their boundaries: line (maxLine passes, +1 fatal), literal
// (maxLiteral passes, +1 fatal; all literals of a command together too), quoted string (1024 passes, 1025 error),
// number (4294967295 passes, 4294967296 error), arguments (max passes, +1 error).
#include "sieved/managesieve_parser.h"

#include <QtTest>

using namespace postern::managesieve;

namespace {

// One line per result: "CMD VERB [s:value|n:123|l:value]..." / "ERR text" / "FATAL text".
QStringList run(const QByteArray& input, int chunk, const Parser::Limits& limits,
                Parser::Mode mode = Parser::Mode::Command) {
    Parser p(limits);
    p.setMode(mode);
    QStringList out;
    QByteArray buffer;
    for (qsizetype i = 0; i < input.size(); i += chunk) {
        buffer += input.mid(i, chunk);
        while (!buffer.isEmpty()) {
            const Parser::Result r = p.feed(buffer.constData(), buffer.size());
            buffer.remove(0, r.used);
            if (r.status == Parser::Status::NeedMore) {
                if (!buffer.isEmpty()) out << QStringLiteral("BUG: bytes left with NeedMore");
                break;
            }
            if (r.status == Parser::Status::Error) out << QStringLiteral("ERR ") + r.error;
            if (r.status == Parser::Status::Fatal) {
                out << QStringLiteral("FATAL ") + r.error;
                return out;
            }
            if (r.status == Parser::Status::Command) {
                QString line = QStringLiteral("CMD ") + QString::fromUtf8(r.command.verb);
                for (const Argument& a : r.command.arguments) {
                    if (a.kind == Argument::Kind::Number)
                        line += QStringLiteral(" n:%1").arg(a.number);
                    else
                        line +=
                            (a.literal ? QStringLiteral(" l:") : QStringLiteral(" s:")) + QString::fromUtf8(a.value);
                }
                out << line;
            }
        }
    }
    return out;
}

Parser::Limits small() {
    Parser::Limits l;
    l.maxLine = 64;
    l.maxLiteral = 16;
    l.maxArguments = 3;
    return l;
}

}  // namespace

class TstManageSieveParser : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void parse_data() {
        QTest::addColumn<QByteArray>("input");
        QTest::addColumn<QStringList>("expected");
        QTest::newRow("capability") << QByteArray("CAPABILITY\r\n") << QStringList{"CMD CAPABILITY"};
        QTest::newRow("lower case verb, bare LF") << QByteArray("logout\n") << QStringList{"CMD LOGOUT"};
        QTest::newRow("quoted") << QByteArray("GETSCRIPT \"my script\"\r\n")
                                << QStringList{"CMD GETSCRIPT s:my script"};
        QTest::newRow("escapes") << QByteArray("NOOP \"a\\\"b\\\\c\"\r\n") << QStringList{"CMD NOOP s:a\"b\\c"};
        QTest::newRow("empty string") << QByteArray("SETACTIVE \"\"\r\n") << QStringList{"CMD SETACTIVE s:"};
        QTest::newRow("number") << QByteArray("HAVESPACE \"x\" 1234\r\n") << QStringList{"CMD HAVESPACE s:x n:1234"};
        QTest::newRow("literal+") << QByteArray("PUTSCRIPT \"a\" {5+}\r\nke\nep\r\n")
                                  << QStringList{"CMD PUTSCRIPT s:a l:ke\nep"};
        QTest::newRow("literal sync") << QByteArray("CHECKSCRIPT {4}\r\nkeep\r\n")
                                      << QStringList{"CMD CHECKSCRIPT l:keep"};
        QTest::newRow("literal then more")
            << QByteArray("RENAMESCRIPT {1+}\r\na \"b\"\r\n") << QStringList{"CMD RENAMESCRIPT l:a s:b"};
        QTest::newRow("empty literal") << QByteArray("CHECKSCRIPT {0+}\r\n\r\n") << QStringList{"CMD CHECKSCRIPT l:"};
        QTest::newRow("two commands") << QByteArray("NOOP\r\nLOGOUT\r\n") << QStringList{"CMD NOOP", "CMD LOGOUT"};
        QTest::newRow("number max") << QByteArray("HAVESPACE \"x\" 4294967295\r\n")
                                    << QStringList{"CMD HAVESPACE s:x n:4294967295"};
        QTest::newRow("number max+1") << QByteArray("HAVESPACE \"x\" 4294967296\r\nNOOP\r\n")
                                      << QStringList{"ERR Number too large", "CMD NOOP"};
        QTest::newRow("empty line") << QByteArray("\r\nNOOP\r\n") << QStringList{"ERR Empty command", "CMD NOOP"};
        QTest::newRow("no verb") << QByteArray("\"x\"\r\n") << QStringList{"ERR Expected a command name"};
        QTest::newRow("two spaces") << QByteArray("NOOP  \"x\"\r\n")
                                    << QStringList{"ERR Expected a string or a number"};
        QTest::newRow("trailing space") << QByteArray("NOOP \r\n")
                                        << QStringList{"ERR Expected an argument after the space"};
        QTest::newRow("atom argument") << QByteArray("GETSCRIPT x\r\n")
                                       << QStringList{"ERR Expected a string or a number"};
        QTest::newRow("unterminated") << QByteArray("NOOP \"abc\r\n") << QStringList{"ERR Unterminated quoted string"};
        QTest::newRow("bad escape") << QByteArray("NOOP \"a\\n\"\r\n")
                                    << QStringList{"ERR Invalid escape in a quoted string"};
        QTest::newRow("NUL in quoted") << QByteArray("NOOP \"a\0b\"\r\n", 12)
                                       << QStringList{"ERR Invalid character in a quoted string"};
        QTest::newRow("no space before arg")
            << QByteArray("NOOP\"x\"\r\n") << QStringList{"ERR Expected a space between arguments"};
        QTest::newRow("literal not at end") << QByteArray("NOOP {3} \"x\"\r\n") << QStringList{"ERR Invalid literal"};
        // A bad command's literal is skipped whole: its bytes never become commands.
        QTest::newRow("error skips literal") << QByteArray("PUTSCRIPT x {6+}\r\nNOOP\r\n\r\nLOGOUT\r\n")
                                             << QStringList{"ERR Expected a string or a number", "CMD LOGOUT"};
        QTest::newRow("arguments max") << QByteArray("NOOP 1 2 3\r\n") << QStringList{"CMD NOOP n:1 n:2 n:3"};
        QTest::newRow("arguments max+1") << QByteArray("NOOP 1 2 3 4\r\nNOOP\r\n")
                                         << QStringList{"ERR Too many arguments", "CMD NOOP"};
        // maxLine 64 octets incl. CRLF.
        QTest::newRow("line max") << QByteArray("NOOP \"" + QByteArray(55, 'a') + "\"\r\n")
                                  << QStringList{"CMD NOOP s:" + QString(55, 'a')};
        QTest::newRow("line max+1") << QByteArray("NOOP \"" + QByteArray(56, 'a') + "\"\r\n")
                                    << QStringList{"FATAL Line too long"};
        QTest::newRow("line max+1 without LF")
            << QByteArray("NOOP " + QByteArray(64, 'a')) << QStringList{"FATAL Line too long"};
        QTest::newRow("literal max") << QByteArray("CHECKSCRIPT {16+}\r\n" + QByteArray(16, 'k') + "\r\n")
                                     << QStringList{"CMD CHECKSCRIPT l:" + QString(16, 'k')};
        QTest::newRow("literal max+1") << QByteArray("CHECKSCRIPT {17+}\r\n" + QByteArray(17, 'k') + "\r\n")
                                       << QStringList{"FATAL Literal too large"};
        QTest::newRow("literals of a command max") << QByteArray("RENAMESCRIPT {10+}\r\n0123456789 {6+}\r\nabcdef\r\n")
                                                   << QStringList{"CMD RENAMESCRIPT l:0123456789 l:abcdef"};
        QTest::newRow("literals of a command max+1")
            << QByteArray("RENAMESCRIPT {10+}\r\n0123456789 {7+}\r\n") << QStringList{"FATAL Literal too large"};
        QTest::newRow("literal huge") << QByteArray("CHECKSCRIPT {99999999999999999999}\r\n")
                                      << QStringList{"FATAL Literal too large"};
        QTest::newRow("skipped literal over limit")
            << QByteArray("BAD! {17}\r\n") << QStringList{"FATAL Literal too large"};
    }
    void parse() {
        QFETCH(QByteArray, input);
        QFETCH(QStringList, expected);
        QCOMPARE(run(input, 1, small()), expected);
        QCOMPARE(run(input, int(input.size()), small()), expected);
        QCOMPARE(run(input, 7, small()), expected);
    }

    void quotedLength() {
        Parser::Limits l;
        l.maxLine = 4096;
        const QByteArray ok = "NOOP \"" + QByteArray(Parser::kMaxQuoted, 'q') + "\"\r\n";
        QCOMPARE(run(ok, 1, l), QStringList{"CMD NOOP s:" + QString(Parser::kMaxQuoted, u'q')});
        const QByteArray over = "NOOP \"" + QByteArray(Parser::kMaxQuoted + 1, 'q') + "\"\r\n";
        QCOMPARE(run(over, 1, l), QStringList{"ERR Quoted string too long (use a literal)"});
    }

    void saslResponse_data() {
        QTest::addColumn<QByteArray>("input");
        QTest::addColumn<QStringList>("expected");
        QTest::newRow("quoted") << QByteArray("\"AGEAYg==\"\r\n") << QStringList{"CMD  s:AGEAYg=="};
        QTest::newRow("literal") << QByteArray("{4+}\r\nAGE=\r\n") << QStringList{"CMD  l:AGE="};
        QTest::newRow("cancel") << QByteArray("\"*\"\r\n") << QStringList{"CMD  s:*"};
        QTest::newRow("atom") << QByteArray("AGE=\r\n") << QStringList{"ERR Expected a string or a number"};
    }
    void saslResponse() {
        QFETCH(QByteArray, input);
        QFETCH(QStringList, expected);
        QCOMPARE(run(input, 1, small(), Parser::Mode::SaslResponse), expected);
        QCOMPARE(run(input, int(input.size()), small(), Parser::Mode::SaslResponse), expected);
    }
};

QTEST_GUILESS_MAIN(TstManageSieveParser)
#include "tst_managesieve_parser.moc"
