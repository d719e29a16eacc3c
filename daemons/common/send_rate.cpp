// send_rate.cpp — see send_rate.h.
#include "send_rate.h"

#include "core/atomic_file.h"

#include <QCryptographicHash>
#include <QDateTime>
#include <QList>

namespace postern {

namespace {

constexpr QByteArrayView kMagic = "postern-send-rate 1\n";

qint64 widthOf(SendWindows::Window w) {
    return w == SendWindows::Window::Hour ? SendWindows::kHourBucketSecs : SendWindows::kDayBucketSecs;
}
qint64 bucketsOf(SendWindows::Window w) {
    return w == SendWindows::Window::Hour ? SendWindows::kHourBuckets : SendWindows::kDayBuckets;
}

// A decimal number in [0, max], nothing else.
std::optional<qint64> number(const QByteArray& text, qint64 max) {
    if (text.isEmpty() || text.size() > 19) return std::nullopt;
    qint64 v = 0;
    for (char ch : text) {
        if (ch < '0' || ch > '9') return std::nullopt;
        const int d = ch - '0';
        if (v > (max - d) / 10) return std::nullopt;
        v = v * 10 + d;
    }
    return v;
}

}  // namespace

bool SendWindows::live(Window w, qint64 bucket, qint64 nowSecs) {
    const qint64 current = nowSecs / widthOf(w);
    return bucket <= current && current - bucket < bucketsOf(w);
}

SendWindows::Counts SendWindows::sum(Window w, qint64 nowSecs) const {
    Counts c;
    const auto& map = w == Window::Hour ? m_hour : m_day;
    for (auto it = map.cbegin(); it != map.cend(); ++it)
        if (live(w, it.key(), nowSecs)) {
            c.messages += it.value().messages;
            c.recipients += it.value().recipients;
        }
    return c;
}

void SendWindows::add(qint64 nowSecs, qint64 messages, qint64 recipients) {
    for (Window w : {Window::Hour, Window::Day}) {
        auto& map = w == Window::Hour ? m_hour : m_day;
        Counts& c = map[nowSecs / widthOf(w)];
        c.messages = std::min(kMaxCount, c.messages + messages);
        c.recipients = std::min(kMaxCount, c.recipients + recipients);
        map.removeIf([w, nowSecs](const auto& it) { return !live(w, it.key(), nowSecs); });
    }
}

qint64 SendWindows::messagesIn(Window w, qint64 nowSecs) const {
    return sum(w, nowSecs).messages;
}
qint64 SendWindows::recipientsIn(Window w, qint64 nowSecs) const {
    return sum(w, nowSecs).recipients;
}

std::optional<SendLimitHit> SendWindows::exceeded(const SendLimits& limits, qint64 nowSecs, qint64 addMessages,
                                                  qint64 addRecipients) const {
    const Counts hour = sum(Window::Hour, nowSecs), day = sum(Window::Day, nowSecs);
    const struct {
        const char* name;
        qint64 limit, used, add;
    } checks[] = {
        {"messages_per_hour", limits.messagesPerHour, hour.messages, addMessages},
        {"messages_per_day", limits.messagesPerDay, day.messages, addMessages},
        {"recipients_per_hour", limits.recipientsPerHour, hour.recipients, addRecipients},
        {"recipients_per_day", limits.recipientsPerDay, day.recipients, addRecipients},
    };
    for (const auto& c : checks)
        if (c.limit > 0 && c.add > 0 && c.add > c.limit - std::min(c.used, c.limit))
            return SendLimitHit{QString::fromLatin1(c.name), c.limit, c.used};
    return std::nullopt;
}

SendWindows SendWindows::parse(const QByteArray& content) {
    SendWindows out;
    if (!content.startsWith(kMagic)) return out;
    const QList<QByteArray> lines = content.mid(kMagic.size()).split('\n');
    for (const QByteArray& line : lines) {
        const QList<QByteArray> f = line.split(' ');
        if (f.size() != 4 || (f[0] != "h" && f[0] != "d")) continue;
        const auto bucket = number(f[1], qint64(1) << 40), m = number(f[2], kMaxCount), r = number(f[3], kMaxCount);
        if (!bucket || !m || !r) continue;
        auto& map = f[0] == "h" ? out.m_hour : out.m_day;
        if (map.size() >= (f[0] == "h" ? kHourBuckets : kDayBuckets) && !map.contains(*bucket)) continue;
        map[*bucket] = Counts{*m, *r};
    }
    return out;
}

QByteArray SendWindows::serialize(qint64 nowSecs) const {
    QByteArray out(kMagic.data(), kMagic.size());
    for (Window w : {Window::Hour, Window::Day}) {
        const auto& map = w == Window::Hour ? m_hour : m_day;
        for (auto it = map.cbegin(); it != map.cend(); ++it) {
            if (!live(w, it.key(), nowSecs) || (it.value().messages == 0 && it.value().recipients == 0)) continue;
            out += (w == Window::Hour ? "h " : "d ") + QByteArray::number(it.key()) + ' ' +
                   QByteArray::number(it.value().messages) + ' ' + QByteArray::number(it.value().recipients) + '\n';
        }
    }
    return out;
}

SendRateStore::SendRateStore(QString dir)
    : m_dir(std::move(dir)), m_clock([] { return QDateTime::currentSecsSinceEpoch(); }) {}

QString SendRateStore::fileFor(const QString& user) const {
    const QByteArray d = QCryptographicHash::hash(user.toLower().toUtf8(), QCryptographicHash::Sha256).toHex().left(32);
    return m_dir + QLatin1Char('/') + QString::fromLatin1(d);
}

Result<SendWindows> SendRateStore::read(const QString& path) const {
    if (!FileStamp::of(path).exists) return SendWindows{};
    auto bytes = readFile(path, kMaxFileBytes);
    if (!bytes) return bytes.error();
    return SendWindows::parse(*bytes);
}

Result<std::optional<SendLimitHit>> SendRateStore::check(const QString& user, const SendLimits& limits, qint64 messages,
                                                         qint64 recipients) const {
    if (!limits.any()) return std::optional<SendLimitHit>{};
    auto w = read(fileFor(user));
    if (!w) return w.error();
    return w->exceeded(limits, m_clock(), messages, recipients);
}

Result<std::optional<SendLimitHit>> SendRateStore::record(const QString& user, const SendLimits& limits,
                                                          qint64 messages, qint64 recipients) {
    if (!limits.any()) return std::optional<SendLimitHit>{};
    if (auto st = ensureDirectory(m_dir, 0700); !st) return st.error();
    const QString path = fileFor(user);
    auto lock = FileLock::acquire(path + QStringLiteral(".lock"), FileLock::Mode::Exclusive, 2000);
    if (!lock) return lock.error();
    auto w = read(path);
    if (!w) return w.error();
    const qint64 now = m_clock();
    if (auto hit = w->exceeded(limits, now, messages, recipients)) return hit;
    w->add(now, messages, recipients);
    if (auto st = writeFileAtomic(path, w->serialize(now), 0600); !st) return st.error();
    return std::optional<SendLimitHit>{};
}

}  // namespace postern
