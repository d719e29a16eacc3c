// daemon_server.h — listeners, connection limits and lifecycle of one daemon.
//
// Interface:
//   DaemonServer(config, program, factory)
//     binds the listeners the listener table (core/services.h) gives `program`
//     (postern-smtpd: smtp.listen as Mx, submission.listen, submissions.listen);
//     a program without rows there (postern-queued) listens nowhere.
//     factory(io, mode) -> the ProtocolSession for a new connection.
//   start()        load TLS (core serverTlsContext), bind every address of
//                  every enabled listener (port 0 = OS chooses). Errors name the
//                  listener and address ("smtp 0.0.0.0:25: address in use").
//   listenerAddresses()  {"smtp": ["127.0.0.1:34567"], ...} for the ready file.
//   setLimits(global, perIp, refusal)  over-limit connections get `refusal(mode)`
//                  (a protocol-correct "try later" line) and are closed at once.
//   setBlockList(list)  every accepted connection is first looked up in the temporary
//                  block list (core/block_list.h): a blocked client gets blockedRefusal(mode)
//                  (SMTP 554 5.7.1, IMAP * BYE, POP3 -ERR; nothing on implicit-TLS ports,
//                  before any handshake), a "connection.blocked" log line, and is closed.
//                  Sessions already open are checked too: every kBlockPollMs the list's
//                  file is looked at (one stat(2)); after a change, each connection whose
//                  peer is now blocked gets blockedClosing(mode) (SMTP 421 4.7.1, IMAP
//                  * BYE, POP3 -ERR, ManageSieve BYE) at once, whatever it was doing,
//                  a "connection.blocked_closed" log line and
//                  postern_connections_blocked_closed_total{listener}, and is closed.
//   setAccounts(store)  sessions of accounts that are disabled or removed while logged in
//                  are closed: on the same kBlockPollMs tick the daemon asks the store for
//                  its snapshot (AccountStore::current(), reloaded when the files changed,
//                  the way every daemon learns of account changes); when it is a new one,
//                  each connection whose ProtocolSession::authenticatedUser() is now
//                  disabled or gone gets accountClosing(mode) (SMTP 421 4.7.1, IMAP * BYE,
//                  POP3 -ERR, ManageSieve BYE: "Account disabled"), a
//                  "connection.account_closed" log line with the reason and
//                  postern_connections_account_closed_total{listener}, and is closed.
//   shutdown(graceMs, done)  stop accepting, let every session say goodbye,
//                  abort what is left after graceMs, then call done.
//   reloadTls()    re-read certificate and key for new connections.
//   Heap: a few seconds after connections open or close, free heap pages are
//   returned to the kernel (malloc_trim): each TLS handshake leaves ~5 KiB of
//   holes between the long-lived allocations of idle connections.
//
//   adoptListeners(fds) / listenerDescriptors()  the sockets a worker process
//                  inherits from the first process (daemon_main, imap.processes).
//
// Limits: global and per-client-address connection counts (IPv6 per /64),
// shared by all processes of the daemon (shared_counters.h).
// Security: the TLS configuration is built once in core/tls.cpp.
#pragma once

#include "connection.h"

#include "core/config.h"
#include "core/result.h"
#include "core/services.h"

#include <QFileSystemWatcher>
#include <QHash>
#include <QList>
#include <QMap>
#include <QSet>
#include <QTcpServer>
#include <QTimer>
#include <functional>
#include <memory>

namespace postern {

class AccountStore;
class Accounts;
class BlockList;

class Listener : public QTcpServer {
    Q_OBJECT
public:
    Listener(ListenerMode mode, QObject* parent) : QTcpServer(parent), m_mode(mode) {}
    ListenerMode mode() const { return m_mode; }

Q_SIGNALS:
    void descriptorAccepted(qintptr descriptor);

protected:
    void incomingConnection(qintptr descriptor) override { Q_EMIT descriptorAccepted(descriptor); }

private:
    ListenerMode m_mode;
};

class DaemonServer : public QObject {
    Q_OBJECT
public:
    using SessionFactory = std::function<std::unique_ptr<ProtocolSession>(SessionIo& io, ListenerMode mode)>;
    using Refusal = std::function<QByteArray(ListenerMode mode)>;

    DaemonServer(const Config& config, QString program, SessionFactory factory, QObject* parent = nullptr);
    ~DaemonServer() override;

    Status start();
    QMap<QString, QStringList> listenerAddresses() const;
    void setLimits(int maxConnections, int maxPerAddress, Refusal refusal);
    static constexpr int kBlockPollMs = 1000;
    void setBlockList(BlockList* list, int pollMs = kBlockPollMs);
    static QByteArray blockedRefusal(ListenerMode mode);
    static QByteArray blockedClosing(ListenerMode mode);
    void setAccounts(AccountStore* accounts);
    static QByteArray accountClosing(ListenerMode mode, const QString& text);
    void setConnectionOptions(const Connection::Options& options) { m_options = options; }
    Status reloadTls();
    void shutdown(int graceMs, std::function<void()> done);
    int connectionCount() const { return int(m_connections.size()); }
    QList<Connection*> connections() const;
    // Worker processes: listening sockets bound by the first process, one per listener
    // address in configuration order; start() adopts them instead of binding.
    void adoptListeners(QList<int> descriptors) { m_inherited = std::move(descriptors); }
    QList<int> listenerDescriptors() const;

Q_SIGNALS:
    void connectionOpened(Connection* connection);

private:
    void accept(Listener* listener, qintptr descriptor);
    void refuse(Listener* listener, qintptr descriptor);
    void trimHeapSoon();
    static QString addressKey(const QHostAddress& a);

    const Config& m_config;
    QString m_program;
    QList<ListenerInfo> m_specs;  // this program's rows of the listener table
    SessionFactory m_factory;
    Refusal m_refusal;
    BlockList* m_blockList = nullptr;
    QTimer m_blockPoll;
    quint64 m_blockGeneration = 0;
    void closeBlockedSessions();
    AccountStore* m_accounts = nullptr;
    std::shared_ptr<const Accounts> m_accountsSeen;  // the snapshot the open sessions were last checked against
    void pollSessions();
    void closeDisabledSessions();
    QList<Listener*> m_listeners;
    ServerTlsContext m_tls;  // shared by the connections accepted until the next reload
    // The certificate and key files (and their folders, since tools replace files by
    // rename): a change reloads TLS for new connections, no SIGHUP needed.
    QFileSystemWatcher m_certWatch;
    QTimer m_certReload;
    QTimer m_heapTrim;
    void watchCertificate();
    Connection::Options m_options;
    int m_maxConnections = 1000;
    int m_maxPerAddress = 50;
    QHash<Connection*, QString> m_connections;  // -> its key in the shared counts
    void releaseCounts(const QString& addressKey);
    QList<int> m_inherited;
    bool m_shuttingDown = false;
};

}  // namespace postern
