// stats.h — process-wide counters for /metrics (Prometheus counters).
//
// Interface: stats::add(name, labels, n) from any thread; stats::snapshot()
// the current values; stats::writeFile(path, program) writes them as JSON
// ({"program":..., "counters":[{"name":..., "labels":{...}, "value":N}]})
// atomically — daemon_main does that every few seconds to
// <run_dir>/<program>.stats, and postern-webd exports every such file.
// Names follow Prometheus conventions (postern_..._total); label values are
// short fixed words chosen by the code (listener names, results, TLS
// versions), never client input, so the set stays small.
#pragma once

#include "result.h"

#include <QList>
#include <QMap>
#include <QString>

namespace postern::stats {

using Labels = QMap<QString, QString>;

struct Counter {
    QString name;
    Labels labels;
    quint64 value = 0;
};

void add(const QString& name, const Labels& labels = {}, quint64 n = 1);
QList<Counter> snapshot();
Status writeFile(const QString& path, const QString& program);
// Reads a file written by writeFile (empty on any error).
QList<Counter> readFile(const QString& path, QString* program = nullptr);

}  // namespace postern::stats
