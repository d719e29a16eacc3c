// ctl.cpp — dispatch and help for posternctl; see ctl.h.
#include "ctl.h"

#include "core/config_ops.h"
#include "core/password.h"
#include "core/process.h"
#include "core/setting_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <QFile>
#include <QJsonDocument>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <limits>
#include <optional>

namespace postern::ctl {

bool CtlContext::loadConfig(Config& config) const {
    auto c = Config::load(configDir);
    if (!c) {
        err << "posternctl: " << c.errorMessage() << Qt::endl;
        return false;
    }
    config = std::move(*c);
    return true;
}

int CtlContext::fail(const QString& message) const {
    err << "posternctl: " << message << Qt::endl;
    return 1;
}

int CtlContext::usage(const QString& message) const {
    err << "posternctl: " << message << Qt::endl;
    return 2;
}

bool CtlContext::runAsDaemonUser(const Config& config) const {
    if (::geteuid() != 0) return true;
    if (auto st = dropPrivileges(get(config, keys::general::systemUser)); !st) {
        err << "posternctl: " << st.errorMessage() << Qt::endl;
        return false;
    }
    return true;
}

// The check lives in core/config_ops.h (root's helper in webd signals the supervisor too).
qint64 supervisorPid(const Config& config, QJsonObject* status) {
    return configops::runningSupervisor(config, status);
}

QList<Command> allCommands() {
    QList<Command> cmds;
    addAccountCommands(cmds);
    addConfigCommands(cmds);
    addDnsCommands(cmds);
    addStatusCommands(cmds);
    addQueueCommands(cmds);
    addFirewallCommands(cmds);
    addCheckCommands(cmds);
    addCertCommands(cmds);
    addBackupCommands(cmds);
    addImportCommands(cmds);
    addSieveCommands(cmds);
    addSieveGlobalCommands(cmds);
    addSpamCommands(cmds);
    addBlockCommands(cmds);
    addTwoFactorCommands(cmds);
    return cmds;
}

namespace {
void printHelp(QTextStream& s, const QList<Command>& cmds) {
    s << "usage: posternctl [--config DIR] COMMAND ...\n\n"
         "The config folder is --config DIR, else $POSTERN_CONFIG, else /etc/postern.\n\ncommands:\n";
    for (const Command& c : cmds) {
        QString line = QStringLiteral("  %1 %2").arg(c.words.join(QLatin1Char(' ')), c.usage).trimmed();
        s << "  " << line.leftJustified(58) << " " << c.summary << (c.needsRoot ? " (root)" : "") << "\n";
    }
    s.flush();
}

QString readLineNoEcho(const char* prompt, bool* ok) {
    *ok = false;
    FILE* tty = std::fopen("/dev/tty", "r+");
    if (!tty) return {};
    std::fputs(prompt, tty);
    std::fflush(tty);
    termios old{};
    const int fd = fileno(tty);
    const bool haveTerm = tcgetattr(fd, &old) == 0;
    if (haveTerm) {
        termios noEcho = old;
        noEcho.c_lflag &= ~tcflag_t(ECHO);
        tcsetattr(fd, TCSAFLUSH, &noEcho);
    }
    char buf[1024];
    const bool got = std::fgets(buf, sizeof buf, tty) != nullptr;
    if (haveTerm) tcsetattr(fd, TCSAFLUSH, &old);
    std::fputs("\n", tty);
    std::fclose(tty);
    if (!got) return {};
    QString s = QString::fromUtf8(buf);
    while (s.endsWith(QLatin1Char('\n')) || s.endsWith(QLatin1Char('\r'))) s.chop(1);
    *ok = true;
    return s;
}
}  // namespace

QString readNewPassword(CtlContext& ctx, QString* error, bool* generated) {
    *generated = false;
    if (ctx.has(QStringLiteral("generate"))) {
        *generated = true;
        return generatePassword();
    }
    if (ctx.has(QStringLiteral("password-stdin"))) {
        QFile in;
        if (!in.open(stdin, QIODevice::ReadOnly)) {
            *error = QStringLiteral("cannot read standard input");
            return {};
        }
        QByteArray line = in.readLine(4096);
        while (line.endsWith('\n') || line.endsWith('\r')) line.chop(1);
        if (line.isEmpty()) {
            *error = QStringLiteral("empty password on standard input");
            return {};
        }
        return QString::fromUtf8(line);
    }
    if (!isatty(STDIN_FILENO)) {
        *error = QStringLiteral("no terminal to ask for a password; use --password-stdin or --generate");
        return {};
    }
    bool ok1 = false, ok2 = false;
    const QString a = readLineNoEcho("New password: ", &ok1);
    if (!ok1 || a.isEmpty()) {
        *error = QStringLiteral("no password entered");
        return {};
    }
    const QString b = readLineNoEcho("Repeat password: ", &ok2);
    if (!ok2 || a != b) {
        *error = QStringLiteral("the passwords differ");
        return {};
    }
    return a;
}

namespace {

// Global options before the command words; the exit status when posternctl should stop here.
std::optional<int> takeGlobalOptions(QStringList& rest, QString* configDir, const QList<Command>& cmds,
                                     QTextStream& out, QTextStream& err) {
    while (!rest.isEmpty() && rest.first().startsWith(QLatin1Char('-'))) {
        const QString a = rest.takeFirst();
        if (a == u"-h" || a == u"--help") {
            printHelp(out, cmds);
            return 0;
        }
        if (a == u"--version") {
            out << "posternctl " << POSTERN_VERSION << Qt::endl;
            return 0;
        }
        if (a == u"--config" || a == u"-c") {
            if (rest.isEmpty()) {
                err << "posternctl: --config needs a folder" << Qt::endl;
                return 2;
            }
            *configDir = rest.takeFirst();
        } else if (a.startsWith(u"--config=")) {
            *configDir = a.mid(9);
        } else {
            err << "posternctl: unknown option " << a << " (see posternctl --help)" << Qt::endl;
            return 2;
        }
    }
    return std::nullopt;
}

// The command whose words start `rest` (the longest match), or null.
const Command* findCommand(const QList<Command>& cmds, const QStringList& rest) {
    const Command* best = nullptr;
    for (const Command& c : cmds) {
        if (c.words.size() > rest.size()) continue;
        if (rest.mid(0, c.words.size()) != c.words) continue;
        if (!best || c.words.size() > best->words.size()) best = &c;
    }
    return best;
}

// Options and arguments after the command words into ctx; the exit status when posternctl
// should stop here (--help, a usage error).
std::optional<int> takeCommandOptions(const Command& cmd, const QStringList& tail, CtlContext& ctx) {
    for (qsizetype i = 0; i < tail.size(); ++i) {
        const QString& a = tail.at(i);
        if (a == u"--") {
            ctx.args << tail.mid(i + 1);
            break;
        }
        if (!a.startsWith(u"--") || a.size() <= 2) {
            ctx.args << a;
            continue;
        }
        QString name = a.mid(2);
        QString value;
        const qsizetype eq = name.indexOf(QLatin1Char('='));
        if (eq >= 0) {
            value = name.mid(eq + 1);
            name = name.left(eq);
        } else if (cmd.valueOptions.contains(name)) {
            if (i + 1 >= tail.size()) return ctx.usage(QStringLiteral("--%1 needs a value").arg(name));
            value = tail.at(++i);
        }
        if (name == u"help") {
            ctx.out << "usage: posternctl " << cmd.words.join(QLatin1Char(' ')) << " " << cmd.usage << "\n  "
                    << cmd.summary << (cmd.needsRoot ? " (root)" : "") << Qt::endl;
            return 0;
        }
        if (name == u"config") {  // also accepted after the command words
            ctx.configDir = value;
            continue;
        }
        if (!cmd.valueOptions.contains(name) && !cmd.flags.contains(name))
            return ctx.usage(QStringLiteral("unknown option --%1 for '%2' (usage: %2 %3)")
                                 .arg(name, cmd.words.join(QLatin1Char(' ')), cmd.usage));
        if (eq >= 0 && !cmd.valueOptions.contains(name))
            return ctx.usage(QStringLiteral("--%1 takes no value").arg(name));
        ctx.opts.insert(name, value);
    }
    return std::nullopt;
}

}  // namespace

int runCtl(const QStringList& arguments, QTextStream& out, QTextStream& err) {
    const QList<Command> cmds = allCommands();
    QStringList rest = arguments.mid(1);
    QString configDir;
    if (const auto stop = takeGlobalOptions(rest, &configDir, cmds, out, err)) return *stop;
    if (rest.isEmpty()) {
        printHelp(err, cmds);
        return 2;
    }
    const Command* best = findCommand(cmds, rest);
    if (!best) {
        QStringList near;
        for (const Command& c : cmds)
            if (c.words.first() == rest.first()) near << c.words.join(QLatin1Char(' '));
        err << "posternctl: unknown command '" << rest.join(QLatin1Char(' ')) << "'";
        if (!near.isEmpty()) err << " (try: " << near.join(QStringLiteral(", ")) << ")";
        err << Qt::endl;
        return 2;
    }
    if (configDir.isEmpty()) configDir = resolveConfigDir({});
    CtlContext ctx{configDir, {}, {}, out, err};
    if (const auto stop = takeCommandOptions(*best, rest.mid(best->words.size()), ctx)) return *stop;
    // A dry run changes nothing, so it never needs root.
    if (best->needsRoot && ::geteuid() != 0 && !ctx.has(QStringLiteral("dry-run")))
        return ctx.usage(
            QStringLiteral("'%1' needs root (run it as root, e.g. with sudo)").arg(best->words.join(QLatin1Char(' '))));
    return best->run(ctx);
}

}  // namespace postern::ctl
