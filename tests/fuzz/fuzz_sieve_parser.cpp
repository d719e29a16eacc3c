// fuzz_sieve_parser.cpp — libFuzzer target: the Sieve lexer, parser and
// validator (common/sieve/sieve.h). Every input either compiles or gives an
// error that starts with "line:column: ".
#include "common/sieve/sieve.h"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const QByteArray script(reinterpret_cast<const char*>(data), qsizetype(size));
    auto compiled = postern::sieve::compile(script);
    if (!compiled) {
        const QString& m = compiled.error().message;
        const qsizetype colon = m.indexOf(u':');
        if (colon <= 0 || compiled.error().code <= 0) std::abort();
    }
    return 0;
}
