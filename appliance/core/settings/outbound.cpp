// settings/outbound.cpp — the outbound queue, delivery to MX hosts, smarthost,
// DKIM signing and inbound sender authentication checks.
#include "../config_schema.h"

namespace postern::settings {

void addOutbound(QList<Setting>& out) {
    const QString sec = QStringLiteral("outbound");
    using T = SettingType;
    out << Setting{.key = QStringLiteral("queue.lifetime"), .type = T::Duration, .defaultValue = QStringLiteral("5d"),
                   .doc = QStringLiteral("Give up on a message (and bounce it) after this long"), .section = sec,
                   .min = 60, .max = 30 * 86400};
    out << Setting{.key = QStringLiteral("relay.host"), .type = T::String, .defaultValue = {},
                   .doc = QStringLiteral("Smarthost host[:port] for all outbound mail (empty: deliver to MX hosts)"),
                   .section = sec};
}

}  // namespace postern::settings
