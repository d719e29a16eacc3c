// settings/pop3.cpp — the POP3 daemon's limits.
#include "../config_schema.h"

namespace postern::settings {

void addPop3(QList<Setting>& out) {
    const QString sec = QStringLiteral("pop3");
    using T = SettingType;
    out << Setting{.key = QStringLiteral("pop3.idle_timeout"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("10m"),
                   .doc = QStringLiteral("Idle time before the connection is closed (RFC 1939: at least 10m)"),
                   .section = sec,
                   .min = 600,
                   .max = 86400};
    out << Setting{
        .key = QStringLiteral("pop3.login_deadline"),
        .type = T::Duration,
        .defaultValue = QStringLiteral("60s"),
        .doc = QStringLiteral(
            "Time from connecting to a successful login; then the client gets -ERR (commands do not extend it)"),
        .section = sec,
        .min = 1,
        .max = 3600};
    out << Setting{.key = QStringLiteral("pop3.max_line_length"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("255"),
                   .doc = QStringLiteral("Longest command line in octets incl. CRLF (RFC 2449: 255)"),
                   .section = sec,
                   .min = 64,
                   .max = 8192};
    out << Setting{.key = QStringLiteral("pop3.max_errors"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("10"),
                   .doc = QStringLiteral("Errors before the connection is closed"),
                   .section = sec,
                   .min = 1,
                   .max = 1000};
    out << Setting{.key = QStringLiteral("pop3.max_commands_before_auth"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("20"),
                   .doc = QStringLiteral("Commands allowed before a successful login"),
                   .section = sec,
                   .min = 3,
                   .max = 1000};
    out << Setting{.key = QStringLiteral("pop3.max_connections"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("500"),
                   .doc = QStringLiteral("Concurrent POP3 connections"),
                   .section = sec,
                   .min = 1,
                   .max = 100000};
    out << Setting{.key = QStringLiteral("pop3.max_connections_per_ip"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("20"),
                   .doc = QStringLiteral("Concurrent POP3 connections from one client address"),
                   .section = sec,
                   .min = 1,
                   .max = 100000};
    out << Setting{.key = QStringLiteral("pop3.login_delay"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("0s"),
                   .doc = QStringLiteral("LOGIN-DELAY advertised to clients (RFC 2449); 0 advertises none"),
                   .section = sec,
                   .min = 0,
                   .max = 86400};
}

}  // namespace postern::settings
