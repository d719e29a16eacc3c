// supervisor.h — postern-appliance: starts and watches the daemons.
//
// The service table is the core's (core/services.h): the programs to start,
// in order, whether one runs without listeners (the outbound queue runner),
// and, from the listener table, the listener settings each serves (a daemon
// whose listeners are all empty is not started). For each service the
// supervisor finds the binary ($POSTERN_LIBEXEC, its own folder, ../libexec/
// postern, /usr/libexec/postern), starts it with --config, waits for its
// ready file (<run_dir>/<program>.ready with the child's pid), restarts it
// with back-off (1 s doubling to 60 s; reset after 60 s of healthy running)
// when it dies, and says so in the log. A missing binary is reported per
// service and never counted as running.
// Signals: SIGTERM/SIGINT stop everything (TERM, then KILL after a grace
// period); SIGHUP re-reads the configuration — an invalid one is refused and
// logged, the old one keeps running — then forwards SIGHUP, restarting
// daemons whose restart-only settings changed.
// As PID 1 (container): reaps orphaned processes without touching the
// children QProcess waits for (waitid with WNOWAIT first).
// Schedules (each a short-lived `posternctl` process as root, never two at once):
// `cert renew --if-due` twice a day (5 minutes after start, then every 12 h) and
// `backup run --if-due` every hour (10 minutes after start) when
// backup.restic_repository is set; posternctl decides whether the backup is due
// and records the result for `posternctl backup status`. Their results are logged
// (supervisor.cert_renew[_failed], supervisor.backup[_failed]). The environment
// variable POSTERN_SCHEDULE_DELAY_MS (used by the tests) shortens the first wait.
// The engines (rows with `engine`): the bundled resolver unbound (dns.resolver = bundled and no
// dns.servers; core/resolver_engine.h) and the spam filter's redis-server and rspamd (only when
// spam.enabled): before each start the supervisor rewrites their configuration from postern.conf
// (core/resolver_engine.h, core/spam_engine.h), starts
// them as system_user (root is dropped in the child before exec; the child also creates
// their state and socket folders, so root never writes below the daemon user's folders),
// and counts them ready when their unix socket accepts a connection.
// With auth.block_nftables the temporary block list is mirrored into the nftables table
// `inet postern_block` (block_sync.h), re-applied when the file changes, deleted on stop and
// when the setting is turned off; its state is "block_nftables" in the status file.
// State for `posternctl status`: <run_dir>/postern-appliance.status (JSON),
// and <run_dir>/postern-appliance.ready once every service is ready.
// A daemon's stderr is passed on to ours; its last line is kept, so a daemon
// that exits before it is ready (e.g. "cannot write /x/data/mail as user
// postern ...") is logged as supervisor.exited with error="<that line>" and
// shown as "error" in the status file until it runs again.
//
// Security: runs as root for its whole life (it must start the daemons as
// root so they can bind ports below 1024). It reads the daemons' ready files
// and writes its own status/ready files and mail.log in folders the daemon
// user owns: all of it goes through core/atomic_file.h and core/log.h, which
// reach those folders by SafeDir (core/safe_path.h) when running as root, so a
// link, hard link or FIFO the daemon user plants there is refused, never
// followed. Limits: a ready file is read up to kMaxReadyFileBytes; a kept
// stderr line up to kMaxErrorLine bytes.
#pragma once

#include "block_sync.h"

#include "core/config.h"
#include "core/process.h"

#include <QDateTime>
#include <QElapsedTimer>
#include <QMap>
#include <QObject>
#include <QPointer>
#include <QProcess>
#include <QStringList>
#include <QTimer>
#include <memory>

namespace postern {

inline constexpr qint64 kMaxReadyFileBytes = 64 * 1024;
inline constexpr qsizetype kMaxErrorLine = 1000;

// One row of the core's service table with the listener settings that enable it.
struct ServiceSpec {
    QString program;
    QStringList listenerKeys;  // e.g. {"smtp.listen", ...}
    bool withoutListeners = false;
    QString enabledBy;    // Bool setting that must be true ("spam.enabled"), or empty
    bool engine = false;  // redis-server / rspamd: generated config, ready when its socket accepts
};
QList<ServiceSpec> serviceTable();

class Supervisor : public QObject {
    Q_OBJECT
public:
    Supervisor(QString configDir, Config config, QObject* parent = nullptr);
    ~Supervisor() override;
    void start();
    void stop(std::function<void()> done);
    void reload();

    enum class State { Missing, Disabled, Starting, Ready, Backoff, Stopped };
    static QString toString(State s);

private:
    struct Service {
        ServiceSpec spec;
        QString binary;
        std::unique_ptr<QProcess> process;
        State state = State::Stopped;
        int restarts = 0;
        qint64 backoffMs = 1000;
        QElapsedTimer upSince;
        QDateTime startedAt;
        QMap<QString, QStringList> listeners;
        QTimer readyPoll;
        QTimer backoffTimer;
        qint64 readyDeadlineMs = 0;
        bool disableOnExit = false;  // stopped by a reload that disabled it: do not restart
        QString lastError;           // last non-empty stderr line of the current/last run
        QByteArray stderrPartial;    // an unfinished stderr line
    };
    static void passOnStderr(Service& s);
    QString findBinary(const QString& program) const;
    bool enabled(const ServiceSpec& s) const;
    void launch(Service& s);
    void onFinished(Service& s, int code, QProcess::ExitStatus status);
    void checkReady(Service& s);
    QString engineSocket(const QString& program) const;
    bool prepareEngine(Service& s);
    Status writeEngineConfig(const Service& s, const UserIds& ids) const;
    void writeState();
    void reapOrphans();

    QString m_configDir;
    Config m_config;
    QList<std::shared_ptr<Service>> m_services;
    bool m_stopping = false;
    bool m_announcedReady = false;
    bool m_launched = false;  // start() went through the whole service table
    QTimer m_reaper;
    QTimer m_maintenance;                     // twice a day: posternctl cert renew --if-due (ACME)
    QPointer<QProcess> m_maintenanceProcess;  // not to be reaped as an orphan
    void runMaintenance();
    QTimer m_backup;  // hourly: posternctl backup run --if-due (restic; acts once backup.interval passed)
    QPointer<QProcess> m_backupProcess;
    void runBackup();
    QString findCtl() const;
    BlockSync m_blockSync;  // auth.block_nftables: the block list as an nftables set
};

}  // namespace postern
