// spf.h — Sender Policy Framework evaluation (RFC 7208).
//
// Interface: checkSpf(dns, ip, sender, helo, receiver) -> SpfResult. The
// identity is the MAIL FROM address; for the null sender it is
// postmaster@<HELO> (RFC 7208 2.4). Mechanisms all, include, a, mx, ptr,
// ip4, ip6, exists with CIDR lengths; modifiers redirect= (exp= is ignored);
// qualifiers + - ~ ?; macros (RFC 7208 7) with transformers and delimiters.
// Limits (RFC 7208 4.6.4): at most 10 terms that cause DNS lookups (include,
// a, mx, ptr, exists, redirect) -> permerror; at most 10 MX/PTR names looked
// up per mechanism; at most 2 lookups that return no answer ("void lookups")
// -> permerror; include/redirect nesting is bounded by the same lookup limit.
// DNS errors -> temperror. More than one "v=spf1" record -> permerror.
// Time: besides each query's own timeout (dns.timeout), one evaluation has a
// wall-clock budget, kSpfTimeBudgetMs (RFC 7208 4.6.4 asks for at least 20 s):
// once it is spent no further query is made and the result is temperror, so
// a hostile zone (slow answers to up to 10 terms x 10 names each) cannot hold
// a delivery worker for minutes. The worst case is the budget plus one query's
// timeout. SpfOptions lets tests pass a small budget and a fake clock.
// Security: every record comes from the Internet; parsing is bounded
// (records up to 4 KiB after concatenation, macro expansion up to 253 octets).
#pragma once

#include "core/dns.h"

#include <QHostAddress>
#include <QString>

#include <functional>

namespace postern::senderauth {

struct SpfResult {
    enum class Status { None, Neutral, Pass, Fail, SoftFail, TempError, PermError };
    Status status = Status::None;
    QString domain;     // the domain that was checked
    QString mechanism;  // the term that matched, for the header comment
    QString reason;     // errors: what went wrong
};
QString toString(SpfResult::Status s);

inline constexpr qint64 kSpfTimeBudgetMs = 20'000;

struct SpfOptions {
    qint64 budgetMs = kSpfTimeBudgetMs;
    std::function<qint64()> clockMs;  // monotonic milliseconds; empty = a steady clock
};

SpfResult checkSpf(Resolver& dns, const QHostAddress& ip, const QString& sender, const QString& helo,
                   const QString& receiver = QStringLiteral("unknown"), const SpfOptions& options = {});

}  // namespace postern::senderauth
