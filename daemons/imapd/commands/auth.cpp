// commands/auth.cpp — CAPABILITY NOOP LOGOUT STARTTLS LOGIN AUTHENTICATE ID
// ENABLE NAMESPACE IDLE, and the helpers shared by all command files.
// Standards: RFC 9051 6.1-6.2, 6.3.1 (ENABLE), 2971 (ID), 2342 (NAMESPACE),
// 2177 (IDLE), 4959 (SASL-IR). Credentials are never logged.
// Security: client numbers (sequence sets, dates, zones, mod-sequences) are read
// as digits only with overflow checks (setNumber, parseNumber in imap_parser.h);
// a sequence set resolves in O(R log R + N) however its R ranges overlap.
#include "commands.h"

#include "core/log.h"

#include <QLocale>

namespace postern::imap {

// ---------------------------------------------------------------- shared helpers

namespace {
// One number of a sequence set: "*" is `star`; no leading zero, 1 .. 2^32-1.
bool setNumber(const QByteArray& t, quint32 star, quint32* v) {
    if (t == "*") {
        *v = star;
        return true;
    }
    if (t.isEmpty() || t.size() > 10 || t.at(0) == '0') return false;
    for (char c : t)
        if (c < '0' || c > '9') return false;
    bool ok = false;
    *v = t.toUInt(&ok);
    return ok;
}
}  // namespace

// Each range becomes an interval of message indexes (a binary search per UID range),
// and the intervals are merged before any index is listed: the work is O(R log R + N)
// for R ranges over N messages, so "1:*,1:*,..." repeated over a 64 KiB line costs
// no more than one "1:*".
std::optional<QList<int>> resolveSequenceSet(const QByteArray& set, const MailboxView& view, bool uid) {
    const auto& msgs = view.messages();
    if (set.isEmpty()) return std::nullopt;
    const quint32 maxValue = uid ? (msgs.isEmpty() ? 0 : msgs.last().uid) : quint32(msgs.size());
    QList<std::pair<qsizetype, qsizetype>> spans;  // [first, last) message indexes
    for (const QByteArray& range : set.split(',')) {
        if (range.isEmpty()) return std::nullopt;
        const qsizetype colon = range.indexOf(':');
        auto num = [&](const QByteArray& t, quint32* v) { return setNumber(t, maxValue, v); };
        quint32 a = 0, b = 0;
        if (!num(colon < 0 ? range : range.left(colon), &a)) return std::nullopt;
        b = a;
        if (colon >= 0 && !num(range.mid(colon + 1), &b)) return std::nullopt;
        if (a > b) std::swap(a, b);
        if (uid) {
            const auto byUid = [](const Message& m, quint32 v) { return m.uid < v; };
            const qsizetype first = std::lower_bound(msgs.begin(), msgs.end(), a, byUid) - msgs.begin();
            const qsizetype last =
                std::upper_bound(msgs.begin() + first, msgs.end(), b, [](quint32 v, const Message& m) { return v < m.uid; }) - msgs.begin();
            if (last > first) spans.append({first, last});
            // RFC 9051 6.4.9: "n:*" always includes the last message, even when n is above every UID.
            else if (range.contains('*') && !msgs.isEmpty()) spans.append({msgs.size() - 1, msgs.size()});
        } else {
            if (b > maxValue || a == 0) {
                if (maxValue == 0 || a > maxValue) return std::nullopt;
                b = std::min(b, maxValue);
            }
            spans.append({qsizetype(a) - 1, qsizetype(b)});
        }
    }
    std::sort(spans.begin(), spans.end());
    QList<int> out;
    qsizetype next = 0;  // the first index not yet listed
    for (const auto& [first, last] : spans) {
        for (qsizetype i = std::max(first, next); i < last; ++i) out << int(i);
        next = std::max(next, last);
    }
    return out;
}

std::optional<QStringList> parseFlagList(const Token& t) {
    QStringList out;
    auto one = [&](const Token& f) {
        if (f.kind != Token::Kind::Atom) return false;
        const QString name = QString::fromUtf8(f.text);
        for (QChar c : name)
            if (c.unicode() <= 0x20 || c.unicode() >= 0x7f || QStringLiteral("(){%*\"]").contains(c)) return false;
        out << name;
        return true;
    };
    if (t.kind == Token::Kind::List) {
        for (const Token& f : t.items)
            if (!one(f)) return std::nullopt;
        return out;
    }
    if (!one(t)) return std::nullopt;
    return out;
}

QByteArray imapDateTime(qint64 msecs) {
    const QDateTime dt = QDateTime::fromMSecsSinceEpoch(msecs).toLocalTime();
    const int off = dt.offsetFromUtc() / 60;
    const QString zone = QStringLiteral("%1%2%3").arg(off < 0 ? QLatin1Char('-') : QLatin1Char('+')).arg(std::abs(off) / 60, 2, 10, QLatin1Char('0')).arg(std::abs(off) % 60, 2, 10, QLatin1Char('0'));
    return (QLocale::c().toString(dt, QStringLiteral("dd-MMM-yyyy HH:mm:ss ")) + zone).toLatin1();
}

std::optional<QDate> parseImapDate(const QByteArray& s) {
    const QList<QByteArray> p = s.split('-');
    if (p.size() != 3) return std::nullopt;
    static const char* const months[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
    int month = 0;
    for (int i = 0; i < 12; ++i)
        if (p.at(1).toLower() == months[i]) month = i + 1;
    // date-day = 1*2DIGIT (date-day-fixed: SP DIGIT), date-year = 4DIGIT: digits only, no sign.
    const QByteArray dayText = p.at(0).startsWith(' ') ? p.at(0).mid(1) : p.at(0);
    const auto day = dayText.size() <= 2 ? parseNumber(dayText, 31) : std::nullopt;
    const auto year = p.at(2).size() == 4 ? parseNumber(p.at(2), 9999) : std::nullopt;
    if (!day || !year || !month) return std::nullopt;
    const QDate d(int(*year), month, int(*day));
    if (!d.isValid()) return std::nullopt;
    return d;
}

std::optional<QDateTime> parseImapDateTime(const QByteArray& s) {
    // "dd-Mon-yyyy hh:mm:ss +zzzz" (day may be " d").
    const QByteArray t = s.trimmed();
    const QList<QByteArray> p = t.split(' ');
    if (p.size() != 3) return std::nullopt;
    auto date = parseImapDate(p.at(0));
    const QTime time = QTime::fromString(QString::fromLatin1(p.at(1)), QStringLiteral("HH:mm:ss"));
    const QByteArray z = p.at(2);
    if (!date || !time.isValid() || z.size() != 5 || (z.at(0) != '+' && z.at(0) != '-')) return std::nullopt;
    // zone = ("+" / "-") 4DIGIT: hours and minutes, digits only.
    const auto v = parseNumber(z.mid(1), 9999);
    if (!v || *v % 100 >= 60) return std::nullopt;
    const int offset = int(*v / 100 * 60 + *v % 100) * 60 * (z.at(0) == '-' ? -1 : 1);
    const QDateTime dt(*date, time, Qt::OffsetFromUTC, offset);
    if (!dt.isValid()) return std::nullopt;
    return dt;
}

std::optional<quint64> parseModseq(const Token& t, bool zero) {
    if (t.kind != Token::Kind::Atom || t.text.isEmpty() || t.text.size() > 19) return std::nullopt;
    for (char c : t.text)
        if (c < '0' || c > '9') return std::nullopt;
    bool ok = false;
    const quint64 v = t.text.toULongLong(&ok);
    if (!ok || v > quint64(INT64_MAX) || (v == 0 && !zero)) return std::nullopt;
    return v;
}

std::optional<QList<std::pair<quint32, quint32>>> parseUidRanges(const QByteArray& set, quint32 star) {
    QList<std::pair<quint32, quint32>> out;
    if (set.isEmpty()) return std::nullopt;
    for (const QByteArray& range : set.split(',')) {
        const qsizetype colon = range.indexOf(':');
        auto num = [&](const QByteArray& t, quint32* v) { return setNumber(t, star, v); };
        quint32 a = 0, b = 0;
        if (!num(colon < 0 ? range : range.left(colon), &a)) return std::nullopt;
        b = a;
        if (colon >= 0 && !num(range.mid(colon + 1), &b)) return std::nullopt;
        if (a > b) std::swap(a, b);
        out.append({a, b});
    }
    return out;
}

bool inRanges(const QList<std::pair<quint32, quint32>>& ranges, quint32 v) {
    for (const auto& [a, b] : ranges)
        if (v >= a && v <= b) return true;
    return false;
}

QList<quint32> vanishedSince(const MailboxView& view, quint64 modseq, const QList<std::pair<quint32, quint32>>& ranges) {
    const quint32 last = view.uidNext() > 1 ? view.uidNext() - 1 : 1;
    bool complete = false;
    QList<quint32> gone = view.expungedSince(modseq, &complete);
    if (!complete) {
        // The history does not reach back that far: every UID of the ranges that is not here
        // (RFC 7162 3.2.5.1 allows naming UIDs the client never saw).
        gone.clear();
        QSet<quint32> present;
        for (const Message& msg : view.messages()) present.insert(msg.uid);
        for (const auto& [a, b] : ranges)
            for (quint64 u = a; u <= std::min<quint64>(b, last) && gone.size() < 1000000; ++u)
                if (!present.contains(quint32(u))) gone << quint32(u);
    }
    QList<quint32> reported;
    for (quint32 u : gone)
        if (inRanges(ranges, u)) reported << u;
    return reported;
}

QByteArray Commands::modseqItem(ImapSession& s, int index) {
    if (!s.m_condstore || !s.m_selected) return {};
    return " MODSEQ (" + QByteArray::number(s.m_selected->messages().at(index).modseq) + ')';
}

QByteArray compactSet(QList<quint32> values) {
    std::sort(values.begin(), values.end());
    QByteArray out;
    for (qsizetype i = 0; i < values.size();) {
        qsizetype j = i;
        while (j + 1 < values.size() && values.at(j + 1) == values.at(j) + 1) ++j;
        if (!out.isEmpty()) out += ',';
        out += QByteArray::number(values.at(i));
        if (j > i) out += ':' + QByteArray::number(values.at(j));
        i = j + 1;
    }
    return out;
}

QByteArray Commands::flagList(const QStringList& flags) { return '(' + flags.join(QLatin1Char(' ')).toUtf8() + ')'; }

void Commands::flagsResponse(ImapSession& s) {
    QStringList flags{QStringLiteral("\\Answered"), QStringLiteral("\\Flagged"), QStringLiteral("\\Deleted"), QStringLiteral("\\Seen"),
                      QStringLiteral("\\Draft"), QStringLiteral("$Forwarded")};
    for (const QString& k : s.m_selected->keywords())
        if (!k.isEmpty()) flags << k;
    s.untagged("FLAGS " + flagList(flags));
    s.untagged("OK [PERMANENTFLAGS " + flagList(flags + QStringList{QStringLiteral("\\*")}) + "] Flags permitted");
}

// ---------------------------------------------------------------- commands

void Commands::capability(ImapSession& s, const R& r) {
    s.untagged("CAPABILITY " + s.capabilities());
    s.ok(r, QStringLiteral("CAPABILITY completed"));
}

void Commands::noop(ImapSession& s, const R& r) {
    s.reportChanges(true);
    s.ok(r, QStringLiteral("NOOP completed"));
}

void Commands::logout(ImapSession& s, const R& r) {
    s.untagged("BYE Logging out");
    s.ok(r, QStringLiteral("LOGOUT completed"));
    s.m_phase = ImapSession::Phase::Closed;
    s.m_state = ImapSession::State::Logout;
    s.stopIdleWatch();
    s.m_io.close(QStringLiteral("LOGOUT"));
}

void Commands::starttls(ImapSession& s, const R& r) {
    if (s.tls()) {
        s.bad(r, QStringLiteral("TLS is already active"));
        return;
    }
    s.ok(r, QStringLiteral("Begin TLS negotiation now"));
    s.m_io.startTls();
}

void Commands::login(ImapSession& s, const R& r) {
    if (r.args.size() != 2 || !r.args.at(0).isString() || !r.args.at(1).isString()) {
        s.bad(r, QStringLiteral("Usage: LOGIN user password"));
        return;
    }
    s.m_phase = ImapSession::Phase::Waiting;
    s.m_io.suspend();
    const R req = r;
    s.m_backend.authenticate(s.m_alive.get(), s.m_io.info().sessionId, s.m_io.info().peerAddress, QString::fromUtf8(r.args.at(0).text),
                             r.args.at(1).text, [&s, req](bool good, QString user) { s.finishLogin(req, good, user); });
}

void Commands::authenticate(ImapSession& s, const R& r) {
    if (r.args.isEmpty() || r.args.size() > 2 || r.args.at(0).kind != Token::Kind::Atom) {
        s.bad(r, QStringLiteral("Usage: AUTHENTICATE mechanism [initial-response]"));
        return;
    }
    if (r.args.at(0).text.toUpper() != "PLAIN") {
        s.no(r, QStringLiteral("Unsupported authentication mechanism"), "CANNOT");
        return;
    }
    s.m_sasl = std::make_unique<SaslServer>();
    s.m_pending = r;
    const bool hasIr = r.args.size() == 2;
    const SaslServer::Step step = s.m_sasl->start(QStringLiteral("PLAIN"), hasIr ? r.args.at(1).text : QByteArray(), hasIr);
    if (step.kind == SaslServer::StepKind::Challenge) {
        s.m_phase = ImapSession::Phase::SaslResponse;
        s.m_io.send("+ \r\n");
        return;
    }
    if (step.kind == SaslServer::StepKind::Failed) {
        s.m_sasl.reset();
        s.no(r, QStringLiteral("Authentication failed"), "AUTHENTICATIONFAILED");
        return;
    }
    const QString user = s.m_sasl->user();
    QByteArray pw = s.m_sasl->takePassword();
    s.m_sasl.reset();
    s.m_phase = ImapSession::Phase::Waiting;
    s.m_io.suspend();
    s.m_backend.authenticate(s.m_alive.get(), s.m_io.info().sessionId, s.m_io.info().peerAddress, user, std::move(pw),
                             [&s, r](bool good, QString u) { s.finishLogin(r, good, u); });
}

void Commands::saslResponse(ImapSession& s, const QByteArray& line) {
    const SaslServer::Step step = s.m_sasl->next(line);
    const R r = s.m_pending;
    if (step.kind != SaslServer::StepKind::Done) {
        s.m_sasl.reset();
        s.m_phase = ImapSession::Phase::Command;
        if (step.failure == SaslServer::Failure::Cancelled) s.bad(r, QStringLiteral("Authentication cancelled"));
        else s.no(r, QStringLiteral("Authentication failed"), "AUTHENTICATIONFAILED");
        return;
    }
    const QString user = s.m_sasl->user();
    QByteArray pw = s.m_sasl->takePassword();
    s.m_sasl.reset();
    s.m_phase = ImapSession::Phase::Waiting;
    s.m_io.suspend();
    s.m_backend.authenticate(s.m_alive.get(), s.m_io.info().sessionId, s.m_io.info().peerAddress, user, std::move(pw),
                             [&s, r](bool good, QString u) { s.finishLogin(r, good, u); });
}

void Commands::id(ImapSession& s, const R& r) {
    // RFC 2971: the client's list is accepted (logged at debug level) and ours returned.
    s.untagged("ID (\"name\" \"Postern\" \"version\" \"" POSTERN_VERSION "\")");
    s.ok(r, QStringLiteral("ID completed"));
}

void Commands::enable(ImapSession& s, const R& r) {
    if (r.args.isEmpty()) {
        s.bad(r, QStringLiteral("Usage: ENABLE capability..."));
        return;
    }
    QByteArrayList enabled;
    for (const Token& t : r.args) {
        const QByteArray cap = t.text.toUpper();
        if ((cap == "UTF8=ACCEPT" || cap == "IMAP4REV2") && !s.m_utf8) {
            s.m_utf8 = true;
            if (cap == "IMAP4REV2") s.m_rev2 = true;
            enabled << t.text;
        } else if (cap == "IMAP4REV2" && !s.m_rev2) {
            s.m_rev2 = true;
            enabled << t.text;
        } else if (cap == "CONDSTORE" && !s.m_condstore) {
            s.m_condstore = true;
            enabled << t.text;
        } else if (cap == "QRESYNC" && !s.m_qresync) {
            // QRESYNC implies CONDSTORE (RFC 7162 3.2.3).
            s.m_qresync = true;
            s.m_condstore = true;
            enabled << t.text;
        }
    }
    s.untagged("ENABLED" + (enabled.isEmpty() ? QByteArray() : ' ' + enabled.join(' ')));
    s.ok(r, QStringLiteral("ENABLE completed"));
}

void Commands::namespace_(ImapSession& s, const R& r) {
    s.untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
    s.ok(r, QStringLiteral("NAMESPACE completed"));
}

void Commands::idle(ImapSession& s, const R& r) {
    s.m_pending = r;
    s.m_phase = ImapSession::Phase::Idle;
    s.reportChanges(true);
    s.startIdleWatch();
    s.m_io.send("+ idling\r\n");
}

}  // namespace postern::imap
