// config_schema.cpp — value syntax and validation for every setting type.
// The settings themselves are declared in settings/*.cpp.
#include "config_schema.h"

#include "address.h"

#include <QRegularExpression>
#include <algorithm>
#include <limits>

namespace postern {

QString toString(SettingType type) {
    switch (type) {
        case SettingType::String:
            return QStringLiteral("string");
        case SettingType::Int:
            return QStringLiteral("integer");
        case SettingType::Bool:
            return QStringLiteral("boolean");
        case SettingType::Duration:
            return QStringLiteral("duration");
        case SettingType::Size:
            return QStringLiteral("size");
        case SettingType::Path:
            return QStringLiteral("path");
        case SettingType::ListenList:
            return QStringLiteral("listen addresses");
        case SettingType::Enum:
            return QStringLiteral("choice");
        case SettingType::HostName:
            return QStringLiteral("host name");
        case SettingType::Email:
            return QStringLiteral("address");
        case SettingType::StringList:
            return QStringLiteral("list");
    }
    return QStringLiteral("?");
}

QString ListenAddress::toString() const {
    if (address == QHostAddress(QHostAddress::Any)) return QStringLiteral("*:%1").arg(port);
    if (address.protocol() == QAbstractSocket::IPv6Protocol)
        return QStringLiteral("[%1]:%2").arg(address.toString()).arg(port);
    return QStringLiteral("%1:%2").arg(address.toString()).arg(port);
}

Schema::Schema() {
    settings::addGeneral(m_settings);
    settings::addListeners(m_settings);
    settings::addTls(m_settings);
    settings::addAuth(m_settings);
    settings::addSmtp(m_settings);
    settings::addOutbound(m_settings);
    settings::addImap(m_settings);
    settings::addPop3(m_settings);
    settings::addManageSieve(m_settings);
    settings::addWeb(m_settings);
    settings::addBackup(m_settings);
    settings::addSpam(m_settings);
    settings::markRuntimeSafe(m_settings);
}

const Schema& Schema::instance() {
    static const Schema schema;
    return schema;
}

const Setting* Schema::find(const QString& key) const {
    for (const Setting& s : m_settings)
        if (s.key == key) return &s;
    return nullptr;
}

namespace {
int editDistance(const QString& a, const QString& b) {
    QList<int> prev(b.size() + 1), cur(b.size() + 1);
    for (qsizetype j = 0; j <= b.size(); ++j) prev[j] = int(j);
    for (qsizetype i = 1; i <= a.size(); ++i) {
        cur[0] = int(i);
        for (qsizetype j = 1; j <= b.size(); ++j) {
            int sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}
}  // namespace

QString Schema::suggest(const QString& unknownKey) const {
    QString best;
    int bestDist = std::numeric_limits<int>::max();
    for (const Setting& s : m_settings) {
        int d = editDistance(unknownKey, s.key);
        if (d < bestDist) {
            bestDist = d;
            best = s.key;
        }
    }
    return bestDist <= std::max<int>(2, int(unknownKey.size() / 4)) ? best : QString();
}

Result<qint64> Schema::parseInt(const QString& v) {
    bool ok = false;
    qint64 n = v.trimmed().toLongLong(&ok, 10);
    if (!ok) return Result<qint64>::fail(QStringLiteral("'%1' is not a whole number").arg(v));
    return n;
}

Result<bool> Schema::parseBool(const QString& v) {
    const QString l = v.trimmed().toLower();
    if (l == u"true" || l == u"yes" || l == u"on" || l == u"1") return true;
    if (l == u"false" || l == u"no" || l == u"off" || l == u"0") return false;
    return Result<bool>::fail(QStringLiteral("'%1' is not a boolean (use true or false)").arg(v));
}

Result<qint64> Schema::parseDurationMs(const QString& v) {
    static const QRegularExpression re(QStringLiteral("^\\s*(\\d{1,12})\\s*(ms|s|m|h|d|w)?\\s*$"),
                                       QRegularExpression::CaseInsensitiveOption);
    auto m = re.match(v);
    if (!m.hasMatch())
        return Result<qint64>::fail(QStringLiteral("'%1' is not a duration (e.g. 30s, 5m, 4h, 5d)").arg(v));
    qint64 n = m.captured(1).toLongLong();
    const QString unit = m.captured(2).toLower();
    qint64 mult = 1000;
    if (unit == u"ms")
        mult = 1;
    else if (unit == u"m")
        mult = 60'000;
    else if (unit == u"h")
        mult = 3'600'000;
    else if (unit == u"d")
        mult = 86'400'000;
    else if (unit == u"w")
        mult = 604'800'000;
    return n * mult;
}

Result<qint64> Schema::parseSize(const QString& v) {
    static const QRegularExpression re(QStringLiteral("^\\s*(\\d{1,15})\\s*([kmgt]i?b?|b)?\\s*$"),
                                       QRegularExpression::CaseInsensitiveOption);
    auto m = re.match(v);
    if (!m.hasMatch()) return Result<qint64>::fail(QStringLiteral("'%1' is not a size (e.g. 64k, 25M, 1G)").arg(v));
    qint64 n = m.captured(1).toLongLong();
    const QChar unit = m.captured(2).isEmpty() ? QLatin1Char('b') : m.captured(2).at(0).toLower();
    int shift = 0;
    if (unit == u'k')
        shift = 10;
    else if (unit == u'm')
        shift = 20;
    else if (unit == u'g')
        shift = 30;
    else if (unit == u't')
        shift = 40;
    if (shift && n > (std::numeric_limits<qint64>::max() >> shift))
        return Result<qint64>::fail(QStringLiteral("'%1' is too large").arg(v));
    return n << shift;
}

QString Schema::formatSize(qint64 bytes) {
    static const char* const kUnits[] = {"B", "K", "M", "G", "T"};
    int unit = 0;
    qint64 v = bytes;
    while (unit < 4 && v >= 1024 && v % 1024 == 0) {
        v /= 1024;
        ++unit;
    }
    return QString::number(v) + QLatin1String(kUnits[unit]);
}

QStringList Schema::parseList(const QString& v) {
    QStringList out;
    for (const QString& part : v.split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        QString t = part.trimmed();
        if (!t.isEmpty()) out << t;
    }
    return out;
}

Result<QList<ListenAddress>> Schema::parseListenList(const QString& v) {
    QList<ListenAddress> out;
    for (const QString& item : parseList(v)) {
        const qsizetype colon = item.lastIndexOf(QLatin1Char(':'));
        if (colon <= 0)
            return Result<QList<ListenAddress>>::fail(
                QStringLiteral("'%1' is not host:port (e.g. *:25, 127.0.0.1:25, [::1]:25)").arg(item));
        QString host = item.left(colon);
        const QString portText = item.mid(colon + 1);
        bool ok = false;
        const uint port = portText.toUInt(&ok);
        if (!ok || port > 65535)
            return Result<QList<ListenAddress>>::fail(QStringLiteral("'%1': port must be 0-65535").arg(item));
        ListenAddress la;
        la.port = quint16(port);
        if (host == u"*") {
            la.address = QHostAddress(QHostAddress::Any);
        } else {
            if (host.startsWith(QLatin1Char('[')) && host.endsWith(QLatin1Char(']')))
                host = host.mid(1, host.size() - 2);
            else if (host.contains(QLatin1Char(':')))
                return Result<QList<ListenAddress>>::fail(
                    QStringLiteral("'%1': write IPv6 addresses in brackets, e.g. [::1]:25").arg(item));
            if (!la.address.setAddress(host))
                return Result<QList<ListenAddress>>::fail(
                    QStringLiteral("'%1': '%2' is not an IP address (use * for all addresses)").arg(item, host));
        }
        if (out.contains(la))
            return Result<QList<ListenAddress>>::fail(QStringLiteral("'%1' is listed twice").arg(item));
        out << la;
    }
    return out;
}

Result<QString> Schema::validate(const Setting& s, const QString& raw) {
    const QString v = raw.trimmed();
    auto range = [&](qint64 n, const QString& shown) -> Result<QString> {
        if (s.max > s.min && (n < s.min || n > s.max))
            return Result<QString>::fail(
                QStringLiteral("%1 is outside the allowed range %2..%3").arg(shown).arg(s.min).arg(s.max));
        return shown;
    };
    switch (s.type) {
        case SettingType::String:
            if (v.contains(QLatin1Char('\n')) || v.contains(QLatin1Char('\r')))
                return Result<QString>::fail(QStringLiteral("must be a single line"));
            return v;
        case SettingType::Path:
            if (v.contains(QChar(0)) || v.contains(QLatin1Char('\n')))
                return Result<QString>::fail(QStringLiteral("not a usable path"));
            return v;
        case SettingType::Int: {
            auto n = parseInt(v);
            if (!n) return n.error();
            return range(*n, QString::number(*n));
        }
        case SettingType::Bool: {
            auto b = parseBool(v);
            if (!b) return b.error();
            return QString::fromLatin1(*b ? "true" : "false");
        }
        case SettingType::Duration: {
            auto ms = parseDurationMs(v);
            if (!ms) return ms.error();
            if (s.max > s.min && (*ms < s.min * 1000 || *ms > s.max * 1000))
                return Result<QString>::fail(
                    QStringLiteral("%1 is outside the allowed range %2s..%3s").arg(v).arg(s.min).arg(s.max));
            return v.toLower().remove(QLatin1Char(' '));
        }
        case SettingType::Size: {
            auto n = parseSize(v);
            if (!n) return n.error();
            if (s.max > s.min && (*n < s.min || *n > s.max))
                return Result<QString>::fail(
                    QStringLiteral("%1 is outside the allowed range %2..%3 bytes").arg(v).arg(s.min).arg(s.max));
            return v.toUpper().remove(QLatin1Char(' '));
        }
        case SettingType::ListenList: {
            auto l = parseListenList(v);
            if (!l) return l.error();
            QStringList parts;
            for (const auto& la : *l) parts << la.toString();
            return parts.join(QStringLiteral(", "));
        }
        case SettingType::Enum:
            if (!s.choices.contains(v.toLower()))
                return Result<QString>::fail(
                    QStringLiteral("'%1' is not one of: %2").arg(v, s.choices.join(QStringLiteral(", "))));
            return v.toLower();
        case SettingType::HostName: {
            if (v.isEmpty()) return v;
            auto d = normalizeDomain(v);
            if (!d) return d.error();
            return *d;
        }
        case SettingType::Email: {
            if (v.isEmpty()) return v;
            auto a = normalizeAddress(v);
            if (!a) return a.error();
            return *a;
        }
        case SettingType::StringList:
            return parseList(v).join(QStringLiteral(", "));
    }
    return v;
}

}  // namespace postern
