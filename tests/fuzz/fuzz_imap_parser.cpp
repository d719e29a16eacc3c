// fuzz_imap_parser.cpp — libFuzzer target: IMAP command framing (literals,
// limits) and the argument parser, fed in pieces.
#include "imap_parser.h"

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    postern::imap::ReaderLimits limits;
    limits.maxLine = 1024;
    limits.maxLiteral = 4096;
    limits.maxCommand = 16384;
    postern::imap::CommandReader reader(limits);
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
            } else if (ev != postern::imap::CommandReader::Event::None && ev != postern::imap::CommandReader::Event::Continue) {
                reader.reset();
            }
            if (used == 0) break;
        }
    }
    return 0;
}
