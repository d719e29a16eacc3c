// spf.cpp — see spf.h.
#include "spf.h"

#include <QDateTime>
#include <QElapsedTimer>

#include <algorithm>
#include <memory>

namespace postern::senderauth {

namespace {
constexpr int kMaxLookups = 10;     // RFC 7208 4.6.4
constexpr int kMaxVoidLookups = 2;  // RFC 7208 4.6.4
constexpr int kMaxNamesPerLookup = 10;
constexpr qsizetype kMaxRecord = 4096;
constexpr qsizetype kMaxDomain = 253;

using Status = SpfResult::Status;

enum class Match { No, Yes, Temp, Perm };

struct Outcome {
    Match match = Match::No;
    QString reason;
};

bool validDomain(const QString& d) {
    if (d.isEmpty() || d.size() > kMaxDomain) return false;
    const QStringList labels = d.split(QLatin1Char('.'));
    if (labels.size() < 2) return false;
    for (const QString& l : labels)
        if (l.isEmpty() || l.size() > 63) return false;
    return true;
}

QString ipMacro(const QHostAddress& ip) {
    if (ip.protocol() == QAbstractSocket::IPv4Protocol) return ip.toString();
    const Q_IPV6ADDR a = ip.toIPv6Address();
    QStringList nibbles;
    for (int i = 0; i < 16; ++i) {
        nibbles << QString::number(a[i] >> 4, 16) << QString::number(a[i] & 0xf, 16);
    }
    return nibbles.join(QLatin1Char('.'));
}

class Evaluator {
public:
    Evaluator(Resolver& dns, QHostAddress ip, QString sender, QString helo, QString receiver, const SpfOptions& options)
        : m_dns(dns),
          m_ip(std::move(ip)),
          m_sender(std::move(sender)),
          m_helo(std::move(helo)),
          m_receiver(std::move(receiver)),
          m_budgetMs(options.budgetMs),
          m_clock(options.clockMs) {
        if (!m_clock) {
            auto timer = std::make_shared<QElapsedTimer>();
            timer->start();
            m_clock = [timer] { return timer->elapsed(); };
        }
        m_startMs = m_clock();
        if (m_ip.protocol() == QAbstractSocket::IPv6Protocol) {
            bool ok = false;
            const QHostAddress v4(m_ip.toIPv4Address(&ok));
            if (ok) m_ip = v4;  // IPv4-mapped addresses are IPv4 for SPF
        }
    }

    SpfResult check(const QString& domain) {
        SpfResult r;
        r.domain = domain;
        const auto [status, mech, reason] = checkHost(domain, 0);
        r.status = status;
        r.mechanism = mech;
        r.reason = reason;
        if (m_overBudget || m_clock() - m_startMs > m_budgetMs) {  // the budget is spent: no verdict
            r.status = Status::TempError;
            r.mechanism.clear();
            r.reason = QStringLiteral("SPF evaluation exceeded its time budget of %1 ms").arg(m_budgetMs);
        }
        return r;
    }

private:
    struct HostResult {
        Status status;
        QString mechanism;
        QString reason;
    };

    // Every DNS query goes through here: none once the time budget is spent.
    DnsAnswer lookup(const QString& name, DnsType type) {
        if (m_overBudget || m_clock() - m_startMs > m_budgetMs) {
            m_overBudget = true;
            DnsAnswer a;
            a.status = DnsAnswer::Status::Timeout;
            a.error = QStringLiteral("SPF time budget spent");
            return a;
        }
        return m_dns.query(name, type);
    }

    bool countLookup(QString* reason) {
        if (++m_lookups > kMaxLookups) {
            *reason = QStringLiteral("more than %1 DNS-querying terms").arg(kMaxLookups);
            return false;
        }
        return true;
    }

    // A query whose negative answer counts as a void lookup. Returns false with
    // `out` set when evaluation must stop.
    bool query(const QString& name, DnsType type, DnsAnswer* answer, Outcome* out) {
        *answer = lookup(name, type);
        if (answer->isNegative() || (answer->ok() && answer->records.isEmpty())) {
            if (++m_voids > kMaxVoidLookups) {
                *out = {Match::Perm, QStringLiteral("more than %1 void DNS lookups").arg(kMaxVoidLookups)};
                return false;
            }
            return true;
        }
        if (!answer->ok()) {
            *out = {Match::Temp, QStringLiteral("DNS %1 for %2").arg(toString(answer->status), name)};
            return false;
        }
        return true;
    }

    HostResult checkHost(const QString& domain, int depth) {
        if (!validDomain(domain)) return {Status::None, {}, QStringLiteral("not a domain: %1").arg(domain)};
        if (depth > kMaxLookups) return {Status::PermError, {}, QStringLiteral("include/redirect nesting too deep")};
        const DnsAnswer txt = lookup(domain, DnsType::TXT);
        if (!txt.ok() && !txt.isNegative())
            return {Status::TempError, {}, QStringLiteral("DNS %1 for %2").arg(toString(txt.status), domain)};
        QList<QByteArray> records;
        for (const DnsRecord& rec : txt.records) {
            if (rec.type != DnsType::TXT) continue;
            const QByteArray t = rec.text();
            if (t.size() >= 6 && t.left(6).toLower() == "v=spf1" && (t.size() == 6 || t.at(6) == ' ')) records << t;
        }
        if (records.isEmpty()) return {Status::None, {}, QStringLiteral("no SPF record for %1").arg(domain)};
        if (records.size() > 1)
            return {Status::PermError, {}, QStringLiteral("%1 has more than one SPF record").arg(domain)};
        if (records.first().size() > kMaxRecord) return {Status::PermError, {}, QStringLiteral("SPF record too long")};
        const QStringList terms =
            QString::fromLatin1(records.first()).mid(6).split(QLatin1Char(' '), Qt::SkipEmptyParts);
        QString redirect;
        // Modifiers are found first: redirect applies only when no mechanism matched.
        for (const QString& t : terms) {
            const qsizetype eq = t.indexOf(QLatin1Char('='));
            const qsizetype colon = t.indexOf(QLatin1Char(':'));
            if (eq > 0 && (colon < 0 || eq < colon)) {
                const QString name = t.left(eq).toLower();
                if (name == u"redirect") {
                    if (!redirect.isEmpty()) return {Status::PermError, {}, QStringLiteral("two redirect= modifiers")};
                    redirect = t.mid(eq + 1);
                }
                // exp= and unknown modifiers are ignored (RFC 7208 6).
            }
        }
        for (const QString& term : terms) {
            const qsizetype eq = term.indexOf(QLatin1Char('='));
            const qsizetype colon = term.indexOf(QLatin1Char(':'));
            if (eq > 0 && (colon < 0 || eq < colon)) continue;  // modifier
            QChar qualifier = QLatin1Char('+');
            QString mech = term;
            if (QStringLiteral("+-~?").contains(mech.at(0))) {
                qualifier = mech.at(0);
                mech = mech.mid(1);
            }
            const Outcome o = evaluate(mech, domain, depth);
            if (o.match == Match::Temp) return {Status::TempError, term, o.reason};
            if (o.match == Match::Perm) return {Status::PermError, term, o.reason};
            if (o.match == Match::Yes) {
                const Status s = qualifier == u'-'   ? Status::Fail
                                 : qualifier == u'~' ? Status::SoftFail
                                 : qualifier == u'?' ? Status::Neutral
                                                     : Status::Pass;
                return {s, term, {}};
            }
        }
        if (!redirect.isEmpty()) {
            QString reason;
            if (!countLookup(&reason)) return {Status::PermError, QStringLiteral("redirect=") + redirect, reason};
            QString target;
            if (!expand(redirect, domain, &target))
                return {Status::PermError, QStringLiteral("redirect=") + redirect, QStringLiteral("bad macro")};
            HostResult r = checkHost(target, depth + 1);
            if (r.status == Status::None)
                return {Status::PermError, QStringLiteral("redirect=") + redirect,
                        QStringLiteral("redirect target has no SPF record")};
            return r;
        }
        return {Status::Neutral, QStringLiteral("(no match)"), {}};
    }

    // "name[:domain-spec][/cidr4][//cidr6]" -> parts. Returns false on syntax errors.
    static bool splitMechanism(const QString& mech, QString* name, QString* spec, int* cidr4, int* cidr6) {
        QString rest = mech;
        *cidr4 = 32;
        *cidr6 = 128;
        const qsizetype dbl = rest.indexOf(QStringLiteral("//"));
        if (dbl >= 0) {
            bool ok = false;
            *cidr6 = rest.mid(dbl + 2).toInt(&ok);
            if (!ok || *cidr6 < 0 || *cidr6 > 128) return false;
            rest = rest.left(dbl);
        }
        const qsizetype colon = rest.indexOf(QLatin1Char(':'));
        const qsizetype slash = rest.indexOf(QLatin1Char('/'), colon < 0 ? 0 : colon);
        if (slash >= 0) {
            bool ok = false;
            *cidr4 = rest.mid(slash + 1).toInt(&ok);
            if (!ok || *cidr4 < 0 || *cidr4 > 32) return false;
            rest = rest.left(slash);
        }
        if (colon >= 0) {
            *name = rest.left(colon).toLower();
            *spec = rest.mid(colon + 1);
            if (spec->isEmpty()) return false;
        } else {
            *name = rest.toLower();
        }
        return true;
    }

    bool addressMatches(const QHostAddress& a, int cidr4, int cidr6) const {
        if (a.protocol() != m_ip.protocol()) return false;
        return m_ip.isInSubnet(a, a.protocol() == QAbstractSocket::IPv4Protocol ? cidr4 : cidr6);
    }

    // ip4:<network>[/len] and ip6:<network>[/len] (RFC 7208 5.6).
    Outcome ipMechanism(const QString& mech) const {
        const bool v4 = mech.at(2) == u'4';
        QString net = mech.mid(4);
        int len = v4 ? 32 : 128;
        const qsizetype slash = net.indexOf(QLatin1Char('/'));
        if (slash >= 0) {
            bool ok = false;
            len = net.mid(slash + 1).toInt(&ok);
            if (!ok || len < 0 || len > (v4 ? 32 : 128))
                return {Match::Perm, QStringLiteral("bad prefix length in %1").arg(mech)};
            net = net.left(slash);
        }
        QHostAddress a;
        if (!a.setAddress(net) || (a.protocol() == QAbstractSocket::IPv4Protocol) != v4)
            return {Match::Perm, QStringLiteral("bad address in %1").arg(mech)};
        return {m_ip.protocol() == a.protocol() && m_ip.isInSubnet(a, len) ? Match::Yes : Match::No, {}};
    }

    // include:<domain>, its lookup already counted (RFC 7208 5.2: the table of results).
    Outcome includeMechanism(const QString& target, int depth) {
        const HostResult r = checkHost(target, depth + 1);
        switch (r.status) {
            case Status::Pass:
                return {Match::Yes, {}};
            case Status::Fail:
            case Status::SoftFail:
            case Status::Neutral:
                return {Match::No, {}};
            case Status::TempError:
                return {Match::Temp, r.reason};
            case Status::None:
            case Status::PermError:
                return {Match::Perm, QStringLiteral("include:%1: %2")
                                         .arg(target, r.reason.isEmpty() ? QStringLiteral("no SPF record") : r.reason)};
        }
        return {Match::Perm, {}};  // not reached: every status is handled above
    }

    // mx[:<domain>][/cidr], its lookup already counted (RFC 7208 5.4; at most
    // kMaxNamesPerLookup MX names, 4.6.4).
    Outcome mxMechanism(const QString& target, DnsType addrType, int cidr4, int cidr6) {
        DnsAnswer mx;
        Outcome stop;
        if (!query(target, DnsType::MX, &mx, &stop)) return stop;
        int names = 0;
        for (const DnsRecord& r : mx.records) {
            if (r.type != DnsType::MX) continue;
            if (++names > kMaxNamesPerLookup)
                return {Match::Perm, QStringLiteral("more than %1 MX names").arg(kMaxNamesPerLookup)};
            DnsAnswer ans;
            if (!query(r.target, addrType, &ans, &stop)) return stop;
            for (const DnsRecord& a : ans.records)
                if (a.type == addrType && addressMatches(a.address, cidr4, cidr6)) return {Match::Yes, {}};
        }
        return {Match::No, {}};
    }

    Outcome evaluate(const QString& mech, const QString& domain, int depth) {
        QString name, spec;
        int cidr4 = 32, cidr6 = 128;
        if (mech.startsWith(QStringLiteral("ip4:"), Qt::CaseInsensitive) ||
            mech.startsWith(QStringLiteral("ip6:"), Qt::CaseInsensitive))
            return ipMechanism(mech);
        if (!splitMechanism(mech, &name, &spec, &cidr4, &cidr6))
            return {Match::Perm, QStringLiteral("syntax error in %1").arg(mech)};
        QString target = domain;
        if (!spec.isEmpty() && !expand(spec, domain, &target))
            return {Match::Perm, QStringLiteral("bad macro in %1").arg(mech)};
        QString reason;
        if (name == u"all") return {spec.isEmpty() ? Match::Yes : Match::Perm, {}};
        if (name == u"include") {
            if (spec.isEmpty()) return {Match::Perm, QStringLiteral("include without a domain")};
            if (!countLookup(&reason)) return {Match::Perm, reason};
            return includeMechanism(target, depth);
        }
        const DnsType addrType = m_ip.protocol() == QAbstractSocket::IPv4Protocol ? DnsType::A : DnsType::AAAA;
        if (name == u"a") {
            if (!countLookup(&reason)) return {Match::Perm, reason};
            DnsAnswer ans;
            Outcome stop;
            if (!query(target, addrType, &ans, &stop)) return stop;
            for (const DnsRecord& r : ans.records)
                if (r.type == addrType && addressMatches(r.address, cidr4, cidr6)) return {Match::Yes, {}};
            return {Match::No, {}};
        }
        if (name == u"mx") {
            if (!countLookup(&reason)) return {Match::Perm, reason};
            return mxMechanism(target, addrType, cidr4, cidr6);
        }
        if (name == u"ptr") {
            if (!countLookup(&reason)) return {Match::Perm, reason};
            const QString validated = validatedPtr(target);
            return {validated.isEmpty() ? Match::No : Match::Yes, {}};
        }
        if (name == u"exists") {
            if (spec.isEmpty()) return {Match::Perm, QStringLiteral("exists without a domain")};
            if (!countLookup(&reason)) return {Match::Perm, reason};
            DnsAnswer ans;
            Outcome stop;
            if (!query(target, DnsType::A, &ans, &stop)) return stop;
            for (const DnsRecord& r : ans.records)
                if (r.type == DnsType::A) return {Match::Yes, {}};
            return {Match::No, {}};
        }
        return {Match::Perm, QStringLiteral("unknown mechanism %1").arg(mech)};
    }

    // RFC 7208 5.5: a PTR name of the client that resolves back to it and ends in `target`.
    QString validatedPtr(const QString& target) {
        const DnsAnswer ptr = lookup(reverseName(m_ip), DnsType::PTR);
        const DnsType addrType = m_ip.protocol() == QAbstractSocket::IPv4Protocol ? DnsType::A : DnsType::AAAA;
        int names = 0;
        for (const DnsRecord& r : ptr.records) {
            if (r.type != DnsType::PTR || ++names > kMaxNamesPerLookup) continue;
            const QString n = r.target.toLower();
            if (n != target.toLower() && !n.endsWith(QLatin1Char('.') + target.toLower())) continue;
            const DnsAnswer back = lookup(n, addrType);
            for (const DnsRecord& a : back.records)
                if (a.type == addrType && a.address.isEqual(m_ip)) return n;
        }
        return {};
    }

    // RFC 7208 7.2: the value of one macro letter (false: not a macro letter).
    bool macroValue(QChar letter, const QString& domain, QString* value) const {
        const QString sender = m_sender.isEmpty() ? QStringLiteral("postmaster@") + m_helo : m_sender;
        switch (letter.unicode()) {
            case 's':
                *value = sender;
                break;
            case 'l':
                *value = sender.section(u'@', 0, -2);
                break;
            case 'o':
                *value = sender.section(u'@', -1);
                break;
            case 'd':
                *value = domain;
                break;
            case 'i':
                *value = ipMacro(m_ip);
                break;
            case 'c':
                *value = m_ip.toString();
                break;
            case 'p':
                *value = QStringLiteral("unknown");
                break;
            case 'v':
                *value = m_ip.protocol() == QAbstractSocket::IPv4Protocol ? QStringLiteral("in-addr")
                                                                          : QStringLiteral("ip6");
                break;
            case 'h':
                *value = m_helo;
                break;
            case 'r':
                *value = m_receiver;
                break;
            case 't':
                *value = QString::number(QDateTime::currentSecsSinceEpoch());
                break;
            default:
                return false;
        }
        return true;
    }

    // RFC 7208 7.3: the transformers and delimiters after the letter in `body` ("l1r-"),
    // applied to `value` (nullopt: a syntax error, or a digit transformer over 128).
    static std::optional<QString> transform(const QString& value, const QString& body) {
        qsizetype j = 1;
        int keep = 0;
        // Saturates above the limit, so a hostile run of digits cannot overflow.
        while (j < body.size() && body.at(j).isDigit()) keep = std::min(keep * 10 + body.at(j++).digitValue(), 1000);
        if (keep > 128) return std::nullopt;
        bool reverse = false;
        if (j < body.size() && body.at(j).toLower() == u'r') {
            reverse = true;
            ++j;
        }
        QString delimiters = body.mid(j);
        for (QChar d : delimiters)
            if (!QStringLiteral(".-+,/_=").contains(d)) return std::nullopt;
        if (delimiters.isEmpty()) delimiters = QStringLiteral(".");
        QStringList parts;
        QString cur;
        for (QChar ch : value) {
            if (delimiters.contains(ch)) {
                parts << cur;
                cur.clear();
            } else {
                cur += ch;
            }
        }
        parts << cur;
        if (reverse) std::reverse(parts.begin(), parts.end());
        if (keep > 0 && keep < parts.size()) parts = parts.mid(parts.size() - keep);
        return parts.join(QLatin1Char('.'));
    }

    // RFC 7208 7: macro expansion. False on a syntax error.
    bool expand(const QString& spec, const QString& domain, QString* out) {
        QString result;
        for (qsizetype i = 0; i < spec.size(); ++i) {
            const QChar c = spec.at(i);
            if (c != u'%') {
                result += c;
                continue;
            }
            if (++i >= spec.size()) return false;
            const QChar n = spec.at(i);
            if (n == u'%')
                result += u'%';
            else if (n == u'_')
                result += u' ';
            else if (n == u'-')
                result += QStringLiteral("%20");
            else if (n == u'{') {
                const qsizetype close = spec.indexOf(u'}', i);
                if (close < 0 || close == i + 1) return false;
                QString body = spec.mid(i + 1, close - i - 1);
                i = close;
                QString value;
                if (!macroValue(body.at(0).toLower(), domain, &value)) return false;
                const std::optional<QString> transformed = transform(value, body);
                if (!transformed) return false;
                result += *transformed;
            } else {
                return false;
            }
            if (result.size() > 4 * kMaxDomain) return false;
        }
        // RFC 7208 7.3: an over-long expansion drops labels from the left.
        while (result.size() > kMaxDomain && result.contains(QLatin1Char('.')))
            result = result.section(QLatin1Char('.'), 1);
        *out = result;
        return true;
    }

    Resolver& m_dns;
    QHostAddress m_ip;
    QString m_sender, m_helo, m_receiver;
    qint64 m_budgetMs;
    std::function<qint64()> m_clock;
    qint64 m_startMs = 0;
    bool m_overBudget = false;
    int m_lookups = 0;
    int m_voids = 0;
};
}  // namespace

QString toString(SpfResult::Status s) {
    switch (s) {
        case Status::None:
            return QStringLiteral("none");
        case Status::Neutral:
            return QStringLiteral("neutral");
        case Status::Pass:
            return QStringLiteral("pass");
        case Status::Fail:
            return QStringLiteral("fail");
        case Status::SoftFail:
            return QStringLiteral("softfail");
        case Status::TempError:
            return QStringLiteral("temperror");
        case Status::PermError:
            return QStringLiteral("permerror");
    }
    return {};
}

SpfResult checkSpf(Resolver& dns, const QHostAddress& ip, const QString& sender, const QString& helo,
                   const QString& receiver, const SpfOptions& options) {
    const QString identity = sender.isEmpty() ? QStringLiteral("postmaster@") + helo : sender;
    const QString domain = identity.section(QLatin1Char('@'), -1).toLower();
    Evaluator e(dns, ip, identity, helo, receiver, options);
    return e.check(domain);
}

}  // namespace postern::senderauth
