// commands/selected.cpp — CHECK CLOSE UNSELECT EXPUNGE STORE COPY MOVE, and
// the reporting of mailbox changes (EXPUNGE or, with QRESYNC, VANISHED;
// EXISTS; FETCH FLAGS with MODSEQ once CONDSTORE is on).
// Standards: RFC 9051 6.4, 4315 (UIDPLUS: UID EXPUNGE, COPYUID), 6851 (MOVE),
// 3691 (UNSELECT), 7162 (STORE UNCHANGEDSINCE, [MODIFIED]). Read-only (EXAMINE) mailboxes refuse every change.
#include "commands.h"

#include "common/store/maildir_delivery.h"
#include "common/store/maildir_names.h"

#include "core/atomic_file.h"

#include <QFile>
#include <QFileInfo>

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace postern::imap {

void Commands::sendChanges(ImapSession& s, const Changes& c, bool allowExpunge) {
    Q_UNUSED(allowExpunge);  // refresh() is only called where EXPUNGE may be sent (RFC 9051 7.5.1)
    if (qresync(s)) {
        if (!c.expungedUids.isEmpty()) s.untagged("VANISHED " + compactSet(c.expungedUids));  // RFC 7162 3.2.10
    } else {
        for (int seq : c.expunged) s.untagged(QByteArray::number(seq) + " EXPUNGE");
    }
    if (c.exists >= 0) s.untagged(QByteArray::number(c.exists) + " EXISTS");
    MailboxView& v = *selected(s);
    for (int seq : c.flagChanged)
        s.untagged(QByteArray::number(seq) + " FETCH (FLAGS " + flagList(v.imapFlags(seq - 1)) + " UID " +
                   QByteArray::number(v.messages().at(seq - 1).uid) + modseqItem(s, seq - 1) + ')');
}

void Commands::check(ImapSession& s, const R& r) {
    s.reportChanges(true);
    s.ok(r, QStringLiteral("CHECK completed"));
}

namespace {
// Unlinks messages flagged \Deleted (and in `only` when given); returns their UIDs.
QList<quint32> expungeDeleted(MailboxView& v, const std::optional<QList<int>>& only) {
    QList<quint32> gone;
    const auto& msgs = v.messages();
    for (int i = 0; i < msgs.size(); ++i) {
        if (!msgs.at(i).flags.contains(QLatin1Char('T'))) continue;
        if (only && !only->contains(i)) continue;
        if (v.expunge(i).ok()) gone << msgs.at(i).uid;
    }
    return gone;
}
}  // namespace

void Commands::close(ImapSession& s, const R& r) {
    if (!selected(s)->readOnly()) expungeDeleted(*selected(s), std::nullopt);  // silently (RFC 9051 6.4.1)
    s.stopIdleWatch();
    selected(s).reset();
    state(s) = ImapSession::State::Authenticated;
    s.ok(r, QStringLiteral("CLOSE completed"));
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
    s.reportChanges(true);
    s.ok(r, QStringLiteral("EXPUNGE completed"));
}

void Commands::store(ImapSession& s, const R& r) {
    // STORE set [(UNCHANGEDSINCE modseq)] FLAGS|+FLAGS|-FLAGS[.SILENT] (flags)   (RFC 9051 6.4.6, RFC 7162 3.1.3)
    MailboxView& v = *selected(s);
    const bool modifiers = r.args.size() == 4 && r.args.at(1).kind == Token::Kind::List;
    const qsizetype at = modifiers ? 2 : 1;
    if (r.args.size() != at + 2 || r.args.at(0).kind != Token::Kind::Atom || r.args.at(at).kind != Token::Kind::Atom) {
        s.bad(r, QStringLiteral("Usage: STORE set [(UNCHANGEDSINCE modseq)] FLAGS|+FLAGS|-FLAGS[.SILENT] (flags)"));
        return;
    }
    std::optional<quint64> unchangedSince;
    if (modifiers) {
        const QList<Token>& mods = r.args.at(1).items;
        if (mods.size() != 2 || !mods.at(0).isAtom("UNCHANGEDSINCE") || !(unchangedSince = parseModseq(mods.at(1), true))) {
            s.bad(r, QStringLiteral("The only STORE modifier is (UNCHANGEDSINCE mod-sequence)"));
            return;
        }
        if (v.highestModseq() == 0) {
            s.bad(r, QStringLiteral("This mailbox has no mod-sequences (NOMODSEQ)"));
            return;
        }
        condstore(s) = true;
    }
    if (v.readOnly()) {
        s.no(r, QStringLiteral("Mailbox is read-only"), "READ-ONLY");
        return;
    }
    auto set = resolveSequenceSet(r.args.at(0).text, v, r.uid);
    if (!set) {
        s.bad(r, QStringLiteral("Bad sequence set"));
        return;
    }
    QByteArray item = r.args.at(at).text.toUpper();
    const bool silent = item.endsWith(".SILENT");
    if (silent) item.chop(7);
    int mode = 0;  // 0 replace, 1 add, -1 remove
    if (item == "+FLAGS") mode = 1;
    else if (item == "-FLAGS") mode = -1;
    else if (item != "FLAGS") {
        s.bad(r, QStringLiteral("Unknown STORE item"));
        return;
    }
    auto flags = parseFlagList(r.args.at(at + 1));
    if (!flags) {
        s.bad(r, QStringLiteral("Bad flag list"));
        return;
    }
    for (const QString& f : *flags) {
        if (f.startsWith(QLatin1Char('\\')) && flagLetter(f).isEmpty() && f.compare(QLatin1String("\\Recent"), Qt::CaseInsensitive) != 0) {
            s.bad(r, QStringLiteral("Invalid system flag %1").arg(f));
            return;
        }
    }
    auto letters = v.lettersFor(*flags, mode >= 0);
    if (!letters) {
        s.no(r, letters.errorMessage(), "LIMIT");
        return;
    }
    QList<quint32> modified;  // failed the UNCHANGEDSINCE test: UIDs or sequence numbers
    for (int i : *set) {
        if (unchangedSince && v.messages().at(i).modseq > *unchangedSince) {
            modified << (r.uid ? v.messages().at(i).uid : quint32(i + 1));
            continue;
        }
        const QString old = v.messages().at(i).flags;
        QString next;
        if (mode == 0) next = *letters;
        else if (mode == 1) next = store::sortFlags(old + *letters);
        else {
            next = old;
            for (QChar c : *letters) next.remove(c);
        }
        if (next != old && !v.setFlags(i, next).ok()) continue;  // expunged meanwhile by another session
        const QByteArray uidItem = r.uid || condstore(s) ? " UID " + QByteArray::number(v.messages().at(i).uid) : QByteArray();
        if (!silent)
            s.untagged(QByteArray::number(i + 1) + " FETCH (FLAGS " + flagList(v.imapFlags(i)) + uidItem + modseqItem(s, i) + ')');
        else if (condstore(s) && next != old)  // the new mod-sequence is reported even when silent (RFC 7162 3.1.3)
            s.untagged(QByteArray::number(i + 1) + " FETCH (" + uidItem.mid(1) + modseqItem(s, i) + ')');
    }
    if (!modified.isEmpty()) {
        s.ok(r, QStringLiteral("Conditional STORE failed for some messages"), "MODIFIED " + compactSet(modified));
        return;
    }
    s.ok(r, QStringLiteral("STORE completed"));
}

namespace {

// Copies the messages at `indexes` into `target`; returns source and destination UIDs (UIDPLUS).
Result<std::pair<QList<quint32>, QList<quint32>>> copyMessages(MailboxView& from, const QList<int>& indexes, MailboxView& target) {
    QList<std::pair<quint32, QString>> made;  // source uid, new base name
    for (int i : indexes) {
        const Message& m = from.messages().at(i);
        QStringList names;
        for (const QString& f : from.imapFlags(i)) names << f;
        auto letters = target.lettersFor(names, true);
        if (!letters) return letters.error();
        const QString base = store::uniqueName(m.size);
        const QString tmp = target.dir() + QStringLiteral("/tmp/") + base;
        const QString dst = target.dir() + QStringLiteral("/cur/") + store::withFlags(base, *letters);
        const QByteArray src = QFile::encodeName(from.path(i));
        // Maildir messages are immutable: a hard link is a perfect copy (same internal date).
        if (::link(src.constData(), QFile::encodeName(tmp).constData()) != 0) {
            if (!QFile::copy(from.path(i), tmp)) continue;  // gone meanwhile, or another file system
            const int fd = ::open(QFile::encodeName(tmp).constData(), O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                ::fsync(fd);
                ::close(fd);
            }
        }
        if (::rename(QFile::encodeName(tmp).constData(), QFile::encodeName(dst).constData()) != 0) {
            ::unlink(QFile::encodeName(tmp).constData());
            return Result<std::pair<QList<quint32>, QList<quint32>>>::fail(QStringLiteral("cannot store the copy"));
        }
        made.append({m.uid, base});
    }
    if (auto st = syncDirectory(target.dir() + QStringLiteral("/cur")); !st) return st.error();
    auto changes = target.refresh();
    if (!changes) return changes.error();
    QList<quint32> srcUids, dstUids;
    for (const auto& [uid, base] : made) {
        for (const Message& t : target.messages())
            if (t.base == base) {
                srcUids << uid;
                dstUids << t.uid;
            }
    }
    return std::make_pair(srcUids, dstUids);
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
    const bool sameMailbox = name->name == v.name().name;
    auto target = MailboxView::open(Commands::mailboxes(s).root(), *name, false);
    if (!target) {
        s.no(r, QStringLiteral("Cannot open target mailbox"), "SERVERBUG");
        return;
    }
    const qint64 quota = Commands::backend(s).quotaOf(Commands::user(s));
    if (quota > 0 && !move) {
        qint64 adding = 0;
        for (int i : *set) adding += v.messages().at(i).size;
        auto used = store::MaildirQuota::usage(Commands::mailboxes(s).root(), quota);
        if (used && used->first + adding > quota) {
            s.no(r, QStringLiteral("Quota exceeded"), "OVERQUOTA");
            return;
        }
    }
    auto result = copyMessages(v, *set, *target);
    if (!result) {
        s.no(r, result.errorMessage(), "SERVERBUG");
        return;
    }
    if (!move) {
        // Hard links share their blocks, but Maildir++ counts every file: keep the quota honest.
        for (int i : *set) store::MaildirQuota::add(Commands::mailboxes(s).root(), v.messages().at(i).size, 1);
    }
    const QByteArray copyuid = "COPYUID " + QByteArray::number(target->uidValidity()) + ' ' + compactSet(result->first) + ' ' +
                               compactSet(result->second);
    if (!move) {
        if (sameMailbox) s.reportChanges(true);
        s.ok(r, QStringLiteral("COPY completed"), copyuid);
        return;
    }
    s.untagged("OK [" + copyuid + "] Moved");
    for (int i : *set)
        if (!v.expunge(i).ok()) { /* already gone: another session expunged it */ }
    s.reportChanges(true);
    s.ok(r, QStringLiteral("MOVE completed"));
}

}  // namespace

void Commands::copy(ImapSession& s, const R& r) { copyOrMove(s, r, false); }
void Commands::move(ImapSession& s, const R& r) { copyOrMove(s, r, true); }

}  // namespace postern::imap
