// block_nftables.h — the temporary block list (block_list.h) as an nftables table, so the kernel
// drops a blocked client's packets before they reach a daemon (setting auth.block_nftables).
//
// The supervisor (root) mirrors <data_dir>/block-list into its own table `inet postern_block`:
//   set blocked_v4 / blocked_v6   type ipv4_addr / ipv6_addr, flags interval,timeout: one
//                                 element per entry (a host without "/32" or "/128", a subnet
//                                 with its prefix), each with `timeout` = the entry's time
//                                 left, rounded up to whole seconds, so the kernel expires it
//                                 by itself even when nobody syncs again;
//   chain input                   type filter hook input priority -10 (before the usual filter
//                                 chains), policy accept; `tcp dport { <ports> } ip saddr
//                                 @blocked_v4 drop` and the same for ip6: only the ports of
//                                 Postern's configured listeners (core/services.h, port 0
//                                 left out), which are exactly where the daemons refuse the
//                                 client anyway; everything else of the host is not ours.
// A drop in any base chain on the input hook is final, so this works next to any other
// ruleset (nftables, iptables-nft, iptables-legacy, ufw, firewalld) without touching it, and
// we never edit a table we did not create.
//
// Interface (pure; the supervisor runs the text with `nft -f -`):
//   syncScript(entries, nowMs, ports)  the whole table, replaced in ONE transaction:
//       "table inet postern_block" (creates it when missing), "delete table ...", then the
//       new table. nft applies a file atomically: on any error nothing changes, and readers
//       never see a half-filled set. Recreating rather than flushing the set also takes a
//       changed port list and repairs a table someone edited.
//       Entries that expired (untilMs <= nowMs) are left out. An interval set refuses
//       overlapping elements ("conflicting intervals"), so an entry inside a broader one
//       (or a duplicate subnet) is left out while the broader one stands; when it outlives
//       that one, resyncAtMs says when to build the script again (0: no need).
//   removeScript()  deletes the table (and creates nothing that stays): for shutdown and
//       for auth.block_nftables = false; succeeds when the table does not exist.
//   nftArguments()  {"-f", "-"}: the script on standard input.
//   blockedPorts(config)  the configured listener ports, ascending, without duplicates or 0.
// Security: the entries come from a file the daemon user writes; BlockList::parse accepts only
// canonical "address/prefix" text, and this code prints addresses it formats itself from
// QHostAddress (no text of the file reaches nft unchecked). Timeouts are capped.
// Limits: at most BlockList::kMaxEntries elements (further ones are counted in leftOut, the
// caller logs it); a timeout at most BlockList::kMaxDurationMs (a longer one, only possible in
// a doctored file, asks for a resync when it runs out).
// Standards: nft(8) syntax of nftables 1.0 (sets with flags interval,timeout; element timeouts).
#pragma once

#include "block_list.h"

#include <QByteArray>
#include <QList>
#include <QString>
#include <QStringList>

namespace postern {

class Config;

namespace blocknft {

inline constexpr QLatin1StringView kTable{"postern_block"};  // family inet
inline constexpr int kPriority = -10;

struct Script {
    QByteArray text;
    int elements = 0;       // addresses and subnets in the sets
    int leftOut = 0;        // unexpired entries beyond BlockList::kMaxEntries
    qint64 resyncAtMs = 0;  // build and apply again at this time (0: only when the file changes)
};

Script syncScript(const QList<BlockList::Entry>& entries, qint64 nowMs, const QList<quint16>& ports);
QByteArray removeScript();
QStringList nftArguments();
QList<quint16> blockedPorts(const Config& config);

}  // namespace blocknft
}  // namespace postern
