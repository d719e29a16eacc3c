// wizard.cpp — postern-wizard's flow (see wizard.h): the console and the steps
// detect, ask, check, write and firewall; launch.cpp has launch, verify, report.
#include "wizard_flow.h"

#include "firewall/actions.h"

#include "core/address.h"
#include "core/config.h"
#include "core/dns.h"
#include "core/services.h"
#include "core/setting_keys.h"

#include <termios.h>
#include <unistd.h>

namespace postern::wizard {

// ---- Console

namespace {
// Turns terminal echo off (keeping type-ahead); false when stdin is not a terminal.
bool echoOff(termios* saved) {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, saved) != 0) return false;
    termios quiet = *saved;
    quiet.c_lflag &= ~tcflag_t(ECHO);
    return tcsetattr(STDIN_FILENO, TCSANOW, &quiet) == 0;
}
}  // namespace

Console::Console() : m_out(stdout), m_in(stdin) {}

void Console::say(const QString& s) {
    m_out << s << Qt::endl;
}

void Console::sayIndented(const QString& text) {
    for (const QString& line : text.split(QLatin1Char('\n'), Qt::SkipEmptyParts)) say(QStringLiteral("  ") + line);
}

// Asks until `validate` accepts (returns empty error). Default shown in brackets.
QString Console::ask(const QString& question, const QString& def,
                     const std::function<QString(const QString&)>& validate, bool secret) {
    for (;;) {
        // Echo goes off before the prompt appears, so an answer typed right after it is neither
        // shown nor lost (serial consoles and scripted terminals answer at once).
        termios saved{};
        const bool quiet = secret && echoOff(&saved);
        m_out << question
              << (def.isEmpty() ? QString() : QStringLiteral(" [%1]").arg(secret ? QStringLiteral("generate") : def))
              << ": ";
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

bool Console::confirm(const QString& question, bool def) {
    const QString a =
        ask(question + (def ? QStringLiteral(" (Y/n)") : QStringLiteral(" (y/N)")), QString(), [](const QString& v) {
            const QString l = v.toLower();
            return (l.isEmpty() || l == u"y" || l == u"yes" || l == u"n" || l == u"no")
                       ? QString()
                       : QStringLiteral("answer y or n");
        });
    if (a.isEmpty()) return def;
    return a.toLower().startsWith(QLatin1Char('y'));
}

namespace {

// Reserved names (RFC 2606/6761): they can never resolve in public DNS, so DNS checks are skipped.
bool isReservedDomain(const QString& d) {
    for (const char* tld : {".test", ".example", ".invalid", ".localhost", ".local"})
        if (d.endsWith(QLatin1String(tld)) || d == QLatin1String(tld + 1)) return true;
    return false;
}

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

QString validateHostPort(const QString& v) {
    if (v.isEmpty()) return QString();
    const qsizetype c = v.lastIndexOf(QLatin1Char(':'));
    bool ok = false;
    const uint port = c > 0 ? v.mid(c + 1).toUInt(&ok) : 0;
    return c > 0 && ok && port > 0 && port < 65536
               ? QString()
               : QStringLiteral("write it as HOST:PORT, e.g. smtp.provider.net:587");
}

// ---- detect

StepResult detectStep(Flow& f) {
    Console& con = f.con;
    con.say(QStringLiteral("Postern first-run wizard %1").arg(QLatin1String(POSTERN_VERSION)));
    con.say(QStringLiteral("Configuration folder: %1").arg(f.a.configDir));
    f.env = detectEnvironment();
    con.say(QStringLiteral("\n== This machine"));
    con.say(QStringLiteral("  platform: %1").arg(f.env.platform));
    con.say(QStringLiteral("  host name: %1").arg(f.env.fqdn));
    for (const InterfaceAddress& i : f.env.addresses)
        con.say(QStringLiteral("  %1 %2 (%3)").arg(i.interface, -8).arg(i.address.toString()).arg(toString(i.kind)));
    if (f.env.behindNat())
        con.say(QStringLiteral("  No public address on this machine: it is behind NAT (or in a container)."));
    con.say(QStringLiteral("  resolvers: %1")
                .arg(f.env.resolvers.isEmpty() ? QStringLiteral("none found")
                                               : f.env.resolvers.join(QStringLiteral(", "))));

    // Defaults from an existing configuration: re-running keeps what is there.
    auto existing = Config::load(f.a.configDir);
    f.configured = existing && isSet(*existing, keys::general::primaryDomain);
    if (f.configured) {
        if (f.a.domain.isEmpty()) f.a.domain = get(*existing, keys::general::primaryDomain);
        if (f.a.hostname.isEmpty()) f.a.hostname = get(*existing, keys::general::hostname);
        if (f.a.admin.isEmpty()) f.a.admin = get(*existing, keys::general::adminAddress);
        con.say(QStringLiteral("\nThis system is already configured for %1; existing keys and passwords are kept.")
                    .arg(f.a.domain));
    }
    return std::nullopt;
}

// ---- ask

void askInteractively(Flow& f) {
    Console& con = f.con;
    Answers& a = f.a;
    con.say(QStringLiteral("\n== A few questions (Enter takes the value in brackets)"));
    a.domain = con.ask(QStringLiteral("Mail domain (the part after @)"),
                       a.domain.isEmpty() ? QStringLiteral("example.org") : a.domain, validateDomain);
    a.domain = *normalizeDomain(a.domain);
    a.hostname = con.ask(QStringLiteral("Mail host name"),
                         a.hostname.isEmpty() ? QStringLiteral("mail.") + a.domain : a.hostname, [](const QString& v) {
                             auto d = normalizeDomain(v);
                             return d ? QString() : d.errorMessage();
                         });
    a.user = con.ask(QStringLiteral("First user's address"),
                     a.user.isEmpty() ? QStringLiteral("you@") + a.domain : a.user, [&a](const QString& v) {
                         const QString err = validateAddress(v);
                         if (!err.isEmpty()) return err;
                         return normalizeAddress(v)->endsWith(QLatin1Char('@') + a.domain)
                                    ? QString()
                                    : QStringLiteral("the first user must be in %1").arg(a.domain);
                     });
    const QString pw = con.ask(
        QStringLiteral("Password for %1 (Enter: generate one)").arg(a.user), QStringLiteral("-"),
        [](const QString& v) {
            return v == u"-" || v.size() >= 8 ? QString() : QStringLiteral("use at least 8 characters");
        },
        true);
    a.generatePassword = pw == u"-";
    if (!a.generatePassword) a.password = pw;
    a.admin = con.ask(QStringLiteral("Where should postmaster@ and abuse@ go"), a.admin.isEmpty() ? a.user : a.admin,
                      validateAddress);
    if (f.env.behindNat() && a.publicAddresses.isEmpty()) {
        const QString ip =
            con.ask(QStringLiteral("Public IP address of this server (behind NAT; Enter to skip)"), QStringLiteral("-"),
                    [](const QString& v) {
                        return v == u"-" || QHostAddress(v).protocol() != QAbstractSocket::UnknownNetworkLayerProtocol
                                   ? QString()
                                   : QStringLiteral("that is not an IP address");
                    });
        if (ip != u"-") a.publicAddresses << QHostAddress(ip);
    }
}

// Flags, answers file, environment; none at all = the demo. Exit status 2 for invalid answers.
StepResult takeGivenAnswers(Flow& f) {
    Answers& a = f.a;
    if (a.domain.isEmpty()) {
        // The demo default: a whole working instance that needs no answers.
        a.domain = QStringLiteral("example.test");
        if (a.user.isEmpty()) a.user = QStringLiteral("demo@example.test");
        if (a.password.isEmpty()) a.generatePassword = true;
        if (a.bind == QHostAddress(QHostAddress::Any) && !f.opt.bindGiven)
            a.bind = QHostAddress(QHostAddress::LocalHost);
        f.con.say(QStringLiteral("\nNo answers given: setting up the demo (domain example.test on %1).")
                      .arg(a.bind.toString()));
    }
    auto d = normalizeDomain(a.domain);
    if (!d || !d->contains(QLatin1Char('.'))) {
        f.con.say(QStringLiteral("postern-wizard: invalid --domain '%1'%2")
                      .arg(a.domain, d ? QString() : QStringLiteral(": ") + d.errorMessage()));
        return 2;
    }
    a.domain = *d;
    if (!a.user.isEmpty() && validateAddress(a.user).size()) {
        f.con.say(QStringLiteral("postern-wizard: invalid --user '%1': %2").arg(a.user, validateAddress(a.user)));
        return 2;
    }
    return std::nullopt;
}

StepResult askStep(Flow& f) {
    if (f.opt.interactive) {
        askInteractively(f);
    } else if (const StepResult stop = takeGivenAnswers(f)) {
        return stop;
    }
    Answers& a = f.a;
    if (a.hostname.isEmpty()) a.hostname = QStringLiteral("mail.") + a.domain;
    a.hostname = normalizeDomain(a.hostname).valueOr(a.hostname);
    if (!a.user.isEmpty()) a.user = normalizeAddress(a.user).valueOr(a.user);
    if (a.admin.isEmpty()) a.admin = a.user;
    if (!a.admin.isEmpty()) a.admin = normalizeAddress(a.admin).valueOr(a.admin);
    if (a.ports.isEmpty()) a.ports = f.root ? standardPorts() : unprivilegedPorts();
    if (a.publicAddresses.isEmpty()) a.publicAddresses = f.env.publicAddresses(false) + f.env.publicAddresses(true);
    return std::nullopt;
}

// ---- check

void checkPorts(Flow& f) {
    for (auto it = f.a.ports.begin(); it != f.a.ports.end(); ++it) {
        if (f.a.disabled.contains(it.key())) continue;
        Finding finding = checkPort(it.key(), f.a.bind, it.value());
        if (finding.severity == Severity::Problem && f.opt.pickFreePorts && it.value() != 0) {
            // Demo and tests: move to the next free port instead of failing.
            for (quint16 p = quint16(it.value() + 1); p < it.value() + 200; ++p) {
                if (checkPort(it.key(), f.a.bind, p).severity == Severity::Ok) {
                    finding.severity = Severity::Warning;
                    finding.remedy = QStringLiteral("using port %1 instead").arg(p);
                    it.value() = p;
                    break;
                }
            }
        }
        f.findings << finding;
    }
}

// Outbound port 25 is blocked here: offer the provider's relay (smarthost) now.
void offerSmarthost(Flow& f, const Finding& out25) {
    Console& con = f.con;
    Answers& a = f.a;
    con.say(QStringLiteral("  Outbound port 25 seems blocked: %1").arg(out25.observed));
    a.smarthost =
        con.ask(QStringLiteral("Smarthost for outgoing mail, HOST:PORT (587 STARTTLS or 465 TLS; empty: none)"),
                QString(), validateHostPort);
    if (a.smarthost.isEmpty()) return;
    a.smarthostUser = con.ask(QStringLiteral("Smarthost login (empty: no login)"), QString(),
                              [](const QString&) { return QString(); });
    if (!a.smarthostUser.isEmpty())
        a.smarthostPassword = con.ask(
            QStringLiteral("Smarthost password"), QString(),
            [](const QString& v) { return v.isEmpty() ? QStringLiteral("enter the password") : QString(); }, true);
}

void checkDns(Flow& f) {
    const Answers& a = f.a;
    if (isReservedDomain(a.domain)) {
        f.con.say(
            QStringLiteral("  (DNS checks skipped: %1 is a reserved name that never resolves publicly)").arg(a.domain));
        return;
    }
    QList<DnsServer> servers;
    for (const QString& s : a.dnsServers)
        if (auto ds = parseDnsServer(s)) servers << *ds;
    LdnsResolver dns(servers, 2000);
    QList<QHostAddress> ours;
    for (const InterfaceAddress& i : f.env.addresses) ours << i.address;
    ours << a.publicAddresses;
    f.findings << checkHostnameResolves(dns, a.hostname, ours);
    f.findings << checkReverseDns(dns, a.hostname, a.publicAddresses);
    QList<QHostAddress> v4;
    for (const QHostAddress& x : a.publicAddresses)
        if (x.protocol() == QAbstractSocket::IPv4Protocol) v4 << x;
    f.findings << checkBlocklists(dns, v4, f.opt.blocklists);
}

StepResult checkStep(Flow& f) {
    Console& con = f.con;
    con.say(QStringLiteral("\n== Checks"));
    checkPorts(f);
    if (!f.opt.skipNetworkChecks) {
        const qsizetype colon = f.opt.outboundProbe.lastIndexOf(QLatin1Char(':'));
        const Finding out25 = checkOutbound25(f.opt.outboundProbe.left(colon),
                                              quint16(f.opt.outboundProbe.mid(colon + 1).toUInt()), 3000);
        f.findings << out25;
        // Only a port that is really blocked calls for a smarthost; failed name resolution does not.
        if (out25.id == u"outbound25" && out25.severity != Severity::Ok && f.opt.interactive && f.a.smarthost.isEmpty())
            offerSmarthost(f, out25);
        checkDns(f);
    }
    bool problems = false;
    for (const Finding& finding : std::as_const(f.findings)) {
        con.say(QStringLiteral("  [%1] %2").arg(toString(finding.severity), -7).arg(finding.observed));
        if (!finding.remedy.isEmpty()) con.say(QStringLiteral("            -> %1").arg(finding.remedy));
        if (finding.severity == Severity::Problem) problems = true;
    }
    if (problems && f.opt.interactive &&
        !con.confirm(QStringLiteral("There are problems (see above). Continue anyway?"), true))
        return 1;
    return std::nullopt;
}

// ---- write

StepResult writeStep(Flow& f) {
    Console& con = f.con;
    const Answers& a = f.a;
    const QStringList plan = planChanges(a);
    if (f.configured && !plan.isEmpty()) {
        con.say(QStringLiteral("\n== Changes to the existing configuration"));
        for (const QString& p : plan) con.say(QStringLiteral("  ") + p);
        if (f.opt.interactive && !con.confirm(QStringLiteral("Apply these changes?"), true)) return 1;
    }
    auto report = applySetup(a);
    if (!report) {
        con.say(QStringLiteral("postern-wizard: %1").arg(report.errorMessage()));
        return 1;
    }
    con.say(QStringLiteral("\n== Written"));
    con.say(QStringLiteral("  configuration, accounts, TLS certificate and DKIM keys in %1").arg(a.configDir));
    if (!report->generatedPassword.isEmpty())
        con.say(
            QStringLiteral("  password of %1: %2   (shown once; note it now)").arg(a.user, report->generatedPassword));
    for (const QString& n : std::as_const(report->notes)) con.say(QStringLiteral("  note: ") + n);

    con.say(QStringLiteral("\n== DNS records to publish\n"));
    con.say(report->recordsTable);
    con.say(QStringLiteral("The same records as a zone file, CSV and JSON: %1/dns-records.{zone,csv,json}")
                .arg(a.configDir));
    con.say(QStringLiteral("Check them once published: posternctl --config %1 dns check").arg(a.configDir));
    return std::nullopt;
}

// ---- firewall

// Opens the ports the plan opens, and says what the rules look like afterwards.
void applyFirewallPlan(Flow& f, const firewall::Setup& setup, const firewall::Plan& plan,
                       const firewall::Runner& runner) {
    Console& con = f.con;
    const firewall::ApplyOutcome applied = firewall::applyPlan(setup, plan, runner);
    for (const QString& line : applied.log) con.say(QStringLiteral("  ") + line);
    if (!applied.status) con.say(QStringLiteral("  error: %1").arg(applied.status.errorMessage()));
    con.say(QStringLiteral("  After:"));
    con.sayIndented(firewall::renderStatus(applied.after));
    con.say(applied.status && applied.after.allOpen()
                ? QStringLiteral("  Firewall: the mail ports are open now (undo: postern-firewall remove).")
                : QStringLiteral("  Firewall: not every port could be opened; see above."));
}

// The firewall library decides: which backends filter, whether each configured port gets
// in and which rule decides (detect + evaluate), and the smallest change (plan).
StepResult firewallStep(Flow& f) {
    Console& con = f.con;
    con.say(QStringLiteral("\n== Firewall"));
    if (f.opt.skipFirewall) {
        con.say(QStringLiteral("  (skipped: --skip-firewall)"));
        return std::nullopt;
    }
    const firewall::SystemRunner systemRunner;
    const firewall::Runner& runner = f.opt.firewallRunner ? *f.opt.firewallRunner : systemRunner;
    const Result<firewall::Setup> setup = firewall::loadSetup(f.a.configDir);
    if (!setup) {
        con.say(QStringLiteral("  cannot check the firewall: %1").arg(setup.errorMessage()));
        return std::nullopt;
    }
    if (!setup->stateNote.isEmpty()) con.say(QStringLiteral("  note: %1").arg(setup->stateNote));
    const firewall::Snapshot snap = firewall::takeSnapshot(runner);
    const firewall::Report report = firewall::buildReport(snap, setup->ports, true);
    con.sayIndented(firewall::renderStatus(report));
    if (report.allOpen()) return std::nullopt;
    const firewall::Plan plan = firewall::planOpen(snap, report.detection, report.results, setup->ports, setup->state);
    con.sayIndented(firewall::renderPlan(plan, QStringLiteral("Plan")));
    if (plan.commands.isEmpty()) return std::nullopt;  // nothing we can change; the notes say why
    const QString later = QStringLiteral("postern-firewall --config %1 apply").arg(f.a.configDir);
    if (!f.root) {
        con.say(QStringLiteral("  Changing the packet filter needs root: run `%1` as root.").arg(later));
        return std::nullopt;
    }
    const bool apply = f.opt.interactive ? con.confirm(QStringLiteral("Apply these firewall changes now?"), false)
                                         : f.opt.applyFirewall;
    if (apply)
        applyFirewallPlan(f, *setup, plan, runner);
    else
        con.say(QStringLiteral("  Not changed. Later: %1").arg(later));
    return std::nullopt;
}

struct Step {
    const char* name;
    StepResult (*run)(Flow&);
};

// The flow, in order (wizard.h says what each step does).
const Step kSteps[] = {
    {"detect", detectStep},     {"ask", askStep},       {"check", checkStep},   {"write", writeStep},
    {"firewall", firewallStep}, {"launch", launchStep}, {"verify", verifyStep}, {"report", reportStep},
};

}  // namespace

QStringList wizardSteps() {
    QStringList out;
    for (const Step& s : kSteps) out << QLatin1String(s.name);
    return out;
}

int runWizard(const WizardOptions& options) {
    Console con;
    Flow flow{options, con, options.answers};
    flow.root = ::geteuid() == 0;
    for (const Step& s : kSteps)
        if (const StepResult stop = s.run(flow)) return *stop;
    return 0;
}

}  // namespace postern::wizard
