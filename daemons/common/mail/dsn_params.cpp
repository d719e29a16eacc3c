// dsn_params.cpp — see dsn_params.h.
//
// Grammar (RFC 3461 4, 4.2; RFC 6533 3):
//   xtext       = *( xchar / hexchar )
//   xchar       = %x21-2A / %x2C-3C / %x3E-7E        ; '!'..'~' except '+' and '='
//   hexchar     = "+" 2(%x30-39 / %x41-46)             ; upper-case hex only
//   orcpt-value = addr-type ";" xtext                  ; at most 500 octets
//   utf-8-addr-xtext   = 1*(QCHAR / EmbeddedUnicodeChar)
//   utf-8-addr-unitext = 1*(QUCHAR / EmbeddedUnicodeChar)
//   QCHAR       = %x21-2A / %x2C-3C / %x3E-5B / %x5D-7E ; xchar without '\'
//   QUCHAR      = QCHAR / UTF8-2 / UTF8-3 / UTF8-4
//   EmbeddedUnicodeChar = "\x{" HEXPOINT "}"           ; 2 to 6 upper-case hex digits,
//                         no leading zero beyond two digits; below U+0080 only for
//                         '\', '+', '=', space, DEL and the controls the ABNF lists
//                         (01-09, 10-19 hex); no surrogates, nothing above U+10FFFF.
#include "dsn_params.h"

#include <QList>

namespace postern::mail {

namespace {

constexpr qsizetype kMaxTypeLength = 64;

bool isUpperHex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}
int hexValue(char c) {
    return c <= '9' ? c - '0' : c - 'A' + 10;
}

bool isXchar(uchar c) {
    return c >= 0x21 && c <= 0x7e && c != '+' && c != '=';
}
bool isQchar(uchar c) {
    return isXchar(c) && c != '\\';
}

bool isPrintableAscii(const QByteArray& b) {
    for (char c : b)
        if (uchar(c) < 0x20 || uchar(c) > 0x7e) return false;
    return true;
}

bool isAsciiOnly(const QString& s) {
    for (QChar c : s)
        if (c.unicode() >= 0x80) return false;
    return true;
}

bool isAddrType(QByteArrayView t) {
    if (t.isEmpty() || t.size() > kMaxTypeLength) return false;
    for (char c : t) {
        const uchar u = uchar(c);
        const bool ok = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' ||
                        c == '_' || c == '.';
        if (!ok) return false;
    }
    return true;
}

// Needs "\x{...}" in utf-8-addr-xtext: the xtext specials, '\', and anything not printable ASCII.
bool needsEmbedding(char32_t cp) {
    return cp < 0x21 || cp > 0x7e || cp == '+' || cp == '=' || cp == '\\';
}

// The ASCII values HEXPOINT may carry (RFC 6533 3): "\", "+", "=", space, DEL and
// the controls 01-09 and 10-19 (hex); never NUL, CR or LF.
bool embeddableAscii(char32_t cp) {
    return (cp >= 0x01 && cp <= 0x09) || (cp >= 0x10 && cp <= 0x19) || cp == 0x20 || cp == '+' || cp == '=' ||
           cp == '\\' || cp == 0x7f;
}

}  // namespace

QByteArray encodeXtext(QByteArrayView bytes) {
    static const char hex[] = "0123456789ABCDEF";
    QByteArray out;
    out.reserve(bytes.size());
    for (char c : bytes) {
        const uchar u = uchar(c);
        if (isXchar(u)) {
            out += c;
        } else {
            out += '+';
            out += hex[u >> 4];
            out += hex[u & 0xf];
        }
    }
    return out;
}

std::optional<QByteArray> decodeXtext(QByteArrayView x) {
    QByteArray out;
    out.reserve(x.size());
    for (qsizetype i = 0; i < x.size(); ++i) {
        const char c = x.at(i);
        if (c == '+') {
            if (x.size() - i < 3 || !isUpperHex(x.at(i + 1)) || !isUpperHex(x.at(i + 2))) return std::nullopt;
            out += char(hexValue(x.at(i + 1)) * 16 + hexValue(x.at(i + 2)));
            i += 2;
        } else if (isXchar(uchar(c))) {
            out += c;
        } else {
            return std::nullopt;
        }
    }
    return out;
}

QByteArray encodeUtf8AddrXtext(const QString& address) {
    QByteArray out;
    for (char32_t cp : address.toUcs4()) {
        if (!needsEmbedding(cp)) {
            out += char(cp);
            continue;
        }
        QByteArray hex = QByteArray::number(quint32(cp), 16).toUpper();
        if (hex.size() < 2) hex.prepend('0');
        out += "\\x{" + hex + '}';
    }
    return out;
}

std::optional<QString> decodeUtf8Addr(QByteArrayView text, bool allowRawUtf8) {
    if (text.isEmpty()) return std::nullopt;
    QByteArray utf8;  // the decoded address as UTF-8
    for (qsizetype i = 0; i < text.size(); ++i) {
        const uchar c = uchar(text.at(i));
        if (c == '\\') {
            // EmbeddedUnicodeChar: "\x{" 2*6HEX "}"
            if (text.size() - i < 6 || text.at(i + 1) != 'x' || text.at(i + 2) != '{') return std::nullopt;
            qsizetype j = i + 3;
            char32_t cp = 0;
            int digits = 0;
            while (j < text.size() && text.at(j) != '}') {
                if (!isUpperHex(text.at(j)) || ++digits > 6) return std::nullopt;
                cp = cp * 16 + char32_t(hexValue(text.at(j)));
                ++j;
            }
            if (j >= text.size() || digits < 2) return std::nullopt;
            if (digits > 2 && text.at(i + 3) == '0') return std::nullopt;  // no leading zero beyond the 2-digit forms
            if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return std::nullopt;
            if (cp < 0x80 && !embeddableAscii(cp)) return std::nullopt;
            if (digits > 2 && cp < 0x100) return std::nullopt;
            utf8 += QString::fromUcs4(&cp, 1).toUtf8();
            i = j;
            continue;
        }
        if (c < 0x80) {
            if (!isQchar(c)) return std::nullopt;
            utf8 += char(c);
            continue;
        }
        if (!allowRawUtf8) return std::nullopt;
        utf8 += char(c);
    }
    // Raw octets must form UTF-8 (QUCHAR); a round trip shows any broken sequence.
    const QString s = QString::fromUtf8(utf8);
    if (s.toUtf8() != utf8 || s.contains(QChar::ReplacementCharacter)) return std::nullopt;
    return s;
}

std::optional<Orcpt> parseOrcpt(QByteArrayView value, bool smtpUtf8, QString* error) {
    auto fail = [&](const char* why) -> std::optional<Orcpt> {
        if (error) *error = QString::fromLatin1(why);
        return std::nullopt;
    };
    if (value.size() > kMaxOrcptLength) return fail("longer than 500 octets");
    const qsizetype semi = value.indexOf(';');
    if (semi <= 0 || !isAddrType(value.first(semi))) return fail("bad address type");
    Orcpt o;
    o.type = QString::fromLatin1(value.first(semi));
    const QByteArrayView encoded = value.sliced(semi + 1);
    if (encoded.isEmpty()) return fail("empty address");
    if (o.isUtf8Type()) {
        auto a = decodeUtf8Addr(encoded, smtpUtf8);
        if (!a) return fail("bad utf-8-addr-xtext");
        o.address = *a;
        return o;
    }
    auto a = decodeXtext(encoded);
    if (!a) return fail("bad xtext");
    if (!isPrintableAscii(*a)) return fail("address not printable ASCII");  // RFC 3461 4.2
    o.address = QString::fromLatin1(*a);
    return o;
}

QByteArray formatOrcpt(const Orcpt& o) {
    if (o.isUtf8Type() || !isAsciiOnly(o.address)) return "utf-8;" + encodeUtf8AddrXtext(o.address);
    return o.type.toLatin1() + ';' + encodeXtext(o.address.toLatin1());
}

QByteArray orcptForAddress(const QString& address) {
    return formatOrcpt({QStringLiteral("rfc822"), address});
}

std::optional<Orcpt> storedOrcpt(const QString& value) {
    const QByteArray v = value.toUtf8();
    if (auto o = parseOrcpt(v, true)) return o;
    // Written before ORCPT values were encoded: "rfc822;" + the bare address.
    const qsizetype semi = v.indexOf(';');
    if (semi <= 0 || !isAddrType(QByteArrayView(v).first(semi)) || semi + 1 >= v.size() ||
        v.size() > 4 * kMaxOrcptLength)
        return std::nullopt;
    const QByteArray rest = v.mid(semi + 1);
    for (char c : rest)
        if (uchar(c) <= 0x20 || uchar(c) == 0x7f) return std::nullopt;
    const QString address = QString::fromUtf8(rest);
    if (address.contains(QChar::ReplacementCharacter)) return std::nullopt;
    return Orcpt{QString::fromLatin1(v.left(semi)), address};
}

QString orcptForReport(const Orcpt& o) {
    if (o.isUtf8Type() || !isAsciiOnly(o.address))
        return QStringLiteral("utf-8; ") + QString::fromLatin1(encodeUtf8AddrXtext(o.address));
    return o.type + QStringLiteral("; ") + o.address;
}

std::optional<QString> decodeEnvid(QByteArrayView value) {
    if (value.isEmpty() || value.size() > kMaxEnvidLength) return std::nullopt;
    auto d = decodeXtext(value);
    if (!d || !isPrintableAscii(*d)) return std::nullopt;  // RFC 3461 4.4
    return QString::fromLatin1(*d);
}

}  // namespace postern::mail
