// nft_json.h — reads `nft -j list ruleset` into the firewall model.
//
// Interface: parseNftJson(json, skip) returns every chain of every table
// (base and regular) with its rules translated into Terms and a Verdict;
// tables named in `skip` ("ip filter", "ip6 nat", ...) are left out because
// another reader covers them (iptables-nft tables are read from
// iptables-save, which shows their xt matches faithfully). Verdict maps
// (`vmap`) are expanded into one rule per element, in order; named sets and
// maps are resolved. Expressions the reader does not understand become
// Term::Unknown (the evaluator then answers "unknown", never "open").
// A document that is not nft JSON is an error naming what was wrong.
//
// Security: the input is tool output read as root, still treated as
// untrusted: sizes are capped, every field is type-checked, nothing is
// executed.
// Limits: kMaxNftJsonBytes (32 MiB) of JSON, kMaxSetElements per set
// (65536; larger sets are kept as "unknown" terms).
// Standards: nftables JSON schema version 1 (libnftables-json(5)).
#pragma once

#include "core/result.h"
#include "model.h"

#include <QByteArray>
#include <QSet>
#include <QString>

namespace postern::firewall {

inline constexpr qsizetype kMaxNftJsonBytes = 32 * 1024 * 1024;
inline constexpr qsizetype kMaxSetElements = 65536;

// `skipTables` holds "family name" strings, e.g. "ip filter".
Result<Ruleset> parseNftJson(const QByteArray& json, const QSet<QString>& skipTables = {});

}  // namespace postern::firewall
