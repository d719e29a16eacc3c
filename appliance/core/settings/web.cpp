// settings/web.cpp — the small web services (MTA-STS, autoconfig, ACME, health).
#include "../config_schema.h"

namespace postern::settings {

void addWeb(QList<Setting>& out) {
    const QString sec = QStringLiteral("web");
    using T = SettingType;
    out << Setting{.key = QStringLiteral("mta_sts.mode"),
                   .type = T::Enum,
                   .defaultValue = QStringLiteral("testing"),
                   .doc = QStringLiteral("Inbound MTA-STS policy mode published for our domains (RFC 8461)"),
                   .section = sec,
                   .choices = {QStringLiteral("none"), QStringLiteral("testing"), QStringLiteral("enforce")}};
    out << Setting{
        .key = QStringLiteral("http.request_deadline"),
        .type = T::Duration,
        .defaultValue = QStringLiteral("30s"),
        .doc = QStringLiteral("Time from connecting to a complete HTTP request (head and body); then 408 and close"),
        .section = sec,
        .min = 1,
        .max = 600};
}

}  // namespace postern::settings
