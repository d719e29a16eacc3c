// host_facts.h — the inputs of the record set (records::HostFacts) for a configured instance.
//
// hostFacts(configDir, publicAddresses, domain): reads postern.conf, the DKIM keys
// (core/dkim_keys.h) and the TLS certificate, and returns the facts buildRecords()
// needs. `domain` empty: primary_domain; otherwise one of the local domains (its own
// DKIM keys, report address postmaster@domain). Empty publicAddresses: the configured
// public_addresses (the wizard saves what it was given or detected). One function for
// the wizard, `posternctl dns records|check` and the web panel.
// configuredPublicAddresses(config): public_addresses; an entry that is not an IP
// address is an error.
// Security: reads the configuration folder only; the result holds public data only
// (the DKIM public records, the SHA-256 of the certificate's public key).
#pragma once

#include "dns_records.h"

#include "core/config.h"
#include "core/result.h"

#include <QHostAddress>
#include <QList>
#include <QString>

namespace postern::records {

Result<HostFacts> hostFacts(const QString& configDir, const QList<QHostAddress>& publicAddresses,
                            const QString& domain = {});
Result<QList<QHostAddress>> configuredPublicAddresses(const Config& config);

}  // namespace postern::records
