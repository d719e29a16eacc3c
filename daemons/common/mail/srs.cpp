// srs.cpp — see srs.h.
#include "srs.h"

#include "core/atomic_file.h"
#include "core/posix_io.h"
#include "core/process.h"

#include <QFile>
#include <QMessageAuthenticationCode>
#include <QRandomGenerator>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <array>
#include <cerrno>

namespace postern::mail {

namespace {
const char kBase32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr int kDayModulo = 1024;  // two base32 characters
constexpr int kHashChars = 8;     // 40 bits

int base32Value(QChar c) {
    const char u = char(c.toUpper().unicode() < 128 ? c.toUpper().unicode() : 0);
    for (int i = 0; i < 32; ++i)
        if (kBase32[i] == u) return i;
    return -1;
}

QString dayStamp(qint64 nowSecs) {
    const int day = int((nowSecs / 86400) % kDayModulo);
    return QString(QLatin1Char(kBase32[day / 32])) + QLatin1Char(kBase32[day % 32]);
}
}  // namespace

QString toString(Srs::Status status) {
    switch (status) {
        case Srs::Status::Valid:
            return QStringLiteral("valid");
        case Srs::Status::NotSrs:
            return QStringLiteral("not srs");
        case Srs::Status::Malformed:
            return QStringLiteral("malformed");
        case Srs::Status::BadHash:
            return QStringLiteral("bad hash");
        case Srs::Status::Expired:
            return QStringLiteral("expired");
    }
    return {};
}

bool isSrsLocalPart(const QString& local) {
    return local.startsWith(QStringLiteral("SRS0="), Qt::CaseInsensitive) ||
           local.startsWith(QStringLiteral("SRS1="), Qt::CaseInsensitive);
}

namespace {
// "SRS1=<hash>=<host>=<opaque>" split into its parts; false when it does not have that shape.
// <opaque> is what followed "SRS0" in the first forwarder's address, so it starts with '='.
bool splitSrs1(const QString& local, QString* h, QString* host, QString* opaque) {
    const QString rest = local.mid(5);
    const qsizetype e1 = rest.indexOf(QLatin1Char('='));
    const qsizetype e2 = e1 < 0 ? -1 : rest.indexOf(QLatin1Char('='), e1 + 1);
    if (e2 < 0) return false;
    *h = rest.left(e1);
    *host = rest.mid(e1 + 1, e2 - e1 - 1);
    *opaque = rest.mid(e2 + 1);
    return !host->isEmpty() && opaque->size() > 1 && opaque->startsWith(QLatin1Char('='));
}
}  // namespace

QString Srs::hash(const QString& timestamp, const QString& domain, const QString& local) const {
    const QByteArray data = (timestamp + QLatin1Char('=') + domain + QLatin1Char('=') + local).toLower().toUtf8();
    const QByteArray mac = QMessageAuthenticationCode::hash(data, m_key, QCryptographicHash::Sha256);
    // 40 bits -> 8 base32 characters.
    quint64 bits = 0;
    for (int i = 0; i < 5; ++i) bits = (bits << 8) | quint8(mac.at(i));
    QString out;
    for (int i = kHashChars - 1; i >= 0; --i) out += QLatin1Char(kBase32[(bits >> (5 * i)) & 31]);
    return out;
}

QString Srs::forward(const QString& sender, const QString& ourDomain, qint64 nowSecs) const {
    if (sender.isEmpty()) return {};  // the null sender stays null (RFC 5321 4.5.5)
    const qsizetype at = sender.lastIndexOf(QLatin1Char('@'));
    if (at <= 0 || at == sender.size() - 1) return {};
    const QString local = sender.left(at), domain = sender.mid(at + 1);
    if (isSrsLocalPart(local) && local.toUtf8().size() <= kMaxSrsLocalBytes) {
        // Already rewritten by us: SPF passes for our domain as it is.
        if (domain.compare(ourDomain, Qt::CaseInsensitive) == 0) return sender;
        // SRS1: an SRS0 address of the first forwarder is not wrapped again; we keep its
        // host and opaque part, and sign them, so a bounce reaches the first forwarder.
        if (local.startsWith(QStringLiteral("SRS0="), Qt::CaseInsensitive)) {
            const QString opaque = local.mid(4);  // "=<hash>=<tt>=<domain>=<local>"
            return QStringLiteral("SRS1=%1=%2=%3@%4")
                .arg(hash(QStringLiteral("SRS1"), domain, opaque), domain, opaque, ourDomain);
        }
        // An SRS1 address of another forwarder: the first forwarder's host and part, signed anew.
        QString h, host, opaque;
        if (splitSrs1(local, &h, &host, &opaque))
            return QStringLiteral("SRS1=%1=%2=%3@%4")
                .arg(hash(QStringLiteral("SRS1"), host, opaque), host, opaque, ourDomain);
        // Not of that shape: an ordinary address that merely looks like one (SRS0 below).
    }
    const QString tt = dayStamp(nowSecs);
    return QStringLiteral("SRS0=%1=%2=%3=%4@%5").arg(hash(tt, domain, local), tt, domain, local, ourDomain);
}

Srs::Decoded Srs::reverse(const QString& localPart, qint64 nowSecs) const {
    Decoded d;
    if (!isSrsLocalPart(localPart)) return d;
    d.status = Status::Malformed;
    if (localPart.toUtf8().size() > kMaxSrsLocalBytes) return d;
    if (localPart.startsWith(QStringLiteral("SRS1="), Qt::CaseInsensitive)) {
        QString h, host, opaque;
        if (!splitSrs1(localPart, &h, &host, &opaque) || h.size() != kHashChars) return d;
        if (h.compare(hash(QStringLiteral("SRS1"), host, opaque), Qt::CaseInsensitive) != 0) {
            d.status = Status::BadHash;
            return d;
        }
        // No date in SRS1: the first forwarder checks the age of its own SRS0 part.
        d.status = Status::Valid;
        d.original = QStringLiteral("SRS0") + opaque + QLatin1Char('@') + host;
        return d;
    }
    // SRS0=<hash>=<tt>=<domain>=<local>; the local part may itself contain '='.
    const QString rest = localPart.mid(5);
    const qsizetype e1 = rest.indexOf(QLatin1Char('='));
    const qsizetype e2 = e1 < 0 ? -1 : rest.indexOf(QLatin1Char('='), e1 + 1);
    const qsizetype e3 = e2 < 0 ? -1 : rest.indexOf(QLatin1Char('='), e2 + 1);
    if (e3 < 0) return d;
    const QString h = rest.left(e1), tt = rest.mid(e1 + 1, e2 - e1 - 1), domain = rest.mid(e2 + 1, e3 - e2 - 1),
                  local = rest.mid(e3 + 1);
    if (h.size() != kHashChars || tt.size() != 2 || domain.isEmpty() || local.isEmpty()) return d;
    const int hi = base32Value(tt.at(0)), lo = base32Value(tt.at(1));
    if (hi < 0 || lo < 0) return d;
    // The hash first: an unauthenticated timestamp says nothing.
    if (h.compare(hash(tt, domain, local), Qt::CaseInsensitive) != 0) {
        d.status = Status::BadHash;
        return d;
    }
    const int then = hi * 32 + lo;
    const int today = int((nowSecs / 86400) % kDayModulo);
    const int age = (today - then + kDayModulo) % kDayModulo;  // a date in the future is a large age
    if (age > m_maxAgeDays) {
        d.status = Status::Expired;
        return d;
    }
    d.status = Status::Valid;
    d.original = local + QLatin1Char('@') + domain;
    return d;
}

Result<QByteArray> loadOrCreateSrsKey(const QString& configDir, const QString& owner) {
    const QString path = configDir + QStringLiteral("/srs.key");
    auto parse = [&](const QByteArray& text) -> Result<QByteArray> {
        const QByteArray hex = text.trimmed();
        const QByteArray key = QByteArray::fromHex(hex);
        if (key.size() < 16 || key.toHex() != hex.toLower())
            return Result<QByteArray>::fail(
                QStringLiteral("%1: not a key (at least 32 hex digits expected)").arg(path));
        return key;
    };
    auto readKey = [&]() -> Result<QByteArray> {
        const int fd = ::open(QFile::encodeName(path).constData(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return errnoError(path, errno);
        auto text = readAll(fd, 4096, path);
        ::close(fd);
        if (!text) return text.error();
        return parse(*text);
    };
    if (auto key = readKey(); key || key.error().code != ENOENT) return key;
    // Not there yet: made here, once. A temporary file, then link(): exclusive, so two
    // daemons starting at the same time end up with the same key.
    std::array<quint32, kSrsKeyBytes / 4> words{};
    QRandomGenerator::system()->generate(words.begin(), words.end());
    const QByteArray key(reinterpret_cast<const char*>(words.data()), kSrsKeyBytes);
    const QString tmp = QStringLiteral("%1/.srs.key.%2.tmp").arg(configDir).arg(::getpid());
    const QByteArray tmpName = QFile::encodeName(tmp);
    ::unlink(tmpName.constData());
    const int fd = ::open(tmpName.constData(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return errnoError(tmp, errno);
    Status st = writeAll(fd, key.toHex() + '\n', tmp);
    if (st && ::geteuid() == 0 && !owner.isEmpty()) {
        if (auto ids = lookupUser(owner); ids && ::fchown(fd, uid_t(ids->uid), gid_t(ids->gid)) != 0)
            st = errnoError(tmp, errno);
    }
    if (st && ::fsync(fd) != 0) st = errnoError(tmp, errno);
    ::close(fd);
    if (st && ::link(tmpName.constData(), QFile::encodeName(path).constData()) != 0 && errno != EEXIST)
        st = errnoError(path, errno);
    ::unlink(tmpName.constData());
    if (!st) return st.error();
    (void)syncDirectory(configDir);
    return readKey();  // ours, or the one another daemon linked first
}

}  // namespace postern::mail
