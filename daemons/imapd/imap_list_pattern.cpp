// imap_list_pattern.cpp — see imap_list_pattern.h.
#include "imap_list_pattern.h"

#include <QVarLengthArray>

#include <algorithm>

namespace postern::imap {

namespace {
constexpr QStringView kInbox = u"INBOX";

QChar asciiLower(QChar c) {
    return c >= u'A' && c <= u'Z' ? QChar(c.unicode() + 32) : c;
}
}  // namespace

MailboxPattern::MailboxPattern(QStringView pattern, QChar delimiter) : m_delimiter(delimiter) {
    for (QChar c : pattern) {
        if (c == u'*' || c == u'%') {
            const Kind k = c == u'*' ? Kind::Star : Kind::Percent;
            if (!m_elements.isEmpty() && m_elements.last().kind != Kind::Literal) {
                // "**", "*%", "%*" match what "*" matches; "%%" what "%" matches.
                if (k == Kind::Star) m_elements.last().kind = Kind::Star;
                continue;
            }
            m_elements.append({k, QChar()});
        } else {
            m_elements.append({Kind::Literal, c});
            ++m_literals;
        }
    }
}

bool MailboxPattern::matches(QStringView name) const {
    if (m_literals > name.size()) return false;  // every literal needs a unit of its own
    // The INBOX at the start of a name matches case-insensitively (RFC 9051 5.1).
    const qsizetype caseless =
        name.startsWith(kInbox) && (name.size() == kInbox.size() || name.at(kInbox.size()) == m_delimiter)
            ? kInbox.size()
            : 0;
    const qsizetype m = m_elements.size();
    // reached[i]: the first i elements match the units of the name read so far.
    QVarLengthArray<char, 256> reached(m + 1), next(m + 1);
    std::fill(reached.begin(), reached.end(), 0);
    // A wildcard also matches nothing: reaching it reaches the element after it (one
    // step is enough, runs of wildcards were collapsed).
    auto close = [&](QVarLengthArray<char, 256>& set) {
        for (qsizetype i = 0; i < m; ++i)
            if (set[i] && m_elements.at(i).kind != Kind::Literal) set[i + 1] = 1;
    };
    reached[0] = 1;
    close(reached);
    for (qsizetype j = 0; j < name.size(); ++j) {
        const QChar c = name.at(j);
        const bool fold = j < caseless;
        bool any = false;
        std::fill(next.begin(), next.end(), 0);
        for (qsizetype i = 0; i < m; ++i) {
            if (!reached[i]) continue;
            const Element& e = m_elements.at(i);
            switch (e.kind) {
                case Kind::Star:
                    next[i] = 1;  // "*" takes this unit and stays
                    any = true;
                    break;
                case Kind::Percent:
                    if (c != m_delimiter) {  // "%" never takes the hierarchy delimiter
                        next[i] = 1;
                        any = true;
                    }
                    break;
                case Kind::Literal:
                    if (e.c == c || (fold && asciiLower(e.c) == asciiLower(c))) {
                        next[i + 1] = 1;
                        any = true;
                    }
                    break;
            }
        }
        if (!any) return false;
        close(next);
        std::swap(reached, next);
    }
    return reached[m] != 0;
}

}  // namespace postern::imap
