// tst_acme.cpp — the ACME client's encodings: base64url without padding and
// the RFC 7638 JWK thumbprint (the RFC's own example).
#include "ctl/acme_client.h"

#include <QTest>

class TestAcme : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void base64Url() {
        QCOMPARE(postern::acme::base64Url(QByteArray("\xfb\xff", 2)), QByteArray("-_8"));
        QCOMPARE(postern::acme::base64Url("{}"), QByteArray("e30"));
        QCOMPARE(postern::acme::base64Url(""), QByteArray(""));
    }
    void thumbprintRfc7638Example() {
        const QByteArray jwk =
            "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":"
            "\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
            "BJECPebWKRXjBZCiFV4n3"
            "oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
            "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbI"
            "SD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\"}";
        QCOMPARE(postern::acme::jwkThumbprint(jwk), QByteArray("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
    }
};

QTEST_GUILESS_MAIN(TestAcme)
#include "tst_acme.moc"
