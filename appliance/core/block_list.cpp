// block_list.cpp — see block_list.h.
#include "block_list.h"

#include <QDateTime>

#include <algorithm>

namespace postern {

namespace {

constexpr QByteArrayView kMagic = "postern-block-list 1\n";

QHostAddress plain(const QHostAddress& a) {
    bool v4 = false;
    const quint32 x = a.toIPv4Address(&v4);
    return v4 ? QHostAddress(x) : a;
}

}  // namespace

BlockList::BlockList(QString path)
    : m_path(std::move(path)), m_clock([] { return QDateTime::currentMSecsSinceEpoch(); }) {}

Result<QString> BlockList::parseSubnet(const QString& text) {
    const QString t = text.trimmed();
    if (t.isEmpty() || t.size() > 64) return Result<QString>::fail(QStringLiteral("'%1' is not an address").arg(text));
    QHostAddress address;
    int prefix = -1;
    if (t.contains(QLatin1Char('/'))) {
        const auto [net, len] = QHostAddress::parseSubnet(t);
        if (net.isNull() || len < 0)
            return Result<QString>::fail(QStringLiteral("'%1' is not an address or subnet").arg(text));
        address = net;
        prefix = len;
    } else {
        if (!address.setAddress(t)) return Result<QString>::fail(QStringLiteral("'%1' is not an address").arg(text));
    }
    address = plain(address);
    if (!address.scopeId().isEmpty()) address.setScopeId(QString());
    const bool v4 = address.protocol() == QAbstractSocket::IPv4Protocol;
    const int max = v4 ? 32 : 128;
    if (prefix < 0) prefix = max;
    if (prefix > max) return Result<QString>::fail(QStringLiteral("'%1': prefix longer than %2").arg(text).arg(max));
    // Canonical: the network address itself (host bits cleared).
    if (v4) {
        const quint32 mask = prefix == 0 ? 0 : ~quint32(0) << (32 - prefix);
        address = QHostAddress(address.toIPv4Address() & mask);
    } else {
        Q_IPV6ADDR a = address.toIPv6Address();
        for (int i = 0; i < 16; ++i) {
            const int bits = std::clamp(prefix - i * 8, 0, 8);
            a[i] = quint8(a[i] & (bits == 0 ? 0 : 0xff << (8 - bits)));
        }
        address = QHostAddress(a);
    }
    return QStringLiteral("%1/%2").arg(address.toString()).arg(prefix);
}

QString BlockList::autoBlockSubnet(const QHostAddress& peer) {
    const QHostAddress p = plain(peer);
    const int prefix = p.protocol() == QAbstractSocket::IPv4Protocol ? 32 : 48;
    auto s = parseSubnet(QStringLiteral("%1/%2").arg(p.toString()).arg(prefix));
    return s ? *s : QString();
}

QList<BlockList::Entry> BlockList::parse(const QByteArray& content) {
    QList<Entry> out;
    if (!content.startsWith(kMagic)) return out;
    const QList<QByteArray> lines = content.mid(kMagic.size()).split('\n');
    for (const QByteArray& line : lines) {
        const QList<QByteArray> f = line.split(' ');
        if (f.size() != 3 || (f.at(2) != "auth" && f.at(2) != "admin")) continue;
        bool ok = false;
        const qint64 until = f.at(1).toLongLong(&ok);
        if (!ok || until <= 0) continue;
        auto subnet = parseSubnet(QString::fromLatin1(f.at(0)));
        if (!subnet || *subnet != QString::fromLatin1(f.at(0))) continue;  // canonical only
        out << Entry{*subnet, until, QString::fromLatin1(f.at(2))};
        if (out.size() >= kMaxEntries * 2) break;  // bounded even for a doctored file
    }
    return out;
}

QByteArray BlockList::serialize(const QList<Entry>& entries) {
    QByteArray out = kMagic.toByteArray();
    for (const Entry& e : entries)
        out += e.subnet.toLatin1() + ' ' + QByteArray::number(e.untilMs) + ' ' + e.source.toLatin1() + '\n';
    return out;
}

Result<QList<BlockList::Entry>> BlockList::readLocked() const {
    if (!FileStamp::of(m_path).exists) return QList<Entry>{};
    auto bytes = readFile(m_path, kMaxFileBytes);
    if (!bytes) return bytes.error();
    QList<Entry> entries = parse(*bytes);
    const qint64 t = now();
    entries.removeIf([t](const Entry& e) { return e.untilMs <= t; });
    return entries;
}

void BlockList::reloadIfChanged() {
    const FileStamp stamp = FileStamp::of(m_path);
    if (m_loaded && stamp == m_stamp) return;
    m_stamp = stamp;
    m_loaded = true;
    ++m_generation;
    m_cache.clear();
    if (!stamp.exists) return;
    auto bytes = readFile(m_path, kMaxFileBytes);
    if (!bytes) return;
    for (const Entry& e : parse(*bytes)) {
        const auto [net, len] = QHostAddress::parseSubnet(e.subnet);
        m_cache << Parsed{net, len, e};
    }
}

std::optional<BlockList::Entry> BlockList::blocked(const QHostAddress& peer) {
    reloadIfChanged();
    if (m_cache.isEmpty()) return std::nullopt;
    const QHostAddress p = plain(peer);
    const qint64 t = now();
    for (const Parsed& x : std::as_const(m_cache))
        if (x.entry.untilMs > t && p.isInSubnet(x.network, x.prefix)) return x.entry;
    return std::nullopt;
}

// Under the list's lock: the unexpired entries, edited by `change`, written back when it
// returns true; its false or error is passed on.
Result<bool> BlockList::update(const std::function<Result<bool>(QList<Entry>&)>& change) {
    auto lock = FileLock::acquire(m_path + QStringLiteral(".lock"), FileLock::Mode::Exclusive, 5000);
    if (!lock) return lock.error();
    auto entries = readLocked();
    if (!entries) return entries.error();
    auto changed = change(*entries);
    if (!changed || !*changed) return changed;
    if (auto st = writeFileAtomic(m_path, serialize(*entries), 0644); !st) return st.error();
    return true;
}

Status BlockList::add(const QString& address, qint64 durationMs, const QString& source) {
    if (durationMs < kMinDurationMs || durationMs > kMaxDurationMs)
        return Status::fail(QStringLiteral("block duration must be between 1 minute and 30 days"));
    auto subnet = parseSubnet(address);
    if (!subnet) return subnet.error();
    auto added = update([&](QList<Entry>& entries) -> Result<bool> {
        const qint64 until = now() + durationMs;
        auto it = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.subnet == *subnet; });
        if (it != entries.end()) {
            it->untilMs = until;
            it->source = source;
        } else {
            if (entries.size() >= kMaxEntries)
                return Result<bool>::fail(
                    QStringLiteral("the block list is full (%1 entries, the limit)").arg(kMaxEntries));
            entries.append(Entry{*subnet, until, source});
        }
        return true;
    });
    if (!added) return added.error();
    return {};
}

Result<bool> BlockList::remove(const QString& address) {
    auto subnet = parseSubnet(address);
    if (!subnet) return subnet.error();
    return update([&](QList<Entry>& entries) -> Result<bool> {
        return entries.removeIf([&](const Entry& e) { return e.subnet == *subnet; }) > 0;
    });
}

Result<QList<BlockList::Entry>> BlockList::list() {
    auto entries = readLocked();
    if (!entries) return entries;
    std::sort(entries->begin(), entries->end(), [](const Entry& a, const Entry& b) { return a.untilMs < b.untilMs; });
    return entries;
}

}  // namespace postern
