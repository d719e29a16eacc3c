// process.h — process-level helpers every daemon needs.
//
// Interface:
//   dropPrivileges(user)   when running as root: setgroups/setgid/setuid to
//                          `user` (verified afterwards: a regained root is fatal).
//                          Not root: nothing to do. Call after binding ports.
//   writeReadyFile(...)    <run_dir>/<program>.ready with the real bound
//                          addresses, written atomically, so tests and the
//                          supervisor learn the ports chosen by the OS.
//   initDaemonLogging()    log::init from the config (mail.log in log_dir).
// Security: privileges are dropped irrevocably; no function here regains them.
#pragma once

#include "result.h"

#include <QMap>
#include <QString>
#include <QStringList>

namespace postern {

class Config;

Status dropPrivileges(const QString& user);
// Owner of files the daemons create when started as root (uid/gid of `user`), or -1s.
struct UserIds {
    int uid = -1;
    int gid = -1;
};
Result<UserIds> lookupUser(const QString& user);

// name → "address:port" entries of the listeners, e.g. {"smtp": ["127.0.0.1:2525"]}.
Status writeReadyFile(const Config& config, const QString& program, const QMap<QString, QStringList>& listeners);
QString readyFilePath(const Config& config, const QString& program);

void initDaemonLogging(const Config& config, const QString& program);

// As root, before dropping privileges: create the state folders (data, log, run,
// mail, queue) when missing and give them, the log file and the shared throttle
// file to `user`, so the daemon can still write them afterwards. Not recursive.
Status handOverStateToUser(const Config& config, const QString& user);

}  // namespace postern
