// smtp_command.h — parsing one SMTP command line (no I/O, no state).
//
// Grammar (RFC 5321 4.1.1, 4.1.2; RFC 1869 params; RFC 6531 UTF-8):
//   line     = verb [SP args]            (CRLF already removed by the reader)
//   MAIL FROM:<reverse-path> *(SP esmtp-param)
//   RCPT TO:<forward-path>   *(SP esmtp-param)      (also "<Postmaster>")
//   path     = "<" [ A-d-l ":" ] Mailbox ">" / "<>"
//   Mailbox  = Local-part "@" ( Domain / address-literal )
//   Local-part = Dot-string / Quoted-string
//   esmtp-param = keyword ["=" value]
// Deliberate leniency (as Postfix by default): a space after "FROM:"/"TO:"
// is accepted. A source route (A-d-l) is parsed and dropped (RFC 5321 C,
// "SHOULD ignore"), and reported so policy can see it.
//
// Interface: parseCommand(line) -> Command or ParseError (code + enhanced +
// text), parsePath(), decodeXtext() (RFC 3461 4).
// Security: input is raw client bytes; all lengths are bounded by the reader
// (smtp.max_command_line) before this runs; nothing here allocates without
// bound. Local parts keep their case (forwarding must not change them).
// Limits: kMaxBaseCommandLine (512 octets incl. CRLF, RFC 5321 4.5.3.1.4) for
// every command but MAIL and RCPT, which may use the reader's larger limit for
// their ESMTP parameters, and AUTH (see parseCommand).
#pragma once

#include "smtp_reply.h"

#include <QByteArray>
#include <QList>
#include <QMap>
#include <QString>
#include <optional>
#include <variant>

namespace postern::smtp {

enum class Verb { Helo, Ehlo, Mail, Rcpt, Data, Bdat, Rset, Vrfy, Expn, Help, Noop, Quit, StartTls, Auth, Unknown };
QString toString(Verb v);

struct MailPath {
    bool isNull = false;      // "<>"
    bool postmaster = false;  // RCPT TO:<Postmaster> without a domain
    QString local;            // as sent (quoted form unquoted)
    bool quotedLocal = false;
    QString domain;  // as sent (may be UTF-8 or an address literal)
    bool addressLiteral = false;
    bool hadSourceRoute = false;
    bool hasUtf8 = false;     // non-ASCII in local part or domain
    QString address() const;  // local@domain (quoted again when needed); "" for <>
};

struct Command {
    Verb verb = Verb::Unknown;
    QString verbText;                           // as sent, upper-cased
    QString argument;                           // rest of line after the verb (trimmed), for EHLO/HELO/AUTH/...
    MailPath path;                              // MAIL/RCPT
    QList<std::pair<QString, QString>> params;  // MAIL/RCPT ESMTP parameters, keywords upper-cased
    bool hasParam(const QString& k) const;
    QString param(const QString& k) const;
};

struct ParseError {
    Reply reply;
};

using ParseResult = std::variant<Command, ParseError>;

// RFC 5321 4.5.3.1.4: the longest command line, CRLF included, without service-extension allowances.
inline constexpr int kMaxBaseCommandLine = 512;

// `line` without its CRLF.
ParseResult parseCommand(const QByteArray& line);
std::optional<MailPath> parsePath(QStringView text, QString* error);
// RFC 3461 4: xtext ("+XX", two upper-case hex digits), strictly; the decoded
// value must be printable ASCII (as ENVID and rfc822 ORCPT values must be);
// nullopt otherwise. ORCPT as a whole: common/mail/dsn_params.h parseOrcpt().
std::optional<QString> decodeXtext(const QString& xtext);
bool isValidEsmtpKeyword(const QString& k);

}  // namespace postern::smtp
