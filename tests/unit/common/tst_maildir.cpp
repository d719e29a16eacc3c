// tst_maildir.cpp — the Maildir store: names (modified UTF-7, folder names
// that must never escape the Maildir), delivery transactions (copies, abort,
// quota), folder sync with stable Dovecot-compatible UIDs, flags, expunge.
#include "common/store/maildir_delivery.h"
#include "common/store/maildir_folder.h"
#include "common/store/maildir_names.h"

#include "core/atomic_file.h"
#include "core/paths.h"

#include <QDir>
#include <QTemporaryDir>
#include <QTemporaryFile>
#include <QtTest>
#include <cerrno>

#include <unistd.h>

using namespace postern;
using namespace postern::store;

namespace {
QStringList files(const QString& dir) {
    return QDir(dir).entryList(QDir::Files | QDir::Hidden, QDir::Name);
}
QByteArray slurp(const QString& path) {
    return readFile(path).valueOr({});
}
// `prefix`, then the whole of `body`.
Content fileContent(QTemporaryFile& body, const QByteArray& prefix = {}) {
    return Content{prefix, body.handle(), 0, body.size()};
}
}  // namespace

class TstMaildir : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void mutf7_data() {
        QTest::addColumn<QString>("plain");
        QTest::addColumn<QString>("encoded");
        QTest::newRow("ascii") << "Sent"
                               << "Sent";
        QTest::newRow("ampersand") << "A&B"
                                   << "A&-B";
        QTest::newRow("rfc3501 example") << QString::fromUtf8("台北") << "&U,BTFw-";
        QTest::newRow("smiley") << QString::fromUtf8("☺!") << "&Jjo-!";
        QTest::newRow("german") << QString::fromUtf8("Entwürfe") << "Entw&APw-rfe";
        QTest::newRow("emoji") << QString::fromUtf8("📬") << "&2D3c7A-";
    }
    void mutf7() {
        QFETCH(QString, plain);
        QFETCH(QString, encoded);
        QCOMPARE(encodeMUtf7(plain), encoded);
        auto d = decodeMUtf7(encoded);
        QVERIFY(d.ok());
        QCOMPARE(*d, plain);
    }
    void mutf7Rejects() {
        QVERIFY(!decodeMUtf7(QStringLiteral("&U,BTFw")).ok());   // unterminated
        QVERIFY(!decodeMUtf7(QStringLiteral("&AGE-")).ok());     // encodes "a": must be literal
        QVERIFY(!decodeMUtf7(QStringLiteral("&U/BTFw-")).ok());  // '/' instead of ','
        QVERIFY(!decodeMUtf7(QString::fromUtf8("é")).ok());      // 8-bit
    }
    void folderNames_data() {
        QTest::addColumn<QStringList>("parts");
        QTest::addColumn<QString>("dir");  // empty: refused
        QTest::newRow("simple") << QStringList{"Sent"} << ".Sent";
        QTest::newRow("nested") << QStringList{"Work", "Projects"} << ".Work.Projects";
        QTest::newRow("utf8") << QStringList{QString::fromUtf8("Entwürfe")} << ".Entw&APw-rfe";
        QTest::newRow("dotdot") << QStringList{".."} << "";
        QTest::newRow("dot inside") << QStringList{"a.b"} << "";
        QTest::newRow("slash") << QStringList{"a/../../etc"} << "";
        QTest::newRow("backslash") << QStringList{"a\\b"} << "";
        QTest::newRow("leading dot") << QStringList{".hidden"} << "";
        QTest::newRow("empty part") << QStringList{"a", ""} << "";
        QTest::newRow("nul") << QStringList{QString(QChar(0))} << "";
        QTest::newRow("newline") << QStringList{"a\nb"} << "";
        QTest::newRow("too long") << QStringList{QString(256, QLatin1Char('x'))} << "";
        QTest::newRow("empty") << QStringList{} << "";
    }
    void folderNames() {
        QFETCH(QStringList, parts);
        QFETCH(QString, dir);
        auto r = folderDirName(parts);
        if (dir.isEmpty()) {
            QVERIFY(!r.ok());
        } else {
            QVERIFY2(r.ok(), qPrintable(r.errorMessage()));
            QCOMPARE(*r, dir);
            QCOMPARE(folderParts(*r), parts);
        }
    }
    void folderPartsRejectForeign() {
        QCOMPARE(folderParts(QStringLiteral("..")), QStringList());
        QCOMPARE(folderParts(QStringLiteral("cur")), QStringList());
        QCOMPARE(folderParts(QStringLiteral(".a..b")), QStringList());
    }
    void fileNames() {
        const QString n = uniqueName(1234);
        QVERIFY(!n.contains(QLatin1Char('/')) && !n.contains(QLatin1Char(':')));
        QVERIFY(n != uniqueName(1234));
        ParsedName p = parseFileName(withFlags(n, QStringLiteral("SFR")));
        QCOMPARE(p.base, n);
        QCOMPARE(p.flags, QStringLiteral("FRS"));
        QCOMPARE(p.size, 1234);
        QCOMPARE(p.vsize, 1234);
    }

    // parseFileName reads the fields of the base as views (no list of fields per name):
    // every kind of field, byte by byte, as the list-based parser read them.
    void parseFileNameFields_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("base");
        QTest::addColumn<QString>("flags");
        QTest::addColumn<bool>("hasInfo");
        QTest::addColumn<qint64>("size");
        QTest::addColumn<qint64>("vsize");
        auto row = [](const char* tag, const char* name, const char* base, const char* flags, bool info, qint64 s,
                      qint64 w) {
            QTest::newRow(tag) << QString::fromUtf8(name) << QString::fromUtf8(base) << QString::fromUtf8(flags) << info
                               << s << w;
        };
        row("ours", "1.M2P3Q4.h,S=10,W=12:2,FS", "1.M2P3Q4.h,S=10,W=12", "FS", true, 10, 12);
        row("no info", "1.M2P3.h,S=10", "1.M2P3.h,S=10", "", false, 10, -1);
        row("no fields", "1.M2P3.h:2,", "1.M2P3.h", "", true, -1, -1);
        row("empty", "", "", "", false, -1, -1);
        row("only info", ":2,S", "", "S", true, -1, -1);
        row("first field is not one", "S=5,W=6", "S=5,W=6", "", false, -1, 6);
        row("W before S", "a,W=7,S=3", "a,W=7,S=3", "", false, 3, 7);
        row("later valid wins", "a,S=1,S=2", "a,S=1,S=2", "", false, 2, -1);
        row("invalid later kept earlier", "a,S=12,S=x", "a,S=12,S=x", "", false, 12, -1);
        row("invalid first", "a,S=x,S=7", "a,S=x,S=7", "", false, 7, -1);
        row("empty value", "a,S=,W=", "a,S=,W=", "", false, -1, -1);
        row("empty fields", "a,,S=4,,", "a,,S=4,,", "", false, 4, -1);
        row("sign", "a,S=+12,W=-3", "a,S=+12,W=-3", "", false, 12, -3);
        row("spaces", "a,S= 12,W=5 ", "a,S= 12,W=5 ", "", false, 12, 5);
        row("overflow", "a,S=99999999999999999999", "a,S=99999999999999999999", "", false, -1, -1);
        row("hex and junk", "a,S=0x10,W=1_0", "a,S=0x10,W=1_0", "", false, -1, -1);
        row("lower case", "a,s=3,w=4", "a,s=3,w=4", "", false, -1, -1);
        row("field in flags ignored", "a:2,S,S=9", "a", "S,S=9", true, -1, -1);
        row("first info marker", "a,S=1:2,S:2,T", "a,S=1", "S:2,T", true, 1, -1);
        row("colon without 2", "a,S=1:1,x", "a,S=1:1,x", "", false, -1, -1);
        row("non-ASCII", "\xc3\xa9,S=3:2,a", "\xc3\xa9,S=3", "a", true, 3, -1);
    }
    void parseFileNameFields() {
        QFETCH(QString, name);
        const ParsedName p = parseFileName(name);
        QTEST(p.base, "base");
        QTEST(p.flags, "flags");
        QTEST(p.hasInfo, "hasInfo");
        QTEST(p.size, "size");
        QTEST(p.vsize, "vsize");
    }
    void sortFlagsKeepsSortedNames() {
        QCOMPARE(sortFlags(QStringLiteral("SRF")), QStringLiteral("FRS"));
        QCOMPARE(sortFlags(QStringLiteral("FSS")), QStringLiteral("FS"));
        QCOMPARE(sortFlags(QStringLiteral("aFb")), QStringLiteral("Fab"));
        QCOMPARE(sortFlags(QString()), QString());
        const QString sorted = QString::fromLatin1("DFSab");
        const QString same = sortFlags(sorted);
        QCOMPARE(same, sorted);
        QCOMPARE(same.constData(), sorted.constData());  // no copy made
    }

    void deliveryTwoCopies() {
        QTemporaryDir dir;
        const QString mail = dir.filePath(QStringLiteral("mail"));
        QTemporaryFile body;
        QVERIFY(body.open());
        body.write("Subject: hi\r\n\r\nbody\r\n");
        body.flush();
        Delivery d(mail);
        QVERIFY(
            d.add(QStringLiteral("alice@example.org"), fileContent(body, "Delivered-To: alice@example.org\r\n")).ok());
        QVERIFY(d.add(QStringLiteral("bob@example.org"), fileContent(body, "Delivered-To: bob@example.org\r\n")).ok());
        // Before commit nothing is visible in new/.
        const QString aliceNew = maildirRoot(mail, QStringLiteral("alice@example.org")) + QStringLiteral("/new");
        QVERIFY(files(aliceNew).isEmpty());
        QVERIFY(d.commit().ok());
        const QStringList a = files(aliceNew);
        QCOMPARE(a.size(), 1);
        QCOMPARE(slurp(aliceNew + QLatin1Char('/') + a.first()),
                 QByteArray("Delivered-To: alice@example.org\r\nSubject: hi\r\n\r\nbody\r\n"));
        QCOMPARE(parseFileName(a.first()).size, qint64(54));
        const QString bobNew = maildirRoot(mail, QStringLiteral("bob@example.org")) + QStringLiteral("/new");
        QCOMPARE(files(bobNew).size(), 1);
        QVERIFY(files(maildirRoot(mail, QStringLiteral("alice@example.org")) + QStringLiteral("/tmp")).isEmpty());
    }

    void abortLeavesNothing() {
        QTemporaryDir dir;
        QTemporaryFile body;
        QVERIFY(body.open());
        body.write("x\r\n");
        body.flush();
        const QString root = maildirRoot(dir.path(), QStringLiteral("a@example.org"));
        {
            Delivery d(dir.path());
            QVERIFY(d.add(QStringLiteral("a@example.org"), fileContent(body)).ok());
            QCOMPARE(files(root + QStringLiteral("/tmp")).size(), 1);
        }  // destroyed without commit
        QVERIFY(files(root + QStringLiteral("/tmp")).isEmpty());
        QVERIFY(files(root + QStringLiteral("/new")).isEmpty());
    }

    void deliveryToFolder() {
        QTemporaryDir dir;
        QTemporaryFile body;
        QVERIFY(body.open());
        body.write("spam\r\n");
        body.flush();
        Delivery d(dir.path());
        QVERIFY(d.add(QStringLiteral("a@example.org"), fileContent(body), {QStringLiteral("Junk")}).ok());
        QVERIFY(d.commit().ok());
        const QString junk = maildirRoot(dir.path(), QStringLiteral("a@example.org")) + QStringLiteral("/.Junk");
        QCOMPARE(files(junk + QStringLiteral("/new")).size(), 1);
        QVERIFY(QFileInfo::exists(junk + QStringLiteral("/maildirfolder")));
        Delivery bad(dir.path());
        QVERIFY(!bad.add(QStringLiteral("a@example.org"), fileContent(body), {QStringLiteral("..")}).ok());
        QVERIFY(!bad.add(QStringLiteral("../x@example.org"), fileContent(body)).ok());
    }

    void quota() {
        QTemporaryDir dir;
        QTemporaryFile body;
        QVERIFY(body.open());
        body.write(QByteArray(400, 'x'));
        body.flush();
        const QString user = QStringLiteral("q@example.org");
        for (int i = 0; i < 2; ++i) {
            Delivery d(dir.path());
            QVERIFY(d.add(user, fileContent(body), {}, 1000).ok());
            QVERIFY(d.commit().ok());
        }
        Delivery third(dir.path());
        StoreStatus st = third.add(user, fileContent(body), {}, 1000);
        QVERIFY(!st.ok());
        QCOMPARE(toString(st.error().kind), toString(StoreError::Kind::MailboxFull));
        QCOMPARE(st.error().smtpReply(), QStringLiteral("452 4.2.2 Mailbox full, try again later"));
        // Larger than the whole quota: it can never fit.
        st = third.add(user, Content{QByteArray(1001, 'x')}, {}, 1000);
        QCOMPARE(st.error().smtpReply(),
                 QStringLiteral("552 5.2.2 Message is larger than the recipient's whole mailbox quota"));
        const QString root = maildirRoot(dir.path(), user);
        auto used = MaildirQuota::usage(root, 1000);
        QVERIFY(used.ok());
        QCOMPARE(used->first, 800);
        QCOMPARE(used->second, 2);
        // Expunging frees the space again.
        auto f = MaildirFolder::open(root);
        QVERIFY(f.ok());
        auto list = f->sync(true);
        QVERIFY(list.ok());
        QVERIFY(f->expunge(list->first()).ok());
        QCOMPARE(MaildirQuota::usage(root, 1000)->first, 400);
        Delivery again(dir.path());
        QVERIFY(again.add(user, fileContent(body), {}, 1000).ok());
        // The limit itself passes: 600 more bytes fill the quota exactly, one more does not.
        Delivery exact(dir.path());
        QVERIFY(!exact.add(user, Content{QByteArray(601, 'x')}, {}, 1000).ok());
        QVERIFY(exact.add(user, Content{QByteArray(600, 'x')}, {}, 1000).ok());
    }

    void syncAssignsStableUids() {
        QTemporaryDir dir;
        const QString root = dir.filePath(QStringLiteral("Maildir"));
        QVERIFY(ensureMaildir(root).ok());
        QVERIFY(writeFileAtomic(root + QStringLiteral("/new/1000.A.host,S=7,W=7"), "a\r\nb\r\n").ok());
        QVERIFY(
            writeFileAtomic(root + QStringLiteral("/cur/1001.B.host:2,S"), "x\ny\n").ok());  // LF file from elsewhere
        auto f = MaildirFolder::open(root);
        QVERIFY(f.ok());
        auto first = f->sync(true);
        QVERIFY(first.ok());
        QCOMPARE(first->size(), 2);
        QCOMPARE(first->at(0).uid, 1u);
        QCOMPARE(first->at(1).uid, 2u);
        QCOMPARE(first->at(0).inNew, false);  // moved to cur/
        QCOMPARE(first->at(0).fileName, QStringLiteral("1000.A.host,S=7,W=7:2,"));
        QCOMPARE(first->at(1).vsize, 6);  // bare LF counted as CRLF
        QCOMPARE(first->at(1).flags, QStringLiteral("S"));
        const quint32 validity = f->uidValidity();
        QVERIFY(validity > 0);
        // A new message later gets UID 3; a removed one's UID is never reused.
        QVERIFY(::unlink(QFile::encodeName(root + QStringLiteral("/cur/1001.B.host:2,S")).constData()) == 0);
        QVERIFY(writeFileAtomic(root + QStringLiteral("/new/1002.C.host,S=3,W=3"), "c\r\n").ok());
        auto g = MaildirFolder::open(root);
        auto second = g->sync(false);
        QVERIFY(second.ok());
        QCOMPARE(second->size(), 2);
        QCOMPARE(second->at(0).uid, 1u);
        QCOMPARE(second->at(1).uid, 3u);
        QVERIFY(second->at(1).inNew);
        QCOMPARE(g->uidValidity(), validity);
        QCOMPARE(g->nextUid(), 4u);
        const QByteArray list = slurp(root + QStringLiteral("/dovecot-uidlist"));
        // The new line is appended (as Dovecot does): the header's N is not rewritten, and the
        // line of the removed message stays until the next rewrite.
        QVERIFY(list.startsWith("3 V" + QByteArray::number(validity) + " N3 G"));
        QVERIFY(list.contains("\n1 W7 :1000.A.host,S=7,W=7\n"));
        QVERIFY(list.contains("\n2 W6 :1001.B.host\n"));
        QVERIFY(list.endsWith("\n3 W3 :1002.C.host,S=3,W=3\n"));
        // Another reader (no cache of ours) takes N from the highest line.
        QVERIFY(writeFileAtomic(root + QStringLiteral("/new/1003.D.host,S=3,W=3"), "d\r\n").ok());
        QVERIFY(writeFileAtomic(root + QStringLiteral("/dovecot-uidlist"), list).ok());  // new inode: not cached
        auto third = MaildirFolder::open(root)->sync(false);
        QVERIFY(third.ok());
        QCOMPARE(third->size(), 3);
        QCOMPARE(third->at(2).uid, 4u);
    }

    // The uidlist's stamp as sync() and addOwn() leave it (the kept IMAP listing is stamped
    // with it); assumeListed() takes a recorded state as is.
    void uidListStampFollowsTheFile() {
        QTemporaryDir dir;
        const QString root = dir.filePath(QStringLiteral("Maildir"));
        const QString list = root + QStringLiteral("/dovecot-uidlist");
        QVERIFY(ensureMaildir(root).ok());
        QVERIFY(writeFileAtomic(root + QStringLiteral("/cur/1000.A.host,S=3,W=3:2,"), "a\r\n").ok());
        auto f = MaildirFolder::open(root);
        QVERIFY(f.ok());
        QVERIFY(!f->uidListStamp().exists);
        QVERIFY(f->sync(true).ok());
        QVERIFY(f->uidListStamp().exists);
        QVERIFY(f->uidListStamp() == FileStamp::of(list));
        QVERIFY(f->sync(true).ok());  // nothing new: the same file
        QVERIFY(f->uidListStamp() == FileStamp::of(list));
        const FileStamp before = f->uidListStamp();
        QVERIFY(writeFileAtomic(root + QStringLiteral("/cur/1001.B.host,S=3,W=3:2,"), "b\r\n").ok());
        auto own = f->addOwn({QStringLiteral("1001.B.host,S=3,W=3:2,")}, 1);
        QVERIFY(own.ok());
        QCOMPARE(own->size(), 1);
        QVERIFY(f->uidListStamp() == FileStamp::of(list));
        QVERIFY(!(f->uidListStamp() == before));  // a line was appended
        auto g = MaildirFolder::open(root);
        QVERIFY(g.ok());
        g->assumeListed(f->uidValidity(), f->nextUid(), f->guid(), before);
        QCOMPARE(g->uidValidity(), f->uidValidity());
        QCOMPARE(g->nextUid(), 3u);
        QCOMPARE(g->guid(), f->guid());
        QVERIFY(g->uidListStamp() == before);
    }

    void uidlistCutByACrashIsRewritten() {
        QTemporaryDir dir;
        const QString root = dir.filePath(QStringLiteral("Maildir"));
        QVERIFY(ensureMaildir(root).ok());
        QVERIFY(writeFileAtomic(root + QStringLiteral("/cur/1000.A.host,S=1,W=1:2,"), "a").ok());
        QVERIFY(writeFileAtomic(root + QStringLiteral("/cur/1001.B.host,S=1,W=1:2,"), "b").ok());
        // An append cut short by a crash: half a line, no newline.
        QVERIFY(writeFileAtomic(
                    root + QStringLiteral("/dovecot-uidlist"),
                    "3 V1700000000 N2 G0123456789abcdef0123456789abcdef\n1 W1 :1000.A.host,S=1,W=1\n2 W1 :1001.B")
                    .ok());
        auto f = MaildirFolder::open(root);
        auto list = f->sync(false);
        QVERIFY(list.ok());
        QCOMPARE(list->size(), 2);
        QCOMPARE(list->at(0).uid, 1u);
        QCOMPARE(list->at(1).uid, 3u);  // the half line's base matches no file; its UID is not reused
        QCOMPARE(f->uidValidity(), 1700000000u);
        const QByteArray text = slurp(root + QStringLiteral("/dovecot-uidlist"));
        QCOMPARE(text, QByteArray("3 V1700000000 N4 G0123456789abcdef0123456789abcdef\n1 W1 :1000.A.host,S=1,W=1\n"
                                  "3 W1 :1001.B.host,S=1,W=1\n"));
    }

    void uidlistIsRewrittenWhenStaleLinesOutnumberLiveOnes() {
        QTemporaryDir dir;
        const QString root = dir.filePath(QStringLiteral("Maildir"));
        QVERIFY(ensureMaildir(root).ok());
        QByteArray text = "3 V1700000000 N201 G0123456789abcdef0123456789abcdef\n";
        for (int i = 1; i <= 200; ++i) text += QByteArray::number(i) + " W1 :gone" + QByteArray::number(i) + ".host\n";
        QVERIFY(writeFileAtomic(root + QStringLiteral("/dovecot-uidlist"), text).ok());
        QVERIFY(writeFileAtomic(root + QStringLiteral("/new/2000.A.host,S=1,W=1"), "a").ok());
        auto list = MaildirFolder::open(root)->sync(false);
        QVERIFY(list.ok());
        QCOMPARE(list->size(), 1);
        QCOMPARE(list->at(0).uid, 201u);
        QCOMPARE(slurp(root + QStringLiteral("/dovecot-uidlist")),
                 QByteArray("3 V1700000000 N202 G0123456789abcdef0123456789abcdef\n201 W1 :2000.A.host,S=1,W=1\n"));
    }

    void readsDovecotUidlist() {
        QTemporaryDir dir;
        const QString root = dir.filePath(QStringLiteral("Maildir"));
        QVERIFY(ensureMaildir(root).ok());
        // As Dovecot 2.3 writes it after a client saw UIDs 41 and 57.
        QVERIFY(writeFileAtomic(root + QStringLiteral("/dovecot-uidlist"),
                                "3 V1699999999 N58 G8a7e1c0f2d3b4a5968778695a4b3c2d1\n"
                                "41 W120 :1690000000.M1P2.old,S=118,W=120\n"
                                "57 :1690000001.M2P2.old,S=10,W=10\n")
                    .ok());
        QVERIFY(
            writeFileAtomic(root + QStringLiteral("/cur/1690000000.M1P2.old,S=118,W=120:2,RS"), QByteArray(118, 'x'))
                .ok());
        QVERIFY(
            writeFileAtomic(root + QStringLiteral("/cur/1690000001.M2P2.old,S=10,W=10:2,"), QByteArray(10, 'y')).ok());
        QVERIFY(writeFileAtomic(root + QStringLiteral("/new/1690000002.M3P2.old,S=5,W=5"), "12345").ok());
        auto f = MaildirFolder::open(root);
        auto list = f->sync(true);
        QVERIFY(list.ok());
        QCOMPARE(list->size(), 3);
        QCOMPARE(list->at(0).uid, 41u);
        QCOMPARE(list->at(0).vsize, 120);
        QCOMPARE(list->at(0).flags, QStringLiteral("RS"));
        QCOMPARE(list->at(1).uid, 57u);
        QCOMPARE(list->at(2).uid, 58u);
        QCOMPARE(f->uidValidity(), 1699999999u);
    }

    void flagsAndExpunge() {
        QTemporaryDir dir;
        const QString root = dir.filePath(QStringLiteral("Maildir"));
        QVERIFY(ensureMaildir(root).ok());
        QVERIFY(writeFileAtomic(root + QStringLiteral("/new/2000.D.host,S=3,W=3"), "d\r\n").ok());
        auto f = MaildirFolder::open(root);
        auto list = f->sync(true);
        MessageEntry e = list->first();
        auto name = f->setFlags(e, QStringLiteral("TS"));
        QVERIFY(name.ok());
        QCOMPARE(*name, QStringLiteral("2000.D.host,S=3,W=3:2,ST"));
        QVERIFY(QFileInfo::exists(root + QStringLiteral("/cur/2000.D.host,S=3,W=3:2,ST")));
        auto again = f->sync(true);
        QCOMPARE(again->first().uid, e.uid);  // a flag change keeps the UID
        QVERIFY(f->expunge(again->first()).ok());
        QCOMPARE(f->sync(true)->size(), 0);
    }

    // moveNewToCur() renames new/'s files as sync(true) would (flags kept, "<base>:2,<flags>"),
    // only regular files (a symlink to one included), and the UIDs do not change.
    void moveNewToCurKeepsNamesAndUids() {
        QTemporaryDir dir;
        const QString root = dir.filePath(QStringLiteral("Maildir"));
        QVERIFY(ensureMaildir(root).ok());
        QVERIFY(writeFileAtomic(root + QStringLiteral("/new/3000.A.host,S=3,W=3"), "a\r\n").ok());
        QVERIFY(writeFileAtomic(root + QStringLiteral("/new/3001.B.host:2,SF"), "b\r\n").ok());
        QVERIFY(writeFileAtomic(root + QStringLiteral("/new/3002.C.host"), "c\r\n").ok());
        QVERIFY(writeFileAtomic(root + QStringLiteral("/new/.hidden"), "x").ok());
        QVERIFY(QDir(root + QStringLiteral("/new")).mkdir(QStringLiteral("subdir")));
        QVERIFY(writeFileAtomic(dir.filePath(QStringLiteral("outside")), "o\r\n").ok());
        QVERIFY(::symlink(QFile::encodeName(dir.filePath(QStringLiteral("outside"))).constData(),
                          QFile::encodeName(root + QStringLiteral("/new/3003.L.host")).constData()) == 0);
        QVERIFY(::symlink("nowhere", QFile::encodeName(root + QStringLiteral("/new/3004.X.host")).constData()) == 0);
        auto f = MaildirFolder::open(root);
        QVERIFY(f.ok());
        auto numbered = f->sync(false);  // UIDs given while the files are in new/
        QVERIFY(numbered.ok());
        QCOMPARE(numbered->size(), 4);
        auto moved = f->moveNewToCur();
        QVERIFY(moved.ok());
        QCOMPARE(*moved, 4);
        QCOMPARE(QDir(root + QStringLiteral("/new"))
                     .entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot | QDir::System),
                 (QStringList{QStringLiteral(".hidden"), QStringLiteral("3004.X.host"), QStringLiteral("subdir")}));
        QCOMPARE(files(root + QStringLiteral("/cur")),
                 (QStringList{QStringLiteral("3000.A.host,S=3,W=3:2,"), QStringLiteral("3001.B.host:2,FS"),
                              QStringLiteral("3002.C.host:2,"), QStringLiteral("3003.L.host:2,")}));
        auto after = f->sync(true);
        QVERIFY(after.ok());
        QCOMPARE(after->size(), 4);
        for (qsizetype i = 0; i < after->size(); ++i) {
            QCOMPARE(after->at(i).uid, numbered->at(i).uid);
            QCOMPARE(after->at(i).base, numbered->at(i).base);
            QCOMPARE(after->at(i).flags, sortFlags(numbered->at(i).flags));
            QCOMPARE(after->at(i).mtimeMs, numbered->at(i).mtimeMs);
            QVERIFY(!after->at(i).inNew);
        }
        QCOMPARE(*f->moveNewToCur(), 0);  // nothing left to move
    }

    void missingFolderWithoutCreate() {
        QTemporaryDir dir;
        auto f = MaildirFolder::open(dir.filePath(QStringLiteral("Maildir")), {QStringLiteral("Nope")}, false);
        QVERIFY(!f.ok());
        QCOMPARE(f.error().code, ENOENT);
    }
};

QTEST_GUILESS_MAIN(TstMaildir)
#include "tst_maildir.moc"
