// imap_mailbox.cpp — see imap_mailbox.h.
#include "imap_mailbox.h"

#include "imap_kept_listing.h"

#include "common/store/maildir_delivery.h"
#include "common/store/maildir_keywords.h"
#include "common/store/maildir_names.h"

#include "core/atomic_file.h"
#include "core/posix_io.h"

#include <QDateTime>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QTimer>

#include <dirent.h>
#include <sys/stat.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>

namespace postern::imap {

Result<MailboxName> parseMailboxName(const QByteArray& wire, bool utf8) {
    QString text;
    if (utf8) {
        text = QString::fromUtf8(wire);
        if (text.toUtf8() != wire) return Result<MailboxName>::fail(QStringLiteral("mailbox name is not UTF-8"));
    } else {
        auto d = store::decodeMUtf7(QString::fromLatin1(wire));
        if (!d) return Result<MailboxName>::fail(QStringLiteral("mailbox name is not valid modified UTF-7"));
        text = *d;
    }
    if (text.endsWith(kSeparator)) text.chop(1);
    MailboxName m;
    if (text.compare(QLatin1String("INBOX"), Qt::CaseInsensitive) == 0 || text.isEmpty()) {
        if (text.isEmpty()) return Result<MailboxName>::fail(QStringLiteral("empty mailbox name"));
        m.name = QStringLiteral("INBOX");
        return m;
    }
    const QStringList parts = text.split(kSeparator);
    for (const QString& p : parts)
        if (!store::validFolderPart(p))
            return Result<MailboxName>::fail(
                QStringLiteral("mailbox name part '%1' is not allowed (empty, '.', '/', control characters)").arg(p));
    // "INBOX/x" is a folder under INBOX's name: keep INBOX upper-case as a prefix.
    QStringList norm = parts;
    if (norm.first().compare(QLatin1String("INBOX"), Qt::CaseInsensitive) == 0) norm.first() = QStringLiteral("INBOX");
    m.parts = norm;
    m.name = norm.join(kSeparator);
    if (!store::folderDirName(m.parts)) return Result<MailboxName>::fail(QStringLiteral("mailbox name too long"));
    return m;
}

QByteArray encodeMailboxName(const QString& name, bool utf8) {
    return utf8 ? name.toUtf8() : store::encodeMUtf7(name).toLatin1();
}

const QList<SpecialUse>& specialUseFolders() {
    static const QList<SpecialUse> list = {
        {"Drafts", "\\Drafts"}, {"Sent", "\\Sent"}, {"Trash", "\\Trash"}, {"Junk", "\\Junk"}, {"Archive", "\\Archive"}};
    return list;
}

QString specialUseOf(const QString& name) {
    for (const SpecialUse& s : specialUseFolders())
        if (name == QLatin1String(s.name)) return QLatin1String(s.attribute);
    return {};
}

UserMailboxes::UserMailboxes(QString maildirRoot) : m_root(std::move(maildirRoot)) {}

Status UserMailboxes::ensureDefaults() {
    if (auto st = store::ensureMaildir(m_root); !st) return st;
    bool created = false;
    for (const SpecialUse& s : specialUseFolders()) {
        MailboxName m;
        m.name = QLatin1String(s.name);
        m.parts = {m.name};
        if (exists(m)) continue;
        if (auto st = create(m); !st) return st;
        created = true;
    }
    if (created) {
        QStringList subs = subscriptions();
        for (const SpecialUse& s : specialUseFolders())
            if (!subs.contains(QLatin1String(s.name))) subs << QLatin1String(s.name);
        if (!subs.contains(QStringLiteral("INBOX"))) subs.prepend(QStringLiteral("INBOX"));
        return writeFileAtomic(m_root + QStringLiteral("/subscriptions"),
                               (subs.join(QLatin1Char('\n')) + QLatin1Char('\n')).toUtf8(), 0600);
    }
    return {};
}

QStringList UserMailboxes::list() const {
    QStringList out{QStringLiteral("INBOX")};
    const QDir d(m_root);
    for (const QString& entry : d.entryList(QDir::Dirs | QDir::Hidden | QDir::NoDotAndDotDot)) {
        const QStringList parts = store::folderParts(entry);
        if (parts.isEmpty() || !QFileInfo(m_root + QLatin1Char('/') + entry + QStringLiteral("/cur")).isDir()) continue;
        out << parts.join(kSeparator);
    }
    std::sort(out.begin() + 1, out.end());
    return out;
}

QString UserMailboxes::dirOf(const MailboxName& m) const {
    if (m.isInbox()) return m_root;
    auto d = store::folderDirName(m.parts);
    return d ? m_root + QLatin1Char('/') + *d : QString();
}

bool UserMailboxes::exists(const MailboxName& m) const {
    const QString d = dirOf(m);
    return !d.isEmpty() && QFileInfo(d + QStringLiteral("/cur")).isDir();
}

bool UserMailboxes::hasChildren(const QString& name, const QStringList& all) const {
    const QString prefix = name + kSeparator;
    for (const QString& n : all)
        if (n.startsWith(prefix)) return true;
    return false;
}

Status UserMailboxes::create(const MailboxName& m) {
    if (m.isInbox()) return Status::fail(QStringLiteral("INBOX always exists"), EEXIST);
    if (exists(m)) return Status::fail(QStringLiteral("mailbox already exists"), EEXIST);
    // Parents are created too (RFC 9051 6.3.4); Maildir++ keeps them as real folders.
    for (qsizetype i = 1; i <= m.parts.size(); ++i) {
        auto d = store::folderDirName(m.parts.mid(0, i));
        if (!d) return d.error();
        if (auto st = store::ensureMaildir(m_root, *d); !st) return st;
    }
    return {};
}

Status UserMailboxes::remove(const MailboxName& m) {
    if (m.isInbox()) return Status::fail(QStringLiteral("INBOX cannot be deleted"));
    if (!exists(m)) return Status::fail(QStringLiteral("no such mailbox"), ENOENT);
    const QString dir = dirOf(m);
    // Move the folder out of sight first (atomic), then delete it.
    MailboxIndex::release(dir);
    const QString trash = m_root + QStringLiteral("/..deleted.") + QString::number(QDateTime::currentMSecsSinceEpoch());
    if (::rename(QFile::encodeName(dir).constData(), QFile::encodeName(trash).constData()) != 0)
        return Status::fail(QStringLiteral("cannot delete: %1").arg(errnoText(errno)));
    QDir(trash).removeRecursively();
    // The subscription stays (RFC 3501 6.3.9: the server MUST NOT unilaterally remove a
    // name from the subscription list because the mailbox no longer exists; LIST
    // (SUBSCRIBED) shows it \NonExistent, RFC 5258 3).
    return {};
}

Status UserMailboxes::rename(const MailboxName& from, const MailboxName& to) {
    if (to.isInbox()) return Status::fail(QStringLiteral("cannot rename to INBOX"));
    if (!exists(from)) return Status::fail(QStringLiteral("no such mailbox"), ENOENT);
    if (exists(to)) return Status::fail(QStringLiteral("target mailbox already exists"), EEXIST);
    if (from.isInbox()) {
        // RFC 9051 6.3.6: move INBOX's messages to the new mailbox, INBOX stays (empty).
        if (auto st = create(to); !st) return st;
        const QString target = dirOf(to);
        for (const char* sub : {"/cur/", "/new/"}) {
            QDir src(m_root + QLatin1String(sub));
            for (const QString& f : src.entryList(QDir::Files))
                ::rename(QFile::encodeName(src.filePath(f)).constData(),
                         QFile::encodeName(target + QLatin1String(sub) + f).constData());
        }
        return {};
    }
    // Rename the folder and every child (".A.B" -> ".C.B"); their indexes move with them.
    MailboxIndex::release(dirOf(from));
    const QString prefix = from.name + kSeparator;
    QList<std::pair<MailboxName, MailboxName>> moves{{from, to}};
    for (const QString& n : list()) {
        if (!n.startsWith(prefix)) continue;
        MailboxName src, dst;
        src.name = n;
        src.parts = n.split(kSeparator);
        dst.name = to.name + n.mid(from.name.size());
        dst.parts = dst.name.split(kSeparator);
        moves.append({src, dst});
    }
    for (qsizetype i = 1; i < to.parts.size(); ++i) {
        MailboxName parent;
        parent.parts = to.parts.mid(0, i);
        parent.name = parent.parts.join(kSeparator);
        if (!exists(parent)) {
            if (auto st = create(parent); !st) return st;
        }
    }
    for (const auto& [src, dst] : moves) {
        if (::rename(QFile::encodeName(dirOf(src)).constData(), QFile::encodeName(dirOf(dst)).constData()) != 0)
            return Status::fail(QStringLiteral("rename failed: %1").arg(errnoText(errno)));
    }
    QStringList subs = subscriptions();
    bool changed = false;
    for (QString& s : subs) {
        if (s == from.name || s.startsWith(prefix)) {
            s = to.name + s.mid(from.name.size());
            changed = true;
        }
    }
    if (changed)
        return writeFileAtomic(m_root + QStringLiteral("/subscriptions"),
                               (subs.join(QLatin1Char('\n')) + QLatin1Char('\n')).toUtf8(), 0600);
    return {};
}

QStringList UserMailboxes::subscriptions() const {
    auto text = readFile(m_root + QStringLiteral("/subscriptions"), 1 << 20);
    QStringList out;
    if (!text) return out;
    for (const QByteArray& l : text->split('\n'))
        if (!l.trimmed().isEmpty()) out << QString::fromUtf8(l.trimmed());
    return out;
}

Status UserMailboxes::subscribe(const QString& name, bool on) {
    QStringList subs = subscriptions();
    if (on == subs.contains(name)) return {};
    if (on)
        subs << name;
    else
        subs.removeAll(name);
    return writeFileAtomic(m_root + QStringLiteral("/subscriptions"),
                           (subs.join(QLatin1Char('\n')) + QLatin1Char('\n')).toUtf8(), 0600);
}

// ---------------------------------------------------------------- selected mailbox

namespace {

bool sameMessage(const Message& a, const Message& b) {
    return a.uid == b.uid && a.modseq == b.modseq && a.inNew == b.inNew && a.size == b.size && a.vsize == b.vsize &&
           a.mtimeMs == b.mtimeMs && a.flags == b.flags && a.fileName == b.fileName && a.base == b.base &&
           a.expunged == b.expunged;
}

// Sessions on the same folder that see the same messages share one copy of the list
// (QList is implicitly shared; a session that changes flags gets its own copy until its
// next refresh). Most of an idle session's memory is this list. At most kMaxShared
// folders are remembered, least recently used dropped.
// The list is also the folder's snapshot for the next session that selects it: `current`
// when it is exactly what a listing would give (no ghosts, taken by a view whose watch
// saw nothing else happen), and valid while the snapshot's own watch (kept after the
// sessions leave, for the kMaxCurrent most recently used folders: 2 inotify watches
// each) sees no change and the uidlist file is the same: a new view then takes it
// instead of listing the folder (MailboxView::adoptSnapshot).
constexpr int kMaxShared = 128;
constexpr int kMaxCurrent = 32;
struct SharedListing {
    QString dir;
    QList<Message> messages;
    std::shared_ptr<FolderWatch> watch;  // counts changes since the snapshot was taken
    bool current = false;
    store::MaildirFolder folder;  // UIDVALIDITY, UIDNEXT, GUID as the listing left them
    quint64 hms = 0;              // the index's highest mod-sequence then (0: no index)
    FileStamp uidList;
    qint64 keepDueNs = 0;   // wall clock: keep it on disk then (0: not due; keepSnapshot)
    qint64 nextKeepNs = 0;  // wall clock: not written again from the snapshot before
};
QList<SharedListing>& sharedListings() {
    // Most recently used first. Never destroyed: its watches must not outlive the
    // watch registry at exit.
    static auto* l = new QList<SharedListing>;
    return *l;
}

void trimSharedListings() {
    QList<SharedListing>& l = sharedListings();
    while (l.size() > kMaxShared) l.removeLast();
    for (qsizetype i = kMaxCurrent; i < l.size(); ++i) {
        l[i].watch.reset();
        l[i].current = false;
    }
}

// The folder's entry (moved to the front), or null.
SharedListing* findSharedListing(const QString& dir) {
    QList<SharedListing>& l = sharedListings();
    for (qsizetype i = 0; i < l.size(); ++i) {
        if (l.at(i).dir != dir) continue;
        if (i) l.move(i, 0);
        return &l.first();
    }
    return nullptr;
}

QString uidListPath(const QString& dir) {
    return dir + QLatin1Char('/') + QLatin1String(store::MaildirFolder::kUidListName);
}

// The kept listing on disk is as good as one taken at `stamps`: the same directory
// mtimes, uidlist and index, taken while quiet (only its moment may differ).
bool keptAlready(const QString& dir, const ListingStamps& stamps, qint64 quietNs) {
    const std::optional<ListingStamps> on = KeptListing::loadStamps(dir);
    return on && on->curMtimeNs == stamps.curMtimeNs && on->newMtimeNs == stamps.newMtimeNs &&
           on->uidList == stamps.uidList && on->hms == stamps.hms &&
           KeptListing::quiet(on->curMtimeNs, on->newMtimeNs, on->takenAtNs, quietNs);
}

void writeKeptListing(const QString& dir, const ListingStamps& stamps, qint64 quietNs,
                      const store::MaildirFolder& folder, const QList<Message>& messages) {
    if (keptAlready(dir, stamps, quietNs)) return;  // (another process kept it)
    KeptListing kept;
    kept.stamps = stamps;
    kept.uidValidity = folder.uidValidity();
    kept.nextUid = folder.nextUid();
    kept.guid = folder.guid();
    kept.messages = messages;
    (void)kept.save(dir);  // a cache: when it cannot be written, the next process lists
}

qint64 wallClockNs() {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    return qint64(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

// Writes the snapshot as the folder's kept listing when it is still current: the
// directories are read first (clock, then mtimes), then the snapshot's watch, synced
// when the snapshot was taken: no change seen means none happened up to those stamps,
// so the snapshot is the folder at that moment whatever the mtimes could show, and a
// moment at which they are quiet is a moment a listing may be kept for
// (imap_kept_listing.h). Not quiet yet: due again when it will be. `rated`: at most
// once a second per folder, and at most 1/50 of the time since the last write spent
// writing (a 100,000-message listing is ~10 MB).
void keepSnapshot(SharedListing& e, bool rated) {
    e.keepDueNs = 0;
    if (!e.current || !e.watch || e.hms == 0) return;
    if (rated && wallClockNs() < e.nextKeepNs) {  // (before any system call: a busy folder comes here often)
        e.keepDueNs = e.nextKeepNs;
        return;
    }
    const DirStamps now = DirStamps::of(e.dir);
    if (!now.ok) return;
    if (e.watch->changed() || FileStamp::of(uidListPath(e.dir)) != e.uidList) {
        e.current = false;
        return;
    }
    if (!now.quiet()) {
        e.keepDueNs = std::max(now.curMtimeNs, now.newMtimeNs) + now.quietNs + 1;
        return;
    }
    QElapsedTimer took;
    took.start();
    writeKeptListing(e.dir, {now.curMtimeNs, now.newMtimeNs, now.atNs, e.uidList, e.hms}, now.quietNs, e.folder,
                     e.messages);
    e.nextKeepNs = now.atNs + std::max<qint64>(1'000'000'000, 50 * took.nsecsElapsed());
}

void keepDue(bool rated);

// One timer for every snapshot due to be kept, set for the earliest (event-loop thread).
void armKeepTimer() {
    static QTimer* timer = nullptr;  // never destroyed, as the listings
    if (!timer) {
        timer = new QTimer;
        timer->setSingleShot(true);
        QObject::connect(timer, &QTimer::timeout, [] { keepDue(true); });
    }
    qint64 first = 0;
    for (const SharedListing& e : std::as_const(sharedListings()))
        if (e.keepDueNs && (!first || e.keepDueNs < first)) first = e.keepDueNs;
    if (!first) {
        timer->stop();
        return;
    }
    const qint64 waitMs = std::clamp<qint64>((first - wallClockNs() + 999'999) / 1'000'000, 0, 60'000);
    timer->start(int(waitMs));
}

void keepDue(bool rated) {
    const qint64 now = wallClockNs();
    for (SharedListing& e : sharedListings())
        if (e.keepDueNs && (!rated || e.keepDueNs <= now)) keepSnapshot(e, rated);
    armKeepTimer();
}

// Events a watch of a folder with `messages` keeps: replaying a quarter of the folder's
// size in events still costs less than listing it, and the log (32 bytes an event per
// subscriber) stays small beside the list (about 200 bytes a message).
qsizetype watchLogLimit(qsizetype messages) {
    return std::clamp<qsizetype>(messages / 4, FolderWatch::kMaxLog, FolderWatch::kMaxLogCeiling);
}

bool inUidRanges(const QList<std::pair<quint32, quint32>>& ranges, quint32 uid) {
    for (const auto& [a, b] : ranges)
        if (uid >= a && uid <= b) return true;
    return false;
}

}  // namespace

QList<Message> MailboxView::sharedListing(const QString& dir, QList<Message> fresh) {
    if (SharedListing* e = findSharedListing(dir)) {
        bool same = e->messages.size() == fresh.size();
        for (qsizetype k = 0; same && k < fresh.size(); ++k) same = sameMessage(e->messages.at(k), fresh.at(k));
        if (!same) {
            e->messages = std::move(fresh);
            e->current = false;  // until publishSnapshot() says otherwise
        }
        return e->messages;
    }
    QList<SharedListing>& l = sharedListings();
    l.prepend({});
    l.first().dir = dir;
    l.first().messages = std::move(fresh);
    trimSharedListings();
    return l.first().messages;
}

// The snapshot's watch, subscribed if needed and synced now: changes from now on make the
// snapshot stale. Null when the folder cannot be watched (then there is no snapshot).
FolderWatch* MailboxView::syncSnapshotWatch() {
    if (!m_watch || !m_watch->reliable()) return nullptr;
    SharedListing* e = findSharedListing(m_folder.dir());
    if (!e) {
        QList<SharedListing>& l = sharedListings();
        l.prepend({});
        l.first().dir = m_folder.dir();
        l.first().messages = m_messages;
        trimSharedListings();
        e = &l.first();
    }
    if (!e->watch || !e->watch->sameFolder(*m_watch)) {
        e->current = false;
        e->watch = std::shared_ptr<FolderWatch>(FolderWatch::watch(m_folder.dir()).release());
        if (!e->watch->sameFolder(*m_watch) || !e->watch->reliable()) {
            e->watch.reset();
            return nullptr;
        }
    }
    e->watch->synced();
    return e->watch.get();
}

// This view's list is the folder as it was when `snapshotWatch` was synced (the view
// listed it right after, or its own watch saw nothing but its own changes since its
// last look, checked again now): the next new view of the folder may take it.
void MailboxView::publishSnapshot(const FolderWatch* snapshotWatch) {
    SharedListing* e = findSharedListing(m_folder.dir());
    if (!e || !snapshotWatch || e->watch.get() != snapshotWatch) return;
    e->current = false;
    if (m_ghosts || m_incomplete || !m_unlinked.isEmpty() || !m_appended.isEmpty() || m_watch->changed()) return;
    e->watch->setLogLimit(watchLogLimit(m_messages.size()));
    e->messages = m_messages;
    e->folder = m_folder;
    e->hms = m_highestModseq;
    e->uidList = FileStamp::of(uidListPath(m_folder.dir()));
    e->current = true;
    // Kept on disk for other processes once the folder is quiet (keepSnapshot).
    if (!e->keepDueNs) {
        e->keepDueNs = wallClockNs();
        armKeepTimer();
    }
}

void MailboxView::keepDueSnapshots() {
    keepDue(false);
}

// A newly opened view takes the folder's snapshot when nothing changed since it was
// taken: no event on its watch, the same uidlist file, the index at the same highest
// mod-sequence (\Recent is claimed in the index's transaction as a listing would).
// When its watch saw changes, and kept them all, the view replays them instead
// (replaySnapshot).
bool MailboxView::adoptSnapshot() {
    if (!m_watch || !m_watch->reliable() || !m_messages.isEmpty()) return false;
    SharedListing* e = findSharedListing(m_folder.dir());
    if (!e || !e->current || !e->watch || !e->watch->sameFolder(*m_watch)) return false;
    // (As with the kept listing: a read-write view does not take messages still in new/;
    // its listing moves them to cur/.)
    if (!m_readOnly && std::any_of(e->messages.cbegin(), e->messages.cend(), [](const Message& m) { return m.inNew; }))
        return false;
    const FileStamp uidList = FileStamp::of(uidListPath(m_folder.dir()));
    if (!e->watch->changed() && uidList == e->uidList) {
        if (!adoptListing(e->messages, e->folder, e->hms)) return false;
        m_watch->synced();  // (nothing happened since the snapshot: its watch says so)
        return true;
    }
    e->current = false;
    // The uidlist may have gained lines (new messages: their files are in the events), not
    // been rewritten (a rewrite can renumber what no event shows).
    if (!uidList.exists || uidList.device != e->uidList.device || uidList.inode != e->uidList.inode) return false;
    return replaySnapshot(e->messages, e->folder, e->hms, e->watch);
}

// This view as if it had been selected since the snapshot was taken: the snapshot's list
// and mod-sequence, and the snapshot's watch, which holds every change since then, applied
// as a selected view applies them (applyWatchedChanges: new files numbered, the index
// reconciled, \Recent claimed). The snapshot keeps this view's own watch instead: it
// started before this check, so its events are among those replayed, and the snapshot is
// published again from this view. False (the caller lists the folder) when the changes
// are not all known.
bool MailboxView::replaySnapshot(const QList<Message>& messages, const store::MaildirFolder& listed, quint64 hms,
                                 std::shared_ptr<FolderWatch>& watch) {
    const store::MaildirFolder before = m_folder;
    m_folder = listed;
    m_messages = messages;
    m_highestModseq = hms;
    m_ghosts = 0;
    std::swap(m_watch, watch);
    if (applyWatchedChanges(true)) {
        m_listed = true;
        publishSnapshot(syncSnapshotWatch());
        return true;
    }
    m_folder = before;
    m_messages.clear();
    m_highestModseq = 0;
    return false;
}

// A view with no list of its own takes the folder's kept listing (imap_kept_listing.h)
// when the directories and the uidlist are as it says (and the index: adoptListing).
// A read-write view does not take one with messages in new/: its listing moves them.
// The watch (selected mailboxes) started before this check: later changes show there.
bool MailboxView::adoptKeptListing() {
    if (!m_messages.isEmpty()) return false;
    std::optional<KeptListing> kept = KeptListing::load(m_folder.dir());
    if (!kept || !kept->trustworthy(DirStamps::of(m_folder.dir()), FileStamp::of(uidListPath(m_folder.dir()))))
        return false;
    if (!m_readOnly)
        for (const Message& m : std::as_const(kept->messages))
            if (m.inNew) return false;
    store::MaildirFolder listed = m_folder;
    listed.assumeListed(kept->uidValidity, kept->nextUid, kept->guid, kept->stamps.uidList);
    if (!adoptListing(std::move(kept->messages), listed, kept->stamps.hms)) return false;
    m_messages = sharedListing(m_folder.dir(), m_messages);
    if (m_watch) publishSnapshot(syncSnapshotWatch());
    return true;
}

// Keeps this view's list on disk for views of other processes (imap_kept_listing.h) when
// it is exactly the listing of the directories as `before` found them, and they were
// quiet then; else removes a kept listing (it could only be out of date). A listing of
// directories that were not quiet is kept from the snapshot (published just before, its
// keep due at once) when its watch proves it: from the timer, after this command's
// answer, as the write of a large listing costs about a tenth of the listing.
void MailboxView::keepListing(const DirStamps& before) {
    const QString dir = m_folder.dir();
    const bool exact = before.ok && m_highestModseq != 0 && m_ghosts == 0 && !m_incomplete && m_unlinked.isEmpty() &&
                       m_appended.isEmpty();
    const DirStamps after = exact ? DirStamps::of(dir) : DirStamps();  // a change during the listing: not kept
    const bool still = after.ok && after.curMtimeNs == before.curMtimeNs && after.newMtimeNs == before.newMtimeNs;
    if (!still || !before.quiet()) {
        KeptListing::remove(dir);
        return;
    }
    writeKeptListing(dir, {before.curMtimeNs, before.newMtimeNs, before.atNs, m_folder.uidListStamp(), m_highestModseq},
                     before.quietNs, m_folder, m_messages);
}

// Takes `messages`, a listing made elsewhere (another view's snapshot, the kept listing),
// as this view's list when the folder's index is still at `hms` (0: there was no index,
// and there must be none now); \Recent is claimed in the index's transaction as a
// listing would.
bool MailboxView::adoptListing(QList<Message> messages, const store::MaildirFolder& listed, quint64 hms) {
    const store::MaildirFolder before = m_folder;
    m_folder = listed;  // index() opens the index for this UIDVALIDITY
    std::shared_ptr<MailboxIndex> idx = index();
    const quint32 lastUid = messages.isEmpty() ? 0 : messages.constLast().uid;  // (no detach)
    const bool wantRecent = m_recentMode != RecentMode::None && lastUid > m_recentChecked;
    MailboxIndex::RecentClaim claim;
    bool ok = idx ? hms != 0 : hms == 0;
    if (ok && idx && wantRecent) {
        claim.claim = m_recentMode == RecentMode::Claim && !m_readOnly;
        claim.upTo = lastUid;
        auto now = idx->claimRecentAt(hms, &claim);  // fails (kStale) when the index moved on
        ok = now && *now == hms;
    } else if (ok && idx) {
        ok = idx->highestModseq() == hms;
    }
    if (!ok) {
        m_folder = before;
        return false;
    }
    if (idx && wantRecent) takeRecent(claim, lastUid);
    m_messages = std::move(messages);
    m_highestModseq = hms;
    m_ghosts = 0;
    m_listed = true;
    return true;
}

Message Message::fromEntry(const store::MessageEntry& e) {
    Message m;
    m.uid = e.uid;
    m.base = e.base;
    m.fileName = e.fileName;
    m.inNew = e.inNew;
    m.flags = store::sortFlags(e.flags);
    m.size = e.size;
    m.vsize = e.vsize;
    m.mtimeMs = e.mtimeMs;
    return m;
}

Result<MailboxView> MailboxView::open(const QString& maildirRoot, const MailboxName& name, bool readOnly,
                                      const std::optional<SelectOptions>& selected) {
    MailboxView v;
    v.m_name = name;
    v.m_readOnly = readOnly;
    auto folder = store::MaildirFolder::open(maildirRoot, name.parts, false);
    if (!folder) return folder.error();
    v.m_folder = *folder;
    if (selected) {
        // Watching starts before the first listing: nothing can fall between the two.
        v.m_watch = std::shared_ptr<FolderWatch>(FolderWatch::watch(v.m_folder.dir()).release());
        v.m_recentMode = selected->recent;
    }
    if (auto st = v.loadKeywords(); !st) return st.error();
    auto changes = v.refresh();
    if (!changes) return changes.error();
    return v;
}

Result<MailboxView> MailboxView::openTarget(const QString& maildirRoot, const MailboxName& name) {
    MailboxView v;
    v.m_name = name;
    auto folder = store::MaildirFolder::open(maildirRoot, name.parts, false);
    if (!folder) return folder.error();
    v.m_folder = *folder;
    if (auto st = v.loadKeywords(); !st) return st.error();
    return v;
}

Result<QHash<QString, quint32>> MailboxView::numberStored(const QStringList& curFileNames) {
    QHash<QString, quint32> out;
    if (!m_listed && !m_watch) {
        const store::MaildirFolder before = m_folder;
        auto added = m_folder.addOwn(curFileNames, -1);
        if (added && added->size() == curFileNames.size()) {
            QList<Message> rows;
            for (const store::MessageEntry& e : std::as_const(*added)) {
                rows << Message::fromEntry(e);
                out.insert(e.base, e.uid);
            }
            QList<Message*> touched;
            for (Message& m : rows) touched << &m;
            QList<quint32> gone;
            // The index is a cache: a row it misses now, the next listing of the folder adds.
            if (std::shared_ptr<MailboxIndex> idx = index()) (void)idx->reconcile([] { return true; }, touched, gone);
            return out;
        }
        m_folder = before;
    }
    auto changes = refresh();
    if (!changes) return changes.error();
    for (const Message& m : std::as_const(m_messages))
        if (!m.expunged) out.insert(m.base, m.uid);
    return out;
}

QString MailboxView::messageDir(bool inNew) const {
    return m_folder.dir() + (inNew ? QStringLiteral("/new/") : QStringLiteral("/cur/"));
}

QString MailboxView::path(int index) const {
    const Message& m = m_messages.at(index);
    return messageDir(m.inNew) + m.fileName;
}

bool MailboxView::setChangeNotify(std::function<void()> notify) {
    if (!m_watch) return false;
    m_watch->setNotify(std::move(notify));
    return m_watch->reliable();
}

void MailboxView::reselected() {
    // RFC 3501 2.3.2: what this session was told is recent has been claimed; a new
    // selection starts with nothing recent but what arrives from now on.
    m_recent.clear();
    if (!m_messages.isEmpty()) m_recentChecked = std::max(m_recentChecked, m_messages.constLast().uid);
    // The client is told the whole state again: the next listing may renumber freely.
    m_rebuild = true;
}

void MailboxView::setRecentMode(RecentMode mode) {
    m_recentMode = mode;
    if (mode == RecentMode::None) m_recent.clear();
}

bool MailboxView::isRecent(int index) const {
    return m_recentMode != RecentMode::None && !m_recent.isEmpty() && inUidRanges(m_recent, m_messages.at(index).uid);
}

int MailboxView::recentCount() const {
    if (m_recentMode == RecentMode::None || m_recent.isEmpty()) return 0;
    int n = 0;
    for (const Message& m : m_messages)
        if (!m.expunged && inUidRanges(m_recent, m.uid)) ++n;
    return n;
}

Result<Changes> MailboxView::refresh(bool allowExpunge) {
    Result<Changes> c = refreshList(allowExpunge);
    if (m_watch) m_watch->setLogLimit(watchLogLimit(m_messages.size()));
    return c;
}

Result<Changes> MailboxView::refreshList(bool allowExpunge) {
    // The watcher (folder_watch.h) says whether anything but this session's own changes
    // happened since the last listing; then nothing needs to be listed. Ghosts wait
    // for a refresh that may report them.
    // A new view of a folder that another view of this process listed, unchanged since:
    // no listing either.
    // A view of a folder no view of this process listed: no listing when the folder's
    // kept listing is still true (imap_kept_listing.h).
    if (!m_listed && (adoptSnapshot() || adoptKeptListing())) return Changes();
    if (m_watch && m_listed && !(m_rebuild && m_incomplete) && !m_watch->changed() && m_unlinked.isEmpty() &&
        m_appended.isEmpty()) {
        m_watch->forgetOwn();
        m_rebuild = false;  // nothing changed: the list is the folder
        return allowExpunge && m_ghosts ? dropGhosts() : Changes();
    }
    // What changed is known exactly (the watch's events, this view's own expunges and
    // appends): applied as it is. Selected again, the list is then the folder as a listing
    // gives it (no ghosts: allowExpunge), unless a listing met a file it could not number.
    if (m_watch && m_listed && !(m_rebuild && m_incomplete))
        if (std::optional<Changes> c = applyWatchedChanges(allowExpunge || m_rebuild)) {
            m_rebuild = false;
            publishSnapshot(syncSnapshotWatch());
            return *c;
        }
    m_listed = true;
    FolderWatch* snapshotWatch = nullptr;
    if (m_watch) {
        // new/ -> cur/ before the watch counts again: the listing's own renames (all of
        // new/ after an import) would otherwise read as somebody's change, and list the
        // folder again at the end of this command. (The listing still moves what arrives
        // after this; a failure here leaves the moves to it.)
        if (!m_readOnly) (void)m_folder.moveNewToCur();
        m_watch->synced();  // before the listing: a change during it shows up next time
        snapshotWatch = syncSnapshotWatch();
    }
    const DirStamps before = DirStamps::of(m_folder.dir());  // before the listing reads them
    auto changes = refreshListing(allowExpunge);
    if (changes && snapshotWatch) publishSnapshot(snapshotWatch);
    if (changes) keepListing(before);
    return changes;
}

Changes MailboxView::dropGhosts() {
    Changes c;
    QList<Message> kept;
    kept.reserve(m_messages.size());
    for (int i = int(m_messages.size()) - 1; i >= 0; --i)
        if (m_messages.at(i).expunged) c.expunged << i + 1;
    for (const Message& m : m_messages) {
        if (m.expunged)
            c.expungedUids << m.uid;
        else
            kept << m;
    }
    m_ghosts = 0;
    m_messages = sharedListing(m_folder.dir(), std::move(kept));
    return c;
}

// Folds file events into w.states, in the kernel's order. A base name's first event starts
// from the file the list knows for it (none for a ghost or a name the list lacks); a
// removal counts only when it removes the file the state holds (an event from before the
// last listing, or of a second file of that base, changes nothing).
void MailboxView::foldEvents(const QList<FolderWatch::Event>& events, WatchedChanges& w) const {
    QList<QString> bases;
    bases.reserve(events.size());
    QSet<QString> fresh;  // bases not looked up in the list yet
    for (const FolderWatch::Event& e : events) {
        const bool message = !e.name.isEmpty() && !e.name.startsWith(QLatin1Char('.'));  // (as in a listing)
        bases << (message ? store::parseFileName(e.name).base : QString());
        if (message && !w.states.contains(bases.last())) fresh.insert(bases.last());
    }
    if (!fresh.isEmpty())
        for (int i = 0; i < m_messages.size(); ++i) {
            const Message& m = m_messages.at(i);
            if (!m.expunged && fresh.contains(m.base)) w.known.insert(m.base, i);
        }
    for (qsizetype k = 0; k < events.size(); ++k) {
        const FolderWatch::Event& e = events.at(k);
        const QString& base = bases.at(k);
        if (base.isEmpty()) continue;
        auto it = w.states.find(base);
        if (it == w.states.end()) {
            FileState start;
            if (auto known = w.known.constFind(base); known != w.known.cend()) {
                const Message& m = m_messages.at(*known);
                start = {true, m.inNew, m.fileName};
            }
            it = w.states.insert(base, start);
        }
        if (e.op == FolderWatch::Op::Created)
            *it = {true, e.inNew, e.name};
        else if (it->present && it->inNew == e.inNew && it->name == e.name)
            it->present = false;
    }
}

// Applies what changed since the last look when it is known exactly, without listing the
// folder: the watch's events (other sessions', processes' and deliveries' renames and
// unlinks, files another session put into cur/) and this view's own expunges (m_unlinked)
// and APPENDs (m_appended). The files new in cur/ get their UIDs as a listing would give
// them (MaildirFolder::addOwn); the index records it all in one transaction, inside which
// the watch is read once more (imap_index.h: reconcile). nullopt when that cannot be done
// here (the watch's log is not whole, a file in new/ of a read-only view, a message that could only be numbered
// below what the client knows, a uidlist that needs a rewrite): the caller lists the folder.
std::optional<Changes> MailboxView::applyWatchedChanges(bool allowExpunge) {
    std::shared_ptr<MailboxIndex> idx = index();
    if (idx ? m_highestModseq == 0 : m_highestModseq != 0) return std::nullopt;
    std::optional<QList<FolderWatch::Event>> events = m_watch->takeChanges();
    if (!events) return std::nullopt;
    WatchedChanges w;
    foldEvents(*events, w);
    if (!m_readOnly && deliveredToNew(w)) {
        // Deliveries: moved to cur/ as a listing moves them (MaildirFolder::moveNewToCur),
        // then numbered from the events of those moves like any new file in cur/.
        if (!m_folder.moveNewToCur()) return std::nullopt;
        std::optional<QList<FolderWatch::Event>> moved = m_watch->takeChanges();
        if (!moved) return std::nullopt;
        foldEvents(*moved, w);
    }
    for (const QString& name : std::as_const(m_appended))
        if (w.states.contains(store::parseFileName(name).base)) return std::nullopt;  // renamed already
    if (!numberNewFiles(w)) return std::nullopt;
    WatchedChanges::Result r;
    if (!mergeWatched(w, allowExpunge, r)) return std::nullopt;
    if (idx) {
        const quint32 lastUid = r.merged.isEmpty() ? 0 : r.merged.last().uid;
        const bool wantRecent = m_recentMode != RecentMode::None && lastUid > m_recentChecked;
        MailboxIndex::RecentClaim claim;
        claim.claim = m_recentMode == RecentMode::Claim && !m_readOnly;
        claim.upTo = lastUid;
        // With the index locked: events that arrived meanwhile join (no new file among them).
        auto inside = [&]() -> bool {
            std::optional<QList<FolderWatch::Event>> more = m_watch->takeChanges();
            if (!more) return false;
            if (more->isEmpty()) return true;
            foldEvents(*more, w);
            for (auto it = w.states.cbegin(); it != w.states.cend(); ++it)
                if (it->present && !w.known.contains(it.key()) && !w.numbered.contains(it.key())) return false;
            r = WatchedChanges::Result();
            return mergeWatched(w, allowExpunge, r);
        };
        auto hms = idx->reconcile(inside, r.touched, r.gone, wantRecent ? &claim : nullptr);
        if (!hms) return std::nullopt;  // the caller lists the folder (and rebuilds a damaged index)
        m_highestModseq = *hms;
        if (wantRecent) takeRecent(claim, r.merged.isEmpty() ? 0 : r.merged.last().uid);
    }
    r.changes.keywordsChanged = reloadKeywords();
    m_ghosts = 0;
    for (const Message& m : std::as_const(r.merged)) m_ghosts += m.expunged ? 1 : 0;
    m_unlinked.clear();
    m_appended.clear();
    m_messages = sharedListing(m_folder.dir(), std::move(r.merged));
    return r.changes;
}

// A file in new/ the list does not know (a delivery).
bool MailboxView::deliveredToNew(const WatchedChanges& w) {
    for (auto it = w.states.cbegin(); it != w.states.cend(); ++it)
        if (it->present && it->inNew && !w.known.contains(it.key())) return true;
    return false;
}

// Files new in cur/ (another session's APPEND or COPY, this view's own APPENDs) get their
// UIDs as a listing would give them; false when one cannot be numbered here (a file in new/ of a read-only view,
// the uidlist needs a rewrite, a UID not above what the client knows).
bool MailboxView::numberNewFiles(WatchedChanges& w) {
    QStringList fresh = m_appended;
    for (auto it = w.states.cbegin(); it != w.states.cend(); ++it) {
        if (!it->present || w.known.contains(it.key())) continue;
        if (it->inNew) return false;  // a delivery: the listing moves it to cur/
        fresh << it->name;
    }
    if (fresh.isEmpty()) return true;
    const quint32 lastKnown = m_messages.isEmpty() ? 0 : m_messages.constLast().uid;
    const store::MaildirFolder before = m_folder;
    auto added = m_folder.addOwn(fresh, m_messages.size() - m_ghosts);
    bool ok = added && added->size() == fresh.size() && m_folder.uidValidity() == before.uidValidity() &&
              m_folder.guid() == before.guid();
    for (qsizetype k = 0; ok && k < added->size(); ++k) ok = added->at(k).uid > lastKnown;
    if (!ok) {
        m_folder = before;
        return false;
    }
    w.added = std::move(*added);
    for (const store::MessageEntry& e : std::as_const(w.added)) w.numbered.insert(e.base);
    return true;
}

// The new list: the old one in order, each message as the events left its file (renamed,
// or gone: reported, or kept as a ghost), then the numbered new files in UID order.
bool MailboxView::mergeWatched(const WatchedChanges& w, bool allowExpunge, WatchedChanges::Result& r) const {
    Changes& c = r.changes;
    r.merged.reserve(m_messages.size() + w.added.size());
    QList<int> expungedSeqs;  // old sequence numbers, ascending
    QList<qsizetype> touchedAt;
    auto leave = [&](int i, const Message& old) {
        if (allowExpunge) {
            expungedSeqs << i + 1;
            c.expungedUids << old.uid;
            return;
        }
        Message ghost = old;
        ghost.expunged = true;
        r.merged << ghost;
    };
    for (int i = 0; i < m_messages.size(); ++i) {
        const Message& old = m_messages.at(i);
        auto st = w.states.constFind(old.base);
        if (old.expunged) {
            if (st != w.states.cend() && st->present) return false;  // a ghost's file is back: a listing sorts it out
            leave(i, old);
            continue;
        }
        bool gone = m_unlinked.contains(old.uid);
        Message now = old;
        if (!gone && st != w.states.cend()) {
            gone = !st->present;
            if (st->present) {
                now.fileName = st->name;
                now.inNew = st->inNew;
                now.flags = store::sortFlags(store::parseFileName(st->name).flags);
            }
        }
        if (gone) {
            r.gone << old.uid;
            leave(i, old);
            continue;
        }
        r.merged << now;
        if (now.flags != old.flags) c.flagChanged << int(r.merged.size());
        if (now.fileName != old.fileName || now.inNew != old.inNew) touchedAt << r.merged.size() - 1;
    }
    bool added = false;
    for (const store::MessageEntry& e : w.added) {
        Message m = Message::fromEntry(e);
        if (auto st = w.states.constFind(e.base); st != w.states.cend() && st->name != e.fileName) {
            if (!st->present) continue;  // gone again before the client heard of it
            m.fileName = st->name;
            m.inNew = st->inNew;
            m.flags = store::sortFlags(store::parseFileName(st->name).flags);
        }
        r.merged << m;
        touchedAt << r.merged.size() - 1;
        added = true;
    }
    for (qsizetype k : touchedAt) r.touched << &r.merged[k];
    for (qsizetype k = expungedSeqs.size() - 1; k >= 0; --k) c.expunged << expungedSeqs.at(k);  // highest first
    std::sort(c.expungedUids.begin(), c.expungedUids.end());
    if (added) c.exists = int(r.merged.size());
    return true;
}

void MailboxView::beginOwnAppend() {
    if (m_watch) m_watch->beginHold();
}

void MailboxView::endOwnAppend(const QString& curFileName) {
    if (!m_watch) return;
    m_watch->endHold(curFileName);
    if (!curFileName.isEmpty()) m_appended << curFileName;
}

namespace {
quint64 g_listings = 0;  // event-loop thread only
}  // namespace

quint64 MailboxView::listings() {
    return g_listings;
}

// Lists the folder (MaildirFolder::sync): what this view listed before, else what the
// index knows, spares a stat(2) per file. A message this view knew that the listing
// misses gets a second listing before it counts as gone.
Result<MailboxView::Listed> MailboxView::listFolder() {
    // Files never change once delivered: what we listed before needs no stat(2) again.
    QHash<quint32, int> byUid;
    byUid.reserve(m_messages.size());
    for (int i = 0; i < m_messages.size(); ++i) byUid.insert(m_messages.at(i).uid, i);
    // A newly opened view takes them from the index instead.
    MailboxIndex::KnownFiles fromIndex;
    if (m_messages.isEmpty()) {
        if (std::shared_ptr<MailboxIndex> idx = index()) fromIndex = idx->knownFiles();
    }
    auto known = [&](quint32 uid, const QString& base, qint64* size, qint64* mtimeMs) {
        auto it = byUid.constFind(uid);
        if (it != byUid.cend() && m_messages.at(*it).base == base) {
            *size = m_messages.at(*it).size;
            *mtimeMs = m_messages.at(*it).mtimeMs;
            return true;
        }
        return fromIndex.lookup(uid, base, size, mtimeMs);
    };
    auto list = m_folder.sync(!m_readOnly, known);
    if (!list) return list.error();
    Listed out;
    out.list = std::move(*list);
    out.fresh.reserve(out.list.size());
    for (int k = 0; k < out.list.size(); ++k) out.fresh.insert(out.list.at(k).uid, k);
    // readdir(3) may miss a file that another session renames at that moment (a flag
    // change): before calling a known message gone, list once more.
    // (Not for the files this session unlinked itself.)
    bool missing = false;
    for (const Message& m : m_messages)
        missing = missing || (!m.expunged && !out.fresh.contains(m.uid) && !m_unlinked.contains(m.uid));
    m_unlinked.clear();
    if (missing) {
        auto again = m_folder.sync(!m_readOnly, known);
        if (!again) return again.error();
        for (int k = 0; k < again->size(); ++k)
            if (!out.fresh.contains(again->at(k).uid)) {
                out.list.append(again->at(k));
                out.fresh.insert(again->at(k).uid, int(out.list.size()) - 1);
            }
    }
    return out;
}

// Keywords another session added (it renamed files in cur/ too, so a listing runs):
// true when the table gained a keyword.
bool MailboxView::reloadKeywords() {
    if (FileStamp::of(m_folder.dir() + QStringLiteral("/dovecot-keywords")) == m_keywordsStamp) return false;
    const QStringList before = m_keywords;
    (void)loadKeywords();
    bool added = false;
    for (const QString& k : m_keywords)
        if (!k.isEmpty() && !before.contains(k)) added = true;
    return added;
}

// After a new SELECT the client learns the whole list again: every message counts as
// new to it, in UID order (a file that reappeared under an old UID included).
void MailboxView::restartList(const QList<store::MessageEntry>& list) {
    QHash<quint32, quint64> modseqs;
    for (const Message& m : m_messages) modseqs.insert(m.uid, m.modseq);
    m_messages.clear();
    for (const store::MessageEntry& e : list) {  // in UID order
        m_messages << Message::fromEntry(e);
        m_messages.last().modseq = modseqs.value(e.uid);
    }
    m_ghosts = 0;
    m_incomplete = false;
}

// The old list, in order: present messages take their current state, vanished ones are
// reported in `c` (or kept as ghosts: `ghosted`), then the new messages follow in UID
// order. m_ghosts and m_incomplete follow.
QList<Message> MailboxView::mergeListing(const Listed& listed, bool allowExpunge, Changes* c, bool* ghosted) {
    const QList<store::MessageEntry>& list = listed.list;
    QList<Message> merged;
    merged.reserve(list.size() + m_ghosts);
    const quint32 lastKnown = m_messages.isEmpty() ? 0 : m_messages.constLast().uid;
    QList<bool> taken(list.size(), false);
    int seq = 0;              // sequence number in the new list (expunged ones removed)
    QList<int> expungedSeqs;  // old sequence numbers, ascending
    for (int i = 0; i < m_messages.size(); ++i) {
        const Message& old = m_messages.at(i);
        auto it = listed.fresh.constFind(old.uid);
        if (it == listed.fresh.cend()) {
            if (allowExpunge) {
                expungedSeqs << i + 1;
                c->expungedUids << old.uid;
                continue;
            }
            Message ghost = old;
            *ghosted = *ghosted || !old.expunged;
            ghost.expunged = true;
            merged << ghost;
            ++seq;
            continue;
        }
        taken[*it] = true;
        Message now = Message::fromEntry(list.at(*it));
        now.modseq = old.modseq;
        ++seq;
        if (now.flags != old.flags) c->flagChanged << seq;  // (a ghost seen again counts as changed too)
        merged << now;
    }
    for (int k = 0; k < list.size(); ++k) {
        // A UID below what the client already knows cannot get a sequence number now
        // (UIDs only grow; this is a file that a rename hid from an earlier listing).
        if (taken.at(k)) continue;
        if (list.at(k).uid <= lastKnown) {
            m_incomplete = true;  // until the client is given the whole list again (a new SELECT)
            continue;
        }
        merged << Message::fromEntry(list.at(k));
    }
    for (qsizetype k = expungedSeqs.size() - 1; k >= 0; --k) c->expunged << expungedSeqs.at(k);  // highest first
    std::sort(c->expungedUids.begin(), c->expungedUids.end());
    m_ghosts = 0;
    for (const Message& m : merged) m_ghosts += m.expunged ? 1 : 0;
    return merged;
}

// Mod-sequences: the index assigns them when something changed (here or elsewhere), and
// hands out \Recent in the same transaction. `differs`: the merged list is not the old one.
void MailboxView::syncIndex(QList<Message>& merged, bool differs) {
    std::shared_ptr<MailboxIndex> idx = index();
    if (!idx) return;
    const bool first = m_highestModseq == 0;
    const quint32 lastUid = merged.isEmpty() ? 0 : merged.last().uid;
    const bool wantRecent = m_recentMode != RecentMode::None && lastUid > m_recentChecked;
    if (!first && !differs && !wantRecent && idx->highestModseq() == m_highestModseq) return;
    QList<Message> live;  // the index sees the folder as it is: no ghosts
    live.reserve(merged.size());
    for (const Message& m : merged)
        if (!m.expunged) live << m;
    MailboxIndex::RecentClaim claim;
    claim.claim = m_recentMode == RecentMode::Claim && !m_readOnly;
    claim.upTo = lastUid;
    auto hms = idx->sync(live, wantRecent ? &claim : nullptr);
    if (!hms && MailboxIndex::isDamage(hms.error().code)) {
        // A cache: rebuild it once from the Maildir, else go on without mod-sequences.
        // (Busy or full is not damage: another process may be using the file.)
        MailboxIndex::forget(m_folder.dir());
        if (std::shared_ptr<MailboxIndex> again = index()) hms = again->sync(live, wantRecent ? &claim : nullptr);
    }
    m_highestModseq = hms ? *hms : 0;
    if (!hms) return;
    qsizetype l = 0;
    for (Message& m : merged)
        if (!m.expunged) m.modseq = live.at(l++).modseq;
    if (wantRecent) takeRecent(claim, lastUid);
}

// \Recent: the UIDs the index's transaction gave this session, up to `lastUid`.
void MailboxView::takeRecent(const MailboxIndex::RecentClaim& claim, quint32 lastUid) {
    const quint32 from = std::max(claim.first, m_recentChecked + 1);
    if (from <= lastUid) m_recent.append({from, lastUid});
    m_recentChecked = lastUid;
}

Result<Changes> MailboxView::refreshListing(bool allowExpunge) {
    ++g_listings;
    m_appended.clear();  // the listing finds them (their UIDs, if given, are in the uidlist)
    auto listed = listFolder();
    if (!listed) return listed.error();
    Changes c;
    c.keywordsChanged = reloadKeywords();
    if (std::exchange(m_rebuild, false)) restartList(listed->list);
    const quint32 lastKnown = m_messages.isEmpty() ? 0 : m_messages.constLast().uid;
    bool ghosted = false;  // a message went away and is kept as a ghost
    QList<Message> merged = mergeListing(*listed, allowExpunge, &c, &ghosted);
    const bool added = !merged.isEmpty() && merged.last().uid > lastKnown;
    syncIndex(merged, added || ghosted || merged.size() != m_messages.size() || !c.flagChanged.isEmpty());
    if (added) c.exists = int(merged.size());  // EXPUNGE alone implies the new count (RFC 9051 7.5.1)
    m_messages = sharedListing(m_folder.dir(), std::move(merged));
    return c;
}

std::shared_ptr<MailboxIndex> MailboxView::index() const {
    return MailboxIndex::acquire(m_folder.dir(), m_folder.uidValidity());
}

QList<quint32> MailboxView::expungedSince(quint64 modseq, bool* complete) const {
    *complete = false;
    std::shared_ptr<MailboxIndex> idx = index();
    return idx ? idx->expungedSince(modseq, complete) : QList<quint32>();
}

Status MailboxView::loadKeywords() {
    m_keywordsStamp = FileStamp::of(m_folder.dir() + QStringLiteral("/dovecot-keywords"));
    m_keywords = store::readKeywordTable(m_folder.dir());
    return {};
}

QStringList MailboxView::imapFlags(int index) const {
    QStringList out = store::flagNames(m_messages.at(index).flags, m_keywords);
    if (isRecent(index)) out << QStringLiteral("\\Recent");  // a session flag (RFC 3501 2.3.2)
    return out;
}

QByteArray MailboxView::flagListText(int index) const {
    // The same text as Commands::flagList(imapFlags(index)), without a list of strings per
    // message (UID FETCH 1:* (FLAGS) of a large folder).
    QByteArray out;
    out.reserve(48);
    out += '(';
    const QString& letters = m_messages.at(index).flags;
    for (QChar c : letters) {
        if (c >= QLatin1Char('a') && c <= QLatin1Char('z')) continue;
        const char* f = nullptr;
        switch (c.unicode()) {
            case 'S':
                f = "\\Seen";
                break;
            case 'R':
                f = "\\Answered";
                break;
            case 'F':
                f = "\\Flagged";
                break;
            case 'T':
                f = "\\Deleted";
                break;
            case 'D':
                f = "\\Draft";
                break;
            case 'P':
                f = "$Forwarded";
                break;
            default:
                break;
        }
        if (!f) continue;
        if (out.size() > 1) out += ' ';
        out += f;
    }
    for (QChar c : letters) {
        if (c < QLatin1Char('a') || c > QLatin1Char('z')) continue;
        const int k = c.unicode() - 'a';
        if (k >= m_keywords.size() || m_keywords.at(k).isEmpty()) continue;
        if (out.size() > 1) out += ' ';
        out += m_keywords.at(k).toUtf8();
    }
    if (isRecent(index)) out += out.size() > 1 ? " \\Recent" : "\\Recent";
    out += ')';
    return out;
}

Result<QString> MailboxView::lettersFor(const QStringList& flags, bool create) {
    QString letters;
    QStringList keywords;
    for (const QString& f : flags) {
        const QString sys = store::systemFlagLetter(f);
        if (!sys.isEmpty()) {
            letters += sys;
            continue;
        }
        if (f.startsWith(QLatin1Char('\\'))) {
            if (f.compare(QLatin1String("\\Recent"), Qt::CaseInsensitive) == 0) continue;
            return Result<QString>::fail(QStringLiteral("unknown system flag %1").arg(f));
        }
        keywords << f;
    }
    // The one keyword-letter mapping (store/maildir_keywords.h), on this view's copy of the table.
    QStringList table = m_keywords;
    QStringList full;
    auto kw = store::assignKeywordLetters(m_folder.dir(), &table, keywords,
                                          create ? store::NewKeywords::Add : store::NewKeywords::Skip, &full);
    if (table != m_keywords) {  // read again or extended under the lock: the file changed
        m_keywords = table;
        m_keywordsStamp = FileStamp::of(m_folder.dir() + QStringLiteral("/dovecot-keywords"));
    }
    if (!kw) return kw.error();
    if (!full.isEmpty())
        return Result<QString>::fail(
            QStringLiteral("too many keywords in this mailbox (%1)").arg(store::kMaxKeywordsPerFolder));
    return store::sortFlags(letters + *kw);
}

std::optional<std::pair<QString, bool>> MailboxView::currentFile(int index) const {
    const Message& m = m_messages.at(index);
    struct stat st {};
    if (::lstat(QFile::encodeName(path(index)).constData(), &st) == 0 || errno != ENOENT)
        return std::pair(m.fileName, m.inNew);
    if (m.expunged) return std::nullopt;  // missing from two listings already: no search by name
    for (const bool inNew : {false, true}) {
        DIR* d = ::opendir(QFile::encodeName(messageDir(inNew)).constData());
        if (!d) continue;
        std::optional<std::pair<QString, bool>> found;
        while (dirent* de = ::readdir(d)) {
            if (de->d_name[0] == '.') continue;
            const QString name = QFile::decodeName(de->d_name);
            if (store::parseFileName(name).base == m.base) {
                found = std::pair(name, inNew);
                break;
            }
        }
        ::closedir(d);
        if (found) return found;
    }
    return std::nullopt;
}

Result<MailboxView::FlagChange> MailboxView::changeFlags(int index, int mode, const QString& letters) {
    Message& m = m_messages[index];  // detaches from the shared list
    if (m.expunged) return Result<FlagChange>::fail(QStringLiteral("message was expunged"), ENOENT);
    FlagChange out;
    QString current = m.flags, name = m.fileName;
    bool inNew = m.inNew;
    // Another session may rename the file between our look and our rename: a few rounds.
    for (int attempt = 0; attempt < 4; ++attempt) {
        QString next;
        if (mode == 0)
            next = letters;
        else if (mode > 0)
            next = store::sortFlags(current + letters);
        else {
            next = current;
            for (QChar c : letters) next.remove(c);
        }
        next = store::sortFlags(next);
        if (next == current) {
            m.flags = current;
            m.fileName = name;
            m.inNew = inNew;
            return out;
        }
        const QString to = store::withFlags(m.base, next);
        const QString from = messageDir(inNew) + name;
        if (::rename(QFile::encodeName(from).constData(), QFile::encodeName(messageDir(false) + to).constData()) == 0) {
            // Our own change: the watcher is told, so it does not make us list the folder.
            if (m_watch) {
                m_watch->expect(FolderWatch::Op::Removed, inNew, name);
                m_watch->expect(FolderWatch::Op::Created, false, to);
            }
            m.fileName = to;
            m.inNew = false;
            m.flags = next;
            out.changed = true;
            if (m_highestModseq) {
                if (std::shared_ptr<MailboxIndex> idx = this->index()) {
                    if (auto ms = idx->recordFlags(m.uid, m.flags)) {
                        m.modseq = *ms;
                        m_highestModseq = std::max(m_highestModseq, *ms);
                    }
                }
            }
            return out;
        }
        if (errno != ENOENT)
            return Result<FlagChange>::fail(QStringLiteral("%1: %2").arg(from, errnoText(errno)), errno);
        // Renamed by someone else (new flags): take its flags as they are now.
        auto found = currentFile(index);
        if (!found) return Result<FlagChange>::fail(QStringLiteral("message was expunged"), ENOENT);
        name = found->first;
        inNew = found->second;
        current = store::sortFlags(store::parseFileName(name).flags);
        out.merged = true;
    }
    return Result<FlagChange>::fail(QStringLiteral("the message keeps being renamed"), EAGAIN);
}

Status MailboxView::expunge(int index) {
    auto file = currentFile(index);
    if (!file) return {};  // gone already
    const Message& m = m_messages.at(index);
    store::MessageEntry e;
    e.uid = m.uid;
    e.base = m.base;
    e.fileName = file->first;
    e.inNew = file->second;
    e.size = m.size;
    Status st = m_folder.expunge(e);
    if (st) {
        m_unlinked.insert(m.uid);
        // Our own change: the watcher is told, so the next refresh() need not list the folder.
        if (m_watch) m_watch->expect(FolderWatch::Op::Removed, e.inNew, e.fileName);
    }
    return st;
}

}  // namespace postern::imap
