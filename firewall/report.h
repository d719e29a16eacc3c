// report.h — everything `postern-firewall status` says, as text and as JSON.
//
// Interface: buildReport(snapshot, ports, checkLocal) detects the backends,
// evaluates each configured port for each family it needs on each interface,
// and (with checkLocal) reads the local listeners and tries the binds.
// renderStatus() is the operator's text; statusJson() the same facts for
// programs (the wizard, posternctl, tests). containerAdvice() is what to do
// on the host when we run inside a container.
//
// Security: output names rules and programs, never secrets. Limits: none.
#pragma once

#include "detect.h"
#include "evaluate.h"
#include "port_state.h"

#include <QJsonObject>
#include <QList>
#include <QString>
#include <QStringList>

namespace postern::firewall {

struct Report {
    Snapshot snapshot;
    Detection detection;
    QList<ConfiguredPort> ports;
    QList<PortResult> results;
    QList<LocalPortState> local;
    bool localChecked = false;

    bool allOpen() const;
};

Report buildReport(const Snapshot& snapshot, const QList<ConfiguredPort>& ports, bool checkLocal);
QString renderStatus(const Report& report);
QJsonObject statusJson(const Report& report);
QStringList containerAdvice(const ContainerInfo& container, const QList<ConfiguredPort>& ports);

}  // namespace postern::firewall
