// maildir_delivery.h — durable local delivery into users' Maildirs.
//
// Interface: a Delivery is a transaction for one message and any number of
// local copies (one per recipient mailbox, each with its own header prefix,
// e.g. Delivered-To):
//   add(address, prefix, bodyFd, bodySize, folder, quota)
//       creates the Maildir if needed, checks the quota, writes prefix + body
//       into tmp/ under a unique name and fsyncs the file. Nothing is visible
//       to readers yet.
//   commit()  renames every copy into new/, then fsyncs each new/ folder once;
//       after it returns OK every copy survives a crash. If a rename fails the
//       copies already renamed are taken back out of new/ (so a retry by the
//       client does not duplicate them) and the error is returned.
//   abort()   (also the destructor of an uncommitted Delivery) unlinks tmp files.
// Errors carry errno in Error::code: EDQUOT (quota: SMTP 452 4.2.2, or 552
// 5.2.2 when the message alone exceeds the quota — see exceedsQuotaAlone()),
// ENOSPC (disk full: 452 4.3.1), others (451 4.3.0).
//
// Blocking: file I/O and fsync; run it on a worker thread in daemons.
// Security: paths come only from core/paths.h and maildir_names.h.
// Standards: maildir(5), Maildir++ quota (maildirsize).
#pragma once

#include "core/result.h"

#include <QList>
#include <QString>
#include <QStringList>

namespace postern::store {

// Create <root>/{cur,new,tmp} (and a Maildir++ folder's maildirfolder marker) when missing.
Status ensureMaildir(const QString& root, const QString& folderDir = {});

class Delivery {
public:
    struct Copy {
        QString address;
        QString root;     // the user's Maildir root
        QString dir;      // the folder's directory (root or root/.Folder)
        QString tmpPath;
        QString newPath;
        qint64 size = 0;
        bool renamed = false;
    };

    explicit Delivery(QString mailDir);
    ~Delivery();
    Delivery(const Delivery&) = delete;
    Delivery& operator=(const Delivery&) = delete;

    Status add(const QString& address, const QByteArray& prefix, int bodyFd, qint64 bodySize,
               const QStringList& folder = {}, qint64 quotaBytes = 0);
    Status commit();
    void abort();
    const QList<Copy>& copies() const { return m_copies; }
    // For an EDQUOT error: was the message larger than the whole quota?
    static bool exceedsQuotaAlone(qint64 messageSize, qint64 quotaBytes) { return quotaBytes > 0 && messageSize > quotaBytes; }

private:
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
