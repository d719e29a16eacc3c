// maildir_delivery.cpp — see maildir_delivery.h.
#include "maildir_delivery.h"

#include "maildir_keywords.h"

#include "maildir_names.h"

#include "core/atomic_file.h"
#include "core/paths.h"
#include "core/posix_io.h"

#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QSet>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>

namespace postern::store {

namespace {
bool makeDir(const QString& path, bool* created) {
    if (::mkdir(QFile::encodeName(path).constData(), 0700) == 0) {
        *created = true;
        return true;
    }
    return errno == EEXIST;
}

StoreError fromStatus(const Status& st) {
    return StoreError::fromErrno(st.error().code ? st.error().code : EIO, st.errorMessage());
}

StoreError fromErrno(const QString& what, int err) {
    return StoreError::fromErrno(err, errnoError(what, err).message);
}

// The copy's bytes into its open tmp/ file, with its mtime, then fsync.
Status fillFile(int fd, const Content& content, const std::optional<qint64>& mtime, const QString& path) {
    if (auto st = writeAll(fd, content.head, path); !st) return st;
    if (content.fd >= 0)
        if (auto st = copyRange(content.fd, content.offset, content.length, fd, path); !st) return st;
    if (mtime) {
        const struct timespec times[2] = {{time_t(*mtime), 0}, {time_t(*mtime), 0}};
        if (::futimens(fd, times) != 0) return errnoError(path, errno);
    }
    if (::fsync(fd) != 0) return errnoError(path, errno);
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
    if (!makeDir(root, &created)) return errnoError(root, errno);
    if (!folderDir.isEmpty() && !makeDir(dir, &created)) return errnoError(dir, errno);
    for (const char* sub : {"/tmp", "/new", "/cur"})
        if (!makeDir(dir + QLatin1String(sub), &created)) return errnoError(dir + QLatin1String(sub), errno);
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

StoreStatus Delivery::add(const QString& address, const Content& content, const QStringList& folder, qint64 quotaBytes,
                          const QString& flags, const QStringList& keywords) {
    const QString root = maildirRoot(m_mailDir, address);
    if (root.isEmpty())
        return StoreError::fromErrno(EINVAL, QStringLiteral("'%1' is not a deliverable address").arg(address));
    QString folderDir;
    if (!folder.isEmpty()) {
        auto d = folderDirName(folder);
        if (!d) return StoreError::fromErrno(EINVAL, d.errorMessage());
        folderDir = *d;
    }
    if (auto st = ensureMaildir(root, folderDir); !st) return fromStatus(st);
    Placement p;
    p.root = root;
    p.dir = folderDir.isEmpty() ? root : root + QLatin1Char('/') + folderDir;
    p.quotaBytes = quotaBytes;
    p.flags = flags;
    if (!keywords.isEmpty()) {
        auto letters = keywordLetters(p.dir, keywords);
        if (!letters) return fromStatus(letters.error());
        p.flags = sortFlags(p.flags + *letters);
    }
    p.cur = !p.flags.isEmpty();
    Copy c;
    c.address = address;
    return write(c, p, content);
}

StoreStatus Delivery::add(const Placement& placement, const Content& content) {
    return write(Copy{}, placement, content);
}

StoreStatus Delivery::write(Copy c, const Placement& p, const Content& content) {
    const qint64 size = content.size();
    if (p.quotaBytes > 0) {
        auto used = MaildirQuota::usage(p.root, p.quotaBytes);
        if (used && used->first + size > p.quotaBytes)
            return StoreError::overQuota(QStringLiteral("mailbox %1 is full (%2 of %3 bytes used, message %4 bytes)")
                                             .arg(c.address.isEmpty() ? p.root : c.address)
                                             .arg(used->first)
                                             .arg(p.quotaBytes)
                                             .arg(size),
                                         size > p.quotaBytes);
    }
    c.root = p.root;
    c.dir = p.dir;
    c.size = size;
    c.name = uniqueName(size);
    c.tmpPath = c.dir + QStringLiteral("/tmp/") + c.name;
    c.finalPath =
        p.cur ? c.dir + QStringLiteral("/cur/") + withFlags(c.name, p.flags) : c.dir + QStringLiteral("/new/") + c.name;
    const int fd =
        ::open(QFile::encodeName(c.tmpPath).constData(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return fromErrno(c.tmpPath, errno);
    Status st = fillFile(fd, content, p.mtime, c.tmpPath);
    if (::close(fd) != 0 && st) st = errnoError(c.tmpPath, errno);
    if (!st) {
        ::unlink(QFile::encodeName(c.tmpPath).constData());
        return fromStatus(st);
    }
    m_copies << c;
    m_committed = false;
    return {};
}

StoreStatus Delivery::commit() {
    QSet<QString> dirs;
    for (Copy& c : m_copies) {
        if (::rename(QFile::encodeName(c.tmpPath).constData(), QFile::encodeName(c.finalPath).constData()) != 0) {
            const StoreError failed = fromErrno(c.finalPath, errno);  // before abort() drops `c`
            // Take back what was already made visible, so a retry does not duplicate it.
            for (Copy& done : m_copies) {
                if (done.renamed) ::unlink(QFile::encodeName(done.finalPath).constData());
                done.renamed = false;
            }
            abort();
            return failed;
        }
        c.renamed = true;
        dirs.insert(QFileInfo(c.finalPath).path());
    }
    m_committed = true;
    for (const QString& d : dirs) {
        // The files are complete and visible; only their durability is in doubt. Report it:
        // the caller answers 4xx and the client retries (a duplicate beats a loss).
        if (auto st = syncDirectory(d); !st) return fromStatus(st);
    }
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

QString quotaFile(const QString& root) {
    return root + QStringLiteral("/maildirsize");
}

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
    const QByteArray text =
        QByteArray::number(limitBytes) + "S\n" + QByteArray::number(bytes) + " " + QByteArray::number(count) + "\n";
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
        ok = writeAll(fd, line, path).ok();
        ::close(fd);
    }
    if (!ok) ::unlink(QFile::encodeName(path).constData());
}

}  // namespace postern::store
