// commands/commands.h — the IMAP command handlers, one family per file:
//   auth.cpp       CAPABILITY NOOP LOGOUT STARTTLS LOGIN AUTHENTICATE ID ENABLE NAMESPACE IDLE
//   mailboxes.cpp  SELECT EXAMINE CREATE DELETE RENAME (UN)SUBSCRIBE LIST LSUB STATUS APPEND GETQUOTA(ROOT)
//   selected.cpp   CHECK CLOSE UNSELECT EXPUNGE STORE COPY MOVE, change reporting
//   fetch.cpp      FETCH (ENVELOPE, BODYSTRUCTURE, BODY[section]<partial>, MODSEQ, BINARY, ...,
//                  CHANGEDSINCE/VANISHED modifiers)
//   search.cpp     SEARCH / ESEARCH (with MODSEQ)
//   sort.cpp       SORT, THREAD (RFC 5256; helpers in imap_thread.h)
// Each handler checks (arguments, state, policy; BAD for syntax, NO for
// refusals) and then proceeds. Shared helpers (sequence sets, flag lists,
// dates, mod-sequences, QRESYNC's VANISHED) are declared here.
#pragma once

#include "../imap_session.h"

#include "common/store/maildir_delivery.h"

#include <QDateTime>
#include <QList>
#include <memory>

namespace postern::imap {

struct Commands {
    using R = ImapSession::Request;
    static void capability(ImapSession& s, const R& r);
    static void noop(ImapSession& s, const R& r);
    static void logout(ImapSession& s, const R& r);
    static void starttls(ImapSession& s, const R& r);
    static void login(ImapSession& s, const R& r);
    static void authenticate(ImapSession& s, const R& r);
    static void saslResponse(ImapSession& s, const QByteArray& line);
    static void saslDone(ImapSession& s, const R& r);
    static void id(ImapSession& s, const R& r);
    static void enable(ImapSession& s, const R& r);
    static void namespace_(ImapSession& s, const R& r);
    static void idle(ImapSession& s, const R& r);

    static void select(ImapSession& s, const R& r);
    static void create(ImapSession& s, const R& r);
    static void delete_(ImapSession& s, const R& r);
    static void rename(ImapSession& s, const R& r);
    static void subscribe(ImapSession& s, const R& r);
    static void list(ImapSession& s, const R& r);
    static void status(ImapSession& s, const R& r);
    static void append(ImapSession& s, const R& r);
    struct AppendStored {
        store::StoreStatus status;
        QString name;      // the stored file's base name
        QString fileName;  // its name in cur/ (with the flags)
    };
    static AppendStored storeAppended(const store::Placement& placement, const QByteArray& bytes);
    static void finishAppend(ImapSession& s, const R& r, const std::shared_ptr<std::optional<MailboxView>>& opened,
                             const AppendStored& stored, bool toSelected, const MailboxName& mailbox);
    static void getquotaroot(ImapSession& s, const R& r);
    static void getquota(ImapSession& s, const R& r);

    static void check(ImapSession& s, const R& r);
    static void close(ImapSession& s, const R& r);
    static void unselect(ImapSession& s, const R& r);
    static void expunge(ImapSession& s, const R& r);
    static void store(ImapSession& s, const R& r);
    static void copy(ImapSession& s, const R& r);
    static void move(ImapSession& s, const R& r);
    static void fetch(ImapSession& s, const R& r);
    static void search(ImapSession& s, const R& r);
    static void sort(ImapSession& s, const R& r);
    static void thread(ImapSession& s, const R& r);

    static void sendChanges(ImapSession& s, const Changes& c);

    // Helpers shared by the handler files.
    static ImapSession::State& state(ImapSession& s) { return s.m_state; }
    static std::optional<MailboxView>& selected(ImapSession& s) { return s.m_selected; }
    static UserMailboxes& mailboxes(ImapSession& s) { return *s.m_mailboxes; }
    static bool utf8(ImapSession& s) { return s.m_utf8; }
    static bool rev2(ImapSession& s) { return s.m_rev2; }
    static bool& condstore(ImapSession& s) { return s.m_condstore; }
    static bool qresync(ImapSession& s) { return s.m_qresync; }
    // " MODSEQ (n)" for untagged FETCH responses once CONDSTORE is on (empty otherwise).
    static QByteArray modseqItem(ImapSession& s, int index);
    static const SessionConfig& config(ImapSession& s) { return s.m_config; }
    static QString user(ImapSession& s) { return s.m_user; }
    static ImapBackend& backend(ImapSession& s) { return s.m_backend; }
    static SessionIo& io(ImapSession& s) { return s.m_io; }
    static void flagsResponse(ImapSession& s);
    static QByteArray flagList(const QStringList& flags);
};

// A sequence set ("1:3,7,10:*") resolved against a mailbox as intervals of 0-based message
// indexes [first, last]: ascending, disjoint, merged. uid: the numbers are UIDs. nullopt on a
// syntax error. Cost: O(k log k) for k comma-separated items, whatever the ranges span
// ("1:4294967295" is one interval, not a list of UIDs).
using IndexRanges = QList<std::pair<int, int>>;
std::optional<IndexRanges> resolveSequenceRanges(const QByteArray& set, const MailboxView& view, bool uid);
bool inIndexRanges(const IndexRanges& ranges, int index);  // binary search
// The same set as a list of 0-based message indexes, ascending (at most one per message).
std::optional<QList<int>> resolveSequenceSet(const QByteArray& set, const MailboxView& view, bool uid);
// "(\Seen $Label)" or a single flag atom -> flag names.
std::optional<QStringList> parseFlagList(const Token& t);
// IMAP date-time "24-Nov-2026 15:04:05 +0000" (RFC 9051 9: date-time).
QByteArray imapDateTime(qint64 msecs);
// The date of `msecs` in the system's local time (SEARCH BEFORE/ON/SINCE), as imapDateTime.
QDate imapLocalDate(qint64 msecs);
std::optional<QDateTime> parseImapDateTime(const QByteArray& s);
std::optional<QDate> parseImapDate(const QByteArray& s);
// A mod-sequence value (RFC 7162: 1 .. 2^63-1; 0 allowed where `zero`).
std::optional<quint64> parseModseq(const Token& t, bool zero);
// A UID set not bound to the mailbox's messages (QRESYNC's known-uids): ranges, "*" = star;
// sorted, merged and disjoint, so that inRanges() is a binary search.
using UidRanges = QList<std::pair<quint32, quint32>>;
std::optional<UidRanges> parseUidRanges(const QByteArray& set, quint32 star);
bool inRanges(const UidRanges& ranges, quint32 v);
// QRESYNC's VANISHED (EARLIER): UIDs within `ranges` expunged after `modseq`, or, when
// the expunge history does not reach back that far, every UID of `ranges` not present
// (up to the last UID assigned). As merged ranges: never one entry per UID of a range.
UidRanges vanishedSince(const MailboxView& view, quint64 modseq, const UidRanges& ranges);
// Ranges as "1:3,7" text.
QByteArray rangesText(const UidRanges& ranges);
// The SEARCH program args[start..] (search.cpp's evaluator, shared with SORT and
// THREAD) run over `view`: 0-based indexes of the matching messages, ascending;
// nullopt with *error set on a syntax error or a program nested too deeply.
// kMaxSearchDepth: how many NOT, OR and parentheses may enclose a search key
// (RFC 9051 6.4.4 sets no limit; the parser and the evaluator recurse once per
// level, so the limit bounds their stack). "NOT NOT ... ALL" with 64 NOTs is
// accepted, 65 get BAD; the same for a chain of 65 ORs.
inline constexpr int kMaxSearchDepth = 64;
// kMaxSearchKeys: search keys in one program, NOT, OR and parenthesised lists
// included (each key is evaluated for every message). "ALL" 1,000 times is
// accepted, 1,001 times gets BAD.
inline constexpr int kMaxSearchKeys = 1000;
std::optional<QList<int>> evaluateSearchProgram(const QList<Token>& args, qsizetype start, const MailboxView& view,
                                                QString* error);

// Top-level header blocks of a view's messages for SORT and THREAD, from the same
// process-wide store (backed by the folder's index) that SEARCH's header keys use:
// a message file is read only when the store does not hold its block yet.
class HeaderBlocks {
public:
    explicit HeaderBlocks(const MailboxView& view);
    ~HeaderBlocks();
    HeaderBlocks(const HeaderBlocks&) = delete;
    HeaderBlocks& operator=(const HeaderBlocks&) = delete;
    QByteArray block(int index);

private:
    struct Impl;
    std::unique_ptr<Impl> d;
};
// A UID set as the shortest "1:3,7" text.
QByteArray compactSet(QList<quint32> values);

}  // namespace postern::imap
