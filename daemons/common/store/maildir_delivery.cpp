// maildir_delivery.cpp — see maildir_delivery.h.
#include "maildir_delivery.h"

#include "maildir_names.h"

#include "core/atomic_file.h"
#include "core/paths.h"

#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QSet>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace postern::store {

namespace {
QString errnoText(int e) { return QString::fromLocal8Bit(std::strerror(e)); }

Status failErrno(const QString& what, int e) { return Status::fail(QStringLiteral("%1: %2").arg(what, errnoText(e)), e); }

bool makeDir(const QString& path, bool* created) {
    if (::mkdir(QFile::encodeName(path).constData(), 0700) == 0) {
        *created = true;
        return true;
    }
    return errno == EEXIST;
}

Status writeAll(int fd, const char* p, size_t n, const QString& path) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return failErrno(path, errno);
        }
        p += w;
        n -= size_t(w);
    }
    return {};
}

Status copyBody(int in, int out, qint64 size, const QString& path) {
    loff_t inOff = 0;
    qint64 left = size;
    while (left > 0) {
        ssize_t n = ::copy_file_range(in, &inOff, out, nullptr, size_t(left), 0);
        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            return failErrno(path, errno);
        }
        if (n == 0) return Status::fail(QStringLiteral("%1: body shorter than announced").arg(path), EIO);
        left -= n;
    }
    char buf[65536];
    while (left > 0) {  // fallback: plain read/write
        ssize_t n = ::pread(in, buf, size_t(std::min<qint64>(left, qint64(sizeof buf))), off_t(inOff));
        if (n < 0) {
            if (errno == EINTR) continue;
            return failErrno(path, errno);
        }
        if (n == 0) return Status::fail(QStringLiteral("%1: body shorter than announced").arg(path), EIO);
        if (auto st = writeAll(out, buf, size_t(n), path); !st) return st;
        inOff += n;
        left -= n;
    }
    return {};
}
}  // namespace

Status ensureMaildir(const QString& root, const QString& folderDir) {
    const QString dir = folderDir.isEmpty() ? root : root + QLatin1Char('/') + folderDir;
    if (QFileInfo::exists(dir + QStringLiteral("/tmp")) && QFileInfo::exists(dir + QStringLiteral("/new")) &&
        QFileInfo::exists(dir + QStringLiteral("/cur")))
        return {};
    // The home and the domain folder above the Maildir.
    if (auto st = ensureDirectory(QFileInfo(root).absolutePath(), 0700); !st) return st;
    bool created = false;
    if (!makeDir(root, &created)) return failErrno(root, errno);
    if (!folderDir.isEmpty() && !makeDir(dir, &created)) return failErrno(dir, errno);
    for (const char* sub : {"/tmp", "/new", "/cur"})
        if (!makeDir(dir + QLatin1String(sub), &created)) return failErrno(dir + QLatin1String(sub), errno);
    if (!folderDir.isEmpty()) {
        const QString marker = dir + QStringLiteral("/maildirfolder");
        int fd = ::open(QFile::encodeName(marker).constData(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) ::close(fd);
    }
    if (created) {
        // Make the new folders themselves durable before anything is delivered into them.
        if (auto st = syncDirectory(dir); !st) return st;
        if (auto st = syncDirectory(QFileInfo(dir).absolutePath()); !st) return st;
        if (!folderDir.isEmpty())
            if (auto st = syncDirectory(root); !st) return st;
    }
    return {};
}

Delivery::Delivery(QString mailDir) : m_mailDir(std::move(mailDir)) {}

Delivery::~Delivery() {
    if (!m_committed) abort();
}

Status Delivery::add(const QString& address, const QByteArray& prefix, int bodyFd, qint64 bodySize, const QStringList& folder,
                     qint64 quotaBytes) {
    const QString root = maildirRoot(m_mailDir, address);
    if (root.isEmpty()) return Status::fail(QStringLiteral("'%1' is not a deliverable address").arg(address), EINVAL);
    QString folderDir;
    if (!folder.isEmpty()) {
        auto d = folderDirName(folder);
        if (!d) return Status::fail(d.errorMessage(), EINVAL);
        folderDir = *d;
    }
    if (auto st = ensureMaildir(root, folderDir); !st) return st;
    const qint64 size = prefix.size() + bodySize;
    if (quotaBytes > 0) {
        auto used = MaildirQuota::usage(root, quotaBytes);
        if (used && used->first + size > quotaBytes)
            return Status::fail(QStringLiteral("mailbox of %1 is full (%2 of %3 bytes used)").arg(address).arg(used->first).arg(quotaBytes),
                                EDQUOT);
    }
    Copy c;
    c.address = address;
    c.root = root;
    c.dir = folderDir.isEmpty() ? root : root + QLatin1Char('/') + folderDir;
    c.size = size;
    const QString name = uniqueName(size);
    c.tmpPath = c.dir + QStringLiteral("/tmp/") + name;
    c.newPath = c.dir + QStringLiteral("/new/") + name;
    const int fd = ::open(QFile::encodeName(c.tmpPath).constData(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return failErrno(c.tmpPath, errno);
    Status st = writeAll(fd, prefix.constData(), size_t(prefix.size()), c.tmpPath);
    if (st) st = copyBody(bodyFd, fd, bodySize, c.tmpPath);
    if (st && ::fsync(fd) != 0) st = failErrno(c.tmpPath, errno);
    if (::close(fd) != 0 && st) st = failErrno(c.tmpPath, errno);
    if (!st) {
        ::unlink(QFile::encodeName(c.tmpPath).constData());
        return st;
    }
    m_copies << c;
    return {};
}

Status Delivery::commit() {
    QSet<QString> dirs;
    for (Copy& c : m_copies) {
        if (::rename(QFile::encodeName(c.tmpPath).constData(), QFile::encodeName(c.newPath).constData()) != 0) {
            const int e = errno;
            // Take back what was already made visible, so a retry does not duplicate it.
            for (Copy& done : m_copies) {
                if (done.renamed) ::unlink(QFile::encodeName(done.newPath).constData());
                done.renamed = false;
            }
            abort();
            return failErrno(c.newPath, e);
        }
        c.renamed = true;
        dirs.insert(c.dir + QStringLiteral("/new"));
    }
    for (const QString& d : dirs) {
        if (auto st = syncDirectory(d); !st) {
            // The files are complete and visible; only their durability is in doubt. Report it:
            // the caller answers 4xx and the client retries (a duplicate beats a loss).
            m_committed = true;
            return st;
        }
    }
    m_committed = true;
    for (const Copy& c : m_copies) MaildirQuota::add(c.root, c.size, 1);
    return {};
}

void Delivery::abort() {
    for (const Copy& c : m_copies)
        if (!c.renamed) ::unlink(QFile::encodeName(c.tmpPath).constData());
    m_copies.clear();
    m_committed = true;
}

// ------------------------------------------------------------------ quota

namespace {
constexpr qint64 kRecalcFileSize = 5120;  // Maildir++: recalculate when maildirsize grows past 5120 bytes

QString quotaFile(const QString& root) { return root + QStringLiteral("/maildirsize"); }

std::pair<qint64, qint64> scanUsage(const QString& root) {
    qint64 bytes = 0, count = 0;
    QStringList dirs{root};
    const QDir r(root);
    for (const QString& d : r.entryList({QStringLiteral(".?*")}, QDir::Dirs | QDir::Hidden | QDir::NoDotAndDotDot))
        if (d != u"..") dirs << root + QLatin1Char('/') + d;
    for (const QString& d : dirs) {
        // Maildir++: messages in Trash count too; folders are counted whole.
        for (const char* sub : {"/new", "/cur"}) {
            QDirIterator it(d + QLatin1String(sub), QDir::Files);
            while (it.hasNext()) {
                it.next();
                ParsedName p = parseFileName(it.fileName());
                bytes += p.size >= 0 ? p.size : it.fileInfo().size();
                ++count;
            }
        }
    }
    return {bytes, count};
}
}  // namespace

Status MaildirQuota::recalculate(const QString& root, qint64 limitBytes) {
    const auto [bytes, count] = scanUsage(root);
    const QByteArray text = QByteArray::number(limitBytes) + "S\n" + QByteArray::number(bytes) + " " + QByteArray::number(count) + "\n";
    return writeFileAtomic(quotaFile(root), text, 0600);
}

Result<std::pair<qint64, qint64>> MaildirQuota::usage(const QString& root, qint64 limitBytes) {
    const QString path = quotaFile(root);
    const FileStamp stamp = FileStamp::of(path);
    if (!stamp.exists || stamp.size > kRecalcFileSize) {
        if (auto st = recalculate(root, limitBytes); !st) return st.error();
    }
    auto text = readFile(path, 1 << 20);
    if (!text) return text.error();
    const QList<QByteArray> lines = text->split('\n');
    qint64 bytes = 0, count = 0;
    for (qsizetype i = 1; i < lines.size(); ++i) {
        const QList<QByteArray> f = lines.at(i).simplified().split(' ');
        if (f.size() != 2) continue;
        bytes += f.at(0).toLongLong();
        count += f.at(1).toLongLong();
    }
    if (bytes < 0 || count < 0) {  // drifted (hand deletions): start over
        if (auto st = recalculate(root, limitBytes); !st) return st.error();
        return scanUsage(root);
    }
    return std::make_pair(bytes, count);
}

void MaildirQuota::add(const QString& root, qint64 bytes, qint64 messages) {
    const QString path = quotaFile(root);
    if (!QFileInfo::exists(path)) return;  // created on the first quota check
    const int fd = ::open(QFile::encodeName(path).constData(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    bool ok = fd >= 0;
    if (ok) {
        // One write(2) of one short line on O_APPEND: concurrent writers never interleave.
        const QByteArray line = QByteArray::number(bytes) + " " + QByteArray::number(messages) + "\n";
        ok = writeAll(fd, line.constData(), size_t(line.size()), path).ok();
        ::close(fd);
    }
    if (!ok) ::unlink(QFile::encodeName(path).constData());
}

}  // namespace postern::store
