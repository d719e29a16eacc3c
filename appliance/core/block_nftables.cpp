// block_nftables.cpp — see block_nftables.h.
#include "block_nftables.h"

#include "config.h"
#include "services.h"

#include <QHash>
#include <QHostAddress>

#include <algorithm>
#include <optional>

namespace postern::blocknft {

namespace {

struct Candidate {
    QHostAddress network;
    int prefix = 0;
    bool v4 = true;
    QByteArray bytes;  // 4 or 16 bytes of the network address
    qint64 untilMs = 0;
    qsizetype index = 0;  // position in the file: the output keeps that order
};

// Family, prefix length and the address with the bits after the prefix cleared: equal for
// every address inside that subnet.
QByteArray coverKey(const Candidate& c, int prefix) {
    QByteArray key(2, '\0');
    key[0] = c.v4 ? '4' : '6';
    key[1] = char(prefix);
    QByteArray masked = c.bytes;
    for (qsizetype i = 0; i < masked.size(); ++i) {
        const int bits = std::clamp(prefix - int(i) * 8, 0, 8);
        masked[i] = char(quint8(masked[i]) & (bits == 0 ? 0 : 0xff << (8 - bits)));
    }
    return key + masked;
}

std::optional<Candidate> candidate(const BlockList::Entry& e, qsizetype index) {
    const auto [network, prefix] = QHostAddress::parseSubnet(e.subnet);
    if (network.isNull() || prefix < 0) return std::nullopt;
    Candidate c{network, prefix, network.protocol() == QAbstractSocket::IPv4Protocol, {}, e.untilMs, index};
    if (c.v4) {
        const quint32 a = network.toIPv4Address();
        for (int shift = 24; shift >= 0; shift -= 8) c.bytes += char((a >> shift) & 0xff);
    } else {
        const Q_IPV6ADDR a = network.toIPv6Address();
        c.bytes = QByteArray(reinterpret_cast<const char*>(a.c), 16);
    }
    return c;
}

QByteArray element(const Candidate& c, qint64 seconds) {
    QByteArray out = c.network.toString().toLatin1();
    if (c.prefix != (c.v4 ? 32 : 128)) out += '/' + QByteArray::number(c.prefix);
    return out + " timeout " + QByteArray::number(seconds) + 's';
}

QByteArray setBlock(const char* name, const char* type, const QList<QByteArray>& elements) {
    QByteArray out = QByteArray("\tset ") + name + " {\n\t\ttype " + type + "\n\t\tflags interval,timeout\n";
    if (!elements.isEmpty()) out += "\t\telements = { " + elements.join(", ") + " }\n";
    return out + "\t}\n";
}

QByteArray tableHeader() {
    return "table inet " + kTable.toString().toLatin1();
}

}  // namespace

Script syncScript(const QList<BlockList::Entry>& entries, qint64 nowMs, const QList<quint16>& ports) {
    Script script;
    QList<Candidate> all;
    for (qsizetype i = 0; i < entries.size(); ++i)
        if (entries.at(i).untilMs > nowMs)
            if (auto c = candidate(entries.at(i), i)) all << *c;
    // Broader subnets first, and of equal subnets the one that lasts longest: whatever comes
    // later inside one of them is covered already.
    std::stable_sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) {
        return a.prefix != b.prefix ? a.prefix < b.prefix : a.untilMs > b.untilMs;
    });
    QHash<QByteArray, qint64> kept;  // coverKey at its own prefix -> until
    QList<Candidate> out;
    for (const Candidate& c : std::as_const(all)) {
        std::optional<qint64> coverUntil;
        for (int p = 0; p <= c.prefix && !coverUntil; ++p)
            if (auto it = kept.constFind(coverKey(c, p)); it != kept.cend()) coverUntil = *it;
        if (coverUntil) {
            // Blocked by the broader element now; on its own once that one has expired.
            if (c.untilMs > *coverUntil && (script.resyncAtMs == 0 || *coverUntil < script.resyncAtMs))
                script.resyncAtMs = *coverUntil;
            continue;
        }
        if (out.size() >= BlockList::kMaxEntries) {
            ++script.leftOut;
            continue;
        }
        kept.insert(coverKey(c, c.prefix), c.untilMs);
        out << c;
    }
    std::sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) { return a.index < b.index; });
    QList<QByteArray> v4;
    QList<QByteArray> v6;
    for (const Candidate& c : std::as_const(out)) {
        qint64 left = c.untilMs - nowMs;
        if (left > BlockList::kMaxDurationMs) {
            left = BlockList::kMaxDurationMs;
            const qint64 at = nowMs + left;
            if (script.resyncAtMs == 0 || at < script.resyncAtMs) script.resyncAtMs = at;
        }
        (c.v4 ? v4 : v6) << element(c, (left + 999) / 1000);
    }
    script.elements = int(out.size());

    const QByteArray table = tableHeader();
    QByteArray& t = script.text;
    t = table + "\ndelete " + table + '\n' + table + " {\n";
    t += setBlock("blocked_v4", "ipv4_addr", v4);
    t += setBlock("blocked_v6", "ipv6_addr", v6);
    t += "\tchain input {\n\t\ttype filter hook input priority " + QByteArray::number(kPriority) + "; policy accept;\n";
    if (!ports.isEmpty()) {
        QList<QByteArray> numbers;
        for (const quint16 p : ports) numbers << QByteArray::number(p);
        const QByteArray dport = "\t\ttcp dport { " + numbers.join(", ") + " } ";
        t += dport + "ip saddr @blocked_v4 drop\n";
        t += dport + "ip6 saddr @blocked_v6 drop\n";
    }
    t += "\t}\n}\n";
    return script;
}

QByteArray removeScript() {
    const QByteArray table = tableHeader();
    return table + "\ndelete " + table + '\n';
}

QStringList nftArguments() {
    return {QStringLiteral("-f"), QStringLiteral("-")};
}

QList<quint16> blockedPorts(const Config& config) {
    QList<quint16> out;
    for (const ListenerInfo& l : listeners())
        for (const ListenAddress& la : config.listeners(l.settingKey()))
            if (la.port != 0 && !out.contains(la.port)) out << la.port;
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace postern::blocknft
