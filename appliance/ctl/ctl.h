// ctl.h — posternctl's command table.
//
// posternctl is a grammar table: each entry is a command path ("user add"),
// a usage line, a one-line summary and a handler. Each area of the product
// contributes its commands from its own file (commands_<area>.cpp) through
// one function declared here; main.cpp only dispatches and prints help.
//
// Handlers get a CtlContext (config folder, parsed options, output streams)
// and return the exit status: 0 ok, 1 operation failed, 2 usage error.
// A command marked needsRoot is refused before its handler runs when
// posternctl is not root (exit 2, "posternctl: 'firewall apply' needs root"),
// unless --dry-run asks it to change nothing; the help marks such commands
// "(root)". Only commands that change the system outside the config folder are
// root-only (the firewall): `cert install`/`cert renew` write the config folder,
// which a demo instance run by a normal user owns (its supervisor renews as that user).
// Every error is one clear line on stderr starting with "posternctl: ".
//
// Security: posternctl usually runs as root. The daemon user owns data_dir, so
// every file there (queue, ready and status files, the log) is either handled
// as that user (the queue, import and export commands call runAsDaemonUser()
// first and drop root for good; `backup create` reads data_dir in a forked child
// that dropped root) or reached through core/safe_path.h (no link planted there
// is followed, no FIFO opened, no hard link read). `restore` never writes into an
// existing data_dir: it builds a new root-only folder beside it, hands it over
// (chownTree) and renames it into place (backup_snapshot.h). The supervisor's pid, to which
// `cert install`/`cert renew` send SIGHUP, is taken only from a status file
// owned by root and only when that process is postern-appliance (supervisorPid()).
#pragma once

#include "core/config.h"

#include <QFile>
#include <QJsonObject>
#include <QStringList>
#include <QTextStream>
#include <functional>

namespace postern::ctl {

struct CtlContext {
    QString configDir;
    QStringList args;             // positional arguments after the command words
    QMap<QString, QString> opts;  // --name value / --name=value / --flag ("")
    QTextStream& out;
    QTextStream& err;
    bool has(const QString& opt) const { return opts.contains(opt); }
    QString opt(const QString& name, const QString& fallback = {}) const { return opts.value(name, fallback); }
    // Loads the config; on error prints it and returns false.
    bool loadConfig(Config& config) const;
    int fail(const QString& message) const;   // prints, returns 1
    int usage(const QString& message) const;  // prints, returns 2
    // As root: become system_user for the rest of this process (files of the daemons
    // are then created, moved and read with the daemons' rights). False (message
    // printed) when that fails; true when not root.
    bool runAsDaemonUser(const Config& config) const;
};

// The running supervisor's pid from <run_dir>/postern-appliance.status, or 0: the file
// must be a regular file owned by root (or by us, when we are not root), and the
// process must exist and be postern-appliance.
qint64 supervisorPid(const Config& config, QJsonObject* status = nullptr);

struct Command {
    QStringList words;  // e.g. {"user", "add"}
    QString usage;      // arguments and options after the words
    QString summary;
    QStringList valueOptions;  // options that take a value
    QStringList flags;         // options without a value
    std::function<int(CtlContext&)> run;
    bool needsRoot = false;  // refused unless root (or --dry-run), see above; "(root)" in the help
};

// Areas append their commands here.
void addAccountCommands(QList<Command>& out);
void addConfigCommands(QList<Command>& out);
void addDnsCommands(QList<Command>& out);
void addStatusCommands(QList<Command>& out);
void addQueueCommands(QList<Command>& out);
void addFirewallCommands(QList<Command>& out);
void addCheckCommands(QList<Command>& out);
void addCertCommands(QList<Command>& out);
void addBackupCommands(QList<Command>& out);
void addImportCommands(QList<Command>& out);
void addSieveCommands(QList<Command>& out);
void addSieveGlobalCommands(QList<Command>& out);
void addSpamCommands(QList<Command>& out);
void addBlockCommands(QList<Command>& out);
void addTwoFactorCommands(QList<Command>& out);

// `posternctl status`'s backup line (commands_backup.cpp); *warn when it is a warning.
QString backupStatusLine(const Config& config, bool* warn);
// `posternctl status`'s spam filter line: core/spam_status.h spamStatusLine().

QList<Command> allCommands();
int runCtl(const QStringList& arguments, QTextStream& out, QTextStream& err);

// Reads a password: from stdin (--password-stdin), generated (--generate, printed
// once), or from the terminal twice without echo. Empty result + message on error.
QString readNewPassword(CtlContext& ctx, QString* error, bool* generated);

}  // namespace postern::ctl
