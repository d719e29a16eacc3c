// dsn_params.h — the SMTP DSN parameters on the wire (RFC 3461): xtext, ORCPT
// with the "rfc822" and "utf-8" (RFC 6533) address types, and ENVID.
//
// Interface:
//   encodeXtext(bytes) / decodeXtext(text)   RFC 3461 4: "+XX" (two upper-case
//       hex digits) for '+', '=', controls, space and every octet above '~';
//       decoding is strict (lower-case hex, a lone '+', '=' or a byte outside
//       '!'..'~' -> nullopt).
//   encodeUtf8AddrXtext(address) / decodeUtf8Addr(text, raw)   RFC 6533 3:
//       utf-8-addr-xtext ("\x{HEX}" for '\', '+', '=', space, controls and
//       every non-ASCII code point; pure ASCII) and, when `raw` (the
//       transaction uses SMTPUTF8), utf-8-addr-unitext (UTF-8 as is).
//   parseOrcpt(value, smtpUtf8)   a received ORCPT value, strictly:
//       addr-type ";" encoded-address, at most kMaxOrcptLength octets;
//       "utf-8" -> utf-8-addr-xtext (or -unitext with SMTPUTF8), any other
//       type -> xtext whose decoded value is printable ASCII (RFC 3461 4.2).
//   formatOrcpt(orcpt) / orcptForAddress(address)   the canonical wire form:
//       an ASCII address as "rfc822;" + xtext; an address with non-ASCII
//       characters as "utf-8;" + utf-8-addr-xtext. RFC 3461 4.2 requires the
//       rfc822 value to be printable ASCII before encoding, so xtext of UTF-8
//       octets would be invalid; utf-8-addr-xtext is pure ASCII and RFC 6533 3
//       allows it in ORCPT whether or not the server offers SMTPUTF8, so it is
//       the one form sent for UTF-8 addresses (never the raw -unitext form).
//   storedOrcpt(value)   an ORCPT from a queue envelope: the canonical form
//       (RFC 3461 wire syntax), or a value written by older versions, which
//       put "rfc822;" in front of the bare address without encoding it.
//   orcptForReport(orcpt)   "rfc822; a+b@x" / "utf-8; <utf-8-addr-xtext>" for
//       the Original-Recipient field of a message/delivery-status part
//       (RFC 3464 2.3.1; RFC 6533 3: the 7-bit form in a 7-bit report).
//   decodeEnvid(value)   ENVID: xtext, printable ASCII, at most kMaxEnvidLength.
// Storage convention (spool envelope): "orcpt=" holds formatOrcpt()'s form,
// which contains no white space; "envid:" holds the decoded ENVID.
// Security: every value comes from a client or a queue file. Lengths are
// checked before decoding; decoded code points are range-checked (no
// surrogates, nothing above U+10FFFF).
// Standards: RFC 3461 4, 4.2, 4.4; RFC 3464 2.3.1; RFC 6533 3.
#pragma once

#include <QByteArray>
#include <QByteArrayView>
#include <QString>
#include <optional>

namespace postern::mail {

inline constexpr qsizetype kMaxOrcptLength = 500;  // the whole encoded value (RFC 3461 4.2)
inline constexpr qsizetype kMaxEnvidLength = 100;  // the encoded value (RFC 3461 4.4)

QByteArray encodeXtext(QByteArrayView bytes);
std::optional<QByteArray> decodeXtext(QByteArrayView xtext);

QByteArray encodeUtf8AddrXtext(const QString& address);
std::optional<QString> decodeUtf8Addr(QByteArrayView text, bool allowRawUtf8);

struct Orcpt {
    QString type;     // address type as written ("rfc822", "utf-8", ...)
    QString address;  // decoded
    bool isUtf8Type() const { return type.compare(QLatin1String("utf-8"), Qt::CaseInsensitive) == 0; }
};

std::optional<Orcpt> parseOrcpt(QByteArrayView value, bool smtpUtf8, QString* error = nullptr);
QByteArray formatOrcpt(const Orcpt& orcpt);
QByteArray orcptForAddress(const QString& address);
std::optional<Orcpt> storedOrcpt(const QString& value);
QString orcptForReport(const Orcpt& orcpt);

std::optional<QString> decodeEnvid(QByteArrayView value);

}  // namespace postern::mail
