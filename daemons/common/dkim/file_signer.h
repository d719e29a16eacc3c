// file_signer.h — DKIM-signing a queued message file in place: the step
// postern-queued runs on every message an authenticated user submitted,
// before anything is delivered.
//
// Interface: signFile(request) -> FileSignOutcome.
//   The From: domain's active keys (core/dkim_keys.h; RSA and Ed25519) each
//   add one DKIM-Signature (dkim.h signMessage: relaxed/relaxed). Nothing is
//   signed, and `note` says why, when: the header block is larger than
//   maxHeaderBytes; there is not exactly one From: mailbox (read as strictly
//   as at submission, mail/header_identity.h); the From: address is not one
//   the envelope's auth-user may send as (`maySendAs`; then refused = true:
//   the caller warns, the message goes out unsigned — a user of one hosted
//   domain must never get mail signed for another; this is the second lock
//   after the submission check, for anything that reaches the queue another
//   way); a signature of ours for that domain is already there (a crash after
//   signing); the domain has no key.
//   When signed, the new file (signatures, then the old content copied by the
//   kernel: never the whole message in memory) is written next to the old
//   one, fsync'd, renamed over it and the folder fsync'd: either version is
//   complete at any time. `size` is the file's size afterwards; `error` is
//   set on I/O trouble (the caller leaves the message where it is).
// Blocking: file I/O, fsync, key reads; worker threads only.
// Security: the message is untrusted (submitted by a user); only its header
// block, bounded by maxHeaderBytes, is held in memory. Private keys are read
// only through core/dkim_keys.h and never logged.
// Limits: maxHeaderBytes (smtp.max_header_size + 64 KiB in postern-queued).
#pragma once

#include <QString>
#include <functional>

namespace postern::dkim {

struct FileSignRequest {
    QString configDir;                                      // where the DKIM keys are
    QString path;                                           // the message file
    QString authUser;                                       // the envelope's auth-user
    std::function<bool(const QString& address)> maySendAs;  // may authUser use this From: address?
    qint64 maxHeaderBytes = 0;
};

struct FileSignOutcome {
    bool signedNow = false;
    bool refused = false;  // the user may not use the From: address: warn
    QString note;          // why not signed, for the log
    qint64 size = 0;       // the file's size afterwards
    QString error;         // I/O trouble
};

FileSignOutcome signFile(const FileSignRequest& request);

}  // namespace postern::dkim
