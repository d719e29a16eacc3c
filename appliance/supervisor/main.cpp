// main.cpp — postern-appliance: the supervisor (see supervisor.h).
// Usage: postern-appliance [--config DIR]. Runs in the foreground (PID 1 in
// the container, a systemd service in the VM); logs to stderr and mail.log.
//
// Security:
//   Exposes: no port and no network input. Its inputs are the configuration,
//   signals, the daemons' exit status and stderr, and their ready files in
//   run_dir (which the daemon user owns).
//   Runs as: root, all its life (it starts the daemons as root so they can bind
//   ports below 1024, and restarts them; it starts `posternctl cert renew
//   --if-due` twice a day and `posternctl backup run --if-due` hourly when a
//   restic repository is set).
//   Writes: run/postern-appliance.status and .ready and mail.log, in folders the
//   daemon user owns, only through core/atomic_file.h and core/log.h, which as
//   root reach them by SafeDir (core/safe_path.h): a link, hard link or FIFO put
//   there is refused, never followed (a refused mail.log means stderr only).
//   Ready files are read the same way (a FIFO cannot block it).
//   Reads <data_dir>/postern-data-version (through SafeDir) and refuses to start
//   (exit 1) on data of a newer format (core/data_version.h); the daemons, not
//   root, migrate older data.
//   An attacker who controls it is root. It parses no network data, and what it
//   reads from the daemon user's folders decides nothing but its own display.
#include "supervisor.h"

#include "core/unix_signals.h"

#include "core/data_version.h"
#include "core/log.h"
#include "core/process.h"

#include <QCoreApplication>
#include <QTextStream>

using namespace postern;

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments();
    for (qsizetype i = 1; i < args.size(); ++i) {
        if (args.at(i) == u"--help" || args.at(i) == u"-h") {
            QTextStream(stdout)
                << "usage: postern-appliance [--config DIR]\nStarts the Postern daemons and keeps them running.\n";
            return 0;
        }
        if (args.at(i) == u"--version") {
            QTextStream(stdout) << "postern-appliance " << POSTERN_VERSION << "\n";
            return 0;
        }
        if (args.at(i) == u"--config" || args.at(i) == u"-c")
            ++i;
        else if (!args.at(i).startsWith(u"--config=")) {
            QTextStream(stderr) << "postern-appliance: unknown argument " << args.at(i) << "\n";
            return 2;
        }
    }
    const QString configDir = resolveConfigDir(args);
    auto config = Config::load(configDir);
    if (!config) {
        QTextStream(stderr) << "postern-appliance: " << config.errorMessage() << "\n";
        return 78;
    }
    // A log file root must not write through (a link planted in log_dir) is refused and
    // said on stderr; the supervisor keeps running and logs to stderr only.
    (void)initDaemonLogging(*config, QStringLiteral("postern-appliance"));
    // Data of a newer Postern: start nothing (the daemons would refuse one by one, forever).
    if (auto st = checkDataVersion(*config); !st) {
        log::error(u"supervisor.refused", log::Fields().add("error", st.errorMessage()));
        QTextStream(stderr) << "postern-appliance: " << st.errorMessage() << "\n";
        return 1;
    }
    log::info(u"supervisor.starting", log::Fields().add("config", configDir).add("pid1", ::getpid() == 1));
    Supervisor supervisor(configDir, *config);
    UnixSignals* sigs = UnixSignals::install(&app);
    bool stopping = false;
    QObject::connect(sigs, &UnixSignals::terminateRequested, &app, [&](int sig) {
        if (stopping) return;
        stopping = true;
        log::info(u"supervisor.stopping", log::Fields().add("signal", sig));
        supervisor.stop([&] {
            log::info(u"supervisor.stopped");
            app.quit();
        });
    });
    QObject::connect(sigs, &UnixSignals::reloadRequested, &app, [&] { supervisor.reload(); });
    supervisor.start();
    return app.exec();
}
