// iptables_save.cpp — see iptables_save.h.
//
// Grammar (iptables-save output):
//   "# comment"
//   "*" table
//   ":" chain " " (policy | "-") " [" packets ":" bytes "]"
//   ["[" packets ":" bytes "] "] "-A " chain { ["!"] option {argument} }
//   "COMMIT"
// Options: -p -s -d -i -o -f, -m module with its options, -j target with its
// options, -g chain. Module options are recognised by name.
#include "iptables_save.h"

#include <QHash>

namespace postern::firewall {

namespace {

struct TableFacts {
    int priority;
    QString type;
};

TableFacts tableFacts(const QString& table, const QString& chain) {
    if (table == u"raw") return {-300, QStringLiteral("filter")};
    if (table == u"mangle") return {-150, QStringLiteral("filter")};
    if (table == u"nat") return {chain == u"PREROUTING" ? -100 : 100, QStringLiteral("nat")};
    if (table == u"security") return {50, QStringLiteral("filter")};
    return {0, QStringLiteral("filter")};
}

Hook builtinHook(const QString& chain) {
    if (chain == u"PREROUTING") return Hook::Prerouting;
    if (chain == u"INPUT") return Hook::Input;
    if (chain == u"FORWARD") return Hook::Forward;
    if (chain == u"OUTPUT") return Hook::Output;
    if (chain == u"POSTROUTING") return Hook::Postrouting;
    return Hook::None;
}

bool parsePorts(const QString& text, PortSet* out) {
    for (const QString& part : text.split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        const QStringList lh = part.split(QLatin1Char(':'));
        if (lh.size() > 2) return false;
        const int lo = lh.at(0).isEmpty() ? 0 : servicePort(lh.at(0));
        const int hi = lh.size() == 2 ? (lh.at(1).isEmpty() ? 65535 : servicePort(lh.at(1))) : lo;
        if (lo < 0 || hi < 0) return false;
        out->ranges << qMakePair(lo, hi);
    }
    return !out->ranges.isEmpty();
}

class LineReader {
public:
    // Fills `rule` (terms, verdict, target) from the words after "-A CHAIN".
    Status read(const QStringList& words, const QList<bool>& quoted, Rule* rule);

private:
    QStringList argsAt(qsizetype* i) const;
    Status option(const QString& opt, const QStringList& args, bool negate, Rule* rule);

    const QStringList* m_words = nullptr;
    const QList<bool>* m_quoted = nullptr;
    QString m_module;
};

QStringList LineReader::argsAt(qsizetype* i) const {
    QStringList out;
    while (*i + 1 < m_words->size()) {
        const QString& next = m_words->at(*i + 1);
        const bool isOption = !m_quoted->at(*i + 1) && (next.startsWith(QLatin1Char('-')) || next == u"!");
        if (isOption) break;
        out << next;
        ++*i;
    }
    return out;
}

Status LineReader::read(const QStringList& words, const QList<bool>& quoted, Rule* rule) {
    m_words = &words;
    m_quoted = &quoted;
    bool negate = false;
    for (qsizetype i = 0; i < words.size(); ++i) {
        const QString& w = words.at(i);
        if (w == u"!" && !quoted.at(i)) {
            negate = true;
            continue;
        }
        if (!w.startsWith(QLatin1Char('-')) || quoted.at(i))
            return Status::fail(QStringLiteral("unexpected word '%1'").arg(w));
        const QString opt = w;
        const QStringList args = argsAt(&i);
        // "-j TARGET --target-option ...": the options after a target belong to it.
        if (opt == u"-j" || opt == u"--jump" || opt == u"-g" || opt == u"--goto") {
            if (args.size() != 1) return Status::fail(QStringLiteral("%1 needs one target").arg(opt));
            QStringList targetOptions;
            while (i + 1 < words.size()) targetOptions << words.at(++i);
            const QString& t = args.first();
            if (opt == u"-g" || opt == u"--goto") {
                rule->verdict = Verdict::Goto;
                rule->target = t;
            } else if (t == u"ACCEPT") {
                rule->verdict = Verdict::Accept;
            } else if (t == u"DROP") {
                rule->verdict = Verdict::Drop;
            } else if (t == u"REJECT") {
                rule->verdict = Verdict::Reject;
            } else if (t == u"RETURN") {
                rule->verdict = Verdict::Return;
            } else if (t == u"DNAT" || t == u"REDIRECT" || t == u"TPROXY") {
                rule->verdict = Verdict::Redirect;
                const qsizetype at = targetOptions.indexOf(QStringLiteral("--to-destination"));
                const qsizetype port = targetOptions.indexOf(QStringLiteral("--to-ports"));
                rule->target = at >= 0 && at + 1 < targetOptions.size() ? targetOptions.at(at + 1)
                               : port >= 0 && port + 1 < targetOptions.size()
                                   ? QStringLiteral("local port ") + targetOptions.at(port + 1)
                                   : t;
            } else if (t == u"LOG" || t == u"NFLOG" || t == u"ULOG" || t == u"MARK" || t == u"CONNMARK" || t == u"CT" ||
                       t == u"NOTRACK" || t == u"TRACE" || t == u"AUDIT" || t == u"SNAT" || t == u"MASQUERADE" ||
                       t == u"TCPMSS" || t == u"CHECKSUM" || t == u"DSCP" || t == u"TOS" || t == u"TTL" || t == u"HL" ||
                       t == u"SET" || t == u"CONNSECMARK" || t == u"SECMARK") {
                rule->verdict = Verdict::None;  // non-terminating targets
            } else if (t == u"QUEUE" || t == u"NFQUEUE" || t == u"TARPIT" || t == u"SYNPROXY") {
                rule->verdict = Verdict::Unknown;
                rule->target = t;
            } else {
                // A user chain, or an extension target we do not know (the evaluator
                // answers "unknown" when no chain of that name exists).
                rule->verdict = Verdict::Jump;
                rule->target = t;
            }
            return {};
        }
        const Status s = option(opt, args, negate, rule);
        if (!s) return s;
        negate = false;
    }
    return {};
}

// One option being read: its name and arguments, the term it makes (negation and text set),
// the rule it adds to, and the reader's current "-m" module.
struct OptionCall {
    const QString& opt;
    const QStringList& args;
    Term t;
    Rule* rule;
    QString* module;

    // Fails unless the option has exactly n arguments.
    Status need(qsizetype n) const {
        return args.size() == n ? Status() : Status::fail(QStringLiteral("%1 expects %2 argument(s)").arg(opt).arg(n));
    }
    // Adds the term with this type to the rule.
    Status add(Term::Type type) {
        t.type = type;
        rule->terms << t;
        return {};
    }
};
using OptionReader = Status (*)(OptionCall&);

Status readModule(OptionCall& c) {
    if (auto s = c.need(1); !s) return s;
    *c.module = c.args.first();
    return {};
}

Status readProtocol(OptionCall& c) {
    if (auto s = c.need(1); !s) return s;
    if (c.args.first() == u"all" || c.args.first() == u"0") return {};
    const int num = protocolNumber(c.args.first() == u"icmpv6" ? QStringLiteral("ipv6-icmp") : c.args.first());
    if (num < 0) return c.add(Term::Type::Unknown);
    c.t.protocols << num;
    return c.add(Term::Type::Protocol);
}

Status readAddress(OptionCall& c) {
    if (auto s = c.need(1); !s) return s;
    const bool src = c.opt == u"-s" || c.opt == u"--source" || c.opt == u"--src-range" || c.opt == u"--mac-source";
    c.t.names = c.args.first().split(QLatin1Char(','));
    return c.add(src ? Term::Type::SrcAddr : Term::Type::DstAddr);
}

Status readInInterface(OptionCall& c) {
    if (auto s = c.need(1); !s) return s;
    c.t.names << c.args.first();
    return c.add(Term::Type::InInterface);
}

Status readPorts(OptionCall& c) {
    if (auto s = c.need(1); !s) return s;
    Term::Type type = c.opt.contains(u"--d") ? Term::Type::DstPort : Term::Type::SrcPort;
    if (!parsePorts(c.args.first(), &c.t.ports)) type = Term::Type::Unknown;
    return c.add(type);
}

Status readEitherPort(OptionCall& c) {  // multiport --ports: depends on the client's port as well
    return c.add(Term::Type::Unknown);
}

Status readSyn(OptionCall& c) {
    c.t.flagMask = 0x17;  // FIN,SYN,RST,ACK
    c.t.flagValue = 0x02;
    return c.add(Term::Type::TcpFlags);
}

// "SYN,ACK" -> bits; *ok false for a name that is not a flag.
int tcpFlagBits(const QString& list, bool* ok) {
    static const QHash<QString, int> kFlags = {{QStringLiteral("FIN"), 1},  {QStringLiteral("SYN"), 2},
                                               {QStringLiteral("RST"), 4},  {QStringLiteral("PSH"), 8},
                                               {QStringLiteral("ACK"), 16}, {QStringLiteral("URG"), 32},
                                               {QStringLiteral("ALL"), 63}, {QStringLiteral("NONE"), 0}};
    int b = 0;
    for (const QString& f : list.split(QLatin1Char(','))) {
        if (!kFlags.contains(f)) *ok = false;
        b |= kFlags.value(f);
    }
    return b;
}

Status readTcpFlags(OptionCall& c) {
    if (auto s = c.need(2); !s) return s;
    bool ok = true;
    c.t.flagMask = tcpFlagBits(c.args.at(0), &ok);
    c.t.flagValue = tcpFlagBits(c.args.at(1), &ok);
    return c.add(ok ? Term::Type::TcpFlags : Term::Type::Unknown);
}

Status readCtState(OptionCall& c) {
    if (auto s = c.need(1); !s) return s;
    for (const QString& s : c.args.first().split(QLatin1Char(','))) c.t.names << s.toLower();
    return c.add(c.opt == u"--ctstatus" ? Term::Type::CtStatus : Term::Type::CtState);
}

Status readAddrType(OptionCall& c) {
    if (auto s = c.need(1); !s) return s;
    c.t.names = c.args.first().toUpper().split(QLatin1Char(','));
    return c.add(c.opt == u"--dst-type" ? Term::Type::DstAddrType : Term::Type::SrcAddrType);
}

// Modifiers of another option, or always-matching (recent --set); --comment names the rule.
Status readModifier(OptionCall& c) {
    if (c.opt == u"--comment" && !c.args.isEmpty()) c.rule->comment = c.args.first();
    return {};
}

Status readRecentCheck(OptionCall& c) {  // recent --update/--rcheck: matches only clients seen before
    return c.add(Term::Type::Rate);
}

Status readNothing(OptionCall&) {  // --hitcount refines --update/--rcheck; -p icmp already excludes TCP
    return {};
}

Status readRate(OptionCall& c) {
    c.t.typicallyMatches = !c.opt.contains(u"above");
    return c.add(Term::Type::Rate);
}

Status readMatchSet(OptionCall& c) {
    if (auto s = c.need(2); !s) return s;
    Term::Type type = c.args.at(1).startsWith(u"dst") ? Term::Type::DstAddr : Term::Type::SrcAddr;
    if (c.args.at(1).contains(QLatin1Char(','))) type = Term::Type::State;
    c.t.names << QStringLiteral("set ") + c.args.at(0);
    return c.add(type);
}

Status readPktType(OptionCall& c) {
    if (auto s = c.need(1); !s) return s;
    c.t.names << c.args.first().toLower();
    return c.add(Term::Type::PktType);
}

Status readIp6Header(OptionCall& c) {  // -m rt / frag / hbh / dst / mh: only packets with that header
    return c.add(Term::Type::Ip6Header);
}

Status readMark(OptionCall& c) {
    return c.add(Term::Type::State);
}

// The one table of the options iptables-save writes (iptables(8), iptables-extensions(8)):
// option name -> reader. An option not in it becomes an unknown term.
const QHash<QString, OptionReader>& optionReaders() {
    static const QHash<QString, OptionReader> kReaders = [] {
        QHash<QString, OptionReader> t;
        auto add = [&t](std::initializer_list<const char*> names, OptionReader read) {
            for (const char* name : names) t.insert(QLatin1String(name), read);
        };
        add({"-m", "--match"}, readModule);
        add({"-p", "--protocol"}, readProtocol);
        add({"-s", "--source", "-d", "--destination", "--src-range", "--dst-range", "--mac-source"}, readAddress);
        add({"-i", "--in-interface"}, readInInterface);
        add({"--dport", "--destination-port", "--sport", "--source-port", "--dports", "--destination-ports", "--sports",
             "--source-ports"},
            readPorts);
        add({"--ports"}, readEitherPort);
        add({"--syn"}, readSyn);
        add({"--tcp-flags"}, readTcpFlags);
        add({"--ctstate", "--state", "--ctstatus"}, readCtState);
        add({"--dst-type", "--src-type"}, readAddrType);
        add({"--limit-iface-in",
             "--comment",
             "--limit-burst",
             "--name",
             "--mask",
             "--rsource",
             "--rdest",
             "--seconds",
             "--reap",
             "--rttl",
             "--set",
             "--hashlimit-name",
             "--hashlimit-mode",
             "--hashlimit-burst",
             "--hashlimit-htable-expire",
             "--hashlimit-srcmask",
             "--connlimit-mask",
             "--connlimit-saddr",
             "--log-prefix",
             "--log-level"},
            readModifier);
        add({"--update", "--rcheck"}, readRecentCheck);
        add({"--hitcount", "--icmp-type", "--icmpv6-type"}, readNothing);
        add({"--limit", "--hashlimit-upto", "--hashlimit-above", "--hashlimit", "--connlimit-above", "--connlimit-upto",
             "--quota"},
            readRate);
        add({"--match-set"}, readMatchSet);
        add({"--pkt-type"}, readPktType);
        add({"--rt-type", "--rt-segsleft", "--rt-len", "--rt-0-res", "--rt-0-addrs", "--rt-0-not-strict", "--fragid",
             "--fraglen", "--fragres", "--fragfirst", "--fragmore", "--fraglast", "--hbh-len", "--hbh-opts",
             "--dst-len", "--dst-opts", "--mh-type"},
            readIp6Header);
        add({"--mark", "--ctmark"}, readMark);
        return t;
    }();
    return kReaders;
}

Status LineReader::option(const QString& opt, const QStringList& args, bool negate, Rule* rule) {
    const QString text = (negate ? QStringLiteral("! ") : QString()) + opt +
                         (args.isEmpty() ? QString() : QLatin1Char(' ') + args.join(QLatin1Char(' ')));
    OptionCall call{opt, args, Term{}, rule, &m_module};
    call.t.negate = negate;
    call.t.text = text;
    const auto it = optionReaders().constFind(opt);
    if (it != optionReaders().cend()) return (*it)(call);
    if (!m_module.isEmpty()) call.t.text = QStringLiteral("-m %1 %2").arg(m_module, text);
    return call.add(Term::Type::Unknown);
}

}  // namespace

QStringList splitIptablesLine(const QString& line, QList<bool>* quoted) {
    QStringList out;
    QString cur;
    bool inQuotes = false;
    bool have = false;
    bool wasQuoted = false;
    for (qsizetype i = 0; i < line.size(); ++i) {
        const QChar c = line.at(i);
        if (inQuotes) {
            if (c == u'\\' && i + 1 < line.size()) {
                cur += line.at(++i);
            } else if (c == u'"') {
                inQuotes = false;
            } else {
                cur += c;
            }
            continue;
        }
        if (c == u'"') {
            inQuotes = true;
            have = true;
            wasQuoted = true;
        } else if (c.isSpace()) {
            if (have) {
                out << cur;
                if (quoted) *quoted << wasQuoted;
            }
            cur.clear();
            have = false;
            wasQuoted = false;
        } else {
            cur += c;
            have = true;
        }
    }
    if (have) {
        out << cur;
        if (quoted) *quoted << wasQuoted;
    }
    return out;
}

QStringList incompatibleTables(const QByteArray& text) {
    QStringList out;
    for (const QByteArray& line : text.split('\n')) {
        if (!line.startsWith("# Table `") || !line.contains("incompatible")) continue;
        const qsizetype end = line.indexOf('\'', 9);
        if (end > 9) out << QString::fromUtf8(line.mid(9, end - 9));
    }
    return out;
}

QStringList iptablesTables(const QByteArray& text) {
    const QStringList skip = incompatibleTables(text);
    QStringList out;
    for (const QByteArray& line : text.split('\n')) {
        const QString t = QString::fromUtf8(line.mid(1).trimmed());
        if (line.startsWith('*') && !skip.contains(t)) out << t;
    }
    return out;
}

Result<Ruleset> parseIptablesSave(const QByteArray& text, IpFamily family, Backend backend) {
    if (text.size() > kMaxIptablesSaveBytes)
        return Result<Ruleset>::fail(QStringLiteral("iptables-save output larger than 32 MiB"));
    Ruleset out;
    const QStringList incompatible = incompatibleTables(text);
    bool skipping = false;
    QString table;
    QHash<QString, int> chains;  // "table chain" -> index
    const QString fam = family == IpFamily::V4 ? QStringLiteral("ip") : QStringLiteral("ip6");
    int lineNo = 0;
    for (const QByteArray& raw : text.split('\n')) {
        ++lineNo;
        auto fail = [&](const QString& why) {
            return Result<Ruleset>::fail(QStringLiteral("iptables-save line %1: %2").arg(lineNo).arg(why));
        };
        if (raw.size() > kMaxIptablesLine) return fail(QStringLiteral("line longer than 64 KiB"));
        QString line = QString::fromUtf8(raw).trimmed();
        if (line.isEmpty() || line.startsWith(QLatin1Char('#'))) continue;
        if (line.startsWith(QLatin1Char('*'))) {
            table = line.mid(1);
            skipping = incompatible.contains(table);
            continue;
        }
        if (line == u"COMMIT") {
            table.clear();
            skipping = false;
            continue;
        }
        if (skipping) continue;
        if (table.isEmpty()) return fail(QStringLiteral("rule or chain outside a table"));
        if (line.startsWith(QLatin1Char(':'))) {
            const QStringList parts = line.mid(1).split(QLatin1Char(' '), Qt::SkipEmptyParts);
            if (parts.size() < 2) return fail(QStringLiteral("chain line without a policy"));
            Chain c;
            c.backend = backend;
            c.family = fam;
            c.table = table;
            c.name = parts.at(0);
            c.hook = builtinHook(c.name);
            c.base = parts.at(1) != u"-" && c.hook != Hook::None;
            const TableFacts facts = tableFacts(table, c.name);
            c.priority = facts.priority;
            c.type = facts.type;
            c.policy = parts.at(1) == u"DROP" ? Verdict::Drop : Verdict::Accept;
            chains.insert(table + QLatin1Char(' ') + c.name, int(out.chains.size()));
            out.chains << c;
            continue;
        }
        if (line.startsWith(QLatin1Char('['))) {  // iptables-save -c: "[packets:bytes] -A ..."
            const qsizetype close = line.indexOf(QLatin1Char(']'));
            if (close < 0) return fail(QStringLiteral("unterminated counter"));
            line = line.mid(close + 1).trimmed();
        }
        QList<bool> quoted;
        const QStringList words = splitIptablesLine(line, &quoted);
        if (words.size() < 2 || (words.at(0) != u"-A" && words.at(0) != u"--append"))
            return fail(QStringLiteral("expected -A CHAIN, got '%1'").arg(line.left(80)));
        const auto it = chains.constFind(table + QLatin1Char(' ') + words.at(1));
        if (it == chains.cend()) return fail(QStringLiteral("chain %1 was not declared").arg(words.at(1)));
        Rule rule;
        rule.text = line;
        rule.handle = QString::number(out.chains.at(*it).rules.size() + 1);
        LineReader reader;
        const Status s = reader.read(words.mid(2), quoted.mid(2), &rule);
        if (!s) return fail(s.errorMessage());
        out.chains[*it].rules << rule;
    }
    return out;
}

}  // namespace postern::firewall
