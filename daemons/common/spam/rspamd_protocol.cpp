// rspamd_protocol.cpp — see rspamd_protocol.h.
#include "rspamd_protocol.h"

#include "core/config.h"
#include "core/setting_keys.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QJsonValue>
#include <algorithm>
#include <cmath>
#include <optional>

namespace postern::spam {

namespace {

struct ActionName {
    RspamdAction action;
    const char* name;
};
constexpr ActionName kActions[] = {
    {RspamdAction::NoAction, "no action"},     {RspamdAction::Greylist, "greylist"},
    {RspamdAction::AddHeader, "add header"},   {RspamdAction::RewriteSubject, "rewrite subject"},
    {RspamdAction::SoftReject, "soft reject"}, {RspamdAction::Reject, "reject"}};

// A request field value: printable ASCII and UTF-8 only (no CR, LF or other controls), bounded.
QByteArray fieldValue(const QString& v) {
    QByteArray out;
    const QByteArray in = v.toUtf8();
    for (char c : in) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) continue;
        out += c;
        if (out.size() >= kMaxHeaderValue) break;
    }
    return out;
}

void addField(QByteArray& head, const char* name, const QString& value) {
    const QByteArray v = fieldValue(value);
    if (v.isEmpty()) return;
    head += name;
    head += ": ";
    head += v;
    head += "\r\n";
}

// RFC 8601 keywords -> the words of Rspamd's http_headers module.
QString spfWord(const QString& r) {
    if (r == u"pass" || r == u"fail" || r == u"softfail" || r == u"neutral") return r;
    if (r == u"none") return QStringLiteral("na");
    if (r == u"permerror") return QStringLiteral("permfail");
    return {};  // temperror and anything else: let Rspamd look itself
}
QString dkimWord(const QString& r) {
    if (r == u"pass" || r == u"fail") return r;
    if (r == u"temperror") return QStringLiteral("tempfail");
    if (r == u"permerror" || r == u"neutral" || r == u"policy") return QStringLiteral("permfail");
    return {};
}
QString dmarcWord(const QString& r, const QString& policy) {
    if (r == u"pass") return r;
    if (r == u"none") return QStringLiteral("na");
    if (r == u"temperror") return QStringLiteral("tempfail");
    if (r == u"permerror") return QStringLiteral("badpolicy");
    if (r == u"fail") {
        if (policy == u"reject") return QStringLiteral("reject");
        if (policy == u"quarantine") return QStringLiteral("quarantine");
        return QStringLiteral("softfail");
    }
    return {};
}

QByteArray jsonString(const QString& s) {
    QJsonObject o{{QStringLiteral("v"), s}};
    QByteArray doc = QJsonDocument(o).toJson(QJsonDocument::Compact);  // {"v":"..."}
    return doc.mid(5, doc.size() - 6);
}

bool isTokenChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           QByteArrayView("!#$%&'*+-.^_`|~").contains(c);
}

}  // namespace

QString toString(RspamdAction a) {
    for (const ActionName& n : kActions)
        if (n.action == a) return QString::fromLatin1(n.name);
    return QStringLiteral("?");
}

QString toString(Outcome o) {
    switch (o) {
        case Outcome::Reject:
            return QStringLiteral("reject");
        case Outcome::TempFail:
            return QStringLiteral("tempfail");
        case Outcome::Junk:
            return QStringLiteral("junk");
        case Outcome::Inbox:
            return QStringLiteral("inbox");
    }
    return QStringLiteral("?");
}

std::optional<Outcome> outcomeFromString(const QString& s) {
    for (Outcome o : {Outcome::Reject, Outcome::TempFail, Outcome::Junk, Outcome::Inbox})
        if (toString(o) == s) return o;
    return std::nullopt;
}

Result<Verdict> parseVerdictJson(const QByteArray& body) {
    if (body.size() > kMaxReplyBody)
        return Error{QStringLiteral("rspamd reply larger than %1 bytes").arg(kMaxReplyBody)};
    QJsonParseError perr{};
    const QJsonDocument doc = QJsonDocument::fromJson(body, &perr);
    if (perr.error != QJsonParseError::NoError)
        return Error{QStringLiteral("rspamd reply is not JSON: %1").arg(perr.errorString())};
    if (!doc.isObject()) return Error{QStringLiteral("rspamd reply is not a JSON object")};
    const QJsonObject o = doc.object();
    Verdict v;
    const QJsonValue action = o.value(QStringLiteral("action"));
    if (!action.isString()) return Error{QStringLiteral("rspamd reply without \"action\"")};
    bool known = false;
    for (const ActionName& n : kActions)
        if (action.toString() == QLatin1String(n.name)) {
            v.action = n.action;
            known = true;
        }
    if (!known) return Error{QStringLiteral("rspamd reply with unknown action")};
    const QJsonValue score = o.value(QStringLiteral("score"));
    const QJsonValue required = o.value(QStringLiteral("required_score"));
    if (!score.isDouble() || !required.isDouble()) return Error{QStringLiteral("rspamd reply without numeric scores")};
    v.score = score.toDouble();
    v.requiredScore = required.toDouble();
    if (!std::isfinite(v.score) || !std::isfinite(v.requiredScore) || std::fabs(v.score) > 1e9 ||
        std::fabs(v.requiredScore) > 1e9)
        return Error{QStringLiteral("rspamd reply with scores out of range")};
    const QJsonValue skipped = o.value(QStringLiteral("is_skipped"));
    if (!skipped.isUndefined() && !skipped.isBool())
        return Error{QStringLiteral("rspamd reply with a non-boolean is_skipped")};
    v.skipped = skipped.toBool(false);
    const QJsonValue symbols = o.value(QStringLiteral("symbols"));
    if (!symbols.isUndefined()) {
        if (!symbols.isObject()) return Error{QStringLiteral("rspamd reply with non-object symbols")};
        QStringList names = symbols.toObject().keys();  // sorted by QJsonObject
        if (names.size() > kMaxSymbols) names = names.mid(0, kMaxSymbols);
        for (QString& n : names) n = QString::fromUtf8(fieldValue(n.left(64)));
        v.symbols = names;
    }
    return v;
}

RspamdReplyParser::State RspamdReplyParser::fail(const QString& why) {
    m_state = State::Failed;
    m_error = why;
    m_head.clear();
    m_body.clear();
    return m_state;
}

RspamdReplyParser::State RspamdReplyParser::feed(const char* data, qsizetype size) {
    if (m_state != State::NeedMore) {
        if (m_state == State::Done && size > 0) return fail(QStringLiteral("bytes after the rspamd reply"));
        return m_state;
    }
    qsizetype pos = 0;
    if (!m_inBody) {
        // Take bytes up to and including the "\r\n\r\n" that ends the head, never more than kMaxReplyHead.
        while (pos < size) {
            if (m_head.size() >= kMaxReplyHead)
                return fail(QStringLiteral("rspamd reply head larger than %1 bytes").arg(kMaxReplyHead));
            m_head += data[pos++];
            if (m_head.endsWith("\r\n\r\n")) {
                if (parseHead() == State::Failed) return m_state;
                m_inBody = true;
                break;
            }
        }
        if (!m_inBody) return m_state;
    }
    const qsizetype rest = size - pos;
    if (rest > m_contentLength - m_body.size()) return fail(QStringLiteral("bytes after the rspamd reply"));
    m_body.append(data + pos, rest);
    if (m_body.size() < m_contentLength) return m_state;
    auto v = parseVerdictJson(m_body);
    if (!v) return fail(v.error().message);
    m_verdict = *v;
    m_body.clear();
    m_state = State::Done;
    return m_state;
}

RspamdReplyParser::State RspamdReplyParser::parseHead() {
    const QList<QByteArray> lines = m_head.left(m_head.size() - 4).split('\n');
    // Every line ended with CRLF: after the split each but the last ends with '\r'.
    QList<QByteArray> clean;
    for (qsizetype i = 0; i < lines.size(); ++i) {
        QByteArray l = lines.at(i);
        if (i + 1 < lines.size()) {
            if (!l.endsWith('\r')) return fail(QStringLiteral("rspamd reply with a bare LF"));
            l.chop(1);
        }
        if (l.contains('\r')) return fail(QStringLiteral("rspamd reply with a bare CR"));
        clean << l;
    }
    const QByteArray& status = clean.first();
    // "HTTP/1.x NNN[ reason]"
    if (status.size() < 12 || !status.startsWith("HTTP/1.") || status.at(8) != ' ' ||
        (status.size() > 12 && status.at(12) != ' '))
        return fail(QStringLiteral("rspamd reply with a malformed status line"));
    int code = 0;
    for (int i = 9; i < 12; ++i) {
        const char c = status.at(i);
        if (c < '0' || c > '9') return fail(QStringLiteral("rspamd reply with a malformed status line"));
        code = code * 10 + (c - '0');
    }
    bool haveLength = false;
    for (qsizetype i = 1; i < clean.size(); ++i) {
        const QByteArray& f = clean.at(i);
        const qsizetype colon = f.indexOf(':');
        if (colon <= 0) return fail(QStringLiteral("rspamd reply with a malformed header field"));
        for (qsizetype k = 0; k < colon; ++k)
            if (!isTokenChar(f.at(k))) return fail(QStringLiteral("rspamd reply with a malformed header field"));
        const QByteArray name = f.left(colon).toLower();
        const QByteArray value = f.mid(colon + 1).trimmed();
        if (name == "transfer-encoding")
            return fail(QStringLiteral("rspamd reply with Transfer-Encoding (not supported)"));
        if (name == "content-length") {
            if (haveLength) return fail(QStringLiteral("rspamd reply with two Content-Length fields"));
            haveLength = true;
            if (value.isEmpty() || value.size() > 9)
                return fail(QStringLiteral("rspamd reply with a bad Content-Length"));
            qsizetype n = 0;
            for (char c : value) {
                if (c < '0' || c > '9') return fail(QStringLiteral("rspamd reply with a bad Content-Length"));
                n = n * 10 + (c - '0');  // at most 9 digits: no overflow
            }
            if (n > kMaxReplyBody) return fail(QStringLiteral("rspamd reply larger than %1 bytes").arg(kMaxReplyBody));
            m_contentLength = n;
        }
    }
    if (code != 200) return fail(QStringLiteral("rspamd answered HTTP %1").arg(code));
    if (!haveLength) return fail(QStringLiteral("rspamd reply without Content-Length"));
    m_head.clear();
    return m_state;
}

QByteArray buildCheckRequestHead(const CheckRequest& r, qint64 contentLength) {
    QByteArray head = "POST /checkv2 HTTP/1.1\r\nHost: rspamd\r\nConnection: close\r\n";
    head += "Content-Length: " + QByteArray::number(contentLength) + "\r\n";
    if (!r.sender.isEmpty()) addField(head, "From", r.sender);
    for (const QString& rcpt : r.recipients) addField(head, "Rcpt", rcpt);
    if (r.recipients.size() == 1) addField(head, "Deliver-To", r.recipients.first());  // per-user statistics
    addField(head, "IP", r.clientAddress);
    addField(head, "Helo", r.helo);
    addField(head, "Queue-Id", r.queueId);
    addField(head, "User", r.authUser);
    addField(head, "TLS-Version", r.tlsProtocol);
    addField(head, "TLS-Cipher", r.tlsCipher);
    addField(head, "MTA-Name", r.mtaName);
    if (const QString w = spfWord(r.spf); !w.isEmpty())
        addField(head, "SPF", QStringLiteral("{\"result\":\"%1\"}").arg(w));
    if (r.dkimChecked) {
        if (r.dkim.isEmpty()) {
            addField(head, "DKIM", QStringLiteral("{\"result\":\"na\"}"));
        } else {
            QStringList items;
            bool all = true;
            for (const DkimFact& d : r.dkim) {
                const QString w = dkimWord(d.result);
                if (w.isEmpty()) all = false;
                items << QStringLiteral("{\"result\":\"%1\",\"domain\":%2}")
                             .arg(w, QString::fromUtf8(jsonString(d.domain.left(253))));
            }
            const QString v = QStringLiteral("{\"results\":[%1]}").arg(items.join(QLatin1Char(',')));
            if (all && v.size() <= kMaxHeaderValue) addField(head, "DKIM", v);
        }
    }
    if (const QString w = dmarcWord(r.dmarc, r.dmarcPolicy); !w.isEmpty())
        addField(head, "DMARC", QStringLiteral("{\"result\":\"%1\"}").arg(w));
    head += "\r\n";
    return head;
}

Outcome decide(const Verdict& v, const SpamPolicy& p) {
    switch (v.action) {
        case RspamdAction::NoAction:
            return Outcome::Inbox;
        case RspamdAction::Greylist:
            return p.greylist;
        case RspamdAction::AddHeader:
            return p.addHeader;
        case RspamdAction::RewriteSubject:
            return p.rewriteSubject;
        case RspamdAction::SoftReject:
            return p.softReject;
        case RspamdAction::Reject:
            return p.reject;
    }
    return Outcome::Inbox;
}

QByteArray spamHeaders(const Verdict& v) {
    const bool spam = v.action != RspamdAction::NoAction && v.action != RspamdAction::Greylist;
    const QByteArray score = QByteArray::number(v.score, 'f', 2);
    return QByteArray(spam ? "X-Spam-Status: Yes" : "X-Spam-Status: No") + ", score=" + score +
           " required=" + QByteArray::number(v.requiredScore, 'f', 2) + " action=\"" + toString(v.action).toLatin1() +
           "\"\r\n" + "X-Spam-Score: " + score + "\r\n";
}

QByteArray uncheckedHeaders() {
    return QByteArrayLiteral("X-Spam-Status: unchecked\r\n");
}

QByteArray stripSpamHeaders(const QByteArray& header, bool* changed) {
    QByteArray out;
    out.reserve(header.size());
    bool dropping = false;
    bool any = false;
    qsizetype i = 0;
    while (i < header.size()) {
        qsizetype nl = header.indexOf('\n', i);
        const qsizetype end = nl < 0 ? header.size() : nl + 1;
        const QByteArrayView line(header.constData() + i, end - i);
        if (line == "\r\n" || line == "\n") {  // the empty line: the body follows, kept as it is
            out.append(QByteArrayView(header).sliced(i));
            break;
        }
        const bool continuation = !line.isEmpty() && (line.front() == ' ' || line.front() == '\t');
        if (!continuation) {
            // Only field lines start a new decision; the empty line ending the header is kept.
            dropping = line.size() >= 7 && QByteArrayView(line.first(7)).compare("X-Spam-", Qt::CaseInsensitive) == 0;
            if (dropping) any = true;
        }
        if (!dropping) out.append(line);
        i = end;
    }
    if (changed) *changed = any;
    return out;
}

SpamPolicy policyFromConfig(const Config& config) {
    auto outcome = [&config](StringKey key, Outcome fallback) {
        return outcomeFromString(get(config, key)).value_or(fallback);
    };
    SpamPolicy p;
    p.reject = outcome(keys::spam::actionReject, Outcome::Reject);
    p.softReject = outcome(keys::spam::actionSoftReject, Outcome::TempFail);
    p.greylist = outcome(keys::spam::actionGreylist, Outcome::TempFail);
    p.addHeader = outcome(keys::spam::actionAddHeader, Outcome::Junk);
    p.rewriteSubject = outcome(keys::spam::actionRewriteSubject, Outcome::Junk);
    return p;
}

}  // namespace postern::spam
