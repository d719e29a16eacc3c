// main.cpp — postern-webd: MTA-STS policy, autoconfig/autodiscover, ACME
// HTTP-01 answers, health and metrics on http.listen and https.listen.
#include "web_session.h"

#include "common/daemon_main.h"

#include <QDateTime>

using namespace postern;

int main(int argc, char** argv) {
    static web::WebContext ctx;
    static std::unique_ptr<AccountStore> accounts;
    DaemonSpec spec;
    spec.program = QStringLiteral("postern-webd");
    spec.description = QStringLiteral("Postern web services: MTA-STS policy, client autoconfig, ACME challenges, health, metrics.");
    spec.create = [](Config& config, QObject* parent) -> Result<DaemonServer*> {
        accounts = std::make_unique<AccountStore>(config.configDir());
        QString error;
        accounts->current(&error);
        if (!error.isEmpty()) return Result<DaemonServer*>::fail(QStringLiteral("accounts: %1").arg(error));
        ctx.config = &config;
        ctx.accounts = accounts.get();
        ctx.acmeDir = config.dataDir() + QStringLiteral("/acme/challenges");
        ctx.queueDir = config.queueDir();
        ctx.runDir = config.runDir();
        ctx.startedSecs = QDateTime::currentSecsSinceEpoch();
        ctx.requestDeadlineMs = config.durationMs(QStringLiteral("http.request_deadline"));
        auto* server = new DaemonServer(
            config, QStringLiteral("postern-webd"),
            {{QStringLiteral("http.listen"), ListenerMode::Http}, {QStringLiteral("https.listen"), ListenerMode::Https}},
            [](SessionIo& io, ListenerMode) { return std::make_unique<web::WebSession>(io, ctx); }, parent);
        server->setLimits(200, 20, [](ListenerMode) { return QByteArray("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"); });
        return server;
    };
    return runDaemon(argc, argv, spec);
}
