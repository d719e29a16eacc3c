// delivery_policy.cpp — see delivery_policy.h.
#include "delivery_policy.h"

#include "dane.h"

#include "core/atomic_file.h"
#include "core/log.h"
#include "core/stats.h"

#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QRandomGenerator>
#include <QSslConfiguration>
#include <QSslSocket>
#include <QTimer>

#include <algorithm>

namespace postern::outbound {

namespace {
QList<QHostAddress> addressesOf(Resolver& dns, const QString& host, bool* temp) {
    QList<QHostAddress> out;
    for (DnsType t : {DnsType::AAAA, DnsType::A}) {
        DnsAnswer a = dns.query(host, t);
        if (!a.ok() && !a.isNegative()) *temp = true;
        for (const DnsRecord& r : a.records) out << r.address;
    }
    // IPv4 first: more receivers have working IPv4 reverse DNS.
    std::stable_sort(out.begin(), out.end(), [](const QHostAddress& x, const QHostAddress& y) {
        return x.protocol() == QAbstractSocket::IPv4Protocol && y.protocol() != QAbstractSocket::IPv4Protocol;
    });
    return out;
}
}  // namespace

// A small HTTPS GET (HTTP/1.0, so no chunked encoding) with a verified
// certificate for `host`; no redirects (RFC 8461 3.3). Blocking: worker threads only.
static QByteArray httpsGet(const QHostAddress& address, quint16 port, const QString& host, const QString& path,
                           const QList<QSslCertificate>& extraCa, int* status, QString* error) {
    constexpr int kTimeoutMs = 30'000;
    constexpr qsizetype kMaxResponse = 64 * 1024 + 16 * 1024;
    QSslSocket socket;
    QSslConfiguration tls = QSslConfiguration::defaultConfiguration();
    tls.setProtocol(QSsl::TlsV1_2OrLater);
    QList<QSslCertificate> cas = tls.caCertificates();
    cas << extraCa;
    tls.setCaCertificates(cas);
    tls.setPeerVerifyMode(QSslSocket::VerifyPeer);
    socket.setSslConfiguration(tls);
    socket.setPeerVerifyName(host);
    socket.connectToHostEncrypted(address.toString(), port, host);
    if (!socket.waitForEncrypted(kTimeoutMs)) {
        *error = QStringLiteral("%1[%2]:%3: %4").arg(host, address.toString()).arg(port).arg(socket.errorString());
        return {};
    }
    socket.write(QStringLiteral("GET %1 HTTP/1.0\r\nHost: %2\r\nUser-Agent: Postern\r\nAccept: text/plain\r\n\r\n")
                     .arg(path, host)
                     .toLatin1());
    QByteArray response;
    QElapsedTimer clock;
    clock.start();
    while (response.size() <= kMaxResponse && clock.elapsed() < kTimeoutMs) {
        if (!socket.waitForReadyRead(int(kTimeoutMs - clock.elapsed()))) break;
        response += socket.read(kMaxResponse + 1 - response.size());
    }
    response += socket.read(kMaxResponse + 1 - response.size());
    if (response.size() > kMaxResponse) {
        *error = QStringLiteral("%1: response too large").arg(host);
        return {};
    }
    const qsizetype headerEnd = response.indexOf("\r\n\r\n");
    if (!response.startsWith("HTTP/1.") || headerEnd < 0) {
        *error = QStringLiteral("%1: not an HTTP response").arg(host);
        return {};
    }
    const QList<QByteArray> lines = response.left(headerEnd).split('\n');
    *status = lines.first().split(' ').value(1).toInt();
    bool textPlain = false;
    for (const QByteArray& l : lines) {
        if (l.toLower().startsWith("content-type:")) textPlain = l.mid(13).trimmed().toLower().startsWith("text/plain");
    }
    if (*status == 200 && !textPlain) {
        *error = QStringLiteral("%1: the policy is not text/plain (RFC 8461 3.2)").arg(host);
        return {};
    }
    return response.mid(headerEnd + 4);
}

Destination resolveDestination(Resolver& dns, const QString& domain) {
    Destination d;
    DnsAnswer mx = dns.query(domain, DnsType::MX);
    if (mx.status == DnsAnswer::Status::NxDomain) {
        d.status = Destination::Status::NoSuchDomain;
        d.error = QStringLiteral("domain %1 does not exist").arg(domain);
        return d;
    }
    if (!mx.ok() && !mx.isNegative()) {
        d.error = QStringLiteral("MX lookup for %1 failed: %2")
                      .arg(domain, mx.error.isEmpty() ? toString(mx.status) : mx.error);
        return d;
    }
    d.dnssec = mx.authenticated;
    if (mx.ok()) {
        // RFC 7505: a single MX of "." means the domain accepts no mail.
        if (mx.records.size() == 1 && (mx.records.first().target == u"." || mx.records.first().target.isEmpty())) {
            d.status = Destination::Status::NullMx;
            d.error = QStringLiteral("domain %1 does not accept mail (null MX)").arg(domain);
            return d;
        }
        QList<DnsRecord> recs = mx.records;
        std::shuffle(recs.begin(), recs.end(), *QRandomGenerator::global());
        std::stable_sort(recs.begin(), recs.end(),
                         [](const DnsRecord& a, const DnsRecord& b) { return a.preference < b.preference; });
        bool temp = false;
        for (const DnsRecord& r : recs) {
            if (r.target == u".") continue;
            MxHost h{r.target, r.preference, addressesOf(dns, r.target, &temp)};
            if (!h.addresses.isEmpty()) d.hosts << h;
        }
        if (d.hosts.isEmpty()) {
            d.error = QStringLiteral("no address for any MX host of %1").arg(domain);
            d.status = temp ? Destination::Status::TempFail : Destination::Status::TempFail;
            return d;
        }
        d.status = Destination::Status::Ok;
        return d;
    }
    // No MX: the domain itself is the implicit MX (RFC 5321 5.1).
    bool temp = false;
    MxHost h{domain, 0, addressesOf(dns, domain, &temp)};
    if (h.addresses.isEmpty()) {
        d.status = temp ? Destination::Status::TempFail : Destination::Status::NoSuchDomain;
        d.error = QStringLiteral("%1 has neither MX nor address records").arg(domain);
        return d;
    }
    d.hosts << h;
    d.status = Destination::Status::Ok;
    return d;
}

std::optional<MtaStsPolicy> parseMtaStsPolicy(const QByteArray& text) {
    MtaStsPolicy p;
    bool version = false;
    for (const QByteArray& raw : text.split('\n')) {
        const QByteArray line = raw.trimmed();
        if (line.isEmpty()) continue;
        const qsizetype colon = line.indexOf(':');
        if (colon <= 0) return std::nullopt;
        const QByteArray key = line.left(colon).trimmed();
        const QString value = QString::fromUtf8(line.mid(colon + 1).trimmed());
        if (key == "version")
            version = value == u"STSv1";
        else if (key == "mode")
            p.mode = value;
        else if (key == "mx")
            p.mx << value.toLower();
        else if (key == "max_age")
            p.maxAge = value.toLongLong();
    }
    if (!version || (p.mode != u"enforce" && p.mode != u"testing" && p.mode != u"none")) return std::nullopt;
    if (p.mode != u"none" && p.mx.isEmpty()) return std::nullopt;
    return p;
}

bool mtaStsMxMatches(const QString& patternIn, const QString& hostIn) {
    // Case-insensitive, and a final dot (fully qualified form) does not matter.
    QString host = hostIn.toLower();
    if (host.endsWith(QLatin1Char('.'))) host.chop(1);
    QString pattern = patternIn.toLower();
    if (pattern.endsWith(QLatin1Char('.'))) pattern.chop(1);
    if (pattern.startsWith(u"*.")) {
        // "*.example.org" matches exactly one extra label (RFC 8461 4.1).
        const QString suffix = pattern.mid(1);
        return host.endsWith(suffix) && !host.left(host.size() - suffix.size()).contains(QLatin1Char('.')) &&
               host.size() > suffix.size();
    }
    return host == pattern;
}

std::optional<MtaStsPolicy> fetchMtaSts(Resolver& dns, const QString& domain, const QString& cacheDir,
                                        quint16 httpsPort, const QList<QSslCertificate>& extraCa, QString* error) {
    const QString cacheFile = cacheDir + QLatin1Char('/') + domain + QStringLiteral(".json");
    std::optional<MtaStsPolicy> cached;
    qint64 cachedUntil = 0;
    if (auto bytes = readFile(cacheFile, 65536)) {
        const QJsonObject o = QJsonDocument::fromJson(*bytes).object();
        if (auto p = parseMtaStsPolicy(o.value(QStringLiteral("policy")).toString().toUtf8())) {
            p->id = o.value(QStringLiteral("id")).toString();
            cached = p;
            cachedUntil = o.value(QStringLiteral("fetched")).toInteger() + p->maxAge;
        }
    }
    DnsAnswer txt = dns.query(QStringLiteral("_mta-sts.") + domain, DnsType::TXT);
    QString id;
    for (const DnsRecord& r : txt.records) {
        const QByteArray t = r.text();
        if (!t.startsWith("v=STSv1")) continue;
        for (const QByteArray& part : t.split(';')) {
            const QByteArray kv = part.trimmed();
            if (kv.startsWith("id=")) id = QString::fromLatin1(kv.mid(3));
        }
    }
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    if (id.isEmpty()) {
        // No record: an unexpired cached policy still applies (RFC 8461 5.1: it protects against stripping).
        if (cached && cachedUntil > now) return cached;
        return std::nullopt;
    }
    if (cached && cached->id == id && cachedUntil > now) return cached;
    // Fetch https://mta-sts.<domain>/.well-known/mta-sts.txt with a verified certificate.
    // The host name is resolved with our resolver (dns.servers), like every other lookup.
    const QString stsHost = QStringLiteral("mta-sts.") + domain;
    bool temp = false;
    const QList<QHostAddress> addrs = addressesOf(dns, stsHost, &temp);
    QByteArray body;
    int status = 0;
    QString netError = addrs.isEmpty() ? QStringLiteral("%1 has no address").arg(stsHost) : QString();
    for (const QHostAddress& a : addrs) {
        netError.clear();
        body = httpsGet(a, httpsPort, stsHost, QStringLiteral("/.well-known/mta-sts.txt"), extraCa, &status, &netError);
        if (netError.isEmpty()) break;
    }
    std::optional<MtaStsPolicy> p = netError.isEmpty() && status == 200 ? parseMtaStsPolicy(body) : std::nullopt;
    if (!p) {
        *error =
            QStringLiteral("MTA-STS policy of %1 could not be fetched (%2)")
                .arg(domain, netError.isEmpty() ? QStringLiteral("HTTP %1 or invalid policy").arg(status) : netError);
        if (cached && cachedUntil > now) return cached;
        return std::nullopt;
    }
    p->id = id;
    QJsonObject o;
    o.insert(QStringLiteral("id"), id);
    o.insert(QStringLiteral("fetched"), now);
    o.insert(QStringLiteral("policy"), QString::fromUtf8(body));
    if (ensureDirectory(cacheDir, 0700).ok()) (void)writeFileAtomic(cacheFile, QJsonDocument(o).toJson(), 0600);
    return p;
}

QList<DnsRecord> daneRecords(Resolver& dns, const QString& host, quint16 port) {
    DnsAnswer a = dns.query(QStringLiteral("_%1._tcp.%2").arg(port).arg(host), DnsType::TLSA);
    if (!a.ok() || !a.authenticated) return {};
    return a.records;
}

// ---------------------------------------------------------------- routes

namespace {
QList<QSslCertificate> loadCa(const QString& path) {
    if (path.isEmpty()) return {};
    return QSslCertificate::fromPath(path, QSsl::Pem);
}

// Smarthost (relay.host "host", "host:port" or "[host]:port"): TLS required and
// verified (a password goes over it).
Route smarthostRoute(const RunnerSettings& s, Resolver& dns, const QList<QSslCertificate>& extraCa) {
    Route route;
    QString host = s.relayHost;
    quint16 port = s.relayImplicitTls ? 465 : 587;
    if (host.startsWith(QLatin1Char('['))) {
        const qsizetype close = host.indexOf(QLatin1Char(']'));
        if (close > 0 && host.mid(close + 1).startsWith(QLatin1Char(':'))) port = quint16(host.mid(close + 2).toUInt());
        host = host.mid(1, close - 1);
    } else if (host.count(QLatin1Char(':')) == 1) {
        port = quint16(host.section(QLatin1Char(':'), 1).toUInt());
        host = host.section(QLatin1Char(':'), 0, 0);
    }
    QList<QHostAddress> addresses;
    if (QHostAddress literal(host); !literal.isNull()) {
        addresses << literal;
    } else {
        for (DnsType t : {DnsType::AAAA, DnsType::A}) {
            const DnsAnswer a = dns.query(host, t);
            for (const DnsRecord& r : a.records)
                if (r.type == t) addresses << r.address;
        }
    }
    if (addresses.isEmpty() || port == 0) {
        route.reply = QStringLiteral("smarthost %1 has no address").arg(s.relayHost);
        return route;
    }
    for (const QHostAddress& a : addresses) {
        Target t;
        t.address = a.toString();
        t.port = port;
        t.host = host;
        t.implicitTls = s.relayImplicitTls;
        t.tls.mode = TlsPolicy::Mode::Verified;
        t.tls.verifyName = host;
        t.tls.extraCa = extraCa;
        t.tls.reason = QStringLiteral("smarthost");
        route.targets << t;
    }
    route.authUser = s.relayUser;
    if (!s.relayUser.isEmpty()) {
        QFile f(s.relayPasswordFile);
        if (!f.open(QIODevice::ReadOnly)) {
            route.reply = QStringLiteral("cannot read relay.password_file: %1").arg(f.errorString());
            return route;
        }
        route.authPassword = f.readLine(4096).trimmed();
    }
    route.status = Route::Status::Ok;
    return route;
}

// The TLS policy for one MX host; nullopt when an enforced MTA-STS policy does not permit it.
std::optional<TlsPolicy> mxTlsPolicy(const RunnerSettings& s, Resolver& dns, const Destination& dest, const MxHost& mx,
                                     const std::optional<MtaStsPolicy>& sts, const QList<QSslCertificate>& extraCa) {
    const bool enforce = sts && sts->mode == QStringLiteral("enforce");
    TlsPolicy policy;
    policy.extraCa = extraCa;
    bool tlsaPublished = false;  // DNSSEC-validated TLSA records exist, usable or not
    if (s.dane && dest.dnssec) {
        QList<DnsRecord> usable;
        for (const DnsRecord& r : daneRecords(dns, mx.name, s.mxPort)) {
            tlsaPublished |= r.type == DnsType::TLSA;
            if (usableForSmtp(r)) usable << r;
        }
        if (!usable.isEmpty()) {
            policy.mode = TlsPolicy::Mode::Dane;
            policy.tlsa = usable;
            policy.reason = QStringLiteral("dane");
            return policy;
        }
    }
    if (enforce) {
        bool matches = false;
        for (const QString& p : sts->mx) matches |= mtaStsMxMatches(p, mx.name);
        if (!matches) return std::nullopt;  // RFC 8461 4.1: not a permitted MX under the policy
        policy.mode = TlsPolicy::Mode::Verified;
        policy.verifyName = mx.name;
        policy.reason = QStringLiteral("mta-sts enforce");
    } else if (tlsaPublished) {
        // RFC 7672 2.2, 3.1.3: only unusable records (e.g. PKIX-TA/PKIX-EE): TLS is still
        // mandatory, the certificate is not authenticated.
        policy.mode = TlsPolicy::Mode::Encrypted;
        policy.reason = QStringLiteral("dane (no usable TLSA record)");
    }
    return policy;
}

Route mxRoute(const RunnerSettings& s, Resolver& dns, const QString& domain, const QList<QSslCertificate>& extraCa) {
    Route route;
    const Destination dest = resolveDestination(dns, domain);
    switch (dest.status) {
        case Destination::Status::NullMx:
            route.status = Route::Status::PermFail;
            route.reply = QStringLiteral("556 5.1.10 %1 does not accept mail (null MX, RFC 7505)").arg(domain);
            return route;
        case Destination::Status::NoSuchDomain:
            route.status = Route::Status::PermFail;
            route.reply = QStringLiteral("550 5.1.2 %1: %2")
                              .arg(domain, dest.error.isEmpty() ? QStringLiteral("no such domain") : dest.error);
            return route;
        case Destination::Status::TempFail:
            route.reply = QStringLiteral("DNS lookup for %1 failed: %2").arg(domain, dest.error);
            return route;
        case Destination::Status::Ok:
            break;
    }
    std::optional<MtaStsPolicy> sts;
    QString stsError;
    if (s.mtaSts) sts = fetchMtaSts(dns, domain, s.mtaStsCacheDir, s.mtaStsPort, extraCa, &stsError);
    for (const MxHost& mx : dest.hosts) {
        const std::optional<TlsPolicy> policy = mxTlsPolicy(s, dns, dest, mx, sts, extraCa);
        if (!policy) continue;
        for (const QHostAddress& a : mx.addresses) {
            Target t;
            t.address = a.toString();
            t.port = s.mxPort;
            t.host = mx.name;
            t.tls = *policy;
            route.targets << t;
        }
    }
    if (route.targets.isEmpty()) {
        route.reply = sts && sts->mode == QStringLiteral("enforce")
                          ? QStringLiteral("no MX host of %1 is permitted by its MTA-STS policy").arg(domain)
                          : QStringLiteral("no MX host of %1 has an address").arg(domain);
        return route;
    }
    route.status = Route::Status::Ok;
    return route;
}
}  // namespace

Route computeRoute(const RunnerSettings& s, const QString& domain, bool localDomain) {
    if (localDomain) {
        Route route;
        route.status = Route::Status::Local;
        return route;
    }
    LdnsResolver dns(s.dnsServers, s.dnsTimeoutMs);
    const QList<QSslCertificate> extraCa = loadCa(s.caFile);
    return s.relayHost.isEmpty() ? mxRoute(s, dns, domain, extraCa) : smarthostRoute(s, dns, extraCa);
}

ClientRequest clientRequest(const RunnerSettings& s, const Route& route, const Target& target,
                            const spool::Envelope& env, const QList<int>& indexes) {
    ClientRequest req;
    req.address = target.address;
    req.port = target.port;
    req.mxName = target.host;
    req.helo = s.hostname;
    req.implicitTls = target.implicitTls;
    req.tls = target.tls;
    req.authUser = route.authUser;
    req.authPassword = route.authPassword;
    req.sender = env.sender;
    for (int i : indexes) {
        req.recipients << env.recipients.at(i).address;
        req.notify << env.recipients.at(i).notify;
        req.orcpt << env.recipients.at(i).orcpt;
    }
    req.bodyPath = spool::bodyPath(s.queueDir, spool::QueueState::Active, env.id);
    req.eightBit = env.bodyType == QStringLiteral("8BITMIME");
    req.smtpUtf8 = env.smtpUtf8;
    req.ret = env.ret;
    req.envid = env.envid;
    req.connectTimeoutMs = s.connectTimeoutMs;
    req.commandTimeoutMs = s.commandTimeoutMs;
    return req;
}

RecipientVerdict recipientVerdict(const ClientResult& result, qsizetype k, const QString& where) {
    RecipientVerdict v;
    const Reply rr = result.recipients.value(k);
    Reply decided;
    if (rr.code != 0 && !rr.ok())
        decided = rr;  // RCPT refused
    else if (result.transaction.code != 0)
        decided = result.transaction;  // greeting/MAIL/DATA/final reply
    v.diagnostic = decided.code ? decided.text : result.error;
    if (v.diagnostic.isEmpty()) v.diagnostic = QStringLiteral("connection to %1 ended early").arg(where);
    if (decided.code != 0 && decided.ok() && rr.ok())
        v.status = spool::EnvelopeRecipient::Status::Sent;
    else if (decided.permanent())
        v.status = spool::EnvelopeRecipient::Status::Failed;
    return v;
}

bool applyAttempt(spool::Envelope& env, const QList<int>& indexes, const Target& target, const ClientResult& result,
                  QList<int>* failed, QString* lastError) {
    const QString where = QStringLiteral("%1[%2]:%3").arg(target.host, target.address).arg(target.port);
    bool answered = result.transaction.permanent();
    for (qsizetype k = 0; k < indexes.size() && k < result.recipients.size(); ++k)
        answered |= result.recipients.at(k).code != 0;
    const QString tls = result.tlsVersion.isEmpty() ? QStringLiteral("none") : result.tlsVersion;
    for (qsizetype k = 0; k < indexes.size(); ++k) {
        auto& r = env.recipients[indexes.at(k)];
        const RecipientVerdict v = recipientVerdict(result, k, where);
        r.remoteMta = target.host;
        r.status = v.status;
        r.diagnostic = v.diagnostic;
        if (v.status == spool::EnvelopeRecipient::Status::Failed) *failed << indexes.at(k);
        const QString outcome = v.status == spool::EnvelopeRecipient::Status::Pending ? QStringLiteral("deferred")
                                                                                      : spool::toString(v.status);
        stats::add(QStringLiteral("postern_outbound_recipients_total"),
                   {{QStringLiteral("result"), outcome}, {QStringLiteral("tls"), tls}});
        log::Fields fields;
        fields.add("id", env.id)
            .add("to", r.address)
            .add("relay", where)
            .add("tls", tls)
            .add("verified", result.tlsVerified);
        if (!result.dane.isEmpty()) fields.add("dane", result.dane);
        fields.add("tls_policy", target.tls.reason.isEmpty() ? QStringLiteral("opportunistic") : target.tls.reason)
            .add("status", spool::toString(r.status))
            .add("reply", v.diagnostic);
        log::info(u"delivery.remote", fields);
    }
    if (!answered) *lastError = result.error.isEmpty() ? result.transaction.text : result.error;
    return answered;
}

void applyRouteFailure(spool::Envelope& env, const QList<int>& indexes, const Route& route, const QString& domain,
                       QList<int>* failed) {
    const bool perm = route.status == Route::Status::PermFail;
    for (int i : indexes) {
        auto& r = env.recipients[i];
        r.diagnostic = route.reply;
        if (perm) {
            r.status = spool::EnvelopeRecipient::Status::Failed;
            *failed << i;
        }
    }
    log::info(u"delivery.route_failed",
              log::Fields().add("id", env.id).add("domain", domain).add("permanent", perm).add("error", route.reply));
}

}  // namespace postern::outbound
