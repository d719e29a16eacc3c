// folder_watch.cpp — see folder_watch.h.
#include "folder_watch.h"

#include "core/log.h"
#include "core/posix_io.h"

#include <QFile>
#include <QHash>
#include <QSocketNotifier>

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace postern::imap {

struct WatchedFolder {
    dev_t dev = 0;
    ino_t ino = 0;  // of cur/: the folder's identity
    int wdNew = -1, wdCur = -1;
    bool lost = false;  // a watched directory went away (or was never watched)
    QList<FolderWatch*> subscribers;
};

struct FolderWatchRegistry {
    int fd = -1;
    std::unique_ptr<QSocketNotifier> notifier;
    QHash<QPair<quint64, quint64>, WatchedFolder*> byInode;
    QHash<int, WatchedFolder*> byWd;

    static FolderWatchRegistry& get() {
        static FolderWatchRegistry r;
        return r;
    }
    ~FolderWatchRegistry() {
        notifier.reset();
        if (fd >= 0) ::close(fd);
        qDeleteAll(byInode);
    }

    bool open() {
        if (fd >= 0) return true;
        fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (fd < 0) {
            log::warn(u"imap.folder_watch.unavailable", log::Fields().add("error", errnoText(errno)));
            return false;
        }
        notifier = std::make_unique<QSocketNotifier>(fd, QSocketNotifier::Read);
        QObject::connect(notifier.get(), &QSocketNotifier::activated, notifier.get(), [this] { drain(); });
        return true;
    }

    int addWatch(const QString& path) {
        if (!open()) return -1;
        constexpr uint32_t kMask =
            IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
        const int wd = ::inotify_add_watch(fd, QFile::encodeName(path).constData(), kMask);
        if (wd < 0)
            log::warn(u"imap.folder_watch.failed", log::Fields().add("path", path).add("error", errnoText(errno)));
        return wd;
    }

    void lose(WatchedFolder* f) {
        if (!f->lost) {
            f->lost = true;
            for (int wd : {f->wdNew, f->wdCur}) {
                if (wd < 0) continue;
                if (byWd.value(wd) == f) byWd.remove(wd);
                ::inotify_rm_watch(fd, wd);  // may already be gone (IN_IGNORED)
            }
            f->wdNew = f->wdCur = -1;
        }
        const QList<FolderWatch*> subs = f->subscribers;
        for (FolderWatch* w : subs) w->markChanged();
    }

    // Reads every queued event (non-blocking) and hands each to the folder's subscribers.
    void drain() {
        if (fd < 0) return;
        alignas(inotify_event) char buf[8192];
        for (;;) {
            const ssize_t n = retryOnEintr([&] { return ::read(fd, buf, sizeof buf); });
            if (n <= 0) return;
            for (ssize_t at = 0; at + ssize_t(sizeof(inotify_event)) <= n;) {
                const auto* ev = reinterpret_cast<const inotify_event*>(buf + at);
                at += ssize_t(sizeof(inotify_event)) + ssize_t(ev->len);
                if (ev->mask & IN_Q_OVERFLOW) {  // events were dropped: every folder may have changed
                    const QList<WatchedFolder*> all = byInode.values();
                    for (WatchedFolder* f : all)
                        for (FolderWatch* w : QList<FolderWatch*>(f->subscribers)) w->markChanged();
                    continue;
                }
                WatchedFolder* f = byWd.value(ev->wd);
                if (!f) continue;
                if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
                    if (ev->mask & IN_IGNORED) byWd.remove(ev->wd);
                    lose(f);
                    continue;
                }
                if (ev->mask & IN_ISDIR) {  // never a message: what it means is the listing's to say
                    for (FolderWatch* w : QList<FolderWatch*>(f->subscribers)) w->markChanged();
                    continue;
                }
                const bool inNew = ev->wd == f->wdNew;
                const FolderWatch::Op op =
                    (ev->mask & (IN_CREATE | IN_MOVED_TO)) ? FolderWatch::Op::Created : FolderWatch::Op::Removed;
                const QString name = ev->len ? QFile::decodeName(ev->name) : QString();
                for (FolderWatch* w : QList<FolderWatch*>(f->subscribers)) w->deliver(op, inNew, name);
            }
        }
    }

    WatchedFolder* folderFor(const QString& dir) {
        struct stat cur {
        }, nw{};
        if (::stat(QFile::encodeName(dir + QStringLiteral("/cur")).constData(), &cur) != 0 ||
            ::stat(QFile::encodeName(dir + QStringLiteral("/new")).constData(), &nw) != 0)
            return nullptr;
        const QPair<quint64, quint64> key(quint64(cur.st_dev), quint64(cur.st_ino));
        if (WatchedFolder* f = byInode.value(key)) {
            if (!f->lost) return f;
            // A folder that went away and whose inode now names another one: its
            // subscribers keep the old entry (they see a change at every check) until
            // they leave; the new folder gets a watch of its own.
            byInode.remove(key);
        }
        auto* f = new WatchedFolder;
        f->dev = cur.st_dev;
        f->ino = cur.st_ino;
        f->wdNew = addWatch(dir + QStringLiteral("/new"));
        f->wdCur = f->wdNew >= 0 ? addWatch(dir + QStringLiteral("/cur")) : -1;
        if (f->wdNew < 0 || f->wdCur < 0) {
            if (f->wdNew >= 0) ::inotify_rm_watch(fd, f->wdNew);
            f->wdNew = f->wdCur = -1;
            f->lost = true;
        } else {
            // The same directory watched under another folder entry (it was renamed)
            // would share a descriptor: that entry is stale.
            for (int wd : {f->wdNew, f->wdCur})
                if (WatchedFolder* other = byWd.value(wd); other && other != f) {
                    byWd.remove(wd);
                    if (other->wdNew == wd) other->wdNew = -1;
                    if (other->wdCur == wd) other->wdCur = -1;
                    lose(other);
                }
            byWd.insert(f->wdNew, f);
            byWd.insert(f->wdCur, f);
        }
        byInode.insert(key, f);
        return f;
    }

    void release(WatchedFolder* f) {
        if (!f->subscribers.isEmpty()) return;
        for (int wd : {f->wdNew, f->wdCur}) {
            if (wd < 0) continue;
            if (byWd.value(wd) == f) {
                byWd.remove(wd);
                ::inotify_rm_watch(fd, wd);
            }
        }
        const QPair<quint64, quint64> key(quint64(f->dev), quint64(f->ino));
        if (byInode.value(key) == f) byInode.remove(key);
        delete f;
    }
};

std::unique_ptr<FolderWatch> FolderWatch::watch(const QString& folderDir) {
    std::unique_ptr<FolderWatch> w(new FolderWatch());
    FolderWatchRegistry& r = FolderWatchRegistry::get();
    r.drain();  // events from before this subscription are not its business
    w->m_folder = r.folderFor(folderDir);
    if (w->m_folder) w->m_folder->subscribers << w.get();
    return w;
}

FolderWatch::~FolderWatch() {
    if (!m_folder) return;
    m_folder->subscribers.removeAll(this);
    FolderWatchRegistry::get().release(m_folder);
}

bool FolderWatch::reliable() const {
    return m_folder && !m_folder->lost;
}

void FolderWatch::expect(Op op, bool inNew, const QString& name) {
    expectEvent({op, inNew, name}, true);
}

void FolderWatch::expectEvent(const Event& event, bool logged) {
    if (!reliable()) return;
    if (m_expected.size() >= kMaxExpected) {
        m_expected.clear();
        m_dirty = true;
        m_log.clear();
        m_logWhole = false;
        return;
    }
    m_expected.append({event, logged});
}

void FolderWatch::deliver(Op op, bool inNew, const QString& name) {
    for (qsizetype i = 0; i < m_expected.size(); ++i) {
        const Expected& e = m_expected.at(i);
        if (e.event.op == op && e.event.inNew == inNew && e.event.name == name) {
            // Not a change; logged in its place all the same (takeChanges() replays in order).
            if (e.logged) logEvent(e.event);
            m_expected.removeAt(i);
            return;
        }
    }
    if (m_holding && op == Op::Created && !inNew && m_held.size() < kMaxExpected) {
        m_held.append(name);  // endHold() decides; logged in its place meanwhile
        logEvent({op, inNew, name});
        return;
    }
    logChange({op, inNew, name});
}

void FolderWatch::setLogLimit(qsizetype n) {
    m_logLimit = std::clamp<qsizetype>(n, kMaxLog, kMaxLogCeiling);
}

// Appends to the log while it is whole; beyond its limit it is dropped (and stays empty until
// synced() or forgetOwn(): takeChanges() says the folder must be listed).
void FolderWatch::logEvent(const Event& e) {
    if (!m_logWhole) return;
    if (m_log.size() < m_logLimit) {
        m_log.append(e);
    } else {
        m_log.clear();
        m_logWhole = false;
    }
}

void FolderWatch::forgetOwn() {
    if (m_dirty) return;
    m_log.clear();  // nothing but own events in it (or dropped from it): the caller's list has them
    m_logWhole = true;
}

void FolderWatch::logChange(const Event& e) {
    logEvent(e);  // (the same bounded log)
    const bool was = m_dirty;
    m_dirty = true;
    if (!was && m_notify) m_notify();
}

void FolderWatch::beginHold() {
    if (!reliable()) return;
    FolderWatchRegistry::get().drain();  // what happened before is not held back
    m_holding = true;
}

void FolderWatch::endHold(const QString& ownCurName) {
    if (!m_holding) return;
    FolderWatchRegistry::get().drain();  // the worker's rename is queued by now
    m_holding = false;
    if (!ownCurName.isEmpty()) {
        if (m_held.removeOne(ownCurName)) {
            // Not a change after all: out of the log too (the last such entry).
            for (qsizetype i = m_log.size() - 1; i >= 0; --i) {
                const Event& e = m_log.at(i);
                if (e.op == Op::Created && !e.inNew && e.name == ownCurName) {
                    m_log.removeAt(i);
                    break;
                }
            }
        } else {
            expectEvent({Op::Created, false, ownCurName}, false);  // the caller numbers it (MailboxView::endOwnAppend)
        }
    }
    if (!m_held.isEmpty()) {
        const bool was = m_dirty;
        m_dirty = true;  // the others are logged already
        if (!was && m_notify) m_notify();
    }
    m_held.clear();
}

void FolderWatch::markChanged() {
    m_log.clear();
    m_logWhole = false;
    const bool was = m_dirty;
    m_dirty = true;
    if (!was && m_notify) m_notify();
}

bool FolderWatch::changed() {
    if (!reliable()) return true;
    FolderWatchRegistry::get().drain();
    return m_dirty || !reliable();
}

void FolderWatch::synced() {
    FolderWatchRegistry::get().drain();
    m_dirty = false;
    m_expected.clear();
    m_held.clear();  // the listing that follows sees them
    m_log.clear();
    m_logWhole = true;
}

std::optional<QList<FolderWatch::Event>> FolderWatch::takeChanges() {
    FolderWatchRegistry::get().drain();
    if (!reliable() || !m_logWhole || m_holding) return std::nullopt;
    m_dirty = false;
    return std::exchange(m_log, {});
}

}  // namespace postern::imap
