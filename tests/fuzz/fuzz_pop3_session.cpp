// fuzz_pop3_session.cpp — libFuzzer target: the POP3 session in the
// AUTHORIZATION state (the part reachable without a password), fed in pieces.
#include "pop3_session.h"

#include <QCoreApplication>
#include <cstdint>

using namespace postern;

namespace {
class Io : public SessionIo {
public:
    ConnectionInfo ci;
    bool closed = false;
    void send(const QByteArray&) override {}
    void startTls() override { ci.tls = true; }
    void close(const QString&) override { closed = true; }
    void suspend() override {}
    void resume() override {}
    void setIdleTimeout(qint64) override {}
    void notifyWhenWritable() override {}
    qint64 pendingOutput() const override { return 0; }
    const ConnectionInfo& info() const override { return ci; }
};
class Backend : public pop3::Pop3Backend {
public:
    void authenticate(const AuthRequest&, QByteArray p, AuthDone d) override {
        d(p == "busy" ? AuthVerdict::TempFail : AuthVerdict::Failed, {});
    }
    void openMaildrop(QObject*, const QString&, qint64, std::function<void(Result<std::shared_ptr<pop3::Maildrop>>)> d) override {
        d(Result<std::shared_ptr<pop3::Maildrop>>::fail(QStringLiteral("none")));
    }
    void commit(QObject*, std::shared_ptr<pop3::Maildrop>, QSet<int>, QSet<int>, std::function<void(Status)> d) override { d({}); }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static int argc = 1;
    static char arg0[] = "fuzz";
    static char* argv[] = {arg0, nullptr};
    static QCoreApplication app(argc, argv);
    Io io;
    io.ci.tls = size > 0 && (data[0] & 1);
    Backend backend;
    pop3::Pop3Session s(io, backend, {});
    s.start();
    QByteArray buffer;
    for (size_t i = 1; i < size && !io.closed; i += 5) {
        buffer.append(reinterpret_cast<const char*>(data + i), qsizetype(std::min<size_t>(5, size - i)));
        for (int guard = 0; guard < 1000 && !buffer.isEmpty() && !io.closed; ++guard) {
            const qsizetype used = s.consume(buffer.constData(), buffer.size());
            if (used <= 0) break;
            buffer.remove(0, used);
        }
    }
    return 0;
}
