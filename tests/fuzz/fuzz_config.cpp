// fuzz_config.cpp — libFuzzer target: postern.conf parser and the account
// files (domains/users/aliases) with alias resolution.
#include "core/accounts.h"
#include "core/config.h"

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const QByteArray text(reinterpret_cast<const char*>(data), qsizetype(size));
    auto c = postern::Config::parse(text, QStringLiteral("fuzz.conf"), QStringLiteral("/fuzz"));
    if (c) (void)c->render(true);
    // Split the input in three for domains / users / aliases.
    const qsizetype a = text.size() / 3, b = 2 * text.size() / 3;
    auto acc = postern::Accounts::parse(text.left(a), text.mid(a, b - a), text.mid(b));
    if (acc) {
        for (const auto& [src, targets] : acc->aliases())
            (void)acc->resolve(src.startsWith(QLatin1Char('@')) ? QStringLiteral("x") + src : src);
        (void)acc->serializeAliases();
    }
    return 0;
}
