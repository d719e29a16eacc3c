// settings/sieve.cpp — the ManageSieve daemon's limits (postern-sieved, RFC 5804).
// Where it listens is sieve.listen (settings/listeners.cpp, the listener table).
#include "../config_schema.h"

namespace postern::settings {

// Long because it is the one table of the ManageSieve settings (line and literal limits, timeouts, error and command
// limits, script limits, global scripts, connection limits): 13 rows, one Setting declaration each (key, type,
// default, range, doc), which parsing, validation and the generated reference all read; split into parts it would be
// one table scattered over several functions.
void addManageSieve(QList<Setting>& out) {
    const QString sec = QStringLiteral("sieve");
    using T = SettingType;
    out << Setting{.key = QStringLiteral("sieve.max_line_length"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("8192"),
                   .doc = QStringLiteral("ManageSieve: longest command line in octets incl. CRLF, literals excluded"),
                   .section = sec,
                   .min = 256,
                   .max = 65536};
    out << Setting{
        .key = QStringLiteral("sieve.max_literal_before_auth"),
        .type = T::Size,
        .defaultValue = QStringLiteral("4K"),
        .doc = QStringLiteral("ManageSieve: octets of the literals of one command before login (a SASL response)"),
        .section = sec,
        .min = 1024,
        .max = 65536};
    out << Setting{
        .key = QStringLiteral("sieve.max_literal"),
        .type = T::Size,
        .defaultValue = QStringLiteral("1M"),
        .doc = QStringLiteral(
            "ManageSieve: octets of the literals of one command after login (a script; scripts are at most 1M)"),
        .section = sec,
        .min = 1024,
        .max = qint64(1) << 20};
    out << Setting{.key = QStringLiteral("sieve.idle_timeout"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("30m"),
                   .doc = QStringLiteral("ManageSieve: idle time before the connection is closed"),
                   .section = sec,
                   .min = 10,
                   .max = 86400};
    out << Setting{.key = QStringLiteral("sieve.login_deadline"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("60s"),
                   .doc = QStringLiteral("ManageSieve: time from connecting to a successful login, then BYE"),
                   .section = sec,
                   .min = 1,
                   .max = 3600};
    out << Setting{.key = QStringLiteral("sieve.max_errors"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("10"),
                   .doc = QStringLiteral("ManageSieve: bad commands before the connection is closed"),
                   .section = sec,
                   .min = 1,
                   .max = 1000};
    out << Setting{.key = QStringLiteral("sieve.max_commands_before_auth"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("20"),
                   .doc = QStringLiteral("ManageSieve: commands allowed before a successful login"),
                   .section = sec,
                   .min = 3,
                   .max = 1000};
    out << Setting{.key = QStringLiteral("sieve.max_scripts"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("32"),
                   .doc = QStringLiteral("Sieve scripts one user may store (ManageSieve PUTSCRIPT/HAVESPACE: "
                                         "QUOTA/MAXSCRIPTS; posternctl sieve put)"),
                   .section = sec,
                   .min = 1,
                   .max = 1000};
    out << Setting{.key = QStringLiteral("sieve.max_script_size"),
                   .type = T::Size,
                   .defaultValue = QStringLiteral("1M"),
                   .doc = QStringLiteral("Largest Sieve script one user may store (ManageSieve PUTSCRIPT/HAVESPACE: "
                                         "QUOTA/MAXSIZE; posternctl sieve put)"),
                   .section = sec,
                   .min = 1024,
                   .max = qint64(1) << 20};
    out << Setting{
        .key = QStringLiteral("sieve.before"),
        .type = T::String,
        .defaultValue = QString(),
        .doc = QStringLiteral(
            "Global Sieve scripts (posternctl sieve global put) run before every user's own script, comma-separated"),
        .section = sec};
    out << Setting{.key = QStringLiteral("sieve.after"),
                   .type = T::String,
                   .defaultValue = QString(),
                   .doc = QStringLiteral("Global Sieve scripts run after every user's own script, comma-separated"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("sieve.max_connections"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("100"),
                   .doc = QStringLiteral("Concurrent ManageSieve connections"),
                   .section = sec,
                   .min = 1,
                   .max = 100000};
    out << Setting{.key = QStringLiteral("sieve.max_connections_per_ip"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("10"),
                   .doc = QStringLiteral("Concurrent ManageSieve connections from one client address"),
                   .section = sec,
                   .min = 1,
                   .max = 100000};
}

}  // namespace postern::settings
