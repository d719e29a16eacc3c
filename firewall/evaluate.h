// evaluate.h — would an inbound TCP connection to a port be accepted?
//
// Interface: Evaluator(ruleset).evaluate(probe) walks, for a new TCP
// connection (SYN, conntrack state "new") from a remote unicast client to a
// local address on probe.port, arriving on probe.iif, every base chain on the
// prerouting and input hooks that applies to the probe's family, in hook and
// priority order. Within a chain rules are checked in order; jump, goto and
// return are followed; an accept ends the chain and the packet moves on to the
// next base chain; drop and reject end everything. The chain policy decides
// when no rule does.
//
// Terms that depend on what we cannot know (the client's address, a rate
// limit, a packet mark, an unknown expression) fork the walk: one branch
// where the term matches and one where it does not. The branch a typical
// remote client takes (rate limits not exceeded, no special source) is the
// "generic" path; its verdict gives the status, and branches whose verdict
// differs become exceptions ("accepted only from 10.0.0.0/8"). When a
// branch that differs depends on a mark or an expression we cannot read,
// the status is Unknown with that reason: never a guessed "open".
//
// evaluatePorts() does this per port and family for each given interface and
// merges the answers (Partial when interfaces disagree).
//
// Security: pure computation on the model. Limits: kMaxJumpDepth (64) nested
// jumps, kMaxWalks (20000) chain walks and kMaxPaths (65536) branches per
// probe; beyond them the answer is Unknown with the reason. At most
// kMaxExceptions (256) exceptions are kept (the rest are counted). Standards: netfilter hook and verdict semantics
// (nft(8) "CHAINS", "VERDICT STATEMENT"; iptables(8) "TARGETS").
#pragma once

#include "model.h"

#include <QList>
#include <QString>

namespace postern::firewall {

inline constexpr int kMaxJumpDepth = 64;
inline constexpr int kMaxWalks = 20000;
inline constexpr int kMaxPaths = 65536;
inline constexpr qsizetype kMaxExceptions = 256;

struct Probe {
    IpFamily family = IpFamily::V4;
    quint16 port = 0;
    QString iif;  // empty: the interface is not known
};

enum class ConditionKind { Source, Destination, Interface, Rate, State, Unknown };

struct Condition {
    ConditionKind kind = ConditionKind::Unknown;
    QString text;  // "ip saddr 10.0.0.0/8 (nftables inet filter input handle 7)"
};

// Where a path was decided.
struct Decision {
    Verdict verdict = Verdict::Accept;  // Accept, Drop, Reject, Redirect or Unknown
    QString by;                         // the deciding rule or policy, for people
    QString reason;                     // for Unknown and Redirect: why / where to
    const Chain* chain = nullptr;       // chain of the deciding rule (or policy)
    int rule = -1;                      // index in chain->rules; -1 = the chain's policy
    const Chain* baseChain = nullptr;   // base chain the walk started in
    int baseRule = -1;                  // top-level rule in baseChain that led there; -1 = policy
    QList<Condition> conditions;        // what must hold for this path; empty = generic client
    QStringList acceptedBy;             // for Accept: the accepting rule or policy in each base chain
};

enum class PortStatus { Open, Blocked, Partial, Unknown };
QString toString(PortStatus s);

struct ProbeResult {
    Probe probe;
    PortStatus status = PortStatus::Unknown;
    Decision decision;           // the generic path
    QList<Decision> exceptions;  // paths whose acceptance differs from the generic one
    int moreExceptions = 0;      // beyond kMaxExceptions, counted only
    QString reason;              // for Unknown
};

struct PortResult {
    quint16 port = 0;
    IpFamily family = IpFamily::V4;
    PortStatus status = PortStatus::Unknown;
    QList<ProbeResult> perInterface;  // one per interface (one with an empty iif when none were given)
    // One line for people: "open: accepted by ...", "blocked by ...", "unknown: ...".
    QString summary() const;
};

class Evaluator {
public:
    explicit Evaluator(const Ruleset& ruleset);
    ProbeResult evaluate(const Probe& probe) const;

private:
    struct Outcome;
    QList<Outcome> walk(const Chain& chain, int from, const Probe& probe, const QList<Condition>& conds, int depth,
                        int* budget) const;
    const Chain* findChain(const Chain& from, const QString& name) const;

    const Ruleset& m_ruleset;
};

QList<PortResult> evaluatePorts(const Ruleset& ruleset, const QList<quint16>& ports, const QList<IpFamily>& families,
                                const QStringList& interfaces);

// "nftables inet filter input handle 7: tcp dport 25 drop" / "policy drop of nftables inet filter input".
QString describeRule(const Chain& chain, int rule);

}  // namespace postern::firewall
