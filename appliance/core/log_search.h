// log_search.h — "search mail.log for the remote domain": every log line that
// mentions a term, plus the whole sessions and queue ids those lines belong to.
// One implementation, used by `posternctl log search TERM` (appliance/ctl/
// commands_cert.cpp) and by the web panel's log page (daemons/webd/
// panel_ops_pages.cpp).
//
// Interface: searchLog(logDir, term, maxLines) -> LogSearch. Reads
// <logDir>/mail.log.1 then <logDir>/mail.log, twice, streaming (never the whole
// log in memory): the first pass collects the keys (session=, id=, dsn_id=) of
// the lines containing `term` (case-insensitive, as plain text, never a
// pattern); the second yields every line containing the term or one of those
// keys, in log order, at most maxLines of them (truncated = more matched).
// validateTerm(term) is the check searchLog applies first (an error names it).
// Limits (named, tested at their boundary):
//   kMaxTermLength   200 characters: a term is a domain, an address, an id.
//   kMaxLineBytes    64 KiB read per log line (a longer one is cut there).
//   kMaxKeys         10000 distinct session/queue ids collected in the first pass.
//   maxLines         the caller's result cap (the panel: kPanelLogLines in
//                    panel_ops_pages.h; posternctl: none, 0).
// Security: the log folder belongs to the daemon user; as root the files are
// reached through SafeDir (safe_path.h: a link planted there is refused, only a
// regular file is read), otherwise with plain open(2). The lines are returned
// as read: a caller that renders them (HTML) must escape them.
// Blocking: reads files; the panel runs it on a worker thread, never on the
// event loop.
#pragma once

#include "result.h"

#include <QStringList>

namespace postern {

inline constexpr int kMaxLogTermLength = 200;
inline constexpr qint64 kMaxLogLineBytes = 64 * 1024;
inline constexpr int kMaxLogKeys = 10000;

struct LogSearch {
    QStringList lines;       // the matching lines, trimmed
    bool truncated = false;  // more lines matched than maxLines
    QStringList warnings;    // log files that exist but could not be read
};

Status validateLogTerm(const QString& term);
// maxLines 0: no cap. Fails when the term is refused or there is no readable log.
Result<LogSearch> searchLog(const QString& logDir, const QString& term, int maxLines);

}  // namespace postern
