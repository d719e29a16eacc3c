// fuzz_smtp_session.cpp — libFuzzer target: a whole SMTP session (MX and
// submission with TLS) fed the input in pieces whose sizes come from the input
// itself, against an in-memory backend. Finds crashes, hangs and leaks in the
// command reader, state machine, DATA/BDAT readers and AUTH.
#include "smtpd/smtp_session.h"

#include <QCoreApplication>
#include <cstdint>

using namespace postern;
using namespace postern::smtp;

namespace {
class Io : public SessionIo {
public:
    ConnectionInfo ci;
    qint64 out = 0;
    bool closed = false;
    void send(const QByteArray& b) override { out += b.size(); }
    void startTls() override { ci.tls = true; }
    void close(const QString&) override { closed = true; }
    void suspend() override {}
    void resume() override {}
    void setIdleTimeout(qint64) override {}
    void notifyWhenWritable() override {}
    qint64 pendingOutput() const override { return 0; }
    const ConnectionInfo& info() const override { return ci; }
};
class Body : public SpoolBody {
public:
    qint64 n = 0;
    bool write(const char*, qsizetype s) override {
        n += s;
        return true;
    }
    int errorCode() const override { return 0; }
    QString queueId() const override { return QStringLiteral("0000000000000000"); }
    QString path() const override { return {}; }
    int fd() const override { return -1; }
    qint64 size() const override { return n; }
};
class Backend : public SmtpBackend {
public:
    RcptVerdict checkRecipient(const MailPath& p, bool auth, qint64, RecipientInfo* out, QString*) override {
        out->address = p.address();
        if (p.domain == u"local.test")
            out->mailboxes = {p.address()};
        else if (!auth)
            return RcptVerdict::RelayDenied;
        else
            out->forwards = {p.address()};
        return RcptVerdict::Ok;
    }
    bool maySendAs(const QString&, const MailPath& f) override { return !f.isNull; }
    bool vrfyAllowed() const override { return false; }
    // An odd SIZE= stands for "disk nearly full", so the 452 4.3.1 path is fuzzed too.
    bool storageAvailable(qint64 declared, QString* d) override {
        if (declared % 2 == 0) return true;
        *d = QStringLiteral("fuzz");
        return false;
    }
    void authenticate(const AuthRequest& r, QByteArray p, AuthDone d) override {
        d(p == "pw" ? AuthVerdict::Ok : p == "busy" ? AuthVerdict::TempFail : AuthVerdict::Failed, r.login);
    }
    std::shared_ptr<SpoolBody> openBody(QString*) override { return std::make_shared<Body>(); }
    void deliver(QObject*, MessageJob, std::function<void(DeliveryOutcome)> d) override {
        DeliveryOutcome o;
        o.status = DeliveryOutcome::Status::Delivered;
        d(o);
    }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    static int argc = 1;
    static char arg0[] = "fuzz";
    static char* argv[] = {arg0, nullptr};
    static QCoreApplication app(argc, argv);
    Io io;
    io.ci.mode = (data[0] & 1) ? ListenerMode::Submission : ListenerMode::Mx;
    Backend backend;
    SessionConfig cfg;
    cfg.maxCommandLine = 512;
    cfg.maxMessageSize = 4096;
    cfg.maxRecipients = 3;  // reach the 452s and the RCPT cap with small inputs
    cfg.greetDelayMs = 100;
    SmtpSession s(io, backend, cfg);
    // Bit 2: the connection's pre-greet wait (MX); bit 3: the client talked during it.
    if ((data[0] & 4) && s.beginPregreet() > 0 && (data[0] & 8)) s.spokeTooSoon();
    if (!io.closed) s.start();
    QByteArray buffer;
    size_t i = 1;
    while (i < size && !io.closed) {
        const size_t chunk = 1 + (data[i] % 17);
        buffer.append(reinterpret_cast<const char*>(data + i + 1), qsizetype(std::min(chunk, size - i - 1)));
        i += 1 + chunk;
        for (int guard = 0; guard < 10000 && !buffer.isEmpty() && !io.closed; ++guard) {
            const qsizetype used = s.consume(buffer.constData(), buffer.size());
            if (used <= 0) break;
            buffer.remove(0, used);
        }
        if (io.ci.tls && (data[0] & 2)) s.tlsStarted();
    }
    return 0;
}
