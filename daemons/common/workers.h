// workers.h — more processes of one daemon on the same listening sockets.
//
// One event-loop thread per process keeps a session's code free of locks; a
// daemon that needs more than one core (postern-imapd, imap.processes) runs
// several processes instead. The first process binds every listener, drops
// root, and then starts the others ("workers") from its own executable with
// the same arguments. They inherit the listening sockets (descriptors without
// FD_CLOEXEC, named in POSTERN_LISTEN_FDS in listener order), so the kernel
// hands each new connection to whichever process accepts first: a busy process
// simply accepts less. Workers never run as root, write no ready file, and keep
// their counters in <program>.worker<N>.stats.
//
// Lifecycle: the first process restarts a worker that exits (1 s later; 30 s
// once three in a row lived under 10 s each), forwards SIGHUP to them, and on
// SIGTERM stops them and waits (SIGKILL after the grace time). A worker asks the
// kernel for SIGTERM when the first process dies (PR_SET_PDEATHSIG), so no
// orphan keeps serving.
//
// Limits shared by all processes (connections, per address, IMAP sessions per
// user) live in shared_counters.h; the column of a process is its number.
#pragma once

#include "core/result.h"

#include <QList>
#include <QObject>
#include <QProcess>
#include <QStringList>
#include <functional>
#include <memory>

namespace postern {

struct WorkerRole {
    int index = 0;         // 0: the first process; 1..N-1: a worker
    QList<int> listenFds;  // a worker's inherited listening sockets
    bool isWorker() const { return index > 0; }
};

// This process's role, from the environment the first process set. A worker
// whose first process is already gone returns an error (it should exit).
Result<WorkerRole> workerRoleFromEnvironment();

// processes = 0 means one per CPU core; the result is within 1..max.
int resolveProcessCount(qint64 configured, int max);

class WorkerPool : public QObject {
    Q_OBJECT
public:
    WorkerPool(QString program, QStringList arguments, QList<int> listenerFds, int workers, QObject* parent = nullptr);
    ~WorkerPool() override;

    Status start();
    void reload();
    void stop(int graceMs, std::function<void()> done);

private:
    struct Worker;
    void spawn(int index);

    QString m_program;
    QStringList m_arguments;
    QList<int> m_fds;  // our non-CLOEXEC duplicates, kept for restarts
    QList<std::shared_ptr<Worker>> m_workers;
    bool m_stopping = false;
    std::function<void()> m_stopped;
};

}  // namespace postern
