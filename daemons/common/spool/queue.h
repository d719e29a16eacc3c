// queue.h — the outbound queue on disk (the spool).
//
// Layout under <data_dir>/queue/:
//   tmp/        message content while it is being received (not yet acknowledged)
//   incoming/   accepted by postern-smtpd, not yet seen by the queue runner
//   active/ deferred/ hold/ corrupt/   owned by the queue runner (postern-queued)
// Each message is two files named by its queue id: <id>.body (the message as
// it will be sent: our Received header, then the content, CRLF line endings)
// and <id>.env (the envelope). The envelope is written last and atomically,
// so a message exists for the runner exactly when its .env exists.
//
// Envelope format (text, UTF-8, one field per line, first line the version):
//   POSTERN-QUEUE 1
//   id: <queue id>
//   arrival: <unix seconds>
//   sender: <address, empty for the null sender>
//   auth-user: <authenticated user, or empty>
//   client: <client ip> <helo name>
//   body: 7BIT | 8BITMIME
//   smtputf8: yes | no
//   ret: FULL | HDRS | (empty)
//   envid: <RFC 3461 ENVID, xtext-decoded, or empty>
//   size: <bytes of the .body file>
//   recipient: <address> notify=<NEVER|SUCCESS,FAILURE,DELAY|-> orcpt=<type;xtext|-> status=<pending|sent|failed>
//   (orcpt in the RFC 3461 wire form, e.g. "rfc822;a+2Bb@x" or "utf-8;j\x{F6}rg@x",
//   see common/mail/dsn_params.h; older files may hold "rfc822;" + a bare address)
//   (one recipient line per recipient; status since version 2, "pending" when absent)
// Version 2 adds the queue runner's bookkeeping:
//   attempts: <n>   first-attempt: <unix>   next-attempt: <unix>   delay-notified: yes|no
//   diagnostic: <address> <last SMTP reply or error for that recipient>
//   remote-mta: <address> <host that answered>
// Version 1 files (written before the runner existed) are read as version 2.
// Values never contain CR or LF (they come from parsed SMTP commands).
//
// Interface: QueueState (the folders above but tmp/) with toString() (the folder
// name, also used in listings and metrics) and stateDir(); isValidQueueId(),
// newQueueId(), QueueWriter (two-phase: prepare
// writes the body link and a temporary envelope, fsync'd; commit renames the
// envelope into place and fsyncs the folder; abort removes both),
// Envelope::parse()/serialize(), listQueue(), readEnvelope() (one message's
// envelope, at most kMaxEnvelopeBytes; Error::code ENOENT when the file is
// gone, 0 when it does not parse), enqueueMessage() (a new message made in
// memory, e.g. a DSN or a Sieve vacation reply, or a header plus a range of a
// file, e.g. a Sieve redirect: written to tmp/, fsync'd, queued to incoming/
// with QueueWriter), writeNewFileSynced() (exclusive create, write, fsync).
// Security: queue ids are validated (16 upper-case hex digits) before any path
// is built from them.
#pragma once

#include "core/result.h"

#include <QDateTime>
#include <QList>
#include <QString>
#include <QStringList>

#include <optional>

namespace postern::spool {

inline constexpr int kEnvelopeVersion = 2;
inline constexpr qint64 kMaxEnvelopeBytes = 1024 * 1024;

enum class QueueState { Incoming, Active, Deferred, Hold, Corrupt };
QString toString(QueueState s);                           // "incoming", "active", ...: the folder's name
const QList<QueueState>& queueStates();                   // all of them, in this order
QString stateDir(const QString& queueDir, QueueState s);  // <queueDir>/<state>

bool isValidQueueId(const QString& id);
QString newQueueId();

struct EnvelopeRecipient {
    enum class Status { Pending, Sent, Failed };
    QString address;
    QString notify;  // "" = not given
    QString orcpt;   // "" = not given
    Status status = Status::Pending;
    QString diagnostic;  // last reply or error, e.g. "550 5.1.1 User unknown"
    QString remoteMta;   // the host that gave it
    bool operator==(const EnvelopeRecipient&) const = default;
};
QString toString(EnvelopeRecipient::Status s);

struct Envelope {
    QString id;
    qint64 arrival = 0;
    QString sender;
    QString authUser;
    QString clientAddress;
    QString clientHelo;
    QString bodyType = QStringLiteral("7BIT");
    bool smtpUtf8 = false;
    QString ret;
    QString envid;
    qint64 size = 0;
    QList<EnvelopeRecipient> recipients;
    // Queue runner bookkeeping (version 2).
    int attempts = 0;
    qint64 firstAttempt = 0;
    qint64 nextAttempt = 0;
    bool delayNotified = false;
    bool done() const;  // no recipient is pending
    QStringList extra;  // lines of later versions/extensions we keep verbatim

    QByteArray serialize() const;
    static Result<Envelope> parse(const QByteArray& text);
};

class QueueWriter {
public:
    explicit QueueWriter(QString queueDir);
    ~QueueWriter();
    QueueWriter(const QueueWriter&) = delete;
    QueueWriter& operator=(const QueueWriter&) = delete;

    // bodyPath: a complete file on the same file system (the received spool file);
    // it is fsync'd and hard-linked as incoming/<id>.body.
    Status prepare(const Envelope& envelope, const QString& bodyPath);
    Status commit();
    void abort();

private:
    QString m_dir;
    QString m_id;
    QString m_body;
    QString m_envTmp;
    QString m_env;
    bool m_prepared = false;
    bool m_committed = false;
};

struct QueueEntry {
    QueueState state;
    Envelope envelope;
};
// All messages in all states (envelopes that fail to parse are reported in `errors`).
QList<QueueEntry> listQueue(const QString& queueDir, QStringList* errors = nullptr);

// Paths of a message's files in a state folder (id validated by the caller).
QString envelopePath(const QString& queueDir, QueueState state, const QString& id);
QString bodyPath(const QString& queueDir, QueueState state, const QString& id);
// Rewrites the envelope in place (atomic, fsync'd).
Status saveEnvelope(const QString& queueDir, QueueState state, const Envelope& envelope);
// Moves a message (body first, envelope last) between state folders.
Status moveMessage(const QString& queueDir, const QString& id, QueueState from, QueueState to);
// Removes a message (envelope first, so it never looks complete without its body).
Status removeMessage(const QString& queueDir, QueueState state, const QString& id);
// Finds the state folder a message is in (nullopt when none, or the id is invalid).
std::optional<QueueState> stateOf(const QString& queueDir, const QString& id);
// A message's envelope (ENOENT: no such file; other failures: it does not parse).
Result<Envelope> readEnvelope(const QString& queueDir, QueueState state, const QString& id);
// Queues a message built in memory (a DSN, a vacation reply) into incoming/; returns its new queue id.
Result<QString> enqueueMessage(const QString& queueDir, Envelope envelope, const QByteArray& content);
// The same for `head` followed by `length` bytes of `fd` from `offset` (a redirected message:
// the body is copied by the kernel, never held in memory). Both take the one path: tmp/,
// fsync, QueueWriter prepare + commit (the folder fsync'd) before they return.
Result<QString> enqueueMessage(const QString& queueDir, Envelope envelope, const QByteArray& head, int fd,
                               qint64 offset, qint64 length);
// Creates `path` exclusively (O_EXCL|O_NOFOLLOW, 0600), writes `data`, fsyncs; removed on failure.
Status writeNewFileSynced(const QString& path, const QByteArray& data);

}  // namespace postern::spool
