// mail_import.h — writing imported messages into a local account's Maildir
// (posternctl import imap|mbox|maildir), and reading one for export.
//
// Interface:
//   FolderWriter::open(mailDir, address, folderParts)   the folder (created when
//       missing, with its parents) and its keyword list (dovecot-keywords).
//   add(bytes, flags, internalDateMs)   one message into the batch: bytes get
//       CRLF line endings (the store's convention), the file's time is the
//       INTERNALDATE (whole-second dates get the batch position as milliseconds,
//       so the store numbers same-second messages in the order they were added);
//       nothing is visible yet. Returns the message's file name.
//   commit()   the batch becomes visible (store::Delivery::commit: rename into
//       new/, fsync), then the flags are set (store::MaildirFolder::sync(false)
//       gives the UIDs, setFlags() renames into cur/ with the flag letters).
//   applyFlags(names, flags)   sets flags of messages committed earlier (resuming
//       an interrupted batch).
//   presentNames()   base names of the messages in the folder now.
//   Flags become letters through the store's one mapping (maildir_keywords.h:
//   system flags, keywords as the folder's letters a..z in dovecot-keywords,
//   under the folder's lock); a keyword beyond the 26th is dropped and counted.
//   listFolders(root)   the Maildir++ folders of an account (INBOX first).
//   readFolder(...)     messages of a folder with their IMAP flags and dates.
//
// Store functions used (public interface only): store::Delivery(mailDir),
// Delivery::add(address, Content{bytes}, folderParts), Delivery::copies(),
// Delivery::commit(), store::MaildirFolder::open(root, parts, create),
// MaildirFolder::sync(false), MaildirFolder::setFlags(), messagePath(),
// dir(); store::folderParts, folderDirName, parseFileName; core/paths.h maildirRoot.
//
// Security: runs as the daemon user (posternctl drops root before it imports:
// files in Maildirs end up owned by that user). Folder names come from other
// servers and files: they become paths only through store::folderDirName,
// which refuses anything that could leave the Maildir.
// Limits: a batch holds at most what the caller adds (the importers commit
// every kBatchMessages messages or kBatchBytes bytes).
#pragma once

#include "common/store/maildir_delivery.h"
#include "common/store/maildir_folder.h"

#include "core/result.h"

#include <QSet>
#include <QStringList>
#include <memory>

namespace postern::ctl {

inline constexpr int kBatchMessages = 200;
inline constexpr qint64 kBatchBytes = 64LL * 1024 * 1024;

// Bare LF -> CRLF (a lone CR is kept as it is).
QByteArray toCrlf(const QByteArray& bytes);

class FolderWriter {
public:
    static Result<std::unique_ptr<FolderWriter>> open(const QString& mailDir, const QString& address,
                                                      const QStringList& folder);
    Result<QString> add(const QByteArray& bytes, const QStringList& flags, qint64 internalDateMs);
    Status commit();
    Status applyFlags(const QStringList& names, const QList<QStringList>& flags);
    Result<QSet<QString>> presentNames();
    qsizetype pending() const { return m_batch ? m_batchNames.size() : 0; }
    qint64 pendingBytes() const { return m_batchBytes; }
    QStringList pendingNames() const { return m_batchNames; }
    QString dir() const { return m_folder.dir(); }
    int droppedKeywords() const { return m_droppedKeywords; }

private:
    FolderWriter() = default;
    Result<QString> lettersFor(const QStringList& flags);
    QString m_mailDir, m_address, m_root;
    QStringList m_parts;
    store::MaildirFolder m_folder;
    QStringList m_keywords;  // index = letter - 'a'
    std::unique_ptr<store::Delivery> m_batch;
    QStringList m_batchNames;
    QList<QString> m_batchLetters;
    qint64 m_batchBytes = 0;
    int m_droppedKeywords = 0;
};

struct ExportedMessage {
    QString path;
    QStringList flags;
    qint64 mtimeMs = 0;
    quint32 uid = 0;
};
// Maildir++ folders of a Maildir root: {} for INBOX, then each folder's parts.
QList<QStringList> listFolders(const QString& maildirRoot);
Result<QList<ExportedMessage>> readFolder(const QString& maildirRoot, const QStringList& folder);

}  // namespace postern::ctl
