// header_identity.cpp — see header_identity.h.
//
// Wire grammar handled by parseMailboxList (RFC 5322 3.4, with CFWS between
// all tokens and the obsolete forms noted):
//   mailbox-list = mailbox *("," mailbox)
//   address-list = address *("," address)          ; when groups are allowed
//   address      = mailbox / group
//   group        = display-name ":" [mailbox-list] ";"
//   mailbox      = name-addr / addr-spec
//   name-addr    = [display-name] "<" addr-spec ">"
//   display-name = word *(word / ".")               ; obs-phrase allows the dots
//   addr-spec    = local-part "@" domain
//   local-part   = word *("." word)                 ; dot-atom, quoted string, obs-local-part
//   domain       = atom *("." atom) / domain-literal
//   word         = atom / quoted-string
#include "header_identity.h"

#include "message.h"

#include "core/address.h"

namespace postern::mail {

namespace {

bool isWsp(char c) {
    return c == ' ' || c == '\t';
}

// atext of a header (RFC 6532 3.2: every UTF-8 byte >= 0x80 belongs to UTF8-non-ascii): the
// one check of core/address.h, taken a byte at a time by the tokenizer.
bool isAtextByte(char c) {
    return isAtext(char32_t(uchar(c)), NonAscii::Any);
}

struct Token {
    enum Kind { Atom, Quoted, Literal, Special } kind;
    QByteArray text;  // Atom: as written; Quoted: content unescaped; Literal: "[...]"; Special: the one byte
};

// From the '(' at s[i], past the matching ')' (false: unterminated or nested too deep).
bool skipComment(const QByteArray& s, qsizetype& i, QString* error) {
    int depth = 0;
    while (i < s.size()) {
        const char d = s.at(i);
        if (d == '\\') {
            if (i + 1 >= s.size()) break;
            i += 2;
            continue;
        }
        if (d == '(' && ++depth > kMaxCommentDepth) {
            *error = QStringLiteral("comments nested deeper than %1").arg(kMaxCommentDepth);
            return false;
        }
        if (d == ')' && --depth == 0) break;
        if (d == '\r' || d == '\n' || d == '\0') break;
        ++i;
    }
    if (i >= s.size() || s.at(i) != ')') {
        *error = QStringLiteral("unterminated comment");
        return false;
    }
    ++i;
    return true;
}

// From the '"' at s[i], past the closing one: the content, unescaped.
std::optional<QByteArray> quotedString(const QByteArray& s, qsizetype& i, QString* error) {
    QByteArray content;
    ++i;
    bool closed = false;
    while (i < s.size()) {
        const char d = s.at(i);
        if (d == '"') {
            closed = true;
            ++i;
            break;
        }
        if (d == '\r' || d == '\n' || d == '\0') break;
        if (d == '\\') {
            if (i + 1 >= s.size() || s.at(i + 1) == '\r' || s.at(i + 1) == '\n' || s.at(i + 1) == '\0') break;
            content += s.at(i + 1);
            i += 2;
            continue;
        }
        content += d;
        ++i;
    }
    if (!closed) {
        *error = QStringLiteral("unterminated quoted string");
        return std::nullopt;
    }
    return content;
}

// From the '[' at s[i], past the ']': "[...]" without its white space.
std::optional<QByteArray> domainLiteral(const QByteArray& s, qsizetype& i, QString* error) {
    QByteArray lit("[");
    ++i;
    bool closed = false;
    while (i < s.size()) {
        const uchar d = uchar(s.at(i));
        if (d == ']') {
            closed = true;
            ++i;
            break;
        }
        if (isWsp(char(d))) {
            ++i;
            continue;
        }
        if (d < 33 || d == '[' || d == '\\' || d == 127) break;
        lit += char(d);
        ++i;
    }
    if (!closed) {
        *error = QStringLiteral("bad domain literal");
        return std::nullopt;
    }
    return lit + ']';
}

// Splits an unfolded field value into tokens, dropping white space and comments.
std::optional<QList<Token>> tokenize(const QByteArray& s, QString* error) {
    QList<Token> out;
    qsizetype i = 0;
    while (i < s.size()) {
        const char c = s.at(i);
        if (isWsp(c)) {
            ++i;
            continue;
        }
        if (c == '(') {  // comment, nested (RFC 5322 3.2.2)
            if (!skipComment(s, i, error)) return std::nullopt;
            continue;
        }
        if (c == '"') {  // quoted-string (RFC 5322 3.2.4)
            auto content = quotedString(s, i, error);
            if (!content) return std::nullopt;
            out.append({Token::Quoted, *content});
            continue;
        }
        if (c == '[') {  // domain-literal (RFC 5322 3.4.1), white space inside dropped
            auto literal = domainLiteral(s, i, error);
            if (!literal) return std::nullopt;
            out.append({Token::Literal, *literal});
            continue;
        }
        if (c == '<' || c == '>' || c == '@' || c == ',' || c == ':' || c == ';' || c == '.') {
            out.append({Token::Special, QByteArray(1, c)});
            ++i;
            continue;
        }
        if (isAtextByte(c)) {
            qsizetype j = i;
            while (j < s.size() && isAtextByte(s.at(j))) ++j;
            out.append({Token::Atom, s.mid(i, j - i)});
            i = j;
            continue;
        }
        *error = QStringLiteral("unexpected character 0x%1").arg(uchar(c), 2, 16, QLatin1Char('0'));
        return std::nullopt;
    }
    return out;
}

class Parser {
public:
    Parser(const QList<Token>& t, QString* error) : m_t(t), m_error(error) {}

    std::optional<QList<IdentityMailbox>> list(bool allowGroups) {
        QList<IdentityMailbox> out;
        if (m_t.isEmpty()) return fail(QStringLiteral("no address"));
        while (true) {
            if (!address(allowGroups, &out)) return std::nullopt;
            if (atEnd()) break;
            if (!isSpecial(',')) return fail(QStringLiteral("expected ',' after an address"));
            ++m_pos;
            if (atEnd()) return fail(QStringLiteral("empty list member"));
        }
        return out;
    }

private:
    std::nullopt_t fail(const QString& why) {
        if (m_error->isEmpty()) *m_error = why;
        return std::nullopt;
    }
    bool failed(const QString& why) {
        fail(why);
        return false;
    }
    bool atEnd() const { return m_pos >= m_t.size(); }
    bool isSpecial(char c) const {
        return !atEnd() && m_t.at(m_pos).kind == Token::Special && m_t.at(m_pos).text.at(0) == c;
    }
    bool isWord() const {
        return !atEnd() && (m_t.at(m_pos).kind == Token::Atom || m_t.at(m_pos).kind == Token::Quoted);
    }

    bool push(QList<IdentityMailbox>* out, IdentityMailbox m) {
        if (out->size() >= kMaxIdentityMailboxes)
            return failed(QStringLiteral("more than %1 addresses").arg(kMaxIdentityMailboxes));
        out->append(std::move(m));
        return true;
    }

    // address / mailbox: starts with a phrase (display name, group name or local part).
    bool address(bool allowGroups, QList<IdentityMailbox>* out) {
        const qsizetype phraseStart = m_pos;
        while (isWord() || (isSpecial('.') && m_pos > phraseStart)) ++m_pos;
        const qsizetype phraseEnd = m_pos;
        if (isSpecial('<')) {
            IdentityMailbox m;
            m.display = displayName(phraseStart, phraseEnd);
            if (!angleAddr(&m)) return false;
            return push(out, m);
        }
        if (isSpecial('@')) {
            IdentityMailbox m;
            if (!localPart(phraseStart, phraseEnd, &m)) return false;
            ++m_pos;  // '@'
            if (!domain(&m)) return false;
            return push(out, m);
        }
        if (isSpecial(':') && allowGroups && phraseEnd > phraseStart) {
            ++m_pos;
            if (isSpecial(';')) {  // an empty group
                ++m_pos;
                return true;
            }
            while (true) {
                if (!address(false, out)) return false;
                if (isSpecial(';')) {
                    ++m_pos;
                    return true;
                }
                if (!isSpecial(',')) return failed(QStringLiteral("expected ',' or ';' in a group"));
                ++m_pos;
            }
        }
        if (isSpecial(':'))
            return failed(allowGroups ? QStringLiteral("a group needs a name")
                                      : QStringLiteral("group not allowed here"));
        return failed(atEnd() ? QStringLiteral("address without '@'")
                              : QStringLiteral("unexpected '%1'").arg(QString::fromUtf8(m_t.at(m_pos).text.left(40))));
    }

    QString displayName(qsizetype from, qsizetype to) const {
        QByteArray raw;
        for (qsizetype k = from; k < to; ++k) {
            const Token& t = m_t.at(k);
            if (!raw.isEmpty() && t.kind != Token::Special) raw += ' ';
            raw += t.text;
        }
        return decodeHeaderText(raw);
    }

    bool angleAddr(IdentityMailbox* m) {
        ++m_pos;  // '<'
        if (isSpecial('@')) return failed(QStringLiteral("source routes are not accepted"));
        const qsizetype start = m_pos;
        while (isWord() || isSpecial('.')) ++m_pos;
        if (!isSpecial('@')) return failed(QStringLiteral("address without '@'"));
        if (!localPart(start, m_pos, m)) return false;
        ++m_pos;  // '@'
        if (!domain(m)) return false;
        if (!isSpecial('>')) return failed(QStringLiteral("expected '>'"));
        ++m_pos;
        return true;
    }

    // word *("." word) from tokens [from, to).
    bool localPart(qsizetype from, qsizetype to, IdentityMailbox* m) {
        if (from == to) return failed(QStringLiteral("empty local part"));
        QString local;
        bool quoted = false;
        for (qsizetype k = from; k < to; ++k) {
            const Token& t = m_t.at(k);
            const bool wordExpected = (k - from) % 2 == 0;
            if (wordExpected != (t.kind != Token::Special)) return failed(QStringLiteral("bad local part"));
            if (t.kind == Token::Quoted) quoted = true;
            local += t.kind == Token::Special ? QStringLiteral(".") : QString::fromUtf8(t.text);
        }
        if ((to - from) % 2 == 0) return failed(QStringLiteral("local part ends with '.'"));
        m->local = local;
        m->quotedLocal = quoted && !isDotAtom(local, NonAscii::Any);
        return true;
    }

    bool domain(IdentityMailbox* m) {
        if (!atEnd() && m_t.at(m_pos).kind == Token::Literal) {
            m->domain = QString::fromUtf8(m_t.at(m_pos).text);
            ++m_pos;
            return true;
        }
        QString d;
        while (true) {
            if (atEnd() || m_t.at(m_pos).kind != Token::Atom) return failed(QStringLiteral("bad domain"));
            d += QString::fromUtf8(m_t.at(m_pos).text);
            ++m_pos;
            if (!isSpecial('.')) break;
            d += QLatin1Char('.');
            ++m_pos;
        }
        m->domain = d;
        return true;
    }

    const QList<Token>& m_t;
    QString* m_error;
    qsizetype m_pos = 0;
};

// Printable ASCII (space included), shortened: for reply texts.
QString shown(const QString& s) {
    QString out;
    for (QChar c : s.left(200)) out += (c.unicode() >= 0x20 && c.unicode() < 0x7f) ? c : QLatin1Char('?');
    return out;
}

}  // namespace

QString IdentityMailbox::address() const {
    if (!quotedLocal) return local + QLatin1Char('@') + domain;
    QString l = local;
    l.replace(QLatin1Char('\\'), QStringLiteral("\\\\"));
    l.replace(QLatin1Char('"'), QStringLiteral("\\\""));
    return QLatin1Char('"') + l + QStringLiteral("\"@") + domain;
}

QList<FieldSpan> headerFieldSpans(const QByteArray& message, const QList<QByteArray>& names) {
    QList<FieldSpan> out;
    bool inWanted = false;  // the current field is one of `names`
    bool anyField = false;
    qsizetype pos = 0;
    while (pos < message.size()) {
        const qsizetype nl = message.indexOf('\n', pos);
        const qsizetype next = nl < 0 ? message.size() : nl + 1;
        qsizetype end = nl < 0 ? message.size() : nl;
        if (end > pos && message.at(end - 1) == '\r') --end;
        if (end == pos) break;  // the empty line: end of the header (RFC 5322 2.1)
        const QByteArray line = message.mid(pos, end - pos);
        const qsizetype lineStart = pos;
        pos = next;
        if (isWsp(line.at(0)) && anyField) {  // continuation (RFC 5322 2.2.3: unfolding removes only the CRLF)
            if (inWanted) {
                out.last().value += line;
                out.last().end = next;
            }
            continue;
        }
        anyField = true;
        inWanted = false;
        const qsizetype colon = line.indexOf(':');
        if (colon <= 0) continue;
        const QByteArray name = line.left(colon).trimmed();
        for (const QByteArray& n : names) {
            if (name.compare(n, Qt::CaseInsensitive) == 0) {
                inWanted = true;
                out.append({line.mid(colon + 1), lineStart, next});
                break;
            }
        }
    }
    return out;
}

QList<QByteArray> headerFields(const QByteArray& message, const QList<QByteArray>& names) {
    QList<QByteArray> out;
    for (const FieldSpan& f : headerFieldSpans(message, names)) out.append(f.value);
    return out;
}

std::optional<QList<IdentityMailbox>> parseMailboxList(const QByteArray& value, bool allowGroups, QString* error) {
    QString why;
    auto tokens = tokenize(value, &why);
    if (!tokens) {
        if (error) *error = why;
        return std::nullopt;
    }
    Parser p(*tokens, &why);
    auto out = p.list(allowGroups);
    if (!out && error) *error = why;
    return out;
}

HeaderIdentity headerIdentity(const QByteArray& message) {
    HeaderIdentity id;
    const QList<QByteArray> from = headerFields(message, {QByteArrayLiteral("From")});
    const QList<QByteArray> sender = headerFields(message, {QByteArrayLiteral("Sender")});
    id.hasFrom = !from.isEmpty();
    if (from.size() > 1) {
        id.problem = HeaderIdentity::Problem::DuplicateFrom;
        return id;
    }
    if (sender.size() > 1) {
        id.problem = HeaderIdentity::Problem::DuplicateSender;
        return id;
    }
    if (id.hasFrom) {
        QString why;
        auto list = parseMailboxList(from.first(), true, &why);  // RFC 6854: groups allowed in From:
        if (!list) {
            id.problem = HeaderIdentity::Problem::BadFrom;
            id.detail = why;
            return id;
        }
        if (list->isEmpty()) {
            id.problem = HeaderIdentity::Problem::EmptyFrom;
            return id;
        }
        id.from = *list;
    }
    if (!sender.isEmpty()) {
        QString why;
        auto list = parseMailboxList(sender.first(), false, &why);
        if (list && list->size() != 1) why = QStringLiteral("more than one address");  // RFC 5322 3.6.2: one mailbox
        if (!list || list->size() != 1) {
            id.problem = HeaderIdentity::Problem::BadSender;
            id.detail = why;
            return id;
        }
        id.sender = list->first();
    }
    return id;
}

std::optional<QString> checkSubmitterIdentity(const QByteArray& message, const QString& user,
                                              const std::function<bool(const QString& address)>& mayUse) {
    const HeaderIdentity id = headerIdentity(message);
    switch (id.problem) {
        case HeaderIdentity::Problem::None:
            break;
        case HeaderIdentity::Problem::DuplicateFrom:
            return QStringLiteral("Message has more than one From: header field");
        case HeaderIdentity::Problem::DuplicateSender:
            return QStringLiteral("Message has more than one Sender: header field");
        case HeaderIdentity::Problem::BadFrom:
            return QStringLiteral("From: header field cannot be parsed (%1)").arg(shown(id.detail));
        case HeaderIdentity::Problem::BadSender:
            return QStringLiteral("Sender: header field cannot be parsed (%1)").arg(shown(id.detail));
        case HeaderIdentity::Problem::EmptyFrom:
            return QStringLiteral("From: header field names no address");
    }
    for (const IdentityMailbox& m : id.from)
        if (!mayUse(m.address()))
            return QStringLiteral("From: header address <%1> not owned by user %2")
                .arg(shown(m.address()), shown(user));
    if (id.sender && !mayUse(id.sender->address()))
        return QStringLiteral("Sender: header address <%1> not owned by user %2")
            .arg(shown(id.sender->address()), shown(user));
    return std::nullopt;
}

}  // namespace postern::mail
