// main.cpp — postern-wizard: command line, answers file and environment.
//
// Security:
//   Exposes: no port. Input: the operator's answers (terminal, flags, answers
//   file, environment); network use is outgoing only (DNS, an outbound port-25
//   probe, probes of our own listeners once started).
//   Runs as: root, to create system_user, give it data_dir and set the secrets'
//   group, to change the packet filter (the firewall library's apply, as
//   postern-firewall does: only rules of its own) and to start the supervisor;
//   it never drops root.
//   Writes: the config folder (setup.h, firewall-state.json), data_dir's top
//   folders, handed over by descriptor (core/safe_path.h chownTree: links are
//   never followed, files with more than one link are left alone); reads the
//   supervisor's ready and status files through SafeDir.
//   An attacker who controls it is root: it is the administrator's tool.
//
// postern-wizard [--non-interactive] [--config DIR] [--domain D] [--hostname H]
//   [--admin ADDRESS] [--data DIR] [--user ADDRESS] [--password-file FILE]
//   [--bind ADDRESS] [--port NAME=PORT ...] [--disable NAME ...] [--public-ip IP ...]
//   [--smarthost HOST[:PORT]] [--smarthost-user USER] [--smarthost-password-file FILE]
//   [--dns-server IP[:PORT] ...] [--answers FILE]
//   [--reset-password] [--no-launch] [--skip-network-checks] [--outbound-probe HOST:PORT]
//   [--apply-firewall] [--skip-firewall]
// Environment (container convention): POSTERN_DOMAIN, POSTERN_HOSTNAME,
// POSTERN_ADMIN, POSTERN_USER, POSTERN_PASSWORD, POSTERN_PASSWORD_FILE,
// POSTERN_BIND, POSTERN_PUBLIC_IP, POSTERN_SMARTHOST, POSTERN_DATA. An answers
// file holds the same names as KEY=VALUE lines. Precedence: flags, answers
// file, environment. Without a terminal on stdin the wizard never asks.
#include "wizard.h"

#include "core/address.h"
#include "core/config.h"
#include "core/services.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QTextStream>

#include <unistd.h>
#include <functional>

using namespace postern;
using namespace postern::wizard;

namespace {

QString readSecretFile(const QString& path, QString* error) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) {
        *error = QStringLiteral("cannot read %1").arg(path);
        return {};
    }
    QByteArray line = f.readLine(4096);
    while (line.endsWith('\n') || line.endsWith('\r')) line.chop(1);
    return QString::fromUtf8(line);
}

void applyKey(WizardOptions& o, const QString& key, const QString& value, QString* error) {
    Answers& a = o.answers;
    if (key == u"POSTERN_DOMAIN")
        a.domain = value;
    else if (key == u"POSTERN_HOSTNAME")
        a.hostname = value;
    else if (key == u"POSTERN_ADMIN")
        a.admin = value;
    else if (key == u"POSTERN_USER")
        a.user = value;
    else if (key == u"POSTERN_PASSWORD")
        a.password = value;
    else if (key == u"POSTERN_PASSWORD_FILE")
        a.password = readSecretFile(value, error);
    else if (key == u"POSTERN_DATA")
        a.dataDir = value;
    else if (key == u"POSTERN_SMARTHOST")
        a.smarthost = value;
    else if (key == u"POSTERN_SMARTHOST_USER")
        a.smarthostUser = value;
    else if (key == u"POSTERN_SMARTHOST_PASSWORD_FILE")
        a.smarthostPassword = readSecretFile(value, error);
    else if (key == u"POSTERN_BIND") {
        if (!a.bind.setAddress(value)) *error = QStringLiteral("POSTERN_BIND: '%1' is not an IP address").arg(value);
        o.bindGiven = true;
    } else if (key == u"POSTERN_PUBLIC_IP") {
        for (const QString& ip : value.split(QLatin1Char(','), Qt::SkipEmptyParts)) {
            QHostAddress h;
            if (!h.setAddress(ip.trimmed()))
                *error = QStringLiteral("POSTERN_PUBLIC_IP: '%1' is not an IP address").arg(ip);
            a.publicAddresses << h;
        }
    }
}

int usage(const QString& message) {
    QTextStream(stderr) << "postern-wizard: " << message << "\n(see postern-wizard --help)\n";
    return 2;
}

// KEY=VALUE lines with the POSTERN_* names (# comments, optional double quotes).
void readAnswersFile(WizardOptions& o, const QString& path, QString* error, bool* sawAnswers) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) {
        *error = QStringLiteral("cannot read the answers file %1").arg(f.fileName());
        return;
    }
    for (const QByteArray& line : f.readAll().split('\n')) {
        const QString l = QString::fromUtf8(line).trimmed();
        if (l.isEmpty() || l.startsWith(QLatin1Char('#')) || !l.contains(QLatin1Char('='))) continue;
        QString v = l.section(QLatin1Char('='), 1).trimmed();
        if (v.size() >= 2 && (v.startsWith(QLatin1Char('"')) && v.endsWith(QLatin1Char('"'))))
            v = v.mid(1, v.size() - 2);
        applyKey(o, l.section(QLatin1Char('='), 0, 0).trimmed(), v, error);
        if (l.startsWith(u"POSTERN_DOMAIN")) *sawAnswers = true;
    }
}

void printHelp() {
    QTextStream(stdout)
        << "usage: postern-wizard [--non-interactive] [--config DIR] [--domain D] [--hostname H] [--admin ADDRESS]\n"
           "  [--data DIR] [--user ADDRESS --password-file FILE] [--bind ADDRESS] [--port NAME=PORT ...]\n"
           "  [--disable NAME ...] [--public-ip IP ...] [--smarthost HOST[:PORT]] [--smarthost-user USER]\n"
           "  [--smarthost-password-file FILE] [--dns-server IP[:PORT] ...]\n"
           "  [--answers FILE] [--reset-password] [--no-launch] [--skip-network-checks] [--outbound-probe HOST:PORT]\n"
           "  [--apply-firewall] [--skip-firewall]\n"
        << "NAME: " << listenerNames().join(QLatin1Char(' ')) << "\n"
        << "Without a terminal and without answers it sets up the demo (example.test on 127.0.0.1).\n";
}

// One command-line argument; `value` takes the next one. False when `arg` is unknown.
bool applyArgument(WizardOptions& o, const QString& arg, const std::function<QString()>& value, QString* error,
                   bool* sawAnswers) {
    Answers& a = o.answers;
    if (arg == u"--non-interactive")
        o.interactive = false;
    else if (arg == u"--interactive")
        o.interactive = true;
    else if (arg == u"--config" || arg == u"-c")
        a.configDir = QDir(value()).absolutePath();
    else if (arg.startsWith(u"--config="))
        a.configDir = QDir(arg.mid(9)).absolutePath();
    else if (arg == u"--domain") {
        a.domain = value();
        *sawAnswers = true;
    } else if (arg == u"--hostname")
        a.hostname = value();
    else if (arg == u"--admin")
        a.admin = value();
    else if (arg == u"--data")
        a.dataDir = QDir(value()).absolutePath();
    else if (arg == u"--user")
        a.user = value();
    else if (arg == u"--password-file")
        a.password = readSecretFile(value(), error);
    else if (arg == u"--reset-password")
        a.resetPassword = true;
    else if (arg == u"--smarthost")
        a.smarthost = value();
    else if (arg == u"--smarthost-user")
        a.smarthostUser = value();
    else if (arg == u"--smarthost-password-file")
        a.smarthostPassword = readSecretFile(value(), error);
    else if (arg == u"--dns-server")
        a.dnsServers << value();
    else if (arg == u"--no-launch")
        o.launch = false;
    else if (arg == u"--skip-network-checks")
        o.skipNetworkChecks = true;
    else if (arg == u"--outbound-probe")
        o.outboundProbe = value();
    else if (arg == u"--apply-firewall")
        o.applyFirewall = true;
    else if (arg == u"--skip-firewall")
        o.skipFirewall = true;
    else if (arg == u"--pick-free-ports")
        o.pickFreePorts = true;
    else if (arg == u"--supervisor")
        o.supervisorPath = value();
    else if (arg == u"--bind") {
        if (!a.bind.setAddress(value())) *error = QStringLiteral("--bind: not an IP address");
        o.bindGiven = true;
    } else if (arg == u"--public-ip") {
        QHostAddress h;
        if (!h.setAddress(value())) *error = QStringLiteral("--public-ip: not an IP address");
        a.publicAddresses << h;
    } else if (arg == u"--port") {
        const QString v = value();
        const QString name = v.section(QLatin1Char('='), 0, 0);
        bool ok = false;
        const uint port = v.section(QLatin1Char('='), 1).toUInt(&ok);
        if (!standardPorts().contains(name) || !ok || port > 65535)
            *error = QStringLiteral("--port %1: expected NAME=PORT with NAME one of %2")
                         .arg(v, listenerNames().join(QLatin1Char(' ')));
        if (a.ports.isEmpty()) a.ports = ::geteuid() == 0 ? standardPorts() : unprivilegedPorts();
        a.ports[name] = quint16(port);
    } else if (arg == u"--disable") {
        const QString name = value();
        if (!standardPorts().contains(name)) *error = QStringLiteral("--disable: unknown listener %1").arg(name);
        a.disabled << name;
    } else if (arg == u"--answers") {
        readAnswersFile(o, value(), error, sawAnswers);
    } else {
        return false;
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments();
    WizardOptions o;
    o.interactive = isatty(STDIN_FILENO);
    o.answers.configDir = resolveConfigDir(args);
    QString error;
    // Environment first, then the answers file, then flags (later ones win).
    for (const char* k :
         {"POSTERN_DOMAIN", "POSTERN_HOSTNAME", "POSTERN_ADMIN", "POSTERN_USER", "POSTERN_PASSWORD",
          "POSTERN_PASSWORD_FILE", "POSTERN_DATA", "POSTERN_SMARTHOST", "POSTERN_BIND", "POSTERN_PUBLIC_IP"}) {
        if (qEnvironmentVariableIsSet(k)) applyKey(o, QString::fromLatin1(k), qEnvironmentVariable(k), &error);
    }
    const bool envAnswers = qEnvironmentVariableIsSet("POSTERN_DOMAIN");
    bool sawAnswers = envAnswers;
    for (qsizetype i = 1; i < args.size(); ++i) {
        const QString& arg = args.at(i);
        auto value = [&]() -> QString {
            if (i + 1 >= args.size()) {
                error = QStringLiteral("%1 needs a value").arg(arg);
                return {};
            }
            return args.at(++i);
        };
        if (arg == u"--help" || arg == u"-h") {
            printHelp();
            return 0;
        }
        if (!applyArgument(o, arg, value, &error, &sawAnswers))
            return usage(QStringLiteral("unknown argument %1").arg(arg));
        if (!error.isEmpty()) return usage(error);
    }
    if (!error.isEmpty()) return usage(error);
    // The demo (no answers at all, no terminal) takes free ports rather than failing on busy ones.
    if (!o.interactive && !sawAnswers) o.pickFreePorts = true;
    return runWizard(o);
}
