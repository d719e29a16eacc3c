// srs.h — the Sender Rewriting Scheme for mail we forward (Sieve redirect):
// the envelope sender of a forwarded message becomes an address of our own
// domain, so SPF passes at the destination, and a bounce sent to that address
// is decoded and passed back to the original sender.
//
// Address form (the "SRS0" form of the original SRS paper, with our own hash):
//   SRS0=<hash>=<tt>=<domain>=<local>@<our domain>
//   <tt>    the day (days since 1970-01-01 UTC, modulo 1024) in two base32
//           characters (A-Z, 2-7)
//   <hash>  the first 40 bits of HMAC-SHA256(key, lower("<tt>=<domain>=<local>"))
//           in eight base32 characters
// Re-forwarding (the SRS1 form of the paper, again with our own hash):
//   a sender SRS0=<opaque>@<host> of another domain becomes
//     SRS1=<hash>=<host>=<opaque'>@<our domain>   (<opaque'> = "=" + <opaque>,
//     so the host is followed by "=="), <hash> = HMAC over lower("SRS1=<host>=<opaque'>")
//     (the "SRS1" in place of the two-character <tt> keeps the two hashes apart);
//   a sender SRS1=<h>=<host>=<opaque'>@<other domain> becomes SRS1 of ours with the
//     same <host> and <opaque'>, signed with our key (no third wrapping);
//   an SRS0/SRS1 address of our own domain is kept as it is.
// A bounce to SRS1=... of ours goes to SRS0<opaque'>@<host>, the first forwarder,
// which checks its own hash and date (SRS1 carries no date).
// Both are compared case-insensitively: relays may change the case of local
// parts. The original local part is kept as written (it may contain '=').
//
// Interface:
//   Srs(key, maxAgeDays)
//   forward(sender, ourDomain, nowSecs) -> the rewritten sender; the null
//       sender stays null (an empty string in, an empty string out)
//   reverse(localPart, nowSecs) -> Decoded{status, original}: Valid with the
//       original address (for SRS1: the first forwarder's SRS0 address); NotSrs
//       (not SRS0=/SRS1=), Malformed, BadHash or Expired (SRS0 only)
//   isSrsLocalPart(local)  starts with "SRS0=" or "SRS1=" (case-insensitive)
//   loadOrCreateSrsKey(configDir, owner) -> the key in <config>/srs.key
//       (64 hex digits, 0600); made once from the system's random source, by
//       the first daemon that needs it (exclusive link(): two daemons starting
//       at once agree on one key). As root the new file is given to `owner`
//       (the daemons' system user), so worker processes that run as that user
//       can read it; a file that is a link is refused (O_NOFOLLOW).
// Security: the local part comes from the network (RCPT TO). It is bounded
// (kMaxSrsLocalBytes) before anything else; the hash is checked before the
// address is used; the key never leaves this module but for the HMAC.
// Limits (each tested at its boundary):
//   kSrsMaxAgeDays     21   an address older than this is Expired (so is one
//                           dated in the future, seen modulo 1024 days)
//   kMaxSrsLocalBytes  512  longer local parts are Malformed
//   kSrsKeyBytes       32   key length made; keys under 16 bytes are refused
// Standards: RFC 7208 (SPF, why this is needed); the SRS paper (Shevek, 2004)
// for the SRS0 and SRS1 forms. Known gap: the rewritten local part can be
// longer than RFC 5321's 64 octets (most servers accept it); an SRS sender
// longer than kMaxSrsLocalBytes is wrapped as SRS0 like any address.
#pragma once

#include "core/result.h"

#include <QByteArray>
#include <QString>

namespace postern::mail {

inline constexpr int kSrsMaxAgeDays = 21;
inline constexpr int kMaxSrsLocalBytes = 512;
inline constexpr int kSrsKeyBytes = 32;

class Srs {
public:
    explicit Srs(QByteArray key, int maxAgeDays = kSrsMaxAgeDays) : m_key(std::move(key)), m_maxAgeDays(maxAgeDays) {}

    QString forward(const QString& sender, const QString& ourDomain, qint64 nowSecs) const;

    enum class Status { Valid, NotSrs, Malformed, BadHash, Expired };
    struct Decoded {
        Status status = Status::NotSrs;
        QString original;  // Valid: the original sender
    };
    Decoded reverse(const QString& localPart, qint64 nowSecs) const;

private:
    QString hash(const QString& timestamp, const QString& domain, const QString& local) const;
    QByteArray m_key;
    int m_maxAgeDays;
};

QString toString(Srs::Status status);
bool isSrsLocalPart(const QString& local);
Result<QByteArray> loadOrCreateSrsKey(const QString& configDir, const QString& owner = {});

}  // namespace postern::mail
