// imap_body_search.h — SEARCH BODY/TEXT over one message's text parts (RFC 9051 6.4.4),
// and the address text FROM/TO/CC/BCC match.
//
// Interface:
//   BodyNeedle(text)       a search string as the client sent it (UTF-8), prepared once
//                          per key: `lower` is QString::fromUtf8(text).toLower(), as for
//                          every text key; when that is ASCII, not empty and without
//                          '\n', it is also kept as bytes for the byte search below.
//   BodyText(msg, root)    the text leaf parts of a message (root = mail::parseMime(msg),
//                          multipart and message/rfc822 children walked in order); msg
//                          and root must outlive it. Each part is transfer-decoded once.
//   BodyText::contains(n)  exactly: "every text part, transfer-decoded, read in its
//                          charset (mail::decodeCharset; absent: UTF-8), each followed by
//                          '\n', joined, then QString::toLower()" contains n.lower.
// How it stays exact while skipping the decoding where it can: a needle with a byte form
// is looked for part by part (it has no '\n', so no match spans two parts) in the part's
// bytes with ASCII letters of either case matching (no lower-cased copy: memchr finds the
// places of the needle's rarest byte, each is compared), where that is provably the
// same answer:
//   - the part's charset is read byte for byte as UTF-8 (utf-8, utf8, us-ascii, ascii)
//     or Latin-1 (iso-8859-1, latin1): ASCII bytes become the same ASCII characters,
//     every other byte or byte sequence becomes non-ASCII characters (U+FFFD when
//     invalid), in order, never dropped or merged with an ASCII byte;
//   - no non-ASCII character lower-cases to anything ASCII except U+0130 (to "i" + U+0307)
//     and U+212A KELVIN SIGN (to "k"); so a needle with 'i' or 'k' takes the byte search
//     in a UTF-8 part only when its bytes hold neither C4 B0 nor E2 84 AA (the only
//     encodings of those two; Latin-1 cannot express them).
// Any other part (other charsets, or a needle with 'i'/'k' in a part with those
// characters) is decoded and lower-cased on its own; a needle without a byte form (not
// ASCII, empty, or with '\n') takes the whole joined text as above. tst_imap_body_search
// checks these claims over every code point and against the reference algorithm.
// textPartSpans(root)     the text leaf parts BodyText reads, in order: each body's byte
//                          range in the message, its transfer encoding and charset.
// encodeTextParts(spans) / decodeTextParts(bytes, fileSize)  those spans as the index
//                          keeps them (MailboxIndex::Blob::TextParts), so a later BODY or
//                          TEXT search reads only these ranges of the file and parses no
//                          MIME. Encoding gives empty bytes when the spans cannot be kept
//                          (a name over the format's limit, ranges out of order); decoding
//                          gives nullopt for bytes that are not what encodeTextParts wrote
//                          for a file of that size (damaged or foreign: the caller parses
//                          the message instead).
// BodyText() + addPart(body, span)  the same text from those ranges of the file.
// plainHeaderContains(raw, n)  decodeHeaderText(raw).toLower() contains n.lower, decided
//                          from the bytes, or nullopt when the value needs decoding. A
//                          value of ASCII without encoded words ("=?") is only unfolded and
//                          trimmed by decodeHeaderText (line ends become spaces, white space
//                          at either end goes), which a needle with a byte form and no white
//                          space cannot overlap; every other byte stays. So such a needle is
//                          looked for in the raw bytes with ASCII case folding. Other values,
//                          and needles with white space, answer nullopt.
// addressSearchText(raw)   an address field as FROM/TO/CC/BCC match it: every address as
//                          "Display Name <local@domain>" (or "local@domain"), groups as
//                          "name: ...;", joined by ", ", lower-cased.
// addressMayContain(raw, n)  false only when addressSearchText(raw) certainly does not
//                          contain n.lower, decided from the bytes without parsing. Exact
//                          for a needle of ASCII letters and digits (BodyNeedle::word):
//                          the address text is made of the field's display names, quoted
//                          strings, comments, local parts, domains and group names, each a
//                          run of the field's own bytes with only quotes, parentheses,
//                          spaces, folding and separators added or removed around it, which
//                          such a needle cannot span. Two steps join runs: whitespace
//                          removed inside a domain ("exa mple.com"), covered by looking in
//                          the bytes without their whitespace; comments removed inside
//                          <...>, covered by answering true when '<' and '(' both occur.
//                          Decoding steps (encoded words "=?", quoted pairs '\') answer
//                          true too, and so does U+0130 or U+212A in the bytes for a
//                          needle with 'i' or 'k' (as above). tst_imap_body_search checks
//                          it against addressSearchText over generated fields.
// Security: the message is untrusted; nothing here recurses beyond parseMime's tree
// (depth kMaxDepth). Limits: memory of the decoded text parts, at most a few times the
// message's size.
#pragma once

#include "common/mail/message.h"

#include <QByteArray>
#include <QList>
#include <QString>

#include <optional>

namespace postern::imap {

struct BodyNeedle {
    explicit BodyNeedle(const QByteArray& text = {});
    QString lower;           // the needle as every text key matches it
    QByteArray bytes;        // lower as ASCII bytes (empty: no byte search for this needle)
    bool hasIOrK = false;    // bytes hold 'i' or 'k' (non-ASCII characters lower-case to them)
    bool word = false;       // bytes are ASCII letters and digits only (addressMayContain)
    bool spaceless = false;  // bytes hold no white space (' ', '\t' to '\r': plainHeaderContains)
};

std::optional<bool> plainHeaderContains(const QByteArray& raw, const BodyNeedle& needle);

struct TextPartSpan {
    qint64 start = 0, end = 0;  // [start, end) of the part's body in the message
    QString encoding;           // its Content-Transfer-Encoding (decodeTransferEncoding)
    QByteArray charset;         // as decodeCharset gets it (absent: "utf-8")
    bool operator==(const TextPartSpan&) const = default;
};
QList<TextPartSpan> textPartSpans(const mail::MimePart& root);
QByteArray encodeTextParts(const QList<TextPartSpan>& spans);
std::optional<QList<TextPartSpan>> decodeTextParts(QByteArrayView bytes, qint64 fileSize);

QString addressSearchText(const QByteArray& raw);
bool addressMayContain(const QByteArray& raw, const BodyNeedle& needle);

class BodyText {
public:
    BodyText() = default;
    BodyText(const QByteArray& msg, const mail::MimePart& root);
    // One more text part: `body` is the span's bytes of the message, transfer-encoded.
    void addPart(const QByteArray& body, const TextPartSpan& span);
    bool contains(const BodyNeedle& needle);

private:
    struct Part {
        enum class Charset { Utf8, Latin1, Other } kind = Charset::Other;
        QByteArray charset;                 // as decodeCharset gets it
        QByteArray raw;                     // transfer-decoded
        std::optional<bool> hasIOrKSource;  // UTF-8: raw holds C4 B0 or E2 84 AA
        std::optional<QString> lower;       // decodeCharset(raw, charset).toLower() (on first use)
    };
    bool partContains(Part& part, const BodyNeedle& needle);
    QList<Part> m_parts;
    std::optional<QString> m_joined;  // the whole text, lower-cased (needles without a byte form)
};

}  // namespace postern::imap
