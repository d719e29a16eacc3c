// tst_header_identity.cpp — From:/Sender: extraction for the submission rule
// and the DKIM signer: the strict mailbox-list parser (comments, folding,
// quoted strings, groups, encoded words, obsolete forms refused), field
// scanning without a cap, and the verdicts of checkSubmitterIdentity.
#include "common/mail/header_identity.h"

#include <QtTest>

using namespace postern::mail;

namespace {
QString joined(const QList<IdentityMailbox>& list) {
    QStringList out;
    for (const IdentityMailbox& m : list) out << m.address();
    return out.join(QLatin1Char(','));
}
}  // namespace

class TstHeaderIdentity : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void mailboxList_data() {
        QTest::addColumn<QByteArray>("value");
        QTest::addColumn<bool>("groups");
        QTest::addColumn<QString>("expected");  // addresses, or "!" + part of the error
        QTest::newRow("plain") << QByteArray(" alice@a.example") << false << QStringLiteral("alice@a.example");
        QTest::newRow("display name") << QByteArray("Alice Example <alice@a.example>") << false
                                      << QStringLiteral("alice@a.example");
        QTest::newRow("quoted display with @ and <>")
            << QByteArray("\"ceo@b.example <ceo@b.example>\" <alice@a.example>") << false
            << QStringLiteral("alice@a.example");
        QTest::newRow("comment after") << QByteArray("alice@a.example (ceo@b.example)") << false
                                       << QStringLiteral("alice@a.example");
        QTest::newRow("comment before, nested")
            << QByteArray("(a (nested \\) one) x) <alice@a.example>") << false << QStringLiteral("alice@a.example");
        QTest::newRow("comments inside addr-spec")
            << QByteArray("alice(x)@(y)a.example") << false << QStringLiteral("alice@a.example");
        QTest::newRow("folded (unfolded value)") << QByteArray(" Alice\r\n <alice@a.example>").replace("\r\n", "")
                                                 << false << QStringLiteral("alice@a.example");
        QTest::newRow("tabs") << QByteArray("\tAlice\t<alice@a.example>\t") << false
                              << QStringLiteral("alice@a.example");
        QTest::newRow("encoded word display") << QByteArray("=?utf-8?q?ceo=40b=2Eexample?= <alice@a.example>") << false
                                              << QStringLiteral("alice@a.example");
        QTest::newRow("two mailboxes") << QByteArray("alice@a.example, Bob <bob@a.example>") << false
                                       << QStringLiteral("alice@a.example,bob@a.example");
        QTest::newRow("second is foreign")
            << QByteArray("alice@a.example,ceo@b.example") << false << QStringLiteral("alice@a.example,ceo@b.example");
        QTest::newRow("quoted local part that is a dot-atom")
            << QByteArray("\"alice\"@a.example") << false << QStringLiteral("alice@a.example");
        QTest::newRow("quoted local part with space")
            << QByteArray("\"al ice\"@a.example") << false << QStringLiteral("\"al ice\"@a.example");
        QTest::newRow("obs-local-part with spaces")
            << QByteArray("first . last@a.example") << false << QStringLiteral("first.last@a.example");
        QTest::newRow("obs-phrase with dot")
            << QByteArray("J. Smith <j@a.example>") << false << QStringLiteral("j@a.example");
        QTest::newRow("domain literal") << QByteArray("x@[192.0.2.1]") << false << QStringLiteral("x@[192.0.2.1]");
        QTest::newRow("utf-8") << QByteArray("J\xc3\xb6rg <j\xc3\xb6rg@a.example>") << false
                               << QString::fromUtf8("jörg@a.example");
        QTest::newRow("group") << QByteArray("Team: alice@a.example, bob@a.example;") << true
                               << QStringLiteral("alice@a.example,bob@a.example");
        QTest::newRow("empty group") << QByteArray("undisclosed-recipients:;") << true << QString();
        QTest::newRow("group then mailbox")
            << QByteArray("T: a@a.example;, ceo@b.example") << true << QStringLiteral("a@a.example,ceo@b.example");
        QTest::newRow("group refused in mailbox-list")
            << QByteArray("Team: alice@a.example;") << false << QStringLiteral("!group not allowed");
        QTest::newRow("nested group") << QByteArray("A: B: x@a.example;;") << true
                                      << QStringLiteral("!group not allowed");
        QTest::newRow("source route") << QByteArray("<@relay.example:ceo@b.example>") << false
                                      << QStringLiteral("!source routes");
        QTest::newRow("junk after angle")
            << QByteArray("<alice@a.example> ceo@b.example") << false << QStringLiteral("!expected ','");
        QTest::newRow("two angles") << QByteArray("Alice <alice@a.example> <ceo@b.example>") << false
                                    << QStringLiteral("!expected ','");
        QTest::newRow("no at") << QByteArray("alice") << false << QStringLiteral("!without '@'");
        QTest::newRow("empty") << QByteArray("  ") << false << QStringLiteral("!no address");
        QTest::newRow("empty member") << QByteArray("a@a.example, , b@a.example") << false
                                      << QStringLiteral("!unexpected ','");
        QTest::newRow("trailing comma") << QByteArray("a@a.example,") << false << QStringLiteral("!empty list member");
        QTest::newRow("unterminated comment")
            << QByteArray("a@a.example (x") << false << QStringLiteral("!unterminated comment");
        QTest::newRow("unbalanced close")
            << QByteArray("a@a.example )") << false << QStringLiteral("!unexpected character");
        QTest::newRow("unterminated quote")
            << QByteArray("\"ceo <a@a.example>") << false << QStringLiteral("!unterminated quoted");
        QTest::newRow("two at") << QByteArray("a@b@a.example") << false << QStringLiteral("!expected ','");
        QTest::newRow("trailing dot local") << QByteArray("a.@a.example") << false << QStringLiteral("!ends with '.'");
        QTest::newRow("double dot domain") << QByteArray("a@a..example") << false << QStringLiteral("!bad domain");
        QTest::newRow("trailing dot domain") << QByteArray("a@a.example.") << false << QStringLiteral("!bad domain");
        QTest::newRow("control char") << QByteArray("a@a.example\x01") << false
                                      << QStringLiteral("!unexpected character");
        QTest::newRow("bare CR") << QByteArray("a@a.example\rFrom: ceo@b.example") << false
                                 << QStringLiteral("!unexpected character");
        QTest::newRow("comments one too deep")
            << QByteArray(kMaxCommentDepth + 1, '(') + QByteArray(kMaxCommentDepth + 1, ')') + " a@a.example" << false
            << QStringLiteral("!nested deeper");
        QTest::newRow("comments at the limit")
            << QByteArray(kMaxCommentDepth, '(') + QByteArray(kMaxCommentDepth, ')') + " a@a.example" << false
            << QStringLiteral("a@a.example");
    }
    void mailboxList() {
        QFETCH(QByteArray, value);
        QFETCH(bool, groups);
        QFETCH(QString, expected);
        QString error;
        const auto got = parseMailboxList(value, groups, &error);
        if (expected.startsWith(QLatin1Char('!'))) {
            QVERIFY2(!got, qPrintable(got ? joined(*got) : QString()));
            QVERIFY2(error.contains(expected.mid(1)), qPrintable(error));
        } else {
            QVERIFY2(got, qPrintable(error));
            QCOMPARE(joined(*got), expected);
        }
    }

    void mailboxLimit() {
        QByteArray many;
        for (int i = 0; i < kMaxIdentityMailboxes; ++i) many += "u" + QByteArray::number(i) + "@a.example,";
        many.chop(1);
        QCOMPARE(parseMailboxList(many, false, nullptr)->size(), qsizetype(kMaxIdentityMailboxes));
        QString error;
        QVERIFY(!parseMailboxList(many + ",x@a.example", false, &error));
        QVERIFY(error.contains(QStringLiteral("more than")));
    }

    void displayNames() {
        const auto m = parseMailboxList("=?utf-8?q?J=C3=B6rg?= Example <j@a.example>", false, nullptr);
        QVERIFY(m);
        QCOMPARE(m->first().display, QString::fromUtf8("Jörg Example"));
        QCOMPARE(parseMailboxList("J. Smith <j@a.example>", false, nullptr)->first().display,
                 QStringLiteral("J. Smith"));
    }

    void fieldScan() {
        const QByteArray msg =
            "Received: from x\r\n\tby y\r\nFROM :  Alice\r\n <alice@a.example>\r\nSubject: From: ceo@b.example\r\n"
            "X-Sender: no\r\n\r\nFrom: body@b.example\r\n";
        const QList<QByteArray> from = headerFields(msg, {"From"});
        QCOMPARE(from.size(), 1);
        QCOMPARE(from.first(), QByteArray("  Alice <alice@a.example>"));
        QVERIFY(headerFields(msg, {"Sender"}).isEmpty());
        // No cap: a From: after 6000 other fields is still seen (parseHeader records at most kMaxFields).
        QByteArray big;
        for (int i = 0; i < 6000; ++i) big += "X-Pad: " + QByteArray::number(i) + "\r\n";
        big += "From: ceo@b.example\r\n\r\n";
        QCOMPARE(headerFields(big, {"From"}).size(), 1);
        // A first line that starts with blanks still counts as a field (as parseHeader reads it).
        QCOMPARE(headerFields(" From: ceo@b.example\r\n\r\n", {"From"}).size(), 1);
        // Without an empty line the whole message is header.
        QCOMPARE(headerFields("Subject: x\r\nFrom: a@a.example", {"From"}).size(), 1);
    }

    void submitterRule_data() {
        QTest::addColumn<QByteArray>("message");
        QTest::addColumn<QString>("refusal");  // "" = accepted, else a part of the text
        const QByteArray body = "\r\nHello.\r\n";
        QTest::newRow("own address") << "From: alice@a.example\r\n" + body << QString();
        QTest::newRow("display name and alias") << "From: \"Sales Team\" <sales@a.example>\r\n" + body << QString();
        QTest::newRow("plus detail") << "From: alice+news@a.example\r\n" + body << QString();
        QTest::newRow("case") << "From: ALICE@A.EXAMPLE\r\n" + body << QString();
        QTest::newRow("other hosted domain")
            << "From: ceo@b.example\r\n" + body
            << QStringLiteral("From: header address <ceo@b.example> not owned by user alice@a.example");
        QTest::newRow("second address foreign")
            << "From: alice@a.example, ceo@b.example\r\nSender: alice@a.example\r\n" + body
            << QStringLiteral("<ceo@b.example>");
        QTest::newRow("hidden in group") << "From: T: alice@a.example, ceo@b.example;\r\n" + body
                                         << QStringLiteral("<ceo@b.example>");
        QTest::newRow("folded") << "From: Alice\r\n <ceo@b.example>\r\n" + body << QStringLiteral("<ceo@b.example>");
        QTest::newRow("comment hides nothing")
            << "From: (alice@a.example) ceo@b.example\r\n" + body << QStringLiteral("<ceo@b.example>");
        QTest::newRow("foreign sender") << "From: alice@a.example\r\nSender: ceo@b.example\r\n" + body
                                        << QStringLiteral("Sender: header address <ceo@b.example>");
        QTest::newRow("two From fields") << "From: alice@a.example\r\nFrom: ceo@b.example\r\n" + body
                                         << QStringLiteral("more than one From:");
        QTest::newRow("From with blank before colon twice")
            << "From: alice@a.example\r\nfrom : ceo@b.example\r\n" + body << QStringLiteral("more than one From:");
        QTest::newRow("two Sender fields")
            << "From: alice@a.example\r\nSender: alice@a.example\r\nSender: alice@a.example\r\n" + body
            << QStringLiteral("more than one Sender:");
        QTest::newRow("sender with two addresses")
            << "From: alice@a.example\r\nSender: alice@a.example, sales@a.example\r\n" + body
            << QStringLiteral("Sender: header field cannot be parsed (more than one address)");
        QTest::newRow("unparsable") << "From: <alice@a.example> ceo@b.example\r\n" + body
                                    << QStringLiteral("cannot be parsed");
        QTest::newRow("empty group only") << "From: undisclosed:;\r\n" + body << QStringLiteral("names no address");
        QTest::newRow("no From at all") << "Subject: hi\r\n" + body << QString();
        QTest::newRow("From only in body") << QByteArray("Subject: hi\r\n\r\nFrom: ceo@b.example\r\n") << QString();
        QTest::newRow("quoted local part") << "From: \"alice\"@a.example\r\n" + body << QString();
        QTest::newRow("utf-8 name, alias") << "From: =?utf-8?b?U8OkbGVz?= <sales@a.example>\r\n" + body << QString();
    }
    void submitterRule() {
        QFETCH(QByteArray, message);
        QFETCH(QString, refusal);
        const QStringList mine{QStringLiteral("alice@a.example"), QStringLiteral("alice+news@a.example"),
                               QStringLiteral("sales@a.example")};
        const auto verdict = checkSubmitterIdentity(message, QStringLiteral("alice@a.example"),
                                                    [&](const QString& a) { return mine.contains(a.toLower()); });
        if (refusal.isEmpty()) {
            QVERIFY2(!verdict, qPrintable(verdict.value_or(QString())));
        } else {
            QVERIFY(verdict);
            QVERIFY2(verdict->contains(refusal), qPrintable(*verdict));
        }
    }
};

QTEST_GUILESS_MAIN(TstHeaderIdentity)
#include "tst_header_identity.moc"
