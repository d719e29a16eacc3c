// queue_ops.h — the administrator's operations on the outbound queue: one
// implementation, used by `posternctl queue ...` (appliance/ctl/commands_queue.cpp)
// and by the web panel's queue page (daemons/webd/panel_ops_pages.cpp).
//
// Interface (all take the queue folder, <data_dir>/queue):
//   listMessages(dir, max, &errors)   at most `max` messages over all states, oldest
//                                     first per state; total = how many there are.
//   findMessage(dir, id)              one message's state and envelope; the id is
//                                     validated first (16 hex digits, case-insensitive).
//   headerSummary(dir, state, id)     From/To/Cc/Subject/Date/Message-ID of its header,
//                                     decoded (RFC 2047), at most kMaxHeaderRead read.
//   retryMessage(dir, id)             a deferred message due now.
//   retryAll(dir)                     every deferred message due now; returns the count.
//   holdMessage(dir, id)              incoming/deferred -> hold.
//   releaseMessage(dir, id)           hold -> deferred, due now.
//   deleteMessage(dir, id)            remove (any state but active); no bounce is sent.
// Each changing operation returns the one-line result shown to the operator
// ("0123456789ABCDEF held") or an error naming why (not found, wrong state,
// being delivered right now). Messages in active/ are being delivered by
// postern-queued at this moment and are never changed (try again in a moment);
// postern-queued notices the new state on its next scan.
// Security: the caller must run as the queue's owner (system_user): posternctl
// drops root first (CtlContext::runAsDaemonUser), postern-webd runs as that
// user. No function here follows an id into a path before isValidQueueId().
// Limits: kMaxHeaderRead (256 KiB) of a body is parsed for the summary; the
// envelope itself is bounded by kMaxEnvelopeBytes (queue.h).
#pragma once

#include "queue.h"

#include <QPair>

namespace postern::spool {

inline constexpr qint64 kMaxHeaderRead = 256 * 1024;

struct QueueListing {
    QList<QueueEntry> entries;  // at most the `max` asked for
    int total = 0;              // messages found (entries may hold fewer)
    QStringList errors;         // envelopes that did not parse
};
QueueListing listMessages(const QString& queueDir, int max);

Result<QueueEntry> findMessage(const QString& queueDir, const QString& id);
QList<QPair<QString, QString>> headerSummary(const QString& queueDir, QueueState state, const QString& id);

Result<QString> retryMessage(const QString& queueDir, const QString& id);
Result<int> retryAll(const QString& queueDir);
Result<QString> holdMessage(const QString& queueDir, const QString& id);
Result<QString> releaseMessage(const QString& queueDir, const QString& id);
Result<QString> deleteMessage(const QString& queueDir, const QString& id);

}  // namespace postern::spool
