// fuzz_managesieve_session.cpp — libFuzzer target: a whole ManageSieve session
// (RFC 5804, daemons/sieved) from the greeting through STARTTLS and
// AUTHENTICATE (PLAIN/LOGIN, initial response, continuations, literals) into
// the script commands (PUTSCRIPT, CHECKSCRIPT, SETACTIVE, GETSCRIPT,
// RENAMESCRIPT, DELETESCRIPT, HAVESPACE, LISTSCRIPTS, UNAUTHENTICATE), with
// the real script store and Sieve compiler, fed in pieces whose sizes come
// from the input.
//
// Input: byte 0 = options (bit 0: the connection is TLS from the start; bits
// 4-7: piece size - 1), the rest is what the client sends. The password "pw"
// is accepted for any user name (the seeds log in); "busy" is the throttle's
// temporary refusal. STARTTLS marks the connection as TLS. The store is a
// temporary folder emptied before every run, so runs do not depend on each
// other. The literal limit after login is 64 KiB (the daemon's is 1 MiB) to
// keep runs fast.
#include "sieved/managesieve_session.h"

#include <QCoreApplication>
#include <QDir>
#include <QTemporaryDir>
#include <cstdint>
#include <cstdio>

using namespace postern;

namespace {
class Io : public SessionIo {
public:
    ConnectionInfo ci;
    bool closed = false;
    bool suspended = false;
    bool tlsAsked = false;
    void send(const QByteArray& b) override {
        if (trace) fwrite(b.constData(), 1, size_t(b.size()), stderr);  // FUZZ_TRACE=1: show the answers
    }
    const bool trace = qEnvironmentVariableIsSet("FUZZ_TRACE");
    void startTls() override { tlsAsked = true; }
    void close(const QString&) override { closed = true; }
    void suspend() override { suspended = true; }
    void resume() override { suspended = false; }
    void setIdleTimeout(qint64) override {}
    void notifyWhenWritable() override {}
    qint64 pendingOutput() const override { return 0; }
    const ConnectionInfo& info() const override { return ci; }
};

class Backend : public managesieve::SieveBackend {
public:
    QString mailDir;
    void authenticate(const AuthRequest&, QByteArray password, AuthDone done) override {
        if (password == "busy")
            done(AuthVerdict::TempFail, {});
        else
            done(password == "pw" ? AuthVerdict::Ok : AuthVerdict::Failed, QStringLiteral("fuzz@example.test"));
    }
    void run(QObject*, std::function<managesieve::StoreReply(const QString&)> work,
             std::function<void(managesieve::StoreReply)> done) override {
        done(work(mailDir));
    }
};

QString makeMailDir() {
    static QTemporaryDir dir;
    return dir.path();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    static int argc = 1;
    static char arg0[] = "fuzz";
    static char* argv[] = {arg0, nullptr};
    static QCoreApplication app(argc, argv);
    static const QString mailDir = makeMailDir();
    QDir(mailDir + QStringLiteral("/example.test")).removeRecursively();
    Io io;
    io.ci.tls = data[0] & 1;
    const size_t piece = size_t(data[0] >> 4) + 1;
    Backend backend;
    backend.mailDir = mailDir;
    managesieve::SessionConfig config;
    config.maxLiteralAfterAuth = 64 * 1024;
    {
        managesieve::ManageSieveSession s(io, backend, config);
        s.start();
        QByteArray buffer;
        for (size_t i = 1; i < size && !io.closed; i += piece) {
            buffer.append(reinterpret_cast<const char*>(data + i), qsizetype(std::min(piece, size - i)));
            for (int guard = 0; guard < 1000 && !buffer.isEmpty() && !io.closed && !io.suspended; ++guard) {
                const qsizetype used = s.consume(buffer.constData(), buffer.size());
                if (io.tlsAsked) {  // the connection drops what was pipelined, then the handshake succeeds
                    io.tlsAsked = false;
                    io.ci.tls = true;
                    buffer.clear();
                    s.tlsStarted();
                    break;
                }
                if (used <= 0) break;
                buffer.remove(0, used);
            }
        }
        if (!io.closed) s.peerClosed();
    }
    return 0;
}
