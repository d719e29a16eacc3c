// tst_imap_thread.cpp — RFC 5256 helpers of SORT and THREAD: base-subject
// extraction (2.1), i;ascii-casemap, Message-ID lists, ORDEREDSUBJECT and the
// REFERENCES algorithm with its awkward inputs (loops in References, missing
// and duplicate Message-IDs, dummy pruning, subject merging, date order).
#include "imapd/imap_thread.h"

#include <QElapsedTimer>
#include <QRandomGenerator>
#include <QtTest>

using namespace postern::imap;

namespace {

// One message of a test mailbox: its number is its position (1-based).
struct Spec {
    qint64 minute;        // sent date in minutes
    const char* id;       // Message-ID without <>, "" for none
    QByteArrayList refs;  // resolved references (References or In-Reply-To)
    const char* subject;
};

QList<ThreadMessage> mailbox(const QList<Spec>& specs) {
    QList<ThreadMessage> out;
    for (qsizetype i = 0; i < specs.size(); ++i) {
        ThreadMessage m;
        m.number = quint32(i + 1);
        m.sentDate = specs.at(i).minute * 60000;
        m.messageId = specs.at(i).id;
        m.references = specs.at(i).refs;
        m.subject = extractBaseSubject(specs.at(i).subject);
        out << m;
    }
    return out;
}

}  // namespace

Q_DECLARE_METATYPE(Spec)

class TstImapThread : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void baseSubject_data() {
        QTest::addColumn<QByteArray>("raw");
        QTest::addColumn<QByteArray>("base");
        QTest::addColumn<bool>("reply");
        QTest::newRow("plain") << QByteArray("hello") << QByteArray("hello") << false;
        QTest::newRow("re") << QByteArray("Re: hello") << QByteArray("hello") << true;
        QTest::newRow("re chain, any case") << QByteArray("RE: Re: re: hello") << QByteArray("hello") << true;
        QTest::newRow("no space") << QByteArray("Re:hello") << QByteArray("hello") << true;
        QTest::newRow("fwd") << QByteArray("Fwd: hello") << QByteArray("hello") << true;
        QTest::newRow("fw") << QByteArray("FW: hello") << QByteArray("hello") << true;
        QTest::newRow("refwd with blob") << QByteArray("Re [2]: hello") << QByteArray("hello") << true;
        QTest::newRow("blob then re") << QByteArray("[list] Re: hello") << QByteArray("hello") << true;
        QTest::newRow("re then blob") << QByteArray("Re: [list] hello") << QByteArray("hello") << true;
        QTest::newRow("two blobs then re") << QByteArray("[a][b] Re: x") << QByteArray("x") << true;
        QTest::newRow("blob only stripped when text remains")
            << QByteArray("[list] hello") << QByteArray("hello") << false;
        QTest::newRow("lone blob stays") << QByteArray("[only blob]") << QByteArray("[only blob]") << false;
        QTest::newRow("re + lone blob") << QByteArray("Re: [only blob]") << QByteArray("[only blob]") << true;
        QTest::newRow("fwd trailer") << QByteArray("hello (fwd)") << QByteArray("hello") << true;
        QTest::newRow("trailers repeat") << QByteArray("hello (FWD) (fwd)  ") << QByteArray("hello") << true;
        QTest::newRow("fwd header") << QByteArray("[Fwd: hello]") << QByteArray("hello") << true;
        QTest::newRow("fwd header around re") << QByteArray("[fwd: Re: hello]") << QByteArray("hello") << true;
        QTest::newRow("everything") << QByteArray("Fwd: [list] Re: x (fwd)") << QByteArray("x") << true;
        QTest::newRow("white space") << QByteArray("  hello \t  world  ") << QByteArray("hello world") << false;
        QTest::newRow("not a leader") << QByteArray("Regarding: x") << QByteArray("Regarding: x") << false;
        QTest::newRow("unclosed blob") << QByteArray("[list hello") << QByteArray("[list hello") << false;
        QTest::newRow("nothing left") << QByteArray("Re:") << QByteArray("") << true;
        QTest::newRow("empty") << QByteArray("") << QByteArray("") << false;
        QTest::newRow("encoded text") << QByteArray("Re: =?utf-8?q?caf=C3=A9?=") << QByteArray("caf\xc3\xa9") << true;
        QTest::newRow("encoded re") << QByteArray("=?utf-8?q?Re=3A_caf=C3=A9?=") << QByteArray("caf\xc3\xa9") << true;
        QTest::newRow("latin1 word") << QByteArray("=?iso-8859-1?q?Gr=FC=DFe?=")
                                     << QByteArray(
                                            "Gr\xc3\xbc\xc3\x9f"
                                            "e")
                                     << false;
    }
    void baseSubject() {
        QFETCH(QByteArray, raw);
        QFETCH(QByteArray, base);
        QFETCH(bool, reply);
        const BaseSubject b = extractBaseSubject(raw);
        QCOMPARE(b.text, base);
        QCOMPARE(b.replyOrForward, reply);
    }

    void asciiCasemapCollation() {
        QCOMPARE(compareAsciiCasemap("Hello", "hELLO"), 0);
        QVERIFY(compareAsciiCasemap("apple", "Banana") < 0);
        QVERIFY(compareAsciiCasemap("abc", "ab") > 0);
        QVERIFY(compareAsciiCasemap("", "a") < 0);
        // Only ASCII letters are folded; other octets compare as unsigned values.
        QVERIFY(compareAsciiCasemap("\xc3\xa9", "z") > 0);
        QVERIFY(compareAsciiCasemap("\xc3\xa9", "\xc3\x89") != 0);
        QCOMPARE(asciiCasemap("a-Z_\xc3\xa9"), QByteArray("A-Z_\xc3\xa9"));
    }

    // SORT maps its keys once (asciiCasemap) and compares octets (QByteArray::compare):
    // the same order as compareAsciiCasemap, checked over random strings of the octets
    // where it could differ (letters of both cases, the octets around them, high octets).
    void casemappedKeysCompareAsTheCollation() {
        const char alphabet[] = {'a', 'z', 'A', 'Z', '@', '[', '`', '{', '_', '\x7f', '\x80', '\xc3', '\xff', ' '};
        QRandomGenerator rng(5256);
        auto word = [&] {
            QByteArray w;
            for (int n = int(rng.bounded(6)); n > 0; --n) w += alphabet[rng.bounded(int(sizeof alphabet))];
            return w;
        };
        auto sign = [](int x) { return (x > 0) - (x < 0); };
        for (int i = 0; i < 100000; ++i) {
            const QByteArray a = word(), b = word();
            if (sign(compareAsciiCasemap(a, b)) != sign(asciiCasemap(a).compare(asciiCasemap(b))))
                QFAIL(qPrintable(
                    QStringLiteral("%1 vs %2").arg(QString::fromLatin1(a.toHex()), QString::fromLatin1(b.toHex()))));
        }
    }

    void messageIds_data() {
        QTest::addColumn<QByteArray>("raw");
        QTest::addColumn<QByteArrayList>("ids");
        QTest::newRow("one") << QByteArray("<a@b>") << QByteArrayList{"a@b"};
        QTest::newRow("list") << QByteArray("<a@b> <c@d>\t<e@f>") << QByteArrayList{"a@b", "c@d", "e@f"};
        QTest::newRow("folded inside") << QByteArray("<a@\r\n b>") << QByteArrayList{"a@b"};
        QTest::newRow("in-reply-to prose")
            << QByteArray("Your message of Mon, 1 Jan <x@y> (Bob)") << QByteArrayList{"x@y"};
        QTest::newRow("nested open") << QByteArray("<junk <a@b>") << QByteArrayList{"a@b"};
        QTest::newRow("empty id") << QByteArray("<> <a@b>") << QByteArrayList{"a@b"};
        QTest::newRow("no brackets") << QByteArray("a@b") << QByteArrayList{};
        QTest::newRow("unclosed") << QByteArray("<a@b") << QByteArrayList{};
        QTest::newRow("case kept") << QByteArray("<AbC@x>") << QByteArrayList{"AbC@x"};
    }
    void messageIds() {
        QFETCH(QByteArray, raw);
        QFETCH(QByteArrayList, ids);
        QCOMPARE(parseMessageIds(raw), ids);
    }

    void orderedSubject() {
        const auto msgs = mailbox({
            {1, "a", {}, "Hello"},
            {3, "b", {}, "Re: hello"},
            {2, "c", {}, "Other"},
            {4, "d", {}, "Fwd: HELLO"},
            {0, "e", {}, "Single"},
            {5, "f", {}, "Re: single"},
        });
        // Threads ordered by their first message's date; children by date.
        QCOMPARE(threadByOrderedSubject(msgs).format(), QByteArray("(5 6)(1 (2)(4))(3)"));
        QCOMPARE(threadByOrderedSubject({}).format(), QByteArray());
    }

    void orderedSubjectNumbersAreUids() {
        auto msgs = mailbox({{2, "a", {}, "x"}, {1, "b", {}, "x"}});
        msgs[0].number = 100;
        msgs[1].number = 205;
        QCOMPARE(threadByOrderedSubject(msgs).format(), QByteArray("(205 100)"));
    }

    void references_data() {
        QTest::addColumn<QList<Spec>>("specs");
        QTest::addColumn<QByteArray>("threads");
        QTest::newRow("chain") << QList<Spec>{{1, "a", {}, "s1"}, {2, "b", {"a"}, "s2"}, {3, "c", {"a", "b"}, "s3"}}
                               << QByteArray("(1 2 3)");
        QTest::newRow("siblings") << QList<Spec>{{1, "a", {}, "s1"}, {2, "b", {"a"}, "s2"}, {3, "c", {"a"}, "s3"}}
                                  << QByteArray("(1 (2)(3))");
        QTest::newRow("siblings by date, not number")
            << QList<Spec>{{1, "a", {}, "s1"}, {30, "b", {"a"}, "s2"}, {20, "c", {"a"}, "s3"}}
            << QByteArray("(1 (3)(2))");
        QTest::newRow("reply arrives before its parent")
            << QList<Spec>{{2, "b", {"a"}, "s2"}, {1, "a", {}, "s1"}} << QByteArray("(2 1)");
        QTest::newRow("missing parent of two: dummy root")
            << QList<Spec>{{1, "b", {"x"}, "s1"}, {2, "c", {"x"}, "s2"}} << QByteArray("((1)(2))");
        QTest::newRow("missing parent of one: promoted")
            << QList<Spec>{{1, "b", {"x"}, "s1"}, {2, "c", {}, "s2"}} << QByteArray("(1)(2)");
        QTest::newRow("missing middle: promoted")
            << QList<Spec>{{1, "a", {}, "s1"}, {2, "c", {"a", "b"}, "s2"}} << QByteArray("(1 2)");
        QTest::newRow("missing middles, siblings")
            << QList<Spec>{{1, "a", {}, "s1"}, {2, "c", {"a", "b"}, "s2"}, {3, "d", {"a", "x", "y"}, "s3"}}
            << QByteArray("(1 (2)(3))");
        QTest::newRow("dummy root sorts by its earliest child")
            << QList<Spec>{{10, "m", {}, "s0"}, {50, "b", {"x"}, "s1"}, {5, "c", {"x"}, "s2"}}
            << QByteArray("((3)(2))(1)");
        QTest::newRow("self reference") << QList<Spec>{{1, "a", {"a"}, "s1"}} << QByteArray("(1)");
        QTest::newRow("loop between two messages")
            << QList<Spec>{{1, "a", {"b"}, "s1"}, {2, "b", {"a"}, "s2"}} << QByteArray("(2 1)");
        // a -> b is kept, b -> a refused; the dummies a and b then hold 1 and 2.
        QTest::newRow("loop inside References")
            << QList<Spec>{{1, "c", {"a", "b", "a"}, "s1"}, {2, "d", {"b"}, "s2"}} << QByteArray("((1)(2))");
        QTest::newRow("three-message loop")
            << QList<Spec>{{1, "a", {"c"}, "s1"}, {2, "b", {"a"}, "s2"}, {3, "c", {"b"}, "s3"}}
            << QByteArray("(3 1 2)");
        QTest::newRow("duplicate Message-ID")
            << QList<Spec>{{1, "a", {}, "s1"}, {2, "a", {}, "s2"}, {3, "b", {"a"}, "s3"}} << QByteArray("(1 3)(2)");
        QTest::newRow("no Message-ID") << QList<Spec>{{1, "", {}, "s1"}, {2, "", {}, "s2"}, {3, "b", {""}, "s3"}}
                                       << QByteArray("(1)(2)(3)");
        QTest::newRow("later References do not move a parent")
            << QList<Spec>{{1, "a", {}, "s1"}, {2, "b", {}, "s2"}, {3, "c", {"a"}, "s3"}, {4, "d", {"b", "c"}, "s4"}}
            << QByteArray("(1 3 4)(2)");
        QTest::newRow("the message's own References win")
            << QList<Spec>{{1, "a", {}, "s1"}, {2, "d", {"a", "c"}, "s2"}, {3, "c", {"b"}, "s3"}, {4, "b", {}, "s4"}}
            << QByteArray("(1)(4 3 2)");
        QTest::newRow("subject: reply joins the original")
            << QList<Spec>{{1, "a", {}, "Hello"}, {2, "b", {}, "Re: hello"}} << QByteArray("(1 2)");
        QTest::newRow("subject: original found later")
            << QList<Spec>{{1, "a", {}, "Re: Hello"}, {2, "b", {}, "hello"}} << QByteArray("(2 1)");
        QTest::newRow("subject: two originals get a dummy")
            << QList<Spec>{{1, "a", {}, "Hello"}, {2, "b", {}, "Hello"}} << QByteArray("((1)(2))");
        QTest::newRow("subject: two replies get a dummy")
            << QList<Spec>{{1, "a", {}, "Re: x"}, {2, "b", {}, "Re: X"}} << QByteArray("((1)(2))");
        QTest::newRow("subject: joins a dummy thread")
            << QList<Spec>{{1, "b", {"x"}, "Topic"}, {2, "c", {"x"}, "Re: topic"}, {3, "d", {}, "topic"}}
            << QByteArray("((1)(2)(3))");
        QTest::newRow("subject: two dummies merge") << QList<Spec>{{1, "b", {"x"}, "T"},
                                                                   {2, "c", {"x"}, "Re: T"},
                                                                   {3, "d", {"y"}, "Re: t"},
                                                                   {4, "e", {"y"}, "Re: T"}}
                                                    << QByteArray("((1)(2)(3)(4))");
        QTest::newRow("subject: empty subjects stay apart")
            << QList<Spec>{{1, "a", {}, ""}, {2, "b", {}, "Re:"}} << QByteArray("(1)(2)");
        QTest::newRow("subject: children are not merged")
            << QList<Spec>{{1, "a", {}, "s"}, {2, "b", {"a"}, "other"}, {3, "c", {}, "Re: other"}}
            << QByteArray("(1 2)(3)");
        // RFC 5256 3 (1B): message 3's own References make 2 its parent, but 3 is already
        // 2's ancestor (through 2's References); the link 3 had as a guess (under 1) is
        // broken all the same and 3 becomes a root; roots go by date (3 is older than 1).
        QTest::newRow("1B breaks the guessed parent even when the new link would loop")
            << QList<Spec>{{17 * 60 + 6, "a", {}, ""},
                           {15 * 60 + 6, "b", {"a", "c"}, ""},
                           {16 * 60 + 6, "c", {"b"}, ""}}
            << QByteArray("(3 2)(1)");
        QTest::newRow("... and without the first message")
            << QList<Spec>{{15 * 60 + 6, "b", {"a", "c"}, ""}, {16 * 60 + 6, "c", {"b"}, ""}} << QByteArray("(2 1)");
        QTest::newRow("1B with no references: a guessed parent is dropped")
            << QList<Spec>{{1, "x", {"a", "b"}, "s1"}, {2, "b", {}, "s2"}, {3, "a", {}, "s3"}}
            << QByteArray("(2 1)(3)");
        QTest::newRow("date ties go by number")
            << QList<Spec>{{5, "a", {}, "s1"}, {5, "b", {}, "s2"}, {1, "c", {"a"}, "s3"}, {1, "d", {"a"}, "s4"}}
            << QByteArray("(1 (3)(4))(2)");
    }
    void references() {
        QFETCH(QList<Spec>, specs);
        QFETCH(QByteArray, threads);
        QCOMPARE(threadByReferences(mailbox(specs)).format(), threads);
    }

    void referencesDeepChainNoRecursion() {
        // A 20000-message reply chain: threading and formatting use no recursion.
        QList<ThreadMessage> msgs;
        QByteArray expected = "(";
        for (int i = 0; i < 20000; ++i) {
            ThreadMessage m;
            m.number = quint32(i + 1);
            m.sentDate = i;
            m.messageId = "m" + QByteArray::number(i);
            if (i > 0) m.references << "m" + QByteArray::number(i - 1);
            m.subject = extractBaseSubject("Re: deep");
            msgs << m;
            expected += (i ? " " : "") + QByteArray::number(i + 1);
        }
        QCOMPARE(threadByReferences(msgs).format(), expected + ")");
    }

    void referencesLoopChecksAreBounded() {
        // Message 1 references a chain of 200,000 ids; message 2 names the deepest of them
        // and then the top, 200,000 times: every pair asks "is the top an ancestor of the
        // deepest?", a walk over the whole chain (the old code took minutes here). The
        // checks share a budget: the answer is a valid thread list, at once.
        constexpr int kDepth = 200000;
        ThreadMessage a;
        a.number = 1;
        a.messageId = "top-message";
        for (int i = 0; i < kDepth; ++i) a.references << "c" + QByteArray::number(i);
        ThreadMessage b;
        b.number = 2;
        b.messageId = "other";
        for (int i = 0; i < kDepth; ++i) b.references << "c" + QByteArray::number(kDepth - 1) << "c0";
        QElapsedTimer timer;
        timer.start();
        const QByteArray threads = threadByReferences({a, b}).format();
        QCOMPARE(threads, QByteArray("((1)(2))"));
        // Generous (the bounded checks take well under a second even under sanitizers);
        // without the budget this takes minutes: the only symptom of this defect is time.
        QVERIFY2(timer.elapsed() < 30000, qPrintable(QString::number(timer.elapsed())));
    }
};

QTEST_GUILESS_MAIN(TstImapThread)
#include "tst_imap_thread.moc"
