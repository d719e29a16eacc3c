// settings/tls.cpp — certificates and protocol versions for every TLS listener.
#include "../config_schema.h"

namespace postern::settings {

void addTls(QList<Setting>& out) {
    const QString sec = QStringLiteral("tls");
    using T = SettingType;
    out << Setting{.key = QStringLiteral("tls.cert"),
                   .type = T::Path,
                   .defaultValue = QStringLiteral("tls/cert.pem"),
                   .doc = QStringLiteral("Certificate chain (PEM), leaf first"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("tls.key"),
                   .type = T::Path,
                   .defaultValue = QStringLiteral("tls/key.pem"),
                   .doc = QStringLiteral("Private key (PEM) of tls.cert"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("tls.min_version"),
                   .type = T::Enum,
                   .defaultValue = QStringLiteral("1.2"),
                   .doc = QStringLiteral("Oldest TLS version accepted (RFC 8996 retired 1.0 and 1.1)"),
                   .section = sec,
                   .choices = {QStringLiteral("1.2"), QStringLiteral("1.3")}};
    out << Setting{.key = QStringLiteral("tls.handshake_timeout"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("30s"),
                   .doc = QStringLiteral("Time allowed for a TLS handshake"),
                   .section = sec,
                   .min = 1,
                   .max = 600};
    out << Setting{.key = QStringLiteral("acme.enabled"),
                   .type = T::Bool,
                   .defaultValue = QStringLiteral("false"),
                   .doc = QStringLiteral("Get and renew the certificate from an ACME CA (HTTP-01 on port 80)"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("acme.directory"),
                   .type = T::String,
                   .defaultValue = QStringLiteral("https://acme-v02.api.letsencrypt.org/directory"),
                   .doc = QStringLiteral("ACME directory URL of the CA"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("acme.email"),
                   .type = T::String,
                   .defaultValue = {},
                   .doc = QStringLiteral("Contact address for the CA account (empty: admin_address)"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("acme.ca_file"),
                   .type = T::Path,
                   .defaultValue = {},
                   .doc = QStringLiteral("Extra CA certificates (PEM) to trust for the ACME server (test CAs)"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("acme.renew_before"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("30d"),
                   .doc = QStringLiteral("Renew when the certificate expires within this time"),
                   .section = sec,
                   .min = 86400,
                   .max = 90 * 86400};
}

}  // namespace postern::settings
