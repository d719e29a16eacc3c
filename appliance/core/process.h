// process.h — process-level helpers every daemon needs.
//
// Interface:
//   dropPrivileges(user)   when running as root: setgroups/setgid/setuid to
//                          `user` (verified afterwards: a regained root is fatal).
//                          Not root: nothing to do. Call after binding ports.
//   writeReadyFile(...)    <run_dir>/<program>.ready with the real bound
//                          addresses, written atomically, so tests and the
//                          supervisor learn the ports chosen by the OS.
//   initDaemonLogging()    log::init from the config (mail.log in log_dir); the
//                          Status says why the file could not be used.
//   handOverStateToUser()  as root: state folders (and the log and throttle
//                          files) to system_user, through SafeDir.
//   checkFolderWritable()  after dropping root: create, write, fsync, rename and
//                          remove a file in a folder; the error names the folder,
//                          the user and the fix.
// Security: privileges are dropped irrevocably; no function here regains them.
// handOverStateToUser runs as root on folders the daemon user owns: every folder
// is reached by SafeDir (no planted link followed) and chowned through its own
// descriptor; a file is handed over only when it is a regular file with one link
// (a link, hard link, FIFO or folder in its place is refused and named).
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

Status initDaemonLogging(const Config& config, const QString& program);

// As root, before dropping privileges: create the state folders (data, log, run,
// mail, queue) when missing and give them, the log file and the shared throttle
// file to `user`, so the daemon can still write them afterwards. Not recursive.
// Refuses (with the path and what is there) a link in place of any of them.
Status handOverStateToUser(const Config& config, const QString& user);

// Can this process create, write, fsync, rename and remove a file in `dir`
// (created 0700 when missing, as the spool and cache folders are)? Fails with one line such as
// "cannot write /x/data/mail as user nobody (create file: Permission denied):
//  make the folder and its parents enterable by nobody, e.g. chmod o+x /x".
Status checkFolderWritable(const QString& dir);

}  // namespace postern
