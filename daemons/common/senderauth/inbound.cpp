// inbound.cpp — see inbound.h.
#include "inbound.h"

#include "spf.h"

#include "common/dkim/dkim.h"
#include "common/mail/header_identity.h"
#include "common/mail/message.h"

#include <QFile>
#include <QRandomGenerator>
#include <QSet>

#include <cctype>

namespace postern::senderauth {

namespace {
struct SuffixList {
    QSet<QString> rules, wildcards, exceptions;
    bool loaded = false;
};

const SuffixList& suffixList() {
    static const SuffixList list = [] {
        SuffixList l;
        QFile f(QStringLiteral("/usr/share/publicsuffix/public_suffix_list.dat"));
        if (!f.open(QIODevice::ReadOnly)) return l;
        while (!f.atEnd()) {
            const QString line = QString::fromUtf8(f.readLine(1024)).trimmed().toLower();
            if (line.isEmpty() || line.startsWith(QStringLiteral("//"))) continue;
            const QString rule = line.section(QLatin1Char(' '), 0, 0);
            if (rule.startsWith(QStringLiteral("*.")))
                l.wildcards.insert(rule.mid(2));
            else if (rule.startsWith(QLatin1Char('!')))
                l.exceptions.insert(rule.mid(1));
            else
                l.rules.insert(rule);
        }
        l.loaded = !l.rules.isEmpty();
        return l;
    }();
    return list;
}

QString clean(const QString& s, int max = 200) {
    QString out;
    for (QChar c : s.left(max)) {
        const ushort u = c.unicode();
        out += (u > 0x20 && u < 0x7f && c != u';' && c != u'(' && c != u')' && c != u'"') ? c : QLatin1Char('_');
    }
    return out;
}

QString comment(const QString& s) {
    QString out;
    for (QChar c : s.left(200)) {
        const ushort u = c.unicode();
        out += (u >= 0x20 && u < 0x7f && c != u'(' && c != u')' && c != u'\\') ? c : QLatin1Char(' ');
    }
    return out.simplified();
}

bool aligned(const QString& a, const QString& b, bool strict) {
    if (a.isEmpty() || b.isEmpty()) return false;
    if (a.compare(b, Qt::CaseInsensitive) == 0) return true;
    return !strict && organizationalDomain(a) == organizationalDomain(b);
}
}  // namespace

QString organizationalDomain(const QString& domainIn) {
    QString domain = domainIn.toLower();
    if (domain.endsWith(QLatin1Char('.'))) domain.chop(1);
    const QStringList labels = domain.split(QLatin1Char('.'), Qt::SkipEmptyParts);
    if (labels.size() < 2) return domain;
    const SuffixList& psl = suffixList();
    int suffixLabels = 1;  // the default rule "*" (RFC: an unlisted TLD is a public suffix)
    if (psl.loaded) {
        for (int n = int(labels.size()); n >= 1; --n) {
            const QString candidate = labels.mid(labels.size() - n).join(QLatin1Char('.'));
            if (psl.exceptions.contains(candidate)) {
                suffixLabels = n - 1;
                break;
            }
            if (psl.rules.contains(candidate)) {
                suffixLabels = n;
                break;
            }
            const QString parent = labels.mid(labels.size() - n + 1).join(QLatin1Char('.'));
            if (n >= 2 && psl.wildcards.contains(parent)) {
                suffixLabels = n;
                break;
            }
        }
    }
    if (suffixLabels >= labels.size()) return domain;
    return labels.mid(labels.size() - suffixLabels - 1).join(QLatin1Char('.'));
}

std::optional<DmarcRecord> parseDmarc(const QByteArray& txt) {
    const QList<QByteArray> tags = txt.split(';');
    if (tags.isEmpty() || tags.first().trimmed().replace(' ', "") != "v=DMARC1") return std::nullopt;
    DmarcRecord r;
    for (const QByteArray& t : tags.mid(1)) {
        const qsizetype eq = t.indexOf('=');
        if (eq < 0) continue;
        const QByteArray k = t.left(eq).trimmed().toLower();
        const QString v = QString::fromLatin1(t.mid(eq + 1).trimmed()).toLower();
        if (k == "p")
            r.policy = v;
        else if (k == "sp")
            r.subdomainPolicy = v;
        else if (k == "adkim")
            r.strictDkim = v == u"s";
        else if (k == "aspf")
            r.strictSpf = v == u"s";
        else if (k == "pct") {
            bool ok = false;
            const int p = v.toInt(&ok);
            if (ok) r.pct = std::clamp(p, 0, 100);
        }
    }
    static const QStringList policies{QStringLiteral("none"), QStringLiteral("quarantine"), QStringLiteral("reject")};
    if (!policies.contains(r.policy)) {
        // RFC 7489 6.6.3: an invalid p= with a valid rua would be "none"; without p= the record is ignored.
        return std::nullopt;
    }
    if (!r.subdomainPolicy.isEmpty() && !policies.contains(r.subdomainPolicy)) r.subdomainPolicy.clear();
    return r;
}

QString toString(DmarcResult::Status s) {
    switch (s) {
        case DmarcResult::Status::None:
            return QStringLiteral("none");
        case DmarcResult::Status::Pass:
            return QStringLiteral("pass");
        case DmarcResult::Status::Fail:
            return QStringLiteral("fail");
        case DmarcResult::Status::TempError:
            return QStringLiteral("temperror");
        case DmarcResult::Status::PermError:
            return QStringLiteral("permerror");
    }
    return {};
}

namespace {
// The DMARC record for the From domain (or its organizational domain).
DmarcResult lookupDmarc(Resolver& dns, const QString& fromDomain, std::optional<DmarcRecord>* record) {
    DmarcResult out;
    out.fromDomain = fromDomain;
    const QString org = organizationalDomain(fromDomain);
    for (const QString& d : {fromDomain, org}) {
        const DnsAnswer a = dns.query(QStringLiteral("_dmarc.") + d, DnsType::TXT);
        if (!a.ok() && !a.isNegative()) {
            out.status = DmarcResult::Status::TempError;
            out.reason = QStringLiteral("DNS %1 for _dmarc.%2").arg(toString(a.status), d);
            return out;
        }
        QList<DmarcRecord> found;
        for (const DnsRecord& r : a.records)
            if (r.type == DnsType::TXT)
                if (auto p = parseDmarc(r.text())) found << *p;
        if (found.size() == 1) {
            *record = found.first();
            out.policy = d == fromDomain || found.first().subdomainPolicy.isEmpty() ? found.first().policy
                                                                                    : found.first().subdomainPolicy;
            return out;
        }
        if (found.size() > 1) {
            out.status = DmarcResult::Status::PermError;
            out.reason = QStringLiteral("more than one DMARC record at _dmarc.%1").arg(d);
            return out;
        }
        if (d == org) break;
    }
    return out;
}
}  // namespace

namespace {
// DMARC (RFC 7489 6.6): exactly one From address with a domain, its record, and
// alignment of a passing SPF or DKIM result with that domain.
DmarcResult evaluateDmarc(Resolver& dns, const QByteArray& header, const SpfResult& spf,
                          const QList<dkim::VerifyResult>& dkims) {
    const mail::Header fields = mail::parseHeader(header);
    QStringList fromDomains;
    for (const mail::HeaderField& h : fields.fields) {
        if (h.name.compare("From", Qt::CaseInsensitive) != 0) continue;
        for (const mail::Address& a : mail::parseAddressList(h.value))
            if (!a.groupStart && !a.groupEnd) fromDomains << a.domain.toLower();
    }
    DmarcResult dmarc;
    if (fromDomains.size() > 1) {
        dmarc.status = DmarcResult::Status::PermError;
        dmarc.reason = QStringLiteral("more than one From address");
        return dmarc;
    }
    if (fromDomains.size() != 1 || fromDomains.first().isEmpty()) return dmarc;
    std::optional<DmarcRecord> record;
    dmarc = lookupDmarc(dns, fromDomains.first(), &record);
    if (!record) return dmarc;
    const bool spfAligned =
        spf.status == SpfResult::Status::Pass && aligned(spf.domain, dmarc.fromDomain, record->strictSpf);
    bool dkimAligned = false;
    for (const auto& d : dkims)
        dkimAligned |=
            d.status == dkim::VerifyResult::Status::Pass && aligned(d.domain, dmarc.fromDomain, record->strictDkim);
    dmarc.status = spfAligned || dkimAligned ? DmarcResult::Status::Pass : DmarcResult::Status::Fail;
    if (dmarc.status == DmarcResult::Status::Fail && record->pct < 100 &&
        int(QRandomGenerator::global()->bounded(100)) >= record->pct) {
        dmarc.reason = QStringLiteral("policy not applied (pct=%1)").arg(record->pct);
        dmarc.policy = QStringLiteral("none");
    }
    return dmarc;
}

// The Authentication-Results parts (RFC 8601), one per method.
QStringList resultParts(const InboundInput& in, const SpfResult& spf, const QList<dkim::VerifyResult>& dkims,
                        const DmarcResult& dmarc) {
    QStringList parts;
    QString spfPart = QStringLiteral("spf=%1").arg(toString(spf.status));
    if (!spf.mechanism.isEmpty() || !spf.reason.isEmpty())
        spfPart += QStringLiteral(" (%1)").arg(
            comment(spf.reason.isEmpty() ? QStringLiteral("matched ") + spf.mechanism : spf.reason));
    spfPart += in.sender.isEmpty() ? QStringLiteral(" smtp.helo=%1").arg(clean(in.helo))
                                   : QStringLiteral(" smtp.mailfrom=%1").arg(clean(in.sender));
    parts << spfPart;
    if (dkims.isEmpty()) parts << QStringLiteral("dkim=none");
    for (const auto& d : dkims) {
        QString p = QStringLiteral("dkim=%1").arg(dkim::toString(d.status));
        if (d.status != dkim::VerifyResult::Status::Pass && !d.reason.isEmpty())
            p += QStringLiteral(" (%1)").arg(comment(d.reason));
        if (!d.domain.isEmpty()) p += QStringLiteral(" header.d=%1").arg(clean(d.domain));
        if (!d.selector.isEmpty()) p += QStringLiteral(" header.s=%1").arg(clean(d.selector));
        parts << p;
    }
    QString dmarcPart = QStringLiteral("dmarc=%1").arg(toString(dmarc.status));
    QStringList dmarcNotes;
    if (!dmarc.policy.isEmpty()) dmarcNotes << QStringLiteral("p=%1").arg(dmarc.policy);
    if (!dmarc.reason.isEmpty()) dmarcNotes << comment(dmarc.reason);
    if (!dmarcNotes.isEmpty()) dmarcPart += QStringLiteral(" (%1)").arg(dmarcNotes.join(QStringLiteral("; ")));
    if (!dmarc.fromDomain.isEmpty()) dmarcPart += QStringLiteral(" header.from=%1").arg(clean(dmarc.fromDomain));
    parts << dmarcPart;
    return parts;
}
}  // namespace

InboundVerdict evaluateInbound(Resolver& dns, const mail::MessageFile& message, const InboundInput& in) {
    InboundVerdict v;
    // SPF for MAIL FROM (or postmaster@HELO for the null sender); DKIM: every signature.
    const SpfResult spf = checkSpf(dns, in.client, in.sender, in.helo, in.authservId);
    const QList<dkim::VerifyResult> dkims = dkim::verifyMessage(message, dns);
    const DmarcResult dmarc = evaluateDmarc(dns, message.header(), spf, dkims);
    const QStringList parts = resultParts(in, spf, dkims, dmarc);
    v.header = (QStringLiteral("Authentication-Results: %1;\r\n\t").arg(clean(in.authservId)) +
                parts.join(QStringLiteral(";\r\n\t")) + QStringLiteral("\r\n"))
                   .toUtf8();
    QStringList summary;
    for (const QString& p : parts) summary << p.section(QLatin1Char(' '), 0, 0);
    v.summary = summary.join(QLatin1Char(' '));
    v.spf = toString(spf.status);
    for (const auto& d : dkims) v.dkim.append({dkim::toString(d.status), d.domain});
    v.dmarc = toString(dmarc.status);
    v.dmarcPolicy = dmarc.policy;

    if (dmarc.status == DmarcResult::Status::Fail) {
        if (dmarc.policy == u"reject" && in.rejectOnDmarc) {
            v.action = InboundVerdict::Action::Reject;
            v.rejectText =
                QStringLiteral(
                    "Message rejected: %1 publishes DMARC p=reject and this message fails it (SPF %2, DKIM %3)")
                    .arg(dmarc.fromDomain, toString(spf.status),
                         dkims.isEmpty() ? QStringLiteral("none") : dkim::toString(dkims.first().status));
        } else if ((dmarc.policy == u"quarantine" || dmarc.policy == u"reject") && in.quarantineToJunk) {
            v.action = InboundVerdict::Action::Junk;
        }
    }
    return v;
}

std::optional<QString> authservIdOf(const QByteArray& v) {
    // RFC 8601 2.2: authres-payload = [CFWS] authserv-id [ CFWS authres-version ] ( no-result / 1*resinfo )
    //   authserv-id = value (RFC 2045: token / quoted-string); authres-version = 1*DIGIT [CFWS]
    // and every result starts with ";". Comments may sit anywhere CFWS may.
    qsizetype i = 0;
    auto skipCfws = [&]() -> bool {
        while (i < v.size()) {
            const char c = v.at(i);
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                ++i;
            } else if (c == '(') {
                int depth = 0;
                while (i < v.size()) {
                    const char d = v.at(i);
                    if (d == '\\') {
                        i += 2;
                        continue;
                    }
                    if (d == '(' && ++depth > mail::kMaxCommentDepth) return false;
                    ++i;
                    if (d == ')' && --depth == 0) break;
                }
                if (depth != 0) return false;  // unterminated
            } else {
                return true;
            }
        }
        return true;
    };
    auto isTokenChar = [](char c) {
        const uchar u = uchar(c);
        return u > 0x20 && u < 0x7f && !QByteArrayView("()<>@,;:\\\"/[]?=").contains(c);
    };
    if (!skipCfws() || i >= v.size()) return std::nullopt;
    QByteArray id;
    if (v.at(i) == '"') {
        ++i;
        bool closed = false;
        while (i < v.size()) {
            const char c = v.at(i++);
            if (c == '"') {
                closed = true;
                break;
            }
            if (c == '\\' && i < v.size()) {
                id += v.at(i++);
                continue;
            }
            id += c;
        }
        if (!closed) return std::nullopt;
    } else {
        while (i < v.size() && isTokenChar(v.at(i))) id += v.at(i++);
    }
    if (id.isEmpty()) return std::nullopt;
    const qsizetype afterId = i;
    if (!skipCfws()) return std::nullopt;
    if (i < v.size() && i > afterId && std::isdigit(uchar(v.at(i)))) {  // authres-version, after CFWS
        while (i < v.size() && std::isdigit(uchar(v.at(i)))) ++i;
        if (!skipCfws()) return std::nullopt;
    }
    if (i >= v.size() || v.at(i) != ';') return std::nullopt;
    return QString::fromUtf8(id).trimmed();
}

QByteArray stripForgedResults(const QByteArray& header, const QString& authservId, bool* changed) {
    *changed = false;
    // Every field (no cap on how many are scanned: a forged one cannot hide behind thousands of others).
    const QList<mail::FieldSpan> fields = mail::headerFieldSpans(header, {QByteArrayLiteral("Authentication-Results")});
    QList<QPair<qsizetype, qsizetype>> drop;  // [start, end) of fields to remove
    for (const mail::FieldSpan& f : fields) {
        const std::optional<QString> id = authservIdOf(f.value);
        // RFC 8601 5: remove the ones that claim our authserv-id. A field we cannot parse is
        // removed too when our name appears in it at all: a laxer reader downstream might find it.
        const bool ours = id ? id->compare(authservId, Qt::CaseInsensitive) == 0
                             : QString::fromUtf8(f.value).contains(authservId, Qt::CaseInsensitive);
        if (ours) drop << qMakePair(f.start, f.end);
    }
    if (drop.isEmpty()) return header;
    *changed = true;
    QByteArray out;
    out.reserve(header.size());
    qsizetype pos = 0;
    for (const auto& [start, end] : drop) {
        out += header.mid(pos, start - pos);
        pos = end;
    }
    out += header.mid(pos);
    return out;
}

}  // namespace postern::senderauth
