// imap_thread.h — the socket-free parts of SORT and THREAD (RFC 5256):
// base-subject extraction, the i;ascii-casemap collation, Message-ID lists,
// and the two threading algorithms. commands/sort.cpp reads the messages and
// feeds these functions; unit tests feed them directly.
//
// Interface:
//   extractBaseSubject(raw)    RFC 5256 2.1 on a raw Subject value (RFC 2047
//                              words decoded first); also says whether the
//                              subject marked a reply or forward.
//   compareAsciiCasemap(a, b)  <0, 0, >0 per i;ascii-casemap (RFC 4790 9.2).
//   parseMessageIds(raw)       the msg-ids of a Message-ID / References /
//                              In-Reply-To value, without "<>", in order.
//   threadByOrderedSubject / threadByReferences
//                              messages in mailbox order in, a ThreadForest
//                              out; ThreadForest::format() is the response
//                              text after "THREAD" ("(1)(2 3 (4)(5))").
// Return conventions: plain values, no errors (bad input just threads badly).
// Security: every value comes from untrusted mail. References chains can be
// as deep as the mailbox is large, so no function here recurses over the
// thread tree (explicit stacks and pre-order lists instead); loops in
// References are refused when links are made (RFC 5256 3, step 1); in step
// 1B a message's earlier (guessed) parent link is broken even when the new
// one would close a loop or there are no references (then it is a root).
// Limits: memory linear in the number of messages and referenced ids; the
// loop checks of step 1 share a budget of about 16 million ancestor steps per
// THREAD (a mailbox crafted to make them quadratic gets flatter threads once
// it is spent, never a busy server; ordinary mail never reaches it).
// Standards: RFC 5256 (2.1 base subject, 2.2 sent date, 3 THREAD), RFC 4790
// (i;ascii-casemap), RFC 5322 3.6.4 (msg-id).
#pragma once

#include <QByteArray>
#include <QList>

namespace postern::imap {

struct BaseSubject {
    QByteArray text;              // UTF-8; empty when nothing is left
    bool replyOrForward = false;  // a subj-refwd, "(fwd)" trailer or "[fwd: ...]" was removed
};
BaseSubject extractBaseSubject(const QByteArray& rawSubject);

// i;ascii-casemap: octets compared after mapping a-z to A-Z.
int compareAsciiCasemap(const QByteArray& a, const QByteArray& b);
QByteArray asciiCasemap(const QByteArray& s);

QList<QByteArray> parseMessageIds(const QByteArray& raw);

struct ThreadMessage {
    quint32 number = 0;            // what the response shows: sequence number or UID
    qint64 sentDate = 0;           // RFC 5256 2.2 sent date, ms since the epoch (UTC)
    QByteArray messageId;          // first id of the Message-ID field, empty if none
    QList<QByteArray> references;  // References ids, else the first In-Reply-To id
    BaseSubject subject;
};

struct ThreadForest {
    struct Node {
        int message = -1;     // index into the input list, -1 for a dummy
        QList<int> children;  // node indexes
    };
    QList<Node> nodes;
    QList<int> roots;
    QList<quint32> numbers;  // input number per message index
    // "(1)(2 3 (4)(5))": RFC 5256 5 thread-list items, without "THREAD ".
    QByteArray format() const;
};

ThreadForest threadByOrderedSubject(const QList<ThreadMessage>& messages);
ThreadForest threadByReferences(const QList<ThreadMessage>& messages);

}  // namespace postern::imap
