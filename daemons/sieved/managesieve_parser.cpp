// managesieve_parser.cpp — see managesieve_parser.h (the grammar is written there).
#include "managesieve_parser.h"

#include <cstring>
#include <optional>

namespace postern::managesieve {

namespace {

bool isDigit(char c) {
    return c >= '0' && c <= '9';
}
bool isAlpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Digits from `p` while they fit kMaxNumber; false on overflow (no digit: false too).
bool parseNumber(const QByteArray& s, qsizetype& p, quint64* out) {
    quint64 n = 0;
    const qsizetype start = p;
    while (p < s.size() && isDigit(s.at(p))) {
        const quint64 d = quint64(s.at(p) - '0');
        if (n > (Parser::kMaxNumber - d) / 10) return false;  // n * 10 + d > kMaxNumber, without overflowing
        n = n * 10 + d;
        ++p;
    }
    *out = n;
    return p > start;
}

// "{n}" or "{n+}" at the very end of the line: 1 with *n set, 0 when there is none,
// -1 when it is there but its number is too large.
int trailingLiteral(const QByteArray& line, quint64* n) {
    if (!line.endsWith('}')) return 0;
    const qsizetype open = line.lastIndexOf('{');
    if (open < 0) return 0;
    qsizetype p = open + 1;
    const qsizetype digitsStart = p;
    while (p < line.size() && isDigit(line.at(p))) ++p;
    if (p == digitsStart) return 0;
    const qsizetype digitsEnd = p;
    if (p < line.size() && line.at(p) == '+') ++p;
    if (p != line.size() - 1) return 0;
    qsizetype q = digitsStart;
    if (!parseNumber(line.left(digitsEnd), q, n)) return -1;
    return 1;
}

// A quoted string from the '"' at line[p], past the closing '"' (RFC 5804 4: '\\' escapes
// only '"' and '\\', no NUL or CR; at most Parser::kMaxQuoted bytes); the error, if any.
std::optional<QString> quotedString(const QByteArray& line, qsizetype& p, QByteArray* value) {
    ++p;
    bool closed = false;
    while (p < line.size()) {
        char q = line.at(p++);
        if (q == '"') {
            closed = true;
            break;
        }
        if (q == '\\') {
            if (p >= line.size() || (line.at(p) != '"' && line.at(p) != '\\'))
                return QStringLiteral("Invalid escape in a quoted string");
            q = line.at(p++);
        } else if (q == '\0' || q == '\r') {
            return QStringLiteral("Invalid character in a quoted string");
        }
        if (value->size() >= Parser::kMaxQuoted) return QStringLiteral("Quoted string too long (use a literal)");
        value->append(q);
    }
    if (!closed) return QStringLiteral("Unterminated quoted string");
    return std::nullopt;
}
}  // namespace

void Parser::reset() {
    m_line.clear();
    m_inLiteral = false;
    m_literalLeft = 0;
    m_literalTotal = 0;
    m_firstLine = true;
    m_command = Command{};
    m_error.clear();
}

Parser::Result Parser::finish(qsizetype used) {
    Result r;
    r.used = used;
    if (!m_error.isEmpty()) {
        r.status = Status::Error;
        r.error = m_error;
    } else {
        r.status = Status::Command;
        r.command = std::move(m_command);
    }
    reset();
    return r;
}

Parser::Result Parser::feed(const char* data, qsizetype size) {
    qsizetype i = 0;
    auto fatal = [this, &i](const QString& why) {
        reset();
        Result r;
        r.status = Status::Fatal;
        r.used = i;
        r.error = why;
        return r;
    };
    while (i < size) {
        if (m_inLiteral) {
            const qint64 take = std::min<qint64>(size - i, m_literalLeft);
            if (m_error.isEmpty()) m_command.arguments.last().value.append(data + i, qsizetype(take));
            i += qsizetype(take);
            m_literalLeft -= take;
            if (m_literalLeft == 0) m_inLiteral = false;  // the command goes on on the next line
            continue;
        }
        const void* nl = std::memchr(data + i, '\n', size_t(size - i));
        // The line's octets without its LF may be at most maxLine - 1 (the CR counts).
        const qsizetype room = qsizetype(m_limits.maxLine) - 1 - m_line.size();
        if (!nl) {
            if (size - i > room) {
                i = size;
                return fatal(QStringLiteral("Line too long"));
            }
            m_line.append(data + i, size - i);
            i = size;
            break;
        }
        const qsizetype take = static_cast<const char*>(nl) - (data + i);
        if (take > room) {
            i += take + 1;
            return fatal(QStringLiteral("Line too long"));
        }
        m_line.append(data + i, take);
        i += take + 1;
        QByteArray line = std::move(m_line);
        m_line = QByteArray();
        if (line.endsWith('\r')) line.chop(1);

        bool literalFollows = false;
        if (m_error.isEmpty()) literalFollows = tokenizeLine(line);
        if (!m_error.isEmpty()) {
            // Skipping this command: find its literals by their headers only.
            quint64 n = 0;
            const int t = trailingLiteral(line, &n);
            literalFollows = t == 1;
            if (t == 1) m_literalLeft = qint64(n);
            if (t < 0) return fatal(QStringLiteral("Literal too large"));
        }
        if (literalFollows) {
            // All literals of one command together (n > max - used: no overflow).
            if (m_literalLeft > m_limits.maxLiteral - m_literalTotal) return fatal(QStringLiteral("Literal too large"));
            m_literalTotal += m_literalLeft;
            m_inLiteral = m_literalLeft > 0;
            continue;
        }
        return finish(i);
    }
    Result r;
    r.used = i;
    return r;
}

bool Parser::tokenizeLine(const QByteArray& line) {
    qsizetype p = 0;
    bool spaceFirst = true;  // arguments follow a space, except a SASL response's string
    if (m_firstLine) {
        m_firstLine = false;
        if (m_mode == Mode::Command) {
            while (p < line.size() && isAlpha(line.at(p))) ++p;
            if (p == 0) {
                m_error = line.isEmpty() ? QStringLiteral("Empty command") : QStringLiteral("Expected a command name");
                return false;
            }
            m_command.verb = line.left(p).toUpper();
        } else {
            spaceFirst = false;
        }
    }
    while (p < line.size()) {
        if (spaceFirst) {
            if (line.at(p) != ' ') {
                m_error = QStringLiteral("Expected a space between arguments");
                return false;
            }
            ++p;
        }
        spaceFirst = true;
        if (m_command.arguments.size() >= m_limits.maxArguments) {
            m_error = QStringLiteral("Too many arguments");
            return false;
        }
        if (p >= line.size()) {
            m_error = QStringLiteral("Expected an argument after the space");
            return false;
        }
        const char c = line.at(p);
        Argument arg;
        if (c == '"') {
            if (auto error = quotedString(line, p, &arg.value)) {
                m_error = *error;
                return false;
            }
            m_command.arguments << arg;
        } else if (c == '{') {
            quint64 n = 0;
            const int t = trailingLiteral(line.mid(p), &n);
            if (t <= 0) {
                m_error = t < 0 ? QStringLiteral("Literal too large") : QStringLiteral("Invalid literal");
                return false;
            }
            arg.literal = true;
            m_command.arguments << arg;
            m_literalLeft = qint64(n);
            return true;
        } else if (isDigit(c)) {
            arg.kind = Argument::Kind::Number;
            const qsizetype start = p;
            if (!parseNumber(line, p, &arg.number)) {
                m_error = QStringLiteral("Number too large");
                return false;
            }
            arg.value = line.mid(start, p - start);
            m_command.arguments << arg;
        } else {
            m_error = QStringLiteral("Expected a string or a number");
            return false;
        }
    }
    return false;
}

}  // namespace postern::managesieve
