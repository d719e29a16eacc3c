// workers.cpp — see workers.h.
#include "workers.h"

#include "core/log.h"

#include <QElapsedTimer>
#include <QProcessEnvironment>
#include <QThread>
#include <QTimer>

#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <csignal>

namespace postern {

namespace {
constexpr char kWorkerVar[] = "POSTERN_WORKER";
constexpr char kFdsVar[] = "POSTERN_LISTEN_FDS";
constexpr char kParentVar[] = "POSTERN_WORKER_PARENT";
constexpr int kRestartMs = 1000;
constexpr int kCrashLoopMs = 30'000;
constexpr qint64 kShortLifeMs = 10'000;
}  // namespace

Result<WorkerRole> workerRoleFromEnvironment() {
    WorkerRole role;
    const QByteArray index = qgetenv(kWorkerVar);
    if (index.isEmpty()) return role;
    bool ok = false;
    role.index = index.toInt(&ok);
    if (!ok || role.index < 1)
        return Result<WorkerRole>::fail(
            QStringLiteral("%1 is not a worker number").arg(QString::fromLatin1(kWorkerVar)));
    for (const QByteArray& part : qgetenv(kFdsVar).split(',')) {
        const int fd = part.toInt(&ok);
        if (!ok || fd < 3 || ::fcntl(fd, F_GETFD) < 0)
            return Result<WorkerRole>::fail(
                QStringLiteral("%1 names no open descriptor").arg(QString::fromLatin1(kFdsVar)));
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // ours now: not for programs we might run
        role.listenFds << fd;
    }
    // A reload before our handler is installed (UnixSignals) must not end us.
    ::signal(SIGHUP, SIG_IGN);
    // Die with the first process; if it is gone already, do not start at all.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (QByteArray::number(qint64(::getppid())) != qgetenv(kParentVar))
        return Result<WorkerRole>::fail(QStringLiteral("the first process has exited"));
    qunsetenv(kWorkerVar);
    qunsetenv(kFdsVar);
    qunsetenv(kParentVar);
    return role;
}

int resolveProcessCount(qint64 configured, int max) {
    const qint64 n = configured > 0 ? configured : QThread::idealThreadCount();
    return int(std::clamp<qint64>(n, 1, max));
}

struct WorkerPool::Worker {
    int index = 0;
    std::unique_ptr<QProcess> process;
    QElapsedTimer started;
    bool exited = true;
    int quickExits = 0;  // exits in a row, each within kShortLifeMs of its start
};

WorkerPool::WorkerPool(QString program, QStringList arguments, QList<int> listenerFds, int workers, QObject* parent)
    : QObject(parent), m_program(std::move(program)), m_arguments(std::move(arguments)) {
    for (int fd : listenerFds) {
        const int copy = ::dup(fd);  // dup(2) clears FD_CLOEXEC: the copies reach the workers
        if (copy >= 0) m_fds << copy;
    }
    for (int i = 1; i < workers; ++i) {
        auto w = std::make_shared<Worker>();
        w->index = i;
        m_workers << w;
    }
}

WorkerPool::~WorkerPool() {
    for (const auto& w : m_workers)
        if (w->process && !w->exited) w->process->kill();
    for (int fd : m_fds) ::close(fd);
}

Status WorkerPool::start() {
    if (m_workers.isEmpty()) return {};
    if (m_fds.isEmpty()) return Status::fail(QStringLiteral("no listening sockets to share"));
    for (const auto& w : m_workers) spawn(w->index);
    return {};
}

void WorkerPool::spawn(int index) {
    std::shared_ptr<Worker> w = m_workers.at(index - 1);
    QStringList fds;
    for (int fd : m_fds) fds << QString::number(fd);
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QString::fromLatin1(kWorkerVar), QString::number(index));
    env.insert(QString::fromLatin1(kFdsVar), fds.join(QLatin1Char(',')));
    env.insert(QString::fromLatin1(kParentVar), QString::number(qint64(::getpid())));
    w->process = std::make_unique<QProcess>();
    w->process->setProgram(m_program);
    w->process->setArguments(m_arguments);
    w->process->setProcessEnvironment(env);
    w->process->setProcessChannelMode(QProcess::ForwardedChannels);  // workers log to our stderr
    w->process->setInputChannelMode(QProcess::ForwardedInputChannel);
    QProcess* p = w->process.get();
    connect(p, &QProcess::finished, this, [this, w, p](int code, QProcess::ExitStatus status) {
        if (w->process.get() != p) return;
        w->exited = true;
        const qint64 lived = w->started.elapsed();
        if (m_stopping) {
            bool all = true;
            for (const auto& other : m_workers) all = all && other->exited;
            if (all && m_stopped) std::exchange(m_stopped, nullptr)();
            return;
        }
        w->quickExits = lived < kShortLifeMs ? w->quickExits + 1 : 0;
        const int delay = w->quickExits >= 3 ? kCrashLoopMs : kRestartMs;
        log::error(u"worker.exited",
                   log::Fields()
                       .add("worker", w->index)
                       .add("pid", qint64(p->processId()))
                       .add("status", status == QProcess::CrashExit ? QStringLiteral("killed") : QString::number(code))
                       .add("restart_in_ms", delay));
        QTimer::singleShot(delay, this, [this, index = w->index] {
            if (!m_stopping) spawn(index);
        });
    });
    connect(p, &QProcess::errorOccurred, this, [w, p](QProcess::ProcessError e) {
        if (e == QProcess::FailedToStart)
            log::error(u"worker.failed_to_start", log::Fields().add("worker", w->index).add("error", p->errorString()));
    });
    w->exited = false;
    w->started.start();
    p->start();
    if (p->waitForStarted(5000))
        log::info(u"worker.started", log::Fields().add("worker", index).add("pid", qint64(p->processId())));
}

void WorkerPool::reload() {
    for (const auto& w : m_workers)
        if (w->process && !w->exited && w->process->processId() > 0) ::kill(pid_t(w->process->processId()), SIGHUP);
}

void WorkerPool::stop(int graceMs, std::function<void()> done) {
    m_stopping = true;
    m_stopped = std::move(done);
    bool all = true;
    for (const auto& w : m_workers) {
        if (!w->process || w->exited) continue;
        all = false;
        w->process->terminate();
    }
    if (all) {
        QMetaObject::invokeMethod(
            this,
            [this] {
                if (m_stopped) std::exchange(m_stopped, nullptr)();
            },
            Qt::QueuedConnection);
        return;
    }
    QTimer::singleShot(graceMs, this, [this] {
        for (const auto& w : m_workers)
            if (w->process && !w->exited) {
                log::warn(u"worker.killed",
                          log::Fields().add("worker", w->index).add("pid", qint64(w->process->processId())));
                w->process->kill();
            }
    });
}

}  // namespace postern
