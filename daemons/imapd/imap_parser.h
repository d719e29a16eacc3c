// imap_parser.h — IMAP command framing and argument parsing (no I/O).
//
// Wire grammar handled (RFC 9051 2.2, 4, 9; RFC 7888 LITERAL+/LITERAL-; RFC 3516 literal8):
//   command  = tag SP name *(SP arg) CRLF
//   arg      = atom / quoted / literal / "(" [arg *(SP arg)] ")" / NIL
//   literal  = ["~"] "{" number64 ["+"] "}" CRLF *OCTET   ("~": literal8)
//   atom     may carry a "[...]" section with spaces and parens, and a
//            "<partial>" suffix (BODY[HEADER.FIELDS (A B)]<0.100>); a "[" that is
//            never closed is an ordinary ATOM-CHAR ("foo[bar" is an atom)
//   NIL      a Nil token, which is also the astring "NIL" (Token::isString)
// Tolerated: "{n-}" is read as a synchronising literal (no RFC defines it).
//
// CommandReader finds where a command ends across lines and literals. A
// literal exists only where a line ENDS with a literal announcement: the
// reader frames it (the octets that follow are data, whatever they hold) and
// records where it lies (LiteralSpan: offset of the announcement, offset and
// length of the data). ArgParser accepts a literal only at a recorded span;
// "{" anywhere else is a syntax error (BAD). Nothing re-reads "{n}" text.
//   feed(bytes) -> Event: Command (complete), Continue (send "+ ..." for a
//   synchronising literal), LineTooLong, LiteralRefused (refused before any
//   continuation is sent, so a client announcing {4294967296} never gets to
//   send it), NonSyncLiteralRefused (the octets are already on the way: the
//   session must close). refusal() says why (too big, too big before login,
//   command too big, process budget exhausted).
// ArgParser turns a complete command into tokens with a nesting limit.
// parseNumber() is the one strict reader of client numbers (digits only, no
// sign or spaces, overflow-checked) for every numeric field of the protocol.
//
// Limits (ReaderLimits, all per connection, checked before bytes are kept):
//   maxLine               64 KiB  one line, literals excluded (imap.max_line_length)
//   maxLiteral            64 MiB  one literal after login (APPENDLIMIT; the daemon
//                                 sets it from smtp.max_message_size)
//   maxCommand            80 MiB  lines and literals of one command, after login
//   maxLiteralBeforeAuth   8 KiB  one literal before login: a user name or password
//   maxCommandBeforeAuth  32 KiB  lines and literals of one command before login
//   budgetFreeLiteral      8 KiB  literals up to this size are counted in the
//                                 process's InputBudget but never refused by it;
//                                 larger ones must fit (else Refusal::Busy)
// Security: literal sizes are attacker-chosen: parsed with overflow checks
// (any count of digits), compared as `n > limit - used`; a literal's memory is
// reserved before the "+" and counted in the process budget until the command
// has been dispatched.
// Standards: RFC 9051 (IMAP4rev2) 2.2.1, 4.3, 7.1 (TOOBIG); RFC 7888; RFC 3516;
// RFC 5530 (LIMIT).
#pragma once

#include "common/input_budget.h"

#include <QByteArray>
#include <QList>
#include <QString>
#include <optional>

namespace postern::imap {

struct ReaderLimits {
    qsizetype maxLine = 64 * 1024;
    qint64 maxLiteral = 64 << 20;
    qint64 maxCommand = 80 << 20;
    qint64 maxLiteralBeforeAuth = 8 * 1024;
    qint64 maxCommandBeforeAuth = 32 * 1024;
    qint64 budgetFreeLiteral = 8 * 1024;
};

// Where a literal framed by the CommandReader lies in the command's bytes.
struct LiteralSpan {
    qsizetype announce = 0;  // offset of "{" (or of "~" for literal8)
    qsizetype start = 0;     // offset of the first data octet
    qsizetype size = 0;
    bool binary = false;  // literal8
};

// One complete command: the bytes as sent (lines and literal data), where the
// literals are, and the share of the process's input budget it holds.
struct RawCommand {
    QByteArray bytes;
    QList<LiteralSpan> literals;
    InputBudget::Lease lease;
};

class CommandReader {
public:
    enum class Event { None, Command, Continue, LineTooLong, LiteralRefused, NonSyncLiteralRefused };
    enum class Refusal { None, TooBig, TooBigBeforeAuth, CommandTooBig, Busy };
    // budget: the process-wide count (nullptr: nothing is counted).
    explicit CommandReader(const ReaderLimits& limits, InputBudget* budget = nullptr)
        : m_limits(limits), m_lease(budget) {}
    // Uses bytes of data; stops right after an event (the caller handles it, then feeds the rest).
    qsizetype feed(const char* data, qsizetype size, Event* event);
    RawCommand takeCommand();       // the complete command; the reader starts afresh
    QByteArray currentTag() const;  // tag of the command being read (for error replies)
    void reset();
    // Before login the small limits apply (ReaderLimits::...BeforeAuth).
    void setAuthenticated(bool authenticated) { m_authenticated = authenticated; }
    // Why the last LiteralRefused / NonSyncLiteralRefused, and the limit that was hit.
    Refusal refusal() const { return m_refusal; }
    qint64 refusalLimit() const { return m_refusalLimit; }
    qint64 heldBytes() const { return m_lease.held(); }

private:
    qint64 commandLimit() const { return m_authenticated ? m_limits.maxCommand : m_limits.maxCommandBeforeAuth; }
    qint64 literalLimit() const { return m_authenticated ? m_limits.maxLiteral : m_limits.maxLiteralBeforeAuth; }
    qsizetype lineLimit() const;
    void account() { m_lease.setTo(qint64(m_command.size()) + m_literalLeft); }
    Event refuse(Refusal why, qint64 limit, bool nonSync);

    ReaderLimits m_limits;
    InputBudget::Lease m_lease;
    QByteArray m_command;
    QList<LiteralSpan> m_literals;
    qsizetype m_lineStart = 0;
    qint64 m_literalLeft = 0;
    bool m_discarding = false;
    bool m_authenticated = false;
    Refusal m_refusal = Refusal::None;
    qint64 m_refusalLimit = 0;
};

struct Token {
    enum class Kind { Atom, String, List, Nil };
    Kind kind = Kind::Atom;
    QByteArray text;       // Atom or String contents
    QList<Token> items;    // List
    bool literal = false;  // String came as a literal
    bool binary = false;   // ... as a literal8 ("~{n}")
    bool isAtom(const char* a) const { return kind == Kind::Atom && qstricmp(text.constData(), a) == 0; }
    // astring (RFC 9051 9: astring = 1*ASTRING-CHAR / string): an atom NIL is the string "NIL"
    // wherever an astring is expected (SEARCH SUBJECT NIL, SELECT NIL, a keyword NIL).
    bool isString() const { return kind == Kind::String || kind == Kind::Atom || kind == Kind::Nil; }
};

class ArgParser {
public:
    static constexpr int kMaxDepth = 16;
    // A command as framed by CommandReader: literals are accepted at its spans only.
    explicit ArgParser(const RawCommand& command);
    // Bytes without framing information: no literal is accepted.
    explicit ArgParser(QByteArray command);
    // tag and command name (upper-cased); false when the line has no tag or name.
    bool header(QByteArray* tag, QByteArray* name);
    bool atEnd() const;
    std::optional<Token> next();         // one argument (after at least one SP), or nullopt on a syntax error
    std::optional<QList<Token>> rest();  // all remaining arguments
    QString error() const { return m_error; }

private:
    std::optional<Token> parseToken(int depth);
    std::optional<Token> parseList(int depth);
    std::optional<Token> parseQuoted();
    std::optional<Token> parseAtom();
    std::optional<Token> parseLiteral();
    bool skipSpace();
    QByteArray m_s;
    qsizetype m_end = 0;  // the command without its final CRLF
    QList<LiteralSpan> m_literals;
    qsizetype m_nextLiteral = 0;
    qsizetype m_pos = 0;
    QString m_error;
};

// A decimal number as IMAP writes them: 1*DIGIT, nothing else, at most `max`
// (RFC 9051 9: number, nz-number, number64). nullopt when empty, not all
// digits, or above max (any count of digits; leading zeros are allowed).
std::optional<quint64> parseNumber(const QByteArray& digits, quint64 max);
inline constexpr quint64 kMaxNumber = 0xFFFFFFFFu;            // number (32-bit)
inline constexpr quint64 kMaxNumber64 = 0x7FFFFFFFFFFFFFFFu;  // number64 (63-bit)

// Quoted string or literal for a response.
QByteArray quoteString(const QByteArray& s);

}  // namespace postern::imap
