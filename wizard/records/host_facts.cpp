// host_facts.cpp — see host_facts.h.
#include "host_facts.h"

#include "core/address.h"
#include "core/atomic_file.h"
#include "core/dkim_keys.h"
#include "core/services.h"
#include "core/setting_keys.h"

#include <QCryptographicHash>
#include <QSslCertificate>
#include <QSslKey>

namespace postern::records {

namespace {

QString spkiSha256(const QString& certPath) {
    auto bytes = readFile(certPath, 1 << 20);
    if (!bytes) return {};
    const QList<QSslCertificate> certs = QSslCertificate::fromData(*bytes, QSsl::Pem);
    if (certs.isEmpty()) return {};
    const QByteArray spki = certs.first().publicKey().toDer();
    return QString::fromLatin1(QCryptographicHash::hash(spki, QCryptographicHash::Sha256).toHex());
}

}  // namespace

Result<QList<QHostAddress>> configuredPublicAddresses(const Config& config) {
    QList<QHostAddress> out;
    for (const QString& ip : get(config, keys::general::publicAddresses)) {
        QHostAddress a;
        if (!a.setAddress(ip.trimmed()))
            return Result<QList<QHostAddress>>::fail(
                QStringLiteral("public_addresses: '%1' is not an IP address").arg(ip));
        out << a;
    }
    return out;
}

Result<HostFacts> hostFacts(const QString& configDir, const QList<QHostAddress>& publicAddresses,
                            const QString& domain) {
    auto config = Config::load(configDir);
    if (!config) return config.error();
    HostFacts f;
    if (domain.isEmpty()) {
        f.domain = get(*config, keys::general::primaryDomain);
    } else {
        auto d = normalizeDomain(domain);
        if (!d) return d.error();
        f.domain = *d;
    }
    if (f.domain.isEmpty())
        return Result<HostFacts>::fail(QStringLiteral("primary_domain is not set; run postern-wizard first"));
    f.hostname = config->hostname();
    QList<QHostAddress> addresses = publicAddresses;
    if (addresses.isEmpty()) {
        auto configured = configuredPublicAddresses(*config);
        if (!configured) return configured.error();
        addresses = *configured;
    }
    for (const QHostAddress& a : std::as_const(addresses))
        (a.protocol() == QAbstractSocket::IPv6Protocol ? f.publicV6 : f.publicV4) << a;
    f.reportAddress = QStringLiteral("postmaster@") + f.domain;
    f.mtaStsMode = get(*config, keys::mtaSts::mode);
    DkimKeyStore keys(configDir);
    auto list = keys.keys(f.domain);
    if (list) {
        for (const DkimKey& k : *list) {
            auto txt = keys.publicRecord(f.domain, k.selector);
            if (txt) f.dkim << DkimPublication{k.selector, *txt, k.algorithm == u"rsa"};
        }
    }
    for (const ListenerInfo& l : listeners())
        if (config->listeners(l.settingKey()).isEmpty()) f.notOffered << l.mode;
    f.tlsaSpkiSha256Hex = spkiSha256(get(*config, keys::tls::cert));
    return f;
}

}  // namespace postern::records
