// commands/fetch.cpp — FETCH: FLAGS INTERNALDATE RFC822.SIZE UID ENVELOPE
// BODYSTRUCTURE BODY BODY[section]<partial> BODY.PEEK RFC822 RFC822.HEADER
// RFC822.TEXT and the ALL/FAST/FULL macros (RFC 9051 6.4.5, 7.5.2), and
// BINARY[section]<partial> BINARY.PEEK BINARY.SIZE (RFC 3516; imap_binary.h),
// MODSEQ and the (CHANGEDSINCE n [VANISHED]) modifiers (RFC 7162).
// Part numbers follow RFC 9051 6.4.5 (imap_binary.h resolvePart: a
// message/rfc822 part's numbers address the message inside it, whose only
// part is its body when it is not multipart). ENVELOPE addresses follow RFC
// 3501 7.4.2: groups as start/end markers, source routes in adl, and the
// comment of an obsolete "user@host (Real Name)" as the personal name.
// A message another session expunged (not reported yet) is left out and a
// FETCH by sequence number ends with NO [EXPUNGEISSUED] (RFC 2180 4.1.2,
// RFC 5530); a file another session renamed (new flags) is found by name.
// ENVELOPE/BODY/BODYSTRUCTURE come from the folder's index when cached there (a run of close
// UIDs read in one range query, cachedTexts).
// Messages are read whole (bounded by the message size limit), normalised to
// CRLF so that sizes and offsets match RFC822.SIZE; a FETCH whose only message
// items are top-level header items (BODY[HEADER], BODY[HEADER.FIELDS (...)],
// RFC822.HEADER) reads just the header block, and the MIME structure is parsed
// only for items that need it (part numbers, BINARY, a structure the index does
// not have). The response text is gathered in one buffer (FetchJob::out) and
// handed to the connection in pieces of up to kBatchBytes, so UID FETCH 1:*
// (FLAGS) of a large folder costs one send per 64 KiB, not several per
// message; a literal's bytes of more than kBatchBytes are sent as they are,
// not copied into it. Responses are answered one item at a time with output
// backpressure (runWithBackpressure, checked between items, the gathered
// bytes counted), so neither FETCH 1:* BODY[] of a large mailbox nor FETCH 1
// (BODY[] BODY[] ... a thousand times) ever sits in memory at once: the
// process holds one message and one item's data per session.
// Security: section numbers (at most 6 digits each) and partial ranges (read
// with parseNumber(): digits only, overflow-checked) are validated against the
// parsed structure and clamped to the data; nothing reads outside the message. The MIME tree comes
// from mail::parseMime (depth and part count bounded there); BODYSTRUCTURE
// recurses over that bounded tree, section walks are loops.
// Limits: kMaxSectionParts part numbers in a section (BAD beyond; parsing
// stops there, so a 64 KiB "1.1.1..." costs no more than a short one);
// HEADER.FIELDS names are looked up in a set (linear in the header however
// many names the client lists).
#include "commands.h"

#include "../imap_binary.h"

#include "common/mail/message.h"
#include "core/posix_io.h"
#include "core/safe_path.h"

#include <QSet>
#include <charconv>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>

namespace postern::imap {

namespace {

using mail::MimePart;

// Part numbers in one section ("1.2.3"): deeper than mail::kMaxDepth cannot address a part.
constexpr qsizetype kMaxSectionParts = 32;
// Response bytes gathered before they go to the connection (and the largest literal copied in).
constexpr qsizetype kBatchBytes = 64 * 1024;

template <typename Integer>
void appendNumber(QByteArray& out, Integer n) {
    static_assert(std::is_integral_v<Integer>);
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, n);
    out.append(buf, r.ptr - buf);
}

struct Section {
    QList<int> part;          // 1-based part numbers (empty: the whole message)
    QByteArray kind;          // "", HEADER, TEXT, MIME, HEADER.FIELDS, HEADER.FIELDS.NOT
    QSet<QByteArray> fields;  // lower case
    QByteArray text;          // as the client wrote it, for the response name
};

struct FetchItem {
    enum Kind {
        Flags,
        InternalDate,
        Size,
        Uid,
        Modseq,
        Envelope,
        BodyStructure,
        Body,
        BodySection,
        Rfc822,
        Rfc822Header,
        Rfc822Text,
        Binary,
        BinarySize
    } kind;
    Section section;
    bool peek = false;
    qint64 partialStart = -1, partialLength = -1;
};

// Bare LFs become CRLF (RFC 9051: lines end in CRLF; sizes and offsets match RFC822.SIZE).
// Local: whether a byte gets a CR depends only on the byte before it, so normalising a
// prefix of a file gives a prefix of the normalised file (readHeaderBlock relies on it).
// Scans with memchr and copies runs between bare LFs whole.
QByteArray normalizeCrlf(const QByteArray& in) {
    const char* const data = in.constData();
    const qsizetype n = in.size();
    auto nextBare = [&](qsizetype from) -> qsizetype {
        while (from < n) {
            const void* hit = std::memchr(data + from, '\n', size_t(n - from));
            if (!hit) return -1;
            const qsizetype at = static_cast<const char*>(hit) - data;
            if (at == 0 || data[at - 1] != '\r') return at;
            from = at + 1;
        }
        return -1;
    };
    qsizetype bare = nextBare(0);
    if (bare < 0) return in;
    QByteArray out;
    out.reserve(n + n / 40);
    qsizetype copied = 0;
    while (bare >= 0) {
        out.append(data + copied, bare - copied);
        out.append("\r\n", 2);
        copied = bare + 1;
        bare = nextBare(copied);
    }
    out.append(data + copied, n - copied);
    return out;
}

// The whole file, read into one buffer of the file's size (a file that grew meanwhile is
// read to its end); empty when it cannot be read.
QByteArray readWhole(int fd, const QString& path) {
    return readAll(fd, std::numeric_limits<qint64>::max(), path).valueOr({});
}

// The start of the file normalised to CRLF, through the blank line that ends the header
// block (the whole file when it has none), read in growing chunks: the same bytes as the
// start of normalizeCrlf(readWhole(f)), and the same header end (mail::parseHeader).
QByteArray readHeaderBlock(int fd) {
    QByteArray raw;
    qint64 chunk = 16 * 1024;
    for (;;) {
        const QByteArray more = readUpTo(fd, chunk);
        raw += more;
        // (A file that ends just at a chunk's end takes one more, empty, read.)
        const bool end = more.size() < chunk;
        QByteArray norm = normalizeCrlf(raw);
        qsizetype bodyAt = norm.size();
        mail::parseHeader(norm, &bodyAt);
        if (end || bodyAt < norm.size()) return norm;
        chunk *= 2;
    }
}

std::optional<Section> parseSection(const QByteArray& inside) {
    Section s;
    s.text = inside;
    // Leading part numbers "1.2.3" (each followed by '.' or the end), read in place.
    qsizetype pos = 0;
    while (pos < inside.size() && inside.at(pos) >= '0' && inside.at(pos) <= '9') {
        if (s.part.size() >= kMaxSectionParts) return std::nullopt;
        qsizetype end = pos;
        while (end < inside.size() && inside.at(end) >= '0' && inside.at(end) <= '9') ++end;
        if (end - pos > 6) return std::nullopt;
        bool ok = false;
        const int n = QByteArrayView(inside).sliced(pos, end - pos).toInt(&ok);
        if (!ok || n <= 0) return std::nullopt;
        s.part << n;
        pos = end;
        if (pos < inside.size() && inside.at(pos) == '.')
            ++pos;
        else if (pos < inside.size())
            return std::nullopt;
    }
    const QByteArray rest = inside.mid(pos);
    const qsizetype sp = rest.indexOf(' ');
    const QByteArray kind = (sp < 0 ? rest : rest.left(sp)).toUpper();
    if (kind == "HEADER.FIELDS" || kind == "HEADER.FIELDS.NOT") {
        const QByteArray list = rest.mid(sp + 1).trimmed();
        if (sp < 0 || !list.startsWith('(') || !list.endsWith(')')) return std::nullopt;
        for (const QByteArray& f : list.mid(1, list.size() - 2).split(' '))
            if (!f.isEmpty())
                s.fields.insert((f.startsWith('"') && f.endsWith('"') ? f.mid(1, f.size() - 2) : f).toLower());
        if (s.fields.isEmpty()) return std::nullopt;
    } else if (sp >= 0 || !(kind.isEmpty() || kind == "HEADER" || kind == "TEXT" || kind == "MIME")) {
        return std::nullopt;
    }
    if (kind == "MIME" && s.part.isEmpty()) return std::nullopt;
    s.kind = kind;
    return s;
}

// Parses one item atom such as BODY.PEEK[1.HEADER.FIELDS (SUBJECT)]<0.100>.
std::optional<FetchItem> parseItem(const QByteArray& atomIn) {
    const QByteArray atom = atomIn;
    const QByteArray upper = atom.toUpper();
    FetchItem it{};
    if (upper == "FLAGS")
        it.kind = FetchItem::Flags;
    else if (upper == "INTERNALDATE")
        it.kind = FetchItem::InternalDate;
    else if (upper == "RFC822.SIZE")
        it.kind = FetchItem::Size;
    else if (upper == "UID")
        it.kind = FetchItem::Uid;
    else if (upper == "MODSEQ")
        it.kind = FetchItem::Modseq;
    else if (upper == "ENVELOPE")
        it.kind = FetchItem::Envelope;
    else if (upper == "BODYSTRUCTURE")
        it.kind = FetchItem::BodyStructure;
    else if (upper == "BODY")
        it.kind = FetchItem::Body;
    else if (upper == "RFC822")
        it.kind = FetchItem::Rfc822;
    else if (upper == "RFC822.HEADER")
        it.kind = FetchItem::Rfc822Header;
    else if (upper == "RFC822.TEXT")
        it.kind = FetchItem::Rfc822Text;
    else if (upper.startsWith("BODY[") || upper.startsWith("BODY.PEEK[")) {
        it.kind = FetchItem::BodySection;
        it.peek = upper.startsWith("BODY.PEEK[");
        const qsizetype open = atom.indexOf('[');
        const qsizetype close = atom.lastIndexOf(']');
        if (close < open) return std::nullopt;
        auto sec = parseSection(atom.mid(open + 1, close - open - 1));
        if (!sec) return std::nullopt;
        it.section = *sec;
        const QByteArray tail = atom.mid(close + 1);
        if (!tail.isEmpty()) {
            // <origin.count>
            if (!tail.startsWith('<') || !tail.endsWith('>')) return std::nullopt;
            // RFC 9051 9: partial = "<" number64 "." nz-number64 ">" (digits only, 63 bits).
            const QList<QByteArray> p = tail.mid(1, tail.size() - 2).split('.');
            if (p.size() != 2) return std::nullopt;
            const auto start = parseNumber(p.at(0), kMaxNumber64);
            const auto length = parseNumber(p.at(1), kMaxNumber64);
            if (!start || !length || *length == 0) return std::nullopt;
            it.partialStart = qint64(*start);
            it.partialLength = qint64(*length);
        }
    } else if (auto b = parseBinaryItem(atom)) {
        it.kind = b->sizeOnly ? FetchItem::BinarySize : FetchItem::Binary;
        it.peek = b->peek;
        it.section.part = b->part;
        it.section.text = b->sectionText;
        it.partialStart = b->partialStart;
        it.partialLength = b->partialLength;
    } else {
        return std::nullopt;
    }
    return it;
}

QByteArray nstring(const QByteArray& s) {
    return s.isNull() ? QByteArray("NIL") : quoteString(s);
}

QByteArray addressList(const QByteArray& raw) {
    if (raw.isEmpty()) return "NIL";
    const QList<mail::Address> list = mail::parseAddressList(raw);
    if (list.isEmpty()) return "NIL";
    // RFC 9051 7.5.2 (RFC 3501 7.4.2) address: (name adl mailbox host). A group is a start
    // marker (NIL NIL "group phrase" NIL), its members, and an end marker (NIL NIL NIL NIL);
    // adl is an obsolete source route; the name of "user@host (Real Name)" is the comment.
    QByteArray out = "(";
    for (const mail::Address& a : list) {
        if (a.groupStart)
            out += "(NIL NIL " + quoteString(a.rawName) + " NIL)";
        else if (a.groupEnd)
            out += "(NIL NIL NIL NIL)";
        else
            out += '(' + (a.rawName.isEmpty() ? QByteArray("NIL") : quoteString(a.rawName)) + ' ' +
                   (a.route.isEmpty() ? QByteArray("NIL") : quoteString(a.route.toUtf8())) + ' ' +
                   quoteString(a.local.toUtf8()) + ' ' +
                   (a.domain.isEmpty() ? QByteArray("NIL") : quoteString(a.domain.toUtf8())) + ')';
    }
    return out + ')';
}

QByteArray envelope(const QByteArray& msg, qsizetype headerStart, qsizetype headerEnd) {
    const mail::Header h = mail::parseHeader(msg.mid(headerStart, headerEnd - headerStart));
    auto field = [&](const char* n) {
        const QByteArray v = h.value(n);
        return v.isEmpty() && h.values(n).isEmpty() ? QByteArray() : v;
    };
    QByteArray from = field("from");
    QByteArray sender = field("sender");
    QByteArray replyTo = field("reply-to");
    if (sender.isEmpty()) sender = from;
    if (replyTo.isEmpty()) replyTo = from;
    return '(' + nstring(field("date")) + ' ' + nstring(field("subject")) + ' ' + addressList(from) + ' ' +
           addressList(sender) + ' ' + addressList(replyTo) + ' ' + addressList(field("to")) + ' ' +
           addressList(field("cc")) + ' ' + addressList(field("bcc")) + ' ' + nstring(field("in-reply-to")) + ' ' +
           nstring(field("message-id")) + ')';
}

QByteArray params(const mail::MimeParams& p) {
    if (p.list.isEmpty()) return "NIL";
    QByteArray out = "(";
    for (const auto& [k, v] : p.list) {
        if (out.size() > 1) out += ' ';
        out += quoteString(k.toUpper().toUtf8()) + ' ' + quoteString(v.toUtf8());
    }
    return out + ')';
}

QByteArray strOrNil(const QString& s) {
    return s.isEmpty() ? QByteArray("NIL") : quoteString(s.toUtf8());
}

QByteArray bodyStructure(const QByteArray& msg, const MimePart& p, bool extended) {
    if (p.isMultipart()) {
        QByteArray out = "(";
        if (p.children.isEmpty()) {
            // An empty multipart: describe it as a text/plain part (what Dovecot does too).
            MimePart empty;
            empty.bodyStart = p.bodyStart;
            empty.bodyEnd = p.bodyEnd;
            out += bodyStructure(msg, empty, extended);
        }
        for (const MimePart& c : p.children) out += bodyStructure(msg, c, extended);
        out += ' ' + quoteString(p.subtype.toUpper().toUtf8());
        if (extended)
            out += ' ' + params(p.params) + ' ' +
                   (p.disposition.isEmpty() ? QByteArray("NIL")
                                            : '(' + quoteString(p.disposition.toUpper().toUtf8()) + ' ' +
                                                  params(p.dispositionParams) + ')') +
                   ' ' + strOrNil(p.language) + ' ' + strOrNil(p.location);
        return out + ')';
    }
    const qint64 size = p.bodyEnd - p.bodyStart;
    QByteArray out = '(' + quoteString(p.type.toUpper().toUtf8()) + ' ' + quoteString(p.subtype.toUpper().toUtf8()) +
                     ' ' + params(p.params) + ' ' + strOrNil(p.id) + ' ' + strOrNil(p.description) + ' ' +
                     quoteString(p.encoding.toUpper().toUtf8()) + ' ' + QByteArray::number(size);
    if (p.isMessage() && !p.children.isEmpty()) {
        const MimePart& inner = p.children.first();
        out += ' ' + envelope(msg, inner.headerStart, inner.headerEnd) + ' ' + bodyStructure(msg, inner, extended) +
               ' ' + QByteArray::number(p.lines);
    } else if (p.type == u"text") {
        out += ' ' + QByteArray::number(p.lines);
    }
    if (extended)
        out += ' ' + strOrNil(p.md5) + ' ' +
               (p.disposition.isEmpty()
                    ? QByteArray("NIL")
                    : '(' + quoteString(p.disposition.toUpper().toUtf8()) + ' ' + params(p.dispositionParams) + ')') +
               ' ' + strOrNil(p.language) + ' ' + strOrNil(p.location);
    return out + ')';
}

// Header lines (with their folding) whose names are (or are not) in `names` (lower case), plus the blank line.
QByteArray headerFields(const QByteArray& msg, qsizetype start, qsizetype end, const QSet<QByteArray>& names,
                        bool exclude) {
    QByteArray out;
    qsizetype pos = start;
    bool keep = false;
    while (pos < end) {
        qsizetype le = msg.indexOf('\n', pos);
        le = le < 0 || le >= end ? end : le + 1;
        const QByteArray line = msg.mid(pos, le - pos);
        if (line == "\r\n" || line == "\n") break;
        if (!line.isEmpty() && line.at(0) != ' ' && line.at(0) != '\t') {
            const qsizetype colon = line.indexOf(':');
            const QByteArray name = colon > 0 ? line.left(colon).trimmed().toLower() : QByteArray();
            keep = colon > 0 && (names.contains(name) != exclude);
        }
        if (keep) out += line;
        pos = le;
    }
    return out + "\r\n";
}

QByteArray literalHead(qsizetype size) {
    return '{' + QByteArray::number(size) + "}\r\n";
}

struct FetchJob {
    QList<int> indexes;
    qsizetype next = 0;
    QList<FetchItem> items;
    bool needMessage = false;  // some item needs the file's bytes
    bool headerOnly = false;   // ... but only its header block (BODY[HEADER], BODY[HEADER.FIELDS ...], RFC822.HEADER)
    bool needParsed = false;   // ENVELOPE/BODY/BODYSTRUCTURE: from the index cache, else parsed
    bool setsSeen = false;
    bool uid = false;   // UID FETCH
    bool gone = false;  // a requested message no longer exists
    // The message whose response is being sent, item by item (see fetchTurn).
    int current = -1;  // -1: between messages
    qsizetype nextItem = 0;
    bool firstItem = true, flagsSent = false, modseqSent = false, seenSet = false;
    QByteArray out;  // response text not yet handed to the connection (see flush)
    QByteArray msg;  // the message normalised to CRLF, or only its header block (headerOnly)
    mail::MimePart root;
    bool parsed = false;
    qsizetype bodyAt = -1;  // where the header block ends (the blank line included)
    std::optional<MailboxIndex::Cached> cache;
    // The index's rows for UIDs [aheadFirst, aheadLast], read ahead in one query (see
    // cachedTexts); empty range when none are.
    QHash<quint32, MailboxIndex::CachedRow> ahead;
    quint32 aheadFirst = 1, aheadLast = 0;
    const mail::MimePart& tree() {  // parsed once, when an item needs the structure
        if (!parsed) {
            root = mail::parseMime(msg);
            parsed = true;
        }
        return root;
    }
    qsizetype headerEnd() {  // the root's headerEnd, without parsing the MIME structure
        if (parsed) return root.headerEnd;
        if (bodyAt < 0) {
            bodyAt = msg.size();
            mail::parseHeader(msg, &bodyAt);
        }
        return bodyAt;
    }
    void endMessage() {
        current = -1;
        msg.clear();
        root = mail::MimePart();
        parsed = false;
        bodyAt = -1;
        cache.reset();
    }
};

// Hands the gathered response text to the connection.
void flush(ImapSession& s, FetchJob& job) {
    if (!job.out.isEmpty()) s.sendRaw(std::exchange(job.out, QByteArray()));
}

bool isHeaderOnly(const FetchItem& it) {
    if (it.kind == FetchItem::Rfc822Header) return true;
    return it.kind == FetchItem::BodySection && it.section.part.isEmpty() &&
           (it.section.kind == "HEADER" || it.section.kind == "HEADER.FIELDS" ||
            it.section.kind == "HEADER.FIELDS.NOT");
}

// The data of BODY[section]; the MIME structure is parsed only for sections with part numbers.
std::optional<QByteArray> sectionData(FetchJob& job, const Section& s) {
    const QByteArray& msg = job.msg;
    if (s.part.isEmpty()) {
        if (s.kind.isEmpty()) return msg;
        if (s.kind == "HEADER") return msg.left(job.headerEnd());
        if (s.kind == "TEXT") return msg.mid(job.headerEnd());
        return headerFields(msg, 0, job.headerEnd(), s.fields, s.kind == "HEADER.FIELDS.NOT");
    }
    const auto ref = resolvePart(job.tree(), s.part);  // RFC 9051 6.4.5 (imap_binary.h)
    if (!ref) return std::nullopt;
    const MimePart* part = ref->part;
    if (s.kind.isEmpty()) return msg.mid(part->bodyStart, part->bodyEnd - part->bodyStart);
    if (s.kind == "MIME") return msg.mid(part->headerStart, part->headerEnd - part->headerStart);
    // HEADER/TEXT after part numbers address the message of a message/rfc822 part.
    const MimePart* inner = ref->message;
    if (!inner) return std::nullopt;
    if (s.kind == "HEADER") return msg.mid(inner->headerStart, inner->headerEnd - inner->headerStart);
    if (s.kind == "TEXT") return msg.mid(inner->bodyStart, inner->bodyEnd - inner->bodyStart);
    return headerFields(msg, inner->headerStart, inner->headerEnd, s.fields, s.kind == "HEADER.FIELDS.NOT");
}

// BODY[section]<partial>: its name and literal head; returns the literal's bytes.
QByteArray appendBodySection(FetchJob& job, const FetchItem& it) {
    QByteArray& out = job.out;
    auto data = sectionData(job, it.section);
    out += "BODY[" + it.section.text + ']';
    if (!data) {  // a part that does not exist
        out += " NIL";
        return {};
    }
    if (it.partialStart >= 0) {
        out += '<' + QByteArray::number(it.partialStart) + '>';
        const QByteArray part =
            data->mid(qsizetype(std::min<qint64>(it.partialStart, data->size())), qsizetype(it.partialLength));
        out += ' ' + literalHead(part.size());
        return part;
    }
    out += ' ' + literalHead(data->size());
    return *data;
}

// BINARY[section]<partial> (its literal8 whole) or BINARY.SIZE[section].
void appendBinary(FetchJob& job, const FetchItem& it) {
    QByteArray& out = job.out;
    const BinaryResult b = binarySection(job.msg, job.tree(), it.section.part);
    const bool exists = b.status == BinaryResult::Status::Ok;  // UnknownCte was refused before
    if (it.kind == FetchItem::BinarySize) {
        out += "BINARY.SIZE[" + it.section.text + "] ";
        appendNumber(out, b.data.size());
        return;
    }
    out += "BINARY[" + it.section.text + ']';
    if (!exists) {
        out += " NIL";
        return;
    }
    if (it.partialStart >= 0) {
        out += '<' + QByteArray::number(it.partialStart) + '>';
        out += ' ' + binaryLiteral(b.data.mid(qsizetype(std::min<qint64>(it.partialStart, b.data.size())),
                                              qsizetype(it.partialLength)));
        return;
    }
    out += ' ' + binaryLiteral(b.data);
}

// Appends one item of message `i`'s response to job.out ("UID 7", "BODY[1] {3}\r\n") and
// returns the literal's bytes that follow it (empty when none); they are built for this
// item only (shared with the message where possible).
QByteArray appendItem(MailboxView& view, int i, FetchJob& job, const FetchItem& it) {
    const Message& m = view.messages().at(i);
    QByteArray& out = job.out;
    switch (it.kind) {
        case FetchItem::Flags:
            job.flagsSent = true;
            out += "FLAGS ";
            out += view.flagListText(i);
            return {};
        case FetchItem::Uid:
            out += "UID ";
            appendNumber(out, m.uid);
            return {};
        case FetchItem::Modseq:
            job.modseqSent = true;
            out += "MODSEQ (";
            appendNumber(out, m.modseq);
            out += ')';
            return {};
        case FetchItem::InternalDate:
            out += "INTERNALDATE \"" + imapDateTime(m.mtimeMs) + '"';
            return {};
        case FetchItem::Size:
            out += "RFC822.SIZE ";
            appendNumber(out, m.vsize);
            return {};
        case FetchItem::Envelope:
            out += "ENVELOPE " + job.cache->envelope;
            return {};
        case FetchItem::Body:
            out += "BODY " + job.cache->body;
            return {};
        case FetchItem::BodyStructure:
            out += "BODYSTRUCTURE " + job.cache->bodyStructure;
            return {};
        case FetchItem::Rfc822:
            out += "RFC822 " + literalHead(job.msg.size());
            return job.msg;
        case FetchItem::Rfc822Header:
        case FetchItem::Rfc822Text: {
            const QByteArray data =
                it.kind == FetchItem::Rfc822Header ? job.msg.left(job.headerEnd()) : job.msg.mid(job.headerEnd());
            out += (it.kind == FetchItem::Rfc822Header ? "RFC822.HEADER " : "RFC822.TEXT ") + literalHead(data.size());
            return data;
        }
        case FetchItem::BodySection:
            return appendBodySection(job, it);
        case FetchItem::Binary:
        case FetchItem::BinarySize:
            appendBinary(job, it);
            return {};
    }
    return {};
}

// FETCH's arguments as the steps of Commands::fetch share them.
struct FetchArgs {
    QList<int> indexes;       // the messages named, ascending
    QList<QByteArray> atoms;  // the item atoms, macros expanded
    std::optional<quint64> changedSince;
    bool vanished = false;
};

// The item atoms of args[1]: a parenthesised list of atoms, a macro (ALL, FAST, FULL) or
// one item. Sends BAD and returns false when they are not atoms.
bool parseFetchAtoms(ImapSession& s, const ImapSession::Request& r, FetchArgs& a) {
    const Token& itemsTok = r.args.at(1);
    if (itemsTok.kind == Token::Kind::List) {
        for (const Token& t : itemsTok.items) {
            if (t.kind != Token::Kind::Atom) {
                s.bad(r, QStringLiteral("Bad FETCH item"));
                return false;
            }
            a.atoms << t.text;
        }
    } else if (itemsTok.kind == Token::Kind::Atom) {
        const QByteArray m = itemsTok.text.toUpper();
        if (m == "ALL")
            a.atoms = {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"};
        else if (m == "FAST")
            a.atoms = {"FLAGS", "INTERNALDATE", "RFC822.SIZE"};
        else if (m == "FULL")
            a.atoms = {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"};
        else
            a.atoms << itemsTok.text;
    } else {
        s.bad(r, QStringLiteral("Bad FETCH items"));
        return false;
    }
    return true;
}

// Modifiers (RFC 7162 3.1.4, 3.2.6): (CHANGEDSINCE modseq [VANISHED]) in args[2]. Sends BAD
// and returns false when they are malformed or not allowed here.
bool parseFetchModifiers(ImapSession& s, const ImapSession::Request& r, const MailboxView& v, FetchArgs& a) {
    if (r.args.size() > 3 || (r.args.size() == 3 && r.args.at(2).kind != Token::Kind::List)) {
        s.bad(r, QStringLiteral("Usage: FETCH set items [(CHANGEDSINCE modseq [VANISHED])]"));
        return false;
    }
    if (r.args.size() < 3) return true;
    const QList<Token>& mods = r.args.at(2).items;
    for (qsizetype i = 0; i < mods.size(); ++i) {
        if (mods.at(i).isAtom("CHANGEDSINCE") && i + 1 < mods.size() && !a.changedSince) {
            a.changedSince = parseModseq(mods.at(++i), true);
            if (!a.changedSince) {
                s.bad(r, QStringLiteral("CHANGEDSINCE needs a mod-sequence"));
                return false;
            }
        } else if (mods.at(i).isAtom("VANISHED") && !a.vanished) {
            a.vanished = true;
        } else {
            s.bad(r, QStringLiteral("Unknown FETCH modifier"));
            return false;
        }
    }
    if (a.vanished && (!r.uid || !Commands::qresync(s) || !a.changedSince)) {
        s.bad(r, QStringLiteral("VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC"));
        return false;
    }
    if (a.changedSince && v.highestModseq() == 0) {
        s.bad(r, QStringLiteral("This mailbox has no mod-sequences (NOMODSEQ)"));
        return false;
    }
    return true;
}

// FETCH set items [modifiers], checked in that order. Sends BAD and returns false on an error.
bool parseFetchArgs(ImapSession& s, const ImapSession::Request& r, const MailboxView& v, FetchArgs& a) {
    if (r.args.size() < 2 || r.args.at(0).kind != Token::Kind::Atom) {
        s.bad(r, QStringLiteral("Usage: FETCH set items"));
        return false;
    }
    auto set = resolveSequenceSet(r.args.at(0).text, v, r.uid);
    if (!set) {
        s.bad(r, QStringLiteral("Bad sequence set"));
        return false;
    }
    a.indexes = *set;
    return parseFetchAtoms(s, r, a) && parseFetchModifiers(s, r, v, a);
}

// CHANGEDSINCE: only the messages changed after the mod-sequence, with MODSEQ implied
// (RFC 7162 3.1.4.1); turns CONDSTORE on.
void applyChangedSince(ImapSession& s, const MailboxView& v, quint64 changedSince, FetchArgs& a) {
    s.enableCondstore();
    bool listed = false;
    for (const QByteArray& atom : a.atoms) listed = listed || atom.toUpper() == "MODSEQ";
    if (!listed) a.atoms << "MODSEQ";  // implied (RFC 7162 3.1.4.1)
    QList<int> changed;
    for (int i : a.indexes)
        if (v.messages().at(i).modseq > changedSince) changed << i;
    a.indexes = changed;
}

// VANISHED (EARLIER) for the UIDs of the set expunged since `changedSince` (RFC 7162 3.2.6).
// Sends BAD and returns false when the set is not a UID set.
bool reportVanished(ImapSession& s, const ImapSession::Request& r, const MailboxView& v, quint64 changedSince) {
    const quint32 last = v.uidNext() > 1 ? v.uidNext() - 1 : 1;
    auto ranges = parseUidRanges(r.args.at(0).text, last);
    if (!ranges) {
        s.bad(r, QStringLiteral("Bad sequence set"));
        return false;
    }
    const UidRanges reported = vanishedSince(v, changedSince, *ranges);
    if (!reported.isEmpty()) s.untagged("VANISHED (EARLIER) " + rangesText(reported));
    return true;
}

// Parses the item atoms into the job and works out what each message needs (the file, only
// its header block, the parsed structure; whether \Seen is set). Sends BAD and returns false
// on an unknown item, or MODSEQ in a mailbox without mod-sequences.
bool addFetchItems(ImapSession& s, const ImapSession::Request& r, const MailboxView& v, const QList<QByteArray>& atoms,
                   FetchJob& job) {
    bool hasUid = false, enablesCondstore = false;
    for (const QByteArray& a : atoms) {
        auto it = parseItem(a);
        if (!it) {
            s.bad(r, QStringLiteral("Unknown or malformed FETCH item %1").arg(QString::fromUtf8(a.left(60))));
            return false;
        }
        if (it->kind == FetchItem::Uid) hasUid = true;
        if (it->kind == FetchItem::Modseq) {
            if (v.highestModseq() == 0) {
                s.bad(r, QStringLiteral("This mailbox has no mod-sequences (NOMODSEQ)"));
                return false;
            }
            enablesCondstore = true;
        }
        if (it->kind == FetchItem::Envelope || it->kind == FetchItem::BodyStructure || it->kind == FetchItem::Body) {
            job.needParsed = true;
        } else if (it->kind > FetchItem::Body) {
            job.headerOnly = (job.headerOnly || !job.needMessage) && isHeaderOnly(*it);
            job.needMessage = true;
        }
        if (((it->kind == FetchItem::BodySection || it->kind == FetchItem::Binary) && !it->peek) ||
            it->kind == FetchItem::Rfc822 || it->kind == FetchItem::Rfc822Text)
            job.setsSeen = !v.readOnly();
        job.items << *it;
    }
    if (r.uid && !hasUid) job.items.prepend(FetchItem{FetchItem::Uid, {}, false, -1, -1});
    if (enablesCondstore) s.enableCondstore();  // (the first time: * OK [HIGHESTMODSEQ n], RFC 7162 3.1)
    return true;
}

// Opens message i's file, or, when another session renamed it (new flags), the same message
// under its new name. False when it is gone.
// *path: the name it was opened under.
FileHandle openMessageFile(const MailboxView& view, int i, QString* path) {
    *path = view.path(i);
    FileHandle f(openForReading(*path));
    if (f.valid()) return f;
    const auto file = view.currentFile(i);
    if (!file) return f;
    *path = view.dir() + (file->second ? QStringLiteral("/new/") : QStringLiteral("/cur/")) + file->first;
    return FileHandle(openForReading(*path));
}

// The index's ENVELOPE/BODY/BODYSTRUCTURE texts for message i (the job's current one:
// job.next is the position after it). From the rows read ahead when its UID is in their
// range; else, when the set's next messages have UIDs close above it (a run such as the
// newest 50), their rows are read in one range query (one statement, not one per
// message); else its one row.
constexpr qsizetype kReadAhead = 64;
std::optional<MailboxIndex::Cached> cachedTexts(const MailboxView& view, int i, MailboxIndex* idx, FetchJob& job) {
    const Message& m = view.messages().at(i);
    auto fromAhead = [&]() -> std::optional<MailboxIndex::Cached> {
        auto it = job.ahead.constFind(m.uid);
        if (it == job.ahead.cend() || it->base != m.base) return std::nullopt;
        return it->texts;
    };
    if (m.uid >= job.aheadFirst && m.uid <= job.aheadLast) return fromAhead();
    quint32 last = m.uid;
    qsizetype wanted = 1;
    const qsizetype end = std::min(job.indexes.size(), job.next + kReadAhead - 1);
    for (qsizetype k = job.next; k < end; ++k) {
        const int j = job.indexes.at(k);
        if (j < 0 || j >= view.messages().size() || view.messages().at(j).uid < m.uid) continue;
        last = std::max(last, view.messages().at(j).uid);
        ++wanted;
    }
    if (wanted < 4 || qint64(last) - qint64(m.uid) >= 2 * wanted) return idx->cached(m.uid, m.base);
    job.ahead = idx->cachedRange(m.uid, last);
    job.aheadFirst = m.uid;
    job.aheadLast = last;
    return fromAhead();
}

// Reads what the items of message i need into job.msg, and ENVELOPE/BODY/BODYSTRUCTURE from
// the index when it has them, else from one parse of the file, whose results then go into
// the index. False when the message is gone.
bool loadMessage(const MailboxView& view, int i, MailboxIndex* idx, FetchJob& job) {
    const Message& m = view.messages().at(i);
    if (idx) job.cache = cachedTexts(view, i, idx, job);
    if (job.needMessage || (job.needParsed && !job.cache)) {
        QString path;
        const FileHandle f = openMessageFile(view, i, &path);
        if (!f.valid()) return false;
        // Header items alone need only the header block, unless the structure must
        // be parsed for the index (then the whole message is read after all).
        if (job.headerOnly && !(job.needParsed && !job.cache))
            job.msg = readHeaderBlock(f.fd());
        else
            job.msg = normalizeCrlf(readWhole(f.fd(), path));
    }
    if (job.needParsed && !job.cache) {
        const mail::MimePart& root = job.tree();
        job.cache = MailboxIndex::Cached{envelope(job.msg, root.headerStart, root.headerEnd),
                                         bodyStructure(job.msg, root, false), bodyStructure(job.msg, root, true)};
        if (idx) idx->storeCached(m.uid, m.base, *job.cache);
    }
    return true;
}

// RFC 3516 4.3: a transfer encoding we cannot decode fails the command; checked before
// any of the message's response is sent.
bool hasUnknownCte(FetchJob& job) {
    for (const FetchItem& it : job.items) {
        if ((it.kind == FetchItem::Binary || it.kind == FetchItem::BinarySize) &&
            binarySection(job.msg, job.tree(), it.section.part).status == BinaryResult::Status::UnknownCte)
            return true;
    }
    return false;
}

enum class MessageStart { Started, Skipped, Failed };

// Begins message i's response: loads what its items need, sets \Seen where an item asks for
// it and sends "* n FETCH (". Skipped: the message is gone (job.gone is set when it was
// expunged); Failed: the command ended with NO.
MessageStart startMessage(ImapSession& s, MailboxView& view, int i, MailboxIndex* idx, FetchJob& job,
                          const ImapSession::Request& req) {
    if (i >= view.messages().size()) return MessageStart::Skipped;
    if (view.messages().at(i).expunged || !loadMessage(view, i, idx, job)) {
        // Expunged by another session (not reported yet, or meanwhile): its data is
        // omitted (RFC 2180 4.1.2).
        job.gone = true;
        return MessageStart::Skipped;
    }
    if (hasUnknownCte(job)) {
        job.endMessage();
        flush(s, job);
        s.no(req, QStringLiteral("Unknown Content-Transfer-Encoding in message %1").arg(i + 1), "UNKNOWN-CTE");
        return MessageStart::Failed;
    }
    job.seenSet = false;
    if (job.setsSeen && !view.messages().at(i).flags.contains(QLatin1Char('S'))) {
        auto change = view.changeFlags(i, 1, QStringLiteral("S"));  // fails: expunged meanwhile
        job.seenSet = change && change->changed;
    }
    job.current = i;
    job.nextItem = 0;
    job.firstItem = true;
    job.flagsSent = job.modseqSent = false;
    job.out += "* ";
    appendNumber(job.out, i + 1);
    job.out += " FETCH (";
    return MessageStart::Started;
}

// Ends the current message's response: FLAGS when \Seen was set and FLAGS not asked for,
// and, once CONDSTORE is on, the new mod-sequence (RFC 7162 3.1.4), then ")".
void endMessageResponse(ImapSession& s, const MailboxView& view, FetchJob& job) {
    const int i = job.current;
    QByteArrayList tail;
    if (job.setsSeen && !job.flagsSent) tail << "FLAGS " + view.flagListText(i);
    if (job.seenSet && Commands::condstore(s) && !job.modseqSent) {
        bool uidSent = false;
        for (const FetchItem& it : job.items) uidSent = uidSent || it.kind == FetchItem::Uid;
        if (!uidSent) tail << "UID " + QByteArray::number(view.messages().at(i).uid);
        tail << "MODSEQ (" + QByteArray::number(view.messages().at(i).modseq) + ')';
    }
    if (!tail.isEmpty() && !job.firstItem) job.out += ' ';
    job.out += tail.join(' ');
    job.out += ")\r\n";
    job.endMessage();
}

// One turn of runWithBackpressure: sends items until the output is above the high-water
// mark (false: call again) or the command is answered (true).
bool fetchTurn(ImapSession& s, FetchJob& job, const ImapSession::Request& req) {
    MailboxView& view = *Commands::selected(s);
    constexpr qint64 kHighWater = 1 << 20;
    std::shared_ptr<MailboxIndex> batchIndex = job.needParsed ? view.index() : nullptr;
    MailboxIndex::Batch batch(batchIndex.get());  // this turn's cache writes in one transaction
    for (;;) {
        if (job.out.size() >= kBatchBytes) flush(s, job);
        if (Commands::io(s).pendingOutput() + job.out.size() > kHighWater) {
            flush(s, job);
            return false;
        }
        if (job.current < 0) {
            if (job.next >= job.indexes.size()) break;
            const int i = job.indexes.at(job.next++);
            // The index is acquired once per turn, not per message.
            const MessageStart started = startMessage(s, view, i, batchIndex.get(), job, req);
            if (started == MessageStart::Failed) return true;  // (answered, the text before it sent)
            if (started == MessageStart::Skipped) continue;
        }
        if (job.nextItem < job.items.size()) {
            if (!job.firstItem) job.out += ' ';
            const QByteArray literal = appendItem(view, job.current, job, job.items.at(job.nextItem++));
            job.firstItem = false;
            if (literal.size() > kBatchBytes) {  // sent as it is, not copied
                flush(s, job);
                s.sendRaw(literal);
            } else {
                job.out += literal;
            }
            continue;
        }
        endMessageResponse(s, view, job);
    }
    flush(s, job);
    if (job.gone && !job.uid) {
        // RFC 5530 EXPUNGEISSUED (as RFC 2180 4.1.2 suggests): the client should NOOP and
        // look again; a UID FETCH just omits what no longer exists.
        s.no(req, QStringLiteral("Some of the requested messages no longer exist"), "EXPUNGEISSUED");
        return true;
    }
    s.ok(req, QStringLiteral("FETCH completed"));
    return true;
}

}  // namespace

void Commands::fetch(ImapSession& s, const R& r) {
    MailboxView& v = *selected(s);
    FetchArgs a;
    if (!parseFetchArgs(s, r, v, a)) return;
    if (a.changedSince) applyChangedSince(s, v, *a.changedSince, a);
    if (a.vanished && !reportVanished(s, r, v, *a.changedSince)) return;
    auto job = std::make_shared<FetchJob>();
    job->indexes = a.indexes;
    if (!addFetchItems(s, r, v, a.atoms, *job)) return;
    job->uid = r.uid;
    const R req = r;
    // One message's response is sent item by item, with the output checked between items:
    // a client asking for BODY[] a thousand times over gets its answer at the pace it reads
    // it, and the process never holds more than one item's data (plus the message) at once.
    s.runWithBackpressure([&s, job, req]() { return fetchTurn(s, *job, req); });
}
}  // namespace postern::imap
