// http_request.cpp — see http_request.h.
#include "http_request.h"

#include <QStringDecoder>
#include <QUrl>

#include <optional>

namespace postern::web {

namespace {
bool isTchar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           QByteArray("!#$%&'*+-.^_`|~").contains(c);
}

HttpParse error(int code, const QString& text) {
    HttpParse p;
    p.status = HttpParse::Status::Error;
    p.errorCode = code;
    p.errorText = text;
    return p;
}

// Percent-decoding of the path, once; false on a malformed escape or a NUL.
bool decodePath(const QByteArray& raw, QString* out) {
    QByteArray bytes;
    for (qsizetype i = 0; i < raw.size(); ++i) {
        const char c = raw.at(i);
        if (c == '%') {
            if (i + 2 >= raw.size()) return false;
            bool ok = false;
            const int v = raw.mid(i + 1, 2).toInt(&ok, 16);
            if (!ok || v == 0) return false;
            bytes += char(v);
            i += 2;
        } else {
            bytes += c;
        }
    }
    *out = QString::fromUtf8(bytes);
    return true;
}

// The request line "METHOD SP origin-form SP HTTP/1.x" into r; the error to answer, if any.
std::optional<HttpParse> parseRequestLine(const QByteArray& line, HttpRequest& r) {
    const QList<QByteArray> parts = line.split(' ');
    if (parts.size() != 3) return error(400, QStringLiteral("malformed request line"));
    r.method = parts.at(0);
    if (r.method.isEmpty()) return error(400, QStringLiteral("malformed request line"));
    for (char c : r.method)
        if (!isTchar(c)) return error(400, QStringLiteral("malformed method"));
    const QByteArray& version = parts.at(2);
    if (version == "HTTP/1.1")
        r.minorVersion = 1;
    else if (version == "HTTP/1.0")
        r.minorVersion = 0;
    else if (version.startsWith("HTTP/"))
        return error(505, QStringLiteral("HTTP version not supported"));
    else
        return error(400, QStringLiteral("malformed request line"));
    const QByteArray target = parts.at(1);
    if (!target.startsWith('/')) return error(400, QStringLiteral("only origin-form request targets are served"));
    for (char c : target)
        if (uchar(c) <= 0x20 || uchar(c) >= 0x7f)
            return error(400, QStringLiteral("invalid character in the request target"));
    const qsizetype q = target.indexOf('?');
    const QByteArray rawPath = q < 0 ? target : target.left(q);
    r.query = q < 0 ? QString() : QString::fromLatin1(target.mid(q + 1));
    if (!decodePath(rawPath, &r.path)) return error(400, QStringLiteral("malformed percent-encoding"));
    if (r.path.contains(QStringLiteral("..")) || r.path.contains(QStringLiteral("//")) ||
        r.path.contains(QLatin1Char('\\')))
        return error(400, QStringLiteral("path not allowed"));
    return std::nullopt;
}

// The header fields (lines after the request line) into r, and the Host rule; the error to
// answer, if any.
std::optional<HttpParse> parseHeaderFields(const QList<QByteArray>& lines, HttpRequest& r) {
    bool haveLength = false;
    for (qsizetype i = 1; i < lines.size(); ++i) {
        const QByteArray& l = lines.at(i);
        if (l.startsWith(' ') || l.startsWith('\t')) return error(400, QStringLiteral("obsolete line folding"));
        const qsizetype colon = l.indexOf(':');
        if (colon <= 0) return error(400, QStringLiteral("malformed header field"));
        const QByteArray name = l.left(colon).toLower();
        for (char c : name)
            if (!isTchar(c)) return error(400, QStringLiteral("malformed header field name"));
        const QByteArray value = l.mid(colon + 1).trimmed();
        for (char c : value)
            if ((uchar(c) < 0x20 && c != '\t') || uchar(c) == 0x7f)
                return error(400, QStringLiteral("control character in a header"));
        if (r.headers.size() >= kMaxHeaderFields) return error(431, QStringLiteral("too many header fields"));
        r.headers.append({name, value});
        if (name == "transfer-encoding") return error(501, QStringLiteral("transfer codings are not supported"));
        if (name == "content-length") {
            if (haveLength || value.isEmpty() || value.size() > 12)
                return error(400, QStringLiteral("bad Content-Length"));
            for (char c : value)
                if (c < '0' || c > '9') return error(400, QStringLiteral("bad Content-Length"));
            r.contentLength = value.toLongLong();
            haveLength = true;
        }
        if (name == "host") {
            if (!r.host.isEmpty()) return error(400, QStringLiteral("more than one Host header"));
            QString h = QString::fromLatin1(value).toLower();
            if (h.startsWith(QLatin1Char('[')))
                h = h.section(QLatin1Char(']'), 0, 0) + QLatin1Char(']');
            else
                h = h.section(QLatin1Char(':'), 0, 0);
            r.host = h;
        }
    }
    if (r.minorVersion == 1 && r.header("host").isNull() && r.host.isEmpty()) {
        bool present = false;
        for (const auto& h : r.headers) present |= h.first == "host";
        if (!present) return error(400, QStringLiteral("Host header missing"));
    }
    return std::nullopt;
}
}  // namespace

QByteArray HttpRequest::header(const QByteArray& lowerName) const {
    for (const auto& h : headers)
        if (h.first == lowerName) return h.second;
    return {};
}

HttpParse parseRequestHead(const QByteArray& bytes) {
    // The limits of the request line and the head first, before anything is parsed.
    const qsizetype firstNl = bytes.indexOf('\n');
    if (firstNl < 0) {
        if (bytes.size() > kMaxRequestLine) return error(414, QStringLiteral("request line too long"));
        return {};
    }
    if (firstNl > kMaxRequestLine) return error(414, QStringLiteral("request line too long"));
    qsizetype end = bytes.indexOf("\r\n\r\n");
    qsizetype headEnd = end < 0 ? -1 : end + 4;
    const qsizetype lfEnd = bytes.indexOf("\n\n");
    if (lfEnd >= 0 && (headEnd < 0 || lfEnd + 2 < headEnd)) headEnd = lfEnd + 2;
    if (headEnd < 0) {
        if (bytes.size() > kMaxHead) return error(431, QStringLiteral("request header too large"));
        return {};
    }
    if (headEnd > kMaxHead) return error(431, QStringLiteral("request header too large"));
    QList<QByteArray> lines = bytes.left(headEnd).split('\n');
    for (QByteArray& l : lines)
        if (l.endsWith('\r')) l.chop(1);
    while (!lines.isEmpty() && lines.last().isEmpty()) lines.removeLast();
    if (lines.isEmpty()) return error(400, QStringLiteral("empty request"));

    HttpParse p;
    HttpRequest& r = p.request;
    if (auto failed = parseRequestLine(lines.first(), r)) return *failed;
    if (auto failed = parseHeaderFields(lines, r)) return *failed;
    p.status = HttpParse::Status::Complete;
    p.headerBytes = headEnd;
    return p;
}

QString queryParameter(const QString& query, const QString& name) {
    for (const QString& pair : query.split(QLatin1Char('&'), Qt::SkipEmptyParts)) {
        const qsizetype eq = pair.indexOf(QLatin1Char('='));
        const QString key = eq < 0 ? pair : pair.left(eq);
        if (key != name) continue;
        QString v = eq < 0 ? QString() : pair.mid(eq + 1);
        v.replace(QLatin1Char('+'), QLatin1Char(' '));
        return QUrl::fromPercentEncoding(v.toUtf8());
    }
    return {};
}

namespace {
int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool isFormChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           QByteArray("-._~!$'()*,;:@/?").contains(c);
}

// Decodes one name or value; false on a bad escape, a byte outside the grammar or a limit.
bool decodeFormPart(QByteArrayView raw, qsizetype limit, QString* out, QString* why) {
    QByteArray bytes;
    for (qsizetype i = 0; i < raw.size(); ++i) {
        const char c = raw[i];
        char v;
        if (c == '%') {
            if (raw.size() - i < 3) return *why = QStringLiteral("truncated %-escape"), false;
            const int hi = hexValue(raw[i + 1]), lo = hexValue(raw[i + 2]);
            if (hi < 0 || lo < 0) return *why = QStringLiteral("malformed %-escape"), false;
            v = char(hi * 16 + lo);
            i += 2;
        } else if (c == '+') {
            v = ' ';
        } else if (isFormChar(c)) {
            v = c;
        } else {
            return *why = QStringLiteral("character not allowed in a form"), false;
        }
        if (bytes.size() >= limit) return *why = QStringLiteral("form field longer than %1 bytes").arg(limit), false;
        if ((uchar(v) < 0x20 && v != '\t' && v != '\r' && v != '\n') || v == 0x7f)
            return *why = QStringLiteral("control character in a form field"), false;
        bytes += v;
    }
    QStringDecoder utf8(QStringDecoder::Utf8, QStringDecoder::Flag::Stateless);
    *out = utf8.decode(bytes);
    if (utf8.hasError()) return *why = QStringLiteral("form field is not UTF-8"), false;
    return true;
}
}  // namespace

Result<QMap<QString, QString>> parseForm(const QByteArray& body) {
    using R = Result<QMap<QString, QString>>;
    if (body.size() > kMaxFormBody) return R::fail(QStringLiteral("form larger than %1 bytes").arg(kMaxFormBody));
    QMap<QString, QString> fields;
    if (body.isEmpty()) return fields;
    int count = 0;
    for (const QByteArray& pair : body.split('&')) {
        if (++count > kMaxFormFields) return R::fail(QStringLiteral("more than %1 form fields").arg(kMaxFormFields));
        const qsizetype eq = pair.indexOf('=');
        if (eq <= 0) return R::fail(QStringLiteral("form field without a name or '='"));
        QString name, value, why;
        if (!decodeFormPart(QByteArrayView(pair).first(eq), kMaxFormName, &name, &why)) return R::fail(why);
        if (!decodeFormPart(QByteArrayView(pair).sliced(eq + 1), kMaxFormValue, &value, &why)) return R::fail(why);
        if (fields.contains(name)) return R::fail(QStringLiteral("form field %1 given twice").arg(name));
        fields.insert(name, value);
    }
    return fields;
}

}  // namespace postern::web
