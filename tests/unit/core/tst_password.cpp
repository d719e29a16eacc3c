// tst_password.cpp — password hashing against vectors produced at test time
// by independent tools: `openssl passwd -6/-5` (SHA-crypt), `mkpasswd -m
// bcrypt`, Python's crypt module, and the `argon2` reference CLI; our own
// Argon2id hashes checked by the argon2 CLI's verifier; the auth cache.
#include "core/password.h"

#include <QProcess>
#include <QStandardPaths>
#include <QtTest>

using namespace postern;

namespace {
QString run(const QString& program, const QStringList& args, const QByteArray& input = {}) {
    QProcess p;
    p.start(program, args);
    if (!p.waitForStarted(10000)) return {};
    if (!input.isEmpty()) p.write(input);
    p.closeWriteChannel();
    p.waitForFinished(30000);
    if (p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0) return {};
    return QString::fromUtf8(p.readAllStandardOutput()).trimmed();
}
QString need(const char* tool) {
    const QString path = QStandardPaths::findExecutable(QString::fromLatin1(tool));
    if (path.isEmpty()) qWarning("%s missing: run appliance/scripts/install-deps.sh test", tool);
    return path;
}
}  // namespace

class TstPassword : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void sha512CryptFromOpenssl() {
        const QString openssl = need("openssl");
        QVERIFY(!openssl.isEmpty());
        const QString h =
            run(openssl, {QStringLiteral("passwd"), QStringLiteral("-6"), QStringLiteral("-stdin")}, "s3cret pass\n");
        QVERIFY(h.startsWith(QStringLiteral("$6$")));
        QCOMPARE(toString(passwordScheme(h)), toString(PasswordScheme::Sha512Crypt));
        QVERIFY(verifyPassword("s3cret pass", h));
        QVERIFY(verifyPassword("s3cret pass", QStringLiteral("{SHA512-CRYPT}") + h));
        QVERIFY(verifyPassword("s3cret pass", QStringLiteral("{CRYPT}") + h));
        QVERIFY(!verifyPassword("s3cret Pass", h));
        QVERIFY(!verifyPassword("", h));
        const QString h5 =
            run(openssl, {QStringLiteral("passwd"), QStringLiteral("-5"), QStringLiteral("-stdin")}, "other\n");
        QCOMPARE(toString(passwordScheme(h5)), toString(PasswordScheme::Sha256Crypt));
        QVERIFY(verifyPassword("other", h5));
        QVERIFY(!verifyPassword("otherx", h5));
    }

    void bcryptFromMkpasswd() {
        const QString mk = need("mkpasswd");
        QVERIFY(!mk.isEmpty());
        const QString h = run(mk,
                              {QStringLiteral("-m"), QStringLiteral("bcrypt"), QStringLiteral("-R"),
                               QStringLiteral("5"), QStringLiteral("--stdin")},
                              "hunter2\n");
        QVERIFY2(h.startsWith(QStringLiteral("$2b$05$")), qPrintable(h));
        QCOMPARE(toString(passwordScheme(h)), toString(PasswordScheme::Bcrypt));
        QVERIFY(verifyPassword("hunter2", h));
        QVERIFY(verifyPassword("hunter2", QStringLiteral("{BLF-CRYPT}") + h));
        QVERIFY(!verifyPassword("hunter3", h));
        // Dovecot writes $2y$; the same hash under that prefix verifies too.
        QString y = h;
        y.replace(0, 4, QStringLiteral("$2y$"));
        QVERIFY(verifyPassword("hunter2", QStringLiteral("{BLF-CRYPT}") + y));
    }

    void sha512FromPython() {
        const QString py = need("python3");
        QVERIFY(!py.isEmpty());
        const QString h = run(
            py, {QStringLiteral("-W"), QStringLiteral("ignore"), QStringLiteral("-c"),
                 QStringLiteral("import crypt; print(crypt.crypt('pässword', crypt.mksalt(crypt.METHOD_SHA512)))")});
        QVERIFY(h.startsWith(QStringLiteral("$6$")));
        QVERIFY(verifyPassword(QStringLiteral("pässword").toUtf8(), h));
        QVERIFY(!verifyPassword("password", h));
    }

    void argon2FromReferenceCli() {
        const QString argon2 = need("argon2");
        QVERIFY(!argon2.isEmpty());
        // argon2 SALT -id -t 2 -m 12 (2^12 KiB) -p 1 -e  (password on stdin)
        const QString h = run(argon2,
                              {QStringLiteral("somesaltsalt"), QStringLiteral("-id"), QStringLiteral("-t"),
                               QStringLiteral("2"), QStringLiteral("-m"), QStringLiteral("12"), QStringLiteral("-p"),
                               QStringLiteral("1"), QStringLiteral("-e")},
                              "correct horse");
        QVERIFY2(h.startsWith(QStringLiteral("$argon2id$v=19$m=4096,t=2,p=1$")), qPrintable(h));
        QVERIFY(verifyPassword("correct horse", h));
        QVERIFY(verifyPassword("correct horse", QStringLiteral("{ARGON2ID}") + h));
        QVERIFY(!verifyPassword("correct horse ", h));
        const QString hi = run(argon2,
                               {QStringLiteral("somesaltsalt"), QStringLiteral("-i"), QStringLiteral("-t"),
                                QStringLiteral("2"), QStringLiteral("-m"), QStringLiteral("10"), QStringLiteral("-e")},
                               "battery");
        QCOMPARE(toString(passwordScheme(hi)), toString(PasswordScheme::Argon2i));
        QVERIFY(verifyPassword("battery", hi));
    }

    void ourHashVerifiedByDovecotFormatAndCli() {
        HashParams p;
        p.memoryKiB = 4096;
        p.iterations = 1;
        auto h = hashPassword("zwölf Boxkämpfer", p);
        QVERIFY(h.ok());
        QVERIFY(h->startsWith(QStringLiteral("{ARGON2ID}$argon2id$v=19$m=4096,t=1,p=1$")));
        QVERIFY(verifyPassword(QStringLiteral("zwölf Boxkämpfer").toUtf8(), *h));
        QVERIFY(!verifyPassword("zwolf Boxkampfer", *h));
        // Two hashes of one password differ (random salt).
        QVERIFY(*hashPassword("x", p) != *hashPassword("x", p));
        // The reference implementation recomputes the same encoded hash from our salt.
        const QString enc = h->mid(10);
        const QStringList parts = enc.split(QLatin1Char('$'));  // "", argon2id, v=19, m=..., salt, hash
        QCOMPARE(parts.size(), 6);
        QByteArray salt = QByteArray::fromBase64(parts.at(4).toLatin1(), QByteArray::OmitTrailingEquals);
        QVERIFY(salt.size() == 16);
        // argon2 CLI takes the salt as text; only check it when the salt happens to be printable.
        bool printable = std::all_of(salt.begin(), salt.end(), [](char c) { return c > 0x20 && c < 0x7f; });
        if (printable) {
            const QString cli =
                run(need("argon2"),
                    {QString::fromLatin1(salt), QStringLiteral("-id"), QStringLiteral("-t"), QStringLiteral("1"),
                     QStringLiteral("-m"), QStringLiteral("12"), QStringLiteral("-e")},
                    QStringLiteral("zwölf Boxkämpfer").toUtf8());
            QCOMPARE(cli, enc);
        }
    }

    void refusesUnsupported_data() {
        QTest::addColumn<QString>("stored");
        QTest::newRow("plain") << "{PLAIN}secret";
        QTest::newRow("md5-crypt") << "$1$abc$abcdefghijklmnopqrstuv";
        QTest::newRow("empty") << "";
        QTest::newRow("star") << "*";
        QTest::newRow("garbage-argon") << "$argon2id$v=19$m=1,t=1,p=1$$";
        QTest::newRow("truncated-6") << "$6$";
    }
    void refusesUnsupported() {
        QFETCH(QString, stored);
        QVERIFY(!verifyPassword("secret", stored));
        QVERIFY(!verifyPassword("", stored));
    }

    void nulInPasswordRejected() {
        HashParams p;
        p.memoryKiB = 1024;
        p.iterations = 1;
        auto h = hashPassword("abc", p);
        QVERIFY(h.ok());
        QVERIFY(!verifyPassword(QByteArray("abc\0def", 7), *h));
    }

    void needsRehash() {
        HashParams p;
        p.memoryKiB = 19456;
        p.iterations = 2;
        QVERIFY(postern::needsRehash(QStringLiteral("{SHA512-CRYPT}$6$x$y"), p));
        QVERIFY(postern::needsRehash(QStringLiteral("{ARGON2ID}$argon2id$v=19$m=4096,t=2,p=1$a$b"), p));
        QVERIFY(!postern::needsRehash(QStringLiteral("{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$a$b"), p));
    }

    void generatedPasswords() {
        const QString a = generatePassword(), b = generatePassword();
        QCOMPARE(a.size(), 23);
        QVERIFY(a != b);
        QVERIFY(!a.contains(QLatin1Char('0')) && !a.contains(QLatin1Char('l')) && !a.contains(QLatin1Char('O')));
    }

    void cache() {
        AuthCache c(std::chrono::milliseconds(200), 2);
        qint64 clock = 1'000'000;
        c.setClock([&clock] { return clock; });
        const QString stored = QStringLiteral("{ARGON2ID}stored-1");
        QVERIFY(!c.check(QStringLiteral("u@x"), "pw", stored));
        c.remember(QStringLiteral("u@x"), "pw", stored);
        QVERIFY(c.check(QStringLiteral("u@x"), "pw", stored));
        QVERIFY(!c.check(QStringLiteral("u@x"), "wrong", stored));
        QVERIFY(!c.check(QStringLiteral("v@x"), "pw", stored));
        // A changed password hash invalidates the entry.
        QVERIFY(!c.check(QStringLiteral("u@x"), "pw", QStringLiteral("{ARGON2ID}stored-2")));
        c.remember(QStringLiteral("u@x"), "pw", stored);
        c.remember(QStringLiteral("a@x"), "pw", stored);
        c.remember(QStringLiteral("b@x"), "pw", stored);  // over capacity: something was evicted
        QVERIFY(c.size() <= 2);
        QVERIFY(c.check(QStringLiteral("b@x"), "pw", stored));
        clock += 200;  // the TTL itself: still valid
        QVERIFY(c.check(QStringLiteral("b@x"), "pw", stored));
        clock += 1;  // TTL + 1 ms: expired
        QVERIFY(!c.check(QStringLiteral("b@x"), "pw", stored));
        AuthCache off(std::chrono::milliseconds(0), 100);
        off.remember(QStringLiteral("u@x"), "pw", stored);
        QVERIFY(!off.check(QStringLiteral("u@x"), "pw", stored));
    }
};

QTEST_GUILESS_MAIN(TstPassword)
#include "tst_password.moc"
