// daemon_main.cpp — see daemon_main.h.
#include "daemon_main.h"

#include "core/block_list.h"

#include "authenticator.h"
#include "core/unix_signals.h"
#include "shared_counters.h"
#include "workers.h"

#include "core/accounts.h"
#include "core/data_version.h"
#include "core/log.h"
#include "core/process.h"
#include "core/services.h"
#include "core/setting_keys.h"
#include "core/stats.h"

#include <QCoreApplication>
#include <QFile>
#include <QTextStream>
#include <QTimer>

#include <unistd.h>
#include <optional>

namespace postern {

namespace {
constexpr int kExitConfig = 78;  // EX_CONFIG
constexpr int kGraceMs = 10'000;

// Step 3b's objects. Static, like the daemons' own objects that refer to them: work still
// running on the thread pool while the application object goes away may use them.
struct Bootstrap {
    std::unique_ptr<AccountStore> accounts;
    std::unique_ptr<Authenticator> auth;
    std::unique_ptr<BlockList> blockList;  // with AccountUse::Authenticate
};

Bootstrap& bootstrap() {
    static Bootstrap b;
    return b;
}

// --help, --version and unknown arguments: the exit status; nullopt to go on.
std::optional<int> handleArguments(const QStringList& args, const DaemonSpec& spec) {
    for (qsizetype i = 1; i < args.size(); ++i) {
        const QString& a = args.at(i);
        if (a == u"--help" || a == u"-h") {
            const ServiceInfo* service = findService(spec.program);
            QTextStream(stdout) << "usage: " << spec.program << " [--config DIR]\n"
                                << (service ? service->description : QString()) << "\n";
            return 0;
        }
        if (a == u"--version") {
            QTextStream(stdout) << spec.program << " " << POSTERN_VERSION << "\n";
            return 0;
        }
        if (a == u"--config" || a == u"-c") {
            ++i;
            continue;
        }
        if (a.startsWith(u"--config=")) continue;
        QTextStream(stderr) << spec.program << ": unknown argument " << a << "\n";
        return 2;
    }
    return std::nullopt;
}

// Step 3b: the accounts (and the authenticator) every daemon that needs them loads the same way.
Result<DaemonContext> loadBootstrap(Config& config, const DaemonSpec& spec) {
    DaemonContext ctx{config, spec.program};
    if (spec.accounts == AccountUse::None) return ctx;
    Bootstrap& b = bootstrap();
    b.accounts = std::make_unique<AccountStore>(config.configDir());
    QString error;
    b.accounts->current(AccountStore::Freshness::Exact, &error);
    if (!error.isEmpty()) return Result<DaemonContext>::fail(QStringLiteral("accounts: %1").arg(error));
    ctx.accounts = b.accounts.get();
    if (spec.accounts == AccountUse::Authenticate) {
        b.auth = std::make_unique<Authenticator>(config, b.accounts.get());
        ctx.auth = b.auth.get();
        b.blockList = std::make_unique<BlockList>(BlockList::pathIn(config.dataDir()));
        b.auth->setBlockList(b.blockList.get());
    }
    return ctx;
}

// Steps 5 and 5b: root only binds. The state goes to system_user, root is dropped, every folder
// the daemon writes is checked, and files shared with the other daemons are opened as that user.
Status becomeDaemonUser(const Config& config, const DaemonSpec& spec) {
    if (::geteuid() == 0) {
        const QString user = get(config, keys::general::systemUser);
        Status st = handOverStateToUser(config, user);
        if (st) st = dropPrivileges(user);
        if (!st) return st;
    }
    // Not ready unless every folder this daemon writes takes a new file (issue 16, defect 10):
    // a daemon that cannot store must not accept mail only to answer 451 to all of it.
    QStringList folders{config.runDir(), config.logDir()};
    if (spec.writableFolders) folders << spec.writableFolders(config);
    folders.removeDuplicates();
    for (const QString& folder : std::as_const(folders))
        if (auto st = checkFolderWritable(folder); !st) return st;
    // As the daemon user: files a migration step makes are that user's (core/data_version.h).
    if (auto migrated = migrateDataFolder(config); !migrated) return migrated.error();
    // The throttle file is in run_dir, which the daemon user owns: mapped as that user, never as root.
    if (Authenticator* auth = bootstrap().auth.get())
        if (auto t = auth->openSharedThrottle(); !t)
            log::warn(u"auth.throttle_not_shared", log::Fields().add("error", t.errorMessage()));
    if (spec.started)
        if (auto st = spec.started(); !st) return st;
    return {};
}

// SIGHUP: re-read the configuration; an invalid one is refused and the old one stays.
void reloadConfiguration(const QString& configDir, Config& config, const DaemonSpec& spec, DaemonServer* srv,
                         WorkerPool* workers) {
    auto fresh = Config::load(configDir);
    if (!fresh) {
        log::error(u"reload.refused", log::Fields().add("error", fresh.errorMessage()));
        return;
    }
    QStringList restartNeeded;
    for (const Setting& s : Schema::instance().all())
        if (s.restart && fresh->value(s.key) != config.value(s.key)) restartNeeded << s.key;
    if (!restartNeeded.isEmpty())
        log::warn(u"reload.restart_needed", log::Fields().add("settings", restartNeeded.join(QLatin1Char(','))));
    config = std::move(*fresh);
    log::setMinLevel(log::levelFromString(get(config, keys::log::level)));
    if (auto st = srv->reloadTls(); !st)
        log::error(u"reload.tls_failed", log::Fields().add("error", st.errorMessage()));
    if (Authenticator* auth = bootstrap().auth.get()) auth->applyConfig();
    if (spec.reloaded) spec.reloaded(srv);
    if (workers) workers->reload();
    log::info(u"reloaded");
}

// Step 6: more processes on the same sockets (workers.h) when spec.processesSetting asks for
// them; limits are then counted in a shared file. Null when this process is the only one.
Result<std::unique_ptr<WorkerPool>> startWorkers(const Config& config, const DaemonSpec& spec, const WorkerRole& role,
                                                 DaemonServer& server, const QStringList& args) {
    const int processes = spec.processesSetting.isEmpty()
                              ? 1
                              : resolveProcessCount(config.integer(spec.processesSetting), SharedCounters::kColumns);
    std::unique_ptr<WorkerPool> workers;
    if (processes > 1 || role.isWorker()) {
        const QString countsPath = config.runDir() + QLatin1Char('/') + spec.program + QStringLiteral(".counts");
        if (auto st = SharedCounters::process().open(countsPath, role.index, !role.isWorker()); !st) return st.error();
    }
    if (!role.isWorker() && processes > 1) {
        workers = std::make_unique<WorkerPool>(QCoreApplication::applicationFilePath(), args.mid(1),
                                               server.listenerDescriptors(), processes);
        if (auto st = workers->start(); !st)
            log::error(u"workers.failed", log::Fields().add("error", st.errorMessage()));
    }
    return workers;
}

// Step 4: the daemon's objects (spec.create) on the listeners, started.
Result<DaemonServer*> createServer(DaemonContext& ctx, const DaemonSpec& spec, const WorkerRole& role,
                                   QCoreApplication* app) {
    auto server = spec.create(ctx, app);
    if (!server) return server.error();
    if (role.isWorker()) (*server)->adoptListeners(role.listenFds);
    if (BlockList* blocks = bootstrap().blockList.get()) (*server)->setBlockList(blocks);
    // Sessions of accounts disabled (or removed) while logged in are closed (daemon_server.h).
    if (spec.accounts == AccountUse::Authenticate) (*server)->setAccounts(ctx.accounts);
    if (auto st = (*server)->start(); !st) return st.error();
    return *server;
}

// Counters for /metrics: <run_dir>/<program>.stats (a worker's: <program>.worker<N>.stats).
QString statsFilePath(const Config& config, const DaemonSpec& spec, const WorkerRole& role) {
    return config.runDir() + QLatin1Char('/') + spec.program +
           (role.isWorker() ? QStringLiteral(".worker%1.stats").arg(role.index) : QStringLiteral(".stats"));
}

// Writes the counters now and every 5 s while `timer` lives (runDaemon writes them at exit too).
void keepStatsFile(QTimer& timer, QCoreApplication& app, const QString& path, const QString& program) {
    timer.setInterval(5000);
    QObject::connect(&timer, &QTimer::timeout, &app, [path, program] { (void)stats::writeFile(path, program); });
    timer.start();
    (void)stats::writeFile(path, program);
}

}  // namespace

// The steps are in daemon_main.h; each longer one is a function above. What is left here
// is their order and the objects that live as long as the event loop.
int runDaemon(int argc, char** argv, const DaemonSpec& spec) {
    auto role = workerRoleFromEnvironment();
    if (!role) {
        QTextStream(stderr) << spec.program << ": " << role.errorMessage() << "\n";
        return 1;
    }
    QCoreApplication app(argc, argv);
    app.setApplicationName(spec.program);
    const QStringList args = app.arguments();
    if (const auto exit = handleArguments(args, spec)) return *exit;
    QTextStream err(stderr);
    const QString configDir = resolveConfigDir(args);
    auto loaded = Config::load(configDir);
    if (!loaded) {
        err << spec.program << ": " << loaded.errorMessage() << "\n";
        return kExitConfig;
    }
    Config config = std::move(*loaded);
    if (auto st = initDaemonLogging(config, spec.program); !st) {
        // As root a link or hard link in place of mail.log (or of log_dir) is refused: say so, do not start.
        err << spec.program << ": " << st.errorMessage() << "\n";
        return 1;
    }
    auto startFailed = [&](const QString& message) {
        log::error(u"start.failed", log::Fields().add("error", message));
        err << spec.program << ": " << message << "\n";
        err.flush();
        return 1;
    };
    // Data written by a newer Postern is not touched (core/data_version.h).
    if (auto st = checkDataVersion(config); !st) return startFailed(st.errorMessage());
    auto ctx = loadBootstrap(config, spec);
    if (!ctx) return startFailed(ctx.errorMessage());
    auto server = createServer(*ctx, spec, *role, &app);
    if (!server) return startFailed(server.errorMessage());
    // Before "ready": a signal that comes from then on is handled (queued until the loop runs).
    UnixSignals* unixSignals = UnixSignals::install(&app);
    if (auto st = becomeDaemonUser(config, spec); !st) return startFailed(st.errorMessage());
    auto started = startWorkers(config, spec, *role, **server, args);
    if (!started) return startFailed(started.errorMessage());
    std::unique_ptr<WorkerPool> workers = std::move(*started);
    if (!role->isWorker()) {
        if (auto st = writeReadyFile(config, spec.program, (*server)->listenerAddresses()); !st)
            log::warn(u"ready_file.failed", log::Fields().add("error", st.errorMessage()));
    }
    log::info(u"ready",
              log::Fields().add("version", POSTERN_VERSION).add("config", configDir).add("process", role->index));

    DaemonServer* srv = *server;
    const QString statsPath = statsFilePath(config, spec, *role);
    QTimer statsTimer;
    keepStatsFile(statsTimer, app, statsPath, spec.program);
    bool stopping = false;
    QObject::connect(unixSignals, &UnixSignals::terminateRequested, &app, [&](int sig) {
        if (stopping) return;
        stopping = true;
        log::info(u"stopping", log::Fields().add("signal", sig));
        if (spec.stopping) spec.stopping();
        // Quit once our sessions and every worker are done.
        auto pending = std::make_shared<int>(workers ? 2 : 1);
        auto finish = [&, pending] {
            if (--*pending > 0) return;
            if (!role->isWorker()) QFile::remove(readyFilePath(config, spec.program));
            (void)stats::writeFile(statsPath, spec.program);
            log::info(u"stopped");
            app.quit();
        };
        if (workers) workers->stop(kGraceMs + 2000, finish);
        srv->shutdown(kGraceMs, finish);
    });
    QObject::connect(unixSignals, &UnixSignals::reloadRequested, &app,
                     [&] { reloadConfiguration(configDir, config, spec, srv, workers.get()); });
    return app.exec();
}

}  // namespace postern
