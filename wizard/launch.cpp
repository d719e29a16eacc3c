// launch.cpp — the wizard's last steps (see wizard.h): launch the supervisor, verify
// every listener like a client, report the client settings and stay in the foreground.
//
// The supervisor's output (its own log lines and the daemons', which it passes on)
// never reaches the wizard's terminal: every one of those lines is also in
// <log_dir>/mail.log, which the report names. The wizard keeps the last
// kTailLines lines (each cut at kMaxTailLine bytes) and shows them only when the
// start fails or the supervisor exits with an error.
// Security: the ready and status files are read through core/atomic_file.h (run_dir
// is the daemon user's; as root no link or FIFO there is followed). The probes
// accept our own self-signed certificate (VerifyNone): they check that each
// listener speaks its protocol, not who it is.
#include "wizard_flow.h"

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/dns.h"
#include "core/services.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QProcess>
#include <QSslSocket>
#include <QThread>

#include <unistd.h>
#include <csignal>

namespace postern::wizard {

namespace {
constexpr int kTailLines = 20;
constexpr qsizetype kMaxTailLine = 1000;
constexpr int kReadyTimeoutMs = 60'000;
constexpr qint64 kMaxStateFileBytes = 64 * 1024;
}  // namespace

// The running supervisor and the last lines it printed.
class Launched {
public:
    Launched() {
        m_process.setProcessChannelMode(QProcess::MergedChannels);
        QObject::connect(&m_process, &QProcess::readyReadStandardOutput, &m_process,
                         [this] { keep(m_process.readAllStandardOutput()); });
    }
    QProcess& process() { return m_process; }
    const QStringList& tail() const { return m_tail; }

private:
    void keep(const QByteArray& chunk) {
        m_partial += chunk;
        for (qsizetype nl; (nl = m_partial.indexOf('\n')) >= 0;) {
            const QByteArray line = m_partial.left(std::min(nl, kMaxTailLine)).trimmed();
            m_partial.remove(0, nl + 1);
            if (line.isEmpty()) continue;
            m_tail << QString::fromUtf8(line);
            if (m_tail.size() > kTailLines) m_tail.removeFirst();
        }
        if (m_partial.size() > kMaxTailLine) m_partial = m_partial.right(kMaxTailLine);
    }
    QProcess m_process;
    QStringList m_tail;
    QByteArray m_partial;
};

namespace {

QString banner(Protocol p) {
    switch (p) {
        case Protocol::Smtp:
            return QStringLiteral("220");
        case Protocol::Imap:
            return QStringLiteral("* OK");
        case Protocol::Pop3:
            return QStringLiteral("+OK");
        case Protocol::ManageSieve:
            return QStringLiteral("\"IMPLEMENTATION\"");  // the first capability line (RFC 5804 1.7)
        case Protocol::Http:
            return QString();
    }
    return {};
}

QString findSupervisor(const WizardOptions& opt) {
    if (!opt.supervisorPath.isEmpty()) return opt.supervisorPath;
    for (const QString& d : {qEnvironmentVariable("POSTERN_LIBEXEC"), QCoreApplication::applicationDirPath(),
                             QStringLiteral("/usr/sbin")}) {
        if (!d.isEmpty() && QFileInfo(d + QStringLiteral("/postern-appliance")).isExecutable())
            return d + QStringLiteral("/postern-appliance");
    }
    return {};
}

// Why the start failed: each service's state and error from the supervisor's status file,
// and the supervisor's last lines.
void explainFailedStart(Flow& f, const Config& config) {
    Console& con = f.con;
    if (const auto bytes =
            readFile(config.runDir() + QStringLiteral("/postern-appliance.status"), kMaxStateFileBytes)) {
        for (const QJsonValue& v :
             QJsonDocument::fromJson(*bytes).object().value(QStringLiteral("services")).toArray()) {
            const QJsonObject o = v.toObject();
            const QString error = o.value(QStringLiteral("error")).toString();
            con.say(QStringLiteral("  %1 %2%3")
                        .arg(o.value(QStringLiteral("name")).toString(), -16)
                        .arg(o.value(QStringLiteral("state")).toString(),
                             error.isEmpty() ? QString() : QStringLiteral(": ") + error));
        }
    }
    if (!f.launched->tail().isEmpty()) {
        con.say(QStringLiteral("  Last lines of postern-appliance:"));
        for (const QString& line : f.launched->tail()) con.say(QStringLiteral("    ") + line);
    }
    con.say(QStringLiteral("  The whole log: %1/mail.log").arg(config.logDir()));
}

// Polls the ready file until it names our supervisor's pid, the supervisor ends, or time is up.
QJsonObject waitForReady(QProcess& proc, const QString& readyFile) {
    QElapsedTimer t;
    t.start();
    while (t.elapsed() < kReadyTimeoutMs && proc.state() == QProcess::Running) {
        if (const auto bytes = readFile(readyFile, kMaxStateFileBytes)) {
            const QJsonObject ready = QJsonDocument::fromJson(*bytes).object();
            if (ready.value(QStringLiteral("pid")).toInteger() == proc.processId()) return ready;
        }
        QThread::msleep(100);
        QCoreApplication::processEvents();  // reads the supervisor's output (Launched::keep)
    }
    return {};
}

// "started 5 services in 1.2 s", plus any that is not running.
// The spam filter's engines (redis-server, rspamd) get one line of their own, and so does
// the resolver Postern and Rspamd use (core/dns.h resolverSummary; the bundled unbound's state).
void sayServices(Console& con, const QJsonObject& ready, qint64 ms, const Config& config) {
    QStringList running, other, engines;
    QString resolverState;
    bool spamOn = false;
    for (const QJsonValue& s : ready.value(QStringLiteral("services")).toArray()) {
        const QJsonObject o = s.toObject();
        const QString name = o.value(QStringLiteral("name")).toString(),
                      state = o.value(QStringLiteral("state")).toString();
        if (name == u"unbound") {
            resolverState = state;
            continue;
        }
        if (const ServiceInfo* info = findService(name); info && info->engine) {
            if (state != u"disabled") spamOn = true;
            engines << QStringLiteral("%1 %2").arg(name, state == u"starting" ? QStringLiteral("starting") : state);
            continue;
        }
        if (state == u"running")
            running << name;
        else
            other << QStringLiteral("%1 %2").arg(name, state);
    }
    con.say(QStringLiteral("  running after %1 s: %2")
                .arg(double(ms) / 1000.0, 0, 'f', 1)
                .arg(running.join(QStringLiteral(", "))));
    for (const QString& o : std::as_const(other)) con.say(QStringLiteral("  %1").arg(o));
    if (!engines.isEmpty())
        con.say(spamOn ? QStringLiteral(
                             "  spam filtering: on (Rspamd with Redis: %1); spam goes to each user's Junk folder, "
                             "spam.enabled = false turns it off")
                             .arg(engines.join(QStringLiteral(", ")))
                       : QStringLiteral("  spam filtering: off (spam.enabled = false)"));
    con.say(QStringLiteral("  DNS resolver: %1%2")
                .arg(resolverSummary(config),
                     bundledResolverInUse(config)
                         ? QStringLiteral(" [%1]").arg(resolverState.isEmpty() ? QStringLiteral("not reported")
                                                                               : resolverState)
                         : QString()));
}

// Client settings from the listener table: per protocol the implicit-TLS port, then STARTTLS.
void sayClientSettings(Console& con, const QString& host) {
    con.say(QStringLiteral("\n== Client settings for your users"));
    QList<Protocol> shown;
    const QList<ListenerInfo> rows = clientListeners();
    for (const ListenerInfo& l : rows) {
        if (shown.contains(l.protocol)) continue;
        shown << l.protocol;
        const ListenerInfo* tls = nullptr;
        const ListenerInfo* starttls = nullptr;
        for (const ListenerInfo& r : rows)
            if (r.protocol == l.protocol) (r.implicitTls ? tls : starttls) = &r;
        QString line =
            QStringLiteral("  %1 (%2): %3")
                .arg(l.client == ClientRole::Incoming ? QStringLiteral("Incoming") : QStringLiteral("Outgoing"),
                     toString(l.protocol).toUpper(), host);
        if (tls) line += QStringLiteral(" port %1, SSL/TLS").arg(tls->standardPort);
        if (starttls)
            line += tls ? QStringLiteral("   (or %1 with STARTTLS)").arg(starttls->standardPort)
                        : QStringLiteral(" port %1, STARTTLS").arg(starttls->standardPort);
        con.say(line);
    }
    const ListenerInfo& sieve = listenerInfo(ListenerMode::ManageSieve);
    con.say(QStringLiteral(
                "  Mail filters (%1, RFC 5804): %2 port %3, STARTTLS (Thunderbird add-on, Roundcube, sieve-connect)")
                .arg(sieve.title, host)
                .arg(sieve.standardPort));
    con.say(QStringLiteral("  User name: the full e-mail address; password: as set"));
    con.say(QStringLiteral("  (ports above are the standard ones; this instance listens where shown in the table)"));
}

}  // namespace

// Connects like a client and waits for the protocol's greeting (never only for the TCP connect).
QString probeListener(const QString& name, const QString& address, int timeoutMs) {
    const ListenerInfo* listener = findListener(name);
    if (!listener) return QStringLiteral("unknown listener");
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
    if (listener->implicitTls) {
        s.connectToHostEncrypted(host, port);
        if (!s.waitForEncrypted(timeoutMs)) return QStringLiteral("no TLS handshake: %1").arg(s.errorString());
    } else {
        s.connectToHost(host, port);
        if (!s.waitForConnected(timeoutMs)) return QStringLiteral("no connection: %1").arg(s.errorString());
    }
    const QString expect = banner(listener->protocol);
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

StepResult launchStep(Flow& f) {
    Console& con = f.con;
    if (!f.opt.launch) {
        con.say(QStringLiteral("\nNothing started (--no-launch). Start the daemons with: postern-appliance --config %1")
                    .arg(f.a.configDir));
        if (auto c = Config::load(f.a.configDir); c && !c->panelUrl().isEmpty())
            con.say(
                QStringLiteral("Web panel, once started: %1 (log in with %2 and its password; posternctl user admin "
                               "ADDRESS on|off)")
                    .arg(c->panelUrl(), f.a.user.isEmpty() ? QStringLiteral("an administrator's address") : f.a.user));
        return 0;
    }
    auto config = Config::load(f.a.configDir);
    if (!config) {
        con.say(QStringLiteral("postern-wizard: %1").arg(config.errorMessage()));
        return 1;
    }
    const QString supervisor = findSupervisor(f.opt);
    if (supervisor.isEmpty()) {
        con.say(QStringLiteral(
            "postern-wizard: postern-appliance (the supervisor) is not installed; the daemons were NOT started."));
        return 1;
    }
    con.say(QStringLiteral("\n== Starting the daemons (%1)").arg(supervisor));
    const QString readyFile = config->runDir() + QStringLiteral("/postern-appliance.ready");
    (void)removeFile(readyFile);  // run_dir is the daemon user's: core/atomic_file reaches it by SafeDir
    f.launched = std::make_shared<Launched>();
    QProcess& proc = f.launched->process();
    proc.start(supervisor, {QStringLiteral("--config"), f.a.configDir});
    if (!proc.waitForStarted(10000)) {
        con.say(QStringLiteral("postern-wizard: cannot start %1").arg(supervisor));
        return 1;
    }
    QElapsedTimer t;
    t.start();
    f.ready = waitForReady(proc, readyFile);
    if (f.ready.isEmpty()) {
        con.say(
            proc.state() == QProcess::Running
                ? QStringLiteral("postern-wizard: the daemons did not become ready within 60 s:")
                : QStringLiteral("postern-wizard: postern-appliance stopped (exit status %1):").arg(proc.exitCode()));
        explainFailedStart(f, *config);
        proc.terminate();
        proc.waitForFinished(20000);
        return 1;
    }
    sayServices(con, f.ready, t.elapsed(), *config);
    return std::nullopt;
}

StepResult verifyStep(Flow& f) {
    Console& con = f.con;
    con.say(QStringLiteral("\n== Listeners (each checked like a client would)"));
    const QJsonObject listeners = f.ready.value(QStringLiteral("listeners")).toObject();
    for (auto it = listeners.begin(); it != listeners.end(); ++it) {
        for (const QJsonValue& v : it.value().toArray()) {
            const QString err = probeListener(it.key(), v.toString(), 10000);
            con.say(QStringLiteral("  %1%2  %3")
                        .arg(it.key(), -12)
                        .arg(v.toString(), err.isEmpty() ? QStringLiteral("answers") : err));
            if (!err.isEmpty()) f.allAnswer = false;
        }
    }
    return std::nullopt;
}

StepResult reportStep(Flow& f) {
    Console& con = f.con;
    auto config = Config::load(f.a.configDir);
    const QString host = config ? config->hostname() : f.a.hostname;
    sayClientSettings(con, host);
    if (config && !config->panelUrl().isEmpty())
        con.say(
            QStringLiteral("\nWeb panel: %1 (log in with %2 and its password; posternctl user admin ADDRESS on|off)")
                .arg(config->panelUrl(), f.a.user.isEmpty() ? QStringLiteral("an administrator's address") : f.a.user));
    con.say(
        QStringLiteral(
            "\nPublish the DNS records shown above; `posternctl --config %1 dns check` tells which are still missing.")
            .arg(f.a.configDir));
    con.say(
        QStringLiteral("Backups: `posternctl --config %1 backup create DIR` now, or daily off-site with restic: set "
                       "backup.restic_repository and backup.restic_password_file.")
            .arg(f.a.configDir));
    con.say(
        QStringLiteral("Two-factor login: `posternctl --config %1 user 2fa enrol ADDRESS`; mail programs then use app "
                       "passwords (`posternctl --config %1 user app-password add ADDRESS NAME`).")
            .arg(f.a.configDir));
    if (config)
        con.say(QStringLiteral("The daemons log to %1/mail.log (follow it with: tail -f %1/mail.log).")
                    .arg(config->logDir()));
    con.say(f.allAnswer ? QStringLiteral("\nPostern is running. Press Ctrl-C to stop it.")
                        : QStringLiteral("\nSome listeners did not answer (see above). Press Ctrl-C to stop."));
    // Stay in the foreground with the supervisor; pass our stop signals on to it.
    QProcess& proc = f.launched->process();
    static qint64 childPid = 0;
    childPid = proc.processId();
    auto forward = [](int sig) {
        if (childPid > 0) ::kill(pid_t(childPid), sig);
    };
    std::signal(SIGINT, forward);
    std::signal(SIGTERM, forward);
    std::signal(SIGHUP, forward);
    if (proc.state() != QProcess::NotRunning) {
        QEventLoop loop;  // keeps reading the supervisor's output (into the kept lines only)
        QObject::connect(&proc, &QProcess::finished, &loop, &QEventLoop::quit);
        loop.exec();
    }
    const int code = proc.exitStatus() == QProcess::NormalExit ? proc.exitCode() : 1;
    if (code != 0) {
        con.say(QStringLiteral("postern-appliance exited with status %1; its last lines:").arg(code));
        for (const QString& line : f.launched->tail()) con.say(QStringLiteral("  ") + line);
    }
    return code;
}

}  // namespace postern::wizard
