// imap_parser.h — IMAP command framing and argument parsing (no I/O).
//
// Wire grammar handled (RFC 9051 2.2, 4; RFC 7888 LITERAL+/-):
//   command  = tag SP name *(SP arg) CRLF
//   arg      = atom / quoted / literal / "(" [arg *(SP arg)] ")" / NIL
//   literal  = "{" number ["+"] "}" CRLF *OCTET     (also "~{n}" literal8)
//   atom     may carry a "[...]" section with spaces and parens, and a
//            "<partial>" suffix (BODY[HEADER.FIELDS (A B)]<0.100>)
//
// CommandReader finds where a command ends across lines and literals:
//   feed(bytes) -> Event: Command (complete), Continue (send "+ ..." for a
//   synchronising literal), LineTooLong, LiteralTooBig (refused before any
//   continuation is sent, so a client announcing {4294967296} never gets to
//   send it), NonSyncLiteralTooBig (the bytes are already on the way: the
//   session must close). Limits are passed in; nothing grows without bound.
// ArgParser turns a complete command into tokens with a nesting limit.
#pragma once

#include <QByteArray>
#include <QList>
#include <QString>
#include <optional>

namespace postern::imap {

struct ReaderLimits {
    qsizetype maxLine = 64 * 1024;     // one line, literals excluded
    qint64 maxLiteral = 64 << 20;      // one literal (APPEND message) — APPENDLIMIT
    qint64 maxCommand = 80 << 20;      // whole command incl. literals
};

class CommandReader {
public:
    enum class Event { None, Command, Continue, LineTooLong, LiteralTooBig, NonSyncLiteralTooBig };
    explicit CommandReader(const ReaderLimits& limits) : m_limits(limits) {}
    // Uses bytes of data; stops right after an event (the caller handles it, then feeds the rest).
    qsizetype feed(const char* data, qsizetype size, Event* event);
    QByteArray takeCommand();  // the complete command, lines and literal bytes as sent
    QByteArray currentTag() const;  // tag of the command being read (for error replies)
    void reset();
    bool inLiteral() const { return m_literalLeft > 0; }

private:
    ReaderLimits m_limits;
    QByteArray m_command;
    qsizetype m_lineStart = 0;
    qint64 m_literalLeft = 0;
    bool m_discarding = false;
    bool m_pendingCR = false;
};

struct Token {
    enum class Kind { Atom, String, List, Nil };
    Kind kind = Kind::Atom;
    QByteArray text;       // Atom or String contents
    QList<Token> items;    // List
    bool literal = false;  // String came as a literal
    bool isAtom(const char* a) const { return kind == Kind::Atom && qstricmp(text.constData(), a) == 0; }
    bool isString() const { return kind == Kind::String || kind == Kind::Atom; }  // astring
};

class ArgParser {
public:
    static constexpr int kMaxDepth = 16;
    explicit ArgParser(QByteArray command);
    // tag and command name (upper-cased); false when the line has no tag or name.
    bool header(QByteArray* tag, QByteArray* name);
    bool atEnd() const;
    std::optional<Token> next();   // one argument, or nullopt on a syntax error
    std::optional<QList<Token>> rest();  // all remaining arguments
    QString error() const { return m_error; }

private:
    std::optional<Token> parseToken(int depth);
    bool skipSpace();
    QByteArray m_s;
    qsizetype m_pos = 0;
    QString m_error;
};

// Quoted string or literal for a response.
QByteArray quoteString(const QByteArray& s);
QByteArray quoteOrNil(const QByteArray& s, bool nilWhenEmpty = true);

}  // namespace postern::imap
