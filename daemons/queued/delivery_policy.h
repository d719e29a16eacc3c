// delivery_policy.h — where and how to deliver for one destination domain.
//
// resolveDestination(): MX lookup with ldns (RFC 5321 5.1): hosts by
// preference (equal preferences shuffled), each with its A/AAAA addresses;
// no MX -> the domain itself (implicit MX); a null MX (RFC 7505) or a domain
// that does not exist -> a permanent failure; DNS trouble -> temporary.
// MTA-STS (RFC 8461): fetchMtaSts() reads the _mta-sts TXT record, then the
// policy over HTTPS from mta-sts.<domain> (certificate verified), cached by
// id under <data>/state/mta-sts/. An "enforce" policy requires verified TLS
// and MX names matching its patterns. DANE (RFC 7672): TLSA records of
// _25._tcp.<mx> are used only when both the MX answer and the TLSA answer
// carry the AD bit of a validating resolver; the runner keeps the usable
// ones (dane.h usableForSmtp) and the client verifies with dane.h.
// computeRoute(): where to try one destination's mail: a local domain (the
// Maildir), the smarthost (relay.host: verified TLS, its login), or the MX
// hosts with each one's TLS policy: DANE > MTA-STS enforce > encrypted
// without authentication when TLSA records exist but none is usable (RFC 7672
// 2.2, 3.1.3) > opportunistic. clientRequest() turns a target and the pending
// recipients of a message into one SMTP client run.
// All functions block (DNS, HTTPS); the runner calls them on a worker thread
// (clientRequest() does not block).
#pragma once

#include "runner_settings.h"
#include "smtp_client.h"

#include "common/spool/queue.h"

#include "core/dns.h"

#include <QHostAddress>
#include <QList>
#include <QString>
#include <QStringList>

namespace postern::outbound {

struct MxHost {
    QString name;
    int preference = 0;
    QList<QHostAddress> addresses;
};

struct Destination {
    enum class Status { Ok, NullMx, NoSuchDomain, TempFail };
    Status status = Status::TempFail;
    QList<MxHost> hosts;
    bool dnssec = false;  // the MX answer was authenticated
    QString error;
};
Destination resolveDestination(Resolver& dns, const QString& domain);

struct MtaStsPolicy {
    QString id;
    QString mode;    // enforce / testing / none
    QStringList mx;  // patterns, "*.example.org" allowed
    qint64 maxAge = 0;
    bool present() const { return !mode.isEmpty(); }
};
std::optional<MtaStsPolicy> parseMtaStsPolicy(const QByteArray& text);
bool mtaStsMxMatches(const QString& pattern, const QString& host);
// The domain's policy (fetched or from the cache); nullopt when it publishes none.
// `error` is set when a published policy could not be fetched (then: no policy applies,
// but an unexpired cached one is used, RFC 8461 5.1).
std::optional<MtaStsPolicy> fetchMtaSts(Resolver& dns, const QString& domain, const QString& cacheDir,
                                        quint16 httpsPort, const QList<QSslCertificate>& extraCa, QString* error);

// TLSA records for a host (empty unless DNSSEC-validated).
QList<DnsRecord> daneRecords(Resolver& dns, const QString& host, quint16 port);

// Where to try one domain's mail, computed on a worker thread.
struct Target {
    QString address;
    quint16 port = 25;
    QString host;
    bool implicitTls = false;
    TlsPolicy tls;
};
struct Route {
    enum class Status { Ok, TempFail, PermFail, Local };
    Status status = Status::TempFail;
    QString reply;  // for failures: an SMTP-style "550 5.1.10 ..." text
    QList<Target> targets;
    QString authUser;
    QByteArray authPassword;
};
Route computeRoute(const RunnerSettings& s, const QString& domain, bool localDomain);

// What one SMTP attempt means for the k-th recipient of its request: Sent when
// its RCPT and the transaction were accepted, Failed on a permanent refusal
// (its RCPT, or a reply that decided for all), else still Pending; with the
// reply (or the attempt's error) as its diagnostic. `where` names the host.
struct RecipientVerdict {
    spool::EnvelopeRecipient::Status status = spool::EnvelopeRecipient::Status::Pending;
    QString diagnostic;
};
RecipientVerdict recipientVerdict(const ClientResult& result, qsizetype k, const QString& where);
// One SMTP attempt applied to the recipients `indexes` of `env` (the request's order):
// each one's status and diagnostic (recipientVerdict) and remote MTA, the permanent
// failures appended to *failed, one `delivery.remote` log line and one count of
// postern_outbound_recipients_total per recipient. Returns whether the host answered for
// the message (a reply that decides for all, or a reply per recipient); when not,
// *lastError says why (kept for the diagnostic if no other host answers).
bool applyAttempt(spool::Envelope& env, const QList<int>& indexes, const Target& target, const ClientResult& result,
                  QList<int>* failed, QString* lastError);
// A route that failed (TempFail, PermFail) applied to the recipients `indexes` of `env`:
// its reply becomes their diagnostic; PermFail fails them (appended to *failed). Logs
// `delivery.route_failed`.
void applyRouteFailure(spool::Envelope& env, const QList<int>& indexes, const Route& route, const QString& domain,
                       QList<int>* failed);

// One SMTP client run: `target`, the route's login, the message's envelope and
// body (in active/) for the recipients `indexes` of `env`.
ClientRequest clientRequest(const RunnerSettings& s, const Route& route, const Target& target,
                            const spool::Envelope& env, const QList<int>& indexes);

}  // namespace postern::outbound
