// fuzz_migration.cpp — libFuzzer target: what posternctl reads from other
// systems during a migration: IMAP server responses (ImapResponseParser, fed in
// splits chosen by the first input byte, with small limits so they are reached),
// mbox files (MboxReader, mboxrd and mboxo) and backup manifests.
#include "ctl/backup_snapshot.h"
#include "ctl/imap_client_parser.h"
#include "ctl/mbox.h"

#include <cstdint>

using namespace postern::ctl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const qsizetype step = 1 + data[0] % 64;
    const QByteArray text(reinterpret_cast<const char*>(data + 1), qsizetype(size - 1));
    ClientLimits limits;
    limits.maxLine = 4096;
    limits.maxLiteral = 8192;
    limits.maxResponse = 16384;
    limits.maxDepth = 8;
    limits.maxValues = 512;
    ImapResponseParser p(limits);
    MboxReader rd(MboxFormat::Mboxrd, 4096), ro(MboxFormat::Mboxo, 4096);
    for (qsizetype pos = 0; pos < text.size(); pos += step) {
        const QByteArrayView chunk = QByteArrayView(text).sliced(pos, std::min(step, text.size() - pos));
        p.feed(chunk);
        rd.feed(chunk);
        ro.feed(chunk);
        for (;;) {
            ImapResponse r;
            if (p.next(&r) != ImapResponseParser::Result::Response) break;
        }
        while (rd.hasMessage()) (void)rd.take();
        while (ro.hasMessage()) (void)ro.take();
    }
    rd.finish();
    while (rd.hasMessage()) {
        const MboxMessage m = rd.take();
        (void)mboxrdMessage(m.bytes, m.flags, QDateTime::fromMSecsSinceEpoch(m.internalDateMs, Qt::UTC));
    }
    (void)postern::ctl::backup::Manifest::parse(text);
    (void)postern::ctl::backup::checkMessageHeader(text);
    return 0;
}
