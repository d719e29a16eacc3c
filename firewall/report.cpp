// report.cpp — see report.h.
#include "report.h"

#include "core/config_schema.h"

#include <QJsonArray>

namespace postern::firewall {

namespace {

QList<IpFamily> familiesOf(const QList<ConfiguredPort>& ports, quint16 port) {
    QList<IpFamily> out;
    for (const ConfiguredPort& p : ports)
        if (p.port == port)
            for (const IpFamily f : p.families)
                if (!out.contains(f)) out << f;
    std::sort(out.begin(), out.end());
    return out;
}

QString serviceOf(const QList<ConfiguredPort>& ports, quint16 port) {
    QStringList names;
    for (const ConfiguredPort& p : ports)
        if (p.port == port && !names.contains(p.service)) names << p.service;
    return names.join(QLatin1Char('+'));
}

QStringList backendNames(const QList<Backend>& backends) {
    QStringList out;
    for (const Backend b : backends) out << toString(b);
    return out;
}

QString listenText(const ConfiguredPort& p) {
    return ListenAddress{p.address, p.port}.toString();
}

QJsonObject decisionJson(const Decision& d) {
    QJsonObject o;
    o.insert(QStringLiteral("verdict"), toString(d.verdict));
    o.insert(QStringLiteral("by"), d.by);
    if (!d.reason.isEmpty()) o.insert(QStringLiteral("reason"), d.reason);
    QJsonArray conds;
    for (const Condition& c : d.conditions) conds.append(c.text);
    if (!conds.isEmpty()) o.insert(QStringLiteral("when"), conds);
    return o;
}

}  // namespace

bool Report::allOpen() const {
    for (const PortResult& r : results)
        if (r.status != PortStatus::Open) return false;
    return true;
}

Report buildReport(const Snapshot& snapshot, const QList<ConfiguredPort>& ports, bool checkLocal) {
    Report r;
    r.snapshot = snapshot;
    r.detection = detect(snapshot);
    r.ports = ports;
    const Evaluator ev(r.detection.ruleset);
    for (const quint16 port : portNumbers(ports)) {
        const QList<PortResult> one =
            evaluatePorts(r.detection.ruleset, {port}, familiesOf(ports, port), snapshot.interfaces);
        for (PortResult pr : one) {
            if (!r.detection.readable) {
                // Rules we could not read cannot say "open".
                pr.status = PortStatus::Unknown;
                for (ProbeResult& p : pr.perInterface) {
                    p.status = PortStatus::Unknown;
                    p.reason = r.detection.notes.join(QStringLiteral("; "));
                    p.exceptions.clear();
                }
                pr.perInterface = {pr.perInterface.first()};
            }
            r.results << pr;
        }
    }
    if (checkLocal) {
        r.local = localPortState(ports);
        r.localChecked = true;
    }
    return r;
}

QStringList containerAdvice(const ContainerInfo& container, const QList<ConfiguredPort>& ports) {
    if (!container.inside) return {};
    QStringList publish;
    quint16 lowest = 0;  // the lowest published port; rootless podman must be allowed to bind it
    for (const quint16 p : portNumbers(ports)) {
        publish << QStringLiteral("-p %1:%1").arg(p);
        if (lowest == 0 || p < lowest) lowest = p;
    }
    const QString engine = container.engine == u"podman" || container.engine == u"buildah" ? QStringLiteral("podman")
                                                                                           : QStringLiteral("docker");
    QStringList out;
    out << QStringLiteral("This runs inside a container (%1: %2). What reaches it is decided on the host:")
               .arg(container.engine, container.evidence);
    out << QStringLiteral("  publish the ports when starting the container:");
    out << QStringLiteral("    %1 run %2 ...").arg(engine, publish.join(QLatin1Char(' ')));
    if (engine == u"podman" && lowest > 0 && lowest < 1024)
        out << QStringLiteral(
                   "    (rootless podman needs net.ipv4.ip_unprivileged_port_start=%1 on the host for ports below "
                   "1024)")
                   .arg(lowest);
    out << QStringLiteral(
        "  and allow the same ports in the host's firewall: run `postern-firewall status` on the host.");
    return out;
}

QString renderStatus(const Report& r) {
    QStringList out;
    const Detection& d = r.detection;
    if (d.backends.isEmpty())
        out << (d.readable ? QStringLiteral("Packet filter: none (nothing filters inbound connections)")
                           : QStringLiteral("Packet filter: could not be read"));
    else
        out << QStringLiteral("Packet filter: %1").arg(backendNames(d.backends).join(QStringLiteral(", ")));
    if (!r.snapshot.interfaces.isEmpty())
        out << QStringLiteral("Interfaces: %1").arg(r.snapshot.interfaces.join(QStringLiteral(", ")));
    out << QStringLiteral("Inbound TCP from a remote client:");
    for (const PortResult& pr : r.results) {
        out << QStringLiteral("  %1 %2/tcp %3  %4 %5")
                   .arg(serviceOf(r.ports, pr.port), -11)
                   .arg(pr.port, 3)
                   .arg(toString(pr.family))
                   .arg(toString(pr.status), -7)
                   .arg(pr.summary());
    }
    if (r.results.isEmpty()) out << QStringLiteral("  (no port is configured for outside access)");
    if (r.localChecked) {
        out << QStringLiteral("Local ports:");
        for (const LocalPortState& l : r.local) {
            QString line = QStringLiteral("  %1 %2: ").arg(l.configured.service, -11).arg(listenText(l.configured));
            if (l.ours)
                line += QStringLiteral("served by Postern");
            else
                line += toString(l.bindable);
            if (!l.detail.isEmpty()) line += QStringLiteral(" (%1)").arg(l.detail);
            out << line;
        }
    }
    const QStringList advice = containerAdvice(r.snapshot.container, r.ports);
    if (!advice.isEmpty()) out << advice;
    for (const QString& n : d.notes) out << QStringLiteral("note: ") + n;
    for (const QString& n : d.ruleset.notes) out << QStringLiteral("note: ") + n;
    return out.join(QLatin1Char('\n')) + QLatin1Char('\n');
}

QJsonObject statusJson(const Report& r) {
    QJsonObject o;
    o.insert(QStringLiteral("backends"), QJsonArray::fromStringList(backendNames(r.detection.backends)));
    o.insert(QStringLiteral("readable"), r.detection.readable);
    o.insert(QStringLiteral("interfaces"), QJsonArray::fromStringList(r.snapshot.interfaces));
    QJsonArray ports;
    for (const PortResult& pr : r.results) {
        QJsonObject p;
        p.insert(QStringLiteral("service"), serviceOf(r.ports, pr.port));
        p.insert(QStringLiteral("port"), pr.port);
        p.insert(QStringLiteral("family"), toString(pr.family));
        p.insert(QStringLiteral("status"), toString(pr.status));
        p.insert(QStringLiteral("summary"), pr.summary());
        QJsonArray per;
        for (const ProbeResult& pb : pr.perInterface) {
            QJsonObject x;
            if (!pb.probe.iif.isEmpty()) x.insert(QStringLiteral("interface"), pb.probe.iif);
            x.insert(QStringLiteral("status"), toString(pb.status));
            if (!pb.reason.isEmpty()) x.insert(QStringLiteral("reason"), pb.reason);
            x.insert(QStringLiteral("decision"), decisionJson(pb.decision));
            QJsonArray ex;
            for (const Decision& e : pb.exceptions) ex.append(decisionJson(e));
            if (!ex.isEmpty()) x.insert(QStringLiteral("exceptions"), ex);
            per.append(x);
        }
        p.insert(QStringLiteral("probes"), per);
        ports.append(p);
    }
    o.insert(QStringLiteral("ports"), ports);
    if (r.localChecked) {
        QJsonArray local;
        for (const LocalPortState& l : r.local) {
            QJsonObject x;
            x.insert(QStringLiteral("service"), l.configured.service);
            x.insert(QStringLiteral("listen"), listenText(l.configured));
            x.insert(QStringLiteral("bindable"), toString(l.bindable));
            x.insert(QStringLiteral("ours"), l.ours);
            if (!l.detail.isEmpty()) x.insert(QStringLiteral("detail"), l.detail);
            QJsonArray holders;
            for (const ListeningSocket& s : l.listeners) {
                QJsonObject h;
                h.insert(QStringLiteral("address"), s.address.toString());
                h.insert(QStringLiteral("pid"), s.pid);
                h.insert(QStringLiteral("program"), s.program);
                holders.append(h);
            }
            x.insert(QStringLiteral("listeners"), holders);
            local.append(x);
        }
        o.insert(QStringLiteral("local"), local);
    }
    QJsonObject c;
    c.insert(QStringLiteral("inside"), r.snapshot.container.inside);
    if (r.snapshot.container.inside) {
        c.insert(QStringLiteral("engine"), r.snapshot.container.engine);
        c.insert(QStringLiteral("evidence"), r.snapshot.container.evidence);
        c.insert(QStringLiteral("advice"), QJsonArray::fromStringList(containerAdvice(r.snapshot.container, r.ports)));
    }
    o.insert(QStringLiteral("container"), c);
    o.insert(QStringLiteral("notes"), QJsonArray::fromStringList(r.detection.notes + r.detection.ruleset.notes));
    o.insert(QStringLiteral("all_open"), r.allOpen());
    return o;
}

}  // namespace postern::firewall
