// update_announcement.h — "is a newer Postern image announced?": the small document an
// administrator may point update.announce_url at, the version comparison, the fetch and the
// cached result that `posternctl version` and `posternctl status` show.
//
// Postern never asks anyone by itself: with update.announce_url empty (the default) nothing is
// fetched. The document is whatever the administrator trusts (the project's page, a mirror, a
// file on their own web server), one of:
//   JSON   {"version": "0.2.0", "url": "https://example.org/postern-0.2.0", "notes": "one line"}
//          "version" is required; "url" and "notes" are optional; other members are ignored.
//   text   the version, optionally followed by blanks and an URL, on the first line ("0.2.0 https://...");
//          further lines are ignored.
// Version grammar: an optional 'v', then 1..kMaxVersionParts numbers separated by '.', each of
// 1..kMaxVersionDigits ASCII digits. Compared number by number, missing parts counting as 0
// (1.2 == 1.2.0). Anything else (signs, letters, pre-release tags, blanks inside) is refused.
//
// Interface:
//   parseVersion(text)           the numbers, or nullopt for text outside the grammar.
//   compareVersions(a, b)        <0, 0, >0; nullopt when either is not a version.
//   parseAnnouncement(bytes)     Result<Announcement>; a clear error for anything else.
//   fetchAnnouncement(url, ms)   GET (http or https only; TLS verified against the system CAs; at
//                                most kMaxRedirects redirects, never https -> http), the whole
//                                exchange bounded by `ms`, the body by kMaxAnnouncementBytes;
//                                runs a local event loop: for command-line tools only, never
//                                inside a daemon's event loop.
//   checkForUpdate(config, maxAgeSecs, timeoutMs)
//                                the cached result (<config_dir>/update-announcement.json) when
//                                younger than maxAgeSecs (a failed check: kFailedRetrySecs),
//                                else a fetch whose result is cached (written atomically; a cache
//                                that cannot be written is only not cached). maxAgeSecs 0 = fetch now.
//   announcementLine(check, running)
//                                "newer image X available (running Y): URL", "up to date (...)"
//                                or "cannot check: ..."; *newer tells which.
// Security: the document comes from the network (possibly an attacker in the middle of plain
// http, or a hostile server): it is bounded in size, parsed strictly, and only validated values
// reach the terminal (the URL must parse as http(s) and hold no control characters; notes are
// printable text). The cache is read back through the same parser. The fetch never sends
// anything but the GET with a User-Agent naming the running version.
// Limits: kMaxAnnouncementBytes 4096, kMaxVersionParts 4, kMaxVersionDigits 6, kMaxUrlChars 512,
// kMaxNotesChars 200, kMaxRedirects 3, kCheckIntervalSecs 24 h, kFailedRetrySecs 1 h,
// kStatusTimeoutMs 5 s (status), kVersionTimeoutMs 10 s (posternctl version).
// Standards: RFC 8259 (JSON), RFC 9110 (HTTP GET, redirects), RFC 3986 (URLs).
#pragma once

#include "result.h"

#include <QByteArray>
#include <QDateTime>
#include <QList>
#include <QString>

#include <optional>

namespace postern {

class Config;

inline constexpr qint64 kMaxAnnouncementBytes = 4096;
inline constexpr int kMaxVersionParts = 4;
inline constexpr int kMaxVersionDigits = 6;
inline constexpr int kMaxUrlChars = 512;
inline constexpr int kMaxNotesChars = 200;
inline constexpr int kMaxRedirects = 3;
inline constexpr qint64 kCheckIntervalSecs = 24 * 3600;
inline constexpr qint64 kFailedRetrySecs = 3600;
inline constexpr int kStatusTimeoutMs = 5000;
inline constexpr int kVersionTimeoutMs = 10000;
inline constexpr const char* kUpdateCacheFileName = "update-announcement.json";

struct Announcement {
    QString version;  // valid per parseVersion
    QString url;      // empty or an http(s) URL
    QString notes;    // empty or printable text
};

struct UpdateCheck {
    QDateTime checked;  // UTC; invalid when never checked
    bool ok = false;
    QString error;              // when !ok
    Announcement announcement;  // when ok
};

std::optional<QList<quint32>> parseVersion(QStringView text);
std::optional<int> compareVersions(QStringView a, QStringView b);
Result<Announcement> parseAnnouncement(const QByteArray& document);
Result<Announcement> fetchAnnouncement(const QString& url, int timeoutMs);
QString updateCachePath(const Config& config);
UpdateCheck checkForUpdate(const Config& config, qint64 maxAgeSecs, int timeoutMs);
QString announcementLine(const UpdateCheck& check, const QString& running, bool* newer);

}  // namespace postern
