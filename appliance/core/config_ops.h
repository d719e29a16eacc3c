// config_ops.h — changing one setting: one implementation, used by
// `posternctl config set` (appliance/ctl/commands_config.cpp) and by the web
// panel's settings page (through webd's privileged helper, daemons/webd/
// account_broker.h, op config.set).
//
// Interface:
//   setSetting(configDir, key, value, scope) -> SettingChange or the error.
//     Under the lock <configDir>/.postern.conf.lock: re-reads postern.conf,
//     validates the value with the schema (Config::set: the schema's message,
//     e.g. "smtp.max_recipients: ... must be between 1 and 100000"), writes the
//     file atomically (Config::save), then tells the running appliance: SIGHUP
//     to a verified supervisor (runningSupervisor()), which re-reads the file
//     and forwards SIGHUP to the daemons (or restarts those whose restart-only
//     settings changed). scope RunTimeOnly refuses keys without
//     Setting::runtimeSafe (the panel; the helper checks this again itself).
//   runningSupervisor(config, &status) -> the supervisor's pid or 0: the status
//     file in run_dir must be root's (or ours when not root), the process must
//     exist and be postern-appliance.
// Security: run as root (posternctl, webd's helper). run_dir belongs to the
// daemon user: the status file is opened through SafeDir and trusted only when
// root wrote it, so the daemon user cannot choose whom root signals.
// Limits: the lock is waited for at most 30 s (FileLock default).
#pragma once

#include "config.h"
#include "result.h"

#include <QJsonObject>

namespace postern::configops {

enum class Scope { Any, RunTimeOnly };

struct SettingChange {
    QString key;
    QString value;               // canonical, as written
    bool restartNeeded = false;  // Setting::restart: applies when the daemons restart
    bool reloaded = false;       // a running supervisor was told (SIGHUP)
    QString summary() const;     // "key = value", plus what happens next
};

Result<SettingChange> setSetting(const QString& configDir, const QString& key, const QString& value, Scope scope);
qint64 runningSupervisor(const Config& config, QJsonObject* status = nullptr);

}  // namespace postern::configops
