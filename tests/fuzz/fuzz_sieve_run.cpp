// fuzz_sieve_run.cpp — libFuzzer target: the Sieve interpreter. The input is a
// script, a NUL byte, then a message (header, empty line, body). Every script
// that compiles is run over the message with small limits; the outcome must be
// sane: on a runtime error exactly one implicit keep, never more actions than
// the limit allows (+ the implicit keep and discards), never more steps.
// Vacation actions are then carried out as far as no file is touched
// (common/sieve/sieve_vacation.h): the RFC 3834 rules over the fuzzed header,
// and the reply, whose header must hold exactly one Subject and no field the
// sender's text could have injected (Bcc). include (RFC 6609): every name
// resolves to the fuzzed script itself (personal "main" is the running one), so
// loops, :once, return and global variables across nesting are exercised within
// Limits::maxIncludeDepth and maxIncludes.
#include "common/mail/message.h"
#include "common/sieve/sieve.h"
#include "common/sieve/sieve_vacation.h"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const QByteArray input(reinterpret_cast<const char*>(data), qsizetype(size));
    const qsizetype nul = input.indexOf('\0');
    const QByteArray script = nul < 0 ? input : input.left(nul);
    const QByteArray msg = nul < 0 ? QByteArray("Subject: x\r\n\r\nbody\r\n") : input.mid(nul + 1);
    postern::sieve::Limits limits;
    limits.maxSteps = 20000;
    auto compiled = postern::sieve::compile(script, limits);
    if (!compiled) return 0;
    postern::sieve::Message m;
    qsizetype split = msg.indexOf("\r\n\r\n");
    m.header = split < 0 ? msg : msg.left(split + 2);
    m.body = split < 0 ? QByteArray() : msg.mid(split + 4);
    m.size = msg.size();
    m.envelopeFrom = QStringLiteral("sender+tag@example.org");
    m.envelopeTo = QStringLiteral("user+detail@example.com");
    m.now = QDateTime::fromSecsSinceEpoch(1800000000, Qt::UTC);
    m.scriptName = QStringLiteral("main");
    auto self = std::make_shared<const postern::sieve::Script>(*compiled);
    m.include = [self](bool, const QString& name, QString*) {
        return name == u"missing" ? std::shared_ptr<const postern::sieve::Script>() : self;
    };
    const postern::sieve::Outcome o = postern::sieve::run(*compiled, m, limits);
    if (o.steps > limits.maxSteps) std::abort();
    if (o.error && (o.actions.size() != 1 || !o.actions.first().implicit)) std::abort();
    if (o.actions.size() > limits.maxActions + 2 + 64) std::abort();
    for (const auto& a : o.actions) {
        (void)postern::sieve::describe(a);
        if (a.type != postern::sieve::Action::Type::Vacation) continue;
        postern::sieve::VacationFacts f;
        f.header = m.header;
        f.envelopeFrom = m.envelopeFrom;
        f.envelopeTo = m.envelopeTo;
        f.mailbox = QStringLiteral("user@example.com");
        (void)postern::sieve::whyNoReply(a, f);
        const postern::sieve::VacationReply r = postern::sieve::buildReply(a, f, f.mailbox, m.now);
        const postern::mail::Header h = postern::mail::parseHeader(r.message);
        if (h.values("subject").size() != 1 || !h.values("bcc").isEmpty()) std::abort();
    }
    return 0;
}
