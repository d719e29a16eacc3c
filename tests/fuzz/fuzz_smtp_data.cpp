// fuzz_smtp_data.cpp — libFuzzer target: DATA reader + content checker, with
// an invariant: what is stored never contains a bare LF in "normalize" mode.
#include "smtpd/smtp_data.h"

#include <cstdint>
#include <cstdlib>

namespace {
class Sink : public postern::smtp::BodySink {
public:
    QByteArray data;
    bool write(const char* d, qsizetype n) override {
        data.append(d, n);
        return true;
    }
    int errorCode() const override { return 0; }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    postern::smtp::ContentLimits limits;
    limits.normalizeBareLineEndings = data[0] & 1;
    limits.maxMessageSize = 1 << 16;
    Sink sink;
    postern::smtp::ContentChecker checker(limits, &sink);
    postern::smtp::DataReader reader(&checker);
    QByteArray pending;
    for (size_t i = 1; i < size && !reader.done(); ++i) {
        pending.append(char(data[i]));
        pending.remove(0, reader.feed(pending.constData(), pending.size()));
    }
    if (reader.done() && limits.normalizeBareLineEndings && checker.issue() == postern::smtp::ContentIssue::None) {
        for (qsizetype i = 0; i < sink.data.size(); ++i)
            if (sink.data.at(i) == '\n' && (i == 0 || sink.data.at(i - 1) != '\r')) std::abort();
    }
    return 0;
}
