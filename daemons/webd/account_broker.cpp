// account_broker.cpp — see account_broker.h.
#include "account_broker.h"

#include "core/account_ops.h"
#include "core/config_ops.h"
#include "core/config_schema.h"

#include <QCoreApplication>
#include <QRegularExpression>
#include <QSocketNotifier>
#include <QTimer>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <csignal>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace postern::web {

namespace {
bool writeAll(int fd, const char* p, qsizetype n) {
    while (n > 0) {
        const ssize_t w = ::send(fd, p, size_t(n), MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= w;
    }
    return true;
}

// Reads exactly n bytes; deadlineMs < 0 waits forever. False on EOF, error or timeout.
bool readAll(int fd, char* p, qsizetype n, int timeoutMs) {
    while (n > 0) {
        if (timeoutMs >= 0) {
            pollfd pfd{fd, POLLIN, 0};
            const int r = ::poll(&pfd, 1, timeoutMs);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return false;
        }
        const ssize_t got = ::read(fd, p, size_t(n));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return false;
        p += got;
        n -= got;
    }
    return true;
}

bool sendFrame(int fd, const QStringList& fields) {
    const QByteArray payload = fields.join(QChar(0)).toUtf8();
    if (payload.size() > kMaxFrame) return false;
    const quint32 n = quint32(payload.size());
    const char len[4] = {char(n >> 24), char(n >> 16), char(n >> 8), char(n)};
    return writeAll(fd, len, 4) && writeAll(fd, payload.constData(), payload.size());
}

std::optional<QStringList> readFrame(int fd, int timeoutMs) {
    unsigned char len[4];
    if (!readAll(fd, reinterpret_cast<char*>(len), 4, timeoutMs)) return std::nullopt;
    const quint32 n = (quint32(len[0]) << 24) | (quint32(len[1]) << 16) | (quint32(len[2]) << 8) | quint32(len[3]);
    if (n > quint32(kMaxFrame)) return std::nullopt;
    QByteArray payload(qsizetype(n), '\0');
    if (n > 0 && !readAll(fd, payload.data(), payload.size(), timeoutMs)) return std::nullopt;
    return QString::fromUtf8(payload).split(QChar(0));
}

QStringList answer(const Status& st, const QString& okText) {
    if (!st) return {QStringLiteral("error"), st.errorMessage()};
    return {QStringLiteral("ok"), okText};
}
}  // namespace

QStringList AccountBroker::serve(const QString& configDir, const HashParams& params, const QString& adminAddress, const QStringList& r) {
    AccountStore store(configDir);
    const QString op = r.value(0);
    const int n = int(r.size());
    if (op == u"user.add" && n == 4) {
        bool ok = false;
        const qint64 quota = r.at(3).toLongLong(&ok);
        if (!ok) return {QStringLiteral("error"), QStringLiteral("bad quota")};
        auto roles = accountops::addUser(store, params, r.at(1), r.at(2).toUtf8(), quota, adminAddress);
        if (!roles) return {QStringLiteral("error"), roles.errorMessage()};
        return {QStringLiteral("ok"), roles->isEmpty() ? QStringLiteral("added") : QStringLiteral("added; %1 now deliver to this user").arg(roles->join(QStringLiteral(", ")))};
    }
    if (op == u"user.passwd" && n == 3) return answer(accountops::setPassword(store, params, r.at(1), r.at(2).toUtf8()), QStringLiteral("password changed"));
    if (op == u"user.quota" && n == 3) {
        bool ok = false;
        const qint64 quota = r.at(2).toLongLong(&ok);
        if (!ok) return {QStringLiteral("error"), QStringLiteral("bad quota")};
        return answer(accountops::setQuota(store, r.at(1), quota), QStringLiteral("quota set"));
    }
    if (op == u"user.admin" && n == 3 && (r.at(2) == u"on" || r.at(2) == u"off"))
        return answer(accountops::setAdmin(store, r.at(1), r.at(2) == u"on"), QStringLiteral("administrator flag set"));
    if (op == u"user.del" && n == 2) return answer(accountops::removeUser(store, r.at(1), false), QStringLiteral("removed"));
    if (op == u"alias.add" && n == 3) {
        QStringList targets;
        for (const QString& t : r.at(2).split(QRegularExpression(QStringLiteral("[,\\s]+")), Qt::SkipEmptyParts)) targets << t;
        auto src = accountops::addAlias(store, r.at(1), targets);
        if (!src) return {QStringLiteral("error"), src.errorMessage()};
        return {QStringLiteral("ok"), QStringLiteral("alias %1 added").arg(*src)};
    }
    if (op == u"config.set" && n == 3) {
        // Only Setting::runtimeSafe keys (Scope::RunTimeOnly), validated by the schema here, in the helper.
        auto change = configops::setSetting(configDir, r.at(1), r.at(2), configops::Scope::RunTimeOnly);
        if (!change) return {QStringLiteral("error"), change.errorMessage()};
        return {QStringLiteral("ok"), change->summary()};
    }
    if (op == u"alias.del" && (n == 2 || n == 3)) return answer(accountops::removeAlias(store, r.at(1), r.value(2)), QStringLiteral("removed"));
    return {QStringLiteral("error"), QStringLiteral("unknown request")};
}

Result<std::unique_ptr<AccountBroker>> AccountBroker::start(const QString& configDir, const HashParams& params, const QString& adminAddress) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return Result<std::unique_ptr<AccountBroker>>::fail(QStringLiteral("account helper: socketpair: %1").arg(QString::fromLocal8Bit(strerror(errno))));
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(sv[0]);
        ::close(sv[1]);
        return Result<std::unique_ptr<AccountBroker>>::fail(QStringLiteral("account helper: fork: %1").arg(QString::fromLocal8Bit(strerror(errno))));
    }
    if (pid == 0) {
        // The helper: no event loop, no Qt objects of the parent are used; only this loop.
        ::close(sv[0]);
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent) ::_exit(0);
        ::signal(SIGHUP, SIG_IGN);
        ::signal(SIGINT, SIG_IGN);
        for (;;) {
            auto request = readFrame(sv[1], -1);
            if (!request) ::_exit(0);
            if (!sendFrame(sv[1], serve(configDir, params, adminAddress, *request))) ::_exit(0);
        }
    }
    ::close(sv[1]);
    return std::unique_ptr<AccountBroker>(new AccountBroker(sv[0], int(pid)));
}

AccountBroker::AccountBroker(int fd, int pid) : m_fd(fd), m_pid(pid) {
    // webd's end never blocks: answers are read when the notifier says they are there.
    ::fcntl(m_fd, F_SETFL, ::fcntl(m_fd, F_GETFL) | O_NONBLOCK);
    m_notifier = std::make_unique<QSocketNotifier>(qintptr(m_fd), QSocketNotifier::Read);
    QObject::connect(m_notifier.get(), &QSocketNotifier::activated, m_notifier.get(), [this] { readAnswer(); });
    m_timer = std::make_unique<QTimer>();
    m_timer->setSingleShot(true);
    QObject::connect(m_timer.get(), &QTimer::timeout, m_timer.get(), [this] { breakOff(QStringLiteral("the account helper did not answer")); });
}

AccountBroker::~AccountBroker() {
    m_notifier.reset();
    m_timer.reset();
    if (m_fd >= 0) ::close(m_fd);
    if (m_pid > 0) ::waitpid(pid_t(m_pid), nullptr, 0);
}

void AccountBroker::call(const QStringList& request, QObject* context, Done done) {
    Pending p{request, context, std::move(done)};
    for (const QString& f : request)
        if (f.contains(QChar(0))) return finish(std::move(p), Result<QString>::fail(QStringLiteral("a field contains NUL")));
    if (m_fd < 0) return finish(std::move(p), Result<QString>::fail(QStringLiteral("the account helper is not available")));
    if (m_queue.size() >= size_t(kMaxQueued)) return finish(std::move(p), Result<QString>::fail(QStringLiteral("too many changes waiting; try again")));
    m_queue.push_back(std::move(p));
    if (!m_inFlight) sendNext();
}

// Runs the callback from the event loop (never inside call()), unless its context is gone.
void AccountBroker::finish(Pending p, Result<QString> r) {
    if (!p.context || !p.done) return;
    QMetaObject::invokeMethod(
        QCoreApplication::instance(),
        [context = p.context, done = std::move(p.done), r = std::move(r)]() {
            if (context) done(r);
        },
        Qt::QueuedConnection);
}

void AccountBroker::sendNext() {
    while (!m_inFlight && !m_queue.empty() && m_fd >= 0) {
        // One frame (at most kMaxFrame) into an empty socketpair buffer: send() does not
        // have to wait (the helper reads a request only after answering the previous one).
        if (!sendFrame(m_fd, m_queue.front().request)) {
            Pending p = std::move(m_queue.front());
            m_queue.pop_front();
            finish(std::move(p), Result<QString>::fail(QStringLiteral("the account helper is not available")));
            continue;
        }
        m_inFlight = true;
        m_buffer.clear();
        m_timer->start(kCallTimeoutMs);
    }
}

void AccountBroker::readAnswer() {
    char chunk[4096];
    for (;;) {
        const ssize_t got = ::read(m_fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (got <= 0) return breakOff(QStringLiteral("the account helper is not available"));  // it exited
        if (!m_inFlight || qsizetype(got) > kMaxFrame + 4 - m_buffer.size())
            return breakOff(QStringLiteral("the account helper did not answer"));  // unasked or oversized: out of step
        m_buffer.append(chunk, qsizetype(got));
    }
    if (m_buffer.size() < 4) return;
    const auto* len = reinterpret_cast<const unsigned char*>(m_buffer.constData());
    const quint32 n = (quint32(len[0]) << 24) | (quint32(len[1]) << 16) | (quint32(len[2]) << 8) | quint32(len[3]);
    if (n > quint32(kMaxFrame)) return breakOff(QStringLiteral("the account helper did not answer"));
    if (qsizetype(n) > m_buffer.size() - 4) return;  // not all of it yet
    if (qsizetype(n) != m_buffer.size() - 4) return breakOff(QStringLiteral("the account helper did not answer"));
    const QStringList reply = QString::fromUtf8(m_buffer.constData() + 4, qsizetype(n)).split(QChar(0));
    m_timer->stop();
    m_inFlight = false;
    m_buffer.clear();
    Pending p = std::move(m_queue.front());
    m_queue.pop_front();
    if (reply.size() != 2) {
        finish(std::move(p), Result<QString>::fail(QStringLiteral("the account helper did not answer")));
        return breakOff(QStringLiteral("the account helper did not answer"));
    }
    finish(std::move(p), reply.at(0) == u"ok" ? Result<QString>(reply.at(1)) : Result<QString>::fail(reply.at(1)));
    sendNext();
}

// Out of step with the helper (a late answer would be read as the next one's): stop using it.
void AccountBroker::breakOff(const QString& why) {
    m_timer->stop();
    m_notifier->setEnabled(false);
    if (m_fd >= 0) ::close(m_fd);
    m_fd = -1;
    m_inFlight = false;
    while (!m_queue.empty()) {
        Pending p = std::move(m_queue.front());
        m_queue.pop_front();
        finish(std::move(p), Result<QString>::fail(why));
    }
}

}  // namespace postern::web
