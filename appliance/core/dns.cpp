// dns.cpp — see dns.h.
#include "dns.h"

#include "config.h"
#include "setting_keys.h"

#include <ldns/ldns.h>

namespace postern {

QString toString(DnsType type) {
    switch (type) {
        case DnsType::A:
            return QStringLiteral("A");
        case DnsType::AAAA:
            return QStringLiteral("AAAA");
        case DnsType::MX:
            return QStringLiteral("MX");
        case DnsType::TXT:
            return QStringLiteral("TXT");
        case DnsType::PTR:
            return QStringLiteral("PTR");
        case DnsType::TLSA:
            return QStringLiteral("TLSA");
        case DnsType::SRV:
            return QStringLiteral("SRV");
        case DnsType::CAA:
            return QStringLiteral("CAA");
        case DnsType::NS:
            return QStringLiteral("NS");
        case DnsType::SOA:
            return QStringLiteral("SOA");
        case DnsType::CNAME:
            return QStringLiteral("CNAME");
        case DnsType::DS:
            return QStringLiteral("DS");
        case DnsType::DNSKEY:
            return QStringLiteral("DNSKEY");
    }
    return QStringLiteral("?");
}

QString toString(DnsAnswer::Status status) {
    switch (status) {
        case DnsAnswer::Status::Ok:
            return QStringLiteral("ok");
        case DnsAnswer::Status::NxDomain:
            return QStringLiteral("nxdomain");
        case DnsAnswer::Status::NoData:
            return QStringLiteral("nodata");
        case DnsAnswer::Status::ServFail:
            return QStringLiteral("servfail");
        case DnsAnswer::Status::Refused:
            return QStringLiteral("refused");
        case DnsAnswer::Status::Timeout:
            return QStringLiteral("timeout");
        case DnsAnswer::Status::Error:
            return QStringLiteral("error");
    }
    return {};
}

QByteArray DnsRecord::text() const {
    QByteArray out;
    for (const QByteArray& s : strings) out += s;
    return out;
}

namespace {
ldns_rr_type ldnsType(DnsType t) {
    switch (t) {
        case DnsType::A:
            return LDNS_RR_TYPE_A;
        case DnsType::AAAA:
            return LDNS_RR_TYPE_AAAA;
        case DnsType::MX:
            return LDNS_RR_TYPE_MX;
        case DnsType::TXT:
            return LDNS_RR_TYPE_TXT;
        case DnsType::PTR:
            return LDNS_RR_TYPE_PTR;
        case DnsType::TLSA:
            return LDNS_RR_TYPE_TLSA;
        case DnsType::SRV:
            return LDNS_RR_TYPE_SRV;
        case DnsType::CAA:
            return LDNS_RR_TYPE_CAA;
        case DnsType::NS:
            return LDNS_RR_TYPE_NS;
        case DnsType::SOA:
            return LDNS_RR_TYPE_SOA;
        case DnsType::CNAME:
            return LDNS_RR_TYPE_CNAME;
        case DnsType::DS:
            return LDNS_RR_TYPE_DS;
        case DnsType::DNSKEY:
            return LDNS_RR_TYPE_DNSKEY;
    }
    return LDNS_RR_TYPE_A;
}

QString rdfToString(const ldns_rdf* rdf) {
    if (!rdf) return {};
    char* s = ldns_rdf2str(rdf);
    if (!s) return {};
    QString out = QString::fromUtf8(s);
    LDNS_FREE(s);
    return out;
}

QString dnameToString(const ldns_rdf* rdf) {
    QString s = rdfToString(rdf).toLower();
    if (s.size() > 1 && s.endsWith(QLatin1Char('.'))) s.chop(1);
    return s;
}

QByteArray rdfBytes(const ldns_rdf* rdf) {
    if (!rdf) return {};
    return QByteArray(reinterpret_cast<const char*>(ldns_rdf_data(rdf)), qsizetype(ldns_rdf_size(rdf)));
}

int rdfInt(const ldns_rdf* rdf) {
    if (!rdf) return 0;
    switch (ldns_rdf_size(rdf)) {
        case 1:
            return ldns_rdf2native_int8(rdf);
        case 2:
            return ldns_rdf2native_int16(rdf);
        case 4:
            return int(ldns_rdf2native_int32(rdf));
        default:
            return 0;
    }
}

DnsRecord convert(const ldns_rr* rr, DnsType type) {
    DnsRecord r;
    r.type = type;
    r.name = dnameToString(ldns_rr_owner(rr));
    r.ttl = ldns_rr_ttl(rr);
    QStringList parts;
    for (size_t i = 0; i < ldns_rr_rd_count(rr); ++i) parts << rdfToString(ldns_rr_rdf(rr, i));
    r.rdata = parts.join(QLatin1Char(' '));
    switch (type) {
        case DnsType::A:
        case DnsType::AAAA:
            r.address = QHostAddress(rdfToString(ldns_rr_rdf(rr, 0)));
            break;
        case DnsType::MX:
            r.preference = rdfInt(ldns_rr_rdf(rr, 0));
            r.target = dnameToString(ldns_rr_rdf(rr, 1));
            break;
        case DnsType::SRV:
            r.preference = rdfInt(ldns_rr_rdf(rr, 0));
            r.weight = rdfInt(ldns_rr_rdf(rr, 1));
            r.port = rdfInt(ldns_rr_rdf(rr, 2));
            r.target = dnameToString(ldns_rr_rdf(rr, 3));
            break;
        case DnsType::PTR:
        case DnsType::CNAME:
        case DnsType::NS:
            r.target = dnameToString(ldns_rr_rdf(rr, 0));
            break;
        case DnsType::TXT:
            for (size_t i = 0; i < ldns_rr_rd_count(rr); ++i) {
                QByteArray b = rdfBytes(ldns_rr_rdf(rr, i));
                if (!b.isEmpty()) b.remove(0, 1);  // length octet of the character-string
                r.strings << b;
            }
            break;
        case DnsType::TLSA:
            r.usage = rdfInt(ldns_rr_rdf(rr, 0));
            r.selector = rdfInt(ldns_rr_rdf(rr, 1));
            r.matchingType = rdfInt(ldns_rr_rdf(rr, 2));
            r.data = rdfBytes(ldns_rr_rdf(rr, 3));
            break;
        case DnsType::CAA: {
            r.flags = rdfInt(ldns_rr_rdf(rr, 0));
            QByteArray tag = rdfBytes(ldns_rr_rdf(rr, 1));
            if (!tag.isEmpty()) tag.remove(0, 1);
            r.tag = QString::fromLatin1(tag);
            r.value = QString::fromUtf8(rdfBytes(ldns_rr_rdf(rr, 2)));
            break;
        }
        default:
            break;
    }
    return r;
}
}  // namespace

struct LdnsResolver::Impl {
    ldns_resolver* res = nullptr;
};

LdnsResolver::LdnsResolver(const QList<DnsServer>& servers, int timeoutMs, bool recursionDesired) : d(new Impl) {
    if (servers.isEmpty()) {
        ldns_status st = ldns_resolver_new_frm_file(&d->res, nullptr);
        if (st != LDNS_STATUS_OK) {
            m_initError = QStringLiteral("cannot read /etc/resolv.conf: %1")
                              .arg(QString::fromLatin1(ldns_get_errorstr_by_id(st)));
            d->res = ldns_resolver_new();
        }
    } else {
        d->res = ldns_resolver_new();
        // ldns keeps one port per resolver; all configured servers must agree.
        ldns_resolver_set_port(d->res, servers.first().port);
        for (const DnsServer& s : servers) {
            const bool v6 = s.address.protocol() == QAbstractSocket::IPv6Protocol;
            ldns_rdf* rdf = ldns_rdf_new_frm_str(v6 ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A,
                                                 s.address.toString().toLatin1().constData());
            if (rdf) {
                ldns_resolver_push_nameserver(d->res, rdf);
                ldns_rdf_deep_free(rdf);
            }
        }
    }
    timeval tv{};
    tv.tv_sec = timeoutMs / 1000;
    tv.tv_usec = (timeoutMs % 1000) * 1000;
    ldns_resolver_set_timeout(d->res, tv);
    ldns_resolver_set_retry(d->res, 2);
    ldns_resolver_set_dnssec(d->res, true);  // DO bit, so a validating resolver reports AD
    ldns_resolver_set_edns_udp_size(d->res, 1232);
    ldns_resolver_set_fallback(d->res, true);
    ldns_resolver_set_recursive(d->res, recursionDesired);
    ldns_resolver_set_random(d->res, false);
}

LdnsResolver::~LdnsResolver() {
    if (d->res) ldns_resolver_deep_free(d->res);
}

DnsAnswer LdnsResolver::query(const QString& nameIn, DnsType type) {
    DnsAnswer answer;
    if (!d->res || ldns_resolver_nameserver_count(d->res) == 0) {
        answer.error = m_initError.isEmpty() ? QStringLiteral("no DNS servers configured") : m_initError;
        return answer;
    }
    QString name = nameIn;
    if (!name.endsWith(QLatin1Char('.'))) name += QLatin1Char('.');
    ldns_rdf* qname = ldns_dname_new_frm_str(name.toUtf8().constData());
    if (!qname) {
        answer.error = QStringLiteral("'%1' is not a valid DNS name").arg(nameIn);
        return answer;
    }
    ldns_pkt* pkt = nullptr;
    const uint16_t flags = ldns_resolver_recursive(d->res) ? LDNS_RD : 0;
    ldns_status st = ldns_resolver_query_status(&pkt, d->res, qname, ldnsType(type), LDNS_RR_CLASS_IN, flags);
    ldns_rdf_deep_free(qname);
    if (st != LDNS_STATUS_OK || !pkt) {
        answer.status = (st == LDNS_STATUS_NETWORK_ERR || st == LDNS_STATUS_ERR) ? DnsAnswer::Status::Timeout
                                                                                 : DnsAnswer::Status::Error;
        answer.error = QString::fromLatin1(ldns_get_errorstr_by_id(st));
        if (pkt) ldns_pkt_free(pkt);
        return answer;
    }
    answer.authenticated = ldns_pkt_ad(pkt);
    switch (ldns_pkt_get_rcode(pkt)) {
        case LDNS_RCODE_NOERROR:
            answer.status = DnsAnswer::Status::Ok;
            break;
        case LDNS_RCODE_NXDOMAIN:
            answer.status = DnsAnswer::Status::NxDomain;
            break;
        case LDNS_RCODE_SERVFAIL:
            answer.status = DnsAnswer::Status::ServFail;
            break;
        case LDNS_RCODE_REFUSED:
            answer.status = DnsAnswer::Status::Refused;
            break;
        default:
            answer.status = DnsAnswer::Status::Error;
            answer.error = QStringLiteral("rcode %1").arg(int(ldns_pkt_get_rcode(pkt)));
    }
    if (answer.status == DnsAnswer::Status::Ok) {
        ldns_rr_list* list = ldns_pkt_answer(pkt);
        const ldns_rr_type want = ldnsType(type);
        for (size_t i = 0; list && i < ldns_rr_list_rr_count(list); ++i) {
            ldns_rr* rr = ldns_rr_list_rr(list, i);
            if (ldns_rr_get_type(rr) == want) answer.records << convert(rr, type);
        }
        if (answer.records.isEmpty()) answer.status = DnsAnswer::Status::NoData;
    }
    ldns_pkt_free(pkt);
    return answer;
}

Result<DnsServer> parseDnsServer(const QString& textIn) {
    const QString text = textIn.trimmed();
    DnsServer s;
    QString host = text;
    if (text.startsWith(QLatin1Char('['))) {
        const qsizetype close = text.indexOf(QLatin1Char(']'));
        if (close < 0) return Result<DnsServer>::fail(QStringLiteral("'%1': missing ]").arg(text));
        host = text.mid(1, close - 1);
        if (text.size() > close + 1) {
            if (text.at(close + 1) != QLatin1Char(':'))
                return Result<DnsServer>::fail(QStringLiteral("'%1': expected :port").arg(text));
            bool ok = false;
            s.port = text.mid(close + 2).toUShort(&ok);
            if (!ok || s.port == 0) return Result<DnsServer>::fail(QStringLiteral("'%1': bad port").arg(text));
        }
    } else if (text.count(QLatin1Char(':')) == 1) {
        host = text.section(QLatin1Char(':'), 0, 0);
        bool ok = false;
        s.port = text.section(QLatin1Char(':'), 1).toUShort(&ok);
        if (!ok || s.port == 0) return Result<DnsServer>::fail(QStringLiteral("'%1': bad port").arg(text));
    }
    if (!s.address.setAddress(host))
        return Result<DnsServer>::fail(QStringLiteral("'%1' is not an IP address").arg(host));
    return s;
}

bool bundledResolverInUse(const Config& config) {
    return get(config, keys::dns::resolver) == u"bundled" && get(config, keys::dns::servers).isEmpty();
}

Result<DnsServer> bundledResolverAddress(const Config& config) {
    const QString text = get(config, keys::dns::resolverListen);
    auto parsed = parseDnsServer(text);
    if (!parsed) return parsed.error();
    if (!parsed->address.isLoopback())
        return Result<DnsServer>::fail(QStringLiteral("dns.resolver_listen '%1' is not a loopback address").arg(text));
    return parsed;
}

QList<DnsServer> configuredDnsServers(const Config& config) {
    QList<DnsServer> servers;
    for (const QString& s : get(config, keys::dns::servers)) {
        auto parsed = parseDnsServer(s);
        if (parsed) servers << *parsed;
    }
    if (servers.isEmpty() && bundledResolverInUse(config))
        if (auto bundled = bundledResolverAddress(config)) servers << *bundled;
    return servers;
}

QString resolverSummary(const Config& config) {
    const QStringList servers = get(config, keys::dns::servers);
    if (!servers.isEmpty()) return QStringLiteral("dns.servers (%1)").arg(servers.join(QStringLiteral(", ")));
    if (!bundledResolverInUse(config)) return QStringLiteral("the system's (/etc/resolv.conf; dns.resolver = system)");
    auto address = bundledResolverAddress(config);
    if (!address) return QStringLiteral("bundled unbound: %1").arg(address.errorMessage());
    return QStringLiteral("bundled unbound on %1 (local, caching, DNSSEC-validating; used by Postern and Rspamd)")
        .arg(get(config, keys::dns::resolverListen));
}

std::unique_ptr<Resolver> makeResolver(const Config& config) {
    return std::make_unique<LdnsResolver>(configuredDnsServers(config), int(get(config, keys::dns::timeout)));
}

QString reverseName(const QHostAddress& address) {
    if (address.protocol() == QAbstractSocket::IPv4Protocol) {
        const quint32 v = address.toIPv4Address();
        return QStringLiteral("%1.%2.%3.%4.in-addr.arpa")
            .arg(v & 0xff)
            .arg((v >> 8) & 0xff)
            .arg((v >> 16) & 0xff)
            .arg(v >> 24);
    }
    const Q_IPV6ADDR a = address.toIPv6Address();
    QString out;
    for (int i = 15; i >= 0; --i) {
        out += QString::number(a[i] & 0xf, 16) + QLatin1Char('.');
        out += QString::number(a[i] >> 4, 16) + QLatin1Char('.');
    }
    return out + QStringLiteral("ip6.arpa");
}

}  // namespace postern
