// tst_imap_kept_listing — the folder listing kept next to the index
// (imap_kept_listing.h): byte-exact round trip, the 2-second rule at its
// boundary (times given, no sleeping), the 100 ms window where file times are this
// kernel's own, every stamp that must match, truncated, corrupt and other-version
// files refused; MailboxView taking a kept listing instead of listing the folder
// only when it is still true; and a listing of a just-changed folder kept from the
// process's snapshot once quiet, only when its watch saw no change meanwhile (also
// one that leaves the mtime as it was: a change in the same clock tick).
#include "imapd/imap_index.h"
#include "imapd/imap_kept_listing.h"
#include "imapd/imap_mailbox.h"

#include "common/store/maildir_delivery.h"

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <cstring>

using namespace postern;
using namespace postern::imap;

namespace {

constexpr qint64 kSecond = 1'000'000'000;

Message message(quint32 uid, const QString& base, const QString& fileName, const QString& flags, bool inNew) {
    Message m;
    m.uid = uid;
    m.base = base;
    m.fileName = fileName;
    m.flags = flags;
    m.inNew = inNew;
    m.size = 100 + uid;
    m.vsize = 110 + uid;
    m.mtimeMs = 1700000000000 + uid;
    m.modseq = 5000 + uid;
    return m;
}

KeptListing sample() {
    KeptListing k;
    k.stamps.curMtimeNs = 1700000000 * kSecond + 123;
    k.stamps.newMtimeNs = 1700000001 * kSecond + 456;
    k.stamps.takenAtNs = 1700000100 * kSecond;
    k.stamps.uidList = {dev_t(2049), ino_t(77), off_t(4096), 1700000050 * kSecond + 9, true};
    k.stamps.hms = 1234567;
    k.uidValidity = 1699999999;
    k.nextUid = 12;
    k.guid = QStringLiteral("0123456789abcdef0123456789abcdef");
    k.messages << message(1, QStringLiteral("1.M1P1.host,S=101"), QStringLiteral("1.M1P1.host,S=101:2,S"),
                          QStringLiteral("S"), false)
               << message(3, QStringLiteral("3.M2P1.h\u00f4st"), QStringLiteral("3.M2P1.h\u00f4st"), QString(), true)
               << message(7, QStringLiteral("7.M3P1.host"), QStringLiteral("other-name:2,FSab"), QStringLiteral("FSab"),
                          false)
               << message(11, QStringLiteral("11.M4P1.host"), QStringLiteral("11.M4P1.host:2,"), QString(), false);
    return k;
}

// Every field of the messages of two lists (QCOMPARE returns from this function only).
void compareMessages(const QList<Message>& a, const QList<Message>& b) {
    QCOMPARE(a.size(), b.size());
    for (qsizetype i = 0; i < a.size(); ++i) {
        const Message &x = a.at(i), &y = b.at(i);
        QCOMPARE(x.uid, y.uid);
        QCOMPARE(x.base, y.base);
        QCOMPARE(x.fileName, y.fileName);
        QCOMPARE(x.flags, y.flags);
        QCOMPARE(x.inNew, y.inNew);
        QCOMPARE(x.size, y.size);
        QCOMPARE(x.vsize, y.vsize);
        QCOMPARE(x.mtimeMs, y.mtimeMs);
        QCOMPARE(x.modseq, y.modseq);
        QCOMPARE(x.expunged, y.expunged);
    }
}

void compareListings(const KeptListing& a, const KeptListing& b) {
    QVERIFY(a.stamps == b.stamps);
    QCOMPARE(a.uidValidity, b.uidValidity);
    QCOMPARE(a.nextUid, b.nextUid);
    QCOMPARE(a.guid, b.guid);
    compareMessages(a.messages, b.messages);
}

// The stamps of `k` as the directories and uidlist would show them now.
DirStamps dirsOf(const KeptListing& k) {
    DirStamps d;
    d.ok = true;
    d.curMtimeNs = k.stamps.curMtimeNs;
    d.newMtimeNs = k.stamps.newMtimeNs;
    d.atNs = k.stamps.takenAtNs + 3600 * kSecond;
    return d;
}

void setMtime(const QString& path, qint64 ns) {
    timespec t[2];
    t[0].tv_sec = t[1].tv_sec = ns / kSecond;
    t[0].tv_nsec = t[1].tv_nsec = ns % kSecond;
    QCOMPARE(::utimensat(AT_FDCWD, QFile::encodeName(path).constData(), t, 0), 0);
}

void writeMessage(const QString& path, const QByteArray& subject) {
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("Subject: " + subject + "\r\nFrom: a@example.test\r\n\r\nbody\r\n");
}

// The directories of `dir` an hour old: a listing now may be kept.
void quieten(const QString& dir) {
    const qint64 old = (QDateTime::currentSecsSinceEpoch() - 3600) * kSecond;
    setMtime(dir + QStringLiteral("/cur"), old);
    setMtime(dir + QStringLiteral("/new"), old);
}

qint64 nowNs() {
    return QDateTime::currentMSecsSinceEpoch() * 1'000'000;
}

// A Maildir with three messages in cur/ whose directories changed at `at` (ns).
void folderChangedAt(const QString& dir, qint64 at) {
    QVERIFY(store::ensureMaildir(dir).ok());
    for (int i = 1; i <= 3; ++i)
        writeMessage(dir + QStringLiteral("/cur/170000000%1.M%1P1.host:2,").arg(i), QByteArray::number(i));
    setMtime(dir + QStringLiteral("/cur"), at);
    setMtime(dir + QStringLiteral("/new"), at);
}

// The file systems DirStamps gives the 100 ms window (with sub-second times).
bool fineFileSystem(const QString& path) {
    struct statfs fs {};
    if (::statfs(QFile::encodeName(path).constData(), &fs) != 0) return false;
    for (const unsigned long t :
         std::initializer_list<unsigned long>{EXT4_SUPER_MAGIC, XFS_SUPER_MAGIC, BTRFS_SUPER_MAGIC, TMPFS_MAGIC,
                                              F2FS_SUPER_MAGIC, OVERLAYFS_SUPER_MAGIC})
        if (static_cast<unsigned long>(fs.f_type) == t) return true;
    return false;
}

MailboxName inbox() {
    MailboxName m;
    m.name = QStringLiteral("INBOX");
    return m;
}

}  // namespace

class TestImapKeptListing : public QObject {
    Q_OBJECT

private slots:
    void roundTrip() {
        const KeptListing k = sample();
        const QByteArray bytes = k.encode();
        auto back = KeptListing::decode(bytes);
        QVERIFY(back);
        compareListings(k, *back);
        QCOMPARE(back->encode(), bytes);  // byte for byte

        QTemporaryDir dir;
        QVERIFY(k.save(dir.path()).ok());
        auto loaded = KeptListing::load(dir.path());
        QVERIFY(loaded);
        compareListings(k, *loaded);
        auto stamps = KeptListing::loadStamps(dir.path());
        QVERIFY(stamps);
        QVERIFY(*stamps == k.stamps);
        KeptListing::remove(dir.path());
        QVERIFY(!KeptListing::load(dir.path()));
        QVERIFY(!KeptListing::loadStamps(dir.path()));

        KeptListing empty = sample();
        empty.messages.clear();
        auto e = KeptListing::decode(empty.encode());
        QVERIFY(e);
        QVERIFY(e->messages.isEmpty());
    }

    // Each row's strings are stored as QString::toUtf8() gives them (1- to 4-byte
    // sequences), right after the row: base, then the file name's tail (or the whole
    // name), then the flags.
    void rowStringsAreTheirUtf8() {
        KeptListing k = sample();
        k.messages << message(12, QStringLiteral("12.M5P1.\u00e9t\u00e9\U0001F600\u20AC"),
                              QStringLiteral("12.M5P1.\u00e9t\u00e9\U0001F600\u20AC:2,S"), QStringLiteral("S"), false)
                   << message(13, QStringLiteral("13.\U0001F4E7"), QStringLiteral("\u00fcber:2,"), QString(), false);
        k.nextUid = 14;
        const QByteArray bytes = k.encode();
        for (const Message& m : k.messages) {
            const bool tailOnly = m.fileName.startsWith(m.base);
            const QByteArray tail = tailOnly ? m.fileName.mid(m.base.size()).toUtf8() : m.fileName.toUtf8();
            QVERIFY2(bytes.contains(m.base.toUtf8() + tail + m.flags.toUtf8()), qPrintable(m.fileName));
        }
        QVERIFY(bytes.contains("12.M5P1.\xc3\xa9t\xc3\xa9\xf0\x9f\x98\x80\xe2\x82\xac:2,SS"));
        auto back = KeptListing::decode(bytes);
        QVERIFY(back);
        compareListings(k, *back);
    }

    // Quiet means: both mtimes MORE than 2 s older than the moment they were read.
    void quietAtTheBoundary_data() {
        QTest::addColumn<qint64>("curAge");
        QTest::addColumn<qint64>("newAge");
        QTest::addColumn<bool>("quiet");
        QTest::newRow("both 2 s + 1 ns") << 2 * kSecond + 1 << 2 * kSecond + 1 << true;
        QTest::newRow("cur exactly 2 s") << 2 * kSecond << 3 * kSecond << false;
        QTest::newRow("new exactly 2 s") << 3 * kSecond << 2 * kSecond << false;
        QTest::newRow("cur 2 s - 1 ns") << 2 * kSecond - 1 << 3 * kSecond << false;
        QTest::newRow("same moment") << qint64(0) << qint64(0) << false;
        QTest::newRow("mtime ahead of the clock") << -kSecond << 3 * kSecond << false;
        QTest::newRow("an hour") << 3600 * kSecond << 3600 * kSecond << true;
    }
    void quietAtTheBoundary() {
        QFETCH(qint64, curAge);
        QFETCH(qint64, newAge);
        QFETCH(bool, quiet);
        const qint64 at = 1700000000 * kSecond + 987654321;
        QCOMPARE(KeptListing::quiet(at - curAge, at - newAge, at), quiet);
        KeptListing k = sample();
        k.stamps.curMtimeNs = at - curAge;
        k.stamps.newMtimeNs = at - newAge;
        k.stamps.takenAtNs = at;
        QCOMPARE(k.trustworthy(dirsOf(k), k.stamps.uidList), quiet);
    }

    // Where the mtimes are the kernel's own to the nanosecond, the window is 100 ms.
    void fineWindowAtTheBoundary() {
        const qint64 at = 1700000000 * kSecond + 987654321;
        const qint64 w = KeptListing::kFineQuietNs;
        QVERIFY(KeptListing::quiet(at - w - 1, at - w - 1, at, w));
        QVERIFY(!KeptListing::quiet(at - w, at - w - 1, at, w));
        QVERIFY(!KeptListing::quiet(at - w - 1, at - w, at, w));
        QVERIFY(!KeptListing::quiet(at - w - 1, at - w - 1, at, KeptListing::kQuietNs));
        KeptListing k = sample();
        k.stamps.curMtimeNs = k.stamps.newMtimeNs = at - w - 1;
        k.stamps.takenAtNs = at;
        DirStamps d = dirsOf(k);
        QVERIFY(!k.trustworthy(d, k.stamps.uidList));  // the 2 s window: not quiet
        d.quietNs = w;
        QVERIFY(k.trustworthy(d, k.stamps.uidList));
        k.stamps.takenAtNs = at - 1;
        QVERIFY(!k.trustworthy(d, k.stamps.uidList));
    }

    // The window DirStamps reads off the folder: 2 s for whole-second times; 100 ms for
    // sub-second ones on a local file system that keeps them.
    void windowOfTheFolder() {
        QTemporaryDir root;
        const QString dir = root.path();
        QVERIFY(store::ensureMaildir(dir).ok());
        const qint64 then = (QDateTime::currentSecsSinceEpoch() - 60) * kSecond;
        setMtime(dir + QStringLiteral("/cur"), then);
        setMtime(dir + QStringLiteral("/new"), then + 250'000'000);
        QCOMPARE(DirStamps::of(dir).quietNs, KeptListing::kQuietNs);  // cur/: whole seconds
        setMtime(dir + QStringLiteral("/cur"), then + 1);
        const DirStamps d = DirStamps::of(dir);
        QVERIFY(d.ok);
        QCOMPARE(d.curMtimeNs, then + 1);
        QCOMPARE(d.quietNs, fineFileSystem(dir) ? KeptListing::kFineQuietNs : KeptListing::kQuietNs);
        QVERIFY(d.quiet());
    }

    // A selected view lists a folder that changed a moment ago: not kept at once (not
    // quiet), but from the snapshot once quiet, its watch having seen nothing; the
    // stamps say when. Putting a directory's mtime back is no change (no event).
    void snapshotKeptOnceQuiet() {
        QTemporaryDir root;
        const QString dir = root.path();
        const qint64 ahead = nowNs() + 300'000'000 + 123;  // (ahead of the clock: no race with a slow listing)
        folderChangedAt(dir, ahead);
        auto view = MailboxView::open(dir, inbox(), false, SelectOptions{});
        QVERIFY(view.ok());
        QCOMPARE(view->messages().size(), 3);
        QVERIFY(!QFile::exists(KeptListing::pathIn(dir)));
        setMtime(dir + QStringLiteral("/cur"), ahead);
        const qint64 window = DirStamps::of(dir).quietNs;
        QTRY_VERIFY_WITH_TIMEOUT(QFile::exists(KeptListing::pathIn(dir)), 30000);  // the snapshot's timer
        auto kept = KeptListing::load(dir);
        QVERIFY(kept);
        QCOMPARE(kept->stamps.curMtimeNs, ahead);
        QCOMPARE(kept->stamps.newMtimeNs, ahead);
        QVERIFY(kept->stamps.takenAtNs > ahead + window);
        QCOMPARE(kept->stamps.hms, view->highestModseq());
        QCOMPARE(kept->uidValidity, view->uidValidity());
        compareMessages(kept->messages, view->messages());
        QVERIFY(kept->trustworthy(DirStamps::of(dir), FileStamp::of(dir + QStringLiteral("/dovecot-uidlist"))));
    }

    // The same, but another process renames a file meanwhile and puts cur/'s mtime back
    // (what two changes in one clock tick look like): the watch saw it, nothing is kept,
    // and a view with no snapshot lists the folder and sees the change.
    void snapshotNotKeptAfterAChangeItsWatchSaw() {
        QTemporaryDir root;
        const QString dir = root.path();
        const qint64 ahead = nowNs() + 300'000'000 + 123;
        folderChangedAt(dir, ahead);
        auto view = MailboxView::open(dir, inbox(), false, SelectOptions{});
        QVERIFY(view.ok());
        const QString name = view->messages().at(1).fileName;
        QVERIFY(QFile::rename(dir + QStringLiteral("/cur/") + name,
                              dir + QStringLiteral("/cur/") + view->messages().at(1).base + QStringLiteral(":2,F")));
        setMtime(dir + QStringLiteral("/cur"), ahead);
        QTRY_VERIFY_WITH_TIMEOUT(DirStamps::of(dir).quiet(), 30000);
        MailboxView::keepDueSnapshots();
        QVERIFY(!QFile::exists(KeptListing::pathIn(dir)));
        const quint64 listed = MailboxView::listings();
        auto other = MailboxView::open(dir, inbox(), true);  // (no watch: takes no snapshot)
        QVERIFY(other.ok());
        QCOMPARE(MailboxView::listings(), listed + 1);
        QCOMPARE(other->messages().at(1).flags, QStringLiteral("F"));
    }

    void everyStampMustMatch() {
        const KeptListing k = sample();
        QVERIFY(k.trustworthy(dirsOf(k), k.stamps.uidList));
        DirStamps d = dirsOf(k);
        d.curMtimeNs += 1;  // one nanosecond
        QVERIFY(!k.trustworthy(d, k.stamps.uidList));
        d = dirsOf(k);
        d.newMtimeNs -= 1;
        QVERIFY(!k.trustworthy(d, k.stamps.uidList));
        d = dirsOf(k);
        d.ok = false;
        QVERIFY(!k.trustworthy(d, k.stamps.uidList));
        FileStamp u = k.stamps.uidList;
        u.size += 1;  // a line appended
        QVERIFY(!k.trustworthy(dirsOf(k), u));
        u = k.stamps.uidList;
        u.inode += 1;  // rewritten
        QVERIFY(!k.trustworthy(dirsOf(k), u));
        u = k.stamps.uidList;
        u.mtimeNs += 1;
        QVERIFY(!k.trustworthy(dirsOf(k), u));
        QVERIFY(!k.trustworthy(dirsOf(k), FileStamp()));  // no uidlist
        KeptListing noIndex = k;
        noIndex.stamps.hms = 0;
        QVERIFY(!noIndex.trustworthy(dirsOf(noIndex), noIndex.stamps.uidList));
    }

    void truncatedOrCorruptIsRefused() {
        const QByteArray bytes = sample().encode();
        for (qsizetype n = 0; n < bytes.size(); ++n)
            QVERIFY2(!KeptListing::decode(bytes.first(n)), qPrintable(QStringLiteral("truncated to %1").arg(n)));
        QVERIFY(!KeptListing::decode(bytes + '\0'));
        for (qsizetype i = 0; i < bytes.size(); ++i) {
            QByteArray bad = bytes;
            bad[i] = char(bad.at(i) ^ 0x10);
            QVERIFY2(!KeptListing::decode(bad), qPrintable(QStringLiteral("byte %1 changed").arg(i)));
        }
        // A truncated file on disk: its header alone says so too.
        QTemporaryDir dir;
        QFile f(KeptListing::pathIn(dir.path()));
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(bytes.first(bytes.size() - 9));
        f.close();
        QVERIFY(!KeptListing::load(dir.path()));
        QVERIFY(!KeptListing::loadStamps(dir.path()));
    }

    // Well-formed files (checksum right) that must still be refused.
    void otherVersionOrNonsenseIsRefused() {
        KeptListing descending = sample();
        std::swap(descending.messages[0], descending.messages[1]);
        QVERIFY(!KeptListing::decode(descending.encode()));
        KeptListing repeated = sample();
        repeated.messages[1].uid = repeated.messages[0].uid;
        QVERIFY(!KeptListing::decode(repeated.encode()));
        KeptListing beyond = sample();
        beyond.messages.last().uid = beyond.nextUid;  // at or above the next UID
        QVERIFY(!KeptListing::decode(beyond.encode()));
        KeptListing noValidity = sample();
        noValidity.uidValidity = 0;
        QVERIFY(!KeptListing::decode(noValidity.encode()));
        KeptListing noBase = sample();
        noBase.messages[2].base.clear();
        QVERIFY(!KeptListing::decode(noBase.encode()));
        // A file name that is not one directory entry.
        for (const QString& name : {QStringLiteral("../../etc/passwd"), QStringLiteral("a/b:2,S"), QStringLiteral(".."),
                                    QString(QStringLiteral("x")) + QChar(0) + u'y'}) {
            KeptListing path = sample();
            path.messages[1].base = name;
            path.messages[1].fileName = name;
            QVERIFY2(!KeptListing::decode(path.encode()), qPrintable(name));
        }
        // Another format version (bytes 8..11; the header is checked before the checksum).
        QByteArray other = sample().encode();
        const quint32 v = KeptListing::kVersion + 1;
        std::memcpy(other.data() + 8, &v, sizeof v);
        QVERIFY(!KeptListing::decode(other));
    }

    // MailboxView: a view with no list of its own takes the kept listing, without listing
    // the folder, exactly when the listing would give the same.
    void viewTakesTheKeptListingOnlyWhenTrue() {
        QTemporaryDir root;
        const QString dir = root.path();
        QVERIFY(store::ensureMaildir(dir).ok());
        for (int i = 1; i <= 3; ++i)
            writeMessage(dir + QStringLiteral("/cur/170000000%1.M%1P1.host:2,%2").arg(i).arg(i == 2 ? "S" : ""),
                         QByteArray::number(i));
        quieten(dir);
        // The first view lists and keeps its listing.
        quint64 listed = MailboxView::listings();
        auto first = MailboxView::open(dir, inbox(), false);
        QVERIFY(first.ok());
        QCOMPARE(MailboxView::listings(), listed + 1);
        QVERIFY(QFile::exists(KeptListing::pathIn(dir)));
        QVERIFY(first->highestModseq() > 0);

        // A second view (as in a new process: no watch, no snapshot) takes it.
        auto second = MailboxView::open(dir, inbox(), false);
        QVERIFY(second.ok());
        QCOMPARE(MailboxView::listings(), listed + 1);
        QCOMPARE(second->messages().size(), 3);
        QCOMPARE(second->uidValidity(), first->uidValidity());
        QCOMPARE(second->uidNext(), first->uidNext());
        QCOMPARE(second->highestModseq(), first->highestModseq());
        compareMessages(first->messages(), second->messages());
        if (QTest::currentTestFailed()) return;

        // A delivery into new/ changes new/'s mtime: listed, and the kept listing goes
        // (the directory was not quiet, and the listing moved the file to cur/).
        writeMessage(dir + QStringLiteral("/new/1700000004.M4P1.host"), "4");
        auto third = MailboxView::open(dir, inbox(), false);
        QVERIFY(third.ok());
        QCOMPARE(MailboxView::listings(), listed + 2);
        QCOMPARE(third->messages().size(), 4);
        QVERIFY(!QFile::exists(KeptListing::pathIn(dir)));

        // Quiet again: the next listing is kept, the one after it is not needed.
        quieten(dir);
        QVERIFY(MailboxView::open(dir, inbox(), false).ok());
        QCOMPARE(MailboxView::listings(), listed + 3);
        QVERIFY(MailboxView::open(dir, inbox(), false).ok());
        QCOMPARE(MailboxView::listings(), listed + 3);

        // The index moved on (a flag change recorded elsewhere): listed.
        {
            auto idx = MailboxIndex::acquire(dir, third->uidValidity());
            QVERIFY(idx);
            QVERIFY(idx->recordFlags(third->messages().at(0).uid, QStringLiteral("F")).ok());
        }
        QVERIFY(MailboxView::open(dir, inbox(), false).ok());
        QCOMPARE(MailboxView::listings(), listed + 4);

        // A listing taken when cur/ had changed less than 2 s before must not be trusted,
        // even when the mtimes still match (a later change in the same clock tick leaves
        // the same mtime): the kept listing's stamps are rewritten to say so.
        auto kept = KeptListing::load(dir);  // that listing was kept (still quiet)
        QVERIFY(kept);
        const qint64 newest = std::max(kept->stamps.curMtimeNs, kept->stamps.newMtimeNs);
        kept->stamps.takenAtNs = newest + KeptListing::kQuietNs;  // exactly 2 s: not quiet
        QVERIFY(kept->save(dir).ok());
        QVERIFY(MailboxView::open(dir, inbox(), false).ok());
        QCOMPARE(MailboxView::listings(), listed + 5);
        kept = KeptListing::load(dir);  // the listing just made replaced it
        QVERIFY(kept);
        QVERIFY(kept->stamps.takenAtNs > newest + KeptListing::kQuietNs);
        kept->stamps.takenAtNs = newest + KeptListing::kQuietNs + 1;
        QVERIFY(kept->save(dir).ok());
        QVERIFY(MailboxView::open(dir, inbox(), false).ok());
        QCOMPARE(MailboxView::listings(), listed + 5);  // 2 s + 1 ns: trusted

        // A flag change by rename: cur/'s mtime moves.
        const QString from = dir + QStringLiteral("/cur/") + third->messages().at(2).fileName;
        QVERIFY(QFile::rename(from,
                              dir + QStringLiteral("/cur/") + third->messages().at(2).base + QStringLiteral(":2,FS")));
        auto renamed = MailboxView::open(dir, inbox(), false);
        QVERIFY(renamed.ok());
        QCOMPARE(MailboxView::listings(), listed + 6);
        QCOMPARE(renamed->messages().at(2).flags, QStringLiteral("FS"));

        // Corrupt or truncated on disk: listed.
        quieten(dir);
        QVERIFY(MailboxView::open(dir, inbox(), false).ok());
        QCOMPARE(MailboxView::listings(), listed + 7);
        QByteArray bytes = *readFile(KeptListing::pathIn(dir));
        bytes[bytes.size() / 2] = char(bytes.at(bytes.size() / 2) ^ 1);
        QVERIFY(writeFileAtomic(KeptListing::pathIn(dir), bytes, 0600).ok());
        QVERIFY(MailboxView::open(dir, inbox(), false).ok());
        QCOMPARE(MailboxView::listings(), listed + 8);
        QVERIFY(writeFileAtomic(KeptListing::pathIn(dir), bytes.first(bytes.size() / 2), 0600).ok());
        QVERIFY(MailboxView::open(dir, inbox(), false).ok());
        QCOMPARE(MailboxView::listings(), listed + 9);
        QVERIFY(MailboxView::open(dir, inbox(), false).ok());  // rewritten by that listing
        QCOMPARE(MailboxView::listings(), listed + 9);

        // An expunge (unlink) changes cur/'s mtime: listed, one message fewer.
        QVERIFY(QFile::remove(dir + QStringLiteral("/cur/") + renamed->messages().at(0).fileName));
        auto expunged = MailboxView::open(dir, inbox(), false);
        QVERIFY(expunged.ok());
        QCOMPARE(MailboxView::listings(), listed + 10);
        QCOMPARE(expunged->messages().size(), 3);
    }

    // A read-only view keeps messages in new/; a read-write view must move them, so it
    // does not take such a listing.
    void readWriteViewListsWhatIsInNew() {
        QTemporaryDir root;
        const QString dir = root.path();
        QVERIFY(store::ensureMaildir(dir).ok());
        writeMessage(dir + QStringLiteral("/new/1700000001.M1P1.host"), "1");
        quieten(dir);
        const quint64 listed = MailboxView::listings();
        QVERIFY(MailboxView::open(dir, inbox(), true).ok());
        QCOMPARE(MailboxView::listings(), listed + 1);
        auto ro = MailboxView::open(dir, inbox(), true);
        QVERIFY(ro.ok());
        QCOMPARE(MailboxView::listings(), listed + 1);
        QVERIFY(ro->messages().at(0).inNew);
        auto rw = MailboxView::open(dir, inbox(), false);
        QVERIFY(rw.ok());
        QCOMPARE(MailboxView::listings(), listed + 2);
        QVERIFY(!rw->messages().at(0).inNew);
        QVERIFY(QFile::exists(dir + QStringLiteral("/cur/") + rw->messages().at(0).fileName));
    }

    // A selected read-write view moves new/ to cur/ itself: those renames are not somebody
    // else's change, so the end of the command does not list the folder again; a delivery
    // after it still is one (reported from its events, MailboxView::applyWatchedChanges).
    void selectedViewsOwnMovesAreNoChange() {
        QTemporaryDir root;
        const QString dir = root.path();
        QVERIFY(store::ensureMaildir(dir).ok());
        for (int i = 1; i <= 3; ++i)
            writeMessage(dir + QStringLiteral("/new/170000000%1.M%1P1.host").arg(i), QByteArray::number(i));
        writeMessage(dir + QStringLiteral("/cur/1700000009.M9P1.host:2,S"), "9");
        const quint64 listed = MailboxView::listings();
        auto view = MailboxView::open(dir, inbox(), false, SelectOptions{});
        QVERIFY(view.ok());
        QCOMPARE(MailboxView::listings(), listed + 1);
        QCOMPARE(view->messages().size(), 4);
        for (const Message& m : view->messages()) QVERIFY(!m.inNew);
        QVERIFY(QDir(dir + QStringLiteral("/new")).isEmpty());
        auto end = view->refresh();  // the end of the SELECT
        QVERIFY(end.ok());
        QCOMPARE(MailboxView::listings(), listed + 1);
        QCOMPARE(end->exists, -1);
        writeMessage(dir + QStringLiteral("/new/1700000010.M10P1.host"), "10");
        auto next = view->refresh();
        QVERIFY(next.ok());
        QCOMPARE(MailboxView::listings(), listed + 1);
        QCOMPARE(next->exists, 5);
        QCOMPARE(view->messages().size(), 5);
        QVERIFY(!view->messages().last().inNew);
        QCOMPARE(view->messages().last().base, QStringLiteral("1700000010.M10P1.host"));
    }
};

QTEST_GUILESS_MAIN(TestImapKeptListing)
#include "tst_imap_kept_listing.moc"
