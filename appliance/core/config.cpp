// config.cpp — see config.h.
#include "config.h"

#include "atomic_file.h"
#include "setting_keys.h"

#include <QDir>
#include <QFileInfo>
#include <QHostInfo>
#include <QProcessEnvironment>

namespace postern {

namespace {
constexpr qint64 kMaxConfigBytes = 1 << 20;
constexpr int kMaxLineLength = 8192;

const Setting& settingFor(const QString& key) {
    const Setting* s = Schema::instance().find(key);
    Q_ASSERT_X(s, "Config", qPrintable(QStringLiteral("undeclared setting ") + key));
    if (!s) qFatal("undeclared setting %s", qPrintable(key));
    return *s;
}
}  // namespace

QString resolveConfigDir(const QStringList& args) {
    for (qsizetype i = 0; i < args.size(); ++i) {
        const QString& a = args.at(i);
        if ((a == u"--config" || a == u"-c") && i + 1 < args.size()) return QDir(args.at(i + 1)).absolutePath();
        if (a.startsWith(u"--config=")) return QDir(a.mid(9)).absolutePath();
    }
    const QString env = qEnvironmentVariable("POSTERN_CONFIG");
    if (!env.isEmpty()) return QDir(env).absolutePath();
    return QString::fromLatin1(kDefaultConfigDir);
}

QString Config::filePath() const {
    return m_configDir + QLatin1Char('/') + QLatin1String(kConfigFileName);
}

Result<Config> Config::load(const QString& configDir) {
    const QString file = QDir(configDir).absoluteFilePath(QLatin1String(kConfigFileName));
    if (!QFileInfo::exists(file)) {
        Config c;
        c.m_configDir = QDir(configDir).absolutePath();
        return c;
    }
    auto bytes = readFile(file, kMaxConfigBytes);
    if (!bytes) return bytes.error();
    return parse(*bytes, file, configDir);
}

Result<Config> Config::parse(const QByteArray& text, const QString& fileName, const QString& configDir) {
    Config c;
    c.m_configDir = QDir(configDir).absolutePath();
    QHash<QString, int> firstLine;
    const QList<QByteArray> rawLines = text.split('\n');
    int lineNo = 0;
    for (qsizetype i = 0; i < rawLines.size(); ++i) {
        ++lineNo;
        QByteArray rawLine = rawLines.at(i);
        if (i == rawLines.size() - 1 && rawLine.isEmpty()) break;  // final newline
        if (rawLine.endsWith('\r')) rawLine.chop(1);
        auto where = [&](const QString& key) {
            return key.isEmpty() ? QStringLiteral("%1:%2").arg(fileName).arg(lineNo)
                                 : QStringLiteral("%1:%2: key '%3'").arg(fileName).arg(lineNo).arg(key);
        };
        if (rawLine.size() > kMaxLineLength)
            return Result<Config>::fail(
                QStringLiteral("%1: line longer than %2 characters").arg(where({})).arg(kMaxLineLength));
        const QString line = QString::fromUtf8(rawLine);
        if (line.toUtf8() != rawLine) return Result<Config>::fail(QStringLiteral("%1: not valid UTF-8").arg(where({})));
        const QString trimmed = line.trimmed();
        if (trimmed.isEmpty() || trimmed.startsWith(QLatin1Char('#'))) {
            c.m_lines.append({line, {}});
            continue;
        }
        const qsizetype eq = trimmed.indexOf(QLatin1Char('='));
        if (eq < 0)
            return Result<Config>::fail(
                QStringLiteral("%1: expected 'key = value', found '%2'").arg(where({}), trimmed));
        const QString key = trimmed.left(eq).trimmed();
        const QString val = trimmed.mid(eq + 1).trimmed();
        if (key.isEmpty()) return Result<Config>::fail(QStringLiteral("%1: missing key before '='").arg(where({})));
        const Setting* s = Schema::instance().find(key);
        if (!s) {
            QString hint = Schema::instance().suggest(key);
            return Result<Config>::fail(
                QStringLiteral("%1: unknown setting%2")
                    .arg(where(key), hint.isEmpty() ? QString() : QStringLiteral(" (did you mean '%1'?)").arg(hint)));
        }
        if (firstLine.contains(key))
            return Result<Config>::fail(
                QStringLiteral("%1: set twice (first on line %2)").arg(where(key)).arg(firstLine.value(key)));
        firstLine.insert(key, lineNo);
        auto canon = Schema::validate(*s, val);
        if (!canon) return Result<Config>::fail(QStringLiteral("%1: %2").arg(where(key), canon.errorMessage()));
        c.m_values.insert(key, *canon);
        c.m_lines.append({line, key});
    }
    return c;
}

QString Config::value(const QString& key) const {
    auto it = m_values.constFind(key);
    if (it != m_values.cend()) return *it;
    return settingFor(key).defaultValue;
}

qint64 Config::integer(const QString& key) const {
    return Schema::parseInt(value(key)).valueOr(0);
}
bool Config::flag(const QString& key) const {
    return Schema::parseBool(value(key)).valueOr(false);
}
qint64 Config::durationMs(const QString& key) const {
    return Schema::parseDurationMs(value(key)).valueOr(0);
}
qint64 Config::size(const QString& key) const {
    return Schema::parseSize(value(key)).valueOr(0);
}
QStringList Config::list(const QString& key) const {
    return Schema::parseList(value(key));
}
QList<ListenAddress> Config::listeners(const QString& key) const {
    return Schema::parseListenList(value(key)).valueOr({});
}

QString Config::resolvePath(const QString& p) const {
    if (p.isEmpty()) return p;
    if (QDir::isAbsolutePath(p)) return QDir::cleanPath(p);
    return QDir::cleanPath(m_configDir + QLatin1Char('/') + p);
}

QString Config::path(const QString& key) const {
    return resolvePath(value(key));
}
QString Config::dataDir() const {
    return get(*this, keys::general::dataDir);
}
QString Config::logDir() const {
    QString p = get(*this, keys::general::logDir);
    return p.isEmpty() ? dataDir() + QStringLiteral("/log") : p;
}
QString Config::runDir() const {
    QString p = get(*this, keys::general::runDir);
    return p.isEmpty() ? dataDir() + QStringLiteral("/run") : p;
}
QString Config::mailDir() const {
    return dataDir() + QStringLiteral("/mail");
}
QString Config::queueDir() const {
    return dataDir() + QStringLiteral("/queue");
}

QString Config::panelUrl() const {
    const QList<ListenAddress> https = get(*this, keys::https::listen);
    if (https.isEmpty()) return {};
    const quint16 port = https.first().port;
    const QString portPart = (port == 0 || port == 443) ? QString() : QStringLiteral(":%1").arg(port);
    return QStringLiteral("https://%1%2/panel/").arg(hostname(), portPart);
}

QString Config::hostname() const {
    QString h = get(*this, keys::general::hostname);
    if (!h.isEmpty()) return h;
    QString sys = QHostInfo::localHostName();
    QString dom = QHostInfo::localDomainName();
    if (!sys.contains(QLatin1Char('.')) && !dom.isEmpty()) sys += QLatin1Char('.') + dom;
    return sys.isEmpty() ? QStringLiteral("localhost") : sys.toLower();
}

Status Config::set(const QString& key, const QString& val) {
    const Setting* s = Schema::instance().find(key);
    if (!s) {
        QString hint = Schema::instance().suggest(key);
        return Status::fail(
            QStringLiteral("unknown setting '%1'%2")
                .arg(key, hint.isEmpty() ? QString() : QStringLiteral(" (did you mean '%1'?)").arg(hint)));
    }
    auto canon = Schema::validate(*s, val);
    if (!canon) return Status::fail(QStringLiteral("%1: %2").arg(key, canon.errorMessage()));
    if (!m_values.contains(key)) m_lines.append({{}, key});
    m_values.insert(key, *canon);
    return {};
}

Status Config::unset(const QString& key) {
    if (!Schema::instance().find(key)) return Status::fail(QStringLiteral("unknown setting '%1'").arg(key));
    m_values.remove(key);
    m_lines.removeIf([&](const Line& l) { return l.key == key; });
    return {};
}

QByteArray Config::serialize() const {
    QString out;
    if (m_lines.isEmpty())
        out += QStringLiteral("# Postern configuration. `posternctl config reference` lists every setting.\n");
    for (const Line& l : m_lines) {
        if (l.key.isEmpty())
            out += l.text;
        else
            out += l.key + QStringLiteral(" = ") + m_values.value(l.key);
        out += QLatin1Char('\n');
    }
    return out.toUtf8();
}

Status Config::save() const {
    if (auto st = ensureDirectory(m_configDir, 0755); !st) return st;
    return writeFileAtomic(filePath(), serialize(), 0644);
}

QString Config::render(bool changedOnly, bool withDocs) const {
    QString out;
    QString section;
    for (const Setting& s : Schema::instance().all()) {
        const QString v = value(s.key);
        if (changedOnly && (!m_values.contains(s.key) || v == s.defaultValue)) continue;
        if (withDocs && s.section != section) {
            section = s.section;
            out += QStringLiteral("\n# --- %1 ---\n").arg(section);
        }
        if (withDocs) out += QStringLiteral("# %1\n").arg(s.doc);
        out += s.key + QStringLiteral(" = ") + v + QLatin1Char('\n');
    }
    return out;
}

QString Config::reference() {
    QString out = QStringLiteral("| key | type | default | restart | meaning |\n| --- | --- | --- | --- | --- |\n");
    for (const Setting& s : Schema::instance().all()) {
        QString type = toString(s.type);
        if (s.type == SettingType::Enum)
            type += QStringLiteral(" (") + s.choices.join(QLatin1Char('/')) + QLatin1Char(')');
        else if (s.max > s.min)
            type += QStringLiteral(" %1..%2").arg(s.min).arg(s.max);
        out += QStringLiteral("| `%1` | %2 | `%3` | %4 | %5 |\n")
                   .arg(s.key, type, s.defaultValue, s.restart ? QStringLiteral("yes") : QStringLiteral("no"), s.doc);
    }
    return out;
}

}  // namespace postern
