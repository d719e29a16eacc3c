// security_updates.h — the "security updates:" line of `posternctl status`: how this
// installation gets Debian security updates, and whether they are happening.
//
// Interface:
//   securityUpdatesLine(root, now, &warning)
//       root: the file system root to look at ("/"; tests use a folder). Reads:
//         <root>/etc/apt/apt.conf.d/20auto-upgrades    APT::Periodic::Unattended-Upgrade "1"
//         <root>/usr/bin/unattended-upgrade            the program
//         <root>/var/lib/apt/periodic/unattended-upgrades-stamp   time of the last run (apt.systemd.daily)
//         <root>/run/reboot-required(.pkgs)            a reboot finishes an update (Debian's convention)
//         <root>/run/.containerenv, <root>/.dockerenv  a container: updates come as a newer image
//       Lines:
//         "security updates: automatic (unattended-upgrades), last run <when> (<age> ago)"
//         "...: WARNING: automatic, but the last run was <age> ago" (older than kStaleRunDays)
//         "...: WARNING: automatic, but not run yet" once the system is older than a day (the
//           stamp's absence on a fresh VM is normal for its first day)
//         "...: WARNING: a reboot is needed to finish updates (<packages>)"
//         "security updates: by image: start a newer Postern image on the same volumes" (container)
//         "security updates: not automatic here (no unattended-upgrades)"
//       `warning` is set for the WARNING lines; they never change status's exit code (mail works).
// Security: reads only; at most kMaxReadBytes of each file.
// Limits: kStaleRunDays (3), kMaxReadBytes (64 KiB).
// Standards: Debian's unattended-upgrades and /run/reboot-required conventions.
#pragma once

#include <QString>

namespace postern {

inline constexpr int kStaleRunDays = 3;
inline constexpr qint64 kMaxReadBytes = 64 * 1024;

QString securityUpdatesLine(const QString& root, qint64 nowSecs, bool* warning);

}  // namespace postern
