// tst_atomic_file.cpp — atomic writes, stamps and locks (across processes).
#include "core/atomic_file.h"
#include "core/posix_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <QDir>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

using namespace postern;

class TstAtomicFile : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void writeReplaceAndMode() {
        QTemporaryDir tmp;
        const QString p = tmp.filePath(QStringLiteral("f"));
        QVERIFY(writeFileAtomic(p, "one", 0600).ok());
        QCOMPARE(*readFile(p), QByteArray("one"));
        struct stat st {};
        QCOMPARE(::stat(QFile::encodeName(p).constData(), &st), 0);
        QCOMPARE(st.st_mode & 0777, 0600u);
        const FileStamp before = FileStamp::of(p);
        QVERIFY(writeFileAtomic(p, "two", 0644).ok());
        QCOMPARE(*readFile(p), QByteArray("two"));
        QVERIFY(FileStamp::of(p) != before);  // a rename gives a new inode
        // No temporary files are left behind.
        QCOMPARE(QDir(tmp.path()).entryList(QDir::Files | QDir::Hidden).size(), 1);
    }

    void errors() {
        QVERIFY(!writeFileAtomic(QStringLiteral("/nonexistent-dir/x"), "x").ok());
        auto r = readFile(QStringLiteral("/nonexistent-file"));
        QVERIFY(!r.ok());
        QVERIFY(r.errorMessage().startsWith(QStringLiteral("/nonexistent-file: cannot open")));
        QTemporaryDir tmp;
        QVERIFY(writeFileAtomic(tmp.filePath(QStringLiteral("big")), QByteArray(100, 'x')).ok());
        QVERIFY(!readFile(tmp.filePath(QStringLiteral("big")), 99).ok());
        QVERIFY(readFile(tmp.filePath(QStringLiteral("big")), 100).ok());
        QVERIFY(!FileStamp::of(tmp.filePath(QStringLiteral("missing"))).exists);
    }

    // readAll (posix_io.h): a regular file from its current position (read into a buffer
    // of its size), its limit, and a pipe (no size to read into).
    void readAllSizedAndUnsized() {
        QTemporaryDir tmp;
        const QString p = tmp.filePath(QStringLiteral("f"));
        QByteArray content;
        for (int i = 0; i < 100000; ++i) content += char('a' + i % 26);
        QVERIFY(writeFileAtomic(p, content, 0600).ok());
        const int fd = ::open(QFile::encodeName(p).constData(), O_RDONLY | O_CLOEXEC);
        QVERIFY(fd >= 0);
        QCOMPARE(*readAll(fd, content.size(), p), content);
        QCOMPARE(::lseek(fd, 70000, SEEK_SET), off_t(70000));
        QCOMPARE(*readAll(fd, 30000, p), content.mid(70000));
        QCOMPARE(::lseek(fd, 70000, SEEK_SET), off_t(70000));
        const auto tooBig = readAll(fd, 29999, p);
        QVERIFY(!tooBig.ok());
        QCOMPARE(tooBig.error().code, EFBIG);
        QCOMPARE(::lseek(fd, 0, SEEK_END), off_t(content.size()));
        QCOMPARE(*readAll(fd, 10, p), QByteArray());
        ::close(fd);
        int pipeFds[2];
        QCOMPARE(::pipe(pipeFds), 0);
        QVERIFY(writeAll(pipeFds[1], "through a pipe", QStringLiteral("pipe")).ok());
        ::close(pipeFds[1]);
        QCOMPARE(*readAll(pipeFds[0], 100, QStringLiteral("pipe")), QByteArray("through a pipe"));
        ::close(pipeFds[0]);
    }
    void ensureDirectoryNested() {
        QTemporaryDir tmp;
        QVERIFY(ensureDirectory(tmp.filePath(QStringLiteral("a/b/c"))).ok());
        QVERIFY(QFileInfo(tmp.filePath(QStringLiteral("a/b/c"))).isDir());
        QVERIFY(writeFileAtomic(tmp.filePath(QStringLiteral("file")), "x").ok());
        QVERIFY(!ensureDirectory(tmp.filePath(QStringLiteral("file"))).ok());
    }

    void lockExcludesOtherProcess() {
        QTemporaryDir tmp;
        const QString lockPath = tmp.filePath(QStringLiteral("l.lock"));
        auto lock = FileLock::acquire(lockPath);
        QVERIFY(lock.ok());
        // flock(1) in another process cannot take it while we hold it...
        QProcess p;
        p.start(QStringLiteral("flock"), {QStringLiteral("-n"), lockPath, QStringLiteral("true")});
        QVERIFY(p.waitForFinished(10000));
        QCOMPARE(p.exitCode(), 1);
        // ...and can once we release it.
        lock->release();
        p.start(QStringLiteral("flock"), {QStringLiteral("-n"), lockPath, QStringLiteral("true")});
        QVERIFY(p.waitForFinished(10000));
        QCOMPARE(p.exitCode(), 0);
    }

    void lockTimeout() {
        QTemporaryDir tmp;
        const QString lockPath = tmp.filePath(QStringLiteral("l.lock"));
        QProcess holder;
        holder.start(QStringLiteral("flock"),
                     {QStringLiteral("-o"), lockPath, QStringLiteral("sleep"), QStringLiteral("5")});
        QVERIFY(holder.waitForStarted());
        QTRY_VERIFY(!FileLock::acquire(lockPath, FileLock::Mode::Exclusive, 0).ok());
        auto r = FileLock::acquire(lockPath, FileLock::Mode::Exclusive, 100);
        QVERIFY(!r.ok());
        QVERIFY(r.errorMessage().contains(QStringLiteral("still locked")));
        holder.kill();
        holder.waitForFinished();
        QVERIFY(FileLock::acquire(lockPath, FileLock::Mode::Exclusive, 2000).ok());
    }
};

QTEST_GUILESS_MAIN(TstAtomicFile)
#include "tst_atomic_file.moc"
