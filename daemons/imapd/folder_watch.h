// folder_watch.h — one inotify instance per process that watches the new/ and
// cur/ of every selected folder: it tells a session, at the end of each of its
// commands, whether anybody else changed the folder (a delivery, another
// session of any process, POP3, a local program), and wakes IDLE sessions.
//
// Why: RFC 9051 7.3.1/7.5.1 (RFC 3501 7.3.1/7.4.1) want new messages, expunges
// and flag changes reported at the end of every command, and listing the folder
// after every command would cost more than the command. A watch answers "did
// anything change?" with one non-blocking read(2) of the inotify descriptor: the
// kernel queues an event inside the rename/unlink/create that causes it, so a
// change that finished before the check is always seen (no time-stamp
// granularity to guess). The session's own changes are announced beforehand
// (expect()), so they do not make it list the folder again.
// A QFileSystemWatcher (or an inotify instance) per session would also hit the
// kernel's default of 128 inotify instances per user.
//
// Interface: FolderWatch::watch(folderDir) subscribes (never null).
//   expect(op, inNew, name)  this subscriber created or removed that name itself
//                            (before the next read of the descriptor): its event is
//                            not a change for it (it keeps its place in the log).
//   changed()                reads the queued events; true when something not
//                            expected happened since synced() (or the start),
//                            or when the folder cannot be watched (reliable()
//                            false: the caller then lists the folder every time).
//   synced()                 call right before listing the folder: changes from
//                            now on count again (earlier ones are in the listing).
//   beginHold() / endHold(name)  around a creation in cur/ whose name only a
//                            worker thread learns (APPEND): meanwhile creations
//                            in cur/ are held back, not counted; endHold says
//                            which one was this subscriber's own (empty: none),
//                            and any other held one counts as a change then.
//   setNotify(cb)            cb runs (on the event loop) after an unexpected change
//                            (IDLE); nullptr stops it.
//   takeChanges()            reads the queued events and returns those since synced()
//                            (or the last takeChanges()) in the kernel's order,
//                            forgetting them: every unexpected one, and the expected
//                            ones in their places (so a replay from the caller's list
//                            ends where the folder is: another session's rename that
//                            came before the caller's own one does not win); nullopt
//                            when they are not all known: a queue overflow, a lost
//                            directory, more than kMaxLog of them, a hold in
//                            progress. The caller applies them, or lists the folder
//                            (after synced()).
//   forgetOwn()              nothing unexpected happened (changed() false): drops the
//                            own events logged meanwhile (the caller's list has them).
//   sameFolder(other)        both watch the same directories (same inode of cur/).
//   setLogLimit(n)           keeps up to n events (at least kMaxLog, at most
//                            kMaxLogCeiling).
// Folders are identified by the device and inode of their cur/, so a folder
// deleted or renamed and created again under the same name is a new watch (also
// when the new cur/ reuses the inode of a folder that went away).
// When a watched directory goes away (deleted, moved, unmounted) every
// subscriber sees a change at every check from then on (reliable() false).
// Limits: per subscriber, kMaxExpected expected events (beyond: forgotten, and
// the next check lists the folder; each event that arrives is compared with
// them) and kMaxLog events kept (beyond: takeChanges() says the folder must be
// listed), raised by setLogLimit(n) up to kMaxLogCeiling (a large folder's
// subscriber: replaying its events costs less than listing it; an event is 32
// bytes per subscriber, its name shared); the kernel's per-user limits on watches
// (fs.inotify.max_user_watches; 2 per selected folder and process, and for
// at most 32 recently selected folders per process whose listing is kept:
// imap_mailbox.h) and queued
// events (an overflow marks every folder changed). Without a watch the folder
// is listed after every command (correct, slower).
// Security: names come from the kernel, one directory entry each (no '/'); MailboxView
// takes them as file names in new/ or cur/ as a listing would (skipping names that start
// with '.'), and a directory created there makes the folder be listed.
// Threading: the event-loop thread only.
#pragma once

#include <QList>
#include <QString>

#include <functional>
#include <memory>
#include <optional>

namespace postern::imap {

struct FolderWatchRegistry;
struct WatchedFolder;

class FolderWatch {
public:
    static constexpr int kMaxExpected = 1024;
    static constexpr int kMaxLog = 1024;
    static constexpr int kMaxLogCeiling = 32768;
    enum class Op { Created, Removed };  // a name appeared in, or left, new/ or cur/
    struct Event {
        Op op;
        bool inNew;
        QString name;
    };

    static std::unique_ptr<FolderWatch> watch(const QString& folderDir);
    ~FolderWatch();
    FolderWatch(const FolderWatch&) = delete;
    FolderWatch& operator=(const FolderWatch&) = delete;

    void expect(Op op, bool inNew, const QString& name);
    void beginHold();
    void endHold(const QString& ownCurName);
    bool changed();
    void synced();
    std::optional<QList<Event>> takeChanges();
    void forgetOwn();
    bool reliable() const;
    bool sameFolder(const FolderWatch& other) const { return m_folder && m_folder == other.m_folder; }
    void setNotify(std::function<void()> notify) { m_notify = std::move(notify); }
    void setLogLimit(qsizetype n);

private:
    FolderWatch() = default;
    void deliver(Op op, bool inNew, const QString& name);
    void markChanged();  // something changed that the log does not hold
    void logChange(const Event& e);
    void logEvent(const Event& e);
    void expectEvent(const Event& event, bool logged);
    struct Expected {
        Event event;
        bool logged;  // kept in the log in its place when it arrives
    };
    WatchedFolder* m_folder = nullptr;
    QList<Expected> m_expected;
    bool m_dirty = false;
    QList<Event> m_log;      // unexpected events since synced() / takeChanges()
    bool m_logWhole = true;  // m_log holds every change since then
    bool m_holding = false;
    QList<QString> m_held;  // creations in cur/ seen while holding (at most kMaxExpected)
    std::function<void()> m_notify;
    qsizetype m_logLimit = kMaxLog;  // for m_log
    friend struct FolderWatchRegistry;
};

}  // namespace postern::imap
