// fuzz_imap_body_search.cpp — libFuzzer target: SEARCH BODY/TEXT's part walk and byte
// search (imapd/imap_body_search.h) on a hostile message, differential: every answer must
// equal the reference algorithm's (tests/unit/imapd/body_search_reference.h).
// Input: one length byte n, then up to n % 33 bytes of needle, then the message. Three
// needles go through one BodyText (its per-part caches in play): the needle, its ASCII
// upper-case form, and its second half.
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
    for (const QByteArray& k : {needle, needle.toUpper(), needle.mid(n / 2)}) {
        const bool want = reference.contains(QString::fromUtf8(k).toLower());
        if (text.contains(postern::imap::BodyNeedle(k)) != want) std::abort();
    }
    return 0;
}
