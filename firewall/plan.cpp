// plan.cpp — see plan.h.
#include "plan.h"

#include "core/atomic_file.h"
#include "core/safe_path.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QMap>
#include <QRegularExpression>
#include <algorithm>

namespace postern::firewall {

namespace {

constexpr int kMultiportMax = 15;

QString shellQuote(const QString& s) {
    static const QRegularExpression kSafe(QStringLiteral("^[A-Za-z0-9_./:=,+@%-]+$"));
    if (!s.isEmpty() && kSafe.match(s).hasMatch()) return s;
    QString q = s;
    q.replace(QLatin1Char('\''), QStringLiteral("'\\''"));
    return QLatin1Char('\'') + q + QLatin1Char('\'');
}

QString portList(const QList<quint16>& ports, const QString& sep) {
    QStringList parts;
    for (const quint16 p : ports) parts << QString::number(p);
    return parts.join(sep);
}

QString iptablesTool(Backend backend, const QString& family) {
    const QString base = family == u"ip6" ? QStringLiteral("ip6tables") : QStringLiteral("iptables");
    return backend == Backend::IptablesLegacy ? base + QStringLiteral("-legacy") : base + QStringLiteral("-nft");
}

// Ports of one family that the configuration wants reachable.
QList<quint16> portsFor(const QList<ConfiguredPort>& ports, IpFamily f) {
    QList<quint16> out;
    for (const ConfiguredPort& p : ports)
        if (p.families.contains(f) && !out.contains(p.port)) out << p.port;
    std::sort(out.begin(), out.end());
    return out;
}

struct NftGroup {
    const Chain* chain = nullptr;
    int rule = -1;
    QList<quint16> ports;
    QList<IpFamily> families;
};

struct IptGroup {
    Backend backend = Backend::IptablesNft;
    QString family;  // ip / ip6
    const Chain* input = nullptr;
    int position = -1;  // 0-based index in INPUT to insert before; -1 = append
};

}  // namespace

QString Command::display() const {
    QStringList parts{program};
    for (const QString& a : args) parts << shellQuote(a);
    return parts.join(QLatin1Char(' '));
}

namespace {

// The ports to open, grouped by where they are blocked.
struct Targets {
    QList<quint16> firewalld;
    QList<quint16> ufw;
    QList<NftGroup> nft;
    QMap<QString, IptGroup> ipt;  // "backend family" -> group
};

// Where one blocked (or unknown) probe must be opened: by the manager or table that blocks it.
void classify(const PortResult& pr, const ProbeResult& r, const Detection& detection, Targets& t, Plan* plan) {
    if (r.status == PortStatus::Open) return;
    const QString what =
        QStringLiteral("port %1/tcp (%2%3)")
            .arg(pr.port)
            .arg(toString(pr.family), r.probe.iif.isEmpty() ? QString() : QStringLiteral(" on ") + r.probe.iif);
    if (r.status == PortStatus::Unknown) {
        plan->blockedElsewhere = true;
        plan->notes << QStringLiteral("%1: %2; not changed automatically").arg(what, r.reason);
        return;
    }
    const Decision& d = r.decision;
    const Chain* c = d.chain;
    if (!c || !d.baseChain) return;
    if (detection.firewalldRunning && c->backend == Backend::Nftables && c->table == u"firewalld") {
        if (!t.firewalld.contains(pr.port)) t.firewalld << pr.port;
        return;
    }
    const bool iptables = isIptables(c->backend);
    if (detection.ufwActive && iptables && c->table == u"filter") {
        if (c->name.contains(u"-user-")) {
            plan->blockedElsewhere = true;
            plan->notes << QStringLiteral(
                               "%1 is blocked by your own ufw rule (%2); not changed: delete that rule with `ufw "
                               "delete` if the port should be open")
                               .arg(what, d.by);
        } else if (!t.ufw.contains(pr.port)) {
            t.ufw << pr.port;
        }
        return;
    }
    if (c->backend == Backend::Nftables) {
        auto it = std::find_if(t.nft.begin(), t.nft.end(),
                               [&](const NftGroup& g) { return g.chain == c && g.rule == d.rule; });
        if (it == t.nft.end()) {
            t.nft << NftGroup{c, d.rule, {}, {}};
            it = t.nft.end() - 1;
        }
        if (!it->ports.contains(pr.port)) it->ports << pr.port;
        if (!it->families.contains(pr.family)) it->families << pr.family;
        return;
    }
    // iptables: our chain is jumped to from filter INPUT.
    const Chain* base = d.baseChain;
    if (base->table != u"filter" || base->name != u"INPUT") {
        plan->blockedElsewhere = true;
        plan->notes << QStringLiteral("%1 is blocked in %2 (%3); we only add rules to the filter table's INPUT chain")
                           .arg(what, base->id(), d.by);
        return;
    }
    IptGroup& g = t.ipt[toString(c->backend) + QLatin1Char(' ') + c->family];
    g.backend = c->backend;
    g.family = c->family;
    g.input = base;
    if (d.baseRule >= 0 && (g.position < 0 || d.baseRule < g.position)) g.position = d.baseRule;
}

void addFirewalldCommands(QList<quint16> firewalldPorts, const Snapshot& snapshot, Plan* plan) {
    if (firewalldPorts.isEmpty()) return;
    std::sort(firewalldPorts.begin(), firewalldPorts.end());
    const QString zone = snapshot.firewalldZone;
    for (const quint16 p : firewalldPorts) {
        QStringList args{QStringLiteral("--permanent")};
        if (!zone.isEmpty()) args << QStringLiteral("--zone=") + zone;
        args << QStringLiteral("--add-port=%1/tcp").arg(p);
        plan->commands << Command{QStringLiteral("firewall-cmd"), args,
                                  QStringLiteral("allow port %1 in firewalld's zone %2").arg(p).arg(zone)};
        const QString entry = QStringLiteral("%1/tcp").arg(p);
        if (!plan->stateAfter.firewalldPorts.contains(entry)) plan->stateAfter.firewalldPorts << entry;
    }
    plan->stateAfter.firewalldZone = zone;
    plan->commands << Command{QStringLiteral("firewall-cmd"),
                              {QStringLiteral("--reload")},
                              QStringLiteral("make the permanent configuration active")};
    plan->notes << QStringLiteral("firewalld keeps the ports in its permanent configuration (survives reboots)");
}

void addUfwCommands(QList<quint16> ufwPorts, Plan* plan) {
    if (ufwPorts.isEmpty()) return;
    std::sort(ufwPorts.begin(), ufwPorts.end());
    for (const quint16 p : ufwPorts)
        plan->commands << Command{QStringLiteral("ufw"),
                                  {QStringLiteral("allow"), QStringLiteral("%1/tcp").arg(p), QStringLiteral("comment"),
                                   QLatin1String(kOurComment)},
                                  QStringLiteral("allow port %1 (IPv4 and IPv6) in ufw").arg(p)};
    plan->notes << QStringLiteral("ufw keeps its rules in /etc/ufw (survives reboots)");
}

void addNftCommands(QList<NftGroup> nft, Plan* plan) {
    for (NftGroup& g : nft) {
        std::sort(g.ports.begin(), g.ports.end());
        QString match = QStringLiteral("tcp dport { %1 }").arg(portList(g.ports, QStringLiteral(", ")));
        if (g.chain->family == u"inet" && g.families.size() == 1)
            match = QStringLiteral("meta nfproto %1 ")
                        .arg(g.families.first() == IpFamily::V4 ? QStringLiteral("ipv4") : QStringLiteral("ipv6")) +
                    match;
        const QString where = QStringLiteral("%1 %2 %3").arg(g.chain->family, g.chain->table, g.chain->name);
        const QString rule =
            g.rule >= 0
                ? QStringLiteral("insert rule %1 position %2 %3 accept comment \"%4\"")
                      .arg(where, g.chain->rules.at(g.rule).handle, match, QLatin1String(kOurComment))
                : QStringLiteral("add rule %1 %2 accept comment \"%3\"").arg(where, match, QLatin1String(kOurComment));
        plan->commands << Command{
            QStringLiteral("nft"),
            {rule},
            g.rule >= 0 ? QStringLiteral("accept the ports just before %1").arg(describeRule(*g.chain, g.rule))
                        : QStringLiteral("accept the ports before the chain's drop policy (%1)").arg(where)};
    }
    if (!nft.isEmpty())
        plan->notes << QStringLiteral(
            "nftables rules live in the kernel only: apply also installs postern-firewall.service, which puts "
            "the rule back at boot after nftables.service has loaded /etc/nftables.conf");
}

void addIptablesCommands(const QMap<QString, IptGroup>& ipt, const Detection& detection,
                         const QList<ConfiguredPort>& ports, Plan* plan) {
    for (const IptGroup& g : ipt) {
        const QString tool = iptablesTool(g.backend, g.family);
        const IpFamily fam = g.family == u"ip6" ? IpFamily::V6 : IpFamily::V4;
        const QList<quint16> wanted = portsFor(ports, fam);
        const bool exists =
            detection.ruleset.find(g.backend, g.family, QStringLiteral("filter"), QLatin1String(kOurChain)) != nullptr;
        const QString chain = QLatin1String(kOurChain);
        plan->commands << Command{
            tool,
            {QStringLiteral("-w"), exists ? QStringLiteral("-F") : QStringLiteral("-N"), chain},
            exists ? QStringLiteral("our chain exists: refill it") : QStringLiteral("create our chain")};
        for (qsizetype i = 0; i < wanted.size(); i += kMultiportMax) {
            const QList<quint16> chunk = wanted.mid(i, kMultiportMax);
            plan->commands << Command{tool,
                                      {QStringLiteral("-w"), QStringLiteral("-A"), chain, QStringLiteral("-p"),
                                       QStringLiteral("tcp"), QStringLiteral("-m"), QStringLiteral("multiport"),
                                       QStringLiteral("--dports"), portList(chunk, QStringLiteral(",")),
                                       QStringLiteral("-m"), QStringLiteral("comment"), QStringLiteral("--comment"),
                                       QLatin1String(kOurComment), QStringLiteral("-j"), QStringLiteral("ACCEPT")},
                                      QStringLiteral("accept the configured mail ports")};
        }
        // Existing jumps to our chain that come too late are moved.
        QList<int> jumps;
        for (int i = 0; i < g.input->rules.size(); ++i)
            if (g.input->rules.at(i).target == chain) jumps << i;
        const int wantedPos = g.position >= 0 ? g.position : int(g.input->rules.size());
        if (!jumps.isEmpty() && jumps.first() < wantedPos) continue;  // already early enough
        // Deleted by their exact spec, never by position: only a rule identical to ours can go.
        const QStringList jumpSpec{QStringLiteral("-m"),       QStringLiteral("comment"), QStringLiteral("--comment"),
                                   QLatin1String(kOurComment), QStringLiteral("-j"),      chain};
        for (qsizetype j = 0; j < jumps.size(); ++j)  // all after wantedPos: positions before it do not shift
            plan->commands << Command{
                tool, QStringList{QStringLiteral("-w"), QStringLiteral("-D"), QStringLiteral("INPUT")} + jumpSpec,
                QStringLiteral("our jump comes after the blocking rule: move it")};
        if (g.position < 0) {
            plan->commands << Command{
                tool, QStringList{QStringLiteral("-w"), QStringLiteral("-A"), QStringLiteral("INPUT")} + jumpSpec,
                QStringLiteral("send new connections through our chain before the INPUT policy drops them")};
        } else {
            plan->commands << Command{tool,
                                      QStringList{QStringLiteral("-w"), QStringLiteral("-I"), QStringLiteral("INPUT"),
                                                  QString::number(g.position + 1)} +
                                          jumpSpec,
                                      QStringLiteral("send new connections through our chain just before %1")
                                          .arg(describeRule(*g.input, g.position))};
        }
    }
    if (!ipt.isEmpty())
        plan->notes << QStringLiteral(
            "iptables rules live in the kernel only: apply also installs postern-firewall.service, which puts "
            "our chain and jump back at boot after the host's rules are restored (netfilter-persistent)");
}

}  // namespace

Plan planOpen(const Snapshot& snapshot, const Detection& detection, const QList<PortResult>& results,
              const QList<ConfiguredPort>& ports, const FirewallState& state) {
    Plan plan;
    plan.stateAfter = state;
    if (!detection.readable) {
        plan.blockedElsewhere = true;
        plan.notes << QStringLiteral("the packet filter could not be read completely; no change is planned (%1)")
                          .arg(detection.notes.join(QStringLiteral("; ")));
        return plan;
    }
    Targets t;
    for (const PortResult& pr : results)
        for (const ProbeResult& r : pr.perInterface) classify(pr, r, detection, t, &plan);
    addFirewalldCommands(t.firewalld, snapshot, &plan);
    addUfwCommands(t.ufw, &plan);
    addNftCommands(t.nft, &plan);
    addIptablesCommands(t.ipt, detection, ports, &plan);
    return plan;
}

Plan planRemove(const Snapshot& snapshot, const Detection& detection, const FirewallState& state) {
    Plan plan;
    QStringList seen;
    for (const Chain& c : detection.ruleset.chains) {
        if (c.backend == Backend::Nftables) {
            for (const Rule& r : c.rules) {
                if (r.comment != QLatin1String(kOurComment)) continue;
                const QString key = c.id() + QLatin1Char(' ') + r.handle;
                if (seen.contains(key)) continue;
                seen << key;
                plan.commands << Command{
                    QStringLiteral("nft"),
                    {QStringLiteral("delete rule %1 %2 %3 handle %4").arg(c.family, c.table, c.name, r.handle)},
                    QStringLiteral("our rule: %1").arg(r.text)};
            }
            continue;
        }
        if (c.table != u"filter" || c.name != QLatin1String(kOurChain)) continue;
        const QString tool = iptablesTool(c.backend, c.family);
        for (const Chain& other : detection.ruleset.chains) {
            if (other.backend != c.backend || other.family != c.family || other.table != u"filter") continue;
            // Jumps we added carry our comment and are deleted by that exact spec; a jump to our
            // chain that somebody else wrote would make -X fail, which we report rather than touch it.
            for (const Rule& r : other.rules)
                if (r.target == QLatin1String(kOurChain) && r.comment == QLatin1String(kOurComment))
                    plan.commands << Command{
                        tool,
                        {QStringLiteral("-w"), QStringLiteral("-D"), other.name, QStringLiteral("-m"),
                         QStringLiteral("comment"), QStringLiteral("--comment"), QLatin1String(kOurComment),
                         QStringLiteral("-j"), QLatin1String(kOurChain)},
                        QStringLiteral("our jump: %1").arg(r.text)};
        }
        plan.commands
            << Command{tool, {QStringLiteral("-w"), QStringLiteral("-F"), c.name}, QStringLiteral("empty our chain")}
            << Command{tool, {QStringLiteral("-w"), QStringLiteral("-X"), c.name}, QStringLiteral("delete our chain")};
    }
    // ufw: `ufw show added` lists rules as commands; ours carry the comment.
    const QString marker = QStringLiteral("comment '%1'").arg(QLatin1String(kOurComment));
    for (const QString& raw : snapshot.ufwAdded.split(QLatin1Char('\n'))) {
        const QString line = raw.trimmed();
        if (!line.startsWith(u"ufw ") || !line.endsWith(marker)) continue;
        const QStringList words =
            line.chopped(marker.size()).trimmed().split(QLatin1Char(' '), Qt::SkipEmptyParts).mid(1);
        plan.commands << Command{QStringLiteral("ufw"), QStringList{QStringLiteral("delete")} + words,
                                 QStringLiteral("our rule: %1").arg(line)};
    }
    if (!state.firewalldPorts.isEmpty()) {
        if (snapshot.firewalldState != u"running") {
            plan.notes << QStringLiteral(
                              "firewalld is not running: ports %1 that we added stay in its permanent configuration")
                              .arg(state.firewalldPorts.join(QStringLiteral(", ")));
        } else {
            for (const QString& p : state.firewalldPorts) {
                QStringList args{QStringLiteral("--permanent")};
                if (!state.firewalldZone.isEmpty()) args << QStringLiteral("--zone=") + state.firewalldZone;
                args << QStringLiteral("--remove-port=") + p;
                plan.commands << Command{QStringLiteral("firewall-cmd"), args, QStringLiteral("we added this port")};
            }
            plan.commands << Command{
                QStringLiteral("firewall-cmd"), {QStringLiteral("--reload")}, QStringLiteral("make the change active")};
            plan.stateAfter = FirewallState{};
        }
    }
    if (plan.commands.isEmpty()) plan.notes << QStringLiteral("nothing of ours is in the packet filter");
    return plan;
}

Status runPlan(const Plan& plan, const Runner& runner, QStringList* log) {
    for (const Command& c : plan.commands) {
        log->append(QStringLiteral("$ ") + c.display());
        const CommandResult r = runner.run(c.program, c.args);
        for (const QByteArray& line : (r.out + r.err).split('\n'))
            if (!line.trimmed().isEmpty()) log->append(QStringLiteral("  ") + QString::fromUtf8(line));
        if (!r.started) return Status::fail(QStringLiteral("%1 is not installed").arg(c.program));
        if (r.exitCode != 0)
            return Status::fail(QStringLiteral("`%1` failed (exit %2): %3")
                                    .arg(c.display())
                                    .arg(r.exitCode)
                                    .arg(QString::fromUtf8(r.err.trimmed())));
    }
    return {};
}

namespace {
Result<FirewallState> parseState(const QString& path, const QByteArray& data) {
    FirewallState s;
    const QJsonDocument doc = QJsonDocument::fromJson(data);
    if (!doc.isObject()) return Result<FirewallState>::fail(QStringLiteral("%1: not a JSON object").arg(path));
    const QJsonObject fw = doc.object().value(u"firewalld").toObject();
    s.firewalldZone = fw.value(u"zone").toString();
    static const QRegularExpression zoneRe(QStringLiteral("^[A-Za-z0-9_.+-]{1,64}$"));
    if (!s.firewalldZone.isEmpty() && !zoneRe.match(s.firewalldZone).hasMatch())
        return Result<FirewallState>::fail(
            QStringLiteral("%1: '%2' is not a firewalld zone name").arg(path, s.firewalldZone));
    static const QRegularExpression portRe(QStringLiteral("^([0-9]{1,5})/tcp$"));
    for (const QJsonValue& v : fw.value(u"ports").toArray()) {
        const QString p = v.toString();
        const auto m = portRe.match(p);
        if (!m.hasMatch() || m.captured(1).toInt() < 1 || m.captured(1).toInt() > 65535)
            return Result<FirewallState>::fail(QStringLiteral("%1: '%2' is not a port we add (N/tcp)").arg(path, p));
        s.firewalldPorts << p;
    }
    return s;
}
}  // namespace

Result<FirewallState> loadState(const QString& path) {
    FirewallState s;
    QFile f(path);
    if (!f.exists()) return s;
    const Result<QByteArray> data = readFile(path, 1024 * 1024);
    if (!data) return data.error();
    return parseState(path, *data);
}

QString statePath(const Config& config) {
    return config.configDir() + QStringLiteral("/firewall-state.json");
}
QString legacyStatePath(const Config& config) {
    return config.dataDir() + QStringLiteral("/firewall-state.json");
}

Result<FirewallState> loadRecordedState(const Config& config, QString* note) {
    const QString path = statePath(config);
    if (QFileInfo::exists(path)) return loadState(path);
    const QString legacy = legacyStatePath(config);
    if (!QFileInfo(legacy).isFile()) return FirewallState{};
    // In data_dir, which the daemon user owns: trusted only while root still owns the file.
    const QFileInfo info(legacy);
    auto dir = SafeDir::open(info.absolutePath());
    auto h = dir ? dir->openFile(info.fileName(), O_RDONLY) : Result<FileHandle>(dir.error());
    struct stat st {};
    if (!h || ::fstat(h->fd(), &st) != 0 || st.st_uid != 0) {
        *note = QStringLiteral("ignored %1: %2; ports it names are not removed (remove them by hand if we added them)")
                    .arg(legacy, h ? QStringLiteral("not owned by root (the daemon user can write that folder)")
                                   : h.errorMessage());
        return FirewallState{};
    }
    QFile f;
    if (!f.open(h->release(), QIODevice::ReadOnly, QFileDevice::AutoCloseHandle)) return FirewallState{};
    auto parsed = parseState(legacy, f.read(1024 * 1024));
    if (parsed) *note = QStringLiteral("using %1 from an earlier version; it moves to %2").arg(legacy, path);
    return parsed;
}

Status saveState(const QString& path, const FirewallState& state) {
    QJsonObject fw;
    fw.insert(QStringLiteral("zone"), state.firewalldZone);
    fw.insert(QStringLiteral("ports"), QJsonArray::fromStringList(state.firewalldPorts));
    QJsonObject root;
    root.insert(QStringLiteral("firewalld"), fw);
    return writeFileAtomic(path, QJsonDocument(root).toJson(), 0644);
}

QString renderPlan(const Plan& plan, const QString& heading) {
    QStringList out;
    if (plan.commands.isEmpty()) {
        out << heading + QStringLiteral(": nothing to do");
    } else {
        out << heading + QLatin1Char(':');
        for (const Command& c : plan.commands)
            out << QStringLiteral("  # ") + c.why << QStringLiteral("  ") + c.display();
    }
    for (const QString& n : plan.notes) out << QStringLiteral("note: ") + n;
    return out.join(QLatin1Char('\n')) + QLatin1Char('\n');
}

QJsonObject planJson(const Plan& plan) {
    QJsonArray cmds;
    for (const Command& c : plan.commands) {
        QJsonObject o;
        o.insert(QStringLiteral("program"), c.program);
        o.insert(QStringLiteral("args"), QJsonArray::fromStringList(c.args));
        o.insert(QStringLiteral("command"), c.display());
        o.insert(QStringLiteral("why"), c.why);
        cmds.append(o);
    }
    QJsonObject o;
    o.insert(QStringLiteral("commands"), cmds);
    o.insert(QStringLiteral("notes"), QJsonArray::fromStringList(plan.notes));
    o.insert(QStringLiteral("complete"), !plan.blockedElsewhere);
    return o;
}

}  // namespace postern::firewall
