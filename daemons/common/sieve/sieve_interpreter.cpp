// sieve_interpreter.cpp — runs a compiled Sieve script over one message (see
// sieve.h for the interface, semantics and limits).
//
// Values a test looks at: header fields are unfolded, RFC 2047-decoded
// (RFC 5228 2.7.2) and trimmed; address tests parse the field as an RFC 5322
// address list (groups skipped) and take the part asked for (RFC 5228 2.7.4;
// RFC 5233 :user/:detail with "+" as the separator; an address without "+"
// has no :detail and does not match); envelope "from"/"to" are the SMTP
// envelope (RFC 5228 5.4); body :text and :content look at leaf MIME parts,
// transfer-decoded and converted from their charset (RFC 5173 5).
// Matching (RFC 5228 2.7.1): :is, :contains, :matches (wildcards "*" "?" and
// "\" escapes, matched left to right with the shortest match for every "*"
// but the last, which gives RFC 5229 3.2's match variables ${1}..${9}),
// :value and :count (RFC 5231), under the comparator (RFC 4790: i;octet,
// i;ascii-casemap folding only ASCII letters, i;ascii-numeric where a value
// without leading digits is positive infinity).
// Security: every command, test, comparison and wildcard step costs one step
// (Limits::maxSteps); variables are bounded in number and size.
#include "sieve_internal.h"

#include "common/mail/message.h"

#include <QSet>
#include <QStringDecoder>
#include <QTimeZone>

namespace postern::sieve {

QString toString(Action::Type type) {
    switch (type) {
        case Action::Type::Keep:
            return QStringLiteral("keep");
        case Action::Type::FileInto:
            return QStringLiteral("fileinto");
        case Action::Type::Redirect:
            return QStringLiteral("redirect");
        case Action::Type::Discard:
            return QStringLiteral("discard");
        case Action::Type::Reject:
            return QStringLiteral("reject");
        case Action::Type::Vacation:
            return QStringLiteral("vacation");
    }
    return {};
}

QString describe(const Action& a) {
    QString s = a.type == Action::Type::Reject && a.ereject ? QStringLiteral("ereject") : toString(a.type);
    if (a.implicit) s = QStringLiteral("implicit keep");
    if (!a.target.isEmpty()) s += QStringLiteral(" \"%1\"").arg(a.target);
    if (a.copy) s += QStringLiteral(" copy");
    if (a.create) s += QStringLiteral(" create");
    if (!a.flags.isEmpty()) s += QStringLiteral(" flags=") + a.flags.join(u' ');
    if (a.type == Action::Type::Reject) s += QStringLiteral(" \"%1\"").arg(a.reason);
    if (a.type == Action::Type::Vacation) {
        s += QStringLiteral(" period=%1").arg(a.periodSeconds);
        if (!a.subject.isEmpty()) s += QStringLiteral(" subject=\"%1\"").arg(a.subject);
        if (!a.from.isEmpty()) s += QStringLiteral(" from=\"%1\"").arg(a.from);
        if (!a.addresses.isEmpty()) s += QStringLiteral(" addresses=") + a.addresses.join(u',');
        if (a.mime) s += QStringLiteral(" mime");
        if (!a.handle.isEmpty()) s += QStringLiteral(" handle=\"%1\"").arg(a.handle);
        s += QStringLiteral(" \"%1\"").arg(a.reason);
    }
    return s;
}

namespace {

enum class Comparator { Octet, CaseMap, Numeric };
enum class MatchType { Is, Contains, Matches, Value, Count };
enum class Relation { Gt, Ge, Lt, Le, Eq, Ne };

struct Match {
    Comparator comparator = Comparator::CaseMap;
    MatchType type = MatchType::Is;
    Relation relation = Relation::Eq;
};

// Thrown nowhere: a runtime error travels as this value up the call chain.
struct Failure {
    int line = 0, column = 0;
    QString text;
};

QChar fold(QChar c) {
    return (c >= u'A' && c <= u'Z') ? QChar(c.unicode() + 32) : c;
}

bool sameChar(QChar a, QChar b, Comparator c) {
    return c == Comparator::CaseMap ? fold(a) == fold(b) : a == b;
}

// i;ascii-numeric (RFC 4790 9.1.1): leading digits, none = infinity.
std::optional<QString> numericValue(const QString& s) {
    qsizetype n = 0;
    while (n < s.size() && s[n] >= u'0' && s[n] <= u'9') ++n;
    if (n == 0) return std::nullopt;
    qsizetype z = 0;
    while (z < n - 1 && s[z] == u'0') ++z;
    return s.mid(z, n - z);
}

// <0, 0, >0 under the comparator's ordering.
int compare(const QString& a, const QString& b, Comparator c) {
    if (c == Comparator::Numeric) {
        const auto x = numericValue(a), y = numericValue(b);
        if (!x || !y) return !x && !y ? 0 : !x ? 1 : -1;
        if (x->size() != y->size()) return x->size() < y->size() ? -1 : 1;
        return x->compare(*y);
    }
    const qsizetype n = std::min(a.size(), b.size());
    for (qsizetype i = 0; i < n; ++i) {
        const QChar p = c == Comparator::CaseMap ? fold(a[i]) : a[i];
        const QChar q = c == Comparator::CaseMap ? fold(b[i]) : b[i];
        if (p != q) return p.unicode() < q.unicode() ? -1 : 1;
    }
    return a.size() == b.size() ? 0 : a.size() < b.size() ? -1 : 1;
}

bool relationHolds(int cmp, Relation r) {
    switch (r) {
        case Relation::Gt:
            return cmp > 0;
        case Relation::Ge:
            return cmp >= 0;
        case Relation::Lt:
            return cmp < 0;
        case Relation::Le:
            return cmp <= 0;
        case Relation::Eq:
            return cmp == 0;
        case Relation::Ne:
            return cmp != 0;
    }
    return false;
}

struct Glob {
    enum class Kind { Literal, One, Any };
    struct Item {
        Kind kind;
        QChar c;
    };
    QList<Item> items;
    explicit Glob(const QString& pattern) {
        for (qsizetype i = 0; i < pattern.size(); ++i) {
            const QChar c = pattern[i];
            if (c == u'\\' && i + 1 < pattern.size())
                items << Item{Kind::Literal, pattern[++i]};
            else if (c == u'*')
                items << Item{Kind::Any, {}};
            else if (c == u'?')
                items << Item{Kind::One, {}};
            else
                items << Item{Kind::Literal, c};
        }
    }
};

class Runner {
public:
    Runner(const QList<Runnable>& sequence, const Message& m, const Limits& l) : m_seq(sequence), m_m(m), m_l(l) {}

    Outcome run() {
        Outcome out;
        bool stop = false;
        std::optional<Failure> f;
        // before scripts, the user's script, after scripts: as if included one after the
        // other by an empty script (RFC 6609: `stop` ends them all, `return` only its own).
        for (const Runnable& r : m_seq) {
            if (stop || f || !r.script) break;
            if (!r.key.isEmpty()) m_included.insert(r.key);
            m_stack = {r.key};
            f = inScope(*r.script, stop);
        }
        if (!f) f = finish();
        out.steps = m_steps;
        if (f) {
            out.error = detail::errorAt(f->line, f->column, f->text);
            Action keep;
            keep.implicit = true;
            out.actions = {keep};
            return out;
        }
        if (m_implicitKeep) {
            Action keep;
            keep.implicit = true;
            keep.flags = m_flags;
            addDeliver(keep);
        }
        out.actions = m_actions;
        return out;
    }

private:
    // ---- Steps, variables, strings

    std::optional<Failure> step(const Node& n, qint64 cost = 1) {
        if (cost > m_l.maxSteps - m_steps)
            return Failure{n.line, n.column, QStringLiteral("script ran more than %1 steps").arg(m_l.maxSteps)};
        m_steps += cost;
        return std::nullopt;
    }

    QString expand(const QString& s) const {
        if (!m_variablesOn || !s.contains(u"${")) return s;
        QString out;
        qsizetype i = 0;
        while (i < s.size()) {
            const qsizetype start = s.indexOf(u"${", i);
            if (start < 0) break;
            out += QStringView(s).mid(i, start - i);
            const qsizetype close = s.indexOf(u'}', start + 2);
            const QString name = close < 0 ? QString() : s.mid(start + 2, close - start - 2);
            bool ok = !name.isEmpty();
            bool digits = ok;
            for (QChar c : name) {
                digits = digits && c.isDigit() && c.unicode() < 128;
                ok = ok && (c.isLetterOrNumber() || c == u'_' || c == u'.') && c.unicode() < 128;
            }
            if (!ok || (!digits && name[0].isDigit())) {  // not a variable reference: as written
                out += u"${";
                i = start + 2;
                continue;
            }
            if (digits) {
                const int idx = name.toInt();
                out += idx < m_matchVars.size() ? m_matchVars.at(idx) : QString();
            } else {
                out += variable(name);
            }
            i = close + 1;
        }
        out += QStringView(s).mid(i);
        return out;
    }

    QStringList expand(const QStringList& list) const {
        QStringList out;
        out.reserve(list.size());
        for (const QString& s : list) out << expand(s);
        return out;
    }

    QString truncate(QString v) const {
        QByteArray utf8 = v.toUtf8();
        if (utf8.size() <= m_l.maxVariableBytes) return v;
        qsizetype cut = m_l.maxVariableBytes;
        while (cut > 0 && (static_cast<unsigned char>(utf8[cut]) & 0xC0) == 0x80) --cut;  // a character boundary
        return QString::fromUtf8(utf8.left(cut));
    }

    // RFC 6609 3.3, 3.5: a name declared `global` in this script, or "global.NAME", is the
    // run's shared variable; any other is this script's own.
    QMap<QString, QString>& scopeOf(QString& key) {
        if (key.startsWith(u"global.") && m_includeOn) {
            key = key.mid(7);
            return m_globals;
        }
        return m_globalNames.contains(key) ? m_globals : m_vars;
    }

    QString variable(const QString& name) const {
        QString key = name.toLower();
        return const_cast<Runner*>(this)->scopeOf(key).value(key);
    }

    std::optional<Failure> setVariable(const Node& n, const QString& name, const QString& value) {
        QString key = name.toLower();
        QMap<QString, QString>& scope = scopeOf(key);
        if (!scope.contains(key) && m_vars.size() + m_globals.size() >= m_l.maxVariables)
            return Failure{n.line, n.column, QStringLiteral("more than %1 variables").arg(m_l.maxVariables)};
        scope.insert(key, truncate(value));
        return std::nullopt;
    }

    // Runs one script's commands with its own variables (the globals shared), then
    // restores the includer's.
    std::optional<Failure> inScope(const Script& script, bool& stop) {
        const bool variablesOn = m_variablesOn, includeOn = m_includeOn;
        QMap<QString, QString> vars;
        QSet<QString> globalNames;
        QStringList matchVars;
        std::swap(vars, m_vars);
        std::swap(globalNames, m_globalNames);
        std::swap(matchVars, m_matchVars);
        m_variablesOn = script.has(QStringLiteral("variables"));
        m_includeOn = script.has(QStringLiteral("include"));
        std::optional<Failure> f = block(script.commands, stop);
        m_return = false;
        std::swap(vars, m_vars);
        std::swap(globalNames, m_globalNames);
        std::swap(matchVars, m_matchVars);
        m_variablesOn = variablesOn;
        m_includeOn = includeOn;
        return f;
    }

    // RFC 6609 3.2: include [:personal|:global] [:once] [:optional] "name".
    std::optional<Failure> include(const Node& n, bool& stop) {
        const bool global = n.tags.contains(QStringLiteral("global"));
        const QString name = n.positional.at(0).strings.value(0);  // a plain name (validated), never expanded
        const QString key = (global ? QStringLiteral("global:") : QStringLiteral("personal:")) + name;
        if (n.tags.contains(QStringLiteral("once")) && m_included.contains(key)) return std::nullopt;
        if (m_stack.contains(key))
            return Failure{n.line, n.column,
                           QStringLiteral("include loop: %1 -> %2")
                               .arg(QStringList(m_stack).filter(u":").join(QStringLiteral(" -> ")), key)};
        if (m_stack.size() > m_l.maxIncludeDepth)
            return Failure{n.line, n.column, QStringLiteral("includes nested deeper than %1").arg(m_l.maxIncludeDepth)};
        QString error;
        std::shared_ptr<const Script> script = m_m.include ? m_m.include(global, name, &error) : nullptr;
        if (!script) {
            if (error.isEmpty() && n.tags.contains(QStringLiteral("optional"))) return std::nullopt;  // RFC 6609 3.2
            return Failure{n.line, n.column,
                           error.isEmpty() ? QStringLiteral("included script %1 does not exist").arg(key)
                                           : QStringLiteral("included script %1: %2").arg(key, error)};
        }
        if (++m_includes > m_l.maxIncludes)
            return Failure{n.line, n.column, QStringLiteral("more than %1 includes").arg(m_l.maxIncludes)};
        m_included.insert(key);
        m_stack << key;
        std::optional<Failure> f = inScope(*script, stop);
        m_stack.removeLast();
        return f;
    }

    // ---- Matching

    Match matchOf(const Node& n) const {
        Match m;
        if (n.tags.contains(QStringLiteral("comparator"))) {
            const QString c = n.tags.value(QStringLiteral("comparator")).strings.value(0).toLower();
            m.comparator = c == u"i;octet"           ? Comparator::Octet
                           : c == u"i;ascii-numeric" ? Comparator::Numeric
                                                     : Comparator::CaseMap;
        }
        if (n.tags.contains(QStringLiteral("contains")))
            m.type = MatchType::Contains;
        else if (n.tags.contains(QStringLiteral("matches")))
            m.type = MatchType::Matches;
        else if (n.tags.contains(QStringLiteral("value")) || n.tags.contains(QStringLiteral("count"))) {
            const bool count = n.tags.contains(QStringLiteral("count"));
            m.type = count ? MatchType::Count : MatchType::Value;
            const QString r =
                n.tags.value(count ? QStringLiteral("count") : QStringLiteral("value")).strings.value(0).toLower();
            static const QStringList names = {QStringLiteral("gt"), QStringLiteral("ge"), QStringLiteral("lt"),
                                              QStringLiteral("le"), QStringLiteral("eq"), QStringLiteral("ne")};
            m.relation = Relation(std::max<qsizetype>(0, names.indexOf(r)));
        }
        return m;
    }

    // :matches with capture of every wildcard (RFC 5229 3.2); steps charged per position.
    std::optional<Failure> glob(const Node& n, const QString& value, const Glob& g, Comparator c, bool* matched,
                                QStringList* groups) {
        const qsizetype m = g.items.size();
        QList<std::pair<qsizetype, qsizetype>> caps(m, {0, 0});
        qsizetype p = 0, s = 0, starP = -1, starS = 0;
        qint64 work = 0;
        *matched = false;
        while (s < value.size()) {
            if (++work > 4096) {
                if (auto f = step(n, work)) return f;
                work = 0;
            }
            if (p < m && g.items[p].kind == Glob::Kind::One) {
                caps[p] = {s, 1};
                ++p;
                ++s;
            } else if (p < m && g.items[p].kind == Glob::Kind::Literal && sameChar(g.items[p].c, value[s], c)) {
                ++p;
                ++s;
            } else if (p < m && g.items[p].kind == Glob::Kind::Any) {
                starP = p;
                starS = s;
                caps[p] = {s, 0};
                ++p;
            } else if (starP >= 0) {
                ++starS;
                caps[starP] = {caps[starP].first, starS - caps[starP].first};
                p = starP + 1;
                s = starS;
            } else {
                return step(n, work);
            }
        }
        while (p < m && g.items[p].kind == Glob::Kind::Any) caps[p++] = {s, 0};
        if (auto f = step(n, work)) return f;
        if (p != m) return std::nullopt;
        *matched = true;
        if (groups) {
            groups->clear();
            *groups << value;
            for (qsizetype i = 0; i < m && groups->size() < 10; ++i)
                if (g.items[i].kind != Glob::Kind::Literal) *groups << value.mid(caps[i].first, caps[i].second);
        }
        return std::nullopt;
    }

    // Does any value match any key? :count compares the number of values.
    std::optional<Failure> test(const Node& n, const QStringList& values, const QStringList& rawKeys, bool* result) {
        const Match m = matchOf(n);
        const QStringList keys = expand(rawKeys);
        *result = false;
        if (m.type == MatchType::Count) {
            const QString count = QString::number(values.size());
            for (const QString& k : keys) {
                if (auto f = step(n)) return f;
                if (relationHolds(compare(count, k, m.comparator),
                                  m.relation)) {  // RFC 5231 4.1: the count as a decimal string
                    *result = true;
                    return std::nullopt;
                }
            }
            return std::nullopt;
        }
        for (const QString& v : values) {
            for (const QString& k : keys) {
                if (auto f = step(n)) return f;
                bool hit = false;
                switch (m.type) {
                    case MatchType::Is:
                        hit = compare(v, k, m.comparator) == 0;
                        break;
                    case MatchType::Contains:
                        hit = v.contains(k,
                                         m.comparator == Comparator::CaseMap ? Qt::CaseInsensitive : Qt::CaseSensitive);
                        if (hit && m.comparator == Comparator::CaseMap) {  // Qt folds beyond ASCII; check ASCII folding
                            hit = false;
                            for (qsizetype i = 0; !hit && k.size() <= v.size() - i; ++i)
                                hit = compare(v.mid(i, k.size()), k, m.comparator) == 0;
                            if (auto f = step(n, v.size())) return f;
                        }
                        break;
                    case MatchType::Matches: {
                        QStringList groups;
                        if (auto f = glob(n, v, Glob(k), m.comparator, &hit, m_variablesOn ? &groups : nullptr))
                            return f;
                        if (hit && m_variablesOn) m_matchVars = groups;
                        break;
                    }
                    case MatchType::Value:
                        hit = relationHolds(compare(v, k, m.comparator), m.relation);
                        break;
                    case MatchType::Count:
                        break;
                }
                if (hit) {
                    *result = true;
                    return std::nullopt;
                }
            }
        }
        return std::nullopt;
    }

    // ---- Message access

    const mail::Header& header() {
        if (!m_headerParsed) {
            QByteArray block = m_m.header;
            if (!block.endsWith('\n')) block += "\r\n";
            m_header = mail::parseHeader(block + "\r\n");
            m_headerParsed = true;
        }
        return m_header;
    }

    QList<QByteArray> rawFields(const QString& name) {
        QList<QByteArray> out;
        const QByteArray want = name.toUtf8();
        for (const mail::HeaderField& f : header().fields)
            if (f.name.compare(want, Qt::CaseInsensitive) == 0) out << f.value;
        return out;
    }

    // RFC 5260 6: with :index N only the Nth field of that name (from the end with
    // :last) is looked at; none when there are fewer. Without :index, all of them.
    static QList<QByteArray> indexed(const Node& n, QList<QByteArray> fields) {
        if (!n.tags.contains(QStringLiteral("index"))) return fields;
        const qint64 i = n.tags.value(QStringLiteral("index")).number;  // >= 1 (validated)
        if (i > fields.size()) return {};
        const qsizetype at = n.tags.contains(QStringLiteral("last")) ? fields.size() - qsizetype(i) : qsizetype(i) - 1;
        return {fields.at(at)};
    }

    QStringList headerValues(const Node& n, const QStringList& names) {
        QStringList out;
        for (const QString& name : names)
            for (const QByteArray& raw : indexed(n, rawFields(name))) out << mail::decodeHeaderText(raw).trimmed();
        return out;
    }

    static std::optional<QString> addressPart(const Node& n, const QString& local, const QString& domain) {
        const QString all = domain.isEmpty() ? local : local + u'@' + domain;
        if (n.tags.contains(QStringLiteral("localpart"))) return local;
        if (n.tags.contains(QStringLiteral("domain"))) return domain;
        if (n.tags.contains(QStringLiteral("user")) || n.tags.contains(QStringLiteral("detail"))) {
            const qsizetype plus = local.indexOf(u'+');
            if (n.tags.contains(QStringLiteral("user"))) return plus < 0 ? local : local.left(plus);
            if (plus < 0) return std::nullopt;  // RFC 5233 4: no detail, no match
            return local.mid(plus + 1);
        }
        return all;
    }

    QStringList addressValues(const Node& n, const QStringList& names) {
        QStringList out;
        for (const QString& name : names)
            for (const QByteArray& raw : indexed(n, rawFields(name)))
                for (const mail::Address& a : mail::parseAddressList(raw)) {
                    if (a.groupStart || a.groupEnd || a.local.isEmpty()) continue;
                    if (auto part = addressPart(n, a.local, a.domain)) out << *part;
                }
        return out;
    }

    QStringList envelopeValues(const Node& n, const QStringList& parts) {
        QStringList out;
        for (const QString& p : parts) {
            const QString which = p.toLower();
            QString address;
            if (which == u"from")
                address = m_m.envelopeFrom;
            else if (which == u"to")
                address = m_m.envelopeTo;
            else
                continue;
            if (address.isEmpty()) {  // RFC 5228 5.4: the null reverse-path
                if (!n.tags.contains(QStringLiteral("detail"))) out << QString();
                continue;
            }
            const qsizetype at = address.lastIndexOf(u'@');
            if (auto part =
                    addressPart(n, at < 0 ? address : address.left(at), at < 0 ? QString() : address.mid(at + 1)))
                out << *part;
        }
        return out;
    }

    static QString decodePart(const QByteArray& raw, const mail::MimePart& part) {
        const QByteArray decoded = mail::decodeTransferEncoding(raw, part.encoding);
        const QString charset = part.params.get(QStringLiteral("charset"));
        if (!charset.isEmpty()) {
            QStringDecoder dec(charset.toLatin1().constData());
            if (dec.isValid()) return dec.decode(decoded);
        }
        return QString::fromUtf8(decoded);
    }

    void collectParts(const mail::MimePart& p, const QByteArray& whole, const QStringList& types, bool textOnly,
                      QStringList* out) {
        if (!p.children.isEmpty() && !p.isMessage()) {
            for (const auto& c : p.children) collectParts(c, whole, types, textOnly, out);
            return;
        }
        if (p.isMessage()) {
            for (const auto& c : p.children) collectParts(c, whole, types, textOnly, out);
            return;
        }
        bool want = false;
        if (textOnly) want = p.type == u"text";
        for (const QString& t : types) {
            const QString lt = t.toLower();
            if (lt.isEmpty())
                want = true;
            else if (lt.contains(u'/'))
                want |= lt == p.type + u'/' + p.subtype;
            else
                want |= lt == p.type;
        }
        if (!want) return;
        const qsizetype start = std::clamp<qsizetype>(p.bodyStart, 0, whole.size());
        const qsizetype end = std::clamp<qsizetype>(p.bodyEnd, start, whole.size());
        out->append(decodePart(whole.mid(start, end - start), p));
    }

    QStringList bodyValues(const Node& n) {
        if (n.tags.contains(QStringLiteral("raw"))) return {QString::fromUtf8(m_m.body.left(m_l.maxBodyBytes))};
        QByteArray block = m_m.header;
        if (!block.endsWith('\n')) block += "\r\n";
        const QByteArray whole = block + "\r\n" + m_m.body.left(m_l.maxBodyBytes);
        const mail::MimePart root = mail::parseMime(whole);
        QStringList out;
        const QStringList types = n.tags.contains(QStringLiteral("content"))
                                      ? expand(n.tags.value(QStringLiteral("content")).strings)
                                      : QStringList{};
        collectParts(root, whole, types, !n.tags.contains(QStringLiteral("content")), &out);
        return out;
    }

    static QString two(int v) { return QStringLiteral("%1").arg(v, 2, 10, QLatin1Char('0')); }

    static QString zoneText(int offsetSecs) {
        const int mins = std::abs(offsetSecs) / 60;
        return QStringLiteral("%1%2%3")
            .arg(QLatin1Char(offsetSecs < 0 ? '-' : '+'))
            .arg(two(mins / 60), two(mins % 60));
    }

    // RFC 5260 4: one date part.
    static QString datePart(const QDateTime& d, const QString& part) {
        const QDate date = d.date();
        const QTime time = d.time();
        if (!date.isValid() || !time.isValid()) return {};
        const QString p = part.toLower();
        if (p == u"year") return QStringLiteral("%1").arg(date.year(), 4, 10, QLatin1Char('0'));
        if (p == u"month") return two(date.month());
        if (p == u"day") return two(date.day());
        if (p == u"date")
            return QStringLiteral("%1-%2-%3")
                .arg(date.year(), 4, 10, QLatin1Char('0'))
                .arg(two(date.month()), two(date.day()));
        if (p == u"julian") return QString::number(date.toJulianDay() - 2400001);  // Modified Julian Day
        if (p == u"hour") return two(time.hour());
        if (p == u"minute") return two(time.minute());
        if (p == u"second") return two(time.second());
        if (p == u"time")
            return QStringLiteral("%1:%2:%3").arg(two(time.hour()), two(time.minute()), two(time.second()));
        if (p == u"zone") return zoneText(d.offsetFromUtc());
        if (p == u"weekday") return QString::number(date.dayOfWeek() % 7);  // 0 = Sunday
        const QString z = zoneText(d.offsetFromUtc());
        if (p == u"iso8601")
            return datePart(d, QStringLiteral("date")) + u'T' + datePart(d, QStringLiteral("time")) + z.left(3) + u':' +
                   z.mid(3);
        if (p == u"std11") {
            static const char* days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
            static const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
            return QStringLiteral("%1, %2 %3 %4 %5 %6")
                .arg(QLatin1String(days[date.dayOfWeek() - 1]), two(date.day()),
                     QLatin1String(months[date.month() - 1]))
                .arg(date.year())
                .arg(datePart(d, QStringLiteral("time")), z);
        }
        return {};
    }

    static QDateTime inZone(const QDateTime& d, const Node& n, bool original) {
        if (original && n.tags.contains(QStringLiteral("originalzone"))) return d;
        if (n.tags.contains(QStringLiteral("zone"))) {
            const QString z = n.tags.value(QStringLiteral("zone")).strings.value(0);
            const int secs = (z.mid(1, 2).toInt() * 60 + z.mid(3, 2).toInt()) * 60 * (z.startsWith(u'-') ? -1 : 1);
            return d.toOffsetFromUtc(secs);
        }
        return d.toLocalTime();
    }

    QStringList flagValues(const Node& n, const QStringList& varNames) {
        QStringList out;
        if (varNames.isEmpty()) return m_flags;
        for (const QString& v : varNames) {
            for (const QString& f : m_vars.value(expand(v).toLower()).split(u' ', Qt::SkipEmptyParts)) out << f;
        }
        (void)n;
        return out;
    }

    // ---- Tests

    // RFC 5260 4: the date test on a header field's date.
    std::optional<Failure> dateTest(const Node& n, bool* result) {
        const auto& pos = n.positional;
        QStringList values;
        const QStringList fields = headerValues(n, {expand(pos.at(0).strings.value(0))});
        if (!fields.isEmpty()) {  // RFC 5260 4: the last field for Date-like headers is ambiguous; take the first
            QString text = fields.first();
            // RFC 5260 4 / RFC 5322 3.6.7: a Received field's date follows its last ';'.
            if (pos.at(0).strings.value(0).compare(u"received", Qt::CaseInsensitive) == 0 && text.contains(u';'))
                text = text.section(u';', -1).trimmed();
            const QDateTime d = mail::parseDate(text.toUtf8());
            if (d.isValid()) values << datePart(inZone(d, n, true), expand(pos.at(1).strings.value(0)));
        }
        return test(n, values, pos.at(2).strings, result);
    }

    std::optional<Failure> evaluate(const Node& n, bool* result) {
        if (auto f = step(n)) return f;
        const QString& name = n.name;
        const auto& pos = n.positional;
        if (name == u"true" || name == u"false") {
            *result = name == u"true";
            return std::nullopt;
        }
        if (name == u"not") {
            auto f = evaluate(n.tests.first(), result);
            *result = !*result;
            return f;
        }
        if (name == u"allof" || name == u"anyof") {
            const bool all = name == u"allof";
            for (const Node& t : n.tests) {  // short-circuit (RFC 5228 5.2, 5.3)
                if (auto f = evaluate(t, result)) return f;
                if (*result != all) return std::nullopt;
            }
            *result = all;
            return std::nullopt;
        }
        if (name == u"exists") {
            *result = true;
            for (const QString& h : expand(pos.at(0).strings)) *result = *result && !rawFields(h).isEmpty();
            return std::nullopt;
        }
        if (name == u"size") {
            const qint64 limit = pos.at(0).number;
            *result = n.tags.contains(QStringLiteral("over")) ? m_m.size > limit : m_m.size < limit;
            return std::nullopt;
        }
        if (name == u"header") return test(n, headerValues(n, expand(pos.at(0).strings)), pos.at(1).strings, result);
        if (name == u"address") return test(n, addressValues(n, expand(pos.at(0).strings)), pos.at(1).strings, result);
        if (name == u"envelope")
            return test(n, envelopeValues(n, expand(pos.at(0).strings)), pos.at(1).strings, result);
        if (name == u"string") {
            QStringList values = expand(pos.at(0).strings);
            if (matchOf(n).type == MatchType::Count)
                values.removeAll(QString());  // RFC 5229 5: only non-empty strings count
            return test(n, values, pos.at(1).strings, result);
        }
        if (name == u"hasflag") {
            const QStringList vars = pos.size() == 2 ? pos.at(0).strings : QStringList{};
            QStringList flags;
            for (const QString& f : expand(pos.last().strings)) flags += f.split(u' ', Qt::SkipEmptyParts);
            return test(n, flagValues(n, vars), flags, result);
        }
        if (name == u"body") {
            const QStringList values = bodyValues(n);
            qint64 bytes = 0;
            for (const QString& v : values) bytes += v.size();
            if (auto f = step(n, bytes / 64)) return f;
            return test(n, values, pos.at(0).strings, result);
        }
        if (name == u"date") return dateTest(n, result);
        if (name == u"currentdate") {
            const QDateTime now = m_m.now.isValid() ? m_m.now : QDateTime::currentDateTime();
            return test(n, {datePart(inZone(now, n, false), expand(pos.at(0).strings.value(0)))}, pos.at(1).strings,
                        result);
        }
        if (name == u"mailboxexists") {
            *result = true;
            for (const QString& mb : expand(pos.at(0).strings))
                *result = *result && m_m.mailboxExists && m_m.mailboxExists(mb);
            return std::nullopt;
        }
        return Failure{n.line, n.column, QStringLiteral("test %1 not implemented").arg(name)};
    }

    // ---- Actions

    static bool sameMailbox(const QString& a, const QString& b) {
        auto norm = [](const QString& m) {
            return m.compare(u"INBOX", Qt::CaseInsensitive) == 0 ? QStringLiteral("INBOX") : m;
        };
        return norm(a) == norm(b);
    }

    static void mergeFlags(QStringList& into, const QStringList& more) {
        for (const QString& f : more) {
            bool seen = false;
            for (const QString& g : std::as_const(into)) seen |= g.compare(f, Qt::CaseInsensitive) == 0;
            if (!seen) into << f;
        }
    }

    // Keep / fileinto into a mailbox already chosen: one copy, flags merged (RFC 5228 4.1, RFC 5232 3).
    bool addDeliver(const Action& a) {
        const QString box = a.type == Action::Type::FileInto ? a.target : QStringLiteral("INBOX");
        for (Action& existing : m_actions) {
            if (existing.type != Action::Type::Keep && existing.type != Action::Type::FileInto) continue;
            const QString other = existing.type == Action::Type::FileInto ? existing.target : QStringLiteral("INBOX");
            if (!sameMailbox(box, other)) continue;
            mergeFlags(existing.flags, a.flags);
            existing.create = existing.create || a.create;
            return false;
        }
        m_actions << a;
        return true;
    }

    std::optional<Failure> addAction(const Node& n, Action a) {
        a.line = n.line;
        if (++m_actionCount > m_l.maxActions)
            return Failure{n.line, n.column, QStringLiteral("more than %1 actions").arg(m_l.maxActions)};
        switch (a.type) {
            case Action::Type::Keep:
            case Action::Type::FileInto:
                addDeliver(a);
                break;
            case Action::Type::Redirect: {
                for (const Action& e : std::as_const(m_actions))
                    if (e.type == Action::Type::Redirect && e.target.compare(a.target, Qt::CaseInsensitive) == 0)
                        return std::nullopt;  // RFC 5228 4.2
                if (++m_redirects > m_l.maxRedirects)
                    return Failure{n.line, n.column, QStringLiteral("more than %1 redirects").arg(m_l.maxRedirects)};
                m_actions << a;
                break;
            }
            case Action::Type::Vacation:
                for (const Action& e : std::as_const(m_actions))
                    if (e.type == Action::Type::Vacation)
                        return Failure{n.line, n.column, QStringLiteral("vacation used twice")};  // RFC 5230 4.7
                m_actions << a;
                break;
            default:
                m_actions << a;
                break;
        }
        return std::nullopt;
    }

    QStringList flagList(const QStringList& raw) const {
        QStringList out;
        for (const QString& s : expand(raw)) mergeFlags(out, s.split(u' ', Qt::SkipEmptyParts));
        return out;
    }

    static bool validAddress(const QString& a) {
        const qsizetype at = a.lastIndexOf(u'@');
        if (at <= 0 || at == a.size() - 1 || a.size() > 320) return false;
        for (QChar c : a)
            if (c.unicode() <= 0x20 || c == u'<' || c == u'>' || c == u',' || c == u'"' || c == u'\\' || c == u'(' ||
                c == u')')
                return false;
        return true;
    }

    // fileinto [:flags] [:create] [:copy] (RFC 5228 4.1, RFC 5232, RFC 5490 3.2, RFC 3894).
    std::optional<Failure> fileIntoCommand(const Node& n) {
        const auto& pos = n.positional;
        Action a;
        a.type = Action::Type::FileInto;
        a.target = expand(pos.at(0).strings.value(0));
        if (a.target.isEmpty()) return Failure{n.line, n.column, QStringLiteral("fileinto an empty mailbox name")};
        a.flags = n.tags.contains(QStringLiteral("flags")) ? flagList(n.tags.value(QStringLiteral("flags")).strings)
                                                           : m_flags;
        a.create = n.tags.contains(QStringLiteral("create"));
        a.copy = n.tags.contains(QStringLiteral("copy"));
        if (!a.copy) m_implicitKeep = false;  // RFC 3894 3
        if (sameMailbox(a.target, QStringLiteral("INBOX"))) a.type = Action::Type::Keep, a.target.clear();
        return addAction(n, a);
    }

    // redirect [:copy] (RFC 5228 4.2, RFC 3894).
    std::optional<Failure> redirectCommand(const Node& n) {
        const auto& pos = n.positional;
        Action a;
        a.type = Action::Type::Redirect;
        a.target = expand(pos.at(0).strings.value(0)).trimmed();
        if (!validAddress(a.target))
            return Failure{pos.at(0).line, pos.at(0).column,
                           QStringLiteral("redirect to an invalid address \"%1\"").arg(a.target)};
        a.copy = n.tags.contains(QStringLiteral("copy"));
        if (!a.copy) m_implicitKeep = false;
        return addAction(n, a);
    }

    // vacation (RFC 5230 4, RFC 6131 :seconds).
    std::optional<Failure> vacationCommand(const Node& n) {
        const auto& pos = n.positional;
        Action a;
        a.type = Action::Type::Vacation;
        a.reason = expand(pos.at(0).strings.value(0));
        if (n.tags.contains(QStringLiteral("seconds")))
            a.periodSeconds = n.tags.value(QStringLiteral("seconds")).number;
        else if (n.tags.contains(QStringLiteral("days")))
            a.periodSeconds = std::max<qint64>(1, n.tags.value(QStringLiteral("days")).number) * 86400;
        else
            a.periodSeconds = 7 * 86400;  // RFC 5230 4.1 default
        a.subject = expand(n.tags.value(QStringLiteral("subject")).strings.value(0));
        a.from = expand(n.tags.value(QStringLiteral("from")).strings.value(0));
        a.addresses = expand(n.tags.value(QStringLiteral("addresses")).strings);
        a.mime = n.tags.contains(QStringLiteral("mime"));
        a.handle = expand(n.tags.value(QStringLiteral("handle")).strings.value(0));
        return addAction(n, a);
    }

    // setflag / addflag / removeflag, on the internal flags or a variable (RFC 5232 3).
    std::optional<Failure> flagCommand(const Node& n) {
        const QString& name = n.name;
        const auto& pos = n.positional;
        const bool named = pos.size() == 2;
        const QString var = named ? expand(pos.at(0).strings.value(0)) : QString();
        QStringList current = named ? m_vars.value(var.toLower()).split(u' ', Qt::SkipEmptyParts) : m_flags;
        const QStringList given = flagList(pos.last().strings);
        if (name == u"setflag")
            current = given;
        else if (name == u"addflag")
            mergeFlags(current, given);
        else
            current.removeIf([&](const QString& f) {
                for (const QString& g : given)
                    if (g.compare(f, Qt::CaseInsensitive) == 0) return true;
                return false;
            });
        if (!named) {
            m_flags = current;
            return std::nullopt;
        }
        return setVariable(n, var, current.join(u' '));
    }

    // set with its modifiers (RFC 5229 4).
    std::optional<Failure> setCommand(const Node& n) {
        const auto& pos = n.positional;
        QString v = expand(pos.at(1).strings.value(0));
        // RFC 5229 4.1: modifiers applied by precedence, highest first.
        if (n.tags.contains(QStringLiteral("lower"))) v = v.toLower();
        if (n.tags.contains(QStringLiteral("upper"))) v = v.toUpper();
        if (n.tags.contains(QStringLiteral("lowerfirst")) && !v.isEmpty()) v[0] = v[0].toLower();
        if (n.tags.contains(QStringLiteral("upperfirst")) && !v.isEmpty()) v[0] = v[0].toUpper();
        if (n.tags.contains(QStringLiteral("quotewildcard"))) {
            QString q;
            for (QChar c : v) {
                if (c == u'*' || c == u'?' || c == u'\\') q += u'\\';
                q += c;
            }
            v = q;
        }
        if (n.tags.contains(QStringLiteral("length"))) v = QString::number(v.toUcs4().size());
        return setVariable(n, pos.at(0).strings.value(0), v);
    }

    std::optional<Failure> execute(const Node& n, bool& stop) {
        if (auto f = step(n)) return f;
        const QString& name = n.name;
        const auto& pos = n.positional;
        if (name == u"require") return std::nullopt;
        if (name == u"stop") {
            stop = true;
            return std::nullopt;
        }
        if (name == u"include") return include(n, stop);
        if (name == u"return") {  // RFC 6609 3.4: ends this script, not the includer
            m_return = true;
            return std::nullopt;
        }
        if (name == u"global") {
            for (const QString& v : pos.at(0).strings) m_globalNames.insert(v.toLower());
            return std::nullopt;
        }
        if (name == u"keep") {
            Action a;
            a.type = Action::Type::Keep;
            a.flags = n.tags.contains(QStringLiteral("flags")) ? flagList(n.tags.value(QStringLiteral("flags")).strings)
                                                               : m_flags;
            m_implicitKeep = false;
            return addAction(n, a);
        }
        if (name == u"discard") {
            m_implicitKeep = false;
            Action a;
            a.type = Action::Type::Discard;
            a.line = n.line;
            m_actions << a;
            return std::nullopt;
        }
        if (name == u"fileinto") return fileIntoCommand(n);
        if (name == u"redirect") return redirectCommand(n);
        if (name == u"reject" || name == u"ereject") {
            Action a;
            a.type = Action::Type::Reject;
            a.ereject = name == u"ereject";
            a.reason = expand(pos.at(0).strings.value(0));
            m_implicitKeep = false;
            return addAction(n, a);
        }
        if (name == u"vacation") return vacationCommand(n);
        if (name == u"setflag" || name == u"addflag" || name == u"removeflag") return flagCommand(n);
        if (name == u"set") return setCommand(n);
        return Failure{n.line, n.column, QStringLiteral("command %1 not implemented").arg(name)};
    }

    // A list of commands; if/elsif/else chains are followed here (RFC 5228 3.1).
    std::optional<Failure> block(const QList<Node>& commands, bool& stop) {
        bool chainTaken = false;
        for (const Node& c : commands) {
            if (stop || m_return) break;
            const bool isIf = c.name == u"if", isElsif = c.name == u"elsif", isElse = c.name == u"else";
            if (!isIf && !isElsif && !isElse) {
                if (auto f = execute(c, stop)) return f;
                continue;
            }
            if (auto f = step(c)) return f;
            if (isIf) chainTaken = false;
            if (chainTaken) continue;
            bool r = true;
            if (!isElse)
                if (auto f = evaluate(c.tests.first(), &r)) return f;
            if (!r) continue;
            chainTaken = true;
            if (auto f = block(c.block, stop)) return f;
        }
        return std::nullopt;
    }

    // RFC 5429 2.1/2.2 and RFC 5230 4.7: combinations that cannot be carried out.
    std::optional<Failure> finish() {
        const Action* reject = nullptr;
        int rejects = 0;
        for (const Action& a : std::as_const(m_actions))
            if (a.type == Action::Type::Reject) {
                reject = &a;
                ++rejects;
            }
        if (!reject) return std::nullopt;
        if (rejects > 1) return Failure{reject->line, 1, QStringLiteral("reject used twice")};
        for (const Action& a : std::as_const(m_actions)) {
            if (a.type == Action::Type::Vacation)
                return Failure{reject->line, 1, QStringLiteral("reject cannot be combined with vacation")};
            if (a.type == Action::Type::Keep || a.type == Action::Type::FileInto || a.type == Action::Type::Redirect)
                return Failure{reject->line, 1,
                               QStringLiteral("reject cannot be combined with %1").arg(toString(a.type))};
        }
        return std::nullopt;
    }

    const QList<Runnable>& m_seq;
    const Message& m_m;
    const Limits& m_l;
    bool m_variablesOn = false;
    bool m_includeOn = false;
    bool m_return = false;     // `return` ends the current script
    QStringList m_stack;       // scripts being run, outermost first ("personal:name")
    QSet<QString> m_included;  // every script included so far (:once)
    int m_includes = 0;
    QSet<QString> m_globalNames;  // declared `global` in the current script
    QMap<QString, QString> m_globals;
    qint64 m_steps = 0;
    int m_actionCount = 0;
    int m_redirects = 0;
    bool m_implicitKeep = true;
    QList<Action> m_actions;
    QStringList m_flags;  // imap4flags' internal variable
    QMap<QString, QString> m_vars;
    QStringList m_matchVars;
    bool m_headerParsed = false;
    mail::Header m_header;
};

}  // namespace

Outcome run(const Script& script, const Message& message, const Limits& limits) {
    const QList<Runnable> one = {
        Runnable{&script, message.scriptName.isEmpty() ? QString() : QStringLiteral("personal:") + message.scriptName}};
    Runner r(one, message, limits);
    return r.run();
}

Outcome run(const QList<Runnable>& sequence, const Message& message, const Limits& limits) {
    Runner r(sequence, message, limits);
    return r.run();
}

}  // namespace postern::sieve
