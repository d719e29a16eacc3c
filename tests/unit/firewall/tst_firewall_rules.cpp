// tst_firewall_rules.cpp — the readers and the evaluator rule by rule:
// iptables-save and nft JSON fragments, one probe each, expected status and
// the rule that must be named; netfilter semantics (jump/goto/return, several
// base chains, priorities, policies, NAT redirects), conditions that fork the
// walk (source addresses, rate limits, marks, unknown matches), malformed
// input (an error, never a crash), plans for corner cases, container hints.
#include "firewall/detect.h"
#include "firewall/evaluate.h"
#include "firewall/iptables_save.h"
#include "firewall/nft_json.h"
#include "firewall/plan.h"
#include "firewall/report.h"

#include "core/config.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QtTest>

using namespace postern;
using namespace postern::firewall;

namespace {

QByteArray ipt(const QByteArray& filterRules, const QByteArray& policy = "ACCEPT", const QByteArray& extraChains = {}) {
    return "*filter\n:INPUT " + policy + " [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + extraChains +
           filterRules + "COMMIT\n";
}

QByteArray chain(const char* fam, const char* table, const char* name, const char* hook = nullptr, int prio = 0,
                 const char* policy = "accept", const char* type = "filter") {
    if (!hook)
        return QByteArrayLiteral("{\"chain\":{\"family\":\"") + fam + "\",\"table\":\"" + table + "\",\"name\":\"" +
               name + "\"}}";
    return QByteArrayLiteral("{\"chain\":{\"family\":\"") + fam + "\",\"table\":\"" + table + "\",\"name\":\"" + name +
           "\",\"type\":\"" + type + "\",\"hook\":\"" + hook + "\",\"prio\":" + QByteArray::number(prio) +
           ",\"policy\":\"" + policy + "\"}}";
}

QByteArray rule(const char* fam, const char* table, const char* chainName, int handle, const QByteArray& expr) {
    return QByteArrayLiteral("{\"rule\":{\"family\":\"") + fam + "\",\"table\":\"" + table + "\",\"chain\":\"" +
           chainName + "\",\"handle\":" + QByteArray::number(handle) + ",\"expr\":" + expr + "}}";
}

QByteArray doc(const QList<QByteArray>& items) {
    return "{\"nftables\":[{\"metainfo\":{\"json_schema_version\":1}}," + items.join(',') + "]}";
}

const QByteArray kDport25 = R"({"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":25}})";

ProbeResult evaluateText(const QString& kind, const QByteArray& text, IpFamily fam, quint16 port, const QString& iif) {
    Result<Ruleset> rs = kind == u"nft" ? parseNftJson(text) : parseIptablesSave(text, fam, Backend::IptablesNft);
    if (!rs) {
        ProbeResult r;
        r.reason = QStringLiteral("parse error: ") + rs.errorMessage();
        return r;
    }
    return Evaluator(*rs).evaluate(Probe{fam, port, iif});
}

}  // namespace

class TstFirewallRules : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void evaluate_data() {
        QTest::addColumn<QString>("kind");
        QTest::addColumn<QByteArray>("text");
        QTest::addColumn<int>("family");  // 4 or 6
        QTest::addColumn<int>("port");
        QTest::addColumn<QString>("iif");
        QTest::addColumn<QString>("status");
        QTest::addColumn<QString>("named");  // must appear in the deciding rule (or the reason)
        QTest::addColumn<int>("exceptions");

        // iptables-save
        QTest::newRow("ipt-empty") << "ipt" << QByteArray() << 4 << 25 << "eth0"
                                   << "open"
                                   << "no ipv4 filter chain" << 0;
        QTest::newRow("ipt-policy-drop") << "ipt" << ipt({}, "DROP") << 4 << 25 << "eth0"
                                         << "blocked"
                                         << "policy drop of iptables-nft ip filter INPUT" << 0;
        QTest::newRow("ipt-accept-port") << "ipt" << ipt("-A INPUT -p tcp -m tcp --dport 25 -j ACCEPT\n", "DROP") << 4
                                         << 25 << "eth0"
                                         << "open"
                                         << "rule 1: -A INPUT -p tcp -m tcp --dport 25 -j ACCEPT" << 0;
        QTest::newRow("ipt-other-port") << "ipt" << ipt("-A INPUT -p tcp -m tcp --dport 25 -j ACCEPT\n", "DROP") << 4
                                        << 26 << "eth0"
                                        << "blocked"
                                        << "policy drop" << 0;
        QTest::newRow("ipt-udp-only") << "ipt" << ipt("-A INPUT -p udp -m udp --dport 25 -j ACCEPT\n", "DROP") << 4
                                      << 25 << "eth0"
                                      << "blocked"
                                      << "policy drop" << 0;
        QTest::newRow("ipt-negated-port")
            << "ipt" << ipt("-A INPUT -p tcp -m tcp ! --dport 25 -j DROP\n") << 4 << 25 << "eth0"
            << "open"
            << "policy accept" << 0;
        QTest::newRow("ipt-negated-other")
            << "ipt" << ipt("-A INPUT -p tcp -m tcp ! --dport 25 -j DROP\n") << 4 << 26 << "eth0"
            << "blocked"
            << "rule 1" << 0;
        QTest::newRow("ipt-range") << "ipt"
                                   << ipt("-A INPUT -p tcp -m tcp --dport 20:30 -j REJECT --reject-with tcp-reset\n")
                                   << 4 << 25 << "eth0"
                                   << "blocked"
                                   << "--dport 20:30" << 0;
        QTest::newRow("ipt-range-edge") << "ipt" << ipt("-A INPUT -p tcp -m tcp --dport 20:30 -j DROP\n") << 4 << 31
                                        << "eth0"
                                        << "open"
                                        << "policy" << 0;
        QTest::newRow("ipt-multiport") << "ipt"
                                       << ipt("-A INPUT -p tcp -m multiport --dports 25,465:470 -j ACCEPT\n", "DROP")
                                       << 4 << 466 << "eth0"
                                       << "open"
                                       << "--dports 25,465:470" << 0;
        QTest::newRow("ipt-iface-other") << "ipt" << ipt("-A INPUT -i eth1 -j ACCEPT\n", "DROP") << 4 << 25 << "eth0"
                                         << "blocked"
                                         << "policy" << 0;
        QTest::newRow("ipt-iface-this") << "ipt" << ipt("-A INPUT -i eth1 -j ACCEPT\n", "DROP") << 4 << 25 << "eth1"
                                        << "open"
                                        << "-i eth1" << 0;
        QTest::newRow("ipt-iface-wildcard") << "ipt" << ipt("-A INPUT -i eth+ -j ACCEPT\n", "DROP") << 4 << 25 << "eth7"
                                            << "open"
                                            << "-i eth+" << 0;
        QTest::newRow("ipt-lo-never-remote") << "ipt" << ipt("-A INPUT -i lo -j ACCEPT\n", "DROP") << 4 << 25 << ""
                                             << "blocked"
                                             << "policy" << 0;
        QTest::newRow("ipt-iface-unknown") << "ipt" << ipt("-A INPUT -i eth1 -j ACCEPT\n", "DROP") << 4 << 25 << ""
                                           << "blocked"
                                           << "policy" << 1;
        QTest::newRow("ipt-established-only")
            << "ipt" << ipt("-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n", "DROP") << 4 << 25
            << "eth0"
            << "blocked"
            << "policy" << 0;
        QTest::newRow("ipt-state-new") << "ipt"
                                       << ipt("-A INPUT -p tcp -m state --state NEW -m tcp --dport 25 -j ACCEPT\n",
                                              "DROP")
                                       << 4 << 25 << "eth0"
                                       << "open"
                                       << "--state NEW" << 0;
        QTest::newRow("ipt-jump-return") << "ipt"
                                         << ipt("-A INPUT -j CHK\n-A INPUT -p tcp --dport 25 -j ACCEPT\n-A CHK -p tcp "
                                                "--dport 25 -j RETURN\n-A CHK -j DROP\n",
                                                "DROP", ":CHK - [0:0]\n")
                                         << 4 << 25 << "eth0"
                                         << "open"
                                         << "rule 2" << 0;
        QTest::newRow("ipt-jump-drop") << "ipt"
                                       << ipt("-A INPUT -j CHK\n-A INPUT -p tcp --dport 26 -j ACCEPT\n-A CHK -p tcp "
                                              "--dport 25 -j RETURN\n-A CHK -j DROP\n",
                                              "ACCEPT", ":CHK - [0:0]\n")
                                       << 4 << 26 << "eth0"
                                       << "blocked"
                                       << "iptables-nft ip filter CHK rule 2" << 0;
        // goto: when the target chain ends, control returns to the caller of the chain that did the goto.
        QTest::newRow("ipt-goto") << "ipt" << ipt("-A INPUT -g EMPTY\n-A INPUT -j ACCEPT\n", "DROP", ":EMPTY - [0:0]\n")
                                  << 4 << 25 << "eth0"
                                  << "blocked"
                                  << "policy drop" << 0;
        QTest::newRow("ipt-source-only") << "ipt" << ipt("-A INPUT -s 10.0.0.0/8 -p tcp --dport 25 -j ACCEPT\n", "DROP")
                                         << 4 << 25 << "eth0"
                                         << "blocked"
                                         << "policy" << 1;
        QTest::newRow("ipt-source-any") << "ipt" << ipt("-A INPUT -s 0.0.0.0/0 -p tcp --dport 25 -j ACCEPT\n", "DROP")
                                        << 4 << 25 << "eth0"
                                        << "open"
                                        << "rule 1" << 0;
        QTest::newRow("ipt-blocklist") << "ipt" << ipt("-A INPUT -m set --match-set bad src -j DROP\n") << 4 << 25
                                       << "eth0"
                                       << "open"
                                       << "policy" << 1;
        QTest::newRow("ipt-mark-unknown")
            << "ipt" << ipt("-A INPUT -m mark --mark 0x1 -j ACCEPT\n", "DROP") << 4 << 25 << "eth0"
            << "unknown"
            << "--mark 0x1" << 1;
        QTest::newRow("ipt-unknown-module")
            << "ipt" << ipt("-A INPUT -m string --string foo --algo bm -j DROP\n") << 4 << 25 << "eth0"
            << "unknown"
            << "-m string" << 1;
        QTest::newRow("ipt-unknown-module-irrelevant")
            << "ipt" << ipt("-A INPUT -p udp -m string --string foo --algo bm -j DROP\n") << 4 << 25 << "eth0"
            << "open"
            << "policy" << 0;
        QTest::newRow("ipt-limit-typical")
            << "ipt" << ipt("-A INPUT -p tcp --dport 25 -m limit --limit 5/min -j ACCEPT\n", "DROP") << 4 << 25
            << "eth0"
            << "open"
            << "--limit 5/min" << 1;
        QTest::newRow("ipt-recent-over")
            << "ipt"
            << ipt("-A INPUT -p tcp --dport 25 -m recent --update --seconds 30 --hitcount 6 --name X -j DROP\n"
                   "-A INPUT -p tcp --dport 25 -j ACCEPT\n",
                   "DROP")
            << 4 << 25 << "eth0"
            << "open"
            << "rule 2" << 1;
        QTest::newRow("ipt-nfqueue") << "ipt" << ipt("-A INPUT -j NFQUEUE --queue-num 1\n") << 4 << 25 << "eth0"
                                     << "unknown"
                                     << "NFQUEUE" << 0;
        QTest::newRow("ipt-undeclared-target") << "ipt" << ipt("-A INPUT -j SOMETHING\n") << 4 << 25 << "eth0"
                                               << "unknown"
                                               << "SOMETHING" << 0;
        QTest::newRow("ipt-syn") << "ipt" << ipt("-A INPUT -p tcp --syn --dport 25 -j ACCEPT\n", "DROP") << 4 << 25
                                 << "eth0"
                                 << "open"
                                 << "--syn" << 0;
        QTest::newRow("ipt-not-syn") << "ipt" << ipt("-A INPUT -p tcp ! --syn -j DROP\n") << 4 << 25 << "eth0"
                                     << "open"
                                     << "policy" << 0;
        QTest::newRow("ipt-multicast-dst") << "ipt" << ipt("-A INPUT -d 224.0.0.0/4 -j DROP\n") << 4 << 25 << "eth0"
                                           << "open"
                                           << "policy" << 0;
        QTest::newRow("ipt-addrtype-local")
            << "ipt" << ipt("-A INPUT -m addrtype --dst-type LOCAL -p tcp --dport 25 -j ACCEPT\n", "DROP") << 4 << 25
            << "eth0"
            << "open"
            << "--dst-type LOCAL" << 0;
        QTest::newRow("ipt-pkttype-broadcast")
            << "ipt" << ipt("-A INPUT -m pkttype --pkt-type broadcast -j DROP\n") << 4 << 25 << "eth0"
            << "open"
            << "policy" << 0;
        QTest::newRow("ipt6-routing-header")
            << "ipt" << ipt("-A INPUT -m rt --rt-type 0 -j DROP\n") << 6 << 25 << "eth0"
            << "open"
            << "policy" << 0;
        QTest::newRow("ipt-log-no-verdict")
            << "ipt" << ipt("-A INPUT -j LOG --log-prefix \"in: \"\n", "DROP") << 4 << 25 << "eth0"
            << "blocked"
            << "policy" << 0;
        QTest::newRow("ipt-comment-quoted")
            << "ipt"
            << ipt("-A INPUT -p tcp --dport 25 -m comment --comment \"say \\\"hi\\\" -j DROP\" -j ACCEPT\n", "DROP")
            << 4 << 25 << "eth0"
            << "open"
            << "rule 1" << 0;
        QTest::newRow("ipt-mangle-drops-first") << "ipt"
                                                << QByteArray(
                                                       "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n-A "
                                                       "PREROUTING -p tcp --dport 25 -j DROP\nCOMMIT\n" +
                                                       ipt("-A INPUT -p tcp --dport 25 -j ACCEPT\n"))
                                                << 4 << 25 << "eth0"
                                                << "blocked"
                                                << "mangle PREROUTING rule 1" << 0;
        QTest::newRow("ipt-dnat")
            << "ipt"
            << QByteArray(
                   "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:DOCKER - [0:0]\n"
                   "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n"
                   "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 25 -j DNAT --to-destination 172.17.0.2:25\nCOMMIT\n")
            << 4 << 25 << "eth0"
            << "unknown"
            << "172.17.0.2:25" << 0;
        QTest::newRow("ipt-dnat-not-this-port") << "ipt"
                                                << QByteArray(
                                                       "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp --dport "
                                                       "8080 -j DNAT --to-destination 10.0.0.2:80\nCOMMIT\n")
                                                << 4 << 25 << "eth0"
                                                << "open"
                                                << "no ipv4 filter" << 0;

        // nft JSON
        const char* i = "inet";
        QTest::newRow("nft-policy-drop") << "nft" << doc({chain(i, "t", "in", "input", 0, "drop")}) << 4 << 25 << "eth0"
                                         << "blocked"
                                         << "policy drop of nftables inet t in" << 0;
        QTest::newRow("nft-accept-port") << "nft"
                                         << doc({chain(i, "t", "in", "input", 0, "drop"),
                                                 rule(i, "t", "in", 7, "[" + kDport25 + R"(,{"accept":null}])")})
                                         << 6 << 25 << "eth0"
                                         << "open"
                                         << "handle 7: tcp dport 25 accept" << 0;
        // An accept in one base chain does not override a drop in another one on the same hook.
        QTest::newRow("nft-two-tables") << "nft"
                                        << doc({chain(i, "a", "in", "input", -10),
                                                rule(i, "a", "in", 2, "[" + kDport25 + R"(,{"accept":null}])"),
                                                chain("ip", "b", "in", "input", 10, "drop")})
                                        << 4 << 25 << "eth0"
                                        << "blocked"
                                        << "policy drop of nftables ip b in" << 0;
        QTest::newRow("nft-two-tables-v6")
            << "nft"
            << doc({chain(i, "a", "in", "input", -10), rule(i, "a", "in", 2, "[" + kDport25 + R"(,{"accept":null}])"),
                    chain("ip", "b", "in", "input", 10, "drop")})
            << 6 << 25 << "eth0"
            << "open"
            << "handle 2" << 0;
        QTest::newRow("nft-priority-order")
            << "nft"
            << doc({chain(i, "late", "in", "input", 10), rule(i, "late", "in", 3, R"([{"reject":null}])"),
                    chain(i, "early", "in", "input", -10), rule(i, "early", "in", 4, R"([{"drop":null}])")})
            << 4 << 25 << "eth0"
            << "blocked"
            << "nftables inet early in handle 4" << 0;
        QTest::newRow("nft-prerouting-first")
            << "nft"
            << doc({chain(i, "t", "in", "input", -300), rule(i, "t", "in", 3, R"([{"accept":null}])"),
                    chain(i, "t", "pre", "prerouting", 0),
                    rule(i, "t", "pre", 4, "[" + kDport25 + R"(,{"drop":null}])")})
            << 4 << 25 << "eth0"
            << "blocked"
            << "inet t pre handle 4" << 0;
        QTest::newRow("nft-netdev-ignored")
            << "nft" << doc({chain("netdev", "t", "ing", "ingress", 0, "drop")}) << 4 << 25 << "eth0"
            << "open"
            << "no ipv4 filter" << 0;
        QTest::newRow("nft-not-equal")
            << "nft"
            << doc({chain(i, "t", "in", "input"),
                    rule(
                        i, "t", "in", 5,
                        R"([{"match":{"op":"!=","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":25}},{"drop":null}])")})
            << 4 << 25 << "eth0"
            << "open"
            << "policy accept" << 0;
        QTest::newRow("nft-anon-set-range")
            << "nft"
            << doc({chain(i, "t", "in", "input", 0, "drop"),
                    rule(
                        i, "t", "in", 5,
                        R"([{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":{"set":[22,{"range":[20,30]}]}}},{"accept":null}])")})
            << 4 << 25 << "eth0"
            << "open"
            << "handle 5" << 0;
        QTest::newRow("nft-named-set")
            << "nft"
            << doc({R"({"set":{"family":"inet","name":"mail","table":"t","type":"inet_service","elem":[25,587]}})",
                    chain(i, "t", "in", "input", 0, "drop"),
                    rule(
                        i, "t", "in", 6,
                        R"([{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":"@mail"}},{"accept":null}])")})
            << 4 << 587 << "eth0"
            << "open"
            << "tcp dport @mail accept" << 0;
        QTest::newRow("nft-service-name")
            << "nft"
            << doc({chain(i, "t", "in", "input", 0, "drop"),
                    rule(
                        i, "t", "in", 6,
                        R"([{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":"smtp"}},{"accept":null}])")})
            << 4 << 25 << "eth0"
            << "open"
            << "handle 6" << 0;
        QTest::newRow("nft-ge")
            << "nft"
            << doc({chain(i, "t", "in", "input"),
                    rule(
                        i, "t", "in", 6,
                        R"([{"match":{"op":">=","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":1024}},{"drop":null}])")})
            << 4 << 25 << "eth0"
            << "open"
            << "policy" << 0;
        QTest::newRow("nft-vmap-ctstate")
            << "nft"
            << doc({chain(i, "t", "in", "input", 0, "drop"),
                    rule(
                        i, "t", "in", 3,
                        R"([{"vmap":{"key":{"ct":{"key":"state"}},"data":{"set":[["established",{"accept":null}],["new",{"jump":{"target":"new_conn"}}]]}}}])"),
                    chain(i, "t", "new_conn"), rule(i, "t", "new_conn", 9, "[" + kDport25 + R"(,{"accept":null}])")})
            << 4 << 25 << "eth0"
            << "open"
            << "nftables inet t new_conn handle 9" << 0;
        QTest::newRow("nft-vmap-dport-map")
            << "nft"
            << doc({R"({"map":{"family":"inet","name":"ports","table":"t","type":"inet_service","map":"verdict","elem":[[25,{"drop":null}]]}})",
                    chain(i, "t", "in", "input"),
                    rule(i, "t", "in", 3,
                         R"([{"vmap":{"key":{"payload":{"protocol":"tcp","field":"dport"}},"data":"@ports"}}])")})
            << 4 << 25 << "eth0"
            << "blocked"
            << "handle 3" << 0;
        QTest::newRow("nft-nfproto")
            << "nft"
            << doc({chain(i, "t", "in", "input"),
                    rule(i, "t", "in", 3,
                         R"([{"match":{"op":"==","left":{"meta":{"key":"nfproto"}},"right":"ipv6"}},{"drop":null}])")})
            << 4 << 25 << "eth0"
            << "open"
            << "policy" << 0;
        QTest::newRow("nft-nfproto-v6")
            << "nft"
            << doc({chain(i, "t", "in", "input"),
                    rule(i, "t", "in", 3,
                         R"([{"match":{"op":"==","left":{"meta":{"key":"nfproto"}},"right":"ipv6"}},{"drop":null}])")})
            << 6 << 25 << "eth0"
            << "blocked"
            << "handle 3" << 0;
        QTest::newRow("nft-ip-saddr-is-v4-only")
            << "nft"
            << doc({chain(i, "t", "in", "input"),
                    rule(
                        i, "t", "in", 3,
                        R"([{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":{"prefix":{"addr":"10.0.0.0","len":8}}}},{"drop":null}])")})
            << 6 << 25 << "eth0"
            << "open"
            << "policy" << 0;
        QTest::newRow("nft-tcp-flags-syn")
            << "nft"
            << doc({chain(i, "t", "in", "input", 0, "drop"),
                    rule(
                        i, "t", "in", 3,
                        R"([{"match":{"op":"==","left":{"&":[{"payload":{"protocol":"tcp","field":"flags"}},["fin","syn","rst","ack"]]},"right":"syn"}},{"accept":null}])")})
            << 4 << 25 << "eth0"
            << "open"
            << "handle 3" << 0;
        QTest::newRow("nft-limit-over")
            << "nft"
            << doc({chain(i, "t", "in", "input"),
                    rule(i, "t", "in", 3, R"([{"limit":{"rate":10,"per":"second","inv":true}},{"drop":null}])")})
            << 4 << 25 << "eth0"
            << "open"
            << "policy" << 1;
        QTest::newRow("nft-concat-unknown")
            << "nft"
            << doc({chain(i, "t", "in", "input"),
                    rule(
                        i, "t", "in", 3,
                        R"([{"match":{"op":"==","left":{"concat":[{"payload":{"protocol":"ip","field":"saddr"}},{"payload":{"protocol":"tcp","field":"dport"}}]},"right":"@x"}},{"drop":null}])")})
            << 4 << 25 << "eth0"
            << "unknown"
            << "ip saddr . tcp dport" << 1;
        // th with a field other than a port: an unknown term (it crashed the reader: no term).
        QTest::newRow("nft-th-other-field")
            << "nft"
            << doc({chain(i, "t", "in", "input"),
                    rule(
                        i, "t", "in", 3,
                        R"([{"match":{"op":"==","left":{"payload":{"protocol":"th","field":"checksum"}},"right":5}},{"drop":null}])")})
            << 4 << 25 << "eth0"
            << "unknown"
            << "th checksum 5" << 1;
        // ... and in a verdict map it made the element's rule match every packet.
        QTest::newRow("nft-th-other-field-vmap")
            << "nft"
            << doc({chain(i, "t", "in", "input", 0, "drop"),
                    rule(
                        i, "t", "in", 3,
                        R"([{"vmap":{"key":{"payload":{"protocol":"th","field":"checksum"}},"data":{"set":[[25,{"accept":null}]]}}}])")})
            << 4 << 25 << "eth0"
            << "unknown"
            << "th checksum" << 1;
        QTest::newRow("nft-queue") << "nft"
                                   << doc({chain(i, "t", "in", "input"),
                                           rule(i, "t", "in", 3, R"([{"queue":{"num":1}}])")})
                                   << 4 << 25 << "eth0"
                                   << "unknown"
                                   << "queue" << 0;
        QTest::newRow("nft-jump-loop") << "nft"
                                       << doc({chain(i, "t", "in", "input"),
                                               rule(i, "t", "in", 3, R"([{"jump":{"target":"in"}}])")})
                                       << 4 << 25 << "eth0"
                                       << "unknown"
                                       << "nested deeper" << 0;
        QTest::newRow("nft-dnat") << "nft"
                                  << doc({chain("ip", "nat", "pre", "prerouting", -100, "accept", "nat"),
                                          rule("ip", "nat", "pre", 4,
                                               "[" + kDport25 + R"(,{"dnat":{"addr":"10.0.0.2","port":25}}])")})
                                  << 4 << 25 << "eth0"
                                  << "unknown"
                                  << "10.0.0.2:25" << 0;
        QTest::newRow("nft-iifname-lo")
            << "nft"
            << doc({chain(i, "t", "in", "input", 0, "drop"),
                    rule(i, "t", "in", 3,
                         R"([{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"lo"}},{"accept":null}])")})
            << 4 << 25 << "eth0"
            << "blocked"
            << "policy" << 0;
    }

    void evaluate() {
        QFETCH(QString, kind);
        QFETCH(QByteArray, text);
        QFETCH(int, family);
        QFETCH(int, port);
        QFETCH(QString, iif);
        QFETCH(QString, status);
        QFETCH(QString, named);
        QFETCH(int, exceptions);
        const ProbeResult r = evaluateText(kind, text, family == 6 ? IpFamily::V6 : IpFamily::V4, quint16(port), iif);
        const QString said = r.decision.by + QLatin1Char('|') + r.reason;
        QVERIFY2(toString(r.status) == status,
                 qPrintable(QStringLiteral("status %1, said: %2").arg(toString(r.status), said)));
        QVERIFY2(said.contains(named), qPrintable(QStringLiteral("'%1' not named in: %2").arg(named, said)));
        QCOMPARE(r.exceptions.size(), qsizetype(exceptions));
    }

    void malformed_data() {
        QTest::addColumn<QString>("kind");
        QTest::addColumn<QByteArray>("text");
        QTest::addColumn<QString>("error");
        QTest::newRow("nft-not-json") << "nft" << QByteArray("nft: no such table") << "nft JSON:";
        QTest::newRow("nft-no-array") << "nft" << QByteArray(R"({"nftables":5})") << "no \"nftables\" array";
        QTest::newRow("nft-array-root") << "nft" << QByteArray("[1,2]") << "no \"nftables\" array";
        QTest::newRow("ipt-rule-outside-table")
            << "ipt" << QByteArray("-A INPUT -j DROP\n") << "line 1: rule or chain outside a table";
        QTest::newRow("ipt-undeclared-chain")
            << "ipt" << QByteArray("*filter\n-A INPUT -j DROP\nCOMMIT\n") << "line 2: chain INPUT was not declared";
        QTest::newRow("ipt-not-a-rule") << "ipt" << QByteArray("*filter\n:INPUT DROP [0:0]\n-X INPUT\nCOMMIT\n")
                                        << "line 3: expected -A CHAIN";
        QTest::newRow("ipt-bad-chain-line")
            << "ipt" << QByteArray("*filter\n:INPUT\n") << "line 2: chain line without a policy";
        QTest::newRow("ipt-jump-without-target")
            << "ipt" << QByteArray("*filter\n:INPUT DROP [0:0]\n-A INPUT -j\nCOMMIT\n") << "-j needs one target";
        QTest::newRow("ipt-stray-word") << "ipt" << QByteArray("*filter\n:INPUT DROP [0:0]\n-A INPUT oops\nCOMMIT\n")
                                        << "unexpected word 'oops'";
        QTest::newRow("ipt-long-line") << "ipt"
                                       << QByteArray("*filter\n" + QByteArray(kMaxIptablesLine + 1, 'x') + "\n")
                                       << "longer than 64 KiB";
    }
    void malformed() {
        QFETCH(QString, kind);
        QFETCH(QByteArray, text);
        QFETCH(QString, error);
        const Result<Ruleset> rs =
            kind == u"nft" ? parseNftJson(text) : parseIptablesSave(text, IpFamily::V4, Backend::IptablesNft);
        QVERIFY(!rs.ok());
        QVERIFY2(rs.errorMessage().contains(error), qPrintable(rs.errorMessage()));
    }

    // Limits at their boundary: the readers refuse one byte more than they accept.
    void sizeLimits() {
        QByteArray big(kMaxNftJsonBytes + 1, ' ');
        QVERIFY(parseNftJson(big).errorMessage().contains(u"32 MiB"));
        QByteArray lineAtLimit =
            "*filter\n:INPUT ACCEPT [0:0]\n# " + QByteArray(kMaxIptablesLine - 2, 'x') + "\nCOMMIT\n";
        QVERIFY(parseIptablesSave(lineAtLimit, IpFamily::V4, Backend::IptablesNft).ok());
    }

    // Every prefix of real captures is either read or refused with an error: no crash, no hang.
    void truncatedCaptures() {
        for (const char* name : {"nft-default-drop/nft.json", "firewalld-public/nft.json",
                                 "ufw-debian/iptables-save.txt", "iptables-docker/iptables-save.txt"}) {
            QFile f(QStringLiteral(POSTERN_TEST_DIR "/data/") + QLatin1String(name));
            QVERIFY(f.open(QIODevice::ReadOnly));
            const QByteArray all = f.readAll();
            for (qsizetype n = 0; n < all.size(); n += 7) {
                const QByteArray part = all.left(n);
                const Result<Ruleset> rs = QByteArray(name).endsWith(".json")
                                               ? parseNftJson(part)
                                               : parseIptablesSave(part, IpFamily::V4, Backend::IptablesNft);
                if (rs) (void)Evaluator(*rs).evaluate(Probe{IpFamily::V4, 25, QStringLiteral("eth0")});
            }
        }
    }

    // fail2ban-style: thousands of banned sources, each a conditional reject. The verdict
    // stays known; exceptions are capped and counted; it stays fast.
    void manyBans() {
        QByteArray rules =
            "-A INPUT -p tcp -m multiport --dports 25,587 -j f2b-postfix\n-A INPUT -p tcp --dport 25 -j ACCEPT\n";
        for (int n = 0; n < 3000; ++n)
            rules += "-A f2b-postfix -s 198.18." + QByteArray::number(n / 250) + "." + QByteArray::number(n % 250) +
                     "/32 -j REJECT\n";
        rules += "-A f2b-postfix -j RETURN\n";
        const auto rs =
            parseIptablesSave(ipt(rules, "DROP", ":f2b-postfix - [0:0]\n"), IpFamily::V4, Backend::IptablesNft);
        QVERIFY(rs.ok());
        QElapsedTimer t;
        t.start();
        const ProbeResult r = Evaluator(*rs).evaluate(Probe{IpFamily::V4, 25, QStringLiteral("eth0")});
        QCOMPARE(toString(r.status), QStringLiteral("open"));
        QCOMPARE(r.exceptions.size(), kMaxExceptions);
        QCOMPARE(r.moreExceptions, 3000 - int(kMaxExceptions));
        QVERIFY2(t.elapsed() < 5000, qPrintable(QString::number(t.elapsed())));
        PortResult pr;
        pr.status = r.status;
        pr.perInterface << r;
        QVERIFY(pr.summary().contains(u"and 2995 more exceptions"));
    }

    // Conditional jumps that double the walks at every level hit the walk limit: unknown, not a hang.
    void walkLimit() {
        QByteArray chains;
        QByteArray rules;
        for (int n = 0; n < 24; ++n) {
            chains += ":C" + QByteArray::number(n) + " - [0:0]\n";
            const QByteArray from = n == 0 ? "INPUT" : "C" + QByteArray::number(n - 1);
            rules += "-A " + from + " -s 10.0.0." + QByteArray::number(n) + " -j C" + QByteArray::number(n) + "\n";
            rules += "-A " + from + " -j C" + QByteArray::number(n) + "\n";
        }
        const auto rs = parseIptablesSave(ipt(rules, "DROP", chains), IpFamily::V4, Backend::IptablesNft);
        QVERIFY(rs.ok());
        const ProbeResult r = Evaluator(*rs).evaluate(Probe{IpFamily::V4, 25, QStringLiteral("eth0")});
        QCOMPARE(toString(r.status), QStringLiteral("unknown"));
        QVERIFY2(r.reason.contains(u"too many"), qPrintable(r.reason));
    }

    void splitLine() {
        QList<bool> quoted;
        const QStringList w =
            splitIptablesLine(QStringLiteral("-A INPUT -m comment --comment \"a \\\"b\\\" c\" -j ACCEPT"), &quoted);
        QCOMPARE(w, (QStringList{"-A", "INPUT", "-m", "comment", "--comment", "a \"b\" c", "-j", "ACCEPT"}));
        QCOMPARE(quoted.at(5), true);
        QCOMPARE(quoted.at(4), false);
    }

    // iptables-nft shows tables made with nft as incompatible: nft must read them.
    void incompatibleTablesGoToNft() {
        const QByteArray save =
            "# Table `nat' contains incompatible base-chains, use 'nft' tool to list them.\n"
            "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n";
        QCOMPARE(iptablesTables(save), QStringList{QStringLiteral("filter")});
        const Result<Ruleset> rs = parseIptablesSave(save, IpFamily::V4, Backend::IptablesNft);
        QVERIFY(rs.ok());
        for (const Chain& c : rs->chains) QCOMPARE(c.table, QStringLiteral("filter"));
    }

    void partialAcrossInterfaces() {
        const auto rs = parseIptablesSave(ipt("-A INPUT -i eth1 -p tcp --dport 25 -j ACCEPT\n", "DROP"), IpFamily::V4,
                                          Backend::IptablesNft);
        QVERIFY(rs.ok());
        const QList<PortResult> r =
            evaluatePorts(*rs, {25}, {IpFamily::V4}, {QStringLiteral("eth0"), QStringLiteral("eth1")});
        QCOMPARE(r.size(), 1);
        QCOMPARE(toString(r.first().status), QStringLiteral("partial"));
        QVERIFY(r.first().summary().contains(u"on eth1: accepted by"));
        QVERIFY(r.first().summary().contains(u"on eth0: dropped by policy drop"));
    }

    // A jump to our chain that comes after the blocking rule is moved before it.
    void planMovesLateJump() {
        Snapshot s;
        s.iptablesVariant = QStringLiteral("nf_tables");
        s.iptablesSave =
            ipt("-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -j DROP\n-A INPUT -m comment --comment postern -j "
                "POSTERN-INPUT\n"
                "-A POSTERN-INPUT -p tcp -m multiport --dports 25 -m comment --comment postern -j ACCEPT\n",
                "ACCEPT", ":POSTERN-INPUT - [0:0]\n");
        s.interfaces << QStringLiteral("eth0");
        const QList<ConfiguredPort> ports{
            {QStringLiteral("smtp"), QHostAddress(QHostAddress::AnyIPv4), 25, {IpFamily::V4}}};
        const Report rep = buildReport(s, ports, false);
        QCOMPARE(toString(rep.results.first().status), QStringLiteral("blocked"));
        const Plan plan = planOpen(s, rep.detection, rep.results, ports, {});
        QStringList cmds;
        for (const Command& c : plan.commands) cmds << c.display();
        QCOMPARE(cmds, (QStringList{
                           "iptables-nft -w -F POSTERN-INPUT",
                           "iptables-nft -w -A POSTERN-INPUT -p tcp -m multiport --dports 25 -m comment --comment "
                           "postern -j ACCEPT",
                           "iptables-nft -w -D INPUT -m comment --comment postern -j POSTERN-INPUT",
                           "iptables-nft -w -I INPUT 2 -m comment --comment postern -j POSTERN-INPUT",
                       }));
    }

    // ufw: a port the operator denied explicitly is reported, not overridden.
    void planRespectsUfwDeny() {
        Snapshot s;
        s.iptablesVariant = QStringLiteral("nf_tables");
        s.ufwPresent = true;
        s.ufwStatus = QStringLiteral("Status: active\n");
        s.iptablesSave = ipt("-A INPUT -j ufw-user-input\n-A ufw-user-input -p tcp --dport 25 -j DROP\n", "DROP",
                             ":ufw-user-input - [0:0]\n");
        const QList<ConfiguredPort> ports{
            {QStringLiteral("smtp"), QHostAddress(QHostAddress::AnyIPv4), 25, {IpFamily::V4}},
            {QStringLiteral("imaps"), QHostAddress(QHostAddress::AnyIPv4), 993, {IpFamily::V4}}};
        const Report rep = buildReport(s, ports, false);
        const Plan plan = planOpen(s, rep.detection, rep.results, ports, {});
        QCOMPARE(plan.commands.size(), 1);
        QCOMPARE(plan.commands.first().display(), QStringLiteral("ufw allow 993/tcp comment postern"));
        QVERIFY(plan.blockedElsewhere);
        QVERIFY(plan.notes.join(u' ').contains(u"your own ufw rule"));
    }

    // firewalld: removal uses the recorded ports, and only while firewalld runs.
    void firewalldRemoveFromState() {
        Snapshot s;
        s.firewalldPresent = true;
        s.firewalldState = QStringLiteral("running");
        FirewallState st{QStringLiteral("public"), {QStringLiteral("25/tcp"), QStringLiteral("993/tcp")}};
        Plan plan = planRemove(s, detect(s), st);
        QStringList cmds;
        for (const Command& c : plan.commands) cmds << c.display();
        QCOMPARE(cmds, (QStringList{"firewall-cmd --permanent --zone=public --remove-port=25/tcp",
                                    "firewall-cmd --permanent --zone=public --remove-port=993/tcp",
                                    "firewall-cmd --reload"}));
        QVERIFY(plan.stateAfter.firewalldPorts.isEmpty());
        s.firewalldState = QStringLiteral("not running");
        plan = planRemove(s, detect(s), st);
        QVERIFY(plan.commands.isEmpty());
        QVERIFY(plan.notes.join(u' ').contains(u"not running"));

        QTemporaryDir tmp;
        const QString path = tmp.filePath(QStringLiteral("state.json"));
        QVERIFY(saveState(path, st).ok());
        const auto back = loadState(path);
        QVERIFY(back.ok());
        QCOMPARE(back->firewalldPorts, st.firewalldPorts);
        QCOMPARE(back->firewalldZone, st.firewalldZone);
        QVERIFY(loadState(tmp.filePath(QStringLiteral("missing.json"))).ok());
    }

    // Without root the rules cannot be read: every verdict is unknown, no plan.
    void notRootIsUnknown() {
        Snapshot s;
        s.root = false;
        const Report rep = buildReport(s, defaultPorts(), false);
        for (const PortResult& r : rep.results) QCOMPARE(toString(r.status), QStringLiteral("unknown"));
        const Plan plan = planOpen(s, rep.detection, rep.results, defaultPorts(), {});
        QVERIFY(plan.commands.isEmpty());
        QVERIFY(plan.blockedElsewhere);
    }

    void configured() {
        QTemporaryDir dir;
        QFile f(dir.filePath(QStringLiteral("postern.conf")));
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(
            "smtp.listen = *:25\nsubmission.listen = 127.0.0.1:587\nsubmissions.listen = 0.0.0.0:465, "
            "[2001:db8::1]:465\n"
            "imap.listen = [::]:143\nimaps.listen = *:0\n");
        f.close();
        const auto config = postern::Config::load(dir.path());
        QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
        const QList<ConfiguredPort> ports = configuredPorts(*config);
        auto fams = [&](const QString& service, quint16 port) {
            for (const ConfiguredPort& p : ports)
                if (p.service == service && p.port == port) return p.families;
            return QList<IpFamily>{};
        };
        QVERIFY(fams(QStringLiteral("smtp"), 25) == (QList<IpFamily>{IpFamily::V4, IpFamily::V6}));
        QVERIFY(fams(QStringLiteral("submission"), 587).isEmpty());  // loopback: no firewall question
        QCOMPARE(ports.size(),
                 10 - 1 + 1);  // 10 listeners (ManageSieve included): imaps on port 0 left out, submissions twice
        QVERIFY(fams(QStringLiteral("imap"), 143) == QList<IpFamily>{IpFamily::V6});
        QVERIFY(!portNumbers(ports).contains(587));
        QVERIFY(!portNumbers(ports).contains(0));
        QCOMPARE(portNumbers(ports).first(), quint16(25));
    }

    // A port held by this very process is reported in use, with our program name and pid.
    void localState() {
        QTcpServer holder;
        QVERIFY(holder.listen(QHostAddress::LocalHost, 0));
        const quint16 port = holder.serverPort();
        const QList<LocalPortState> st = localPortState({{QStringLiteral("smtp"), QHostAddress::LocalHost, port, {}}});
        QCOMPARE(st.size(), 1);
        QCOMPARE(toString(st.first().bindable), toString(Bindable::InUse));
        QVERIFY2(st.first().detail.contains(QStringLiteral("(pid %1)").arg(QCoreApplication::applicationPid())),
                 qPrintable(st.first().detail));
        QVERIFY(!st.first().ours);
        holder.close();
        const QList<LocalPortState> free =
            localPortState({{QStringLiteral("smtp"), QHostAddress::LocalHost, port, {}}});
        QCOMPARE(toString(free.first().bindable), toString(Bindable::Yes));
        QVERIFY(free.first().listeners.isEmpty());
    }

    void container_data() {
        QTest::addColumn<QString>("file");
        QTest::addColumn<QByteArray>("content");
        QTest::addColumn<QString>("engine");
        QTest::newRow("none") << QString() << QByteArray() << QString();
        QTest::newRow("docker") << ".dockerenv" << QByteArray() << "docker";
        QTest::newRow("podman") << "run/.containerenv" << QByteArray("engine=\"podman-4.3.1\"\n") << "podman";
        QTest::newRow("nspawn") << "run/systemd/container" << QByteArray("systemd-nspawn\n") << "systemd-nspawn";
        QTest::newRow("kubernetes") << "proc/1/cgroup" << QByteArray("0::/kubepods/besteffort/pod1234/abcd\n")
                                    << "kubernetes";
        QTest::newRow("host-cgroup") << "proc/1/cgroup" << QByteArray("0::/init.scope\n") << QString();
    }
    void container() {
        QFETCH(QString, file);
        QFETCH(QByteArray, content);
        QFETCH(QString, engine);
        QTemporaryDir root;
        if (!file.isEmpty()) {
            QVERIFY(QDir(root.path()).mkpath(QFileInfo(root.filePath(file)).path()));
            QFile f(root.filePath(file));
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(content);
        }
        const ContainerInfo c = detectContainer(root.path());
        QCOMPARE(c.inside, !engine.isEmpty());
        QCOMPARE(c.engine, engine);
        const QStringList advice = containerAdvice(c, defaultPorts());
        if (c.inside)
            QVERIFY(advice.join(u'\n').contains(u"-p 25:25 -p 587:587"));
        else
            QVERIFY(advice.isEmpty());
    }
};

QTEST_GUILESS_MAIN(TstFirewallRules)
#include "tst_firewall_rules.moc"
