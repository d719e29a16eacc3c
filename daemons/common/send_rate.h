// send_rate.h — per-user limits on submitted mail (messages and recipients per hour and per
// day), shared by every postern-smtpd process and kept across restarts.
//
// Why a small file per user in the data folder and not Redis: the limits must hold with
// spam.enabled = false (then no Redis runs), the count must survive a restart of the daemon
// (a stolen password is not reset by one), and submissions are rare enough (a few per minute
// on a busy appliance) that a read and an atomic rewrite of a < 4 KiB file under an flock per
// accepted message costs nothing that matters.
//
// Window logic (SendWindows, pure, tested with an injected clock): two sliding windows of
// buckets, the hour (60 buckets of 60 s) and the day (96 buckets of 15 min). An event at time
// t counts in its bucket, floor(t / width); a bucket counts while it is one of the window's
// last `buckets` buckets. So an event made at the start of a bucket counts for exactly the
// window's span (3600 s / 86400 s) and one made later in a bucket leaves up to one bucket
// width (60 s / 15 min) early: the limit is never exceeded by more than what that rounding
// allows, and the state is bounded (at most 60 + 96 buckets) whatever the traffic.
//
// File: <data_dir>/send-rate/<hex of SHA-256 of the lower-cased user, 32 chars>
//   "postern-send-rate 1" LF
//   *( ("h" / "d") SP bucket SP messages SP recipients LF )
// Read up to kMaxFileBytes, parsed strictly (a bad line is ignored, numbers bounded), empty
// or expired buckets dropped at the next write. Writes take an flock on <file>.lock and
// replace the file atomically (core/atomic_file.h).
//
// Interface:
//   SendLimits      the four limits (0 = none): smtp.user_messages_per_hour/_per_day,
//                   smtp.user_recipients_per_hour/_per_day.
//   SendWindows     add(now, messages, recipients), messagesIn/recipientsIn(window, now),
//                   exceeded(limits, now, addMessages, addRecipients): the first limit the
//                   addition would pass (used + add > limit), or nullopt; parse/serialize.
//   SendRateStore(dir)  check(user, limits, messages, recipients)  read only (MAIL, RCPT);
//                   record(user, limits, messages, recipients)  check and add in one locked
//                   step (end of DATA, before the delivery); both answer the limit that
//                   refuses, or nullopt. setClock(secsFn) for tests.
// Security: the user name never reaches the file system (hashed); the folder belongs to
// the daemon user. A store error (disk, lock timeout) lets the message through and is
// reported to the caller to log: a broken counter file must not stop a family's mail.
// Limits: kMaxFileBytes read; counts per bucket at most kMaxCount; the windows above.
#pragma once

#include "core/result.h"

#include <QByteArray>
#include <QMap>
#include <QString>

#include <functional>
#include <optional>

namespace postern {

struct SendLimits {
    qint64 messagesPerHour = 0, messagesPerDay = 0, recipientsPerHour = 0, recipientsPerDay = 0;
    bool any() const {
        return messagesPerHour > 0 || messagesPerDay > 0 || recipientsPerHour > 0 || recipientsPerDay > 0;
    }
};

struct SendLimitHit {
    QString name;      // "messages_per_hour", "messages_per_day", "recipients_per_hour", "recipients_per_day"
    qint64 limit = 0;  // the setting's value
    qint64 used = 0;   // counted in the window before this message
};

class SendWindows {
public:
    enum class Window { Hour, Day };
    static constexpr qint64 kHourBucketSecs = 60, kHourBuckets = 60;
    static constexpr qint64 kDayBucketSecs = 900, kDayBuckets = 96;
    static constexpr qint64 kMaxCount = 1'000'000'000;

    void add(qint64 nowSecs, qint64 messages, qint64 recipients);
    qint64 messagesIn(Window w, qint64 nowSecs) const;
    qint64 recipientsIn(Window w, qint64 nowSecs) const;
    std::optional<SendLimitHit> exceeded(const SendLimits& limits, qint64 nowSecs, qint64 addMessages,
                                         qint64 addRecipients) const;

    static SendWindows parse(const QByteArray& content);
    QByteArray serialize(qint64 nowSecs) const;  // live buckets only

private:
    struct Counts {
        qint64 messages = 0, recipients = 0;
    };
    static bool live(Window w, qint64 bucket, qint64 nowSecs);
    Counts sum(Window w, qint64 nowSecs) const;
    QMap<qint64, Counts> m_hour, m_day;  // bucket index -> counts
};

class SendRateStore {
public:
    static constexpr qint64 kMaxFileBytes = 64 * 1024;

    explicit SendRateStore(QString dir);
    void setClock(std::function<qint64()> secs) { m_clock = std::move(secs); }
    QString fileFor(const QString& user) const;

    Result<std::optional<SendLimitHit>> check(const QString& user, const SendLimits& limits, qint64 messages,
                                              qint64 recipients) const;
    Result<std::optional<SendLimitHit>> record(const QString& user, const SendLimits& limits, qint64 messages,
                                               qint64 recipients);

private:
    Result<SendWindows> read(const QString& path) const;
    QString m_dir;
    std::function<qint64()> m_clock;
};

}  // namespace postern
