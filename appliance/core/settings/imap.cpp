// settings/imap.cpp — the IMAP daemon's limits. APPENDLIMIT is smtp.max_message_size.
#include "../config_schema.h"

namespace postern::settings {

void addImap(QList<Setting>& out) {
    const QString sec = QStringLiteral("imap");
    using T = SettingType;
    out << Setting{.key = QStringLiteral("imap.max_line_length"),
                   .type = T::Size,
                   .defaultValue = QStringLiteral("64K"),
                   .doc = QStringLiteral("Longest command line, literals excluded"),
                   .section = sec,
                   .min = 1024,
                   .max = qint64(16) << 20};
    out << Setting{
        .key = QStringLiteral("imap.idle_timeout"),
        .type = T::Duration,
        .defaultValue = QStringLiteral("30m"),
        .doc = QStringLiteral("Idle time before an authenticated client is logged out (RFC 9051: at least 30m)"),
        .section = sec,
        .min = 1800,
        .max = 86400};
    out << Setting{
        .key = QStringLiteral("imap.login_deadline"),
        .type = T::Duration,
        .defaultValue = QStringLiteral("60s"),
        .doc = QStringLiteral(
            "Time from connecting to a successful login; then the client gets BYE (commands do not extend it)"),
        .section = sec,
        .min = 1,
        .max = 3600};
    out << Setting{
        .key = QStringLiteral("imap.max_buffered_input"),
        .type = T::Size,
        .defaultValue = QStringLiteral("256M"),
        .doc = QStringLiteral("Client input one postern-imapd process holds at most (commands and literals being "
                              "received, unread data); past it large literals get NO [LIMIT] and reading pauses"),
        .section = sec,
        .min = qint64(1) << 20,
        .max = qint64(64) << 30};
    out << Setting{.key = QStringLiteral("imap.max_bad_commands"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("20"),
                   .doc = QStringLiteral("Invalid commands before the connection is closed"),
                   .section = sec,
                   .min = 1,
                   .max = 10000};
    out << Setting{.key = QStringLiteral("imap.max_connections"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("1000"),
                   .doc = QStringLiteral("Concurrent IMAP connections"),
                   .section = sec,
                   .min = 1,
                   .max = 100000};
    out << Setting{.key = QStringLiteral("imap.max_connections_per_ip"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("50"),
                   .doc = QStringLiteral("Concurrent IMAP connections from one client address"),
                   .section = sec,
                   .min = 1,
                   .max = 100000};
    out << Setting{.key = QStringLiteral("imap.max_sessions_per_user"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("50"),
                   .doc = QStringLiteral(
                       "Concurrent logged-in IMAP sessions of one user (all addresses); more are refused at login"),
                   .section = sec,
                   .min = 1,
                   .max = 100000};
    out << Setting{
        .key = QStringLiteral("imap.processes"),
        .type = T::Int,
        .defaultValue = QStringLiteral("0"),
        .doc = QStringLiteral("postern-imapd processes sharing the IMAP ports (0: one per CPU core, at most 16); "
                              "the connection and session limits count over all of them"),
        .section = sec,
        .restart = true,
        .min = 0,
        .max = 16};
}

}  // namespace postern::settings
