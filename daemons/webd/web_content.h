// web_content.h — what postern-webd serves, as pure functions of the site
// (configuration + accounts), so tests check them without sockets.
//
//   mtaStsPolicy(site)            RFC 8461 3.2 policy text (CRLF lines):
//                                 version, mode (mta_sts.mode), one mx line for
//                                 the mail host name, max_age (1 week; 1 day
//                                 for mode none, so a change spreads quickly)
//   autoconfigXml(site, email)    Thunderbird autoconfig (clientConfig 1.1):
//                                 IMAP/POP3/SMTP servers with the ports and
//                                 socket types of the enabled listeners
//   autodiscoverXml(site, email)  Outlook "POX" autodiscover response
//   autodiscoverEmail(body)       the EMailAddress of an autodiscover request
// Ports: the configured listener port, or the standard port when the
// listener binds port 0 (tests) — clients must see what the Internet sees.
// Security: the e-mail address from a request is validated (core/address)
// and XML-escaped; an address outside our domains gets the primary domain.
#pragma once

#include "core/accounts.h"
#include "core/config.h"

#include <QByteArray>
#include <QList>
#include <QString>
#include <QStringList>

namespace postern::web {

struct MailService {
    QString protocol;    // imap, pop3, smtp
    QString socketType;  // SSL or STARTTLS (Thunderbird's names)
    quint16 port = 0;
};

struct Site {
    QString hostname;
    QString primaryDomain;
    QStringList domains;
    QString mtaStsMode;
    QList<MailService> services;  // in preference order: implicit TLS first
};

Site siteFrom(const Config& config, const Accounts& accounts);
QByteArray mtaStsPolicy(const Site& site);
QByteArray autoconfigXml(const Site& site, const QString& email);
QByteArray autodiscoverXml(const Site& site, const QString& email);
QString autodiscoverEmail(const QByteArray& body);

}  // namespace postern::web
