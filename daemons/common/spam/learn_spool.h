// learn_spool.h — the small durable queue of "learn this message as spam/ham for this user"
// requests that postern-imapd fills when a user moves mail into or out of Junk, and that
// the learner (rspamd_learner.h) drains to Rspamd's controller off the session's path.
//
// Layout of the spool folder (<data_dir>/spam-learn, 0700, the daemon user's):
//   <id>.eml       a hard link to the message file in the user's Maildir (the copy made by
//                  COPY/MOVE/APPEND): no byte is copied, and the message stays readable for
//                  the learner even when the user expunges it meanwhile.
//   <id>.spam | <id>.ham   the request: "postern-learn 1\n<user>\n", written to <id>.tmp and
//                  renamed, so a request is whole or absent. The .eml comes first; an .eml
//                  without request (a crash in between) is removed by sweepOrphans().
//   <id> = "<unix seconds>.<pid>.<counter>": names sort by age within a process.
//   lock           flock(2)ed by the one process that drains (drainLock()).
// Interface:
//   LearnSpool(dir, maxEntries)  open() creates the folder and counts the requests.
//   enqueue(class, user, messagePath)  Queued, Full (maxEntries requests wait already:
//                  the request is dropped, the caller logs it) or Failed (link/write error).
//                  A few system calls (link, open, write, rename); no fsync, no listing.
//   pending(max)   up to `max` requests, oldest first (lists the folder; also refreshes the
//                  count that enqueue() checks against the limit).
//   remove(entry)  the request and its message link.
//   drainLock()    true when this process holds (or now takes) the drain lock.
// Return conventions: Status/Result, never exceptions.
// Security: the user name goes into the file's content, never into a path; ids are made
// here, and pending() accepts only names of the exact id grammar (anything else in the
// folder is ignored). The folder is the daemon user's own (0700).
// Durability: requests survive a restart of the daemons (they are files); no fsync is
// paid on the IMAP path, so a power loss may lose the last few requests (learning is
// advisory, the mail itself is fsynced by the store as before).
// Limits: kMaxLearnQueue requests waiting (default of maxEntries; enqueue beyond it is
// refused with Full); kMaxLearnUser bytes of user name. With several imapd processes each
// checks its own count of the folder, refreshed at every pending() (the learner calls it at
// least every poll interval, 5 s, in every process): the folder may exceed the limit by what
// the other processes queued since their last refresh.
#pragma once

#include "core/result.h"

#include <QList>
#include <QString>

#include <memory>

namespace postern::spam {

constexpr qsizetype kMaxLearnQueue = 10000;
constexpr qsizetype kMaxLearnUser = 320;

enum class LearnClass { Spam, Ham };
QString toString(LearnClass c);  // "spam", "ham"

struct LearnEntry {
    QString id;
    LearnClass cls = LearnClass::Spam;
    QString user;
    QString messagePath;  // <dir>/<id>.eml
    QString requestPath;  // <dir>/<id>.spam or .ham
};

class LearnSpool {
public:
    explicit LearnSpool(QString dir, qsizetype maxEntries = kMaxLearnQueue);
    ~LearnSpool();
    LearnSpool(const LearnSpool&) = delete;
    LearnSpool& operator=(const LearnSpool&) = delete;

    Status open();
    const QString& dir() const { return m_dir; }
    qsizetype maxEntries() const { return m_max; }
    qsizetype count() const { return m_count; }

    enum class Enqueued { Queued, Full, Failed };
    Enqueued enqueue(LearnClass cls, const QString& user, const QString& messagePath, QString* error = nullptr);

    Result<QList<LearnEntry>> pending(qsizetype max);
    void remove(const LearnEntry& entry);
    // Removes .eml/.tmp files older than `ageSeconds` that have no request (crash leftovers).
    int sweepOrphans(qint64 ageSeconds);
    bool drainLock();

    // The request file's content, and its parser (exposed for tests).
    static QByteArray requestContent(const QString& user);
    static Result<QString> parseRequest(const QByteArray& content);
    static bool validId(const QString& id);

private:
    QString m_dir;
    qsizetype m_max;
    qsizetype m_count = 0;
    quint64 m_counter = 0;
    int m_lockFd = -1;
    bool m_locked = false;
};

}  // namespace postern::spam
