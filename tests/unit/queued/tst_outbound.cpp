// tst_outbound.cpp — the queue runner's pure parts: retry schedule, DSN status
// codes and report structure, MTA-STS policy parsing and MX matching, DKIM
// sign/verify round trips (against an in-memory resolver; the independent
// check with python3-dkim is in tests/integration/queued), DKIM over a message
// file (header block + streamed body) and the queue's in-place file signer.
#include "queued/delivery_policy.h"
#include "queued/dsn.h"
#include "queued/queue_runner.h"

#include "common/dkim/dkim.h"
#include "common/dkim/file_signer.h"
#include "common/mail/message.h"
#include "common/mail/message_file.h"

#include "core/dkim_keys.h"

#include <QFile>
#include <QTemporaryDir>
#include <QTemporaryFile>
#include <QTest>

#include <openssl/evp.h>
#include <openssl/pem.h>

using namespace postern;
using namespace postern::outbound;

namespace {
class MapResolver : public Resolver {
public:
    QHash<QString, QByteArray> txt;
    DnsAnswer query(const QString& name, DnsType type) override {
        DnsAnswer a;
        if (type != DnsType::TXT || !txt.contains(name)) {
            a.status = DnsAnswer::Status::NxDomain;
            return a;
        }
        a.status = DnsAnswer::Status::Ok;
        DnsRecord r;
        r.name = name;
        r.type = DnsType::TXT;
        const QByteArray v = txt.value(name);
        for (qsizetype i = 0; i < v.size(); i += 255) r.strings << v.mid(i, 255);
        a.records << r;
        return a;
    }
};

QByteArray slurp(const QString& path) {
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

QByteArray pemOf(EVP_PKEY* k) {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    QByteArray out(data, n);
    BIO_free(bio);
    return out;
}

QByteArray publicTxt(EVP_PKEY* k, bool ed25519) {
    if (ed25519) {
        unsigned char raw[32];
        size_t len = sizeof raw;
        EVP_PKEY_get_raw_public_key(k, raw, &len);
        return "v=DKIM1; k=ed25519; p=" + QByteArray(reinterpret_cast<char*>(raw), int(len)).toBase64();
    }
    unsigned char* der = nullptr;
    const int n = i2d_PUBKEY(k, &der);
    QByteArray out = "v=DKIM1; k=rsa; p=" + QByteArray(reinterpret_cast<char*>(der), n).toBase64();
    OPENSSL_free(der);
    return out;
}

const QByteArray kMessage =
    "From: Alice <alice@example.test>\r\n"
    "To: bob@other.test\r\n"
    "Subject:   Hello   there \r\n"
    "Date: Tue, 24 Nov 2026 12:00:00 +0000\r\n"
    "Message-ID: <1@example.test>\r\n"
    "\r\n"
    "Body line one  \r\n"
    "\r\n"
    "Body line two\r\n"
    "\r\n\r\n";
}  // namespace

class TestOutbound : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void retrySchedule_data() {
        QTest::addColumn<int>("attempts");
        QTest::addColumn<qint64>("expected");
        QTest::newRow("first") << 1 << qint64(300);
        QTest::newRow("second doubles") << 2 << qint64(600);
        QTest::newRow("fourth") << 4 << qint64(2400);
        QTest::newRow("capped at max") << 7 << qint64(14400);
        QTest::newRow("many attempts stay capped") << 1000 << qint64(14400);
    }
    void retrySchedule() {
        QFETCH(int, attempts);
        QFETCH(qint64, expected);
        QCOMPARE(retryDelay(attempts, 300, 14400), expected);
    }

    void statusFromReply_data() {
        QTest::addColumn<QString>("reply");
        QTest::addColumn<QString>("status");
        QTest::newRow("enhanced") << "550 5.1.1 <x@y>: no such user"
                                  << "5.1.1";
        QTest::newRow("enhanced multi-digit") << "556 5.1.10 null MX"
                                              << "5.1.10";
        QTest::newRow("temporary") << "451 4.3.0 later"
                                   << "4.3.0";
        QTest::newRow("no enhanced code") << "554 go away"
                                          << "5.0.0";
        QTest::newRow("class mismatch ignored") << "550 4.1.1 confused"
                                                << "5.0.0";
        QTest::newRow("transport error") << "timeout talking to mx"
                                         << "4.4.1";
    }
    void statusFromReply() {
        QFETCH(QString, reply);
        QFETCH(QString, status);
        QCOMPARE(outbound::statusFromReply(reply, QStringLiteral("4.4.1")), status);
    }

    void dsnStructure() {
        DsnInput in;
        in.reportingMta = QStringLiteral("mail.example.test");
        in.recipient = QStringLiteral("alice@example.test");
        in.envid = QStringLiteral("ENV1");
        in.arrival = QDateTime::fromSecsSinceEpoch(1'800'000'000);
        DsnRecipient r;
        r.address = QStringLiteral("bob@other.test");
        r.orcpt = QStringLiteral("rfc822;bob@other.test");
        r.status = QStringLiteral("5.1.1");
        r.diagnostic = QStringLiteral("550 5.1.1 no such user\x01\x7f");  // control characters from a remote server
        r.remoteMta = QStringLiteral("mx.other.test");
        in.recipients << r;
        in.original = kMessage;
        const QByteArray dsn = buildDsn(in);
        const mail::MimePart top = mail::parseMime(dsn);
        QCOMPARE(top.type, QStringLiteral("multipart"));
        QCOMPARE(top.subtype, QStringLiteral("report"));
        QCOMPARE(top.children.size(), 3);
        QCOMPARE(top.children.at(1).subtype, QStringLiteral("delivery-status"));
        QCOMPARE(top.children.at(2).subtype, QStringLiteral("rfc822"));
        const QByteArray status =
            dsn.mid(top.children.at(1).bodyStart, top.children.at(1).bodyEnd - top.children.at(1).bodyStart);
        QVERIFY(status.contains("Reporting-MTA: dns; mail.example.test\r\n"));
        QVERIFY(status.contains("Original-Envelope-Id: ENV1\r\n"));
        QVERIFY(status.contains("Original-Recipient: rfc822; bob@other.test\r\n"));
        QVERIFY(status.contains("Final-Recipient: rfc822; bob@other.test\r\n"));
        QVERIFY(status.contains("Action: failed\r\n"));
        QVERIFY(status.contains("Status: 5.1.1\r\n"));
        QVERIFY(status.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user??\r\n"));
        QVERIFY(dsn.contains("Subject: Undelivered Mail Returned to Sender\r\n"));
        QVERIFY(dsn.contains("Auto-Submitted: auto-replied\r\n"));
        QVERIFY(dsn.contains(kMessage));

        // RET=HDRS: only the header comes back; a delay notice says "delayed".
        in.ret = QStringLiteral("HDRS");
        in.recipients[0].delayed = true;
        in.retryUntil = in.arrival.addDays(5);
        const QByteArray delay = buildDsn(in);
        QVERIFY(delay.contains("Content-Type: text/rfc822-headers"));
        QVERIFY(!delay.contains("Body line one"));
        QVERIFY(delay.contains("Action: delayed\r\n"));
        QVERIFY(delay.contains("Will-Retry-Until: "));
        QVERIFY(delay.contains("Subject: Delayed Mail (still being retried)"));
    }

    void dsnOriginalRecipient_data() {
        QTest::addColumn<QString>("stored");
        QTest::addColumn<QByteArray>("field");  // "" = no Original-Recipient field
        // RFC 3464 2.3.1: the address as the sender gave it, xtext decoded (RFC 3461 4.2).
        QTest::newRow("xtext decoded") << QStringLiteral("rfc822;list+2Btag@example.test")
                                       << QByteArray("Original-Recipient: rfc822; list+tag@example.test\r\n");
        QTest::newRow("older unencoded value") << QStringLiteral("rfc822;list+tag@example.test")
                                               << QByteArray("Original-Recipient: rfc822; list+tag@example.test\r\n");
        // RFC 6533 3: a UTF-8 address in a message/delivery-status part uses utf-8-addr-xtext.
        QTest::newRow("utf-8") << QStringLiteral("utf-8;j\\x{F6}rg@example.test")
                               << QByteArray("Original-Recipient: utf-8; j\\x{F6}rg@example.test\r\n");
        QTest::newRow("garbage left out") << QStringLiteral("no-type-here") << QByteArray();
    }
    void dsnOriginalRecipient() {
        QFETCH(QString, stored);
        QFETCH(QByteArray, field);
        DsnInput in;
        in.reportingMta = QStringLiteral("mail.example.test");
        in.recipient = QStringLiteral("alice@example.test");
        DsnRecipient r;
        r.address = QStringLiteral("someone@remote.test");
        r.orcpt = stored;
        r.status = QStringLiteral("5.1.1");
        r.diagnostic = QStringLiteral("550 5.1.1 no");
        in.recipients << r;
        in.original = kMessage;
        const QByteArray dsn = buildDsn(in);
        if (field.isEmpty())
            QVERIFY(!dsn.contains("Original-Recipient:"));
        else
            QVERIFY2(dsn.contains(field), dsn.constData());
    }

    void mtaStsPolicy() {
        auto p = parseMtaStsPolicy(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\nmx: *.backup.test\r\nmax_age: 604800\r\n");
        QVERIFY(p.has_value());
        QCOMPARE(p->mode, QStringLiteral("enforce"));
        QCOMPARE(p->mx, (QStringList{QStringLiteral("mail.example.test"), QStringLiteral("*.backup.test")}));
        QCOMPARE(p->maxAge, qint64(604800));
        QVERIFY(!parseMtaStsPolicy("mode: enforce\nmx: a\nmax_age: 1\n").has_value());  // no version
        QVERIFY(!parseMtaStsPolicy("version: STSv1\nmode: bogus\nmx: a\nmax_age: 1\n").has_value());
        QVERIFY(mtaStsMxMatches(QStringLiteral("mail.example.test"), QStringLiteral("MAIL.example.test.")));
        QVERIFY(mtaStsMxMatches(QStringLiteral("*.backup.test"), QStringLiteral("mx1.backup.test")));
        QVERIFY(
            !mtaStsMxMatches(QStringLiteral("*.backup.test"), QStringLiteral("a.mx1.backup.test")));  // one label only
        QVERIFY(!mtaStsMxMatches(QStringLiteral("*.backup.test"), QStringLiteral("backup.test")));
        QVERIFY(!mtaStsMxMatches(QStringLiteral("mail.example.test"), QStringLiteral("evil-mail.example.test")));
    }

    void dkimRoundTrip_data() {
        QTest::addColumn<bool>("ed25519");
        QTest::newRow("rsa-sha256") << false;
        QTest::newRow("ed25519-sha256") << true;
    }
    void dkimRoundTrip() {
        QFETCH(bool, ed25519);
        EVP_PKEY* key = ed25519 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519") : EVP_RSA_gen(2048);
        QVERIFY(key);
        MapResolver dns;
        dns.txt.insert(QStringLiteral("sel._domainkey.example.test"), publicTxt(key, ed25519));
        auto sig = dkim::signMessage(kMessage, QStringLiteral("example.test"), QStringLiteral("sel"), pemOf(key));
        EVP_PKEY_free(key);
        QVERIFY2(sig.ok(), qPrintable(sig.errorMessage()));
        QVERIFY(sig->startsWith("DKIM-Signature: v=1; a="));
        QVERIFY(sig->endsWith("\r\n"));
        const QByteArray signedMsg = *sig + kMessage;
        auto results = dkim::verifyMessage(signedMsg, dns);
        QCOMPARE(results.size(), 1);
        QCOMPARE(dkim::toString(results.first().status), dkim::toString(dkim::VerifyResult::Status::Pass));
        QCOMPARE(results.first().domain, QStringLiteral("example.test"));
        // Relaxed canonicalisation: whitespace changes in header and body still verify.
        QByteArray rewrapped = signedMsg;
        rewrapped.replace("Subject:   Hello   there \r\n", "Subject: Hello there\r\n");
        rewrapped.replace("Body line one  \r\n", "Body line one\r\n");
        QCOMPARE(dkim::toString(dkim::verifyMessage(rewrapped, dns).first().status),
                 dkim::toString(dkim::VerifyResult::Status::Pass));
        // A changed body or an added From fails.
        QByteArray changed = signedMsg;
        changed.replace("Body line two", "Body line 2");
        QCOMPARE(dkim::toString(dkim::verifyMessage(changed, dns).first().status),
                 dkim::toString(dkim::VerifyResult::Status::Fail));
        QByteArray secondFrom = signedMsg;
        secondFrom.replace("To: bob@other.test\r\n", "To: bob@other.test\r\nFrom: mallory@evil.test\r\n");
        QCOMPARE(dkim::toString(dkim::verifyMessage(secondFrom, dns).first().status),
                 dkim::toString(dkim::VerifyResult::Status::Fail));
        // No key in DNS: permerror, never pass.
        MapResolver empty;
        QVERIFY(dkim::verifyMessage(signedMsg, empty).first().status != dkim::VerifyResult::Status::Pass);
    }

    // Signing and verifying from a file gives what bytes in memory give.
    void dkimFromFile() {
        EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
        QVERIFY(key);
        const QByteArray pem = pemOf(key);
        MapResolver dns;
        dns.txt.insert(QStringLiteral("s._domainkey.example.test"), publicTxt(key, true));
        EVP_PKEY_free(key);
        const QByteArray message =
            "From: a@example.test\r\nSubject: s\r\n\r\n" + QByteArray(200000, 'b') + "\r\n  tail \r\n\r\n";
        QTemporaryFile f;
        QVERIFY(f.open());
        auto sig = dkim::signMessage(mail::MessageFile::fromBytes(message), QStringLiteral("example.test"),
                                     QStringLiteral("s"), pem);
        QVERIFY(sig.ok());
        f.write(*sig + message);
        f.flush();
        auto file = mail::MessageFile::read(f.handle(), f.size(), 64 * 1024);
        QVERIFY(file.ok());
        const QList<dkim::VerifyResult> fromFile = dkim::verifyMessage(*file, dns);
        QCOMPARE(fromFile.size(), 1);
        QCOMPARE(dkim::toString(fromFile.first().status), QStringLiteral("pass"));
        QCOMPARE(dkim::toString(dkim::verifyMessage(*sig + message, dns).first().status), QStringLiteral("pass"));
        // One byte of the body changed: the body hash fails, from the file as from bytes.
        QByteArray changed = *sig + message;
        changed[changed.size() - 9] = 'X';
        QCOMPARE(dkim::verifyMessage(changed, dns).first().reason, QStringLiteral("body hash did not verify"));
        // A signature from a file whose header block is replaced (as after removing forged fields).
        const mail::MessageFile replaced = file->withHeader(file->header());
        QCOMPARE(dkim::toString(dkim::verifyMessage(replaced, dns).first().status), QStringLiteral("pass"));
    }

    // postern-queued's signing step: the file is replaced by signatures + the old content,
    // only for a From: the user may use, once.
    void signFileInPlace() {
        QTemporaryDir config;
        DkimKeyStore keys(config.path());
        auto key = keys.generate(QStringLiteral("example.test"), QStringLiteral("ed25519"));
        QVERIFY2(key.ok(), qPrintable(key.errorMessage()));
        MapResolver dns;
        dns.txt.insert(key->selector + QStringLiteral("._domainkey.example.test"),
                       keys.publicRecord(QStringLiteral("example.test"), key->selector)->toUtf8());
        const QByteArray message = "Received: by us\r\nFrom: Alice <alice@example.test>\r\nSubject: s\r\n\r\n" +
                                   QByteArray(100000, 'q') + "\r\n";
        const QString path = config.filePath(QStringLiteral("msg.body"));
        auto write = [&] {
            QFile f(path);
            return f.open(QIODevice::WriteOnly | QIODevice::Truncate) && f.write(message) == message.size();
        };
        QVERIFY(write());
        dkim::FileSignRequest req;
        req.configDir = config.path();
        req.path = path;
        req.authUser = QStringLiteral("alice@example.test");
        req.maySendAs = [](const QString& a) { return a == u"alice@example.test"; };
        req.maxHeaderBytes = 1024;
        dkim::FileSignOutcome out = dkim::signFile(req);
        QVERIFY2(out.signedNow, qPrintable(out.note + out.error));
        QByteArray signedFile = slurp(path);
        QVERIFY(signedFile.startsWith("DKIM-Signature:"));
        QVERIFY(signedFile.endsWith(message));
        QCOMPARE(out.size, qint64(signedFile.size()));
        QVERIFY(!QFile::exists(path + QStringLiteral(".signing")));
        QCOMPARE(dkim::toString(dkim::verifyMessage(signedFile, dns).first().status), QStringLiteral("pass"));
        // Again (a crash after signing): not signed twice.
        out = dkim::signFile(req);
        QVERIFY(!out.signedNow);
        QCOMPARE(out.note, QStringLiteral("already signed"));
        QCOMPARE(slurp(path), signedFile);
        // A From: the user may not use: refused, the file unchanged.
        QVERIFY(write());
        req.maySendAs = [](const QString&) { return false; };
        out = dkim::signFile(req);
        QVERIFY(out.refused && !out.signedNow);
        QCOMPARE(out.note,
                 QStringLiteral(
                     "not signed: From <alice@example.test> is not an address user alice@example.test may send as"));
        QCOMPARE(slurp(path), message);
        // A header block over the bound: not signed.
        req.maySendAs = [](const QString&) { return true; };
        req.maxHeaderBytes = 40;
        out = dkim::signFile(req);
        QVERIFY(!out.signedNow && !out.refused);
        QCOMPARE(out.note, QStringLiteral("header too large to sign"));
        QCOMPARE(slurp(path), message);
    }

    void relaxedCanonicalization() {
        QCOMPARE(dkim::canonicalizeHeaderRelaxed("SUBJect", " a \t b \r\n\tc  "), QByteArray("subject:a b c\r\n"));
        QCOMPARE(dkim::canonicalizeBodyRelaxed("a  b \r\n\r\n\r\n"), QByteArray("a b\r\n"));
        QCOMPARE(dkim::canonicalizeBodyRelaxed(""), QByteArray(""));
    }
};

QTEST_GUILESS_MAIN(TestOutbound)
#include "tst_outbound.moc"
