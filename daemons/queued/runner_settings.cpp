// runner_settings.cpp — see runner_settings.h.
#include "runner_settings.h"

namespace postern::outbound {

RunnerSettings runnerSettings(const Config& c) {
    RunnerSettings s;
    s.hostname = c.hostname();
    s.queueDir = c.queueDir();
    s.mailDir = c.mailDir();
    s.sieveGlobals = sieve::GlobalScripts::fromConfig(c);
    s.configDir = c.configDir();
    s.mtaStsCacheDir = c.dataDir() + QStringLiteral("/state/mta-sts");
    s.lifetimeS = c.durationMs(QStringLiteral("queue.lifetime")) / 1000;
    s.retryMinS = std::max<qint64>(1, c.durationMs(QStringLiteral("queue.retry_min")) / 1000);
    s.retryMaxS = std::max(s.retryMinS, c.durationMs(QStringLiteral("queue.retry_max")) / 1000);
    s.delayWarningS = c.durationMs(QStringLiteral("queue.delay_warning")) / 1000;
    s.maxDeliveries = int(c.integer(QStringLiteral("outbound.max_deliveries")));
    s.maxPerDomain = int(c.integer(QStringLiteral("outbound.max_per_domain")));
    s.mxPort = quint16(c.integer(QStringLiteral("outbound.mx_port")));
    s.mtaStsPort = quint16(c.integer(QStringLiteral("outbound.mta_sts_port")));
    s.connectTimeoutMs = c.durationMs(QStringLiteral("outbound.connect_timeout"));
    s.commandTimeoutMs = c.durationMs(QStringLiteral("outbound.command_timeout"));
    s.dane = c.flag(QStringLiteral("outbound.dane"));
    s.mtaSts = c.flag(QStringLiteral("outbound.mta_sts"));
    s.dkimSign = c.flag(QStringLiteral("dkim.sign"));
    // Messages come from postern-smtpd, whose header limit this is; plus our Received field.
    s.maxHeaderBytes = c.size(QStringLiteral("smtp.max_header_size")) + 64 * 1024;
    s.delimiters = c.value(QStringLiteral("recipient_delimiter"));
    s.caFile = c.path(QStringLiteral("outbound.ca_file"));
    s.relayHost = c.string(QStringLiteral("relay.host"));
    s.relayUser = c.string(QStringLiteral("relay.user"));
    s.relayPasswordFile = c.path(QStringLiteral("relay.password_file"));
    s.relayImplicitTls = c.string(QStringLiteral("relay.tls")) == QStringLiteral("implicit");
    s.dnsServers = configuredDnsServers(c);  // dns.servers, else the bundled resolver, else resolv.conf
    s.dnsTimeoutMs = int(c.durationMs(QStringLiteral("dns.timeout")));
    return s;
}

}  // namespace postern::outbound
