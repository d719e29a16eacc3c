// fuzz_http_request.cpp — postern-webd's request-head parser, the autodiscover body
// reader and the web panel's form parser (parseForm) on hostile input.
#include "webd/http_request.h"
#include "webd/web_content.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const QByteArray input(reinterpret_cast<const char*>(data), qsizetype(size));
    const auto p = postern::web::parseRequestHead(input);
    if (p.status == postern::web::HttpParse::Status::Complete) {
        postern::web::queryParameter(p.request.query, QStringLiteral("emailaddress"));
        postern::web::autodiscoverEmail(input.mid(p.headerBytes));
        (void)postern::web::parseForm(input.mid(p.headerBytes));
    }
    return 0;
}
