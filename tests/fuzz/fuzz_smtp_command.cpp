// fuzz_smtp_command.cpp — libFuzzer target: SMTP command-line parser.
#include "smtpd/smtp_command.h"

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const QByteArray line(reinterpret_cast<const char*>(data), qsizetype(size));
    postern::smtp::ParseResult r = postern::smtp::parseCommand(line);
    if (auto* c = std::get_if<postern::smtp::Command>(&r)) {
        (void)c->path.address();
        for (const auto& [k, v] : c->params) (void)postern::smtp::decodeXtext(v);
    }
    return 0;
}
