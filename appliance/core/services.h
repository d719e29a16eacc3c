// services.h — the one table of Postern's listeners and of the programs that serve them.
//
// Every part of the product that needs to know "which listeners exist" reads
// this table: the settings (<name>.listen with its default), the daemons
// (which listeners a program binds, with which ListenerMode), the supervisor
// (which programs it starts, and which listener keys enable them), the wizard
// (standard and unprivileged demo ports, --port/--disable names, probes,
// client settings), the firewall (configured ports, names in reports, service
// names in rules), `posternctl check` (which protocol to speak, implicit TLS
// or not), the DNS sheet (RFC 6186 SRV records) and postern-webd's client
// autoconfiguration. Adding a listener is one row in listenerTable() plus the
// daemon that serves it (a new program is one row in serviceTable()).
//
// Interface:
//   listeners()            every listener, in the order settings and reports show them.
//   listenerInfo(mode)     the row of a mode (every mode has exactly one row).
//   findListener(name)     the row named "smtp", "imaps", ...; nullptr when unknown.
//   listenerName(mode), isImplicitTls(mode)   shorthands used on hot paths (logs, metrics).
//   clientListeners()      the rows mail clients use (submission, IMAP, POP3), incoming
//                          first, implicit TLS before STARTTLS (RFC 8314 5.1): the
//                          order of autoconfig files and of the wizard's client settings.
//   services()             the programs the supervisor starts, in start order: the bundled
//                          resolver (unbound; dns.resolver = bundled, no dns.servers), the spam
//                          filter's engines (redis-server, rspamd; only with spam.enabled),
//                          then Postern's daemons.
//   serviceOffReason(s, config)  why the settings keep a service from running, or empty.
//   listenersOf(program)   the rows a program serves.
//   serviceNamePort(name)  IANA service name ("smtps", "imap2", ...) -> standard port of
//                          a row that knows it by that name; -1 otherwise.
//
// The name of a row is at once: the setting key's prefix (smtp.listen), the
// key of the ready file and status JSON, the `listener=` label in logs and
// metrics, the firewall report's label for the port, the wizard's --port and
// --disable NAME, and the IANA service name (RFC 6335 registry), so firewall
// rules written with service names ("tcp dport smtp") resolve through the
// same table.
//
// Security: constant data. Limits: none. Standards: RFC 6186 and RFC 8314
// (SRV names and priorities), RFC 5804 (ManageSieve, _sieve._tcp), RFC 6335 (service names), RFC 6409 (submission).
#pragma once

#include <QList>
#include <QString>
#include <QStringList>

namespace postern {

class Config;

// What a listener is for. Policy reads the mode, never the port.
enum class ListenerMode { Mx, Submission, Submissions, Imap, Imaps, Pop3, Pop3s, Http, Https, ManageSieve };

enum class Protocol { Smtp, Imap, Pop3, Http, ManageSieve };
QString toString(Protocol p);  // "smtp", "imap", "pop3", "http", "managesieve"

// Who connects: other mail servers / web clients (None), or mail clients reading or sending.
enum class ClientRole { None, Incoming, Outgoing };

struct ListenerInfo {
    ListenerMode mode;
    QString name;  // "smtp", "submission", ... (see the file comment)
    Protocol protocol;
    quint16 standardPort;  // the default of <name>.listen ("*:25")
    quint16 demoPort;      // what the wizard binds when it does not run as root (2525)
    bool implicitTls;      // TLS from the first byte (465, 993, 995, 443); else plain/STARTTLS
    QString program;       // the daemon that binds it ("postern-smtpd")
    ClientRole client;
    QString srvService;   // RFC 6186/8314 SRV owner name ("_submissions._tcp"); empty: none
    int srvPriority;      // its priority (implicit TLS lower = preferred); -1 without SRV
    QString title;        // for people: "submission with TLS" (DNS sheet, client settings)
    QString doc;          // the setting's one-line documentation
    QStringList aliases;  // further IANA service names of standardPort ("smtps", "imap2")

    QString settingKey() const { return name + QStringLiteral(".listen"); }
};

struct ServiceInfo {
    QString program;         // "postern-smtpd"
    QString description;     // one line for --help
    bool withoutListeners;   // runs even when it serves no listener (the queue runner)
    QString enabledBy = {};  // a Bool setting that must be true for it to run ("spam.enabled"), or "dns.resolver"
                             // (serviceOffReason); empty: none
    bool engine = false;     // a third-party program (unbound, redis-server, rspamd) run with a configuration Postern
                             // generates (core/resolver_engine.h, core/spam_engine.h); ready when its socket
                             // accepts, no ready file
};

const QList<ListenerInfo>& listeners();
const ListenerInfo& listenerInfo(ListenerMode mode);
const ListenerInfo* findListener(const QString& name);
QString listenerName(ListenerMode mode);
bool isImplicitTls(ListenerMode mode);
QStringList listenerNames();
QList<ListenerInfo> clientListeners();

const QList<ServiceInfo>& services();
const ServiceInfo* findService(const QString& program);
QList<ListenerInfo> listenersOf(const QString& program);
int serviceNamePort(const QString& name);
// Why the settings keep a service from running ("spam.enabled is off", "dns.servers is set"),
// or empty when they let it run. enabledBy "dns.resolver": the bundled resolver is in use
// (core/dns.h bundledResolverInUse); any other: that Bool setting is true.
QString serviceOffReason(const ServiceInfo& service, const Config& config);

}  // namespace postern
