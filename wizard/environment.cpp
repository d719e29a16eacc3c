// environment.cpp — see environment.h.
#include "environment.h"

#include <QFile>
#include <QHostInfo>
#include <QNetworkInterface>

namespace postern::wizard {

QString toString(AddressClass c) {
    switch (c) {
        case AddressClass::Public:
            return QStringLiteral("public");
        case AddressClass::Private:
            return QStringLiteral("private");
        case AddressClass::Loopback:
            return QStringLiteral("loopback");
        case AddressClass::LinkLocal:
            return QStringLiteral("link-local");
    }
    return {};
}

AddressClass classify(const QHostAddress& a) {
    if (a.isLoopback()) return AddressClass::Loopback;
    if (a.isLinkLocal()) return AddressClass::LinkLocal;
    if (a.protocol() == QAbstractSocket::IPv4Protocol) {
        const quint32 v = a.toIPv4Address();
        auto in = [v](quint32 net, int bits) { return (v >> (32 - bits)) == (net >> (32 - bits)); };
        // RFC 1918, RFC 6598 (CGNAT), RFC 5737 documentation, benchmarking, 0/8.
        if (in(0x0A000000, 8) || in(0xAC100000, 12) || in(0xC0A80000, 16) || in(0x64400000, 10) || in(0xC0000200, 24) ||
            in(0xC6336400, 24) || in(0xCB007100, 24) || in(0xC6120000, 15) || in(0x00000000, 8))
            return AddressClass::Private;
        return AddressClass::Public;
    }
    const Q_IPV6ADDR x = a.toIPv6Address();
    if ((x[0] & 0xfe) == 0xfc) return AddressClass::Private;                                         // fc00::/7 ULA
    if (x[0] == 0x20 && x[1] == 0x01 && x[2] == 0x0d && x[3] == 0xb8) return AddressClass::Private;  // 2001:db8::/32
    if ((x[0] & 0xe0) == 0x20) return AddressClass::Public;                                          // 2000::/3
    return AddressClass::Private;
}

QList<QHostAddress> Environment::publicAddresses(bool v6) const {
    QList<QHostAddress> out;
    for (const InterfaceAddress& i : addresses)
        if (i.kind == AddressClass::Public && (i.address.protocol() == QAbstractSocket::IPv6Protocol) == v6)
            out << i.address;
    return out;
}

namespace {
QByteArray readSmall(const char* path) {
    QFile f(QString::fromLatin1(path));
    return f.open(QIODevice::ReadOnly) ? f.read(65536) : QByteArray();
}
}  // namespace

Environment detectEnvironment() {
    Environment e;
    const QByteArray pid1env = readSmall("/proc/1/environ");
    const QByteArray cgroup = readSmall("/proc/1/cgroup");
    if (QFile::exists(QStringLiteral("/.dockerenv")))
        e.platform = QStringLiteral("container (docker)");
    else if (QFile::exists(QStringLiteral("/run/.containerenv")))
        e.platform = QStringLiteral("container (podman)");
    else if (pid1env.contains("container=")) {
        const qsizetype at = pid1env.indexOf("container=");
        e.platform =
            QStringLiteral("container (%1)").arg(QString::fromLatin1(pid1env.mid(at + 10).split('\0').first()));
    } else if (cgroup.contains("docker") || cgroup.contains("kubepods") || cgroup.contains("libpod"))
        e.platform = QStringLiteral("container");
    e.inContainer = !e.platform.isEmpty();
    if (!e.inContainer) {
        const QByteArray vendor = readSmall("/sys/class/dmi/id/sys_vendor").trimmed();
        const QByteArray product = readSmall("/sys/class/dmi/id/product_name").trimmed();
        const bool hyper = readSmall("/proc/cpuinfo").contains(" hypervisor");
        if (hyper || vendor.contains("QEMU") || vendor.contains("VMware") || product.contains("Virtual"))
            e.platform = QStringLiteral("virtual machine (%1)")
                             .arg(QString::fromUtf8(vendor.isEmpty() ? QByteArray("hypervisor") : vendor));
        else if (!vendor.isEmpty())
            e.platform = QStringLiteral("bare host (%1)").arg(QString::fromUtf8(vendor));
        else
            e.platform = QStringLiteral("unknown");
    }
    e.hostname = QHostInfo::localHostName();
    const QString dom = QHostInfo::localDomainName();
    e.fqdn = e.hostname.contains(QLatin1Char('.')) || dom.isEmpty() ? e.hostname : e.hostname + QLatin1Char('.') + dom;
    for (const QNetworkInterface& iface : QNetworkInterface::allInterfaces()) {
        if (!(iface.flags() & QNetworkInterface::IsUp)) continue;
        for (const QNetworkAddressEntry& entry : iface.addressEntries()) {
            QHostAddress a = entry.ip();
            a.setScopeId(QString());
            e.addresses << InterfaceAddress{iface.name(), a, classify(a)};
        }
    }
    for (const QByteArray& line : readSmall("/etc/resolv.conf").split('\n')) {
        const QByteArray t = line.simplified();
        if (t.startsWith("nameserver ")) e.resolvers << QString::fromLatin1(t.mid(11));
    }
    return e;
}

}  // namespace postern::wizard
