// commands_backup.cpp — posternctl backup create|verify|run|status, restore.
//   backup create DIR      a consistent snapshot of the running appliance into the
//                          new folder DIR (backup_snapshot.h): progress on a
//                          terminal, one summary line at the end.
//   backup verify DIR      every file against the manifest (size, SHA-256), every
//                          message's header, every folder's uidlist against its
//                          files, files nobody listed. Exit 1 on any problem.
//   restore DIR [--force] [--data-dir PATH]
//                          the snapshot onto this machine: the config folder
//                          (--config) and data_dir (the backup's, or PATH). An
//                          existing instance needs --force and is moved aside
//                          (<folder>.before-restore-<time>), never merged.
//   backup run [--if-due]  the scheduled off-site backup: a snapshot into
//                          backup.staging_dir, `restic backup` of it into
//                          backup.restic_repository (initialised when new), then
//                          `restic forget --prune` with the keep_* settings. The
//                          supervisor runs it with --if-due every hour; it acts
//                          once backup.interval has passed since the last success
//                          (an hour after a failure).
//   backup status          the last scheduled run (time, snapshot, sizes, error)
//                          and when the next is due; exit 1 when it failed or is
//                          overdue. `posternctl status` shows a failed or overdue
//                          backup as a warning line.
// State of the scheduled runs: <staging>/last-run.json (root-only folder 0700),
// written atomically; runs are serialised by an flock on <staging>/run.lock.
// Security: runs as root. The staging folder must be root's and not writable by
// others (checked, else refused); restic is started with the repository and the
// password *file* (never a password in argv or the environment), plus the
// KEY=VALUE lines of backup.restic_env_file. The snapshot's data part is written
// by a child as system_user (backup_snapshot.h).
#include "ctl.h"

#include "backup_snapshot.h"

#include "core/atomic_file.h"
#include "core/safe_path.h"
#include "core/setting_keys.h"

#include <QDateTime>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QStandardPaths>

#include <sys/stat.h>
#include <unistd.h>

namespace postern::ctl {

namespace {

QString mb(qint64 bytes) {
    return QStringLiteral("%1 MB").arg(double(bytes) / 1e6, 0, 'f', 1);
}

int backupCreate(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("backup create DIR"));
    QElapsedTimer t;
    t.start();
    auto sum = backup::createSnapshot(config, ctx.args.first(), STDERR_FILENO);
    if (!sum) return ctx.fail(sum.errorMessage());
    ctx.out << "backup " << QFileInfo(ctx.args.first()).absoluteFilePath() << ": " << sum->messages << " messages ("
            << mb(sum->messageBytes) << ") in " << sum->folders << " folders, " << sum->queued << " queued, "
            << sum->configFiles << " config files; " << sum->files << " files, " << mb(sum->bytes) << ", "
            << sum->hardLinks << " hard links, " << sum->copies << " copies, "
            << QString::number(double(t.elapsed()) / 1000, 'f', 1) << " s" << Qt::endl;
    if (sum->arrivedDuring > 0)
        ctx.out << sum->arrivedDuring << " message(s) delivered while the backup ran are left for the next one"
                << Qt::endl;
    return 0;
}

int backupVerify(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("backup verify DIR"));
    auto sum = backup::verifySnapshot(ctx.args.first(), STDERR_FILENO);
    if (!sum) return ctx.fail(sum.errorMessage());
    for (const QString& p : std::as_const(sum->problems)) ctx.out << "PROBLEM: " << p << Qt::endl;
    ctx.out << "verify " << QFileInfo(ctx.args.first()).absoluteFilePath() << ": "
            << (sum->problems.isEmpty() ? QStringLiteral("OK")
                                        : QStringLiteral("%1 problem(s)").arg(sum->problems.size()))
            << "; " << sum->files << " files (" << mb(sum->bytes) << "), " << sum->messages << " messages in "
            << sum->folders << " folders with messages, " << sum->queued << " queued" << Qt::endl;
    return sum->problems.isEmpty() ? 0 : 1;
}

int restore(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("restore DIR [--force] [--data-dir PATH]"));
    backup::RestoreOptions o;
    o.configDir = ctx.configDir;
    o.dataDir = ctx.opt(QStringLiteral("data-dir"));
    o.force = ctx.has(QStringLiteral("force"));
    QStringList moved;
    auto sum = backup::restoreSnapshot(ctx.args.first(), o, STDERR_FILENO, &moved);
    for (const QString& m : std::as_const(moved)) ctx.out << "kept the previous instance's folder as " << m << Qt::endl;
    if (!sum) return ctx.fail(sum.errorMessage());
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    ctx.out << "restored " << sum->messages << " messages (" << mb(sum->messageBytes) << "), " << sum->queued
            << " queued, " << sum->configFiles << " config files into " << QFileInfo(ctx.configDir).absoluteFilePath()
            << " and " << config.dataDir() << "; start the appliance (IMAP clients keep their UIDs)" << Qt::endl;
    return 0;
}

// ------------------------------------------------------------------ restic

QString stagingDir(const Config& config) {
    const QString s = get(config, keys::backup::stagingDir);
    return s.isEmpty() ? config.dataDir() + QStringLiteral(".backup") : s;
}

QJsonObject readState(const Config& config) {
    auto bytes = readFile(stagingDir(config) + QStringLiteral("/last-run.json"), 1 << 20);
    return bytes ? QJsonDocument::fromJson(*bytes).object() : QJsonObject();
}

// When the next scheduled run is due (invalid: now).
QDateTime nextDue(const Config& config, const QJsonObject& st) {
    const QDateTime lastOk = QDateTime::fromString(st.value(QStringLiteral("last_success")).toString(), Qt::ISODate);
    const QDateTime lastTry = QDateTime::fromString(st.value(QStringLiteral("finished")).toString(), Qt::ISODate);
    QDateTime due;
    if (lastOk.isValid())
        due = lastOk.addMSecs(get(config, keys::backup::interval) -
                              10 * 60 * 1000);  // the hourly check may come a bit early
    if (!st.value(QStringLiteral("ok")).toBool(true) && lastTry.isValid()) {
        const QDateTime retry = lastTry.addSecs(3600);
        if (!due.isValid() || retry < due) due = retry;
    }
    return due;
}

struct ResticRun {
    int code = -1;
    QByteArray out;
    QByteArray err;
};

ResticRun restic(const QProcessEnvironment& env, const QStringList& args) {
    ResticRun r;
    QProcess p;
    p.setProcessEnvironment(env);
    p.start(QStringLiteral("restic"), args);
    if (!p.waitForStarted(30000)) {
        r.err = "cannot start restic (is the restic package installed?)";
        return r;
    }
    p.closeWriteChannel();
    p.waitForFinished(-1);
    r.out = p.readAllStandardOutput();
    r.err = p.readAllStandardError();
    r.code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    return r;
}

QString lastLines(const QByteArray& text) {
    QStringList lines = QString::fromUtf8(text).trimmed().split(QLatin1Char('\n'));
    return lines.mid(std::max<qsizetype>(0, lines.size() - 3)).join(QStringLiteral(" | ")).left(800);
}

// The staging folder must be ours and closed to others (a folder of ours that is only too
// open is closed instead). Returns the error text, empty when fine.
QString checkStaging(const QString& staging) {
    if (auto st = ensureDirectory(staging, 0700); !st) return st.errorMessage();
    struct stat sst {};
    if (::lstat(QFile::encodeName(staging).constData(), &sst) != 0 || !S_ISDIR(sst.st_mode) ||
        sst.st_uid != ::geteuid() || (sst.st_mode & 077) != 0) {
        if (S_ISDIR(sst.st_mode) && sst.st_uid == ::geteuid())
            ::chmod(QFile::encodeName(staging).constData(), 0700);
        else
            return QStringLiteral("%1 must be a folder of the user running posternctl, not accessible to others")
                .arg(staging);
    }
    return {};
}

// restic's environment: ours, the KEY=VALUE lines of backup.restic_env_file, then the
// repository, the password file and the cache (never a password itself).
Result<QProcessEnvironment> resticEnvironment(const Config& config, const QString& repo, const QString& passwordFile,
                                              const QString& staging) {
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    const QString envFile = get(config, keys::backup::resticEnvFile);
    if (!envFile.isEmpty()) {
        auto text = readFile(envFile, 1 << 20);
        if (!text) return text.error();
        for (const QByteArray& line : text->split('\n')) {
            const QByteArray l = line.trimmed();
            const qsizetype eq = l.indexOf('=');
            if (l.isEmpty() || l.startsWith('#') || eq <= 0) continue;
            env.insert(QString::fromUtf8(l.left(eq).trimmed()), QString::fromUtf8(l.mid(eq + 1).trimmed()));
        }
    }
    env.insert(QStringLiteral("RESTIC_REPOSITORY"), repo);
    env.insert(QStringLiteral("RESTIC_PASSWORD_FILE"), passwordFile);
    env.insert(QStringLiteral("RESTIC_CACHE_DIR"), staging + QStringLiteral("/cache"));
    env.remove(QStringLiteral("RESTIC_PASSWORD"));
    env.remove(QStringLiteral("RESTIC_PASSWORD_COMMAND"));
    return env;
}

// `restic backup` of the snapshot folder; returns restic's summary object (empty on failure,
// with *error set).
QJsonObject resticBackup(const QProcessEnvironment& env, const QString& host, const QString& snapshot, QString* error) {
    // The snapshot folder is made anew each time (new inodes, ctimes of hard links): compare
    // files by path, size and time only, so unchanged messages are not read again.
    const ResticRun b =
        restic(env, {QStringLiteral("backup"), QStringLiteral("--json"), QStringLiteral("--ignore-inode"),
                     QStringLiteral("--ignore-ctime"), QStringLiteral("--host"), host, QStringLiteral("--tag"),
                     QStringLiteral("postern"), snapshot});
    QJsonObject summary;
    for (const QByteArray& line : b.out.split('\n')) {
        const QJsonObject o = QJsonDocument::fromJson(line).object();
        if (o.value(QStringLiteral("message_type")).toString() == u"summary") summary = o;
    }
    if (b.code != 0 || summary.isEmpty()) {
        *error = QStringLiteral("restic backup (exit %1): %2").arg(b.code).arg(lastLines(b.err + b.out));
        return {};
    }
    return summary;
}

// `restic forget --prune` with the keep_* settings.
ResticRun resticForget(const Config& config, const QProcessEnvironment& env, const QString& host) {
    QStringList forget{QStringLiteral("forget"), QStringLiteral("--prune"), QStringLiteral("--host"), host,
                       QStringLiteral("--tag"),  QStringLiteral("postern")};
    for (const char* k : {"daily", "weekly", "monthly"}) {
        const qint64 n = config.integer(QStringLiteral("backup.keep_") + QLatin1String(k));
        if (n > 0) forget << QStringLiteral("--keep-") + QLatin1String(k) << QString::number(n);
    }
    return restic(env, forget);
}

// What last-run.json keeps of a run that reached restic's summary.
QJsonObject runFacts(const QJsonObject& summary, const backup::Summary& sum) {
    QJsonObject extra;
    extra.insert(QStringLiteral("snapshot_id"), summary.value(QStringLiteral("snapshot_id")));
    extra.insert(QStringLiteral("data_added"), summary.value(QStringLiteral("data_added")));
    extra.insert(QStringLiteral("total_bytes"), summary.value(QStringLiteral("total_bytes_processed")));
    extra.insert(QStringLiteral("files_new"), summary.value(QStringLiteral("files_new")));
    extra.insert(QStringLiteral("files_changed"), summary.value(QStringLiteral("files_changed")));
    extra.insert(QStringLiteral("files_unmodified"), summary.value(QStringLiteral("files_unmodified")));
    extra.insert(QStringLiteral("messages"), sum.messages);
    extra.insert(QStringLiteral("queued"), sum.queued);
    return extra;
}

// One scheduled run, once its staging folder is locked: records its outcome in
// last-run.json and removes the snapshot folder whatever happens.
class BackupRun {
public:
    BackupRun(CtlContext& ctx, const Config& config, QString repo, QString staging, QJsonObject state)
        : m_ctx(ctx),
          m_config(config),
          m_repo(std::move(repo)),
          m_staging(std::move(staging)),
          m_state(std::move(state)),
          m_started(QDateTime::currentDateTimeUtc()) {
        m_clock.start();
    }

    int run(const QString& passwordFile) {
        const QString snapshot = m_staging + QStringLiteral("/snapshot");
        if (auto st = backup::removeTree(snapshot); !st) return finish(false, st.errorMessage(), {});
        auto sum =
            backup::createSnapshot(m_config, snapshot, m_ctx.has(QStringLiteral("progress")) ? STDERR_FILENO : -1);
        if (!sum) return finish(false, sum.errorMessage(), {});
        auto env = resticEnvironment(m_config, m_repo, passwordFile, m_staging);
        if (!env) return finish(false, env.errorMessage(), {});
        if (restic(*env, {QStringLiteral("cat"), QStringLiteral("config")}).code != 0) {
            const ResticRun init = restic(*env, {QStringLiteral("init")});
            if (init.code != 0)
                return finish(false, QStringLiteral("restic init: ") + lastLines(init.err + init.out), {});
            m_ctx.out << "initialised the restic repository " << m_repo << Qt::endl;
        }
        const QString host = m_config.hostname();
        QString error;
        const QJsonObject summary = resticBackup(*env, host, snapshot, &error);
        if (summary.isEmpty()) return finish(false, error, {});
        const ResticRun f = resticForget(m_config, *env, host);
        const QJsonObject extra = runFacts(summary, *sum);
        if (f.code != 0)
            return finish(false, QStringLiteral("restic forget --prune: ") + lastLines(f.err + f.out), extra);
        const int rc = finish(true, {}, extra);
        m_ctx.out << "backup " << summary.value(QStringLiteral("snapshot_id")).toString().left(8) << " in " << m_repo
                  << ": " << sum->messages << " messages, "
                  << mb(qint64(summary.value(QStringLiteral("total_bytes_processed")).toDouble())) << " processed, "
                  << mb(qint64(summary.value(QStringLiteral("data_added")).toDouble())) << " added" << Qt::endl;
        return rc;
    }

private:
    int finish(bool ok, const QString& error, const QJsonObject& extra) {
        m_state.insert(QStringLiteral("started"), m_started.toString(Qt::ISODate));
        m_state.insert(QStringLiteral("finished"), QDateTime::currentDateTimeUtc().toString(Qt::ISODate));
        m_state.insert(QStringLiteral("ok"), ok);
        m_state.insert(QStringLiteral("error"), error);
        m_state.insert(QStringLiteral("repository"), m_repo);
        m_state.insert(QStringLiteral("seconds"), double(m_clock.elapsed()) / 1000);
        for (auto it = extra.begin(); it != extra.end(); ++it) m_state.insert(it.key(), it.value());
        if (ok) m_state.insert(QStringLiteral("last_success"), m_state.value(QStringLiteral("finished")));
        (void)writeFileAtomic(m_staging + QStringLiteral("/last-run.json"), QJsonDocument(m_state).toJson(), 0600);
        (void)backup::removeTree(m_staging + QStringLiteral("/snapshot"));
        if (!ok) return m_ctx.fail(QStringLiteral("backup failed: %1").arg(error));
        return 0;
    }

    CtlContext& m_ctx;
    const Config& m_config;
    const QString m_repo, m_staging;
    QJsonObject m_state;
    const QDateTime m_started;
    QElapsedTimer m_clock;
};

int backupRun(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    const bool ifDue = ctx.has(QStringLiteral("if-due"));
    const QString repo = get(config, keys::backup::resticRepository);
    if (repo.isEmpty()) {
        if (ifDue) return 0;
        return ctx.fail(
            QStringLiteral("no restic repository: set backup.restic_repository and backup.restic_password_file "
                           "(or make a one-off snapshot with posternctl backup create DIR)"));
    }
    const QString passwordFile = get(config, keys::backup::resticPasswordFile);
    if (passwordFile.isEmpty() || !QFileInfo(passwordFile).isFile())
        return ctx.fail(QStringLiteral("backup.restic_password_file must name a file holding the repository password"));
    const QString staging = stagingDir(config);
    if (const QString why = checkStaging(staging); !why.isEmpty()) return ctx.fail(why);
    auto lock = FileLock::acquire(staging + QStringLiteral("/run.lock"), FileLock::Mode::Exclusive, 0);
    if (!lock) return ctx.fail(QStringLiteral("a backup is already running (%1)").arg(lock.errorMessage()));
    QJsonObject state = readState(config);
    if (ifDue) {
        const QDateTime due = nextDue(config, state);
        if (due.isValid() && due > QDateTime::currentDateTimeUtc()) return 0;
    }
    return BackupRun(ctx, config, repo, staging, state).run(passwordFile);
}

}  // namespace

// One line for `posternctl status` (empty when fine and not worth a line); *warn when it is a warning.
QString backupStatusLine(const Config& config, bool* warn) {
    *warn = false;
    if (get(config, keys::backup::resticRepository).isEmpty())
        return QStringLiteral("backup: none scheduled (posternctl backup create DIR; or set backup.restic_repository)");
    const QJsonObject st = readState(config);
    if (st.isEmpty()) return QStringLiteral("backup: scheduled, no run yet");
    const QDateTime due = nextDue(config, st);
    if (!st.value(QStringLiteral("ok")).toBool()) {
        *warn = true;
        return QStringLiteral("backup: WARNING: the last backup failed at %1: %2 (posternctl backup status)")
            .arg(st.value(QStringLiteral("finished")).toString(), st.value(QStringLiteral("error")).toString());
    }
    if (due.isValid() && due.addSecs(2 * 3600) < QDateTime::currentDateTimeUtc()) {
        *warn = true;
        return QStringLiteral("backup: WARNING: overdue since %1 (is postern-appliance running?)")
            .arg(due.toString(Qt::ISODate));
    }
    return QStringLiteral("backup: last OK at %1").arg(st.value(QStringLiteral("last_success")).toString());
}

namespace {

int backupStatus(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    const QString repo = get(config, keys::backup::resticRepository);
    if (repo.isEmpty()) {
        ctx.out << "no scheduled backups (set backup.restic_repository and backup.restic_password_file)" << Qt::endl;
        return 0;
    }
    const QJsonObject st = readState(config);
    ctx.out << "repository:   " << repo << Qt::endl;
    if (st.isEmpty()) {
        ctx.out << "last run:     none yet (the supervisor runs one within the hour; or: posternctl backup run)"
                << Qt::endl;
        return 0;
    }
    const bool ok = st.value(QStringLiteral("ok")).toBool();
    ctx.out << "last run:     " << st.value(QStringLiteral("finished")).toString() << (ok ? " OK" : " FAILED") << " ("
            << QString::number(st.value(QStringLiteral("seconds")).toDouble(), 'f', 1) << " s)" << Qt::endl;
    if (!ok) ctx.out << "error:        " << st.value(QStringLiteral("error")).toString() << Qt::endl;
    ctx.out << "last success: "
            << (st.contains(QStringLiteral("last_success")) ? st.value(QStringLiteral("last_success")).toString()
                                                            : QStringLiteral("never"))
            << Qt::endl;
    if (st.contains(QStringLiteral("snapshot_id")))
        ctx.out << "snapshot:     " << st.value(QStringLiteral("snapshot_id")).toString().left(8) << ", "
                << st.value(QStringLiteral("messages")).toInteger() << " messages, "
                << mb(qint64(st.value(QStringLiteral("total_bytes")).toDouble())) << " processed, "
                << mb(qint64(st.value(QStringLiteral("data_added")).toDouble())) << " added" << Qt::endl;
    const QDateTime due = nextDue(config, st);
    ctx.out << "next:         " << (due.isValid() ? due.toString(Qt::ISODate) : QStringLiteral("now")) << Qt::endl;
    bool warn = false;
    (void)backupStatusLine(config, &warn);
    return warn ? 1 : 0;
}

}  // namespace

void addBackupCommands(QList<Command>& out) {
    const QString b = QStringLiteral("backup");
    out << Command{{b, QStringLiteral("create")},
                   QStringLiteral("DIR"),
                   QStringLiteral("consistent snapshot of the running appliance into DIR"),
                   {},
                   {},
                   backupCreate,
                   true};
    out << Command{{b, QStringLiteral("verify")},
                   QStringLiteral("DIR"),
                   QStringLiteral("check a snapshot: hashes, messages, uidlists"),
                   {},
                   {},
                   backupVerify};
    out << Command{{b, QStringLiteral("run")},
                   QStringLiteral("[--if-due] [--progress]"),
                   QStringLiteral("scheduled restic backup now (the supervisor runs it with --if-due)"),
                   {},
                   {QStringLiteral("if-due"), QStringLiteral("progress")},
                   backupRun,
                   true};
    out << Command{{b, QStringLiteral("status")},
                   {},
                   QStringLiteral("last scheduled backup, its size and errors"),
                   {},
                   {},
                   backupStatus};
    out << Command{{QStringLiteral("restore")},
                   QStringLiteral("DIR [--force] [--data-dir PATH]"),
                   QStringLiteral("restore a snapshot (same UIDs, flags, queue, keys)"),
                   {QStringLiteral("data-dir")},
                   {QStringLiteral("force")},
                   restore,
                   true};
}

}  // namespace postern::ctl
