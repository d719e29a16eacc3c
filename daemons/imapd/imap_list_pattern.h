// imap_list_pattern.h — LIST/LSUB mailbox patterns (RFC 9051 6.3.9) matched
// without regular expressions and without backtracking.
//
// Interface:
//   MailboxPattern p(pattern, delimiter)   compile once ("*" matches anything,
//                                          "%" anything but the delimiter)
//   p.matches(name)                        true when the whole name matches
// Names and patterns are Unicode (decoded from modified UTF-7 or UTF-8 by the
// caller) and compared code unit by code unit, case-sensitively, except that
// the "INBOX" at the start of a name (the name INBOX itself, or INBOX followed
// by the delimiter) matches the pattern's letters case-insensitively
// (RFC 9051 5.1: INBOX is case-insensitive), so "inbox", "Inb*" and "i%"
// all find INBOX.
//
// Security: the pattern comes from the client. A regular expression built
// from "*a*a*a...b" backtracks exponentially on a long name; here matching is
// one pass over the name carrying the set of pattern positions reached so far
// (the pattern's automaton simulated, as in Thompson's construction): O(n * m)
// for a name of n and a pattern of m units, no recursion, no backtracking,
// memory O(m), and it stops as soon as that set is empty. A pattern with more
// literal characters than the name has units cannot match and is refused at
// once, and runs of wildcards count as one, so the work per name is at most
// O(n * (2n + 1)) however long the pattern is.
// Limits: none beyond the caller's line and pattern-count limits.
// Standards: RFC 9051 6.3.9 (LIST wildcards), 5.1 (INBOX), RFC 5258 (patterns
// of LIST-EXTENDED are matched the same way).
#pragma once

#include <QChar>
#include <QList>
#include <QString>
#include <QStringView>

namespace postern::imap {

class MailboxPattern {
public:
    MailboxPattern(QStringView pattern, QChar delimiter);
    bool matches(QStringView name) const;

private:
    enum class Kind : unsigned char { Literal, Star, Percent };
    struct Element {
        Kind kind;
        QChar c;  // Literal
    };
    QList<Element> m_elements;  // runs of wildcards collapsed: "*%*" -> "*", "%%" -> "%"
    qsizetype m_literals = 0;
    QChar m_delimiter;
};

}  // namespace postern::imap
