// commands/mailboxes.cpp — SELECT EXAMINE CREATE DELETE RENAME SUBSCRIBE
// UNSUBSCRIBE LIST LSUB STATUS APPEND GETQUOTAROOT GETQUOTA.
// Standards: RFC 9051 6.3, 5258 (LIST-EXTENDED), 5819 (LIST-STATUS), 6154
// (SPECIAL-USE), 4315 (UIDPLUS), 7889 (APPENDLIMIT), 9208 (QUOTA), 8438
// (STATUS=SIZE). Mailbox names are checked by parseMailboxName(): no name
// reaches the file system without validation.
// SELECT/EXAMINE answer RECENT for IMAP4rev1 sessions (SELECT takes the new
// messages, EXAMINE does not: RFC 3501 6.3.1-2); STATUS RECENT counts what no
// session has taken. LIST-EXTENDED: selection options SUBSCRIBED, SPECIAL-USE,
// REMOTE (no remote mailboxes) and RECURSIVEMATCH (BAD alone, RFC 5258 3.1;
// CHILDINFO for a name shown because of a descendant the patterns do not
// show, 3.5); subscribed names that no longer exist are \NonExistent. LSUB shows
// a parent of a subscribed name it does not show as \Noselect (RFC 3501
// 6.3.9). APPEND stores binary parts of a literal8 base64-encoded (RFC 3516 4.4).
// LIST/LSUB patterns are matched by MailboxPattern (imap_list_pattern.h): no
// regular expression, no backtracking, the same matcher for LSUB and the
// LIST-EXTENDED selection options. Limits: kMaxListPatterns patterns per
// command (RFC 5258 allows a list of them; more get NO [LIMIT]); the work of a
// LIST is linear in the number of mailboxes (children and subscriptions are
// looked up in sets, not searched per name).
#include "commands.h"

#include "../imap_binary.h"
#include "../imap_list_pattern.h"

#include "common/async.h"
#include "common/store/maildir_delivery.h"
#include "common/store/maildir_names.h"

#include "core/log.h"

#include <QFileInfo>
#include <QSet>

namespace postern::imap {

namespace {

std::optional<MailboxName> mailboxArg(ImapSession& s, const ImapSession::Request& r, const Token& t) {
    if (!t.isString()) {
        s.bad(r, QStringLiteral("Mailbox name expected"));
        return std::nullopt;
    }
    auto m = parseMailboxName(t.text, Commands::utf8(s));
    if (!m) {
        s.no(r, m.errorMessage(), "CANNOT");
        return std::nullopt;
    }
    return *m;
}

QByteArray quotedName(ImapSession& s, const QString& name) {
    return quoteString(encodeMailboxName(name, Commands::utf8(s)));
}

// Patterns in one LIST-EXTENDED command (RFC 5258 3: a list of patterns); each costs a
// pass over every mailbox name.
constexpr qsizetype kMaxListPatterns = 64;

struct FolderStatus {
    qint64 messages = 0, unseen = 0, deleted = 0, size = 0, recent = 0;
    quint32 uidNext = 1, uidValidity = 0;
    quint64 highestModseq = 0;
};

std::optional<FolderStatus> folderStatus(ImapSession& s, const MailboxName& m, bool wantModseq, bool wantRecent) {
    auto& sel = Commands::selected(s);
    if (sel && sel->name().name == m.name) {
        // The selected mailbox as this session knows it (RFC 9051 6.3.11 allows STATUS on it).
        FolderStatus st;
        st.uidNext = sel->uidNext();
        st.uidValidity = sel->uidValidity();
        st.highestModseq = sel->highestModseq();
        st.recent = sel->recentCount();
        for (const Message& msg : sel->messages()) {
            if (msg.expunged) continue;
            ++st.messages;
            st.size += msg.vsize;
            if (!msg.flags.contains(QLatin1Char('S'))) ++st.unseen;
            if (msg.flags.contains(QLatin1Char('T'))) ++st.deleted;
        }
        return st;
    }
    auto folder = store::MaildirFolder::open(Commands::mailboxes(s).root(), m.parts, false);
    if (!folder) return std::nullopt;
    auto list = folder->sync(false);
    if (!list) return std::nullopt;
    FolderStatus st;
    st.uidNext = folder->nextUid();
    st.uidValidity = folder->uidValidity();
    for (const store::MessageEntry& e : *list) {
        ++st.messages;
        st.size += e.vsize;
        if (!e.flags.contains(QLatin1Char('S'))) ++st.unseen;
        if (e.flags.contains(QLatin1Char('T'))) ++st.deleted;
    }
    if (wantModseq || wantRecent) {
        if (std::shared_ptr<MailboxIndex> idx = MailboxIndex::acquire(folder->dir(), folder->uidValidity())) {
            if (wantModseq) {
                QList<Message> msgs;
                msgs.reserve(list->size());
                for (const store::MessageEntry& e : *list)
                    msgs << Message::fromEntry(e);  // sizes and dates too, for the next SELECT
                if (auto hms = idx->sync(msgs)) st.highestModseq = *hms;
            }
            if (wantRecent) {
                // Messages no session has had as \Recent yet; STATUS takes none (RFC 3501 6.3.10).
                const quint32 first = idx->firstRecent();
                for (const store::MessageEntry& e : *list) st.recent += first && e.uid >= first ? 1 : 0;
            }
        }
    }
    return st;
}

std::optional<QByteArray> statusItems(ImapSession& s, const MailboxName& m, const Token& items) {
    bool wantModseq = false, wantRecent = false;
    for (const Token& it : items.items) {
        wantModseq = wantModseq || it.isAtom("HIGHESTMODSEQ");
        wantRecent = wantRecent || it.isAtom("RECENT");
    }
    auto st = folderStatus(s, m, wantModseq, wantRecent);
    if (!st) return std::nullopt;
    QByteArrayList parts;
    for (const Token& it : items.items) {
        const QByteArray k = it.text.toUpper();
        if (k == "MESSAGES")
            parts << "MESSAGES " + QByteArray::number(st->messages);
        else if (k == "UIDNEXT")
            parts << "UIDNEXT " + QByteArray::number(st->uidNext);
        else if (k == "UIDVALIDITY")
            parts << "UIDVALIDITY " + QByteArray::number(st->uidValidity);
        else if (k == "UNSEEN")
            parts << "UNSEEN " + QByteArray::number(st->unseen);
        else if (k == "RECENT")
            parts << "RECENT " + QByteArray::number(st->recent);
        else if (k == "SIZE")
            parts << "SIZE " + QByteArray::number(st->size);
        else if (k == "DELETED")
            parts << "DELETED " + QByteArray::number(st->deleted);
        else if (k == "HIGHESTMODSEQ") {
            parts << "HIGHESTMODSEQ " + QByteArray::number(st->highestModseq);  // 0: NOMODSEQ (RFC 7162 3.1.6)
            s.enableCondstore();
        } else
            return QByteArray();  // unknown item: caller says BAD
    }
    return "STATUS " + quotedName(s, m.name) + " (" + parts.join(' ') + ')';
}

// SELECT/EXAMINE's parameters (RFC 7162): CONDSTORE, QRESYNC (uidvalidity modseq [known-uids]).
struct SelectParams {
    struct Qresync {
        quint32 uidValidity = 0;
        quint64 modseq = 0;
        QByteArray knownUids;
    };
    std::optional<Qresync> qresync;
    bool enableCondstore = false;
};

// SELECT/EXAMINE mailbox [(CONDSTORE | QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]]))]:
// the parameters in args[1]. Sends BAD and returns false when the arguments are wrong.
bool parseSelectParams(ImapSession& s, const ImapSession::Request& r, SelectParams& params) {
    if (r.args.isEmpty() || r.args.size() > 2 || (r.args.size() == 2 && r.args.at(1).kind != Token::Kind::List)) {
        s.bad(r, QStringLiteral("Usage: %1 mailbox [(CONDSTORE) | (QRESYNC (...))]").arg(QString::fromLatin1(r.name)));
        return false;
    }
    if (r.args.size() < 2) return true;
    const QList<Token>& ps = r.args.at(1).items;
    for (qsizetype i = 0; i < ps.size(); ++i) {
        if (ps.at(i).isAtom("CONDSTORE")) {
            params.enableCondstore = true;
            continue;
        }
        if (!ps.at(i).isAtom("QRESYNC") || i + 1 >= ps.size() || ps.at(i + 1).kind != Token::Kind::List) {
            s.bad(r, QStringLiteral("Unknown %1 parameter").arg(QString::fromLatin1(r.name)));
            return false;
        }
        if (!Commands::qresync(s)) {
            s.bad(r, QStringLiteral("QRESYNC must be enabled first (ENABLE QRESYNC)"));
            return false;
        }
        const QList<Token>& q = ps.at(++i).items;
        // The sequence-match data (a fourth element) is optional help for the server; we answer without it.
        auto validity = q.size() >= 2 ? parseModseq(q.at(0), false) : std::nullopt;
        auto modseq = q.size() >= 2 ? parseModseq(q.at(1), false) : std::nullopt;
        if (q.size() < 2 || q.size() > 4 || !validity || *validity > 0xffffffffULL || !modseq ||
            (q.size() >= 3 && (q.at(2).kind != Token::Kind::Atom || !parseUidRanges(q.at(2).text, 0xffffffffU))) ||
            (q.size() == 4 && q.at(3).kind != Token::Kind::List)) {
            s.bad(r, QStringLiteral("Usage: QRESYNC (uidvalidity modseq [known-uids [(sequences uids)]])"));
            return false;
        }
        params.qresync =
            SelectParams::Qresync{quint32(*validity), *modseq, q.size() >= 3 ? q.at(2).text : QByteArray()};
    }
    return true;
}

// The mailbox to select. Selecting the same mailbox again (clients do, to resynchronise)
// reuses what `previous` listed: a refresh instead of a new listing; the answer is
// complete either way.
Result<MailboxView> openForSelect(ImapSession& s, std::optional<MailboxView>& previous, const MailboxName& m,
                                  bool readOnly) {
    // \Recent for IMAP4rev1 sessions: SELECT takes the new messages, EXAMINE only shows
    // them (RFC 3501 2.3.2, 6.3.2).
    SelectOptions options;
    options.recent = Commands::rev2(s) ? RecentMode::None : (readOnly ? RecentMode::Peek : RecentMode::Claim);
    bool again = previous && previous->name().name == m.name && previous->readOnly() == readOnly &&
                 Commands::mailboxes(s).exists(m);
    if (again) {
        previous->reselected();  // what was recent was claimed by the previous selection
        previous->setRecentMode(options.recent);
        again = previous->refresh(true).ok();
    }
    return again ? Result<MailboxView>(std::move(*previous))
                 : MailboxView::open(Commands::mailboxes(s).root(), m, readOnly, options);
}

// The untagged responses that describe the newly selected mailbox (RFC 9051 6.3.2, RFC
// 3501 6.3.1 for IMAP4rev1's RECENT and UNSEEN, RFC 7162 3.1.2 for HIGHESTMODSEQ).
void sendSelectedState(ImapSession& s, const MailboxView& v, const MailboxName& m) {
    Commands::flagsResponse(s);
    s.untagged(QByteArray::number(v.messages().size()) + " EXISTS");
    if (!Commands::rev2(s)) {
        s.untagged(QByteArray::number(v.recentCount()) + " RECENT");
        for (int i = 0; i < v.messages().size(); ++i) {
            if (!v.messages().at(i).flags.contains(QLatin1Char('S'))) {
                s.untagged("OK [UNSEEN " + QByteArray::number(i + 1) + "] First unseen");
                break;
            }
        }
    }
    s.untagged("OK [UIDVALIDITY " + QByteArray::number(v.uidValidity()) + "] UIDs valid");
    s.untagged("OK [UIDNEXT " + QByteArray::number(v.uidNext()) + "] Predicted next UID");
    if (v.highestModseq())
        s.untagged("OK [HIGHESTMODSEQ " + QByteArray::number(v.highestModseq()) + "] Highest");
    else
        s.untagged("OK [NOMODSEQ] No mod-sequences in this mailbox");
    if (Commands::rev2(s)) s.untagged("LIST () \"/\" " + quotedName(s, m.name));
}

// RFC 7162 3.2.5: what vanished and what changed since the client's mod-sequence, when
// its UIDVALIDITY is still the mailbox's.
void sendQresyncChanges(ImapSession& s, const MailboxView& v, const SelectParams::Qresync& qr) {
    if (qr.uidValidity != v.uidValidity() || !v.highestModseq()) return;
    const quint32 last = v.uidNext() > 1 ? v.uidNext() - 1 : 1;
    auto known = qr.knownUids.isEmpty() ? std::optional(QList<std::pair<quint32, quint32>>{{1, last}})
                                        : parseUidRanges(qr.knownUids, last);
    const UidRanges reported = vanishedSince(v, qr.modseq, *known);
    if (!reported.isEmpty()) s.untagged("VANISHED (EARLIER) " + rangesText(reported));
    for (int i = 0; i < v.messages().size(); ++i) {
        const Message& msg = v.messages().at(i);
        if (msg.modseq <= qr.modseq || !inRanges(*known, msg.uid)) continue;
        s.untagged(QByteArray::number(i + 1) + " FETCH (UID " + QByteArray::number(msg.uid) + " FLAGS " +
                   v.flagListText(i) + " MODSEQ (" + QByteArray::number(msg.modseq) + "))");
    }
}

}  // namespace

void Commands::select(ImapSession& s, const R& r) {
    SelectParams params;
    if (!parseSelectParams(s, r, params)) return;
    // Selecting (even unsuccessfully) leaves the previous mailbox (RFC 9051 6.3.2).
    std::optional<MailboxView> previous;
    if (selected(s)) {
        s.stopIdleWatch();
        previous = std::move(selected(s));
        selected(s).reset();
        state(s) = ImapSession::State::Authenticated;
        s.untagged("OK [CLOSED] Previous mailbox closed");
    }
    auto m = mailboxArg(s, r, r.args.at(0));
    if (!m) return;
    const bool readOnly = r.name == "EXAMINE";
    auto view = openForSelect(s, previous, *m, readOnly);
    if (!view) {
        s.no(r, QStringLiteral("No such mailbox"), "NONEXISTENT");
        return;
    }
    if (params.enableCondstore) condstore(s) = true;  // the answer below carries HIGHESTMODSEQ
    selected(s) = std::move(*view);
    state(s) = ImapSession::State::Selected;
    const MailboxView& v = *selected(s);
    sendSelectedState(s, v, *m);
    if (params.qresync) sendQresyncChanges(s, v, *params.qresync);
    s.ok(r, QStringLiteral("%1 completed").arg(QString::fromLatin1(r.name)), readOnly ? "READ-ONLY" : "READ-WRITE");
}

void Commands::create(ImapSession& s, const R& r) {
    if (r.args.size() != 1) {
        s.bad(r, QStringLiteral("Usage: CREATE mailbox"));
        return;
    }
    auto m = mailboxArg(s, r, r.args.at(0));
    if (!m) return;
    if (m->isInbox() || mailboxes(s).exists(*m)) {
        s.no(r, QStringLiteral("Mailbox already exists"), "ALREADYEXISTS");
        return;
    }
    if (auto st = mailboxes(s).create(*m); !st) {
        s.no(r, QStringLiteral("Cannot create mailbox: %1").arg(st.errorMessage()), "CANNOT");
        return;
    }
    s.ok(r, QStringLiteral("CREATE completed"));
}

void Commands::delete_(ImapSession& s, const R& r) {
    if (r.args.size() != 1) {
        s.bad(r, QStringLiteral("Usage: DELETE mailbox"));
        return;
    }
    auto m = mailboxArg(s, r, r.args.at(0));
    if (!m) return;
    if (m->isInbox()) {
        s.no(r, QStringLiteral("INBOX cannot be deleted"), "CANNOT");
        return;
    }
    if (!mailboxes(s).exists(*m)) {
        s.no(r, QStringLiteral("No such mailbox"), "NONEXISTENT");
        return;
    }
    if (mailboxes(s).hasChildren(m->name, mailboxes(s).list())) {
        s.no(r, QStringLiteral("Mailbox has children; delete them first"), "INUSE");
        return;
    }
    if (selected(s) && selected(s)->name().name == m->name) {
        s.stopIdleWatch();
        selected(s).reset();
        state(s) = ImapSession::State::Authenticated;
    }
    if (auto st = mailboxes(s).remove(*m); !st) {
        s.no(r, QStringLiteral("Cannot delete mailbox: %1").arg(st.errorMessage()), "CANNOT");
        return;
    }
    s.ok(r, QStringLiteral("DELETE completed"));
}

void Commands::rename(ImapSession& s, const R& r) {
    if (r.args.size() != 2) {
        s.bad(r, QStringLiteral("Usage: RENAME from to"));
        return;
    }
    auto from = mailboxArg(s, r, r.args.at(0));
    if (!from) return;
    auto to = mailboxArg(s, r, r.args.at(1));
    if (!to) return;
    if (!mailboxes(s).exists(*from)) {
        s.no(r, QStringLiteral("No such mailbox"), "NONEXISTENT");
        return;
    }
    if (to->isInbox() || mailboxes(s).exists(*to)) {
        s.no(r, QStringLiteral("Target mailbox already exists"), "ALREADYEXISTS");
        return;
    }
    if (to->name.startsWith(from->name + kSeparator)) {
        s.no(r, QStringLiteral("Cannot move a mailbox under itself"), "CANNOT");
        return;
    }
    if (auto st = mailboxes(s).rename(*from, *to); !st) {
        s.no(r, QStringLiteral("Cannot rename: %1").arg(st.errorMessage()), "CANNOT");
        return;
    }
    s.ok(r, QStringLiteral("RENAME completed"));
}

void Commands::subscribe(ImapSession& s, const R& r) {
    if (r.args.size() != 1) {
        s.bad(r, QStringLiteral("Usage: %1 mailbox").arg(QString::fromLatin1(r.name)));
        return;
    }
    auto m = mailboxArg(s, r, r.args.at(0));
    if (!m) return;
    const bool on = r.name == "SUBSCRIBE";
    if (on && !mailboxes(s).exists(*m)) {
        s.no(r, QStringLiteral("No such mailbox"), "NONEXISTENT");
        return;
    }
    if (auto st = mailboxes(s).subscribe(m->name, on); !st) {
        s.no(r, st.errorMessage(), "SERVERBUG");
        return;
    }
    s.ok(r, QStringLiteral("%1 completed").arg(QString::fromLatin1(r.name)));
}

namespace {

// LIST/LSUB's arguments: RFC 5258 selection and return options, RFC 5819's STATUS.
struct ListArgs {
    bool lsub = false;
    bool selectSubscribed = false, selectSpecialUse = false, recursive = false;
    bool returnSubscribed = false, returnChildren = false, returnSpecialUse = true;
    std::optional<Token> statusReq;
    QString ref;
    QList<QByteArray> patterns;
};

// LIST's selection options (RFC 5258 3.1) in args[0] when it is a list; moves `i` past
// them. Sends BAD and returns false on an unknown option or RECURSIVEMATCH alone.
bool parseListSelection(ImapSession& s, const ImapSession::Request& r, ListArgs& a, qsizetype& i) {
    if (a.lsub || i >= r.args.size() || r.args.at(i).kind != Token::Kind::List) return true;
    for (const Token& o : r.args.at(i).items) {
        if (o.isAtom("SUBSCRIBED"))
            a.selectSubscribed = true;
        else if (o.isAtom("SPECIAL-USE"))
            a.selectSpecialUse = true;  // RFC 6154 3
        else if (o.isAtom("RECURSIVEMATCH"))
            a.recursive = true;
        else if (o.isAtom("REMOTE")) {  // no remote mailboxes here
        } else {
            s.bad(r, QStringLiteral("Unknown LIST selection option"));
            return false;
        }
    }
    // RFC 5258 3.1: RECURSIVEMATCH alone (or with REMOTE) MUST get BAD.
    if (a.recursive && !a.selectSubscribed && !a.selectSpecialUse) {
        s.bad(r, QStringLiteral("RECURSIVEMATCH needs another selection option (SUBSCRIBED or SPECIAL-USE)"));
        return false;
    }
    ++i;
    return true;
}

// RETURN (options) after the patterns (RFC 5258 3.2, RFC 5819). Sends BAD and returns
// false when they are not that.
bool parseListReturn(ImapSession& s, const ImapSession::Request& r, ListArgs& a, qsizetype i) {
    if (i >= r.args.size()) return true;
    if (!r.args.at(i).isAtom("RETURN") || i + 1 >= r.args.size() || r.args.at(i + 1).kind != Token::Kind::List) {
        s.bad(r, QStringLiteral("Expected RETURN (options)"));
        return false;
    }
    const QList<Token>& opts = r.args.at(i + 1).items;
    for (qsizetype k = 0; k < opts.size(); ++k) {
        if (opts.at(k).isAtom("SUBSCRIBED"))
            a.returnSubscribed = true;
        else if (opts.at(k).isAtom("CHILDREN"))
            a.returnChildren = true;
        else if (opts.at(k).isAtom("SPECIAL-USE"))
            a.returnSpecialUse = true;
        else if (opts.at(k).isAtom("STATUS") && k + 1 < opts.size() && opts.at(k + 1).kind == Token::Kind::List)
            a.statusReq = opts.at(++k);
        else {
            s.bad(r, QStringLiteral("Unknown LIST return option"));
            return false;
        }
    }
    return true;
}

// LIST [(selection)] reference pattern|(patterns) [RETURN (options)], or LSUB reference
// pattern. Sends BAD (NO [LIMIT] for too many patterns) and returns false on an error.
bool parseListArgs(ImapSession& s, const ImapSession::Request& r, ListArgs& a) {
    a.lsub = r.name == "LSUB";
    a.returnChildren = !a.lsub;
    qsizetype i = 0;
    if (!parseListSelection(s, r, a, i)) return false;
    if (r.args.size() < i + 2) {
        s.bad(r, QStringLiteral("Usage: %1 reference pattern").arg(QString::fromLatin1(r.name)));
        return false;
    }
    const Token& refTok = r.args.at(i);
    const Token& patTok = r.args.at(i + 1);
    if (!parseListReturn(s, r, a, i + 2)) return false;
    a.ref = QString::fromUtf8(refTok.text);
    if (patTok.kind == Token::Kind::List) {
        for (const Token& p : patTok.items) a.patterns << p.text;
    } else {
        a.patterns << patTok.text;
    }
    if (a.patterns.size() > kMaxListPatterns) {
        s.no(r, QStringLiteral("Too many patterns (limit %1)").arg(kMaxListPatterns), "LIMIT");
        return false;
    }
    return true;
}

// The names a LIST/LSUB looks at and what it knows of them, each looked up in a set.
struct ListNames {
    QStringList all, subs;  // existing mailboxes, subscriptions
    QSet<QString> allSet, subSet;
    QSet<QString> parents;  // names with at least one mailbox below them
    QList<MailboxPattern> compiled;
    QSet<QString> byDescendant;  // names shown only because of a descendant (listUniverse)
};

ListNames listNames(ImapSession& s, const ListArgs& a) {
    ListNames n;
    n.all = Commands::mailboxes(s).list();
    n.subs = Commands::mailboxes(s).subscriptions();
    n.allSet = QSet<QString>(n.all.cbegin(), n.all.cend());
    n.subSet = QSet<QString>(n.subs.cbegin(), n.subs.cend());
    for (const QString& name : n.all)
        for (qsizetype at = name.indexOf(kSeparator); at > 0; at = name.indexOf(kSeparator, at + 1))
            n.parents.insert(name.left(at));
    for (const QByteArray& pat : a.patterns) {
        QString p;
        if (Commands::utf8(s))
            p = QString::fromUtf8(pat);
        else {
            auto d = store::decodeMUtf7(QString::fromLatin1(pat));
            p = d ? *d : QString::fromLatin1(pat);
        }
        n.compiled.append(MailboxPattern(QString(a.ref + p), kSeparator));
    }
    return n;
}

bool matchesAny(const QList<MailboxPattern>& compiled, const QString& name) {
    for (const MailboxPattern& p : compiled)
        if (p.matches(name)) return true;
    return false;
}

// Whether a name meets the selection criteria (RFC 5258 3.3): existing mailboxes, or the
// subscribed names (existing or not), narrowed to special-use mailboxes when asked.
bool meetsSelection(const ListArgs& a, const ListNames& n, const QString& name) {
    if (a.selectSubscribed ? !n.subSet.contains(name) : !n.allSet.contains(name)) return false;
    return !a.selectSpecialUse || !specialUseOf(name).isEmpty();
}

// The names the patterns are matched against, sorted. With RECURSIVEMATCH or for LSUB
// also the names shown only because of a descendant (they go into n.byDescendant):
// RECURSIVEMATCH's CHILDINFO (RFC 5258 3.5) and LSUB's \Noselect parents (RFC 3501
// 6.3.9: LSUB "%" shows "foo" \Noselect when only "foo/bar" is subscribed). Only for
// descendants that the patterns do not already show (RFC 5258 3.5: redundant CHILDINFO
// SHOULD be suppressed). Linear in names x depth.
QStringList listUniverse(const ListArgs& a, ListNames& n) {
    QStringList base = (a.lsub || a.selectSubscribed) ? n.subs : n.all;
    if (a.lsub || a.selectSubscribed)
        std::sort(base.begin(), base.end());  // (the file keeps them in the order they came)
    QStringList universe = base;
    if (!a.recursive && !a.lsub) return universe;
    for (const QString& name : base) {
        if (!a.lsub && !meetsSelection(a, n, name)) continue;
        if (matchesAny(n.compiled, name)) continue;
        for (qsizetype at = name.lastIndexOf(kSeparator); at > 0; at = name.lastIndexOf(kSeparator, at - 1)) {
            const QString parent = name.left(at);
            if (n.byDescendant.contains(parent)) break;  // and its ancestors are in already
            n.byDescendant.insert(parent);
        }
    }
    for (const QString& p : n.byDescendant)
        if (!n.subSet.contains(p) || !a.selectSubscribed) universe << p;
    std::sort(universe.begin(), universe.end());
    universe.erase(std::unique(universe.begin(), universe.end()), universe.end());
    return universe;
}

// The names of `universe` that a pattern matches, in the order of the patterns, each once.
QStringList matchedNames(const QList<MailboxPattern>& compiled, const QStringList& universe) {
    QStringList matched;
    QSet<QString> matchedSet;
    for (const MailboxPattern& pattern : compiled) {
        for (const QString& name : universe) {
            if (matchedSet.contains(name) || !pattern.matches(name)) continue;
            matched << name;
            matchedSet.insert(name);
        }
    }
    return matched;
}

// The LIST/LSUB response for a matched name, or nullopt when the name is not shown.
std::optional<QByteArray> listLine(ImapSession& s, const ListArgs& a, const ListNames& n, const QString& name) {
    QStringList attrs;
    const bool exists = n.allSet.contains(name);
    QByteArray extended;
    if (a.lsub) {
        // LSUB: \Noselect for a parent shown for its subscribed child, and for a subscribed
        // name that does not exist (RFC 3501 6.3.9; LSUB knows no \NonExistent).
        if (!n.subSet.contains(name) && !n.byDescendant.contains(name)) return std::nullopt;
        if (!n.subSet.contains(name) || !exists) attrs << QStringLiteral("\\Noselect");
    } else {
        const bool meets = meetsSelection(a, n, name);
        const bool childInfo = a.recursive && n.byDescendant.contains(name);
        if (!meets && !childInfo) return std::nullopt;
        if (!exists)
            attrs << QStringLiteral("\\NonExistent");
        else if (a.returnChildren)
            attrs << (n.parents.contains(name) ? QStringLiteral("\\HasChildren") : QStringLiteral("\\HasNoChildren"));
        if (childInfo) {
            QByteArrayList criteria;  // CHILDINFO's selection criteria
            if (a.selectSubscribed) criteria << "\"SUBSCRIBED\"";
            if (a.selectSpecialUse) criteria << "\"SPECIAL-USE\"";
            extended = " (\"CHILDINFO\" (" + criteria.join(' ') + "))";
        }
    }
    if (a.returnSpecialUse && exists) {
        const QString su = specialUseOf(name);
        if (!su.isEmpty()) attrs << su;
    }
    if ((a.returnSubscribed || a.selectSubscribed) && n.subSet.contains(name)) attrs << QStringLiteral("\\Subscribed");
    return (a.lsub ? "LSUB (" : "LIST (") + attrs.join(QLatin1Char(' ')).toUtf8() + ") \"/\" " + quotedName(s, name) +
           extended;
}

// LIST-STATUS (RFC 5819): the STATUS response for an existing listed mailbox.
void sendListStatus(ImapSession& s, const QString& name, const Token& statusReq) {
    MailboxName m;
    m.name = name;
    if (name != u"INBOX") m.parts = name.split(kSeparator);
    if (auto line = statusItems(s, m, statusReq); line && !line->isEmpty()) s.untagged(*line);
}

}  // namespace

void Commands::list(ImapSession& s, const R& r) {
    ListArgs a;
    if (!parseListArgs(s, r, a)) return;
    if (a.patterns.size() == 1 && a.patterns.first().isEmpty()) {
        s.untagged((a.lsub ? "LSUB" : "LIST") + QByteArray(" (\\Noselect) \"/\" \"\""));
        s.ok(r, QStringLiteral("%1 completed").arg(QString::fromLatin1(r.name)));
        return;
    }
    ListNames n = listNames(s, a);
    const QStringList universe = listUniverse(a, n);
    for (const QString& name : matchedNames(n.compiled, universe)) {
        const auto line = listLine(s, a, n, name);
        if (!line) continue;
        s.untagged(*line);
        if (a.statusReq && n.allSet.contains(name)) sendListStatus(s, name, *a.statusReq);
    }
    s.ok(r, QStringLiteral("%1 completed").arg(QString::fromLatin1(r.name)));
}

void Commands::status(ImapSession& s, const R& r) {
    if (r.args.size() != 2 || r.args.at(1).kind != Token::Kind::List || r.args.at(1).items.isEmpty()) {
        s.bad(r, QStringLiteral("Usage: STATUS mailbox (items)"));
        return;
    }
    auto m = mailboxArg(s, r, r.args.at(0));
    if (!m) return;
    if (!mailboxes(s).exists(*m)) {
        s.no(r, QStringLiteral("No such mailbox"), "NONEXISTENT");
        return;
    }
    auto line = statusItems(s, *m, r.args.at(1));
    if (!line) {
        s.no(r, QStringLiteral("Cannot read mailbox"), "SERVERBUG");
        return;
    }
    if (line->isEmpty()) {
        s.bad(r, QStringLiteral("Unknown STATUS item"));
        return;
    }
    s.untagged(*line);
    s.ok(r, QStringLiteral("STATUS completed"));
}

namespace {
struct AppendArgs {
    MailboxName mailbox;
    QStringList flags;
    std::optional<QDateTime> when;
    const Token* message = nullptr;
};

// APPEND mailbox [(flags)] [date-time] literal; nullopt after a BAD/NO.
std::optional<AppendArgs> appendArgs(ImapSession& s, const ImapSession::Request& r) {
    if (r.args.size() < 2 || r.args.size() > 4) {
        s.bad(r, QStringLiteral("Usage: APPEND mailbox [(flags)] [date-time] message"));
        return std::nullopt;
    }
    auto m = mailboxArg(s, r, r.args.at(0));
    if (!m) return std::nullopt;
    AppendArgs a{*m, {}, std::nullopt, &r.args.last()};
    if (a.message->kind != Token::Kind::String || !a.message->literal) {
        s.bad(r, QStringLiteral("The message must be a literal"));
        return std::nullopt;
    }
    for (qsizetype i = 1; i + 1 < r.args.size(); ++i) {
        const Token& t = r.args.at(i);
        if (t.kind == Token::Kind::List) {
            auto f = parseFlagList(t);
            if (!f) {
                s.bad(r, QStringLiteral("Bad flag list"));
                return std::nullopt;
            }
            a.flags = *f;
        } else if (t.kind == Token::Kind::String) {
            a.when = parseImapDateTime(t.text);
            if (!a.when) {
                s.bad(r, QStringLiteral("Bad date-time"));
                return std::nullopt;
            }
        } else {
            s.bad(r, QStringLiteral("Unexpected APPEND argument"));
            return std::nullopt;
        }
    }
    return a;
}
}  // namespace

void Commands::append(ImapSession& s, const R& r) {
    auto args = appendArgs(s, r);
    if (!args) return;
    const MailboxName* m = &args->mailbox;
    const Token& msg = *args->message;
    const QStringList& flags = args->flags;
    const std::optional<QDateTime>& when = args->when;
    if (msg.text.size() > config(s).appendLimit) {
        s.no(r, QStringLiteral("Message too big"), "TOOBIG");
        return;
    }
    // Binary content (a literal8, RFC 3516 4.4) is stored base64-encoded; BINARY[] gives
    // back the octets that were sent (imap_binary.h).
    const QByteArray content = msg.binary || msg.text.contains('\0') ? encodeBinaryParts(msg.text) : msg.text;
    if (!mailboxes(s).exists(*m)) {
        s.no(r, QStringLiteral("No such mailbox"), "TRYCREATE");
        return;
    }
    // Keyword letters come from the target mailbox's own keyword list. Appending to the
    // selected mailbox uses its view (no second listing of the folder).
    const bool toSelected = selected(s) && selected(s)->name().name == m->name && !selected(s)->readOnly();
    std::optional<MailboxView> opened;
    MailboxView* target = toSelected ? &*selected(s) : nullptr;
    if (!target) {
        auto view = MailboxView::openTarget(mailboxes(s).root(), *m);
        if (!view) {
            s.no(r, QStringLiteral("Cannot open mailbox"), "SERVERBUG");
            return;
        }
        opened = std::move(*view);
        target = &*opened;
    }
    const QStringList keywordsBefore = target->keywords();
    auto letters = target->lettersFor(flags, true);
    if (!letters) {
        s.no(r, letters.errorMessage(), "LIMIT");
        return;
    }
    // A keyword new to the selected mailbox: FLAGS and PERMANENTFLAGS before the message
    // that carries it is announced (RFC 9051 7.3.5).
    if (toSelected && target->keywords() != keywordsBefore) flagsResponse(s);
    // The one store operation (common/store/maildir_delivery.h): quota check, tmp/ file,
    // fsync, rename into cur/ with the flags, fsync of cur/, the quota line. It runs on
    // the thread pool, so the other sessions of this process are served meanwhile; this
    // one reads no further command until it answers.
    store::Placement placement;
    placement.root = mailboxes(s).root();
    placement.dir = target->dir();
    placement.cur = true;
    placement.flags = *letters;
    if (when) placement.mtime = when->toSecsSinceEpoch();
    placement.quotaBytes = backend(s).quotaOf(user(s));
    auto view = std::make_shared<std::optional<MailboxView>>(std::move(opened));
    R reply = r;
    reply.args.clear();  // the tag is all the answer needs; the literal stays with the worker
    s.m_io.suspend();
    if (toSelected) target->beginOwnAppend();  // the file it creates is no change by others
    runAsync(
        s.m_alive.get(), [placement, bytes = content] { return storeAppended(placement, bytes); },
        [&s, reply, view, toSelected, mailbox = *m](const AppendStored& stored) {
            finishAppend(s, reply, view, stored, toSelected, mailbox);
            s.m_io.resume();
        });
}

// Worker thread: the message into the folder, durably. The base name identifies it afterwards.
Commands::AppendStored Commands::storeAppended(const store::Placement& placement, const QByteArray& bytes) {
    store::Delivery delivery;
    store::Content content;
    content.head = bytes;
    AppendStored out;
    out.status = delivery.add(placement, content);
    if (out.status) out.status = delivery.commit();
    if (out.status) {
        out.name = delivery.copies().first().name;
        out.fileName = QFileInfo(delivery.copies().first().finalPath).fileName();
    }
    return out;
}

// Event-loop thread, once the file is stored (or not): UID, untagged changes, the answer.
void Commands::finishAppend(ImapSession& s, const R& r, const std::shared_ptr<std::optional<MailboxView>>& opened,
                            const AppendStored& stored, bool toSelected, const MailboxName& mailbox) {
    if (toSelected && selected(s)) selected(s)->endOwnAppend(stored.status ? stored.fileName : QString());
    if (!stored.status) {
        const store::StoreError& e = stored.status.error();
        log::write(log::Level::Error, io(s).info().sessionId, u"imap.append_failed",
                   log::Fields()
                       .add("user", user(s))
                       .add("mailbox", mailbox.name)
                       .add("result", toString(e.kind))
                       .add("error", e.detail));
        s.no(r, e.imapText(), e.imapCode());
        return;
    }
    // The selected view is still the one APPEND used: no command ran meanwhile.
    MailboxView* target = toSelected && selected(s) ? &*selected(s) : (*opened ? &**opened : nullptr);
    if (!target) {
        s.no(r, QStringLiteral("The mailbox is gone"), "SERVERBUG");
        return;
    }
    quint32 uid = 0;
    if (toSelected) {
        auto after = target->refresh();
        for (const Message& x : target->messages())
            if (x.base == stored.name) uid = x.uid;
        if (after) sendChanges(s, *after);  // (changes to a selected mailbox are reported before the OK anyway)
    } else if (auto uids = target->numberStored({stored.fileName})) {
        uid = uids->value(stored.name);
    }
    // APPEND into \Junk: the user files it as spam (queued, ImapBackend::learn).
    if (specialUseOf(mailbox.name) == u"\\Junk")
        backend(s).learn(user(s), true, target->dir() + QStringLiteral("/cur/") + stored.fileName);
    s.ok(r, QStringLiteral("APPEND completed"),
         "APPENDUID " + QByteArray::number(target->uidValidity()) + ' ' + QByteArray::number(uid));
}

void Commands::getquotaroot(ImapSession& s, const R& r) {
    if (r.args.size() != 1) {
        s.bad(r, QStringLiteral("Usage: GETQUOTAROOT mailbox"));
        return;
    }
    auto m = mailboxArg(s, r, r.args.at(0));
    if (!m) return;
    const qint64 quota = backend(s).quotaOf(user(s));
    if (quota <= 0) {
        s.untagged("QUOTAROOT " + quotedName(s, m->name));
    } else {
        s.untagged("QUOTAROOT " + quotedName(s, m->name) + " \"\"");
        auto used = store::MaildirQuota::usage(mailboxes(s).root(), quota);
        s.untagged("QUOTA \"\" (STORAGE " + QByteArray::number((used ? used->first : 0) / 1024) + ' ' +
                   QByteArray::number(quota / 1024) + ')');
    }
    s.ok(r, QStringLiteral("GETQUOTAROOT completed"));
}

void Commands::getquota(ImapSession& s, const R& r) {
    if (r.args.size() != 1) {
        s.bad(r, QStringLiteral("Usage: GETQUOTA root"));
        return;
    }
    const qint64 quota = backend(s).quotaOf(user(s));
    if (quota <= 0 || !r.args.at(0).text.isEmpty()) {
        s.no(r, QStringLiteral("No such quota root"), "NONEXISTENT");
        return;
    }
    auto used = store::MaildirQuota::usage(mailboxes(s).root(), quota);
    s.untagged("QUOTA \"\" (STORAGE " + QByteArray::number((used ? used->first : 0) / 1024) + ' ' +
               QByteArray::number(quota / 1024) + ')');
    s.ok(r, QStringLiteral("GETQUOTA completed"));
}

}  // namespace postern::imap
