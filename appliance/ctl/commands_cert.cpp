// commands_cert.cpp — posternctl cert status|install, log search.
//   cert status           the certificate in use (tls.cert): names, issuer,
//                         expiry; which of the names clients will ask for
//                         (mail host, mta-sts.<domain>, autoconfig.<domain>)
//                         it lacks. Exit 1 when expired or the host name is missing.
//   cert install CERT KEY a certificate (chain) and key of your own: checked
//                         (key matches, not expired, names the mail host),
//                         copied into place atomically (0640 like the old ones),
//                         then the running daemons are told to reload (SIGHUP
//                         to the supervisor, which forwards it).
//   log search TERM       every log line mentioning TERM, plus the whole
//                         sessions and queue ids those lines belong to (the
//                         classic advice: search mail.log for the remote domain).
//   cert renew [--if-due] ACME (acme_client.h) for the mail host and the
//                         mta-sts./autoconfig. names that resolve; the supervisor
//                         runs it with --if-due twice a day.
// Security: runs as root. The challenge answers go below data_dir, which the
// daemon user owns: the folder is reached and written through core/atomic_file.h,
// which as root walks it with SafeDir (a link put in place of acme/ or
// challenges/ is refused, never followed). The log is read the same way; the
// SIGHUP goes only to a verified supervisor (ctl.h supervisorPid()).
#include "ctl.h"

#include "core/accounts.h"
#include "core/atomic_file.h"
#include "core/dns.h"
#include "core/log_search.h"
#include "core/process.h"
#include "core/services.h"
#include "core/setting_keys.h"
#include "core/tls.h"

#include "acme_client.h"

#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkInterface>
#include <QRegularExpression>
#include <QSet>
#include <QSslCertificate>

#include <sys/stat.h>
#include <csignal>

namespace postern::ctl {

namespace {

QStringList wantedNames(const Config& config) {
    QStringList names{config.hostname()};
    AccountStore store(config.configDir());
    if (auto acc = store.load())
        for (const QString& d : acc->domains())
            names << QStringLiteral("mta-sts.") + d << QStringLiteral("autoconfig.") + d;
    return names;
}

bool covers(const QStringList& certNames, const QString& name) {
    for (const QString& n : certNames) {
        if (n.compare(name, Qt::CaseInsensitive) == 0) return true;
        if (n.startsWith(QStringLiteral("*.")) &&
            name.section(QLatin1Char('.'), 1).compare(n.mid(2), Qt::CaseInsensitive) == 0)
            return true;
    }
    return false;
}

int certStatus(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    const QString path = get(config, keys::tls::cert);
    auto info = certificateInfo(path);
    if (!info) return ctx.fail(info.errorMessage());
    const qint64 days = QDateTime::currentDateTimeUtc().daysTo(info->notAfter);
    ctx.out << "certificate: " << path << Qt::endl
            << "names:       " << info->dnsNames.join(QStringLiteral(", ")) << Qt::endl
            << "issuer:      " << info->issuer << (info->selfSigned ? " (self-signed: clients will warn)" : "")
            << Qt::endl
            << "valid until: " << info->notAfter.toString(Qt::ISODate) << " (" << days << " days)" << Qt::endl;
    int rc = days < 0 ? 1 : 0;
    if (days < 0)
        ctx.out << "EXPIRED: install a new certificate (posternctl cert install CERT KEY)" << Qt::endl;
    else if (days < 30)
        ctx.out << "expires soon: renew it within " << days << " days" << Qt::endl;
    for (const QString& n : wantedNames(config)) {
        if (covers(info->dnsNames, n)) continue;
        const bool host = n == config.hostname();
        ctx.out << (host ? "MISSING: " : "missing: ") << n
                << (host ? " (mail clients and servers connect with this name)"
                         : " (needed for MTA-STS / autoconfig over HTTPS)")
                << Qt::endl;
        if (host) rc = 1;
    }
    return rc;
}

// Writes key and chain into place (key first: a reader never sees a new chain with
// the old key for long), then asks the supervisor to have the daemons reload.
int installPair(CtlContext& ctx, const Config& config, const QList<QSslCertificate>& chain, const QByteArray& certPem,
                const QByteArray& keyPem) {
    const QStringList names = chain.first().subjectAlternativeNames().values(QSsl::DnsEntry);
    const QString certPath = get(config, keys::tls::cert), keyPath = get(config, keys::tls::key);
    if (auto st = writeFileAtomic(keyPath, keyPem, 0640); !st) return ctx.fail(st.errorMessage());
    if (auto st = writeFileAtomic(certPath, certPem, 0640); !st) return ctx.fail(st.errorMessage());
    ctx.out << "installed " << certPath << " (" << names.join(QStringLiteral(", ")) << "; until "
            << chain.first().expiryDate().toString(Qt::ISODate) << ")" << Qt::endl;
    // The pid comes from a root-owned status file and must be postern-appliance (ctl.h):
    // the daemon user, who owns run_dir, must not choose whom root sends SIGHUP to.
    const qint64 pid = supervisorPid(config);
    if (pid > 0 && ::kill(pid_t(pid), SIGHUP) == 0)
        ctx.out << "daemons told to reload (new connections use the new certificate)" << Qt::endl;
    else
        ctx.out << "the supervisor is not running: the certificate is used at the next start" << Qt::endl;
    return 0;
}

// posternctl cert renew [--if-due]: ACME (acme_client.h) for the names clients use.
int certRenew(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    const bool ifDue = ctx.has(QStringLiteral("if-due"));
    if (!get(config, keys::acme::enabled)) {
        if (ifDue) return 0;  // the supervisor's daily call: nothing to do
        return ctx.fail(
            QStringLiteral("ACME is off: posternctl config set acme.enabled true (and make port 80 reachable), "
                           "or install your own certificate with posternctl cert install"));
    }
    auto info = certificateInfo(get(config, keys::tls::cert));
    const qint64 renewBefore = get(config, keys::acme::renewBefore) / 1000;
    if (ifDue && info && !info->selfSigned && QDateTime::currentDateTimeUtc().secsTo(info->notAfter) > renewBefore) {
        ctx.out << "certificate valid until " << info->notAfter.toString(Qt::ISODate) << ": not due" << Qt::endl;
        return 0;
    }
    // Names: the mail host (required), then mta-sts./autoconfig. names that resolve.
    auto dns = makeResolver(config);
    const QList<QHostAddress> local = QNetworkInterface::allAddresses();
    auto resolves = [&](const QString& n) {
        QList<QHostAddress> found;
        for (DnsType t : {DnsType::A, DnsType::AAAA}) {
            const DnsAnswer a = dns->query(n, t);
            for (const DnsRecord& r : a.records)
                if (r.type == t) found << r.address;
        }
        if (found.isEmpty()) return false;
        bool ours = false;
        for (const QHostAddress& f : found) ours |= local.contains(f);
        if (!ours) {
            QStringList shown;
            for (const QHostAddress& f : found) shown << f.toString();
            ctx.out << "note: " << n << " points to " << shown.join(QStringLiteral(", "))
                    << ", not an address of this host: fine behind NAT when port 80 there reaches this host"
                    << Qt::endl;
        }
        return true;
    };
    QStringList names;
    for (const QString& n : wantedNames(config)) {
        if (resolves(n))
            names << n;
        else if (n == config.hostname())
            return ctx.fail(
                QStringLiteral("%1 does not resolve: publish its A/AAAA record first (posternctl dns records)").arg(n));
        else
            ctx.out << "skipping " << n << " (no address in DNS yet)" << Qt::endl;
    }
    // HTTP-01 needs the http listener's daemon (postern-webd) answering on it.
    const ListenerInfo& http = listenerInfo(ListenerMode::Http);
    const auto ready = readFile(readyFilePath(config, http.program), 64 * 1024);
    if (!ready ||
        !QJsonDocument::fromJson(*ready).object().value(QStringLiteral("listeners")).toObject().contains(http.name))
        return ctx.fail(QStringLiteral("%1 is not serving HTTP (%2): the CA could not check the challenge")
                            .arg(http.program, http.settingKey()));
    acme::Request req;
    req.directoryUrl = get(config, keys::acme::directory);
    req.names = names;
    req.email = get(config, keys::acme::email);
    if (req.email.isEmpty()) req.email = get(config, keys::general::adminAddress);
    req.accountKeyPath = config.configDir() + QStringLiteral("/acme/account.key");
    req.challengeDir = config.dataDir() + QStringLiteral("/acme/challenges");
    if (const QString ca = get(config, keys::acme::caFile); !ca.isEmpty())
        req.extraCa = QSslCertificate::fromPath(ca, QSsl::Pem);
    req.progress = [&](const QString& s) { ctx.out << "acme: " << s << Qt::endl; };
    auto issued = acme::obtainCertificate(req);
    if (!issued) return ctx.fail(QStringLiteral("ACME: %1").arg(issued.errorMessage()));
    const QList<QSslCertificate> chain = QSslCertificate::fromData(issued->chainPem, QSsl::Pem);
    if (chain.isEmpty()) return ctx.fail(QStringLiteral("ACME: the CA sent no certificate"));
    return installPair(ctx, config, chain, issued->chainPem, issued->keyPem);
}

int certInstall(CtlContext& ctx) {
    if (ctx.args.size() != 2) return ctx.usage(QStringLiteral("cert install CERT.pem KEY.pem"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    QFile cf(ctx.args.at(0)), kf(ctx.args.at(1));
    if (!cf.open(QIODevice::ReadOnly)) return ctx.fail(QStringLiteral("%1: %2").arg(cf.fileName(), cf.errorString()));
    if (!kf.open(QIODevice::ReadOnly)) return ctx.fail(QStringLiteral("%1: %2").arg(kf.fileName(), kf.errorString()));
    const QByteArray certPem = cf.read(1024 * 1024), keyPem = kf.read(1024 * 1024);
    const QList<QSslCertificate> chain = QSslCertificate::fromData(certPem, QSsl::Pem);
    if (chain.isEmpty()) return ctx.fail(QStringLiteral("%1 holds no PEM certificate").arg(cf.fileName()));
    if (auto st = checkKeyPair(certPem, keyPem); !st) return ctx.fail(st.errorMessage());
    if (chain.first().expiryDate() < QDateTime::currentDateTimeUtc())
        return ctx.fail(QStringLiteral("the certificate has expired"));
    const QStringList names = chain.first().subjectAlternativeNames().values(QSsl::DnsEntry);
    if (!covers(names, config.hostname()) && !ctx.has(QStringLiteral("force")))
        return ctx.fail(QStringLiteral("the certificate does not name %1 (it names %2); --force installs it anyway")
                            .arg(config.hostname(), names.join(QStringLiteral(", "))));
    return installPair(ctx, config, chain, certPem, keyPem);
}

// The search itself is core/log_search.h (shared with the web panel).
int logSearch(CtlContext& ctx) {
    if (ctx.args.size() != 1 || ctx.args.first().isEmpty()) return ctx.usage(QStringLiteral("log search TERM"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    const QString term = ctx.args.first();
    if (auto st = validateLogTerm(term); !st) return ctx.usage(st.errorMessage());
    auto found = searchLog(config.logDir(), term, 0);
    if (!found) return ctx.fail(found.errorMessage());
    for (const QString& w : found->warnings) ctx.err << "posternctl: " << w << Qt::endl;
    for (const QString& l : found->lines) ctx.out << l << Qt::endl;
    if (found->lines.isEmpty()) {
        ctx.out << "nothing mentions '" << term << "'" << Qt::endl;
        return 1;
    }
    return 0;
}

}  // namespace

void addCertCommands(QList<Command>& out) {
    out << Command{{QStringLiteral("cert"), QStringLiteral("status")},
                   {},
                   QStringLiteral("the TLS certificate: names, issuer, expiry, missing names"),
                   {},
                   {},
                   certStatus};
    out << Command{{QStringLiteral("cert"), QStringLiteral("install")},
                   QStringLiteral("CERT.pem KEY.pem [--force]"),
                   QStringLiteral("use your own certificate; daemons reload it"),
                   {},
                   {QStringLiteral("force")},
                   certInstall};
    out << Command{{QStringLiteral("cert"), QStringLiteral("renew")},
                   QStringLiteral("[--if-due]"),
                   QStringLiteral("get a certificate from the ACME CA now (--if-due: only when it expires soon)"),
                   {},
                   {QStringLiteral("if-due")},
                   certRenew};
    out << Command{{QStringLiteral("log"), QStringLiteral("search")},
                   QStringLiteral("TERM"),
                   QStringLiteral("log lines with TERM and the whole sessions and messages they belong to"),
                   {},
                   {},
                   logSearch};
}

}  // namespace postern::ctl
