// runner_settings.cpp — see runner_settings.h.
#include "runner_settings.h"
#include "core/setting_keys.h"

namespace postern::outbound {

RunnerSettings runnerSettings(const Config& c) {
    RunnerSettings s;
    s.hostname = c.hostname();
    s.queueDir = c.queueDir();
    s.mailDir = c.mailDir();
    s.sieveGlobals = sieve::GlobalScripts::fromConfig(c);
    s.configDir = c.configDir();
    s.mtaStsCacheDir = c.dataDir() + QStringLiteral("/state/mta-sts");
    s.lifetimeS = get(c, keys::queue::lifetime) / 1000;
    s.retryMinS = std::max<qint64>(1, get(c, keys::queue::retryMin) / 1000);
    s.retryMaxS = std::max(s.retryMinS, get(c, keys::queue::retryMax) / 1000);
    s.delayWarningS = get(c, keys::queue::delayWarning) / 1000;
    s.maxDeliveries = int(get(c, keys::outbound::maxDeliveries));
    s.maxPerDomain = int(get(c, keys::outbound::maxPerDomain));
    s.mxPort = quint16(get(c, keys::outbound::mxPort));
    s.mtaStsPort = quint16(get(c, keys::outbound::mtaStsPort));
    s.connectTimeoutMs = get(c, keys::outbound::connectTimeout);
    s.commandTimeoutMs = get(c, keys::outbound::commandTimeout);
    s.dane = get(c, keys::outbound::dane);
    s.mtaSts = get(c, keys::outbound::mtaSts);
    s.dkimSign = get(c, keys::dkim::sign);
    // Messages come from postern-smtpd, whose header limit this is; plus our Received field.
    s.maxHeaderBytes = get(c, keys::smtp::maxHeaderSize) + 64 * 1024;
    s.delimiters = get(c, keys::general::recipientDelimiter);
    s.caFile = get(c, keys::outbound::caFile);
    s.relayHost = get(c, keys::relay::host);
    s.relayUser = get(c, keys::relay::user);
    s.relayPasswordFile = get(c, keys::relay::passwordFile);
    s.relayImplicitTls = get(c, keys::relay::tls) == QStringLiteral("implicit");
    s.dnsServers = configuredDnsServers(c);  // dns.servers, else the bundled resolver, else resolv.conf
    s.dnsTimeoutMs = int(get(c, keys::dns::timeout));
    return s;
}

}  // namespace postern::outbound
