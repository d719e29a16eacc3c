// tst_imap_commands.cpp — IMAP command handlers against hostile input, in process:
// a real ImapSession over a recording SessionIo (no sockets), a fake backend
// that accepts one password, and a real Maildir in a temporary folder.
//
// Covers (issue 16): the SEARCH/SORT/THREAD nesting limit at its boundary and
// with 16,000 NOTs / a 16,000-long OR chain (BAD, the session goes on);
// COPY/MOVE all-or-nothing when storing a copy fails at the first message,
// in the middle, or for lack of space (a small tmpfs, when the test may
// mount one); huge sequence sets; section numbers nested too deep.
// Small commands are fed one byte at a time, big ones in pieces.
#include "imap_harness.h"

#include "common/store/maildir_delivery.h"
#include "common/store/maildir_names.h"
#include "core/paths.h"

#include <QCoreApplication>
#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QLocale>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QThreadPool>
#include <QtTest>

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <utime.h>
#include <cerrno>
#include <ctime>

using namespace postern;
using namespace postern::imap;
using postern::test::RecordingIo;

class TstImapCommands : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // ------------------------------------------------------------------ SEARCH depth

    void searchDepthBoundary_data() {
        QTest::addColumn<QByteArray>("command");
        QTest::addColumn<bool>("accepted");
        const int d = kMaxSearchDepth;
        QTest::newRow("NOT x limit") << "SEARCH " + nots(d) + "ALL" << true;
        QTest::newRow("NOT x limit+1") << "SEARCH " + nots(d + 1) + "ALL" << false;
        QTest::newRow("OR chain limit") << "SEARCH " + ors(d) + "ALL" << true;
        QTest::newRow("OR chain limit+1") << "SEARCH " + ors(d + 1) + "ALL" << false;
        QTest::newRow("OR first operand limit")
            << "SEARCH " + QByteArray("OR ").repeated(d) + "ALL" + QByteArray(" DELETED").repeated(d) << true;
        QTest::newRow("OR first operand limit+1")
            << "SEARCH " + QByteArray("OR ").repeated(d + 1) + "ALL" + QByteArray(" DELETED").repeated(d + 1) << false;
        QTest::newRow("parentheses count") << "SEARCH " + nots(d - 2) + "((ALL))" << true;
        QTest::newRow("parentheses count+1") << "SEARCH " + nots(d - 1) + "((ALL))" << false;
        QTest::newRow("keys after the deep one") << "SEARCH " + nots(d + 1) + "ALL SEEN" << false;
        QTest::newRow("SORT limit") << "SORT (DATE) UTF-8 " + nots(d) + "ALL" << true;
        QTest::newRow("SORT limit+1") << "SORT (DATE) UTF-8 " + nots(d + 1) + "ALL" << false;
        QTest::newRow("THREAD limit") << "THREAD REFERENCES UTF-8 " + ors(d) + "ALL" << true;
        QTest::newRow("THREAD limit+1") << "THREAD ORDEREDSUBJECT UTF-8 " + ors(d + 1) + "ALL" << false;
        QTest::newRow("UID SEARCH limit+1") << "UID SEARCH CHARSET UTF-8 " + nots(d + 1) + "ALL" << false;
        // kMaxSearchKeys keys (lists, NOT and OR count too).
        const int k = kMaxSearchKeys;
        QTest::newRow("keys limit") << "SEARCH " + QByteArray("ALL ").repeated(k) << true;
        QTest::newRow("keys limit+1") << "SEARCH " + QByteArray("ALL ").repeated(k + 1) << false;
        QTest::newRow("keys in lists limit") << "SEARCH " + QByteArray("(ALL) ").repeated(k / 2) << true;
        QTest::newRow("keys in lists limit+1") << "SEARCH " + QByteArray("(ALL) ").repeated(k / 2) + "ALL" << false;
        QTest::newRow("SORT keys limit+1")
            << "SORT (SIZE) UTF-8 " + QByteArray("NOT DELETED ").repeated(k / 2) + "ALL" << false;
    }
    void searchDepthBoundary() {
        QFETCH(QByteArray, command);
        QFETCH(bool, accepted);
        Harness h;
        h.start();
        for (int i = 1; i <= 3; ++i)
            QVERIFY(!h.addMessage(QStringLiteral("INBOX"), "Subject: m\r\n\r\nbody\r\n", QString(), i).isEmpty());
        QVERIFY(h.run("SELECT INBOX").tagged.startsWith("OK"));
        const Reply r = h.run(command);
        if (accepted) {
            QVERIFY2(r.tagged.startsWith("OK"), r.tagged.constData());
            QCOMPARE(r.untagged.size(), 1);
            // Every program above is equivalent to ALL.
            QVERIFY2(r.untagged.first().endsWith(" 1 2 3") || r.untagged.first() == "* THREAD ((1)(2)(3))",
                     r.untagged.first().constData());
        } else {
            QVERIFY2(r.tagged.startsWith("BAD ") &&
                         (r.tagged.contains("nested too deeply") || r.tagged.contains("too many search keys")),
                     r.tagged.constData());
            QVERIFY(r.untagged.isEmpty());
        }
        QVERIFY(!h.io.closed);
        QCOMPARE(h.run("NOOP").tagged, QByteArray("OK NOOP completed"));
    }

    void deepProgramsGetBadAndTheSessionGoesOn_data() {
        QTest::addColumn<QByteArray>("command");
        QTest::addColumn<int>("chunk");
        const QByteArray deepNot = nots(16000) + "ALL";
        const QByteArray deepOr = QByteArray("OR ALL ").repeated(16000) + "ALL";
        const QByteArray leftOr = QByteArray("OR ").repeated(16000) + "ALL" + QByteArray(" ALL").repeated(16000);
        QTest::newRow("16000 NOTs, byte by byte") << "SEARCH " + deepNot << 1;
        QTest::newRow("16000 NOTs") << "SEARCH " + deepNot << 4096;
        QTest::newRow("16000 ORs (right)") << "SEARCH " + deepOr << 4093;
        QTest::newRow("16000 ORs (left)") << "SEARCH " + leftOr << 4093;
        QTest::newRow("ESEARCH") << "SEARCH RETURN (MIN MAX) " + deepOr << 4096;
        QTest::newRow("UID SEARCH") << "UID SEARCH " + deepNot << 4096;
        QTest::newRow("SORT") << "SORT (SUBJECT) UTF-8 " + deepNot << 4096;
        QTest::newRow("UID SORT") << "UID SORT (ARRIVAL) US-ASCII " + deepOr << 4096;
        QTest::newRow("THREAD") << "THREAD REFERENCES UTF-8 " + deepOr << 4096;
        QTest::newRow("UID THREAD") << "UID THREAD ORDEREDSUBJECT UTF-8 " + deepNot << 4096;
        QTest::newRow("NOT inside parentheses") << "SEARCH (((" + deepNot + ")))" << 4096;
    }
    void deepProgramsGetBadAndTheSessionGoesOn() {
        QFETCH(QByteArray, command);
        QFETCH(int, chunk);
        Harness h(1 << 20);  // one line holds the whole chain here
        h.start();
        QVERIFY(!h.addMessage(QStringLiteral("INBOX"), "Subject: m\r\n\r\nbody\r\n", QString(), 1).isEmpty());
        QVERIFY(h.run("SELECT INBOX").tagged.startsWith("OK"));
        const Reply r = h.run(command, chunk);
        QVERIFY2(r.tagged.startsWith("BAD ") && r.tagged.contains("nested too deeply"), r.tagged.left(200).constData());
        QVERIFY(!h.io.closed);
        QCOMPARE(h.run("SEARCH ALL").untagged, QList<QByteArray>{"* SEARCH 1"});
        QCOMPARE(h.run("NOOP").tagged, QByteArray("OK NOOP completed"));
    }

    // ------------------------------------------------------------------ sequence sets

    void hugeSequenceSets() {
        Harness h(1 << 20);
        h.start();
        for (int i = 1; i <= 5; ++i)
            QVERIFY(!h.addMessage(QStringLiteral("INBOX"), "Subject: m\r\n\r\nbody\r\n", QString(), i).isEmpty());
        QVERIFY(h.run("SELECT INBOX").tagged.startsWith("OK"));
        // 60,000 items (repeated, overlapping, out of order) and ranges spanning every UID.
        QByteArray many;
        for (int i = 0; i < 60000; ++i) many += QByteArray::number(5 - i % 5) + ',';
        many += "1:*";
        QCOMPARE(h.run("SEARCH " + many, 8192).untagged, QList<QByteArray>{"* SEARCH 1 2 3 4 5"});
        QCOMPARE(h.run("UID SEARCH UID 1:4294967295", 64).untagged.value(0).count(' '), 6);
        QCOMPARE(h.run("SEARCH UID " + QByteArray("1:4294967295,").repeated(5000) + "2", 8192).untagged,
                 QList<QByteArray>{"* SEARCH 1 2 3 4 5"});
        QCOMPARE(h.run("SEARCH " + QByteArray("4294967295:1 ").repeated(kMaxSearchKeys - 1) + "UID 2:3", 8192).untagged,
                 QList<QByteArray>{"* SEARCH 2 3"});
        // FETCH/STORE with such sets touch each message once.
        Reply r = h.run("FETCH " + many + " (UID)", 8192);
        QCOMPARE(r.untagged.size(), 5);
        r = h.run("UID STORE 1:4294967295," + QByteArray("3,").repeated(30000) + "2 +FLAGS.SILENT (\\Seen)", 8192);
        QVERIFY(r.tagged.startsWith("OK"));
        QCOMPARE(h.run("SEARCH SEEN").untagged, QList<QByteArray>{"* SEARCH 1 2 3 4 5"});
        // Malformed sets are still refused.
        QVERIFY(h.run("FETCH 1,,2 (UID)").tagged.startsWith("BAD"));
        QVERIFY(h.run("FETCH 0:3 (UID)").tagged.startsWith("BAD"));
        QVERIFY(h.run("FETCH 4294967296 (UID)").tagged.startsWith("BAD"));
        QVERIFY(h.run("FETCH 7 (UID)").tagged.startsWith("BAD"));
    }

    void sequenceRanges_data() {
        QTest::addColumn<QByteArray>("set");
        QTest::addColumn<bool>("uid");
        QTest::addColumn<QString>("expected");  // merged index intervals "a-b,c-d", or "error"
        // Messages below: UIDs 3 5 6 7 10 (indexes 0..4).
        QTest::newRow("all") << QByteArray("1:*") << false << QStringLiteral("0-4");
        QTest::newRow("reversed") << QByteArray("*:1") << false << QStringLiteral("0-4");
        QTest::newRow("clamped") << QByteArray("2:4294967295") << false << QStringLiteral("1-4");
        QTest::newRow("merged") << QByteArray("5,4,1,2") << false << QStringLiteral("0-1,3-4");
        QTest::newRow("beyond") << QByteArray("6") << false << QStringLiteral("error");
        QTest::newRow("zero") << QByteArray("0") << false << QStringLiteral("error");
        QTest::newRow("empty item") << QByteArray("1,") << false << QStringLiteral("error");
        QTest::newRow("uid all") << QByteArray("1:4294967295") << true << QStringLiteral("0-4");
        QTest::newRow("uid gaps") << QByteArray("4,8:9") << true << QStringLiteral("");
        QTest::newRow("uid some") << QByteArray("4:6,10") << true << QStringLiteral("1-2,4-4");
        QTest::newRow("uid star above") << QByteArray("11:*") << true << QStringLiteral("4-4");
        QTest::newRow("uid adjacent") << QByteArray("3,5,6:7") << true << QStringLiteral("0-3");
    }
    void sequenceRanges() {
        QFETCH(QByteArray, set);
        QFETCH(bool, uid);
        QFETCH(QString, expected);
        Harness h;
        h.start();
        for (int i = 1; i <= 10; ++i)
            QVERIFY(!h.addMessage(QStringLiteral("INBOX"), "Subject: m\r\n\r\nx\r\n", QString(), i).isEmpty());
        MailboxName inbox;
        inbox.name = QStringLiteral("INBOX");
        {
            auto view = MailboxView::open(h.root(), inbox, false);
            QVERIFY(view.ok());
            for (int i : {8, 7, 3, 1, 0}) QVERIFY(view->expunge(i).ok());  // keep UIDs 3 5 6 7 10
        }
        auto view = MailboxView::open(h.root(), inbox, false);
        QVERIFY(view.ok());
        QCOMPARE(view->messages().size(), 5);
        const auto ranges = resolveSequenceRanges(set, *view, uid);
        if (expected == u"error") {
            QVERIFY(!ranges);
            return;
        }
        QVERIFY(ranges);
        QStringList text;
        for (const auto& [a, b] : *ranges) text << QStringLiteral("%1-%2").arg(a).arg(b);
        QCOMPARE(text.join(QLatin1Char(',')), expected);
        const auto list = resolveSequenceSet(set, *view, uid);
        QVERIFY(list);
        for (int i = 0; i < 5; ++i) QCOMPARE(list->contains(i), inIndexRanges(*ranges, i));
    }

    // ------------------------------------------------------------------ COPY / MOVE

    void copyMoveAllOrNothing_data() {
        QTest::addColumn<QByteArray>("command");
        QTest::addColumn<QString>("sabotage");
        QTest::addColumn<QByteArray>("code");
        for (const char* cmd : {"MOVE", "COPY", "UID MOVE", "UID COPY"}) {
            const QByteArray c =
                QByteArray(cmd) + (QByteArray(cmd).startsWith("UID") ? " 1:* Archive" : " 1:5 Archive");
            // The target's tmp/ is a file: the first copy fails (works as root too).
            QTest::addRow("%s, target tmp/ is a file", cmd)
                << c << QStringLiteral("tmp-file") << QByteArray("SERVERBUG");
            // The third message cannot be linked nor read as a file: copies 1 and 2 exist by then.
            QTest::addRow("%s, fails after two copies", cmd)
                << c << QStringLiteral("third-is-directory") << QByteArray("SERVERBUG");
            // The target's cur/ is on another file system (a symlink): every link into tmp/
            // works, every rename into cur/ fails (EXDEV) after the copies are made.
            QTest::addRow("%s, renames into cur/ fail", cmd)
                << c << QStringLiteral("cur-elsewhere") << QByteArray("SERVERBUG");
        }
    }
    void copyMoveAllOrNothing() {
        QFETCH(QByteArray, command);
        QFETCH(QString, sabotage);
        QFETCH(QByteArray, code);
        Harness h;
        h.start();
        const QStringList flags{QStringLiteral("S"), QString(), QStringLiteral("FS"), QStringLiteral("R"),
                                QStringLiteral("T")};
        QStringList paths;
        for (int i = 1; i <= 5; ++i)
            paths << h.addMessage(QStringLiteral("INBOX"),
                                  "Subject: message " + QByteArray::number(i) + "\r\n\r\nbody\r\n", flags.at(i - 1), i);
        QVERIFY(h.run("SELECT INBOX").tagged.startsWith("OK"));
        const QStringList before = uidsAndFlags(h.run("FETCH 1:* (UID FLAGS)"));
        QCOMPARE(before.size(), 5);
        const QString target = h.folder(QStringLiteral("Archive"));
        const int targetLines = uidListLines(target);
        QTemporaryDir elsewhere(QStringLiteral("/dev/shm/tst_imap_commands-XXXXXX"));

        if (sabotage == u"tmp-file") {
            QVERIFY(QDir(target + QStringLiteral("/tmp")).removeRecursively());
            QFile f(target + QStringLiteral("/tmp"));
            QVERIFY(f.open(QIODevice::WriteOnly));
        } else if (sabotage == u"third-is-directory") {
            QVERIFY(QFile::remove(paths.at(2)));
            QVERIFY(QDir().mkdir(paths.at(2)));
        } else if (sabotage == u"cur-elsewhere") {
            struct stat here {
            }, there{};
            if (::stat(QFile::encodeName(target).constData(), &here) != 0 || ::stat("/dev/shm", &there) != 0 ||
                here.st_dev == there.st_dev)
                QSKIP("needs /dev/shm on another file system than the temporary folder");
            QVERIFY(elsewhere.isValid());
            QVERIFY(QDir(target + QStringLiteral("/cur")).removeRecursively());
            QVERIFY(QFile::link(elsewhere.path(), target + QStringLiteral("/cur")));
        }
        const Reply r = h.run(command);
        QVERIFY2(r.tagged.startsWith("NO [" + code + "]"), r.tagged.constData());
        QVERIFY(!h.io.closed);
        // Nothing was expunged by the command. (Replacing message 3's file by a folder made it
        // vanish, which the end of the command reports like any change by somebody else.)
        for (const QByteArray& l : r.untagged)
            QVERIFY2((!l.contains("EXPUNGE") || (sabotage == u"third-is-directory" && l == "* 3 EXPUNGE")) &&
                         !l.contains("COPYUID"),
                     l.constData());

        // The source keeps every message (same file, UID and flags); the target has none.
        if (sabotage == u"third-is-directory") {
            QVERIFY(QDir().rmdir(paths.at(2)));
            QFile f(paths.at(2));
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("Subject: message 3\r\n\r\nbody\r\n");
            f.close();
            struct utimbuf t {
                1700000003, 1700000003
            };
            QCOMPARE(::utime(QFile::encodeName(paths.at(2)).constData(), &t), 0);
        }
        for (const QString& p : paths) QVERIFY2(QFileInfo(p).isFile(), qPrintable(p));
        QStringList now = uidsAndFlags(h.run("FETCH 1:* (UID FLAGS)"));
        if (sabotage == u"third-is-directory") {
            // It is back: a new selection shows it again (\Recent was claimed by the first one).
            QVERIFY(h.run("SELECT INBOX").tagged.startsWith("OK"));
            now = uidsAndFlags(h.run("FETCH 1:* (UID FLAGS)"));
            QStringList expected = before;
            expected.replaceInStrings(QStringLiteral(" \\Recent"), QString())
                .replaceInStrings(QStringLiteral("\\Recent"), QString());
            QCOMPARE(now, expected);
        } else {
            QCOMPARE(now, before);
        }
        QCOMPARE(h.run("NOOP").untagged, QList<QByteArray>{});
        for (const char* sub : {"/cur", "/new", "/tmp"})
            if (QFileInfo(target + QLatin1String(sub)).isDir())
                QCOMPARE(filesIn(target + QLatin1String(sub)), QStringList());
        QCOMPARE(uidListLines(target), targetLines);

        // Repaired, the same command works and moves/copies all five.
        if (sabotage == u"tmp-file") {
            QVERIFY(QFile::remove(target + QStringLiteral("/tmp")));
            QVERIFY(QDir().mkdir(target + QStringLiteral("/tmp")));
        } else if (sabotage == u"cur-elsewhere") {
            QVERIFY(QFile::remove(target + QStringLiteral("/cur")));
            QVERIFY(QDir().mkdir(target + QStringLiteral("/cur")));
        }
        const Reply again = h.run(command);
        QVERIFY2(again.tagged.startsWith("OK"), again.tagged.constData());
        QCOMPARE(filesIn(target + QStringLiteral("/cur")).size(), 5);
        const bool move = command.contains("MOVE");
        QCOMPARE(filesIn(h.root() + QStringLiteral("/cur")).size(), move ? 0 : 5);
        const QByteArray copyuid = move ? again.untagged.value(0) : again.tagged;
        QVERIFY2(copyuid.contains("[COPYUID ") && copyuid.contains(" 1:5 "), copyuid.constData());
        QVERIFY(h.run("SELECT Archive").tagged.startsWith("OK"));
        QStringList flagsThere;
        for (const QString& uf : uidsAndFlags(h.run("FETCH 1:* (UID FLAGS)")))
            flagsThere << uf.section(QLatin1Char(':'), 1);
        QStringList flagsBefore;
        for (const QString& uf : before) flagsBefore << uf.section(QLatin1Char(':'), 1);
        QCOMPARE(flagsThere, flagsBefore);
    }

    void moveSkipsExpungedSourcesAndFindsRenamedOnes() {
        Harness h;
        h.start();
        QStringList paths;
        for (int i = 1; i <= 4; ++i)
            paths << h.addMessage(QStringLiteral("INBOX"), "Subject: m" + QByteArray::number(i) + "\r\n\r\nx\r\n",
                                  QString(), i);
        QVERIFY(h.run("SELECT INBOX").tagged.startsWith("OK"));
        // Another session expunged message 2 and flagged message 3 (a rename) meanwhile.
        QVERIFY(QFile::remove(paths.at(1)));
        QVERIFY(QFile::rename(paths.at(2), paths.at(2) + QStringLiteral("F")));
        const Reply r = h.run("MOVE 1:4 Trash");
        QVERIFY2(r.tagged == "OK MOVE completed", r.tagged.constData());
        // The other session's flag change is announced before the command runs (the expunge
        // waits: MOVE 1:4 means the four messages the client knows).
        QCOMPARE(r.untagged.value(0), QByteArray("* 3 FETCH (FLAGS (\\Flagged \\Recent) UID 3)"));
        QVERIFY2(r.untagged.value(1).startsWith("* OK [COPYUID ") && r.untagged.value(1).endsWith(" 1,3:4 1:3] Moved"),
                 r.untagged.value(1).constData());
        QCOMPARE(filesIn(h.root() + QStringLiteral("/cur")), QStringList());
        QCOMPARE(filesIn(h.folder(QStringLiteral("Trash")) + QStringLiteral("/cur")).size(), 3);
    }

    void copyAndMoveKeepTheQuotaCountRight() {
        Harness h;
        h.backend.quota = 10 << 20;
        h.start();
        for (int i = 1; i <= 3; ++i)
            QVERIFY(!h.addMessage(QStringLiteral("INBOX"), QByteArray(1000, 'x'), QString(), i).isEmpty());
        QVERIFY(store::MaildirQuota::recalculate(h.root(), h.backend.quota).ok());
        auto usage = [&] { return store::MaildirQuota::usage(h.root(), h.backend.quota).valueOr({-1, -1}); };
        QCOMPARE(usage(), (std::pair<qint64, qint64>(3000, 3)));
        QVERIFY(h.run("SELECT INBOX").tagged.startsWith("OK"));
        QVERIFY(h.run("COPY 1:2 Archive").tagged.startsWith("OK"));
        QCOMPARE(usage(), (std::pair<qint64, qint64>(5000, 5)));
        QVERIFY(h.run("MOVE 1:3 Trash").tagged.startsWith("OK"));
        QCOMPARE(usage(), (std::pair<qint64, qint64>(5000, 5)));
        QVERIFY(store::MaildirQuota::recalculate(h.root(), h.backend.quota).ok());
        QCOMPARE(usage(), (std::pair<qint64, qint64>(5000, 5)));
    }

    // A target on a small file system of its own: links fail with EXDEV, so copies are
    // real ones, and the third does not fit (ENOSPC). Needs a private mount namespace
    // (root, or CAP_SYS_ADMIN); skipped elsewhere.
    void moveFailsCleanlyWhenTheTargetIsFull() {
        Harness h;
        const QString target = h.folder(QStringLiteral("Archive"));
        QVERIFY(QDir().mkpath(target));
        if (::unshare(CLONE_NEWNS) != 0) QSKIP("no private mount namespace here (needs CAP_SYS_ADMIN)");
        QVERIFY(::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
        if (::mount("tmpfs", QFile::encodeName(target).constData(), "tmpfs", 0, "size=512k,mode=0700") != 0)
            QSKIP("cannot mount a tmpfs here");
        struct Unmount {
            QByteArray path;
            ~Unmount() { ::umount2(path.constData(), MNT_DETACH); }
        } unmount{QFile::encodeName(target)};
        h.start();
        QStringList paths;
        for (int i = 1; i <= 4; ++i)
            paths << h.addMessage(QStringLiteral("INBOX"), QByteArray(150 * 1024, char('a' + i)), QStringLiteral("S"),
                                  i);
        QVERIFY(h.run("SELECT INBOX").tagged.startsWith("OK"));
        const QStringList before = uidsAndFlags(h.run("FETCH 1:* (UID FLAGS)"));
        const int targetLines = uidListLines(target);
        const Reply r = h.run("MOVE 1:4 Archive");
        QVERIFY2(r.tagged.startsWith("NO [OVERQUOTA]"), r.tagged.constData());
        for (const QString& p : paths) QVERIFY(QFileInfo(p).isFile());
        QCOMPARE(uidsAndFlags(h.run("FETCH 1:* (UID FLAGS)")), before);
        for (const char* sub : {"/cur", "/new", "/tmp"}) QCOMPARE(filesIn(target + QLatin1String(sub)), QStringList());
        QCOMPARE(uidListLines(target), targetLines);
        // Two fit: those are moved (real copies, with their internal dates).
        const Reply ok = h.run("MOVE 1:2 Archive");
        QVERIFY2(ok.tagged.startsWith("OK"),
                 qPrintable(ok.tagged + ' ' +
                            QDir(target).entryList(QDir::AllEntries | QDir::Hidden).join(QLatin1Char(' '))));
        QCOMPARE(filesIn(target + QStringLiteral("/cur")).size(), 2);
        QCOMPARE(filesIn(h.root() + QStringLiteral("/cur")).size(), 2);
        for (const QString& name : filesIn(target + QStringLiteral("/cur"))) {
            const QFileInfo fi(target + QStringLiteral("/cur/") + name);
            QCOMPARE(fi.size(), 150 * 1024);
            QVERIFY(fi.lastModified().toSecsSinceEpoch() == 1700000001 ||
                    fi.lastModified().toSecsSinceEpoch() == 1700000002);
        }
    }
    // ------------------------------------------------------------------ LIST

    void listPatterns_data() {
        QTest::addColumn<QByteArray>("command");
        QTest::addColumn<QStringList>("expected");  // mailbox names listed, in order
        const QString longName = QStringLiteral("b") + QString(200, QLatin1Char('a'));
        QTest::newRow("inbox any case") << QByteArray("LIST \"\" inbox") << QStringList{QStringLiteral("INBOX")};
        QTest::newRow("inbox child any case")
            << QByteArray("LIST \"\" inbox/%") << QStringList{QStringLiteral("INBOX/Lists")};
        QTest::newRow("percent top") << QByteArray("LIST \"\" W%") << QStringList{QStringLiteral("Work")};
        QTest::newRow("star below") << QByteArray("LIST \"\" Work/*")
                                    << QStringList{QStringLiteral("Work/Entw\u00fcrfe"),
                                                   QStringLiteral("Work/Projects"),
                                                   QStringLiteral("Work/Projects/2026")};
        QTest::newRow("reference") << QByteArray("LIST Work/ %")
                                   << QStringList{QStringLiteral("Work/Entw\u00fcrfe"),
                                                  QStringLiteral("Work/Projects")};
        QTest::newRow("modified UTF-7") << QByteArray("LIST \"\" Work/Entw&APw-*")
                                        << QStringList{QStringLiteral("Work/Entw\u00fcrfe")};
        QTest::newRow("modified UTF-7 percent")
            << QByteArray("LIST \"\" %/Entw%rfe") << QStringList{QStringLiteral("Work/Entw\u00fcrfe")};
        QString bad;
        for (int i = 0; i < 500; ++i) bad += QStringLiteral("*a");
        QTest::newRow("1000 chars, no b") << ("LIST \"\" \"" + bad.toLatin1() + "*b\"") << QStringList{};
        QTest::newRow("120 chars") << ("LIST \"\" \"" + bad.left(120).toLatin1() + "\"") << QStringList{longName};
        QTest::newRow("percent chain") << ("LIST \"\" \"b" + QByteArray("%a").repeated(100) + "%\"")
                                       << QStringList{longName};
        QTest::newRow("several patterns")
            << QByteArray("LIST \"\" (Trash \"W*s\" inbox)")
            << QStringList{QStringLiteral("Trash"), QStringLiteral("Work/Projects"), QStringLiteral("INBOX")};
        QTest::newRow("subscribed") << QByteArray("LIST (SUBSCRIBED) \"\" \"W*\"")
                                    << QStringList{QStringLiteral("Work/Projects")};
        QTest::newRow("lsub") << QByteArray("LSUB \"\" \"W%/P%\"") << QStringList{QStringLiteral("Work/Projects")};
    }
    void listPatterns() {
        QFETCH(QByteArray, command);
        QFETCH(QStringList, expected);
        Harness h;
        h.start();
        for (const char* name : {"INBOX/Lists", "Work/Projects/2026", "Work/Entw&APw-rfe"})
            QVERIFY(h.run(QByteArray("CREATE ") + name).tagged.startsWith("OK"));
        QVERIFY(h.run("CREATE b" + QByteArray(200, 'a')).tagged.startsWith("OK"));
        QVERIFY(h.run("SUBSCRIBE Work/Projects").tagged.startsWith("OK"));
        const Reply r = h.run(command, 7);
        QVERIFY2(r.tagged.startsWith("OK"), r.tagged.constData());
        QStringList names;
        static const QRegularExpression re(QStringLiteral("^\\* (?:LIST|LSUB) \\([^)]*\\) \"/\" \"?([^\"]*)\"?$"));
        for (const QByteArray& l : r.untagged) {
            const auto m = re.match(QString::fromLatin1(l));
            QVERIFY2(m.hasMatch(), l.constData());
            names << store::decodeMUtf7(m.captured(1)).valueOr(m.captured(1));
        }
        QCOMPARE(names, expected);
        if (command.startsWith("LIST (SUBSCRIBED)")) QVERIFY(r.untagged.first().contains("\\Subscribed"));
    }

    void listChildrenAndPatternLimit() {
        Harness h;
        h.start();
        QVERIFY(h.run("CREATE Work/Projects").tagged.startsWith("OK"));
        Reply r = h.run("LIST \"\" Work*");
        QCOMPARE(r.untagged, (QList<QByteArray>{"* LIST (\\HasChildren) \"/\" \"Work\"",
                                                "* LIST (\\HasNoChildren) \"/\" \"Work/Projects\""}));
        // kMaxListPatterns (64) patterns are fine; 65 get NO [LIMIT].
        const QByteArray many = "LIST \"\" (" + QByteArray("x ").repeated(63) + "Work)";
        r = h.run(many, 16);
        QVERIFY2(r.tagged.startsWith("OK"), r.tagged.constData());
        QCOMPARE(r.untagged.size(), 1);
        r = h.run("LIST \"\" (" + QByteArray("x ").repeated(64) + "Work)", 16);
        QVERIFY2(r.tagged.startsWith("NO [LIMIT]"), r.tagged.constData());
        QVERIFY(r.untagged.isEmpty());
        QCOMPARE(h.run("NOOP").tagged, QByteArray("OK NOOP completed"));
    }
    // ------------------------------------------------------------------ FETCH output

    // FETCH 1 (BODY.PEEK[] x 300) of a 100 KB message: the answer (30 MB) leaves in pieces
    // of about the high-water mark (1 MiB) plus one item, as the client reads; the old code
    // built the whole response of a message in memory first.
    void fetchManyItemsIsStreamed() {
        Harness h;
        h.start();
        QByteArray body;
        for (int i = 0; i < 1000; ++i) body += QByteArray::number(i).rightJustified(98, '.') + "\r\n";
        const QByteArray message = "Subject: big\r\n\r\n" + body;
        QVERIFY(!h.addMessage(QStringLiteral("INBOX"), message, QString(), 1).isEmpty());
        QVERIFY(h.run("SELECT INBOX").tagged.startsWith("OK"));
        h.io.paced = true;
        postern::test::feed(*h.session, h.buffer,
                            "f1 FETCH 1 (UID " + QByteArray("BODY.PEEK[] ").repeated(300) + "FLAGS)\r\n", 4096);
        QByteArray all;
        int pieces = 0;
        for (;;) {
            const QByteArray piece = h.io.take();
            QVERIFY2(piece.size() <= (1 << 20) + 2 * message.size(), qPrintable(QString::number(piece.size())));
            all += piece;
            ++pieces;
            if (all.endsWith("f1 OK FETCH completed\r\n")) break;
            QVERIFY2(pieces < 1000 && !piece.isEmpty(), "the FETCH did not resume");
            h.session->writable();
        }
        QVERIFY(pieces > 20);
        const QByteArray item = "BODY[] {" + QByteArray::number(message.size()) + "}\r\n" + message;
        QCOMPARE(all.count(item), 300);
        QVERIFY(all.startsWith("* 1 FETCH (UID 1 BODY[] {"));
        QVERIFY(all.endsWith(" FLAGS (\\Recent))\r\nf1 OK FETCH completed\r\n"));  // new to this IMAP4rev1 session
        h.io.paced = false;
        QCOMPARE(h.run("NOOP").tagged, QByteArray("OK NOOP completed"));
    }

    // Header items alone (BODY[HEADER], BODY[HEADER.FIELDS (...)], BODY[HEADER.FIELDS.NOT
    // (...)], RFC822.HEADER) read only the file's header block, in chunks (16 KiB, then
    // doubling); their answers must be those of a FETCH that reads the whole message, for
    // bare LFs, CRLF split across a chunk, blank lines at a chunk's end, headers larger than
    // a chunk, files without a blank line or empty.
    void fetchHeaderItemsFromTheHeaderBlock_data() {
        QTest::addColumn<QByteArray>("file");
        const QByteArray pad = "X-Pad: " + QByteArray(70, 'p') + "\r\n";  // 79 bytes
        QByteArray big = "Subject: big\r\n";
        while (big.size() < 40000) big += "X-Pad: folded\n  " + QByteArray(60, 'q') + "\n";
        QTest::newRow("CRLF") << QByteArray("Subject: a\r\nX-Pad: b\r\n\r\nbody\r\n");
        QTest::newRow("bare LF") << QByteArray("Subject: a\nX-Pad: b\n\nbody\nline\n");
        QTest::newRow("mixed") << QByteArray("Subject: a\r\nX-Pad: b\n\r\nbody\n");
        QTest::newRow("no body") << QByteArray("Subject: a\r\nX-Pad: b\r\n");
        QTest::newRow("no blank line, no newline") << QByteArray("Subject: a\nX-Pad: b");
        QTest::newRow("starts with a blank line") << QByteArray("\r\nSubject: not a header\r\n");
        QTest::newRow("empty") << QByteArray();
        QTest::newRow("header larger than a chunk")
            << big + "\n" + QByteArray("body line\n").repeated(10000) + "Subject: in the body\n";
        // The blank line ends exactly at the end of the first chunk (16384 bytes).
        QByteArray edge = "Subject: edge\r\n";
        while (edge.size() + pad.size() <= 16384 - 2 - 20) edge += pad;
        edge += "X-Fill: " + QByteArray(16384 - 2 - edge.size() - 10, 'f') + "\r\n";
        QTest::newRow("blank line ends the first chunk")
            << edge + "\r\n" + QByteArray("Subject: body\r\n").repeated(2000);
        QTest::newRow("blank line one after the chunk") << edge + "x\r\n\r\n" + QByteArray(30000, 'b');
        // CR as the chunk's last byte, its LF the next chunk's first.
        QByteArray split = "Subject: split\r\n";
        while (split.size() + pad.size() <= 16383 - 12) split += pad;
        split += "X-Cut: " + QByteArray(16383 - split.size() - 7, 'c') + "\r\n\r\n" + QByteArray(20000, 'z');
        QTest::newRow("CRLF across chunks") << split;
    }
    void fetchHeaderItemsFromTheHeaderBlock() {
        QFETCH(QByteArray, file);
        Harness h;
        h.start();
        QVERIFY(!h.addMessage(QStringLiteral("INBOX"), file, QStringLiteral("S"), 1).isEmpty());
        QVERIFY(h.run("SELECT INBOX").tagged.startsWith("OK"));
        // Reference: bare LFs to CRLF, byte by byte; the header block through the first blank line.
        QByteArray crlf;
        for (qsizetype i = 0; i < file.size(); ++i) {
            if (file.at(i) == '\n' && (i == 0 || file.at(i - 1) != '\r')) crlf += '\r';
            crlf += file.at(i);
        }
        qsizetype headerEnd = crlf.size();
        if (crlf.startsWith("\r\n"))
            headerEnd = 2;
        else if (const qsizetype blank = crlf.indexOf("\n\r\n"); blank >= 0)
            headerEnd = blank + 3;
        const QByteArray items =
            "BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS (Subject X-Pad)] BODY.PEEK[HEADER.FIELDS.NOT (X-Pad)] "
            "RFC822.HEADER BODY.PEEK[HEADER]<2.5>";
        const Reply headerOnly = h.run("FETCH 1 (" + items + ")", 4096);
        const Reply whole = h.run("FETCH 1 (" + items + " BODY.PEEK[])", 4096);
        QCOMPARE(headerOnly.tagged, QByteArray("OK FETCH completed"));
        QCOMPARE(whole.tagged, QByteArray("OK FETCH completed"));
        QCOMPARE(headerOnly.untagged.size(), 1);
        QCOMPARE(whole.untagged.size(), 1);
        const QByteArray header = crlf.left(headerEnd);
        const QByteArray expectedStart =
            "* 1 FETCH (BODY[HEADER] {" + QByteArray::number(header.size()) + "}\r\n" + header;
        QVERIFY2(headerOnly.untagged.first().startsWith(expectedStart),
                 headerOnly.untagged.first().left(200).constData());
        QVERIFY(headerOnly.untagged.first().endsWith(')'));
        const QByteArray wholeItem = " BODY[] {" + QByteArray::number(crlf.size()) + "}\r\n" + crlf + ')';
        QVERIFY2(whole.untagged.first().endsWith(wholeItem), whole.untagged.first().right(200).constData());
        // The header items are the same as when the whole message was read.
        QCOMPARE(headerOnly.untagged.first().chopped(1),
                 whole.untagged.first().left(whole.untagged.first().size() - wholeItem.size()));
        const Reply text = h.run("FETCH 1 (BODY.PEEK[TEXT] RFC822.TEXT)", 4096);
        const QByteArray body = crlf.mid(headerEnd);
        const QByteArray lit = '{' + QByteArray::number(body.size()) + "}\r\n" + body;
        // (RFC822.TEXT is no PEEK: the flags follow, \Seen already set.)
        QCOMPARE(text.untagged.value(0),
                 "* 1 FETCH (BODY[TEXT] " + lit + " RFC822.TEXT " + lit + " FLAGS (\\Seen \\Recent))");
    }

    // INTERNALDATE is the local time with its offset, the zone rules as the system has them:
    // the same text as QDateTime gives, across daylight-saving changes, for zones with
    // half-hour offsets, and before 1970; the date SEARCH BEFORE/ON/SINCE compare is its
    // date.
    void internalDateInLocalTime_data() {
        QTest::addColumn<QByteArray>("zone");
        QTest::newRow("UTC") << QByteArray("UTC0");
        QTest::newRow("Berlin") << QByteArray("Europe/Berlin");
        QTest::newRow("St Johns (-0330/-0230)") << QByteArray("America/St_Johns");
        QTest::newRow("Kolkata (+0530)") << QByteArray("Asia/Kolkata");
        QTest::newRow("Los Angeles") << QByteArray("America/Los_Angeles");
    }
    void internalDateInLocalTime() {
        QFETCH(QByteArray, zone);
        const QByteArray saved = qgetenv("TZ");
        const bool hadTz = qEnvironmentVariableIsSet("TZ");
        qputenv("TZ", zone);
        ::tzset();
        auto reference = [](qint64 msecs) {
            const QDateTime dt = QDateTime::fromMSecsSinceEpoch(msecs).toLocalTime();
            const int off = dt.offsetFromUtc() / 60;
            const QString z = QStringLiteral("%1%2%3")
                                  .arg(off < 0 ? QLatin1Char('-') : QLatin1Char('+'))
                                  .arg(std::abs(off) / 60, 2, 10, QLatin1Char('0'))
                                  .arg(std::abs(off) % 60, 2, 10, QLatin1Char('0'));
            return (QLocale::c().toString(dt, QStringLiteral("dd-MMM-yyyy HH:mm:ss ")) + z).toLatin1();
        };
        QList<qint64> times = {0,
                               -1,
                               -500,
                               -1000,
                               -1001,
                               999,
                               1000,
                               86399999,
                               -86400000LL * 365 * 20,
                               1700000000123LL,
                               4102444800000LL /* 2100 */};
        // Every 17 hours and a bit through 2026 (both daylight-saving changes), and each
        // second around the European and American spring changes.
        for (qint64 t = 1767225600000LL; t < 1798761600000LL; t += 61237000) times << t;
        for (qint64 t = 1774746000000LL - 5000; t < 1774746000000LL + 5000; t += 1000) times << t;
        for (qint64 t = 1773482400000LL - 5000; t < 1773482400000LL + 5000; t += 1000) times << t;
        for (qint64 t : times) {
            QCOMPARE(imapDateTime(t), reference(t));
            QCOMPARE(imapLocalDate(t), QDateTime::fromMSecsSinceEpoch(t).toLocalTime().date());  // (SEARCH SINCE)
        }
        if (hadTz)
            qputenv("TZ", saved);
        else
            qunsetenv("TZ");
        ::tzset();
    }

    // RFC 3516 4.3: an unknown transfer encoding fails the command before that message's
    // response starts (a response is never left half sent).
    void fetchUnknownCteFailsCleanly() {
        Harness h;
        h.start();
        QVERIFY(!h.addMessage(QStringLiteral("INBOX"), "Subject: a\r\n\r\nfine\r\n", QString(), 1).isEmpty());
        QVERIFY(!h.addMessage(QStringLiteral("INBOX"), "Subject: b\r\nContent-Transfer-Encoding: x-odd\r\n\r\nodd\r\n",
                              QString(), 2)
                     .isEmpty());
        QVERIFY(h.run("SELECT INBOX").tagged.startsWith("OK"));
        const Reply r = h.run("FETCH 1:2 (UID BINARY.PEEK[1])");
        QVERIFY2(r.tagged.startsWith("NO [UNKNOWN-CTE]"), r.tagged.constData());
        QCOMPARE(r.untagged.size(), 1);
        QVERIFY(r.untagged.first().startsWith("* 1 FETCH (UID 1 BINARY[1] {6}"));
    }
    // UID EXPUNGE with a set: only \\Deleted messages of the set go (the set is searched,
    // not scanned per message).
    void uidExpungeWithASet() {
        Harness h;
        h.start();
        for (int i = 1; i <= 8; ++i)
            QVERIFY(!h.addMessage(QStringLiteral("INBOX"), "Subject: m\r\n\r\nx\r\n",
                                  i % 2 ? QStringLiteral("T") : QString(), i)
                         .isEmpty());
        QVERIFY(h.run("SELECT INBOX").tagged.startsWith("OK"));
        Reply r = h.run("UID EXPUNGE 2:5," + QByteArray("7,").repeated(20000) + "4294967295", 4096);
        QVERIFY2(r.tagged.startsWith("OK"), r.tagged.constData());
        QCOMPARE(r.untagged, (QList<QByteArray>{"* 7 EXPUNGE", "* 5 EXPUNGE", "* 3 EXPUNGE"}));
        r = h.run("UID FETCH 1:* (FLAGS)");
        // (every message is new to this IMAP4rev1 session: \Recent)
        QCOMPARE(uidsAndFlags(r), (QStringList{QStringLiteral("1:\\Deleted \\Recent"), QStringLiteral("2:\\Recent"),
                                               QStringLiteral("4:\\Recent"), QStringLiteral("6:\\Recent"),
                                               QStringLiteral("8:\\Recent")}));
    }
    // COPYUID pairs each source UID with its copy's UID (RFC 4315 3), also when the target
    // numbers the copies in another order (by delivery time: here the reverse of the UIDs).
    void copyUidPairsSourcesWithCopies() {
        Harness h;
        h.start();
        QStringList paths;
        for (int i = 1; i <= 4; ++i)
            paths << h.addMessage(QStringLiteral("INBOX"),
                                  "Subject: message " + QByteArray::number(i) + "\r\n\r\nx\r\n", QString(), i);
        QVERIFY(h.run("SELECT INBOX").tagged.startsWith("OK"));
        for (int i = 0; i < 3; ++i) {  // messages 1..3 now look delivered in the order 3, 2, 1 (4 stays last)
            struct utimbuf t {
                1600000000 - i, 1600000000 - i
            };
            QCOMPARE(::utime(QFile::encodeName(paths.at(i)).constData(), &t), 0);
        }
        const Reply r = h.run("UID COPY 1:4 Junk");
        QVERIFY2(r.tagged.startsWith("OK [COPYUID "), r.tagged.constData());
        const QList<QByteArray> parts = r.tagged.split(' ');
        QCOMPARE(parts.value(3), QByteArray("1:4"));       // the sources, ascending
        QCOMPARE(parts.value(4), QByteArray("3,2,1,4]"));  // their copies, in the same order
        QVERIFY(h.run("SELECT Junk").tagged.startsWith("OK"));
        const Reply fetched = h.run("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
        QCOMPARE(fetched.untagged.size(), 4);
        for (const auto& [uid, subject] : {std::pair{3, 1}, std::pair{2, 2}, std::pair{1, 3}, std::pair{4, 4}}) {
            bool found = false;
            for (const QByteArray& l : fetched.untagged)
                found = found || (l.contains("UID " + QByteArray::number(uid) + ' ') &&
                                  l.contains("Subject: message " + QByteArray::number(subject)));
            QVERIFY2(found, qPrintable(QStringLiteral("UID %1 should hold message %2").arg(uid).arg(subject)));
        }
    }

    // APPEND stores through the one store operation and answers its failures with the
    // one mapping (common/store/store_error.h), byte for byte; nothing is left behind.
    void appendFailuresUseTheOneMapping() {
        Harness h;
        h.backend.quota = 1000;
        h.start();
        // Waits for the answer of an APPEND (it is stored on the thread pool).
        auto append = [&](const QByteArray& message) -> QByteArray {
            const QByteArray tag = "a" + QByteArray::number(++h.tags);
            postern::test::feed(
                *h.session, h.buffer,
                tag + " APPEND INBOX (\\Seen) {" + QByteArray::number(message.size()) + "+}\r\n" + message + "\r\n",
                4096);
            QByteArray out;
            QDeadlineTimer deadline(10000);
            while (!(out.contains("\r\n" + tag + ' ') || out.startsWith(tag + ' ')) && !deadline.hasExpired()) {
                QCoreApplication::processEvents(QEventLoop::AllEvents, 50);
                out += h.io.take();
            }
            const qsizetype at = out.startsWith(tag + ' ') ? 0 : out.indexOf("\r\n" + tag + ' ') + 2;
            if (at < 2 && !out.startsWith(tag + ' ')) return "no answer: " + out.left(200);
            return out.mid(at + tag.size() + 1, out.indexOf("\r\n", at) - at - tag.size() - 1);
        };
        QVERIFY(append(QByteArray(600, 'a')).startsWith("OK [APPENDUID "));
        QCOMPARE(append(QByteArray(600, 'b')), QByteArray("NO [OVERQUOTA] Quota exceeded"));
        QCOMPARE(append(QByteArray(1001, 'c')),
                 QByteArray("NO [OVERQUOTA] Message is larger than the whole mailbox quota"));
        QCOMPARE(filesIn(h.root() + QStringLiteral("/tmp")), QStringList());
        QCOMPARE(filesIn(h.root() + QStringLiteral("/cur")).size(), 1);
        QVERIFY(!h.io.suspended);  // the session reads commands again

        // A full file system (a small tmpfs over INBOX, in a private mount namespace).
        h.backend.quota = 0;
        if (::unshare(CLONE_NEWNS) != 0) QSKIP("no private mount namespace here (needs CAP_SYS_ADMIN)");
        QVERIFY(::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
        const QString tmp = h.root() + QStringLiteral("/tmp");
        if (::mount("tmpfs", QFile::encodeName(tmp).constData(), "tmpfs", 0, "size=64k,mode=0700") != 0)
            QSKIP("cannot mount a tmpfs here");
        struct Unmount {
            QByteArray path;
            ~Unmount() { ::umount2(path.constData(), MNT_DETACH); }
        } unmount{QFile::encodeName(tmp)};
        // Mount namespaces are per thread: the pool's threads are made again from this one.
        QThreadPool::globalInstance()->waitForDone();
        QCOMPARE(append(QByteArray(200 * 1024, 'd')), QByteArray("NO [OVERQUOTA] Not enough disk space"));
        QCOMPARE(filesIn(tmp), QStringList());
        QCOMPARE(filesIn(h.root() + QStringLiteral("/cur")).size(), 1);
    }
};

QTEST_GUILESS_MAIN(TstImapCommands)
#include "tst_imap_commands.moc"
