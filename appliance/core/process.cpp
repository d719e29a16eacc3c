// process.cpp — see process.h.
#include "process.h"

#include "atomic_file.h"
#include "config.h"
#include "log.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QFile>
#include <QJsonObject>

#include <cerrno>
#include <cstring>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

namespace postern {

Result<UserIds> lookupUser(const QString& user) {
    const QByteArray name = user.toUtf8();
    struct passwd pw {};
    struct passwd* result = nullptr;
    QByteArray buf(16384, '\0');
    if (getpwnam_r(name.constData(), &pw, buf.data(), size_t(buf.size()), &result) != 0 || !result)
        return Result<UserIds>::fail(QStringLiteral("no system user '%1'").arg(user));
    return UserIds{int(pw.pw_uid), int(pw.pw_gid)};
}

Status dropPrivileges(const QString& user) {
    if (::geteuid() != 0) return {};
    auto ids = lookupUser(user);
    if (!ids) return Status::fail(QStringLiteral("cannot drop root: %1").arg(ids.errorMessage()));
    if (ids->uid == 0) return Status::fail(QStringLiteral("system_user '%1' is root; refusing to run daemons as root").arg(user));
    const QByteArray name = user.toUtf8();
    if (::initgroups(name.constData(), gid_t(ids->gid)) != 0 || ::setgid(gid_t(ids->gid)) != 0 ||
        ::setuid(uid_t(ids->uid)) != 0)
        return Status::fail(QStringLiteral("cannot switch to user '%1': %2").arg(user, QString::fromLocal8Bit(std::strerror(errno))));
    if (::setuid(0) == 0 || ::geteuid() == 0) qFatal("privileges were not dropped");
    return {};
}

QString readyFilePath(const Config& config, const QString& program) {
    return config.runDir() + QLatin1Char('/') + program + QStringLiteral(".ready");
}

Status writeReadyFile(const Config& config, const QString& program, const QMap<QString, QStringList>& listeners) {
    QJsonObject obj;
    obj.insert(QStringLiteral("pid"), qint64(::getpid()));
    QJsonObject l;
    for (auto it = listeners.cbegin(); it != listeners.cend(); ++it) l.insert(it.key(), QJsonArray::fromStringList(it.value()));
    obj.insert(QStringLiteral("listeners"), l);
    if (auto st = ensureDirectory(config.runDir(), 0755); !st) return st;
    return writeFileAtomic(readyFilePath(config, program), QJsonDocument(obj).toJson(QJsonDocument::Compact) + '\n', 0644);
}

Status handOverStateToUser(const Config& config, const QString& user) {
    if (::geteuid() != 0) return {};
    auto ids = lookupUser(user);
    if (!ids) return ids.error();
    const QStringList dirs{config.dataDir(), config.logDir(), config.runDir(), config.mailDir(), config.queueDir()};
    for (const QString& d : dirs)
        if (auto st = ensureDirectory(d, 0750); !st) return st;
    QStringList paths = dirs;
    paths << config.logDir() + QStringLiteral("/mail.log") << config.runDir() + QStringLiteral("/auth-throttle");
    for (const QString& p : paths) {
        const QByteArray native = QFile::encodeName(p);
        if (::access(native.constData(), F_OK) != 0) continue;
        if (::chown(native.constData(), uid_t(ids->uid), gid_t(ids->gid)) != 0)
            return Status::fail(QStringLiteral("%1: cannot give to %2: %3").arg(p, user, QString::fromLocal8Bit(std::strerror(errno))));
    }
    return {};
}

void initDaemonLogging(const Config& config, const QString& program) {
    log::Options o;
    o.program = program;
    const QString dir = config.logDir();
    if (ensureDirectory(dir, 0750).ok()) o.logFile = dir + QStringLiteral("/mail.log");
    o.minLevel = log::levelFromString(config.value(QStringLiteral("log.level")));
    o.toStderr = config.flag(QStringLiteral("log.stderr"));
    log::init(o);
}

}  // namespace postern
