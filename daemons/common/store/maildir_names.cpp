// maildir_names.cpp — see maildir_names.h.
#include "maildir_names.h"

#include <QAtomicInteger>
#include <QHostInfo>

#include <unistd.h>
#include <algorithm>
#include <ctime>

namespace postern::store {

namespace {
QAtomicInteger<quint64> g_counter;

QString safeHost() {
    static const QString host = [] {
        QString h = QHostInfo::localHostName();
        QString out;
        for (QChar c : h) {
            // maildir(5): '/' and ':' must not appear; '\057' and '\072' are the traditional escapes.
            if (c == QLatin1Char('/'))
                out += QStringLiteral("\\057");
            else if (c == QLatin1Char(':'))
                out += QStringLiteral("\\072");
            else if (c == QLatin1Char(','))
                out += QStringLiteral("\\054");
            else if (c.unicode() > 0x20 && c.unicode() < 0x7f)
                out += c;
        }
        return out.isEmpty() ? QStringLiteral("localhost") : out;
    }();
    return host;
}
}  // namespace

QString uniqueName(qint64 size) {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return QStringLiteral("%1.M%2P%3Q%4.%5,S=%6,W=%6")
        .arg(qint64(ts.tv_sec))
        .arg(qint64(ts.tv_nsec / 1000))
        .arg(::getpid())
        .arg(++g_counter)
        .arg(safeHost())
        .arg(size);
}

ParsedName parseFileName(const QString& name) {
    // Called for every file of a listing (100,000 in a large folder): the fields are read
    // as views of the name, so the base and the flags are the only strings made.
    ParsedName p;
    const qsizetype info = name.indexOf(u":2,");
    QStringView base(name);
    if (info >= 0) {
        base = base.left(info);
        p.base = name.left(info);
        p.flags = name.mid(info + 3);
        p.hasInfo = true;
    } else {
        p.base = name;
    }
    // ",S=123,W=125" fields after the first comma of the base (a later valid one wins).
    for (qsizetype comma = base.indexOf(u','); comma >= 0;) {
        const qsizetype next = base.indexOf(u',', comma + 1);
        const QStringView f = base.mid(comma + 1, next < 0 ? -1 : next - comma - 1);
        comma = next;
        qint64* target = f.startsWith(u"S=") ? &p.size : f.startsWith(u"W=") ? &p.vsize : nullptr;
        if (!target) continue;
        bool ok = false;
        const qint64 v = f.mid(2).toLongLong(&ok);
        if (ok) *target = v;
    }
    return p;
}

QString sortFlags(const QString& flags) {
    // Already sorted without repeats (every name this server wrote): the same string, no copy.
    if (std::adjacent_find(flags.cbegin(), flags.cend(), [](QChar a, QChar b) { return a >= b; }) == flags.cend())
        return flags;
    QString f = flags;
    std::sort(f.begin(), f.end());
    f.erase(std::unique(f.begin(), f.end()), f.end());
    return f;
}

QString withFlags(const QString& base, const QString& flags) {
    return base + QStringLiteral(":2,") + sortFlags(flags);
}

QString encodeMUtf7(const QString& text) {
    QString out;
    QByteArray pending;  // UTF-16BE bytes of a run of non-printable-ASCII characters
    auto flush = [&] {
        if (pending.isEmpty()) return;
        QByteArray b64 = pending.toBase64(QByteArray::OmitTrailingEquals);
        b64.replace('/', ',');
        out += QLatin1Char('&') + QString::fromLatin1(b64) + QLatin1Char('-');
        pending.clear();
    };
    for (QChar c : text) {
        const char16_t u = c.unicode();
        if (u >= 0x20 && u <= 0x7e) {
            flush();
            if (u == '&')
                out += QStringLiteral("&-");
            else
                out += c;
        } else {
            pending.append(char(u >> 8));
            pending.append(char(u & 0xff));
        }
    }
    flush();
    return out;
}

Result<QString> decodeMUtf7(const QString& text) {
    QString out;
    for (qsizetype i = 0; i < text.size(); ++i) {
        const QChar c = text.at(i);
        if (c.unicode() < 0x20 || c.unicode() > 0x7e)
            return Result<QString>::fail(QStringLiteral("not modified UTF-7"));
        if (c != QLatin1Char('&')) {
            out += c;
            continue;
        }
        const qsizetype end = text.indexOf(QLatin1Char('-'), i + 1);
        if (end < 0) return Result<QString>::fail(QStringLiteral("unterminated &-sequence"));
        if (end == i + 1) {
            out += QLatin1Char('&');
            i = end;
            continue;
        }
        QByteArray b64 = text.mid(i + 1, end - i - 1).toLatin1();
        if (b64.contains('/') || b64.contains('=')) return Result<QString>::fail(QStringLiteral("bad base64 in name"));
        b64.replace(',', '/');
        auto dec = QByteArray::fromBase64Encoding(b64, QByteArray::AbortOnBase64DecodingErrors);
        if (!dec || dec.decoded.size() % 2 != 0) return Result<QString>::fail(QStringLiteral("bad base64 in name"));
        QString chunk;
        for (qsizetype k = 0; k < dec.decoded.size(); k += 2)
            chunk += QChar(char16_t((uchar(dec.decoded[k]) << 8) | uchar(dec.decoded[k + 1])));
        // RFC 3501: printable ASCII must not be encoded (keeps names canonical).
        for (QChar ch : chunk)
            if (ch.unicode() >= 0x20 && ch.unicode() <= 0x7e)
                return Result<QString>::fail(QStringLiteral("needlessly encoded ASCII"));
        out += chunk;
        i = end;
    }
    return out;
}

bool validFolderPart(const QString& part) {
    if (part.isEmpty() || part.startsWith(QLatin1Char('.'))) return false;
    if (part.toUtf8().size() > 255) return false;
    for (QChar c : part) {
        if (c.unicode() < 0x20 || c.unicode() == 0x7f) return false;
        if (c == QLatin1Char('.') || c == QLatin1Char('/') || c == QLatin1Char('\\')) return false;
        if (c.isSurrogate() && !c.isHighSurrogate() && !c.isLowSurrogate()) return false;
    }
    return true;
}

Result<QString> folderDirName(const QStringList& parts) {
    if (parts.isEmpty()) return Result<QString>::fail(QStringLiteral("empty folder name"));
    QString out;
    for (const QString& p : parts) {
        if (!validFolderPart(p))
            return Result<QString>::fail(
                QStringLiteral("folder name part '%1' is not allowed (empty, dots, slashes or control characters)")
                    .arg(p));
        out += QLatin1Char('.') + encodeMUtf7(p);
    }
    if (out.toUtf8().size() > 1024) return Result<QString>::fail(QStringLiteral("folder name too long"));
    return out;
}

QStringList folderParts(const QString& dirName) {
    if (!dirName.startsWith(QLatin1Char('.')) || dirName.size() < 2 || dirName == u"..") return {};
    QStringList out;
    for (const QString& enc : dirName.mid(1).split(QLatin1Char('.'))) {
        auto dec = decodeMUtf7(enc);
        if (!dec || !validFolderPart(*dec)) return {};
        out << *dec;
    }
    return out;
}

}  // namespace postern::store
