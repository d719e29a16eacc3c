// model.h — a backend-neutral picture of the packet filter's input path.
//
// The nftables JSON reader (nft_json.h) and the iptables-save reader
// (iptables_save.h) both translate what they read into this model; the
// evaluator (evaluate.h) walks it for one probe packet at a time. A rule is a
// list of match terms plus one verdict. Terms are kept symbolic (ports, names,
// addresses as text) so the evaluator decides per packet whether each term
// matches: yes, no, or "maybe" (it depends on something we cannot know, such
// as the client's source address or a rate limit).
//
// Security: the model holds text taken from root-only tool output; it is only
// printed and compared, never executed. Rule text is shown verbatim so an
// operator can find the rule in their own configuration.
// Limits: none here; the readers cap what they accept.
// Standards: IANA protocol numbers (tcp = 6).
#pragma once

#include <QList>
#include <QPair>
#include <QString>
#include <QStringList>

namespace postern::firewall {

enum class IpFamily { V4, V6 };
QString toString(IpFamily f);

// Who filters: the kernel tables (nftables, iptables over nf_tables or legacy) and the
// managers that keep their own configuration on top of them (ufw, firewalld).
enum class Backend { Nftables, IptablesNft, IptablesLegacy, Ufw, Firewalld };
QString toString(Backend b);  // "nftables", "iptables-nft", "iptables-legacy", "ufw", "firewalld"
bool isIptables(Backend b);

inline constexpr int kProtoTcp = 6;

// Inclusive port ranges.
struct PortSet {
    QList<QPair<int, int>> ranges;
    bool contains(int port) const;
    bool isEmpty() const { return ranges.isEmpty(); }
    QString toString() const;
};

struct Term {
    enum class Type {
        Protocol,     // protocols: layer-4 protocol numbers
        DstPort,      // ports
        SrcPort,      // ports (client side: unknowable)
        Family,       // family
        InInterface,  // names: interface names, trailing '*' or '+' is a wildcard
        CtState,      // names: conntrack states (lower case)
        CtStatus,     // names: conntrack status bits (dnat, snat, ...)
        SrcAddr,      // names: addresses/prefixes as text
        DstAddr,      // names: addresses/prefixes as text
        TcpFlags,     // flagMask / flagValue
        PktType,      // names: host, unicast, broadcast, multicast, other
        DstAddrType,  // names: LOCAL, UNICAST, BROADCAST, ...
        SrcAddrType,  // names
        Ip6Header,    // an IPv6 extension header (routing, fragment, hop-by-hop, ...) is present
        Rate,         // limit, recent, hashlimit, quota, connection counts: sometimes matches
        State,        // depends on state we cannot see (marks, dynamic sets): sometimes matches
        Unknown,      // an expression we do not understand
    };
    Type type = Type::Unknown;
    bool negate = false;
    QList<int> protocols;
    PortSet ports;
    IpFamily family = IpFamily::V4;
    QStringList names;
    int flagMask = 0;
    int flagValue = 0;
    bool typicallyMatches = false;  // Rate: true when a typical client matches (under the limit)
    QString text;                   // how the backend writes it, for messages
};

enum class Verdict {
    None,  // no verdict: continue with the next rule
    Accept,
    Drop,
    Reject,
    Jump,  // target = chain
    Goto,  // target = chain
    Return,
    Redirect,  // DNAT / redirect: the packet leaves the input path (target = where to)
    Unknown,   // a verdict we cannot follow (queue to user space, an unknown target)
};
QString toString(Verdict v);

// "tcp" -> 6, "ipv6-icmp" -> 58, "17" -> 17; -1 when unknown (built-in table, then /etc/protocols).
int protocolNumber(const QString& name);
// "smtp" -> 25, "587" -> 587; -1 when unknown (built-in table, then /etc/services).
int servicePort(const QString& name);

struct Rule {
    QList<Term> terms;
    Verdict verdict = Verdict::None;
    QString target;   // chain for jump/goto, destination for redirect, name for unknown
    QString text;     // the rule as the backend writes it
    QString handle;   // nft handle, or the 1-based position in an iptables chain
    QString comment;  // the rule's comment, if any
};

enum class Hook { None, Prerouting, Input, Forward, Output, Postrouting, Ingress, Other };
QString toString(Hook h);

struct Chain {
    Backend backend = Backend::Nftables;  // Nftables, IptablesNft or IptablesLegacy
    QString family;                       // nft family (inet, ip, ip6, netdev, ...) or ip / ip6 for iptables
    QString table;
    QString name;
    bool base = false;
    Hook hook = Hook::None;
    QString type;  // filter, nat, route
    int priority = 0;
    Verdict policy = Verdict::Accept;
    QList<Rule> rules;

    bool appliesTo(IpFamily f) const;
    // "nftables inet filter input", "iptables-nft ip filter INPUT"
    QString id() const;
};

struct Ruleset {
    QList<Chain> chains;
    QStringList notes;  // what the reader skipped or could not interpret

    const Chain* find(Backend backend, const QString& family, const QString& table, const QString& name) const;
    void append(const Ruleset& other);
};

}  // namespace postern::firewall
