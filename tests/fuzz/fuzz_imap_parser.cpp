// fuzz_imap_parser.cpp — libFuzzer target: IMAP command framing (literals,
// limits before and after login, a small input budget) and the argument
// parser, fed in pieces. The first byte chooses the state (bit 0: logged in).
#include "imapd/imap_parser.h"

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    postern::imap::ReaderLimits limits;
    limits.maxLine = 1024;
    limits.maxLiteral = 4096;
    limits.maxCommand = 16384;
    limits.maxLiteralBeforeAuth = 512;
    limits.maxCommandBeforeAuth = 2048;
    limits.budgetFreeLiteral = 256;
    postern::InputBudget budget(8192);
    postern::imap::CommandReader reader(limits, &budget);
    reader.setAuthenticated(size > 0 && (data[0] & 1));
    QByteArray pending;
    for (size_t i = 0; i < size; i += 7) {
        pending.append(reinterpret_cast<const char*>(data + i), qsizetype(std::min<size_t>(7, size - i)));
        for (int guard = 0; guard < 1000 && !pending.isEmpty(); ++guard) {
            postern::imap::CommandReader::Event ev;
            const qsizetype used = reader.feed(pending.constData(), pending.size(), &ev);
            pending.remove(0, used);
            if (ev == postern::imap::CommandReader::Event::Command) {
                postern::imap::ArgParser p(reader.takeCommand());
                QByteArray tag, name;
                if (p.header(&tag, &name)) (void)p.rest();
            } else if (ev != postern::imap::CommandReader::Event::None &&
                       ev != postern::imap::CommandReader::Event::Continue) {
                reader.reset();
            }
            if (reader.heldBytes() > limits.maxCommand + 2 * limits.maxLine) __builtin_trap();  // a bound was not kept
            if (used == 0) break;
        }
    }
    reader.reset();
    if (budget.used() != 0) __builtin_trap();  // every byte counted is given back
    return 0;
}
