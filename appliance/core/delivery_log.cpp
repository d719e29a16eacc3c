// delivery_log.cpp — see delivery_log.h.
#include "delivery_log.h"

#include <QFile>

namespace postern {

namespace {

bool isHex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// One value starting at `pos` (a token up to the next space, or a quoted string); pos ends
// after it. nullopt on a bad escape or an unterminated quote.
std::optional<QByteArray> readValue(const QByteArray& s, qsizetype& pos) {
    QByteArray out;
    if (pos < s.size() && s.at(pos) == '"') {
        ++pos;
        while (pos < s.size()) {
            const char c = s.at(pos++);
            if (c == '"') return out;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos >= s.size()) return std::nullopt;
            const char e = s.at(pos++);
            switch (e) {
                case '\\':
                    out += '\\';
                    break;
                case '"':
                    out += '"';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'x':
                    if (s.size() - pos < 2 || !isHex(s.at(pos)) || !isHex(s.at(pos + 1))) return std::nullopt;
                    out += char(s.mid(pos, 2).toInt(nullptr, 16));
                    pos += 2;
                    break;
                default:
                    return std::nullopt;
            }
        }
        return std::nullopt;  // no closing quote
    }
    const qsizetype end = s.indexOf(' ', pos);
    const qsizetype stop = end < 0 ? s.size() : end;
    out = s.mid(pos, stop - pos);
    if (out.contains('"')) return std::nullopt;
    pos = stop;
    return out;
}

}  // namespace

std::optional<LogLine> parseLogLine(const QByteArray& lineIn) {
    if (lineIn.size() > kMaxLogLine) return std::nullopt;
    QByteArray line = lineIn;
    if (line.endsWith('\n')) line.chop(1);
    QList<QByteArray> head;
    qsizetype pos = 0;
    // time, program[pid]:, level, then the event (after an optional session=).
    while (head.size() < 4) {
        const qsizetype end = line.indexOf(' ', pos);
        if (end <= pos) {
            if (end < 0 && pos < line.size() && head.size() == 3) {  // event without fields
                head << line.mid(pos);
                pos = line.size();
                break;
            }
            return std::nullopt;
        }
        QByteArray word = line.mid(pos, end - pos);
        pos = end + 1;
        if (head.size() == 3 && word.startsWith("session=")) continue;
        head << word;
    }
    if (!head.at(1).endsWith("]:") || head.at(3).contains('=')) return std::nullopt;
    LogLine out;
    out.time = QString::fromUtf8(head.at(0));
    out.event = QString::fromUtf8(head.at(3));
    if (pos > line.size()) return out;
    while (pos < line.size()) {
        if (out.fields.size() >= kMaxLogFields) return std::nullopt;
        const qsizetype eq = line.indexOf('=', pos);
        if (eq <= pos) return std::nullopt;
        const QByteArray key = line.mid(pos, eq - pos);
        if (key.contains(' ') || key.contains('"')) return std::nullopt;
        pos = eq + 1;
        auto value = readValue(line, pos);
        if (!value) return std::nullopt;
        out.fields.insert(QString::fromUtf8(key), QString::fromUtf8(*value));
        if (pos < line.size()) {
            if (line.at(pos) != ' ') return std::nullopt;
            ++pos;
            if (pos == line.size()) return std::nullopt;  // trailing space
        }
    }
    return out;
}

std::optional<DeliveryFailure> parseDeliveryFailure(const QByteArray& line) {
    // Cheap filter first: most lines are other events.
    if (!line.contains(" delivery.")) return std::nullopt;
    auto l = parseLogLine(line);
    if (!l) return std::nullopt;
    DeliveryFailure f;
    f.time = l->time;
    f.queueId = l->fields.value(QStringLiteral("id"));
    const auto domainOf = [](const QString& address) { return address.mid(address.lastIndexOf(QLatin1Char('@')) + 1); };
    if (l->event == u"delivery.remote") {
        const QString status = l->fields.value(QStringLiteral("status"));
        if (status != u"failed" && status != u"pending") return std::nullopt;
        f.permanent = status == u"failed";
        f.recipient = l->fields.value(QStringLiteral("to"));
        f.domain = domainOf(f.recipient);
        f.reason = l->fields.value(QStringLiteral("reply"));
        return f;
    }
    if (l->event == u"delivery.route_failed") {
        f.permanent = l->fields.value(QStringLiteral("permanent")) == u"yes";
        f.domain = l->fields.value(QStringLiteral("domain"));
        f.reason = l->fields.value(QStringLiteral("error"));
        return f;
    }
    if (l->event == u"delivery.local") {
        const QString result = l->fields.value(QStringLiteral("result"));
        if (!result.startsWith(QLatin1Char('4')) && !result.startsWith(QLatin1Char('5'))) return std::nullopt;
        f.permanent = result.startsWith(QLatin1Char('5'));
        f.recipient = l->fields.value(QStringLiteral("to"));
        f.domain = domainOf(f.recipient);
        f.reason = result;
        return f;
    }
    return std::nullopt;
}

QList<DeliveryFailure> recentDeliveryFailures(const QByteArray& tail, int max, bool firstLineCut) {
    QList<DeliveryFailure> out;
    if (max <= 0) return out;
    const QList<QByteArray> lines = tail.split('\n');
    const qsizetype first = firstLineCut ? 1 : 0;
    for (qsizetype i = lines.size() - 1; i >= first && out.size() < max; --i)
        if (auto f = parseDeliveryFailure(lines.at(i))) out << *f;
    return out;
}

Result<QList<DeliveryFailure>> readRecentDeliveryFailures(const QString& logDir, int max) {
    QFile f(logDir + QStringLiteral("/mail.log"));
    if (!f.exists()) return QList<DeliveryFailure>{};
    if (!f.open(QIODevice::ReadOnly))
        return Result<QList<DeliveryFailure>>::fail(QStringLiteral("%1: %2").arg(f.fileName(), f.errorString()));
    const qint64 size = f.size();
    const bool cut = size > kDeliveryLogTailBytes;
    if (cut && !f.seek(size - kDeliveryLogTailBytes))
        return Result<QList<DeliveryFailure>>::fail(QStringLiteral("%1: cannot seek").arg(f.fileName()));
    return recentDeliveryFailures(f.read(kDeliveryLogTailBytes), max, cut);
}

}  // namespace postern
