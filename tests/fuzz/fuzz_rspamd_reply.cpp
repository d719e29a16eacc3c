// fuzz_rspamd_reply.cpp — libFuzzer target: the spam filter's Rspamd reply parser
// (common/spam/rspamd_protocol.h), fed in pieces whose sizes come from the input, and the
// X-Spam-* removal over the same bytes. Checks the parser's promises: a Done verdict has a
// known action, finite scores within range and at most kMaxSymbols symbols; once Done or
// Failed it never goes back to NeedMore; the removal never makes the bytes longer.
#include "common/spam/rspamd_protocol.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>

using namespace postern::spam;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const size_t piece = size_t(data[0] & 0x3f) + 1;
    RspamdReplyParser parser;
    for (size_t i = 1; i < size; i += piece) {
        const auto before = parser.state();
        const auto st = parser.feed(reinterpret_cast<const char*>(data + i), qsizetype(std::min(piece, size - i)));
        if (before != RspamdReplyParser::State::NeedMore && st == RspamdReplyParser::State::NeedMore) std::abort();
    }
    if (parser.state() == RspamdReplyParser::State::Done) {
        const Verdict& v = parser.verdict();
        if (!std::isfinite(v.score) || std::fabs(v.score) > 1e9 || v.symbols.size() > kMaxSymbols) std::abort();
        if (toString(v.action) == QStringLiteral("?")) std::abort();
    }
    const QByteArray bytes(reinterpret_cast<const char*>(data + 1), qsizetype(size - 1));
    bool changed = false;
    if (stripSpamHeaders(bytes, &changed).size() > bytes.size()) std::abort();
    return 0;
}
