// settings/listeners.cpp — where each protocol listens. The listener's mode
// comes from the key (smtp = MX, submission, submissions, ...), never from the port.
#include "../config_schema.h"

namespace postern::settings {

void addListeners(QList<Setting>& out) {
    const QString sec = QStringLiteral("listeners");
    auto add = [&](const char* name, const char* def, const char* doc) {
        out << Setting{.key = QStringLiteral("%1.listen").arg(QLatin1String(name)), .type = SettingType::ListenList,
                       .defaultValue = QString::fromLatin1(def), .doc = QString::fromLatin1(doc), .section = sec,
                       .restart = true};
    };
    add("smtp", "*:25", "MX listener: mail from other servers, STARTTLS offered");
    add("submission", "*:587", "Submission for users: STARTTLS, then AUTH (RFC 6409)");
    add("submissions", "*:465", "Submission with implicit TLS (RFC 8314)");
    add("imap", "*:143", "IMAP with STARTTLS");
    add("imaps", "*:993", "IMAP with implicit TLS");
    add("pop3", "*:110", "POP3 with STLS");
    add("pop3s", "*:995", "POP3 with implicit TLS");
    add("http", "*:80", "HTTP: ACME challenges, MTA-STS and autoconfig, redirects to HTTPS");
    add("https", "*:443", "HTTPS: MTA-STS policy, autoconfig, autodiscover, health, metrics");
}

}  // namespace postern::settings
