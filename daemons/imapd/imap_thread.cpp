// imap_thread.cpp — see imap_thread.h.
#include "imap_thread.h"

#include "common/mail/message.h"

#include <QHash>
#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

namespace postern::imap {

namespace {

bool isWsp(char c) {
    return c == ' ' || c == '\t';
}
char upperAscii(char c) {
    return c >= 'a' && c <= 'z' ? char(c - 'a' + 'A') : c;
}

// Case-insensitive match of the upper-case ASCII word `w` at s[*i]; advances *i on success.
bool wordAt(const QByteArray& s, qsizetype* i, const char* w) {
    const qsizetype n = qsizetype(std::strlen(w));
    if (*i + n > s.size()) return false;
    for (qsizetype k = 0; k < n; ++k)
        if (upperAscii(s.at(*i + k)) != w[k]) return false;
    *i += n;
    return true;
}

// subj-blob = "[" *BLOBCHAR "]" *WSP   (BLOBCHAR: any octet but "[" and "]")
qsizetype blobAt(const QByteArray& s, qsizetype pos) {
    if (pos >= s.size() || s.at(pos) != '[') return 0;
    qsizetype i = pos + 1;
    while (i < s.size() && s.at(i) != ']' && s.at(i) != '[') ++i;
    if (i >= s.size() || s.at(i) != ']') return 0;
    ++i;
    while (i < s.size() && isWsp(s.at(i))) ++i;
    return i - pos;
}

// subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
qsizetype refwdAt(const QByteArray& s, qsizetype pos) {
    qsizetype i = pos;
    if (wordAt(s, &i, "FW"))
        wordAt(s, &i, "D");
    else if (!wordAt(s, &i, "RE"))
        return 0;
    while (i < s.size() && isWsp(s.at(i))) ++i;
    i += blobAt(s, i);
    if (i < s.size() && s.at(i) == ':') return i + 1 - pos;
    return 0;
}

// The (*subj-blob subj-refwd) branch of subj-leader at the start; 0 when absent.
qsizetype leaderLength(const QByteArray& s) {
    qsizetype i = 0;
    for (;;) {
        if (const qsizetype r = refwdAt(s, i)) return i + r;
        const qsizetype b = blobAt(s, i);
        if (!b) return 0;
        i += b;
    }
}

bool hasNonWsp(const QByteArray& s, qsizetype from) {
    for (qsizetype i = from; i < s.size(); ++i)
        if (!isWsp(s.at(i))) return true;
    return false;
}

}  // namespace

BaseSubject extractBaseSubject(const QByteArray& rawSubject) {
    // RFC 5256 2.1 (1): decode encoded-words to UTF-8; tabs and line breaks become
    // spaces; runs of spaces become one.
    const QByteArray decoded = mail::decodeHeaderText(rawSubject).toUtf8();
    QByteArray s;
    s.reserve(decoded.size());
    for (char c : decoded) {
        if (c == '\t' || c == '\r' || c == '\n') c = ' ';
        if (c == ' ' && s.endsWith(' ')) continue;
        s += c;
    }
    BaseSubject out;
    for (;;) {
        // (2) trailers: "(fwd)" and white space, repeatedly.
        for (;;) {
            if (s.endsWith(' '))
                s.chop(1);
            else if (s.size() >= 5 && qstrnicmp(s.constData() + s.size() - 5, "(fwd)", 5) == 0) {
                s.chop(5);
                out.replyOrForward = true;
            } else {
                break;
            }
        }
        // (3)-(5): leaders (white space, blobs followed by Re:/Fw:/Fwd:), then one
        // leading blob if something is left after it; until nothing changes.
        for (bool changed = true; changed;) {
            changed = false;
            for (;;) {
                if (s.startsWith(' ')) {
                    s.remove(0, 1);
                } else if (const qsizetype n = leaderLength(s)) {
                    s.remove(0, n);
                    out.replyOrForward = true;
                } else {
                    break;
                }
                changed = true;
            }
            const qsizetype b = blobAt(s, 0);
            if (b && hasNonWsp(s, b)) {
                s.remove(0, b);
                changed = true;
            }
        }
        // (6) "[fwd: subject]": unwrap and start again at (2). Counted as a forward
        // too (the RFC names refwd and "(fwd)"; a wrapped forward is the same thing).
        if (s.size() >= 6 && qstrnicmp(s.constData(), "[fwd:", 5) == 0 && s.endsWith(']')) {
            s = s.mid(5, s.size() - 6);
            out.replyOrForward = true;
            continue;
        }
        break;
    }
    out.text = s;
    return out;
}

int compareAsciiCasemap(const QByteArray& a, const QByteArray& b) {
    const qsizetype n = std::min(a.size(), b.size());
    for (qsizetype i = 0; i < n; ++i) {
        const uchar x = uchar(upperAscii(a.at(i))), y = uchar(upperAscii(b.at(i)));
        if (x != y) return x < y ? -1 : 1;
    }
    return a.size() == b.size() ? 0 : (a.size() < b.size() ? -1 : 1);
}

QByteArray asciiCasemap(const QByteArray& s) {
    QByteArray out = s;
    for (char& c : out) c = upperAscii(c);
    return out;
}

QList<QByteArray> parseMessageIds(const QByteArray& raw) {
    // msg-id = "<" id-left "@" id-right ">" (RFC 5322 3.6.4); taken leniently: any
    // non-empty text between angle brackets, folding white space removed. Compared
    // octet by octet, as RFC 5256 3 asks.
    QList<QByteArray> ids;
    qsizetype pos = 0;
    while ((pos = raw.indexOf('<', pos)) >= 0) {
        const qsizetype close = raw.indexOf('>', pos + 1);
        if (close < 0) break;
        QByteArray inner = raw.mid(pos + 1, close - pos - 1);
        const qsizetype nested = inner.lastIndexOf('<');
        if (nested >= 0) inner = inner.mid(nested + 1);
        inner.replace(' ', QByteArray())
            .replace('\t', QByteArray())
            .replace('\r', QByteArray())
            .replace('\n', QByteArray());
        if (!inner.isEmpty()) ids << inner;
        pos = close + 1;
    }
    return ids;
}

// ---------------------------------------------------------------- threading

namespace {

class Forest {
public:
    explicit Forest(const QList<ThreadMessage>& messages) : m_msgs(messages) {
        m_f.numbers.reserve(messages.size());
        for (const ThreadMessage& m : messages) m_f.numbers << m.number;
    }
    int newNode(int message = -1) {
        m_f.nodes.append(ThreadForest::Node{message, {}});
        m_parent.push_back(-1);
        return int(m_f.nodes.size() - 1);
    }
    ThreadForest::Node& node(int n) { return m_f.nodes[n]; }
    bool dummy(int n) const { return m_f.nodes.at(n).message < 0; }
    int parent(int n) const { return m_parent.at(size_t(n)); }

    // Would making `c` a child of `p` close a loop (c is p or an ancestor of p)? The walk
    // up from p costs the depth of p; References written for it (a chain of 100,000 ids,
    // then the pair "deepest first" repeated) would make the checks quadratic. All the
    // walks of one threading share kLoopCheckBudget steps; once they are spent, a link
    // that needs a walk is not made, as if it closed a loop: such a mailbox gets flatter
    // threads (still a valid forest), the server stays responsive. Real threads never
    // come near it (a new reply is a leaf: no walk at all).
    bool wouldLoop(int p, int c) const {
        if (p == c) return true;
        if (m_f.nodes.at(c).children.isEmpty()) return false;  // a leaf is nobody's ancestor
        for (int x = p; x >= 0; x = m_parent.at(size_t(x))) {
            if (x == c) return true;
            if (++m_loopSteps > kLoopCheckBudget) return true;
        }
        return false;
    }
    void link(int p, int c) {
        m_parent[size_t(c)] = p;
        m_f.nodes[p].children.append(c);
    }
    void unlink(int c) {
        const int p = m_parent.at(size_t(c));
        if (p < 0) return;
        m_f.nodes[p].children.removeOne(c);
        m_parent[size_t(c)] = -1;
    }

    // The message a node sorts by: itself, or a dummy's first child (RFC 5256 3, steps 5 and 7).
    int sortMessage(int n) const {
        while (n >= 0 && m_f.nodes.at(n).message < 0)
            n = m_f.nodes.at(n).children.isEmpty() ? -1 : m_f.nodes.at(n).children.first();
        return n < 0 ? -1 : m_f.nodes.at(n).message;
    }
    // Sent date, then mailbox order (RFC 5256 2.2: ties go by sequence number).
    bool earlier(int a, int b) const {
        const int ma = sortMessage(a), mb = sortMessage(b);
        if (ma < 0 || mb < 0) return ma >= 0 && mb < 0;
        const qint64 da = m_msgs.at(ma).sentDate, db = m_msgs.at(mb).sentDate;
        if (da != db) return da < db;
        return ma < mb;
    }
    void sortByDate(QList<int>& list) const {
        std::stable_sort(list.begin(), list.end(), [this](int a, int b) { return earlier(a, b); });
    }
    // Nodes reachable from the roots, every parent before its children (no recursion).
    std::vector<int> preorder() const {
        std::vector<int> out, stack(m_f.roots.rbegin(), m_f.roots.rend());
        std::vector<bool> seen(size_t(m_f.nodes.size()), false);
        while (!stack.empty()) {
            const int n = stack.back();
            stack.pop_back();
            if (seen[size_t(n)]) continue;  // cannot happen (links never close a loop); cheap insurance
            seen[size_t(n)] = true;
            out.push_back(n);
            const QList<int>& ch = m_f.nodes.at(n).children;
            for (auto it = ch.rbegin(); it != ch.rend(); ++it) stack.push_back(*it);
        }
        return out;
    }
    // Step 7: every sibling list by sent date, the deepest first so that a dummy's
    // first child is known when the dummy itself is placed.
    void sortAll() {
        const std::vector<int> order = preorder();
        for (auto it = order.rbegin(); it != order.rend(); ++it) sortByDate(m_f.nodes[*it].children);
        sortByDate(m_f.roots);
    }
    QList<int>& roots() { return m_f.roots; }
    int nodeCount() const { return int(m_f.nodes.size()); }
    const ThreadMessage& msg(int n) const { return m_msgs.at(m_f.nodes.at(n).message); }
    ThreadForest take() { return std::move(m_f); }

private:
    static constexpr qint64 kLoopCheckBudget = qint64(1) << 24;  // ancestor steps per threading (~16 million)
    const QList<ThreadMessage>& m_msgs;
    ThreadForest m_f;
    std::vector<int> m_parent;
    mutable qint64 m_loopSteps = 0;
};

}  // namespace

ThreadForest threadByOrderedSubject(const QList<ThreadMessage>& messages) {
    // RFC 5256 3 ORDEREDSUBJECT: sort by base subject, then sent date; each run of
    // equal subjects is one thread whose first message is the parent of the others.
    Forest f(messages);
    QList<QByteArray> keys;
    QList<int> order;
    for (int i = 0; i < messages.size(); ++i) {
        keys << asciiCasemap(messages.at(i).subject.text);
        order << i;
    }
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
        if (const int c = compareAsciiCasemap(keys.at(a), keys.at(b))) return c < 0;
        if (messages.at(a).sentDate != messages.at(b).sentDate)
            return messages.at(a).sentDate < messages.at(b).sentDate;
        return a < b;
    });
    int root = -1;
    for (int k = 0; k < order.size(); ++k) {
        const int m = order.at(k);
        const int n = f.newNode(m);
        if (root >= 0 && keys.at(m) == keys.at(f.node(root).message)) {
            f.link(root, n);
        } else {
            root = n;
            f.roots() << n;
        }
    }
    // Threads by the sent date of their first message.
    f.sortByDate(f.roots());
    return f.take();
}

namespace {

// The containers of RFC 5256 3 step 1, by Message-ID: one per id met in a Message-ID
// or References header, made on first sight.
class IdTable {
public:
    explicit IdTable(Forest& f) : m_f(f) {}
    int containerFor(const QByteArray& id) {
        auto it = m_byId.constFind(id);
        if (it != m_byId.constEnd()) return *it;
        const int c = m_f.newNode();
        m_byId.insert(id, c);
        return c;
    }
    // The container of message i: the one of its Message-ID, unless the id is missing or
    // an earlier message has it already; then a unique id of its own, i.e. a container
    // nobody can reference (step 1A).
    int containerOfMessage(int i, const QByteArray& messageId) {
        auto existing = m_byId.constFind(messageId);
        if (messageId.isEmpty() || (existing != m_byId.constEnd() && !m_f.dummy(*existing))) return m_f.newNode(i);
        const int me = containerFor(messageId);
        m_f.node(me).message = i;
        return me;
    }

private:
    Forest& m_f;
    QHash<QByteArray, int> m_byId;
};

// Step 1, message by message in mailbox order: each message's container, linked to its
// References.
void linkByReferences(Forest& f, const QList<ThreadMessage>& messages) {
    IdTable ids(f);
    for (int i = 0; i < messages.size(); ++i) {
        const ThreadMessage& m = messages.at(i);
        const int me = ids.containerOfMessage(i, m.messageId);
        const QList<QByteArray>& refs = m.references;
        // 1A: chain the references; existing parents stay, no loops.
        for (qsizetype k = 0; k + 1 < refs.size(); ++k) {
            const int p = ids.containerFor(refs.at(k));
            const int c = ids.containerFor(refs.at(k + 1));
            if (f.parent(c) < 0 && !f.wouldLoop(p, c)) f.link(p, c);
        }
        // 1B: the last reference (none: NIL) is the parent. A parent this message got
        // earlier from another message's References was a guess: the link is broken
        // first, and the new one is made unless it would close a loop (then the message
        // stays a root). RFC 5256 3 (1B) in that order; Dovecot does the same (a message
        // whose References name a descendant of its own ends up at the top).
        const int p = refs.isEmpty() ? -1 : ids.containerFor(refs.last());
        if (f.parent(me) != p || p < 0) {
            f.unlink(me);
            if (p >= 0 && !f.wouldLoop(p, me)) f.link(p, me);
        }
    }
}

// Step 4: prune dummies. A dummy without children goes; a dummy below the root is
// replaced by its children; a dummy at the root is replaced by its child only when it
// has just one. Children are handled before their parents.
void pruneDummies(Forest& f) {
    const std::vector<int> order = f.preorder();
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
        QList<int> kept;
        for (int c : f.node(*it).children) {
            if (f.dummy(c))
                kept += f.node(c).children;  // already pruned: holds no dummies
            else
                kept << c;
        }
        f.node(*it).children = kept;
    }
    QList<int> roots;
    for (int r : f.roots()) {
        if (!f.dummy(r))
            roots << r;
        else if (f.node(r).children.size() == 1)
            roots << f.node(r).children.first();
        else if (f.node(r).children.size() > 1)
            roots << r;
    }
    f.roots() = roots;
}

// A thread's base subject (i;ascii-casemap): its root's, or a dummy root's first child's.
QByteArray threadSubject(Forest& f, int n) {
    const int m = f.dummy(n) ? (f.node(n).children.isEmpty() ? -1 : f.node(n).children.first()) : n;
    return m < 0 || f.dummy(m) ? QByteArray() : asciiCasemap(f.msg(m).subject.text);
}

bool isReply(const Forest& f, int n) {
    return !f.dummy(n) && f.msg(n).subject.replyOrForward;
}

// Step 6: merge threads whose base subjects are equal (i;ascii-casemap).
void mergeBySubject(Forest& f) {
    QHash<QByteArray, int> bySubject;
    for (int r : f.roots()) {  // 6B: one thread per subject, preferring dummies, then non-replies
        const QByteArray subject = threadSubject(f, r);
        if (subject.isEmpty()) continue;
        auto it = bySubject.find(subject);
        if (it == bySubject.end())
            bySubject.insert(subject, r);
        else if (!f.dummy(*it) && (f.dummy(r) || (isReply(f, *it) && !isReply(f, r))))
            *it = r;
    }
    QList<int>& roots = f.roots();
    for (qsizetype i = 0; i < roots.size();) {  // 6C
        const int cur = roots.at(i);
        const QByteArray subject = threadSubject(f, cur);
        const int table = subject.isEmpty() ? cur : bySubject.value(subject, cur);
        if (table == cur) {
            ++i;
            continue;
        }
        if (f.dummy(table) && f.dummy(cur)) {
            f.node(table).children += f.node(cur).children;
        } else if (f.dummy(table) || (isReply(f, cur) && !isReply(f, table))) {
            f.node(table).children << cur;
        } else {
            const int d = f.newNode();
            f.node(d).children = {table, cur};
            roots[roots.indexOf(table)] = d;
            bySubject[subject] = d;
        }
        roots.removeAt(i);
    }
}

}  // namespace

ThreadForest threadByReferences(const QList<ThreadMessage>& messages) {
    Forest f(messages);
    linkByReferences(f, messages);
    // Step 2: the root set (step 3, dropping the id table, is implicit).
    for (int n = 0; n < f.nodeCount(); ++n)
        if (f.parent(n) < 0) f.roots() << n;
    pruneDummies(f);
    // Step 5: top-level siblings by sent date; a dummy by its earliest child.
    for (int r : f.roots())
        if (f.dummy(r)) f.sortByDate(f.node(r).children);
    f.sortByDate(f.roots());
    mergeBySubject(f);
    // Step 7: every sibling list by sent date.
    f.sortAll();
    return f.take();
}

QByteArray ThreadForest::format() const {
    // thread-list = "(" (thread-members / thread-nested) ")" (RFC 5256 5): a node's
    // number, then its only child inline or each of several children in its own
    // parentheses; a dummy has no number. An explicit stack of tasks, no recursion.
    enum Task { Open, Close, Node_ };
    QByteArray out;
    std::vector<std::pair<Task, int>> stack;
    for (int root : roots) {
        stack.push_back({Close, -1});
        stack.push_back({Node_, root});
        stack.push_back({Open, -1});
        while (!stack.empty()) {
            const auto [task, n] = stack.back();
            stack.pop_back();
            if (task == Open) {
                out += '(';
                continue;
            }
            if (task == Close) {
                out += ')';
                continue;
            }
            const Node& node = nodes.at(n);
            const bool numbered = node.message >= 0;
            if (numbered) out += QByteArray::number(numbers.at(node.message));
            if (node.children.isEmpty()) continue;
            if (numbered) out += ' ';
            if (node.children.size() == 1) {
                stack.push_back({Node_, node.children.first()});
                continue;
            }
            for (auto it = node.children.rbegin(); it != node.children.rend(); ++it) {
                stack.push_back({Close, -1});
                stack.push_back({Node_, *it});
                stack.push_back({Open, -1});
            }
        }
    }
    return out;
}

}  // namespace postern::imap
