// fuzz_senderauth.cpp — SPF evaluation, DMARC record parsing, DKIM verification,
// forged Authentication-Results removal (RFC 8601 authserv-id parsing), the
// From:/Sender: identity of submitted mail, and the DSN parameters (ORCPT,
// ENVID, xtext) on hostile input.
// Input: line 1 = the TXT record every TXT query answers (so include: and
// redirect= recurse into it, exercising the lookup limits) and also an ORCPT
// value, line 2 = a DMARC record for parseDmarc and an ENVID / utf-8 address,
// the rest = the message.
#include "common/mail/dsn_params.h"
#include "common/mail/header_identity.h"
#include "common/senderauth/inbound.h"
#include "common/senderauth/spf.h"

#include <cstddef>
#include <cstdint>

using namespace postern;

namespace {
class FuzzResolver : public Resolver {
public:
    QByteArray txt;
    DnsAnswer query(const QString& name, DnsType type) override {
        DnsAnswer a;
        a.status = DnsAnswer::Status::Ok;
        DnsRecord r;
        r.name = name;
        r.type = type;
        switch (type) {
            case DnsType::TXT:
                for (qsizetype i = 0; i < txt.size(); i += 255) r.strings << txt.mid(i, 255);
                break;
            case DnsType::A:
                r.address = QHostAddress(QStringLiteral("127.0.0.1"));
                break;
            case DnsType::AAAA:
                r.address = QHostAddress(QStringLiteral("::1"));
                break;
            case DnsType::MX:
                r.target = QStringLiteral("mx.fuzz.test");
                break;
            case DnsType::PTR:
                r.target = QStringLiteral("host.fuzz.test");
                break;
            default:
                a.status = DnsAnswer::Status::NoData;
                return a;
        }
        a.records << r;
        return a;
    }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const QByteArray input(reinterpret_cast<const char*>(data), qsizetype(size));
    const qsizetype nl1 = input.indexOf('\n');
    const qsizetype nl2 = nl1 < 0 ? -1 : input.indexOf('\n', nl1 + 1);
    FuzzResolver dns;
    dns.txt = nl1 < 0 ? input : input.left(nl1);
    const QByteArray dmarc = nl1 < 0 ? QByteArray() : input.mid(nl1 + 1, nl2 < 0 ? -1 : nl2 - nl1 - 1);
    const QByteArray message = nl2 < 0 ? QByteArray() : input.mid(nl2 + 1);
    senderauth::checkSpf(dns, QHostAddress(QStringLiteral("192.0.2.1")), QStringLiteral("a.b-c@fuzz.test"),
                         QStringLiteral("helo.fuzz.test"));
    senderauth::checkSpf(dns, QHostAddress(QStringLiteral("2001:db8::1")), QString(), QStringLiteral("helo.fuzz.test"));
    senderauth::parseDmarc(dmarc);
    bool changed = false;
    senderauth::stripForgedResults(message, QStringLiteral("mail.fuzz.test"), &changed);
    mail::checkSubmitterIdentity(message, QStringLiteral("a@fuzz.test"),
                                 [](const QString& a) { return a.endsWith(QStringLiteral("@fuzz.test")); });
    if (auto o = mail::parseOrcpt(dns.txt, true)) mail::orcptForReport(*o);
    if (auto o = mail::storedOrcpt(QString::fromUtf8(dns.txt))) mail::formatOrcpt(*o);
    mail::decodeEnvid(dmarc);
    mail::decodeUtf8Addr(dmarc, true);
    senderauth::InboundInput in;
    in.client = QHostAddress(QStringLiteral("192.0.2.1"));
    in.sender = QStringLiteral("x@fuzz.test");
    in.helo = QStringLiteral("helo.fuzz.test");
    in.authservId = QStringLiteral("mail.fuzz.test");
    senderauth::evaluateInbound(dns, mail::MessageFile::fromBytes(message), in);
    senderauth::organizationalDomain(QString::fromUtf8(dns.txt.left(300)));
    return 0;
}
