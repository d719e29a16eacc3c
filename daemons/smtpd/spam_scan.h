// spam_scan.h — one asynchronous Rspamd scan of a spooled message (POST /checkv2 over a unix
// socket or loopback TCP, Qt Network, on the daemon's event loop).
//
// Interface: RspamdScan::start(parent, target, request head, fd, offset, length, timeoutMs, done)
// connects, writes the request head, then streams [offset, offset+length) of `fd` in chunks of
// kChunk bytes as the socket drains (pread: no shared file offset, the message is never in
// memory twice), and feeds the reply to spam::RspamdReplyParser. `done(result)` runs exactly
// once on the main thread: the verdict, or an error (connection refused, timeout, malformed
// reply, I/O error); never after `parent` is destroyed (the scan is its child). The scan
// deletes itself after `done`.
// parseTarget("…")  "/path.sock" (unix socket) or "127.0.0.1:11333" / "[::1]:11333"
// (loopback only: the message travels unencrypted).
// Security: the reply is parsed strictly and bounded (spam/rspamd_protocol.h); the socket
// only ever goes to a local Rspamd. The caller keeps `fd` open until `done` (it holds the
// spool file's shared_ptr in its callback).
// Limits: spam.timeout for the whole exchange; at most kMaxBuffered bytes queued in the socket.
// Standards: RFC 9112 (HTTP/1.1), Rspamd protocol.
#pragma once

#include "common/spam/rspamd_protocol.h"

#include "core/result.h"

#include <QHostAddress>
#include <QIODevice>
#include <QObject>
#include <QPointer>
#include <QTimer>
#include <functional>

namespace postern::smtp {

struct RspamdTarget {
    QString socketPath;    // non-empty: a unix socket
    QHostAddress address;  // else loopback TCP
    quint16 port = 0;
};
Result<RspamdTarget> parseRspamdTarget(const QString& text);

class RspamdScan : public QObject {
    Q_OBJECT
public:
    static constexpr qint64 kChunk = 64 * 1024;
    static constexpr qint64 kMaxBuffered = 256 * 1024;
    using Done = std::function<void(Result<spam::Verdict>)>;
    static void start(QObject* parent, const RspamdTarget& target, QByteArray head, int fd, qint64 offset,
                      qint64 length, int timeoutMs, Done done);

private:
    RspamdScan(QObject* parent, QByteArray head, int fd, qint64 offset, qint64 length, Done done);
    void connected();
    void pump();
    void readReply();
    void finish(Result<spam::Verdict> r);

    QIODevice* m_socket = nullptr;
    QTimer m_timer;
    QByteArray m_head;
    int m_fd;
    qint64 m_next, m_end;
    spam::RspamdReplyParser m_parser;
    Done m_done;
    bool m_finished = false;
};

}  // namespace postern::smtp
