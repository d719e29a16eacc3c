// imap_client_parser.cpp — see imap_client_parser.h.
#include "imap_client_parser.h"

#include <limits>

namespace postern::ctl {

bool ImapValue::isNumber() const {
    if (kind != Kind::Atom || text.isEmpty() || text.size() > 20) return false;
    for (char c : text)
        if (c < '0' || c > '9') return false;
    return true;
}

quint64 ImapValue::number(bool* ok) const {
    if (ok) *ok = false;
    if (!isNumber()) return 0;
    quint64 n = 0;
    for (char c : text) {
        const quint64 d = quint64(c - '0');
        if (n > (std::numeric_limits<quint64>::max() - d) / 10) return 0;
        n = n * 10 + d;
    }
    if (ok) *ok = true;
    return n;
}

void ImapResponseParser::feed(QByteArrayView bytes) {
    if (!m_failed) m_buf.append(bytes.data(), bytes.size());
}

ImapResponseParser::Result ImapResponseParser::fail(const QString& why) {
    m_failed = true;
    m_error = why;
    m_buf.clear();
    return Result::Error;
}

ImapResponseParser::Result ImapResponseParser::frame() {
    for (;;) {
        if (m_literalLeft > 0) {
            const qint64 avail = m_buf.size() - m_scan;
            if (avail < m_literalLeft) {
                m_literalLeft -= avail;
                m_scan = m_buf.size();
                return Result::NeedMore;
            }
            m_scan += qsizetype(m_literalLeft);
            m_literalLeft = 0;
            m_lineStart = m_scan;
            continue;
        }
        const qsizetype nl = m_buf.indexOf('\n', m_scan);
        if (nl < 0) {
            if (m_buf.size() - m_lineStart > m_limits.maxLine)
                return fail(QStringLiteral("a response line is longer than %1 bytes").arg(m_limits.maxLine));
            m_scan = m_buf.size();
            return Result::NeedMore;
        }
        if (nl - m_lineStart > m_limits.maxLine)
            return fail(QStringLiteral("a response line is longer than %1 bytes").arg(m_limits.maxLine));
        qsizetype lineEnd = nl;
        if (lineEnd > m_lineStart && m_buf.at(lineEnd - 1) == '\r') --lineEnd;
        // A literal announcement "{n}" ends the line.
        if (lineEnd > m_lineStart && m_buf.at(lineEnd - 1) == '}') {
            qsizetype open = lineEnd - 2;
            while (open >= m_lineStart && m_buf.at(open) >= '0' && m_buf.at(open) <= '9') --open;
            if (open >= m_lineStart && m_buf.at(open) == '{' && open < lineEnd - 2) {
                qint64 n = 0;
                for (qsizetype i = open + 1; i < lineEnd - 1; ++i) {
                    const int d = m_buf.at(i) - '0';
                    if (n > (m_limits.maxLiteral - d) / 10)
                        return fail(QStringLiteral("a literal is larger than %1 bytes").arg(m_limits.maxLiteral));
                    n = n * 10 + d;
                }
                const qint64 used = nl + 1;
                if (used > m_limits.maxResponse || n > m_limits.maxResponse - used)
                    return fail(QStringLiteral("a response is larger than %1 bytes").arg(m_limits.maxResponse));
                m_spans << Span{nl + 1, n};
                m_literalLeft = n;
                m_scan = nl + 1;
                m_lineStart = m_scan;
                if (n == 0) continue;
                continue;
            }
        }
        if (nl + 1 > m_limits.maxResponse)
            return fail(QStringLiteral("a response is larger than %1 bytes").arg(m_limits.maxResponse));
        m_scan = nl + 1;
        return Result::Response;
    }
}

ImapResponseParser::Result ImapResponseParser::next(ImapResponse* out) {
    if (m_failed) return Result::Error;
    const Result r = frame();
    if (r != Result::Response) return r;
    const qsizetype end = m_scan;
    *out = ImapResponse();
    m_values = 0;
    const bool ok = parse(end, out);
    m_buf.remove(0, end);
    m_scan = m_lineStart = 0;
    m_spans.clear();
    if (!ok) return fail(m_error.isEmpty() ? QStringLiteral("malformed response") : m_error);
    return Result::Response;
}

namespace {
bool isAtomStop(char c) {
    return c == ' ' || c == '(' || c == ')' || c == '"' || c == '\r' || c == '\n' || c == '{' || uchar(c) < 0x20;
}
}  // namespace

bool ImapResponseParser::parse(qsizetype end, ImapResponse* out) {
    const QByteArray& b = m_buf;
    qsizetype firstLineEnd = b.indexOf('\n');
    qsizetype textEnd = firstLineEnd;
    if (textEnd > 0 && b.at(textEnd - 1) == '\r') --textEnd;
    qsizetype pos = 0;
    if (b.startsWith('+')) {
        out->type = ImapResponse::Type::Continuation;
        out->text = b.mid(1, textEnd - 1).trimmed();
        return true;
    }
    if (b.startsWith("* ")) {
        out->type = ImapResponse::Type::Untagged;
        pos = 2;
    } else {
        const qsizetype sp = b.indexOf(' ');
        if (sp <= 0 || sp > textEnd) {
            m_error = QStringLiteral("a response without a tag");
            return false;
        }
        out->type = ImapResponse::Type::Tagged;
        out->tag = b.left(sp);
        pos = sp + 1;
    }
    // Status responses: the text is free; only the code in brackets is read.
    qsizetype wordEnd = pos;
    while (wordEnd < textEnd && b.at(wordEnd) != ' ') ++wordEnd;
    const QByteArray word = b.mid(pos, wordEnd - pos).toUpper();
    if (word == "OK" || word == "NO" || word == "BAD" || word == "BYE" || word == "PREAUTH") {
        out->status = word;
        pos = wordEnd;
        if (pos < textEnd) ++pos;
        if (pos < textEnd && b.at(pos) == '[') {
            const qsizetype close = b.indexOf(']', pos);
            if (close < 0 || close > textEnd) {
                m_error = QStringLiteral("a response code without ']'");
                return false;
            }
            out->code = b.mid(pos + 1, close - pos - 1);
            pos = close + 1;
            if (pos < textEnd && b.at(pos) == ' ') ++pos;
        }
        out->text = b.mid(pos, textEnd - pos);
        return end == firstLineEnd + 1 || (m_error = QStringLiteral("a status response with a literal"), false);
    }
    if (out->type == ImapResponse::Type::Tagged) {
        m_error = QStringLiteral("a tagged response that is not OK, NO or BAD");
        return false;
    }
    return parseValues(pos, end, out->values, 0, false);
}

bool ImapResponseParser::parseValues(qsizetype& pos, qsizetype end, QList<ImapValue>& out, int depth, bool inList) {
    const QByteArray& b = m_buf;
    for (;;) {
        while (pos < end && b.at(pos) == ' ') ++pos;
        if (pos >= end) {
            m_error = QStringLiteral("unexpected end of a response");
            return false;
        }
        const char c = b.at(pos);
        if (c == '\r' || c == '\n') {
            if (inList) {
                m_error = QStringLiteral("a list without ')'");
                return false;
            }
            return true;
        }
        if (++m_values > m_limits.maxValues) {
            m_error = QStringLiteral("more than %1 values in one response").arg(m_limits.maxValues);
            return false;
        }
        ImapValue v;
        bool ok = true;
        if (c == '(') {
            if (depth + 1 > m_limits.maxDepth) {
                m_error = QStringLiteral("lists nested deeper than %1").arg(m_limits.maxDepth);
                return false;
            }
            ++pos;
            v.kind = ImapValue::Kind::List;
            ok = parseValues(pos, end, v.list, depth + 1, true);
        } else if (c == ')') {
            if (!inList) {
                m_error = QStringLiteral("')' without '('");
                return false;
            }
            --m_values;
            ++pos;
            return true;
        } else if (c == '"') {
            ok = parseQuoted(pos, end, &v);
        } else if (c == '{' || (c == '~' && pos + 1 < end && b.at(pos + 1) == '{')) {
            ok = parseLiteral(pos, &v);
        } else {
            ok = parseAtom(pos, end, &v);
        }
        if (!ok) return false;
        out << v;
    }
}

// A quoted string from its opening '"' (at pos); only \" and \\ are escapes.
bool ImapResponseParser::parseQuoted(qsizetype& pos, qsizetype end, ImapValue* v) {
    const QByteArray& b = m_buf;
    v->kind = ImapValue::Kind::String;
    ++pos;
    for (;;) {
        if (pos >= end || b.at(pos) == '\r' || b.at(pos) == '\n') {
            m_error = QStringLiteral("a quoted string without its end");
            return false;
        }
        const char q = b.at(pos++);
        if (q == '"') return true;
        if (q == '\\') {
            if (pos >= end || (b.at(pos) != '"' && b.at(pos) != '\\')) {
                m_error = QStringLiteral("a bad escape in a quoted string");
                return false;
            }
            v->text += b.at(pos++);
        } else {
            v->text += q;
        }
    }
}

// A literal: only where framing found an announcement at the end of a line.
bool ImapResponseParser::parseLiteral(qsizetype& pos, ImapValue* v) {
    const QByteArray& b = m_buf;
    const qsizetype nl = b.indexOf('\n', pos);
    const Span* span = nullptr;
    for (const Span& s : std::as_const(m_spans))
        if (s.at == nl + 1) span = &s;
    if (nl < 0 || !span) {
        m_error = QStringLiteral("'{' that is not a literal");
        return false;
    }
    v->kind = ImapValue::Kind::String;
    v->text = b.mid(span->at, qsizetype(span->length));
    pos = span->at + qsizetype(span->length);
    return true;
}

// An atom (NIL included), with any "[...]" section in it.
bool ImapResponseParser::parseAtom(qsizetype& pos, qsizetype end, ImapValue* v) {
    const QByteArray& b = m_buf;
    const char c = b.at(pos);
    const qsizetype start = pos;
    while (pos < end && !isAtomStop(b.at(pos))) {
        if (b.at(pos) == '[') {  // a section: spaces and parentheses allowed up to ']'
            const qsizetype close = b.indexOf(']', pos);
            const qsizetype nl = b.indexOf('\n', pos);
            if (close < 0 || (nl >= 0 && close > nl)) {
                m_error = QStringLiteral("'[' without ']'");
                return false;
            }
            pos = close + 1;
            continue;
        }
        ++pos;
    }
    if (pos == start) {
        m_error = QStringLiteral("unexpected character 0x%1").arg(uchar(c), 2, 16, QLatin1Char('0'));
        return false;
    }
    v->text = b.mid(start, pos - start);
    v->kind = v->text.compare("NIL", Qt::CaseInsensitive) == 0 ? ImapValue::Kind::Nil : ImapValue::Kind::Atom;
    return true;
}

}  // namespace postern::ctl
