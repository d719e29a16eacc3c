// tst_store.cpp — the one store operation (common/store/maildir_delivery.h) and
// the one failure mapping (common/store/store_error.h).
//
// Covers: the mapping table byte for byte (SMTP reply line, IMAP response code
// and text, temporary or not) for every kind and the errno values that lead
// to it; a copy made of bytes in memory plus a byte range of a file; APPEND's
// placement (cur/ with flags, the internal date as mtime, the base name);
// Maildir++ quota on add is in tst_maildir;
// a store that fails: a full file system (a small tmpfs in a private mount
// namespace, when the test may make one: 452 4.3.1 / [OVERQUOTA], nothing left
// behind), a source file shorter than announced, and a rename that fails at
// commit (copies already visible are taken back).
// The one flag and keyword-letter mapping (common/store/maildir_keywords.h,
// used by imapd, posternctl import/export and delivery): system flags both
// ways, letters back to names, letters given in order and found again
// case-insensitively, $Forwarded as P, unknown names skipped (Skip) or added
// (Add), a keyword another process added found again under the lock (no
// letter given twice), the 26-letter limit (26 pass, the 27th is not stored),
// the 64-octet name limit of delivery (64 pass, 65 refused), a damaged file.
#include "common/store/maildir_delivery.h"
#include "common/store/maildir_keywords.h"
#include "common/store/maildir_names.h"
#include "common/store/store_error.h"

#include "core/atomic_file.h"
#include "core/paths.h"

#include <QDir>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QTemporaryFile>
#include <QtTest>

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <cerrno>

using namespace postern;
using namespace postern::store;

namespace {
QStringList files(const QString& dir) {
    return QDir(dir).entryList(QDir::Files | QDir::Hidden, QDir::Name);
}
QByteArray slurp(const QString& path) {
    return readFile(path).valueOr({});
}
const QString kUser = QStringLiteral("alice@example.org");
}  // namespace

class TstStore : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void keywordLetters_data() {
        QTest::addColumn<QString>("fileBefore");  // dovecot-keywords before ("" = none)
        QTest::addColumn<QStringList>("table");   // the caller's copy of the table
        QTest::addColumn<QStringList>("keywords");
        QTest::addColumn<bool>("add");
        QTest::addColumn<QString>("letters");
        QTest::addColumn<QStringList>("notStored");
        QTest::addColumn<QString>("fileAfter");
        const QString none;
        QTest::newRow("new names in order") << none << QStringList() << QStringList{"Work", "$Label1"} << true << "ab"
                                            << QStringList() << "0 Work\n1 $Label1\n";
        QTest::newRow("known, any case") << "0 Work\n1 Home\n"
                                         << QStringList{"Work", "Home"} << QStringList{"home", "WORK"} << true << "ab"
                                         << QStringList() << "0 Work\n1 Home\n";
        QTest::newRow("$Forwarded is P") << none << QStringList() << QStringList{"$forwarded", "X"} << true << "Pa"
                                         << QStringList() << "0 X\n";
        QTest::newRow("skip unknown") << "0 Work\n"
                                      << QStringList{"Work"} << QStringList{"Other", "Work"} << false << "a"
                                      << QStringList() << "0 Work\n";
        QTest::newRow("skip, no file made")
            << none << QStringList() << QStringList{"Other"} << false << "" << QStringList() << none;
        // The caller's copy is stale: another process gave "Late" the letter c meanwhile.
        QTest::newRow("added elsewhere meanwhile") << "0 Work\n2 Late\n"
                                                   << QStringList{"Work"} << QStringList{"late", "New"} << true << "bc"
                                                   << QStringList() << "0 Work\n1 New\n2 Late\n";
        QString full;
        QStringList fullTable;
        for (int i = 0; i < kMaxKeywordsPerFolder - 1; ++i) {
            full += QStringLiteral("%1 k%1\n").arg(i);
            fullTable << QStringLiteral("k%1").arg(i);
        }
        QTest::newRow("26th letter passes") << full << fullTable << QStringList{"Last"} << true << "z" << QStringList()
                                            << full + QStringLiteral("25 Last\n");
        QTest::newRow("27th keyword refused")
            << full + QStringLiteral("25 Last\n") << (fullTable << "Last") << QStringList{"One", "k0", "Two"} << true
            << "a" << QStringList{"One", "Two"} << full + QStringLiteral("25 Last\n");
        QTest::newRow("damaged file") << "x\n-1 Neg\n26 Over\n 3 Lead\n1 B\n"
                                      << QStringList() << QStringList{"B", "N"} << true << "ab" << QStringList()
                                      << "0 N\n1 B\n";
    }
    void keywordLetters() {
        QFETCH(QString, fileBefore);
        QFETCH(QStringList, table);
        QFETCH(QStringList, keywords);
        QFETCH(bool, add);
        QFETCH(QString, letters);
        QFETCH(QStringList, notStored);
        QFETCH(QString, fileAfter);
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString file = dir.path() + QStringLiteral("/dovecot-keywords");
        if (!fileBefore.isNull()) QVERIFY(writeFileAtomic(file, fileBefore.toUtf8(), 0600).ok());
        QStringList missing;
        auto got =
            assignKeywordLetters(dir.path(), &table, keywords, add ? NewKeywords::Add : NewKeywords::Skip, &missing);
        QVERIFY2(got.ok(), qPrintable(got.errorMessage()));
        QCOMPARE(*got, letters);
        QCOMPARE(missing, notStored);
        if (fileAfter.isNull()) {
            QVERIFY(!QFileInfo::exists(file));
        } else {
            QCOMPARE(QString::fromUtf8(slurp(file)), fileAfter);
            QCOMPARE(table, readKeywordTable(dir.path()));  // the caller's copy is the file's table
        }
    }
    // System flags both ways (RFC 9051 2.3.2), and letters back to names: system flags and
    // $Forwarded first, then keywords the table names (unknown letters and empty slots left out).
    void flagLettersBothWays() {
        const QList<std::pair<QString, QString>> system = {
            {"\\Seen", "S"}, {"\\Answered", "R"}, {"\\Flagged", "F"}, {"\\Deleted", "T"}, {"\\Draft", "D"}};
        for (const auto& [flag, letter] : system) {
            QCOMPARE(systemFlagLetter(flag), letter);
            QCOMPARE(systemFlagLetter(flag.toUpper()), letter);
            QCOMPARE(flagNames(letter, {}), QStringList{flag});
        }
        for (const QString& other : QStringList{"\\Recent", "$Forwarded", "Seen", "\\Seen ", ""})
            QCOMPARE(systemFlagLetter(other), QString());
        QCOMPARE(
            flagNames(QStringLiteral("DFPRSTacz"), {"Work", "", "Home"}),
            (QStringList{"\\Draft", "\\Flagged", "$Forwarded", "\\Answered", "\\Seen", "\\Deleted", "Work", "Home"}));
        QCOMPARE(flagNames(QStringLiteral("bXy1"), {"Work", ""}), QStringList());
    }
    // Delivery (Sieve imap4flags) checks names: 64 octets pass, 65 are refused, as are specials.
    void deliveryKeywordNames() {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString at = QString(kMaxKeywordBytes, u'k');
        const QString over = QString(kMaxKeywordBytes + 1, u'k');
        QStringList missing;
        auto got = store::keywordLetters(dir.path(), {over, at, "a]b", "$Forwarded", "\\Seen"}, &missing);
        QVERIFY(got.ok());
        QCOMPARE(*got, QStringLiteral("Pa"));
        QCOMPARE(missing, (QStringList{over, "a]b", "\\Seen"}));
        QCOMPARE(readKeywordTable(dir.path()), QStringList{at});
    }
    void mapping_data() {
        QTest::addColumn<int>("err");
        QTest::addColumn<bool>("spool");
        QTest::addColumn<QString>("smtp");
        QTest::addColumn<QByteArray>("imapCode");
        QTest::addColumn<QString>("imapText");
        QTest::addColumn<bool>("temporary");
        const QString local = QStringLiteral("451 4.3.0 Local error in processing, try again later");
        QTest::newRow("ENOSPC") << ENOSPC << false << QStringLiteral("452 4.3.1 Insufficient system storage")
                                << QByteArray("OVERQUOTA") << QStringLiteral("Not enough disk space") << true;
        QTest::newRow("ENOSPC spool") << ENOSPC << true << QStringLiteral("452 4.3.1 Insufficient system storage")
                                      << QByteArray("OVERQUOTA") << QStringLiteral("Not enough disk space") << true;
        QTest::newRow("EDQUOT") << EDQUOT << false << QStringLiteral("452 4.2.2 Mailbox full, try again later")
                                << QByteArray("OVERQUOTA") << QStringLiteral("Quota exceeded") << true;
        QTest::newRow("EDQUOT spool") << EDQUOT << true << QStringLiteral("452 4.3.1 Insufficient system storage")
                                      << QByteArray("OVERQUOTA") << QStringLiteral("Not enough disk space") << true;
        QTest::newRow("EFBIG") << EFBIG << false << QStringLiteral("552 5.3.4 Message too big for the mail store")
                               << QByteArray("LIMIT") << QStringLiteral("Message too big for the mail store") << false;
        for (int e : {EMLINK, EMFILE, ENFILE, ENAMETOOLONG})
            QTest::newRow(qPrintable(QStringLiteral("limit %1").arg(e)))
                << e << false << local << QByteArray("LIMIT") << QStringLiteral("Server limit reached, try again later")
                << true;
        for (int e : {EIO, EACCES, ENOENT, EROFS, EINVAL})
            QTest::newRow(qPrintable(QStringLiteral("local %1").arg(e)))
                << e << false << local << QByteArray("SERVERBUG") << QStringLiteral("Cannot store the message") << true;
    }
    void mapping() {
        QFETCH(int, err);
        QFETCH(bool, spool);
        QFETCH(QString, smtp);
        QFETCH(QByteArray, imapCode);
        QFETCH(QString, imapText);
        QFETCH(bool, temporary);
        const StoreError e = StoreError::fromErrno(err, QStringLiteral("detail"),
                                                   spool ? StoreError::Area::Spool : StoreError::Area::Mailbox);
        QCOMPARE(e.smtpReply(), smtp);
        QCOMPARE(QStringLiteral("%1 %2 %3").arg(e.smtpCode()).arg(e.enhancedCode(), e.text()), smtp);
        QCOMPARE(e.imapCode(), imapCode);
        QCOMPARE(e.imapText(), imapText);
        QCOMPARE(e.temporary(), temporary);
        QCOMPARE(e.err, err);
        QCOMPARE(e.detail, QStringLiteral("detail"));
        // The class of the reply code and of the enhanced code agree (RFC 3463 2).
        QCOMPARE(QString::number(e.smtpCode()).left(1), e.enhancedCode().left(1));
        QCOMPARE(e.smtpCode() < 500, temporary);
    }

    void quotaMapping() {
        const StoreError full = StoreError::overQuota(QStringLiteral("d"), false);
        QCOMPARE(full.smtpReply(), QStringLiteral("452 4.2.2 Mailbox full, try again later"));
        QCOMPARE(full.imapCode(), QByteArray("OVERQUOTA"));
        QCOMPARE(full.imapText(), QStringLiteral("Quota exceeded"));
        QVERIFY(full.temporary());
        const StoreError alone = StoreError::overQuota(QStringLiteral("d"), true);
        QCOMPARE(alone.smtpReply(),
                 QStringLiteral("552 5.2.2 Message is larger than the recipient's whole mailbox quota"));
        QCOMPARE(alone.imapCode(), QByteArray("OVERQUOTA"));
        QCOMPARE(alone.imapText(), QStringLiteral("Message is larger than the whole mailbox quota"));
        QVERIFY(!alone.temporary());
        QCOMPARE(toString(alone.kind), QStringLiteral("message-over-quota"));
    }

    // Bytes from memory, then a range of a file (the delivery of a message whose header
    // was rewritten: new header + the body range of the spool file).
    void contentFromMemoryAndFileRange() {
        QTemporaryDir dir;
        QTemporaryFile spool;
        QVERIFY(spool.open());
        const QByteArray stored = "Received: x\r\nAuthentication-Results: forged\r\n\r\nbody line\r\n";
        spool.write(stored);
        spool.flush();
        const qint64 bodyOffset = stored.indexOf("\r\n\r\n") + 4;
        Content c{"Delivered-To: a\r\nReceived: x\r\n\r\n", int(spool.handle()), bodyOffset,
                  stored.size() - bodyOffset};
        QCOMPARE(c.size(), qint64(32 + 11));
        Delivery d(dir.path());
        QVERIFY(d.add(kUser, c).ok());
        QVERIFY(d.commit().ok());
        const QString newDir = maildirRoot(dir.path(), kUser) + QStringLiteral("/new");
        QCOMPARE(files(newDir).size(), 1);
        QCOMPARE(slurp(newDir + QLatin1Char('/') + files(newDir).first()),
                 QByteArray("Delivered-To: a\r\nReceived: x\r\n\r\nbody line\r\n"));
        QCOMPARE(parseFileName(files(newDir).first()).size, c.size());
        // The spool file's own offset was not used or moved.
        QCOMPARE(spool.pos(), qint64(stored.size()));
    }

    // IMAP APPEND: straight into cur/ with the flags, the internal date as mtime.
    void placementIntoCur() {
        QTemporaryDir dir;
        const QString root = dir.filePath(QStringLiteral("Maildir"));
        QVERIFY(ensureMaildir(root).ok());
        QVERIFY(MaildirQuota::recalculate(root, 1 << 20).ok());
        Placement p;
        p.root = root;
        p.dir = root;
        p.cur = true;
        p.flags = QStringLiteral("S");
        p.mtime = 1700000123;
        p.quotaBytes = 1 << 20;
        Delivery d;
        QVERIFY(d.add(p, Content{"Subject: a\r\n\r\nx\r\n", -1, 0, 0}).ok());
        QVERIFY(files(root + QStringLiteral("/cur")).isEmpty());
        QCOMPARE(files(root + QStringLiteral("/tmp")).size(), 1);
        QVERIFY(d.commit().ok());
        const QStringList cur = files(root + QStringLiteral("/cur"));
        QCOMPARE(cur.size(), 1);
        QCOMPARE(cur.first(), withFlags(d.copies().first().name, QStringLiteral("S")));
        QCOMPARE(QFileInfo(root + QStringLiteral("/cur/") + cur.first()).lastModified().toSecsSinceEpoch(),
                 qint64(1700000123));
        QVERIFY(files(root + QStringLiteral("/tmp")).isEmpty());
        QVERIFY(files(root + QStringLiteral("/new")).isEmpty());
        QCOMPARE(MaildirQuota::usage(root, 1 << 20)->first, qint64(17));  // the quota line was added
    }

    // The source is shorter than the copy says (a truncated spool file): nothing is stored.
    void shortSourceFails() {
        QTemporaryDir dir;
        QTemporaryFile spool;
        QVERIFY(spool.open());
        spool.write("only ten b");
        spool.flush();
        Delivery d(dir.path());
        const StoreStatus st = d.add(kUser, Content{"X: y\r\n", int(spool.handle()), 0, 11});
        QVERIFY(!st);
        QCOMPARE(st.error().err, EIO);
        QCOMPARE(st.error().smtpReply(), QStringLiteral("451 4.3.0 Local error in processing, try again later"));
        QVERIFY(files(maildirRoot(dir.path(), kUser) + QStringLiteral("/tmp")).isEmpty());
    }

    // A rename fails at commit (the second user's new/ is gone): the first copy, already
    // visible, is taken back, so a retry by the client does not duplicate it.
    void commitFailureTakesBackVisibleCopies() {
        QTemporaryDir dir;
        const QString bob = QStringLiteral("bob@example.org");
        Delivery d(dir.path());
        QVERIFY(d.add(kUser, Content{"a\r\n"}).ok());
        QVERIFY(d.add(bob, Content{"a\r\n"}).ok());
        const QString bobNew = maildirRoot(dir.path(), bob) + QStringLiteral("/new");
        QVERIFY(QDir(bobNew).removeRecursively());
        const StoreStatus st = d.commit();
        QVERIFY(!st);
        QCOMPARE(st.error().err, ENOENT);
        QCOMPARE(st.error().imapCode(), QByteArray("SERVERBUG"));
        for (const QString& u : {kUser, bob})
            for (const char* sub : {"/new", "/tmp"})
                QVERIFY(files(maildirRoot(dir.path(), u) + QLatin1String(sub)).isEmpty());
    }

    // A full file system: a 64 KiB tmpfs (in a private mount namespace, so nothing
    // outside this process sees it). Needs CAP_SYS_ADMIN; skipped elsewhere.
    void diskFull() {
        QTemporaryDir dir;
        const QString root = maildirRoot(dir.path(), kUser);
        QVERIFY(ensureMaildir(root).ok());
        if (::unshare(CLONE_NEWNS) != 0) QSKIP("no private mount namespace here (needs CAP_SYS_ADMIN)");
        QVERIFY(::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
        if (::mount("tmpfs", QFile::encodeName(root).constData(), "tmpfs", 0, "size=64k,mode=0700") != 0)
            QSKIP("cannot mount a tmpfs here");
        struct Unmount {
            QByteArray path;
            ~Unmount() { ::umount2(path.constData(), MNT_DETACH); }
        } unmount{QFile::encodeName(root)};
        QVERIFY(ensureMaildir(root).ok());  // the folders inside the new file system
        Delivery d(dir.path());
        const StoreStatus st = d.add(kUser, Content{QByteArray(256 * 1024, 'x')});
        QVERIFY(!st);
        QCOMPARE(st.error().err, ENOSPC);
        QCOMPARE(st.error().smtpReply(), QStringLiteral("452 4.3.1 Insufficient system storage"));
        QCOMPARE(st.error().imapCode() + ' ' + st.error().imapText().toUtf8(),
                 QByteArray("OVERQUOTA Not enough disk space"));
        QVERIFY(st.error().detail.contains(root));  // the path, for the log
        for (const char* sub : {"/new", "/tmp", "/cur"}) QVERIFY(files(root + QLatin1String(sub)).isEmpty());
        // A message that fits still goes in afterwards.
        Delivery small(dir.path());
        QVERIFY(small.add(kUser, Content{"x\r\n"}).ok());
        QVERIFY(small.commit().ok());
        QCOMPARE(files(root + QStringLiteral("/new")).size(), 1);
    }
};

QTEST_GUILESS_MAIN(TstStore)
#include "tst_store.moc"
