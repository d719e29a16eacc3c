// maildir_delivery.h — the one way a message is written into a Maildir:
// SMTP local delivery (postern-smtpd), the queue runner's local delivery
// (postern-queued) and IMAP APPEND (postern-imapd) all use Delivery.
//
// Interface: a Delivery is a transaction for one message and any number of
// copies (one per recipient mailbox, each with its own header prefix, e.g.
// Delivered-To):
//   add(address, content, folder, quota, flags, keywords)
//       the copy for a local address under the mail folder given to the
//       constructor (maildir_names.h paths; the Maildir is created when
//       missing, with the folder's maildirfolder marker); with Maildir flag
//       letters or IMAP keywords (Sieve imap4flags; keywords get the folder's
//       letters as IMAP gives them, maildir_keywords.h) the copy goes into
//       cur/ with them, else new/; a keyword that cannot be stored is left out;
//   add(placement, content)
//       the copy into an existing folder given by path (IMAP APPEND).
//   Both check the Maildir++ quota when one is given, create a unique file in
//   tmp/ exclusively (O_EXCL|O_NOFOLLOW), write the content (Content: bytes
//   from memory, then a byte range of a file, copied by the kernel where it
//   can: no whole message in memory), set its mtime when asked and fsync it.
//   Nothing is visible to readers yet.
//   commit()  renames every copy into new/ (delivery) or cur/ with its flag
//       letters (APPEND), then fsyncs each of those folders once; after it
//       returns OK every copy survives a crash, and the quota file counts it.
//       If a rename fails the copies already renamed are taken back out
//       (so a retry by the client does not duplicate them) and the error is
//       returned. A failed folder fsync is reported too (the caller answers
//       4xx: a duplicate after a retry beats a loss).
//   abort()   (also the destructor of an uncommitted Delivery) unlinks tmp files.
//   copies()  what was added: the file's base name (APPEND looks up its UID
//       by it), paths and size.
// Errors are StoreStatus (store_error.h): the one classification of errno and
// quota failures that every protocol turns into its reply.
//
// Blocking: file I/O and fsync; run it on a worker thread in daemons.
// Security: paths come only from core/paths.h and maildir_names.h (or, for
// add(placement), from the IMAP session's validated mailbox); files are
// created with O_EXCL|O_NOFOLLOW, mode 0600.
// Standards: maildir(5), Maildir++ quota (maildirsize).
#pragma once

#include "store_error.h"

#include "core/result.h"

#include <QList>
#include <QString>
#include <QStringList>
#include <optional>

namespace postern::store {

// Create <root>/{cur,new,tmp} (and a Maildir++ folder's maildirfolder marker) when missing.
Status ensureMaildir(const QString& root, const QString& folderDir = {});

// What one copy contains: `head` from memory, then `length` bytes of file `fd` from
// `offset` (fd < 0: nothing more). The file's own offset is not used or moved.
struct Content {
    QByteArray head;
    int fd = -1;
    qint64 offset = 0;
    qint64 length = 0;
    qint64 size() const { return head.size() + (fd >= 0 ? length : 0); }
};

// Where one copy goes when the caller already knows the folder (IMAP APPEND).
struct Placement {
    QString root;                 // the user's Maildir root (quota file)
    QString dir;                  // the folder: root, or root/.Name
    bool cur = false;             // into cur/ with `flags` (else new/, no flags)
    QString flags;                // Maildir info letters, for cur/
    std::optional<qint64> mtime;  // the file's mtime in seconds (IMAP INTERNALDATE)
    qint64 quotaBytes = 0;        // 0: no quota
};

class Delivery {
public:
    struct Copy {
        QString address;  // empty for add(placement)
        QString root;
        QString dir;
        QString name;  // base name (without ":2,flags")
        QString tmpPath;
        QString finalPath;
        qint64 size = 0;
        bool renamed = false;
    };

    explicit Delivery(QString mailDir = {});
    ~Delivery();
    Delivery(const Delivery&) = delete;
    Delivery& operator=(const Delivery&) = delete;

    StoreStatus add(const QString& address, const Content& content, const QStringList& folder = {},
                    qint64 quotaBytes = 0, const QString& flags = {}, const QStringList& keywords = {});
    StoreStatus add(const Placement& placement, const Content& content);
    StoreStatus commit();
    void abort();
    const QList<Copy>& copies() const { return m_copies; }

private:
    StoreStatus write(Copy copy, const Placement& placement, const Content& content);

    QString m_mailDir;
    QList<Copy> m_copies;
    bool m_committed = false;
};

// Maildir++ quota bookkeeping (the `maildirsize` file in the Maildir root).
class MaildirQuota {
public:
    // Bytes and messages in use; recomputed by scanning when the file is missing or has grown long.
    static Result<std::pair<qint64, qint64>> usage(const QString& root, qint64 limitBytes);
    // Record a change (delivery: +size +1; expunge: -size -1). Best effort: when the file
    // cannot be appended to, it is removed so that the next check recalculates from disk.
    static void add(const QString& root, qint64 bytes, qint64 messages);
    static Status recalculate(const QString& root, qint64 limitBytes);
};

}  // namespace postern::store
