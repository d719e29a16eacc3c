// tst_panel.cpp — the web panel's building blocks without sockets: the urlencoded
// form parser at its limits (fields, value and name sizes, body size, escapes,
// UTF-8, duplicates), session ids and expiry (idle and absolute, at the boundary),
// per-user and global session limits, the constant-time token comparison, the
// Cookie header parser, the Set-Cookie attributes, HTML escaping, and a panel
// request fed to WebSession one byte at a time (a POST without a login token is
// refused with 403 and the security headers; plain HTTP is redirected); the account
// helper's requests, the Domains page's included.
#include "recording_io.h"
#include "webd/panel.h"
#include "webd/panel_sessions.h"
#include "webd/web_session.h"

#include "core/dkim_keys.h"

#include <QCryptographicHash>
#include <QElapsedTimer>
#include <QtTest>

#include <optional>

using namespace postern;
using namespace postern::web;
using postern::test::RecordingIo;

namespace {
// The broker answers asynchronously: wait (on the event loop) for one answer.
Result<QString> callNow(AccountBroker& b, const QStringList& request) {
    std::optional<Result<QString>> got;
    QObject context;
    b.call(request, &context, [&got](Result<QString> r) { got = std::move(r); });
    QElapsedTimer t;
    t.start();
    while (!got && t.elapsed() < 60'000) QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents, 50);
    return got ? *got : Result<QString>::fail(QStringLiteral("no answer within 60 s"));
}
}  // namespace

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

    // Sessions kept in a file survive a restart (a new PanelSessions on the same file): only
    // SHA-256 of the id is written, mode 0600; logout and removeUser take them out of the file.
    void persistedSessionsSurviveARestart() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("sessions.json"));
        QByteArray a, b;
        QByteArray csrfA;
        {
            PanelSessions s;
            s.persistTo(path, 1000);
            a = s.create(QStringLiteral("a@x.test"), 1000);
            b = s.create(QStringLiteral("b@x.test"), 1000);
            csrfA = s.find(a, 1000)->csrf;
            s.find(b, 1000)->mustEnrol = true;
            s.changed();
        }
        QFile f(path);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray content = f.readAll();
        QVERIFY(!content.contains(a));
        QVERIFY(!content.contains(b));
        QVERIFY(content.contains(QCryptographicHash::hash(a, QCryptographicHash::Sha256).toHex()));
        QCOMPARE(int(f.permissions() & (QFileDevice::ReadGroup | QFileDevice::WriteGroup | QFileDevice::ReadOther |
                                        QFileDevice::WriteOther | QFileDevice::ExeOwner)),
                 0);
        {
            PanelSessions s;
            s.persistTo(path, 2000);
            QCOMPARE(s.size(), 2);
            PanelSession* found = s.find(a, 2000);
            QVERIFY(found);
            QCOMPARE(found->user, QStringLiteral("a@x.test"));
            QCOMPARE(found->csrf, csrfA);
            QVERIFY(!found->mustEnrol);
            QVERIFY(s.find(b, 2000)->mustEnrol);  // the enrolment restriction is kept too
            s.remove(a);                          // logout
        }
        {
            PanelSessions s;
            s.persistTo(path, 3000);
            QVERIFY(!s.find(a, 3000));
            QVERIFY(s.find(b, 3000));
            s.removeUser(QStringLiteral("b@x.test"));
        }
        PanelSessions s;
        s.persistTo(path, 4000);
        QCOMPARE(s.size(), 0);
    }

    // Expiry is enforced on load at the boundary: idle kIdleMs and absolute kAbsoluteMs.
    void persistedExpiryAtTheBoundary_data() {
        QTest::addColumn<qint64>("loadAt");
        QTest::addColumn<bool>("alive");
        QTest::newRow("idle-1") << qint64(1000 + kIdleMs - 1) << true;
        QTest::newRow("idle") << qint64(1000 + kIdleMs) << false;
    }
    void persistedExpiryAtTheBoundary() {
        QFETCH(qint64, loadAt);
        QFETCH(bool, alive);
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("sessions.json"));
        QByteArray id;
        {
            PanelSessions s;
            s.persistTo(path, 1000);
            id = s.create(QStringLiteral("a@x.test"), 1000);
        }
        PanelSessions s;
        s.persistTo(path, loadAt);
        QCOMPARE(s.size(), alive ? 1 : 0);
        QCOMPARE(s.find(id, loadAt) != nullptr, alive);
    }

    // Use moves the stored idle clock at most every kPersistTouchMs; an absolute expiry holds
    // however busy the session was.
    void persistedTouchAndAbsoluteExpiry() {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("sessions.json"));
        QByteArray id;
        {
            PanelSessions s;
            s.persistTo(path, 0);
            id = s.create(QStringLiteral("a@x.test"), 0);
            QVERIFY(s.find(id, kPersistTouchMs - 1));  // not written: idle clock on disk still 0
            QVERIFY(s.find(id, kIdleMs - 1));          // written now
        }
        {
            PanelSessions s;
            s.persistTo(path, kIdleMs + 10);  // alive: the stored idle clock moved
            QVERIFY(s.find(id, kIdleMs + 10));
        }
        QByteArray busy;
        {
            PanelSessions s;
            s.persistTo(path, 0);
            busy = s.create(QStringLiteral("b@x.test"), 0);
            for (qint64 t = kIdleMs / 2; t < kAbsoluteMs; t += kIdleMs / 2) QVERIFY(s.find(busy, t));
        }
        PanelSessions s;
        s.persistTo(path, kAbsoluteMs);
        QVERIFY(!s.find(busy, kAbsoluteMs));
    }

    // A damaged file: start empty (a log line), never crash; the next change replaces it.
    void corruptSessionFile_data() {
        QTest::addColumn<QByteArray>("content");
        const QByteArray h(64, 'a');
        const auto entry = [&](const QByteArray& hash, const QByteArray& csrf, const QByteArray& user,
                               const QByteArray& created = "1000", const QByteArray& lastUsed = "1000") {
            return "{\"version\":1,\"sessions\":[{\"id_sha256\":\"" + hash + "\",\"user\":\"" + user +
                   "\",\"csrf\":\"" + csrf + "\",\"created_ms\":" + created + ",\"last_used_ms\":" + lastUsed +
                   ",\"must_enrol\":false}]}";
        };
        QTest::newRow("empty") << QByteArray();
        QTest::newRow("not json") << QByteArray("garbage{");
        QTest::newRow("array") << QByteArray("[]");
        QTest::newRow("version 2") << QByteArray("{\"version\":2,\"sessions\":[]}");
        QTest::newRow("short hash") << entry(h.left(63), h, "a@x.test");
        QTest::newRow("upper-case hash") << entry(h.toUpper(), h, "a@x.test");
        QTest::newRow("bad csrf") << entry(h, "zz", "a@x.test");
        QTest::newRow("no user") << entry(h, h, "");
        QTest::newRow("too large") << QByteArray(kMaxSessionFileBytes + 1, ' ');
        QTest::newRow("binary") << QByteArray("\0\xff\xfe{\"version\":1}", 16);
        // Times: out of a qint64's range, fractional, text, and from the future (never loaded).
        QTest::newRow("huge time") << entry(h, h, "a@x.test", "1e300", "1e300");
        QTest::newRow("fractional time") << entry(h, h, "a@x.test", "1000.5", "1000.5");
        QTest::newRow("time as text") << entry(h, h, "a@x.test", "\"1000\"", "\"1000\"");
        QTest::newRow("last use in the future") << entry(h, h, "a@x.test", "1000", "1000000000000000");
    }
    void corruptSessionFile() {
        QFETCH(QByteArray, content);
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("sessions.json"));
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(content);
        f.close();
        PanelSessions s;
        s.persistTo(path, 2000);
        QCOMPARE(s.size(), 0);
        const QByteArray id = s.create(QStringLiteral("a@x.test"), 2000);  // the file is whole again
        PanelSessions again;
        again.persistTo(path, 2001);
        QVERIFY(again.find(id, 2001));
    }

    // The file's limit at its boundary: kMaxSessions entries load, one more is refused.
    void sessionFileEntryLimit_data() {
        QTest::addColumn<int>("entries");
        QTest::addColumn<int>("loaded");
        QTest::newRow("limit") << kMaxSessions << kMaxSessionsPerUser;  // one user: the per-user cap applies
        QTest::newRow("limit+1") << kMaxSessions + 1 << 0;
    }
    // The file's size limit at its boundary: kMaxSessionFileBytes loads, one byte more is refused.
    void sessionFileSizeLimit_data() {
        QTest::addColumn<qint64>("size");
        QTest::addColumn<int>("loaded");
        QTest::newRow("limit") << kMaxSessionFileBytes << 1;
        QTest::newRow("limit+1") << kMaxSessionFileBytes + 1 << 0;
    }
    void sessionFileSizeLimit() {
        QFETCH(qint64, size);
        QFETCH(int, loaded);
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("sessions.json"));
        const QByteArray h(64, 'a');
        QByteArray json = "{\"version\":1,\"sessions\":[{\"id_sha256\":\"" + h +
                          "\",\"user\":\"a@x.test\",\"csrf\":\"" + h +
                          "\",\"created_ms\":1000,\"last_used_ms\":1000}]}";
        json += QByteArray(size - json.size(), ' ');  // JSON allows trailing white space
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(json);
        f.close();
        PanelSessions s;
        s.persistTo(path, 2000);
        QCOMPARE(s.size(), loaded);
    }

    void sessionFileEntryLimit() {
        QFETCH(int, entries);
        QFETCH(int, loaded);
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("sessions.json"));
        QByteArray json = "{\"version\":1,\"sessions\":[";
        for (int i = 0; i < entries; ++i) {
            const QByteArray h = QCryptographicHash::hash(QByteArray::number(i), QCryptographicHash::Sha256).toHex();
            json += (i ? "," : "") + ("{\"id_sha256\":\"" + h + "\",\"user\":\"a@x.test\",\"csrf\":\"" + h +
                                      "\",\"created_ms\":1000,\"last_used_ms\":1000}");
        }
        json += "]}";
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(json);
        f.close();
        PanelSessions s;
        s.persistTo(path, 2000);
        QCOMPARE(s.size(), loaded);
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
        auto r = callNow(b, {QStringLiteral("user.add"), QStringLiteral("bob@other.test"), QStringLiteral("password-1"),
                             QStringLiteral("0")});
        QVERIFY(!r.ok());
        QVERIFY2(r.errorMessage().contains(QStringLiteral("unknown domain other.test")), qPrintable(r.errorMessage()));
        r = callNow(b, {QStringLiteral("user.add"), QStringLiteral("Bob@example.test"), QStringLiteral("password-1"),
                        QStringLiteral("1024")});
        QVERIFY2(r.ok(), qPrintable(r.errorMessage()));
        auto acc = store.load();
        QVERIFY(acc.ok());
        QVERIFY(acc->user(QStringLiteral("bob@example.test")));
        QCOMPARE(acc->user(QStringLiteral("bob@example.test"))->quotaBytes, qint64(1024));
        QVERIFY(verifyPassword("password-1", acc->user(QStringLiteral("bob@example.test"))->passwordHash));
        QVERIFY(
            callNow(b, {QStringLiteral("user.admin"), QStringLiteral("bob@example.test"), QStringLiteral("on")}).ok());
        QVERIFY(store.load()->user(QStringLiteral("bob@example.test"))->admin);
        QVERIFY(!callNow(b, {QStringLiteral("user.admin"), QStringLiteral("bob@example.test"), QStringLiteral("maybe")})
                     .ok());
        QVERIFY(!callNow(b, {QStringLiteral("rm -rf"), QStringLiteral("/")}).ok());
        r = callNow(b, {QStringLiteral("user.passwd"), QStringLiteral("bob@example.test"),
                        QStringLiteral("a") + QChar(0) + QStringLiteral("b")});
        QVERIFY(!r.ok());
        QVERIFY(r.errorMessage().contains(QStringLiteral("NUL")));
        QVERIFY(callNow(b, {QStringLiteral("alias.add"), QStringLiteral("team@example.test"),
                            QStringLiteral("bob@example.test")})
                    .ok());
        QCOMPARE(store.load()->aliasTargets(QStringLiteral("team@example.test")),
                 QStringList{QStringLiteral("bob@example.test")});
        // Still in step after errors: a last request gets its own answer.
        QVERIFY(callNow(b, {QStringLiteral("alias.del"), QStringLiteral("team@example.test")}).ok());
        QVERIFY(store.load()->aliasTargets(QStringLiteral("team@example.test")).isEmpty());
        // config.set: run-time-safe keys only, validated by the schema in the helper.
        r = callNow(b, {QStringLiteral("config.set"), QStringLiteral("smtp.max_recipients"), QStringLiteral("0")});
        QVERIFY(!r.ok());
        QVERIFY2(r.errorMessage().contains(QStringLiteral("outside the allowed range 1..100000")),
                 qPrintable(r.errorMessage()));
        r = callNow(b, {QStringLiteral("config.set"), QStringLiteral("relay.host"), QStringLiteral("evil.example")});
        QVERIFY(!r.ok());
        QVERIFY2(r.errorMessage().contains(QStringLiteral("cannot be changed here")), qPrintable(r.errorMessage()));
        r = callNow(b, {QStringLiteral("config.set"), QStringLiteral("smtp.max_recipients"), QStringLiteral("250")});
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
        QVERIFY(callNow(b, {QStringLiteral("user.add"), QStringLiteral("admin@example.test"),
                            QStringLiteral("password-1"), QStringLiteral("0")})
                    .ok());
        QVERIFY(!callNow(b, {QStringLiteral("domain.add"), QStringLiteral("not a domain")}).ok());
        auto r = callNow(b, {QStringLiteral("domain.add"), QStringLiteral("Second.TEST")});
        QVERIFY2(r.ok(), qPrintable(r.errorMessage()));
        QVERIFY2(r->contains(QStringLiteral("postmaster@second.test")),
                 qPrintable(*r));  // role aliases to the admin address
        QVERIFY(store.load()->isLocalDomain(QStringLiteral("second.test")));
        DkimKeyStore dkim(dir.path());
        const auto made = dkim.keys(QStringLiteral("second.test"));
        QVERIFY(made.ok());
        QCOMPARE(made->size(), 2);
        QVERIFY(!callNow(b, {QStringLiteral("domain.add"), QStringLiteral("second.test")}).ok());  // already there
        QVERIFY(!callNow(b, {QStringLiteral("dkim.rotate"), QStringLiteral("unknown.test")}).ok());
        r = callNow(b, {QStringLiteral("dkim.rotate"), QStringLiteral("second.test")});
        QVERIFY2(r.ok(), qPrintable(r.errorMessage()));
        const auto rotated = dkim.keys(QStringLiteral("second.test"));
        QVERIFY(rotated.ok());
        QCOMPARE(rotated->size(), 4);
        QStringList active;
        for (const DkimKey& k : std::as_const(*rotated))
            if (k.active) active << k.selector;
        QCOMPARE(r->split(QLatin1Char(' ')), active);
        QVERIFY(
            !callNow(b, {QStringLiteral("domain.del"), QStringLiteral("second.test")}).ok());  // the mode is required
        r = callNow(b, {QStringLiteral("domain.del"), QStringLiteral("second.test"), QStringLiteral("keep")});
        QVERIFY(!r.ok());
        QVERIFY2(r.errorMessage().contains(QStringLiteral("still has")), qPrintable(r.errorMessage()));
        QVERIFY(
            callNow(b, {QStringLiteral("domain.del"), QStringLiteral("second.test"), QStringLiteral("force")}).ok());
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
