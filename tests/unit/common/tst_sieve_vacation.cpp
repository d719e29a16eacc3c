// tst_sieve_vacation.cpp — the vacation action carried out (common/sieve/sieve_vacation.h):
// the RFC 3834 / RFC 5230 rules as a table, the reply message, the handle, and the
// once-per-period record at its boundaries with an injected clock (period - 1 s: no
// reply; period: reply), :seconds 0, the entry limit, and a damaged record file.
#include "common/sieve/sieve_vacation.h"

#include "common/mail/message.h"

#include "core/atomic_file.h"

#include <QTemporaryDir>
#include <QTest>

using namespace postern;
using namespace postern::sieve;

namespace {
Action vacation(const QString& reason = QStringLiteral("I am away."), qint64 period = 7 * 86400) {
    Action a;
    a.type = Action::Type::Vacation;
    a.reason = reason;
    a.periodSeconds = period;
    return a;
}

VacationFacts facts(const QByteArray& extraHeader, const QString& from = QStringLiteral("sender@remote.test"),
                    const QString& to = QStringLiteral("bob@example.test")) {
    VacationFacts f;
    f.header =
        "From: Sender <sender@remote.test>\r\nTo: Bob <bob@example.test>\r\nSubject: Lunch?\r\n"
        "Message-ID: <m1@remote.test>\r\n" +
        extraHeader;
    f.envelopeFrom = from;
    f.envelopeTo = to;
    f.mailbox = QStringLiteral("bob@example.test");
    return f;
}
}  // namespace

class TestSieveVacation : public QObject {
    Q_OBJECT
private slots:
    void rules_data();
    void rules();
    void reply();
    void replyMime();
    void handle();
    void period_data();
    void period();
    void entryLimit();
};

void TestSieveVacation::rules_data() {
    QTest::addColumn<QByteArray>("extra");       // header fields added (To: is bob unless replaced below)
    QTest::addColumn<QString>("sender");         // envelope sender
    QTest::addColumn<QString>("rcpt");           // envelope recipient
    QTest::addColumn<QStringList>("addresses");  // :addresses
    QTest::addColumn<QString>("why");            // empty: a reply is due
    const QString s = QStringLiteral("sender@remote.test"), bob = QStringLiteral("bob@example.test");
    QTest::newRow("ordinary mail") << QByteArray() << s << bob << QStringList() << "";
    QTest::newRow("null sender") << QByteArray() << "" << bob << QStringList() << "null sender";
    QTest::newRow("Auto-Submitted: no") << QByteArray("Auto-Submitted: no\r\n") << s << bob << QStringList() << "";
    QTest::newRow("Auto-Submitted: auto-replied") << QByteArray("Auto-Submitted: auto-replied\r\n") << s << bob
                                                  << QStringList() << "Auto-Submitted: auto-replied";
    QTest::newRow("Auto-Submitted: auto-generated; comment")
        << QByteArray("Auto-Submitted: Auto-Generated (x)\r\n") << s << bob << QStringList()
        << "Auto-Submitted: Auto-Generated (x)";
    QTest::newRow("List-Id") << QByteArray("List-Id: <list.remote.test>\r\n") << s << bob << QStringList()
                             << "mailing list (list-id)";
    QTest::newRow("List-Unsubscribe") << QByteArray("List-Unsubscribe: <mailto:u@remote.test>\r\n") << s << bob
                                      << QStringList() << "mailing list (list-unsubscribe)";
    QTest::newRow("List-Post") << QByteArray("list-post: <mailto:l@remote.test>\r\n") << s << bob << QStringList()
                               << "mailing list (list-post)";
    QTest::newRow("Precedence: bulk") << QByteArray("Precedence: bulk\r\n") << s << bob << QStringList()
                                      << "Precedence: bulk";
    QTest::newRow("Precedence: List") << QByteArray("Precedence: List\r\n") << s << bob << QStringList()
                                      << "Precedence: list";
    QTest::newRow("Precedence: junk") << QByteArray("Precedence: junk\r\n") << s << bob << QStringList()
                                      << "Precedence: junk";
    QTest::newRow("Precedence: first-class")
        << QByteArray("Precedence: first-class\r\n") << s << bob << QStringList() << "";
    QTest::newRow("MAILER-DAEMON") << QByteArray() << "MAILER-DAEMON@remote.test" << bob << QStringList()
                                   << "sender is a program (mailer-daemon)";
    QTest::newRow("owner-") << QByteArray() << "owner-list@remote.test" << bob << QStringList()
                            << "sender is a program (owner-list)";
    QTest::newRow("-request") << QByteArray() << "list-request@remote.test" << bob << QStringList()
                              << "sender is a program (list-request)";
    QTest::newRow("from ourselves") << QByteArray() << bob << bob << QStringList() << "sender is the user";
    QTest::newRow("from ourselves with detail")
        << QByteArray() << "Bob+x@example.test" << bob << QStringList() << "sender is the user";
    QTest::newRow("from one of :addresses")
        << QByteArray() << "bob@old.test" << bob << QStringList{"bob@old.test"} << "sender is the user";
    // Not addressed to us in the header (Bcc'd, or a list that hides itself).
    QTest::newRow("not in To/Cc") << QByteArray("X: y\r\n") << s << "carol@example.test" << QStringList()
                                  << "the user's address is not in To/Cc";
    QTest::newRow("in Cc via :addresses") << QByteArray("Cc: Old <bob@old.test>\r\n") << s << "carol@example.test"
                                          << QStringList{"Bob <bob@old.test>"} << "";
    QTest::newRow("To with detail") << QByteArray() << s << "bob+news@example.test" << QStringList() << "";
    QTest::newRow("Resent-To") << QByteArray("Resent-To: carol@example.test\r\n") << s << "carol@example.test"
                               << QStringList() << "";
}

void TestSieveVacation::rules() {
    QFETCH(QByteArray, extra);
    QFETCH(QString, sender);
    QFETCH(QString, rcpt);
    QFETCH(QStringList, addresses);
    QFETCH(QString, why);
    VacationFacts f = facts(extra, sender, rcpt);
    if (rcpt == u"carol@example.test") f.mailbox = rcpt;
    Action a = vacation();
    a.addresses = addresses;
    const auto got = whyNoReply(a, f);
    QCOMPARE(got.value_or(QString()), why);
}

void TestSieveVacation::reply() {
    Action a = vacation(QStringLiteral("Back on Monday. – Bob"));
    VacationFacts f = facts("References: <r0@remote.test>\r\n");
    const QDateTime now = QDateTime::fromSecsSinceEpoch(1700000000, Qt::UTC);
    const VacationReply r = buildReply(a, f, QStringLiteral("bob@example.test"), now);
    QCOMPARE(r.to, QStringLiteral("sender@remote.test"));
    QCOMPARE(r.periodSeconds, 7 * 86400);
    qsizetype bodyAt = 0;
    const mail::Header h = mail::parseHeader(r.message, &bodyAt);
    QCOMPARE(h.value("from"), QByteArray("<bob@example.test>"));
    QCOMPARE(h.value("to"), QByteArray("<sender@remote.test>"));
    QCOMPARE(h.value("subject"), QByteArray("Auto: Lunch?"));
    QCOMPARE(h.value("auto-submitted"), QByteArray("auto-replied"));
    QCOMPARE(h.value("in-reply-to"), QByteArray("<m1@remote.test>"));
    QCOMPARE(h.value("references"), QByteArray("<r0@remote.test> <m1@remote.test>"));
    QVERIFY(h.value("message-id").endsWith("@example.test>"));
    QCOMPARE(mail::parseDate(h.value("date")), now);
    QCOMPARE(h.value("content-transfer-encoding"), QByteArray("base64"));  // not ASCII
    QCOMPARE(QString::fromUtf8(QByteArray::fromBase64(r.message.mid(bodyAt))),
             QStringLiteral("Back on Monday. – Bob\r\n"));
    QVERIFY(!r.message.contains("\n\n"));
    // :subject (non-ASCII: RFC 2047) and :from with a name.
    a.subject = QStringLiteral("Abwesend bis Montag – Bob");
    a.from = QStringLiteral("Bob Builder <bob@example.test>");
    const mail::Header h2 = mail::parseHeader(buildReply(a, f, QStringLiteral("bob@example.test"), now).message);
    QCOMPARE(mail::decodeHeaderText(h2.value("subject")), a.subject);
    QCOMPARE(h2.value("from"), QByteArray("Bob Builder <bob@example.test>"));
    // kMaxSubjectChars: a subject of that length is kept, a longer one cut.
    a.subject = QString(kMaxSubjectChars, u'a');
    QCOMPARE(
        mail::parseHeader(buildReply(a, f, QStringLiteral("bob@example.test"), now).message).value("subject").size(),
        kMaxSubjectChars);
    a.subject = QString(kMaxSubjectChars + 1, u'a');
    QCOMPARE(
        mail::parseHeader(buildReply(a, f, QStringLiteral("bob@example.test"), now).message).value("subject").size(),
        kMaxSubjectChars);
    // A subject with line breaks cannot add header fields.
    a.subject = QStringLiteral("x\r\nBcc: victim@remote.test");
    const QByteArray m3 = buildReply(a, f, QStringLiteral("bob@example.test"), now).message;
    QVERIFY(mail::parseHeader(m3).values("bcc").isEmpty());
}

void TestSieveVacation::replyMime() {
    Action a = vacation(QStringLiteral("Content-Type: text/html; charset=us-ascii\n\n<p>away</p>\n"));
    a.mime = true;
    const VacationReply r = buildReply(a, facts({}), QStringLiteral("bob@example.test"));
    qsizetype bodyAt = 0;
    const mail::Header h = mail::parseHeader(r.message, &bodyAt);
    QCOMPARE(h.value("content-type"), QByteArray("text/html; charset=us-ascii"));
    QCOMPARE(h.value("mime-version"), QByteArray("1.0"));
    QCOMPARE(r.message.mid(bodyAt), QByteArray("<p>away</p>\r\n"));
    QVERIFY(!r.eightBit);
    // Only Content-* fields of the entity are taken: no Bcc, From or second Subject from the script.
    a.reason = QStringLiteral(
        "Bcc: x@remote.test\nFrom: boss@example.test\nSubject: two\nContent-Type: text/plain;\n charset=utf-8\n\nhi\n");
    const QByteArray m2 = buildReply(a, facts({}), QStringLiteral("bob@example.test")).message;
    const mail::Header h2 = mail::parseHeader(m2);
    QVERIFY(h2.values("bcc").isEmpty());
    QCOMPARE(h2.values("from"), QList<QByteArray>{"<bob@example.test>"});
    QCOMPARE(h2.values("subject").size(), 1);
    QCOMPARE(h2.value("content-type"), QByteArray("text/plain; charset=utf-8"));
    QVERIFY(m2.endsWith("\r\n\r\nhi\r\n"));
    // An entity without a header is a body (MIME defaults: text/plain).
    a.reason = QStringLiteral("just text\n");
    QVERIFY(buildReply(a, facts({}), QStringLiteral("bob@example.test"))
                .message.endsWith("MIME-Version: 1.0\r\n\r\njust text\r\n"));
}

void TestSieveVacation::handle() {
    Action a = vacation();
    const QString h1 = handleOf(a);
    a.subject = QStringLiteral("other");
    QVERIFY(handleOf(a) != h1);  // RFC 5230 4.2: a changed vacation is a new one
    a.handle = QStringLiteral("mine");
    QCOMPARE(handleOf(a), QStringLiteral("mine"));
}

void TestSieveVacation::period_data() {
    QTest::addColumn<qint64>("period");
    QTest::addColumn<qint64>("after");  // seconds after the first reply
    QTest::addColumn<bool>("again");
    QTest::newRow("1 day, 1 s later") << qint64(86400) << qint64(1) << false;
    QTest::newRow("1 day, period - 1 s") << qint64(86400) << qint64(86399) << false;
    QTest::newRow("1 day, at the period") << qint64(86400) << qint64(86400) << true;
    QTest::newRow(":seconds 60, 59 s") << qint64(60) << qint64(59) << false;
    QTest::newRow(":seconds 60, 60 s") << qint64(60) << qint64(60) << true;
    QTest::newRow(":seconds 0 always replies") << qint64(0) << qint64(0) << true;
    QTest::newRow("clock went back") << qint64(86400) << qint64(-10) << true;
    // kMaxVacationSeconds: a longer period is cut to it.
    QTest::newRow("400 days cut: limit - 1 s") << qint64(400) * 86400 << kMaxVacationSeconds - 1 << false;
    QTest::newRow("400 days cut: at the limit") << qint64(400) * 86400 << kMaxVacationSeconds << true;
}

void TestSieveVacation::period() {
    QFETCH(qint64, period);
    QFETCH(qint64, after);
    QFETCH(bool, again);
    QTemporaryDir dir;
    const qint64 t0 = 1700000000;
    QCOMPARE(claimReply(dir.path(), QStringLiteral("a@remote.test"), QStringLiteral("h"), period, t0).value(), true);
    QCOMPARE(claimReply(dir.path(), QStringLiteral("A@Remote.test"), QStringLiteral("h"), period, t0 + after).value(),
             again);
    // Per sender and per handle.
    QCOMPARE(claimReply(dir.path(), QStringLiteral("b@remote.test"), QStringLiteral("h"), period, t0 + after).value(),
             true);
    QCOMPARE(
        claimReply(dir.path(), QStringLiteral("a@remote.test"), QStringLiteral("other"), period, t0 + after).value(),
        true);
    // The record is a file of the user's (0600) without addresses in clear.
    auto text = readFile(dir.path() + QStringLiteral("/.vacation"));
    QVERIFY(text.ok());
    QVERIFY(!text->contains("remote.test"));
    QCOMPARE(QFile(dir.path() + QStringLiteral("/.vacation")).permissions() & (QFile::ReadGroup | QFile::ReadOther),
             QFile::Permissions());
}

void TestSieveVacation::entryLimit() {
    QTemporaryDir dir;
    const qint64 t0 = 1700000000;
    // A file already at the limit (written directly: faster than 10000 claims).
    QByteArray full;
    for (int i = 0; i < kMaxVacationEntries; ++i)
        full += QByteArray::number(t0 + i) + ' ' + QByteArray::number(i).rightJustified(64, '0') + '\n';
    QVERIFY(writeFileAtomic(dir.path() + QStringLiteral("/.vacation"), full, 0600).ok());
    QCOMPARE(
        claimReply(dir.path(), QStringLiteral("new@remote.test"), QStringLiteral("h"), 86400, t0 + kMaxVacationEntries)
            .value(),
        true);
    auto text = readFile(dir.path() + QStringLiteral("/.vacation"));
    QCOMPARE(text->count('\n'), qsizetype(kMaxVacationEntries));  // the oldest was dropped
    QVERIFY(!text->startsWith(QByteArray::number(t0) + ' '));
    // The newest sender is still known.
    QCOMPARE(claimReply(dir.path(), QStringLiteral("new@remote.test"), QStringLiteral("h"), 86400,
                        t0 + kMaxVacationEntries + 1)
                 .value(),
             false);
    // A damaged file: its bad lines are ignored, not fatal.
    QVERIFY(writeFileAtomic(dir.path() + QStringLiteral("/.vacation"), "garbage\n\n12 short\n", 0600).ok());
    QCOMPARE(claimReply(dir.path(), QStringLiteral("x@remote.test"), QStringLiteral("h"), 86400, t0).value(), true);
}

QTEST_GUILESS_MAIN(TestSieveVacation)
#include "tst_sieve_vacation.moc"
