// fuzz_imap_thread.cpp — libFuzzer target: the SORT/THREAD and BINARY helpers.
// Input lines "subject|message-id|references|minutes" become a mailbox that is
// threaded both ways (base subjects, Message-ID lists, loops, dummies); the
// whole input is also a message for BINARY part lookup and decoding, and its
// first line a BINARY fetch item.
#include "imapd/imap_binary.h"
#include "imapd/imap_thread.h"

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace postern::imap;
    const QByteArray input(reinterpret_cast<const char*>(data), qsizetype(size));
    QList<ThreadMessage> mailbox;
    const QList<QByteArray> lines = input.split('\n');
    for (qsizetype i = 0; i < lines.size() && i < 200; ++i) {
        const QList<QByteArray> f = lines.at(i).split('|');
        ThreadMessage m;
        m.number = quint32(i + 1);
        m.subject = extractBaseSubject(f.value(0));
        m.messageId = parseMessageIds(f.value(1)).value(0);
        m.references = parseMessageIds(f.value(2));
        m.sentDate = f.value(3).toLongLong() % 1000;
        mailbox << m;
    }
    (void)threadByReferences(mailbox).format();
    (void)threadByOrderedSubject(mailbox).format();
    (void)compareAsciiCasemap(lines.value(0), lines.value(1));

    if (auto item = parseBinaryItem(lines.value(0))) {
        const postern::mail::MimePart root = postern::mail::parseMime(input);
        const BinaryResult r = binarySection(input, root, item->part);
        (void)binaryLiteral(r.data);
    }
    return 0;
}
