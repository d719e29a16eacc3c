// account_broker.cpp — see account_broker.h.
#include "account_broker.h"

#include "core/account_ops.h"
#include "core/address.h"
#include "core/config_ops.h"
#include "core/config_schema.h"
#include "core/dkim_keys.h"
#include "core/posix_io.h"
#include "core/two_factor.h"

#include <QCoreApplication>
#include <QRegularExpression>
#include <QSocketNotifier>
#include <QTimer>

#include <fcntl.h>

#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>

namespace postern::web {

namespace {
bool writeAll(int fd, const char* p, qsizetype n) {
    while (n > 0) {
        const ssize_t w = retryOnEintr([&] { return ::send(fd, p, size_t(n), MSG_NOSIGNAL); });
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
            const int r = retryOnEintr([&] { return ::poll(&pfd, 1, timeoutMs); });
            if (r <= 0) return false;
        }
        const ssize_t got = retryOnEintr([&] { return ::read(fd, p, size_t(n)); });
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

namespace {
// One request to the helper: its fields (r[0] is the operation) and what serve() was given.
struct BrokerCall {
    AccountStore& store;
    const QString& configDir;
    const HashParams& params;
    const QString& adminAddress;
    const QString& usageDir;
    const QStringList& r;
    TwoFactor twoFactor() const { return TwoFactor(store, usageDir); }
};

QStringList failed(const QString& message) {
    return {QStringLiteral("error"), message};
}

QStringList unknownRequest() {
    return failed(QStringLiteral("unknown request"));
}

QStringList enrolTwoFactor(const BrokerCall& c) {
    auto e = c.twoFactor().beginEnrolment(c.r.at(1));
    if (!e) return failed(e.errorMessage());
    return {QStringLiteral("ok"), e->secretBase32, e->uri, e->svg};
}

QStringList twoFactorStatus(const BrokerCall& c) {
    auto s = c.twoFactor().status(c.r.at(1));
    if (!s) return failed(s.errorMessage());
    return {QStringLiteral("ok"), QString::number(int(s->enabled)), QString::number(s->since),
            QString::number(int(s->pending)), QString::number(s->appPasswords)};
}

QStringList addAppPassword(const BrokerCall& c) {
    auto p = c.twoFactor().addAppPassword(c.r.at(1), c.r.at(2), c.params);
    if (!p) return failed(p.errorMessage());
    return {QStringLiteral("ok"), p->name, p->password};
}

QStringList addUser(const BrokerCall& c) {
    bool ok = false;
    const qint64 quota = c.r.at(3).toLongLong(&ok);
    if (!ok) return failed(QStringLiteral("bad quota"));
    auto roles = accountops::addUser(c.store, c.params, c.r.at(1), c.r.at(2).toUtf8(), quota, c.adminAddress);
    if (!roles) return failed(roles.errorMessage());
    return {QStringLiteral("ok"),
            roles->isEmpty()
                ? QStringLiteral("added")
                : QStringLiteral("added; %1 now deliver to this user").arg(roles->join(QStringLiteral(", ")))};
}

QStringList setQuota(const BrokerCall& c) {
    bool ok = false;
    const qint64 quota = c.r.at(2).toLongLong(&ok);
    if (!ok) return failed(QStringLiteral("bad quota"));
    return answer(accountops::setQuota(c.store, c.r.at(1), quota), QStringLiteral("quota set"));
}

QStringList setAdmin(const BrokerCall& c) {
    if (c.r.at(2) != u"on" && c.r.at(2) != u"off") return unknownRequest();
    return answer(accountops::setAdmin(c.store, c.r.at(1), c.r.at(2) == u"on"),
                  QStringLiteral("administrator flag set"));
}

QStringList addAlias(const BrokerCall& c) {
    QStringList targets;
    for (const QString& t : c.r.at(2).split(QRegularExpression(QStringLiteral("[,\\s]+")), Qt::SkipEmptyParts))
        targets << t;
    auto src = accountops::addAlias(c.store, c.r.at(1), targets);
    if (!src) return failed(src.errorMessage());
    return {QStringLiteral("ok"), QStringLiteral("alias %1 added").arg(*src)};
}

QStringList setConfig(const BrokerCall& c) {
    // Only Setting::runtimeSafe keys (Scope::RunTimeOnly), validated by the schema here, in the helper.
    auto change = configops::setSetting(c.configDir, c.r.at(1), c.r.at(2), configops::Scope::RunTimeOnly);
    if (!change) return failed(change.errorMessage());
    return {QStringLiteral("ok"), change->summary()};
}

QStringList addDomain(const BrokerCall& c) {
    auto added = accountops::addDomain(c.store, c.configDir, c.r.at(1), c.adminAddress);
    if (!added) return failed(added.errorMessage());
    QString text = QStringLiteral("domain %1 added").arg(added->domain);
    if (!added->roles.isEmpty())
        text += QStringLiteral("; %1 deliver to %2").arg(added->roles.join(QStringLiteral(", ")), c.adminAddress);
    if (!added->dkimError.isEmpty()) text += QStringLiteral("; DKIM keys could not be made: %1").arg(added->dkimError);
    return {QStringLiteral("ok"), text};
}

QStringList removeDomain(const BrokerCall& c) {
    if (c.r.at(2) != u"force" && c.r.at(2) != u"keep") return unknownRequest();
    return answer(accountops::removeDomain(c.store, c.r.at(1), c.r.at(2) == u"force"), QStringLiteral("removed"));
}

QStringList rotateDkim(const BrokerCall& c) {
    auto domain = normalizeDomain(c.r.at(1));
    if (!domain) return failed(domain.errorMessage());
    auto acc = c.store.load();
    if (!acc) return failed(acc.errorMessage());
    if (!acc->isLocalDomain(*domain)) return failed(QStringLiteral("unknown domain %1").arg(*domain));
    auto made = DkimKeyStore(c.configDir).rotate(*domain);
    if (!made) return failed(made.errorMessage());
    QStringList selectors;
    for (const DkimKey& k : std::as_const(*made)) selectors << k.selector;
    return {QStringLiteral("ok"), selectors.join(QLatin1Char(' '))};
}

struct BrokerOp {
    const char* name;
    int minFields, maxFields;  // the request's fields, the operation's name included
    QStringList (*run)(const BrokerCall& c);
};

// The one table of the helper's operations (account_broker.h lists them): name, number of
// fields, handler. A request that fits no row is an "unknown request".
const QList<BrokerOp>& brokerOps() {
    static const QList<BrokerOp> table = {
        {"2fa.verify", 3, 3,
         [](const BrokerCall& c) {
             return answer(c.twoFactor().verifyCode(c.r.at(1), c.r.at(2)), QStringLiteral("code accepted"));
         }},
        {"2fa.confirm", 3, 3,
         [](const BrokerCall& c) {
             return answer(c.twoFactor().confirmEnrolment(c.r.at(1), c.r.at(2)),
                           QStringLiteral("two-factor login is on"));
         }},
        {"2fa.disable-code", 3, 3,
         [](const BrokerCall& c) {
             return answer(c.twoFactor().disableWithCode(c.r.at(1), c.r.at(2)),
                           QStringLiteral("two-factor login is off"));
         }},
        {"2fa.off", 2, 2,
         [](const BrokerCall& c) {
             return answer(c.twoFactor().disableAsAdmin(c.r.at(1)), QStringLiteral("two-factor login is off"));
         }},
        {"2fa.enrol", 2, 2, enrolTwoFactor},
        {"2fa.status", 2, 2, twoFactorStatus},
        {"app.add", 3, 3, addAppPassword},
        {"app.revoke", 3, 3,
         [](const BrokerCall& c) {
             return answer(c.twoFactor().revokeAppPassword(c.r.at(1), c.r.at(2)), QStringLiteral("revoked"));
         }},
        {"user.add", 4, 4, addUser},
        {"user.passwd", 3, 3,
         [](const BrokerCall& c) {
             return answer(accountops::setPassword(c.store, c.params, c.r.at(1), c.r.at(2).toUtf8()),
                           QStringLiteral("password changed"));
         }},
        {"user.quota", 3, 3, setQuota},
        {"user.admin", 3, 3, setAdmin},
        // ADDRESS ACTOR: the logged-in administrator cannot disable themselves
        {"user.disable", 3, 3,
         [](const BrokerCall& c) {
             return answer(accountops::setDisabled(c.store, c.r.at(1), true, c.r.at(2)), QStringLiteral("disabled"));
         }},
        {"user.enable", 2, 2,
         [](const BrokerCall& c) {
             return answer(accountops::setDisabled(c.store, c.r.at(1), false), QStringLiteral("enabled"));
         }},
        {"user.del", 2, 2,
         [](const BrokerCall& c) {
             return answer(accountops::removeUser(c.store, c.r.at(1), false), QStringLiteral("removed"));
         }},
        {"alias.add", 3, 3, addAlias},
        {"config.set", 3, 3, setConfig},
        {"alias.del", 2, 3,
         [](const BrokerCall& c) {
             return answer(accountops::removeAlias(c.store, c.r.at(1), c.r.value(2)), QStringLiteral("removed"));
         }},
        {"domain.add", 2, 2, addDomain},
        {"domain.del", 3, 3, removeDomain},
        {"dkim.rotate", 2, 2, rotateDkim},
    };
    return table;
}
}  // namespace

QStringList AccountBroker::serve(const QString& configDir, const HashParams& params, const QString& adminAddress,
                                 const QStringList& r, const QString& usageDir) {
    AccountStore store(configDir);
    const QString op = r.value(0);
    const int n = int(r.size());
    const BrokerCall call{store, configDir, params, adminAddress, usageDir, r};
    for (const BrokerOp& o : brokerOps())
        if (op == QLatin1String(o.name) && n >= o.minFields && n <= o.maxFields) return o.run(call);
    return unknownRequest();
}

Result<std::unique_ptr<AccountBroker>> AccountBroker::start(const QString& configDir, const HashParams& params,
                                                            const QString& adminAddress, const QString& usageDir) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return Result<std::unique_ptr<AccountBroker>>::fail(
            QStringLiteral("account helper: socketpair: %1").arg(errnoText(errno)));
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(sv[0]);
        ::close(sv[1]);
        return Result<std::unique_ptr<AccountBroker>>::fail(
            QStringLiteral("account helper: fork: %1").arg(errnoText(errno)));
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
            if (!sendFrame(sv[1], serve(configDir, params, adminAddress, *request, usageDir))) ::_exit(0);
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
    // Never before the stated limit: a coarse timer (Qt's default) may fire up to 5 % early, and
    // giving up on the helper is final for this webd.
    m_timer->setTimerType(Qt::PreciseTimer);
    QObject::connect(m_timer.get(), &QTimer::timeout, m_timer.get(), [this] {
        breakOff(Error{QStringLiteral("the account helper did not answer in time"), kBrokerTimeout});
    });
}

std::unique_ptr<AccountBroker> AccountBroker::adopt(int fd) {
    return std::unique_ptr<AccountBroker>(new AccountBroker(fd, -1));
}

AccountBroker::~AccountBroker() {
    m_notifier.reset();
    m_timer.reset();
    if (m_fd >= 0) ::close(m_fd);
    if (m_pid > 0) ::waitpid(pid_t(m_pid), nullptr, 0);
}

void AccountBroker::call(const QStringList& request, QObject* context, Done done) {
    callFields(request, context, [done = std::move(done)](Result<QStringList> fields) {
        if (!fields) return done(fields.error());
        if (fields->size() != 1)
            return done(Result<QString>::fail(QStringLiteral("the account helper answered out of turn")));
        done(fields->first());
    });
}

void AccountBroker::callFields(const QStringList& request, QObject* context, DoneFields done) {
    Pending p{request, context, std::move(done)};
    for (const QString& f : request)
        if (f.contains(QChar(0)))
            return finish(std::move(p), Result<QStringList>::fail(QStringLiteral("a field contains NUL")));
    if (m_fd < 0)
        return finish(std::move(p), Error{QStringLiteral("the account helper is not available"), kBrokerGone});
    if (m_queue.size() >= size_t(kMaxQueued))
        return finish(
            std::move(p),
            Error{QStringLiteral("too many changes are waiting; nothing was changed, try again"), kBrokerBusy});
    m_queue.push_back(std::move(p));
    if (!m_inFlight) sendNext();
}

// Runs the callback from the event loop (never inside call()), unless its context is gone.
void AccountBroker::finish(Pending p, Result<QStringList> r) {
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
        // One frame (at most kMaxFrame + 4) into an empty socketpair buffer (the default
        // AF_UNIX send buffer is larger): send() on the non-blocking end does not have to wait,
        // since the helper has answered everything before. A short write is out of step.
        if (!sendFrame(m_fd, m_queue.front().request)) {
            Pending p = std::move(m_queue.front());
            m_queue.pop_front();
            const bool tooLarge = p.request.join(QChar(0)).toUtf8().size() > kMaxFrame;
            finish(std::move(p), tooLarge ? Result<QStringList>::fail(QStringLiteral("the request is too large"))
                                          : Error{QStringLiteral("the account helper is not available"), kBrokerGone});
            if (!tooLarge) return breakOff(Error{QStringLiteral("the account helper is not available"), kBrokerGone});
            continue;
        }
        m_inFlight = true;
        m_buffer.clear();
        m_timer->start(m_timeoutMs);
    }
}

void AccountBroker::readAnswer() {
    char chunk[4096];
    for (;;) {
        const ssize_t got = retryOnEintr([&] { return ::read(m_fd, chunk, sizeof chunk); });
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (got <= 0)  // it exited
            return breakOff(Error{QStringLiteral("the account helper is not available"), kBrokerGone});
        if (!m_inFlight || qsizetype(got) > kMaxFrame + 4 - m_buffer.size())  // unasked or oversized: out of step
            return breakOff(Error{QStringLiteral("the account helper answered out of turn"), kBrokerGone});
        m_buffer.append(chunk, qsizetype(got));
    }
    if (m_buffer.size() < 4) return;
    const auto* len = reinterpret_cast<const unsigned char*>(m_buffer.constData());
    const quint32 n = (quint32(len[0]) << 24) | (quint32(len[1]) << 16) | (quint32(len[2]) << 8) | quint32(len[3]);
    if (n > quint32(kMaxFrame))
        return breakOff(Error{QStringLiteral("the account helper answered out of turn"), kBrokerGone});
    if (qsizetype(n) > m_buffer.size() - 4) return;  // not all of it yet
    if (qsizetype(n) != m_buffer.size() - 4)
        return breakOff(Error{QStringLiteral("the account helper answered out of turn"), kBrokerGone});
    const QStringList reply = QString::fromUtf8(m_buffer.constData() + 4, qsizetype(n)).split(QChar(0));
    m_timer->stop();
    m_inFlight = false;
    m_buffer.clear();
    Pending p = std::move(m_queue.front());
    m_queue.pop_front();
    if (reply.size() < 2) {
        finish(std::move(p), Error{QStringLiteral("the account helper answered out of turn"), kBrokerGone});
        return breakOff(Error{QStringLiteral("the account helper answered out of turn"), kBrokerGone});
    }
    finish(std::move(p),
           reply.at(0) == u"ok" ? Result<QStringList>(reply.mid(1)) : Result<QStringList>::fail(reply.at(1)));
    sendNext();
}

// Out of step with the helper (a late answer would be read as the next one's): stop using it.
void AccountBroker::breakOff(const Error& why) {
    m_timer->stop();
    m_notifier->setEnabled(false);
    if (m_fd >= 0) ::close(m_fd);
    m_fd = -1;
    m_inFlight = false;
    m_buffer.clear();
    while (!m_queue.empty()) {
        Pending p = std::move(m_queue.front());
        m_queue.pop_front();
        finish(std::move(p), why);
    }
}

}  // namespace postern::web
