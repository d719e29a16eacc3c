// smtp_command.cpp — see smtp_command.h.
#include "smtp_command.h"

#include "common/mail/dsn_params.h"

#include "core/address.h"

#include <QHostAddress>

namespace postern::smtp {

QString toString(Verb v) {
    switch (v) {
        case Verb::Helo:
            return QStringLiteral("HELO");
        case Verb::Ehlo:
            return QStringLiteral("EHLO");
        case Verb::Mail:
            return QStringLiteral("MAIL");
        case Verb::Rcpt:
            return QStringLiteral("RCPT");
        case Verb::Data:
            return QStringLiteral("DATA");
        case Verb::Bdat:
            return QStringLiteral("BDAT");
        case Verb::Rset:
            return QStringLiteral("RSET");
        case Verb::Vrfy:
            return QStringLiteral("VRFY");
        case Verb::Expn:
            return QStringLiteral("EXPN");
        case Verb::Help:
            return QStringLiteral("HELP");
        case Verb::Noop:
            return QStringLiteral("NOOP");
        case Verb::Quit:
            return QStringLiteral("QUIT");
        case Verb::StartTls:
            return QStringLiteral("STARTTLS");
        case Verb::Auth:
            return QStringLiteral("AUTH");
        case Verb::Unknown:
            return QStringLiteral("?");
    }
    return {};
}

bool Command::hasParam(const QString& k) const {
    for (const auto& [key, value] : params)
        if (key == k) return true;
    return false;
}

QString Command::param(const QString& k) const {
    for (const auto& [key, value] : params)
        if (key == k) return value;
    return {};
}

QString MailPath::address() const {
    if (isNull) return {};
    if (postmaster && domain.isEmpty()) return QStringLiteral("postmaster");
    QString l = local;
    if (quotedLocal) {
        l.replace(QLatin1Char('\\'), QStringLiteral("\\\\"));
        l.replace(QLatin1Char('"'), QStringLiteral("\\\""));
        l = QLatin1Char('"') + l + QLatin1Char('"');
    }
    return l + QLatin1Char('@') + domain;
}

bool isValidEsmtpKeyword(const QString& k) {
    if (k.isEmpty() || k.size() > 64) return false;
    for (qsizetype i = 0; i < k.size(); ++i) {
        const char16_t c = k.at(i).unicode();
        const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !(i > 0 && c == '-')) return false;
    }
    return true;
}

std::optional<QString> decodeXtext(const QString& x) {
    const auto out = mail::decodeXtext(x.toUtf8());
    if (!out) return std::nullopt;
    for (char c : *out)
        if (uchar(c) < 0x20 || uchar(c) > 0x7e) return std::nullopt;  // RFC 3461 4.2, 4.4: printable ASCII once decoded
    return QString::fromLatin1(*out);
}

namespace {

bool fail(QString* error, const QString& text) {
    *error = text;
    return false;
}

// Quoted-string local part from s[0] == '"' (RFC 5321 4.1.2); *i ends after the closing quote.
bool parseQuotedLocal(QStringView s, qsizetype* i, QString* local, QString* error) {
    *i = 1;
    while (*i < s.size()) {
        const QChar c = s.at(*i);
        if (c == QLatin1Char('\\')) {
            if (*i + 1 >= s.size()) break;
            const char16_t n = s.at(*i + 1).unicode();
            if (n < 32 || n == 127) return fail(error, QStringLiteral("control character in quoted local part"));
            *local += s.at(*i + 1);
            *i += 2;
            continue;
        }
        if (c == QLatin1Char('"')) {
            ++*i;
            return true;
        }
        if (c.unicode() < 32 || c.unicode() == 127)
            return fail(error, QStringLiteral("control character in quoted local part"));
        *local += c;
        ++*i;
    }
    return fail(error, QStringLiteral("unterminated quoted local part"));
}

// Dot-string local part, up to the '@' (RFC 5321 4.1.2, RFC 6531 3.3).
bool parseDotLocal(QStringView s, qsizetype* i, QString* local, QString* error) {
    while (*i < s.size() && s.at(*i) != QLatin1Char('@')) {
        const QChar c = s.at(*i);
        // Any non-ASCII passes here (the session checks it against SMTPUTF8); isDotAtom
        // below then applies the account rule (printable, RFC 6531) to the whole local part.
        if (!isAtext(c.unicode(), NonAscii::Any) && c != QLatin1Char('.'))
            return fail(error, QStringLiteral("invalid character in local part"));
        *local += c;
        ++*i;
    }
    if (!isDotAtom(*local)) return fail(error, QStringLiteral("local part is not a dot-string"));
    return true;
}

// address-literal: "[" (IPv4 | "IPv6:" IPv6) "]" (RFC 5321 4.1.3).
bool checkAddressLiteral(QStringView domain, QString* error) {
    if (!domain.endsWith(QLatin1Char(']'))) return fail(error, QStringLiteral("bad address literal"));
    QStringView inner = domain.mid(1, domain.size() - 2);
    QHostAddress a;
    const bool v6 = inner.startsWith(u"IPv6:", Qt::CaseInsensitive);
    if (!a.setAddress((v6 ? inner.mid(5) : inner).toString()) ||
        (v6 != (a.protocol() == QAbstractSocket::IPv6Protocol)))
        return fail(error, QStringLiteral("bad address literal"));
    return true;
}

// Domain name: LDH labels, or UTF-8 labels (noted in p.hasUtf8 for the SMTPUTF8 check).
bool checkDomainName(QStringView domain, MailPath& p, QString* error) {
    for (QChar c : domain) {
        if (c.unicode() >= 0x80) {
            p.hasUtf8 = true;
            continue;
        }
        const char16_t u = c.unicode();
        const bool ldh =
            (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '-' || u == '.';
        if (!ldh) return fail(error, QStringLiteral("invalid character in domain"));
    }
    if (!isValidDomain(domain)) return fail(error, QStringLiteral("invalid domain"));
    return true;
}

// Parses Mailbox (after any source route) from s; returns false with error text.
// Mailbox = Local-part "@" ( Domain / address-literal ), checked in this order.
bool parseMailbox(QStringView s, MailPath& p, QString* error) {
    qsizetype i = 0;
    QString local;
    if (s.startsWith(QLatin1Char('"'))) {
        p.quotedLocal = true;
        if (!parseQuotedLocal(s, &i, &local, error)) return false;
    } else if (!parseDotLocal(s, &i, &local, error)) {
        return false;
    }
    if (i >= s.size() || s.at(i) != QLatin1Char('@')) return fail(error, QStringLiteral("address has no domain"));
    ++i;
    const QStringView domain = s.mid(i);
    if (domain.isEmpty()) return fail(error, QStringLiteral("empty domain"));
    if (local.isEmpty() || local.toUtf8().size() > kMaxLocalPartOctets)
        return fail(error, QStringLiteral("local part empty or longer than 64 octets"));
    if (domain.startsWith(QLatin1Char('['))) {
        if (!checkAddressLiteral(domain, error)) return false;
        p.addressLiteral = true;
    } else if (!checkDomainName(domain, p, error)) {
        return false;
    }
    for (QChar c : local)
        if (c.unicode() >= 0x80) p.hasUtf8 = true;
    p.local = local;
    p.domain = domain.toString();
    return true;
}

}  // namespace

std::optional<MailPath> parsePath(QStringView text, QString* error) {
    MailPath p;
    if (!text.startsWith(QLatin1Char('<')) || !text.endsWith(QLatin1Char('>')) || text.size() < 2) {
        *error = QStringLiteral("address must be enclosed in <>");
        return std::nullopt;
    }
    QStringView inner = text.mid(1, text.size() - 2);
    if (inner.isEmpty()) {
        p.isNull = true;
        return p;
    }
    if (inner.compare(u"postmaster", Qt::CaseInsensitive) == 0) {
        p.postmaster = true;
        p.local = QStringLiteral("postmaster");
        return p;
    }
    if (inner.startsWith(QLatin1Char('@'))) {
        // A-d-l ":" Mailbox — the route is ignored (RFC 5321 Appendix C).
        const qsizetype colon = inner.indexOf(QLatin1Char(':'));
        if (colon < 0) {
            *error = QStringLiteral("source route without ':'");
            return std::nullopt;
        }
        for (QStringView hop : inner.left(colon).split(QLatin1Char(','))) {
            if (!hop.startsWith(QLatin1Char('@')) || !isValidDomain(hop.mid(1))) {
                *error = QStringLiteral("bad source route");
                return std::nullopt;
            }
        }
        p.hadSourceRoute = true;
        inner = inner.mid(colon + 1);
    }
    if (!parseMailbox(inner, p, error)) return std::nullopt;
    return p;
}

namespace {

// Splits "<path> KEY=VALUE KEY" honouring quoted local parts inside the <>.
bool splitPathAndParams(QStringView rest, QStringView* path, QList<QStringView>* params) {
    if (!rest.startsWith(QLatin1Char('<'))) return false;
    qsizetype i = 1;
    bool inQuote = false;
    for (; i < rest.size(); ++i) {
        const QChar c = rest.at(i);
        if (inQuote && c == QLatin1Char('\\')) {
            ++i;
            continue;
        }
        if (c == QLatin1Char('"'))
            inQuote = !inQuote;
        else if (!inQuote && c == QLatin1Char('>'))
            break;
    }
    if (i >= rest.size()) return false;
    *path = rest.left(i + 1);
    QStringView tail = rest.mid(i + 1);
    if (!tail.isEmpty() && tail.front() != QLatin1Char(' ')) return false;
    for (QStringView part : tail.split(QLatin1Char(' '), Qt::SkipEmptyParts)) params->append(part);
    return true;
}

ParseError err(int code, const char* enh, const QString& text) {
    return ParseError{Reply(code, QString::fromLatin1(enh), text)};
}

// ESMTP parameters "KEY[=VALUE]" (RFC 5321 4.1.2): keyword syntax, no empty value, no repeats.
std::optional<ParseError> parseParams(const QList<QStringView>& params, Command& cmd) {
    for (QStringView p : params) {
        const qsizetype eq = p.indexOf(QLatin1Char('='));
        const QString key = (eq < 0 ? p : p.left(eq)).toString().toUpper();
        const QString value = eq < 0 ? QString() : p.mid(eq + 1).toString();
        if (!isValidEsmtpKeyword(key)) return err(501, "5.5.4", QStringLiteral("Bad parameter syntax"));
        if (eq >= 0 && value.isEmpty())
            return err(501, "5.5.4", QStringLiteral("Empty value for parameter %1").arg(key));
        if (cmd.hasParam(key)) return err(501, "5.5.4", QStringLiteral("Parameter %1 given twice").arg(key));
        cmd.params.append({key, value});
    }
    return std::nullopt;
}

// "MAIL FROM:<path> [parameters]" and "RCPT TO:<path> [parameters]" (RFC 5321 4.1.1.2, 4.1.1.3).
std::optional<ParseError> parsePathCommand(const QString& rest, Command& cmd) {
    const QString prefix = cmd.verb == Verb::Mail ? QStringLiteral("FROM:") : QStringLiteral("TO:");
    if (!rest.startsWith(prefix, Qt::CaseInsensitive))
        return err(501, "5.5.4", QStringLiteral("Syntax: %1 %2<address>").arg(cmd.verbText, prefix));
    QStringView after = QStringView(rest).mid(prefix.size());
    while (after.startsWith(QLatin1Char(' '))) after = after.mid(1);  // lenient: "FROM: <a@b>"
    QStringView pathText;
    QList<QStringView> params;
    if (!splitPathAndParams(after, &pathText, &params))
        return err(501, "5.5.4", QStringLiteral("Syntax: %1 %2<address> [parameters]").arg(cmd.verbText, prefix));
    QString why;
    auto path = parsePath(pathText, &why);
    if (!path)
        return err(501, cmd.verb == Verb::Mail ? "5.1.7" : "5.1.3", QStringLiteral("Bad address syntax: %1").arg(why));
    if (cmd.verb == Verb::Rcpt && path->isNull)
        return err(501, "5.1.3", QStringLiteral("Null recipient is not allowed"));
    if (cmd.verb == Verb::Mail && path->postmaster && path->domain.isEmpty())
        return err(501, "5.1.7", QStringLiteral("Bad sender address syntax"));
    cmd.path = *path;
    return parseParams(params, cmd);
}

// The other verbs' arguments: some take none, some require one.
std::optional<ParseError> checkArgument(const Command& cmd) {
    switch (cmd.verb) {
        case Verb::Data:
        case Verb::Rset:
        case Verb::Quit:
        case Verb::StartTls:
            if (!cmd.argument.isEmpty())
                return err(501, "5.5.4", QStringLiteral("%1 takes no arguments").arg(cmd.verbText));
            break;
        case Verb::Helo:
        case Verb::Ehlo:
            if (cmd.argument.isEmpty())
                return err(501, "5.5.4", QStringLiteral("%1 requires a domain or address").arg(cmd.verbText));
            break;
        case Verb::Bdat:
        case Verb::Auth:
            if (cmd.argument.isEmpty())
                return err(501, "5.5.4", QStringLiteral("%1 requires arguments").arg(cmd.verbText));
            break;
        default:
            break;
    }
    return std::nullopt;
}

}  // namespace

// Checks in this order: encoding and control characters, the verb, the line length, then
// the verb's arguments.
ParseResult parseCommand(const QByteArray& raw) {
    const QString line = QString::fromUtf8(raw);
    if (line.toUtf8() != raw) return err(500, "5.5.2", QStringLiteral("Command is not valid UTF-8"));
    for (QChar c : line) {
        if (c.unicode() < 32 && c != QLatin1Char('\t'))
            return err(500, "5.5.2", QStringLiteral("Control characters are not allowed in commands"));
    }
    const qsizetype sp = line.indexOf(QLatin1Char(' '));
    Command cmd;
    cmd.verbText = (sp < 0 ? line : line.left(sp)).toUpper();
    const QString rest = sp < 0 ? QString() : line.mid(sp + 1);
    static const QList<std::pair<const char*, Verb>> verbs = {
        {"HELO", Verb::Helo},         {"EHLO", Verb::Ehlo}, {"MAIL", Verb::Mail}, {"RCPT", Verb::Rcpt},
        {"DATA", Verb::Data},         {"BDAT", Verb::Bdat}, {"RSET", Verb::Rset}, {"VRFY", Verb::Vrfy},
        {"EXPN", Verb::Expn},         {"HELP", Verb::Help}, {"NOOP", Verb::Noop}, {"QUIT", Verb::Quit},
        {"STARTTLS", Verb::StartTls}, {"AUTH", Verb::Auth}};
    for (const auto& [name, verb] : verbs)
        if (cmd.verbText == QLatin1String(name)) cmd.verb = verb;
    if (cmd.verb == Verb::Unknown) return err(500, "5.5.2", QStringLiteral("Command not recognized"));
    // RFC 5321 4.5.3.1.4: 512 octets incl. CRLF; only MAIL and RCPT get the ESMTP parameters'
    // allowance (RFC 5321 4.1.2 and 4.5.3.1.4, RFC 1869 4). Deliberate leniency: AUTH too,
    // although RFC 4954 4 keeps it at 512; a long password makes a long initial response, and
    // its length is bounded by the reader and the SASL field limits anyway.
    if (cmd.verb != Verb::Mail && cmd.verb != Verb::Rcpt && cmd.verb != Verb::Auth &&
        raw.size() > kMaxBaseCommandLine - 2)
        return err(500, "5.5.2", QStringLiteral("Line too long (limit %1 octets)").arg(kMaxBaseCommandLine));
    cmd.argument = rest.trimmed();
    const std::optional<ParseError> error =
        cmd.verb == Verb::Mail || cmd.verb == Verb::Rcpt ? parsePathCommand(rest, cmd) : checkArgument(cmd);
    if (error) return *error;
    return cmd;
}

}  // namespace postern::smtp
