// sieve.h — Sieve mail filtering (RFC 5228): compiling a script and running it
// over one message for one recipient. No sockets, no files: the caller hands in
// the script text and the message; out come errors or a list of actions.
//
// Interface:
//   compile(source, limits) -> Result<Script>
//       lexes and parses the whole script (sieve_parser.cpp), then checks every
//       command, test, tag and argument against the extensions the script
//       `require`s (sieve_validate.cpp). Errors are "line:column: text"
//       (1-based, column in bytes); Error::code holds the line.
//   run(script, message, limits) -> Outcome
//       executes the compiled script (sieve_interpreter.cpp) with RFC 5228
//       semantics: implicit keep unless cancelled by fileinto, discard,
//       redirect or reject; `stop`; repeated fileinto/keep into one mailbox and
//       repeated redirects to one address collapsed into one action (4.2, 4.3).
//       A runtime error (a limit, incompatible actions) is returned in
//       Outcome::error together with the safe fallback: one implicit keep. The
//       caller never has to decide what to do with a half-run script.
//   supportedExtensions()   the `require` names understood (ManageSieve's SIEVE
//       capability will list them).
//
// Extensions: fileinto, mailbox (:create, mailboxexists; RFC 5490), envelope,
// encoded-character (RFC 5228 2.4.2.4), imap4flags (RFC 5232), copy (RFC 3894),
// reject and ereject (RFC 5429), variables (RFC 5229), subaddress (RFC 5233),
// relational (RFC 5231), body (RFC 5173: :raw, :text, :content), date
// (RFC 5260: date, currentdate, :zone, :originalzone), index (RFC 5260 6:
// :index N [:last] on header, address and date), vacation (RFC 5230) and
// vacation-seconds (RFC 6131), include (RFC 6609: include :personal/:global
// :once :optional, return, global; a script including itself directly or not
// is a runtime error; Message::include finds the scripts), comparators i;octet, i;ascii-casemap and
// comparator-i;ascii-numeric (RFC 4790).
// Not implemented (an error at `require`): enotify, editheader, environment, spamtest, ihave, duplicate.
//
// Security: the script is written by a mail user (untrusted) and runs on
// untrusted mail. Every size and count below is bounded; recursion in the
// parser is bounded where it happens (blocks and nested tests); the wildcard
// matcher is iterative (no backtracking blow-up: each attempt costs steps).
// Limits (Limits, defaults; each an error at limit+1, tested at its boundary):
//   maxScriptBytes    1 MiB   script source
//   maxNesting        32      nested blocks, and separately nested tests
//   maxStringBytes    64 KiB  one string literal
//   maxListItems      1024    strings in one string list
//   maxActions        64      explicit actions one run may produce
//   maxRedirects      4       redirects per message
//   maxSteps          1000000 execution steps (commands, tests, key
//                             comparisons, wildcard matcher steps)
//   maxVariables      128     distinct variables one run may set
//   maxVariableBytes  4096    one variable's value; longer values are
//                             truncated (RFC 5229 3 asks for truncation, not an
//                             error), at a character boundary
//   maxBodyBytes      1 MiB   of the body the body test looks at (the caller
//                             passes at most this much)
//   maxIncludeDepth   8       includes nested inside includes (limit+1: error)
//   maxIncludes       32      include commands carried out in one run
//                             (:once and :optional ones that do nothing do not
//                             count); variables: maxVariables counts the
//                             script's own and the global ones together
// Standards: RFC 5228, 5229, 5230, 5231, 5232, 5233, 5173, 5260, 5429, 5490,
// 3894, 6131, 4790, 6609. Deviations: reject/ereject together with keep, fileinto or
// redirect is a runtime error (RFC 5429 2.3 SHOULD), as are two rejects and
// reject with vacation (MUST).
#pragma once

#include "core/result.h"

#include <QDateTime>
#include <QList>
#include <QMap>
#include <QString>
#include <QStringList>
#include <functional>
#include <memory>
#include <optional>

namespace postern::sieve {

struct Limits {
    qint64 maxScriptBytes = 1024 * 1024;
    int maxNesting = 32;
    qint64 maxStringBytes = 64 * 1024;
    int maxListItems = 1024;
    int maxActions = 64;
    int maxRedirects = 4;
    qint64 maxSteps = 1000000;
    int maxVariables = 128;
    int maxVariableBytes = 4096;
    qint64 maxBodyBytes = 1024 * 1024;
    int maxIncludeDepth = 8;  // scripts included inside included scripts (RFC 6609)
    int maxIncludes = 32;     // include commands carried out in one run
};

// ---- The compiled form: a syntax tree whose names, tags and arguments were checked.

struct Argument {
    enum class Kind { String, StringList, Number, Tag };
    Kind kind = Kind::String;
    QStringList strings;  // String (one) and StringList
    qint64 number = 0;
    QString tag;  // lower case, without ':'
    int line = 0, column = 0;
    QList<std::pair<int, int>> positions;  // (line, column) of each string in `strings`
};

struct Node {
    QString name;  // lower case identifier
    int line = 0, column = 0;
    QList<Argument> arguments;  // as written (tags and positional)
    QList<Node> tests;          // a test's tests (allof/anyof/not) or a command's test (if/elsif)
    QList<Node> block;          // commands inside { }
    bool hasBlock = false;      // written with { } (else ';')
    // Filled in by validation:
    QMap<QString, Argument> tags;  // tag name -> its argument (kind Tag when it takes none)
    QList<Argument> positional;
};

struct Script {
    QList<Node> commands;
    QStringList required;   // lower case extension names
    bool usesBody = false;  // the caller must pass the body (at most maxBodyBytes)
    bool has(const QString& extension) const { return required.contains(extension); }
};

Result<Script> compile(const QByteArray& source, const Limits& limits = {});
QStringList supportedExtensions();

// ---- Running a script.

struct Message {
    QByteArray header;     // the header block as received (fields, folded), without the empty line
    QByteArray body;       // the body, at most Limits::maxBodyBytes (only read when Script::usesBody)
    qint64 size = 0;       // the whole message in octets (size test)
    QString envelopeFrom;  // MAIL FROM (empty for <>)
    QString envelopeTo;    // the recipient address as given in RCPT TO (with any +detail)
    QDateTime now;         // currentdate; invalid: the current time
    std::function<bool(const QString&)> mailboxExists;  // mailboxexists; unset: none exists
    // include (RFC 6609): the compiled script `name` (global: the administrator's; else the
    // user's). nullptr with *error empty: no such script; with *error: unreadable or broken.
    // Unset: no script can be included.
    std::function<std::shared_ptr<const Script>(bool global, const QString& name, QString* error)> include;
    QString scriptName;  // the user's script being run (include loop detection); may be empty
};

struct Action {
    enum class Type { Keep, FileInto, Redirect, Discard, Reject, Vacation };
    Type type = Type::Keep;
    QString target;         // FileInto: mailbox (UTF-8 name, '/' or '.' separated as written); Redirect: address
    QStringList flags;      // Keep/FileInto (imap4flags); empty: none
    bool create = false;    // FileInto :create
    bool copy = false;      // Redirect/FileInto :copy
    bool implicit = false;  // the implicit keep
    bool ereject = false;   // Reject: ereject
    QString reason;         // Reject and Vacation text
    // Vacation (RFC 5230 4)
    qint64 periodSeconds = 0;  // :days * 86400 or :seconds
    QString subject, from, handle;
    QStringList addresses;
    bool mime = false;
    int line = 0;  // where the action was taken (0 for the implicit keep)
};
QString toString(Action::Type type);
// "fileinto \"Work\" flags=\\Seen" and the like, one line, for logs and tests.
QString describe(const Action& action);

struct Outcome {
    QList<Action> actions;       // in execution order; the implicit keep last when it applies
    std::optional<Error> error;  // runtime error ("line:column: text"); actions is then {implicit keep}
    qint64 steps = 0;
};

Outcome run(const Script& script, const Message& message, const Limits& limits = {});

// A sequence run in one context (the administrator's before scripts, the user's
// script, the after scripts): as if one empty script included each in turn, so
// actions, implicit keep and global variables are shared, `stop` ends the
// whole sequence and `return` only the script it is in. key: "global:NAME" or
// "personal:NAME" (include loop detection, :once).
struct Runnable {
    const Script* script = nullptr;
    QString key;
};
Outcome run(const QList<Runnable>& sequence, const Message& message, const Limits& limits = {});
// A name `include` accepts (and the script stores use): 1..64 of A-Z a-z 0-9 . _ -, not starting with '.'.
bool validIncludeName(const QString& name);

}  // namespace postern::sieve
