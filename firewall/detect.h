// detect.h — what filters inbound traffic on this host, read from the tools.
//
// Interface:
//   Runner / SystemRunner   run a tool and capture its output (the system one
//                           finds tools in /usr/sbin, /sbin, /usr/bin, /bin and
//                           gives each 30 s). Tests use recorded output instead.
//   takeSnapshot(runner)    runs `nft -j list ruleset`, `iptables -V`,
//                           `iptables-save`, `ip6tables-save` (and the legacy
//                           variants when legacy tables are loaded),
//                           `ufw status verbose`, `ufw show added`,
//                           `firewall-cmd --state`, `--get-default-zone`,
//                           `--list-all`; reads the interfaces and container hints.
//   loadSnapshot(dir)       the same facts from files (see kSnapshotFiles), as
//                           captured from a real host; missing file = tool absent.
//   saveSnapshot(s, dir)    writes those files (postern-firewall capture DIR).
//   detect(snapshot)        which backends are in use, and one Ruleset model of
//                           all of them (iptables-nft tables are read from
//                           iptables-save, not twice from nft).
//   detectContainer(root)   docker / podman / lxc / nspawn / kubernetes hints
//                           under `root` ("/" on a real host).
//
// Security: runs only fixed root-owned tools with fixed arguments (no shell);
// reading rulesets needs root (CAP_NET_ADMIN), without it the snapshot says
// so and the evaluation answers "unknown".
// Limits: 30 s per tool; output over 32 MiB is refused by the readers.
#pragma once

#include "core/result.h"
#include "model.h"

#include <QByteArray>
#include <QString>
#include <QStringList>

namespace postern::firewall {

struct CommandResult {
    bool started = false;  // false: the tool is not installed
    int exitCode = -1;
    QByteArray out;
    QByteArray err;
};

class Runner {
public:
    virtual ~Runner() = default;
    virtual CommandResult run(const QString& program, const QStringList& args) const = 0;
};

class SystemRunner : public Runner {
public:
    CommandResult run(const QString& program, const QStringList& args) const override;
    static QString findTool(const QString& program);
};

struct ContainerInfo {
    bool inside = false;
    QString engine;    // docker, podman, lxc, systemd-nspawn, kubernetes, or "container"
    QString evidence;  // the file or line that told us
};
ContainerInfo detectContainer(const QString& root = QStringLiteral("/"));

struct Snapshot {
    bool nftPresent = false;
    QByteArray nftJson;  // empty when nft is absent or failed
    QString nftError;
    QString iptablesVariant;  // "nf_tables", "legacy", or empty when iptables is absent
    QByteArray iptablesSave;  // of the default variant
    QByteArray ip6tablesSave;
    QString iptablesError;
    QByteArray legacySave;  // iptables-legacy-save, only when iptables is nf_tables and legacy tables exist
    QByteArray legacySave6;
    bool ufwPresent = false;
    QString ufwStatus;  // `ufw status verbose`
    QString ufwAdded;   // `ufw show added`
    bool firewalldPresent = false;
    QString firewalldState;    // "running", "not running"
    QString firewalldZone;     // default zone
    QString firewalldListAll;  // `firewall-cmd --list-all`
    QStringList interfaces;    // interfaces that are up, without loopback and local container bridges/veths
    ContainerInfo container;
    bool root = true;  // false: the rulesets could not be read
};

Snapshot takeSnapshot(const Runner& runner);
Result<Snapshot> loadSnapshot(const QString& dir);
Status saveSnapshot(const Snapshot& s, const QString& dir);

struct Detection {
    QList<Backend> backends;  // in use, managers first: firewalld, ufw, nftables, iptables-nft, iptables-legacy
    Ruleset ruleset;
    QStringList notes;  // read errors and what was skipped
    bool ufwActive = false;
    bool firewalldRunning = false;
    bool readable = true;  // false: not root, or a tool failed; verdicts are unknown
};

Detection detect(const Snapshot& snapshot);

}  // namespace postern::firewall
