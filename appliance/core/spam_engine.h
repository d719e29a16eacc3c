// spam_engine.h — where the spam filter's engines (redis-server and rspamd, run by the
// supervisor when spam.enabled) live, and their configuration, generated from postern.conf.
//
// Interface:
//   spamPaths(config, configDir)  every path in one place (see SpamPaths); postern-smtpd's
//                       default scanner address is rspamdSocket.
//   writeSpamEngineConfig(config, configDir, ids)  (re)writes, as root, <config>/spam/:
//                       redis.conf (port 0: no TCP; unixsocket 0700; dir in the data folder)
//                       and rspamd/{local.d,override.d}/ for Debian's stock rspamd.conf
//                       (normal worker on a unix socket 0660 for postern-smtpd, controller
//                       only on a unix socket 0600 with a random password and no web UI
//                       files, proxy worker off, Redis for Bayes/greylisting at the redis
//                       socket, Bayes statistics (override.d/statistic.conf, statisticConf),
//                       greylisting (local.d/greylist.conf: spam.greylist on/off, the
//                       delay spam.greylist_delay in whole seconds),
//                       neural and history_redis off (see tests/bench/README.md: no use on
//                       a small appliance without Rspamd's web UI),
//                       the resolver of core/dns.h configuredDnsServers (dns.servers, else the
//                       bundled unbound when dns.resolver = bundled), logs to stderr (the supervisor passes
//                       them on)). The controller password is made once (32 random bytes,
//                       hex) and kept in <config>/spam/controller.password (0600 root).
//                       Files the engines read are root:<daemon group> 0640 in 0750 folders.
//   statisticConf(config)  Rspamd's statistic section: two Bayes classifiers, both taught by
//                       every learn (Junk moves through learn_spool.h, `posternctl spam learn`):
//                       "bayes", shared by all users (symbols BAYES_SPAM / BAYES_HAM, Redis
//                       keys RS*), and "bayes_user", the statistics of the user named in the
//                       request's Deliver-To field (BAYES_SPAM_USER / BAYES_HAM_USER, keys
//                       RS<user>*; no Deliver-To, as for a scan with several recipients: none).
//                       Each gives a verdict once it has learned spam.bayes_min_learns messages
//                       of each class (Rspamd's min_learns, default 200): a user without enough
//                       training of their own gets the shared verdict. When both answer, the
//                       composite BAYES_USER_VERDICT (local.d/composites.conf) keeps the shared
//                       symbol without its weight: the user's verdict counts, not both
//                       (local.d/statistics_group.conf: the _USER symbols weigh what Debian's
//                       BAYES_SPAM / BAYES_HAM do, 5.1 and -3.0).
//   redisCommand(paths) / rspamdCommand(paths)  program and arguments.
//   spamEngineSocket(program, paths)  the socket whose accepting connections means ready.
// Security: the engines run as system_user (the supervisor drops root in the child before
// exec), never as root: Rspamd's configuration can load Lua, so it lives in the root-owned
// config folder, only readable (not writable) by the daemon group. Redis has no TCP port.
// Limits: Redis maxmemory 256 MB (volatile-ttl: greylisting and rate-limit keys go first).
// spam.bayes_min_learns 1..1000000 (the settings schema refuses others).
#pragma once

#include "config.h"
#include "process.h"
#include "result.h"

#include <QString>
#include <QStringList>

namespace postern {

struct SpamPaths {
    QString configDir;         // <config>/spam (root, 0750 root:<group>)
    QString redisConf;         // <config>/spam/redis.conf
    QString rspamdConfDir;     // <config>/spam/rspamd (LOCAL_CONFDIR)
    QString passwordFile;      // <config>/spam/controller.password (0600 root)
    QString stateDir;          // <data>/spam (daemon user)
    QString redisDir;          // <data>/spam/redis
    QString rspamdDbDir;       // <data>/spam/rspamd (DBDIR: hyperscan cache, maps)
    QString runDir;            // <run>/spam (daemon user): sockets, rspamd.pid
    QString redisSocket;       // <run>/spam/redis.sock
    QString rspamdSocket;      // <run>/spam/rspamd.sock (normal worker: scans)
    QString controllerSocket;  // <run>/spam/rspamd-controller.sock (learning, stats)
};
SpamPaths spamPaths(const Config& config, const QString& configDir);

Status writeSpamEngineConfig(const Config& config, const SpamPaths& paths, const UserIds& ids);
QByteArray statisticConf(const Config& config);

struct EngineCommand {
    QString program;  // looked up in /usr/bin, /usr/sbin
    QStringList arguments;
};
EngineCommand redisCommand(const SpamPaths& paths);
EngineCommand rspamdCommand(const SpamPaths& paths);
QString spamEngineSocket(const QString& program, const SpamPaths& paths);
// Folders the engine (as the daemon user) creates before it starts.
QStringList spamEngineFolders(const QString& program, const SpamPaths& paths);

}  // namespace postern
