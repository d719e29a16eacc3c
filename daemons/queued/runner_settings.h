// runner_settings.h — the queue runner's settings, mapped from the
// configuration in one place (runnerSettings()), read again on reload.
//
// Interface: RunnerSettings (plain values, copied to worker threads) and
// runnerSettings(config). Defaults and ranges live in the configuration
// schema (appliance/core/settings/outbound.cpp and friends); the values here
// are only what a default-constructed struct holds in unit tests.
#pragma once

#include "common/sieve/sieve_store.h"

#include "core/config.h"
#include "core/dns.h"

#include <QList>
#include <QString>

namespace postern::outbound {

struct RunnerSettings {
    QString hostname, queueDir, mailDir, configDir, mtaStsCacheDir;
    sieve::GlobalScripts sieveGlobals;  // sieve.before/after, the global script folder
    qint64 lifetimeS = 5 * 86400, retryMinS = 300, retryMaxS = 4 * 3600, delayWarningS = 4 * 3600;
    int maxDeliveries = 20, maxPerDomain = 4;
    quint16 mxPort = 25, mtaStsPort = 443;
    qint64 connectTimeoutMs = 30'000, commandTimeoutMs = 300'000;
    bool dane = true, mtaSts = true, dkimSign = true;
    qint64 maxHeaderBytes = (1 << 20) + 64 * 1024;  // header block read for signing (smtp.max_header_size + trace room)
    QString delimiters;                             // recipient_delimiter
    QString caFile;
    QString relayHost, relayUser, relayPasswordFile;
    bool relayImplicitTls = false;
    QList<DnsServer> dnsServers;
    int dnsTimeoutMs = 5000;
};

RunnerSettings runnerSettings(const Config& config);

}  // namespace postern::outbound
