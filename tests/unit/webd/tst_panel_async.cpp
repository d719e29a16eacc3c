// tst_panel_async.cpp — webd's account helper never blocks the event loop. Over real
// sockets (postern-webd's DaemonServer, HTTPS on loopback, a self-signed certificate),
// the test plays the helper's end of the socketpair (AccountBroker::adopt): while one
// administrator's change waits for a helper that answers late, a second HTTPS request
// is served; the late answer then completes the first. The broker's limits at their
// boundary: kMaxQueued requests wait, the next is refused at once (and the panel shows a
// 503 page with Retry-After); no answer within the timeout fails the request (504 page),
// an answer before it succeeds; a callback whose context is gone is not called. The
// login's code step (2fa.verify) goes through the same asynchronous path: a code checked
// by a late helper does not stall other requests, and a busy helper is a 503, not a
// wrong code.
#include "webd/account_broker.h"
#include "webd/panel.h"
#include "webd/web_session.h"

#include "common/authenticator.h"
#include "common/daemon_server.h"

#include "core/password.h"
#include "core/tls.h"

#include <QSslSocket>
#include <QTemporaryDir>
#include <QtTest>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace postern;
using namespace postern::web;

namespace {

// Client, server and the helper's end share this thread: wait by running the event loop.
template <typename F>
bool spin(F cond, int timeoutMs = 10000) {
    QElapsedTimer t;
    t.start();
    while (!cond()) {
        if (t.elapsed() > timeoutMs) return false;
        QTest::qWait(5);
    }
    return true;
}

// The helper's side: one request frame (4-byte length, NUL-separated fields), read once it is there.
std::optional<QStringList> peerRead(int fd, int timeoutMs = 5000) {
    pollfd p{fd, POLLIN, 0};
    if (!spin([&] { return ::poll(&p, 1, 0) > 0; }, timeoutMs)) return std::nullopt;
    unsigned char len[4];
    if (::read(fd, len, 4) != 4) return std::nullopt;
    const quint32 n = (quint32(len[0]) << 24) | (quint32(len[1]) << 16) | (quint32(len[2]) << 8) | quint32(len[3]);
    QByteArray payload(qsizetype(n), '\0');
    if (n > 0 && ::read(fd, payload.data(), n) != ssize_t(n)) return std::nullopt;
    return QString::fromUtf8(payload).split(QChar(0));
}

void peerAnswer(int fd, const QStringList& fields) {
    const QByteArray payload = fields.join(QChar(0)).toUtf8();
    const quint32 n = quint32(payload.size());
    const char len[4] = {char(n >> 24), char(n >> 16), char(n >> 8), char(n)};
    QByteArray frame = QByteArray(len, 4) + payload;
    QVERIFY(::write(fd, frame.constData(), size_t(frame.size())) == frame.size());
}

bool pollable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
}

struct Client {
    QSslSocket socket;
    QByteArray received;
    explicit Client(quint16 port, const QByteArray& request) {
        socket.setPeerVerifyMode(QSslSocket::VerifyNone);
        QObject::connect(&socket, &QSslSocket::readyRead, &socket, [this] { received += socket.readAll(); });
        QObject::connect(&socket, &QSslSocket::encrypted, &socket, [this, request] { socket.write(request); });
        socket.connectToHostEncrypted(QStringLiteral("127.0.0.1"), port);
    }
    // The whole response (webd closes after one).
    bool finished(int timeoutMs = 10000) {
        return spin([&] { return socket.state() == QAbstractSocket::UnconnectedState; }, timeoutMs);
    }
};

QByteArray post(const QByteArray& path, const QByteArray& cookie, const QByteArray& body) {
    return "POST " + path +
           " HTTP/1.1\r\nHost: mail.example.test\r\nContent-Type: application/x-www-form-urlencoded\r\n"
           "Cookie: postern_session=" +
           cookie + "\r\nContent-Length: " + QByteArray::number(body.size()) + "\r\n\r\n" + body;
}

QByteArray get(const QByteArray& path, const QByteArray& cookie = {}) {
    return "GET " + path + " HTTP/1.1\r\nHost: mail.example.test\r\n" +
           (cookie.isEmpty() ? QByteArray() : "Cookie: postern_session=" + cookie + "\r\n") + "\r\n";
}

}  // namespace

class TstPanelAsync : public QObject {
    Q_OBJECT
private:
    QTemporaryDir m_dir;
    std::unique_ptr<Config> m_config;
    std::unique_ptr<AccountStore> m_accounts;
    std::unique_ptr<Authenticator> m_auth;
    std::unique_ptr<AccountBroker> m_broker;
    int m_peer = -1;  // the helper's end, played by the test
    PanelContext m_panel;
    WebContext m_web;
    std::unique_ptr<DaemonServer> m_server;
    QByteArray m_session;
    QByteArray m_csrf;

    quint16 port() const {
        return quint16(m_server->listenerAddresses()
                           .value(QStringLiteral("https"))
                           .value(0)
                           .section(QLatin1Char(':'), -1)
                           .toUInt());
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(generateSelfSigned(m_dir.filePath(QStringLiteral("tls/cert.pem")),
                                   m_dir.filePath(QStringLiteral("tls/key.pem")), {QStringLiteral("localhost")})
                    .ok());
        auto c = Config::parse("hostname = mail.example.test\nhttps.listen = 127.0.0.1:0\nhttp.listen =\n",
                               QStringLiteral("t"), m_dir.path());
        QVERIFY2(c.ok(), qPrintable(c.errorMessage()));
        m_config = std::make_unique<Config>(*c);
        m_accounts = std::make_unique<AccountStore>(m_dir.path());
        QVERIFY(m_accounts
                    ->modify([](Accounts& a) {
                        if (auto st = a.addDomain(QStringLiteral("example.test")); !st) return st;
                        if (auto st = a.addUser(QStringLiteral("admin@example.test"), QStringLiteral("x")); !st)
                            return st;
                        return a.setAdmin(QStringLiteral("admin@example.test"), true);
                    })
                    .ok());
        m_auth = std::make_unique<Authenticator>(*m_config, m_accounts.get());
        m_panel.config = m_config.get();
        m_panel.accounts = m_accounts.get();
        m_panel.auth = m_auth.get();
        m_panel.queueDir = m_dir.filePath(QStringLiteral("queue"));
        m_panel.runDir = m_dir.filePath(QStringLiteral("run"));
        m_web.config = m_config.get();
        m_web.accounts = m_accounts.get();
        m_web.panel = &m_panel;
        m_server = std::make_unique<DaemonServer>(
            *m_config, QStringLiteral("postern-webd"),
            [this](SessionIo& io, ListenerMode) { return std::make_unique<WebSession>(io, m_web); });
        const Status st = m_server->start();
        QVERIFY2(st.ok(), qPrintable(st.errorMessage()));
        QVERIFY(port() != 0);
    }

    void init() {
        int sv[2];
        QVERIFY(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        m_broker = AccountBroker::adopt(sv[0]);
        m_peer = sv[1];
        m_panel.broker = m_broker.get();
        m_session = m_panel.sessions.create(QStringLiteral("admin@example.test"), QDateTime::currentMSecsSinceEpoch());
        m_csrf = m_panel.sessions.find(m_session, QDateTime::currentMSecsSinceEpoch())->csrf;
    }

    void cleanup() {
        m_panel.broker = nullptr;
        m_broker.reset();
        if (m_peer >= 0) ::close(m_peer);
        m_peer = -1;
    }

    // The acceptance test of the asynchronous broker: a late helper stalls nothing else.
    void slowHelperDoesNotStallOtherRequests() {
        Client change(
            port(), post("/panel/users/quota", m_session, "csrf=" + m_csrf + "&address=admin%40example.test&quota=2G"));
        auto request = peerRead(m_peer);  // the change reached the helper, which does not answer yet
        QVERIFY(request);
        QCOMPARE(request->value(0), QStringLiteral("user.quota"));
        QCOMPARE(request->value(2), QString::number(2LL * 1024 * 1024 * 1024));
        // Meanwhile another request is served in full (before the change would block it).
        Client other(port(), get("/panel/account", m_session));
        QVERIFY(other.finished());
        QVERIFY2(other.received.startsWith("HTTP/1.1 200 "), other.received.left(200).constData());
        QVERIFY(other.received.contains("My account"));
        QVERIFY(change.received.isEmpty());  // still waiting
        QCOMPARE(change.socket.state(), QAbstractSocket::ConnectedState);
        peerAnswer(m_peer, {QStringLiteral("ok"), QStringLiteral("quota set")});
        QVERIFY(change.finished());
        QVERIFY2(change.received.startsWith("HTTP/1.1 303 "), change.received.left(200).constData());
        QVERIFY(change.received.contains("\r\nLocation: /panel/user?address=admin%40example.test\r\n"));
        Client after(port(), get("/panel/account", m_session));  // the flash shows the result
        QVERIFY(after.finished());
        QVERIFY2(after.received.contains("Quota of admin@example.test is 2G."), after.received.constData());
    }

    // kMaxQueued requests wait (the one in flight included); one more is refused at once, and
    // the panel shows that as a 503 page with Retry-After, not as a refused change.
    void queueLimitAtTheBoundary() {
        QObject context;
        int answered = 0;
        QList<Result<QString>> results;
        for (int i = 0; i < kMaxQueued; ++i)
            m_broker->call({QStringLiteral("user.quota"), QStringLiteral("a@example.test"), QString::number(i)},
                           &context, [&](Result<QString> r) {
                               ++answered;
                               results << r;
                           });
        QCOMPARE(m_broker->queued(), kMaxQueued);
        QCoreApplication::sendPostedEvents();  // run what is queued: nothing answers them
        QCoreApplication::processEvents();
        QCOMPARE(answered, 0);  // all accepted, waiting
        std::optional<Result<QString>> extra;
        m_broker->call({QStringLiteral("user.quota"), QStringLiteral("a@example.test"), QStringLiteral("0")}, &context,
                       [&](Result<QString> r) { extra = r; });
        QVERIFY(!extra);  // never inside call()
        QTRY_VERIFY(extra.has_value());
        QVERIFY(!extra->ok());
        QCOMPARE(extra->error().code, kBrokerBusy);
        QCOMPARE(m_broker->queued(), kMaxQueued);
        // Through the panel: a clear 503 page.
        Client busy(port(), post("/panel/aliases/add", m_session,
                                 "csrf=" + m_csrf + "&source=team%40example.test&targets=admin%40example.test"));
        QVERIFY(busy.finished());
        QVERIFY2(busy.received.startsWith("HTTP/1.1 503 "), busy.received.left(300).constData());
        QVERIFY(busy.received.contains("\r\nRetry-After: 5\r\n"));
        QVERIFY(busy.received.contains("nothing was changed"));
        // The queue drains in order, one at a time: after the first answer there is room again.
        QVERIFY(peerRead(m_peer));
        peerAnswer(m_peer, {QStringLiteral("ok"), QStringLiteral("quota set")});
        QTRY_COMPARE(answered, 1);
        QVERIFY(results.at(0).ok());
        QTRY_VERIFY(pollable(m_peer));  // the second request was sent only now
        auto second = peerRead(m_peer);
        QVERIFY(second);
        QCOMPARE(second->value(2), QStringLiteral("1"));
        QCOMPARE(m_broker->queued(), kMaxQueued - 1);
        std::optional<Result<QString>> fits;
        m_broker->call({QStringLiteral("user.quota"), QStringLiteral("a@example.test"), QStringLiteral("0")}, &context,
                       [&](Result<QString> r) { fits = r; });
        QCOMPARE(m_broker->queued(), kMaxQueued);  // accepted, waiting
        QCoreApplication::sendPostedEvents();
        QCoreApplication::processEvents();
        QVERIFY(!fits);
    }

    // No answer within the timeout: the request fails (504 page) and the helper is no longer
    // used; an answer just inside the timeout succeeds.
    void timeoutAtTheBoundary() {
        m_broker->setTimeoutMs(1500);
        QObject context;
        std::optional<Result<QString>> inTime;
        m_broker->call({QStringLiteral("alias.del"), QStringLiteral("x@example.test")}, &context,
                       [&](Result<QString> r) { inTime = r; });
        QVERIFY(peerRead(m_peer));
        QTest::qWait(1000);  // well inside the timeout
        peerAnswer(m_peer, {QStringLiteral("ok"), QStringLiteral("removed")});
        QTRY_VERIFY(inTime.has_value());
        QVERIFY2(inTime->ok(), qPrintable(inTime->errorMessage()));

        m_broker->setTimeoutMs(300);
        QElapsedTimer t;
        t.start();
        Client late(port(), post("/panel/aliases/remove", m_session, "csrf=" + m_csrf + "&source=x%40example.test"));
        QVERIFY(peerRead(m_peer));  // the helper never answers
        QVERIFY(late.finished());
        QVERIFY(t.elapsed() >= 300);
        QVERIFY2(late.received.startsWith("HTTP/1.1 504 "), late.received.left(300).constData());
        QVERIFY(late.received.contains("may or may not have been made"));
        // Out of step: later requests fail at once, without reaching the helper.
        std::optional<Result<QString>> after;
        m_broker->call({QStringLiteral("alias.del"), QStringLiteral("x@example.test")}, &context,
                       [&](Result<QString> r) { after = r; });
        QTRY_VERIFY(after.has_value());
        QCOMPARE(after->error().code, kBrokerGone);
    }

    // A callback whose context is destroyed before the answer is not called; the answer is
    // still consumed, so the next request gets its own.
    void goneContextIsNotCalled() {
        bool called = false;
        {
            QObject context;
            m_broker->call({QStringLiteral("user.del"), QStringLiteral("a@example.test")}, &context,
                           [&](Result<QString>) { called = true; });
            QVERIFY(peerRead(m_peer));
        }
        peerAnswer(m_peer, {QStringLiteral("ok"), QStringLiteral("removed")});
        QObject context;
        std::optional<Result<QString>> next;
        m_broker->call({QStringLiteral("user.del"), QStringLiteral("b@example.test")}, &context,
                       [&](Result<QString> r) { next = r; });
        auto req = peerRead(m_peer);
        QVERIFY(req);
        QCOMPARE(req->value(1), QStringLiteral("b@example.test"));
        peerAnswer(m_peer, {QStringLiteral("error"), QStringLiteral("no such user b@example.test")});
        QTRY_VERIFY(next.has_value());
        QCOMPARE(next->errorMessage(), QStringLiteral("no such user b@example.test"));
        QVERIFY(!called);
    }

    // The login's code step: the check waits for the helper without stalling webd; a busy
    // helper gives a 503 page and does not count as a wrong code.
    void secondFactorCheckIsAsynchronous() {
        const qint64 now = QDateTime::currentMSecsSinceEpoch();
        const QByteArray pid = m_panel.pending.create(QStringLiteral("admin@example.test"), now);
        const QByteArray csrf = m_panel.pending.find(pid, now)->csrf;
        const QByteArray body = "csrf=" + csrf + "&code=123456";
        const QByteArray request =
            "POST /panel/login/code HTTP/1.1\r\nHost: mail.example.test\r\nContent-Type: "
            "application/x-www-form-urlencoded\r\nCookie: postern_pending=" +
            pid + "\r\nContent-Length: " + QByteArray::number(body.size()) + "\r\n\r\n" + body;
        Client code(port(), request);
        auto asked = peerRead(m_peer);
        QVERIFY(asked);
        QCOMPARE(asked->value(0), QStringLiteral("2fa.verify"));
        QCOMPARE(asked->value(2), QStringLiteral("123456"));
        Client other(port(), get("/panel/style.css"));
        QVERIFY(other.finished());
        QVERIFY(other.received.startsWith("HTTP/1.1 200 "));
        QVERIFY(code.received.isEmpty());
        peerAnswer(m_peer, {QStringLiteral("ok"), QStringLiteral("code accepted")});
        QVERIFY(code.finished());
        QVERIFY2(code.received.startsWith("HTTP/1.1 303 "), code.received.left(300).constData());
        QVERIFY(code.received.contains("\r\nLocation: /panel/\r\n"));
        QVERIFY(code.received.contains("Set-Cookie: postern_session="));

        // A full queue: the code step answers 503, and the pending login is still usable.
        QObject context;
        for (int i = 0; i < kMaxQueued; ++i)
            m_broker->call({QStringLiteral("2fa.status"), QStringLiteral("admin@example.test")}, &context,
                           [](Result<QString>) {});
        const QByteArray pid2 = m_panel.pending.create(QStringLiteral("admin@example.test"), now);
        const QByteArray body2 = "csrf=" + m_panel.pending.find(pid2, now)->csrf + "&code=123456";
        Client busy(port(),
                    "POST /panel/login/code HTTP/1.1\r\nHost: mail.example.test\r\nContent-Type: "
                    "application/x-www-form-urlencoded\r\nCookie: postern_pending=" +
                        pid2 + "\r\nContent-Length: " + QByteArray::number(body2.size()) + "\r\n\r\n" + body2);
        QVERIFY(busy.finished());
        QVERIFY2(busy.received.startsWith("HTTP/1.1 503 "), busy.received.left(300).constData());
        QVERIFY(m_panel.pending.claim(pid2, QDateTime::currentMSecsSinceEpoch()).has_value());  // released, not used
    }
};

QTEST_GUILESS_MAIN(TstPanelAsync)
#include "tst_panel_async.moc"
