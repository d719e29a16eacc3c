// commands_status.cpp — posternctl status and dkim list|rotate|remove-retired.
//   status  what the supervisor reports (<run_dir>/postern-appliance.status):
//           each daemon, its state and listeners, restarts; the queue size; the
//           certificate's names and expiry. Exit 1 when the supervisor is not
//           running or a service is not running.
//   dkim    the DKIM key store (core/dkim_keys.h).
#include "ctl.h"

#include "common/spool/queue.h"

#include "core/dkim_keys.h"
#include "core/tls.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <csignal>

namespace postern::ctl {

namespace {

int status(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    int rc = 0;
    QFile f(config.runDir() + QStringLiteral("/postern-appliance.status"));
    const QJsonObject st = f.open(QIODevice::ReadOnly) ? QJsonDocument::fromJson(f.readAll()).object() : QJsonObject();
    const qint64 pid = st.value(QStringLiteral("pid")).toInteger();
    if (st.isEmpty() || pid <= 0 || ::kill(pid_t(pid), 0) != 0) {
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
            if (state != u"running" && state != u"disabled") rc = 1;
        }
    }
    QStringList errors;
    const auto queue = spool::listQueue(config.queueDir(), &errors);
    ctx.out << "queue: " << queue.size() << " message(s)" << (errors.isEmpty() ? QString() : QStringLiteral(", %1 unreadable").arg(errors.size())) << Qt::endl;
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
