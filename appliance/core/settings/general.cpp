// settings/general.cpp — host identity, folders, logging, DNS, privileges.
#include "../config_schema.h"

namespace postern::settings {

// Long because it is the one table of the general settings (host identity, admin address, folders, logging, system
// user, recipient delimiter, DNS and the bundled resolver): 19 rows, one Setting declaration each (key, type,
// default, range, doc), which parsing, validation and the generated reference all read; split into parts it would be
// one table scattered over several functions.
void addGeneral(QList<Setting>& out) {
    const QString sec = QStringLiteral("general");
    using T = SettingType;
    out << Setting{
        .key = QStringLiteral("hostname"),
        .type = T::HostName,
        .defaultValue = {},
        .doc = QStringLiteral("Mail host name presented in banners, HELO and certificates (empty: the system's FQDN)"),
        .section = sec,
        .restart = true};
    out << Setting{.key = QStringLiteral("primary_domain"),
                   .type = T::HostName,
                   .defaultValue = {},
                   .doc = QStringLiteral("The first mail domain; used for DNS records, MTA-STS and autoconfig"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("admin_address"),
                   .type = T::Email,
                   .defaultValue = {},
                   .doc = QStringLiteral("Where postmaster@ and abuse@ of new domains are sent"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("data_dir"),
                   .type = T::Path,
                   .defaultValue = QStringLiteral("/var/lib/postern"),
                   .doc = QStringLiteral("Mail, queue and state; relative paths are relative to the config folder"),
                   .section = sec,
                   .restart = true};
    out << Setting{.key = QStringLiteral("log_dir"),
                   .type = T::Path,
                   .defaultValue = {},
                   .doc = QStringLiteral("Folder of mail.log (empty: <data_dir>/log)"),
                   .section = sec,
                   .restart = true};
    out << Setting{.key = QStringLiteral("run_dir"),
                   .type = T::Path,
                   .defaultValue = {},
                   .doc = QStringLiteral("Sockets, pid and readiness files (empty: <data_dir>/run)"),
                   .section = sec,
                   .restart = true};
    out << Setting{
        .key = QStringLiteral("update.announce_url"),
        .type = T::String,
        .defaultValue = {},
        .doc = QStringLiteral(
            "http(s) URL of a small document announcing the newest Postern image (JSON {\"version\": ...} "
            "or \"VERSION [URL]\"); checked by posternctl version and, once a day, status (empty: never asked)"),
        .section = sec};
    out << Setting{.key = QStringLiteral("log.level"),
                   .type = T::Enum,
                   .defaultValue = QStringLiteral("info"),
                   .doc = QStringLiteral("Lowest level written to mail.log and stderr"),
                   .section = sec,
                   .choices = {QStringLiteral("debug"), QStringLiteral("info"), QStringLiteral("warning"),
                               QStringLiteral("error")}};
    out << Setting{.key = QStringLiteral("log.stderr"),
                   .type = T::Bool,
                   .defaultValue = QStringLiteral("true"),
                   .doc = QStringLiteral("Also write log lines to standard error"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("log.transcripts"),
                   .type = T::Bool,
                   .defaultValue = QStringLiteral("false"),
                   .doc = QStringLiteral("Log protocol transcripts (C:/S:, AUTH and bodies redacted) at debug level"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("system_user"),
                   .type = T::String,
                   .defaultValue = QStringLiteral("postern"),
                   .doc = QStringLiteral(
                       "Unprivileged user the daemons switch to after binding their ports (when started as root)"),
                   .section = sec,
                   .restart = true};
    out << Setting{.key = QStringLiteral("recipient_delimiter"),
                   .type = T::String,
                   .defaultValue = QStringLiteral("+"),
                   .doc = QStringLiteral(
                       "Characters that separate a user from a detail (user+tag@); empty disables plus-addressing"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("dns.servers"),
                   .type = T::StringList,
                   .defaultValue = {},
                   .doc = QStringLiteral("DNS servers as ip or ip:port, comma-separated (empty: /etc/resolv.conf)"),
                   .section = sec,
                   .restart = true};
    out << Setting{
        .key = QStringLiteral("public_addresses"),
        .type = T::StringList,
        .defaultValue = {},
        .doc = QStringLiteral("This host's public IP addresses as the Internet sees them (NAT), comma-separated; "
                              "used for the A/AAAA/PTR records of the DNS sheet and check (the wizard sets it)"),
        .section = sec};
    out << Setting{
        .key = QStringLiteral("dns.check_server"),
        .type = T::String,
        .defaultValue = {},
        .doc = QStringLiteral("Server (ip or ip:port) the DNS check asks instead of the domain's own name servers, "
                              "e.g. a hidden primary (empty: the domain's NS records)"),
        .section = sec};
    out << Setting{.key = QStringLiteral("dns.resolver"),
                   .type = T::Enum,
                   .defaultValue = QStringLiteral("bundled"),
                   .doc = QStringLiteral(
                       "Resolver used when dns.servers is empty: bundled (the supervisor runs unbound, a local "
                       "caching DNSSEC-validating resolver on dns.resolver_listen) or system (/etc/resolv.conf)"),
                   .section = sec,
                   .restart = true,
                   .choices = {QStringLiteral("bundled"), QStringLiteral("system")}};
    out << Setting{
        .key = QStringLiteral("dns.resolver_listen"),
        .type = T::String,
        .defaultValue = QStringLiteral("127.0.0.1:5335"),
        .doc = QStringLiteral("Loopback address and port of the bundled resolver (127.0.0.1:port or [::1]:port)"),
        .section = sec,
        .restart = true};
    out << Setting{.key = QStringLiteral("dns.forward_zones"),
                   .type = T::StringList,
                   .defaultValue = {},
                   .doc = QStringLiteral("Zones the bundled resolver asks given servers for, as zone=ip[:port] (e.g. "
                                         "corp.example=10.0.0.53); their answers are not DNSSEC-validated"),
                   .section = sec,
                   .restart = true};
    out << Setting{.key = QStringLiteral("dns.timeout"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("5s"),
                   .doc = QStringLiteral("Time to wait for one DNS answer"),
                   .section = sec,
                   .min = 1,
                   .max = 60};
}

}  // namespace postern::settings
