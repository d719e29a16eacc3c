// learn_spool.cpp — see learn_spool.h.
#include "learn_spool.h"

#include "core/atomic_file.h"
#include "core/posix_io.h"

#include <QDateTime>
#include <QFile>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

namespace postern::spam {

namespace {

constexpr QByteArrayView kMagic = "postern-learn 1\n";

QByteArray enc(const QString& s) {
    return QFile::encodeName(s);
}

// Digits only, 1..20 characters.
bool number(QStringView s) {
    if (s.isEmpty() || s.size() > 20) return false;
    return std::all_of(s.begin(), s.end(), [](QChar c) { return c >= u'0' && c <= u'9'; });
}

}  // namespace

QString toString(LearnClass c) {
    return c == LearnClass::Spam ? QStringLiteral("spam") : QStringLiteral("ham");
}

LearnSpool::LearnSpool(QString dir, qsizetype maxEntries) : m_dir(std::move(dir)), m_max(maxEntries) {}

LearnSpool::~LearnSpool() {
    if (m_lockFd >= 0) ::close(m_lockFd);
}

bool LearnSpool::validId(const QString& id) {
    const QStringList parts = id.split(QLatin1Char('.'));
    return parts.size() == 3 && number(parts.at(0)) && number(parts.at(1)) && number(parts.at(2));
}

QByteArray LearnSpool::requestContent(const QString& user) {
    return kMagic.toByteArray() + user.toUtf8() + '\n';
}

Result<QString> LearnSpool::parseRequest(const QByteArray& content) {
    if (!content.startsWith(kMagic)) return Result<QString>::fail(QStringLiteral("not a learn request (version line)"));
    QByteArray rest = content.mid(kMagic.size());
    if (!rest.endsWith('\n')) return Result<QString>::fail(QStringLiteral("truncated learn request"));
    rest.chop(1);
    if (rest.isEmpty() || rest.size() > kMaxLearnUser)
        return Result<QString>::fail(QStringLiteral("bad user name length"));
    for (char c : rest)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return Result<QString>::fail(QStringLiteral("control character in user name"));
    return QString::fromUtf8(rest);
}

Status LearnSpool::open() {
    if (auto st = ensureDirectory(m_dir, 0700); !st) return st;
    auto listed = pending(m_max + 1);
    if (!listed) return listed.error();
    return {};
}

LearnSpool::Enqueued LearnSpool::enqueue(LearnClass cls, const QString& user, const QString& messagePath,
                                         QString* error) {
    auto failed = [error](const QString& why) {
        if (error) *error = why;
        return Enqueued::Failed;
    };
    if (user.isEmpty() || user.toUtf8().size() > kMaxLearnUser)
        return failed(QStringLiteral("user name empty or too long"));
    if (m_count >= m_max) {
        if (error) *error = QStringLiteral("%1 learn requests wait already (the limit)").arg(m_count);
        return Enqueued::Full;
    }
    const QString id =
        QStringLiteral("%1.%2.%3").arg(QDateTime::currentSecsSinceEpoch()).arg(::getpid()).arg(++m_counter);
    const QString base = m_dir + QLatin1Char('/') + id;
    const QByteArray eml = enc(base + QStringLiteral(".eml"));
    if (::link(enc(messagePath).constData(), eml.constData()) != 0)
        return failed(QStringLiteral("link: %1").arg(errnoText(errno)));
    const QByteArray tmp = enc(base + QStringLiteral(".tmp"));
    const int fd = ::open(tmp.constData(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        const int e = errno;
        ::unlink(eml.constData());
        return failed(QStringLiteral("create: %1").arg(errnoText(e)));
    }
    const QByteArray content = requestContent(user);
    const ssize_t w = ::write(fd, content.constData(), size_t(content.size()));
    const int e = errno;
    ::close(fd);
    const QByteArray request = enc(base + (cls == LearnClass::Spam ? QStringLiteral(".spam") : QStringLiteral(".ham")));
    if (w != content.size() || ::rename(tmp.constData(), request.constData()) != 0) {
        const int why = w != content.size() ? (w < 0 ? e : ENOSPC) : errno;
        ::unlink(tmp.constData());
        ::unlink(eml.constData());
        return failed(QStringLiteral("write: %1").arg(errnoText(why)));
    }
    ++m_count;
    return Enqueued::Queued;
}

Result<QList<LearnEntry>> LearnSpool::pending(qsizetype max) {
    DIR* d = ::opendir(enc(m_dir).constData());
    if (!d) return Result<QList<LearnEntry>>::fail(QStringLiteral("%1: %2").arg(m_dir, errnoText(errno)));
    struct Found {
        QString id;
        LearnClass cls;
    };
    QList<Found> found;
    while (dirent* e = ::readdir(d)) {
        const QString name = QFile::decodeName(e->d_name);
        LearnClass cls;
        QString id;
        if (name.endsWith(QLatin1String(".spam"))) {
            cls = LearnClass::Spam;
            id = name.chopped(5);
        } else if (name.endsWith(QLatin1String(".ham"))) {
            cls = LearnClass::Ham;
            id = name.chopped(4);
        } else {
            continue;
        }
        if (validId(id)) found.append({id, cls});
    }
    ::closedir(d);
    m_count = found.size();
    // Oldest first: by seconds, then pid and counter as numbers.
    auto key = [](const QString& id) {
        const QStringList p = id.split(QLatin1Char('.'));
        return std::tuple(p.at(0).toULongLong(), p.at(1).toULongLong(), p.at(2).toULongLong());
    };
    std::sort(found.begin(), found.end(), [&](const Found& a, const Found& b) { return key(a.id) < key(b.id); });
    QList<LearnEntry> out;
    for (const Found& f : found) {
        if (out.size() >= max) break;
        LearnEntry entry;
        entry.id = f.id;
        entry.cls = f.cls;
        entry.messagePath = m_dir + QLatin1Char('/') + f.id + QStringLiteral(".eml");
        entry.requestPath = m_dir + QLatin1Char('/') + f.id +
                            (f.cls == LearnClass::Spam ? QStringLiteral(".spam") : QStringLiteral(".ham"));
        auto content = readFile(entry.requestPath, 4096);
        auto user = content ? parseRequest(*content) : Result<QString>::fail(content.errorMessage());
        if (!user) {  // a broken request cannot become whole: drop it
            remove(entry);
            continue;
        }
        entry.user = *user;
        out << entry;
    }
    return out;
}

void LearnSpool::remove(const LearnEntry& entry) {
    if (::unlink(enc(entry.requestPath).constData()) == 0 && m_count > 0) --m_count;
    ::unlink(enc(entry.messagePath).constData());
}

int LearnSpool::sweepOrphans(qint64 ageSeconds) {
    DIR* d = ::opendir(enc(m_dir).constData());
    if (!d) return 0;
    QStringList candidates;
    while (dirent* e = ::readdir(d)) {
        const QString name = QFile::decodeName(e->d_name);
        if ((name.endsWith(QLatin1String(".eml")) && validId(name.chopped(4))) ||
            (name.endsWith(QLatin1String(".tmp")) && validId(name.chopped(4))))
            candidates << name;
    }
    ::closedir(d);
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    int removed = 0;
    for (const QString& name : std::as_const(candidates)) {
        const QString id = name.chopped(4);
        const QString base = m_dir + QLatin1Char('/') + id;
        if (name.endsWith(QLatin1String(".eml")) &&
            (QFile::exists(base + QStringLiteral(".spam")) || QFile::exists(base + QStringLiteral(".ham"))))
            continue;
        if (now - qint64(id.section(QLatin1Char('.'), 0, 0).toLongLong()) < ageSeconds) continue;
        if (::unlink(enc(m_dir + QLatin1Char('/') + name).constData()) == 0) ++removed;
    }
    return removed;
}

bool LearnSpool::drainLock() {
    if (m_locked) return true;
    if (m_lockFd < 0)
        m_lockFd =
            ::open(enc(m_dir + QStringLiteral("/lock")).constData(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (m_lockFd < 0) return false;
    m_locked = ::flock(m_lockFd, LOCK_EX | LOCK_NB) == 0;
    return m_locked;
}

}  // namespace postern::spam
