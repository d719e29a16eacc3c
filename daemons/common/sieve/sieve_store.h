// sieve_store.h — a user's Sieve scripts on disk, and the per-process cache of
// their compiled form.
//
// Layout: <mail_dir>/<domain>/<local>/sieve/ (beside the user's Maildir, so
// IMAP never shows it as a folder):
//   <name>.sieve   one script each (UTF-8 text)
//   active         the name of the active script and a line end; missing or
//                  empty: no script runs (the default)
// Interface (Result/Status; messages name the script and the reason):
//   validScriptName(name)         1..kMaxScriptNameBytes of [A-Za-z0-9._-], not
//                                 starting with '.' (no path can be formed from it)
//   listScripts / readScript / putScript / activateScript / deactivateScripts /
//   deleteScript / activeScriptName
//       putScript compiles first and refuses a script that does not compile (the
//       error has line:column); deleteScript refuses the active script (like
//       ManageSieve DELETESCRIPT, RFC 5804 2.10). Every write goes through
//       core/atomic_file (temp file, fsync, rename), mode 0600.
//   checkSpace(mailDir, address, name, size, quota)   the quota (ManageSieve
//       HAVESPACE, and the same check putScript makes): a script at most
//       quota.maxScriptBytes, at most quota.maxScripts scripts (replacing an
//       existing name does not count twice). Quota::fromConfig reads the
//       settings sieve.max_scripts and sieve.max_script_size (the one schema);
//       the defaults are kMaxScriptsPerUser and Limits::maxScriptBytes, which
//       are also the ceilings (a script is never larger than the compiler takes).
//   renameScript(old, new)   the script keeps being active when it was
//       (RFC 5804 2.11.1); refused when `new` exists.
//   Error codes (Error::code) so callers can name the reason (ManageSieve
//   response codes): ENOENT no such script, EEXIST the new name exists, EBUSY it
//   is the active script, EFBIG too large, EDQUOT too many scripts.
//   ScriptCache::active(mailDir, address)
//       the user's active script, compiled; compiled again only when the file's
//       (device, inode, size, mtime) changed. Thread-safe (delivery workers).
//   ScriptCache::byPath(path)  any script file (included and global scripts),
//       through the same lookup and the same cache entries.
//       processScriptCache() is the one cache of a daemon process.
//   claimErrorNotice(mailDir, address, name, stamp)
//       true the first time it is called for this version (stamp) of a script:
//       the user is told about a broken script once, not with every message.
//       The version told about is kept in sieve/.<name>.notified.
// Security: the daemons and posternctl (which drops to the daemon user before
// calling these, see commands_sieve.cpp) read and write the files as the daemon
// user; names are validated before any path is built; when root calls them anyway,
// atomic_file routes through core/safe_path (no planted link is followed).
// Limits: kMaxScriptNameBytes (64) per name, kMaxScriptsPerUser (32) scripts
// by default (sieve.max_scripts, 1..1000), a script at most
// Limits::maxScriptBytes (sieve.h) by default (sieve.max_script_size, 1K..1M), kMaxCacheEntries (1024)
// compiled scripts per process (the cache is emptied when it would grow beyond).
#pragma once

#include "sieve.h"

#include "core/config.h"
#include "core/result.h"

#include <QHash>
#include <QMutex>
#include <memory>
#include <optional>

namespace postern::sieve {

inline constexpr int kMaxScriptNameBytes = 64;
inline constexpr int kMaxScriptsPerUser = 32;
inline constexpr int kMaxCacheEntries = 1024;

// A user's ManageSieve/posternctl quota (RFC 5804 2.3 HAVESPACE, QUOTA/MAXSCRIPTS, QUOTA/MAXSIZE).
struct Quota {
    int maxScripts = kMaxScriptsPerUser;
    qint64 maxScriptBytes = Limits{}.maxScriptBytes;
    static Quota fromConfig(const Config& config);
};

bool validScriptName(const QString& name);
QString scriptDir(const QString& mailDir, const QString& address);

struct ScriptInfo {
    QString name;
    qint64 size = 0;
    bool active = false;
};

Result<QList<ScriptInfo>> listScripts(const QString& mailDir, const QString& address);
Result<QByteArray> readScript(const QString& mailDir, const QString& address, const QString& name);
Status putScript(const QString& mailDir, const QString& address, const QString& name, const QByteArray& source,
                 const Quota& quota = {});
Status activateScript(const QString& mailDir, const QString& address, const QString& name);
Status deactivateScripts(const QString& mailDir, const QString& address);
Status deleteScript(const QString& mailDir, const QString& address, const QString& name);
Status renameScript(const QString& mailDir, const QString& address, const QString& oldName, const QString& newName);
Status checkSpace(const QString& mailDir, const QString& address, const QString& name, qint64 size,
                  const Quota& quota = {});
// Empty when no script is active.
Result<QString> activeScriptName(const QString& mailDir, const QString& address);

// The administrator's scripts (RFC 6609 :global, and Pigeonhole-style before/after
// scripts run around each user's active script): <config>/sieve/global/<name>.sieve,
// written by posternctl as root (mode 0644: the daemons read them).
// Settings: sieve.before and sieve.after, comma-separated names of global scripts.
struct GlobalScripts {
    QString dir;  // <config>/sieve/global; empty: none
    QStringList before, after;
    static GlobalScripts fromConfig(const Config& config);
};
QString globalScriptDir(const QString& configDir);
Result<QList<ScriptInfo>> listGlobalScripts(const QString& configDir);
Result<QByteArray> readGlobalScript(const QString& configDir, const QString& name);
Status putGlobalScript(const QString& configDir, const QString& name, const QByteArray& source);
Status deleteGlobalScript(const QString& configDir, const QString& name);
// PUTSCRIPT/CHECKSCRIPT (RFC 6609 3.2): every `include :personal` without :optional
// names a stored script of the user (or `self`, the one being stored), and the
// personal includes form no loop. The error has the include's line:column.
Status checkIncludes(const QString& mailDir, const QString& address, const QString& self, const Script& script);

class ScriptCache {
public:
    struct Active {
        QString name;
        std::shared_ptr<const Script> script;  // null when it does not compile
        QString stamp;                         // "dev:inode:size:mtime" of the file compiled
        std::optional<Error> error;            // why it does not compile (line:column)
    };
    // nullopt: no active script (or none readable: then `readError` says why).
    std::optional<Active> active(const QString& mailDir, const QString& address, QString* readError = nullptr);
    // Any script file by path (included scripts, global ones), compiled and cached the same
    // way; nullptr with *error empty when the file does not exist.
    std::shared_ptr<const Script> byPath(const QString& path, QString* error);

private:
    // The one lookup both use: the file's compiled form, from the cache while its
    // (device, inode, size, mtime) is unchanged; nullopt when it cannot be stat'ed.
    std::optional<Active> compiledFile(const QString& path);
    struct Entry {
        quint64 dev = 0, ino = 0;
        qint64 size = -1, mtimeNs = 0;
        Active value;
    };
    QMutex m_mutex;
    QHash<QString, Entry> m_entries;  // by script path
};

ScriptCache& processScriptCache();
bool claimErrorNotice(const QString& mailDir, const QString& address, const QString& name, const QString& stamp);

}  // namespace postern::sieve
