// imap_mailbox.h — a user's mailboxes as IMAP sees them, over the Maildir++ store.
//
// Names: IMAP hierarchy separator "/" (Dovecot's recommended setting);
// "INBOX" (any case) is the Maildir root; "Work/Projects" is the Maildir++
// folder ".Work.Projects" (store::folderDirName; every part is validated, so
// no name can escape the user's Maildir, and a part may not contain ".").
// Names reach us in modified UTF-7 (IMAP4rev1) or UTF-8 (after ENABLE
// UTF8=ACCEPT / IMAP4rev2); internally they are Unicode.
//
// UserMailboxes: list, create (with parents), delete (the subscription stays:
// RFC 3501 6.3.9), rename (with children), subscriptions (file
// <Maildir>/subscriptions: one UTF-8 name per line), the special-use folders
// (Drafts, Sent, Trash, Junk, Archive — created at first login, RFC 6154
// attributes).
// MailboxView: the selected mailbox: messages in UID order (sequence number =
// index + 1), flags, keywords (Dovecot's dovecot-keywords: letter a..z = index
// 0..25, read again when the file changed, added under the folder's lock: the
// one mapping of store/maildir_keywords.h, which delivery uses too), and
// refresh() which syncs with the Maildir and reports what changed since the
// last look (expunged sequence numbers, new messages, flag changes, new
// keywords) so other sessions' and deliveries' changes reach this client.
// The selected mailbox watches its folder (folder_watch.h): a refresh after
// which nothing but this session's own changes happened lists nothing; its own
// expunges and APPENDs, and what the watch's events say other sessions, processes
// and deliveries did (renames, unlinks, new files in cur/), are applied to the list
// and to the index (one transaction, MailboxIndex::reconcile) as they are; only what
// the events cannot say exactly (a file in new/ of a read-only view, a directory, more events than the
// watch keeps: a quarter of the folder's size, 1,024 to 32,768; a queue overflow) makes it list the folder; deliveries
// into new/ are moved to cur/ first, as a listing moves them (read-write views). Expunges that may not be reported yet
// (RFC 9051 7.5.1) stay in the list as ghosts (Message::expunged) until a refresh that may report them. \Recent (RFC
// 3501 2.3.2) for IMAP4rev1 sessions: a read-write selection takes the messages no session had yet (MailboxIndex's
// "recent" mark, in the index's write transaction, so one session of one process gets each message); a read-only one
// shows them without taking. No index, no \Recent. changeFlags() applies +FLAGS/-FLAGS to the file's flags as they are
// when it renames it (another session's rename found again by base name: no lost update). Mod-sequences come from the
// folder's index (imap_index.h); sessions that see the same messages share one copy of the list. A newly selected view
// does not list the folder when another view of the process listed it (the list is kept as the folder's snapshot with a
// watch of its own, for the 32 most recently used folders): nothing changed since, it takes the list; the watch saw
// changes and kept them all (a quarter of the folder's size in events, at least 1,024), it replays them on the list as
// a view selected since then would. A lost event, a rewritten uidlist, messages still in new/ (read-write views) or an
// index written elsewhere make it list. A SELECT of a 100,000-message folder costs a look-up, or a replay, instead of a
// listing. A view of a folder no view of its process has listed (a new process) takes the folder's listing kept on disk
// next to the index when the directories' mtimes, the uidlist and the index say nothing changed since, and the
// directories had been quiet when it was taken (imap_kept_listing.h); every full listing that may be kept is written
// there, and so is the snapshot once its folder is quiet after changes the process followed (its watch proving that
// nothing else changed). Limits: the ghosts of one session are at most the messages it knew.
#pragma once

#include "folder_watch.h"
#include "imap_index.h"

#include "common/store/maildir_folder.h"

#include "core/atomic_file.h"
#include "core/result.h"

#include <QHash>
#include <QList>
#include <QSet>
#include <QString>
#include <QStringList>

#include <functional>
#include <memory>
#include <optional>

namespace postern::imap {

struct DirStamps;

inline constexpr QChar kSeparator = QLatin1Char('/');

struct MailboxName {
    QString name;       // Unicode, "/"-separated, "INBOX" normalised
    QStringList parts;  // empty for INBOX
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
    Status ensureDefaults();   // INBOX and the special-use folders
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
    quint64 modseq = 0;     // CONDSTORE mod-sequence (0: no index)
    bool expunged = false;  // gone from the folder; its EXPUNGE has not been sent yet (a "ghost")

    static Message fromEntry(const store::MessageEntry& e);  // flags sorted, modseq 0
};

struct Changes {
    QList<int> expunged;           // sequence numbers, highest first, as they must be sent
    int exists = -1;               // new EXISTS count when messages were added (-1: unchanged)
    QList<int> flagChanged;        // sequence numbers (after expunges) whose flags changed
    QList<quint32> expungedUids;   // the UIDs of `expunged`, ascending (QRESYNC's VANISHED)
    bool keywordsChanged = false;  // new keywords: FLAGS and PERMANENTFLAGS are due again (RFC 9051 7.3.5)
    bool any() const { return !expunged.isEmpty() || exists >= 0 || !flagChanged.isEmpty() || keywordsChanged; }
};

// Who may see \Recent (RFC 3501 2.3.2; RFC 9051 dropped it): IMAP4rev1 sessions only.
// Claim: a read-write session takes the new messages for itself (no other session of
// any process will see them as recent); Peek: a read-only one shows them without taking.
enum class RecentMode { None, Peek, Claim };

// What a session's selected mailbox needs beyond a plain view.
struct SelectOptions {
    RecentMode recent = RecentMode::None;
};

class MailboxView {
public:
    // A view of the folder. `selected`: the session's selected mailbox, which watches the
    // folder (folder_watch.h: refresh() lists it again only when something changed) and
    // keeps \Recent; without it, every refresh() lists the folder (COPY/APPEND targets).
    static Result<MailboxView> open(const QString& maildirRoot, const MailboxName& name, bool readOnly,
                                    const std::optional<SelectOptions>& selected = std::nullopt);
    // A COPY or APPEND target (not the selected mailbox): opened without listing the folder
    // (its keywords only); numberStored() numbers what is stored into it.
    static Result<MailboxView> openTarget(const QString& maildirRoot, const MailboxName& name);
    // The UIDs (by base name) of files just stored into cur/: numbered as a listing would
    // number them (MaildirFolder::addOwn) and recorded in the index, without listing the
    // folder when this view has no list yet (openTarget); otherwise, or when that cannot be
    // done (the uidlist needs a rewrite, a file went away), from a refresh(). A base missing
    // from the answer was expunged by another session already.
    Result<QHash<QString, quint32>> numberStored(const QStringList& curFileNames);
    const MailboxName& name() const { return m_name; }
    bool readOnly() const { return m_readOnly; }
    quint32 uidValidity() const { return m_folder.uidValidity(); }
    quint32 uidNext() const { return m_folder.nextUid(); }
    // The uidlist's random GUID: new whenever the folder's uidlist is created, so a folder
    // deleted and created again under the same name never matches an old cache entry.
    QString generation() const { return m_folder.guid(); }
    // Every message the client knows, ghosts (expunged, not yet reported) included.
    const QList<Message>& messages() const { return m_messages; }
    bool hasGhosts() const { return m_ghosts > 0; }  // expunges not reported yet
    QString path(int index) const;
    QString dir() const { return m_folder.dir(); }

    // Syncs with the Maildir and returns what changed since the last look. allowExpunge
    // false (during FETCH, STORE, SEARCH by sequence number: RFC 9051 7.5.1) keeps
    // messages that went away as ghosts, so sequence numbers stay what the client knows;
    // they are reported by the next refresh(true). The caller must send the changes.
    Result<Changes> refresh(bool allowExpunge = true);
    // IDLE: called on the event loop after another session, process or a delivery changed
    // the folder (the selected mailbox only); nullptr stops it. False when the folder is
    // not watched (the caller must poll).
    bool setChangeNotify(std::function<void()> notify);
    // The session selects this (already selected) mailbox again: nothing is recent any more.
    void reselected();
    void setRecentMode(RecentMode mode);
    bool isRecent(int index) const;
    int recentCount() const;
    // CONDSTORE (RFC 7162): 0 when the folder has no index (NOMODSEQ).
    quint64 highestModseq() const { return m_highestModseq; }
    // UIDs expunged after `modseq` (see MailboxIndex::expungedSince).
    QList<quint32> expungedSince(quint64 modseq, bool* complete) const;
    // The folder's index (mod-sequences, parsed-data cache); may be null.
    std::shared_ptr<MailboxIndex> index() const;

    // IMAP flags <-> maildir letters. imapFlags includes \Recent where this session has it.
    QStringList imapFlags(int index) const;
    // The same as a parenthesised list "(\\Seen \\Recent)", built directly (FETCH FLAGS).
    QByteArray flagListText(int index) const;
    QStringList keywords() const { return m_keywords; }
    // Letters for IMAP flags; unknown keywords get a letter (persisted) when `create`
    // (under the folder's lock, merged with what other sessions added meanwhile).
    Result<QString> lettersFor(const QStringList& flags, bool create);

    // STORE's flag change on message `index`: mode 0 replaces, 1 adds, -1 removes
    // `letters`. The change is applied to the file's flags as they are now: when another
    // session renamed the file meanwhile (its own flag change), that file is found again
    // and both changes are kept (no lost update). The view's entry follows.
    struct FlagChange {
        bool changed = false;  // the file's flags changed
        bool merged = false;   // another session's change was found and kept
    };
    Result<FlagChange> changeFlags(int index, int mode, const QString& letters);
    // Unlinks message `index`'s file (found again if another session renamed it); call
    // refresh() to update the list (which, when nothing else changed, removes the
    // messages this view unlinked without listing the folder).
    Status expunge(int index);
    // APPEND to this (selected) mailbox: the worker thread stores a file into cur/ between
    // the two calls; endOwnAppend gets its name (empty when the store failed). The next
    // refresh() numbers it without listing the folder when nothing else changed.
    void beginOwnAppend();
    void endOwnAppend(const QString& curFileName);
    // How many times this process listed a folder's directories (tests, benchmarks).
    static quint64 listings();
    // Writes the kept listing (imap_kept_listing.h) of every snapshot that is due to be
    // kept and whose folder is quiet now, without waiting for its timer or its rate
    // (the process is stopping; tests).
    static void keepDueSnapshots();
    // The file of message `index` now: (name, inNew), found by its base name when another
    // session renamed it; nullopt when it is gone.
    std::optional<std::pair<QString, bool>> currentFile(int index) const;

private:
    // What a folder's file events say about the file of one message (by base name), folded
    // in the kernel's order: present under `name` (created or renamed there last), or gone
    // (`name`: the first file of that base removed).
    struct FileState {
        bool present = false;
        bool inNew = false;
        QString name;
    };
    static void foldEvents(const QList<FolderWatch::Event>& events, QHash<QString, FileState>& states);
    struct WatchedChanges {
        QHash<QString, FileState> states;  // by base name
        QHash<QString, int> known;         // base name -> index in m_messages (of those in states)
        QSet<QString> numbered;            // base names of `added`
        QList<store::MessageEntry> added;  // new files in cur/, numbered (UID order)
        struct Result {
            Changes changes;
            QList<Message> merged;
            QList<Message*> touched;  // into merged: new files and renamed ones
            QList<quint32> gone;
        };
    };
    std::optional<Changes> applyWatchedChanges(bool allowExpunge);
    void foldEvents(const QList<FolderWatch::Event>& events, WatchedChanges& w) const;
    static bool deliveredToNew(const WatchedChanges& w);
    bool numberNewFiles(WatchedChanges& w);
    bool mergeWatched(const WatchedChanges& w, bool allowExpunge, WatchedChanges::Result& r) const;
    struct Listed {
        QList<store::MessageEntry> list;
        QHash<quint32, int> fresh;  // uid -> index in list
    };
    static QList<Message> sharedListing(const QString& dir, QList<Message> fresh);
    FolderWatch* syncSnapshotWatch();
    void publishSnapshot(const FolderWatch* snapshotWatch);
    bool adoptSnapshot();
    bool replaySnapshot(const QList<Message>& messages, const store::MaildirFolder& listed, quint64 hms,
                        std::shared_ptr<FolderWatch>& watch);
    bool adoptKeptListing();
    bool adoptListing(QList<Message> messages, const store::MaildirFolder& listed, quint64 hms);
    void keepListing(const DirStamps& before);
    Status loadKeywords();
    Result<Changes> refreshList(bool allowExpunge);
    Result<Changes> refreshListing(bool allowExpunge);
    Result<Listed> listFolder();
    bool reloadKeywords();
    void restartList(const QList<store::MessageEntry>& list);
    QList<Message> mergeListing(const Listed& listed, bool allowExpunge, Changes* c, bool* ghosted);
    void syncIndex(QList<Message>& merged, bool differs);
    void takeRecent(const MailboxIndex::RecentClaim& claim, quint32 lastUid);
    Changes dropGhosts();
    QString messageDir(bool inNew) const;

    MailboxName m_name;
    bool m_readOnly = false;
    store::MaildirFolder m_folder;
    QList<Message> m_messages;
    QStringList m_keywords;  // index -> name
    FileStamp m_keywordsStamp;
    quint64 m_highestModseq = 0;
    int m_ghosts = 0;
    QSet<quint32> m_unlinked;   // messages this view unlinked since its last listing
    QStringList m_appended;     // files in cur/ this view appended since its last listing
    bool m_listed = false;      // listed at least once
    bool m_rebuild = false;     // selected again: the next refresh gives the whole list anew
    bool m_incomplete = false;  // a listing found a message it could not number (see refreshListing)
    // The selected mailbox only: the shared watcher and \Recent.
    std::shared_ptr<FolderWatch> m_watch;
    RecentMode m_recentMode = RecentMode::None;
    QList<std::pair<quint32, quint32>> m_recent;  // UID ranges this session has as \Recent
    quint32 m_recentChecked = 0;                  // highest UID considered for \Recent so far
};

}  // namespace postern::imap
