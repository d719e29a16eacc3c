// fuzz_firewall_rules.cpp — libFuzzer target for the firewall readers and the
// evaluator. The first byte picks the reader (even: nft JSON, odd:
// iptables-save); whatever parses is then evaluated for a few probes, so
// crafted jump graphs, verdict maps and sets exercise the walk's limits too.
// Seeds: corpus/ (captured rulesets, trimmed).
#include "firewall/evaluate.h"
#include "firewall/iptables_save.h"
#include "firewall/nft_json.h"

#include <cstddef>
#include <cstdint>

using namespace postern::firewall;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const QByteArray text(reinterpret_cast<const char*>(data + 1), qsizetype(size - 1));
    const bool nft = (data[0] & 1) == 0;
    const postern::Result<Ruleset> rs =
        nft ? parseNftJson(text)
            : parseIptablesSave(text, (data[0] & 2) ? IpFamily::V6 : IpFamily::V4, Backend::IptablesNft);
    if (!rs) return 0;
    const Evaluator ev(*rs);
    for (const quint16 port : {quint16(25), quint16(993)})
        for (const IpFamily f : {IpFamily::V4, IpFamily::V6})
            for (const char* iif : {"", "eth0"}) (void)ev.evaluate(Probe{f, port, QString::fromLatin1(iif)});
    return 0;
}
