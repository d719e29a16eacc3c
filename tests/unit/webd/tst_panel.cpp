// tst_panel.cpp — the web panel's building blocks without sockets: the urlencoded
// form parser at its limits (fields, value and name sizes, body size, escapes,
// UTF-8, duplicates), session ids and expiry (idle and absolute, at the boundary),
// per-user and global session limits, the constant-time token comparison, the
// Cookie header parser, the Set-Cookie attributes, HTML escaping, and a panel
// request fed to WebSession one byte at a time (a POST without a login token is
// refused with 403 and the security headers; plain HTTP is redirected); the account
// helper's requests, the Domains page's included.
#include "panel.h"
#include "panel_sessions.h"
#include "recording_io.h"
#include "web_session.h"

#include "core/dkim_keys.h"

#include <QtTest>

using namespace postern;
using namespace postern::web;
using postern::test::RecordingIo;

class TstPanel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void form_data() {
        QTest::addColumn<QByteArray>("body");
        QTest::addColumn<bool>("ok");
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("value");
        QTest::newRow("empty body") << QByteArray() << true << QString() << QString();
        QTest::newRow("one pair") << QByteArray("a=b") << true << "a"
                                  << "b";
        QTest::newRow("plus is space") << QByteArray("a=x+y") << true << "a"
                                       << "x y";
        QTest::newRow("escapes") << QByteArray("addr=bob%40example.test") << true << "addr"
                                 << "bob@example.test";
        QTest::newRow("utf-8") << QByteArray("n=%C3%A9") << true << "n" << QString::fromUtf8("\xc3\xa9");
        QTest::newRow("escaped lt") << QByteArray("n=%3Cscript%3E") << true << "n"
                                    << "<script>";
        QTest::newRow("empty value") << QByteArray("a=") << true << "a"
                                     << "";
        QTest::newRow("textarea line break") << QByteArray("a=x%0D%0Ay") << true << "a"
                                             << "x\r\ny";
        QTest::newRow("no equals") << QByteArray("a") << false << QString() << QString();
        QTest::newRow("empty name") << QByteArray("=b") << false << QString() << QString();
        QTest::newRow("empty pair") << QByteArray("a=1&&b=2") << false << QString() << QString();
        QTest::newRow("trailing ampersand") << QByteArray("a=1&") << false << QString() << QString();
        QTest::newRow("duplicate") << QByteArray("a=1&a=2") << false << QString() << QString();
        QTest::newRow("truncated escape") << QByteArray("a=%4") << false << QString() << QString();
        QTest::newRow("bad escape") << QByteArray("a=%zz") << false << QString() << QString();
        QTest::newRow("NUL") << QByteArray("a=%00") << false << QString() << QString();
        QTest::newRow("control") << QByteArray("a=%01") << false << QString() << QString();
        QTest::newRow("raw space") << QByteArray("a=b c") << false << QString() << QString();
        QTest::newRow("raw 8-bit") << QByteArray("a=\xc3\xa9") << false << QString() << QString();
        QTest::newRow("bad utf-8") << QByteArray("a=%C3") << false << QString() << QString();
        QTest::newRow("value at limit") << QByteArray("v=" + QByteArray(kMaxFormValue, 'x')) << true << "v"
                                        << QString(kMaxFormValue, QLatin1Char('x'));
        QTest::newRow("value over limit")
            << QByteArray("v=" + QByteArray(kMaxFormValue + 1, 'x')) << false << QString() << QString();
        QTest::newRow("escaped value at limit") << QByteArray("v=" + QByteArray("%41").repeated(kMaxFormValue)) << true
                                                << "v" << QString(kMaxFormValue, QLatin1Char('A'));
        QTest::newRow("name at limit") << QByteArray(QByteArray(kMaxFormName, 'n') + "=1") << true
                                       << QString(kMaxFormName, QLatin1Char('n')) << "1";
        QTest::newRow("name over limit") << QByteArray(QByteArray(kMaxFormName + 1, 'n') + "=1") << false << QString()
                                         << QString();
        QByteArray fields, tooMany;
        for (int i = 0; i < kMaxFormFields; ++i) fields += (i ? "&f" : "f") + QByteArray::number(i) + "=1";
        QTest::newRow("32 fields") << fields << true << "f31"
                                   << "1";
        QTest::newRow("33 fields") << QByteArray(fields + "&f32=1") << false << QString() << QString();
        QByteArray big;
        for (int i = 0; i < 4; ++i)
            big += (i ? "&f" : "f") + QByteArray::number(i) + "=" + QByteArray(i < 3 ? 4096 : 4081, 'x');
        QTest::newRow("body at 16 KiB") << big << true << "f3" << QString(4081, QLatin1Char('x'));
        QTest::newRow("body over 16 KiB") << QByteArray(big + "x") << false << QString() << QString();
    }
    void form() {
        QFETCH(QByteArray, body);
        QFETCH(bool, ok);
        QFETCH(QString, name);
        QFETCH(QString, value);
        if (body.size() == kMaxFormBody) QCOMPARE(body.size(), qsizetype(16 * 1024));
        const auto f = parseForm(body);
        QCOMPARE(f.ok(), ok);
        if (ok && !name.isEmpty()) QCOMPARE(f->value(name), value);
        if (!ok) QVERIFY(!f.errorMessage().isEmpty());
    }

    void sessionIdsAreRandomAndWellFormed() {
        PanelSessions s;
        const QByteArray a = s.create(QStringLiteral("a@x.test"), 0);
        const QByteArray b = s.create(QStringLiteral("a@x.test"), 0);
        QCOMPARE(a.size(), qsizetype(64));  // 32 bytes, 256 bits
        QVERIFY(PanelSessions::wellFormed(a));
        QVERIFY(a != b);
        QVERIFY(s.find(a, 1)->csrf != s.find(b, 1)->csrf);
        QVERIFY(PanelSessions::wellFormed(s.find(a, 1)->csrf));
        QVERIFY(!PanelSessions::wellFormed(a.left(63)));
        QVERIFY(!PanelSessions::wellFormed(a + "0"));
        QVERIFY(!PanelSessions::wellFormed(a.toUpper()));
        QVERIFY(!s.find(a.toUpper(), 1));
        QVERIFY(!s.find(QByteArray(64, '0'), 1));
    }

    void idleExpiryAtTheBoundary() {
        PanelSessions s;
        const QByteArray id = s.create(QStringLiteral("a@x.test"), 1000);
        QVERIFY(s.find(id, 1000 + kIdleMs - 1));  // refreshed here
        QVERIFY(s.find(id, 1000 + 2 * kIdleMs - 2));
        QVERIFY(!s.find(id, 1000 + 3 * kIdleMs - 2));  // idle exactly kIdleMs: gone
        QVERIFY(!s.find(id, 1000 + 2 * kIdleMs - 2));  // and stays gone
        QCOMPARE(s.size(), 0);
    }

    void absoluteExpiryAtTheBoundary() {
        PanelSessions s;
        const QByteArray id = s.create(QStringLiteral("a@x.test"), 0);
        qint64 t = 0;
        while (t + kIdleMs / 2 < kAbsoluteMs - 1) {
            t += kIdleMs / 2;
            QVERIFY(s.find(id, t));  // kept busy: never idle
        }
        QVERIFY(s.find(id, kAbsoluteMs - 1));
        QVERIFY(!s.find(id, kAbsoluteMs));
    }

    void logoutAndRemoveUser() {
        PanelSessions s;
        const QByteArray a = s.create(QStringLiteral("a@x.test"), 0);
        const QByteArray a2 = s.create(QStringLiteral("a@x.test"), 0);
        const QByteArray b = s.create(QStringLiteral("b@x.test"), 0);
        s.remove(a);
        QVERIFY(!s.find(a, 1));
        QVERIFY(s.find(a2, 1));
        s.removeUser(QStringLiteral("a@x.test"));
        QVERIFY(!s.find(a2, 1));
        QVERIFY(s.find(b, 1));
    }

    void perUserLimit() {
        PanelSessions s;
        QList<QByteArray> ids;
        for (int i = 0; i < kMaxSessionsPerUser; ++i) ids << s.create(QStringLiteral("a@x.test"), i);
        QCOMPARE(s.size(), kMaxSessionsPerUser);
        for (const QByteArray& id : ids) QVERIFY(s.find(id, 100));    // at the limit: all kept
        for (int i = 1; i < ids.size(); ++i) s.find(ids.at(i), 200);  // ids[0] is now the least recently used
        s.create(QStringLiteral("a@x.test"), 300);                    // one more: the oldest goes
        QCOMPARE(s.size(), kMaxSessionsPerUser);
        QVERIFY(!s.find(ids.first(), 301));
        QVERIFY(s.find(ids.at(1), 301));
    }

    void globalLimit() {
        PanelSessions s;
        QByteArray first;
        for (int i = 0; i < kMaxSessions; ++i) {
            const QByteArray id = s.create(QStringLiteral("u%1@x.test").arg(i), i);
            if (i == 0) first = id;
        }
        QCOMPARE(s.size(), kMaxSessions);
        s.create(QStringLiteral("new@x.test"), kMaxSessions);
        QCOMPARE(s.size(), kMaxSessions);
        QVERIFY(!s.find(first, kMaxSessions + 1));
    }

    void tokenComparison() {
        const QByteArray t = PanelSessions::randomToken();
        QVERIFY(PanelSessions::tokenEqual(t, QByteArray(t)));
        for (int i = 0; i < t.size(); ++i) {  // a difference at any position is seen
            QByteArray u = t;
            u[i] = u[i] == 'a' ? 'b' : 'a';
            QVERIFY(!PanelSessions::tokenEqual(t, u));
        }
        QVERIFY(!PanelSessions::tokenEqual(t, t.left(63)));
        QVERIFY(!PanelSessions::tokenEqual(t, t + "0"));
        QVERIFY(!PanelSessions::tokenEqual(QByteArray(), QByteArray()));
    }

    void cookies_data() {
        QTest::addColumn<QByteArray>("header");
        QTest::addColumn<QByteArray>("value");
        QTest::newRow("only") << QByteArray("postern_session=abc") << QByteArray("abc");
        QTest::newRow("among others") << QByteArray("x=1; postern_session=abc; y=2") << QByteArray("abc");
        QTest::newRow("no spaces") << QByteArray("x=1;postern_session=abc") << QByteArray("abc");
        QTest::newRow("quoted") << QByteArray("postern_session=\"abc\"") << QByteArray("abc");
        QTest::newRow("absent") << QByteArray("x=1") << QByteArray();
        QTest::newRow("prefix name") << QByteArray("xpostern_session=abc") << QByteArray();
        QTest::newRow("twice: trust neither") << QByteArray("postern_session=abc; postern_session=def") << QByteArray();
        QTest::newRow("empty header") << QByteArray() << QByteArray();
    }
    void cookies() {
        QFETCH(QByteArray, header);
        QFETCH(QByteArray, value);
        QCOMPARE(PanelSessions::cookieValue(header, kSessionCookie), value);
    }

    void setCookieAttributes() {
        const QByteArray c = PanelSessions::setCookie(kSessionCookie, "abc", 43200);
        QCOMPARE(c, QByteArray("postern_session=abc; Max-Age=43200; Path=/; Secure; HttpOnly; SameSite=Strict"));
    }

    void escaping() {
        QCOMPARE(htmlEscape(QStringLiteral("<script>alert('x')</script> & \"y\"")),
                 QStringLiteral("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"));
        QCOMPARE(htmlEscape(QStringLiteral("plain")), QStringLiteral("plain"));
    }

    void securityHeaders() {
        QMap<QByteArray, QByteArray> h;
        for (const auto& [k, v] : panelSecurityHeaders()) h.insert(k, v);
        QVERIFY(h.value("Content-Security-Policy").contains("default-src 'self'"));
        QVERIFY(h.value("Content-Security-Policy").contains("script-src 'none'"));
        QVERIFY(h.value("Content-Security-Policy").contains("frame-ancestors 'none'"));
        QVERIFY(!h.value("Content-Security-Policy").contains("unsafe"));
        QCOMPARE(h.value("X-Frame-Options"), QByteArray("DENY"));
        QCOMPARE(h.value("Cache-Control"), QByteArray("no-store"));
        QCOMPARE(h.value("Referrer-Policy"), QByteArray("no-referrer"));
    }

    // A login POST fed one byte at a time through the session: without the login
    // cookie's token it is refused (403) before any password is checked.
    void loginWithoutTokenByteByByte() {
        QTemporaryDir dir;
        auto config =
            Config::parse("hostname = mail.example.test\nhttps.listen = 127.0.0.1:0\n", "postern.conf", dir.path());
        QVERIFY2(config.ok(), qPrintable(config.errorMessage()));
        AccountStore accounts(dir.path());
        PanelContext panel;
        panel.config = &*config;
        panel.accounts = &accounts;
        RecordingIo io;
        io.connInfo.tls = true;
        WebContext ctx;
        ctx.config = &*config;
        ctx.accounts = &accounts;
        ctx.panel = &panel;
        WebSession s(io, ctx);
        s.start();
        const QByteArray body = "csrf=" + QByteArray(64, 'a') + "&address=a%40example.test&password=secret";
        QByteArray buffer;
        test::feed(s, buffer,
                   "POST /panel/login HTTP/1.1\r\nHost: mail.example.test\r\nContent-Type: "
                   "application/x-www-form-urlencoded\r\n"
                   "Content-Length: " +
                       QByteArray::number(body.size()) + "\r\n\r\n" + body);
        const QByteArray out = io.take();
        QVERIFY2(out.startsWith("HTTP/1.1 403 "), out.left(200).constData());
        QVERIFY(out.contains("\r\nContent-Security-Policy: default-src 'self'"));
        QVERIFY(out.contains("\r\nX-Frame-Options: DENY\r\n"));
        QVERIFY(out.contains("\r\nCache-Control: no-store\r\n"));
        QVERIFY(out.contains("\r\nSet-Cookie: postern_login="));  // a fresh form
    }

    // The privileged helper: a forked process applying requests with the core functions.
    void accountBroker() {
        QTemporaryDir dir;
        AccountStore store(dir.path());
        QVERIFY(store.modify([](Accounts& a) { return a.addDomain(QStringLiteral("example.test")); }).ok());
        HashParams cheap;
        cheap.memoryKiB = 1024;
        cheap.iterations = 1;
        auto broker = AccountBroker::start(dir.path(), cheap, {});
        QVERIFY2(broker.ok(), qPrintable(broker.errorMessage()));
        AccountBroker& b = **broker;
        auto r = b.call({QStringLiteral("user.add"), QStringLiteral("bob@other.test"), QStringLiteral("password-1"),
                         QStringLiteral("0")});
        QVERIFY(!r.ok());
        QVERIFY2(r.errorMessage().contains(QStringLiteral("unknown domain other.test")), qPrintable(r.errorMessage()));
        r = b.call({QStringLiteral("user.add"), QStringLiteral("Bob@example.test"), QStringLiteral("password-1"),
                    QStringLiteral("1024")});
        QVERIFY2(r.ok(), qPrintable(r.errorMessage()));
        auto acc = store.load();
        QVERIFY(acc.ok());
        QVERIFY(acc->user(QStringLiteral("bob@example.test")));
        QCOMPARE(acc->user(QStringLiteral("bob@example.test"))->quotaBytes, qint64(1024));
        QVERIFY(verifyPassword("password-1", acc->user(QStringLiteral("bob@example.test"))->passwordHash));
        QVERIFY(b.call({QStringLiteral("user.admin"), QStringLiteral("bob@example.test"), QStringLiteral("on")}).ok());
        QVERIFY(store.load()->user(QStringLiteral("bob@example.test"))->admin);
        QVERIFY(
            !b.call({QStringLiteral("user.admin"), QStringLiteral("bob@example.test"), QStringLiteral("maybe")}).ok());
        QVERIFY(!b.call({QStringLiteral("rm -rf"), QStringLiteral("/")}).ok());
        r = b.call({QStringLiteral("user.passwd"), QStringLiteral("bob@example.test"),
                    QStringLiteral("a") + QChar(0) + QStringLiteral("b")});
        QVERIFY(!r.ok());
        QVERIFY(r.errorMessage().contains(QStringLiteral("NUL")));
        QVERIFY(b.call({QStringLiteral("alias.add"), QStringLiteral("team@example.test"),
                        QStringLiteral("bob@example.test")})
                    .ok());
        QCOMPARE(store.load()->aliasTargets(QStringLiteral("team@example.test")),
                 QStringList{QStringLiteral("bob@example.test")});
        // Still in step after errors: a last request gets its own answer.
        QVERIFY(b.call({QStringLiteral("alias.del"), QStringLiteral("team@example.test")}).ok());
        QVERIFY(store.load()->aliasTargets(QStringLiteral("team@example.test")).isEmpty());
        // config.set: run-time-safe keys only, validated by the schema in the helper.
        r = b.call({QStringLiteral("config.set"), QStringLiteral("smtp.max_recipients"), QStringLiteral("0")});
        QVERIFY(!r.ok());
        QVERIFY2(r.errorMessage().contains(QStringLiteral("outside the allowed range 1..100000")),
                 qPrintable(r.errorMessage()));
        r = b.call({QStringLiteral("config.set"), QStringLiteral("relay.host"), QStringLiteral("evil.example")});
        QVERIFY(!r.ok());
        QVERIFY2(r.errorMessage().contains(QStringLiteral("cannot be changed here")), qPrintable(r.errorMessage()));
        r = b.call({QStringLiteral("config.set"), QStringLiteral("smtp.max_recipients"), QStringLiteral("250")});
        QVERIFY2(r.ok(), qPrintable(r.errorMessage()));
        QVERIFY(r->startsWith(QStringLiteral("smtp.max_recipients = 250")));
        QCOMPARE(Config::load(dir.path())->value(QStringLiteral("smtp.max_recipients")), QStringLiteral("250"));
        QVERIFY(Config::load(dir.path())->value(QStringLiteral("relay.host")).isEmpty());
    }

    // The Domains page's requests: the same core functions as posternctl domain add|del and
    // dkim rotate, applied by the helper.
    void accountBrokerDomainsAndDkim() {
        QTemporaryDir dir;
        AccountStore store(dir.path());
        QVERIFY(store.modify([](Accounts& a) { return a.addDomain(QStringLiteral("example.test")); }).ok());
        HashParams cheap;
        cheap.memoryKiB = 1024;
        cheap.iterations = 1;
        auto broker = AccountBroker::start(dir.path(), cheap, QStringLiteral("admin@example.test"));
        QVERIFY2(broker.ok(), qPrintable(broker.errorMessage()));
        AccountBroker& b = **broker;
        QVERIFY(b.call({QStringLiteral("user.add"), QStringLiteral("admin@example.test"), QStringLiteral("password-1"),
                        QStringLiteral("0")})
                    .ok());
        QVERIFY(!b.call({QStringLiteral("domain.add"), QStringLiteral("not a domain")}).ok());
        auto r = b.call({QStringLiteral("domain.add"), QStringLiteral("Second.TEST")});
        QVERIFY2(r.ok(), qPrintable(r.errorMessage()));
        QVERIFY2(r->contains(QStringLiteral("postmaster@second.test")),
                 qPrintable(*r));  // role aliases to the admin address
        QVERIFY(store.load()->isLocalDomain(QStringLiteral("second.test")));
        DkimKeyStore dkim(dir.path());
        const auto made = dkim.keys(QStringLiteral("second.test"));
        QVERIFY(made.ok());
        QCOMPARE(made->size(), 2);
        QVERIFY(!b.call({QStringLiteral("domain.add"), QStringLiteral("second.test")}).ok());  // already there
        QVERIFY(!b.call({QStringLiteral("dkim.rotate"), QStringLiteral("unknown.test")}).ok());
        r = b.call({QStringLiteral("dkim.rotate"), QStringLiteral("second.test")});
        QVERIFY2(r.ok(), qPrintable(r.errorMessage()));
        const auto rotated = dkim.keys(QStringLiteral("second.test"));
        QVERIFY(rotated.ok());
        QCOMPARE(rotated->size(), 4);
        QStringList active;
        for (const DkimKey& k : std::as_const(*rotated))
            if (k.active) active << k.selector;
        QCOMPARE(r->split(QLatin1Char(' ')), active);
        QVERIFY(!b.call({QStringLiteral("domain.del"), QStringLiteral("second.test")}).ok());  // the mode is required
        r = b.call({QStringLiteral("domain.del"), QStringLiteral("second.test"), QStringLiteral("keep")});
        QVERIFY(!r.ok());
        QVERIFY2(r.errorMessage().contains(QStringLiteral("still has")), qPrintable(r.errorMessage()));
        QVERIFY(b.call({QStringLiteral("domain.del"), QStringLiteral("second.test"), QStringLiteral("force")}).ok());
        QVERIFY(!store.load()->isLocalDomain(QStringLiteral("second.test")));
    }

    void plainHttpIsRedirected() {
        QTemporaryDir dir;
        auto config = Config::parse("hostname = mail.example.test\nhttps.listen = *:443\n", "postern.conf", dir.path());
        QVERIFY(config.ok());
        AccountStore accounts(dir.path());
        PanelContext panel;
        RecordingIo io;
        WebContext ctx;
        ctx.config = &*config;
        ctx.accounts = &accounts;
        ctx.panel = &panel;
        WebSession s(io, ctx);
        s.start();
        QByteArray buffer;
        test::feed(s, buffer, "GET /panel/users HTTP/1.1\r\nHost: evil.test\r\n\r\n");
        const QByteArray out = io.take();
        QVERIFY2(out.startsWith("HTTP/1.1 301 "), out.constData());
        QVERIFY(out.contains("\r\nLocation: https://mail.example.test/panel/users\r\n"));
    }
};

QTEST_GUILESS_MAIN(TstPanel)
#include "tst_panel.moc"
