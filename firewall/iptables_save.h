// iptables_save.h — reads `iptables-save` / `ip6tables-save` output into the
// firewall model.
//
// Interface: parseIptablesSave(text, family, backend) returns one Chain per
// chain of every table (*filter, *nat, *mangle, *raw, *security); built-in
// chains are base chains with the hook and priority the kernel gives them
// (raw -300, mangle -150, nat -100/100, filter 0, security 50). Each rule
// keeps its line verbatim as Rule::text and its 1-based position in the
// chain as Rule::handle. Matches the reader does not know become
// Term::Unknown. A malformed line is an error naming the line number.
//
// Security: tool output read as root; still parsed defensively (line and
// total size capped, quotes and escapes handled, nothing executed).
// Limits: kMaxIptablesSaveBytes (32 MiB), kMaxIptablesLine (64 KiB).
// Standards: the iptables-save(8) / iptables-restore(8) text format, as
// written by iptables 1.8 (legacy and nf_tables variants).
#pragma once

#include "core/result.h"
#include "model.h"

#include <QByteArray>
#include <QString>
#include <QStringList>

namespace postern::firewall {

inline constexpr qsizetype kMaxIptablesSaveBytes = 32 * 1024 * 1024;
inline constexpr qsizetype kMaxIptablesLine = 64 * 1024;

// backend: IptablesNft or IptablesLegacy; family decides ip / ip6.
Result<Ruleset> parseIptablesSave(const QByteArray& text, IpFamily family, Backend backend);

// Tables listed in the output ("filter", "nat", ...) that iptables can
// represent; tables iptables-nft marks as incompatible (created with nft) are
// left out, as they are by parseIptablesSave().
QStringList iptablesTables(const QByteArray& text);
// Tables iptables-nft reports as incompatible ("# Table `nat' is incompatible",
// "# Table `nat' contains incompatible base-chains"): nft must read those.
QStringList incompatibleTables(const QByteArray& text);

// Splits one rule line into words the way iptables-restore does (double
// quotes group, backslash escapes inside quotes). Exposed for tests.
QStringList splitIptablesLine(const QString& line, QList<bool>* quoted = nullptr);

}  // namespace postern::firewall
