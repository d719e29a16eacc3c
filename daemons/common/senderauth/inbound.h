// inbound.h — sender authentication of mail arriving on the MX listener:
// SPF (spf.h), DKIM (dkim/dkim.h), DMARC (RFC 7489), summed up in one
// Authentication-Results header field (RFC 8601).
//
// Interface:
//   organizationalDomain(d)  RFC 7489 3.2 with the Public Suffix List from
//                            Debian's `publicsuffix` package (falls back to the
//                            last two labels when the list is missing)
//   parseDmarc(txt)          the record's tags, nullopt when not "v=DMARC1"
//   checkDmarc(...)          alignment (relaxed/strict) of SPF's MAIL FROM
//                            domain and DKIM's d= with the From domain; the
//                            policy to apply (p=, or sp= for subdomains; pct=)
//   evaluateInbound(dns, message, input)  all three, the header to add and the
//                            action: Deliver, Junk (DMARC quarantine) or Reject
//                            (DMARC reject when smtp.dmarc_reject is on). The
//                            message is a mail::MessageFile: its header block in
//                            memory, its body streamed once for DKIM.
//   authservIdOf(value)      the authserv-id of an Authentication-Results value
//                            (RFC 8601 2.2: CFWS and comments before and after it,
//                            token or quoted-string, an optional version number,
//                            then ";"); nullopt when the value is malformed or
//                            its comments nest deeper than mail::kMaxCommentDepth.
//   stripForgedResults(header, id)  removes Authentication-Results fields that
//                            claim our authserv-id (RFC 8601 5, compared without
//                            regard to case): only we add those. A malformed field
//                            that mentions our id anywhere is removed as well.
//                            Works on the header block (or a whole message:
//                            only header fields are looked at).
// Security: everything here is computed from untrusted input; header values
// are sanitised (printable ASCII, bounded) before they go into our header.
#pragma once

#include "common/mail/message_file.h"

#include "core/dns.h"

#include <QByteArray>
#include <QHostAddress>
#include <QPair>
#include <QString>
#include <optional>

namespace postern::senderauth {

QString organizationalDomain(const QString& domain);

struct DmarcRecord {
    QString policy;           // none / quarantine / reject
    QString subdomainPolicy;  // "" = same as policy
    bool strictDkim = false;
    bool strictSpf = false;
    int pct = 100;
};
std::optional<DmarcRecord> parseDmarc(const QByteArray& txt);

struct DmarcResult {
    enum class Status { None, Pass, Fail, TempError, PermError };
    Status status = Status::None;
    QString fromDomain;
    QString policy;  // the policy that applies on failure (none/quarantine/reject), "" when no record
    QString reason;
};
QString toString(DmarcResult::Status s);

struct InboundVerdict {
    enum class Action { Deliver, Junk, Reject };
    Action action = Action::Deliver;
    QByteArray header;   // "Authentication-Results: ...\r\n"
    QString rejectText;  // for Reject: the SMTP reply text
    QString summary;     // for the log: "spf=pass dkim=pass dmarc=pass"
    // The same results as RFC 8601 keywords, for the spam filter (Rspamd takes them instead of checking again).
    QString spf;                          // pass, fail, softfail, neutral, none, temperror, permerror
    QList<QPair<QString, QString>> dkim;  // (result, d=) per signature; empty: no signature
    QString dmarc;                        // pass, fail, none, temperror, permerror
    QString dmarcPolicy;                  // the policy that applies on failure, "" without record
};

struct InboundInput {
    QHostAddress client;
    QString sender;  // MAIL FROM ("" = null sender)
    QString helo;
    QString authservId;            // our host name
    bool rejectOnDmarc = true;     // honour p=reject with a 550
    bool quarantineToJunk = true;  // honour p=quarantine with the Junk folder
};
InboundVerdict evaluateInbound(Resolver& dns, const mail::MessageFile& message, const InboundInput& in);

std::optional<QString> authservIdOf(const QByteArray& value);
QByteArray stripForgedResults(const QByteArray& header, const QString& authservId, bool* changed);

}  // namespace postern::senderauth
