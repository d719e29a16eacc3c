// tst_http_request.cpp — the HTTP request-head parser at and around its limits,
// and the generated MTA-STS policy / autoconfig content.
#include "webd/http_request.h"
#include "webd/web_content.h"

#include <QTest>

using namespace postern::web;
using S = HttpParse::Status;

class TestHttpRequest : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void parse_data() {
        QTest::addColumn<QByteArray>("input");
        QTest::addColumn<int>("status");  // 0 incomplete, 1 complete, else the error code
        QTest::newRow("simple") << QByteArray("GET /health HTTP/1.1\r\nHost: a.test\r\n\r\n") << 1;
        QTest::newRow("bare LF") << QByteArray("GET /health HTTP/1.1\nHost: a.test\n\n") << 1;
        QTest::newRow("http/1.0 without host") << QByteArray("GET / HTTP/1.0\r\n\r\n") << 1;
        QTest::newRow("incomplete") << QByteArray("GET / HTTP/1.1\r\nHost: a") << 0;
        QTest::newRow("no host 1.1") << QByteArray("GET / HTTP/1.1\r\n\r\n") << 400;
        QTest::newRow("two hosts") << QByteArray("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") << 400;
        QTest::newRow("http/2") << QByteArray("GET / HTTP/2.0\r\nHost: a\r\n\r\n") << 505;
        QTest::newRow("absolute form") << QByteArray("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n") << 400;
        QTest::newRow("dot dot") << QByteArray("GET /a/../b HTTP/1.1\r\nHost: a\r\n\r\n") << 400;
        QTest::newRow("encoded dot dot") << QByteArray("GET /a/%2e%2e/b HTTP/1.1\r\nHost: a\r\n\r\n") << 400;
        QTest::newRow("encoded NUL") << QByteArray("GET /a%00 HTTP/1.1\r\nHost: a\r\n\r\n") << 400;
        QTest::newRow("bad escape") << QByteArray("GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n") << 400;
        QTest::newRow("folding") << QByteArray("GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n") << 400;
        QTest::newRow("chunked") << QByteArray("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
                                 << 501;
        QTest::newRow("bad length") << QByteArray("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n") << 400;
        QTest::newRow("ctl in value") << QByteArray("GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n") << 400;
        const QByteArray lineAtLimit = "GET /" + QByteArray(kMaxRequestLine - 16, 'a') + " HTTP/1.1";
        QTest::newRow("request line at limit") << QByteArray(lineAtLimit + "\r\nHost: a\r\n\r\n") << 1;
        QTest::newRow("request line over limit")
            << QByteArray("GET /" + QByteArray(kMaxRequestLine, 'a') + " HTTP/1.1\r\n") << 414;
        QTest::newRow("request line over limit, no LF yet")
            << QByteArray("GET /" + QByteArray(kMaxRequestLine, 'a')) << 414;
        QByteArray fields;
        for (int i = 0; i < kMaxHeaderFields - 1; ++i) fields += "X-" + QByteArray::number(i) + ": v\r\n";
        QTest::newRow("100 fields") << QByteArray("GET / HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n") << 1;
        QTest::newRow("101 fields") << QByteArray("GET / HTTP/1.1\r\nHost: a\r\nX-extra: v\r\n" + fields + "\r\n")
                                    << 431;
        QTest::newRow("head over 16 KiB")
            << QByteArray("GET / HTTP/1.1\r\nHost: a\r\nX: " + QByteArray(kMaxHead, 'v')) << 431;
    }
    void parse() {
        QFETCH(QByteArray, input);
        QFETCH(int, status);
        const HttpParse p = parseRequestHead(input);
        if (status == 0)
            QCOMPARE(p.status, S::Incomplete);
        else if (status == 1)
            QVERIFY2(p.status == S::Complete, qPrintable(p.errorText));
        else {
            QCOMPARE(p.status, S::Error);
            QCOMPARE(p.errorCode, status);
        }
    }

    void fields() {
        const HttpParse p = parseRequestHead(
            "POST /x%20y?emailaddress=a%40b.test&z=1 HTTP/1.1\r\nHOST: Mail.Example.Test:8443\r\nContent-Length: "
            "12\r\n\r\nbody");
        QCOMPARE(p.status, S::Complete);
        QCOMPARE(p.request.method, QByteArray("POST"));
        QCOMPARE(p.request.path, QStringLiteral("/x y"));
        QCOMPARE(p.request.host, QStringLiteral("mail.example.test"));
        QCOMPARE(p.request.contentLength, qint64(12));
        QCOMPARE(queryParameter(p.request.query, QStringLiteral("emailaddress")), QStringLiteral("a@b.test"));
        QCOMPARE(queryParameter(p.request.query, QStringLiteral("missing")), QString());
        QVERIFY(p.headerBytes > 0 && p.headerBytes < 120);
    }

    void content() {
        Site site;
        site.hostname = QStringLiteral("mail.example.test");
        site.primaryDomain = QStringLiteral("example.test");
        site.domains = {QStringLiteral("example.test")};
        site.mtaStsMode = QStringLiteral("enforce");
        site.services = {{QStringLiteral("imap"), QStringLiteral("SSL"), 993},
                         {QStringLiteral("smtp"), QStringLiteral("STARTTLS"), 587}};
        QCOMPARE(mtaStsPolicy(site),
                 QByteArray("version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\nmax_age: 604800\r\n"));
        const QByteArray xml = autoconfigXml(site, QStringLiteral("<b>@x"));
        QVERIFY(xml.contains("<emailProvider id=\"example.test\">"));
        QVERIFY(!xml.contains("<b>"));
        QVERIFY(xml.contains("<socketType>SSL</socketType>"));
        QCOMPARE(autodiscoverEmail("<a><EMailAddress> Bob@Example.Test </EMailAddress></a>"),
                 QStringLiteral("bob@example.test"));
        QCOMPARE(autodiscoverEmail("<EMailAddress>not an address</EMailAddress>"), QString());
    }
};

QTEST_GUILESS_MAIN(TestHttpRequest)
#include "tst_http_request.moc"
