// sieve_delivery.h — what local delivery does with one message for one local
// mailbox, decided by the user's active Sieve script: the folders (and Maildir
// flags) its copies go to, or a refusal. The caller then writes the copies with
// the one store operation (common/store/maildir_delivery.h); nothing here writes
// mail.
//
// Interface:
//   planDelivery(mailDir, mailbox, input) -> Plan
//     No active script: one copy into INBOX (the plan of every user without
//     Sieve). Otherwise the script runs (sieve.h) and its actions become:
//       keep / implicit keep     a copy into INBOX
//       fileinto "A/B"           a copy into folder {"A","B"} ('/' separates
//                                levels, as in IMAP here); a folder that does
//                                not exist is created only with :create (or for
//                                the special-use names Drafts, Sent, Trash,
//                                Junk, Archive); otherwise the copy goes to
//                                INBOX and the plan's notes say why
//       :flags / imap4flags      Maildir letters: \Seen S, \Answered R,
//                                \Flagged F, \Deleted T, \Draft D; other
//                                flags are IMAP keywords (Copy::keywords, stored
//                                by the delivery as imapd stores them:
//                                store/maildir_keywords.h); an unknown system
//                                flag or an invalid keyword is noted and left out
//       discard                  no copy
//       reject / ereject         Plan::reject (the caller refuses at SMTP time
//                                or fails the recipient so the queue bounces)
//       redirect [:copy]         Plan::redirects (queued by the caller with
//                                sieve_outbound.h before the copies are
//                                written); not when the message has more than
//                                kMaxForwardHops Delivered-To/X-Loop fields
//                                or a Delivered-To naming this mailbox (a
//                                loop): then noted and kept in INBOX
//       vacation                 Plan::vacation, the reply (sieve_vacation.h),
//                                when the RFC 3834 rules allow one (else the
//                                notes say why); the caller claims the
//                                once-per-period record and queues it after
//                                the copies are durable
//     The number of redirects per message is bounded by Limits::maxRedirects
//     (sieve.h: a run-time error at limit+1, so the message is kept).
//     Never loses mail: a script that does not compile, cannot be read or fails
//     at run time gives one copy into INBOX and an `error` for the log; the
//     first time for each version of the script, `notice` also holds a short
//     message for the user's INBOX naming the error and its line
//     (Auto-Submitted: auto-generated, RFC 3834), which the caller delivers.
//     With the administrator's before/after scripts (PlanInput::globals), they run
//     around the user's script in one context (sieve.h run(sequence)), even for a
//     user without a script; `include` finds the user's scripts beside the active
//     one and :global ones in the global folder (compiled once, ScriptCache::byPath).
//   PlanInput carries the header block, the message size and envelope, and the
//   body as (fd, offset, length): the body is read (at most
//   Limits::maxBodyBytes, with pread) only when the script has a body test.
// Blocking: reads the script and maybe the body; call it on a delivery worker.
// Standards: RFC 5228 (4.1 fileinto, 4.2 redirect, 2.10.2 implicit keep), RFC 5232,
// RFC 5490, RFC 5429, RFC 5230, RFC 3834.
#pragma once

#include "sieve.h"
#include "sieve_store.h"
#include "sieve_vacation.h"

#include <QStringList>

namespace postern::sieve {

class ScriptCache;

struct PlanInput {
    QByteArray header;  // the message's header block (without the empty line)
    int bodyFd = -1;
    qint64 bodyOffset = 0, bodyLength = 0;
    qint64 size = 0;
    QString envelopeFrom, envelopeTo;
    QString delimiters = QStringLiteral("+");  // recipient_delimiter
    // May the mailbox's user send as this address (vacation :from)? Unset: only the mailbox itself.
    std::function<bool(const QString& address)> maySendAs;
    GlobalScripts globals;  // the administrator's scripts (sieve.before, sieve.after, :global)
};

// A message that went through more forwarding steps than this is not redirected again.
inline constexpr int kMaxForwardHops = 10;

struct Plan {
    struct Copy {
        QStringList folder;    // empty: INBOX
        QString flags;         // Maildir letters, sorted; empty: into new/ (unless keywords)
        QStringList keywords;  // IMAP keywords (valid atoms), for store::Delivery::add
    };
    QList<Copy> copies;
    struct Redirect {
        QString address;
        bool copy = false;  // :copy (the implicit keep was not cancelled by it)
    };
    QList<Redirect> redirects;
    std::optional<VacationReply> vacation;  // a reply is due (still subject to the once-per-period record)
    bool reject = false;
    QString rejectReason;
    QString script;       // the active script's name; empty: none ran
    QString error;        // script error (the copies are then {INBOX})
    QStringList notes;    // things the log should say (missing folders, redirect not done, ...)
    QStringList actions;  // the script's actions, described (for the log)
    QByteArray notice;    // a message about the script error for the user's INBOX (once per script version)
};

Plan planDelivery(const QString& mailDir, const QString& mailbox, const PlanInput& input, ScriptCache& cache);
// Maildir info letters for IMAP flags; unknown flags are returned in *ignored.
QString maildirFlags(const QStringList& flags, QStringList* ignored = nullptr);
// A Sieve mailbox name as Maildir++ folder parts; nullopt when not a valid name.
std::optional<QStringList> folderPartsOf(const QString& mailbox);

}  // namespace postern::sieve
