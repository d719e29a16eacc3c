// persist.h — keeping nftables and iptables changes across reboots.
//
// ufw and firewalld persist by themselves (/etc/ufw, firewalld's permanent
// configuration), so the plan's commands are already durable there. nftables
// and iptables keep rules in the kernel only; Debian restores them at boot from
// the operator's own files (/etc/nftables.conf by nftables.service,
// /etc/iptables/rules.v{4,6} by netfilter-persistent). Our rule has to sit in
// the operator's blocking chain, just before the rule that blocks, so we cannot
// express it as a standalone file, and writing the whole live ruleset back into
// the operator's file would also freeze rules that are not ours (Docker's,
// fail2ban's bans). So, like Docker and fail2ban, we re-apply at boot: a
// systemd unit `postern-firewall.service` ordered after the backends' own
// loaders runs `postern-firewall apply`, which re-reads the restored ruleset and
// inserts our rule where it belongs (idempotent, so a ruleset that already has
// it is left alone). `remove` deletes the unit.
//
// Interface:
//   liveOnlyRules(ruleset)   true when the ruleset holds rules of ours that
//                            live only in the kernel (nft comment "postern",
//                            iptables chain POSTERN-INPUT).
//   bootUnitDir()            /etc/systemd/system, or $POSTERN_FIREWALL_SYSTEMD_DIR
//                            (tests point it at a temporary folder).
//   installBootUnit(program, configDir, log)  writes the unit and enables it the
//                            way `systemctl enable` does (the wants symlink),
//                            so it also works while systemd is not running
//                            (image builds, chroots). Rewritten only when its
//                            content changes.
//   removeBootUnit(log)      deletes the unit and the symlink if present.
//   bootUnitText(program, configDir)  the unit's content.
//
// Security: paths come from the configuration directory (made absolute) and
// this program's own location; the unit runs as root like the tools it calls.
#pragma once

#include "core/result.h"
#include "model.h"

#include <QString>
#include <QStringList>

namespace postern::firewall {

inline constexpr const char* kBootUnitName = "postern-firewall.service";

bool liveOnlyRules(const Ruleset& ruleset);
QString bootUnitDir();
QString bootUnitText(const QString& program, const QString& configDir);
Status installBootUnit(const QString& program, const QString& configDir, QStringList* log);
Status removeBootUnit(QStringList* log);

}  // namespace postern::firewall
