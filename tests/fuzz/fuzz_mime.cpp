// fuzz_mime.cpp — libFuzzer target: RFC 5322 header, MIME structure, RFC 2047
// words, address lists and dates; every offset must stay inside the input.
#include "common/mail/message.h"

#include <cstdint>
#include <cstdlib>

namespace {
void check(const postern::mail::MimePart& p, qsizetype size, int depth) {
    if (p.headerStart < 0 || p.bodyEnd > size || p.bodyStart > p.bodyEnd || p.headerStart > p.headerEnd) std::abort();
    if (depth > postern::mail::kMaxDepth + 1) std::abort();
    for (const auto& c : p.children) check(c, size, depth + 1);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const QByteArray msg(reinterpret_cast<const char*>(data), qsizetype(size));
    const postern::mail::MimePart root = postern::mail::parseMime(msg);
    check(root, msg.size(), 0);
    const postern::mail::Header h = postern::mail::parseHeader(msg);
    for (const auto& f : h.fields) {
        (void)postern::mail::decodeHeaderText(f.value);
        (void)postern::mail::parseAddressList(f.value);
        (void)postern::mail::parseDate(f.value);
    }
    (void)postern::mail::decodeTransferEncoding(msg, QStringLiteral("quoted-printable"));
    (void)postern::mail::decodeTransferEncoding(msg, QStringLiteral("base64"));
    return 0;
}
