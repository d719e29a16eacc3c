// fuzz_imap_body_search.cpp — libFuzzer target: SEARCH BODY/TEXT's part walk and byte
// search (imapd/imap_body_search.h) on a hostile message, differential: every answer must
// equal the reference algorithm's (tests/unit/imapd/body_search_reference.h).
// Input: one length byte n, then up to n % 33 bytes of needle, then the message. Three
// needles go through one BodyText (its per-part caches in play): the needle, its ASCII
// upper-case form, and its second half. The same needles through a BodyText built from
// the message's text part spans after their round trip through the kept form
// (encodeTextParts / decodeTextParts, as a later search reads them from the index), and
// the message's bytes read as a kept form (hostile index bytes): decoding must refuse or
// give spans inside the file, never crash.
#include "imapd/imap_body_search.h"

#include "../unit/imapd/body_search_reference.h"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const qsizetype n = qMin<qsizetype>(data[0] % 33, qsizetype(size) - 1);
    const QByteArray needle(reinterpret_cast<const char*>(data) + 1, n);
    const QByteArray msg(reinterpret_cast<const char*>(data) + 1 + n, qsizetype(size) - 1 - n);
    QString reference;
    postern::imap::reference::collectText(msg, postern::mail::parseMime(msg), reference);
    reference = reference.toLower();
    const postern::mail::MimePart root = postern::mail::parseMime(msg);
    postern::imap::BodyText text(msg, root);
    const QList<postern::imap::TextPartSpan> spans = postern::imap::textPartSpans(root);
    const QByteArray encoded = postern::imap::encodeTextParts(spans);  // (empty: such spans are not kept)
    const auto kept = postern::imap::decodeTextParts(encoded, msg.size());
    if (!encoded.isEmpty() && (!kept || *kept != spans)) std::abort();
    postern::imap::BodyText fromSpans;
    for (const postern::imap::TextPartSpan& s : spans) fromSpans.addPart(msg.mid(s.start, s.end - s.start), s);
    for (const QByteArray& k : {needle, needle.toUpper(), needle.mid(n / 2)}) {
        const bool want = reference.contains(QString::fromUtf8(k).toLower());
        if (text.contains(postern::imap::BodyNeedle(k)) != want) std::abort();
        if (fromSpans.contains(postern::imap::BodyNeedle(k)) != want) std::abort();
    }
    if (const auto hostile = postern::imap::decodeTextParts(msg, msg.size()))
        for (const postern::imap::TextPartSpan& s : *hostile)
            if (s.start < 0 || s.end < s.start || s.end > msg.size()) std::abort();
    return 0;
}
