// update_announcement.cpp — see update_announcement.h.
#include "update_announcement.h"

#include "atomic_file.h"
#include "config.h"
#include "setting_keys.h"

#include <QEventLoop>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QRegularExpression>
#include <QTimer>
#include <QUrl>

#include <memory>

namespace postern {

std::optional<QList<quint32>> parseVersion(QStringView text) {
    if (text.startsWith(u'v')) text = text.mid(1);
    QList<quint32> parts;
    qsizetype i = 0;
    const qsizetype n = text.size();
    if (n == 0) return std::nullopt;
    while (true) {
        quint32 value = 0;
        int digits = 0;
        while (i < n && text[i] >= u'0' && text[i] <= u'9') {
            if (++digits > kMaxVersionDigits) return std::nullopt;
            value = value * 10 + quint32(text[i].unicode() - u'0');  // at most 6 digits: no overflow
            ++i;
        }
        if (digits == 0) return std::nullopt;
        if (parts.size() == kMaxVersionParts) return std::nullopt;
        parts << value;
        if (i == n) return parts;
        if (text[i] != u'.') return std::nullopt;
        ++i;
    }
}

std::optional<int> compareVersions(QStringView a, QStringView b) {
    const auto va = parseVersion(a);
    const auto vb = parseVersion(b);
    if (!va || !vb) return std::nullopt;
    for (int i = 0; i < kMaxVersionParts; ++i) {
        const quint32 x = i < va->size() ? va->at(i) : 0;
        const quint32 y = i < vb->size() ? vb->at(i) : 0;
        if (x != y) return x < y ? -1 : 1;
    }
    return 0;
}

namespace {

bool printable(const QString& text) {
    for (const QChar c : text)
        if (!c.isPrint() || c.category() == QChar::Other_Format) return false;  // no control or bidi characters
    return true;
}

Status validateUrl(const QString& url) {
    if (url.size() > kMaxUrlChars)
        return Status::fail(QStringLiteral("its URL is longer than %1 characters").arg(kMaxUrlChars));
    if (!printable(url) || url.contains(u' '))
        return Status::fail(QStringLiteral("its URL holds blanks or control characters"));
    for (const QChar c : url)  // RFC 3986: ASCII only (anything else percent-encoded), so no look-alike host names
        if (c.unicode() < 0x21 || c.unicode() > 0x7e) return Status::fail(QStringLiteral("its URL is not plain ASCII"));
    const QUrl u(url, QUrl::StrictMode);
    if (!u.isValid() || (u.scheme() != u"https" && u.scheme() != u"http") || u.host().isEmpty())
        return Status::fail(QStringLiteral("its URL is not an http(s) URL"));
    return {};
}

QString shown(const QString& version) {
    return version.startsWith(u'v') ? version.mid(1) : version;
}

}  // namespace

Result<Announcement> parseAnnouncement(const QByteArray& document) {
    if (document.size() > kMaxAnnouncementBytes)
        return Result<Announcement>::fail(
            QStringLiteral("the announcement is larger than %1 bytes").arg(kMaxAnnouncementBytes));
    Announcement a;
    const QByteArray trimmed = document.trimmed();
    if (trimmed.startsWith('{')) {
        QJsonParseError err{};
        const QJsonDocument doc = QJsonDocument::fromJson(trimmed, &err);
        if (err.error != QJsonParseError::NoError || !doc.isObject())
            return Result<Announcement>::fail(
                QStringLiteral("the announcement is not a JSON object (%1)").arg(err.errorString()));
        const QJsonObject o = doc.object();
        if (!o.value(QStringLiteral("version")).isString())
            return Result<Announcement>::fail(QStringLiteral("the announcement has no \"version\" string"));
        a.version = o.value(QStringLiteral("version")).toString();
        const QJsonValue url = o.value(QStringLiteral("url"));
        const QJsonValue notes = o.value(QStringLiteral("notes"));
        if (!url.isUndefined() && !url.isNull() && !url.isString())
            return Result<Announcement>::fail(QStringLiteral("the announcement's \"url\" is not a string"));
        if (!notes.isUndefined() && !notes.isNull() && !notes.isString())
            return Result<Announcement>::fail(QStringLiteral("the announcement's \"notes\" is not a string"));
        a.url = url.toString();
        a.notes = notes.toString();
    } else {
        // Text: "VERSION [URL]" on the first line.
        const qsizetype nl = trimmed.indexOf('\n');
        const QByteArray first = (nl < 0 ? trimmed : trimmed.left(nl)).trimmed();
        const QString line = QString::fromUtf8(first);
        const QStringList words = line.split(QRegularExpression(QStringLiteral("[ \\t]+")), Qt::SkipEmptyParts);
        if (words.isEmpty() || words.size() > 2)
            return Result<Announcement>::fail(QStringLiteral("the announcement's first line is not \"VERSION [URL]\""));
        a.version = words.at(0);
        if (words.size() == 2) a.url = words.at(1);
    }
    if (!parseVersion(a.version))
        return Result<Announcement>::fail(
            QStringLiteral("the announced version is not a version (digits and dots, at most %1 parts)")
                .arg(kMaxVersionParts));
    a.version = shown(a.version);
    if (!a.url.isEmpty())
        if (auto st = validateUrl(a.url); !st)
            return Result<Announcement>::fail(QStringLiteral("the announcement is refused: ") + st.errorMessage());
    if (a.notes.size() > kMaxNotesChars)
        return Result<Announcement>::fail(
            QStringLiteral("the announcement's notes are longer than %1 characters").arg(kMaxNotesChars));
    if (!printable(a.notes))
        return Result<Announcement>::fail(QStringLiteral("the announcement's notes hold control characters"));
    return a;
}

Result<Announcement> fetchAnnouncement(const QString& url, int timeoutMs) {
    if (auto st = validateUrl(url); !st)
        return Result<Announcement>::fail(QStringLiteral("update.announce_url: ") +
                                          st.errorMessage().replace(QStringLiteral("its URL"), QStringLiteral("it")));
    QNetworkAccessManager nam;
    QNetworkRequest req{QUrl(url)};
    req.setTransferTimeout(timeoutMs);
    req.setMaximumRedirectsAllowed(kMaxRedirects);
    req.setAttribute(QNetworkRequest::RedirectPolicyAttribute, QNetworkRequest::NoLessSafeRedirectPolicy);
    req.setHeader(QNetworkRequest::UserAgentHeader, QByteArrayLiteral("Postern/" POSTERN_VERSION));
    std::unique_ptr<QNetworkReply> reply(nam.get(req));
    QEventLoop loop;
    QTimer deadline;
    deadline.setSingleShot(true);
    bool timedOut = false;
    bool tooLarge = false;
    QObject::connect(&deadline, &QTimer::timeout, &loop, [&] {
        timedOut = true;
        reply->abort();
    });
    QObject::connect(reply.get(), &QNetworkReply::downloadProgress, &loop, [&](qint64 received, qint64 total) {
        if (received > kMaxAnnouncementBytes || total > kMaxAnnouncementBytes) {
            tooLarge = true;
            reply->abort();
        }
    });
    QObject::connect(reply.get(), &QNetworkReply::finished, &loop, &QEventLoop::quit);
    deadline.start(timeoutMs);
    if (!reply->isFinished()) loop.exec();
    if (tooLarge)
        return Result<Announcement>::fail(
            QStringLiteral("%1: the answer is larger than %2 bytes").arg(url).arg(kMaxAnnouncementBytes));
    if (timedOut)
        return Result<Announcement>::fail(QStringLiteral("%1: no answer within %2 s").arg(url).arg(timeoutMs / 1000.0));
    if (reply->error() != QNetworkReply::NoError)
        return Result<Announcement>::fail(QStringLiteral("%1: %2").arg(url, reply->errorString()));
    const int status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    if (status != 200) return Result<Announcement>::fail(QStringLiteral("%1: HTTP status %2").arg(url).arg(status));
    const QByteArray body = reply->read(kMaxAnnouncementBytes + 1);
    if (!reply->atEnd() || body.size() > kMaxAnnouncementBytes)
        return Result<Announcement>::fail(
            QStringLiteral("%1: the answer is larger than %2 bytes").arg(url).arg(kMaxAnnouncementBytes));
    auto a = parseAnnouncement(body);
    if (!a) return Result<Announcement>::fail(QStringLiteral("%1: %2").arg(url, a.errorMessage()));
    return a;
}

QString updateCachePath(const Config& config) {
    return config.configDir() + QLatin1Char('/') + QLatin1String(kUpdateCacheFileName);
}

namespace {

// The cache: {"url": ..., "checked": ISO, "ok": bool, "error": ..., "document": the announcement
// re-serialised as JSON (read back through parseAnnouncement)}. A cache for another URL is stale.
std::optional<UpdateCheck> readCache(const Config& config, const QString& url) {
    auto bytes = readFile(updateCachePath(config), 4 * kMaxAnnouncementBytes);
    if (!bytes) return std::nullopt;
    const QJsonObject o = QJsonDocument::fromJson(*bytes).object();
    if (o.value(QStringLiteral("url")).toString() != url) return std::nullopt;
    UpdateCheck c;
    c.checked = QDateTime::fromString(o.value(QStringLiteral("checked")).toString(), Qt::ISODate);
    if (!c.checked.isValid()) return std::nullopt;
    c.ok = o.value(QStringLiteral("ok")).toBool();
    if (c.ok) {
        auto a = parseAnnouncement(o.value(QStringLiteral("document")).toString().toUtf8());
        if (!a) return std::nullopt;
        c.announcement = *a;
    } else {
        c.error = o.value(QStringLiteral("error")).toString().left(kMaxUrlChars + 200);
        if (!printable(c.error)) return std::nullopt;
    }
    return c;
}

void writeCache(const Config& config, const QString& url, const UpdateCheck& c) {
    QJsonObject o{{QStringLiteral("url"), url},
                  {QStringLiteral("checked"), c.checked.toString(Qt::ISODate)},
                  {QStringLiteral("ok"), c.ok}};
    if (c.ok) {
        QJsonObject doc{{QStringLiteral("version"), c.announcement.version}};
        if (!c.announcement.url.isEmpty()) doc.insert(QStringLiteral("url"), c.announcement.url);
        if (!c.announcement.notes.isEmpty()) doc.insert(QStringLiteral("notes"), c.announcement.notes);
        o.insert(QStringLiteral("document"), QString::fromUtf8(QJsonDocument(doc).toJson(QJsonDocument::Compact)));
    } else {
        o.insert(QStringLiteral("error"), c.error);
    }
    (void)writeFileAtomic(updateCachePath(config), QJsonDocument(o).toJson(QJsonDocument::Compact),
                          0644);  // best effort
}

}  // namespace

UpdateCheck checkForUpdate(const Config& config, qint64 maxAgeSecs, int timeoutMs) {
    const QString url = get(config, keys::update::announceUrl);
    UpdateCheck c;
    if (url.isEmpty()) return c;
    const QDateTime now = QDateTime::currentDateTimeUtc();
    if (maxAgeSecs > 0) {
        if (auto cached = readCache(config, url)) {
            const qint64 age = cached->checked.secsTo(now);
            if (age >= 0 && age < (cached->ok ? maxAgeSecs : std::min(maxAgeSecs, kFailedRetrySecs))) return *cached;
        }
    }
    c.checked = now;
    auto a = fetchAnnouncement(url, timeoutMs);
    if (a) {
        c.ok = true;
        c.announcement = *a;
    } else {
        c.error = a.errorMessage();
        if (!printable(c.error)) c.error = QStringLiteral("%1: the check failed").arg(url);
    }
    writeCache(config, url, c);
    return c;
}

QString announcementLine(const UpdateCheck& check, const QString& running, bool* newer) {
    *newer = false;
    const QString when = check.checked.toString(Qt::ISODate);
    if (!check.ok) return QStringLiteral("cannot check for a newer image: %1 (checked %2)").arg(check.error, when);
    const auto cmp = compareVersions(check.announcement.version, running);
    if (!cmp)
        return QStringLiteral("cannot compare the announced %1 with the running %2")
            .arg(check.announcement.version, running);
    if (*cmp > 0) {
        *newer = true;
        QString line = QStringLiteral("newer image %1 available (running %2)").arg(check.announcement.version, running);
        if (!check.announcement.url.isEmpty()) line += QStringLiteral(": ") + check.announcement.url;
        if (!check.announcement.notes.isEmpty())
            line += QStringLiteral(" (") + check.announcement.notes + QLatin1Char(')');
        return line;
    }
    return QStringLiteral("up to date (running %1, announced %2, checked %3)")
        .arg(running, check.announcement.version, when);
}

}  // namespace postern
