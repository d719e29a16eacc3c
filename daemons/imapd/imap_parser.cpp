// imap_parser.cpp — see imap_parser.h.
#include "imap_parser.h"

#include <cstring>

namespace postern::imap {

namespace {
// "{123}", "{123+}", "{123-}", "~{123}" at the end of a line (CRLF stripped).
bool literalAtEnd(const QByteArray& line, qint64* size, bool* nonSync, bool* overflow) {
    if (!line.endsWith('}')) return false;
    const qsizetype open = line.lastIndexOf('{');
    if (open < 0) return false;
    QByteArray inner = line.mid(open + 1, line.size() - open - 2);
    *nonSync = false;
    if (inner.endsWith('+') || inner.endsWith('-')) {
        *nonSync = inner.endsWith('+');
        inner.chop(1);
    }
    if (inner.isEmpty() || inner.size() > 20) {
        *overflow = !inner.isEmpty();
        return !inner.isEmpty();
    }
    for (char c : inner)
        if (c < '0' || c > '9') return false;
    bool ok = false;
    *size = inner.toLongLong(&ok);
    *overflow = !ok;
    return true;
}
}  // namespace

void CommandReader::reset() {
    m_command.clear();
    m_lineStart = 0;
    m_literalLeft = 0;
    m_discarding = false;
}

QByteArray CommandReader::takeCommand() {
    QByteArray c = m_command;
    reset();
    return c;
}

QByteArray CommandReader::currentTag() const {
    const qsizetype sp = m_command.indexOf(' ');
    QByteArray tag = sp > 0 ? m_command.left(sp) : QByteArray();
    for (char c : tag)
        if (c <= ' ' || c >= 127 || c == '(' || c == ')' || c == '{' || c == '%' || c == '*' || c == '"' || c == '\\' || c == '+')
            return "*";
    return tag.isEmpty() || tag.size() > 64 ? QByteArray("*") : tag;
}

qsizetype CommandReader::feed(const char* data, qsizetype size, Event* event) {
    *event = Event::None;
    qsizetype i = 0;
    while (i < size) {
        if (m_literalLeft > 0) {
            const qsizetype n = qsizetype(std::min<qint64>(m_literalLeft, size - i));
            m_command.append(data + i, n);
            m_literalLeft -= n;
            i += n;
            if (m_literalLeft == 0) m_lineStart = m_command.size();
            continue;
        }
        const void* nl = std::memchr(data + i, '\n', size_t(size - i));
        const qsizetype end = nl ? (static_cast<const char*>(nl) - data) + 1 : size;
        if (!m_discarding) m_command.append(data + i, end - i);
        i = end;
        const qsizetype lineLen = m_command.size() - m_lineStart;
        if (!nl) {
            if (!m_discarding && lineLen > m_limits.maxLine) {
                m_discarding = true;  // keep the tag, drop the rest of the line
                m_command.truncate(std::min<qsizetype>(m_command.size(), m_lineStart + 64));
            }
            continue;
        }
        if (m_discarding) {
            *event = Event::LineTooLong;
            return i;
        }
        QByteArray line = m_command.mid(m_lineStart);
        while (line.endsWith('\n') || line.endsWith('\r')) line.chop(1);
        if (line.size() > m_limits.maxLine) {
            *event = Event::LineTooLong;
            return i;
        }
        qint64 lit = 0;
        bool nonSync = false, overflow = false;
        if (literalAtEnd(line, &lit, &nonSync, &overflow)) {
            if (overflow || lit > m_limits.maxLiteral || m_command.size() + lit > m_limits.maxCommand) {
                *event = nonSync ? Event::NonSyncLiteralTooBig : Event::LiteralTooBig;
                return i;
            }
            m_literalLeft = lit;
            m_lineStart = m_command.size();
            if (lit == 0) m_lineStart = m_command.size();
            if (!nonSync) {
                *event = Event::Continue;
                return i;
            }
            continue;
        }
        *event = Event::Command;
        return i;
    }
    return i;
}

// ---------------------------------------------------------------- arguments

ArgParser::ArgParser(QByteArray command) : m_s(std::move(command)) {
    // The final CRLF ends the command and is not part of any argument (and only that one:
    // a literal just before it may itself end with CRLF).
    if (m_s.endsWith('\n')) m_s.chop(1);
    if (m_s.endsWith('\r')) m_s.chop(1);
}

bool ArgParser::skipSpace() {
    bool any = false;
    while (m_pos < m_s.size() && m_s.at(m_pos) == ' ') {
        ++m_pos;
        any = true;
    }
    return any;
}

bool ArgParser::atEnd() const {
    qsizetype p = m_pos;
    while (p < m_s.size() && m_s.at(p) == ' ') ++p;
    return p >= m_s.size();
}

bool ArgParser::header(QByteArray* tag, QByteArray* name) {
    auto word = [&]() {
        const qsizetype start = m_pos;
        while (m_pos < m_s.size() && m_s.at(m_pos) != ' ') ++m_pos;
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
    skipSpace();
    if (m_pos >= m_s.size()) {
        m_error = QStringLiteral("missing argument");
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

std::optional<Token> ArgParser::parseToken(int depth) {
    if (depth > kMaxDepth) {
        m_error = QStringLiteral("nesting too deep");
        return std::nullopt;
    }
    if (m_pos >= m_s.size()) {
        m_error = QStringLiteral("unexpected end of command");
        return std::nullopt;
    }
    const char c = m_s.at(m_pos);
    Token t;
    if (c == '(') {
        ++m_pos;
        t.kind = Token::Kind::List;
        for (;;) {
            skipSpace();
            if (m_pos >= m_s.size()) {
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
            if (m_pos < m_s.size() && m_s.at(m_pos) != ' ' && m_s.at(m_pos) != ')') {
                m_error = QStringLiteral("missing space in list");
                return std::nullopt;
            }
        }
    }
    if (c == '"') {
        t.kind = Token::Kind::String;
        ++m_pos;
        while (m_pos < m_s.size() && m_s.at(m_pos) != '"') {
            char ch = m_s.at(m_pos);
            if (ch == '\\') {
                if (m_pos + 1 >= m_s.size() || (m_s.at(m_pos + 1) != '\\' && m_s.at(m_pos + 1) != '"')) {
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
        if (m_pos >= m_s.size()) {
            m_error = QStringLiteral("unterminated quoted string");
            return std::nullopt;
        }
        ++m_pos;
        return t;
    }
    if (c == '{' || (c == '~' && m_pos + 1 < m_s.size() && m_s.at(m_pos + 1) == '{')) {
        const qsizetype open = m_s.indexOf('{', m_pos);
        const qsizetype close = m_s.indexOf('}', open);
        if (close < 0 || close + 2 >= m_s.size() + 2) {
            m_error = QStringLiteral("bad literal");
            return std::nullopt;
        }
        QByteArray num = m_s.mid(open + 1, close - open - 1);
        if (num.endsWith('+') || num.endsWith('-')) num.chop(1);
        bool ok = false;
        const qint64 n = num.toLongLong(&ok);
        qsizetype dataStart = close + 1;
        if (dataStart < m_s.size() && m_s.at(dataStart) == '\r') ++dataStart;
        if (dataStart < m_s.size() && m_s.at(dataStart) == '\n') ++dataStart;
        if (!ok || n < 0 || dataStart + n > m_s.size()) {
            m_error = QStringLiteral("bad literal");
            return std::nullopt;
        }
        t.kind = Token::Kind::String;
        t.literal = true;
        t.text = m_s.mid(dataStart, qsizetype(n));
        m_pos = dataStart + qsizetype(n);
        return t;
    }
    // Atom, with an optional [section] (may contain spaces and parens) and <partial>.
    const qsizetype start = m_pos;
    int bracket = 0;
    while (m_pos < m_s.size()) {
        const char ch = m_s.at(m_pos);
        if (ch == '[') ++bracket;
        else if (ch == ']' && bracket > 0) --bracket;
        else if (bracket == 0 && (ch == ' ' || ch == ')' || ch == '(')) break;
        if (uchar(ch) < 0x20 || ch == '"' || ch == '{') {
            if (bracket == 0 || ch != '"') {
                m_error = QStringLiteral("invalid character in atom");
                return std::nullopt;
            }
        }
        ++m_pos;
    }
    if (bracket != 0) {
        m_error = QStringLiteral("unbalanced [ ]");
        return std::nullopt;
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

QByteArray quoteOrNil(const QByteArray& s, bool nilWhenEmpty) {
    if (s.isNull() || (nilWhenEmpty && s.isEmpty())) return "NIL";
    return quoteString(s);
}

}  // namespace postern::imap
