// commands/selected.cpp — CHECK CLOSE UNSELECT EXPUNGE STORE COPY MOVE, and
// the reporting of mailbox changes (FLAGS/PERMANENTFLAGS for new keywords;
// EXPUNGE or, with QRESYNC, VANISHED; EXISTS and, for IMAP4rev1, RECENT;
// FETCH FLAGS with MODSEQ once CONDSTORE is on), which the session sends
// before the tagged response of every command (imap_session.h).
// Standards: RFC 9051 6.4, 4315 (UIDPLUS: UID EXPUNGE, COPYUID), 6851 (MOVE),
// 3691 (UNSELECT), 7162 (STORE UNCHANGEDSINCE, [MODIFIED]), 5162 3.4 (CLOSE's
// [HIGHESTMODSEQ]), 5530 (EXPUNGEISSUED). Read-only (EXAMINE) mailboxes refuse every change.
// STORE applies +FLAGS/-FLAGS to the file's flags as they are at that moment
// (MailboxView::changeFlags): two sessions changing different flags of one
// message both keep their change. COPY keeps the flags (keywords created in the
// target as needed) and the INTERNALDATE (a hard link, or a copy with the
// source's times), as RFC 9051 6.4.7 asks; the copy is \Recent for the session
// that sees it first (RFC 3501 6.4.7).
// Security: COPY and MOVE are all or nothing (see "COPY and MOVE" below): a copy
// that cannot be stored (full disk, quota, an unwritable or odd target) leaves
// neither a partial copy in the target nor a missing message in the source; the
// sources of a MOVE are unlinked only once every copy is durable. Blocking: the
// copies are hard links (a real copy only across file systems) and one fsync of
// the target's cur/, on the event-loop thread.
// Spam learning: a COPY/MOVE into the \Junk special-use folder hands each copy to
// ImapBackend::learn as spam, one out of \Junk into any folder but \Trash as ham (a
// queued request, nothing waits for the spam filter).
// Limits: work per command is linear in the messages named (sets are resolved
// to sorted lists once; UID EXPUNGE's set is binary-searched).
#include "commands.h"

#include "common/store/maildir_delivery.h"
#include "common/store/maildir_keywords.h"
#include "common/store/maildir_names.h"

#include "core/atomic_file.h"
#include "core/log.h"
#include "core/posix_io.h"

#include <QFile>
#include <QFileInfo>
#include <QHash>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <variant>

namespace postern::imap {

void Commands::sendChanges(ImapSession& s, const Changes& c) {
    MailboxView& v = *selected(s);
    // New keywords first: no FETCH may show a flag the client was not told of (RFC 9051 7.3.5).
    if (c.keywordsChanged) flagsResponse(s);
    if (qresync(s)) {
        if (!c.expungedUids.isEmpty()) s.untagged("VANISHED " + compactSet(c.expungedUids));  // RFC 7162 3.2.10
    } else {
        for (int seq : c.expunged) s.untagged(QByteArray::number(seq) + " EXPUNGE");
    }
    if (c.exists >= 0) {
        s.untagged(QByteArray::number(c.exists) + " EXISTS");
        // RFC 3501 7.3.2: RECENT when the size of the mailbox changes (IMAP4rev1 sessions).
        if (!s.m_rev2) s.untagged(QByteArray::number(v.recentCount()) + " RECENT");
    }
    for (int seq : c.flagChanged)
        s.untagged(QByteArray::number(seq) + " FETCH (FLAGS " + flagList(v.imapFlags(seq - 1)) + " UID " +
                   QByteArray::number(v.messages().at(seq - 1).uid) + modseqItem(s, seq - 1) + ')');
}

void Commands::check(ImapSession& s, const R& r) {
    s.ok(r, QStringLiteral("CHECK completed"));  // the changes are reported before every tagged OK
}

namespace {
// Unlinks messages flagged \Deleted (and in `only`, ascending, when given); returns their UIDs.
// The next refresh() reports them.
QList<quint32> expungeDeleted(MailboxView& v, const std::optional<QList<int>>& only) {
    QList<quint32> gone;
    const auto& msgs = v.messages();
    for (int i = 0; i < msgs.size(); ++i) {
        if (msgs.at(i).expunged || !msgs.at(i).flags.contains(QLatin1Char('T'))) continue;
        if (only && !std::binary_search(only->cbegin(), only->cend(), i)) continue;  // not a scan per message
        if (v.expunge(i).ok()) gone << msgs.at(i).uid;
    }
    return gone;
}
}  // namespace

void Commands::close(ImapSession& s, const R& r) {
    MailboxView& v = *selected(s);
    QByteArray code;
    if (!v.readOnly() && !expungeDeleted(v, std::nullopt).isEmpty()) {  // silently (RFC 9051 6.4.1)
        // RFC 5162 3.4: a CONDSTORE client learns the mod-sequence of the expunges.
        const quint64 before = v.highestModseq();
        if (v.refresh(true).ok() && condstore(s) && before && v.highestModseq() > before)
            code = "HIGHESTMODSEQ " + QByteArray::number(v.highestModseq());
    }
    s.stopIdleWatch();
    selected(s).reset();
    state(s) = ImapSession::State::Authenticated;
    s.ok(r, QStringLiteral("CLOSE completed"), code);
}

void Commands::unselect(ImapSession& s, const R& r) {
    s.stopIdleWatch();
    selected(s).reset();
    state(s) = ImapSession::State::Authenticated;
    s.ok(r, QStringLiteral("UNSELECT completed"));
}

void Commands::expunge(ImapSession& s, const R& r) {
    MailboxView& v = *selected(s);
    if (v.readOnly()) {
        s.no(r, QStringLiteral("Mailbox is read-only"), "READ-ONLY");
        return;
    }
    std::optional<QList<int>> only;
    if (r.uid) {
        if (r.args.size() != 1 || r.args.at(0).kind != Token::Kind::Atom) {
            s.bad(r, QStringLiteral("Usage: UID EXPUNGE uid-set"));
            return;
        }
        only = resolveSequenceSet(r.args.at(0).text, v, true);
        if (!only) {
            s.bad(r, QStringLiteral("Bad UID set"));
            return;
        }
    } else if (!r.args.isEmpty()) {
        s.bad(r, QStringLiteral("EXPUNGE takes no arguments"));
        return;
    }
    expungeDeleted(v, only);
    s.ok(r, QStringLiteral("EXPUNGE completed"));  // the EXPUNGE/VANISHED responses come right before
}

namespace {

// STORE's arguments once checked.
struct StoreArgs {
    QList<int> set;  // message indexes, ascending
    int mode = 0;    // 0 replace, 1 add, -1 remove
    bool silent = false;
    QStringList flags;
    std::optional<quint64> unchangedSince;
};

// The modifiers list (UNCHANGEDSINCE mod-sequence) (RFC 7162 3.1.3). Sends BAD and
// returns false when it is anything else, or the mailbox has no mod-sequences.
bool parseStoreModifiers(ImapSession& s, const ImapSession::Request& r, const MailboxView& v, StoreArgs& a) {
    const QList<Token>& mods = r.args.at(1).items;
    if (mods.size() != 2 || !mods.at(0).isAtom("UNCHANGEDSINCE") ||
        !(a.unchangedSince = parseModseq(mods.at(1), true))) {
        s.bad(r, QStringLiteral("The only STORE modifier is (UNCHANGEDSINCE mod-sequence)"));
        return false;
    }
    if (v.highestModseq() == 0) {
        s.bad(r, QStringLiteral("This mailbox has no mod-sequences (NOMODSEQ)"));
        return false;
    }
    return true;
}

// FLAGS|+FLAGS|-FLAGS[.SILENT] (flags) at args[at]: the mode and the flag names. Sends BAD
// and returns false on an unknown item, a bad flag list or an unknown system flag.
bool parseStoreItem(ImapSession& s, const ImapSession::Request& r, qsizetype at, StoreArgs& a) {
    QByteArray item = r.args.at(at).text.toUpper();
    a.silent = item.endsWith(".SILENT");
    if (a.silent) item.chop(7);
    if (item == "+FLAGS")
        a.mode = 1;
    else if (item == "-FLAGS")
        a.mode = -1;
    else if (item != "FLAGS") {
        s.bad(r, QStringLiteral("Unknown STORE item"));
        return false;
    }
    auto flags = parseFlagList(r.args.at(at + 1));
    if (!flags) {
        s.bad(r, QStringLiteral("Bad flag list"));
        return false;
    }
    for (const QString& f : *flags) {
        if (f.startsWith(QLatin1Char('\\')) && store::systemFlagLetter(f).isEmpty() &&
            f.compare(QLatin1String("\\Recent"), Qt::CaseInsensitive) != 0) {
            s.bad(r, QStringLiteral("Invalid system flag %1").arg(f));
            return false;
        }
    }
    a.flags = *flags;
    return true;
}

// STORE set [(UNCHANGEDSINCE modseq)] FLAGS|+FLAGS|-FLAGS[.SILENT] (flags)   (RFC 9051
// 6.4.6, RFC 7162 3.1.3). Sends BAD (NO [READ-ONLY] for a read-only mailbox) and returns
// false when the command cannot go on.
bool parseStoreArgs(ImapSession& s, const ImapSession::Request& r, const MailboxView& v, StoreArgs& a) {
    const bool modifiers = r.args.size() == 4 && r.args.at(1).kind == Token::Kind::List;
    const qsizetype at = modifiers ? 2 : 1;
    if (r.args.size() != at + 2 || r.args.at(0).kind != Token::Kind::Atom || r.args.at(at).kind != Token::Kind::Atom) {
        s.bad(r, QStringLiteral("Usage: STORE set [(UNCHANGEDSINCE modseq)] FLAGS|+FLAGS|-FLAGS[.SILENT] (flags)"));
        return false;
    }
    if (modifiers && !parseStoreModifiers(s, r, v, a)) return false;
    if (v.readOnly()) {
        s.no(r, QStringLiteral("Mailbox is read-only"), "READ-ONLY");
        return false;
    }
    auto set = resolveSequenceSet(r.args.at(0).text, v, r.uid);
    if (!set) {
        s.bad(r, QStringLiteral("Bad sequence set"));
        return false;
    }
    a.set = *set;
    return parseStoreItem(s, r, at, a);
}

// What became of one message of the set.
enum class StoreResult { Stored, Modified, Gone };

// Applies the change to message i and sends its FETCH response unless .SILENT asks not to.
StoreResult storeOne(ImapSession& s, const ImapSession::Request& r, MailboxView& v, int i, const StoreArgs& a,
                     const QString& letters) {
    if (v.messages().at(i).expunged) return StoreResult::Gone;
    if (a.unchangedSince) {
        // Changed after the client's mod-sequence, as far as we know, or renamed by another
        // session since we looked (its change has a mod-sequence we have not seen yet).
        const auto file = v.currentFile(i);
        if (v.messages().at(i).modseq > *a.unchangedSince || (file && file->first != v.messages().at(i).fileName))
            return StoreResult::Modified;
    }
    // Applied to the file's flags as they are now (another session's change is kept).
    auto change = v.changeFlags(i, a.mode, letters);
    if (!change) return StoreResult::Gone;  // expunged meanwhile by another session
    const QByteArray uidItem =
        r.uid || Commands::condstore(s) ? " UID " + QByteArray::number(v.messages().at(i).uid) : QByteArray();
    // .SILENT: no FETCH, unless the result is not what the client asked for because another
    // session changed the flags too (RFC 9051 6.4.6: the server SHOULD then say so).
    if (!a.silent || change->merged)
        s.untagged(QByteArray::number(i + 1) + " FETCH (FLAGS " + Commands::flagList(v.imapFlags(i)) + uidItem +
                   Commands::modseqItem(s, i) + ')');
    else if (Commands::condstore(s) &&
             change->changed)  // the new mod-sequence is reported even when silent (RFC 7162 3.1.3)
        s.untagged(QByteArray::number(i + 1) + " FETCH (" + uidItem.mid(1) + Commands::modseqItem(s, i) + ')');
    return StoreResult::Stored;
}

}  // namespace

void Commands::store(ImapSession& s, const R& r) {
    MailboxView& v = *selected(s);
    StoreArgs a;
    if (!parseStoreArgs(s, r, v, a)) return;
    if (a.unchangedSince) s.enableCondstore();
    const QStringList keywordsBefore = v.keywords();
    auto letters = v.lettersFor(a.flags, a.mode >= 0);
    if (!letters) {
        s.no(r, letters.errorMessage(), "LIMIT");
        return;
    }
    // A keyword new to the mailbox: FLAGS and PERMANENTFLAGS before any FETCH shows it (RFC 9051 7.3.5).
    if (v.keywords() != keywordsBefore) flagsResponse(s);
    QList<quint32> modified;  // failed the UNCHANGEDSINCE test: UIDs or sequence numbers
    bool gone = false;        // some messages no longer exist (another session expunged them)
    for (int i : a.set) {
        const StoreResult result = storeOne(s, r, v, i, a, *letters);
        if (result == StoreResult::Gone) gone = true;
        if (result == StoreResult::Modified) modified << (r.uid ? v.messages().at(i).uid : quint32(i + 1));
    }
    if (!modified.isEmpty()) {
        s.ok(r, QStringLiteral("Conditional STORE failed for some messages"), "MODIFIED " + compactSet(modified));
        return;
    }
    if (gone && !r.uid) {
        // RFC 5530: the client should sync (NOOP) and try again; UID STORE just skips them.
        s.no(r, QStringLiteral("Some of the messages no longer exist"), "EXPUNGEISSUED");
        return;
    }
    s.ok(r, QStringLiteral("STORE completed"));
}

namespace {

// ---------------------------------------------------------------- COPY and MOVE
//
// All or nothing per command (RFC 9051 6.4.7: a failed COPY leaves the target as it
// was; RFC 6851 3.3 for MOVE). Steps:
//  1. every message gets a file in the target's tmp/: a hard link (Maildir files never
//     change, so a link is a perfect copy that keeps the internal date and costs no
//     data blocks; the data was made durable when the message was stored), or, where
//     links are impossible (another file system, EMLINK, no link support), a real copy,
//     fsynced, with the source's times;
//  2. each is renamed into the target's cur/ with its flags, then cur/ is fsynced;
//  3. the target is synced: the copies get their UIDs (COPYUID);
//  4. MOVE only: the sources are unlinked, and only now.
// A failure at any step removes every file this command made (tmp/ and cur/), nothing
// is expunged, and the answer is NO: [OVERQUOTA] for ENOSPC/EDQUOT, [LIMIT] for the
// other resource limits, [SERVERBUG] otherwise; the cause goes to the log.
// A source that another session expunged meanwhile is skipped (it exists nowhere to
// lose); one that another session renamed (new flags) is found again by its base name.

struct CopyPlan {
    int index = 0;       // source message
    QString sourceFile;  // its file name now (another session may have renamed it)
    bool sourceInNew = false;
    QString base;        // the copy's base name in the target
    QString tmp, final;  // the copy's paths
    bool inTmp = false, inCur = false;
};

struct CopyFailure {
    int error = 0;    // errno (0: not a system error)
    QString detail;   // for the log
    QByteArray code;  // response code when not derived from `error`
};

QByteArray responseCodeFor(int error) {
    switch (error) {
        case ENOSPC:
        case EDQUOT:
            return "OVERQUOTA";  // RFC 9051 7.1
        case EMLINK:
        case EFBIG:
        case EMFILE:
        case ENFILE:
        case ENAMETOOLONG:
            return "LIMIT";
        default:
            return "SERVERBUG";
    }
}

QByteArray encoded(const QString& path) {
    return QFile::encodeName(path);
}

CopyFailure failure(int error, const QString& what) {
    return {error, QStringLiteral("%1: %2").arg(what, errnoText(error))};
}

// A real copy of `src` at `dst` (created exclusively), fsynced, with the source's times
// (INTERNALDATE is the file's mtime). 0 or an errno; `dst` is removed on failure.
int copyFileContents(const QString& src, const QString& dst) {
    const int in = ::open(encoded(src).constData(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0) return errno;
    struct stat st {};
    if (::fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
        const int e = S_ISDIR(st.st_mode) ? EISDIR : (errno ? errno : EINVAL);
        ::close(in);
        return e;
    }
    const int out = ::open(encoded(dst).constData(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0) {
        const int e = errno;
        ::close(in);
        return e;
    }
    int error = 0;
    QByteArray buffer(64 * 1024, Qt::Uninitialized);
    for (;;) {
        const ssize_t n = retryOnEintr([&] { return ::read(in, buffer.data(), size_t(buffer.size())); });
        if (n < 0) error = errno;
        if (n <= 0) break;
        for (ssize_t done = 0; done < n && !error;) {
            const ssize_t w = retryOnEintr([&] { return ::write(out, buffer.constData() + done, size_t(n - done)); });
            if (w <= 0)
                error = w < 0 ? errno : EIO;
            else
                done += w;
        }
        if (error) break;
    }
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    if (!error && ::futimens(out, times) != 0) error = errno;
    if (!error && ::fsync(out) != 0) error = errno;
    if (::close(out) != 0 && !error) error = errno;
    ::close(in);
    if (error) ::unlink(encoded(dst).constData());
    return error;
}

// Removes what the plans made (rollback); best effort, the first failure already decided.
void removeCopies(const QList<CopyPlan>& plans, const QString& targetDir) {
    bool anyInCur = false;
    for (const CopyPlan& p : plans) {
        if (p.inCur) {
            ::unlink(encoded(p.final).constData());
            anyInCur = true;
        } else if (p.inTmp) {
            ::unlink(encoded(p.tmp).constData());
        }
    }
    if (anyInCur) (void)syncDirectory(targetDir + QStringLiteral("/cur"));
}

struct CopyOutcome {
    QList<std::pair<quint32, quint32>> uids;  // (source UID, new UID) for COPYUID
    QList<CopyPlan> copied;                   // what was copied (MOVE expunges these sources)
};

// A UID list as uid-set text in the same order: "a:b" only for runs going up by one.
QByteArray inOrder(const QList<quint32>& uids) {
    QByteArray out;
    for (qsizetype i = 0; i < uids.size();) {
        qsizetype j = i;
        while (j + 1 < uids.size() && uids.at(j + 1) == uids.at(j) + 1) ++j;
        if (!out.isEmpty()) out += ',';
        out += QByteArray::number(uids.at(i));
        if (j > i) out += ':' + QByteArray::number(uids.at(j));
        i = j + 1;
    }
    return out;
}

// "COPYUID <validity> <source set> <new set>" (RFC 4315 3): the n-th UID of the new set
// is the copy of the n-th of the source set. The new UIDs are not always in the order of
// the sources (the target numbers new messages by delivery time, and an APPEND can carry
// any date), so the new set is written in source order, not sorted.
QByteArray copyUid(quint32 validity, QList<std::pair<quint32, quint32>> pairs) {
    std::sort(pairs.begin(), pairs.end());
    QList<quint32> from, to;
    for (const auto& [a, b] : pairs) {
        from << a;
        to << b;
    }
    return "COPYUID " + QByteArray::number(validity) + ' ' + inOrder(from) + ' ' + inOrder(to);
}

// Steps 1-3 above. On failure nothing this call made is left in the target.
std::variant<CopyOutcome, CopyFailure> copyMessages(MailboxView& from, const QList<int>& indexes, MailboxView& target) {
    QList<CopyPlan> plans;
    plans.reserve(indexes.size());
    auto fail = [&](const CopyFailure& f) -> std::variant<CopyOutcome, CopyFailure> {
        removeCopies(plans, target.dir());
        return f;
    };
    // 1. tmp/
    for (int i : indexes) {
        const Message& m = from.messages().at(i);
        auto letters = target.lettersFor(from.imapFlags(i), true);
        if (!letters)  // 26 keywords already (a Maildir limit), or the keyword file cannot be written
            return fail(CopyFailure{letters.error().code, letters.errorMessage(),
                                    letters.error().code ? QByteArray() : QByteArray("LIMIT")});
        const auto file = from.currentFile(i);
        if (!file) continue;  // expunged by another session meanwhile
        CopyPlan p;
        p.index = i;
        p.sourceFile = file->first;
        p.sourceInNew = file->second;
        p.base = store::uniqueName(m.size);
        p.tmp = target.dir() + QStringLiteral("/tmp/") + p.base;
        p.final = target.dir() + QStringLiteral("/cur/") + store::withFlags(p.base, *letters);
        const QString source =
            from.dir() + (p.sourceInNew ? QStringLiteral("/new/") : QStringLiteral("/cur/")) + p.sourceFile;
        if (::link(encoded(source).constData(), encoded(p.tmp).constData()) != 0) {
            const int e = errno;
            // Where a link is impossible, a real copy; any other error would hit the copy too.
            if (e != EXDEV && e != EPERM && e != EMLINK && e != ENOTSUP && e != EOPNOTSUPP)
                return fail(failure(e, p.tmp));
            if (const int c = copyFileContents(source, p.tmp)) return fail(failure(c, p.tmp));
        }
        p.inTmp = true;
        plans << p;
    }
    // 2. cur/, durable
    for (CopyPlan& p : plans) {
        if (::rename(encoded(p.tmp).constData(), encoded(p.final).constData()) != 0)
            return fail(failure(errno, p.final));
        p.inTmp = false;
        p.inCur = true;
    }
    if (!plans.isEmpty()) {
        if (Status st = syncDirectory(target.dir() + QStringLiteral("/cur")); !st)
            return fail(CopyFailure{st.error().code ? st.error().code : EIO, st.errorMessage()});
    }
    // 3. UIDs
    QStringList stored;
    for (const CopyPlan& p : std::as_const(plans)) stored << QFileInfo(p.final).fileName();
    auto numbered = target.numberStored(stored);
    if (!numbered)
        return fail(CopyFailure{numbered.error().code ? numbered.error().code : EIO, numbered.errorMessage()});
    const QHash<QString, quint32>& uidOf = *numbered;
    CopyOutcome out;
    for (const CopyPlan& p : plans) {
        auto it = uidOf.constFind(p.base);
        if (it == uidOf.cend()) continue;  // expunged from the target by another session already
        out.uids.append({from.messages().at(p.index).uid, *it});
    }
    out.copied = plans;
    return out;
}

void copyOrMove(ImapSession& s, const ImapSession::Request& r, bool move) {
    MailboxView& v = *Commands::selected(s);
    if (r.args.size() != 2 || r.args.at(0).kind != Token::Kind::Atom || !r.args.at(1).isString()) {
        s.bad(r, QStringLiteral("Usage: %1 set mailbox").arg(QString::fromLatin1(r.name)));
        return;
    }
    if (move && v.readOnly()) {
        s.no(r, QStringLiteral("Mailbox is read-only"), "READ-ONLY");
        return;
    }
    auto set = resolveSequenceSet(r.args.at(0).text, v, r.uid);
    if (!set) {
        s.bad(r, QStringLiteral("Bad sequence set"));
        return;
    }
    auto name = parseMailboxName(r.args.at(1).text, Commands::utf8(s));
    if (!name) {
        s.no(r, name.errorMessage(), "CANNOT");
        return;
    }
    if (!Commands::mailboxes(s).exists(*name)) {
        s.no(r, QStringLiteral("No such mailbox"), "TRYCREATE");
        return;
    }
    if (set->isEmpty()) {
        s.ok(r, QStringLiteral("%1 completed (nothing matched)").arg(QString::fromLatin1(r.name)));
        return;
    }
    auto target = MailboxView::openTarget(Commands::mailboxes(s).root(), *name);
    if (!target) {
        s.no(r, QStringLiteral("Cannot open target mailbox"), "SERVERBUG");
        return;
    }
    const QString root = Commands::mailboxes(s).root();
    const qint64 quota = Commands::backend(s).quotaOf(Commands::user(s));
    if (quota > 0 && !move) {
        qint64 adding = 0;
        for (int i : *set) adding += v.messages().at(i).size;
        auto used = store::MaildirQuota::usage(root, quota);
        if (used && adding > quota - used->first) {
            s.no(r, QStringLiteral("Quota exceeded"), "OVERQUOTA");
            return;
        }
    }
    auto result = copyMessages(v, *set, *target);
    if (const CopyFailure* f = std::get_if<CopyFailure>(&result)) {
        log::write(log::Level::Error, Commands::io(s).info().sessionId,
                   move ? u"imap.move_failed" : u"imap.copy_failed",
                   log::Fields().add("user", Commands::user(s)).add("mailbox", name->name).add("error", f->detail));
        s.no(r,
             QStringLiteral("Cannot store the copies; no message was %1")
                 .arg(move ? QStringLiteral("moved") : QStringLiteral("copied")),
             f->code.isEmpty() ? responseCodeFor(f->error) : f->code);
        return;
    }
    const CopyOutcome& done = std::get<CopyOutcome>(result);
    // The user's verdict for the spam filter: into \Junk is spam, out of it (but to \Trash)
    // is ham. Only queued here (ImapBackend::learn); the reply does not wait for Rspamd.
    const bool fromJunk = specialUseOf(v.name().name) == u"\\Junk";
    const bool toJunk = specialUseOf(name->name) == u"\\Junk";
    if (fromJunk != toJunk && (toJunk || specialUseOf(name->name) != u"\\Trash"))
        for (const CopyPlan& p : done.copied) Commands::backend(s).learn(Commands::user(s), toJunk, p.final);
    // Maildir++ counts every file (hard links too); MOVE's expunges below take theirs off again.
    for (const CopyPlan& p : done.copied) store::MaildirQuota::add(root, v.messages().at(p.index).size, 1);
    const QByteArray copyuid = done.uids.isEmpty() ? QByteArray() : copyUid(target->uidValidity(), done.uids);
    if (!move) {
        s.ok(r, QStringLiteral("COPY completed"), copyuid);  // a copy into this mailbox: EXISTS comes right before
        return;
    }
    if (!copyuid.isEmpty()) s.untagged("OK [" + copyuid + "] Moved");
    // Every copy is durable: now the sources may go (step 4); the EXPUNGEs come before the OK.
    for (const CopyPlan& p : done.copied)
        if (!v.expunge(p.index).ok()) { /* already gone: another session expunged it */
        }
    s.ok(r, QStringLiteral("MOVE completed"));
}

}  // namespace

void Commands::copy(ImapSession& s, const R& r) {
    copyOrMove(s, r, false);
}
void Commands::move(ImapSession& s, const R& r) {
    copyOrMove(s, r, true);
}

}  // namespace postern::imap
