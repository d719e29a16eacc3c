// sieve_validate.cpp — checks a parsed Sieve script against its `require`d
// extensions: one table of commands and tests with their tags and positional
// arguments (RFC 5228 and the extensions in sieve.h). Fills Node::tags and
// Node::positional for the interpreter, so that it never meets a shape it was
// not written for.
//
// Rules enforced here (besides the table): `require` only at the start of the
// script (RFC 5228 3.2); an unknown extension is an error (3.2); elsif/else
// only after if/elsif (3.1); a tag at most once and one tag per group
// (match type, comparator, address part, body transform, zone, :days/:seconds);
// comparators must be known and required (i;ascii-numeric needs
// "comparator-i;ascii-numeric"); i;ascii-numeric refuses :contains and
// :matches (RFC 4790 9.1.1: no substring operation); relational operators are
// gt ge lt le eq ne (RFC 5231 4); date parts are those of RFC 5260 4;
// set's variable name must be a valid identifier (RFC 5229 3); :index counts
// from 1 and :last needs :index (RFC 5260 6); include names a script by a
// plain name (validIncludeName: no path can be formed from it) and global
// needs "variables" (RFC 6609 3.3).
#include "sieve_internal.h"

#include <QRegularExpression>

namespace postern::sieve {
namespace detail {

namespace {

enum class P { String, StringList, Number };  // positional kinds

struct TagSpec {
    const char* name;
    const char* extension;   // nullptr: core
    const char* group;       // tags of one group exclude each other; nullptr: none
    std::optional<P> param;  // the argument the tag takes
};

// Tag sets.
const QList<TagSpec> kComparator = {{"comparator", nullptr, "comparator", P::String}};
const QList<TagSpec> kMatch = {{"is", nullptr, "match", {}},
                               {"contains", nullptr, "match", {}},
                               {"matches", nullptr, "match", {}},
                               {"count", "relational", "match", P::String},
                               {"value", "relational", "match", P::String}};
const QList<TagSpec> kAddressPart = {{"all", nullptr, "addrpart", {}},
                                     {"localpart", nullptr, "addrpart", {}},
                                     {"domain", nullptr, "addrpart", {}},
                                     {"user", "subaddress", "addrpart", {}},
                                     {"detail", "subaddress", "addrpart", {}}};
// RFC 5260 6: which occurrence of the header field a test looks at.
const QList<TagSpec> kIndex = {{"index", "index", nullptr, P::Number}, {"last", "index", nullptr, {}}};
const QList<TagSpec> kBodyTransform = {{"raw", "body", "transform", {}},
                                       {"text", "body", "transform", {}},
                                       {"content", "body", "transform", P::StringList}};

struct Spec {
    const char* name;
    const char* extension;  // nullptr: core
    bool isTest;
    QList<TagSpec> tags;
    QList<P> positional;
    int optionalLeading = 0;  // that many leading positionals may be left out (hasflag, setflag)
    enum class Sub { None, Test, TestList } sub = Sub::None;
    bool control = false;  // if/elsif/else: block required
};

// Long because it is the one table of Sieve commands and tests (name, extension, tags,
// positional arguments, sub-tests, block): a row per command, nothing else.
const QList<Spec>& specs() {
    static const QList<Spec> table = {
        // Control (RFC 5228 3)
        {"require", nullptr, false, {}, {P::StringList}},
        {"if", nullptr, false, {}, {}, 0, Spec::Sub::Test, true},
        {"elsif", nullptr, false, {}, {}, 0, Spec::Sub::Test, true},
        {"else", nullptr, false, {}, {}, 0, Spec::Sub::None, true},
        {"stop", nullptr, false, {}, {}},
        // include (RFC 6609 3.2-3.4)
        {"include",
         "include",
         false,
         {{"personal", nullptr, "location", {}},
          {"global", nullptr, "location", {}},
          {"once", nullptr, nullptr, {}},
          {"optional", nullptr, nullptr, {}}},
         {P::String}},
        {"return", "include", false, {}, {}},
        {"global", "include", false, {}, {P::StringList}},
        // Actions (RFC 5228 4 and extensions)
        {"keep", nullptr, false, {{"flags", "imap4flags", nullptr, P::StringList}}, {}},
        {"discard", nullptr, false, {}, {}},
        {"redirect", nullptr, false, {{"copy", "copy", nullptr, {}}}, {P::String}},
        {"fileinto",
         "fileinto",
         false,
         {{"copy", "copy", nullptr, {}},
          {"flags", "imap4flags", nullptr, P::StringList},
          {"create", "mailbox", nullptr, {}}},
         {P::String}},
        {"reject", "reject", false, {}, {P::String}},
        {"ereject", "ereject", false, {}, {P::String}},
        {"setflag", "imap4flags", false, {}, {P::String, P::StringList}, 1},
        {"addflag", "imap4flags", false, {}, {P::String, P::StringList}, 1},
        {"removeflag", "imap4flags", false, {}, {P::String, P::StringList}, 1},
        {"set",
         "variables",
         false,
         {{"lower", nullptr, "case", {}},
          {"upper", nullptr, "case", {}},
          {"lowerfirst", nullptr, "casefirst", {}},
          {"upperfirst", nullptr, "casefirst", {}},
          {"quotewildcard", nullptr, nullptr, {}},
          {"length", nullptr, nullptr, {}}},
         {P::String, P::String}},
        {"vacation",
         "vacation",
         false,
         {{"days", nullptr, "period", P::Number},
          {"seconds", "vacation-seconds", "period", P::Number},
          {"subject", nullptr, nullptr, P::String},
          {"from", nullptr, nullptr, P::String},
          {"addresses", nullptr, nullptr, P::StringList},
          {"mime", nullptr, nullptr, {}},
          {"handle", nullptr, nullptr, P::String}},
         {P::String}},
        // Tests (RFC 5228 5 and extensions)
        {"address", nullptr, true, kComparator + kMatch + kAddressPart + kIndex, {P::StringList, P::StringList}},
        {"envelope", "envelope", true, kComparator + kMatch + kAddressPart, {P::StringList, P::StringList}},
        {"header", nullptr, true, kComparator + kMatch + kIndex, {P::StringList, P::StringList}},
        {"exists", nullptr, true, {}, {P::StringList}},
        {"size", nullptr, true, {{"over", nullptr, "size", {}}, {"under", nullptr, "size", {}}}, {P::Number}},
        {"allof", nullptr, true, {}, {}, 0, Spec::Sub::TestList},
        {"anyof", nullptr, true, {}, {}, 0, Spec::Sub::TestList},
        {"not", nullptr, true, {}, {}, 0, Spec::Sub::Test},
        {"true", nullptr, true, {}, {}},
        {"false", nullptr, true, {}, {}},
        {"string", "variables", true, kComparator + kMatch, {P::StringList, P::StringList}},
        {"hasflag", "imap4flags", true, kComparator + kMatch, {P::StringList, P::StringList}, 1},
        {"body", "body", true, kComparator + kMatch + kBodyTransform, {P::StringList}},
        {"date",
         "date",
         true,
         kComparator + kMatch + kIndex +
             QList<TagSpec>{{"zone", nullptr, "zone", P::String}, {"originalzone", nullptr, "zone", {}}},
         {P::String, P::String, P::StringList}},
        {"currentdate",
         "date",
         true,
         kComparator + kMatch + QList<TagSpec>{{"zone", nullptr, "zone", P::String}},
         {P::String, P::StringList}},
        {"mailboxexists", "mailbox", true, {}, {P::StringList}},
    };
    return table;
}

const Spec* findSpec(const QString& name) {
    for (const Spec& s : specs())
        if (name == QLatin1String(s.name)) return &s;
    return nullptr;
}

const QStringList kComparators = {QStringLiteral("i;octet"), QStringLiteral("i;ascii-casemap"),
                                  QStringLiteral("i;ascii-numeric")};
const QStringList kRelations = {QStringLiteral("gt"), QStringLiteral("ge"), QStringLiteral("lt"),
                                QStringLiteral("le"), QStringLiteral("eq"), QStringLiteral("ne")};
const QStringList kDateParts = {QStringLiteral("year"),    QStringLiteral("month"),  QStringLiteral("day"),
                                QStringLiteral("date"),    QStringLiteral("julian"), QStringLiteral("hour"),
                                QStringLiteral("minute"),  QStringLiteral("second"), QStringLiteral("time"),
                                QStringLiteral("iso8601"), QStringLiteral("std11"),  QStringLiteral("zone"),
                                QStringLiteral("weekday")};

QString kindName(P p) {
    switch (p) {
        case P::String:
            return QStringLiteral("a string");
        case P::StringList:
            return QStringLiteral("a string list");
        case P::Number:
            return QStringLiteral("a number");
    }
    return {};
}

bool fits(const Argument& a, P p) {
    switch (p) {
        case P::String:
            return a.kind == Argument::Kind::String;
        case P::StringList:
            return a.kind == Argument::Kind::String || a.kind == Argument::Kind::StringList;
        case P::Number:
            return a.kind == Argument::Kind::Number;
    }
    return false;
}

class Validator {
public:
    explicit Validator(Script& s) : m_s(s) {}

    Status run() {
        // RFC 5228 3.2: require only at the beginning.
        bool pastRequire = false;
        for (Node& n : m_s.commands) {
            if (n.name == u"require") {
                if (pastRequire)
                    return errorAt(n.line, n.column, QStringLiteral("require must come before any other command"));
                if (auto st = node(n, false); !st) return st;
                const Argument& list = n.positional.at(0);
                for (qsizetype i = 0; i < list.strings.size(); ++i) {
                    const QString& e = list.strings.at(i);
                    const QString ext = e.toLower();
                    const auto [line, column] = list.positions.value(i, std::pair{list.line, list.column});
                    if (!supportedExtensions().contains(ext))
                        return errorAt(line, column, QStringLiteral("unsupported extension \"%1\"").arg(e));
                    if (!m_s.required.contains(ext)) m_s.required << ext;
                }
                continue;
            }
            pastRequire = true;
        }
        // imap4flags: RFC 5232 3 — variables allowed as the optional first argument only with "variables".
        return commands(m_s.commands, true);
    }

private:
    Status commands(QList<Node>& list, bool top) {
        QString previous;
        for (Node& n : list) {
            if (n.name == u"require") {
                if (!top)
                    return errorAt(n.line, n.column, QStringLiteral("require must come before any other command"));
                previous = n.name;
                continue;
            }
            if ((n.name == u"elsif" || n.name == u"else") && previous != u"if" && previous != u"elsif")
                return errorAt(n.line, n.column, QStringLiteral("%1 without a preceding if").arg(n.name));
            if (auto st = node(n, false); !st) return st;
            if (auto st = commands(n.block, false); !st) return st;
            previous = n.name;
        }
        return {};
    }

    // Sorts the node's arguments into tags (checked against the spec: known, required, once, one
    // per group, with their argument) and positional arguments.
    Status sortArguments(Node& n, const Spec& spec) {
        QMap<QString, QString> groups;
        const auto& args = n.arguments;
        for (qsizetype i = 0; i < args.size(); ++i) {
            const Argument& a = args.at(i);
            if (a.kind != Argument::Kind::Tag) {
                n.positional << a;
                continue;
            }
            if (!n.positional.isEmpty())
                return errorAt(a.line, a.column, QStringLiteral("tag :%1 after a positional argument").arg(a.tag));
            const TagSpec* ts = nullptr;
            for (const TagSpec& t : spec.tags)
                if (a.tag == QLatin1String(t.name)) ts = &t;
            if (!ts) return errorAt(a.line, a.column, QStringLiteral("unknown tag :%1 for %2").arg(a.tag, n.name));
            if (ts->extension && !m_s.has(QLatin1String(ts->extension)))
                return errorAt(a.line, a.column,
                               QStringLiteral("tag :%1 needs require \"%2\"").arg(a.tag, QLatin1String(ts->extension)));
            if (n.tags.contains(a.tag))
                return errorAt(a.line, a.column, QStringLiteral("tag :%1 given twice").arg(a.tag));
            if (ts->group) {
                const QString g = QLatin1String(ts->group);
                if (groups.contains(g))
                    return errorAt(a.line, a.column,
                                   QStringLiteral(":%1 cannot be combined with :%2").arg(a.tag, groups.value(g)));
                groups.insert(g, a.tag);
            }
            Argument value = a;
            if (ts->param) {
                if (i + 1 >= args.size() || !fits(args.at(i + 1), *ts->param))
                    return errorAt(a.line, a.column,
                                   QStringLiteral("tag :%1 needs %2").arg(a.tag, kindName(*ts->param)));
                value = args.at(++i);
                value.tag = a.tag;
            }
            n.tags.insert(a.tag, value);
        }
        return {};
    }

    // The positional arguments' number and kinds; *skipped: the optional leading ones left out.
    Status checkPositional(const Node& n, const Spec& spec, qsizetype* skipped) {
        const qsizetype want = spec.positional.size();
        const qsizetype have = n.positional.size();
        if (have > want || have < want - spec.optionalLeading)
            return errorAt(n.line, n.column,
                           QStringLiteral("%1 takes %2 argument(s), found %3").arg(n.name).arg(want).arg(have));
        const qsizetype skip = want - have;
        *skipped = skip;
        for (qsizetype i = 0; i < have; ++i) {
            const Argument& a = n.positional.at(i);
            if (!fits(a, spec.positional.at(i + skip)))
                return errorAt(a.line, a.column,
                               QStringLiteral("%1: expected %2").arg(n.name, kindName(spec.positional.at(i + skip))));
        }
        return {};
    }

    // The number of sub-tests the spec asks for.
    Status checkTestCount(const Node& n, const Spec& spec) {
        switch (spec.sub) {
            case Spec::Sub::None:
                if (!n.tests.isEmpty())
                    return errorAt(n.tests.first().line, n.tests.first().column,
                                   QStringLiteral("%1 takes no test").arg(n.name));
                break;
            case Spec::Sub::Test:
                if (n.tests.size() != 1)
                    return errorAt(n.line, n.column, QStringLiteral("%1 needs exactly one test").arg(n.name));
                break;
            case Spec::Sub::TestList:
                if (n.tests.isEmpty())
                    return errorAt(n.line, n.column, QStringLiteral("%1 needs a test list").arg(n.name));
                break;
        }
        return {};
    }

    Status node(Node& n, bool asTest) {
        const Spec* spec = findSpec(n.name);
        const QString what = asTest ? QStringLiteral("test") : QStringLiteral("command");
        if (!spec || spec->isTest != asTest) {
            if (spec)
                return errorAt(
                    n.line, n.column,
                    QStringLiteral("\"%1\" is a %2, not a %3")
                        .arg(n.name, spec->isTest ? QStringLiteral("test") : QStringLiteral("command"), what));
            return errorAt(n.line, n.column, QStringLiteral("unknown %1 \"%2\"").arg(what, n.name));
        }
        if (spec->extension && !m_s.has(QLatin1String(spec->extension)))
            return errorAt(
                n.line, n.column,
                QStringLiteral("%1 \"%2\" needs require \"%3\"").arg(what, n.name, QLatin1String(spec->extension)));
        if (auto st = sortArguments(n, *spec); !st) return st;
        qsizetype skip = 0;
        if (auto st = checkPositional(n, *spec, &skip); !st) return st;
        if (auto st = semantic(n, skip); !st) return st;
        // Sub-tests and blocks.
        if (auto st = checkTestCount(n, *spec); !st) return st;
        for (Node& t : n.tests)
            if (auto st = node(t, true); !st) return st;
        if (!asTest && spec->control && !n.hasBlock)
            return errorAt(n.line, n.column, QStringLiteral("%1 needs a block { ... }").arg(n.name));
        if (!asTest && !spec->control && n.hasBlock)
            return errorAt(n.line, n.column, QStringLiteral("%1 takes no block").arg(n.name));
        if (n.name == u"body") m_s.usesBody = true;
        return {};
    }

    // Values of the comparator, relational and index tags (RFC 4790 9.1.1, RFC 5231 4, RFC 5260 6).
    Status tagValues(Node& n) {
        if (n.tags.contains(QStringLiteral("comparator"))) {
            const Argument& c = n.tags[QStringLiteral("comparator")];
            const QString name = c.strings.value(0).toLower();
            if (!kComparators.contains(name))
                return errorAt(c.line, c.column, QStringLiteral("unknown comparator \"%1\"").arg(c.strings.value(0)));
            if (name == u"i;ascii-numeric") {
                if (!m_s.has(QStringLiteral("comparator-i;ascii-numeric")))
                    return errorAt(
                        c.line, c.column,
                        QStringLiteral("comparator i;ascii-numeric needs require \"comparator-i;ascii-numeric\""));
                if (n.tags.contains(QStringLiteral("contains")) || n.tags.contains(QStringLiteral("matches")))
                    return errorAt(c.line, c.column,
                                   QStringLiteral("comparator i;ascii-numeric supports no substring match"));
            }
        }
        for (const char* rel : {"count", "value"}) {
            const QString key = QLatin1String(rel);
            if (!n.tags.contains(key)) continue;
            const Argument& r = n.tags[key];
            if (!kRelations.contains(r.strings.value(0).toLower()))
                return errorAt(r.line, r.column,
                               QStringLiteral("unknown relational operator \"%1\"").arg(r.strings.value(0)));
        }
        if (n.tags.contains(QStringLiteral("last")) && !n.tags.contains(QStringLiteral("index"))) {
            const Argument& l = n.tags[QStringLiteral("last")];
            return errorAt(l.line, l.column, QStringLiteral(":last needs :index"));  // RFC 5260 6
        }
        if (n.tags.contains(QStringLiteral("index")) && n.tags[QStringLiteral("index")].number < 1) {
            const Argument& i = n.tags[QStringLiteral("index")];
            return errorAt(i.line, i.column, QStringLiteral(":index counts from 1"));  // RFC 5260 6: fieldno > 0
        }
        return {};
    }

    // date / currentdate: the date part and :zone (RFC 5260 4, 4.1).
    Status dateArguments(Node& n) {
        const Argument& part = n.positional.at(n.name == u"date" ? 1 : 0);
        if (!kDateParts.contains(part.strings.value(0).toLower()))
            return errorAt(part.line, part.column,
                           QStringLiteral("unknown date part \"%1\"").arg(part.strings.value(0)));
        if (n.tags.contains(QStringLiteral("zone"))) {
            static const QRegularExpression zone(QStringLiteral("^[+-][0-9]{4}$"));
            const Argument& z = n.tags[QStringLiteral("zone")];
            if (!zone.match(z.strings.value(0)).hasMatch())
                return errorAt(z.line, z.column, QStringLiteral("zone must look like +hhmm or -hhmm"));
        }
        return {};
    }

    // Checks that depend on values.
    Status semantic(Node& n, qsizetype skipped) {
        if (auto st = tagValues(n); !st) return st;
        if (n.name == u"size" && !n.tags.contains(QStringLiteral("over")) && !n.tags.contains(QStringLiteral("under")))
            return errorAt(n.line, n.column, QStringLiteral("size needs :over or :under"));
        if (n.name == u"date" || n.name == u"currentdate")
            if (auto st = dateArguments(n); !st) return st;
        if (n.name == u"include") {
            const Argument& v = n.positional.at(0);
            if (!validIncludeName(v.strings.value(0)))
                return errorAt(v.line, v.column,
                               QStringLiteral("invalid script name \"%1\" (1 to 64 of A-Z a-z 0-9 . _ -, not starting "
                                              "with '.')")
                                   .arg(v.strings.value(0)));
        }
        if (n.name == u"global") {  // RFC 6609 3.3: needs variables; names are identifiers
            if (!m_s.has(QStringLiteral("variables")))
                return errorAt(n.line, n.column, QStringLiteral("global needs require \"variables\""));
            static const QRegularExpression ident(QStringLiteral("^[A-Za-z_][A-Za-z0-9_]*$"));
            const Argument& v = n.positional.at(0);
            for (const QString& name : v.strings)
                if (!ident.match(name).hasMatch())
                    return errorAt(v.line, v.column, QStringLiteral("invalid variable name \"%1\"").arg(name));
        }
        if (n.name == u"set") {
            static const QRegularExpression ident(QStringLiteral("^[A-Za-z_][A-Za-z0-9_]*$"));
            const Argument& v = n.positional.at(0);
            if (!ident.match(v.strings.value(0)).hasMatch())
                return errorAt(v.line, v.column,
                               QStringLiteral("invalid variable name \"%1\"").arg(v.strings.value(0)));
        }
        if ((n.name == u"setflag" || n.name == u"addflag" || n.name == u"removeflag" || n.name == u"hasflag") &&
            skipped == 0 && !m_s.has(QStringLiteral("variables"))) {
            const Argument& v = n.positional.at(0);
            return errorAt(v.line, v.column,
                           QStringLiteral("%1 with a variable name needs require \"variables\"").arg(n.name));
        }
        if (n.name == u"vacation" && n.tags.contains(QStringLiteral("days")) &&
            n.tags[QStringLiteral("days")].number > 100000)
            n.tags[QStringLiteral("days")].number = 100000;  // keep seconds in range; far beyond any useful period
        return {};
    }

    Script& m_s;
};

void decodeTree(QList<Node>& nodes) {
    for (Node& n : nodes) {
        for (Argument& a : n.arguments)
            for (QString& s : a.strings) s = decodeEncodedCharacters(s);
        decodeTree(n.tests);
        decodeTree(n.block);
    }
}

int hexValue(QChar c) {
    if (c >= u'0' && c <= u'9') return c.unicode() - '0';
    if (c >= u'a' && c <= u'f') return c.unicode() - 'a' + 10;
    if (c >= u'A' && c <= u'F') return c.unicode() - 'A' + 10;
    return -1;
}

// The hex groups of one "${hex:...}" or "${unicode:...}" body, or nullopt when malformed.
std::optional<QList<uint>> hexGroups(QStringView body, bool unicode) {
    QList<uint> out;
    qsizetype i = 0;
    while (i < body.size()) {
        if (body[i] == u' ' || body[i] == u'\t' || body[i] == u'\r' || body[i] == u'\n') {
            ++i;
            continue;
        }
        uint v = 0;
        int digits = 0;
        while (i < body.size() && hexValue(body[i]) >= 0) {
            if (v > 0x10FFFF) return std::nullopt;
            v = v * 16 + uint(hexValue(body[i]));
            ++digits;
            ++i;
        }
        if (digits == 0) return std::nullopt;
        if (!unicode && v > 0xFF) return std::nullopt;
        if (unicode && (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))) return std::nullopt;
        out << v;
    }
    return out;
}

}  // namespace

QString decodeEncodedCharacters(const QString& text) {
    if (!text.contains(u"${")) return text;
    QString out;
    qsizetype i = 0;
    while (i < text.size()) {
        const qsizetype start = text.indexOf(u"${", i);
        if (start < 0) break;
        out += QStringView(text).mid(i, start - i);
        const qsizetype colon = text.indexOf(u':', start);
        const qsizetype close = text.indexOf(u'}', start);
        if (colon < 0 || close < 0 || colon > close) {
            out += u"${";
            i = start + 2;
            continue;
        }
        const QString kind = text.mid(start + 2, colon - start - 2).trimmed().toLower();
        const QStringView body = QStringView(text).mid(colon + 1, close - colon - 1);
        std::optional<QList<uint>> groups;
        if (kind == u"hex" || kind == u"unicode") groups = hexGroups(body, kind == u"unicode");
        if (!groups) {  // not an encoding (maybe a variable): copied as written
            out += u"${";
            i = start + 2;
            continue;
        }
        if (kind == u"hex") {
            QByteArray bytes;
            for (uint v : *groups) bytes.append(char(v));
            out += QString::fromUtf8(bytes);
        } else {
            for (uint v : *groups) {
                const char32_t cp = v;
                out += QString::fromUcs4(&cp, 1);
            }
        }
        i = close + 1;
    }
    out += QStringView(text).mid(i);
    return out;
}

Status validate(Script& script, const Limits& /*limits: enforced by the parser and the interpreter*/) {
    // The require list itself is never encoded; decode the rest once require is known.
    for (const Node& n : script.commands) {
        if (n.name != u"require") break;
        for (const Argument& a : n.arguments)
            for (const QString& e : a.strings)
                if (e.compare(u"encoded-character", Qt::CaseInsensitive) == 0) {
                    decodeTree(script.commands);
                    goto decoded;
                }
    }
decoded:
    Validator v(script);
    return v.run();
}

}  // namespace detail

bool validIncludeName(const QString& name) {
    if (name.isEmpty() || name.size() > 64 || name.startsWith(u'.')) return false;
    for (QChar c : name)
        if (!((c >= u'A' && c <= u'Z') || (c >= u'a' && c <= u'z') || (c >= u'0' && c <= u'9') || c == u'.' ||
              c == u'_' || c == u'-'))
            return false;
    return true;
}

QStringList supportedExtensions() {
    return {QStringLiteral("fileinto"),
            QStringLiteral("mailbox"),
            QStringLiteral("envelope"),
            QStringLiteral("encoded-character"),
            QStringLiteral("imap4flags"),
            QStringLiteral("copy"),
            QStringLiteral("reject"),
            QStringLiteral("ereject"),
            QStringLiteral("variables"),
            QStringLiteral("subaddress"),
            QStringLiteral("relational"),
            QStringLiteral("body"),
            QStringLiteral("date"),
            QStringLiteral("index"),
            QStringLiteral("include"),
            QStringLiteral("vacation"),
            QStringLiteral("vacation-seconds"),
            QStringLiteral("comparator-i;ascii-numeric"),
            QStringLiteral("comparator-i;octet"),
            QStringLiteral("comparator-i;ascii-casemap")};
}

}  // namespace postern::sieve
