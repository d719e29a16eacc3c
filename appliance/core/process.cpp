// process.cpp — see process.h.
#include "process.h"

#include "atomic_file.h"
#include "config.h"
#include "log.h"
#include "posix_io.h"
#include "safe_path.h"
#include "setting_keys.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

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
    if (ids->uid == 0)
        return Status::fail(QStringLiteral("system_user '%1' is root; refusing to run daemons as root").arg(user));
    const QByteArray name = user.toUtf8();
    if (::initgroups(name.constData(), gid_t(ids->gid)) != 0 || ::setgid(gid_t(ids->gid)) != 0 ||
        ::setuid(uid_t(ids->uid)) != 0)
        return Status::fail(QStringLiteral("cannot switch to user '%1': %2").arg(user, errnoText(errno)));
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
    for (auto it = listeners.cbegin(); it != listeners.cend(); ++it)
        l.insert(it.key(), QJsonArray::fromStringList(it.value()));
    obj.insert(QStringLiteral("listeners"), l);
    if (auto st = ensureDirectory(config.runDir(), 0755); !st) return st;
    return writeFileAtomic(readyFilePath(config, program), QJsonDocument(obj).toJson(QJsonDocument::Compact) + '\n',
                           0644);
}

Status handOverStateToUser(const Config& config, const QString& user) {
    if (::geteuid() != 0) return {};
    auto ids = lookupUser(user);
    if (!ids) return ids.error();
    const uid_t uid = uid_t(ids->uid);
    const gid_t gid = gid_t(ids->gid);
    // data_dir's parent stays root's and enterable; the state folders become the user's.
    if (auto st = ensureDirectory(QFileInfo(config.dataDir()).absolutePath(), 0755); !st) return st;
    // Each folder is walked from "/" without following a link the user may have put in
    // the place of a folder (safe_path.h), and handed over through that descriptor.
    for (const QString& d : {config.dataDir(), config.logDir(), config.runDir(), config.mailDir(), config.queueDir()}) {
        auto dir = SafeDir::open(d, 0750);
        if (!dir) return dir.error();
        auto st = dir->stat();
        if (!st) return st.error();
        if (st->st_uid != uid || st->st_gid != gid)
            if (auto c = dir->chownTo(uid, gid); !c) return c;
    }
    // Files root may have created before (the log just now): regular, one link, or refused.
    const QList<QPair<QString, QString>> files{{config.logDir(), QStringLiteral("mail.log")},
                                               {config.runDir(), QStringLiteral("auth-throttle")}};
    for (const auto& [folder, name] : files) {
        auto dir = SafeDir::open(folder);
        if (!dir) return dir.error();
        if (auto c = dir->chownFile(name, uid, gid); !c) return c;
    }
    return {};
}

namespace {
QString currentUserName() {
    struct passwd pw {};
    struct passwd* found = nullptr;
    char buf[4096];
    if (::getpwuid_r(::geteuid(), &pw, buf, sizeof buf, &found) == 0 && found)
        return QString::fromLocal8Bit(pw.pw_name);
    return QStringLiteral("uid %1").arg(::geteuid());
}

// What to do about a folder this process cannot write.
QString writeFix(const QString& dir, int err, const QString& user) {
    if (err == ENOSPC || err == EDQUOT) return QStringLiteral("free space (or raise the quota) on that file system");
    if (err == EROFS) return QStringLiteral("the file system is mounted read-only; mount it read-write");
    // The first folder on the way that the user may not enter.
    QString walked;
    const QStringList parts = QDir::cleanPath(dir).split(QLatin1Char('/'), Qt::SkipEmptyParts);
    for (qsizetype i = 0; i + 1 < parts.size(); ++i) {
        walked += QLatin1Char('/') + parts.at(i);
        if (::access(QFile::encodeName(walked).constData(), X_OK) != 0)
            return QStringLiteral("make the folder and its parents enterable by %1, e.g. chmod o+x %2")
                .arg(user, walked);
    }
    return QStringLiteral("make the folder writable by %1, e.g. chown %1 %2").arg(user, dir);
}
}  // namespace

Status checkFolderWritable(const QString& dir) {
    const QString user = currentUserName();
    auto failed = [&](const char* step, int err) {
        return Status::fail(QStringLiteral("cannot write %1 as user %2 (%3: %4): %5")
                                .arg(dir, user, QLatin1String(step), errnoText(err), writeFix(dir, err, user)),
                            err);
    };
    const QByteArray d = QFile::encodeName(dir);
    struct stat st {};
    if (::stat(d.constData(), &st) != 0) {
        if (errno != ENOENT) return failed("enter folder", errno);
        if (auto made = ensureDirectory(dir, 0700); !made)
            return failed("create folder", made.error().code ? made.error().code : EACCES);
    }
    const int dirFd = ::open(d.constData(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirFd < 0) return failed("open folder", errno);
    const FileHandle dirHandle(dirFd);
    const QByteArray name = QByteArrayLiteral(".postern-write-check.") + QByteArray::number(qint64(::getpid()));
    const QByteArray renamed = name + QByteArrayLiteral(".renamed");
    ::unlinkat(dirFd, name.constData(), 0);  // left by a crashed process with our pid
    ::unlinkat(dirFd, renamed.constData(), 0);
    const int fd = ::openat(dirFd, name.constData(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return failed("create file", errno);
    const bool wrote = ::write(fd, "x", 1) == 1;
    int err = wrote ? 0 : errno;
    if (wrote && ::fsync(fd) != 0) err = errno;
    ::close(fd);
    if (err != 0) {
        ::unlinkat(dirFd, name.constData(), 0);
        return failed("write file", err);
    }
    if (::renameat(dirFd, name.constData(), dirFd, renamed.constData()) != 0) {
        err = errno;
        ::unlinkat(dirFd, name.constData(), 0);
        return failed("rename file", err);
    }
    if (::unlinkat(dirFd, renamed.constData(), 0) != 0) return failed("remove file", errno);
    if (::fsync(dirFd) != 0 && errno != EINVAL) return failed("fsync folder", errno);
    return {};
}

Status initDaemonLogging(const Config& config, const QString& program) {
    log::Options o;
    o.program = program;
    const QString dir = config.logDir();
    Status made = ensureDirectory(dir, 0750);
    if (made) o.logFile = dir + QStringLiteral("/mail.log");
    o.minLevel = log::levelFromString(get(config, keys::log::level));
    o.toStderr = get(config, keys::log::toStderr);
    log::init(o);
    if (!made) return made;
    const QString error = log::fileError();
    return error.isEmpty() ? Status() : Status::fail(error);
}

}  // namespace postern
