// commands_status.cpp — posternctl status and dkim list|rotate|remove-retired.
//   status  what the supervisor reports (<run_dir>/postern-appliance.status,
//           trusted only when root wrote it: ctl.h supervisorPid()): each daemon,
//           its state and listeners, restarts, why it keeps restarting; the queue
//           size (counted by file name); the certificate's names and expiry.
//           The scheduled backup: a failed or overdue one is a WARNING line.
//           Exit 1 when the supervisor is not running or a service is not running.
//   dkim    the DKIM key store (core/dkim_keys.h).
#include "ctl.h"

#include "common/spool/queue.h"

#include "core/dkim_keys.h"
#include "core/safe_path.h"
#include "core/tls.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <csignal>

namespace postern::ctl {

namespace {

qsizetype queuedCount(const Config& config) {
    qsizetype n = 0;
    for (const spool::QueueState state : spool::queueStates()) {
        const QString folder = spool::stateDir(config.queueDir(), state);
        QStringList names;
        if (::geteuid() == 0) {
            auto dir = SafeDir::open(folder);
            if (dir) names = dir->entries().valueOr({});
        } else {
            names = QDir(folder).entryList(QDir::Files);
        }
        for (const QString& name : std::as_const(names))
            if (name.endsWith(QStringLiteral(".env")) && spool::isValidQueueId(name.chopped(4))) ++n;
    }
    return n;
}

int status(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    int rc = 0;
    QJsonObject st;
    const qint64 pid = supervisorPid(config, &st);
    if (pid == 0) {
        ctx.out << "supervisor: not running" << Qt::endl;
        rc = 1;
    } else {
        ctx.out << "supervisor: running (pid " << pid << ", updated " << st.value(QStringLiteral("updated")).toString() << ")" << Qt::endl;
        for (const QJsonValue& v : st.value(QStringLiteral("services")).toArray()) {
            const QJsonObject s = v.toObject();
            const QString state = s.value(QStringLiteral("state")).toString();
            QStringList listeners;
            const QJsonObject l = s.value(QStringLiteral("listeners")).toObject();
            for (auto it = l.begin(); it != l.end(); ++it)
                for (const QJsonValue& a : it.value().toArray()) listeners << it.key() + QLatin1Char('=') + a.toString();
            ctx.out << "  " << s.value(QStringLiteral("name")).toString().leftJustified(16) << state.leftJustified(11);
            if (s.contains(QStringLiteral("since"))) ctx.out << " since " << s.value(QStringLiteral("since")).toString();
            if (s.value(QStringLiteral("restarts")).toInt() > 0) ctx.out << " restarts " << s.value(QStringLiteral("restarts")).toInt();
            if (!listeners.isEmpty()) ctx.out << "  " << listeners.join(QLatin1Char(' '));
            ctx.out << Qt::endl;
            // Why a daemon keeps restarting (its last stderr line, e.g. a folder it cannot write).
            if (s.contains(QStringLiteral("error"))) ctx.out << "    " << s.value(QStringLiteral("error")).toString() << Qt::endl;
            if (state != u"running" && state != u"disabled") rc = 1;
        }
    }
    // Counted by name, without opening the daemon user's files as root (queue list reads them as that user).
    ctx.out << "queue: " << queuedCount(config) << " message(s)" << Qt::endl;
    bool backupWarning = false;
    ctx.out << backupStatusLine(config, &backupWarning) << Qt::endl;  // a warning, not a failure
    auto cert = certificateInfo(config.path(QStringLiteral("tls.cert")));
    if (cert) {
        const qint64 days = QDateTime::currentDateTimeUtc().daysTo(cert->notAfter);
        ctx.out << "certificate: " << cert->dnsNames.join(QStringLiteral(", ")) << "; expires " << cert->notAfter.toString(Qt::ISODate) << " (" << days
                << " days)" << (cert->selfSigned ? ", self-signed" : "") << Qt::endl;
        if (days < 0) rc = 1;
    } else {
        ctx.out << "certificate: " << cert.errorMessage() << Qt::endl;
        rc = 1;
    }
    return rc;
}

QString domainArg(CtlContext& ctx, const Config& config) {
    return ctx.args.isEmpty() ? config.value(QStringLiteral("primary_domain")) : ctx.args.first();
}

int dkimList(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    const QString domain = domainArg(ctx, config);
    DkimKeyStore store(ctx.configDir);
    auto keys = store.keys(domain);
    if (!keys) return ctx.fail(keys.errorMessage());
    for (const DkimKey& k : *keys) {
        ctx.out << k.selector << "\t" << k.algorithm << "\t" << (k.active ? "active" : "retiring") << "\t" << k.created.toString(Qt::ISODate) << "\n";
        auto txt = store.publicRecord(domain, k.selector);
        if (txt) ctx.out << "\t" << k.selector << "._domainkey." << domain << " TXT \"" << *txt << "\"\n";
    }
    ctx.out.flush();
    return 0;
}

int dkimRotate(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    const QString domain = domainArg(ctx, config);
    DkimKeyStore store(ctx.configDir);
    for (const char* alg : {"rsa", "ed25519"}) {
        auto k = store.generate(domain, QString::fromLatin1(alg));
        if (!k) return ctx.fail(k.errorMessage());
        auto txt = store.publicRecord(domain, k->selector);
        ctx.out << "new " << alg << " key " << k->selector << "; publish:\n  " << k->selector << "._domainkey." << domain << " TXT \""
                << txt.valueOr(QString()) << "\"\n";
    }
    ctx.out << "The previous keys are kept (retiring) so mail already signed still verifies;\n"
               "remove them with `posternctl dkim remove-retired` once their DNS records are gone.\n";
    ctx.out.flush();
    return 0;
}

int dkimRemoveRetired(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    DkimKeyStore store(ctx.configDir);
    auto removed = store.removeRetired(domainArg(ctx, config));
    if (!removed) return ctx.fail(removed.errorMessage());
    ctx.out << (removed->isEmpty() ? QStringLiteral("no retiring keys") : QStringLiteral("removed ") + removed->join(QStringLiteral(", "))) << Qt::endl;
    return 0;
}

}  // namespace

void addStatusCommands(QList<Command>& out) {
    out << Command{{QStringLiteral("status")}, {}, QStringLiteral("daemons, listeners, queue size, certificate expiry"), {}, {}, status};
    out << Command{{QStringLiteral("dkim"), QStringLiteral("list")}, QStringLiteral("[DOMAIN]"), QStringLiteral("DKIM keys and their DNS records"),
                   {}, {}, dkimList};
    out << Command{{QStringLiteral("dkim"), QStringLiteral("rotate")}, QStringLiteral("[DOMAIN]"),
                   QStringLiteral("new DKIM keys; the old ones keep signing validity until removed"), {}, {}, dkimRotate};
    out << Command{{QStringLiteral("dkim"), QStringLiteral("remove-retired")}, QStringLiteral("[DOMAIN]"),
                   QStringLiteral("delete retiring DKIM keys (after their DNS records are gone)"), {}, {}, dkimRemoveRetired};
}

}  // namespace postern::ctl
