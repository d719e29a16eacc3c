// unix_signals.cpp — see unix_signals.h.
#include "unix_signals.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <csignal>

namespace postern {

namespace {
int g_fds[2] = {-1, -1};

void handler(int sig) {
    const int saved = errno;
    const unsigned char b = static_cast<unsigned char>(sig);
    [[maybe_unused]] ssize_t n = ::write(g_fds[0], &b, 1);
    errno = saved;
}
}  // namespace

UnixSignals::UnixSignals(QObject* parent) : QObject(parent) {}

UnixSignals* UnixSignals::install(QObject* parent) {
    static UnixSignals* instance = nullptr;
    if (instance) return instance;
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g_fds) != 0) qFatal("socketpair failed");
    ::fcntl(g_fds[0], F_SETFL, O_NONBLOCK);
    instance = new UnixSignals(parent);
    instance->m_notifier = new QSocketNotifier(g_fds[1], QSocketNotifier::Read, instance);
    connect(instance->m_notifier, &QSocketNotifier::activated, instance, &UnixSignals::onReadable);
    struct sigaction sa {};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    return instance;
}

void UnixSignals::onReadable() {
    unsigned char b = 0;
    while (::read(g_fds[1], &b, 1) == 1) {
        if (b == SIGHUP)
            Q_EMIT reloadRequested();
        else
            Q_EMIT terminateRequested(b);
        int flags = ::fcntl(g_fds[1], F_GETFL);
        ::fcntl(g_fds[1], F_SETFL, flags | O_NONBLOCK);
    }
}

}  // namespace postern
