// shared_counters.h — counts that every process of one daemon agrees on.
//
// A daemon that runs several processes (postern-imapd with imap.processes > 1)
// still has one limit per client address, one for all connections and one for a
// user's sessions. The counts live in one small file, <run_dir>/<program>.counts,
// mapped into every process. A slot holds a key's hash and one count per process
// (a "column"), so a process that crashes is forgotten by zeroing its column when
// its replacement starts, and the counts never drift. Updates take a short flock
// on the file.
//
// Without a file (one process, or the file cannot be made) the counts are kept
// in this process's memory: the same behaviour as before there were workers.
//
// Interface:
//   SharedCounters::process()     the process-wide instance.
//   open(path, column, reset)     map the file; reset (the first process) wipes it,
//                                 else this column is zeroed (a restarted worker).
//   tryAcquire(key, limit)        true and +1 when the total over all processes is
//                                 below limit; false (no change) otherwise.
//   release(key)                  -1 of this process's count (never below 0).
//   total(key)                    the sum over all processes (tests, logs).
// Limits: kSlots keys at once (open addressing over a probe window of kProbe).
// When a window is full, tryAcquire lets the connection in and logs it once:
// failing open on a full table is better than refusing every client.
#pragma once

#include "core/result.h"

#include <QHash>
#include <QString>

namespace postern {

// A 64-bit hash of a key that every process computes alike (qHash is seeded per
// process), never 0 (0 marks an empty slot). Shared with the auth throttle's table.
quint64 sharedSlotHash(const QString& key);

class SharedCounters {
public:
    static constexpr int kSlots = 8192;
    static constexpr int kProbe = 64;
    static constexpr int kColumns = 16;  // the most processes one daemon may run

    static SharedCounters& process();

    SharedCounters() = default;
    ~SharedCounters();
    SharedCounters(const SharedCounters&) = delete;
    SharedCounters& operator=(const SharedCounters&) = delete;

    Status open(const QString& path, int column, bool reset);
    bool isShared() const { return m_slots != nullptr; }
    bool tryAcquire(const QString& key, int limit);
    void release(const QString& key);
    int total(const QString& key) const;

private:
    struct Slot;
    Slot* find(quint64 hash, bool create) const;

    int m_fd = -1;
    int m_column = 0;
    Slot* m_slots = nullptr;
    QHash<QString, int> m_local;  // when not shared
    bool m_warnedFull = false;
};

}  // namespace postern
