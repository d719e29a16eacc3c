// fuzz_web_session.cpp — libFuzzer target: a whole postern-webd connection
// (request head, body, routing, every page: MTA-STS policy, autoconfig,
// autodiscover, ACME answers, health, metrics, errors), fed in pieces whose
// sizes come from the input.
//
// Input: byte 0 = options (bit 0: HTTPS; bit 1: the client is loopback, so
// /metrics answers; bits 4-7: piece size - 1), the rest is what the client
// sends. The configuration is a small instance in a temporary folder with
// one domain, one user and one ACME challenge file.
#include "webd/web_session.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <cstdint>
#include <cstdio>
#include <memory>

using namespace postern;

namespace {
class Io : public SessionIo {
public:
    ConnectionInfo ci;
    bool closed = false;
    bool suspended = false;
    qint64 out = 0;
    void send(const QByteArray& b) override {
        out += b.size();
        if (trace) fwrite(b.constData(), 1, size_t(b.size()), stderr);  // FUZZ_TRACE=1: show the answers
    }
    const bool trace = qEnvironmentVariableIsSet("FUZZ_TRACE");
    void startTls() override { ci.tls = true; }
    void close(const QString&) override { closed = true; }
    void suspend() override { suspended = true; }
    void resume() override { suspended = false; }
    void setIdleTimeout(qint64) override {}
    void notifyWhenWritable() override {}
    qint64 pendingOutput() const override { return 0; }
    const ConnectionInfo& info() const override { return ci; }
};

struct Instance {
    QTemporaryDir dir;
    Config config;
    std::unique_ptr<AccountStore> accounts;
    web::WebContext ctx;
    Instance() {
        const QString d = dir.path();
        auto write = [&](const QString& name, const QByteArray& text) {
            QDir().mkpath(QFileInfo(d + QLatin1Char('/') + name).absolutePath());
            QFile f(d + QLatin1Char('/') + name);
            if (f.open(QIODevice::WriteOnly)) f.write(text);
        };
        const QByteArray conf =
            "hostname = mail.example.test\nprimary_domain = example.test\ndata_dir = data\n"
            "mta_sts.mode = enforce\n";
        write(QStringLiteral("postern.conf"), conf);
        write(QStringLiteral("domains"), "example.test\n");
        write(QStringLiteral("users"), "fuzz@example.test:{PLAIN}x::::::\n");
        write(QStringLiteral("data/acme/challenges/token-1"), "token-1.thumbprint");
        auto c = Config::parse(conf, d + QStringLiteral("/postern.conf"), d);
        if (c) config = *c;
        accounts = std::make_unique<AccountStore>(d);
        ctx.config = &config;
        ctx.accounts = accounts.get();
        ctx.acmeDir = d + QStringLiteral("/data/acme/challenges");
        ctx.queueDir = d + QStringLiteral("/data/queue");
        ctx.runDir = d + QStringLiteral("/data/run");
    }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    static int argc = 1;
    static char arg0[] = "fuzz";
    static char* argv[] = {arg0, nullptr};
    static QCoreApplication app(argc, argv);
    static Instance instance;
    instance.ctx.responses.clear();  // the route counters must not grow over runs
    Io io;
    io.ci.tls = data[0] & 1;
    io.ci.mode = io.ci.tls ? ListenerMode::Https : ListenerMode::Http;
    io.ci.peerAddress = (data[0] & 2) ? QHostAddress::LocalHost : QHostAddress(QStringLiteral("192.0.2.7"));
    const size_t piece = size_t(data[0] >> 4) + 1;
    {
        web::WebSession s(io, instance.ctx);
        s.start();
        QByteArray buffer;
        for (size_t i = 1; i < size && !io.closed; i += piece) {
            buffer.append(reinterpret_cast<const char*>(data + i), qsizetype(std::min(piece, size - i)));
            for (int guard = 0; guard < 1000 && !buffer.isEmpty() && !io.closed && !io.suspended; ++guard) {
                const qsizetype used = s.consume(buffer.constData(), buffer.size());
                if (used <= 0) break;
                buffer.remove(0, used);
            }
        }
        if (!io.closed) s.peerClosed();
    }
    return 0;
}
