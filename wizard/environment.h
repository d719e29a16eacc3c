// environment.h — facts about the machine the wizard runs on.
//
// detectEnvironment(): container / VM / bare host (from /.dockerenv,
// /run/.containerenv, /proc/1/cgroup, `container=` in PID 1's environment,
// /sys/class/dmi/id and /proc/cpuinfo's hypervisor flag), host name and FQDN,
// every interface address classified (public / private / loopback /
// link-local, IPv4 and IPv6), NAT (no public address at all), and the
// resolvers from /etc/resolv.conf. All reads are best effort; what cannot be
// known is reported as unknown, never guessed.
#pragma once

#include <QHostAddress>
#include <QList>
#include <QString>
#include <QStringList>

namespace postern::wizard {

enum class AddressClass { Public, Private, Loopback, LinkLocal };
QString toString(AddressClass c);
AddressClass classify(const QHostAddress& a);

struct InterfaceAddress {
    QString interface;
    QHostAddress address;
    AddressClass kind = AddressClass::Private;
};

struct Environment {
    QString platform;  // "container (docker)", "virtual machine (kvm)", "bare host", "unknown"
    bool inContainer = false;
    QString hostname;  // short
    QString fqdn;      // may equal hostname when no domain is known
    QList<InterfaceAddress> addresses;
    QStringList resolvers;
    QList<QHostAddress> publicAddresses(bool v6) const;
    bool behindNat() const { return publicAddresses(false).isEmpty() && publicAddresses(true).isEmpty(); }
};

Environment detectEnvironment();

}  // namespace postern::wizard
