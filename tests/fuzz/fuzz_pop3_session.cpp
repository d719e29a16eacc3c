// fuzz_pop3_session.cpp — libFuzzer target: a whole POP3 session, from the
// greeting through AUTHORIZATION (USER/PASS, AUTH PLAIN, STLS) into
// TRANSACTION on a real Maildir (STAT, LIST, UIDL, RETR, TOP, DELE, RSET,
// NOOP, QUIT), fed in pieces whose sizes come from the input.
//
// Input: byte 0 = options (bit 0: the connection is TLS from the start;
// bits 4-7: piece size - 1), the rest is what the client sends. The
// password "pw" is accepted for any user name, so the fuzzer reaches the
// transaction state (the seeds log in). The maildrop is a temporary Maildir
// made once with a few realistic messages; commit() is faked (nothing is
// deleted, so every run starts from the same mailbox).
#include "pop3d/pop3_session.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
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

const char* const kMessages[] = {
    "From: Alice <alice@example.test>\r\nTo: fuzz@example.test\r\nSubject: hello\r\n"
    "Message-ID: <1@example.test>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\n"
    "Hello,\r\n.leading dot\r\n..two dots\r\n\r\nbye\r\n",
    "From: b@example.test\r\nSubject: attachment\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nsee file\r\n"
    "--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n--XX--\r\n",
    "Subject: bare LF file\nFrom: c@example.test\n\nline one\n.\nline three\n",
};

class Backend : public pop3::Pop3Backend {
public:
    QString mailDir;
    // "pw" logs in as fuzz@example.test; "busy" is the throttle's temporary refusal.
    void authenticate(const AuthRequest&, QByteArray password, AuthDone done) override {
        if (password == "busy")
            done(AuthVerdict::TempFail, {});
        else
            done(password == "pw" ? AuthVerdict::Ok : AuthVerdict::Failed, QStringLiteral("fuzz@example.test"));
    }
    void openMaildrop(QObject*, const QString& user, qint64 delay,
                      std::function<void(Result<std::shared_ptr<pop3::Maildrop>>)> done) override {
        done(pop3::Maildrop::open(mailDir, user, delay));
    }
    void commit(QObject*, std::shared_ptr<pop3::Maildrop>, QSet<int>, QSet<int>,
                std::function<void(Status)> done) override {
        done({});
    }
};

QString makeMailDir() {
    static QTemporaryDir dir;
    const QString maildir = dir.path() + QStringLiteral("/example.test/fuzz/Maildir");
    for (const char* sub : {"cur", "new", "tmp"}) QDir().mkpath(maildir + QLatin1Char('/') + QLatin1String(sub));
    int n = 0;
    for (const char* m : kMessages) {
        QFile f(maildir + QStringLiteral("/cur/1700000000.M%1P1.fuzz:2,").arg(++n));
        if (f.open(QIODevice::WriteOnly)) f.write(m);
    }
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
    Io io;
    io.ci.tls = data[0] & 1;
    const size_t piece = size_t(data[0] >> 4) + 1;
    Backend backend;
    backend.mailDir = mailDir;
    {
        pop3::Pop3Session s(io, backend, {});
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
