// delivery_log.h — recent delivery failures, read back from mail.log (the web panel's
// dashboard; the log is an interface, log.h).
//
// Line grammar (what log::write produces; log.h):
//   line   = time SP program "[" pid "]:" SP level [SP "session=" id] SP event *(SP key "=" value)
//   value  = token / DQUOTE *(char / "\" ("\" / DQUOTE / "n" / "r" / "t" / "x" 2HEXDIG)) DQUOTE
// The failures taken (queue_runner.cpp's events):
//   delivery.remote      status=failed (permanent) or status=pending (will be retried), reply=
//   delivery.route_failed permanent=yes|no, error=, domain=
//   delivery.local       result= starting with 4 (temporary) or 5 (permanent)
// Interface:
//   parseLogLine(line)               time, event and the key=value fields, unquoted; nullopt
//                                    when the line is not of the grammar above.
//   parseDeliveryFailure(line)       one line -> a failure, or nullopt (other events, or
//                                    successes, or malformed lines).
//   recentDeliveryFailures(tail, max) the newest `max` failures of a piece of the log, newest
//                                    first; a first line cut by the piece's start is skipped.
//   readRecentDeliveryFailures(logDir, max)
//                                    the last kDeliveryLogTailBytes of <logDir>/mail.log.
// Security: the log holds addresses and remote replies chosen by others: callers escape
// what they show (the panel's htmlEscape). Values are unquoted, never interpreted.
// Limits: kDeliveryLogTailBytes (512 KiB) read; lines longer than kMaxLogLine (64 KiB)
// are skipped; kMaxLogFields (64) fields per line.
#pragma once

#include "result.h"

#include <QByteArray>
#include <QList>
#include <QMap>
#include <QString>

#include <optional>

namespace postern {

inline constexpr qint64 kDeliveryLogTailBytes = 512 * 1024;
inline constexpr qsizetype kMaxLogLine = 64 * 1024;
inline constexpr int kMaxLogFields = 64;

struct LogLine {
    QString time;
    QString event;
    QMap<QString, QString> fields;
};

struct DeliveryFailure {
    QString time;  // as logged (UTC, ISO 8601)
    QString queueId;
    QString recipient;  // empty for route failures (a whole domain)
    QString domain;
    bool permanent = false;
    QString reason;  // the remote reply or the error
};

std::optional<LogLine> parseLogLine(const QByteArray& line);
std::optional<DeliveryFailure> parseDeliveryFailure(const QByteArray& line);
QList<DeliveryFailure> recentDeliveryFailures(const QByteArray& tail, int max, bool firstLineCut);
Result<QList<DeliveryFailure>> readRecentDeliveryFailures(const QString& logDir, int max);

}  // namespace postern
