// address.h — mail addresses and domain names: parsing and normalisation.
//
// Interface:
//   normalizeDomain("Exämple.ORG.")  -> "xn--exmple-cua.org" (IDNA 2008 via
//       Qt's ACE conversion, lower case, trailing dot removed); errors name
//       the rule broken (label length, characters, total length).
//   MailAddress::parse("Alice@Example.org") -> local "alice", domain
//       "example.org". Local parts are dot-atoms (RFC 5322 atext) with UTF-8
//       allowed (RFC 6531); for lookups they are compared lower-cased, which is
//       what every mainstream server does. Quoted local parts, source routes
//       and address literals are *recognised* (so the SMTP daemon can refuse
//       relay tricks) but not accepted as account names.
//   splitDetail("user+tag", "+") -> {"user", "tag"} (plus-addressing).
//
// Security: all input is untrusted (wire or admin). Limits: local part 64
// octets, domain 253 octets, labels 63 octets (RFC 5321 4.5.3.1).
#pragma once

#include "result.h"

#include <QString>
#include <utility>

namespace postern {

inline constexpr int kMaxLocalPartOctets = 64;  // RFC 5321 4.5.3.1.1
inline constexpr int kMaxDomainOctets = 253;    // RFC 5321 4.5.3.1.2 (255 minus root and length octets)
inline constexpr int kMaxLabelOctets = 63;

Result<QString> normalizeDomain(QStringView domain);
bool isValidDomain(QStringView domain);

struct MailAddress {
    QString local;   // lower-cased, UTF-8 allowed, never empty for a valid address
    QString domain;  // A-labels, lower case

    // Strict form for accounts: dot-atom local part, '@', domain.
    static Result<MailAddress> parse(QStringView text);
    QString toString() const { return local + QLatin1Char('@') + domain; }
    bool isValid() const { return !local.isEmpty() && !domain.isEmpty(); }
    bool operator==(const MailAddress&) const = default;
};

// Normalise "local@domain" to its canonical string (see MailAddress::parse).
Result<QString> normalizeAddress(QStringView text);

// The one address syntax check (accounts, SMTP paths, message headers): RFC 5322 3.2.3
// atext, which RFC 6531 (SMTP) and RFC 6532 3.2 (headers) extend by UTF8-non-ascii.
// How non-ASCII characters are taken differs on purpose:
//   Printable  accounts and SMTP envelope paths: only printable, non-space characters, so an
//              address that names an account or a mailbox holds no invisible, control or
//              space characters (U+0085, U+00A0, U+200B are refused). The test is per UTF-16
//              unit, so a character outside the BMP (a surrogate pair) is refused too.
//   Any        message headers (RFC 6532 3.2: every UTF8-non-ascii is atext): whatever a
//              message says is read as written; also right for one UTF-8 byte >= 0x80.
enum class NonAscii { Printable, Any };
// One character (a UTF-16 unit, or one byte of UTF-8 text) of atext.
bool isAtext(char32_t c, NonAscii nonAscii = NonAscii::Printable);
// Dot-atom text: atext runs separated by single dots, no dot first or last (RFC 5322 3.2.3).
bool isDotAtom(QStringView local, NonAscii nonAscii = NonAscii::Printable);

// Plus-addressing: split "user+tag" at the first delimiter character.
// Returns {local, ""} when there is no delimiter or the delimiter is empty.
std::pair<QString, QString> splitDetail(const QString& local, const QString& delimiters);

}  // namespace postern
