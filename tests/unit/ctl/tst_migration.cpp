// tst_migration.cpp — the socket-free parts of backup and migration:
// the client-side IMAP response parser (fed whole, byte by byte and in random
// splits; every limit at its boundary), the mbox reader (same splits; quoting,
// separators, metadata flags) and writer, the backup manifest and message check,
// the IMAP folder plan (special-use, Gmail) and INTERNALDATE.
#include "ctl/backup_snapshot.h"
#include "ctl/imap_client_parser.h"
#include "ctl/imap_import.h"
#include "ctl/mbox.h"

#include <QRandomGenerator>
#include <QTest>

using namespace postern;
using namespace postern::ctl;

namespace {

QList<ImapResponse> parseAll(const QByteArray& wire, int mode, ClientLimits limits, QString* error) {
    ImapResponseParser p(limits);
    QList<ImapResponse> out;
    auto drain = [&]() -> bool {
        for (;;) {
            ImapResponse r;
            const auto res = p.next(&r);
            if (res == ImapResponseParser::Result::Response)
                out << r;
            else if (res == ImapResponseParser::Result::Error) {
                *error = p.error();
                return false;
            } else {
                return true;
            }
        }
    };
    QRandomGenerator rng(42);
    qsizetype pos = 0;
    while (pos < wire.size()) {
        const qsizetype n = mode == 0   ? wire.size()
                            : mode == 1 ? 1
                                        : 1 + rng.bounded(int(std::min<qsizetype>(wire.size() - pos, 17)));
        p.feed(QByteArrayView(wire).sliced(pos, std::min(n, wire.size() - pos)));
        pos += n;
        if (!drain()) return out;
    }
    return out;
}

QString dump(const QList<ImapValue>& vs) {
    QStringList parts;
    for (const ImapValue& v : vs) {
        switch (v.kind) {
            case ImapValue::Kind::Atom:
                parts << QString::fromUtf8(v.text);
                break;
            case ImapValue::Kind::Nil:
                parts << QStringLiteral("NIL");
                break;
            case ImapValue::Kind::String:
                parts << QStringLiteral("\"%1\"").arg(QString::fromUtf8(v.text));
                break;
            case ImapValue::Kind::List:
                parts << QStringLiteral("(%1)").arg(dump(v.list));
                break;
        }
    }
    return parts.join(QLatin1Char(' '));
}

QString dumpResponse(const ImapResponse& r) {
    switch (r.type) {
        case ImapResponse::Type::Continuation:
            return QStringLiteral("+ ") + QString::fromUtf8(r.text);
        case ImapResponse::Type::Tagged:
        case ImapResponse::Type::Untagged: {
            QString s = r.type == ImapResponse::Type::Tagged ? QString::fromUtf8(r.tag) : QStringLiteral("*");
            if (!r.status.isEmpty())
                return s + u' ' + QString::fromUtf8(r.status) + QStringLiteral(" [") + QString::fromUtf8(r.code) +
                       QStringLiteral("] ") + QString::fromUtf8(r.text);
            return s + u' ' + dump(r.values);
        }
    }
    return {};
}

QList<MboxMessage> readMbox(const QByteArray& data, int mode, MboxFormat f = MboxFormat::Mboxrd,
                            qsizetype maxMessage = MboxReader::kMaxMessage) {
    MboxReader r(f, maxMessage);
    QList<MboxMessage> out;
    QRandomGenerator rng(7);
    qsizetype pos = 0;
    while (pos < data.size()) {
        const qsizetype n = mode == 0 ? data.size() : mode == 1 ? 1 : 1 + rng.bounded(13);
        r.feed(QByteArrayView(data).sliced(pos, std::min(n, data.size() - pos)));
        pos += n;
        while (r.hasMessage()) out << r.take();
    }
    r.finish();
    while (r.hasMessage()) out << r.take();
    return out;
}

}  // namespace

class TestMigration : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void responses_data() {
        QTest::addColumn<QByteArray>("wire");
        QTest::addColumn<QStringList>("expected");
        QTest::newRow("greeting") << QByteArray("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Dovecot (it's \"ready\"\r\n")
                                  << QStringList{QStringLiteral(
                                         "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Dovecot (it's \"ready\"")};
        QTest::newRow("tagged") << QByteArray("a1 NO [THROTTLED] slow down\r\n")
                                << QStringList{QStringLiteral("a1 NO [THROTTLED] slow down")};
        QTest::newRow("continuation") << QByteArray("+ \r\n+ go ahead\r\n")
                                      << QStringList{QStringLiteral("+ "), QStringLiteral("+ go ahead")};
        QTest::newRow("list")
            << QByteArray(
                   "* LIST (\\HasNoChildren \\Sent) \"/\" \"[Gmail]/Sent Mail\"\r\n* LIST (\\Noselect) NIL INBOX\r\n")
            << QStringList{QStringLiteral("* LIST (\\HasNoChildren \\Sent) \"/\" \"[Gmail]/Sent Mail\""),
                           QStringLiteral("* LIST (\\Noselect) NIL INBOX")};
        QTest::newRow("fetch with literal")
            << QByteArray(
                   "* 1 FETCH (UID 7 FLAGS (\\Seen $Label1) INTERNALDATE \"01-Jan-2018 10:00:00 +0000\" BODY[] "
                   "{13}\r\nA: b\r\n\r\n) {x})\r\n")
            << QStringList{QStringLiteral("* 1 FETCH (UID 7 FLAGS (\\Seen $Label1) INTERNALDATE \"01-Jan-2018 10:00:00 "
                                          "+0000\" BODY[] \"A: b\r\n\r\n) {x}\")")};
        QTest::newRow("empty literal and section")
            << QByteArray("* 2 FETCH (BODY[HEADER.FIELDS (FROM TO)]<0> {0}\r\n UID 3)\r\n")
            << QStringList{QStringLiteral("* 2 FETCH (BODY[HEADER.FIELDS (FROM TO)]<0> \"\" UID 3)")};
        QTest::newRow("quoted escapes") << QByteArray("* STATUS \"a \\\"b\\\" \\\\c\" (MESSAGES 3)\r\n")
                                        << QStringList{QStringLiteral("* STATUS \"a \"b\" \\c\" (MESSAGES 3)")};
        QTest::newRow("search") << QByteArray("* SEARCH 1 2 4294967295\r\n* SEARCH\r\n")
                                << QStringList{QStringLiteral("* SEARCH 1 2 4294967295"), QStringLiteral("* SEARCH")};
        QTest::newRow("lf only") << QByteArray("* 3 EXISTS\n") << QStringList{QStringLiteral("* 3 EXISTS")};
    }
    void responses() {
        QFETCH(QByteArray, wire);
        QFETCH(QStringList, expected);
        for (int mode : {0, 1, 2}) {
            QString error;
            const QList<ImapResponse> got = parseAll(wire, mode, {}, &error);
            QVERIFY2(error.isEmpty(), qPrintable(error));
            QStringList s;
            for (const ImapResponse& r : got) s << dumpResponse(r);
            QCOMPARE(s, expected);
        }
    }

    void malformed_data() {
        QTest::addColumn<QByteArray>("wire");
        QTest::addColumn<QString>("error");
        QTest::newRow("unbalanced )") << QByteArray("* 1 FETCH (UID 1))\r\n") << QStringLiteral("')' without '('");
        QTest::newRow("open list") << QByteArray("* 1 FETCH (UID 1\r\n") << QStringLiteral("a list without ')'");
        QTest::newRow("brace not literal")
            << QByteArray("* 1 FETCH (X {3} Y)\r\n") << QStringLiteral("'{' that is not a literal");
        QTest::newRow("bad escape") << QByteArray("* X \"a\\b\"\r\n")
                                    << QStringLiteral("a bad escape in a quoted string");
        QTest::newRow("no tag") << QByteArray("\r\n") << QStringLiteral("a response without a tag");
        QTest::newRow("tagged data") << QByteArray("a1 FETCH (UID 1)\r\n")
                                     << QStringLiteral("a tagged response that is not OK, NO or BAD");
        QTest::newRow("unterminated quote")
            << QByteArray("* X \"abc\r\n") << QStringLiteral("a quoted string without its end");
    }
    void malformed() {
        QFETCH(QByteArray, wire);
        QFETCH(QString, error);
        for (int mode : {0, 1, 2}) {
            QString got;
            parseAll(wire, mode, {}, &got);
            QCOMPARE(got, error);
        }
    }

    void limits() {
        ClientLimits l;
        l.maxLine = 20;
        l.maxLiteral = 10;
        l.maxResponse = 40;
        l.maxDepth = 2;
        l.maxValues = 5;
        QString e;
        // Line: 20 bytes before the LF pass, 21 do not.
        QCOMPARE(parseAll("* 123456789012345678\n", 1, l, &e).size(), 1);
        QVERIFY(e.isEmpty());
        parseAll("* 1234567890123456789\n", 1, l, &e);
        QCOMPARE(e, QStringLiteral("a response line is longer than 20 bytes"));
        e.clear();
        parseAll("* 12345678901234567890123", 0, l, &e);  // no LF yet, already too long
        QCOMPARE(e, QStringLiteral("a response line is longer than 20 bytes"));
        // Literal: 10 passes, 11 does not, a huge one is refused before any data.
        e.clear();
        QCOMPARE(parseAll("* 1 X {10}\r\n0123456789\r\n", 1, l, &e).size(), 1);
        QVERIFY(e.isEmpty());
        parseAll("* 1 X {11}\r\n", 1, l, &e);
        QCOMPARE(e, QStringLiteral("a literal is larger than 10 bytes"));
        e.clear();
        parseAll("* X {99999999999}\r\n", 0, l, &e);
        QCOMPARE(e, QStringLiteral("a literal is larger than 10 bytes"));
        // Response: lines and literals together.
        e.clear();
        parseAll("* 1 X {10}\r\n0123456789 {10}\r\n0123456789\r\n", 1, l, &e);
        QCOMPARE(e, QStringLiteral("a response is larger than 40 bytes"));
        // Depth: 2 levels pass, 3 do not.
        e.clear();
        QCOMPARE(parseAll("* X ((a))\r\n", 1, l, &e).size(), 1);
        QVERIFY(e.isEmpty());
        parseAll("* X (((a)))\r\n", 1, l, &e);
        QCOMPARE(e, QStringLiteral("lists nested deeper than 2"));
        // Values: 5 pass, 6 do not.
        e.clear();
        QCOMPARE(parseAll("* A B C D E\r\n", 1, l, &e).size(), 1);
        QVERIFY(e.isEmpty());
        parseAll("* A B C D E F\r\n", 1, l, &e);
        QCOMPARE(e, QStringLiteral("more than 5 values in one response"));
    }

    void numbers() {
        ImapValue v;
        v.text = "18446744073709551615";
        bool ok = false;
        QCOMPARE(v.number(&ok), quint64(18446744073709551615ULL));
        QVERIFY(ok);
        v.text = "18446744073709551616";
        v.number(&ok);
        QVERIFY(!ok);
        v.text = "12a";
        QVERIFY(!v.isNumber());
    }

    void mbox_data() {
        QTest::addColumn<QByteArray>("data");
        QTest::addColumn<int>("format");
        QTest::addColumn<QList<QByteArray>>("bodies");
        const QByteArray two =
            "From a@x Mon Jan  1 10:00:00 2018\nA: 1\n\n>From q\n>>From qq\nFrom mid-paragraph\n\nFrom no date "
            "here\n\n\n"
            "From b@x Tue Jan  2 10:00:00 2018\nA: 2\n\nend";
        QTest::newRow("mboxrd")
            << two << int(MboxFormat::Mboxrd)
            << QList<QByteArray>{
                   "A: 1\r\n\r\nFrom q\r\n>From qq\r\nFrom mid-paragraph\r\n\r\nFrom no date here\r\n\r\n",
                   "A: 2\r\n\r\nend\r\n"};
        QTest::newRow("mboxo")
            << two << int(MboxFormat::Mboxo)
            << QList<QByteArray>{
                   "A: 1\r\n\r\nFrom q\r\n>>From qq\r\nFrom mid-paragraph\r\n\r\nFrom no date here\r\n\r\n",
                   "A: 2\r\n\r\nend\r\n"};
        QByteArray crlf = two;
        crlf.replace("\n", "\r\n");
        QTest::newRow("crlf")
            << crlf << int(MboxFormat::Mboxrd)
            << QList<QByteArray>{
                   "A: 1\r\n\r\nFrom q\r\n>From qq\r\nFrom mid-paragraph\r\n\r\nFrom no date here\r\n\r\n",
                   "A: 2\r\n\r\nend\r\n"};
        QTest::newRow("8bit") << QByteArray("From x Sat Dec 05 10:00:00 +0000 2020\nS: \xff\xfe\n\n\x80\n")
                              << int(MboxFormat::Mboxrd)
                              << QList<QByteArray>{QByteArray("S: \xff\xfe\r\n\r\n\x80\r\n")};
        QTest::newRow("garbage first") << QByteArray("junk\n\nFrom x Mon Jan  1 10:00:00 2018\nA: 1\n")
                                       << int(MboxFormat::Mboxrd) << QList<QByteArray>{"A: 1\r\n"};
    }
    void mbox() {
        QFETCH(QByteArray, data);
        QFETCH(int, format);
        QFETCH(QList<QByteArray>, bodies);
        for (int mode : {0, 1, 2}) {
            const QList<MboxMessage> msgs = readMbox(data, mode, MboxFormat(format));
            QList<QByteArray> got;
            for (const MboxMessage& m : msgs) got << m.bytes;
            QCOMPARE(got, bodies);
        }
    }

    void mboxDatesFlagsLimits() {
        const QByteArray data =
            "From a@x Mon Jan  1 10:00:00 2018\nStatus: RO\nX-Status: AFT\nX-Keywords: Work, "
            "$Label1\nX-Mozilla-Status: 1000\n"
            "Subject: s\n continued\n\nbody\n\n"
            "From b@x Sat Dec 05 10:00:00 +0100 2020\nSubject: t\n\n" +
            QByteArray(100, 'x') + "\n";
        const QList<MboxMessage> m = readMbox(data, 1);
        QCOMPARE(m.size(), 2);
        QCOMPARE(m.at(0).bytes, QByteArray("Subject: s\r\n continued\r\n\r\nbody\r\n"));
        QCOMPARE(m.at(0).flags,
                 (QStringList{QStringLiteral("$Forwarded"), QStringLiteral("\\Answered"), QStringLiteral("\\Draft"),
                              QStringLiteral("\\Flagged"), QStringLiteral("\\Seen"), QStringLiteral("Work"),
                              QStringLiteral("$Label1")}));
        QCOMPARE(m.at(0).internalDateMs, QDateTime(QDate(2018, 1, 1), QTime(10, 0), Qt::UTC).toMSecsSinceEpoch());
        QCOMPARE(m.at(1).internalDateMs, QDateTime(QDate(2020, 12, 5), QTime(9, 0), Qt::UTC).toMSecsSinceEpoch());
        // kMaxMessage at its boundary: "Subject: t\r\n\r\n" + 100 x + CRLF = 116 bytes.
        QVERIFY(!readMbox(data, 0, MboxFormat::Mboxrd, 116).at(1).tooBig);
        QVERIFY(readMbox(data, 0, MboxFormat::Mboxrd, 115).at(1).tooBig);
        QVERIFY(readMbox(data, 0, MboxFormat::Mboxrd, 115).at(1).bytes.isEmpty());
        // A line longer than kMaxLine is kept whole, in pieces, and never taken for a separator.
        QByteArray longLine =
            "From a@x Mon Jan  1 10:00:00 2018\nA: 1\n\n" + QByteArray(MboxReader::kMaxLine + 5, 'y') + "\n";
        const QList<MboxMessage> l = readMbox(longLine, 2);
        QCOMPARE(l.size(), 1);
        QCOMPARE(l.at(0).bytes.size(), qsizetype(6 + 2 + MboxReader::kMaxLine + 5 + 2));
    }

    void mboxWriterRoundTrip() {
        const QByteArray msg = "Subject: x\r\n\r\nFrom me\r\n>From you\r\n\r\n";
        const QStringList flags{QStringLiteral("\\Seen"), QStringLiteral("\\Flagged"), QStringLiteral("Work")};
        const QDateTime when(QDate(2019, 3, 4), QTime(5, 6, 7), Qt::UTC);
        const QByteArray out = mboxrdMessage(msg, flags, when);
        QVERIFY(out.startsWith("From MAILER-DAEMON Mon Mar  4 05:06:07 2019\n"));
        QVERIFY(out.contains("\n>From me\n>>From you\n"));
        const QList<MboxMessage> back = readMbox(out + out, 1);
        QCOMPARE(back.size(), 2);
        QCOMPARE(back.at(0).bytes, msg);
        QCOMPARE(back.at(0).internalDateMs, when.toMSecsSinceEpoch());
        QStringList f = back.at(0).flags;
        f.sort();
        QStringList want = flags;
        want.sort();
        QCOMPARE(f, want);
    }

    void manifest() {
        backup::Manifest m;
        m.created = QStringLiteral("2026-01-01T00:00:00Z");
        m.host = QStringLiteral("mail.x");
        backup::ManifestEntry d;
        d.isDir = true;
        d.mode = 0700;
        d.owner = d.group = QStringLiteral("daemon");
        d.path = QStringLiteral("data/mail");
        backup::ManifestEntry f;
        f.sha256 = QByteArray(64, 'a');
        f.size = 5;
        f.mode = 0600;
        f.owner = QStringLiteral("root");
        f.group = QStringLiteral("108");
        f.mtimeNs = 123;
        f.path = QStringLiteral("config/a b%c\n.txt");
        m.entries = {d, f};
        const QByteArray text = m.serialize();
        QVERIFY(text.endsWith("end 1 5\n"));
        auto back = backup::Manifest::parse(text);
        QVERIFY2(back, qPrintable(back.errorMessage()));
        QVERIFY(back->complete);
        QCOMPARE(back->entries.size(), 2);
        QCOMPARE(back->entries.at(1).path, f.path);
        QCOMPARE(back->entries.at(1).mtimeNs, 123);
        // Paths that would leave the snapshot, duplicates, unknown records.
        for (const QByteArray& bad :
             {QByteArray("F " + QByteArray(64, 'a') + " 1 600 root root 1 data/../../etc/shadow"),
              QByteArray("F " + QByteArray(64, 'a') + " 1 600 root root 1 %2Fetc%2Fshadow"),
              QByteArray("F " + QByteArray(64, 'a') + " 1 600 root root 1 other/x"),
              QByteArray("D 700 root root data\nD 700 root root data"), QByteArray("X y")}) {
            QVERIFY2(!backup::Manifest::parse("POSTERN-BACKUP 1\n" + bad + "\n"), bad.constData());
        }
        QVERIFY(!backup::Manifest::parse("POSTERN-BACKUP 2\n"));
        QVERIFY(!backup::Manifest::parse("POSTERN-BACKUP 1\n").value().complete);
    }

    void messageCheck_data() {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("problem");
        QTest::newRow("ok") << QByteArray("A: b\r\n c\r\nD:\r\n\r\nbody") << QString();
        QTest::newRow("header only") << QByteArray("A: b\n") << QString();
        QTest::newRow("empty") << QByteArray() << QStringLiteral("empty file");
        QTest::newRow("mbox line") << QByteArray("From x Mon Jan  1 10:00:00 2018\r\nA: b\r\n")
                                   << QStringLiteral("line 1 has a bad field name");
        QTest::newRow("no colon") << QByteArray("A: b\r\nnonsense\r\n\r\n")
                                  << QStringLiteral("line 2 is not a header field");
        QTest::newRow("continuation first")
            << QByteArray(" A: b\r\n") << QStringLiteral("line 1 is a continuation line");
        QTest::newRow("body only") << QByteArray("\r\nbody") << QStringLiteral("no header fields before the body");
    }
    void messageCheck() {
        QFETCH(QByteArray, bytes);
        QFETCH(QString, problem);
        QCOMPARE(backup::checkMessageHeader(bytes), problem);
    }

    void folderPlan() {
        auto rf = [](const char* name, QStringList attrs, char delim = '/') {
            RemoteFolder f;
            f.name = QString::fromUtf8(name);
            f.wireName = name;
            f.attributes = attrs;
            f.delimiter = QLatin1Char(delim);
            return f;
        };
        const QList<RemoteFolder> gmail = {rf("[Gmail]/All Mail", {QStringLiteral("\\All")}),
                                           rf("INBOX", {}),
                                           rf("[Gmail]", {QStringLiteral("\\Noselect")}),
                                           rf("[Gmail]/Sent Mail", {QStringLiteral("\\Sent")}),
                                           rf("[Gmail]/Starred", {QStringLiteral("\\Flagged")}),
                                           rf("[Gmail]/Spam", {QStringLiteral("\\Junk")}),
                                           rf("Work/Client.A", {}),
                                           rf("Deleted Items", {}),
                                           rf("Old", {})};
        QMap<QString, QString> map{{QStringLiteral("Old"), QString()}};
        const QList<FolderPlan> p = planFolders(gmail, map, true);
        QStringList s;
        for (const FolderPlan& x : p)
            s << x.remote.name + QStringLiteral(" -> ") +
                     (x.skip ? QStringLiteral("skip") : x.local.join(QLatin1Char('/'))) +
                     (x.allMail ? QStringLiteral(" (all)") : QString());
        QCOMPARE(s,
                 (QStringList{QStringLiteral("INBOX -> "), QStringLiteral("[Gmail] -> skip"),
                              QStringLiteral("[Gmail]/Sent Mail -> Sent"), QStringLiteral("[Gmail]/Starred -> skip"),
                              QStringLiteral("[Gmail]/Spam -> Junk"), QStringLiteral("Work/Client.A -> Work/Client_A"),
                              QStringLiteral("Deleted Items -> Trash"), QStringLiteral("Old -> skip"),
                              QStringLiteral("[Gmail]/All Mail -> Archive (all)")}));
        // \All elsewhere is a virtual folder: skipped.
        QVERIFY(planFolders({rf("Virtual/All", {QStringLiteral("\\All")})}, {}, false).first().skip);
    }

    void internalDate() {
        QCOMPARE(parseInternalDate("17-Jul-1996 02:44:25 -0700"),
                 QDateTime(QDate(1996, 7, 17), QTime(9, 44, 25), Qt::UTC).toMSecsSinceEpoch());
        QCOMPARE(parseInternalDate(" 1-Jan-2018 10:00:00 +0000"),
                 QDateTime(QDate(2018, 1, 1), QTime(10, 0), Qt::UTC).toMSecsSinceEpoch());
        QCOMPARE(parseInternalDate("32-Jan-2018 10:00:00 +0000"), 0);
        QCOMPARE(parseInternalDate("garbage"), 0);
    }
};

QTEST_GUILESS_MAIN(TestMigration)
#include "tst_migration.moc"
