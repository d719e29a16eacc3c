// imap_mailbox.h — a user's mailboxes as IMAP sees them, over the Maildir++ store.
//
// Names: IMAP hierarchy separator "/" (Dovecot's recommended setting);
// "INBOX" (any case) is the Maildir root; "Work/Projects" is the Maildir++
// folder ".Work.Projects" (store::folderDirName; every part is validated, so
// no name can escape the user's Maildir, and a part may not contain ".").
// Names reach us in modified UTF-7 (IMAP4rev1) or UTF-8 (after ENABLE
// UTF8=ACCEPT / IMAP4rev2); internally they are Unicode.
//
// UserMailboxes: list, create (with parents), delete, rename (with children),
// subscriptions (file <Maildir>/subscriptions: one UTF-8 name per line), the
// special-use folders (Drafts, Sent, Trash, Junk, Archive — created at first
// login, RFC 6154 attributes).
// MailboxView: the selected mailbox: messages in UID order (sequence number =
// index + 1), flags, keywords (Dovecot's dovecot-keywords: letter a..z = index
// 0..25), and refresh() which syncs with the Maildir and reports what changed
// since the last look (expunged sequence numbers, new messages, flag changes)
// so other sessions' and deliveries' changes reach this client. Mod-sequences
// come from the folder's index (imap_index.h); sessions that see the same
// messages share one copy of the list.
#pragma once

#include "imap_index.h"

#include "common/store/maildir_folder.h"

#include "core/result.h"

#include <QHash>
#include <QList>
#include <QSet>
#include <QString>
#include <QStringList>

#include <memory>

namespace postern::imap {

inline constexpr QChar kSeparator = QLatin1Char('/');

struct MailboxName {
    QString name;        // Unicode, "/"-separated, "INBOX" normalised
    QStringList parts;   // empty for INBOX
    bool isInbox() const { return parts.isEmpty(); }
};

// Parse a client's mailbox name; utf8: the client may send UTF-8 (else modified UTF-7).
Result<MailboxName> parseMailboxName(const QByteArray& wire, bool utf8);
QByteArray encodeMailboxName(const QString& name, bool utf8);

struct SpecialUse {
    const char* name;
    const char* attribute;
};
const QList<SpecialUse>& specialUseFolders();
QString specialUseOf(const QString& name);

class UserMailboxes {
public:
    explicit UserMailboxes(QString maildirRoot);
    QString root() const { return m_root; }
    Status ensureDefaults();  // INBOX and the special-use folders
    QStringList list() const;  // all mailbox names incl. INBOX, sorted
    bool exists(const MailboxName& m) const;
    QString dirOf(const MailboxName& m) const;
    Status create(const MailboxName& m);
    Status remove(const MailboxName& m);
    Status rename(const MailboxName& from, const MailboxName& to);
    QStringList subscriptions() const;
    Status subscribe(const QString& name, bool on);
    bool hasChildren(const QString& name, const QStringList& all) const;

private:
    QString m_root;
};

struct Message {
    quint32 uid = 0;
    QString base;
    QString fileName;
    bool inNew = false;
    QString flags;  // maildir letters incl. keyword letters a-z
    qint64 size = 0;
    qint64 vsize = 0;
    qint64 mtimeMs = 0;
    quint64 modseq = 0;  // CONDSTORE mod-sequence (0: no index)

    static Message fromEntry(const store::MessageEntry& e);  // flags sorted, modseq 0
};

struct Changes {
    QList<int> expunged;      // sequence numbers, highest first, as they must be sent
    int exists = -1;          // new EXISTS count when messages were added (-1: unchanged)
    QList<int> flagChanged;   // sequence numbers (after expunges) whose flags changed
    QList<quint32> expungedUids;  // the UIDs of `expunged`, ascending (QRESYNC's VANISHED)
    bool any() const { return !expunged.isEmpty() || exists >= 0 || !flagChanged.isEmpty(); }
};

class MailboxView {
public:
    static Result<MailboxView> open(const QString& maildirRoot, const MailboxName& name, bool readOnly);
    const MailboxName& name() const { return m_name; }
    bool readOnly() const { return m_readOnly; }
    quint32 uidValidity() const { return m_folder.uidValidity(); }
    quint32 uidNext() const { return m_folder.nextUid(); }
    const QList<Message>& messages() const { return m_messages; }
    QString path(int index) const;
    QString dir() const { return m_folder.dir(); }

    Result<Changes> refresh();
    // CONDSTORE (RFC 7162): 0 when the folder has no index (NOMODSEQ).
    quint64 highestModseq() const { return m_highestModseq; }
    // UIDs expunged after `modseq` (see MailboxIndex::expungedSince).
    QList<quint32> expungedSince(quint64 modseq, bool* complete) const;
    // The folder's index (mod-sequences, parsed-data cache); may be null.
    std::shared_ptr<MailboxIndex> index() const;

    // IMAP flags <-> maildir letters.
    QStringList imapFlags(int index) const;
    QStringList keywords() const { return m_keywords; }
    // Letters for IMAP flags; unknown keywords get a letter (persisted) when `create`.
    Result<QString> lettersFor(const QStringList& flags, bool create);
    Status setFlags(int index, const QString& letters);
    Status expunge(int index);  // unlink only; call refresh() to update the list
    // The same for a message whose file was renamed by another session since the last
    // refresh (new flags): `fileName` is its name now, in new/ when `inNew`.
    Status expunge(int index, const QString& fileName, bool inNew);

private:
    static QList<Message> sharedListing(const QString& dir, QList<Message> fresh);
    Status loadKeywords();
    Status saveKeywords();

    MailboxName m_name;
    bool m_readOnly = false;
    store::MaildirFolder m_folder;
    QList<Message> m_messages;
    QStringList m_keywords;  // index -> name
    quint64 m_highestModseq = 0;
};

// Maildir system flag letters <-> IMAP (RFC 9051 2.3.2).
QString flagLetter(const QString& imapFlag);  // empty when not a system flag
QString imapFlagForLetter(QChar letter);

}  // namespace postern::imap
