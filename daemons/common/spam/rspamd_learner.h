// rspamd_learner.h — drains the learn spool (learn_spool.h) to Rspamd's controller:
// POST /learnspam or /learnham with "Deliver-To: <user>" (Rspamd's per-user Bayes
// statistics, users_enabled) over the controller's unix socket, one request at a time,
// asynchronously on the daemon's event loop (Qt Network; nothing here blocks).
//
// Interface:
//   RspamdLearner(spool, controllerSocket, password, timeoutMs, parent)
//   kick()            drain soon (after an enqueue); ignored while waiting to retry.
//   setIntervals(pollMs, retryMs)  how often the spool is looked at (requests of other
//                     processes, crash leftovers) and how long to wait after Rspamd failed.
//   busy()            a request is on the wire.
// Only the process holding the spool's drain lock sends (others keep polling for the lock);
// it watches the spool folder (inotify through QFileSystemWatcher), so a request queued by
// any imapd process is sent at once, and looks again every pollMs anyway.
// Outcome of one request (logged as spam.learn, counted in postern_spam_learns_total
// {class, result}):
//   2xx  learned (200) or skipped by Rspamd (208 already learned, 204 too few tokens):
//        the request is removed;
//   4xx  refused (a message Rspamd will never take): removed, logged as a warning;
//   5xx  Rspamd failed: kept, retried after retryMs; removed after kMaxServerErrors such
//        answers in a row for the same request (it would block the queue forever);
//   no connection, no answer within timeoutMs, a malformed answer: kept, retried after
//        retryMs, without limit (Rspamd down must not lose the user's training).
// Security: the controller password is sent in the Password field and never logged; the
// user name comes from the spool (no control characters, bounded) and goes into one
// field. The reply is read bounded (kMaxReply) and only its status line is used.
// Limits: kMaxReply bytes of reply; kChunk bytes read from the message at a time and at
// most kMaxBuffered bytes queued in the socket; kBatch requests per look at the spool.
// Standards: RFC 9112 (HTTP/1.1 message syntax), Rspamd controller protocol.
#pragma once

#include "learn_spool.h"

#include <QByteArray>
#include <QElapsedTimer>
#include <QFile>
#include <QFileSystemWatcher>
#include <QHash>
#include <QList>
#include <QObject>
#include <QPointer>
#include <QTimer>

#include <memory>

class QLocalSocket;

namespace postern::spam {

class RspamdLearner : public QObject {
    Q_OBJECT
public:
    static constexpr qsizetype kMaxReply = 64 * 1024;
    static constexpr qint64 kChunk = 64 * 1024;
    static constexpr qint64 kMaxBuffered = 256 * 1024;
    static constexpr qsizetype kBatch = 64;
    static constexpr int kMaxServerErrors = 5;

    RspamdLearner(LearnSpool& spool, QString controllerSocket, QByteArray password, int timeoutMs,
                  QObject* parent = nullptr);
    ~RspamdLearner() override;

    void kick();
    void setIntervals(int pollMs, int retryMs);
    bool busy() const { return m_socket != nullptr; }

    // The request head (exposed for tests): no password field when `password` is empty.
    static QByteArray requestHead(LearnClass cls, const QString& user, const QByteArray& password, qint64 length);
    // The status code of a reply's status line, or -1 when it is not "HTTP/1.x NNN".
    static int statusOf(const QByteArray& reply);

private:
    void tick();
    void startNext();
    void pump();
    void finished();
    void fail(const QString& why);
    void deferAll();

    LearnSpool& m_spool;
    QString m_socketPath;
    QByteArray m_password;
    int m_timeoutMs;
    int m_retryMs = 60'000;
    QTimer m_poll;
    QFileSystemWatcher m_watch;
    QTimer m_timeout;
    QElapsedTimer m_sinceFailure;
    bool m_waitingToRetry = false;
    QList<LearnEntry> m_batch;
    std::optional<LearnEntry> m_current;
    QLocalSocket* m_socket = nullptr;
    std::unique_ptr<QFile> m_file;
    QByteArray m_reply;
    QHash<QString, int> m_serverErrors;  // id -> 5xx answers in a row
};

}  // namespace postern::spam
