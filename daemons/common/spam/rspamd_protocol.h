// rspamd_protocol.h — the wire side of spam scanning with Rspamd (its HTTP protocol,
// POST /checkv2), without I/O: the request head, the reply parser, what Postern does
// with each Rspamd action, and the X-Spam-* header fields.
//
// Wire grammar of the reply we accept (HTTP/1.x, what Rspamd's normal worker sends):
//   reply   = status-line *( field CRLF ) CRLF body
//   status  = "HTTP/1." DIGIT SP 3DIGIT [ SP reason ] CRLF   (only 200 is a verdict)
//   field   = name ":" value; Content-Length is required (one, decimal, <= kMaxReplyBody);
//             Transfer-Encoding is refused (Rspamd does not chunk replies to /checkv2)
//   body    = exactly Content-Length bytes of JSON: an object with "action" (one of the
//             six Rspamd actions), "score" and "required_score" (finite numbers),
//             optional "is_skipped" (boolean) and "symbols" (object; names kept, bounded).
// Bytes after the body are an error (we send "Connection: close").
//
// Interface:
//   RspamdReplyParser  feed() bytes in any split; state() NeedMore / Done / Failed;
//                      verdict() when Done, error() when Failed. Never throws.
//   parseVerdictJson(body)  the JSON part alone (also used by tests and the fuzz target).
//   buildCheckRequestHead(request, contentLength)  "POST /checkv2 ..." with the envelope,
//                      client, TLS facts and our SPF/DKIM/DMARC results (Rspamd's
//                      http_headers module turns SPF/DKIM/DMARC request fields into its
//                      symbols instead of checking again). Values are sanitised (no CR/LF,
//                      printable ASCII or UTF-8, bounded).
//   SpamPolicy / decide(verdict, policy)  the Postern outcome (Reject, TempFail, Junk, Inbox)
//                      of an Rspamd action; policyFromConfig(config) from the spam.action_*
//                      settings.
//   spamHeaders(verdict) / uncheckedHeaders()  "X-Spam-Status"/"X-Spam-Score" fields.
//   stripSpamHeaders(header, &changed)  the header block without X-Spam-* fields (with
//                      their continuation lines): only we write those on this host.
// Security: the reply is from a local process, but parsed as untrusted (a compromised or
// confused Rspamd must not crash or mislead us): every length bounded, numbers checked.
// Limits: kMaxReplyHead (status + fields, 16 KiB), kMaxReplyBody (JSON, 1 MiB),
// kMaxSymbols (names kept for the log, 64), kMaxHeaderValue (one request field, 998).
// Standards: RFC 9112 (HTTP/1.1 message syntax), RFC 8259 (JSON), Rspamd protocol
// (rspamd.com/doc/developers/protocol.html).
#pragma once

#include "core/result.h"

#include <QByteArray>
#include <QList>
#include <QString>
#include <QStringList>

namespace postern {
class Config;
}

namespace postern::spam {

constexpr qsizetype kMaxReplyHead = 16 * 1024;
constexpr qsizetype kMaxReplyBody = 1024 * 1024;
constexpr qsizetype kMaxSymbols = 64;
constexpr qsizetype kMaxHeaderValue = 998;

enum class RspamdAction { NoAction, Greylist, AddHeader, RewriteSubject, SoftReject, Reject };
QString toString(RspamdAction a);  // Rspamd's own spelling: "no action", "add header", ...

struct Verdict {
    RspamdAction action = RspamdAction::NoAction;
    double score = 0;
    double requiredScore = 0;
    bool skipped = false;
    QStringList symbols;  // at most kMaxSymbols names, sorted
};

Result<Verdict> parseVerdictJson(const QByteArray& body);

class RspamdReplyParser {
public:
    enum class State { NeedMore, Done, Failed };
    State feed(const char* data, qsizetype size);
    State feed(const QByteArray& bytes) { return feed(bytes.constData(), bytes.size()); }
    State state() const { return m_state; }
    const Verdict& verdict() const { return m_verdict; }
    const QString& error() const { return m_error; }

private:
    State fail(const QString& why);
    State parseHead();
    State m_state = State::NeedMore;
    QByteArray m_head;  // until the empty line
    QByteArray m_body;
    bool m_inBody = false;
    qsizetype m_contentLength = -1;
    Verdict m_verdict;
    QString m_error;
};

struct DkimFact {
    QString result;  // RFC 8601 result: pass, fail, neutral, temperror, permerror, policy
    QString domain;
};

struct CheckRequest {
    QString sender;          // MAIL FROM, "" = null sender
    QStringList recipients;  // local mailboxes the copy goes to
    QString clientAddress;   // the SMTP client's IP
    QString helo;
    QString queueId;
    QString authUser;     // "" on the MX listener
    QString tlsProtocol;  // "" without TLS
    QString tlsCipher;
    QString mtaName;  // our host name
    // Postern's own results (RFC 8601 keywords); empty = not computed, Rspamd checks itself.
    QString spf;           // pass, fail, softfail, neutral, none, temperror, permerror
    QList<DkimFact> dkim;  // one per signature; empty list with dkimChecked = no signature
    bool dkimChecked = false;
    QString dmarc;        // pass, fail, none, temperror, permerror
    QString dmarcPolicy;  // for fail: none, quarantine, reject
};

QByteArray buildCheckRequestHead(const CheckRequest& r, qint64 contentLength);

enum class Outcome { Reject, TempFail, Junk, Inbox };
QString toString(Outcome o);  // "reject", "tempfail", "junk", "inbox"
std::optional<Outcome> outcomeFromString(const QString& s);

struct SpamPolicy {
    Outcome reject = Outcome::Reject;
    Outcome softReject = Outcome::TempFail;
    Outcome greylist = Outcome::TempFail;
    Outcome addHeader = Outcome::Junk;
    Outcome rewriteSubject = Outcome::Junk;
};
Outcome decide(const Verdict& v, const SpamPolicy& policy);
// The spam.action_* settings (postern-smtpd and `posternctl spam check` read them here).
SpamPolicy policyFromConfig(const Config& config);

QByteArray spamHeaders(const Verdict& v);  // "X-Spam-Status: Yes, score=7.50 required=6.00 action=\"add
                                           // header\"\r\nX-Spam-Score: 7.50\r\n"
QByteArray uncheckedHeaders();             // "X-Spam-Status: unchecked\r\n"
QByteArray stripSpamHeaders(const QByteArray& header, bool* changed);

}  // namespace postern::spam
