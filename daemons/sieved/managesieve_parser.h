// managesieve_parser.h — framing and tokenising of ManageSieve client input
// (RFC 5804 4). No socket, no state beyond the command being read.
//
// Wire grammar accepted (RFC 5804 4, the client-to-server part):
//   command     = verb *(SP argument) CRLF        verb: 1*ALPHA, case-insensitive
//   response    = string CRLF                     (SASL continuation, Mode::SaslResponse)
//   argument    = string / number
//   string      = quoted / literal
//   quoted      = DQUOTE *(SAFE-CHAR / "\" ( DQUOTE / "\" )) DQUOTE
//                 SAFE-CHAR: any octet but NUL, CR, LF, DQUOTE and "\"
//   literal     = "{" number [ "+" ] "}" CRLF *OCTET   (the number of octets)
//   number      = 1*DIGIT, at most 4294967295 (RFC 5804 4: 32-bit)
// A bare LF is accepted as a line end (the CR is optional). ManageSieve servers
// send no continuation request for literals (RFC 5804 4: the client sends the
// octets at once), so {n} and {n+} are read the same way.
//
// Interface: Parser(limits). feed(data, size) reads at most one command and
// returns what it found and how many bytes it used (`used`): NeedMore (all
// bytes used, the command is incomplete), Command (`command` holds it),
// Error (a syntax error; the whole command — its lines and literals — was
// skipped, so the next command starts cleanly; answer NO and go on), Fatal
// (a line or literal over its limit: the stream cannot be resynchronised
// cheaply; answer BYE and close). The caller feeds the unused rest again.
// setLimits() takes effect for the next literal (after login the limits grow).
//
// Security: the input is from anyone on the Internet (before login) or from a
// user. Nothing is buffered beyond the limits; literal lengths are parsed with
// an overflow check and compared as `n > max` before any allocation; the bytes
// of a literal are collected as they come (no up-front reserve of n).
// Limits (Limits; the session takes them from the settings):
//   maxLine      octets of one line of a command, CRLF included (literals
//                excluded); over it: Fatal "line too long"
//   maxLiteral   octets of all literals of one command together; over it:
//                Fatal "literal too large"
//   maxArguments arguments of one command; over it: Error
//   kMaxQuoted   1024 octets in a quoted string (RFC 5804 4: longer strings
//                MUST be sent as literals); over it: Error
// Standards: RFC 5804 4 (formal syntax).
#pragma once

#include <QByteArray>
#include <QList>
#include <QString>

namespace postern::managesieve {

struct Argument {
    enum class Kind { String, Number };
    Kind kind = Kind::String;
    QByteArray value;  // String: the octets (unquoted); Number: the digits
    quint64 number = 0;
    bool literal = false;  // sent as a literal
};

struct Command {
    QByteArray verb;  // upper case; empty for a SASL response
    QList<Argument> arguments;
};

class Parser {
public:
    static constexpr int kMaxQuoted = 1024;
    static constexpr quint64 kMaxNumber = 4294967295ULL;

    struct Limits {
        int maxLine = 8192;
        qint64 maxLiteral = 4096;
        int maxArguments = 8;
    };
    enum class Status { NeedMore, Command, Error, Fatal };
    enum class Mode { Command, SaslResponse };
    struct Result {
        Status status = Status::NeedMore;
        qsizetype used = 0;
        Command command;  // Status::Command
        QString error;    // Error and Fatal
    };

    Parser() = default;
    explicit Parser(const Limits& limits) : m_limits(limits) {}
    void setLimits(const Limits& limits) { m_limits = limits; }
    const Limits& limits() const { return m_limits; }
    // What the next command is: a verb with arguments, or one string (SASL).
    void setMode(Mode mode) { m_mode = mode; }
    Result feed(const char* data, qsizetype size);
    void reset();

private:
    // Tokenises one line (without its line end) into m_command; true when the line
    // ends with a literal header (then m_literalLeft is set).
    bool tokenizeLine(const QByteArray& line);
    Result finish(qsizetype used);

    Limits m_limits;
    Mode m_mode = Mode::Command;
    QByteArray m_line;         // the line being read
    bool m_inLiteral = false;  // reading the octets of a literal
    qint64 m_literalLeft = 0;
    qint64 m_literalTotal = 0;  // octets of the literals of this command so far
    bool m_firstLine = true;    // the next line starts the command (verb)
    Command m_command;
    QString m_error;  // a syntax error found: skip to the command's end
};

}  // namespace postern::managesieve
