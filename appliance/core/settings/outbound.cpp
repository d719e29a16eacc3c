// settings/outbound.cpp — the outbound queue runner: delivery to MX hosts or a
// smarthost, retries, TLS policy (MTA-STS, DANE), DKIM signing.
#include "../config_schema.h"

namespace postern::settings {

// Long because it is the one table of the outbound settings (queue lifetime and retries, smarthost, MX port,
// timeouts, concurrency, CA file, DANE, MTA-STS, DKIM signing): 18 rows, one Setting declaration each (key, type,
// default, range, doc), which parsing, validation and the generated reference all read; split into parts it would be
// one table scattered over several functions.
void addOutbound(QList<Setting>& out) {
    const QString sec = QStringLiteral("outbound");
    using T = SettingType;
    out << Setting{.key = QStringLiteral("queue.lifetime"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("5d"),
                   .doc = QStringLiteral("Give up on a message (and bounce it) after this long"),
                   .section = sec,
                   .min = 60,
                   .max = 30 * 86400};
    out << Setting{.key = QStringLiteral("queue.retry_min"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("5m"),
                   .doc = QStringLiteral("First retry after a temporary failure; doubles per attempt"),
                   .section = sec,
                   .min = 1,
                   .max = 86400};
    out << Setting{.key = QStringLiteral("queue.retry_max"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("4h"),
                   .doc = QStringLiteral("Longest time between retries"),
                   .section = sec,
                   .min = 1,
                   .max = 7 * 86400};
    out << Setting{
        .key = QStringLiteral("queue.delay_warning"),
        .type = T::Duration,
        .defaultValue = QStringLiteral("4h"),
        .doc = QStringLiteral("Tell the sender once when a message is still undelivered after this long (0: never)"),
        .section = sec,
        .min = 0,
        .max = 30 * 86400};
    out << Setting{.key = QStringLiteral("relay.host"),
                   .type = T::String,
                   .defaultValue = {},
                   .doc = QStringLiteral("Smarthost host[:port] for all outbound mail (empty: deliver to MX hosts)"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("relay.user"),
                   .type = T::String,
                   .defaultValue = {},
                   .doc = QStringLiteral("Login at the smarthost (empty: no AUTH)"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("relay.password_file"),
                   .type = T::Path,
                   .defaultValue = {},
                   .doc = QStringLiteral("File holding the smarthost password (first line)"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("relay.tls"),
                   .type = T::Enum,
                   .defaultValue = QStringLiteral("starttls"),
                   .doc = QStringLiteral("TLS to the smarthost: starttls (required), implicit (port 465 style)"),
                   .section = sec,
                   .choices = {QStringLiteral("starttls"), QStringLiteral("implicit")}};
    out << Setting{.key = QStringLiteral("outbound.mx_port"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("25"),
                   .doc = QStringLiteral("TCP port of other servers' MX hosts (25; only test networks change it)"),
                   .section = sec,
                   .min = 1,
                   .max = 65535};
    out << Setting{.key = QStringLiteral("outbound.connect_timeout"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("30s"),
                   .doc = QStringLiteral("Time allowed to connect to a remote host"),
                   .section = sec,
                   .min = 1,
                   .max = 600};
    out << Setting{.key = QStringLiteral("outbound.command_timeout"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("5m"),
                   .doc = QStringLiteral("Time allowed for a remote reply (RFC 5321 4.5.3.2: minutes)"),
                   .section = sec,
                   .min = 1,
                   .max = 3600};
    out << Setting{.key = QStringLiteral("outbound.max_deliveries"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("20"),
                   .doc = QStringLiteral("Messages delivered at the same time"),
                   .section = sec,
                   .min = 1,
                   .max = 1000};
    out << Setting{.key = QStringLiteral("outbound.max_per_domain"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("4"),
                   .doc = QStringLiteral("Connections to one destination domain at the same time"),
                   .section = sec,
                   .min = 1,
                   .max = 100};
    out << Setting{
        .key = QStringLiteral("outbound.ca_file"),
        .type = T::Path,
        .defaultValue = {},
        .doc = QStringLiteral("Extra CA certificates (PEM) trusted when TLS must verify (MTA-STS, smarthost)"),
        .section = sec};
    out << Setting{.key = QStringLiteral("outbound.dane"),
                   .type = T::Bool,
                   .defaultValue = QStringLiteral("true"),
                   .doc = QStringLiteral("Use DANE (RFC 7672) when a DNSSEC-validated TLSA record exists"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("outbound.mta_sts"),
                   .type = T::Bool,
                   .defaultValue = QStringLiteral("true"),
                   .doc = QStringLiteral("Honour other domains' MTA-STS policies (RFC 8461)"),
                   .section = sec};
    out << Setting{
        .key = QStringLiteral("outbound.mta_sts_port"),
        .type = T::Int,
        .defaultValue = QStringLiteral("443"),
        .doc = QStringLiteral("HTTPS port for fetching MTA-STS policies (443; only test networks change it)"),
        .section = sec,
        .min = 1,
        .max = 65535};
    out << Setting{.key = QStringLiteral("dkim.sign"),
                   .type = T::Bool,
                   .defaultValue = QStringLiteral("true"),
                   .doc = QStringLiteral("DKIM-sign mail of authenticated users with the domain's active keys"),
                   .section = sec};
}

}  // namespace postern::settings
