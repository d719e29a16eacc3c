// tst_safe_path.cpp — SafeDir (core/safe_path.h): a link at any component of a
// path below a folder others can write is refused, a link in a trusted folder is
// followed; files are checked after opening (hard links, FIFOs, sockets,
// devices, other owners); chown only by descriptor; the limits at their
// boundaries. And atomic_file.h / log.h routed through it when running as root.
//
// "Untrusted" folders are made by giving them mode 0777 (anyone may write), which
// works as root and as a normal user; rows that need a second user (ownership)
// run as root only (this machine's tests do), with uid 65534 (nobody).
#include "core/atomic_file.h"
#include "core/log.h"
#include "core/safe_path.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QRandomGenerator>
#include <QTemporaryDir>
#include <QtTest>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cstring>

using namespace postern;

namespace {
constexpr uid_t kOtherUid = 65534;

QByteArray enc(const QString& p) {
    return QFile::encodeName(p);
}

void mkdirMode(const QString& p, mode_t mode) {
    QVERIFY2(::mkdir(enc(p).constData(), mode) == 0, qPrintable(p));
    QCOMPARE(::chmod(enc(p).constData(), mode), 0);  // past the umask
}

void writeText(const QString& p, const QByteArray& text, mode_t mode = 0600) {
    QFile f(p);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write(text);
    f.close();
    QCOMPARE(::chmod(enc(p).constData(), mode), 0);
}

struct Snap {
    uid_t uid = 0;
    gid_t gid = 0;
    mode_t mode = 0;
    QByteArray content;
    bool operator==(const Snap&) const = default;
};

Snap snap(const QString& p) {
    Snap s;
    struct stat st {};
    if (::lstat(enc(p).constData(), &st) == 0) {
        s.uid = st.st_uid;
        s.gid = st.st_gid;
        s.mode = st.st_mode;
    }
    QFile f(p);
    if (S_ISREG(st.st_mode) && f.open(QIODevice::ReadOnly)) s.content = f.readAll();
    return s;
}

bool isRoot() {
    return ::geteuid() == 0;
}
}  // namespace

class TstSafePath : public QObject {
    Q_OBJECT

    QTemporaryDir m_tmp;
    QString m_base;     // trusted: ours, 0700
    QString m_outside;  // a "root-only" folder with a secret file
    QString m_secret;

private Q_SLOTS:
    void init() {
        QVERIFY(m_tmp.isValid());
        m_base = m_tmp.path() + QStringLiteral("/t%1").arg(QRandomGenerator::global()->generate());
        mkdirMode(m_base, 0700);
        m_outside = m_base + QStringLiteral("/outside");
        mkdirMode(m_outside, 0700);
        m_secret = m_outside + QStringLiteral("/secret");
        writeText(m_secret, "secret\n", 0600);
    }

    // A link at each component below an untrusted folder is refused; the same
    // layout with a trusted folder is walked through.
    void linkAtEachComponent_data() {
        QTest::addColumn<QString>("linkAt");  // which component is a link: "", "u/a", "u/a/b", "u/a/b/c"
        QTest::addColumn<bool>("trusted");    // the mode of u and below: 0700 (trusted) or 0777
        QTest::addColumn<bool>("ok");
        QTest::newRow("no link, untrusted") << "" << false << true;
        QTest::newRow("link at a, untrusted") << "u/a" << false << false;
        QTest::newRow("link at b, untrusted") << "u/a/b" << false << false;
        QTest::newRow("link at c (last), untrusted") << "u/a/b/c" << false << false;
        QTest::newRow("link at a, trusted") << "u/a" << true << true;
        QTest::newRow("link at c (last), trusted") << "u/a/b/c" << true << true;
        QTest::newRow("link at u, in the trusted base") << "u" << false << true;
    }
    void linkAtEachComponent() {
        QFETCH(QString, linkAt);
        QFETCH(bool, trusted);
        QFETCH(bool, ok);
        const mode_t mode = trusted ? 0700 : 0777;
        // Real folders live in `real/`; the path walked is base/u/a/b/c.
        const QString real = m_base + QStringLiteral("/real");
        mkdirMode(real, 0700);
        QString walked = m_base;
        for (const QString& part :
             {QStringLiteral("u"), QStringLiteral("a"), QStringLiteral("b"), QStringLiteral("c")}) {
            const QString here = walked + u'/' + part;
            const QString rel = here.mid(m_base.size() + 1);
            if (rel == linkAt) {
                const QString target = real + u'/' + part;
                mkdirMode(target, mode);
                QCOMPARE(::symlink(enc(target).constData(), enc(here).constData()), 0);
            } else {
                mkdirMode(here, mode);
            }
            walked = here;
        }
        auto dir = SafeDir::open(walked);
        QCOMPARE(dir.ok(), ok);
        if (!ok) {
            QCOMPARE(dir.error().code, ELOOP);
            QVERIFY2(dir.errorMessage().contains(QStringLiteral("is a symbolic link")), qPrintable(dir.errorMessage()));
            QVERIFY2(dir.errorMessage().contains(m_base + u'/' + linkAt), qPrintable(dir.errorMessage()));
            // Creating through it is refused as well, and nothing appears behind the link.
            QVERIFY(!SafeDir::open(walked + QStringLiteral("/new"), 0700).ok());
            QVERIFY(!QFileInfo::exists(real + QStringLiteral("/c/new")) &&
                    !QFileInfo::exists(real + QStringLiteral("/b/c/new")));
        } else {
            QCOMPARE(dir->path(), walked);
            QCOMPARE(dir->trusted(), trusted);
        }
    }

    // Relative links and ".." inside a trusted folder resolve like the kernel would.
    void relativeLinkInTrustedFolder() {
        mkdirMode(m_base + QStringLiteral("/x"), 0700);
        mkdirMode(m_base + QStringLiteral("/x/y"), 0700);
        writeText(m_base + QStringLiteral("/x/y/f"), "hello");
        QCOMPARE(::symlink("x/y", enc(m_base + QStringLiteral("/ly")).constData()), 0);
        QCOMPARE(::symlink("../y/f", enc(m_base + QStringLiteral("/x/y/lf")).constData()), 0);
        auto d = SafeDir::open(m_base + QStringLiteral("/ly"));
        QVERIFY2(d.ok(), qPrintable(d.errorMessage()));
        auto text = readFileBelow(m_base + QStringLiteral("/ly/lf"), 100);
        QVERIFY2(text.ok(), qPrintable(text.errorMessage()));
        QCOMPARE(*text, QByteArray("hello"));
    }

    // kMaxSymlinks links per walk: a chain of 40 works, 41 is refused.
    void symlinkLimit_data() {
        QTest::addColumn<int>("links");
        QTest::addColumn<bool>("ok");
        QTest::newRow("at the limit") << SafeDir::kMaxSymlinks << true;
        QTest::newRow("one more") << SafeDir::kMaxSymlinks + 1 << false;
    }
    void symlinkLimit() {
        QFETCH(int, links);
        QFETCH(bool, ok);
        mkdirMode(m_base + QStringLiteral("/end"), 0700);
        QString next = QStringLiteral("end");
        for (int i = 0; i < links; ++i) {
            const QString name = QStringLiteral("l%1").arg(i);
            QCOMPARE(::symlink(enc(next).constData(), enc(m_base + u'/' + name).constData()), 0);
            next = name;
        }
        auto d = SafeDir::open(m_base + u'/' + next);
        QCOMPARE(d.ok(), ok);
        if (!ok) QCOMPARE(d.error().code, ELOOP);
    }

    // kMaxNameBytes per component.
    void nameLimit() {
        auto d = SafeDir::open(m_base);
        QVERIFY(d.ok());
        QVERIFY(d->subdir(QString(SafeDir::kMaxNameBytes, u'n'), 0700).ok());
        auto tooLong = d->subdir(QString(SafeDir::kMaxNameBytes + 1, u'n'), 0700);
        QVERIFY(!tooLong.ok());
        QCOMPARE(tooLong.error().code, ENAMETOOLONG);
        QVERIFY(!d->openFile(QStringLiteral("../x"), O_RDONLY).ok());
        QVERIFY(!d->openFile(QStringLiteral(".."), O_RDONLY).ok());
    }

    // What openFile accepts in an untrusted (0777) and in a trusted folder.
    void openFileChecks_data() {
        QTest::addColumn<QString>("kind");
        QTest::addColumn<bool>("trusted");
        QTest::addColumn<int>("flags");
        QTest::addColumn<bool>("ok");
        const int w = O_WRONLY | O_APPEND | O_CREAT;
        const int r = O_RDONLY;
        for (bool trusted : {false, true}) {
            const char* t = trusted ? "trusted" : "untrusted";
            QTest::addRow("%s: regular file", t) << "regular" << trusted << w << true;
            QTest::addRow("%s: new file", t) << "missing" << trusted << w << true;
            QTest::addRow("%s: symlink to a root file", t) << "symlink" << trusted << w << trusted;
            QTest::addRow("%s: hard link to a root file", t) << "hardlink" << trusted << w << trusted;
            QTest::addRow("%s: hard link, O_TRUNC", t) << "hardlink" << trusted << (O_WRONLY | O_TRUNC) << trusted;
            QTest::addRow("%s: FIFO for writing", t) << "fifo" << trusted << w << false;
            QTest::addRow("%s: FIFO for reading", t) << "fifo" << trusted << r << false;
            QTest::addRow("%s: socket", t) << "socket" << trusted << r << false;
            QTest::addRow("%s: folder", t) << "folder" << trusted << r << false;
            QTest::addRow("%s: device", t) << "device" << trusted << r << false;
        }
        QTest::newRow("untrusted: another user's file") << "other-owner" << false << w << false;
    }
    void openFileChecks() {
        QFETCH(QString, kind);
        QFETCH(bool, trusted);
        QFETCH(int, flags);
        QFETCH(bool, ok);
        const QString folder = m_base + QStringLiteral("/f");
        mkdirMode(folder, trusted ? 0700 : 0777);
        const QString p = folder + QStringLiteral("/entry");
        if (kind == u"regular")
            writeText(p, "data");
        else if (kind == u"symlink")
            QCOMPARE(::symlink(enc(m_secret).constData(), enc(p).constData()), 0);
        else if (kind == u"hardlink")
            QCOMPARE(::link(enc(m_secret).constData(), enc(p).constData()), 0);
        else if (kind == u"fifo")
            QCOMPARE(::mkfifo(enc(p).constData(), 0600), 0);
        else if (kind == u"folder")
            mkdirMode(p, 0700);
        else if (kind == u"device")
            QCOMPARE(::symlink("/dev/null", enc(p).constData()), 0);  // a device reached by a link
        else if (kind == u"socket") {
            const int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
            sockaddr_un a{};
            a.sun_family = AF_UNIX;
            const QByteArray path = enc(p);
            if (size_t(path.size()) >= sizeof a.sun_path) QSKIP("temporary path too long for a socket");
            std::memcpy(a.sun_path, path.constData(), size_t(path.size()));
            QCOMPARE(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
            ::close(s);
        } else if (kind == u"other-owner") {
            if (!isRoot()) QSKIP("needs root to make a file of another user");
            writeText(p, "theirs");
            QCOMPARE(::chown(enc(p).constData(), kOtherUid + 1, kOtherUid + 1),
                     0);  // neither us, root nor the folder's owner
        }
        const Snap before = snap(m_secret);
        auto d = SafeDir::open(folder);
        QVERIFY(d.ok());
        QElapsedTimer t;
        t.start();
        auto h = d->openFile(QStringLiteral("entry"), flags, 0640);
        QVERIFY2(t.elapsed() < 5000, "a FIFO must never block the open");
        QVERIFY2(h.ok() == ok, qPrintable(h.ok() ? QStringLiteral("opened") : h.errorMessage()));
        if (h.ok() && (flags & O_ACCMODE) != O_RDONLY) {
            QCOMPARE(::write(h->fd(), "x", 1), ssize_t(1));
            QVERIFY(!(::fcntl(h->fd(), F_GETFL) & O_NONBLOCK));
        }
        if (!trusted) QCOMPARE(snap(m_secret), before);  // nothing of the "root file" changed
        if (!ok && kind == u"hardlink")
            QCOMPARE(snap(m_secret).content, QByteArray("secret\n"));  // O_TRUNC came after the check
    }

    // A sticky folder (like /tmp): a link is followed only when root or we own it.
    void stickyFolder() {
        if (!isRoot()) QSKIP("needs root to make a link owned by another user");
        const QString sticky = m_base + QStringLiteral("/sticky");
        mkdirMode(sticky, 01777);
        QCOMPARE(::symlink(enc(m_outside).constData(), enc(sticky + QStringLiteral("/ours")).constData()), 0);
        QCOMPARE(::symlink(enc(m_outside).constData(), enc(sticky + QStringLiteral("/theirs")).constData()), 0);
        QCOMPARE(::lchown(enc(sticky + QStringLiteral("/theirs")).constData(), kOtherUid, kOtherUid), 0);
        QVERIFY(SafeDir::open(sticky + QStringLiteral("/ours")).ok());
        auto theirs = SafeDir::open(sticky + QStringLiteral("/theirs"));
        QVERIFY(!theirs.ok());
        QCOMPARE(theirs.error().code, ELOOP);
    }

    // A folder owned by another user (the daemon user, for root) is untrusted even at 0700.
    void otherOwnerIsUntrusted() {
        if (!isRoot()) QSKIP("needs root to give a folder away");
        const QString theirs = m_base + QStringLiteral("/data");
        mkdirMode(theirs, 0700);
        QCOMPARE(::chown(enc(theirs).constData(), kOtherUid, kOtherUid), 0);
        QCOMPARE(::symlink(enc(m_outside).constData(), enc(theirs + QStringLiteral("/log")).constData()), 0);
        auto d = SafeDir::open(theirs + QStringLiteral("/log"));
        QVERIFY(!d.ok());
        QVERIFY2(d.errorMessage().contains(QStringLiteral("owner nobody")), qPrintable(d.errorMessage()));
    }

    // chownFile hands over exactly the inode it checked; links and hard links are refused.
    void chownFile_data() {
        QTest::addColumn<QString>("kind");
        QTest::addColumn<bool>("ok");
        QTest::newRow("regular") << "regular" << true;
        QTest::newRow("missing (nothing to do)") << "missing" << true;
        QTest::newRow("symlink to a root file") << "symlink" << false;
        QTest::newRow("hard link to a root file") << "hardlink" << false;
        QTest::newRow("FIFO") << "fifo" << false;
    }
    void chownFile() {
        if (!isRoot()) QSKIP("needs root to chown");
        QFETCH(QString, kind);
        QFETCH(bool, ok);
        const QString folder = m_base + QStringLiteral("/run");
        mkdirMode(folder, 0750);
        QCOMPARE(::chown(enc(folder).constData(), kOtherUid, kOtherUid), 0);
        const QString p = folder + QStringLiteral("/auth-throttle");
        if (kind == u"regular")
            writeText(p, "x");
        else if (kind == u"symlink")
            QCOMPARE(::symlink(enc(m_secret).constData(), enc(p).constData()), 0);
        else if (kind == u"hardlink")
            QCOMPARE(::link(enc(m_secret).constData(), enc(p).constData()), 0);
        else if (kind == u"fifo")
            QCOMPARE(::mkfifo(enc(p).constData(), 0600), 0);
        const Snap before = snap(m_secret);
        auto d = SafeDir::open(folder);
        QVERIFY(d.ok());
        const Status st = d->chownFile(QStringLiteral("auth-throttle"), kOtherUid, kOtherUid);
        QVERIFY2(st.ok() == ok, qPrintable(st.ok() ? QStringLiteral("handed over") : st.errorMessage()));
        QCOMPARE(snap(m_secret), before);
        if (kind == u"regular") QCOMPARE(snap(p).uid, kOtherUid);
    }

    // chownTree never leaves the tree: links are chowned themselves, hard links skipped.
    void chownTree() {
        const QString tree = m_base + QStringLiteral("/tree");
        mkdirMode(tree, 0750);
        mkdirMode(tree + QStringLiteral("/mail"), 0700);
        writeText(tree + QStringLiteral("/mail/msg"), "m");
        QCOMPARE(::symlink(enc(m_outside).constData(), enc(tree + QStringLiteral("/mail/dirlink")).constData()), 0);
        QCOMPARE(::symlink(enc(m_secret).constData(), enc(tree + QStringLiteral("/filelink")).constData()), 0);
        QCOMPARE(::link(enc(m_secret).constData(), enc(tree + QStringLiteral("/hard")).constData()), 0);
        const uid_t uid = isRoot() ? kOtherUid : ::getuid();
        const gid_t gid = isRoot() ? kOtherUid : ::getgid();
        const Snap secret = snap(m_secret), outside = snap(m_outside);
        auto d = SafeDir::open(tree);
        QVERIFY(d.ok());
        QStringList skipped;
        const Status st = postern::chownTree(*d, uid, gid, &skipped);
        QVERIFY2(st.ok(), qPrintable(st.errorMessage()));
        QCOMPARE(snap(tree + QStringLiteral("/mail/msg")).uid, uid);
        QCOMPARE(snap(tree + QStringLiteral("/mail")).uid, uid);
        QCOMPARE(snap(tree + QStringLiteral("/filelink")).uid, uid);  // the link itself
        if (isRoot()) {
            QCOMPARE(snap(m_secret), secret);
            QCOMPARE(snap(m_outside), outside);
            QCOMPARE(skipped, QStringList{tree + QStringLiteral("/hard")});
        }
    }

    // kMaxTreeDepth levels below the top: 64 are handed over, 65 are refused.
    void chownTreeDepth_data() {
        QTest::addColumn<int>("levels");
        QTest::addColumn<bool>("ok");
        QTest::newRow("at the limit") << SafeDir::kMaxTreeDepth << true;
        QTest::newRow("one more") << SafeDir::kMaxTreeDepth + 1 << false;
    }
    void chownTreeDepth() {
        QFETCH(int, levels);
        QFETCH(bool, ok);
        const QString top = m_base + QStringLiteral("/deep");
        mkdirMode(top, 0700);
        QString p = top;
        for (int i = 0; i < levels; ++i) {
            p += QStringLiteral("/d");
            mkdirMode(p, 0700);
        }
        auto d = SafeDir::open(top);
        QVERIFY(d.ok());
        QStringList skipped;
        QCOMPARE(postern::chownTree(*d, ::getuid(), ::getgid(), &skipped).ok(), ok);
    }

    // As root, atomic_file.h goes through SafeDir: a planted link in an untrusted folder
    // stops writeFileAtomic, ensureDirectory, readFile, removeFile and FileLock.
    void atomicFileAsRoot() {
        if (!isRoot()) QSKIP("the routing applies to root only");
        const QString data = m_base + QStringLiteral("/data");
        mkdirMode(data, 0750);
        QCOMPARE(::chown(enc(data).constData(), kOtherUid, kOtherUid), 0);
        QCOMPARE(::symlink(enc(m_outside).constData(), enc(data + QStringLiteral("/run")).constData()), 0);
        QCOMPARE(::mkfifo(enc(data + QStringLiteral("/fifo")).constData(), 0600), 0);
        QCOMPARE(::symlink(enc(m_secret).constData(), enc(data + QStringLiteral("/secretlink")).constData()), 0);
        const Snap outside = snap(m_outside), secret = snap(m_secret);
        QVERIFY(!writeFileAtomic(data + QStringLiteral("/run/status"), "x").ok());
        QVERIFY(!ensureDirectory(data + QStringLiteral("/run/sub"), 0700).ok());
        QVERIFY(!readFile(data + QStringLiteral("/run/secret")).ok());
        QVERIFY(!readFile(data + QStringLiteral("/secretlink")).ok());
        QElapsedTimer t;
        t.start();
        QVERIFY(!readFile(data + QStringLiteral("/fifo")).ok());
        QVERIFY(t.elapsed() < 5000);
        QVERIFY(!removeFile(data + QStringLiteral("/run/secret")).ok());
        QVERIFY(!FileLock::acquire(data + QStringLiteral("/run/lock")).ok());
        QCOMPARE(snap(m_outside), outside);
        QCOMPARE(snap(m_secret), secret);
        QVERIFY(QFileInfo::exists(m_secret));
        // The folder itself works as usual.
        QVERIFY(writeFileAtomic(data + QStringLiteral("/ok"), "fine").ok());
        QCOMPARE(*readFile(data + QStringLiteral("/ok")), QByteArray("fine"));
        QVERIFY(removeFile(data + QStringLiteral("/ok")).ok());
        QVERIFY(removeFile(data + QStringLiteral("/ok")).ok());  // missing is fine
    }

    // As root, log.h refuses a link in place of mail.log (the supervisor logs all its life as root).
    void logAsRoot() {
        if (!isRoot()) QSKIP("the routing applies to root only");
        const QString logDir = m_base + QStringLiteral("/log");
        mkdirMode(logDir, 0750);
        QCOMPARE(::chown(enc(logDir).constData(), kOtherUid, kOtherUid), 0);
        QCOMPARE(::symlink(enc(m_secret).constData(), enc(logDir + QStringLiteral("/mail.log")).constData()), 0);
        const Snap secret = snap(m_secret);
        log::init({QStringLiteral("tst"), logDir + QStringLiteral("/mail.log"), log::Level::Info, false});
        QVERIFY(log::fileError().contains(QStringLiteral("symbolic link")));
        log::info(u"tst.line");
        QCOMPARE(snap(m_secret), secret);
        // Replaced by a real file, it is used (after the once-a-second check).
        QCOMPARE(::unlink(enc(logDir + QStringLiteral("/mail.log")).constData()), 0);
        QTRY_VERIFY_WITH_TIMEOUT((log::info(u"tst.again"), QFileInfo(logDir + QStringLiteral("/mail.log")).size() > 0),
                                 5000);
        QVERIFY(log::fileError().isEmpty());
        log::init({QStringLiteral("tst"), QString(), log::Level::Info, false});
    }
};

QTEST_GUILESS_MAIN(TstSafePath)
#include "tst_safe_path.moc"
