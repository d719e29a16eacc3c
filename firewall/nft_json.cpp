// nft_json.cpp — see nft_json.h.
//
// Shape of the document (libnftables-json(5)):
//   {"nftables": [ {"metainfo": {...}}, {"table": {family, name}},
//                  {"chain": {family, table, name, type?, hook?, prio?, policy?}},
//                  {"set"|"map": {family, table, name, elem: [...]}},
//                  {"rule": {family, table, chain, handle, comment?, expr: [statement...]}} ]}
// A statement is {"match": {op, left, right}}, a verdict ({"accept": null},
// {"jump": {"target": "x"}}, ...), {"vmap": {key, data}} or an action
// (counter, log, limit, dnat, ...).
#include "nft_json.h"

#include <QHash>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <optional>

namespace postern::firewall {

namespace {

struct TableSets {
    // "family table name" -> elements (sets) ; map elements are [key, value] pairs
    QHash<QString, QJsonArray> elements;
    QHash<QString, bool> dynamic;
};

QString setKey(const QString& family, const QString& table, const QString& name) {
    return family + QLatin1Char(' ') + table + QLatin1Char(' ') + name;
}

// A rule being read: its terms and verdict so far, its statements as text, and the rules a
// vmap forks it into.
struct RuleDraft {
    Rule base;
    QStringList text;
    QList<Rule> expanded;  // from a vmap
};

class RuleReader {
public:
    RuleReader(const TableSets& sets, QString family, QString table)
        : m_sets(sets), m_family(std::move(family)), m_table(std::move(table)) {}

    // Translates one rule object into one or more model rules (vmap expands).
    QList<Rule> read(const QJsonObject& rule) const;

private:
    QString exprText(const QJsonValue& v) const;
    QString valueText(const QJsonValue& v) const;
    // Elements a right-hand side stands for (set contents, list items, or itself).
    QJsonArray atoms(const QJsonValue& right, bool* dynamic, bool* tooLarge) const;
    QList<Term> matchTerms(const QString& op, const QJsonValue& left, const QJsonValue& right) const;
    void readVmap(const QJsonObject& vm, RuleDraft* d) const;
    static bool verdictOf(const QJsonObject& stmt, Verdict* v, QString* target);

    const TableSets& m_sets;
    QString m_family;
    QString m_table;
};

// A term of `type` with nothing but its text (an unknown expression, state we cannot see).
Term textTerm(Term::Type type, const QString& text) {
    Term t;
    t.type = type;
    t.text = text;
    return t;
}

Term unknownTerm(const QString& text) {
    return textTerm(Term::Type::Unknown, text);
}

Term protocolTerm(const QList<int>& protos, bool negate, const QString& text) {
    Term t;
    t.type = Term::Type::Protocol;
    t.protocols = protos;
    t.negate = negate;
    t.text = text;
    return t;
}

Term familyTerm(IpFamily f, const QString& text) {
    Term t;
    t.type = Term::Type::Family;
    t.family = f;
    t.text = text;
    return t;
}

QString scalarText(const QJsonValue& v) {
    if (v.isDouble()) return QString::number(qint64(v.toDouble()));
    if (v.isString()) return v.toString();
    if (v.isBool()) return v.toBool() ? QStringLiteral("true") : QStringLiteral("false");
    return QString::fromUtf8(QJsonDocument(QJsonArray{v}).toJson(QJsonDocument::Compact)).mid(1).chopped(1);
}

QString RuleReader::exprText(const QJsonValue& v) const {
    if (!v.isObject()) return scalarText(v);
    const QJsonObject o = v.toObject();
    if (o.contains(u"payload")) {
        const QJsonObject p = o.value(u"payload").toObject();
        if (p.contains(u"protocol"))
            return p.value(u"protocol").toString() + QLatin1Char(' ') + p.value(u"field").toString();
        return QStringLiteral("@%1,%2,%3")
            .arg(p.value(u"base").toString())
            .arg(p.value(u"offset").toInt())
            .arg(p.value(u"len").toInt());
    }
    if (o.contains(u"meta")) {
        const QString key = o.value(u"meta").toObject().value(u"key").toString();
        static const QStringList kBare = {QStringLiteral("iifname"), QStringLiteral("oifname"), QStringLiteral("iif"),
                                          QStringLiteral("oif"), QStringLiteral("mark")};
        return kBare.contains(key) ? key : QStringLiteral("meta ") + key;
    }
    if (o.contains(u"ct")) return QStringLiteral("ct ") + o.value(u"ct").toObject().value(u"key").toString();
    if (o.contains(u"fib")) {
        const QJsonObject f = o.value(u"fib").toObject();
        QStringList flags;
        for (const QJsonValue& x : f.value(u"flags").toArray()) flags << x.toString();
        return QStringLiteral("fib %1 %2").arg(flags.join(QStringLiteral(" . ")), f.value(u"result").toString());
    }
    if (o.contains(u"&")) {
        const QJsonArray a = o.value(u"&").toArray();
        if (a.size() == 2) {
            const QString mask = a.at(1).isArray()
                                     ? QStringLiteral("(") +
                                           valueText(a.at(1)).replace(QStringLiteral(", "), QStringLiteral("|")) +
                                           QLatin1Char(')')
                                     : valueText(a.at(1));
            return exprText(a.at(0)) + QStringLiteral(" & ") + mask;
        }
    }
    if (o.contains(u"concat")) {
        QStringList parts;
        for (const QJsonValue& x : o.value(u"concat").toArray()) parts << exprText(x);
        return parts.join(QStringLiteral(" . "));
    }
    return valueText(v);
}

QString RuleReader::valueText(const QJsonValue& v) const {
    if (v.isArray()) {
        QStringList parts;
        for (const QJsonValue& x : v.toArray()) parts << valueText(x);
        return parts.join(QStringLiteral(", "));
    }
    if (!v.isObject()) return scalarText(v);
    const QJsonObject o = v.toObject();
    if (o.contains(u"set")) {
        const QJsonValue s = o.value(u"set");
        return QStringLiteral("{ ") + valueText(s) + QStringLiteral(" }");
    }
    if (o.contains(u"range")) {
        const QJsonArray r = o.value(u"range").toArray();
        return valueText(r.at(0)) + QLatin1Char('-') + valueText(r.at(1));
    }
    if (o.contains(u"prefix")) {
        const QJsonObject p = o.value(u"prefix").toObject();
        return valueText(p.value(u"addr")) + QLatin1Char('/') + QString::number(p.value(u"len").toInt());
    }
    if (o.contains(u"elem")) return valueText(o.value(u"elem").toObject().value(u"val"));
    if (o.contains(u"payload") || o.contains(u"meta") || o.contains(u"ct")) return exprText(v);
    return QString::fromUtf8(QJsonDocument(o).toJson(QJsonDocument::Compact));
}

QJsonArray RuleReader::atoms(const QJsonValue& right, bool* dynamic, bool* tooLarge) const {
    QJsonArray out;
    auto addOne = [&](const QJsonValue& v) {
        if (v.isObject() && v.toObject().contains(u"elem"))
            out.append(v.toObject().value(u"elem").toObject().value(u"val"));
        else
            out.append(v);
    };
    if (right.isString() && right.toString().startsWith(QLatin1Char('@'))) {
        const QString key = setKey(m_family, m_table, right.toString().mid(1));
        if (m_sets.dynamic.value(key)) *dynamic = true;
        const QJsonArray elems = m_sets.elements.value(key);
        if (elems.size() > kMaxSetElements) *tooLarge = true;
        for (const QJsonValue& e : elems) addOne(e);
        return out;
    }
    if (right.isObject() && right.toObject().contains(u"set")) {
        const QJsonValue s = right.toObject().value(u"set");
        if (s.isArray()) {
            for (const QJsonValue& e : s.toArray()) addOne(e);
        } else {
            addOne(s);
        }
        return out;
    }
    if (right.isArray()) {
        for (const QJsonValue& e : right.toArray()) addOne(e);
        return out;
    }
    addOne(right);
    return out;
}

// Ports from atoms: numbers, service names, ranges. False when an atom is not a port.
bool portsFrom(const QJsonArray& atoms, PortSet* out) {
    for (const QJsonValue& a : atoms) {
        if (a.isObject() && a.toObject().contains(u"range")) {
            const QJsonArray r = a.toObject().value(u"range").toArray();
            if (r.size() != 2) return false;
            const int lo = r.at(0).isDouble() ? r.at(0).toInt() : servicePort(r.at(0).toString());
            const int hi = r.at(1).isDouble() ? r.at(1).toInt() : servicePort(r.at(1).toString());
            if (lo < 0 || hi < 0) return false;
            out->ranges << qMakePair(lo, hi);
            continue;
        }
        const int p = a.isDouble() ? a.toInt() : (a.isString() ? servicePort(a.toString()) : -1);
        if (p < 0) return false;
        out->ranges << qMakePair(p, p);
    }
    return true;
}

QStringList namesFrom(const QJsonArray& atoms) {
    QStringList out;
    for (const QJsonValue& a : atoms) {
        if (a.isString()) {
            out << a.toString();
        } else if (a.isDouble()) {
            out << QString::number(qint64(a.toDouble()));
        } else if (a.isObject() && a.toObject().contains(u"prefix")) {
            const QJsonObject p = a.toObject().value(u"prefix").toObject();
            out << p.value(u"addr").toString() + QLatin1Char('/') + QString::number(p.value(u"len").toInt());
        } else if (a.isObject() && a.toObject().contains(u"range")) {
            const QJsonArray r = a.toObject().value(u"range").toArray();
            out << scalarText(r.at(0)) + QLatin1Char('-') + scalarText(r.at(1));
        } else {
            out << QString::fromUtf8(QJsonDocument(QJsonArray{a}).toJson(QJsonDocument::Compact));
        }
    }
    return out;
}

// One match statement as the term readers see it: the operator, the right-hand side and what
// follows from them.
struct Match {
    QString op;
    QJsonValue right;
    QString text;       // the statement as nft(8) lists it, for messages
    bool negate;        // op "!="
    bool plainOp;       // "==", "!=" or "in"; only ports also take "<", "<=", ">", ">="
    bool dynamic;       // the right-hand side is a set updated at run time
    QJsonArray values;  // its elements (RuleReader::atoms)
};

// A term over the right-hand side's names (addresses, interfaces, packet types).
Term namesTerm(Term::Type type, const Match& m) {
    Term t;
    t.type = type;
    t.names = namesFrom(m.values);
    t.negate = m.negate;
    t.text = m.text;
    return t;
}

// Protocol numbers of the right-hand side's names; nullopt when one is not a protocol.
std::optional<QList<int>> protocolsFrom(const QJsonArray& values) {
    QList<int> protos;
    for (const QString& n : namesFrom(values)) {
        const int num = protocolNumber(n);
        if (num < 0) return std::nullopt;
        protos << num;
    }
    return protos;
}

// "ip saddr", "ip6 daddr", "ip protocol", "ip6 nexthdr": the family term, then the field's.
QList<Term> ipHeaderTerms(const QString& proto, const QString& field, const Match& m) {
    QList<Term> out{familyTerm(proto == u"ip" ? IpFamily::V4 : IpFamily::V6, proto)};
    if (field == u"saddr" || field == u"daddr") {
        if (!m.plainOp) return out << unknownTerm(m.text);
        return out << namesTerm(field == u"saddr" ? Term::Type::SrcAddr : Term::Type::DstAddr, m);
    }
    if (field == u"protocol" || field == u"nexthdr") {
        const std::optional<QList<int>> protos = protocolsFrom(m.values);
        if (!protos) return out << unknownTerm(m.text);
        if (!m.plainOp) return out << unknownTerm(m.text);
        return out << protocolTerm(*protos, m.negate, m.text);
    }
    return out << unknownTerm(m.text);
}

// "th dport 25", "tcp sport < 1024", "tcp dport { 25, 587 }": a port set or a bound.
Term portTerm(const QString& field, const Match& m) {
    Term t;
    t.type = field == u"dport" ? Term::Type::DstPort : Term::Type::SrcPort;
    t.text = m.text;
    if (m.plainOp) {
        if (!portsFrom(m.values, &t.ports)) return unknownTerm(m.text);
        t.negate = m.negate;
    } else {
        const int v = m.right.isDouble() ? m.right.toInt() : -1;
        if (v < 0) return unknownTerm(m.text);
        if (m.op == u"<")
            t.ports.ranges << qMakePair(0, v - 1);
        else if (m.op == u"<=")
            t.ports.ranges << qMakePair(0, v);
        else if (m.op == u">")
            t.ports.ranges << qMakePair(v + 1, 65535);
        else if (m.op == u">=")
            t.ports.ranges << qMakePair(v, 65535);
        else
            return unknownTerm(m.text);
    }
    if (m.dynamic) t.type = Term::Type::State;  // contents change at run time
    return t;
}

// "th ...", "tcp ...", "udp ...", "sctp ...": the protocol term (not for th), then the field's.
QList<Term> transportTerms(const QString& proto, const QString& field, const Match& m) {
    QList<Term> out;
    if (proto != u"th") out << protocolTerm({protocolNumber(proto)}, false, proto);
    if (proto == u"th" || proto == u"tcp") {
        if (field == u"dport" || field == u"sport") return out << portTerm(field, m);
        // Any other field of the TCP header (flags, checksum, ...), or of whatever transport
        // header th is: unknown. (th with such a field used to yield no term at all, and read()
        // then took the last of none.)
        return out << unknownTerm(m.text);
    }
    return out;  // udp/sctp/... fields: the protocol term already decides for TCP probes
}

// {"payload": {protocol, field}} on the left: by header.
QList<Term> payloadTerms(const QJsonObject& payload, const Match& m) {
    const QString proto = payload.value(u"protocol").toString();
    const QString field = payload.value(u"field").toString();
    if (proto.isEmpty()) return {unknownTerm(m.text)};
    if (proto == u"ip" || proto == u"ip6") return ipHeaderTerms(proto, field, m);
    if (proto == u"th" || proto == u"tcp" || proto == u"udp" || proto == u"sctp" || proto == u"dccp" ||
        proto == u"udplite")
        return transportTerms(proto, field, m);
    // icmp, icmpv6, ah, esp, ...: the header implies the protocol, which is not TCP.
    const int num = protocolNumber(proto == u"icmpv6" ? QStringLiteral("ipv6-icmp") : proto);
    if (num >= 0 && num != kProtoTcp) return {protocolTerm({num}, false, proto)};
    return {unknownTerm(m.text)};
}

// TCP flag bits of a value: numbers or flag names, alone or in a list; *ok false for others.
int tcpFlagBits(const QJsonValue& v, bool* ok) {
    static const QHash<QString, int> kFlags = {{QStringLiteral("fin"), 1},  {QStringLiteral("syn"), 2},
                                               {QStringLiteral("rst"), 4},  {QStringLiteral("psh"), 8},
                                               {QStringLiteral("ack"), 16}, {QStringLiteral("urg"), 32},
                                               {QStringLiteral("ecn"), 64}, {QStringLiteral("cwr"), 128}};
    int b = 0;
    const QJsonArray list = v.isArray() ? v.toArray() : QJsonArray{v};
    for (const QJsonValue& x : list) {
        if (x.isDouble())
            b |= x.toInt();
        else if (kFlags.contains(x.toString()))
            b |= kFlags.value(x.toString());
        else
            *ok = false;
    }
    return b;
}

// {"&": [left, mask]} on the left: only "tcp flags & mask ==|!= value" is understood.
QList<Term> maskedTerms(const QJsonArray& a, const Match& m) {
    const QJsonObject inner = a.at(0).toObject().value(u"payload").toObject();
    if (a.size() == 2 && inner.value(u"protocol").toString() == u"tcp" &&
        inner.value(u"field").toString() == u"flags" && (m.op == u"==" || m.op == u"!=")) {
        bool ok = true;
        Term t;
        t.type = Term::Type::TcpFlags;
        t.flagMask = tcpFlagBits(a.at(1), &ok);
        t.flagValue = tcpFlagBits(m.right, &ok);
        t.negate = m.negate;
        t.text = m.text;
        if (ok) return {protocolTerm({kProtoTcp}, false, QStringLiteral("tcp")), t};
    }
    return {unknownTerm(m.text)};
}

// "meta nfproto ipv4", "meta protocol ip6": one family value; != names the other family.
QList<Term> metaFamilyTerms(const Match& m) {
    const QStringList n = namesFrom(m.values);
    if (n.size() != 1) return {unknownTerm(m.text)};
    const QString v = n.first();
    IpFamily f;
    if (v == u"ipv4" || v == u"ip")
        f = IpFamily::V4;
    else if (v == u"ipv6" || v == u"ip6")
        f = IpFamily::V6;
    else
        return {unknownTerm(m.text)};
    if (m.negate) f = f == IpFamily::V4 ? IpFamily::V6 : IpFamily::V4;
    return {familyTerm(f, m.text)};
}

// {"meta": {key}} on the left.
QList<Term> metaTerms(const QString& key, const Match& m) {
    if (!m.plainOp) return {unknownTerm(m.text)};
    if (key == u"l4proto") {
        const std::optional<QList<int>> protos = protocolsFrom(m.values);
        if (!protos) return {unknownTerm(m.text)};
        return {protocolTerm(*protos, m.negate, m.text)};
    }
    if (key == u"nfproto" || key == u"protocol") return metaFamilyTerms(m);
    if (key == u"iifname" || key == u"iif") return {namesTerm(Term::Type::InInterface, m)};
    if (key == u"pkttype") return {namesTerm(Term::Type::PktType, m)};
    if (key == u"mark" || key == u"secmark" || key == u"skuid" || key == u"skgid" || key == u"cgroup")
        return {textTerm(Term::Type::State, m.text)};  // marks, labels, socket owners: state we cannot see
    return {unknownTerm(m.text)};
}

// {"ct": {key}} on the left.
QList<Term> ctTerms(const QString& key, const Match& m) {
    if (!m.plainOp) return {unknownTerm(m.text)};
    if (key == u"state" || key == u"status") {
        Term t;
        t.type = key == u"state" ? Term::Type::CtState : Term::Type::CtStatus;
        for (const QString& n : namesFrom(m.values)) t.names << n.toLower();
        t.negate = m.negate;
        t.text = m.text;
        return {t};
    }
    if (key == u"mark" || key == u"label")
        return {textTerm(Term::Type::State, m.text)};  // marks, labels, socket owners: state we cannot see
    return {unknownTerm(m.text)};
}

// {"fib": {flags, result}} on the left: address types, and reverse-path checks.
QList<Term> fibTerms(const QJsonObject& f, const Match& m) {
    const QJsonArray flags = f.value(u"flags").toArray();
    if (f.value(u"result").toString() == u"type" && flags.size() == 1 && m.plainOp) {
        Term t;
        t.type = flags.at(0).toString() == u"daddr" ? Term::Type::DstAddrType : Term::Type::SrcAddrType;
        if (flags.at(0).toString() != u"daddr" && flags.at(0).toString() != u"saddr") return {unknownTerm(m.text)};
        for (const QString& n : namesFrom(m.values)) t.names << n.toUpper();
        t.negate = m.negate;
        t.text = m.text;
        return {t};
    }
    // Reverse-path checks (fib saddr . iif oif missing) depend on the client's address.
    if (flags.contains(QJsonValue(QStringLiteral("saddr")))) {
        Term t;
        t.type = Term::Type::SrcAddr;
        t.names << m.text;
        t.text = m.text;
        return {t};
    }
    return {unknownTerm(m.text)};
}

// One match statement: the text and the right-hand side's elements, then by the kind of the
// left-hand expression (payload, masked payload, meta, ct, fib), as nft(8) lists them.
QList<Term> RuleReader::matchTerms(const QString& op, const QJsonValue& left, const QJsonValue& right) const {
    Match m;
    m.op = op;
    m.right = right;
    m.text =
        exprText(left) + (op == u"==" || op == u"in" ? QString() : QLatin1Char(' ') + op) + QLatin1Char(' ') +
        (right.isString() && exprText(left).contains(u"ifname") ? QLatin1Char('"') + right.toString() + QLatin1Char('"')
                                                                : valueText(right));
    m.negate = op == u"!=";
    m.dynamic = false;
    bool tooLarge = false;
    m.values = atoms(right, &m.dynamic, &tooLarge);
    if (tooLarge) return {unknownTerm(m.text + QStringLiteral(" (set too large to read)"))};
    m.plainOp = op == u"==" || op == u"!=" || op == u"in";
    const QJsonObject l = left.toObject();
    if (l.contains(u"payload")) return payloadTerms(l.value(u"payload").toObject(), m);
    if (l.contains(u"&")) return maskedTerms(l.value(u"&").toArray(), m);
    if (l.contains(u"meta")) return metaTerms(l.value(u"meta").toObject().value(u"key").toString(), m);
    if (l.contains(u"ct")) return ctTerms(l.value(u"ct").toObject().value(u"key").toString(), m);
    if (l.contains(u"fib")) return fibTerms(l.value(u"fib").toObject(), m);
    return {unknownTerm(m.text)};
}

bool RuleReader::verdictOf(const QJsonObject& stmt, Verdict* v, QString* target) {
    static const QHash<QString, Verdict> kPlain = {{QStringLiteral("accept"), Verdict::Accept},
                                                   {QStringLiteral("drop"), Verdict::Drop},
                                                   {QStringLiteral("reject"), Verdict::Reject},
                                                   {QStringLiteral("return"), Verdict::Return},
                                                   {QStringLiteral("continue"), Verdict::None}};
    for (auto it = kPlain.cbegin(); it != kPlain.cend(); ++it) {
        if (stmt.contains(it.key())) {
            *v = it.value();
            return true;
        }
    }
    if (stmt.contains(u"jump") || stmt.contains(u"goto")) {
        const bool jump = stmt.contains(u"jump");
        *v = jump ? Verdict::Jump : Verdict::Goto;
        *target = stmt.value(jump ? u"jump" : u"goto").toObject().value(u"target").toString();
        return true;
    }
    return false;
}

// A verdict as nft(8) lists it: "accept", "jump x", "reject with icmpx admin-prohibited".
QString verdictText(const QJsonObject& stmt, Verdict v, const QString& target) {
    QString vt = target.isEmpty() ? toString(v) : toString(v) + QLatin1Char(' ') + target;
    const QJsonObject rej = stmt.value(u"reject").toObject();
    if (!rej.isEmpty())  // "reject with icmpx admin-prohibited", "reject with tcp reset"
        vt += QStringLiteral(" with ") + rej.value(u"type").toString() +
              (rej.contains(u"expr") ? QLatin1Char(' ') + scalarText(rej.value(u"expr")) : QString());
    return vt;
}

// limit, quota, ct count, meter, connlimit: "over" limits (inv) match only clients above the
// rate; the others match typical clients.
Term rateTerm(const QString& kind, const QJsonObject& stmt) {
    const QJsonObject body = stmt.value(kind).toObject();
    const QJsonObject inner = kind == u"meter" ? body.value(u"stmt").toObject().value(u"limit").toObject() : body;
    Term t;
    t.type = Term::Type::Rate;
    t.typicallyMatches = !inner.value(u"inv").toBool();
    t.text = inner.value(u"inv").toBool() ? kind + QStringLiteral(" over") : kind;
    if (kind == u"limit")
        t.text += QStringLiteral(" rate %1/%2").arg(inner.value(u"rate").toInt()).arg(inner.value(u"per").toString());
    return t;
}

// A statement that is neither a match, a verdict nor a vmap, by its kind: rate terms, NAT
// and queue verdicts, xt, actions without effect on the verdict, and unknown ones.
void readAction(const QString& kind, const QJsonObject& stmt, RuleDraft* d) {
    if (kind == u"limit" || kind == u"quota" || kind == u"ct count" || kind == u"meter" || kind == u"connlimit") {
        const Term t = rateTerm(kind, stmt);
        d->base.terms << t;
        d->text << t.text;
    } else if (kind == u"dnat" || kind == u"redirect" || kind == u"tproxy") {
        const QJsonObject nat = stmt.value(kind).toObject();
        d->base.verdict = Verdict::Redirect;
        d->base.target = nat.value(u"addr").toString();
        if (nat.contains(u"port")) d->base.target += QLatin1Char(':') + scalarText(nat.value(u"port"));
        if (d->base.target.isEmpty()) d->base.target = kind;
        d->text << kind + (nat.isEmpty() ? QString() : QStringLiteral(" to ") + d->base.target);
    } else if (kind == u"queue") {
        d->base.verdict = Verdict::Unknown;
        d->base.target = QStringLiteral("queue to user space");
        d->text << kind;
    } else if (kind == u"xt") {
        const QJsonObject x = stmt.value(kind).toObject();
        const QString name = x.value(u"name").toString();
        if (x.value(u"type").toString() == u"target") {
            d->base.verdict = Verdict::Unknown;
            d->base.target = QStringLiteral("xt target ") + name;
        } else {
            d->base.terms << unknownTerm(QStringLiteral("xt match ") + name);
        }
        d->text << QStringLiteral("xt ") + name;
    } else if (kind == u"counter" || kind == u"log" || kind == u"mangle" || kind == u"notrack" || kind == u"set" ||
               kind == u"map" || kind == u"snat" || kind == u"masquerade" || kind == u"ct helper" ||
               kind == u"ct timeout" || kind == u"ct expectation" || kind == u"secmark" || kind == u"dup" ||
               kind == u"flow") {
        if (kind != u"counter") d->text << kind;  // no effect on the verdict
    } else {
        d->base.terms << unknownTerm(kind);
        d->text << kind;
    }
}

// {"vmap": {key, data}}: one rule per element, matching the key against the element's value.
void RuleReader::readVmap(const QJsonObject& vm, RuleDraft* d) const {
    const QJsonValue key = vm.value(u"key");
    const QJsonValue data = vm.value(u"data");
    d->text << exprText(key) + QStringLiteral(" vmap ") + valueText(data);
    QJsonArray pairs;
    if (data.isString() && data.toString().startsWith(QLatin1Char('@')))
        pairs = m_sets.elements.value(setKey(m_family, m_table, data.toString().mid(1)));
    else
        pairs = data.toObject().value(u"set").toArray();
    for (const QJsonValue& pv : pairs) {
        const QJsonArray pair = pv.toArray();
        Rule r;
        r.terms = matchTerms(QStringLiteral("=="), key,
                             pair.at(0).isObject() && pair.at(0).toObject().contains(u"elem")
                                 ? pair.at(0).toObject().value(u"elem").toObject().value(u"val")
                                 : pair.at(0));
        if (!verdictOf(pair.at(1).toObject(), &r.verdict, &r.target)) r.verdict = Verdict::Unknown;
        d->expanded << r;
    }
}

// One pass over a rule's statements in order (matches, verdicts, vmaps, actions); a vmap
// forks the rule into one per element, each with the terms before it.
QList<Rule> RuleReader::read(const QJsonObject& rule) const {
    RuleDraft d;
    d.base.handle = QString::number(rule.value(u"handle").toInteger());
    d.base.comment = rule.value(u"comment").toString();
    for (const QJsonValue& sv : rule.value(u"expr").toArray()) {
        const QJsonObject stmt = sv.toObject();
        if (stmt.contains(u"match")) {
            const QJsonObject m = stmt.value(u"match").toObject();
            const QList<Term> terms = matchTerms(m.value(u"op").toString(), m.value(u"left"), m.value(u"right"));
            d.base.terms << terms;
            d.text << terms.last().text;
            continue;
        }
        Verdict v = Verdict::None;
        QString target;
        if (verdictOf(stmt, &v, &target)) {
            d.base.verdict = v;
            d.base.target = target;
            d.text << verdictText(stmt, v, target);
            continue;
        }
        if (stmt.contains(u"vmap")) {
            readVmap(stmt.value(u"vmap").toObject(), &d);
            continue;
        }
        readAction(stmt.keys().value(0), stmt, &d);
    }
    d.base.text = d.text.join(QLatin1Char(' '));
    if (!d.base.comment.isEmpty()) d.base.text += QStringLiteral(" comment \"%1\"").arg(d.base.comment);
    if (d.expanded.isEmpty()) return {d.base};
    // vmap: each element is a rule with the preceding terms, checked in order.
    QList<Rule> out;
    for (Rule r : d.expanded) {
        r.terms = d.base.terms + r.terms;
        r.handle = d.base.handle;
        r.comment = d.base.comment;
        r.text = d.base.text;
        out << r;
    }
    return out;
}

Hook hookFrom(const QString& name) {
    if (name == u"prerouting") return Hook::Prerouting;
    if (name == u"input") return Hook::Input;
    if (name == u"forward") return Hook::Forward;
    if (name == u"output") return Hook::Output;
    if (name == u"postrouting") return Hook::Postrouting;
    if (name == u"ingress") return Hook::Ingress;
    return Hook::Other;
}

Result<QJsonArray> topArray(const QByteArray& json) {
    if (json.size() > kMaxNftJsonBytes)
        return Result<QJsonArray>::fail(QStringLiteral("nft JSON output larger than 32 MiB"));
    QJsonParseError err{};
    const QJsonDocument doc = QJsonDocument::fromJson(json, &err);
    if (err.error != QJsonParseError::NoError)
        return Result<QJsonArray>::fail(
            QStringLiteral("nft JSON: %1 at offset %2").arg(err.errorString()).arg(err.offset));
    if (!doc.isObject() || !doc.object().value(u"nftables").isArray())
        return Result<QJsonArray>::fail(QStringLiteral("nft JSON: no \"nftables\" array"));
    return doc.object().value(u"nftables").toArray();
}

}  // namespace

Result<Ruleset> parseNftJson(const QByteArray& json, const QSet<QString>& skipTables) {
    const Result<QJsonArray> top = topArray(json);
    if (!top) return top.error();
    TableSets sets;
    Ruleset out;
    QHash<QString, int> chainIndex;  // "family table chain" -> index in out.chains
    auto skipped = [&](const QJsonObject& o) {
        return skipTables.contains(o.value(u"family").toString() + QLatin1Char(' ') + o.value(u"table").toString());
    };
    // Sets and chains first: rules may precede nothing, but sets are listed before use anyway.
    for (const QJsonValue& item : *top) {
        const QJsonObject obj = item.toObject();
        for (const char* kind : {"set", "map"}) {
            const QJsonObject s = obj.value(QLatin1String(kind)).toObject();
            if (s.isEmpty() || skipped(s)) continue;
            const QString key =
                setKey(s.value(u"family").toString(), s.value(u"table").toString(), s.value(u"name").toString());
            sets.elements.insert(key, s.value(u"elem").toArray());
            const QJsonArray flags = s.value(u"flags").toArray();
            sets.dynamic.insert(key, flags.contains(QJsonValue(QStringLiteral("dynamic"))) || s.contains(u"timeout"));
        }
        const QJsonObject c = obj.value(u"chain").toObject();
        if (c.isEmpty() || skipped(c)) continue;
        Chain chain;
        chain.backend = Backend::Nftables;
        chain.family = c.value(u"family").toString();
        chain.table = c.value(u"table").toString();
        chain.name = c.value(u"name").toString();
        if (c.contains(u"hook")) {
            chain.base = true;
            chain.hook = hookFrom(c.value(u"hook").toString());
            chain.type = c.value(u"type").toString();
            chain.priority = c.value(u"prio").toInt();
            chain.policy = c.value(u"policy").toString() == u"drop" ? Verdict::Drop : Verdict::Accept;
        }
        chainIndex.insert(chain.family + QLatin1Char(' ') + chain.table + QLatin1Char(' ') + chain.name,
                          int(out.chains.size()));
        out.chains << chain;
    }
    for (const QJsonValue& item : *top) {
        const QJsonObject r = item.toObject().value(u"rule").toObject();
        if (r.isEmpty() || skipped(r)) continue;
        const QString key = r.value(u"family").toString() + QLatin1Char(' ') + r.value(u"table").toString() +
                            QLatin1Char(' ') + r.value(u"chain").toString();
        const auto it = chainIndex.constFind(key);
        if (it == chainIndex.cend()) {
            out.notes << QStringLiteral("rule handle %1 names an unknown chain %2")
                             .arg(r.value(u"handle").toInteger())
                             .arg(key);
            continue;
        }
        const RuleReader reader(sets, r.value(u"family").toString(), r.value(u"table").toString());
        out.chains[*it].rules << reader.read(r);
    }
    return out;
}

}  // namespace postern::firewall
