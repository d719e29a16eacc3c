// wizard.cpp — postern-wizard: the first-run flow (see wizard.h).
#include "wizard.h"

#include "cli.h"

#include "checks.h"
#include "environment.h"
#include "setup.h"

#include "core/address.h"
#include "core/atomic_file.h"
#include "core/config.h"
#include "core/dns.h"

#include <QCoreApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QSslSocket>
#include <QTcpSocket>
#include <QThread>

#include <csignal>
#include <cstdio>
#include <termios.h>
#include <unistd.h>

namespace postern::wizard {

namespace {

// Reserved names (RFC 2606/6761): they can never resolve in public DNS, so DNS checks are skipped.
bool isReservedDomain(const QString& d) {
    for (const char* tld : {".test", ".example", ".invalid", ".localhost", ".local"})
        if (d.endsWith(QLatin1String(tld)) || d == QLatin1String(tld + 1)) return true;
    return false;
}

class Console {
public:
    Console() : m_out(stdout), m_in(stdin) {}
    void say(const QString& s) {
        m_out << s << Qt::endl;
    }
    // Asks until `validate` accepts (returns empty error). Default shown in brackets.
    QString ask(const QString& question, const QString& def, const std::function<QString(const QString&)>& validate, bool secret = false) {
        for (;;) {
            // Echo goes off before the prompt appears, so an answer typed right after it is neither
            // shown nor lost (serial consoles and scripted terminals answer at once).
            termios saved {};
            const bool quiet = secret && echoOff(&saved);
            m_out << question << (def.isEmpty() ? QString() : QStringLiteral(" [%1]").arg(secret ? QStringLiteral("generate") : def)) << ": ";
            m_out.flush();
            QString line = m_in.readLine();
            if (quiet) {
                tcsetattr(STDIN_FILENO, TCSANOW, &saved);
                m_out << Qt::endl;
            }
            if (line.isNull()) return def;  // end of input: take the default
            line = line.trimmed();
            if (line.isEmpty()) line = def;
            const QString err = validate ? validate(line) : QString();
            if (err.isEmpty()) return line;
            m_out << "  " << err << " — please try again." << Qt::endl;
        }
    }
    bool confirm(const QString& question, bool def) {
        const QString a = ask(question + (def ? QStringLiteral(" (Y/n)") : QStringLiteral(" (y/N)")), QString(), [](const QString& v) {
            const QString l = v.toLower();
            return (l.isEmpty() || l == u"y" || l == u"yes" || l == u"n" || l == u"no") ? QString() : QStringLiteral("answer y or n");
        });
        if (a.isEmpty()) return def;
        return a.toLower().startsWith(QLatin1Char('y'));
    }

private:
    // Turns terminal echo off (keeping type-ahead); false when stdin is not a terminal.
    static bool echoOff(termios* saved) {
        if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, saved) != 0) return false;
        termios quiet = *saved;
        quiet.c_lflag &= ~tcflag_t(ECHO);
        return tcsetattr(STDIN_FILENO, TCSANOW, &quiet) == 0;
    }
    QTextStream m_out;
    QTextStream m_in;
};

QString validateDomain(const QString& v) {
    auto d = normalizeDomain(v);
    if (!d) return d.errorMessage();
    if (!d->contains(QLatin1Char('.'))) return QStringLiteral("a mail domain has at least one dot (like example.org)");
    return {};
}

QString validateAddress(const QString& v) {
    auto a = normalizeAddress(v);
    return a ? QString() : a.errorMessage();
}

QString banner(ListenerName kind) {
    switch (kind) {
        case ListenerName::Smtp: return QStringLiteral("220");
        case ListenerName::Imap: return QStringLiteral("* OK");
        case ListenerName::Pop3: return QStringLiteral("+OK");
        case ListenerName::Http: return QString();
    }
    return {};
}

}  // namespace

ListenerName kindOf(const QString& listener) {
    if (listener.startsWith(u"smtp") || listener.startsWith(u"submission")) return ListenerName::Smtp;
    if (listener.startsWith(u"imap")) return ListenerName::Imap;
    if (listener.startsWith(u"pop3")) return ListenerName::Pop3;
    return ListenerName::Http;
}

bool isImplicitTlsListener(const QString& listener) {
    return listener == u"submissions" || listener == u"imaps" || listener == u"pop3s" || listener == u"https";
}

// Connects like a client and waits for the protocol's greeting (never only for the TCP connect).
QString probeListener(const QString& listener, const QString& address, int timeoutMs) {
    const qsizetype colon = address.lastIndexOf(QLatin1Char(':'));
    QString host = address.left(colon);
    const quint16 port = quint16(address.mid(colon + 1).toUInt());
    if (host == u"*") host = QStringLiteral("127.0.0.1");
    host.remove(QLatin1Char('[')).remove(QLatin1Char(']'));
    if (host == u"0.0.0.0") host = QStringLiteral("127.0.0.1");
    if (host == u"::") host = QStringLiteral("::1");
    QSslSocket s;
    s.setPeerVerifyMode(QSslSocket::VerifyNone);  // our own, freshly made certificate
    QElapsedTimer t;
    t.start();
    if (isImplicitTlsListener(listener)) {
        s.connectToHostEncrypted(host, port);
        if (!s.waitForEncrypted(timeoutMs)) return QStringLiteral("no TLS handshake: %1").arg(s.errorString());
    } else {
        s.connectToHost(host, port);
        if (!s.waitForConnected(timeoutMs)) return QStringLiteral("no connection: %1").arg(s.errorString());
    }
    const QString expect = banner(kindOf(listener));
    if (expect.isEmpty()) {  // HTTP: ask for the health endpoint
        s.write("GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n");
    }
    QByteArray got;
    while (!got.contains('\n') && t.elapsed() < timeoutMs) {
        if (!s.waitForReadyRead(int(std::max<qint64>(1, timeoutMs - t.elapsed())))) break;
        got += s.readAll();
    }
    const QString line = QString::fromUtf8(got.left(got.indexOf('\n'))).trimmed();
    if (expect.isEmpty()) return line.startsWith(u"HTTP/1.") ? QString() : QStringLiteral("no HTTP answer");
    return line.startsWith(expect) ? QString() : QStringLiteral("unexpected greeting '%1'").arg(line.left(80));
}

int runWizard(const WizardOptions& opt) {
    Console con;
    Answers a = opt.answers;
    const bool interactive = opt.interactive;
    const bool root = ::geteuid() == 0;
    con.say(QStringLiteral("Postern first-run wizard %1").arg(QLatin1String(POSTERN_VERSION)));
    con.say(QStringLiteral("Configuration folder: %1").arg(a.configDir));

    // 1. Environment.
    const Environment env = detectEnvironment();
    con.say(QStringLiteral("\n== This machine"));
    con.say(QStringLiteral("  platform: %1").arg(env.platform));
    con.say(QStringLiteral("  host name: %1").arg(env.fqdn));
    for (const InterfaceAddress& i : env.addresses)
        con.say(QStringLiteral("  %1 %2 (%3)").arg(i.interface, -8).arg(i.address.toString()).arg(toString(i.kind)));
    if (env.behindNat()) con.say(QStringLiteral("  No public address on this machine: it is behind NAT (or in a container)."));
    con.say(QStringLiteral("  resolvers: %1").arg(env.resolvers.isEmpty() ? QStringLiteral("none found") : env.resolvers.join(QStringLiteral(", "))));

    // Defaults from an existing configuration: re-running keeps what is there.
    auto existing = Config::load(a.configDir);
    const bool configured = existing && existing->isSet(QStringLiteral("primary_domain"));
    if (configured) {
        if (a.domain.isEmpty()) a.domain = existing->value(QStringLiteral("primary_domain"));
        if (a.hostname.isEmpty()) a.hostname = existing->value(QStringLiteral("hostname"));
        if (a.admin.isEmpty()) a.admin = existing->value(QStringLiteral("admin_address"));
        con.say(QStringLiteral("\nThis system is already configured for %1; existing keys and passwords are kept.").arg(a.domain));
    }

    // 2. Questions.
    if (interactive) {
        con.say(QStringLiteral("\n== A few questions (Enter takes the value in brackets)"));
        a.domain = con.ask(QStringLiteral("Mail domain (the part after @)"), a.domain.isEmpty() ? QStringLiteral("example.org") : a.domain, validateDomain);
        a.domain = *normalizeDomain(a.domain);
        a.hostname = con.ask(QStringLiteral("Mail host name"), a.hostname.isEmpty() ? QStringLiteral("mail.") + a.domain : a.hostname, [](const QString& v) {
            auto d = normalizeDomain(v);
            return d ? QString() : d.errorMessage();
        });
        a.user = con.ask(QStringLiteral("First user's address"), a.user.isEmpty() ? QStringLiteral("you@") + a.domain : a.user, [&a](const QString& v) {
            const QString err = validateAddress(v);
            if (!err.isEmpty()) return err;
            return normalizeAddress(v)->endsWith(QLatin1Char('@') + a.domain) ? QString()
                                                                                : QStringLiteral("the first user must be in %1").arg(a.domain);
        });
        const QString pw = con.ask(QStringLiteral("Password for %1 (Enter: generate one)").arg(a.user), QStringLiteral("-"),
                                   [](const QString& v) { return v == u"-" || v.size() >= 8 ? QString() : QStringLiteral("use at least 8 characters"); }, true);
        a.generatePassword = pw == u"-";
        if (!a.generatePassword) a.password = pw;
        a.admin = con.ask(QStringLiteral("Where should postmaster@ and abuse@ go"), a.admin.isEmpty() ? a.user : a.admin, validateAddress);
        if (env.behindNat() && a.publicAddresses.isEmpty()) {
            const QString ip = con.ask(QStringLiteral("Public IP address of this server (behind NAT; Enter to skip)"), QStringLiteral("-"), [](const QString& v) {
                return v == u"-" || QHostAddress(v).protocol() != QAbstractSocket::UnknownNetworkLayerProtocol ? QString()
                                                                                                         : QStringLiteral("that is not an IP address");
            });
            if (ip != u"-") a.publicAddresses << QHostAddress(ip);
        }
    } else {
        if (a.domain.isEmpty()) {
            // The demo default: a whole working instance that needs no answers.
            a.domain = QStringLiteral("example.test");
            if (a.user.isEmpty()) a.user = QStringLiteral("demo@example.test");
            if (a.password.isEmpty()) a.generatePassword = true;
            if (a.bind == QHostAddress(QHostAddress::Any) && !opt.bindGiven) a.bind = QHostAddress(QHostAddress::LocalHost);
            con.say(QStringLiteral("\nNo answers given: setting up the demo (domain example.test on %1).").arg(a.bind.toString()));
        }
        auto d = normalizeDomain(a.domain);
        if (!d || !d->contains(QLatin1Char('.'))) {
            con.say(QStringLiteral("postern-wizard: invalid --domain '%1'%2").arg(a.domain, d ? QString() : QStringLiteral(": ") + d.errorMessage()));
            return 2;
        }
        a.domain = *d;
        if (!a.user.isEmpty() && validateAddress(a.user).size()) {
            con.say(QStringLiteral("postern-wizard: invalid --user '%1': %2").arg(a.user, validateAddress(a.user)));
            return 2;
        }
    }
    if (a.hostname.isEmpty()) a.hostname = QStringLiteral("mail.") + a.domain;
    a.hostname = normalizeDomain(a.hostname).valueOr(a.hostname);
    if (!a.user.isEmpty()) a.user = normalizeAddress(a.user).valueOr(a.user);
    if (a.admin.isEmpty()) a.admin = a.user;
    if (!a.admin.isEmpty()) a.admin = normalizeAddress(a.admin).valueOr(a.admin);
    if (a.ports.isEmpty()) a.ports = root ? standardPorts() : unprivilegedPorts();
    if (a.publicAddresses.isEmpty()) a.publicAddresses = env.publicAddresses(false) + env.publicAddresses(true);

    // 3. Checks.
    con.say(QStringLiteral("\n== Checks"));
    QList<Finding> findings;
    for (auto it = a.ports.begin(); it != a.ports.end(); ++it) {
        if (a.disabled.contains(it.key())) continue;
        Finding f = checkPort(it.key(), a.bind, it.value());
        if (f.severity == Severity::Problem && opt.pickFreePorts && it.value() != 0) {
            // Demo and tests: move to the next free port instead of failing.
            for (quint16 p = quint16(it.value() + 1); p < it.value() + 200; ++p) {
                if (checkPort(it.key(), a.bind, p).severity == Severity::Ok) {
                    f.severity = Severity::Warning;
                    f.remedy = QStringLiteral("using port %1 instead").arg(p);
                    it.value() = p;
                    break;
                }
            }
        }
        findings << f;
    }
    findings << checkFirewall();
    if (!opt.skipNetworkChecks) {
        const qsizetype colon = opt.outboundProbe.lastIndexOf(QLatin1Char(':'));
        const Finding out25 = checkOutbound25(opt.outboundProbe.left(colon), quint16(opt.outboundProbe.mid(colon + 1).toUInt()), 3000);
        findings << out25;
        if (out25.severity != Severity::Ok && interactive && a.smarthost.isEmpty()) {
            // Outbound port 25 is blocked here: offer the provider's relay (smarthost) now.
            con.say(QStringLiteral("  Outbound port 25 seems blocked: %1").arg(out25.observed));
            a.smarthost = con.ask(QStringLiteral("Smarthost for outgoing mail, HOST:PORT (587 STARTTLS or 465 TLS; empty: none)"), QString(),
                                  [](const QString& v) {
                                      if (v.isEmpty()) return QString();
                                      const qsizetype c = v.lastIndexOf(QLatin1Char(':'));
                                      bool ok = false;
                                      const uint port = c > 0 ? v.mid(c + 1).toUInt(&ok) : 0;
                                      return c > 0 && ok && port > 0 && port < 65536 ? QString() : QStringLiteral("write it as HOST:PORT, e.g. smtp.provider.net:587");
                                  });
            if (!a.smarthost.isEmpty()) {
                a.smarthostUser = con.ask(QStringLiteral("Smarthost login (empty: no login)"), QString(), [](const QString&) { return QString(); });
                if (!a.smarthostUser.isEmpty())
                    a.smarthostPassword = con.ask(QStringLiteral("Smarthost password"), QString(),
                                                  [](const QString& v) { return v.isEmpty() ? QStringLiteral("enter the password") : QString(); }, true);
            }
        }
        if (!isReservedDomain(a.domain)) {
            QList<DnsServer> servers;
            for (const QString& s : a.dnsServers)
                if (auto ds = parseDnsServer(s)) servers << *ds;
            LdnsResolver dns(servers, 2000);
            QList<QHostAddress> ours;
            for (const InterfaceAddress& i : env.addresses) ours << i.address;
            ours << a.publicAddresses;
            findings << checkHostnameResolves(dns, a.hostname, ours);
            findings << checkReverseDns(dns, a.hostname, a.publicAddresses);
            QList<QHostAddress> v4;
            for (const QHostAddress& x : a.publicAddresses)
                if (x.protocol() == QAbstractSocket::IPv4Protocol) v4 << x;
            findings << checkBlocklists(dns, v4, opt.blocklists);
        } else {
            con.say(QStringLiteral("  (DNS checks skipped: %1 is a reserved name that never resolves publicly)").arg(a.domain));
        }
    }
    bool problems = false;
    for (const Finding& f : findings) {
        con.say(QStringLiteral("  [%1] %2").arg(toString(f.severity), -7).arg(f.observed));
        if (!f.remedy.isEmpty()) con.say(QStringLiteral("            -> %1").arg(f.remedy));
        if (f.severity == Severity::Problem) problems = true;
    }
    if (problems && interactive && !con.confirm(QStringLiteral("There are problems (see above). Continue anyway?"), true)) return 1;

    // 4. Generate (showing what changes on a configured system).
    const QStringList plan = planChanges(a);
    if (configured && !plan.isEmpty()) {
        con.say(QStringLiteral("\n== Changes to the existing configuration"));
        for (const QString& p : plan) con.say(QStringLiteral("  ") + p);
        if (interactive && !con.confirm(QStringLiteral("Apply these changes?"), true)) return 1;
    }
    auto report = applySetup(a);
    if (!report) {
        con.say(QStringLiteral("postern-wizard: %1").arg(report.errorMessage()));
        return 1;
    }
    con.say(QStringLiteral("\n== Written"));
    con.say(QStringLiteral("  configuration, accounts, TLS certificate and DKIM keys in %1").arg(a.configDir));
    if (!report->generatedPassword.isEmpty())
        con.say(QStringLiteral("  password of %1: %2   (shown once; note it now)").arg(a.user, report->generatedPassword));
    for (const QString& n : report->notes) con.say(QStringLiteral("  note: ") + n);

    // 5. DNS records.
    con.say(QStringLiteral("\n== DNS records to publish\n"));
    con.say(report->recordsTable);
    con.say(QStringLiteral("The same records as a zone file, CSV and JSON: %1/dns-records.{zone,csv,json}").arg(a.configDir));
    con.say(QStringLiteral("Check them once published: posternctl --config %1 dns check").arg(a.configDir));

    // 6. Firewall.
    con.say(QStringLiteral("\n== Firewall"));
    if (opt.skipFirewall) {
        con.say(QStringLiteral("  (skipped: --skip-firewall)"));
    } else {
        // The firewall module reads the host's rules, says per port whether mail gets in and
        // which rule decides, and opens the ports with the detected backend when asked.
        QString fwReport;
        QTextStream rs(&fwReport);
        const firewall::SystemRunner runner;
        const int status = firewall::runFirewallCli({QStringLiteral("postern-firewall"), QStringLiteral("--config"), a.configDir, QStringLiteral("status")}, rs, rs, runner);
        rs.flush();
        for (const QString& line : fwReport.split(QLatin1Char('\n'), Qt::SkipEmptyParts)) con.say(QStringLiteral("  ") + line);
        if (status == 1) {
            QString fwPlan;
            QTextStream ps(&fwPlan);
            firewall::runFirewallCli({QStringLiteral("postern-firewall"), QStringLiteral("--config"), a.configDir, QStringLiteral("plan")}, ps, ps, runner);
            ps.flush();
            for (const QString& line : fwPlan.split(QLatin1Char('\n'), Qt::SkipEmptyParts)) con.say(QStringLiteral("  ") + line);
            const bool apply = interactive ? con.confirm(QStringLiteral("Apply these firewall changes now?"), false) : opt.applyFirewall;
            if (apply) {
                QString applied;
                QTextStream as(&applied);
                const int rc = firewall::runFirewallCli({QStringLiteral("postern-firewall"), QStringLiteral("--config"), a.configDir, QStringLiteral("apply")}, as, as, runner);
                as.flush();
                for (const QString& line : applied.split(QLatin1Char('\n'), Qt::SkipEmptyParts)) con.say(QStringLiteral("  ") + line);
                con.say(rc == 0 ? QStringLiteral("  Firewall: the mail ports are open now (undo: postern-firewall remove).")
                                : QStringLiteral("  Firewall: not every port could be opened; see above."));
            } else {
                con.say(QStringLiteral("  Not changed. Later: postern-firewall --config %1 apply").arg(a.configDir));
            }
        }
    }

    if (!opt.launch) {
        con.say(QStringLiteral("\nNothing started (--no-launch). Start the daemons with: postern-appliance --config %1").arg(a.configDir));
        return 0;
    }
    return launchAndWait(opt, a);
}

int launchAndWait(const WizardOptions& opt, const Answers& a) {
    QTextStream out(stdout);
    auto config = Config::load(a.configDir);
    if (!config) {
        out << "postern-wizard: " << config.errorMessage() << Qt::endl;
        return 1;
    }
    QString supervisor = opt.supervisorPath;
    if (supervisor.isEmpty()) {
        for (const QString& d : {qEnvironmentVariable("POSTERN_LIBEXEC"), QCoreApplication::applicationDirPath(), QStringLiteral("/usr/sbin")}) {
            if (!d.isEmpty() && QFileInfo(d + QStringLiteral("/postern-appliance")).isExecutable()) {
                supervisor = d + QStringLiteral("/postern-appliance");
                break;
            }
        }
    }
    if (supervisor.isEmpty()) {
        out << "postern-wizard: postern-appliance (the supervisor) is not installed; the daemons were NOT started." << Qt::endl;
        return 1;
    }
    out << "\n== Starting the daemons (" << supervisor << ")" << Qt::endl;
    const QString readyFile = config->runDir() + QStringLiteral("/postern-appliance.ready");
    (void)removeFile(readyFile);  // run_dir is the daemon user's: core/atomic_file reaches it by SafeDir
    QProcess proc;
    proc.setProcessChannelMode(QProcess::ForwardedChannels);
    proc.start(supervisor, {QStringLiteral("--config"), a.configDir});
    if (!proc.waitForStarted(10000)) {
        out << "postern-wizard: cannot start " << supervisor << Qt::endl;
        return 1;
    }
    QElapsedTimer t;
    t.start();
    QJsonObject ready;
    while (t.elapsed() < 60000 && proc.state() == QProcess::Running) {
        if (const auto bytes = readFile(readyFile, 64 * 1024)) {
            ready = QJsonDocument::fromJson(*bytes).object();
            if (ready.value(QStringLiteral("pid")).toInteger() == proc.processId()) break;
        }
        QThread::msleep(100);
        QCoreApplication::processEvents();
    }
    if (ready.isEmpty()) {
        out << "postern-wizard: the daemons did not become ready within 60 s; see the log in " << config->logDir() << Qt::endl;
        proc.terminate();
        proc.waitForFinished(20000);
        return 1;
    }
    out << "\n== Listeners (each checked like a client would)" << Qt::endl;
    const QJsonObject listeners = ready.value(QStringLiteral("listeners")).toObject();
    bool allGood = true;
    for (auto it = listeners.begin(); it != listeners.end(); ++it) {
        for (const QJsonValue& v : it.value().toArray()) {
            const QString err = probeListener(it.key(), v.toString(), 10000);
            out << "  " << QStringLiteral("%1").arg(it.key(), -12) << v.toString() << "  " << (err.isEmpty() ? QStringLiteral("answers") : err) << Qt::endl;
            if (!err.isEmpty()) allGood = false;
        }
    }
    for (const QJsonValue& s : ready.value(QStringLiteral("services")).toArray()) {
        const QJsonObject o = s.toObject();
        if (o.value(QStringLiteral("state")).toString() != u"running" && o.value(QStringLiteral("state")).toString() != u"disabled")
            out << "  " << o.value(QStringLiteral("name")).toString() << ": " << o.value(QStringLiteral("state")).toString() << Qt::endl;
    }
    const QString host = config->hostname();
    out << "\n== Client settings for your users\n"
        << "  Incoming (IMAP): " << host << " port 993, SSL/TLS   (or 143 with STARTTLS)\n"
        << "  Incoming (POP3): " << host << " port 995, SSL/TLS   (or 110 with STARTTLS)\n"
        << "  Outgoing (SMTP): " << host << " port 465, SSL/TLS   (or 587 with STARTTLS)\n"
        << "  User name: the full e-mail address; password: as set\n"
        << "  (ports above are the standard ones; this instance listens where shown in the table)\n"
        << "\nPublish the DNS records shown above; `posternctl --config " << a.configDir << " dns check` tells which are still missing.\n"
        << "Backups: `posternctl --config " << a.configDir << " backup create DIR` now, or daily off-site with restic: set backup.restic_repository and backup.restic_password_file.\n"
        << (allGood ? "\nPostern is running. Press Ctrl-C to stop it.\n" : "\nSome listeners did not answer (see above). Press Ctrl-C to stop.\n")
        << Qt::flush;
    // Stay in the foreground with the supervisor; pass our stop signals on to it.
    static qint64 childPid = 0;
    childPid = proc.processId();
    auto forward = [](int sig) {
        if (childPid > 0) ::kill(pid_t(childPid), sig);
    };
    std::signal(SIGINT, forward);
    std::signal(SIGTERM, forward);
    std::signal(SIGHUP, forward);
    proc.waitForFinished(-1);
    return proc.exitStatus() == QProcess::NormalExit ? proc.exitCode() : 1;
}

}  // namespace postern::wizard
