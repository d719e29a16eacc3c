// setup.h — turning the wizard's answers into a configured instance.
//
// applySetup(answers) writes, in this order, and only what is missing or
// changed: postern.conf (via the config model, keeping the operator's
// comments), the domain, the first user (existing passwords are kept unless
// resetPassword), postmaster@/abuse@ -> admin, a self-signed certificate for
// the mail host, mta-sts.<domain>, autoconfig.<domain> and autodiscover.<domain>
// (an existing certificate is kept), DKIM keys (RSA-2048 + Ed25519; existing
// keys kept), and the DNS record files (dns-records.txt/.zone/.csv/.json).
// As root it also creates the `postern` system user when missing and gives it
// the data folder and group read access to the secrets the daemons need.
// Security: on a second run the data folder holds whatever the daemon user put
// there; it is handed over by descriptor (core/safe_path.h chownTree: links
// chowned themselves, never followed, hard-linked files left alone and named
// in the report), and every other write goes through core/atomic_file.h.
// planChanges() says what applySetup would change, for the confirmation step.
#pragma once

#include "records/dns_records.h"

#include "core/config.h"
#include "core/result.h"

#include <QHostAddress>
#include <QMap>
#include <QString>
#include <QStringList>

namespace postern::wizard {

struct Answers {
    QString configDir;
    QString dataDir;  // empty: "data" inside the config folder
    QString domain;
    QString hostname;  // default mail.<domain>
    QString admin;     // default: the first user
    QString user;      // first user's address
    QString password;  // empty with generatePassword: generated
    bool generatePassword = false;
    bool resetPassword = false;
    QHostAddress bind = QHostAddress(QHostAddress::Any);
    QMap<QString, quint16> ports;  // listener name (core/services.h: smtp, submission, ...) -> port; 0: the OS chooses
    QStringList disabled;          // listener names turned off
    QList<QHostAddress> publicAddresses;  // given (NAT) or detected
    QString smarthost;                    // relay.host: HOST[:PORT] (port 465: implicit TLS)
    QString smarthostUser;                // relay.user
    QString smarthostPassword;            // written to <config>/relay-password (0640), never into postern.conf
    QStringList dnsServers;
};

struct SetupReport {
    QStringList changes;  // human-readable lines of what was written
    QStringList notes;    // what was deliberately left alone (e.g. hard-linked files in data_dir)
    QString generatedPassword;
    QList<records::Record> records;
    QString recordsTable;
    QString recordsDir;
};

// Listener name -> port, from the listener table (core/services.h): the standard ports,
// and those the wizard takes when it does not run as root (2525, 2587, ...).
QMap<QString, quint16> standardPorts();
QMap<QString, quint16> unprivilegedPorts();
QStringList planChanges(const Answers& a);
Result<SetupReport> applySetup(const Answers& a);

}  // namespace postern::wizard
