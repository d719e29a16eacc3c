// settings/listeners.cpp — where each protocol listens: one <name>.listen setting per
// row of the listener table (services.h), with the row's standard port as default.
// The listener's mode comes from the row, never from the port.
#include "../config_schema.h"
#include "../services.h"

namespace postern::settings {

void addListeners(QList<Setting>& out) {
    const QString sec = QStringLiteral("listeners");
    for (const ListenerInfo& l : listeners())
        out << Setting{.key = l.settingKey(),
                       .type = SettingType::ListenList,
                       .defaultValue = QStringLiteral("*:%1").arg(l.standardPort),
                       .doc = l.doc,
                       .section = sec,
                       .restart = true};
}

}  // namespace postern::settings
