// port_state.h — the mail ports Postern is configured for, and their local state.
//
// Interface:
//   configuredPorts(config)  every listener of the table in core/services.h
//                            (smtp, submission, ..., https) as set in
//                            postern.conf (port 0 and disabled listeners are
//                            left out), with the address families they need;
//                            `service` is the row's name, the report's label.
//   defaultPorts()           the same for an unconfigured host (every listener
//                            on * at its standard port).
//   localPortState(ports)    for each: who listens on it now (from /proc via
//                            core/sockets.h; program names need root for other
//                            users' processes) and whether it can be bound
//                            here: a real bind(2) attempt, so "needs root or
//                            CAP_NET_BIND_SERVICE" and "in use" come from the
//                            kernel, not from a guess.
//
// Security: binds are made with SO_REUSEADDR and closed at once; nothing is
// accepted. Limits: none. Standards: none.
#pragma once

#include "model.h"

#include "core/sockets.h"

#include <QHostAddress>
#include <QList>
#include <QString>

namespace postern {
class Config;
}

namespace postern::firewall {

struct ConfiguredPort {
    QString service;       // listener name: smtp, submission, ...
    QHostAddress address;  // QHostAddress::Any for "*"
    quint16 port = 0;
    QList<IpFamily> families;  // which families the listener serves
};

QList<ConfiguredPort> configuredPorts(const Config& config);
QList<ConfiguredPort> defaultPorts();
// Distinct port numbers, in order of first appearance.
QList<quint16> portNumbers(const QList<ConfiguredPort>& ports);

enum class Bindable { Yes, InUse, NeedsPrivilege, Error };
QString toString(Bindable b);

struct LocalPortState {
    ConfiguredPort configured;
    QList<ListeningSocket> listeners;  // sockets listening on the port now
    Bindable bindable = Bindable::Yes;
    QString detail;     // errno text, or who holds the port
    bool ours = false;  // held by a postern-* program
};

QList<LocalPortState> localPortState(const QList<ConfiguredPort>& ports);

}  // namespace postern::firewall
