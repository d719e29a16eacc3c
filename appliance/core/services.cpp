// services.cpp — see services.h.
#include "services.h"

#include "config.h"
#include "dns.h"
#include "setting_keys.h"

#include <algorithm>

namespace postern {

namespace {

using L = ListenerMode;
using P = Protocol;
using C = ClientRole;

QString s(const char* text) {
    return QString::fromUtf8(text);
}

// The table. One row per listener; the comment in services.h says who reads which column.
// clang-format off
QList<ListenerInfo> makeListenerTable() {
    const QString smtpd = s("postern-smtpd"), imapd = s("postern-imapd"), pop3d = s("postern-pop3d"), webd = s("postern-webd");
    const QString sieved = s("postern-sieved");
    return {
        // mode          name            proto    port  demo  tls    program  client          SRV owner              prio title
        {L::Mx,          s("smtp"),        P::Smtp, 25,  2525, false, smtpd, C::None,     {},                      -1, s("SMTP (MX)"),
         s("MX listener: mail from other servers, STARTTLS offered"), {}},
        {L::Submission,  s("submission"),  P::Smtp, 587, 2587, false, smtpd, C::Outgoing, s("_submission._tcp"),   5,  s("submission with STARTTLS"),
         s("Submission for users: STARTTLS, then AUTH (RFC 6409)"), {}},
        {L::Submissions, s("submissions"), P::Smtp, 465, 2465, true,  smtpd, C::Outgoing, s("_submissions._tcp"),  0,  s("submission with TLS"),
         s("Submission with implicit TLS (RFC 8314)"), {s("smtps")}},
        {L::Imap,        s("imap"),        P::Imap, 143, 2143, false, imapd, C::Incoming, s("_imap._tcp"),         5,  s("IMAP with STARTTLS"),
         s("IMAP with STARTTLS"), {s("imap2")}},
        {L::Imaps,       s("imaps"),       P::Imap, 993, 2993, true,  imapd, C::Incoming, s("_imaps._tcp"),        0,  s("IMAP with TLS"),
         s("IMAP with implicit TLS"), {}},
        {L::Pop3,        s("pop3"),        P::Pop3, 110, 2110, false, pop3d, C::Incoming, s("_pop3._tcp"),         15, s("POP3 with STARTTLS"),
         s("POP3 with STLS"), {}},
        {L::Pop3s,       s("pop3s"),       P::Pop3, 995, 2995, true,  pop3d, C::Incoming, s("_pop3s._tcp"),        10, s("POP3 with TLS"),
         s("POP3 with implicit TLS"), {}},
        {L::Http,        s("http"),        P::Http, 80,  8080, false, webd,  C::None,     {},                      -1, s("HTTP"),
         s("HTTP: ACME challenges, MTA-STS and autoconfig, redirects to HTTPS"), {}},
        {L::Https,       s("https"),       P::Http, 443, 8443, true,  webd,  C::None,     {},                      -1, s("HTTPS"),
         s("HTTPS: MTA-STS policy, autoconfig, autodiscover, health, metrics"), {}},
        {L::ManageSieve, s("sieve"),     P::ManageSieve, 4190, 14190, false, sieved, C::None, s("_sieve._tcp"),   0,  s("ManageSieve"),
         s("ManageSieve (RFC 5804): users edit their Sieve mail filters; STARTTLS, then AUTHENTICATE"), {}},
    };
}
// clang-format on

// The programs the supervisor starts, in this order.
QList<ServiceInfo> makeServiceTable() {
    return {
        {s("unbound"),
         s("The bundled DNS resolver (dns.resolver = bundled): caching, DNSSEC-validating, loopback only."), true,
         keys::dns::resolver.str(), true},
        {s("redis-server"), s("Redis for the spam filter (Bayes statistics, greylisting): unix socket only."), true,
         keys::spam::enabled.str(), true},
        {s("rspamd"), s("Rspamd spam filter: scans mail from the Internet for postern-smtpd (spam.enabled)."), true,
         keys::spam::enabled.str(), true},
        {s("postern-smtpd"), s("Postern SMTP daemon: MX (smtp.listen), submission, submissions."), false},
        {s("postern-imapd"), s("Postern IMAP daemon: imap.listen (STARTTLS) and imaps.listen (implicit TLS)."), false},
        {s("postern-pop3d"), s("Postern POP3 daemon: pop3.listen (STLS) and pop3s.listen (implicit TLS)."), false},
        {s("postern-sieved"), s("Postern ManageSieve daemon: sieve.listen (STARTTLS), users' Sieve scripts."), false},
        {s("postern-queued"),
         s("Postern queue runner: delivers queued mail to other domains' MX hosts or the smarthost."), true},
        {s("postern-webd"),
         s("Postern web services: MTA-STS policy, client autoconfig, ACME challenges, health, metrics."), false},
    };
}

}  // namespace

QString toString(Protocol p) {
    switch (p) {
        case Protocol::Smtp:
            return QStringLiteral("smtp");
        case Protocol::Imap:
            return QStringLiteral("imap");
        case Protocol::Pop3:
            return QStringLiteral("pop3");
        case Protocol::Http:
            return QStringLiteral("http");
        case Protocol::ManageSieve:
            return QStringLiteral("managesieve");
    }
    return {};
}

const QList<ListenerInfo>& listeners() {
    static const QList<ListenerInfo> table = makeListenerTable();
    return table;
}

const ListenerInfo& listenerInfo(ListenerMode mode) {
    // Rows are in enum order (checked by tst_services), so the mode is the index.
    return listeners().at(qsizetype(mode));
}

const ListenerInfo* findListener(const QString& name) {
    for (const ListenerInfo& l : listeners())
        if (l.name == name) return &l;
    return nullptr;
}

QString listenerName(ListenerMode mode) {
    return listenerInfo(mode).name;
}

bool isImplicitTls(ListenerMode mode) {
    return listenerInfo(mode).implicitTls;
}

QStringList listenerNames() {
    QStringList out;
    for (const ListenerInfo& l : listeners()) out << l.name;
    return out;
}

QList<ListenerInfo> clientListeners() {
    QList<ListenerInfo> out;
    for (const ListenerInfo& l : listeners())
        if (l.client != ClientRole::None) out << l;
    std::stable_sort(out.begin(), out.end(), [](const ListenerInfo& a, const ListenerInfo& b) {
        if (a.client != b.client) return a.client == ClientRole::Incoming;
        return a.srvPriority < b.srvPriority;
    });
    return out;
}

const QList<ServiceInfo>& services() {
    static const QList<ServiceInfo> table = makeServiceTable();
    return table;
}

const ServiceInfo* findService(const QString& program) {
    for (const ServiceInfo& s : services())
        if (s.program == program) return &s;
    return nullptr;
}

QList<ListenerInfo> listenersOf(const QString& program) {
    QList<ListenerInfo> out;
    for (const ListenerInfo& l : listeners())
        if (l.program == program) out << l;
    return out;
}

int serviceNamePort(const QString& name) {
    const QString lower = name.toLower();
    for (const ListenerInfo& l : listeners())
        if (l.name == lower || l.aliases.contains(lower)) return l.standardPort;
    return -1;
}

QString serviceOffReason(const ServiceInfo& service, const Config& config) {
    if (service.enabledBy.isEmpty()) return {};
    if (service.enabledBy == keys::dns::resolver.str()) {
        if (get(config, keys::dns::resolver) != u"bundled") return QStringLiteral("dns.resolver is system");
        if (!bundledResolverInUse(config)) return QStringLiteral("dns.servers is set");
        return {};
    }
    return config.flag(service.enabledBy) ? QString() : service.enabledBy + QStringLiteral(" is off");
}

}  // namespace postern
