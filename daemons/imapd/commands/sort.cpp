// commands/sort.cpp — SORT and THREAD (RFC 5256), with UID variants, and the
// DISPLAYFROM / DISPLAYTO sort keys (RFC 5957, SORT=DISPLAY).
//
//   sort     = ["UID" SP] "SORT" SP "(" sort-criterion *(SP sort-criterion) ")"
//              SP charset 1*(SP search-key)
//   sort-criterion = ["REVERSE" SP] ("ARRIVAL" / "CC" / "DATE" / "FROM" / "SIZE" /
//              "SUBJECT" / "TO" / "DISPLAYFROM" / "DISPLAYTO")
//   thread   = ["UID" SP] "THREAD" SP ("ORDEREDSUBJECT" / "REFERENCES") SP charset
//              1*(SP search-key)
// The charset is mandatory (a missing one is BAD); UTF-8 and US-ASCII are
// accepted, others get NO [BADCHARSET]. The search keys go through SEARCH's own
// evaluator (evaluateSearchProgram), so every SEARCH key works here too.
// Sort keys (RFC 5256 3): ARRIVAL = INTERNALDATE; DATE = the Date header in
// UTC, INTERNALDATE when it is missing or unparsable (2.2); FROM/TO/CC = the
// local part (addr-mailbox) of the first address of the ENVELOPE field (a
// group's name when the field starts with a group, as its start marker is the
// first address there), i;ascii-casemap; SUBJECT = the base subject
// (imap_thread.h), i;ascii-casemap; SIZE = RFC822.SIZE; DISPLAYFROM/DISPLAYTO
// (RFC 5957 3-4) = the decoded display name of that first address, else
// addr-mailbox@addr-host, else addr-mailbox (the group name), compared
// case-insensitively in Unicode (close to i;unicode-casemap, without its
// decomposition step). An obsolete "user@host (Real Name)" has the comment as
// display name, as ENVELOPE shows it. Ties go by sequence number, REVERSE or not.
// Security: header values are untrusted; only the header of each message is
// read (up to its blank line), and only when the process's header store (shared
// with SEARCH, backed by the folder's index: HeaderBlocks, commands.h) does not
// hold it yet. Limits: the result line grows with the mailbox (as SEARCH's
// does); message headers are read on the event-loop thread, like SEARCH's.
#include "commands.h"

#include "../imap_thread.h"

#include "common/mail/message.h"

#include <algorithm>
#include <optional>
#include <vector>

namespace postern::imap {

namespace {

enum class SortKey { Arrival, Cc, Date, From, Size, Subject, To, DisplayFrom, DisplayTo };

struct Criterion {
    SortKey key;
    bool reverse = false;
};

std::optional<SortKey> sortKeyNamed(const QByteArray& upper) {
    static const QList<std::pair<const char*, SortKey>> names = {{"ARRIVAL", SortKey::Arrival},
                                                                 {"CC", SortKey::Cc},
                                                                 {"DATE", SortKey::Date},
                                                                 {"FROM", SortKey::From},
                                                                 {"SIZE", SortKey::Size},
                                                                 {"SUBJECT", SortKey::Subject},
                                                                 {"TO", SortKey::To},
                                                                 {"DISPLAYFROM", SortKey::DisplayFrom},
                                                                 {"DISPLAYTO", SortKey::DisplayTo}};
    for (const auto& [name, key] : names)
        if (upper == name) return key;
    return std::nullopt;
}

// RFC 5256 2.2: the Date header in UTC, else INTERNALDATE.
qint64 sentDate(const mail::Header& h, const Message& m) {
    const QByteArray raw = h.value("date");
    if (!raw.isEmpty()) {
        const QDateTime d = mail::parseDate(raw);
        if (d.isValid()) return d.toMSecsSinceEpoch();
    }
    return m.mtimeMs;
}

// The first address of the field as FETCH ENVELOPE shows it (RFC 5256 3, RFC 5957 4):
// for "group: a@b, c@d;" that is the group's start marker, whose addr-mailbox is the
// group name and whose addr-host is NIL.
std::optional<mail::Address> firstAddress(const mail::Header& h, const char* field) {
    const QList<mail::Address> list = mail::parseAddressList(h.value(field));
    if (list.isEmpty()) return std::nullopt;
    return list.first();
}

// RFC 5256 3: FROM/TO/CC sort by the addr-mailbox of the first address.
QByteArray addrMailbox(const mail::Header& h, const char* field) {
    const auto a = firstAddress(h, field);
    return a ? a->local.toUtf8() : QByteArray();
}

// RFC 5957 3: the decoded display name (addr-name) when it is not empty, else
// addr-mailbox@addr-host, else addr-mailbox (a group: its name), else empty.
QString displayName(const mail::Header& h, const char* field) {
    const auto a = firstAddress(h, field);
    if (!a) return {};
    const QString name = a->groupStart ? QString() : a->name.trimmed();
    if (!name.isEmpty()) return name;
    return a->domain.isEmpty() ? a->local : a->local + QLatin1Char('@') + a->domain;
}

struct SortData {
    qint64 arrival = 0, date = 0, size = 0;
    // Already mapped for i;ascii-casemap (asciiCasemap: a-z as A-Z), so a comparison is a
    // plain octet comparison (compareAsciiCasemap's order) and the mapping runs once per
    // message, not once per comparison.
    QByteArray subject, from, to, cc;
    QString displayFrom, displayTo;
};

// The octet key a criterion compares (nullptr for the others).
const QByteArray* octetKey(SortKey key, const SortData& d) {
    switch (key) {
        case SortKey::Subject:
            return &d.subject;
        case SortKey::From:
            return &d.from;
        case SortKey::To:
            return &d.to;
        case SortKey::Cc:
            return &d.cc;
        default:
            return nullptr;
    }
}

int compareBy(SortKey key, const SortData& a, const SortData& b) {
    auto cmp = [](qint64 x, qint64 y) { return x < y ? -1 : (x > y ? 1 : 0); };
    switch (key) {
        case SortKey::Arrival:
            return cmp(a.arrival, b.arrival);
        case SortKey::Date:
            return cmp(a.date, b.date);
        case SortKey::Size:
            return cmp(a.size, b.size);
        case SortKey::Subject:
        case SortKey::From:
        case SortKey::To:
        case SortKey::Cc:
            if (const QByteArray* x = octetKey(key, a), *y = octetKey(key, b); x && y) return x->compare(*y);
            return 0;
        case SortKey::DisplayFrom:
            return a.displayFrom.compare(b.displayFrom, Qt::CaseInsensitive);
        case SortKey::DisplayTo:
            return a.displayTo.compare(b.displayTo, Qt::CaseInsensitive);
    }
    return 0;
}

// Shared by SORT and THREAD: `charset` at args[at], then the search program.
// Sends BAD/NO itself and returns nullopt when the command cannot go on.
std::optional<QList<int>> charsetAndSearch(ImapSession& s, const ImapSession::Request& r, qsizetype at,
                                           const MailboxView& v) {
    if (r.args.size() < at + 2) {
        s.bad(r, QStringLiteral("Usage: %1 needs a charset and search keys").arg(QString::fromLatin1(r.name)));
        return std::nullopt;
    }
    const Token& cs = r.args.at(at);
    if (!cs.isString()) {
        s.bad(r, QStringLiteral("The charset must be an atom or a string"));
        return std::nullopt;
    }
    const QByteArray charset = cs.text.toUpper();
    if (charset != "UTF-8" && charset != "US-ASCII") {
        s.no(r, QStringLiteral("Unsupported charset"), "BADCHARSET (UTF-8 US-ASCII)");
        return std::nullopt;
    }
    QString error;
    auto hits = evaluateSearchProgram(r.args, at + 1, v, &error);
    if (!hits) s.bad(r, QStringLiteral("Search syntax error: %1").arg(error));
    return hits;
}

// The sort criteria of args[0]: "(" ["REVERSE"] key *(SP ["REVERSE"] key) ")". Sends BAD
// and returns nullopt when they are not that.
std::optional<QList<Criterion>> parseSortCriteria(ImapSession& s, const ImapSession::Request& r) {
    if (r.args.isEmpty() || r.args.at(0).kind != Token::Kind::List) {
        s.bad(r, QStringLiteral("Usage: SORT (criteria) charset search-keys"));
        return std::nullopt;
    }
    QList<Criterion> criteria;
    bool reverse = false;
    for (const Token& t : r.args.at(0).items) {
        const QByteArray a = t.kind == Token::Kind::Atom ? t.text.toUpper() : QByteArray();
        if (a == "REVERSE" && !reverse) {
            reverse = true;
            continue;
        }
        const auto key = sortKeyNamed(a);
        if (!key) {
            s.bad(r, QStringLiteral("Unknown sort criterion %1").arg(QString::fromUtf8(t.text.left(40))));
            return std::nullopt;
        }
        criteria << Criterion{*key, reverse};
        reverse = false;
    }
    if (criteria.isEmpty() || reverse) {
        s.bad(r, reverse ? QStringLiteral("REVERSE must be followed by a sort key")
                         : QStringLiteral("Empty sort criteria"));
        return std::nullopt;
    }
    return criteria;
}

// The header fields the criteria read, each once, in the order of the criteria.
QList<const char*> sortFields(const QList<Criterion>& criteria) {
    QList<const char*> fields;
    auto use = [&](const char* f) {
        if (!fields.contains(f)) fields << f;
    };
    for (const Criterion& c : criteria) {
        switch (c.key) {
            case SortKey::Date:
                use("date");
                break;
            case SortKey::Subject:
                use("subject");
                break;
            case SortKey::From:
            case SortKey::DisplayFrom:
                use("from");
                break;
            case SortKey::To:
            case SortKey::DisplayTo:
                use("to");
                break;
            case SortKey::Cc:
                use("cc");
                break;
            case SortKey::Arrival:
            case SortKey::Size:
                break;
        }
    }
    return fields;
}

// What the criteria compare, for each message of `hits`. Headers are read only when a
// criterion needs one, and then only the fields the criteria use (parsing whole headers
// of a large folder was most of SORT's time).
QList<SortData> sortData(const MailboxView& v, const QList<int>& hits, const QList<Criterion>& criteria) {
    bool needHeader = false;
    for (const Criterion& c : criteria)
        if (c.key != SortKey::Arrival && c.key != SortKey::Size) needHeader = true;
    QList<SortData> data;
    data.reserve(hits.size());
    std::optional<HeaderBlocks> blocks;
    if (needHeader) blocks.emplace(v);
    const QList<const char*> fields = sortFields(criteria);
    for (int idx : hits) {
        const Message& m = v.messages().at(idx);
        SortData d;
        d.arrival = m.mtimeMs;
        d.size = m.vsize;
        if (needHeader) {
            const QByteArray block = blocks->block(idx);
            mail::Header h;
            for (const char* field : fields) {
                const QList<QByteArray> values = mail::headerValues(block, field);
                if (!values.isEmpty()) h.fields.append(mail::HeaderField{QByteArray(field), values.first()});
            }
            // Only the keys the criteria compare (the others stay empty).
            for (const Criterion& c : criteria) {
                switch (c.key) {
                    case SortKey::Date:
                        d.date = sentDate(h, m);
                        break;
                    case SortKey::Subject:
                        d.subject = asciiCasemap(extractBaseSubject(h.value("subject")).text);
                        break;
                    case SortKey::From:
                        d.from = asciiCasemap(addrMailbox(h, "from"));
                        break;
                    case SortKey::To:
                        d.to = asciiCasemap(addrMailbox(h, "to"));
                        break;
                    case SortKey::Cc:
                        d.cc = asciiCasemap(addrMailbox(h, "cc"));
                        break;
                    case SortKey::DisplayFrom:
                        d.displayFrom = displayName(h, "from");
                        break;
                    case SortKey::DisplayTo:
                        d.displayTo = displayName(h, "to");
                        break;
                    case SortKey::Arrival:
                    case SortKey::Size:
                        break;
                }
            }
        }
        data << d;
    }
    return data;
}

// The first 8 octets of a key as one big-endian number (zero-padded): two keys whose
// prefixes differ compare as their prefixes do; equal prefixes say nothing ("A" and
// "A\0" too), so the full comparison decides those.
quint64 keyPrefix(const QByteArray& k) {
    quint64 p = 0;
    for (qsizetype i = 0; i < 8; ++i) p = (p << 8) | (i < k.size() ? uchar(k.at(i)) : 0u);
    return p;
}

// Positions in `data` in the order of the criteria; ties go by sequence number (RFC 5256 3).
// When the first criterion compares octets, its keys' 8-octet prefixes are kept in one
// array and compared first: most comparisons of a large folder's sort then touch neither
// the SortData nor the keys' bytes elsewhere in memory.
QList<int> sortOrder(const QList<SortData>& data, const QList<Criterion>& criteria) {
    QList<int> order;
    for (int i = 0; i < data.size(); ++i) order << i;
    const bool prefixed = !criteria.isEmpty() && !data.isEmpty() && octetKey(criteria.first().key, data.first());
    std::vector<quint64> prefix;
    if (prefixed) {
        prefix.reserve(size_t(data.size()));
        for (const SortData& d : data) prefix.push_back(keyPrefix(*octetKey(criteria.first().key, d)));
    }
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
        if (prefixed && prefix[size_t(a)] != prefix[size_t(b)])
            return criteria.first().reverse ? prefix[size_t(a)] > prefix[size_t(b)]
                                            : prefix[size_t(a)] < prefix[size_t(b)];
        for (const Criterion& c : criteria) {
            const int res = compareBy(c.key, data.at(a), data.at(b));
            if (res != 0) return c.reverse ? res > 0 : res < 0;
        }
        return a < b;  // RFC 5256 3: ties go by sequence number
    });
    return order;
}

}  // namespace

void Commands::sort(ImapSession& s, const R& r) {
    MailboxView& v = *selected(s);
    const auto criteria = parseSortCriteria(s, r);
    if (!criteria) return;
    auto hits = charsetAndSearch(s, r, 1, v);
    if (!hits) return;
    const QList<SortData> data = sortData(v, *hits, *criteria);
    QByteArray line = "SORT";
    for (int i : sortOrder(data, *criteria)) {  // positions in hits (ascending sequence numbers)
        const int idx = hits->at(i);
        line += ' ' + QByteArray::number(r.uid ? v.messages().at(idx).uid : quint32(idx + 1));
    }
    s.untagged(line);
    s.ok(r, QStringLiteral("SORT completed"));
}

void Commands::thread(ImapSession& s, const R& r) {
    MailboxView& v = *selected(s);
    const QByteArray algorithm =
        !r.args.isEmpty() && r.args.at(0).kind == Token::Kind::Atom ? r.args.at(0).text.toUpper() : QByteArray();
    if (algorithm.isEmpty()) {
        s.bad(r, QStringLiteral("Usage: THREAD algorithm charset search-keys"));
        return;
    }
    if (algorithm != "ORDEREDSUBJECT" && algorithm != "REFERENCES") {
        s.bad(r, QStringLiteral("Unknown threading algorithm %1").arg(QString::fromUtf8(algorithm.left(40))));
        return;
    }
    auto hits = charsetAndSearch(s, r, 1, v);
    if (!hits) return;
    QList<ThreadMessage> messages;
    messages.reserve(hits->size());
    HeaderBlocks blocks(v);
    for (int idx : *hits) {
        const Message& m = v.messages().at(idx);
        const mail::Header h = mail::parseHeader(blocks.block(idx));
        ThreadMessage t;
        t.number = r.uid ? m.uid : quint32(idx + 1);
        t.sentDate = sentDate(h, m);
        t.subject = extractBaseSubject(h.value("subject"));
        if (algorithm == "REFERENCES") {
            t.messageId = parseMessageIds(h.value("message-id")).value(0);
            t.references = parseMessageIds(h.value("references"));
            if (t.references.isEmpty()) {  // RFC 5256 3 (1A): else the first In-Reply-To id
                const QList<QByteArray> irt = parseMessageIds(h.value("in-reply-to"));
                if (!irt.isEmpty()) t.references << irt.first();
            }
        }
        messages << t;
    }
    const ThreadForest forest =
        algorithm == "REFERENCES" ? threadByReferences(messages) : threadByOrderedSubject(messages);
    const QByteArray threads = forest.format();
    s.untagged(threads.isEmpty() ? QByteArray("THREAD") : "THREAD " + threads);
    s.ok(r, QStringLiteral("THREAD completed"));
}

}  // namespace postern::imap
