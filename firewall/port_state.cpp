// port_state.cpp — see port_state.h.
#include "port_state.h"

#include "core/config.h"
#include "core/posix_io.h"
#include "core/services.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace postern::firewall {

namespace {

QList<IpFamily> familiesFor(const QHostAddress& a) {
    if (a.isLoopback()) return {};  // not reachable from outside: no firewall question
    if (a == QHostAddress(QHostAddress::Any)) return {IpFamily::V4, IpFamily::V6};  // "*": dual stack
    if (a == QHostAddress(QHostAddress::AnyIPv6)) return {IpFamily::V6};            // Qt binds [::] IPv6-only
    if (a == QHostAddress(QHostAddress::AnyIPv4)) return {IpFamily::V4};
    return {a.protocol() == QAbstractSocket::IPv6Protocol ? IpFamily::V6 : IpFamily::V4};
}

// Tries to bind `address:port` (TCP) and returns errno, 0 on success.
int tryBind(const QHostAddress& address, quint16 port) {
    const bool v6 = address.protocol() == QAbstractSocket::IPv6Protocol || address == QHostAddress(QHostAddress::Any);
    const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc;
    if (v6) {
        sockaddr_in6 sa{};
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(port);
        if (address != QHostAddress(QHostAddress::Any)) {
            const Q_IPV6ADDR a = address.toIPv6Address();
            std::memcpy(&sa.sin6_addr, &a, sizeof a);
        } else {
            const int zero = 0;  // "*": both families, as the daemons bind it
            ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        }
        rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    } else {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        sa.sin_addr.s_addr = htonl(address.toIPv4Address());
        rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
    }
    const int err = rc == 0 ? 0 : errno;
    ::close(fd);
    return err;
}

}  // namespace

QString toString(Bindable b) {
    switch (b) {
        case Bindable::Yes:
            return QStringLiteral("can bind");
        case Bindable::InUse:
            return QStringLiteral("in use");
        case Bindable::NeedsPrivilege:
            return QStringLiteral("needs root or CAP_NET_BIND_SERVICE");
        case Bindable::Error:
            return QStringLiteral("cannot bind");
    }
    return {};
}

QList<ConfiguredPort> configuredPorts(const Config& config) {
    QList<ConfiguredPort> out;
    for (const ListenerInfo& l : listeners()) {
        for (const ListenAddress& la : config.listeners(l.settingKey())) {
            if (la.port == 0) continue;
            out << ConfiguredPort{l.name, la.address, la.port, familiesFor(la.address)};
        }
    }
    return out;
}

QList<ConfiguredPort> defaultPorts() {
    QList<ConfiguredPort> out;
    for (const ListenerInfo& l : listeners())
        out << ConfiguredPort{l.name, QHostAddress(QHostAddress::Any), l.standardPort, {IpFamily::V4, IpFamily::V6}};
    return out;
}

QList<quint16> portNumbers(const QList<ConfiguredPort>& ports) {
    QList<quint16> out;
    for (const ConfiguredPort& p : ports)
        if (!p.families.isEmpty() && !out.contains(p.port)) out << p.port;
    return out;
}

QList<LocalPortState> localPortState(const QList<ConfiguredPort>& ports) {
    const QList<ListeningSocket> all = listeningSockets();
    QList<LocalPortState> out;
    for (const ConfiguredPort& p : ports) {
        LocalPortState st;
        st.configured = p;
        QStringList holders;
        for (const ListeningSocket& s : all) {
            if (s.port != p.port) continue;
            st.listeners << s;
            if (s.program.startsWith(u"postern-")) st.ours = true;
            const QString who = s.program.isEmpty() ? QStringLiteral("an unknown program (run as root to see)")
                                                    : QStringLiteral("%1 (pid %2)").arg(s.program).arg(s.pid);
            if (!holders.contains(who)) holders << who;
        }
        const int err = tryBind(p.address, p.port);
        if (err == 0) {
            st.bindable = Bindable::Yes;
        } else if (err == EADDRINUSE) {
            st.bindable = Bindable::InUse;
            st.detail = holders.isEmpty() ? QStringLiteral("address in use")
                                          : QStringLiteral("held by ") + holders.join(QStringLiteral(", "));
        } else if (err == EACCES || err == EPERM) {
            st.bindable = Bindable::NeedsPrivilege;
            st.detail = errnoText(err);
        } else {
            st.bindable = Bindable::Error;
            st.detail = errnoText(err);
        }
        if (st.bindable != Bindable::InUse && !holders.isEmpty())
            st.detail = QStringLiteral("listened on by ") + holders.join(QStringLiteral(", "));
        out << st;
    }
    return out;
}

}  // namespace postern::firewall
