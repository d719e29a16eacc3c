// commands/search.cpp — SEARCH and UID SEARCH with every RFC 9051 6.4.4 key,
// CHARSET (UTF-8, US-ASCII), header decoding (RFC 2047), body text in its
// transfer encoding and charset decoded, and ESEARCH (RFC 4731) results via
// RETURN (MIN MAX COUNT ALL), and MODSEQ (RFC 7162 3.1.5: with only MIN/MAX,
// the mod-sequence of those messages). FROM/TO/CC/BCC match the addresses as
// ENVELOPE has them ("Name <local@domain>", decoded, comments and groups
// resolved); RECENT/NEW/OLD use the session's \Recent (IMAP4rev1); search
// strings are astrings (NIL is the text "NIL"). Messages expunged by another
// session and not reported yet match nothing. Header keys read header
// blocks from a process-wide store backed by the folder's index, so files are
// opened only the first time; it is keyed by UIDVALIDITY, the uidlist's GUID
// and each file's name, never by folder name alone. BODY/TEXT keep each
// message's text part spans in the same store (and the index): after the
// first search only those ranges of a file are read, and no MIME is parsed.
// Limits: kMaxSearchDepth (commands.h) levels of NOT, OR and parentheses
// around a key, checked where the recursion happens: in the parser (BAD
// before anything runs) and again in the evaluator; kMaxSearchKeys keys in
// one program (each is evaluated for every message; a command continued
// with literals could otherwise carry millions); the search program is
// parsed once and then run message by message; message text is loaded only
// when a key needs it, and decoded once per message however many BODY/TEXT
// keys ask for it. Sequence-set keys (UID 1:4294967295, 1,2,3,...) are kept
// as merged index intervals and matched by binary search: their memory does
// not grow with the mailbox or with the span of a range.
#include "commands.h"

#include "common/mail/message.h"
#include "core/posix_io.h"
#include "core/safe_path.h"
#include "imapd/imap_body_search.h"

#include <limits>

#include <sys/stat.h>

namespace postern::imap {

namespace {

struct Key {
    enum Type {
        All,
        Answered,
        Deleted,
        Draft,
        Flagged,
        Seen,
        Unanswered,
        Undeleted,
        Undraft,
        Unflagged,
        Unseen,
        New,
        Old,
        Recent,
        Keyword,
        Unkeyword,
        Larger,
        Smaller,
        Before,
        On,
        Since,
        SentBefore,
        SentOn,
        SentSince,
        Header,
        Address,
        Body,
        Text,
        Uid,
        Seq,
        Not,
        Or,
        And,
        Modseq
    } type = All;
    QByteArray field;  // HEADER field name, keyword
    QString needle;    // lower-cased text
    BodyNeedle body;   // BODY, TEXT, FROM/TO/CC/BCC: the needle prepared for byte searches
    qint64 number = 0;
    QDate date;
    IndexRanges set;  // message indexes for Uid/Seq
    QList<Key> children;
};

class Parser {
public:
    Parser(const QList<Token>& tokens, qsizetype start, const MailboxView& view, int* keys = nullptr)
        : m_t(tokens), m_i(start), m_view(view), m_keys(keys ? keys : &m_ownKeys) {}
    // The keys from the current position to the end; `depth`: how many NOT, OR and
    // parentheses enclose them.
    std::optional<Key> parseAll(int depth = 0) {
        Key all;
        all.type = Key::And;
        while (m_i < m_t.size()) {
            auto k = parseOne(depth);
            if (!k) return std::nullopt;
            all.children << *k;
        }
        if (all.children.isEmpty()) {
            m_error = QStringLiteral("missing search key");
            return std::nullopt;
        }
        return all;
    }
    QString error() const { return m_error; }
    bool usedModseq() const { return m_modseq; }

private:
    // One row of the table of search keys: the key's name (upper case), the type it
    // makes, the header field it reads (text keys) and the parser of its arguments
    // (the name's token already taken).
    struct KeyRow;
    using KeyParse = std::optional<Key> (Parser::*)(const KeyRow& row, int depth);
    struct KeyRow {
        const char* name;
        Key::Type type;
        const char* field;
        KeyParse parse;
    };
    static const QList<KeyRow>& keyTable();

    std::optional<QByteArray> str() {
        if (m_i >= m_t.size() || !m_t.at(m_i).isString()) {
            m_error = QStringLiteral("search key needs an argument");
            return std::nullopt;
        }
        return m_t.at(m_i++).text;
    }
    std::optional<Key> parseOne(int depth) {
        // Each NOT, OR and "(" below recurses once: bound the depth here, where it happens
        // (ArgParser's limit counts parentheses only; "NOT NOT NOT ..." has none).
        if (depth > kMaxSearchDepth) {
            m_error = QStringLiteral("search keys nested too deeply (limit: %1 levels of NOT, OR and parentheses)")
                          .arg(kMaxSearchDepth);
            return std::nullopt;
        }
        if (++*m_keys > kMaxSearchKeys) {
            m_error = QStringLiteral("too many search keys (limit: %1)").arg(kMaxSearchKeys);
            return std::nullopt;
        }
        const Token& t = m_t.at(m_i++);
        if (t.kind == Token::Kind::List) {
            Parser sub(t.items, 0, m_view, m_keys);
            auto inner = sub.parseAll(depth + 1);
            if (!inner) m_error = sub.error();
            m_modseq = m_modseq || sub.usedModseq();
            return inner;
        }
        if (t.kind != Token::Kind::Atom) {
            m_error = QStringLiteral("unexpected string in search program");
            return std::nullopt;
        }
        const QByteArray a = t.text.toUpper();
        for (const KeyRow& row : keyTable())
            if (a == row.name) return (this->*row.parse)(row, depth);
        if (looksLikeSequenceSet(t.text)) {
            Key k;
            k.type = Key::Seq;
            k.set = resolveSequenceRanges(t.text, m_view, false).value_or(IndexRanges{});
            return k;
        }
        m_error = QStringLiteral("unknown search key %1").arg(QString::fromLatin1(a.left(40)));
        return std::nullopt;
    }
    static bool looksLikeSequenceSet(const QByteArray& text) {
        for (char c : text)
            if (!(std::isdigit(uchar(c)) || c == ':' || c == ',' || c == '*')) return false;
        return !text.isEmpty();
    }
    // ALL, ANSWERED, ..., RECENT: no arguments.
    std::optional<Key> flagKey(const KeyRow& row, int) {
        Key k;
        k.type = row.type;
        return k;
    }
    // FROM/TO/CC/BCC, SUBJECT, BODY, TEXT: one string, matched lower-cased.
    std::optional<Key> textKey(const KeyRow& row, int) {
        auto s = str();
        if (!s) return std::nullopt;
        Key k;
        k.type = row.type;
        k.field = row.field;
        k.needle = QString::fromUtf8(*s).toLower();
        if (row.type == Key::Body || row.type == Key::Text || row.type == Key::Address) k.body = BodyNeedle(*s);
        return k;
    }
    // HEADER field-name string.
    std::optional<Key> headerKey(const KeyRow& row, int) {
        auto f = str();
        if (!f) return std::nullopt;
        auto v = str();
        if (!v) return std::nullopt;
        Key k;
        k.type = row.type;
        k.field = f->toLower();
        k.needle = QString::fromUtf8(*v).toLower();
        return k;
    }
    // KEYWORD / UNKEYWORD flag.
    std::optional<Key> keywordKey(const KeyRow& row, int) {
        auto f = str();
        if (!f) return std::nullopt;
        Key k;
        k.type = row.type;
        k.field = *f;
        return k;
    }
    // MODSEQ [entry-name entry-type] mod-sequence (RFC 7162 3.1.5); per-flag entries are
    // answered with the message's own mod-sequence (we keep one per message).
    std::optional<Key> modseqKey(const KeyRow& row, int) {
        if (m_i < m_t.size() && m_t.at(m_i).kind == Token::Kind::String) {
            ++m_i;
            if (m_i >= m_t.size() ||
                !(m_t.at(m_i).isAtom("priv") || m_t.at(m_i).isAtom("shared") || m_t.at(m_i).isAtom("all"))) {
                m_error = QStringLiteral("MODSEQ entry type must be priv, shared or all");
                return std::nullopt;
            }
            ++m_i;
        }
        auto n = m_i < m_t.size() ? parseModseq(m_t.at(m_i++), true) : std::nullopt;
        if (!n) {
            m_error = QStringLiteral("MODSEQ needs a mod-sequence");
            return std::nullopt;
        }
        if (m_view.highestModseq() == 0) {
            m_error = QStringLiteral("this mailbox has no mod-sequences (NOMODSEQ)");
            return std::nullopt;
        }
        Key k;
        k.type = row.type;
        k.number = qint64(*n);
        m_modseq = true;
        return k;
    }
    // LARGER / SMALLER n.
    std::optional<Key> sizeKey(const KeyRow& row, int) {
        auto n = str();
        bool ok = false;
        Key k;
        if (n) k.number = n->toLongLong(&ok);
        if (!ok || k.number < 0) {
            m_error = QStringLiteral("%1 needs a number").arg(QString::fromLatin1(row.name));
            return std::nullopt;
        }
        k.type = row.type;
        return k;
    }
    // BEFORE, ON, SINCE, SENTBEFORE, SENTON, SENTSINCE date.
    std::optional<Key> dateKey(const KeyRow& row, int) {
        auto s = str();
        if (!s) return std::nullopt;
        auto d = parseImapDate(*s);
        if (!d) {
            m_error = QStringLiteral("bad date (expected e.g. 1-Feb-2026)");
            return std::nullopt;
        }
        Key k;
        k.type = row.type;
        k.date = *d;
        return k;
    }
    // NOT key.
    std::optional<Key> notKey(const KeyRow& row, int depth) {
        if (m_i >= m_t.size()) {
            m_error = QStringLiteral("NOT needs a key");
            return std::nullopt;
        }
        auto c = parseOne(depth + 1);
        if (!c) return std::nullopt;
        Key k;
        k.type = row.type;
        k.children << *c;
        return k;
    }
    // OR key key.
    std::optional<Key> orKey(const KeyRow& row, int depth) {
        Key k;
        for (int n = 0; n < 2; ++n) {
            if (m_i >= m_t.size()) {
                m_error = QStringLiteral("OR needs two keys");
                return std::nullopt;
            }
            auto c = parseOne(depth + 1);
            if (!c) return std::nullopt;
            k.children << *c;
        }
        k.type = row.type;
        return k;
    }
    // UID set (an empty mailbox takes any set: it matches nothing).
    std::optional<Key> uidKey(const KeyRow& row, int) {
        auto s = str();
        if (!s) return std::nullopt;
        auto set = resolveSequenceRanges(*s, m_view, true);
        Key k;
        k.type = row.type;
        k.set = set.value_or(IndexRanges{});
        if (!set && !s->isEmpty() && !m_view.messages().isEmpty()) {
            m_error = QStringLiteral("bad UID set");
            return std::nullopt;
        }
        return k;
    }
    const QList<Token>& m_t;
    qsizetype m_i;
    const MailboxView& m_view;
    int m_ownKeys = 0;
    int* m_keys;  // keys parsed so far in the whole program (shared with the parsers of lists)
    QString m_error;
    bool m_modseq = false;  // a MODSEQ key was used (the response reports the highest)
};

// The search keys of RFC 9051 6.4.4 (and RFC 7162's MODSEQ). A sequence set is the one key
// without a name (Parser::parseOne).
const QList<Parser::KeyRow>& Parser::keyTable() {
    static const QList<KeyRow> rows = {
        {"ALL", Key::All, nullptr, &Parser::flagKey},
        {"ANSWERED", Key::Answered, nullptr, &Parser::flagKey},
        {"DELETED", Key::Deleted, nullptr, &Parser::flagKey},
        {"DRAFT", Key::Draft, nullptr, &Parser::flagKey},
        {"FLAGGED", Key::Flagged, nullptr, &Parser::flagKey},
        {"SEEN", Key::Seen, nullptr, &Parser::flagKey},
        {"UNANSWERED", Key::Unanswered, nullptr, &Parser::flagKey},
        {"UNDELETED", Key::Undeleted, nullptr, &Parser::flagKey},
        {"UNDRAFT", Key::Undraft, nullptr, &Parser::flagKey},
        {"UNFLAGGED", Key::Unflagged, nullptr, &Parser::flagKey},
        {"UNSEEN", Key::Unseen, nullptr, &Parser::flagKey},
        {"NEW", Key::New, nullptr, &Parser::flagKey},
        {"OLD", Key::Old, nullptr, &Parser::flagKey},
        {"RECENT", Key::Recent, nullptr, &Parser::flagKey},
        // RFC 9051 6.4.4: "contain the specified string in the envelope structure's FROM
        // field": the addresses as ENVELOPE has them (display names decoded, comments and
        // folding gone), not the raw header text.
        {"FROM", Key::Address, "from", &Parser::textKey},
        {"TO", Key::Address, "to", &Parser::textKey},
        {"CC", Key::Address, "cc", &Parser::textKey},
        {"BCC", Key::Address, "bcc", &Parser::textKey},
        {"SUBJECT", Key::Header, "subject", &Parser::textKey},
        {"BODY", Key::Body, "", &Parser::textKey},
        {"TEXT", Key::Text, "", &Parser::textKey},
        {"HEADER", Key::Header, nullptr, &Parser::headerKey},
        {"KEYWORD", Key::Keyword, nullptr, &Parser::keywordKey},
        {"UNKEYWORD", Key::Unkeyword, nullptr, &Parser::keywordKey},
        {"MODSEQ", Key::Modseq, nullptr, &Parser::modseqKey},
        {"LARGER", Key::Larger, nullptr, &Parser::sizeKey},
        {"SMALLER", Key::Smaller, nullptr, &Parser::sizeKey},
        {"BEFORE", Key::Before, nullptr, &Parser::dateKey},
        {"ON", Key::On, nullptr, &Parser::dateKey},
        {"SINCE", Key::Since, nullptr, &Parser::dateKey},
        {"SENTBEFORE", Key::SentBefore, nullptr, &Parser::dateKey},
        {"SENTON", Key::SentOn, nullptr, &Parser::dateKey},
        {"SENTSINCE", Key::SentSince, nullptr, &Parser::dateKey},
        {"NOT", Key::Not, nullptr, &Parser::notKey},
        {"OR", Key::Or, nullptr, &Parser::orKey},
        {"UID", Key::Uid, nullptr, &Parser::uidKey},
    };
    return rows;
}

// Header blocks of messages, for SEARCH on header keys (and SORT/THREAD), and their
// text part spans (BODY/TEXT, imap_body_search.h): kept in
// memory per folder for the whole process (shared by its sessions, at most
// kHeaderStoreMax bytes, least recently used folders dropped), backed by the
// folder's index (which survives restarts), read from the file only the first
// time. Message files never change, but a folder can be deleted and created
// again under the same name (same path, same UIDs): an entry belongs to one
// UIDVALIDITY *and* one uidlist GUID (new with every new uidlist), and each
// block to one file (its base name), so nothing of an older folder or file is
// ever answered (threats.md 2, "caches keyed by name").
struct FolderHeaders {
    quint32 uidValidity = 0;
    QString generation;
    QHash<quint32, MailboxIndex::FileBlob> map;
    // BODY/TEXT: each message's text part spans (encodeTextParts), read from the index
    // when a body key first needs them.
    QHash<quint32, MailboxIndex::FileBlob> textParts;
    bool textPartsLoaded = false;
    qint64 bytes = 0;
    quint64 lastUse = 0;
};
constexpr qint64 kHeaderStoreMax = qint64(32) << 20;
// What an entry costs beside its bytes, counted against kHeaderStoreMax: the hash node, the
// base name (its own string when read from the index) and the byte array's header. Text
// part spans are a few dozen bytes each, so without it a large folder's would be counted at
// a fraction of their memory.
constexpr qint64 kStoreEntryOverhead = 160;
qint64 storeBytes(const QByteArray& bytes) {
    return bytes.size() + kStoreEntryOverhead;
}
QHash<QString, FolderHeaders>& headerStore() {
    static QHash<QString, FolderHeaders> store;
    return store;
}
quint64 g_headerClock = 0;

void trimHeaderStore(const QString& keep) {
    QHash<QString, FolderHeaders>& st = headerStore();
    qint64 total = 0;
    for (const FolderHeaders& f : st) total += f.bytes;
    while (total > kHeaderStoreMax && st.size() > 1) {
        auto oldest = st.end();
        for (auto it = st.begin(); it != st.end(); ++it)
            if (it.key() != keep && (oldest == st.end() || it->lastUse < oldest->lastUse)) oldest = it;
        if (oldest == st.end()) break;
        total -= oldest->bytes;
        st.erase(oldest);
    }
}

// One SEARCH's view of that store.
struct HeaderCache {
    bool loaded = false;
    QString dir;
    std::shared_ptr<MailboxIndex> index;
    std::optional<MailboxIndex::Batch> batch;  // this SEARCH's index writes in one transaction
    ~HeaderCache() {
        batch.reset();
        if (loaded) trimHeaderStore(dir);
    }
    FolderHeaders& folder(const MailboxView& view) {
        FolderHeaders& f = headerStore()[view.dir()];
        if (!loaded) {
            loaded = true;
            dir = view.dir();
            index = view.index();
            if (f.uidValidity != view.uidValidity() || f.generation != view.generation()) {
                f = FolderHeaders();
                f.uidValidity = view.uidValidity();
                f.generation = view.generation();
                if (index) {
                    f.map = index->cachedBlobs(MailboxIndex::Blob::Header);
                    for (const MailboxIndex::FileBlob& h : f.map) f.bytes += storeBytes(h.bytes);
                }
            }
            if (index) batch.emplace(index.get());
        }
        f.lastUse = ++g_headerClock;
        return f;
    }
    // The folder's kept text part spans (loaded from the index on first use).
    FolderHeaders& withTextParts(const MailboxView& view) {
        FolderHeaders& f = folder(view);
        if (!f.textPartsLoaded) {
            f.textPartsLoaded = true;
            if (index) {
                f.textParts = index->cachedBlobs(MailboxIndex::Blob::TextParts);
                for (const MailboxIndex::FileBlob& t : f.textParts) f.bytes += storeBytes(t.bytes);
            }
        }
        return f;
    }
};

// Whether data holds an empty line ("\n\n" or "\n\r\n") starting at or after `from`'s
// newline: the end of a header block (one memchr per line, no substring search).
bool hasBlankLine(const QByteArray& data, qsizetype from) {
    const char* const d = data.constData();
    const qsizetype n = data.size();
    while (from < n) {
        const void* hit = std::memchr(d + from, '\n', size_t(n - from));
        if (!hit) return false;
        const qsizetype at = static_cast<const char*>(hit) - d;
        if (at + 1 < n && d[at + 1] == '\n') return true;
        if (at + 2 < n && d[at + 1] == '\r' && d[at + 2] == '\n') return true;
        from = at + 1;
    }
    return false;
}

struct Context {
    const MailboxView& view;
    int index;
    HeaderCache* cache = nullptr;
    QByteArray msg;
    bool loaded = false;
    bool fileRead = false;  // content() read the file (it could be opened and read)
    bool headerLoaded = false;
    bool tooDeep = false;  // the evaluator met a program deeper than kMaxSearchDepth
    mail::Header header;
    mail::MimePart root;
    std::optional<BodyText> bodyText;        // text parts (BODY, TEXT)
    std::optional<QStringList> headerTexts;  // header values decoded, lower case (TEXT)
    // The whole message, parsed (BODY, TEXT).
    const QByteArray& content() {
        if (!loaded) {
            // One open, fstat and read (QFile costs more per file); a file that cannot be
            // read (gone meanwhile) has no text.
            const FileHandle fd(openForReading(view.path(index)));
            if (fd.valid()) {
                auto read = readAll(fd.fd(), std::numeric_limits<qint64>::max(), view.path(index));
                fileRead = bool(read);
                msg = read.valueOr({});
            }
            header = mail::parseHeader(msg);
            root = mail::parseMime(msg);
            loaded = headerLoaded = true;
        }
        return msg;
    }
    // The top-level header block, unparsed (a header key needs one field of it): from the
    // process's store when it holds this file's, else as headers() reads it.
    QByteArray block;
    bool blockLoaded = false;
    const QByteArray& headerBlock() {
        if (blockLoaded) return block;
        blockLoaded = true;
        const Message& m = view.messages().at(index);
        if (cache) {
            const FolderHeaders& f = cache->folder(view);
            auto it = f.map.constFind(m.uid);
            if (it != f.map.cend() && it->base == m.base) {  // the same file, not an older one under this UID
                block = it->bytes;
                return block;
            }
        }
        if (!headerLoaded) headers();  // reads the file (and stores the block)
        return block;
    }
    // One field's values: parseHeader(...).values(), without parsing the other fields.
    QList<QByteArray> fieldValues(const QByteArray& field) {
        if (headerLoaded) return header.values(field.constData());
        return mail::headerValues(headerBlock(), field.constData());
    }
    // Only the top-level header (header keys, SENT*): read up to the blank line, not the body.
    void headers() {
        if (headerLoaded) return;
        headerLoaded = true;
        const Message& m = view.messages().at(index);
        if (blockLoaded && !block.isEmpty()) {
            header = mail::parseHeader(block);
            return;
        }
        if (cache) {
            const FolderHeaders& f = cache->folder(view);
            auto it = f.map.constFind(m.uid);
            if (it != f.map.cend() && it->base == m.base) {  // the same file, not an older one under this UID
                block = it->bytes;
                blockLoaded = true;
                header = mail::parseHeader(it->bytes);
                return;
            }
        }
        const FileHandle fd(openForReading(view.path(index)));
        if (!fd.valid()) return;
        QByteArray head;
        constexpr qint64 kChunk = 8192, kMaxHeader = qint64(4) << 20;
        while (head.size() < kMaxHeader) {
            const qsizetype from = std::max<qsizetype>(0, head.size() - 2);
            const QByteArray more = readUpTo(fd.fd(), kChunk);
            if (more.isEmpty()) break;
            head += more;
            if (hasBlankLine(head, from)) break;
        }
        qsizetype bodyAt = head.size();
        header = mail::parseHeader(head, &bodyAt);
        block = head.left(bodyAt);
        blockLoaded = true;
        if (cache) {
            FolderHeaders& store = cache->folder(view);
            store.bytes += storeBytes(block);
            store.map.insert(m.uid, MailboxIndex::FileBlob{m.base, block});
            if (cache->index) cache->index->storeBlob(MailboxIndex::Blob::Header, m.uid, m.base, block);
        }
    }
};

// From the spans kept for this file: its text parts' ranges read, no MIME parsed, the
// rest of the file (attachments) not read. nullopt when none are kept for this file or
// they do not fit it: the caller reads and parses the whole file.
std::optional<BodyText> keptBodyText(Context& c) {
    if (!c.cache) return std::nullopt;
    const Message& m = c.view.messages().at(c.index);
    const FolderHeaders& f = c.cache->withTextParts(c.view);
    auto it = f.textParts.constFind(m.uid);
    if (it == f.textParts.cend() || it->base != m.base) return std::nullopt;  // (not an older file under this UID)
    const FileHandle fd(openForReading(c.view.path(c.index)));
    struct stat st {};
    if (!fd.valid() || ::fstat(fd.fd(), &st) != 0) return std::nullopt;
    const auto spans = decodeTextParts(it->bytes, st.st_size);
    if (!spans) return std::nullopt;
    BodyText text;
    for (const TextPartSpan& span : *spans) {
        const QByteArray body = readAt(fd.fd(), span.start, span.end - span.start);
        if (body.size() != span.end - span.start) return std::nullopt;
        text.addPart(body, span);
    }
    return text;
}

// Keeps the spans of a file content() read and parsed, for the next search.
void keepTextParts(Context& c) {
    if (!c.cache || !c.fileRead) return;
    const QByteArray spans = encodeTextParts(textPartSpans(c.root));
    if (spans.isEmpty()) return;
    const Message& m = c.view.messages().at(c.index);
    FolderHeaders& f = c.cache->withTextParts(c.view);
    f.bytes += storeBytes(spans);
    f.textParts.insert(m.uid, MailboxIndex::FileBlob{m.base, spans});
    if (c.cache->index) c.cache->index->storeBlob(MailboxIndex::Blob::TextParts, m.uid, m.base, spans);
}

// The message's text parts, transfer-decoded once per message (a program may hold
// thousands of BODY/TEXT keys); each is charset-decoded and lower-cased only if a needle
// needs it (imap_body_search.h). From the kept spans when there are some for this file,
// else from the whole file, whose spans are then kept.
BodyText& bodyTextOf(Context& c) {
    if (c.bodyText) return *c.bodyText;
    if (!c.loaded)
        if (std::optional<BodyText> kept = keptBodyText(c)) return c.bodyText.emplace(std::move(*kept));
    const QByteArray& msg = c.content();
    c.bodyText.emplace(msg, c.root);
    keepTextParts(c);
    return *c.bodyText;
}

// The header values decoded and lower-cased once per message (TEXT).
const QStringList& headerTextsOf(Context& c) {
    if (!c.headerTexts) {
        c.headers();
        QStringList out;
        for (const mail::HeaderField& f : c.header.fields) out << mail::decodeHeaderText(f.value).toLower();
        c.headerTexts = out;
    }
    return *c.headerTexts;
}

// TEXT's header part: a top-level header value holds the needle once decoded and
// lower-cased. Plain ASCII values are searched as they are (plainHeaderContains); the
// others are decoded once per message.
bool headerTextMatches(Context& c, const Key& k) {
    c.headers();
    const QList<mail::HeaderField>& fields = c.header.fields;
    for (qsizetype i = 0; i < fields.size(); ++i) {
        if (const std::optional<bool> plain = plainHeaderContains(fields.at(i).value, k.body)) {
            if (*plain) return true;
        } else if (headerTextsOf(c).at(i).contains(k.needle)) {
            return true;
        }
    }
    return false;
}

bool headerMatches(Context& c, const QByteArray& field, const QString& needle) {
    for (const QByteArray& v : c.fieldValues(field))
        if (mail::decodeHeaderText(v).toLower().contains(needle)) return true;
    // RFC 9051 6.4.4: HEADER field "" matches every message that has the field.
    return false;
}

bool addressMatches(Context& c, const Key& k) {
    // (The one field from the header block, not the whole header parsed: that was a third
    // of a large folder's SEARCH FROM; a field that cannot hold the needle is not parsed.)
    for (const QByteArray& v : c.fieldValues(k.field))
        if (addressMayContain(v, k.body) && addressSearchText(v).contains(k.needle)) return true;
    return false;
}

QDate sentDate(Context& c) {
    c.headers();
    const QDateTime d = mail::parseDate(c.header.value("date"));
    return d.isValid() ? d.date() : imapLocalDate(c.view.messages().at(c.index).mtimeMs);
}

// The flag keys (system flags, \Recent, keywords) against message c.index.
bool flagKeyMatches(const Key& k, const Context& c) {
    const Message& m = c.view.messages().at(c.index);
    auto has = [&](char f) { return m.flags.contains(QLatin1Char(f)); };
    switch (k.type) {
        case Key::Answered:
            return has('R');
        case Key::Deleted:
            return has('T');
        case Key::Draft:
            return has('D');
        case Key::Flagged:
            return has('F');
        case Key::Seen:
            return has('S');
        case Key::Unanswered:
            return !has('R');
        case Key::Undeleted:
            return !has('T');
        case Key::Undraft:
            return !has('D');
        case Key::Unflagged:
            return !has('F');
        case Key::Unseen:
            return !has('S');
        // RFC 3501 6.4.4: NEW = RECENT UNSEEN, OLD = NOT RECENT. \Recent exists only for
        // IMAP4rev1 sessions (RFC 9051 removed it; there RECENT matches nothing).
        case Key::New:
            return c.view.isRecent(c.index) && !has('S');
        case Key::Recent:
            return c.view.isRecent(c.index);
        case Key::Old:
            return !c.view.isRecent(c.index);
        case Key::Keyword:
        case Key::Unkeyword: {
            bool found = false;
            for (const QString& f : c.view.imapFlags(c.index))
                if (f.compare(QString::fromUtf8(k.field), Qt::CaseInsensitive) == 0) found = true;
            return k.type == Key::Keyword ? found : !found;
        }
        default:  // not a flag key (matches() passes only those)
            return false;
    }
}

// The date keys: INTERNALDATE (BEFORE, ON, SINCE) or the Date header (SENT*).
bool dateKeyMatches(const Key& k, Context& c) {
    auto internal = [&] { return imapLocalDate(c.view.messages().at(c.index).mtimeMs); };
    switch (k.type) {
        case Key::Before:
            return internal() < k.date;
        case Key::On:
            return internal() == k.date;
        case Key::Since:
            return internal() >= k.date;
        case Key::SentBefore:
            return sentDate(c) < k.date;
        case Key::SentOn:
            return sentDate(c) == k.date;
        case Key::SentSince:
            return sentDate(c) >= k.date;
        default:  // not a date key (matches() passes only those)
            return false;
    }
}

// The text keys: HEADER and SUBJECT, FROM/TO/CC/BCC, BODY, TEXT.
bool textKeyMatches(const Key& k, Context& c) {
    switch (k.type) {
        case Key::Header:
            if (k.needle.isEmpty()) {
                c.headers();
                return !c.header.values(k.field.constData()).isEmpty();
            }
            return headerMatches(c, k.field, k.needle);
        case Key::Address:
            if (k.needle.isEmpty()) return !c.fieldValues(k.field).isEmpty();  // (as HEADER "" does)
            return addressMatches(c, k);
        case Key::Body:
        case Key::Text:
            return bodyTextOf(c).contains(k.body) || (k.type == Key::Text && headerTextMatches(c, k));
        default:  // not a text key (matches() passes only those)
            return false;
    }
}

// `depth`: how many NOT, OR and parentheses enclose k (as in the parser). The parser
// refuses deeper programs; the check here keeps the recursion bounded on its own.
bool matches(const Key& k, Context& c, int depth) {
    if (depth > kMaxSearchDepth) {
        c.tooDeep = true;
        return false;
    }
    const Message& m = c.view.messages().at(c.index);
    switch (k.type) {
        case Key::All:
            return true;
        case Key::Answered:
        case Key::Deleted:
        case Key::Draft:
        case Key::Flagged:
        case Key::Seen:
        case Key::Unanswered:
        case Key::Undeleted:
        case Key::Undraft:
        case Key::Unflagged:
        case Key::Unseen:
        case Key::New:
        case Key::Recent:
        case Key::Old:
        case Key::Keyword:
        case Key::Unkeyword:
            return flagKeyMatches(k, c);
        case Key::Modseq:
            return m.modseq >= quint64(k.number);
        case Key::Larger:
            return m.vsize > k.number;
        case Key::Smaller:
            return m.vsize < k.number;
        case Key::Before:
        case Key::On:
        case Key::Since:
        case Key::SentBefore:
        case Key::SentOn:
        case Key::SentSince:
            return dateKeyMatches(k, c);
        case Key::Header:
        case Key::Address:
        case Key::Body:
        case Key::Text:
            return textKeyMatches(k, c);
        case Key::Uid:
        case Key::Seq:
            return inIndexRanges(k.set, c.index);
        case Key::Not:
            return !matches(k.children.first(), c, depth + 1);
        case Key::Or:
            return matches(k.children.at(0), c, depth + 1) || matches(k.children.at(1), c, depth + 1);
        case Key::And:  // a parenthesised list
            for (const Key& ch : k.children)
                if (!matches(ch, c, depth + 1)) return false;
            return true;
    }
    return false;
}

// The whole program (the implicit AND of parseAll()): its keys are at depth 0.
bool matchesProgram(const Key& program, Context& c) {
    for (const Key& k : program.children)
        if (!matches(k, c, 0)) return false;
    return true;
}

// The program args[start..] parsed and run over `view` (see evaluateSearchProgram);
// *usedModseq: the program has a MODSEQ key.
std::optional<QList<int>> runSearchProgram(const QList<Token>& args, qsizetype start, const MailboxView& view,
                                           QString* error, bool* usedModseq) {
    Parser p(args, start, view);
    auto program = p.parseAll();
    if (!program) {
        *error = p.error();
        return std::nullopt;
    }
    *usedModseq = p.usedModseq();
    QList<int> hits;
    HeaderCache cache;
    for (int idx = 0; idx < view.messages().size(); ++idx) {
        if (view.messages().at(idx).expunged) continue;  // gone (not reported yet): matches nothing
        Context c{view, idx, &cache};
        const bool hit = matchesProgram(*program, c);
        if (c.tooDeep) {
            *error = QStringLiteral("search keys nested too deeply (limit: %1 levels)").arg(kMaxSearchDepth);
            return std::nullopt;
        }
        if (hit) hits << idx;
    }
    return hits;
}

// SEARCH's options before the program: RETURN (...) (RFC 4731: an ESEARCH answer) and
// CHARSET name.
struct SearchOptions {
    QByteArrayList returns;  // MIN MAX COUNT ALL
    bool esearch = false;
    qsizetype programAt = 0;  // where the search program starts in the arguments
};

// Reads the options; sends BAD (or NO [BADCHARSET]) and returns false when they are wrong.
bool parseSearchOptions(ImapSession& s, const ImapSession::Request& r, SearchOptions& o) {
    qsizetype i = 0;
    if (i < r.args.size() && r.args.at(i).isAtom("RETURN")) {
        if (i + 1 >= r.args.size() || r.args.at(i + 1).kind != Token::Kind::List) {
            s.bad(r, QStringLiteral("RETURN needs a list"));
            return false;
        }
        for (const Token& t : r.args.at(i + 1).items) {
            const QByteArray opt = t.text.toUpper();
            if (opt != "MIN" && opt != "MAX" && opt != "COUNT" && opt != "ALL") {
                s.bad(r, QStringLiteral("Unknown RETURN option"));
                return false;
            }
            o.returns << opt;
        }
        if (o.returns.isEmpty()) o.returns << "ALL";
        o.esearch = true;
        i += 2;
    }
    if (i < r.args.size() && r.args.at(i).isAtom("CHARSET")) {
        if (i + 1 >= r.args.size()) {
            s.bad(r, QStringLiteral("CHARSET needs a name"));
            return false;
        }
        const QByteArray cs = r.args.at(i + 1).text.toUpper();
        if (cs != "UTF-8" && cs != "US-ASCII") {
            s.no(r, QStringLiteral("Unsupported charset"), "BADCHARSET (UTF-8 US-ASCII)");
            return false;
        }
        i += 2;
    }
    o.programAt = i;
    return true;
}

// The matches as the answer numbers them (UIDs or sequence numbers), with their
// mod-sequences and the highest of those (for (MODSEQ n), RFC 7162 3.1.5).
struct SearchHits {
    QList<quint32> numbers;
    QList<quint64> modseqs;  // of each hit
    quint64 highest = 0;
};

SearchHits searchHits(const MailboxView& v, const QList<int>& indexes, bool uid) {
    SearchHits h;
    for (int idx : indexes) {
        h.numbers << (uid ? v.messages().at(idx).uid : quint32(idx + 1));
        h.modseqs << v.messages().at(idx).modseq;
        h.highest = std::max(h.highest, v.messages().at(idx).modseq);
    }
    return h;
}

// "SEARCH 2 5 7 [(MODSEQ n)]".
QByteArray searchLine(const SearchHits& h, bool reportModseq) {
    QByteArray line = "SEARCH";
    for (quint32 n : h.numbers) line += ' ' + QByteArray::number(n);
    if (reportModseq) line += " (MODSEQ " + QByteArray::number(h.highest) + ')';
    return line;
}

// "ESEARCH (TAG "a1") [UID] [MIN n] [MAX n] [ALL set] [COUNT n] [MODSEQ n]" (RFC 4731).
QByteArray esearchLine(const ImapSession::Request& r, const QByteArrayList& returns, const SearchHits& h,
                       bool reportModseq) {
    QByteArray line = "ESEARCH (TAG " + quoteString(r.tag) + ')';
    if (r.uid) line += " UID";
    if (!h.numbers.isEmpty()) {
        if (returns.contains("MIN")) line += " MIN " + QByteArray::number(h.numbers.first());
        if (returns.contains("MAX")) line += " MAX " + QByteArray::number(h.numbers.last());
        if (returns.contains("ALL")) line += " ALL " + compactSet(h.numbers);
    }
    if (returns.contains("COUNT")) line += " COUNT " + QByteArray::number(h.numbers.size());
    if (reportModseq) {
        // RFC 7162 3.1.5 (with RFC 4731): the highest mod-sequence of the messages the
        // result returns: with only MIN and/or MAX, those one or two messages.
        quint64 returned = h.highest;
        if (!returns.contains("ALL") && !returns.contains("COUNT")) {
            returned = 0;
            if (returns.contains("MIN")) returned = std::max(returned, h.modseqs.first());
            if (returns.contains("MAX")) returned = std::max(returned, h.modseqs.last());
        }
        line += " MODSEQ " + QByteArray::number(returned);
    }
    return line;
}

}  // namespace

std::optional<QList<int>> evaluateSearchProgram(const QList<Token>& args, qsizetype start, const MailboxView& view,
                                                QString* error) {
    bool usedModseq = false;
    return runSearchProgram(args, start, view, error, &usedModseq);
}

void Commands::search(ImapSession& s, const R& r) {
    MailboxView& v = *selected(s);
    SearchOptions o;
    if (!parseSearchOptions(s, r, o)) return;
    QString error;
    bool usedModseq = false;
    const auto indexes = runSearchProgram(r.args, o.programAt, v, &error, &usedModseq);
    if (!indexes) {
        s.bad(r, QStringLiteral("Search syntax error: %1").arg(error));
        return;
    }
    const SearchHits hits = searchHits(v, *indexes, r.uid);
    if (usedModseq) s.enableCondstore();
    const bool reportModseq = usedModseq && !hits.numbers.isEmpty();
    s.untagged(o.esearch ? esearchLine(r, o.returns, hits, reportModseq) : searchLine(hits, reportModseq));
    s.ok(r, QStringLiteral("SEARCH completed"));
}

struct HeaderBlocks::Impl {
    explicit Impl(const MailboxView& v) : view(v) {}
    const MailboxView& view;
    HeaderCache cache;
};

HeaderBlocks::HeaderBlocks(const MailboxView& view) : d(std::make_unique<Impl>(view)) {}
HeaderBlocks::~HeaderBlocks() = default;

QByteArray HeaderBlocks::block(int index) {
    Context c{d->view, index, &d->cache};
    return c.headerBlock();
}

}  // namespace postern::imap
