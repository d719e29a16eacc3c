// admission.h — the queue runner's first step for a message found in incoming/
// or due in deferred/, run on a worker thread: its envelope is read (one that
// does not parse goes to corrupt/), new mail from an authenticated user is
// DKIM-signed in place (common/dkim/file_signer.h, the From: authorisation
// check included), and the message moves to active/.
//
// Interface: admitFromSpool(settings, accounts, id, fromState) -> Admitted:
//   env     the envelope, when the message is now in active/;
//   error   why not (empty with no envelope: the message is gone, deleted or
//           moved by posternctl meanwhile);
//   note, warn  the signing step's result for the log (warn: the user may not
//           use the From: address, sent unsigned).
// Crash safety: signing replaces the body atomically and the envelope's size
// is saved before the move; a crash in between leaves the message in
// incoming/ (signed once: an existing signature of ours is not added again).
#pragma once

#include "runner_settings.h"

#include "common/spool/queue.h"

#include "core/accounts.h"

#include <memory>
#include <optional>

namespace postern::outbound {

struct Admitted {
    std::optional<spool::Envelope> env;
    QString error;
    QString note;
    bool warn = false;
};

Admitted admitFromSpool(const RunnerSettings& s, const std::shared_ptr<const Accounts>& accounts, const QString& id,
                        spool::QueueState fromState);

}  // namespace postern::outbound
