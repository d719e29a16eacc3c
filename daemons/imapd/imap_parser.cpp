// imap_parser.cpp — see imap_parser.h.
#include "imap_parser.h"

#include <algorithm>
#include <cstring>

namespace postern::imap {

std::optional<quint64> parseNumber(const QByteArray& digits, quint64 max) {
    if (digits.isEmpty()) return std::nullopt;
    quint64 v = 0;
    for (const char c : digits) {
        if (c < '0' || c > '9') return std::nullopt;
        const quint64 d = quint64(c - '0');
        if (d > max || v > (max - d) / 10) return std::nullopt;  // v * 10 + d > max, without overflow
        v = v * 10 + d;
    }
    return v;
}

namespace {
struct Announcement {
    qsizetype offset = 0;  // of "{" or "~" within the line
    qint64 size = 0;
    bool tooBig = false;  // beyond number64 (any count of digits)
    bool nonSync = false;
    bool binary = false;
};

// The literal announcement "{n}", "{n+}", "{n-}" or "~{...}" that ends the line
// (line ending stripped), if there is one: digits only between the braces.
std::optional<Announcement> literalAtEnd(const char* line, qsizetype len) {
    if (len < 3 || line[len - 1] != '}') return std::nullopt;
    Announcement a;
    qsizetype i = len - 2;
    if (line[i] == '+' || line[i] == '-') {
        a.nonSync = line[i] == '+';  // RFC 7888; "-" is tolerated as synchronising
        --i;
    }
    const qsizetype digitsEnd = i + 1;
    while (i >= 0 && line[i] >= '0' && line[i] <= '9') --i;
    if (i < 0 || line[i] != '{' || i + 1 == digitsEnd) return std::nullopt;
    a.offset = i;
    if (i > 0 && line[i - 1] == '~') {
        a.binary = true;
        a.offset = i - 1;
    }
    const auto n = parseNumber(QByteArray::fromRawData(line + i + 1, digitsEnd - i - 1), kMaxNumber64);
    a.tooBig = !n;
    a.size = n ? qint64(*n) : 0;
    return a;
}
}  // namespace

void CommandReader::reset() {
    m_command = QByteArray();
    m_literals.clear();
    m_lineStart = 0;
    m_literalLeft = 0;
    m_discarding = false;
    m_lease.setTo(0);
}

RawCommand CommandReader::takeCommand() {
    RawCommand c;
    c.bytes = std::move(m_command);
    c.literals = std::move(m_literals);
    c.lease = std::move(m_lease);  // the command keeps its share until it has been handled
    reset();
    return c;
}

QByteArray CommandReader::currentTag() const {
    const qsizetype sp = m_command.indexOf(' ');
    QByteArray tag = sp > 0 ? m_command.left(sp) : QByteArray();
    for (char c : tag)
        if (c <= ' ' || c >= 127 || c == '(' || c == ')' || c == '{' || c == '%' || c == '*' || c == '"' || c == '\\' ||
            c == '+')
            return "*";
    return tag.isEmpty() || tag.size() > 64 ? QByteArray("*") : tag;
}

// Bytes the current line may take, its line ending included: the line limit and
// what is left of the command limit, whichever is smaller.
qsizetype CommandReader::lineLimit() const {
    const qint64 room = commandLimit() - qint64(m_lineStart);
    return qsizetype(std::clamp<qint64>(room, 0, qint64(m_limits.maxLine) + 2));
}

CommandReader::Event CommandReader::refuse(Refusal why, qint64 limit, bool nonSync) {
    m_refusal = why;
    m_refusalLimit = limit;
    return nonSync ? Event::NonSyncLiteralRefused : Event::LiteralRefused;
}

qsizetype CommandReader::feed(const char* data, qsizetype size, Event* event) {
    *event = Event::None;
    qsizetype i = 0;
    while (i < size) {
        if (m_literalLeft > 0) {
            const qsizetype n = qsizetype(std::min<qint64>(m_literalLeft, size - i));
            m_command.append(data + i, n);  // reserved when it was announced: no reallocation
            m_literalLeft -= n;
            i += n;
            if (m_literalLeft == 0) m_lineStart = m_command.size();
            continue;
        }
        const void* nl = std::memchr(data + i, '\n', size_t(size - i));
        const qsizetype end = nl ? (static_cast<const char*>(nl) - data) + 1 : size;
        const qsizetype piece = end - i;
        if (!m_discarding) {
            const qsizetype have = m_command.size() - m_lineStart;
            if (piece > lineLimit() - have) {
                // Too long: drop the rest of the line; keep the start of a first line (its tag).
                m_discarding = true;
                if (m_lineStart == 0 && have < 64)
                    m_command.append(data + i, std::min<qsizetype>(piece, 64 - have));
                else
                    m_command.truncate(m_lineStart == 0 ? std::min<qsizetype>(m_command.size(), 64) : m_lineStart);
            } else {
                m_command.append(data + i, piece);
            }
            account();
        }
        i = end;
        if (!nl) continue;
        if (m_discarding) {
            *event = Event::LineTooLong;
            return i;
        }
        qsizetype len = m_command.size() - m_lineStart - 1;  // without "\n"
        const char* line = m_command.constData() + m_lineStart;
        if (len > 0 && line[len - 1] == '\r') --len;
        if (len > m_limits.maxLine) {
            *event = Event::LineTooLong;
            return i;
        }
        const auto announced = literalAtEnd(line, len);
        if (!announced) {
            *event = Event::Command;
            return i;
        }
        const qint64 literalMax = literalLimit();
        if (announced->tooBig || announced->size > literalMax) {
            *event =
                refuse(m_authenticated ? Refusal::TooBig : Refusal::TooBigBeforeAuth, literalMax, announced->nonSync);
            return i;
        }
        const qint64 n = announced->size;
        // Room for the literal and the CRLF that must still end the command.
        if (n > commandLimit() - qint64(m_command.size()) - 2) {
            *event = refuse(Refusal::CommandTooBig, commandLimit(), announced->nonSync);
            return i;
        }
        // The literal's memory is counted before the client may send it.
        const qint64 held = qint64(m_command.size()) + n;
        if (n > m_limits.budgetFreeLiteral) {
            if (!m_lease.tryGrowTo(held)) {
                *event = refuse(Refusal::Busy, m_lease.budget() ? m_lease.budget()->limit() : 0, announced->nonSync);
                return i;
            }
        } else {
            m_lease.setTo(held);
        }
        m_literals.append({m_lineStart + announced->offset, m_command.size(), qsizetype(n), announced->binary});
        if (n > 0) m_command.reserve(m_command.size() + qsizetype(n));  // exactly: appends never double it
        m_literalLeft = n;
        m_lineStart = m_command.size();
        if (!announced->nonSync) {
            *event = Event::Continue;
            return i;
        }
    }
    return i;
}

// ---------------------------------------------------------------- arguments

ArgParser::ArgParser(const RawCommand& command) : m_s(command.bytes), m_literals(command.literals) {
    // The reader's spans are ascending and inside the bytes; checked again here so that a
    // wrong span can only make the command BAD, never read outside it.
    qsizetype floor = 0;
    for (const LiteralSpan& l : m_literals) {
        if (l.announce < floor || l.start <= l.announce || l.start > m_s.size() || l.size < 0 ||
            l.size > m_s.size() - l.start) {
            m_literals.clear();
            floor = 0;
            break;
        }
        floor = l.start + l.size;
    }
    // The final CRLF ends the command and is not part of any argument (and only that one:
    // the last literal may itself end with CRLF).
    m_end = m_s.size();
    if (m_end > floor && m_s.at(m_end - 1) == '\n') --m_end;
    if (m_end > floor && m_s.at(m_end - 1) == '\r') --m_end;
}

ArgParser::ArgParser(QByteArray command) : m_s(std::move(command)) {
    m_end = m_s.size();
    if (m_end > 0 && m_s.at(m_end - 1) == '\n') --m_end;
    if (m_end > 0 && m_s.at(m_end - 1) == '\r') --m_end;
}

bool ArgParser::skipSpace() {
    bool any = false;
    while (m_pos < m_end && m_s.at(m_pos) == ' ') {
        ++m_pos;
        any = true;
    }
    return any;
}

bool ArgParser::atEnd() const {
    qsizetype p = m_pos;
    while (p < m_end && m_s.at(p) == ' ') ++p;
    return p >= m_end;
}

bool ArgParser::header(QByteArray* tag, QByteArray* name) {
    auto word = [&]() {
        const qsizetype start = m_pos;
        while (m_pos < m_end && m_s.at(m_pos) != ' ') ++m_pos;
        return m_s.mid(start, m_pos - start);
    };
    *tag = word();
    if (tag->isEmpty() || !skipSpace()) return false;
    for (char c : *tag)
        if (c <= ' ' || c >= 127 || QByteArray("(){%*\"\\+").contains(c)) return false;
    *name = word().toUpper();
    return !name->isEmpty();
}

std::optional<Token> ArgParser::next() {
    const bool spaced = skipSpace();
    if (m_pos >= m_end) {
        m_error = QStringLiteral("missing argument");
        return std::nullopt;
    }
    if (!spaced) {
        m_error = QStringLiteral("missing space between arguments");
        return std::nullopt;
    }
    return parseToken(0);
}

std::optional<QList<Token>> ArgParser::rest() {
    QList<Token> out;
    while (!atEnd()) {
        auto t = next();
        if (!t) return std::nullopt;
        out << *t;
    }
    return out;
}

// Only where the CommandReader framed a literal (its announcement ended a line).
std::optional<Token> ArgParser::parseLiteral() {
    if (m_nextLiteral >= m_literals.size() || m_literals.at(m_nextLiteral).announce != m_pos) {
        m_error = QStringLiteral("a literal must end its line ({n} CRLF)");
        return std::nullopt;
    }
    const LiteralSpan& l = m_literals.at(m_nextLiteral++);
    if (l.size > m_end - l.start) {  // the data runs into the final CRLF: cannot happen for framed spans
        m_error = QStringLiteral("bad literal");
        return std::nullopt;
    }
    Token t;
    t.kind = Token::Kind::String;
    t.literal = true;
    t.binary = l.binary;
    t.text = m_s.mid(l.start, l.size);
    m_pos = l.start + l.size;
    return t;
}

// One token of the RFC 9051 grammar, chosen by its first character: a list, a quoted
// string, a literal or literal8, else an atom (NIL included). `depth`: how many lists
// enclose it (kMaxDepth at most).
std::optional<Token> ArgParser::parseToken(int depth) {
    if (depth > kMaxDepth) {
        m_error = QStringLiteral("nesting too deep");
        return std::nullopt;
    }
    if (m_pos >= m_end) {
        m_error = QStringLiteral("unexpected end of command");
        return std::nullopt;
    }
    const char c = m_s.at(m_pos);
    if (c == '(') return parseList(depth);
    if (c == '"') return parseQuoted();
    if (c == '{' || (c == '~' && m_pos + 1 < m_end && m_s.at(m_pos + 1) == '{')) return parseLiteral();
    return parseAtom();
}

// "(" [token *(SP token)] ")", at m_pos's "(".
std::optional<Token> ArgParser::parseList(int depth) {
    Token t;
    ++m_pos;
    t.kind = Token::Kind::List;
    for (;;) {
        skipSpace();
        if (m_pos >= m_end) {
            m_error = QStringLiteral("unterminated list");
            return std::nullopt;
        }
        if (m_s.at(m_pos) == ')') {
            ++m_pos;
            return t;
        }
        auto child = parseToken(depth + 1);
        if (!child) return std::nullopt;
        t.items << *child;
        if (m_pos < m_end && m_s.at(m_pos) != ' ' && m_s.at(m_pos) != ')') {
            m_error = QStringLiteral("missing space in list");
            return std::nullopt;
        }
    }
}

// A quoted string at m_pos's '"': \\ and \" are the only escapes; no CR, LF or NUL.
std::optional<Token> ArgParser::parseQuoted() {
    Token t;
    t.kind = Token::Kind::String;
    ++m_pos;
    while (m_pos < m_end && m_s.at(m_pos) != '"') {
        char ch = m_s.at(m_pos);
        if (ch == '\\') {
            if (m_pos + 1 >= m_end || (m_s.at(m_pos + 1) != '\\' && m_s.at(m_pos + 1) != '"')) {
                m_error = QStringLiteral("bad escape in quoted string");
                return std::nullopt;
            }
            ch = m_s.at(++m_pos);
        } else if (ch == '\r' || ch == '\n' || ch == '\0') {
            m_error = QStringLiteral("line break in quoted string");
            return std::nullopt;
        }
        t.text += ch;
        ++m_pos;
    }
    if (m_pos >= m_end) {
        m_error = QStringLiteral("unterminated quoted string");
        return std::nullopt;
    }
    ++m_pos;
    return t;
}

// Atom, with an optional [section] (may contain spaces and parens) and <partial>; NIL is
// a token of its own kind.
std::optional<Token> ArgParser::parseAtom() {
    Token t;
    const qsizetype start = m_pos;
    int bracket = 0;
    while (m_pos < m_end) {
        const char ch = m_s.at(m_pos);
        if (ch == '[')
            ++bracket;
        else if (ch == ']' && bracket > 0)
            --bracket;
        else if (bracket == 0 && (ch == ' ' || ch == ')' || ch == '('))
            break;
        if (uchar(ch) < 0x20 || ch == '"' || ch == '{') {
            if (bracket == 0 || ch != '"') {
                m_error = QStringLiteral("invalid character in atom");
                return std::nullopt;
            }
        }
        ++m_pos;
    }
    if (bracket != 0) {
        // Not a section: "[" is an ATOM-CHAR (RFC 9051 9), so "foo[bar" is a plain atom
        // (a mailbox name, a search string). Read it again up to the next space or parenthesis.
        m_pos = start;
        while (m_pos < m_end && m_s.at(m_pos) != ' ' && m_s.at(m_pos) != '(' && m_s.at(m_pos) != ')') {
            const char ch = m_s.at(m_pos);
            if (uchar(ch) < 0x20 || ch == '"' || ch == '{') {
                m_error = QStringLiteral("invalid character in atom");
                return std::nullopt;
            }
            ++m_pos;
        }
    }
    t.text = m_s.mid(start, m_pos - start);
    if (t.text.isEmpty()) {
        m_error = QStringLiteral("empty argument");
        return std::nullopt;
    }
    if (qstricmp(t.text.constData(), "NIL") == 0) t.kind = Token::Kind::Nil;
    return t;
}

QByteArray quoteString(const QByteArray& s) {
    bool needLiteral = false;
    for (char c : s)
        if (c == '\r' || c == '\n' || c == '\0' || uchar(c) >= 0x80) needLiteral = true;
    if (needLiteral || s.size() > 1000) return "{" + QByteArray::number(s.size()) + "}\r\n" + s;
    QByteArray out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + '"';
}

}  // namespace postern::imap
