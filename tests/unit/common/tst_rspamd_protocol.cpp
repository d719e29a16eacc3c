// tst_rspamd_protocol.cpp — the Rspamd side of spam scanning without I/O: the reply parser fed
// whole, byte by byte and in random splits (good replies, every kind of malformed one, the
// kMaxReplyHead/kMaxReplyBody boundaries), the JSON verdict, the action -> outcome mapping of the
// spam.action_* settings, the request head (sanitised fields, SPF/DKIM/DMARC for Rspamd's
// http_headers module) and the removal of X-Spam-* fields from outside.
#include "common/spam/rspamd_protocol.h"

#include <QRandomGenerator>
#include <QtTest>

using namespace postern::spam;

namespace {

QByteArray reply(const QByteArray& json, const QByteArray& extraFields = {}) {
    return "HTTP/1.1 200 OK\r\nConnection: close\r\nServer: rspamd/3.4\r\n" + extraFields +
           "Content-Length: " + QByteArray::number(json.size()) + "\r\nContent-Type: application/json\r\n\r\n" + json;
}

const QByteArray kAddHeader =
    "{\"is_skipped\":false,\"score\":7.5,\"required_score\":15.0,\"action\":\"add "
    "header\",\"symbols\":{\"GTUBE\":{\"name\":\"GTUBE\",\"score\":0.0},\"R_SPF_ALLOW\":{\"score\":-0.2}},\"messages\":"
    "{}}";

enum class Split { Whole, ByteByByte, Random };

RspamdReplyParser::State feedAll(RspamdReplyParser& p, const QByteArray& bytes, Split split) {
    if (split == Split::Whole) return p.feed(bytes);
    qsizetype i = 0;
    auto* rng = QRandomGenerator::global();
    while (i < bytes.size()) {
        const qsizetype n =
            split == Split::ByteByByte ? 1 : std::min<qsizetype>(bytes.size() - i, 1 + rng->bounded(40));
        if (p.feed(bytes.constData() + i, n) != RspamdReplyParser::State::NeedMore) {
            i += n;
            // Anything left over must make a finished parser fail.
            if (i < bytes.size()) return p.feed(bytes.constData() + i, bytes.size() - i);
            return p.state();
        }
        i += n;
    }
    return p.state();
}

}  // namespace

Q_DECLARE_METATYPE(RspamdAction)
Q_DECLARE_METATYPE(Outcome)

class TstRspamdProtocol : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void goodReplies_data() {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<RspamdAction>("action");
        QTest::addColumn<double>("score");
        QTest::addColumn<QStringList>("symbols");
        QTest::newRow("add header") << reply(kAddHeader) << RspamdAction::AddHeader << 7.5
                                    << QStringList{"GTUBE", "R_SPF_ALLOW"};
        QTest::newRow("reject skipped") << reply(
                                               "{\"is_skipped\":true,\"score\":15.0,\"required_score\":15.0,\"action\":"
                                               "\"reject\",\"symbols\":{\"GTUBE\":{}}}")
                                        << RspamdAction::Reject << 15.0 << QStringList{"GTUBE"};
        QTest::newRow("no action, no symbols")
            << reply("{\"score\":-1.5,\"required_score\":15,\"action\":\"no action\"}") << RspamdAction::NoAction
            << -1.5 << QStringList{};
        QTest::newRow("greylist") << reply("{\"score\":4,\"required_score\":15,\"action\":\"greylist\",\"symbols\":{}}")
                                  << RspamdAction::Greylist << 4.0 << QStringList{};
        QTest::newRow("soft reject") << reply("{\"score\":0,\"required_score\":15,\"action\":\"soft reject\"}")
                                     << RspamdAction::SoftReject << 0.0 << QStringList{};
        QTest::newRow("rewrite subject")
            << reply("{\"score\":9,\"required_score\":15,\"action\":\"rewrite subject\",\"subject\":\"*** SPAM ***\"}")
            << RspamdAction::RewriteSubject << 9.0 << QStringList{};
        QTest::newRow("HTTP/1.0, no reason, lower-case field")
            << QByteArray(
                   "HTTP/1.0 200\r\ncontent-length: 56\r\n\r\n{\"score\":1,\"required_score\":15,\"action\":\"no "
                   "action\"}    ")
            << RspamdAction::NoAction << 1.0 << QStringList{};
    }
    void goodReplies() {
        QFETCH(QByteArray, bytes);
        QFETCH(RspamdAction, action);
        QFETCH(double, score);
        QFETCH(QStringList, symbols);
        for (Split split : {Split::Whole, Split::ByteByByte, Split::Random}) {
            RspamdReplyParser p;
            QCOMPARE(feedAll(p, bytes, split), RspamdReplyParser::State::Done);
            QCOMPARE(toString(p.verdict().action), toString(action));
            QCOMPARE(p.verdict().score, score);
            QCOMPARE(p.verdict().symbols, symbols);
        }
    }

    void badReplies_data() {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("error");
        QTest::newRow("HTTP 500") << QByteArray("HTTP/1.1 500 Internal\r\nContent-Length: 2\r\n\r\n{}") << "HTTP 500";
        QTest::newRow("not HTTP") << QByteArray("SPAMD/1.1 0 EX_OK\r\n\r\n") << "status line";
        QTest::newRow("status letters") << QByteArray("HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\n{}")
                                        << "status line";
        QTest::newRow("no length") << reply(kAddHeader).replace("Content-Length", "X-Length")
                                   << "without Content-Length";
        QTest::newRow("two lengths") << reply(kAddHeader, "Content-Length: 5\r\n") << "two Content-Length";
        QTest::newRow("signed length") << QByteArray("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")
                                       << "bad Content-Length";
        QTest::newRow("huge length") << QByteArray("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n")
                                     << "bad Content-Length";
        QTest::newRow("chunked") << QByteArray(
                                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
                                 << "Transfer-Encoding";
        QTest::newRow("bare LF") << QByteArray("HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\n{}") << "bare LF";
        QTest::newRow("field without colon")
            << QByteArray("HTTP/1.1 200 OK\r\nGarbage\r\nContent-Length: 2\r\n\r\n{}") << "header field";
        QTest::newRow("space in name") << QByteArray("HTTP/1.1 200 OK\r\nContent Length: 2\r\n\r\n{}")
                                       << "header field";
        QTest::newRow("trailing bytes") << reply(kAddHeader) + "HTTP/1.1 200 OK"
                                        << "bytes after";
        QTest::newRow("not JSON") << reply("<html>") << "not JSON";
        QTest::newRow("JSON array") << reply("[1,2]") << "not a JSON object";
        QTest::newRow("no action") << reply("{\"score\":1,\"required_score\":15}") << "without \"action\"";
        QTest::newRow("unknown action") << reply("{\"score\":1,\"required_score\":15,\"action\":\"discard\"}")
                                        << "unknown action";
        QTest::newRow("string score") << reply("{\"score\":\"1\",\"required_score\":15,\"action\":\"reject\"}")
                                      << "numeric scores";
        QTest::newRow("no required") << reply("{\"score\":1,\"action\":\"reject\"}") << "numeric scores";
        QTest::newRow("absurd score") << reply("{\"score\":1e300,\"required_score\":15,\"action\":\"reject\"}")
                                      << "out of range";
        QTest::newRow("skipped not bool")
            << reply("{\"score\":1,\"required_score\":15,\"action\":\"reject\",\"is_skipped\":1}") << "is_skipped";
        QTest::newRow("symbols not object")
            << reply("{\"score\":1,\"required_score\":15,\"action\":\"reject\",\"symbols\":[]}") << "symbols";
        QTest::newRow("empty body") << reply("") << "not JSON";
    }
    void badReplies() {
        QFETCH(QByteArray, bytes);
        QFETCH(QString, error);
        for (Split split : {Split::Whole, Split::ByteByByte, Split::Random}) {
            RspamdReplyParser p;
            QCOMPARE(feedAll(p, bytes, split), RspamdReplyParser::State::Failed);
            QVERIFY2(p.error().contains(error), qPrintable(p.error()));
            // Failed stays failed.
            QCOMPARE(p.feed(kAddHeader), RspamdReplyParser::State::Failed);
        }
    }

    void truncatedNeedsMore() {
        const QByteArray r = reply(kAddHeader);
        for (qsizetype cut = 0; cut < r.size(); ++cut) {
            RspamdReplyParser p;
            QCOMPARE(p.feed(r.left(cut)), RspamdReplyParser::State::NeedMore);
        }
    }

    // kMaxReplyHead: a head of exactly the limit parses, one byte more fails.
    void headLimit() {
        for (qsizetype extra : {0, 1}) {
            QByteArray start = "HTTP/1.1 200 OK\r\nContent-Length: 56\r\nX-Pad: ";
            const QByteArray end = "\r\n\r\n";
            QByteArray head = start + QByteArray(kMaxReplyHead - start.size() - end.size() + extra, 'a') + end;
            QCOMPARE(head.size(), kMaxReplyHead + extra);
            RspamdReplyParser p;
            const auto st = p.feed(head + "{\"score\":1,\"required_score\":15,\"action\":\"no action\"}    ");
            QCOMPARE(st, extra ? RspamdReplyParser::State::Failed : RspamdReplyParser::State::Done);
        }
    }

    // kMaxReplyBody: a body of exactly the limit parses, one byte more is refused at the length.
    void bodyLimit() {
        const QByteArray json = "{\"score\":1,\"required_score\":15,\"action\":\"no action\",\"pad\":\"\"}";
        for (qsizetype extra : {0, 1}) {
            QByteArray body = json;
            body.insert(body.size() - 2, QByteArray(kMaxReplyBody - json.size() + extra, 'p'));
            QCOMPARE(body.size(), kMaxReplyBody + extra);
            RspamdReplyParser p;
            const auto st = feedAll(p, reply(body), Split::Random);
            QCOMPARE(st, extra ? RspamdReplyParser::State::Failed : RspamdReplyParser::State::Done);
            if (extra) QVERIFY(p.error().contains("larger than"));
        }
    }

    void symbolsBounded() {
        QByteArray json = "{\"score\":1,\"required_score\":15,\"action\":\"no action\",\"symbols\":{";
        for (int i = 0; i < kMaxSymbols + 10; ++i)
            json += (i ? "," : "") + QByteArray("\"S") + QByteArray::number(1000 + i) + "\":{}";
        json += "}}";
        auto v = parseVerdictJson(json);
        QVERIFY(v.ok());
        QCOMPARE(v->symbols.size(), kMaxSymbols);
    }

    void decideMapping_data() {
        QTest::addColumn<RspamdAction>("action");
        QTest::addColumn<Outcome>("defaults");
        QTest::addColumn<Outcome>("allInbox");
        QTest::newRow("no action") << RspamdAction::NoAction << Outcome::Inbox << Outcome::Inbox;
        QTest::newRow("greylist") << RspamdAction::Greylist << Outcome::TempFail << Outcome::Inbox;
        QTest::newRow("add header") << RspamdAction::AddHeader << Outcome::Junk << Outcome::Inbox;
        QTest::newRow("rewrite subject") << RspamdAction::RewriteSubject << Outcome::Junk << Outcome::Inbox;
        QTest::newRow("soft reject") << RspamdAction::SoftReject << Outcome::TempFail << Outcome::Inbox;
        QTest::newRow("reject") << RspamdAction::Reject << Outcome::Reject << Outcome::Inbox;
    }
    void decideMapping() {
        QFETCH(RspamdAction, action);
        QFETCH(Outcome, defaults);
        QFETCH(Outcome, allInbox);
        Verdict v;
        v.action = action;
        QCOMPARE(toString(decide(v, SpamPolicy{})), toString(defaults));
        SpamPolicy inbox{Outcome::Inbox, Outcome::Inbox, Outcome::Inbox, Outcome::Inbox, Outcome::Inbox};
        QCOMPARE(toString(decide(v, inbox)), toString(allInbox));
        for (Outcome o : {Outcome::Reject, Outcome::TempFail, Outcome::Junk, Outcome::Inbox})
            QVERIFY(outcomeFromString(toString(o)) == o);
        QVERIFY(!outcomeFromString(QStringLiteral("discard")));
    }

    void headers() {
        Verdict v;
        v.action = RspamdAction::AddHeader;
        v.score = 7.456;
        v.requiredScore = 15;
        QCOMPARE(spamHeaders(v),
                 QByteArray(
                     "X-Spam-Status: Yes, score=7.46 required=15.00 action=\"add header\"\r\nX-Spam-Score: 7.46\r\n"));
        v.action = RspamdAction::Greylist;
        QVERIFY(spamHeaders(v).startsWith("X-Spam-Status: No, "));
        QCOMPARE(uncheckedHeaders(), QByteArray("X-Spam-Status: unchecked\r\n"));
    }

    void stripForged_data() {
        QTest::addColumn<QByteArray>("header");
        QTest::addColumn<QByteArray>("expected");
        QTest::addColumn<bool>("changed");
        QTest::newRow("none") << QByteArray("From: a\r\nSubject: b\r\n\r\n")
                              << QByteArray("From: a\r\nSubject: b\r\n\r\n") << false;
        QTest::newRow("status") << QByteArray("X-Spam-Status: No\r\nFrom: a\r\n\r\n") << QByteArray("From: a\r\n\r\n")
                                << true;
        QTest::newRow("folded, lower case")
            << QByteArray("From: a\r\nx-spam-score:\r\n\t-100\r\n  more\r\nTo: b\r\n\r\n")
            << QByteArray("From: a\r\nTo: b\r\n\r\n") << true;
        QTest::newRow("last field, LF only")
            << QByteArray("From: a\nX-SPAM-FLAG: NO\n\n") << QByteArray("From: a\n\n") << true;
        QTest::newRow("look-alikes kept")
            << QByteArray("X-Spamd-Bar: +\r\nX-Spam: y\r\nXX-Spam-Status: z\r\n\r\n")
            << QByteArray("X-Spamd-Bar: +\r\nX-Spam: y\r\nXX-Spam-Status: z\r\n\r\n") << false;
        QTest::newRow("body untouched") << QByteArray("A: b\r\n\r\nX-Spam-Status: in the body\r\n")
                                        << QByteArray("A: b\r\n\r\nX-Spam-Status: in the body\r\n") << false;
    }
    void stripForged() {
        QFETCH(QByteArray, header);
        QFETCH(QByteArray, expected);
        QFETCH(bool, changed);
        bool c = !changed;
        QCOMPARE(stripSpamHeaders(header, &c), expected);
        QCOMPARE(c, changed);
    }

    void requestHead() {
        CheckRequest r;
        r.sender = QStringLiteral("bob@remote.test");
        r.recipients = {QStringLiteral("alice@example.test")};
        r.clientAddress = QStringLiteral("192.0.2.7");
        r.helo = QStringLiteral("evil\r\nX-Injected: 1");
        r.queueId = QStringLiteral("ABC");
        r.tlsProtocol = QStringLiteral("TLSv1.3");
        r.tlsCipher = QStringLiteral("TLS_AES_256_GCM_SHA384");
        r.spf = QStringLiteral("softfail");
        r.dkimChecked = true;
        r.dkim = {{QStringLiteral("pass"), QStringLiteral("remote.test")},
                  {QStringLiteral("fail"), QStringLiteral("q\"x.test")}};
        r.dmarc = QStringLiteral("fail");
        r.dmarcPolicy = QStringLiteral("quarantine");
        const QByteArray h = buildCheckRequestHead(r, 1234);
        QVERIFY(h.startsWith("POST /checkv2 HTTP/1.1\r\n"));
        QVERIFY(h.endsWith("\r\n\r\n"));
        QVERIFY(h.contains("\r\nContent-Length: 1234\r\n"));
        QVERIFY(h.contains("\r\nFrom: bob@remote.test\r\n"));
        QVERIFY(h.contains("\r\nRcpt: alice@example.test\r\nDeliver-To: alice@example.test\r\n"));
        QVERIFY(h.contains("\r\nIP: 192.0.2.7\r\n"));
        QVERIFY(h.contains("\r\nHelo: evilX-Injected: 1\r\n"));  // CR/LF dropped: no field injection
        QVERIFY(!h.contains("\r\nX-Injected"));
        QVERIFY(h.contains("\r\nTLS-Version: TLSv1.3\r\nTLS-Cipher: TLS_AES_256_GCM_SHA384\r\n"));
        QVERIFY(h.contains("\r\nSPF: {\"result\":\"softfail\"}\r\n"));
        QVERIFY(
            h.contains("DKIM: "
                       "{\"results\":[{\"result\":\"pass\",\"domain\":\"remote.test\"},{\"result\":\"fail\",\"domain\":"
                       "\"q\\\"x.test\"}]}"));
        QVERIFY(h.contains("\r\nDMARC: {\"result\":\"quarantine\"}\r\n"));
        QVERIFY(!h.contains("User:"));

        // temperror: Rspamd checks itself; null sender: no From; no DKIM signature: "na".
        CheckRequest t;
        t.spf = QStringLiteral("temperror");
        t.dkimChecked = true;
        t.dmarc = QStringLiteral("temperror");
        const QByteArray th = buildCheckRequestHead(t, 0);
        QVERIFY(!th.contains("SPF:"));
        QVERIFY(!th.contains("From:"));
        QVERIFY(th.contains("\r\nDKIM: {\"result\":\"na\"}\r\n"));
        QVERIFY(th.contains("\r\nDMARC: {\"result\":\"tempfail\"}\r\n"));
        // Not checked at all (sender authentication off): no result fields.
        const QByteArray none = buildCheckRequestHead(CheckRequest{}, 0);
        QVERIFY(!none.contains("SPF:") && !none.contains("DKIM:") && !none.contains("DMARC:"));
        // A field value is bounded at kMaxHeaderValue.
        CheckRequest big;
        big.helo = QString(5000, QLatin1Char('h'));
        QVERIFY(buildCheckRequestHead(big, 0).contains("Helo: " + QByteArray(kMaxHeaderValue, 'h') + "\r\n"));
    }
};

QTEST_GUILESS_MAIN(TstRspamdProtocol)
#include "tst_rspamd_protocol.moc"
