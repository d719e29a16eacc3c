// detect.cpp — see detect.h.
#include "detect.h"

#include "iptables_save.h"
#include "nft_json.h"

#include "core/atomic_file.h"
#include "core/block_nftables.h"

#include <unistd.h>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QNetworkInterface>
#include <QProcess>
#include <QProcessEnvironment>
#include <QSet>
#include <algorithm>

namespace postern::firewall {

namespace {

constexpr int kToolTimeoutMs = 30000;

QByteArray readSmall(const QString& path, qint64 max = 1024 * 1024) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return {};
    return f.read(max);
}

// Snapshot files, as written by `postern-firewall capture DIR`.
const char* const kNft = "nft.json";
const char* const kVariant = "iptables-variant";
const char* const kIpt = "iptables-save.txt";
const char* const kIp6t = "ip6tables-save.txt";
const char* const kLegacy = "iptables-legacy-save.txt";
const char* const kLegacy6 = "ip6tables-legacy-save.txt";
const char* const kUfwStatus = "ufw-status.txt";
const char* const kUfwAdded = "ufw-added.txt";
const char* const kFwdState = "firewalld-state.txt";
const char* const kFwdZone = "firewalld-zone.txt";
const char* const kFwdList = "firewalld-list-all.txt";
const char* const kInterfaces = "interfaces.txt";
const char* const kContainer = "container.txt";

bool hasFilteringChain(const Ruleset& rs, Backend backend, const QStringList& excludeTables = {}) {
    for (const Chain& c : rs.chains) {
        if (c.backend != backend || excludeTables.contains(c.table)) continue;
        if (!c.rules.isEmpty() || c.policy != Verdict::Accept) return true;
    }
    return false;
}

}  // namespace

QString SystemRunner::findTool(const QString& program) {
    for (const char* dir : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
        const QString path = QLatin1String(dir) + QLatin1Char('/') + program;
        const QFileInfo fi(path);
        if (fi.isFile() && fi.isExecutable()) return path;
    }
    return {};
}

CommandResult SystemRunner::run(const QString& program, const QStringList& args) const {
    CommandResult r;
    const QString path = program.startsWith(QLatin1Char('/')) ? program : findTool(program);
    if (path.isEmpty()) return r;
    QProcess p;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("LC_ALL"), QStringLiteral("C"));
    p.setProcessEnvironment(env);
    p.start(path, args);
    if (!p.waitForStarted(kToolTimeoutMs)) return r;
    r.started = true;
    p.closeWriteChannel();
    if (!p.waitForFinished(kToolTimeoutMs)) {
        p.kill();
        p.waitForFinished(1000);
        r.err = "timed out";
        return r;
    }
    r.exitCode = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    r.out = p.readAllStandardOutput();
    r.err = p.readAllStandardError();
    return r;
}

ContainerInfo detectContainer(const QString& root) {
    ContainerInfo c;
    const QDir r(root);
    auto found = [&](const QString& engine, const QString& evidence) {
        c.inside = true;
        c.engine = engine;
        c.evidence = evidence;
        return c;
    };
    if (QFileInfo::exists(r.filePath(QStringLiteral(".dockerenv"))))
        return found(QStringLiteral("docker"), QStringLiteral("/.dockerenv exists"));
    if (QFileInfo::exists(r.filePath(QStringLiteral("run/.containerenv")))) {
        const QByteArray env = readSmall(r.filePath(QStringLiteral("run/.containerenv")));
        return found(env.contains("engine=\"buildah") ? QStringLiteral("buildah") : QStringLiteral("podman"),
                     QStringLiteral("/run/.containerenv exists"));
    }
    const QByteArray sysd = readSmall(r.filePath(QStringLiteral("run/systemd/container"))).trimmed();
    if (!sysd.isEmpty())
        return found(QString::fromUtf8(sysd),
                     QStringLiteral("/run/systemd/container says %1").arg(QString::fromUtf8(sysd)));
    const QByteArray env = readSmall(r.filePath(QStringLiteral("proc/1/environ")));
    for (const QByteArray& kv : env.split('\0'))
        if (kv.startsWith("container="))
            return found(QString::fromUtf8(kv.mid(10)), QStringLiteral("PID 1 has %1").arg(QString::fromUtf8(kv)));
    const QByteArray cgroup = readSmall(r.filePath(QStringLiteral("proc/1/cgroup")));
    for (const QByteArray& line : cgroup.split('\n')) {
        for (const auto& [needle, engine] : {std::pair{"kubepods", "kubernetes"}, std::pair{"docker", "docker"},
                                             std::pair{"libpod", "podman"}, std::pair{"lxc", "lxc"}}) {
            if (line.contains(needle))
                return found(QLatin1String(engine),
                             QStringLiteral("/proc/1/cgroup: %1").arg(QString::fromUtf8(line.trimmed())));
        }
    }
    return c;
}

Snapshot takeSnapshot(const Runner& runner) {
    Snapshot s;
    s.root = ::geteuid() == 0;
    const CommandResult nft =
        runner.run(QStringLiteral("nft"), {QStringLiteral("-j"), QStringLiteral("list"), QStringLiteral("ruleset")});
    s.nftPresent = nft.started;
    if (nft.started && nft.exitCode == 0)
        s.nftJson = nft.out;
    else if (nft.started)
        s.nftError = QString::fromUtf8(nft.err.trimmed());

    const CommandResult ver = runner.run(QStringLiteral("iptables"), {QStringLiteral("-V")});
    if (ver.started) {
        s.iptablesVariant = ver.out.contains("legacy") ? QStringLiteral("legacy") : QStringLiteral("nf_tables");
        const CommandResult v4 = runner.run(QStringLiteral("iptables-save"), {});
        const CommandResult v6 = runner.run(QStringLiteral("ip6tables-save"), {});
        if (v4.exitCode == 0)
            s.iptablesSave = v4.out;
        else
            s.iptablesError = QString::fromUtf8(v4.err.trimmed());
        if (v6.exitCode == 0)
            s.ip6tablesSave = v6.out;
        else if (s.iptablesError.isEmpty())
            s.iptablesError = QString::fromUtf8(v6.err.trimmed());
        if (s.iptablesVariant == u"nf_tables") {
            // Legacy tables still filter when their kernel modules hold rules.
            if (!readSmall(QStringLiteral("/proc/net/ip_tables_names")).trimmed().isEmpty())
                s.legacySave = runner.run(QStringLiteral("iptables-legacy-save"), {}).out;
            if (!readSmall(QStringLiteral("/proc/net/ip6_tables_names")).trimmed().isEmpty())
                s.legacySave6 = runner.run(QStringLiteral("ip6tables-legacy-save"), {}).out;
        }
    }
    const CommandResult ufw = runner.run(QStringLiteral("ufw"), {QStringLiteral("status"), QStringLiteral("verbose")});
    s.ufwPresent = ufw.started;
    if (ufw.started) {
        s.ufwStatus = QString::fromUtf8(ufw.out + ufw.err);
        s.ufwAdded =
            QString::fromUtf8(runner.run(QStringLiteral("ufw"), {QStringLiteral("show"), QStringLiteral("added")}).out);
    }
    const CommandResult fwd = runner.run(QStringLiteral("firewall-cmd"), {QStringLiteral("--state")});
    s.firewalldPresent = fwd.started;
    if (fwd.started) {
        s.firewalldState = QString::fromUtf8((fwd.out + fwd.err).trimmed());
        if (s.firewalldState == u"running") {
            s.firewalldZone = QString::fromUtf8(
                runner.run(QStringLiteral("firewall-cmd"), {QStringLiteral("--get-default-zone")}).out.trimmed());
            s.firewalldListAll =
                QString::fromUtf8(runner.run(QStringLiteral("firewall-cmd"), {QStringLiteral("--list-all")}).out);
        }
    }
    for (const QNetworkInterface& i : QNetworkInterface::allInterfaces()) {
        const auto f = i.flags();
        if (!f.testFlag(QNetworkInterface::IsUp) || f.testFlag(QNetworkInterface::IsLoopBack)) continue;
        // Bridges and veths of local containers: remote clients do not arrive on them.
        static const char* const kLocalOnly[] = {"docker", "br-", "veth", "virbr", "cni", "podman", "lxcbr", "flannel"};
        if (std::any_of(std::begin(kLocalOnly), std::end(kLocalOnly),
                        [&](const char* p) { return i.name().startsWith(QLatin1String(p)); }))
            continue;
        s.interfaces << i.name();
    }
    std::sort(s.interfaces.begin(), s.interfaces.end());
    s.container = detectContainer();
    return s;
}

Result<Snapshot> loadSnapshot(const QString& dir) {
    const QDir d(dir);
    if (!d.exists()) return Result<Snapshot>::fail(QStringLiteral("no such folder: %1").arg(dir));
    Snapshot s;
    auto file = [&](const char* name, bool* present = nullptr) {
        const QString path = d.filePath(QLatin1String(name));
        if (present) *present = QFileInfo::exists(path);
        return readSmall(path, kMaxNftJsonBytes + 1);
    };
    s.nftJson = file(kNft, &s.nftPresent);
    s.iptablesVariant = QString::fromUtf8(file(kVariant).trimmed());
    s.iptablesSave = file(kIpt);
    s.ip6tablesSave = file(kIp6t);
    s.legacySave = file(kLegacy);
    s.legacySave6 = file(kLegacy6);
    s.ufwStatus = QString::fromUtf8(file(kUfwStatus, &s.ufwPresent));
    s.ufwAdded = QString::fromUtf8(file(kUfwAdded));
    s.firewalldState = QString::fromUtf8(file(kFwdState, &s.firewalldPresent).trimmed());
    s.firewalldZone = QString::fromUtf8(file(kFwdZone).trimmed());
    s.firewalldListAll = QString::fromUtf8(file(kFwdList));
    for (const QByteArray& l : file(kInterfaces).split('\n'))
        if (!l.trimmed().isEmpty()) s.interfaces << QString::fromUtf8(l.trimmed());
    const QByteArray c = file(kContainer).trimmed();
    if (!c.isEmpty()) {
        s.container.inside = true;
        s.container.engine = QString::fromUtf8(c.split(' ').first());
        s.container.evidence = QString::fromUtf8(c.mid(c.indexOf(' ') + 1));
    }
    return s;
}

Status saveSnapshot(const Snapshot& s, const QString& dir) {
    if (!QDir().mkpath(dir)) return Status::fail(QStringLiteral("cannot create %1").arg(dir));
    const QDir d(dir);
    auto write = [&](const char* name, const QByteArray& data) -> Status {
        return writeFileAtomic(d.filePath(QLatin1String(name)), data, 0644);
    };
    QList<Status> results;
    if (s.nftPresent) results << write(kNft, s.nftJson);
    if (!s.iptablesVariant.isEmpty()) {
        results << write(kVariant, s.iptablesVariant.toUtf8() + '\n') << write(kIpt, s.iptablesSave)
                << write(kIp6t, s.ip6tablesSave);
    }
    if (!s.legacySave.isEmpty()) results << write(kLegacy, s.legacySave);
    if (!s.legacySave6.isEmpty()) results << write(kLegacy6, s.legacySave6);
    if (s.ufwPresent) results << write(kUfwStatus, s.ufwStatus.toUtf8()) << write(kUfwAdded, s.ufwAdded.toUtf8());
    if (s.firewalldPresent) {
        results << write(kFwdState, s.firewalldState.toUtf8() + '\n')
                << write(kFwdZone, s.firewalldZone.toUtf8() + '\n') << write(kFwdList, s.firewalldListAll.toUtf8());
    }
    results << write(kInterfaces, s.interfaces.join(QLatin1Char('\n')).toUtf8() + '\n');
    if (s.container.inside)
        results << write(kContainer, (s.container.engine + QLatin1Char(' ') + s.container.evidence).toUtf8() + '\n');
    for (const Status& st : results)
        if (!st) return st;
    return {};
}

Detection detect(const Snapshot& s) {
    Detection d;
    d.firewalldRunning = s.firewalldState == u"running";
    d.ufwActive = s.ufwStatus.contains(QStringLiteral("Status: active"));
    if (!s.root) {
        d.readable = false;
        d.notes << QStringLiteral("not running as root: the packet filter rules cannot be read");
    }
    QSet<QString> skip;
    const bool iptNft = s.iptablesVariant == u"nf_tables";
    const Backend iptBackend = iptNft ? Backend::IptablesNft : Backend::IptablesLegacy;
    if (!s.iptablesVariant.isEmpty()) {
        for (const auto& [text, fam] :
             {std::pair{&s.iptablesSave, IpFamily::V4}, std::pair{&s.ip6tablesSave, IpFamily::V6}}) {
            if (iptNft)
                for (const QString& t : iptablesTables(*text))
                    skip.insert((fam == IpFamily::V4 ? QStringLiteral("ip ") : QStringLiteral("ip6 ")) + t);
            const Result<Ruleset> rs = parseIptablesSave(*text, fam, iptBackend);
            if (rs) {
                d.ruleset.append(*rs);
            } else {
                d.readable = false;
                d.notes << QStringLiteral("%1: %2").arg(
                    fam == IpFamily::V4 ? QStringLiteral("iptables-save") : QStringLiteral("ip6tables-save"),
                    rs.errorMessage());
            }
        }
        if (!s.iptablesError.isEmpty()) {
            d.readable = false;
            d.notes << QStringLiteral("iptables-save failed: %1").arg(s.iptablesError);
        }
        if (hasFilteringChain(d.ruleset, iptBackend)) d.backends << iptBackend;
    }
    for (const auto& [text, fam] : {std::pair{&s.legacySave, IpFamily::V4}, std::pair{&s.legacySave6, IpFamily::V6}}) {
        if (text->isEmpty()) continue;
        const Result<Ruleset> rs = parseIptablesSave(*text, fam, Backend::IptablesLegacy);
        if (rs)
            d.ruleset.append(*rs);
        else
            d.notes << QStringLiteral("iptables-legacy-save: %1").arg(rs.errorMessage());
    }
    if (hasFilteringChain(d.ruleset, Backend::IptablesLegacy) && !d.backends.contains(Backend::IptablesLegacy))
        d.backends << Backend::IptablesLegacy;
    if (s.nftPresent) {
        if (!s.nftError.isEmpty()) {
            d.readable = false;
            d.notes << QStringLiteral("nft list ruleset failed: %1").arg(s.nftError);
        } else if (!s.nftJson.isEmpty()) {
            const Result<Ruleset> rs = parseNftJson(s.nftJson, skip);
            if (rs) {
                d.ruleset.append(*rs);
                // Tables of managers, and Postern's own block-list mirror (core/block_nftables.h: it
                // drops only blocked clients), do not make "nftables" a backend in use.
                if (hasFilteringChain(*rs, Backend::Nftables,
                                      {QStringLiteral("firewalld"), blocknft::kTable.toString()}))
                    d.backends.prepend(Backend::Nftables);
            } else {
                d.readable = false;
                d.notes << rs.errorMessage();
            }
        }
    }
    if (d.ufwActive) d.backends.prepend(Backend::Ufw);
    if (d.firewalldRunning) d.backends.prepend(Backend::Firewalld);
    return d;
}

}  // namespace postern::firewall
