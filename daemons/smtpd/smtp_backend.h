// smtp_backend.h — what an SMTP session needs from the rest of the system,
// behind an interface so the session stays free of I/O and testable.
//
// Interface (all called on the main thread):
//   checkRecipient()  synchronous lookup in the accounts snapshot (RFC 5321
//                     requires an answer per RCPT; the snapshot is in memory).
//   maySendAs()       submission policy for MAIL FROM.
//   storageAvailable() whether a new message (of the declared SIZE, 0 when none)
//                     may be accepted with the free space left (smtp.min_free_space;
//                     cheap: a cached statvfs, core/disk_space.h); false -> 452 4.3.1.
//   authenticate()    asynchronous (common/auth_request.h); the callback runs
//                     on the main thread, never after request.context is destroyed.
//   openBody()        a fresh spool file for the content of one message.
//   sendLimit()       per-user submission limits (common/send_rate.h): the limit
//                     that `messages` more messages to `recipients` more recipients
//                     would pass, or nullopt; with record, counts them when within
//                     (end of DATA). A store error is nullopt with *error set (the
//                     message goes through, the caller logs). Default: no limits.
//   deliver()         asynchronous: local copies + queue, all durable before
//                     the callback reports success; may refuse the content
//                     (PermFail, e.g. 550 5.7.1 for a submitted message whose
//                     From: the user may not use, or 550/451 by the spam
//                     filter's verdict) before storing anything.
#pragma once

#include "smtp_command.h"
#include "smtp_data.h"

#include "common/auth_request.h"
#include "common/send_rate.h"

#include <QHostAddress>
#include <QObject>
#include <QStringList>
#include <functional>
#include <memory>

namespace postern::smtp {

struct RecipientInfo {
    QString address;        // as it goes into the queue / Delivered-To (normalised for local ones)
    QStringList mailboxes;  // local users that get a copy
    QStringList forwards;   // remote addresses (aliases pointing elsewhere, or remote RCPT)
    QString notify;         // DSN NOTIFY=
    QString orcpt;          // DSN ORCPT=
};

enum class RcptVerdict { Ok, Unknown, RelayDenied, MailboxFull, TempFail, BadAddress };

// The spool file a message's content is written to while it arrives.
class SpoolBody : public BodySink {
public:
    virtual QString queueId() const = 0;
    virtual QString path() const = 0;
    virtual int fd() const = 0;
    virtual qint64 size() const = 0;
};

struct MessageJob {
    QString queueId;
    QString sender;  // "" = null sender
    QString authUser;
    QString clientAddress;
    QString clientHelo;
    QString tlsProtocol, tlsCipher;  // "" without TLS (for the spam filter)
    bool eightBit = false;
    bool smtpUtf8 = false;
    QString ret, envid;
    QList<RecipientInfo> recipients;
    std::shared_ptr<SpoolBody> body;  // Received header + content, CRLF
    QString sessionId;
};

struct DeliveryOutcome {
    enum class Status { Delivered, TempFail, PermFail };
    Status status = Status::TempFail;
    int code = 451;
    QString enhanced = QStringLiteral("4.3.0");
    QString text;    // for the client
    QString detail;  // for the log
};

class SmtpBackend {
public:
    virtual ~SmtpBackend() = default;
    virtual RcptVerdict checkRecipient(const MailPath& path, bool authenticated, qint64 messageSize, RecipientInfo* out,
                                       QString* detail) = 0;
    virtual bool maySendAs(const QString& user, const MailPath& from) = 0;
    virtual bool vrfyAllowed() const = 0;
    virtual bool storageAvailable(qint64 declaredSize, QString* detail) = 0;
    virtual void authenticate(const AuthRequest& request, QByteArray password, AuthDone done) = 0;
    // A new spool file under a fresh queue id (the id is the file's identity everywhere after).
    virtual std::shared_ptr<SpoolBody> openBody(QString* error) = 0;
    virtual void deliver(QObject* context, MessageJob job, std::function<void(DeliveryOutcome)> done) = 0;
    virtual std::optional<SendLimitHit> sendLimit(const QString& /*user*/, qint64 /*messages*/, qint64 /*recipients*/,
                                                  bool /*record*/, QString* /*error*/) {
        return std::nullopt;
    }
};

}  // namespace postern::smtp
