// sockets.h — which TCP ports are listened on, and by which program.
//
// listeningSockets() reads /proc/net/tcp and /proc/net/tcp6 for sockets in
// LISTEN state and maps their inodes to processes through /proc/<pid>/fd
// (program names need root for other users' processes; without permission the
// program is reported as unknown, never guessed).
// Used by the wizard's port check and the firewall module.
#pragma once

#include <QHostAddress>
#include <QList>
#include <QString>

namespace postern {

struct ListeningSocket {
    QHostAddress address;
    quint16 port = 0;
    bool ipv6 = false;
    int pid = 0;      // 0 when unknown
    QString program;  // e.g. "master" (Postfix), "exim4"; empty when unknown
};

QList<ListeningSocket> listeningSockets();
// Sockets listening on `port` (any address).
QList<ListeningSocket> listenersOnPort(quint16 port);

}  // namespace postern
