// tst_sasl.cpp — SASL PLAIN and LOGIN server steps, every failure path.
#include "common/sasl.h"

#include <QtTest>

using namespace postern;

namespace {
QByteArray b64(const QByteArray& raw) {
    return raw.toBase64();
}
}  // namespace

class TstSasl : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void plainInitialResponse() {
        SaslServer s;
        auto step = s.start(QStringLiteral("plain"), b64(QByteArray("\0alice@example.org\0s3cret", 25)), true);
        QCOMPARE(int(step.kind), int(SaslServer::StepKind::Done));
        QCOMPARE(s.user(), QStringLiteral("alice@example.org"));
        QCOMPARE(s.takePassword(), QByteArray("s3cret"));
        QCOMPARE(s.takePassword(), QByteArray());  // taken once
    }
    void plainWithChallenge() {
        SaslServer s;
        auto step = s.start(QStringLiteral("PLAIN"), {}, false);
        QCOMPARE(int(step.kind), int(SaslServer::StepKind::Challenge));
        QVERIFY(step.challenge.isEmpty());
        step = s.next(b64(QByteArray("alice@example.org\0alice@example.org\0pw", 38)));
        QCOMPARE(int(step.kind), int(SaslServer::StepKind::Done));
        QCOMPARE(s.user(), QStringLiteral("alice@example.org"));
    }
    void plainFailures_data() {
        QTest::addColumn<QByteArray>("response");
        QTest::addColumn<int>("failure");
        using F = SaslServer::Failure;
        QTest::newRow("not base64") << QByteArray("!!!") << int(F::Syntax);
        QTest::newRow("two fields") << b64(QByteArray("alice\0pw", 8)) << int(F::Syntax);
        QTest::newRow("four fields") << b64(QByteArray("a\0b\0c\0d", 7)) << int(F::Syntax);
        QTest::newRow("empty user") << b64(QByteArray("\0\0pw", 4)) << int(F::Syntax);
        QTest::newRow("empty password") << b64(QByteArray("\0alice\0", 7)) << int(F::Syntax);
        QTest::newRow("other authzid") << b64(QByteArray("bob\0alice\0pw", 12)) << int(F::AuthzidMismatch);
        QTest::newRow("field too long") << b64(QByteArray("\0", 1) + QByteArray(1025, 'u') + QByteArray("\0pw", 3))
                                        << int(F::Syntax);
        QTest::newRow("bad utf8 user") << b64(QByteArray("\0\xff\xfe\0pw", 6)) << int(F::Syntax);
        QTest::newRow("empty response") << QByteArray("=") << int(F::Syntax);
    }
    void plainFailures() {
        QFETCH(QByteArray, response);
        QFETCH(int, failure);
        SaslServer s;
        auto step = s.start(QStringLiteral("PLAIN"), response, true);
        QCOMPARE(int(step.kind), int(SaslServer::StepKind::Failed));
        QCOMPARE(int(step.failure), failure);
        QVERIFY(s.takePassword().isEmpty());
    }
    void login() {
        SaslServer s;
        auto step = s.start(QStringLiteral("LOGIN"), {}, false);
        QCOMPARE(step.challenge, QByteArray("Username:"));
        step = s.next(b64("alice@example.org"));
        QCOMPARE(step.challenge, QByteArray("Password:"));
        step = s.next(b64("pw with spaces"));
        QCOMPARE(int(step.kind), int(SaslServer::StepKind::Done));
        QCOMPARE(s.user(), QStringLiteral("alice@example.org"));
        QCOMPARE(s.takePassword(), QByteArray("pw with spaces"));
    }
    void loginInitialResponse() {
        SaslServer s;
        auto step = s.start(QStringLiteral("LOGIN"), b64("bob@example.org"), true);
        QCOMPARE(step.challenge, QByteArray("Password:"));
        QCOMPARE(int(s.next(b64("x")).kind), int(SaslServer::StepKind::Done));
    }
    void cancel() {
        SaslServer s;
        s.start(QStringLiteral("LOGIN"), {}, false);
        auto step = s.next("*");
        QCOMPARE(int(step.failure), int(SaslServer::Failure::Cancelled));
    }
    void unknownMechanism() {
        SaslServer s;
        QCOMPARE(int(s.start(QStringLiteral("CRAM-MD5"), {}, false).failure), int(SaslServer::Failure::BadMechanism));
        QCOMPARE(int(s.start(QStringLiteral("GSSAPI"), "x", true).failure), int(SaslServer::Failure::BadMechanism));
    }
    void unexpectedStep() {
        SaslServer s;
        s.start(QStringLiteral("PLAIN"), b64(QByteArray("\0a\0b", 4)), true);
        QCOMPARE(int(s.next("abc").failure), int(SaslServer::Failure::Syntax));
    }
};

QTEST_GUILESS_MAIN(TstSasl)
#include "tst_sasl.moc"
