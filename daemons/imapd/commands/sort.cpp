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
// hold it yet; the keys extracted are kept per folder, UIDVALIDITY and UID in the
// process's sort-key cache (SortKeyCache below: 8 folders, ~64 MiB, 10 minutes), and
// so is the UID order of the last 4 sets of criteria per folder, also stored in the
// folder's index for every process (MailboxIndex::sortOrder, the last 8): a SORT whose
// hits are all in a kept order takes that order without looking at a key (a repeated
// SORT of 100,000 messages: ~70-110 ms -> ~10-25 ms). An order read from the index is
// used only when it names each hit exactly once (orderOfHits).
// Limits: the result line grows with the mailbox (as SEARCH's does); message
// headers are read on the event-loop thread, like SEARCH's.
#include "commands.h"

#include "../imap_index.h"
#include "../imap_thread.h"

#include "common/mail/message.h"

#include <QElapsedTimer>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>
#include <vector>

namespace postern::imap {

namespace {

enum class SortKey { Arrival, Cc, Date, From, Size, Subject, To, DisplayFrom, DisplayTo };

struct Criterion {
    SortKey key;
    bool reverse = false;
};

const QList<std::pair<const char*, SortKey>>& sortKeyNames() {
    static const QList<std::pair<const char*, SortKey>> names = {{"ARRIVAL", SortKey::Arrival},
                                                                 {"CC", SortKey::Cc},
                                                                 {"DATE", SortKey::Date},
                                                                 {"FROM", SortKey::From},
                                                                 {"SIZE", SortKey::Size},
                                                                 {"SUBJECT", SortKey::Subject},
                                                                 {"TO", SortKey::To},
                                                                 {"DISPLAYFROM", SortKey::DisplayFrom},
                                                                 {"DISPLAYTO", SortKey::DisplayTo}};
    return names;
}

std::optional<SortKey> sortKeyNamed(const QByteArray& upper) {
    for (const auto& [name, key] : sortKeyNames())
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

// Sort keys of messages, kept per process for the folders sorted most recently: a message
// file never changes, so the keys of a UID hold for as long as its UIDVALIDITY (Dovecot
// keeps them in its index cache). Extracting them was most of a repeated SORT's time (a
// 100,000-message folder: ~150-250 ms each time, Dovecot ~50-80 ms from its cache).
// Bounded: kMaxFolders folders and about kMaxBytes of keys over all of them (the least
// recently sorted folders go first; a folder whose keys alone would exceed it keeps what
// fits); a folder not sorted for kIdleMs is dropped at the next SORT. Event-loop thread.
struct SortKeyCache {
    static constexpr int kMaxFolders = 8;
    static constexpr qsizetype kMaxBytes = 64 * 1024 * 1024;
    static constexpr qint64 kIdleMs = 10 * 60 * 1000;
    struct Entry {
        unsigned has = 0;  // the keys held: bit (1 << SortKey)
        QString base;      // the file they were read from (as the header store checks it)
        SortData keys;
    };
    // UIDs in the order of one set of criteria (their signature): a UID's keys never
    // change, and ties go by sequence number, which is UID order, so the order of any two
    // UIDs holds for as long as the folder's uidlist does (Dovecot keeps sort IDs in its
    // index for the same reason). A later SORT of UIDs that are all in it takes them in
    // that order without looking at a key (webmail sorts the same way at every page).
    struct Order {
        QByteArray criteria;
        std::vector<quint32> uids;
    };
    static constexpr int kMaxOrders = 4;  // per folder, the most recent first
    struct Folder {
        QString dir;
        quint32 uidValidity = 0;
        QString generation;  // the uidlist's GUID: within it a UID names one file
        qint64 usedMs = 0;
        qsizetype bytes = 0;
        QHash<quint32, Entry> byUid;
        QList<Order> orders;
    };
    QList<Folder> folders;  // most recently used first
    qsizetype bytes = 0;
    QElapsedTimer clock;

    static SortKeyCache& instance() {
        static auto* c = new SortKeyCache;  // (never destroyed, as the other caches)
        if (!c->clock.isValid()) c->clock.start();
        return *c;
    }
    static qsizetype sizeOf(const QString& base, const SortData& d) {
        return qsizetype(sizeof(Entry)) + 64 + 2 * base.size() + d.subject.size() + d.from.size() + d.to.size() +
               d.cc.size() + 2 * (d.displayFrom.size() + d.displayTo.size());
    }
    void drop(qsizetype i) {
        bytes -= folders.at(i).bytes;
        folders.removeAt(i);
    }
    // The folder's keys (moved to the front; emptied when its UIDVALIDITY or uidlist changed).
    Folder& folder(const QString& dir, quint32 uidValidity, const QString& generation) {
        const qint64 now = clock.elapsed();
        for (qsizetype i = folders.size() - 1; i >= 0; --i)
            if (now - folders.at(i).usedMs > kIdleMs) drop(i);
        qsizetype at = -1;
        for (qsizetype i = 0; i < folders.size() && at < 0; ++i)
            if (folders.at(i).dir == dir) at = i;
        if (at >= 0 && (folders.at(at).uidValidity != uidValidity || folders.at(at).generation != generation))
            drop(std::exchange(at, -1));
        if (at < 0) {
            folders.prepend(Folder{dir, uidValidity, generation, now, 0, {}, {}});
            while (folders.size() > kMaxFolders) drop(folders.size() - 1);
        } else if (at > 0) {
            folders.move(at, 0);
        }
        folders.first().usedMs = now;
        return folders.first();
    }
    // Keeps `keys` (holding the keys in `has`, read from file `base`) for `uid` of the first
    // folder, room allowing.
    void keep(quint32 uid, const QString& base, unsigned has, const SortData& keys) {
        Folder& f = folders.first();
        Entry& e = f.byUid[uid];
        const qsizetype before = e.has ? sizeOf(e.base, e.keys) : 0;
        const qsizetype after = sizeOf(base, keys);
        while (bytes - before + after > kMaxBytes && folders.size() > 1) drop(folders.size() - 1);
        if (bytes - before + after > kMaxBytes) {
            if (!e.has) f.byUid.remove(uid);
            return;
        }
        e.base = base;
        e.keys = keys;
        e.has = has;
        f.bytes += after - before;
        bytes += after - before;
    }
    static qsizetype sizeOf(const Order& o) {
        return qsizetype(sizeof(Order)) + o.criteria.size() + 4 * qsizetype(o.uids.size());
    }
    // The first folder's order for `criteria`, or null.
    const Order* order(const QByteArray& criteria) const {
        for (const Order& o : folders.first().orders)
            if (o.criteria == criteria) return &o;
        return nullptr;
    }
    // Keeps `o` as the first folder's order for its criteria, room allowing.
    void keepOrder(Order o) {
        Folder& f = folders.first();
        auto remove = [&](qsizetype i) {
            f.bytes -= sizeOf(f.orders.at(i));
            bytes -= sizeOf(f.orders.at(i));
            f.orders.removeAt(i);
        };
        for (qsizetype i = f.orders.size() - 1; i >= 0; --i)
            if (f.orders.at(i).criteria == o.criteria) remove(i);
        while (f.orders.size() >= kMaxOrders) remove(f.orders.size() - 1);
        const qsizetype add = sizeOf(o);
        while (bytes + add > kMaxBytes && folders.size() > 1) drop(folders.size() - 1);
        if (bytes + add > kMaxBytes) return;
        f.orders.prepend(std::move(o));
        f.bytes += add;
        bytes += add;
    }
};

// The criteria as the key of a kept order, by name ("1 DATE REVERSE SUBJECT"), as the
// folder's index keeps them across versions. The leading number is the version of the
// keys and their comparison: a change to either must raise it, or an order kept by an
// older version would answer for the new one.
constexpr int kSortOrderVersion = 1;
QByteArray criteriaSignature(const QList<Criterion>& criteria) {
    QByteArray sig = QByteArray::number(kSortOrderVersion);
    for (const Criterion& c : criteria) {
        if (c.reverse) sig += " REVERSE";
        for (const auto& [name, key] : sortKeyNames())
            if (key == c.key) sig += QByteArray(" ") + name;
    }
    return sig;
}

// The keys of the criteria that come from the header (bits 1 << SortKey).
unsigned headerKeys(const QList<Criterion>& criteria) {
    unsigned want = 0;
    for (const Criterion& c : criteria)
        if (c.key != SortKey::Arrival && c.key != SortKey::Size) want |= 1u << unsigned(c.key);
    return want;
}

// The header keys of `m` the criteria compare, into `d` (the others stay empty).
void headerSortData(const QByteArray& block, const Message& m, const QList<const char*>& fields,
                    const QList<Criterion>& criteria, SortData& d) {
    mail::Header h;
    for (const char* field : fields) {
        const QList<QByteArray> values = mail::headerValues(block, field);
        if (!values.isEmpty()) h.fields.append(mail::HeaderField{QByteArray(field), values.first()});
    }
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

// What the criteria compare, for each message of `hits`. Header keys come from the
// process's sort-key cache, else from the header (read only then, and only the fields the
// criteria use: parsing whole headers of a large folder was most of SORT's time).
QList<SortData> sortData(const MailboxView& v, const QList<int>& hits, const QList<Criterion>& criteria) {
    const unsigned want = headerKeys(criteria);
    QList<SortData> data;
    data.reserve(hits.size());
    std::optional<HeaderBlocks> blocks;
    SortKeyCache& cache = SortKeyCache::instance();
    if (want) cache.folder(v.dir(), v.uidValidity(), v.generation());
    const QList<const char*> fields = sortFields(criteria);
    for (int idx : hits) {
        const Message& m = v.messages().at(idx);
        SortData d;
        if (want) {
            const auto& byUid = cache.folders.first().byUid;
            const auto it = byUid.constFind(m.uid);
            // (The same file, not an older one under this UID: as the header store checks.)
            const bool same = it != byUid.cend() && (it->base.constData() == m.base.constData() || it->base == m.base);
            const unsigned held = same ? it->has : 0u;
            if (same) d = it->keys;  // (all it holds; the keys it lacks are read below)
            if ((held & want) != want) {
                if (!blocks) blocks.emplace(v);
                headerSortData(blocks->block(idx), m, fields, criteria, d);
                cache.keep(m.uid, m.base, held | want, d);
            }
        }
        d.arrival = m.mtimeMs;
        d.size = m.vsize;
        data << d;
    }
    return data;
}

// The first 8 octets of a key as one big-endian number (zero-padded): two keys whose
// prefixes differ compare as their prefixes do; equal prefixes say nothing ("A" and
// "A\0" too), so the full comparison decides those.
quint64 keyPrefix(QByteArrayView k) {
    quint64 p = 0;
    for (qsizetype i = 0; i < 8; ++i) p = (p << 8) | (i < k.size() ? uchar(k.at(i)) : 0u);
    return p;
}

// For each of `data`, the rank of its octet key for `key` among the distinct keys: equal
// keys share a rank, ranks ascend as the keys do. The distinct keys are sorted once (their
// 8-octet prefixes first), so sorting the messages compares integers: comparing keys per
// message pair was most of a large folder's SORT by subject (threads repeat their subject,
// and equal keys compare over their whole length).
std::vector<int> keyRanks(const QList<SortData>& data, SortKey key) {
    QHash<QByteArrayView, int> distinct;
    distinct.reserve(data.size());
    std::vector<QByteArrayView> keys;
    std::vector<int> ranks(size_t(data.size()));
    for (qsizetype i = 0; i < data.size(); ++i) {
        const QByteArray* bytes = octetKey(key, data.at(i));  // (views of `data`, which outlives them)
        const QByteArrayView k = bytes ? QByteArrayView(*bytes) : QByteArrayView();
        auto it = distinct.find(k);
        if (it == distinct.end()) {
            it = distinct.insert(k, int(keys.size()));
            keys.push_back(k);
        }
        ranks[size_t(i)] = it.value();
    }
    std::vector<quint64> prefix;
    prefix.reserve(keys.size());
    for (const QByteArrayView k : keys) prefix.push_back(keyPrefix(k));
    std::vector<int> ids(keys.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = int(i);
    std::sort(ids.begin(), ids.end(), [&](int a, int b) {
        if (prefix[size_t(a)] != prefix[size_t(b)]) return prefix[size_t(a)] < prefix[size_t(b)];
        return keys[size_t(a)].compare(keys[size_t(b)]) < 0;  // (distinct: never equal)
    });
    std::vector<int> rankOf(ids.size());
    for (size_t r = 0; r < ids.size(); ++r) rankOf[size_t(ids[r])] = int(r);
    for (int& r : ranks) r = rankOf[size_t(r)];
    return ranks;
}

// Positions in `data` in the order of the criteria; ties go by sequence number (RFC 5256 3).
// When the first criterion compares octets, it compares the keys' ranks (keyRanks).
QList<int> sortOrder(const QList<SortData>& data, const QList<Criterion>& criteria) {
    QList<int> order;
    for (int i = 0; i < data.size(); ++i) order << i;
    const bool ranked = !criteria.isEmpty() && !data.isEmpty() && octetKey(criteria.first().key, data.first());
    const std::vector<int> rank = ranked ? keyRanks(data, criteria.first().key) : std::vector<int>();
    // (A total order: the sequence number decides last, so std::sort gives the one result.)
    std::sort(order.begin(), order.end(), [&](int a, int b) {
        qsizetype from = 0;
        if (ranked) {
            const int x = rank[size_t(a)], y = rank[size_t(b)];
            if (x != y) return criteria.first().reverse ? x > y : x < y;
            from = 1;  // the same key
        }
        for (qsizetype c = from; c < criteria.size(); ++c) {
            const int res = compareBy(criteria.at(c).key, data.at(a), data.at(b));
            if (res != 0) return criteria.at(c).reverse ? res > 0 : res < 0;
        }
        return a < b;  // RFC 5256 3: ties go by sequence number
    });
    return order;
}

// The positions in `hitUids` (ascending) of `kept`'s UIDs, in kept's order; nullopt unless
// it holds every one of them. Each place once (an order read from the index is not trusted
// to be a permutation).
std::optional<QList<int>> orderOfHits(const std::vector<quint32>& hitUids, const std::vector<quint32>& kept) {
    if (hitUids.empty()) return std::nullopt;
    // Each kept UID's place in the hits: a table over their UID range when it is dense
    // (the usual case), else a binary search.
    const quint32 first = hitUids.front();
    const quint64 range = quint64(hitUids.back()) - first + 1;
    std::vector<int> at;
    if (range <= 4 * quint64(hitUids.size())) {
        at.assign(size_t(range), -1);
        for (size_t i = 0; i < hitUids.size(); ++i) at[hitUids[i] - first] = int(i);
    }
    std::vector<bool> taken(hitUids.size(), false);
    QList<int> order;
    order.reserve(qsizetype(hitUids.size()));
    for (const quint32 uid : kept) {
        int place = -1;
        if (!at.empty()) {
            if (uid >= first && uid - first < range) place = at[uid - first];
        } else if (const auto it = std::lower_bound(hitUids.cbegin(), hitUids.cend(), uid);
                   it != hitUids.cend() && *it == uid) {
            place = int(it - hitUids.cbegin());
        }
        if (place < 0 || taken[size_t(place)]) continue;
        taken[size_t(place)] = true;
        order << place;
    }
    if (order.size() != qsizetype(hitUids.size())) return std::nullopt;
    return order;
}

// sortOrder of `hits`, from the folder's kept order when it holds every one of them (then
// no key is looked at): this process's, else the one the folder's index keeps for every
// process. Else sorted, and kept in both (a SORT of no message keeps nothing).
QList<int> keptSortOrder(const MailboxView& v, const QList<int>& hits, const QList<Criterion>& criteria) {
    SortKeyCache& cache = SortKeyCache::instance();
    cache.folder(v.dir(), v.uidValidity(), v.generation());
    const QByteArray sig = criteriaSignature(criteria);
    std::vector<quint32> hitUids;  // ascending, as the hits are
    hitUids.reserve(size_t(hits.size()));
    for (int idx : hits) hitUids.push_back(v.messages().at(idx).uid);
    if (const SortKeyCache::Order* kept = cache.order(sig))
        if (std::optional<QList<int>> order = orderOfHits(hitUids, kept->uids)) return *order;
    const std::shared_ptr<MailboxIndex> idx = v.index();
    if (idx) {
        const QByteArray stored = idx->sortOrder(sig, v.generation());
        SortKeyCache::Order o{sig, std::vector<quint32>(size_t(stored.size()) / sizeof(quint32))};
        if (!o.uids.empty()) std::memcpy(o.uids.data(), stored.constData(), o.uids.size() * sizeof(quint32));
        if (std::optional<QList<int>> order = orderOfHits(hitUids, o.uids)) {
            cache.keepOrder(std::move(o));
            return *order;
        }
    }
    const QList<int> order = sortOrder(sortData(v, hits, criteria), criteria);
    if (hitUids.empty()) return order;
    SortKeyCache::Order o{sig, {}};
    o.uids.reserve(size_t(order.size()));
    for (int i : order) o.uids.push_back(hitUids[size_t(i)]);
    if (idx) {
        idx->storeSortOrder(
            sig, v.generation(),
            QByteArray(reinterpret_cast<const char*>(o.uids.data()), qsizetype(o.uids.size() * sizeof(quint32))));
    }
    cache.keepOrder(std::move(o));  // (the folder is still first: keeping keys drops only the last ones)
    return order;
}

}  // namespace

void Commands::sort(ImapSession& s, const R& r) {
    MailboxView& v = *selected(s);
    const auto criteria = parseSortCriteria(s, r);
    if (!criteria) return;
    auto hits = charsetAndSearch(s, r, 1, v);
    if (!hits) return;
    QByteArray line = "SORT";
    char digits[16];
    for (int i : keptSortOrder(v, *hits, *criteria)) {  // positions in hits (ascending sequence numbers)
        const int idx = hits->at(i);
        const auto n =
            std::to_chars(digits, digits + sizeof digits, r.uid ? v.messages().at(idx).uid : quint32(idx + 1));
        line += ' ';
        line.append(digits, n.ptr - digits);
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
