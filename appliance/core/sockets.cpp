// sockets.cpp — see sockets.h.
#include "sockets.h"

#include <QDir>
#include <QFile>
#include <QHash>
#include <QtEndian>

namespace postern {

namespace {

QHostAddress parseHexAddress(const QByteArray& hex, bool v6) {
    if (!v6) {
        bool ok = false;
        const quint32 le = hex.toUInt(&ok, 16);  // little-endian in /proc
        return QHostAddress(qFromBigEndian(qToLittleEndian(le)));
    }
    Q_IPV6ADDR a;
    for (int word = 0; word < 4; ++word) {
        bool ok = false;
        const quint32 w = hex.mid(word * 8, 8).toUInt(&ok, 16);
        // Each 32-bit word is stored in host (little-endian) order.
        a[word * 4 + 0] = quint8(w & 0xff);
        a[word * 4 + 1] = quint8((w >> 8) & 0xff);
        a[word * 4 + 2] = quint8((w >> 16) & 0xff);
        a[word * 4 + 3] = quint8((w >> 24) & 0xff);
    }
    return QHostAddress(a);
}

void readTable(const QString& path, bool v6, QList<ListeningSocket>& out, QHash<quint64, int>& byInode) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return;
    f.readLine();  // header
    while (!f.atEnd()) {
        const QList<QByteArray> cols = f.readLine().simplified().split(' ');
        if (cols.size() < 10) continue;
        if (cols.at(3) != "0A") continue;  // TCP_LISTEN
        const QList<QByteArray> local = cols.at(1).split(':');
        if (local.size() != 2) continue;
        ListeningSocket s;
        s.address = parseHexAddress(local.at(0), v6);
        s.port = quint16(local.at(1).toUInt(nullptr, 16));
        s.ipv6 = v6;
        byInode.insert(cols.at(9).toULongLong(), int(out.size()));
        out << s;
    }
}

}  // namespace

QList<ListeningSocket> listeningSockets() {
    QList<ListeningSocket> out;
    QHash<quint64, int> byInode;
    readTable(QStringLiteral("/proc/net/tcp"), false, out, byInode);
    readTable(QStringLiteral("/proc/net/tcp6"), true, out, byInode);
    if (byInode.isEmpty()) return out;
    const QDir proc(QStringLiteral("/proc"));
    for (const QString& pidText : proc.entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
        bool ok = false;
        const int pid = pidText.toInt(&ok);
        if (!ok) continue;
        const QDir fds(QStringLiteral("/proc/%1/fd").arg(pid));
        const QStringList entries = fds.entryList(QDir::Files | QDir::System);
        for (const QString& fd : entries) {
            const QString target = QFile::symLinkTarget(fds.filePath(fd));
            if (!target.startsWith(u"/proc") && !target.contains(u"socket:[")) continue;
            const qsizetype open = target.indexOf(QLatin1Char('['));
            if (open < 0) continue;
            const quint64 inode = target.mid(open + 1, target.size() - open - 2).toULongLong();
            auto it = byInode.constFind(inode);
            if (it == byInode.cend()) continue;
            ListeningSocket& s = out[*it];
            if (s.pid) continue;
            s.pid = pid;
            QFile comm(QStringLiteral("/proc/%1/comm").arg(pid));
            if (comm.open(QIODevice::ReadOnly)) s.program = QString::fromUtf8(comm.readAll().trimmed());
        }
    }
    return out;
}

QList<ListeningSocket> listenersOnPort(quint16 port) {
    QList<ListeningSocket> out;
    for (const ListeningSocket& s : listeningSockets())
        if (s.port == port) out << s;
    return out;
}

}  // namespace postern
