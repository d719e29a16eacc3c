// commands/fetch.cpp — FETCH: FLAGS INTERNALDATE RFC822.SIZE UID ENVELOPE
// BODYSTRUCTURE BODY BODY[section]<partial> BODY.PEEK RFC822 RFC822.HEADER
// RFC822.TEXT and the ALL/FAST/FULL macros (RFC 9051 6.4.5, 7.5.2), and
// BINARY[section]<partial> BINARY.PEEK BINARY.SIZE (RFC 3516; imap_binary.h),
// MODSEQ and the (CHANGEDSINCE n [VANISHED]) modifiers (RFC 7162).
// ENVELOPE/BODY/BODYSTRUCTURE come from the folder's index when cached there.
// Messages are read whole (bounded by the message size limit), normalised to
// CRLF so that sizes and offsets match RFC822.SIZE, and answered one message
// at a time with output backpressure (runWithBackpressure), so FETCH 1:*
// BODY[] of a large mailbox never sits in memory at once.
// Security: section numbers and partial ranges are read with parseNumber()
// (digits only, overflow-checked), validated against the parsed structure and
// clamped to the data (QByteArray::mid); nothing reads outside the message.
#include "commands.h"

#include "../imap_binary.h"

#include "common/mail/message.h"

#include <QFile>
#include <memory>

namespace postern::imap {

namespace {

using mail::MimePart;

struct Section {
    QList<int> part;   // 1-based part numbers (empty: the whole message)
    QByteArray kind;   // "", HEADER, TEXT, MIME, HEADER.FIELDS, HEADER.FIELDS.NOT
    QList<QByteArray> fields;
    QByteArray text;   // as the client wrote it, for the response name
};

struct FetchItem {
    enum Kind { Flags, InternalDate, Size, Uid, Modseq, Envelope, BodyStructure, Body, BodySection, Rfc822, Rfc822Header, Rfc822Text, Binary, BinarySize } kind;
    Section section;
    bool peek = false;
    qint64 partialStart = -1, partialLength = -1;
};

QByteArray normalizeCrlf(const QByteArray& in) {
    if (!in.contains('\n')) return in;
    bool bare = false;
    for (qsizetype i = 0; i < in.size(); ++i)
        if (in.at(i) == '\n' && (i == 0 || in.at(i - 1) != '\r')) {
            bare = true;
            break;
        }
    if (!bare) return in;
    QByteArray out;
    out.reserve(in.size() + in.size() / 40);
    for (qsizetype i = 0; i < in.size(); ++i) {
        if (in.at(i) == '\n' && (i == 0 || in.at(i - 1) != '\r')) out += '\r';
        out += in.at(i);
    }
    return out;
}

std::optional<Section> parseSection(const QByteArray& inside) {
    Section s;
    s.text = inside;
    QByteArray rest = inside;
    // Leading part numbers "1.2.3" (each followed by '.' or the end).
    while (!rest.isEmpty() && rest.at(0) >= '0' && rest.at(0) <= '9') {
        qsizetype i = 0;
        while (i < rest.size() && rest.at(i) >= '0' && rest.at(i) <= '9') ++i;
        const auto n = i <= 6 ? parseNumber(rest.left(i), kMaxNumber) : std::nullopt;
        if (!n || *n == 0) return std::nullopt;
        s.part << int(*n);
        rest = rest.mid(i);
        if (rest.startsWith('.')) rest = rest.mid(1);
        else if (!rest.isEmpty()) return std::nullopt;
    }
    if (s.part.size() > 32) return std::nullopt;
    const qsizetype sp = rest.indexOf(' ');
    const QByteArray kind = (sp < 0 ? rest : rest.left(sp)).toUpper();
    if (kind == "HEADER.FIELDS" || kind == "HEADER.FIELDS.NOT") {
        const QByteArray list = rest.mid(sp + 1).trimmed();
        if (sp < 0 || !list.startsWith('(') || !list.endsWith(')')) return std::nullopt;
        for (const QByteArray& f : list.mid(1, list.size() - 2).split(' '))
            if (!f.isEmpty()) s.fields << (f.startsWith('"') && f.endsWith('"') ? f.mid(1, f.size() - 2) : f);
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
    if (upper == "FLAGS") it.kind = FetchItem::Flags;
    else if (upper == "INTERNALDATE") it.kind = FetchItem::InternalDate;
    else if (upper == "RFC822.SIZE") it.kind = FetchItem::Size;
    else if (upper == "UID") it.kind = FetchItem::Uid;
    else if (upper == "MODSEQ") it.kind = FetchItem::Modseq;
    else if (upper == "ENVELOPE") it.kind = FetchItem::Envelope;
    else if (upper == "BODYSTRUCTURE") it.kind = FetchItem::BodyStructure;
    else if (upper == "BODY") it.kind = FetchItem::Body;
    else if (upper == "RFC822") it.kind = FetchItem::Rfc822;
    else if (upper == "RFC822.HEADER") it.kind = FetchItem::Rfc822Header;
    else if (upper == "RFC822.TEXT") it.kind = FetchItem::Rfc822Text;
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

QByteArray nstring(const QByteArray& s) { return s.isNull() ? QByteArray("NIL") : quoteString(s); }

QByteArray addressList(const QByteArray& raw) {
    if (raw.isEmpty()) return "NIL";
    const QList<mail::Address> list = mail::parseAddressList(raw);
    if (list.isEmpty()) return "NIL";
    QByteArray out = "(";
    for (const mail::Address& a : list) {
        if (a.groupStart) out += "(NIL NIL " + quoteString(a.local.toUtf8()) + " NIL)";
        else if (a.groupEnd) out += "(NIL NIL NIL NIL)";
        else
            out += '(' + (a.rawName.isEmpty() ? QByteArray("NIL") : quoteString(a.rawName)) + " NIL " + quoteString(a.local.toUtf8()) + ' ' +
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
    return '(' + nstring(field("date")) + ' ' + nstring(field("subject")) + ' ' + addressList(from) + ' ' + addressList(sender) + ' ' +
           addressList(replyTo) + ' ' + addressList(field("to")) + ' ' + addressList(field("cc")) + ' ' + addressList(field("bcc")) + ' ' +
           nstring(field("in-reply-to")) + ' ' + nstring(field("message-id")) + ')';
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

QByteArray strOrNil(const QString& s) { return s.isEmpty() ? QByteArray("NIL") : quoteString(s.toUtf8()); }

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
                   (p.disposition.isEmpty() ? QByteArray("NIL") : '(' + quoteString(p.disposition.toUpper().toUtf8()) + ' ' + params(p.dispositionParams) + ')') +
                   ' ' + strOrNil(p.language) + ' ' + strOrNil(p.location);
        return out + ')';
    }
    const qint64 size = p.bodyEnd - p.bodyStart;
    QByteArray out = '(' + quoteString(p.type.toUpper().toUtf8()) + ' ' + quoteString(p.subtype.toUpper().toUtf8()) + ' ' + params(p.params) + ' ' +
                     strOrNil(p.id) + ' ' + strOrNil(p.description) + ' ' + quoteString(p.encoding.toUpper().toUtf8()) + ' ' + QByteArray::number(size);
    if (p.isMessage() && !p.children.isEmpty()) {
        const MimePart& inner = p.children.first();
        out += ' ' + envelope(msg, inner.headerStart, inner.headerEnd) + ' ' + bodyStructure(msg, inner, extended) + ' ' + QByteArray::number(p.lines);
    } else if (p.type == u"text") {
        out += ' ' + QByteArray::number(p.lines);
    }
    if (extended)
        out += ' ' + strOrNil(p.md5) + ' ' +
               (p.disposition.isEmpty() ? QByteArray("NIL") : '(' + quoteString(p.disposition.toUpper().toUtf8()) + ' ' + params(p.dispositionParams) + ')') +
               ' ' + strOrNil(p.language) + ' ' + strOrNil(p.location);
    return out + ')';
}

// Header lines (with their folding) whose names are (or are not) in `names`, plus the blank line.
QByteArray headerFields(const QByteArray& msg, qsizetype start, qsizetype end, const QList<QByteArray>& names, bool exclude) {
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
            const QByteArray name = colon > 0 ? line.left(colon).trimmed() : QByteArray();
            bool listed = false;
            for (const QByteArray& n : names)
                if (qstricmp(n.constData(), name.constData()) == 0) listed = true;
            keep = colon > 0 && (listed != exclude);
        }
        if (keep) out += line;
        pos = le;
    }
    return out + "\r\n";
}

std::optional<QByteArray> sectionData(const QByteArray& msg, const MimePart& root, const Section& s) {
    if (s.part.isEmpty()) {
        if (s.kind.isEmpty()) return msg;
        if (s.kind == "HEADER") return msg.mid(root.headerStart, root.headerEnd - root.headerStart);
        if (s.kind == "TEXT") return msg.mid(root.bodyStart, root.bodyEnd - root.bodyStart);
        return headerFields(msg, root.headerStart, root.headerEnd, s.fields, s.kind == "HEADER.FIELDS.NOT");
    }
    // Walk the numbers, remembering the last part that was addressed directly.
    const MimePart* container = &root;
    const MimePart* part = &root;
    const MimePart* msgPart = &root;
    bool atMessage = true;
    for (int n : s.part) {
        const MimePart* next = nullptr;
        if (atMessage) {
            if (msgPart->isMultipart()) next = n <= msgPart->children.size() ? &msgPart->children.at(n - 1) : nullptr;
            else next = n == 1 ? msgPart : nullptr;
        } else if (part->isMultipart()) {
            next = n <= part->children.size() ? &part->children.at(n - 1) : nullptr;
        }
        if (!next) return std::nullopt;
        part = next;
        atMessage = false;
        if (part->isMessage() && !part->children.isEmpty() && part != msgPart) {
            container = &part->children.first();
            msgPart = container;
            atMessage = true;
        }
    }
    if (s.kind.isEmpty()) return msg.mid(part->bodyStart, part->bodyEnd - part->bodyStart);
    if (s.kind == "MIME") return msg.mid(part->headerStart, part->headerEnd - part->headerStart);
    // HEADER/TEXT of a part number address an encapsulated message (RFC 9051 6.4.5).
    if (!atMessage) return std::nullopt;
    if (s.kind == "HEADER") return msg.mid(container->headerStart, container->headerEnd - container->headerStart);
    if (s.kind == "TEXT") return msg.mid(container->bodyStart, container->bodyEnd - container->bodyStart);
    return headerFields(msg, container->headerStart, container->headerEnd, s.fields, s.kind == "HEADER.FIELDS.NOT");
}

QByteArray literal(const QByteArray& data) { return '{' + QByteArray::number(data.size()) + "}\r\n" + data; }

struct FetchJob {
    QList<int> indexes;
    qsizetype next = 0;
    QList<FetchItem> items;
    bool needMessage = false;  // some item needs the file's bytes
    bool needParsed = false;   // ENVELOPE/BODY/BODYSTRUCTURE: from the index cache, else parsed
    bool setsSeen = false;
};

}  // namespace

void Commands::fetch(ImapSession& s, const R& r) {
    MailboxView& v = *selected(s);
    if (r.args.size() < 2 || r.args.at(0).kind != Token::Kind::Atom) {
        s.bad(r, QStringLiteral("Usage: FETCH set items"));
        return;
    }
    auto set = resolveSequenceSet(r.args.at(0).text, v, r.uid);
    if (!set) {
        s.bad(r, QStringLiteral("Bad sequence set"));
        return;
    }
    QList<QByteArray> atoms;
    const Token& itemsTok = r.args.at(1);
    if (itemsTok.kind == Token::Kind::List) {
        for (const Token& t : itemsTok.items) {
            if (t.kind != Token::Kind::Atom) {
                s.bad(r, QStringLiteral("Bad FETCH item"));
                return;
            }
            atoms << t.text;
        }
    } else if (itemsTok.kind == Token::Kind::Atom) {
        const QByteArray m = itemsTok.text.toUpper();
        if (m == "ALL") atoms = {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"};
        else if (m == "FAST") atoms = {"FLAGS", "INTERNALDATE", "RFC822.SIZE"};
        else if (m == "FULL") atoms = {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"};
        else atoms << itemsTok.text;
    } else {
        s.bad(r, QStringLiteral("Bad FETCH items"));
        return;
    }
    // Modifiers (RFC 7162 3.1.4, 3.2.6): (CHANGEDSINCE modseq [VANISHED])
    std::optional<quint64> changedSince;
    bool vanished = false;
    if (r.args.size() > 3 || (r.args.size() == 3 && r.args.at(2).kind != Token::Kind::List)) {
        s.bad(r, QStringLiteral("Usage: FETCH set items [(CHANGEDSINCE modseq [VANISHED])]"));
        return;
    }
    if (r.args.size() == 3) {
        const QList<Token>& mods = r.args.at(2).items;
        for (qsizetype i = 0; i < mods.size(); ++i) {
            if (mods.at(i).isAtom("CHANGEDSINCE") && i + 1 < mods.size() && !changedSince) {
                changedSince = parseModseq(mods.at(++i), true);
                if (!changedSince) {
                    s.bad(r, QStringLiteral("CHANGEDSINCE needs a mod-sequence"));
                    return;
                }
            } else if (mods.at(i).isAtom("VANISHED") && !vanished) {
                vanished = true;
            } else {
                s.bad(r, QStringLiteral("Unknown FETCH modifier"));
                return;
            }
        }
        if (vanished && (!r.uid || !qresync(s) || !changedSince)) {
            s.bad(r, QStringLiteral("VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC"));
            return;
        }
        if (changedSince && v.highestModseq() == 0) {
            s.bad(r, QStringLiteral("This mailbox has no mod-sequences (NOMODSEQ)"));
            return;
        }
    }
    auto job = std::make_shared<FetchJob>();
    job->indexes = *set;
    if (changedSince) {
        condstore(s) = true;
        bool listed = false;
        for (const QByteArray& a : atoms) listed = listed || a.toUpper() == "MODSEQ";
        if (!listed) atoms << "MODSEQ";  // implied (RFC 7162 3.1.4.1)
        QList<int> changed;
        for (int i : job->indexes)
            if (v.messages().at(i).modseq > *changedSince) changed << i;
        job->indexes = changed;
    }
    if (vanished) {
        const quint32 last = v.uidNext() > 1 ? v.uidNext() - 1 : 1;
        auto ranges = parseUidRanges(r.args.at(0).text, last);
        if (!ranges) {
            s.bad(r, QStringLiteral("Bad sequence set"));
            return;
        }
        const QList<quint32> reported = vanishedSince(v, *changedSince, *ranges);
        if (!reported.isEmpty()) s.untagged("VANISHED (EARLIER) " + compactSet(reported));
    }
    bool hasUid = false;
    for (const QByteArray& a : atoms) {
        auto it = parseItem(a);
        if (!it) {
            s.bad(r, QStringLiteral("Unknown or malformed FETCH item %1").arg(QString::fromUtf8(a.left(60))));
            return;
        }
        if (it->kind == FetchItem::Uid) hasUid = true;
        if (it->kind == FetchItem::Modseq) {
            if (v.highestModseq() == 0) {
                s.bad(r, QStringLiteral("This mailbox has no mod-sequences (NOMODSEQ)"));
                return;
            }
            condstore(s) = true;
        }
        if (it->kind == FetchItem::Envelope || it->kind == FetchItem::BodyStructure || it->kind == FetchItem::Body) job->needParsed = true;
        else if (it->kind > FetchItem::Body) job->needMessage = true;
        if (((it->kind == FetchItem::BodySection || it->kind == FetchItem::Binary) && !it->peek) || it->kind == FetchItem::Rfc822 ||
            it->kind == FetchItem::Rfc822Text)
            job->setsSeen = !v.readOnly();
        job->items << *it;
    }
    if (r.uid && !hasUid) job->items.prepend(FetchItem{FetchItem::Uid, {}, false, -1, -1});
    const R req = r;
    s.runWithBackpressure([&s, job, req]() {
        MailboxView& view = *selected(s);
        constexpr qint64 kHighWater = 1 << 20;
        std::shared_ptr<MailboxIndex> batchIndex = job->needParsed ? view.index() : nullptr;
        MailboxIndex::Batch batch(batchIndex.get());  // this turn's cache writes in one transaction
        while (job->next < job->indexes.size()) {
            if (io(s).pendingOutput() > kHighWater) return false;
            const int i = job->indexes.at(job->next++);
            if (i >= view.messages().size()) continue;
            QByteArray msg;
            mail::MimePart root;
            bool parsed = false;
            // ENVELOPE/BODY/BODYSTRUCTURE come from the index when it has them, else from
            // one parse of the file, whose results then go into the index.
            std::optional<MailboxIndex::Cached> cache;
            MailboxIndex* idx = batchIndex.get();  // acquired once per turn, not per message
            if (idx) cache = idx->cached(view.messages().at(i).uid, view.messages().at(i).base);
            if (job->needMessage || (job->needParsed && !cache)) {
                QFile f(view.path(i));
                if (!f.open(QIODevice::ReadOnly)) continue;  // expunged meanwhile: skip it (RFC 9051 allows omitting)
                msg = normalizeCrlf(f.readAll());
            }
            if (job->needParsed && !cache) {
                root = mail::parseMime(msg);
                parsed = true;
                cache = MailboxIndex::Cached{envelope(msg, root.headerStart, root.headerEnd), bodyStructure(msg, root, false),
                                             bodyStructure(msg, root, true)};
                if (idx) idx->storeCached(view.messages().at(i).uid, view.messages().at(i).base, *cache);
            }
            bool flagsSent = false;
            bool modseqSent = false;
            bool seenSet = false;
            if (job->setsSeen && !view.messages().at(i).flags.contains(QLatin1Char('S')))
                seenSet = view.setFlags(i, view.messages().at(i).flags + QLatin1Char('S')).ok();  // false: expunged meanwhile
            QByteArrayList parts;
            bool unknownCte = false;
            const Message& m = view.messages().at(i);
            for (const FetchItem& it : job->items) {
                switch (it.kind) {
                    case FetchItem::Flags:
                        parts << "FLAGS " + flagList(view.imapFlags(i));
                        flagsSent = true;
                        break;
                    case FetchItem::Uid: parts << "UID " + QByteArray::number(m.uid); break;
                    case FetchItem::Modseq:
                        parts << "MODSEQ (" + QByteArray::number(m.modseq) + ')';
                        modseqSent = true;
                        break;
                    case FetchItem::InternalDate: parts << "INTERNALDATE \"" + imapDateTime(m.mtimeMs) + '"'; break;
                    case FetchItem::Size: parts << "RFC822.SIZE " + QByteArray::number(m.vsize); break;
                    case FetchItem::Envelope: parts << "ENVELOPE " + cache->envelope; break;
                    case FetchItem::Body: parts << "BODY " + cache->body; break;
                    case FetchItem::BodyStructure: parts << "BODYSTRUCTURE " + cache->bodyStructure; break;
                    case FetchItem::Rfc822: parts << "RFC822 " + literal(msg); break;
                    case FetchItem::Rfc822Header: {
                        qsizetype bodyAt = msg.size();
                        mail::parseHeader(msg, &bodyAt);
                        parts << "RFC822.HEADER " + literal(msg.left(bodyAt));
                        break;
                    }
                    case FetchItem::Rfc822Text: {
                        qsizetype bodyAt = msg.size();
                        mail::parseHeader(msg, &bodyAt);
                        parts << "RFC822.TEXT " + literal(msg.mid(bodyAt));
                        break;
                    }
                    case FetchItem::BodySection: {
                        if (!parsed) {
                            root = mail::parseMime(msg);
                            parsed = true;
                        }
                        auto data = sectionData(msg, root, it.section);
                        QByteArray name = "BODY[" + it.section.text + ']';
                        QByteArray value;
                        if (!data) value = "NIL";  // a part that does not exist
                        else if (it.partialStart >= 0) {
                            name += '<' + QByteArray::number(it.partialStart) + '>';
                            value = literal(data->mid(qsizetype(std::min<qint64>(it.partialStart, data->size())), qsizetype(it.partialLength)));
                        } else {
                            value = literal(*data);
                        }
                        parts << name + ' ' + value;
                        break;
                    }
                    case FetchItem::Binary:
                    case FetchItem::BinarySize: {
                        if (!parsed) {
                            root = mail::parseMime(msg);
                            parsed = true;
                        }
                        const BinaryResult b = binarySection(msg, root, it.section.part);
                        if (b.status == BinaryResult::Status::UnknownCte) {
                            unknownCte = true;
                            break;
                        }
                        const bool exists = b.status == BinaryResult::Status::Ok;
                        if (it.kind == FetchItem::BinarySize) {
                            parts << "BINARY.SIZE[" + it.section.text + "] " + QByteArray::number(b.data.size());
                            break;
                        }
                        QByteArray name = "BINARY[" + it.section.text + ']';
                        QByteArray value = exists ? binaryLiteral(b.data) : QByteArray("NIL");
                        if (exists && it.partialStart >= 0) {
                            name += '<' + QByteArray::number(it.partialStart) + '>';
                            value = binaryLiteral(b.data.mid(qsizetype(std::min<qint64>(it.partialStart, b.data.size())), qsizetype(it.partialLength)));
                        }
                        parts << name + ' ' + value;
                        break;
                    }
                }
            }
            if (unknownCte) {
                // RFC 3516 4.3: a transfer encoding we cannot decode fails the command.
                s.no(req, QStringLiteral("Unknown Content-Transfer-Encoding in message %1").arg(i + 1), "UNKNOWN-CTE");
                return true;
            }
            if (job->setsSeen && !flagsSent) parts << "FLAGS " + flagList(view.imapFlags(i));
            // Once CONDSTORE is on, a FETCH that set \Seen also reports the new mod-sequence (RFC 7162 3.1.4).
            if (seenSet && condstore(s) && !modseqSent) {
                bool uidSent = false;
                for (const FetchItem& it : job->items) uidSent = uidSent || it.kind == FetchItem::Uid;
                if (!uidSent) parts << "UID " + QByteArray::number(view.messages().at(i).uid);
                parts << "MODSEQ (" + QByteArray::number(view.messages().at(i).modseq) + ')';
            }
            s.untagged(QByteArray::number(i + 1) + " FETCH (" + parts.join(' ') + ')');
        }
        s.ok(req, QStringLiteral("FETCH completed"));
        return true;
    });
}

}  // namespace postern::imap
