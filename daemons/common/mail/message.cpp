// message.cpp — see message.h.
#include "message.h"

#include <QLocale>
#include <QTimeZone>

#include <iconv.h>
#include <cerrno>
#include <cstring>
#include <optional>

namespace postern::mail {

namespace {

bool isWsp(char c) {
    return c == ' ' || c == '\t';
}

// End of the line starting at `pos` (index just after its LF, or `end`).
qsizetype nextLine(const QByteArray& d, qsizetype pos, qsizetype end) {
    const char* p = static_cast<const char*>(std::memchr(d.constData() + pos, '\n', size_t(end - pos)));
    return p ? (p - d.constData()) + 1 : end;
}

bool isBlankLine(const QByteArray& d, qsizetype start, qsizetype lineEnd) {
    const qsizetype len = lineEnd - start;
    if (len == 0) return false;
    if (len == 1) return d.at(start) == '\n';
    if (len == 2) return d.at(start) == '\r' && d.at(start + 1) == '\n';
    return false;
}

Header parseHeaderRange(const QByteArray& d, qsizetype start, qsizetype end, qsizetype* bodyStart) {
    Header h;
    qsizetype pos = start;
    while (pos < end) {
        const qsizetype le = nextLine(d, pos, end);
        if (isBlankLine(d, pos, le)) {
            pos = le;
            break;
        }
        QByteArray line = d.mid(pos, le - pos);
        while (line.endsWith('\n') || line.endsWith('\r')) line.chop(1);
        if (!line.isEmpty() && isWsp(line.at(0)) && !h.fields.isEmpty()) {
            h.fields.last().value += ' ' + line.trimmed();  // unfold (RFC 5322 2.2.3)
            h.fields.last().end = le;
        } else {
            const qsizetype colon = line.indexOf(':');
            if (colon > 0 && h.fields.size() < kMaxFields) {
                HeaderField f;
                f.name = line.left(colon).trimmed();
                f.value = line.mid(colon + 1).trimmed();
                f.start = pos;
                f.end = le;
                h.fields.append(f);
            }
        }
        pos = le;
    }
    if (bodyStart) *bodyStart = pos;
    return h;
}

// ---------------------------------------------------------------- tokenizer for structured fields

// Removes (comments), honouring quoted strings and escapes.
QByteArray stripComments(const QByteArray& in) {
    QByteArray out;
    int depth = 0;
    bool quoted = false;
    for (qsizetype i = 0; i < in.size(); ++i) {
        const char c = in.at(i);
        if (c == '\\' && i + 1 < in.size() && (quoted || depth > 0)) {
            if (!depth) {
                out += c;
                out += in.at(i + 1);
            }
            ++i;
            continue;
        }
        if (!depth && c == '"') quoted = !quoted;
        if (!quoted) {
            if (c == '(') {
                ++depth;
                continue;
            }
            if (c == ')' && depth > 0) {
                --depth;
                continue;
            }
        }
        if (!depth) out += c;
    }
    return out;
}

QByteArray unquote(const QByteArray& v) {
    QByteArray t = v.trimmed();
    if (t.size() >= 2 && t.front() == '"' && t.back() == '"') {
        QByteArray out;
        for (qsizetype i = 1; i + 1 < t.size(); ++i) {
            if (t.at(i) == '\\' && i + 2 < t.size()) ++i;
            out += t.at(i);
        }
        return out;
    }
    return t;
}

QString charsetDecode(const QByteArray& bytes, const QByteArray& charsetIn) {
    const QByteArray cs = charsetIn.toLower();
    if (cs.isEmpty() || cs == "utf-8" || cs == "utf8" || cs == "us-ascii" || cs == "ascii") {
        const QString s = QString::fromUtf8(bytes);
        if (s.toUtf8() == bytes || !cs.isEmpty()) return s;
        return QString::fromLatin1(bytes);
    }
    if (cs == "iso-8859-1" || cs == "latin1") return QString::fromLatin1(bytes);
    iconv_t cd = iconv_open("UTF-8", cs.constData());
    if (cd == iconv_t(-1)) return QString::fromLatin1(bytes);
    QByteArray out(bytes.size() * 4 + 16, '\0');
    char* in = const_cast<char*>(bytes.constData());
    size_t inLeft = size_t(bytes.size());
    char* o = out.data();
    size_t outLeft = size_t(out.size());
    while (inLeft > 0) {
        if (iconv(cd, &in, &inLeft, &o, &outLeft) == size_t(-1)) {
            if (errno == EILSEQ || errno == EINVAL) {  // skip the bad byte
                ++in;
                --inLeft;
                if (outLeft >= 3) {
                    std::memcpy(o, "\xEF\xBF\xBD", 3);  // U+FFFD
                    o += 3;
                    outLeft -= 3;
                }
                continue;
            }
            break;
        }
    }
    iconv_close(cd);
    out.truncate(out.size() - qsizetype(outLeft));
    return QString::fromUtf8(out);
}

QByteArray percentDecode(const QByteArray& v) {
    return QByteArray::fromPercentEncoding(v);
}

// "type/subtype; a=b; c*=utf-8''x" -> value + params (RFC 2045 5.1, RFC 2231).
std::pair<QByteArray, MimeParams> parseParameterized(const QByteArray& raw) {
    const QByteArray text = stripComments(raw);
    QList<QByteArray> pieces;
    QByteArray cur;
    bool quoted = false;
    for (qsizetype i = 0; i < text.size(); ++i) {
        const char c = text.at(i);
        if (c == '\\' && quoted && i + 1 < text.size()) {
            cur += c;
            cur += text.at(++i);
            continue;
        }
        if (c == '"') quoted = !quoted;
        if (c == ';' && !quoted) {
            pieces << cur;
            cur.clear();
            continue;
        }
        cur += c;
    }
    pieces << cur;
    MimeParams params;
    struct Cont {
        QMap<int, std::pair<QByteArray, bool>> segments;  // index -> (value, extended)
    };
    QMap<QString, Cont> continuations;
    for (qsizetype i = 1; i < pieces.size(); ++i) {
        const QByteArray& p = pieces.at(i);
        const qsizetype eq = p.indexOf('=');
        if (eq <= 0) continue;
        QString name = QString::fromLatin1(p.left(eq).trimmed()).toLower();
        QByteArray value = p.mid(eq + 1).trimmed();
        bool extended = false;
        if (name.endsWith(QLatin1Char('*'))) {
            extended = true;
            name.chop(1);
        }
        int index = -1;
        const qsizetype star = name.lastIndexOf(QLatin1Char('*'));
        if (star > 0) {
            bool ok = false;
            const int n = name.mid(star + 1).toInt(&ok);
            if (ok && n >= 0 && n < 1000) {
                index = n;
                name = name.left(star);
            }
        }
        if (index < 0 && !extended) {
            params.list.append({name, QString::fromUtf8(unquote(value))});
            continue;
        }
        continuations[name].segments.insert(index < 0 ? 0 : index, {extended ? value : unquote(value), extended});
    }
    for (auto it = continuations.cbegin(); it != continuations.cend(); ++it) {
        QByteArray charset;
        QByteArray joined;
        bool first = true;
        for (const auto& [value, extended] : it->segments) {
            QByteArray v = value;
            if (extended) {
                if (first) {  // charset'language'value
                    const qsizetype q1 = v.indexOf('\'');
                    const qsizetype q2 = q1 >= 0 ? v.indexOf('\'', q1 + 1) : -1;
                    if (q2 > q1) {
                        charset = v.left(q1);
                        v = v.mid(q2 + 1);
                    }
                }
                v = percentDecode(v);
            }
            joined += v;
            first = false;
        }
        params.list.append({it.key(), charsetDecode(joined, charset)});
    }
    return {pieces.first().trimmed(), params};
}

void fillPart(const QByteArray& d, MimePart& part, const Header& h, const QString& defaultType,
              const QString& defaultSub) {
    const QByteArray ct = h.value("content-type");
    part.type = defaultType;
    part.subtype = defaultSub;
    if (!ct.isEmpty()) {
        auto [value, params] = parseParameterized(ct);
        const qsizetype slash = value.indexOf('/');
        if (slash > 0) {
            part.type = QString::fromLatin1(value.left(slash).trimmed()).toLower();
            part.subtype = QString::fromLatin1(value.mid(slash + 1).trimmed()).toLower();
            part.params = params;
        }
        // RFC 2045 5.2: a malformed Content-Type means text/plain; charset=us-ascii.
    }
    if (part.type == u"text" && part.params.get(QStringLiteral("charset")).isEmpty() && ct.isEmpty())
        part.params.list.append({QStringLiteral("charset"), QStringLiteral("us-ascii")});
    const QByteArray cte = h.value("content-transfer-encoding");
    if (!cte.isEmpty()) part.encoding = QString::fromLatin1(stripComments(cte).trimmed()).toLower();
    part.id = QString::fromUtf8(h.value("content-id"));
    part.description = QString::fromUtf8(h.value("content-description"));
    part.md5 = QString::fromLatin1(h.value("content-md5"));
    part.location = QString::fromUtf8(h.value("content-location"));
    part.language = QString::fromUtf8(stripComments(h.value("content-language")).trimmed());
    const QByteArray cd = h.value("content-disposition");
    if (!cd.isEmpty()) {
        auto [value, params] = parseParameterized(cd);
        part.disposition = QString::fromLatin1(value).toLower();
        part.dispositionParams = params;
    }
    Q_UNUSED(d);
}

qint64 countLines(const QByteArray& d, qsizetype start, qsizetype end) {
    qint64 n = 0;
    const char* p = d.constData() + start;
    const char* e = d.constData() + end;
    while (p < e && (p = static_cast<const char*>(std::memchr(p, '\n', size_t(e - p)))) != nullptr) {
        ++n;
        ++p;
    }
    // A last line without a newline still counts.
    if (end > start && d.at(end - 1) != '\n') ++n;
    return n;
}

void parsePart(const QByteArray& d, qsizetype start, qsizetype end, int depth, int& budget, MimePart& part,
               const QString& defaultType, const QString& defaultSub) {
    part.headerStart = start;
    qsizetype bodyStart = end;
    const Header h = parseHeaderRange(d, start, end, &bodyStart);
    part.headerEnd = bodyStart;
    part.bodyStart = bodyStart;
    part.bodyEnd = end;
    fillPart(d, part, h, defaultType, defaultSub);
    // Only text and message parts have a line count in BODYSTRUCTURE (RFC 3501 7.4.2):
    // counting the others (a multipart spans the whole message, attachments most of it)
    // was 13 % of SEARCH BODY's time.
    if (part.type == u"text" || part.isMessage()) part.lines = countLines(d, part.bodyStart, part.bodyEnd);
    if (depth >= kMaxDepth || --budget <= 0) return;  // deeper structure is opaque
    if (part.isMultipart()) {
        const QByteArray boundary = part.params.get(QStringLiteral("boundary")).toUtf8();
        if (boundary.isEmpty() || boundary.size() > 200) return;
        const QByteArray delim = "--" + boundary;
        const bool digest = part.subtype == u"digest";
        qsizetype pos = part.bodyStart;
        qsizetype partStart = -1;
        while (pos < end) {
            const qsizetype le = nextLine(d, pos, end);
            // (d.mid(pos, delim.size()) == delim without the copy: the delimiter is compared
            // with the bytes from pos whatever their line or part.)
            if (d.size() - pos >= delim.size() &&
                std::memcmp(d.constData() + pos, delim.constData(), size_t(delim.size())) == 0) {
                const QByteArray rest = d.mid(pos + delim.size(), le - pos - delim.size()).trimmed();
                const bool closing = rest.startsWith("--");
                if (rest.isEmpty() || closing) {
                    if (partStart >= 0) {
                        // The CRLF before the delimiter belongs to the delimiter (RFC 2046 5.1.1).
                        qsizetype partEnd = pos;
                        if (partEnd > partStart && d.at(partEnd - 1) == '\n') --partEnd;
                        if (partEnd > partStart && d.at(partEnd - 1) == '\r') --partEnd;
                        MimePart child;
                        parsePart(d, partStart, std::max(partStart, partEnd), depth + 1, budget, child,
                                  digest ? QStringLiteral("message") : QStringLiteral("text"),
                                  digest ? QStringLiteral("rfc822") : QStringLiteral("plain"));
                        part.children.append(child);
                        if (budget <= 0) return;
                    }
                    if (closing) return;
                    partStart = le;
                }
            }
            pos = le;
        }
        if (partStart >= 0 && partStart < end) {  // unterminated last part
            MimePart child;
            parsePart(d, partStart, end, depth + 1, budget, child, QStringLiteral("text"), QStringLiteral("plain"));
            part.children.append(child);
        }
    } else if (part.isMessage()) {
        MimePart inner;
        parsePart(d, part.bodyStart, part.bodyEnd, depth + 1, budget, inner, QStringLiteral("text"),
                  QStringLiteral("plain"));
        part.children.append(inner);
    }
}

}  // namespace

QByteArray Header::value(const char* name) const {
    for (const HeaderField& f : fields)
        if (qstricmp(f.name.constData(), name) == 0) return f.value;
    return {};
}

QList<QByteArray> Header::values(const char* name) const {
    QList<QByteArray> out;
    for (const HeaderField& f : fields)
        if (qstricmp(f.name.constData(), name) == 0) out << f.value;
    return out;
}

QString MimeParams::get(const QString& name) const {
    for (const auto& [k, v] : list)
        if (k == name) return v;
    return {};
}

Header parseHeader(const QByteArray& message, qsizetype* bodyOffset) {
    return parseHeaderRange(message, 0, message.size(), bodyOffset);
}

// The same walk as parseHeaderRange(): the same fields (the kMaxFields limit included)
// and continuation lines, but only the values of fields named `name` are built.
QList<QByteArray> headerValues(const QByteArray& d, const char* name) {
    QList<QByteArray> out;
    const qsizetype nameLen = qsizetype(std::strlen(name));
    const qsizetype end = d.size();
    qsizetype pos = 0;
    int fields = 0;
    bool lastMatches = false;  // the last field (the one a continuation line extends) is wanted
    while (pos < end) {
        const qsizetype le = nextLine(d, pos, end);
        if (isBlankLine(d, pos, le)) break;
        qsizetype lineEnd = le;
        while (lineEnd > pos && (d.at(lineEnd - 1) == '\n' || d.at(lineEnd - 1) == '\r')) --lineEnd;
        const QByteArrayView line(d.constData() + pos, lineEnd - pos);
        if (!line.isEmpty() && isWsp(line.at(0)) && fields > 0) {
            if (lastMatches) out.last() += ' ' + line.trimmed().toByteArray();
        } else {
            const qsizetype colon = line.indexOf(':');
            if (colon > 0 && fields < kMaxFields) {
                ++fields;
                QByteArrayView fieldName = line.first(colon).trimmed();
                // Header::values() compares names as C strings: up to a NUL.
                if (const qsizetype nul = fieldName.indexOf('\0'); nul >= 0) fieldName = fieldName.first(nul);
                lastMatches = fieldName.size() == nameLen && qstrnicmp(fieldName.data(), name, size_t(nameLen)) == 0;
                if (lastMatches) out << line.sliced(colon + 1).trimmed().toByteArray();
            }
        }
        pos = le;
    }
    return out;
}

QString decodeCharset(const QByteArray& bytes, const QByteArray& charset) {
    return charsetDecode(bytes, charset);
}

MimePart parseMime(const QByteArray& message) {
    MimePart root;
    int budget = kMaxParts;
    parsePart(message, 0, message.size(), 0, budget, root, QStringLiteral("text"), QStringLiteral("plain"));
    return root;
}

namespace {
// decodeHeaderText for ASCII text without "=?" (most Subject, From and To values): the same
// result as the general loop below, without a QString and a decode per word: whitespace
// that starts a gap is kept with CR and LF as spaces, runs between gaps are kept as they
// are (a CR or LF inside a run included), ASCII decodes to the same characters.
std::optional<QString> decodePlainAsciiHeaderText(const QByteArray& raw) {
    const char* const d = raw.constData();
    const qsizetype n = raw.size();
    for (qsizetype i = 0; i < n; ++i)
        if (uchar(d[i]) >= 0x80 || (d[i] == '=' && i + 1 < n && d[i + 1] == '?')) return std::nullopt;
    QByteArray out(n, Qt::Uninitialized);
    char* o = out.data();
    bool inRun = false;
    for (qsizetype i = 0; i < n; ++i) {
        const char c = d[i];
        if (isWsp(c)) {
            inRun = false;
        } else if (!inRun && (c == '\r' || c == '\n')) {
            o[i] = ' ';
            continue;
        } else {
            inRun = true;
        }
        o[i] = c;
    }
    return QString::fromLatin1(out).trimmed();
}
}  // namespace

QString decodeHeaderText(const QByteArray& raw) {
    if (auto plain = decodePlainAsciiHeaderText(raw)) return *plain;
    QString out;
    qsizetype i = 0;
    bool lastWasEncoded = false;
    QByteArray pendingSpace;
    while (i < raw.size()) {
        if (raw.at(i) == '=' && i + 1 < raw.size() && raw.at(i + 1) == '?') {
            // =?charset?enc?text?=
            const qsizetype q1 = raw.indexOf('?', i + 2);
            const qsizetype q2 = q1 > 0 ? raw.indexOf('?', q1 + 1) : -1;
            const qsizetype q3 = q2 > 0 ? raw.indexOf("?=", q2 + 1) : -1;
            if (q1 > 0 && q2 == q1 + 2 && q3 > 0 && q3 - i < 1000) {
                QByteArray charset = raw.mid(i + 2, q1 - i - 2);
                const qsizetype star = charset.indexOf('*');  // RFC 2231 language suffix
                if (star >= 0) charset.truncate(star);
                const char enc = char(std::toupper(raw.at(q1 + 1)));
                const QByteArray text = raw.mid(q2 + 1, q3 - q2 - 1);
                QByteArray bytes;
                bool good = true;
                if (enc == 'B') {
                    auto r = QByteArray::fromBase64Encoding(text);
                    good = bool(r);
                    bytes = r.decoded;
                } else if (enc == 'Q') {
                    for (qsizetype k = 0; k < text.size(); ++k) {
                        const char c = text.at(k);
                        if (c == '_')
                            bytes += ' ';
                        else if (c == '=' && k + 2 < text.size()) {
                            bool ok = false;
                            const int v = text.mid(k + 1, 2).toInt(&ok, 16);
                            if (ok) {
                                bytes += char(v);
                                k += 2;
                            } else {
                                bytes += c;
                            }
                        } else {
                            bytes += c;
                        }
                    }
                } else {
                    good = false;
                }
                if (good) {
                    if (!lastWasEncoded)
                        out += QString::fromUtf8(pendingSpace);  // space between encoded words vanishes
                    pendingSpace.clear();
                    out += charsetDecode(bytes, charset);
                    lastWasEncoded = true;
                    i = q3 + 2;
                    continue;
                }
            }
        }
        const char c = raw.at(i);
        if (isWsp(c) || c == '\r' || c == '\n') {
            pendingSpace += (c == '\r' || c == '\n') ? ' ' : c;
            ++i;
            continue;
        }
        // A run of plain text.
        // Always at least one byte, so a "=?" that is not a valid encoded word cannot stall the loop.
        qsizetype j = i + 1;
        while (j < raw.size() && !isWsp(raw.at(j)) && !(raw.at(j) == '=' && j + 1 < raw.size() && raw.at(j + 1) == '?'))
            ++j;
        out += QString::fromUtf8(pendingSpace);
        pendingSpace.clear();
        out += charsetDecode(raw.mid(i, j - i), {});
        lastWasEncoded = false;
        i = j;
    }
    if (!lastWasEncoded) out += QString::fromUtf8(pendingSpace);
    return out.trimmed();
}

// ---------------------------------------------------------------- addresses

namespace {

struct AddrToken {
    enum Kind { Atom, Quoted, Special, Angle, Comment } kind;
    QByteArray text;  // Comment: the text inside the outer parentheses, as written
};

// Comments are kept as tokens: an obsolete "user@host (Real Name)" names its owner in one
// (RFC 5322 4.4 obs-*: established servers show it as the display name). Inside <...>
// they are dropped.
QList<AddrToken> tokenizeAddresses(const QByteArray& s) {
    QList<AddrToken> out;
    qsizetype i = 0;
    while (i < s.size()) {
        const char c = s.at(i);
        if (isWsp(c) || c == '\r' || c == '\n') {
            ++i;
            continue;
        }
        if (c == '(') {
            QByteArray text;
            int depth = 0;
            for (; i < s.size(); ++i) {
                const char ch = s.at(i);
                if (ch == '\\' && i + 1 < s.size()) {
                    text += s.at(++i);
                    continue;
                }
                if (ch == '(' && depth++ == 0) continue;
                if (ch == ')' && --depth == 0) {
                    ++i;
                    break;
                }
                text += ch;
            }
            out.append({AddrToken::Comment, text.simplified()});
            continue;
        }
        if (c == '"') {
            QByteArray q;
            ++i;
            while (i < s.size() && s.at(i) != '"') {
                if (s.at(i) == '\\' && i + 1 < s.size()) ++i;
                q += s.at(i++);
            }
            ++i;
            out.append({AddrToken::Quoted, q});
            continue;
        }
        if (c == '<') {
            const qsizetype close = s.indexOf('>', i + 1);
            const qsizetype end = close < 0 ? s.size() : close;
            out.append({AddrToken::Angle, stripComments(s.mid(i + 1, end - i - 1)).trimmed()});
            i = end + 1;
            continue;
        }
        if (c == ',' || c == ':' || c == ';' || c == '@') {
            out.append({AddrToken::Special, QByteArray(1, c)});
            ++i;
            continue;
        }
        qsizetype j = i;
        while (j < s.size() && !isWsp(s.at(j)) && !QByteArray(",:;<\"@(").contains(s.at(j))) ++j;
        out.append({AddrToken::Atom, s.mid(i, j - i)});
        i = j;
    }
    return out;
}

void splitAddrSpec(const QByteArray& spec, Address& a) {
    QByteArray s = spec;
    // Obsolete source route "@a,@b:user@host" (RFC 5322 4.4): kept for ENVELOPE's adl.
    const qsizetype colon = s.lastIndexOf(':');
    if (s.startsWith('@') && colon > 0) {
        QByteArray route = s.left(colon);
        route.replace(' ', QByteArray()).replace('\t', QByteArray());
        a.route = QString::fromUtf8(route);
        s = s.mid(colon + 1);
    }
    const qsizetype at = s.lastIndexOf('@');
    QByteArray local = at >= 0 ? s.left(at) : s;
    local = local.trimmed();
    if (local.size() >= 2 && local.front() == '"' && local.back() == '"') local = unquote(local);
    a.local = QString::fromUtf8(local);
    QByteArray domain = at >= 0 ? s.mid(at + 1) : QByteArray();
    domain.replace(' ', QByteArray()).replace('\t', QByteArray());
    a.domain = QString::fromUtf8(domain);
}

}  // namespace

QList<Address> parseAddressList(const QByteArray& raw) {
    QList<Address> out;
    const QList<AddrToken> t = tokenizeAddresses(raw);
    QByteArray phrase;
    QByteArray spec;
    QByteArray comment;  // the last comment of the current address
    bool haveAngle = false;
    bool inGroup = false;
    auto flush = [&] {
        if (!haveAngle && spec.isEmpty() && phrase.isEmpty()) {
            comment.clear();
            return;
        }
        Address a;
        if (haveAngle) {
            splitAddrSpec(spec, a);
            a.rawName = phrase.trimmed();
        } else {
            // A bare addr-spec was collected into `phrase` (atoms joined without spaces around
            // '@'); its comment, if any, is the display name of the obsolete form.
            splitAddrSpec(phrase.trimmed(), a);
            a.rawName = comment;
        }
        a.name = decodeHeaderText(a.rawName);
        if (!a.local.isEmpty() || !a.domain.isEmpty()) out.append(a);
        phrase.clear();
        spec.clear();
        comment.clear();
        haveAngle = false;
    };
    for (qsizetype i = 0; i < t.size() && out.size() < 10000; ++i) {
        const AddrToken& tok = t.at(i);
        if (tok.kind == AddrToken::Comment) {
            if (!tok.text.isEmpty()) comment = tok.text;
        } else if (tok.kind == AddrToken::Angle) {
            spec = tok.text;
            haveAngle = true;
        } else if (tok.kind == AddrToken::Special && tok.text == ",") {
            flush();
        } else if (tok.kind == AddrToken::Special && tok.text == ":" && !inGroup && !haveAngle) {
            Address g;
            g.groupStart = true;
            g.local = decodeHeaderText(phrase.trimmed());
            g.rawName = phrase.trimmed();
            out.append(g);
            phrase.clear();
            comment.clear();
            inGroup = true;
        } else if (tok.kind == AddrToken::Special && tok.text == ";" && inGroup) {
            flush();
            Address e;
            e.groupEnd = true;
            out.append(e);
            inGroup = false;
        } else if (tok.kind == AddrToken::Special && tok.text == "@") {
            while (phrase.endsWith(' ')) phrase.chop(1);
            phrase += '@';
        } else {
            // Words of a display name are separated by spaces; around '@' they are not.
            if (!phrase.isEmpty() && !phrase.endsWith('@')) phrase += ' ';
            phrase += tok.text;
        }
    }
    flush();
    if (inGroup) {
        Address e;
        e.groupEnd = true;
        out.append(e);
    }
    return out;
}

// ---------------------------------------------------------------- dates

namespace {
// QByteArray::split(sep) without the copies: the first `max` pieces into out[], the number
// of pieces returned (one for an empty text, as split gives; pieces past `max` are counted).
qsizetype splitViews(QByteArrayView text, char sep, QByteArrayView* out, qsizetype max) {
    qsizetype count = 0;
    for (qsizetype at = 0;;) {
        const qsizetype next = text.indexOf(sep, at);
        if (count < max) out[count] = next < 0 ? text.sliced(at) : text.sliced(at, next - at);
        ++count;
        if (next < 0) return count;
        at = next + 1;
    }
}
}  // namespace

QDateTime parseDate(const QByteArray& rawIn) {
    // Fields are views of one simplified copy (single spaces between them), not copies.
    const QByteArray simple = stripComments(rawIn).simplified();
    QByteArrayView raw(simple);
    const qsizetype comma = raw.indexOf(',');
    if (comma >= 0 && comma < 10) raw = raw.sliced(comma + 1).trimmed();  // day name
    QByteArrayView f[5];
    const qsizetype fields = splitViews(raw, ' ', f, 5);
    if (fields < 4) return {};
    bool ok = false;
    const int day = f[0].toInt(&ok);
    if (!ok) return {};
    static const char* const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                         "jul", "aug", "sep", "oct", "nov", "dec"};
    auto lowerAscii = [](char c) { return c >= 'A' && c <= 'Z' ? char(c | 0x20) : c; };
    int month = 0;
    for (int i = 0; i < 12 && f[1].size() >= 3; ++i)
        if (lowerAscii(f[1][0]) == months[i][0] && lowerAscii(f[1][1]) == months[i][1] &&
            lowerAscii(f[1][2]) == months[i][2])
            month = i + 1;
    if (!month) return {};
    int year = f[2].toInt(&ok);
    if (!ok) return {};
    if (f[2].size() <= 2)
        year += year < 50 ? 2000 : 1900;  // RFC 5322 4.3
    else if (f[2].size() == 3)
        year += 1900;
    // h:m[:s], each 0 when not a number; fewer than two parts is no time.
    QByteArrayView hms[3];
    if (splitViews(f[3], ':', hms, 3) < 2) return {};
    int offset = 0;
    if (fields > 4) {
        const QByteArrayView z = f[4];
        if ((z.startsWith('+') || z.startsWith('-')) && z.size() == 5) {
            const int v = z.sliced(1).toInt();
            offset = (v / 100 * 60 + v % 100) * 60 * (z.startsWith('-') ? -1 : 1);
        } else {
            static const QList<std::pair<const char*, int>> zones = {{"UT", 0},   {"GMT", 0},  {"Z", 0},    {"EST", -5},
                                                                     {"EDT", -4}, {"CST", -6}, {"CDT", -5}, {"MST", -7},
                                                                     {"MDT", -6}, {"PST", -8}, {"PDT", -7}};
            for (const auto& [name, hours] : zones)
                if (z.compare(QByteArrayView(name), Qt::CaseInsensitive) == 0) offset = hours * 3600;
        }
    }
    const QDate date(year, month, day);
    const QTime time(hms[0].toInt(), hms[1].toInt(), hms[2].toInt());
    if (!date.isValid() || !time.isValid()) return {};
    return QDateTime(date, time, Qt::OffsetFromUTC, offset);
}

namespace {

// The value of a hex digit (either case; the caller has checked it is one).
int hexValue(char c) {
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

}  // namespace

QByteArray decodeTransferEncoding(const QByteArray& body, const QString& encoding) {
    if (encoding == u"base64") {
        QByteArray clean(body.size(), Qt::Uninitialized);
        char* w = clean.data();
        for (char c : body)
            if (std::isalnum(uchar(c)) || c == '+' || c == '/' || c == '=') *w++ = c;
        clean.truncate(w - clean.constData());
        return QByteArray::fromBase64(clean);
    }
    if (encoding == u"quoted-printable") {
        // RFC 2045 6.7, line by line: white space at the end of an encoded line is transport
        // padding and goes (rule 3); a line ending in "=" (after that) is a soft line break
        // (rule 5); every other line break is CRLF in the decoded text (rule 4); "=XX" is
        // an octet (hex digits of either case, as established decoders accept); any other
        // "=" is kept as it is.
        // Each line gives at most its own bytes and one more (a bare LF becomes CRLF).
        QByteArray out(body.size() + body.count('\n') + 1, Qt::Uninitialized);
        char* w = out.data();
        qsizetype pos = 0;
        while (pos < body.size()) {
            qsizetype lineEnd = body.indexOf('\n', pos);
            const bool lastLine = lineEnd < 0;
            if (lastLine) lineEnd = body.size();
            qsizetype end = lineEnd;
            if (!lastLine && end > pos && body.at(end - 1) == '\r') --end;
            while (end > pos && (body.at(end - 1) == ' ' || body.at(end - 1) == '\t')) --end;
            bool soft = false;
            if (end > pos && body.at(end - 1) == '=') {
                soft = true;
                --end;
            }
            for (qsizetype i = pos; i < end; ++i) {
                const char c = body.at(i);
                if (c == '=' && end - i > 2 && std::isxdigit(uchar(body.at(i + 1))) &&
                    std::isxdigit(uchar(body.at(i + 2)))) {
                    *w++ = char(hexValue(body.at(i + 1)) << 4 | hexValue(body.at(i + 2)));
                    i += 2;
                    continue;
                }
                *w++ = c;
            }
            if (!lastLine && !soft) {
                *w++ = '\r';
                *w++ = '\n';
            }
            pos = lineEnd + 1;
        }
        out.truncate(w - out.constData());
        return out;
    }
    return body;
}

QString formatDate(const QDateTime& when) {
    const QDateTime local = when.toLocalTime();
    const int secs = local.offsetFromUtc();
    const int mins = std::abs(secs) / 60;
    return QLocale::c().toString(local, QStringLiteral("ddd, dd MMM yyyy HH:mm:ss ")) +
           QStringLiteral("%1%2%3")
               .arg(secs < 0 ? QLatin1Char('-') : QLatin1Char('+'))
               .arg(mins / 60, 2, 10, QLatin1Char('0'))
               .arg(mins % 60, 2, 10, QLatin1Char('0'));
}

}  // namespace postern::mail
