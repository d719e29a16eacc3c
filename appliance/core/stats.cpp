// stats.cpp — see stats.h.
#include "stats.h"

#include "atomic_file.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMutex>

namespace postern::stats {

namespace {
QMutex& mutex() {
    static QMutex m;
    return m;
}
// Keyed by "name{k=v,...}" (labels in key order), so each series has one entry.
QMap<QString, Counter>& table() {
    static QMap<QString, Counter> t;
    return t;
}
QString seriesKey(const QString& name, const Labels& labels) {
    QString k = name + QLatin1Char('{');
    for (auto it = labels.cbegin(); it != labels.cend(); ++it)
        k += it.key() + QLatin1Char('=') + it.value() + QLatin1Char('\x1f');
    return k + QLatin1Char('}');
}
}  // namespace

void add(const QString& name, const Labels& labels, quint64 n) {
    QMutexLocker lock(&mutex());
    Counter& c = table()[seriesKey(name, labels)];
    if (c.name.isEmpty()) {
        c.name = name;
        c.labels = labels;
    }
    c.value += n;
}

QList<Counter> snapshot() {
    QMutexLocker lock(&mutex());
    return table().values();
}

Status writeFile(const QString& path, const QString& program) {
    QJsonArray counters;
    for (const Counter& c : snapshot()) {
        QJsonObject labels;
        for (auto it = c.labels.cbegin(); it != c.labels.cend(); ++it) labels.insert(it.key(), it.value());
        counters << QJsonObject{{QStringLiteral("name"), c.name},
                                {QStringLiteral("labels"), labels},
                                {QStringLiteral("value"), qint64(c.value)}};
    }
    const QJsonObject doc{{QStringLiteral("program"), program}, {QStringLiteral("counters"), counters}};
    return writeFileAtomic(path, QJsonDocument(doc).toJson(QJsonDocument::Compact), 0644);
}

QList<Counter> readFile(const QString& path, QString* program) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return {};
    const QJsonObject doc = QJsonDocument::fromJson(f.read(4 * 1024 * 1024)).object();
    if (program) *program = doc.value(QStringLiteral("program")).toString();
    QList<Counter> out;
    for (const QJsonValue& v : doc.value(QStringLiteral("counters")).toArray()) {
        const QJsonObject o = v.toObject();
        Counter c;
        c.name = o.value(QStringLiteral("name")).toString();
        const QJsonObject labels = o.value(QStringLiteral("labels")).toObject();
        for (auto it = labels.begin(); it != labels.end(); ++it) c.labels.insert(it.key(), it.value().toString());
        c.value = quint64(o.value(QStringLiteral("value")).toInteger());
        if (!c.name.isEmpty()) out << c;
    }
    return out;
}

}  // namespace postern::stats
