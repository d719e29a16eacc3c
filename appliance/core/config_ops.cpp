// config_ops.cpp — see config_ops.h.
#include "config_ops.h"

#include "atomic_file.h"
#include "config_schema.h"
#include "safe_path.h"

#include <QFile>
#include <QJsonDocument>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <limits>

namespace postern::configops {

QString SettingChange::summary() const {
    QString s = QStringLiteral("%1 = %2").arg(key, value);
    if (restartNeeded)
        s += QStringLiteral("   (takes effect after a restart)");
    else if (reloaded)
        s += QStringLiteral("   (daemons told to reload)");
    else
        s += QStringLiteral("   (takes effect when the appliance next reloads or starts)");
    return s;
}

Result<SettingChange> setSetting(const QString& configDir, const QString& key, const QString& value, Scope scope) {
    const Setting* s = Schema::instance().find(key);
    if (scope == Scope::RunTimeOnly && (!s || !s->runtimeSafe))
        return Result<SettingChange>::fail(
            QStringLiteral("%1 cannot be changed here (posternctl config set can)").arg(key));
    if (auto st = ensureDirectory(configDir, 0755); !st) return st.error();
    auto lock = FileLock::acquire(configDir + QStringLiteral("/.postern.conf.lock"));
    if (!lock) return lock.error();
    auto config = Config::load(configDir);
    if (!config) return config.error();
    if (auto st = config->set(key, value); !st) return st.error();
    if (auto st = config->save(); !st) return st.error();
    SettingChange change{key, config->value(key), s && s->restart, false};
    if (!change.restartNeeded)
        if (const qint64 pid = runningSupervisor(*config); pid > 0) change.reloaded = ::kill(pid_t(pid), SIGHUP) == 0;
    return change;
}

qint64 runningSupervisor(const Config& config, QJsonObject* status) {
    auto dir = SafeDir::open(config.runDir());
    if (!dir) return 0;
    auto h = dir->openFile(QStringLiteral("postern-appliance.status"), O_RDONLY);
    if (!h) return 0;
    struct stat st {};
    // The supervisor runs as root and writes this file as root; the daemon user, who owns
    // run_dir, can replace it but not with a file of root's.
    if (::fstat(h->fd(), &st) != 0 || (st.st_uid != 0 && st.st_uid != ::geteuid())) return 0;
    QFile f;
    if (!f.open(h->release(), QIODevice::ReadOnly, QFileDevice::AutoCloseHandle)) return 0;
    const QJsonObject o = QJsonDocument::fromJson(f.read(1024 * 1024)).object();
    if (status) *status = o;
    const qint64 pid = o.value(QStringLiteral("pid")).toInteger();
    // PID 1 is valid: in the container image the supervisor is init.
    if (pid < 1 || pid > std::numeric_limits<pid_t>::max()) return 0;
    if (::kill(pid_t(pid), 0) != 0 && errno != EPERM) return 0;
    // And it is the supervisor, not whatever process got that pid since (comm is cut at 15 bytes).
    QFile comm(QStringLiteral("/proc/%1/comm").arg(pid));
    if (!comm.open(QIODevice::ReadOnly) ||
        comm.readLine(64).trimmed() != QByteArrayLiteral("postern-appliance").left(15))
        return 0;
    return pid;
}

}  // namespace postern::configops
