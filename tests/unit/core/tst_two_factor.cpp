// tst_two_factor.cpp — TOTP, base32, QR code, the credentials files and the
// TwoFactor operations (enrolment, confirmation, replay, disable, app passwords).
//
// TOTP against the RFC 6238 appendix B vectors (SHA-1 rows, 8 digits) and the
// 6-digit codes oathtool gives for the same secret; the +-1 step window at its
// boundaries (the first and last second of steps -1/+1 accepted, -2/+2 refused);
// replay refused; base32 against RFC 4648 section 10; codes parsed character by
// character; the QR matrix drawn as SVG and terminal blocks; the app password
// limit at its boundary (kMaxAppPasswords accepted, one more refused); file
// permissions (credentials 0640, totp-secrets 0600); a removed user's secrets and
// app passwords removed with it. All on an injected clock.
#include "core/account_credentials.h"
#include "core/accounts.h"
#include "core/atomic_file.h"
#include "core/qr_code.h"
#include "core/totp.h"
#include "core/two_factor.h"

#include <QFileInfo>
#include <QTemporaryDir>
#include <QtTest>

#include <sys/stat.h>

using namespace postern;

namespace {
const QByteArray kRfcSecret = "12345678901234567890";
const QString kAlice = QStringLiteral("alice@example.org");

int modeOf(const QString& path) {
    struct stat st {};
    if (::stat(QFile::encodeName(path).constData(), &st) != 0) return -1;
    return int(st.st_mode & 07777);
}

HashParams fastHash() {
    HashParams p;
    p.memoryKiB = 1024;
    p.iterations = 1;
    return p;
}

struct Instance {
    QTemporaryDir dir;
    AccountStore store{dir.path()};
    qint64 now = 1'700'000'000;
    TwoFactor tf{store, dir.filePath(QStringLiteral("usage")), [this] { return now; }};
    Instance() {
        const QString hash = *hashPassword("pw", fastHash());
        Status st = store.modify([&](Accounts& a) -> Status {
            if (auto s = a.addDomain(QStringLiteral("example.org")); !s) return s;
            if (auto s = a.addUser(kAlice, hash); !s) return s;
            return a.addUser(QStringLiteral("bob@example.org"), hash);
        });
        Q_ASSERT(st.ok());
    }
    QByteArray secret(const QString& address = kAlice) {
        auto s = TotpSecrets::parse(readFile(store.totpSecretsPath()).valueOr({}));
        const TotpSecret* e = s ? s->find(address) : nullptr;
        return e ? e->secret : QByteArray();
    }
};
}  // namespace

class TstTwoFactor : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void rfc6238Vectors_data() {
        QTest::addColumn<qint64>("time");
        QTest::addColumn<QString>("code");
        QTest::newRow("59") << qint64(59) << QStringLiteral("94287082");
        QTest::newRow("1111111109") << qint64(1111111109) << QStringLiteral("07081804");
        QTest::newRow("1111111111") << qint64(1111111111) << QStringLiteral("14050471");
        QTest::newRow("1234567890") << qint64(1234567890) << QStringLiteral("89005924");
        QTest::newRow("2000000000") << qint64(2000000000) << QStringLiteral("69279037");
        QTest::newRow("20000000000") << qint64(20000000000) << QStringLiteral("65353130");
    }
    void rfc6238Vectors() {
        QFETCH(qint64, time);
        QFETCH(QString, code);
        QCOMPARE(totpCode(kRfcSecret, time, 8), code);
        // 6 digits: the last six of the same truncated value (RFC 4226 section 5.3).
        QCOMPARE(totpCode(kRfcSecret, time, 6), code.right(6));
    }

    void window_data() {
        QTest::addColumn<qint64>("codeTime");
        QTest::addColumn<bool>("accepted");
        const qint64 now = 1'111'111'111;  // step 37037037, second 1 of it
        const qint64 stepStart = now - now % 30;
        QTest::newRow("same step") << now << true;
        QTest::newRow("-1 step, first second") << stepStart - 30 << true;
        QTest::newRow("-1 step, last second") << stepStart - 1 << true;
        QTest::newRow("+1 step, first second") << stepStart + 30 << true;
        QTest::newRow("+1 step, last second") << stepStart + 59 << true;
        QTest::newRow("-2 steps, last second") << stepStart - 31 << false;
        QTest::newRow("+2 steps, first second") << stepStart + 60 << false;
    }
    void window() {
        QFETCH(qint64, codeTime);
        QFETCH(bool, accepted);
        const qint64 now = 1'111'111'111;
        const QString code = totpCode(kRfcSecret, codeTime);
        const auto step = verifyTotp(kRfcSecret, code, now, -1);
        QCOMPARE(step.has_value(), accepted);
        if (accepted) QCOMPARE(*step, totpStep(codeTime));
    }

    void replayRefused() {
        const qint64 now = 1'234'567'890;
        const QString code = totpCode(kRfcSecret, now);
        auto step = verifyTotp(kRfcSecret, code, now, -1);
        QVERIFY(step);
        QVERIFY(!verifyTotp(kRfcSecret, code, now, *step));       // the same code again
        QVERIFY(!verifyTotp(kRfcSecret, code, now + 20, *step));  // still inside the window
        // An older code (previous step) after a newer one was accepted: refused too.
        QVERIFY(!verifyTotp(kRfcSecret, totpCode(kRfcSecret, now - 30), now, *step));
        // The next step's code is fine.
        QVERIFY(verifyTotp(kRfcSecret, totpCode(kRfcSecret, now + 30), now + 30, *step));
    }

    void base32_data() {
        QTest::addColumn<QByteArray>("raw");
        QTest::addColumn<QString>("text");
        // RFC 4648 section 10, without padding.
        QTest::newRow("f") << QByteArray("f") << QStringLiteral("MY");
        QTest::newRow("fo") << QByteArray("fo") << QStringLiteral("MZXQ");
        QTest::newRow("foo") << QByteArray("foo") << QStringLiteral("MZXW6");
        QTest::newRow("foob") << QByteArray("foob") << QStringLiteral("MZXW6YQ");
        QTest::newRow("fooba") << QByteArray("fooba") << QStringLiteral("MZXW6YTB");
        QTest::newRow("foobar") << QByteArray("foobar") << QStringLiteral("MZXW6YTBOI");
        QTest::newRow("rfc6238 secret") << kRfcSecret << QStringLiteral("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }
    void base32() {
        QFETCH(QByteArray, raw);
        QFETCH(QString, text);
        QCOMPARE(base32Encode(raw), text);
        QCOMPARE(base32Decode(text).valueOr({}), raw);
        QCOMPARE(base32Decode(text.toLower()).valueOr({}), raw);  // apps show lower case too
    }
    void base32Refused_data() {
        QTest::addColumn<QString>("text");
        QTest::newRow("empty") << QString();
        QTest::newRow("digit 1") << QStringLiteral("MZXW1");
        QTest::newRow("digit 8") << QStringLiteral("MZXW8");
        QTest::newRow("symbol") << QStringLiteral("MZ-W6");
        QTest::newRow("too long") << QString(kMaxBase32Chars + 1, QLatin1Char('A'));
    }
    void base32Refused() {
        QFETCH(QString, text);
        QVERIFY(!base32Decode(text).ok());
    }
    void base32AtLimit() { QVERIFY(base32Decode(QString(kMaxBase32Chars, QLatin1Char('A'))).ok()); }

    void parseCode_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("parsed");
        QTest::newRow("plain") << QStringLiteral("123456") << QStringLiteral("123456");
        QTest::newRow("grouped") << QStringLiteral("123 456") << QStringLiteral("123456");
        QTest::newRow("five") << QStringLiteral("12345") << QString();
        QTest::newRow("seven") << QStringLiteral("1234567") << QString();
        QTest::newRow("letter") << QStringLiteral("12345a") << QString();
        QTest::newRow("arabic-indic digit") << QStringLiteral("12345\u0663") << QString();
        QTest::newRow("empty") << QString() << QString();
    }
    void parseCode() {
        QFETCH(QString, text);
        QFETCH(QString, parsed);
        QCOMPARE(parseTotpCode(text), parsed);
        // Fed one character at a time: no prefix of a good code is itself accepted early.
        for (qsizetype i = 1; i < text.size(); ++i)
            if (text.left(i).count(QLatin1Char(' ')) == 0 && i < 6) QVERIFY(parseTotpCode(text.left(i)).isEmpty());
    }

    void uriAndQr() {
        const QString uri = totpUri(kAlice, kRfcSecret);
        QCOMPARE(
            uri,
            QStringLiteral(
                "otpauth://totp/Postern:alice@example.org?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Postern"));
        auto qr = QrMatrix::encode(uri.toUtf8());
        QVERIFY(qr.ok());
        QVERIFY(qr->size() >= 21 && (qr->size() - 21) % 4 == 0);  // versions: 21 + 4(v-1) modules
        // Finder patterns: the three corners' 7x7 squares are dark at their rims.
        for (int i = 0; i < 7; ++i) {
            QVERIFY(qr->dark(i, 0) && qr->dark(0, i) && qr->dark(qr->size() - 1 - i, 0) &&
                    qr->dark(0, qr->size() - 1 - i));
        }
        QVERIFY(!qr->dark(-1, 0) && !qr->dark(qr->size(), 0));
        const QString svg = qr->toSvg();
        QVERIFY(svg.startsWith(u"<svg xmlns=\"http://www.w3.org/2000/svg\""));
        QVERIFY(svg.endsWith(u"</svg>"));
        QVERIFY(!svg.contains(u"alice"));  // nothing of the text is in the markup
        int dark = 0;
        for (int y = 0; y < qr->size(); ++y)
            for (int x = 0; x < qr->size(); ++x) dark += qr->dark(x, y);
        QCOMPARE(int(svg.count(u"h1v1h-1z")), dark);
        const QStringList lines = qr->toTerminal().split(QLatin1Char('\n'), Qt::SkipEmptyParts);
        QCOMPARE(int(lines.size()), (qr->size() + 4 + 1) / 2);
        for (const QString& l : lines) QCOMPARE(int(l.size()), qr->size() + 4);
        // Limit: kMaxQrTextBytes encodes, one more is refused; empty is refused.
        QVERIFY(QrMatrix::encode(QByteArray(kMaxQrTextBytes, 'a')).ok());
        QVERIFY(!QrMatrix::encode(QByteArray(kMaxQrTextBytes + 1, 'a')).ok());
        QVERIFY(!QrMatrix::encode({}).ok());
    }

    void appPasswordText_data() {
        QTest::addColumn<QByteArray>("text");
        QTest::addColumn<QByteArray>("letters");
        QTest::newRow("shown form") << QByteArray("abcd efgh ijkl mnop") << QByteArray("abcdefghijklmnop");
        QTest::newRow("no spaces") << QByteArray("abcdefghijklmnop") << QByteArray("abcdefghijklmnop");
        QTest::newRow("dashes, capital") << QByteArray("Abcd-efgh-ijkl-mnop") << QByteArray("abcdefghijklmnop");
        QTest::newRow("15 letters") << QByteArray("abcdefghijklmno") << QByteArray();
        QTest::newRow("17 letters") << QByteArray("abcdefghijklmnopq") << QByteArray();
        QTest::newRow("digit") << QByteArray("abcdefghijklmno1") << QByteArray();
        QTest::newRow("ordinary password") << QByteArray("correct horse battery") << QByteArray();
    }
    void appPasswordText() {
        QFETCH(QByteArray, text);
        QFETCH(QByteArray, letters);
        QCOMPARE(normalizeAppPassword(text), letters);
    }
    void generatedAppPasswords() {
        QSet<QString> seen;
        for (int i = 0; i < 50; ++i) {
            const QString p = generateAppPassword();
            QCOMPARE(p.size(), 19);
            QCOMPARE(normalizeAppPassword(p.toLatin1()).size(), kAppPasswordLetters);
            seen.insert(p);
        }
        QCOMPARE(seen.size(), 50);
    }

    void credentialsFile_data() {
        QTest::addColumn<QByteArray>("text");
        QTest::addColumn<bool>("ok");
        const QByteArray app = "app alice@example.org 0123456789abcdef 1700000000 beef {ARGON2ID}$argon2id$x phone\n";
        QTest::newRow("empty") << QByteArray() << true;
        QTest::newRow("2fa") << QByteArray("# postern-credentials 1\n2fa alice@example.org 1700000000\n") << true;
        QTest::newRow("app") << app << true;
        QTest::newRow("newer format") << QByteArray("# postern-credentials 2\n") << false;
        QTest::newRow("bad id") << QByteArray(app).replace("0123456789abcdef", "0123") << false;
        QTest::newRow("bad tag") << QByteArray(app).replace("beef", "xyz1") << false;
        QTest::newRow("bad name") << QByteArray(app).replace("phone", "ph/one") << false;
        QTest::newRow("duplicate name") << app + QByteArray(app).replace("0123456789abcdef", "0123456789abcdee")
                                        << false;
        QTest::newRow("unknown kind") << QByteArray("totp alice@example.org 1\n") << false;
        QTest::newRow("long line") << QByteArray("# ") + QByteArray(kMaxCredentialLine, 'x') + "\n" << false;
    }
    void credentialsFile() {
        QFETCH(QByteArray, text);
        QFETCH(bool, ok);
        auto c = AccountCredentials::parse(text);
        QCOMPARE(c.ok(), ok);
        if (!ok) return;
        auto again = AccountCredentials::parse(c->serialize());
        QVERIFY(again.ok());
        QCOMPARE(again->serialize(), c->serialize());
    }

    void appPasswordLimitInFile() {
        QByteArray text;
        for (int i = 0; i <= kMaxAppPasswords; ++i)
            text += QStringLiteral("app alice@example.org %1 1 0000 {ARGON2ID}x n%2\n")
                        .arg(i, 16, 16, QLatin1Char('0'))
                        .arg(i)
                        .toUtf8();
        QVERIFY(!AccountCredentials::parse(text).ok());  // kMaxAppPasswords + 1
        text.truncate(text.lastIndexOf("app "));
        QVERIFY(AccountCredentials::parse(text).ok());  // exactly kMaxAppPasswords
    }

    void enrolConfirmVerifyDisable() {
        Instance in;
        QVERIFY(!in.tf.confirmEnrolment(kAlice, QStringLiteral("123456")).ok());  // nothing to confirm
        auto e = in.tf.beginEnrolment(QStringLiteral("Alice@Example.org"));
        QVERIFY2(e.ok(), qPrintable(e.errorMessage()));
        QCOMPARE(e->address, kAlice);
        const QByteArray secret = in.secret();
        QCOMPARE(secret.size(), kTotpSecretBytes);
        QCOMPARE(base32Decode(e->secretBase32).valueOr({}), secret);
        QVERIFY(e->uri.contains(e->secretBase32));
        QVERIFY(e->svg.startsWith(u"<svg"));
        QCOMPARE(modeOf(in.store.totpSecretsPath()), 0600);
        // Not on before the confirming code.
        QVERIFY(!in.tf.status(kAlice)->enabled);
        QVERIFY(in.tf.status(kAlice)->pending);
        QVERIFY(!in.store.load()->credentials().twoFactorEnabled(kAlice));
        QVERIFY(!in.tf.verifyCode(kAlice, totpCode(secret, in.now)).ok());
        QVERIFY(!in.tf.confirmEnrolment(kAlice, totpCode(secret, in.now + 90)).ok());  // +3 steps
        QVERIFY(in.tf.confirmEnrolment(kAlice, totpCode(secret, in.now)).ok());
        QVERIFY(in.store.load()->credentials().twoFactorEnabled(kAlice));
        QVERIFY(in.tf.status(kAlice)->enabled);
        QVERIFY(!in.tf.beginEnrolment(kAlice).ok());  // already on
        // The confirming code cannot be used again to log in (replay), the next one can.
        auto replay = in.tf.verifyCode(kAlice, totpCode(secret, in.now));
        QCOMPARE(replay.errorMessage(), QStringLiteral("wrong or already used code"));
        in.now += 30;
        QVERIFY(in.tf.verifyCode(kAlice, totpCode(secret, in.now)).ok());
        QVERIFY(!in.tf.verifyCode(kAlice, totpCode(secret, in.now)).ok());
        QVERIFY(!in.tf.verifyCode(QStringLiteral("bob@example.org"), totpCode(secret, in.now + 30)).ok());
        // Disabling needs a valid, unused code (or an administrator).
        QVERIFY(!in.tf.disableWithCode(kAlice, totpCode(secret, in.now)).ok());
        QVERIFY(!in.tf.disableWithCode(kAlice, QStringLiteral("abcdef")).ok());
        in.now += 30;
        QVERIFY(in.tf.disableWithCode(kAlice, totpCode(secret, in.now)).ok());
        QVERIFY(!in.store.load()->credentials().twoFactorEnabled(kAlice));
        QVERIFY(in.secret().isEmpty());
        // Administrator: enrol, confirm, then switch off without a code.
        QVERIFY(in.tf.beginEnrolment(kAlice).ok());
        QVERIFY(in.tf.confirmEnrolment(kAlice, totpCode(in.secret(), in.now)).ok());
        QVERIFY(in.tf.disableAsAdmin(kAlice).ok());
        QVERIFY(!in.tf.status(kAlice)->enabled);
        QVERIFY(!in.tf.disableAsAdmin(kAlice).ok());
    }

    void appPasswordLifecycleAndLimit() {
        Instance in;
        QVERIFY(!in.tf.addAppPassword(kAlice, QStringLiteral("bad name"), fastHash()).ok());
        QVERIFY(!in.tf.addAppPassword(kAlice, QString(kMaxAppPasswordName + 1, QLatin1Char('n')), fastHash()).ok());
        auto p = in.tf.addAppPassword(kAlice, QString(kMaxAppPasswordName, QLatin1Char('n')), fastHash());
        QVERIFY2(p.ok(), qPrintable(p.errorMessage()));
        QVERIFY(!in.tf.addAppPassword(kAlice, QString(kMaxAppPasswordName, QLatin1Char('N')), fastHash())
                     .ok());  // same name
        QCOMPARE(modeOf(in.store.credentialsPath()), 0640);
        const AppPassword stored = in.store.load()->credentials().appPasswords(kAlice).first();
        const QByteArray letters = normalizeAppPassword(p->password.toLatin1());
        QVERIFY(verifyPassword(letters, stored.hash));  // hashed with the project's hashing
        QVERIFY(!in.store.load()->serializeUsers().contains(letters));
        QVERIFY(!readFile(in.store.credentialsPath())->contains(letters));  // never stored in clear
        QCOMPARE(stored.tag, appPasswordTag(kAlice, letters));
        // Limit: up to kMaxAppPasswords, then refused.
        for (int i = 1; i < kMaxAppPasswords; ++i)
            QVERIFY2(in.tf.addAppPassword(kAlice, QStringLiteral("app%1").arg(i), fastHash()).ok(),
                     qPrintable(QString::number(i)));
        QCOMPARE(int(in.tf.appPasswords(kAlice)->size()), kMaxAppPasswords);
        auto over = in.tf.addAppPassword(kAlice, QStringLiteral("one-more"), fastHash());
        QVERIFY(!over.ok());
        QVERIFY(over.errorMessage().contains(QStringLiteral("20 app passwords")));
        // Last use: the mtime of the usage file, keyed by id.
        QCOMPARE(in.tf.appPasswords(kAlice)->first().lastUsed, 0);
        QVERIFY(recordAppPasswordUse(in.dir.filePath(QStringLiteral("usage")), stored.id, 1'700'000'123).ok());
        QCOMPARE(in.tf.appPasswords(kAlice)->first().lastUsed, 1'700'000'123);
        QVERIFY(!recordAppPasswordUse(in.dir.filePath(QStringLiteral("usage")), QStringLiteral("../x"), 1).ok());
        // Revoke: gone, and a slot is free again.
        QVERIFY(in.tf.revokeAppPassword(kAlice, QStringLiteral("APP1")).ok());
        QVERIFY(!in.tf.revokeAppPassword(kAlice, QStringLiteral("app1")).ok());
        QCOMPARE(int(in.tf.appPasswords(kAlice)->size()), kMaxAppPasswords - 1);
        QVERIFY(in.tf.addAppPassword(kAlice, QStringLiteral("one-more"), fastHash()).ok());
    }

    void removedUserTakesCredentialsAlong() {
        Instance in;
        QVERIFY(in.tf.addAppPassword(kAlice, QStringLiteral("phone"), fastHash()).ok());
        QVERIFY(in.tf.beginEnrolment(kAlice).ok());
        QVERIFY(in.tf.confirmEnrolment(kAlice, totpCode(in.secret(), in.now)).ok());
        QVERIFY(in.tf.beginEnrolment(QStringLiteral("bob@example.org")).ok());
        QVERIFY(in.store.modify([](Accounts& a) { return a.removeUser(kAlice, true); }).ok());
        // Created again under the same address: no 2FA, no app passwords, no secret.
        QVERIFY(in.store.modify([](Accounts& a) { return a.addUser(kAlice, *hashPassword("pw2", fastHash())); }).ok());
        auto acc = in.store.load();
        QVERIFY(!acc->credentials().twoFactorEnabled(kAlice));
        QVERIFY(acc->credentials().appPasswords(kAlice).isEmpty());
        QVERIFY(in.secret().isEmpty());
        QVERIFY(!in.secret(QStringLiteral("bob@example.org")).isEmpty());  // others untouched
        // A hand edit that deletes a user from `users` hides their credentials at once.
        QVERIFY(in.tf.addAppPassword(QStringLiteral("bob@example.org"), QStringLiteral("tablet"), fastHash()).ok());
        QByteArray users = *readFile(in.store.usersPath());
        users.replace(users.indexOf("bob@"), users.indexOf('\n', users.indexOf("bob@")) - users.indexOf("bob@") + 1,
                      "");
        QVERIFY(writeFileAtomic(in.store.usersPath(), users, 0640).ok());
        QVERIFY(in.store.load()->credentials().appPasswords(QStringLiteral("bob@example.org")).isEmpty());
    }

    void noFilesWithoutTwoFactor() {
        // An installation that never used two-factor keeps exactly the files it had.
        Instance in;
        QVERIFY(!QFileInfo::exists(in.store.credentialsPath()));
        QVERIFY(!QFileInfo::exists(in.store.totpSecretsPath()));
        QVERIFY(in.store.modify([](Accounts& a) { return a.setQuota(kAlice, 1024); }).ok());
        QVERIFY(!QFileInfo::exists(in.store.credentialsPath()));
        QVERIFY(!QFileInfo::exists(in.store.totpSecretsPath()));
    }
};

QTEST_GUILESS_MAIN(TstTwoFactor)
#include "tst_two_factor.moc"
