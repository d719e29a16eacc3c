// supervisor.cpp — see supervisor.h.
#include "supervisor.h"

#include "core/atomic_file.h"
#include "core/log.h"
#include "core/posix_io.h"
#include "core/process.h"
#include "core/resolver_engine.h"
#include "core/services.h"
#include "core/setting_keys.h"
#include "core/spam_engine.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstring>

namespace postern {

namespace {
void writeAllStderr(const QByteArray& b) {
    (void)writeAll(STDERR_FILENO, b, QString());
}

// Does a unix socket accept connections (an engine's readiness)? Non-blocking: a unix
// socket's connect() answers at once.
bool socketAccepts(const QString& path) {
    const QByteArray p = QFile::encodeName(path);
    sockaddr_un addr{};
    if (p.isEmpty() || size_t(p.size()) >= sizeof addr.sun_path) return false;
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, p.constData(), size_t(p.size()));
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return false;
    const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}
}  // namespace

QList<ServiceSpec> serviceTable() {
    QList<ServiceSpec> out;
    for (const ServiceInfo& s : services()) {
        ServiceSpec spec{s.program, {}, s.withoutListeners, s.enabledBy, s.engine};
        for (const ListenerInfo& l : listenersOf(s.program)) spec.listenerKeys << l.settingKey();
        out << spec;
    }
    return out;
}

QString Supervisor::toString(State s) {
    switch (s) {
        case State::Missing:
            return QStringLiteral("missing");
        case State::Disabled:
            return QStringLiteral("disabled");
        case State::Starting:
            return QStringLiteral("starting");
        case State::Ready:
            return QStringLiteral("running");
        case State::Backoff:
            return QStringLiteral("restarting");
        case State::Stopped:
            return QStringLiteral("stopped");
    }
    return {};
}

Supervisor::Supervisor(QString configDir, Config config, QObject* parent)
    : QObject(parent), m_configDir(std::move(configDir)), m_config(std::move(config)) {
    connect(&m_blockSync, &BlockSync::changed, this, &Supervisor::writeState);
    if (::getpid() == 1) {
        m_reaper.setInterval(1000);
        connect(&m_reaper, &QTimer::timeout, this, &Supervisor::reapOrphans);
        m_reaper.start();
    }
}

Supervisor::~Supervisor() = default;

// Certificate renewal runs as its own short-lived process (posternctl, as root like
// us), so a slow CA never blocks supervision; it reloads the daemons by SIGHUP to us.
QString Supervisor::findCtl() const {
    for (const QString& d :
         {QCoreApplication::applicationDirPath(), QStringLiteral("/usr/sbin"), QStringLiteral("/usr/local/sbin")}) {
        const QFileInfo f(d + QStringLiteral("/posternctl"));
        if (f.isFile() && f.isExecutable()) return f.canonicalFilePath();
    }
    return {};
}

// The scheduled restic backup: posternctl decides whether it is due (backup.interval
// since the last success, an hour after a failure) and keeps the result for
// `posternctl backup status` / `posternctl status`.
void Supervisor::runBackup() {
    const QString ctl = findCtl();
    if (ctl.isEmpty() || get(m_config, keys::backup::resticRepository).isEmpty() || m_backupProcess) return;
    auto* p = new QProcess(this);
    m_backupProcess = p;
    p->setProcessChannelMode(QProcess::MergedChannels);
    connect(p, &QProcess::finished, this, [p](int code) {
        const QString out = QString::fromUtf8(p->readAll()).trimmed().replace(QLatin1Char('\n'), QStringLiteral(" | "));
        if (code == 0) {
            if (!out.isEmpty()) log::info(u"supervisor.backup", log::Fields().add("result", out.left(500)));
        } else {
            log::error(u"supervisor.backup_failed", log::Fields().add("exit", code).add("output", out.left(1000)));
        }
        p->deleteLater();
    });
    p->start(ctl, {QStringLiteral("--config"), m_configDir, QStringLiteral("backup"), QStringLiteral("run"),
                   QStringLiteral("--if-due")});
}

void Supervisor::runMaintenance() {
    const QString ctl = findCtl();
    if (ctl.isEmpty() || !get(m_config, keys::acme::enabled) || m_maintenanceProcess) return;
    auto* p = new QProcess(this);
    m_maintenanceProcess = p;
    p->setProcessChannelMode(QProcess::MergedChannels);
    connect(p, &QProcess::finished, this, [p](int code) {
        const QString out = QString::fromUtf8(p->readAll()).trimmed().replace(QLatin1Char('\n'), QStringLiteral(" | "));
        if (code == 0)
            log::info(u"supervisor.cert_renew", log::Fields().add("result", out.left(500)));
        else
            log::error(u"supervisor.cert_renew_failed", log::Fields().add("exit", code).add("output", out.left(1000)));
        p->deleteLater();
    });
    p->start(ctl, {QStringLiteral("--config"), m_configDir, QStringLiteral("cert"), QStringLiteral("renew"),
                   QStringLiteral("--if-due")});
}

QString Supervisor::findBinary(const QString& program) const {
    if (const ServiceInfo* info = findService(program); info && info->engine) {
        for (const QString& d : {QStringLiteral("/usr/bin"), QStringLiteral("/usr/sbin")}) {
            const QFileInfo f(d + QLatin1Char('/') + program);
            // Not canonical: Debian's redis-server is a link to redis-check-rdb, which picks its
            // role from the name it was started by.
            if (f.isFile() && f.isExecutable()) return f.absoluteFilePath();
        }
        return {};
    }
    QStringList dirs;
    const QString env = qEnvironmentVariable("POSTERN_LIBEXEC");
    if (!env.isEmpty()) dirs << env;
    const QString self = QCoreApplication::applicationDirPath();
    dirs << self << self + QStringLiteral("/../libexec/postern") << QStringLiteral("/usr/libexec/postern");
    for (const QString& d : dirs) {
        const QFileInfo f(d + QLatin1Char('/') + program);
        if (f.isFile() && f.isExecutable()) return f.canonicalFilePath();
    }
    return {};
}

bool Supervisor::enabled(const ServiceSpec& s) const {
    if (const ServiceInfo* info = findService(s.program); info && !serviceOffReason(*info, m_config).isEmpty())
        return false;
    if (s.withoutListeners) return true;
    for (const QString& k : s.listenerKeys)
        if (!m_config.listeners(k).isEmpty()) return true;
    return false;
}

void Supervisor::start() {
    m_maintenance.setInterval(12 * 3600 * 1000);
    connect(&m_maintenance, &QTimer::timeout, this, &Supervisor::runMaintenance);
    m_maintenance.start();
    // POSTERN_SCHEDULE_DELAY_MS (tests) shortens the wait before the first runs.
    bool delaySet = false;
    const int firstDelay = qEnvironmentVariableIntValue("POSTERN_SCHEDULE_DELAY_MS", &delaySet);
    QTimer::singleShot(delaySet ? firstDelay : 5 * 60 * 1000, this,
                       &Supervisor::runMaintenance);  // soon after start, once the web daemon listens
    m_backup.setInterval(3600 * 1000);
    connect(&m_backup, &QTimer::timeout, this, &Supervisor::runBackup);
    m_backup.start();
    QTimer::singleShot(delaySet ? firstDelay : 10 * 60 * 1000, this,
                       &Supervisor::runBackup);  // once the daemons have settled
    if (auto st = ensureDirectory(m_config.runDir(), 0755); !st)
        log::error(u"supervisor.run_dir", log::Fields().add("error", st.errorMessage()));
    (void)removeFile(m_config.runDir() + QStringLiteral("/postern-appliance.ready"));
    m_blockSync.configure(m_config);
    for (const ServiceSpec& spec : serviceTable()) {
        auto s = std::make_shared<Service>();
        s->spec = spec;
        s->binary = findBinary(spec.program);
        s->readyPoll.setInterval(50);
        s->backoffTimer.setSingleShot(true);
        Service* raw = s.get();
        connect(&s->readyPoll, &QTimer::timeout, this, [this, raw] { checkReady(*raw); });
        connect(&s->backoffTimer, &QTimer::timeout, this, [this, raw] { launch(*raw); });
        m_services << s;
        if (!enabled(spec)) {
            s->state = State::Disabled;
            log::info(u"supervisor.service_disabled",
                      log::Fields()
                          .add("service", spec.program)
                          .add("reason", findService(spec.program) &&
                                                 !serviceOffReason(*findService(spec.program), m_config).isEmpty()
                                             ? serviceOffReason(*findService(spec.program), m_config)
                                             : QStringLiteral("no listener configured")));
        } else if (s->binary.isEmpty()) {
            s->state = State::Missing;
            log::error(u"supervisor.service_missing",
                       log::Fields()
                           .add("service", spec.program)
                           .add("reason", "program not installed; this service is NOT running"));
        } else {
            launch(*s);
        }
    }
    m_launched = true;
    writeState();
}

void Supervisor::launch(Service& s) {
    if (m_stopping) return;
    (void)removeFile(readyFilePath(m_config, s.spec.program));
    s.process = std::make_unique<QProcess>();
    // stdout passes through; stderr is read here, passed on, and its last line kept:
    // a daemon that refuses to start says why there (e.g. a folder it cannot write).
    s.process->setProcessChannelMode(QProcess::ForwardedOutputChannel);
    s.lastError.clear();
    s.stderrPartial.clear();
    s.process->setInputChannelMode(QProcess::ForwardedInputChannel);
    s.process->setProgram(s.binary);
    s.process->setArguments({QStringLiteral("--config"), m_configDir});
    if (s.spec.engine && !prepareEngine(s)) {
        s.process.reset();
        s.upSince.start();
        onFinished(s, -1, QProcess::CrashExit);
        return;
    }
    Service* raw = &s;
    connect(s.process.get(), &QProcess::finished, this,
            [this, raw](int code, QProcess::ExitStatus st) { onFinished(*raw, code, st); });
    connect(s.process.get(), &QProcess::readyReadStandardError, this, [raw] { passOnStderr(*raw); });
    connect(s.process.get(), &QProcess::errorOccurred, this, [this, raw](QProcess::ProcessError e) {
        if (e == QProcess::FailedToStart) onFinished(*raw, -1, QProcess::CrashExit);
    });
    s.state = State::Starting;
    s.startedAt = QDateTime::currentDateTimeUtc();
    s.upSince.start();
    s.readyDeadlineMs = s.spec.engine ? 180'000 : 60'000;  // rspamd compiles its rules and TLD list at start
    s.process->start();
    log::info(u"supervisor.start", log::Fields().add("service", s.spec.program).add("binary", s.binary));
    s.readyPoll.start();
    writeState();
}

// The engine's generated configuration from the current postern.conf (at its start, and
// at a reload before its SIGHUP, so settings such as spam.bayes_min_learns take effect
// without a restart).
Status Supervisor::writeEngineConfig(const Service& s, const UserIds& ids) const {
    if (s.spec.program == u"unbound") return writeResolverConfig(m_config, resolverPaths(m_config, m_configDir), ids);
    return writeSpamEngineConfig(m_config, spamPaths(m_config, m_configDir), ids);
}

// An engine's configuration from postern.conf, its command line, and a child that drops
// root and creates the engine's folders as the daemon user before exec.
bool Supervisor::prepareEngine(Service& s) {
    const SpamPaths paths = spamPaths(m_config, m_configDir);
    const ResolverPaths dnsPaths = resolverPaths(m_config, m_configDir);
    const bool resolver = s.spec.program == u"unbound";
    UserIds ids;
    if (::geteuid() == 0) {
        auto looked = lookupUser(get(m_config, keys::general::systemUser));
        if (!looked) {
            s.lastError = looked.errorMessage();
            log::error(u"supervisor.engine_config",
                       log::Fields().add("service", s.spec.program).add("error", s.lastError));
            return false;
        }
        ids = *looked;
        // The data and run folders belong to the daemon user before the engine (as that user)
        // creates its folders in them; the daemons do the same at their start.
        if (auto st = handOverStateToUser(m_config, get(m_config, keys::general::systemUser)); !st) {
            s.lastError = st.errorMessage();
            log::error(u"supervisor.engine_config",
                       log::Fields().add("service", s.spec.program).add("error", s.lastError));
            return false;
        }
    }
    if (auto st = writeEngineConfig(s, ids); !st) {
        s.lastError = st.errorMessage();
        log::error(u"supervisor.engine_config", log::Fields().add("service", s.spec.program).add("error", s.lastError));
        return false;
    }
    const QStringList arguments = resolver                            ? unboundCommand(dnsPaths).arguments
                                  : s.spec.program == u"redis-server" ? redisCommand(paths).arguments
                                                                      : rspamdCommand(paths).arguments;
    s.process->setArguments(arguments);
    s.process->setWorkingDirectory(QStringLiteral("/"));
    // Prepared now: only async-signal-safe calls run in the child.
    auto folders = std::make_shared<QList<QByteArray>>();
    if (resolver) *folders << QFile::encodeName(dnsPaths.runDir);
    for (const QString& f : spamEngineFolders(s.spec.program, paths)) *folders << QFile::encodeName(f);
    (void)removeFile(engineSocket(s.spec.program));
    s.process->setChildProcessModifier([ids, folders]() {
        if (ids.uid >= 0) {
            const gid_t gid = gid_t(ids.gid);
            if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(uid_t(ids.uid)) != 0 || ::setuid(0) == 0)
                ::_exit(126);
        }
        ::umask(027);
        for (const QByteArray& f : *folders)
            if (::mkdir(f.constData(), 0750) != 0 && errno != EEXIST) ::_exit(125);
    });
    return true;
}

// The unix socket whose accepting connections means an engine is ready.
QString Supervisor::engineSocket(const QString& program) const {
    if (program == u"unbound") return resolverEngineSocket(resolverPaths(m_config, m_configDir));
    return spamEngineSocket(program, spamPaths(m_config, m_configDir));
}

void Supervisor::checkReady(Service& s) {
    if (!s.process || s.state != State::Starting) {
        s.readyPoll.stop();
        return;
    }
    // An engine is ready when its socket accepts; a daemon when its ready file names its pid.
    bool ready = false;
    if (s.spec.engine) {
        ready = socketAccepts(engineSocket(s.spec.program));
    } else if (const auto bytes = readFile(readyFilePath(m_config, s.spec.program), kMaxReadyFileBytes)) {
        // Read as root from the daemon user's run_dir: readFile refuses links, FIFOs and hard links there.
        const QJsonObject o = QJsonDocument::fromJson(*bytes).object();
        if (o.value(QStringLiteral("pid")).toInteger() == s.process->processId()) {
            ready = true;
            s.listeners.clear();
            const QJsonObject l = o.value(QStringLiteral("listeners")).toObject();
            for (auto it = l.begin(); it != l.end(); ++it) {
                QStringList addrs;
                for (const QJsonValue& v : it.value().toArray()) addrs << v.toString();
                s.listeners.insert(it.key(), addrs);
            }
        }
    }
    if (ready) {
        s.readyPoll.stop();
        s.state = State::Ready;
        log::info(u"supervisor.ready",
                  log::Fields().add("service", s.spec.program).add("pid", qint64(s.process->processId())));
        writeState();
        return;
    }
    if (s.upSince.elapsed() > s.readyDeadlineMs) {
        log::error(u"supervisor.not_ready",
                   log::Fields().add("service", s.spec.program).add("after_ms", s.upSince.elapsed()));
        s.readyPoll.stop();
        s.process->kill();  // onFinished restarts it with back-off
    }
}

void Supervisor::passOnStderr(Service& s) {
    if (!s.process) return;
    const QByteArray chunk = s.process->readAllStandardError();
    writeAllStderr(chunk);
    // Keep the last complete non-empty line (bounded: a line longer than kMaxErrorLine is cut).
    s.stderrPartial += chunk;
    for (qsizetype nl; (nl = s.stderrPartial.indexOf('\n')) >= 0;) {
        const QByteArray line = s.stderrPartial.left(nl).trimmed();
        s.stderrPartial.remove(0, nl + 1);
        if (!line.isEmpty()) s.lastError = QString::fromUtf8(line.left(kMaxErrorLine));
    }
    if (s.stderrPartial.size() > kMaxErrorLine) s.stderrPartial = s.stderrPartial.right(kMaxErrorLine);
}

void Supervisor::onFinished(Service& s, int code, QProcess::ExitStatus status) {
    s.readyPoll.stop();
    const qint64 ranMs = s.upSince.isValid() ? s.upSince.elapsed() : 0;
    const bool wasReady = s.state == State::Ready;
    if (s.process) {
        passOnStderr(s);
        if (!s.stderrPartial.trimmed().isEmpty())
            s.lastError = QString::fromUtf8(s.stderrPartial.trimmed().left(kMaxErrorLine));
        s.process->disconnect(this);
        s.process.release()->deleteLater();
    }
    (void)removeFile(readyFilePath(m_config, s.spec.program));
    if (m_stopping || s.disableOnExit) {
        s.state = m_stopping ? State::Stopped : State::Disabled;
        s.disableOnExit = false;
        writeState();
        return;
    }
    if (ranMs > 60'000) s.backoffMs = 1000;  // it ran well; start the back-off over
    ++s.restarts;
    s.state = State::Backoff;
    log::Fields fields;
    fields.add("service", s.spec.program)
        .add("code", code)
        .add("crashed", status == QProcess::CrashExit)
        .add("ran_ms", ranMs)
        .add("restart_in_ms", s.backoffMs);
    // A daemon that exits before it was ready refused to start: its last stderr line says why.
    if (!wasReady && !s.lastError.isEmpty()) fields.add("error", s.lastError);
    log::error(u"supervisor.exited", fields);
    s.backoffTimer.start(int(s.backoffMs));
    s.backoffMs = std::min<qint64>(s.backoffMs * 2, 60'000);
    writeState();
}

void Supervisor::writeState() {
    QJsonObject root;
    root.insert(QStringLiteral("pid"), qint64(::getpid()));
    root.insert(QStringLiteral("updated"), QDateTime::currentDateTimeUtc().toString(Qt::ISODate));
    QJsonArray services;
    QJsonObject allListeners;
    bool allReady = m_launched;  // not before every service of the table was looked at
    for (const auto& s : m_services) {
        QJsonObject o;
        o.insert(QStringLiteral("name"), s->spec.program);
        o.insert(QStringLiteral("state"), toString(s->state));
        o.insert(QStringLiteral("restarts"), s->restarts);
        if (s->process) o.insert(QStringLiteral("pid"), qint64(s->process->processId()));
        if (s->state == State::Ready) o.insert(QStringLiteral("since"), s->startedAt.toString(Qt::ISODate));
        if (s->state == State::Backoff && !s->lastError.isEmpty()) o.insert(QStringLiteral("error"), s->lastError);
        QJsonObject l;
        for (auto it = s->listeners.cbegin(); it != s->listeners.cend(); ++it) {
            l.insert(it.key(), QJsonArray::fromStringList(it.value()));
            allListeners.insert(it.key(), QJsonArray::fromStringList(it.value()));
        }
        o.insert(QStringLiteral("listeners"), l);
        services.append(o);
        // The appliance is ready when Postern's listeners answer; a slow rspamd start (rules,
        // TLD list) does not hold that back: meanwhile mail is accepted per spam.on_failure.
        if (!s->spec.engine && (s->state == State::Starting || s->state == State::Backoff)) allReady = false;
    }
    root.insert(QStringLiteral("services"), services);
    root.insert(QStringLiteral("block_nftables"), m_blockSync.status());
    const QByteArray json = QJsonDocument(root).toJson(QJsonDocument::Compact) + '\n';
    if (auto st = writeFileAtomic(m_config.runDir() + QStringLiteral("/postern-appliance.status"), json, 0644); !st)
        log::warn(u"supervisor.status_write", log::Fields().add("error", st.errorMessage()));
    if (allReady && !m_announcedReady && !m_stopping) {
        m_announcedReady = true;
        QJsonObject ready;
        ready.insert(QStringLiteral("pid"), qint64(::getpid()));
        ready.insert(QStringLiteral("listeners"), allListeners);
        ready.insert(QStringLiteral("services"), services);
        if (auto st = writeFileAtomic(m_config.runDir() + QStringLiteral("/postern-appliance.ready"),
                                      QJsonDocument(ready).toJson(QJsonDocument::Compact) + '\n', 0644);
            !st)
            log::warn(u"supervisor.ready_write", log::Fields().add("error", st.errorMessage()));
        log::info(u"supervisor.all_ready");
    }
}

void Supervisor::stop(std::function<void()> done) {
    m_stopping = true;
    (void)removeFile(m_config.runDir() + QStringLiteral("/postern-appliance.ready"));
    for (const auto& s : m_services) {
        s->backoffTimer.stop();
        s->readyPoll.stop();
        if (s->process && s->process->state() != QProcess::NotRunning) s->process->terminate();
    }
    auto* poll = new QTimer(this);
    auto clock = std::make_shared<QElapsedTimer>();
    clock->start();
    poll->setInterval(50);
    connect(poll, &QTimer::timeout, this, [this, poll, clock, done] {
        bool running = false;
        for (const auto& s : m_services)
            if (s->process && s->process->state() != QProcess::NotRunning) running = true;
        if (running && clock->elapsed() < 15'000) return;
        for (const auto& s : m_services)
            if (s->process && s->process->state() != QProcess::NotRunning) {
                log::warn(u"supervisor.kill", log::Fields().add("service", s->spec.program));
                s->process->kill();
                s->process->waitForFinished(2000);
            }
        poll->stop();
        poll->deleteLater();
        m_blockSync.shutdown();  // the table goes with us (its elements would expire by themselves)
        writeState();
        done();
    });
    poll->start();
}

void Supervisor::reload() {
    auto fresh = Config::load(m_configDir);
    if (!fresh) {
        log::error(u"supervisor.reload_refused", log::Fields().add("error", fresh.errorMessage()));
        return;
    }
    QStringList restartKeys;
    for (const Setting& st : Schema::instance().all())
        if (st.restart && fresh->value(st.key) != m_config.value(st.key)) restartKeys << st.key;
    m_config = std::move(*fresh);
    log::setMinLevel(log::levelFromString(get(m_config, keys::log::level)));
    log::info(u"supervisor.reload", log::Fields().add("restart_settings", restartKeys.join(QLatin1Char(','))));
    m_blockSync.configure(m_config);
    for (const auto& s : m_services) {
        const bool wanted = enabled(s->spec) && !s->binary.isEmpty();
        bool restart = false;
        for (const QString& k : restartKeys)
            if (s->spec.listenerKeys.contains(k) || !k.endsWith(QStringLiteral(".listen"))) restart = true;
        if (s->process && s->process->state() != QProcess::NotRunning) {
            if (!wanted || restart) {
                // Stop; onFinished schedules a restart unless it is now disabled.
                s->restarts -= 1;  // a planned restart is not a crash
                s->backoffMs = 100;
                s->disableOnExit = !wanted;
                s->process->terminate();
            } else {
                // An engine reads its generated configuration again at SIGHUP (rspamd, unbound;
                // redis-server ignores the signal): write it from the new settings first.
                if (s->spec.engine) {
                    UserIds ids;
                    Status st;
                    if (::geteuid() == 0) {
                        auto looked = lookupUser(get(m_config, keys::general::systemUser));
                        if (looked)
                            ids = *looked;
                        else
                            st = looked.error();
                    }
                    if (st) st = writeEngineConfig(*s, ids);
                    if (!st)
                        log::error(u"supervisor.engine_config",
                                   log::Fields().add("service", s->spec.program).add("error", st.errorMessage()));
                }
                ::kill(pid_t(s->process->processId()), SIGHUP);
            }
        } else if (wanted && s->state == State::Disabled) {
            launch(*s);
        }
    }
    m_launched = true;
    writeState();
}

void Supervisor::reapOrphans() {
    // PID 1 inherits orphans; reap them, but never a child QProcess is waiting for.
    for (;;) {
        siginfo_t info{};
        if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
        bool ours = false;
        for (const auto& s : m_services)
            if (s->process && s->process->processId() == info.si_pid) ours = true;
        if (m_maintenanceProcess && m_maintenanceProcess->processId() == info.si_pid) ours = true;
        if (m_backupProcess && m_backupProcess->processId() == info.si_pid) ours = true;
        if (m_blockSync.processId() == info.si_pid) ours = true;
        if (ours) return;  // QProcess collects it
        ::waitpid(info.si_pid, nullptr, WNOHANG);
    }
}

}  // namespace postern
