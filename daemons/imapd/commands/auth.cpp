// commands/auth.cpp — CAPABILITY NOOP LOGOUT STARTTLS LOGIN AUTHENTICATE ID
// ENABLE NAMESPACE IDLE, and the helpers shared by all command files.
// Standards: RFC 9051 6.1-6.2, 6.3.1 (ENABLE), 2971 (ID), 2342 (NAMESPACE),
// 2177 (IDLE), 4959 (SASL-IR). Credentials are never logged.
// Sequence sets and UID ranges come from the client: they are parsed into
// sorted, merged intervals (O(k log k) for k items) and never expanded per
// number of a range ("1:4294967295" is one interval); a set resolved to
// messages has at most one entry per message of the mailbox.
// Security: client numbers (sequence sets, dates, zones, mod-sequences) are read
// as digits only with overflow checks (setNumber, parseNumber in imap_parser.h).
#include "commands.h"

#include "core/log.h"

#include <QLocale>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>

namespace postern::imap {

// ---------------------------------------------------------------- shared helpers

namespace {
// One number of a sequence set: "*" is `star`; no leading zero, 1 .. 2^32-1.
bool setNumber(QByteArrayView t, quint32 star, quint32* v) {
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

namespace {
// Sorts intervals and merges the ones that overlap or touch.
template <typename T>
QList<std::pair<T, T>> mergeRanges(QList<std::pair<T, T>> in) {
    std::sort(in.begin(), in.end());
    QList<std::pair<T, T>> out;
    out.reserve(in.size());
    for (const auto& r : in) {
        // r.first - 1 cannot underflow in the test: it is only computed when first > 0.
        if (!out.isEmpty() && (r.first <= out.last().second || (r.first > 0 && r.first - 1 == out.last().second))) {
            out.last().second = std::max(out.last().second, r.second);
        } else {
            out << r;
        }
    }
    return out;
}
}  // namespace

std::optional<IndexRanges> resolveSequenceRanges(const QByteArray& set, const MailboxView& view, bool uid) {
    const auto& msgs = view.messages();
    if (set.isEmpty()) return std::nullopt;
    const quint32 maxValue = uid ? (msgs.isEmpty() ? 0 : msgs.last().uid) : quint32(msgs.size());
    IndexRanges found;
    qsizetype pos = 0;
    while (pos <= set.size()) {
        qsizetype comma = set.indexOf(',', pos);
        if (comma < 0) comma = set.size();
        const QByteArrayView range(set.constData() + pos, comma - pos);
        pos = comma + 1;
        if (range.isEmpty()) return std::nullopt;
        const qsizetype colon = range.indexOf(':');
        auto num = [&](QByteArrayView t, quint32* v) { return setNumber(t, maxValue, v); };
        quint32 a = 0, b = 0;
        if (!num(colon < 0 ? range : range.first(colon), &a)) return std::nullopt;
        b = a;
        if (colon >= 0 && !num(range.sliced(colon + 1), &b)) return std::nullopt;
        if (a > b) std::swap(a, b);
        if (uid) {
            // The messages are in UID order: the first with uid >= a, the first with uid > b.
            auto byUid = [](const Message& m, quint32 v) { return m.uid < v; };
            const auto lo = std::lower_bound(msgs.begin(), msgs.end(), a, byUid);
            const auto hi =
                std::upper_bound(msgs.begin(), msgs.end(), b, [](quint32 v, const Message& m) { return v < m.uid; });
            if (lo < hi) {
                found.append({int(lo - msgs.begin()), int(hi - msgs.begin()) - 1});
            } else if (range.contains('*') && !msgs.isEmpty()) {
                // RFC 9051 6.4.9: "n:*" always includes the last message, even when n is above every UID.
                found.append({int(msgs.size() - 1), int(msgs.size() - 1)});
            }
        } else {
            if (b > maxValue || a == 0) {
                if (maxValue == 0 || a > maxValue) return std::nullopt;
                b = std::min(b, maxValue);
            }
            found.append({int(a - 1), int(b - 1)});
        }
    }
    return mergeRanges(found);
}

bool inIndexRanges(const IndexRanges& ranges, int index) {
    // The last interval starting at or before index.
    auto it = std::upper_bound(ranges.begin(), ranges.end(), index,
                               [](int v, const std::pair<int, int>& r) { return v < r.first; });
    return it != ranges.begin() && index <= std::prev(it)->second;
}

std::optional<QList<int>> resolveSequenceSet(const QByteArray& set, const MailboxView& view, bool uid) {
    auto ranges = resolveSequenceRanges(set, view, uid);
    if (!ranges) return std::nullopt;
    QList<int> out;
    for (const auto& [first, last] : *ranges)
        for (int i = first; i <= last; ++i) out << i;  // at most one entry per message of the mailbox
    return out;
}

std::optional<QStringList> parseFlagList(const Token& t) {
    QStringList out;
    auto one = [&](const Token& f) {
        if (f.kind != Token::Kind::Atom && f.kind != Token::Kind::Nil)
            return false;  // NIL: the keyword "NIL" (an atom)
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

namespace {
// `msecs` in the system's local time, into `tm`; false outside what localtime_r and a
// four-digit year cover. The zone rules are re-read (tzset) at most once a second:
// QDateTime's local-time conversions did that on every call, a stat of /etc/localtime
// per message of a FETCH of many INTERNALDATEs or a SEARCH SINCE.
bool localTime(qint64 msecs, struct tm* tm) {
    static std::atomic<qint64> zoneReadAt{std::numeric_limits<qint64>::min()};
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    if (zoneReadAt.exchange(qint64(now.tv_sec)) != qint64(now.tv_sec)) ::tzset();
    // Seconds, rounded down also before 1970 (what QDateTime shows for a fraction).
    const qint64 secs = msecs >= 0 ? msecs / 1000 : -((-msecs + 999) / 1000);
    const time_t t = time_t(secs);
    return ::localtime_r(&t, tm) && tm->tm_year + 1900 >= 0 && tm->tm_year + 1900 <= 9999;
}
}  // namespace

QDate imapLocalDate(qint64 msecs) {
    struct tm tm {};
    if (!localTime(msecs, &tm)) return QDateTime::fromMSecsSinceEpoch(msecs).date();  // (the general path)
    return QDate(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

// "dd-Mon-yyyy hh:mm:ss +zzzz" in the system's local time (INTERNALDATE, RFC 9051 9
// date-time).
QByteArray imapDateTime(qint64 msecs) {
    struct tm tm {};
    if (!localTime(msecs, &tm)) {
        // Outside what localtime_r and a four-digit year cover: the general (slower) path.
        const QDateTime dt = QDateTime::fromMSecsSinceEpoch(msecs).toLocalTime();
        const int off = dt.offsetFromUtc() / 60;
        const QString zone = QStringLiteral("%1%2%3")
                                 .arg(off < 0 ? QLatin1Char('-') : QLatin1Char('+'))
                                 .arg(std::abs(off) / 60, 2, 10, QLatin1Char('0'))
                                 .arg(std::abs(off) % 60, 2, 10, QLatin1Char('0'));
        return (QLocale::c().toString(dt, QStringLiteral("dd-MMM-yyyy HH:mm:ss ")) + zone).toLatin1();
    }
    static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const long off = tm.tm_gmtoff / 60;
    const long absOff = off < 0 ? -off : off;
    // "dd-Mon-yyyy hh:mm:ss +hhmm", written digit by digit (snprintf was most of FETCH
    // INTERNALDATE's cost); localTime() gave a year of four digits.
    char buf[26];
    char* p = buf;
    auto digits = [&p](long v, int n) {
        for (int k = n - 1; k >= 0; --k, v /= 10) p[k] = char('0' + v % 10);
        p += n;
    };
    digits(tm.tm_mday, 2);
    *p++ = '-';
    std::memcpy(p, months[tm.tm_mon % 12], 3);
    p += 3;
    *p++ = '-';
    digits(tm.tm_year + 1900, 4);
    *p++ = ' ';
    digits(tm.tm_hour, 2);
    *p++ = ':';
    digits(tm.tm_min, 2);
    *p++ = ':';
    digits(tm.tm_sec, 2);
    *p++ = ' ';
    *p++ = off < 0 ? '-' : '+';
    digits(absOff / 60 % 100, 2);
    digits(absOff % 60, 2);
    return QByteArray(buf, p - buf);
}

std::optional<QDate> parseImapDate(const QByteArray& s) {
    const QList<QByteArray> p = s.split('-');
    if (p.size() != 3) return std::nullopt;
    static const char* const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                         "jul", "aug", "sep", "oct", "nov", "dec"};
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

std::optional<UidRanges> parseUidRanges(const QByteArray& set, quint32 star) {
    UidRanges out;
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
    return mergeRanges(out);
}

bool inRanges(const UidRanges& ranges, quint32 v) {
    auto it = std::upper_bound(ranges.begin(), ranges.end(), v,
                               [](quint32 x, const std::pair<quint32, quint32>& r) { return x < r.first; });
    return it != ranges.begin() && v <= std::prev(it)->second;
}

UidRanges vanishedSince(const MailboxView& view, quint64 modseq, const UidRanges& ranges) {
    const quint32 last = view.uidNext() > 1 ? view.uidNext() - 1 : 1;
    bool complete = false;
    QList<quint32> gone = view.expungedSince(modseq, &complete);
    UidRanges reported;
    if (complete) {
        std::sort(gone.begin(), gone.end());
        for (quint32 u : gone) {
            if (!inRanges(ranges, u)) continue;
            if (!reported.isEmpty() && reported.last().second + 1 == u)
                reported.last().second = u;
            else if (reported.isEmpty() || reported.last().second < u)
                reported.append({u, u});
        }
        return reported;
    }
    // The history does not reach back that far: every UID of the ranges (up to the last
    // one assigned) that is not here (RFC 7162 3.2.5.1 allows naming UIDs the client never
    // saw). The messages are in UID order: one walk over both lists, gaps as intervals.
    const auto& msgs = view.messages();
    qsizetype m = 0;
    for (const auto& [a, bIn] : ranges) {
        if (a > last) break;
        const quint32 b = std::min(bIn, last);
        quint64 next = a;  // first UID of [a, b] not yet accounted for
        while (m < msgs.size() && msgs.at(m).uid < a) ++m;
        for (; m < msgs.size() && msgs.at(m).uid <= b; ++m) {
            if (msgs.at(m).uid > next) reported.append({quint32(next), msgs.at(m).uid - 1});
            next = quint64(msgs.at(m).uid) + 1;
        }
        if (next <= b) reported.append({quint32(next), b});
    }
    return reported;
}

QByteArray rangesText(const UidRanges& ranges) {
    QByteArray out;
    for (const auto& [a, b] : ranges) {
        if (!out.isEmpty()) out += ',';
        out += QByteArray::number(a);
        if (b != a) out += ':' + QByteArray::number(b);
    }
    return out;
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

QByteArray Commands::flagList(const QStringList& flags) {
    return '(' + flags.join(QLatin1Char(' ')).toUtf8() + ')';
}

void Commands::flagsResponse(ImapSession& s) {
    QStringList flags{QStringLiteral("\\Answered"), QStringLiteral("\\Flagged"), QStringLiteral("\\Deleted"),
                      QStringLiteral("\\Seen"),     QStringLiteral("\\Draft"),   QStringLiteral("$Forwarded")};
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
    s.ok(r, QStringLiteral("NOOP completed"));  // the changes are reported before every tagged OK
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
    s.m_backend.authenticate(s.authRequest(QString::fromUtf8(r.args.at(0).text)), r.args.at(1).text,
                             [&s, req](AuthVerdict verdict, QString user) { s.finishLogin(req, verdict, user); });
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
    const SaslServer::Step step =
        s.m_sasl->start(QStringLiteral("PLAIN"), hasIr ? r.args.at(1).text : QByteArray(), hasIr);
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
    saslDone(s, r);
}

void Commands::saslResponse(ImapSession& s, const QByteArray& line) {
    const SaslServer::Step step = s.m_sasl->next(line);
    const R r = s.m_pending;
    if (step.kind != SaslServer::StepKind::Done) {
        s.m_sasl.reset();
        s.m_phase = ImapSession::Phase::Command;
        if (step.failure == SaslServer::Failure::Cancelled)
            s.bad(r, QStringLiteral("Authentication cancelled"));
        else
            s.no(r, QStringLiteral("Authentication failed"), "AUTHENTICATIONFAILED");
        return;
    }
    saslDone(s, r);
}

// The SASL exchange produced credentials: hand them to the authenticator; the session
// reads nothing more until it answers.
void Commands::saslDone(ImapSession& s, const R& r) {
    const QString user = s.m_sasl->user();
    QByteArray pw = s.m_sasl->takePassword();
    s.m_sasl.reset();
    s.m_phase = ImapSession::Phase::Waiting;
    s.m_io.suspend();
    s.m_backend.authenticate(s.authRequest(user), std::move(pw),
                             [&s, r](AuthVerdict verdict, QString u) { s.finishLogin(r, verdict, u); });
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
            s.enableCondstore();
            enabled << t.text;
        } else if (cap == "QRESYNC" && !s.m_qresync) {
            // QRESYNC implies CONDSTORE (RFC 7162 3.2.3).
            s.m_qresync = true;
            s.enableCondstore();
            enabled << t.text;
        }
    }
    // IMAP4rev2 has no \Recent (RFC 9051 2.3.2): this session neither shows nor takes it.
    if (s.m_rev2 && s.m_selected) s.m_selected->setRecentMode(RecentMode::None);
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
