// evaluate.cpp — see evaluate.h.
#include "evaluate.h"

#include <QHostAddress>
#include <algorithm>

namespace postern::firewall {

namespace {

constexpr int kNoEntry = -1;  // the top-level rule is filled in by the base-chain walk
constexpr qsizetype kShownExceptions = 5;

enum class Match { No, Yes, Maybe };

struct TermMatch {
    Match match = Match::No;
    bool typical = false;  // Maybe: does the typical remote client match?
    ConditionKind kind = ConditionKind::Unknown;
};

Match yesIf(bool b, bool negate) {
    return (b != negate) ? Match::Yes : Match::No;
}

TermMatch maybe(ConditionKind kind, bool typical = false) {
    return {Match::Maybe, typical, kind};
}

bool interfaceMatches(const QString& pattern, const QString& iif) {
    if (pattern.endsWith(QLatin1Char('*')) || pattern.endsWith(QLatin1Char('+')))
        return iif.startsWith(pattern.chopped(1));
    return pattern == iif;
}

// A prefix or address that covers everything ("0.0.0.0/0", "::/0").
bool coversAll(const QString& a) {
    return a == u"0.0.0.0/0" || a == u"::/0" || a == u"0/0";
}

// Multicast or broadcast: never the destination of a unicast connection to us.
bool notUnicast(const QString& a) {
    const QString withLength =
        a.contains(QLatin1Char('/'))
            ? a
            : a + (a.contains(QLatin1Char(':')) ? QStringLiteral("/128") : QStringLiteral("/32"));
    const auto subnet = QHostAddress::parseSubnet(withLength);
    if (subnet.first.isNull()) return false;
    const QHostAddress& h = subnet.first;
    if (h.protocol() == QAbstractSocket::IPv4Protocol) {
        if (h == QHostAddress(QStringLiteral("255.255.255.255")) && subnet.second == 32) return true;
        return subnet.second >= 4 && h.isInSubnet(QHostAddress(QStringLiteral("224.0.0.0")), 4);
    }
    return subnet.second >= 8 && h.isInSubnet(QHostAddress(QStringLiteral("ff00::")), 8);
}

TermMatch matchTerm(const Term& t, const Probe& p) {
    using T = Term::Type;
    switch (t.type) {
        case T::Protocol:
            return {yesIf(t.protocols.contains(kProtoTcp), t.negate)};
        case T::DstPort:
            return {yesIf(t.ports.contains(p.port), t.negate)};
        case T::SrcPort:
            return maybe(ConditionKind::Source);
        case T::Family:
            return {yesIf(t.family == p.family, t.negate)};
        case T::InInterface: {
            // A remote client never arrives on loopback; other names depend on the unknown interface.
            if (p.iif.isEmpty() && t.names == QStringList{QStringLiteral("lo")}) return {yesIf(false, t.negate)};
            if (p.iif.isEmpty()) return maybe(ConditionKind::Interface);
            bool any = false;
            for (const QString& n : t.names) any = any || interfaceMatches(n, p.iif);
            return {yesIf(any, t.negate)};
        }
        case T::CtState:
            return {yesIf(t.names.contains(QStringLiteral("new")), t.negate)};
        case T::CtStatus:
            return {yesIf(false, t.negate)};  // a fresh, not NATed connection has no status bits
        case T::SrcAddr: {
            for (const QString& n : t.names)
                if (coversAll(n)) return {yesIf(true, t.negate)};
            return maybe(ConditionKind::Source);
        }
        case T::DstAddr: {
            bool allNotUnicast = !t.names.isEmpty();
            for (const QString& n : t.names) {
                if (coversAll(n)) return {yesIf(true, t.negate)};
                allNotUnicast = allNotUnicast && notUnicast(n);
            }
            if (allNotUnicast) return {yesIf(false, t.negate)};
            return maybe(ConditionKind::Destination);
        }
        case T::TcpFlags:
            return {yesIf((0x02 & t.flagMask) == t.flagValue, t.negate)};  // a SYN
        case T::PktType:
            return {yesIf(t.names.contains(QStringLiteral("host")) || t.names.contains(QStringLiteral("unicast")),
                          t.negate)};
        case T::DstAddrType:
            return {yesIf(t.names.contains(QStringLiteral("LOCAL")), t.negate)};
        case T::SrcAddrType:
            return {yesIf(t.names.contains(QStringLiteral("UNICAST")), t.negate)};
        case T::Ip6Header:
            return {yesIf(false, t.negate)};  // a plain TCP SYN carries no extension header
        case T::Rate:
            return maybe(ConditionKind::Rate, t.typicallyMatches != t.negate);
        case T::State:
            return maybe(ConditionKind::State);
        case T::Unknown:
            return maybe(ConditionKind::Unknown);
    }
    return maybe(ConditionKind::Unknown);
}

int weight(ConditionKind k) {
    switch (k) {
        case ConditionKind::Unknown:
            return 5;
        case ConditionKind::State:
            return 4;
        case ConditionKind::Rate:
            return 3;
        case ConditionKind::Interface:
            return 2;
        case ConditionKind::Destination:
            return 1;
        case ConditionKind::Source:
            return 0;
    }
    return 5;
}

struct RuleMatch {
    Match match = Match::No;
    bool genericMatches = false;
    QList<Condition> conditions;  // for the branch the generic client does not take
};

RuleMatch matchRule(const Chain& chain, int index, const Probe& p) {
    const Rule& rule = chain.rules.at(index);
    RuleMatch out;
    QStringList maybeTexts;
    ConditionKind strongest = ConditionKind::Source;
    bool allTypical = true;
    bool anyMaybe = false;
    for (const Term& t : rule.terms) {
        const TermMatch m = matchTerm(t, p);
        if (m.match == Match::No) return out;
        if (m.match == Match::Maybe) {
            anyMaybe = true;
            allTypical = allTypical && m.typical;
            maybeTexts << t.text;
            if (weight(m.kind) > weight(strongest)) strongest = m.kind;
        }
    }
    if (!anyMaybe) {
        out.match = Match::Yes;
        return out;
    }
    out.match = Match::Maybe;
    out.genericMatches = allTypical;
    const QString where = describeRule(chain, index);
    const QString what = maybeTexts.join(QStringLiteral(" and "));
    // When the typical client matches (a rate limit not exceeded), the other branch is "over the limit".
    out.conditions << Condition{strongest, (allTypical ? QStringLiteral("the client exceeds %1").arg(what) : what) +
                                               QStringLiteral(" [") + where + QLatin1Char(']')};
    return out;
}

bool isAccepted(Verdict v) {
    return v == Verdict::Accept;
}

}  // namespace

QString toString(PortStatus s) {
    switch (s) {
        case PortStatus::Open:
            return QStringLiteral("open");
        case PortStatus::Blocked:
            return QStringLiteral("blocked");
        case PortStatus::Partial:
            return QStringLiteral("partial");
        case PortStatus::Unknown:
            return QStringLiteral("unknown");
    }
    return {};
}

QString describeRule(const Chain& chain, int rule) {
    if (rule < 0) return QStringLiteral("policy %1 of %2").arg(toString(chain.policy), chain.id());
    const Rule& r = chain.rules.at(rule);
    if (chain.backend == Backend::Nftables) return QStringLiteral("%1 handle %2: %3").arg(chain.id(), r.handle, r.text);
    return QStringLiteral("%1 rule %2: %3").arg(chain.id(), r.handle, r.text);
}

struct Evaluator::Outcome {
    Verdict verdict = Verdict::Return;  // Return: fell off the end or returned
    const Chain* chain = nullptr;
    int rule = -1;
    QString reason;
    QList<Condition> conds;
    int entry = -1;  // top-level rule of the base chain
};

Evaluator::Evaluator(const Ruleset& ruleset) : m_ruleset(ruleset) {}

const Chain* Evaluator::findChain(const Chain& from, const QString& name) const {
    return m_ruleset.find(from.backend, from.family, from.table, name);
}

QList<Evaluator::Outcome> Evaluator::walk(const Chain& chain, int from, const Probe& probe,
                                          const QList<Condition>& startConds, int depth, int* budget) const {
    QList<Outcome> outs;
    // Every chain walk (a jump, or the rest of a chain after a jump returns) costs one unit.
    if (--*budget <= 0) {
        outs << Outcome{
            Verdict::Unknown, &chain, -1, QStringLiteral("the ruleset has too many conditional jumps to follow"),
            startConds,       -1};
        return outs;
    }
    QList<Condition> conds = startConds;
    for (int i = from; i < chain.rules.size(); ++i) {
        const Rule& rule = chain.rules.at(i);
        if (rule.verdict == Verdict::None) continue;  // counters, logs: no effect on the verdict
        const RuleMatch m = matchRule(chain, i, probe);
        if (m.match == Match::No) continue;
        QList<Condition> matched = conds;
        if (m.match == Match::Maybe && !m.genericMatches) matched << m.conditions;
        QList<Outcome> here;
        switch (rule.verdict) {
            case Verdict::Accept:
            case Verdict::Drop:
            case Verdict::Reject:
            case Verdict::Redirect:
                here << Outcome{rule.verdict, &chain, i, rule.target, matched, kNoEntry};
                break;
            case Verdict::Unknown:
                here << Outcome{
                    Verdict::Unknown, &chain,  i, QStringLiteral("verdict '%1' cannot be followed").arg(rule.target),
                    matched,          kNoEntry};
                break;
            case Verdict::Return:
                here << Outcome{Verdict::Return, &chain, i, {}, matched, kNoEntry};
                break;
            case Verdict::Jump:
            case Verdict::Goto: {
                const Chain* target = findChain(chain, rule.target);
                if (!target) {
                    here << Outcome{Verdict::Unknown,
                                    &chain,
                                    i,
                                    QStringLiteral("'%1' is neither a chain nor a target we know").arg(rule.target),
                                    matched,
                                    kNoEntry};
                    break;
                }
                if (depth + 1 > kMaxJumpDepth) {
                    here << Outcome{
                        Verdict::Unknown, &chain,  i, QStringLiteral("jumps nested deeper than %1").arg(kMaxJumpDepth),
                        matched,          kNoEntry};
                    break;
                }
                for (const Outcome& sub : walk(*target, 0, probe, matched, depth + 1, budget)) {
                    if (sub.verdict != Verdict::Return) {
                        here << sub;
                    } else if (rule.verdict == Verdict::Goto) {
                        here << Outcome{Verdict::Return, &chain, i, {}, sub.conds, kNoEntry};
                    } else {
                        here << walk(chain, i + 1, probe, sub.conds, depth, budget);
                    }
                }
                break;
            }
            case Verdict::None:
                break;
        }
        if (depth == 0)
            for (Outcome& o : here)
                if (o.entry < 0) o.entry = i;
        outs << here;
        if (m.match == Match::Yes) return outs;
        if (m.genericMatches) {
            // The generic client took the matching branch above; the rest of the
            // chain is reached only by clients for whom the term does not hold.
            conds << m.conditions;
        }
    }
    outs << Outcome{Verdict::Return, &chain, -1, {}, conds, -1};
    return outs;
}

namespace {

// One way through the base chains: the conditions it assumed, and where it was decided.
struct Path {
    QList<Condition> conds;
    bool done = false;
    Decision decision;
};

// The base chains a new inbound TCP connection of `family` passes, in hook and priority order.
QList<const Chain*> inputBaseChains(const Ruleset& ruleset, IpFamily family) {
    QList<const Chain*> bases;
    for (const Chain& c : ruleset.chains) {
        if (!c.base || !c.appliesTo(family)) continue;
        if (c.hook != Hook::Prerouting && c.hook != Hook::Input) continue;
        if (c.type != u"filter" && c.type != u"nat") continue;
        bases << &c;
    }
    std::stable_sort(bases.begin(), bases.end(), [](const Chain* a, const Chain* b) {
        const int ha = a->hook == Hook::Prerouting ? 0 : 1;
        const int hb = b->hook == Hook::Prerouting ? 0 : 1;
        if (ha != hb) return ha < hb;
        return a->priority < b->priority;
    });
    return bases;
}

// The status that the generic path's verdict gives.
void setStatusFromDecision(ProbeResult& result) {
    switch (result.decision.verdict) {
        case Verdict::Accept:
            result.status = PortStatus::Open;
            break;
        case Verdict::Drop:
        case Verdict::Reject:
            result.status = PortStatus::Blocked;
            break;
        case Verdict::Redirect:
            result.status = PortStatus::Unknown;
            result.reason = QStringLiteral("redirected to %1 by %2; where it goes from there is not evaluated")
                                .arg(result.decision.reason, result.decision.by);
            break;
        default:
            result.status = PortStatus::Unknown;
            result.reason = QStringLiteral("%1 (%2)").arg(result.decision.reason, result.decision.by);
            break;
    }
}

// Paths whose acceptance differs from the generic one become exceptions; one that depends on
// something we cannot evaluate makes the whole answer Unknown.
void addExceptions(ProbeResult& result, const QList<Path>& paths) {
    QStringList seen;
    for (const Path& p : paths) {
        if (p.conds.isEmpty()) continue;
        if (isAccepted(p.decision.verdict) == isAccepted(result.decision.verdict) &&
            p.decision.verdict != Verdict::Unknown && p.decision.verdict != Verdict::Redirect)
            continue;
        QStringList texts;
        for (const Condition& c : p.conds) texts << c.text;
        const QString key = toString(p.decision.verdict) + p.decision.by + texts.join(QLatin1Char('|'));
        if (seen.contains(key)) continue;
        seen << key;
        if (result.exceptions.size() < kMaxExceptions)
            result.exceptions << p.decision;
        else
            ++result.moreExceptions;
        if (result.status == PortStatus::Unknown) continue;
        for (const Condition& c : p.conds) {
            if (c.kind == ConditionKind::Unknown || c.kind == ConditionKind::State) {
                result.status = PortStatus::Unknown;
                result.reason = QStringLiteral("the verdict depends on %1, which cannot be evaluated").arg(c.text);
                break;
            }
        }
    }
}

}  // namespace

ProbeResult Evaluator::evaluate(const Probe& probe) const {
    ProbeResult result;
    result.probe = probe;
    const QList<const Chain*> bases = inputBaseChains(m_ruleset, probe.family);
    QList<Path> paths{Path{}};
    int budget = kMaxWalks;
    for (const Chain* c : bases) {
        QList<Path> next;
        for (const Path& p : paths) {
            if (p.done) {
                next << p;
                continue;
            }
            for (const Outcome& o : walk(*c, 0, probe, p.conds, 0, &budget)) {
                Path q = p;
                q.conds = o.conds;
                Verdict v = o.verdict;
                const Chain* where = o.chain;
                int rule = o.rule;
                if (v == Verdict::Return) {  // the base chain's policy decides
                    v = c->policy;
                    where = c;
                    rule = -1;
                }
                const QString by = describeRule(*where, rule);
                if (v == Verdict::Accept) {
                    if (c->type == u"filter") q.decision.acceptedBy << by;  // NAT chains do not filter
                } else {
                    q.done = true;
                    Decision& d = q.decision;
                    d.verdict = v;
                    d.by = by;
                    d.reason = o.reason;
                    d.chain = where;
                    d.rule = rule;
                    d.baseChain = c;
                    d.baseRule = rule < 0 && where == c ? -1 : o.entry;
                }
                next << q;
            }
        }
        paths = next;
        if (paths.size() > kMaxPaths || budget <= 0) {
            result.status = PortStatus::Unknown;
            result.reason = QStringLiteral("the ruleset has too many conditional rules to follow");
            return result;
        }
    }
    // Many conditional drops (fail2ban bans, blocklists) each make a path: they are
    // exceptions for those sources only and are reported, up to kMaxExceptions.
    for (Path& p : paths) {
        p.decision.conditions = p.conds;
        if (!p.done) {
            p.decision.verdict = Verdict::Accept;
            p.decision.by = p.decision.acceptedBy.isEmpty()
                                ? QStringLiteral("no %1 filter chain on the input path").arg(toString(probe.family))
                                : p.decision.acceptedBy.join(QStringLiteral("; "));
        }
    }
    const auto generic = std::find_if(paths.cbegin(), paths.cend(), [](const Path& p) { return p.conds.isEmpty(); });
    if (generic == paths.cend()) {
        result.status = PortStatus::Unknown;
        result.reason = QStringLiteral("no unconditional path through the ruleset");
        return result;
    }
    result.decision = generic->decision;
    setStatusFromDecision(result);
    addExceptions(result, paths);
    return result;
}

QString PortResult::summary() const {
    auto one = [](const ProbeResult& r) {
        QString s;
        switch (r.status) {
            case PortStatus::Open:
                s = r.decision.acceptedBy.isEmpty() ? QStringLiteral("accepted: %1").arg(r.decision.by)
                                                    : QStringLiteral("accepted by %1").arg(r.decision.by);
                break;
            case PortStatus::Blocked:
                s = QStringLiteral("%1 by %2")
                        .arg(r.decision.verdict == Verdict::Reject ? QStringLiteral("rejected")
                                                                   : QStringLiteral("dropped"),
                             r.decision.by);
                break;
            default:
                return r.reason;  // exceptions of an unknown verdict add nothing
        }
        for (qsizetype n = 0; n < r.exceptions.size(); ++n) {
            const Decision& e = r.exceptions.at(n);
            if (n == kShownExceptions) {
                s += QStringLiteral("; and %1 more exceptions (see --json)")
                         .arg(r.exceptions.size() - n + r.moreExceptions);
                break;
            }
            QStringList texts;
            for (const Condition& c : e.conditions) texts << c.text;
            QStringList by;
            for (const QString& a : e.acceptedBy)
                if (!a.startsWith(u"policy ")) by << a;
            const QString decider =
                e.verdict == Verdict::Accept ? (by.isEmpty() ? e.by : by.join(QStringLiteral("; "))) : e.by;
            const QString verb = e.verdict == Verdict::Accept     ? QStringLiteral("accepted")
                                 : e.verdict == Verdict::Drop     ? QStringLiteral("dropped")
                                 : e.verdict == Verdict::Reject   ? QStringLiteral("rejected")
                                 : e.verdict == Verdict::Redirect ? QStringLiteral("redirected")
                                                                  : QStringLiteral("unknown");
            if (texts.size() == 1 && texts.first().contains(decider)) {
                s += QStringLiteral("; %1 when %2").arg(verb, texts.first());
                continue;
            }
            s += QStringLiteral("; %1 when %2 (by %3)").arg(verb, texts.join(QStringLiteral(" and ")), decider);
        }
        return s;
    };
    if (perInterface.size() == 1 || status != PortStatus::Partial)
        return perInterface.isEmpty() ? QString() : one(perInterface.first());
    QStringList parts;
    for (const ProbeResult& r : perInterface) parts << QStringLiteral("on %1: %2").arg(r.probe.iif, one(r));
    return parts.join(QStringLiteral(" | "));
}

QList<PortResult> evaluatePorts(const Ruleset& ruleset, const QList<quint16>& ports, const QList<IpFamily>& families,
                                const QStringList& interfaces) {
    const Evaluator ev(ruleset);
    QList<PortResult> out;
    const QStringList ifs = interfaces.isEmpty() ? QStringList{QString()} : interfaces;
    for (const quint16 port : ports) {
        for (const IpFamily fam : families) {
            PortResult pr;
            pr.port = port;
            pr.family = fam;
            for (const QString& iif : ifs) pr.perInterface << ev.evaluate(Probe{fam, port, iif});
            bool allSame = true;
            bool anyUnknown = false;
            bool anyOpen = false;
            for (const ProbeResult& r : pr.perInterface) {
                allSame = allSame && r.status == pr.perInterface.first().status &&
                          r.decision.by == pr.perInterface.first().decision.by;
                anyUnknown = anyUnknown || r.status == PortStatus::Unknown;
                anyOpen = anyOpen || r.status == PortStatus::Open;
            }
            if (allSame) {
                pr.status = pr.perInterface.first().status;
                pr.perInterface = {pr.perInterface.first()};
            } else if (anyUnknown) {
                pr.status = PortStatus::Unknown;
            } else if (anyOpen) {
                pr.status = pr.perInterface.first().status == PortStatus::Open &&
                                    std::all_of(pr.perInterface.cbegin(), pr.perInterface.cend(),
                                                [](const ProbeResult& r) { return r.status == PortStatus::Open; })
                                ? PortStatus::Open
                                : PortStatus::Partial;
            } else {
                pr.status = PortStatus::Blocked;
            }
            out << pr;
        }
    }
    return out;
}

}  // namespace postern::firewall
