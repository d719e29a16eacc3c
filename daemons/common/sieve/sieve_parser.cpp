// sieve_parser.cpp — the Sieve lexer and parser (RFC 5228 2 and 8), and compile().
//
// Grammar (RFC 5228 8.1, 8.2):
//   commands   = *command
//   command    = identifier arguments (";" / block)
//   block      = "{" commands "}"
//   arguments  = *argument [test / test-list]
//   argument   = string-list / number / tag
//   test       = identifier arguments
//   test-list  = "(" test *("," test) ")"
//   string-list = "[" string *("," string) "]" / string
//   string     = quoted-string / multi-line
//   quoted-string = DQUOTE *(CHAR except DQUOTE and "\" / "\" CHAR) DQUOTE
//   multi-line = "text:" *(SP / HTAB) (hash-comment / CRLF)
//                *(multiline-literal / multiline-dotstart) "." CRLF
//   number     = 1*DIGIT [ "K" / "M" / "G" ]
//   tag        = ":" identifier;  identifier = (ALPHA / "_") *(ALPHA / DIGIT / "_")
//   comments: "#" to the end of the line, "/*" ... "*/"
// Line ends: CRLF or a bare LF (scripts edited on Unix). In a quoted string
// "\" followed by any character is that character (2.4.2); in a multi-line
// string a line starting ".." loses one dot (dot-stuffing).
// Errors: "line:column: what was expected" at the offending token.
// Security: input is untrusted; every string, list, number and nesting level is
// bounded (sieve.h Limits); numbers that do not fit 2^63 are errors.
#include "sieve_internal.h"

#include <limits>

namespace postern::sieve {
namespace detail {

Error errorAt(int line, int column, const QString& text) {
    return Error{QStringLiteral("%1:%2: %3").arg(line).arg(column).arg(text), line};
}

namespace {

struct Token {
    enum class Kind {
        End,
        Identifier,
        Tag,
        Number,
        String,
        LBracket,
        RBracket,
        LParen,
        RParen,
        LBrace,
        RBrace,
        Comma,
        Semicolon
    };
    Kind kind = Kind::End;
    QString text;
    qint64 number = 0;
    int line = 1, column = 1;
};

QString describe(Token::Kind k) {
    switch (k) {
        case Token::Kind::End:
            return QStringLiteral("end of script");
        case Token::Kind::Identifier:
            return QStringLiteral("identifier");
        case Token::Kind::Tag:
            return QStringLiteral("tag");
        case Token::Kind::Number:
            return QStringLiteral("number");
        case Token::Kind::String:
            return QStringLiteral("string");
        case Token::Kind::LBracket:
            return QStringLiteral("'['");
        case Token::Kind::RBracket:
            return QStringLiteral("']'");
        case Token::Kind::LParen:
            return QStringLiteral("'('");
        case Token::Kind::RParen:
            return QStringLiteral("')'");
        case Token::Kind::LBrace:
            return QStringLiteral("'{'");
        case Token::Kind::RBrace:
            return QStringLiteral("'}'");
        case Token::Kind::Comma:
            return QStringLiteral("','");
        case Token::Kind::Semicolon:
            return QStringLiteral("';'");
    }
    return {};
}

bool isAlpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool isDigit(char c) {
    return c >= '0' && c <= '9';
}

class Lexer {
public:
    Lexer(const QByteArray& src, const Limits& limits) : m_s(src), m_limits(limits) {}

    // The next token, or an error.
    Result<Token> next() {
        if (auto st = skipSpace(); !st) return st.error();
        Token t;
        t.line = m_line;
        t.column = column();
        if (m_pos >= m_s.size()) return t;
        const char c = m_s[m_pos];
        auto single = [&](Token::Kind k) {
            t.kind = k;
            advance();
            return t;
        };
        switch (c) {
            case '[':
                return single(Token::Kind::LBracket);
            case ']':
                return single(Token::Kind::RBracket);
            case '(':
                return single(Token::Kind::LParen);
            case ')':
                return single(Token::Kind::RParen);
            case '{':
                return single(Token::Kind::LBrace);
            case '}':
                return single(Token::Kind::RBrace);
            case ',':
                return single(Token::Kind::Comma);
            case ';':
                return single(Token::Kind::Semicolon);
            case '"':
                return quoted(t);
            default:
                break;
        }
        if (c == ':') {
            advance();
            if (m_pos >= m_s.size() || !isAlpha(m_s[m_pos]))
                return errorAt(t.line, t.column, QStringLiteral("a tag needs a name after ':'"));
            t.kind = Token::Kind::Tag;
            t.text = identifier().toLower();
            return t;
        }
        if (isDigit(c)) return number(t);
        if (isAlpha(c)) {
            const QString word = identifier();
            if (word.compare(u"text", Qt::CaseInsensitive) == 0 && m_pos < m_s.size() && m_s[m_pos] == ':') {
                advance();
                return multiLine(t);
            }
            t.kind = Token::Kind::Identifier;
            t.text = word.toLower();
            return t;
        }
        return errorAt(t.line, t.column, QStringLiteral("unexpected character '%1'").arg(printable(c)));
    }

private:
    static QString printable(char c) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x21 && u < 0x7f) return QString(QChar(u));
        return QStringLiteral("\\x%1").arg(u, 2, 16, QLatin1Char('0'));
    }
    int column() const { return int(m_pos - m_lineStart) + 1; }
    void advance() {
        if (m_s[m_pos] == '\n') {
            ++m_line;
            m_lineStart = m_pos + 1;
        }
        ++m_pos;
    }
    QString identifier() {
        const qsizetype start = m_pos;
        while (m_pos < m_s.size() && (isAlpha(m_s[m_pos]) || isDigit(m_s[m_pos]))) ++m_pos;
        return QString::fromLatin1(m_s.mid(start, m_pos - start));
    }
    Status skipSpace() {
        while (m_pos < m_s.size()) {
            const char c = m_s[m_pos];
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                advance();
            } else if (c == '#') {
                while (m_pos < m_s.size() && m_s[m_pos] != '\n') ++m_pos;
            } else if (c == '/' && m_pos + 1 < m_s.size() && m_s[m_pos + 1] == '*') {
                const int line = m_line, col = column();
                advance();
                advance();
                while (true) {
                    if (m_pos >= m_s.size()) return errorAt(line, col, QStringLiteral("comment not closed with */"));
                    if (m_s[m_pos] == '*' && m_pos + 1 < m_s.size() && m_s[m_pos + 1] == '/') {
                        advance();
                        advance();
                        break;
                    }
                    advance();
                }
            } else {
                break;
            }
        }
        return {};
    }
    Result<Token> tooLong(const Token& t) const {
        return errorAt(t.line, t.column, QStringLiteral("string longer than %1 bytes").arg(m_limits.maxStringBytes));
    }
    Result<Token> quoted(Token t) {
        advance();  // "
        QByteArray out;
        while (true) {
            if (m_pos >= m_s.size()) return errorAt(t.line, t.column, QStringLiteral("string not closed with '\"'"));
            char c = m_s[m_pos];
            if (c == '"') {
                advance();
                break;
            }
            if (c == '\\') {
                advance();
                if (m_pos >= m_s.size()) continue;
                c = m_s[m_pos];  // RFC 5228 2.4.2: "\" CHAR is CHAR
            }
            out.append(c);
            advance();
            if (out.size() > m_limits.maxStringBytes) return tooLong(t);
        }
        t.kind = Token::Kind::String;
        t.text = QString::fromUtf8(out);
        return t;
    }
    Result<Token> multiLine(Token t) {
        // After "text:": optional blanks, then a comment or the line end.
        while (m_pos < m_s.size() && (m_s[m_pos] == ' ' || m_s[m_pos] == '\t')) advance();
        if (m_pos < m_s.size() && m_s[m_pos] == '#') {
            while (m_pos < m_s.size() && m_s[m_pos] != '\n') ++m_pos;
        } else if (m_pos < m_s.size() && m_s[m_pos] == '\r') {
            advance();
        }
        if (m_pos >= m_s.size() || m_s[m_pos] != '\n')
            return errorAt(m_line, column(), QStringLiteral("expected a line end after text:"));
        advance();
        QByteArray out;
        while (true) {
            if (m_pos >= m_s.size())
                return errorAt(t.line, t.column,
                               QStringLiteral("multi-line string not ended with a line holding only '.'"));
            qsizetype eol = m_s.indexOf('\n', m_pos);
            const qsizetype end = eol < 0 ? m_s.size() : eol;
            qsizetype contentEnd = end;
            if (contentEnd > m_pos && m_s[contentEnd - 1] == '\r') --contentEnd;
            QByteArrayView line(m_s.constData() + m_pos, contentEnd - m_pos);
            if (line == ".") {
                m_pos = end;
                if (eol >= 0) advance();
                break;
            }
            if (line.startsWith("..")) line = line.sliced(1);  // dot-stuffing
            if (qsizetype(line.size()) > m_limits.maxStringBytes - out.size() - 2) return tooLong(t);
            out.append(line.data(), line.size());
            out.append("\r\n");
            m_pos = end;
            if (eol >= 0) advance();
        }
        t.kind = Token::Kind::String;
        t.text = QString::fromUtf8(out);
        return t;
    }
    Result<Token> number(Token t) {
        qint64 v = 0;
        while (m_pos < m_s.size() && isDigit(m_s[m_pos])) {
            const int d = m_s[m_pos] - '0';
            if (v > (std::numeric_limits<qint64>::max() - d) / 10)
                return errorAt(t.line, t.column, QStringLiteral("number too large"));
            v = v * 10 + d;
            ++m_pos;
        }
        if (m_pos < m_s.size()) {
            const char q = char(m_s[m_pos] & ~0x20);
            qint64 mult = q == 'K' ? 1024 : q == 'M' ? 1024 * 1024 : q == 'G' ? qint64(1024) * 1024 * 1024 : 1;
            if (mult != 1) {
                ++m_pos;
                if (v > std::numeric_limits<qint64>::max() / mult)
                    return errorAt(t.line, t.column, QStringLiteral("number too large"));
                v *= mult;
            }
        }
        if (m_pos < m_s.size() && (isAlpha(m_s[m_pos]) || isDigit(m_s[m_pos])))
            return errorAt(m_line, column(), QStringLiteral("unexpected character after a number"));
        t.kind = Token::Kind::Number;
        t.number = v;
        return t;
    }

    const QByteArray& m_s;
    const Limits& m_limits;
    qsizetype m_pos = 0;
    qsizetype m_lineStart = 0;
    int m_line = 1;
};

class Parser {
public:
    Parser(const QByteArray& src, const Limits& limits) : m_lex(src, limits), m_limits(limits) {}

    Result<QList<Node>> script() {
        if (auto st = shift(); !st) return st.error();
        auto cmds = commands(0);
        if (!cmds) return cmds;
        if (m_tok.kind != Token::Kind::End) return unexpected("a command");
        return cmds;
    }

private:
    Status shift() {
        auto t = m_lex.next();
        if (!t) return t.error();
        m_tok = std::move(*t);
        return {};
    }
    Error unexpected(const QString& expected) const {
        QString found = describe(m_tok.kind);
        if (m_tok.kind == Token::Kind::Identifier) found += QStringLiteral(" '%1'").arg(m_tok.text);
        return errorAt(m_tok.line, m_tok.column, QStringLiteral("expected %1, found %2").arg(expected, found));
    }

    Result<QList<Node>> commands(int depth) {
        QList<Node> out;
        while (m_tok.kind == Token::Kind::Identifier) {
            auto c = command(depth);
            if (!c) return c.error();
            out << std::move(*c);
        }
        return out;
    }

    Result<Node> command(int depth) {
        Node n;
        n.name = m_tok.text;
        n.line = m_tok.line;
        n.column = m_tok.column;
        if (auto st = shift(); !st) return st.error();
        if (auto st = arguments(n, 0); !st) return st.error();
        if (m_tok.kind == Token::Kind::Semicolon) {
            if (auto st = shift(); !st) return st.error();
            return n;
        }
        if (m_tok.kind != Token::Kind::LBrace) return unexpected(QStringLiteral("';' or '{'"));
        if (depth + 1 > m_limits.maxNesting)
            return errorAt(m_tok.line, m_tok.column,
                           QStringLiteral("blocks nested deeper than %1").arg(m_limits.maxNesting));
        if (auto st = shift(); !st) return st.error();
        auto body = commands(depth + 1);
        if (!body) return body.error();
        n.block = std::move(*body);
        n.hasBlock = true;
        if (m_tok.kind != Token::Kind::RBrace) return unexpected(QStringLiteral("a command or '}'"));
        if (auto st = shift(); !st) return st.error();
        return n;
    }

    // Arguments, then an optional test or test list, into `n`.
    Status arguments(Node& n, int testDepth) {
        while (true) {
            Argument a;
            a.line = m_tok.line;
            a.column = m_tok.column;
            if (m_tok.kind == Token::Kind::String) {
                a.kind = Argument::Kind::String;
                a.strings << m_tok.text;
                a.positions << std::pair{m_tok.line, m_tok.column};
            } else if (m_tok.kind == Token::Kind::Number) {
                a.kind = Argument::Kind::Number;
                a.number = m_tok.number;
            } else if (m_tok.kind == Token::Kind::Tag) {
                a.kind = Argument::Kind::Tag;
                a.tag = m_tok.text;
            } else if (m_tok.kind == Token::Kind::LBracket) {
                a.kind = Argument::Kind::StringList;
                if (auto st = stringList(a); !st) return st;
                n.arguments << std::move(a);
                continue;
            } else {
                break;
            }
            n.arguments << std::move(a);
            if (auto st = shift(); !st) return st;
        }
        if (m_tok.kind == Token::Kind::Identifier) {
            auto t = test(testDepth + 1);
            if (!t) return t.error();
            n.tests << std::move(*t);
        } else if (m_tok.kind == Token::Kind::LParen) {
            if (testDepth + 1 > m_limits.maxNesting)
                return errorAt(m_tok.line, m_tok.column,
                               QStringLiteral("tests nested deeper than %1").arg(m_limits.maxNesting));
            if (auto st = shift(); !st) return st;
            while (true) {
                if (m_tok.kind != Token::Kind::Identifier) return unexpected(QStringLiteral("a test"));
                auto t = test(testDepth + 1);
                if (!t) return t.error();
                n.tests << std::move(*t);
                if (n.tests.size() > m_limits.maxListItems)
                    return errorAt(m_tok.line, m_tok.column,
                                   QStringLiteral("more than %1 tests in one list").arg(m_limits.maxListItems));
                if (m_tok.kind == Token::Kind::Comma) {
                    if (auto st = shift(); !st) return st;
                    continue;
                }
                if (m_tok.kind != Token::Kind::RParen) return unexpected(QStringLiteral("',' or ')'"));
                if (auto st = shift(); !st) return st;
                break;
            }
        }
        return {};
    }

    Result<Node> test(int depth) {
        if (depth > m_limits.maxNesting)
            return errorAt(m_tok.line, m_tok.column,
                           QStringLiteral("tests nested deeper than %1").arg(m_limits.maxNesting));
        Node n;
        n.name = m_tok.text;
        n.line = m_tok.line;
        n.column = m_tok.column;
        if (auto st = shift(); !st) return st.error();
        if (auto st = arguments(n, depth); !st) return st.error();
        return n;
    }

    Status stringList(Argument& a) {
        if (auto st = shift(); !st) return st;  // [
        while (true) {
            if (m_tok.kind != Token::Kind::String) return unexpected(QStringLiteral("a string"));
            a.strings << m_tok.text;
            a.positions << std::pair{m_tok.line, m_tok.column};
            if (a.strings.size() > m_limits.maxListItems)
                return errorAt(m_tok.line, m_tok.column,
                               QStringLiteral("more than %1 strings in one list").arg(m_limits.maxListItems));
            if (auto st = shift(); !st) return st;
            if (m_tok.kind == Token::Kind::Comma) {
                if (auto st = shift(); !st) return st;
                continue;
            }
            if (m_tok.kind != Token::Kind::RBracket) return unexpected(QStringLiteral("',' or ']'"));
            return shift();
        }
    }

    Lexer m_lex;
    const Limits& m_limits;
    Token m_tok;
};

}  // namespace

Result<QList<Node>> parse(const QByteArray& source, const Limits& limits) {
    if (source.size() > limits.maxScriptBytes)
        return Error{QStringLiteral("1:1: script larger than %1 bytes").arg(limits.maxScriptBytes), 1};
    Parser p(source, limits);
    return p.script();
}

}  // namespace detail

Result<Script> compile(const QByteArray& source, const Limits& limits) {
    auto tree = detail::parse(source, limits);
    if (!tree) return tree.error();
    Script s;
    s.commands = std::move(*tree);
    if (auto st = detail::validate(s, limits); !st) return st.error();
    return s;
}

}  // namespace postern::sieve
