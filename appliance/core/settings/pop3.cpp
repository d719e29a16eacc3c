// settings/pop3.cpp — the POP3 daemon's limits.
#include "../config_schema.h"

namespace postern::settings {

void addPop3(QList<Setting>& out) {
    const QString sec = QStringLiteral("pop3");
    using T = SettingType;
    out << Setting{.key = QStringLiteral("pop3.idle_timeout"), .type = T::Duration, .defaultValue = QStringLiteral("10m"),
                   .doc = QStringLiteral("Idle time before the connection is closed (RFC 1939: at least 10m)"),
                   .section = sec, .min = 600, .max = 86400};
}

}  // namespace postern::settings
