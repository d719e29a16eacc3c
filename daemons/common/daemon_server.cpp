// daemon_server.cpp — see daemon_server.h.
#include "daemon_server.h"

#include "core/block_list.h"

#include "shared_counters.h"

#include "core/accounts.h"
#include "core/log.h"
#include "core/posix_io.h"
#include "core/setting_keys.h"
#include "core/stats.h"
#include "core/tls.h"

#include <QDateTime>
#include <QFileInfo>
#include <QTcpSocket>
#include <QTimer>

#include <malloc.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace postern {

DaemonServer::DaemonServer(const Config& config, QString program, SessionFactory factory, QObject* parent)
    : QObject(parent),
      m_config(config),
      m_program(std::move(program)),
      m_specs(listenersOf(m_program)),
      m_factory(std::move(factory)) {
    m_options.handshakeTimeoutMs = get(config, keys::tls::handshakeTimeout);
    m_heapTrim.setSingleShot(true);
    m_heapTrim.setInterval(2000);
    connect(&m_heapTrim, &QTimer::timeout, this, [] {
#ifdef __GLIBC__
        // Unlike glibc's own trimming (top of the heap only), this also releases free
        // pages between live chunks: the handshake buffers of connections now idle.
        malloc_trim(0);
#endif
    });
}

// Not restarted by every event: under steady churn this trims every 2 s, not never.
void DaemonServer::trimHeapSoon() {
    if (!m_heapTrim.isActive()) m_heapTrim.start();
}

DaemonServer::~DaemonServer() {
    // Connections that never finished (the server goes first) must not stay counted.
    for (const QString& key : std::as_const(m_connections)) releaseCounts(key);
}

Status DaemonServer::reloadTls() {
    if (m_specs.isEmpty()) return {};  // no listeners (postern-queued): no server certificate needed
    auto tls = serverTlsContext(m_config);
    if (!tls) return tls.error();
    m_tls = *tls;  // connections made before keep the context they started with
    return {};
}

void DaemonServer::watchCertificate() {
    if (m_specs.isEmpty()) return;
    const QString cert = get(m_config, keys::tls::cert), key = get(m_config, keys::tls::key);
    for (const QString& p : {cert, key, QFileInfo(cert).absolutePath(), QFileInfo(key).absolutePath()})
        if (QFileInfo::exists(p) && !m_certWatch.files().contains(p) && !m_certWatch.directories().contains(p))
            m_certWatch.addPath(p);
    m_certReload.setSingleShot(true);
    m_certReload.setInterval(1000);  // let a writer finish both files (key first, then chain)
    connect(&m_certWatch, &QFileSystemWatcher::fileChanged, this, [this] { m_certReload.start(); });
    connect(&m_certWatch, &QFileSystemWatcher::directoryChanged, this, [this] { m_certReload.start(); });
    connect(&m_certReload, &QTimer::timeout, this, [this, cert, key] {
        // Files replaced by rename drop out of the watch list: add them again.
        for (const QString& p : {cert, key})
            if (QFileInfo::exists(p) && !m_certWatch.files().contains(p)) m_certWatch.addPath(p);
        auto info = certificateInfo(cert);
        if (!info) return;
        if (auto st = reloadTls(); st)
            log::info(u"tls.reloaded",
                      log::Fields().add("certificate", cert).add("until", info->notAfter.toString(Qt::ISODate)));
        else
            log::error(u"tls.reload_failed", log::Fields().add("error", st.errorMessage()));
    });
}

Status DaemonServer::start() {
    if (auto st = reloadTls(); !st) return st;
    watchCertificate();
    for (const ListenerInfo& spec : m_specs) {
        const auto addresses = m_config.listeners(spec.settingKey());
        for (const ListenAddress& la : addresses) {
            auto* l = new Listener(spec.mode, this);
            if (!m_inherited.isEmpty()) {
                // A worker process: the first process bound this address, in this same order.
                if (m_listeners.size() >= m_inherited.size() ||
                    !l->setSocketDescriptor(m_inherited.at(m_listeners.size()))) {
                    delete l;
                    for (Listener* other : m_listeners) other->close();
                    return Status::fail(QStringLiteral("%1 %2: the inherited listening socket is missing")
                                            .arg(listenerName(spec.mode), la.toString()));
                }
            } else if (!l->listen(la.address, la.port)) {
                // QHostAddress::Any ("*") is dual-stack: IPv6 and IPv4-mapped on one socket.
                const QString err =
                    QStringLiteral("%1 %2: %3").arg(listenerName(spec.mode), la.toString(), l->errorString());
                delete l;
                for (Listener* other : m_listeners) other->close();
                return Status::fail(err);
            }
            l->setMaxPendingConnections(512);
            connect(l, &Listener::descriptorAccepted, this, [this, l](qintptr fd) { accept(l, fd); });
            m_listeners << l;
            log::info(u"listen", log::Fields()
                                     .add("listener", listenerName(spec.mode))
                                     .add("address", ListenAddress{l->serverAddress(), l->serverPort()}.toString()));
        }
    }
    if (!m_inherited.isEmpty() && m_listeners.size() != m_inherited.size())
        return Status::fail(QStringLiteral("the configuration has %1 listening addresses, the first process passed %2")
                                .arg(m_listeners.size())
                                .arg(m_inherited.size()));
    return {};
}

QList<int> DaemonServer::listenerDescriptors() const {
    QList<int> out;
    for (const Listener* l : m_listeners) out << int(l->socketDescriptor());
    return out;
}

QMap<QString, QStringList> DaemonServer::listenerAddresses() const {
    QMap<QString, QStringList> out;
    for (const Listener* l : m_listeners) {
        QHostAddress a = l->serverAddress();
        out[listenerName(l->mode())] << ListenAddress{a, l->serverPort()}.toString();
    }
    return out;
}

void DaemonServer::setLimits(int maxConnections, int maxPerAddress, Refusal refusal) {
    m_maxConnections = maxConnections;
    m_maxPerAddress = maxPerAddress;
    m_refusal = std::move(refusal);
}

QString DaemonServer::addressKey(const QHostAddress& address) {
    bool isV4 = false;
    const quint32 v4 = address.toIPv4Address(&isV4);
    if (isV4) return QHostAddress(v4).toString();
    // IPv6 clients get a /64 each: one host usually owns a whole /64.
    Q_IPV6ADDR a = address.toIPv6Address();
    for (int i = 8; i < 16; ++i) a[i] = 0;
    return QHostAddress(a).toString() + QStringLiteral("/64");
}

// Over a limit: the refusal line (if the protocol has one readable before TLS), then close.
// Short-lived, so a QTcpSocket's buffers do not matter here.
void DaemonServer::refuse(Listener* listener, qintptr descriptor) {
    auto* socket = new QTcpSocket;
    if (!socket->setSocketDescriptor(descriptor)) {
        ::close(int(descriptor));
        delete socket;
        return;
    }
    // Implicit-TLS listeners cannot say anything readable before a handshake; just close.
    if (m_refusal && !isImplicitTls(listener->mode())) socket->write(m_refusal(listener->mode()));
    socket->disconnectFromHost();
    connect(socket, &QTcpSocket::disconnected, socket, &QObject::deleteLater);
    QTimer::singleShot(5000, socket, [socket] {
        socket->abort();
        socket->deleteLater();
    });
}

QByteArray DaemonServer::blockedRefusal(ListenerMode mode) {
    switch (listenerInfo(mode).protocol) {
        case Protocol::Smtp:
            return "554 5.7.1 Your address is blocked for now (too many failed logins)\r\n";  // RFC 5321 3.1
        case Protocol::Imap:
            return "* BYE Your address is blocked for now (too many failed logins)\r\n";
        case Protocol::Pop3:
            return "-ERR Your address is blocked for now (too many failed logins)\r\n";
        case Protocol::ManageSieve:
            return "BYE \"Your address is blocked for now (too many failed logins)\"\r\n";  // RFC 5804 1.2
        case Protocol::Http:
            break;
    }
    return {};
}

void DaemonServer::setBlockList(BlockList* list, int pollMs) {
    m_blockList = list;
    if (list) {
        list->refresh();
        m_blockGeneration = list->generation();
    }
    m_blockPoll.setInterval(pollMs);
    connect(&m_blockPoll, &QTimer::timeout, this, &DaemonServer::pollSessions, Qt::UniqueConnection);
    if (m_blockList || m_accounts)
        m_blockPoll.start();
    else
        m_blockPoll.stop();
}

void DaemonServer::setAccounts(AccountStore* accounts) {
    m_accounts = accounts;
    m_accountsSeen = accounts ? accounts->current() : nullptr;
    connect(&m_blockPoll, &QTimer::timeout, this, &DaemonServer::pollSessions, Qt::UniqueConnection);
    if (m_blockPoll.interval() <= 0) m_blockPoll.setInterval(kBlockPollMs);
    if (!m_blockList && !m_accounts)
        m_blockPoll.stop();
    else if (!m_blockPoll.isActive())
        m_blockPoll.start();
}

void DaemonServer::pollSessions() {
    closeBlockedSessions();
    closeDisabledSessions();
}

QByteArray DaemonServer::accountClosing(ListenerMode mode, const QString& text) {
    const QByteArray t = text.toUtf8();
    switch (listenerInfo(mode).protocol) {
        case Protocol::Smtp:
            return "421 4.7.1 " + t + ", closing connection\r\n";  // RFC 5321 3.8
        case Protocol::Imap:
            return "* BYE " + t + "\r\n";  // RFC 9051 7.1.5
        case Protocol::Pop3:
            return "-ERR " + t + "\r\n";
        case Protocol::ManageSieve:
            return "BYE \"" + t + "\"\r\n";  // RFC 5804 1.2
        case Protocol::Http:
            break;
    }
    return {};
}

// Sessions logged in as an account that has since been disabled (or removed): closed once the
// daemon's account snapshot shows it (AccountStore::current(), the daemons' one view of the files).
void DaemonServer::closeDisabledSessions() {
    if (!m_accounts || m_shuttingDown) return;
    std::shared_ptr<const Accounts> snapshot = m_accounts->current();
    if (!snapshot || snapshot == m_accountsSeen) return;
    m_accountsSeen = snapshot;
    for (Connection* conn : m_connections.keys()) {
        const ProtocolSession* session = conn->session();
        const QString user = session ? session->authenticatedUser() : QString();
        if (user.isEmpty()) continue;
        const UserRecord* u = snapshot->user(user);
        if (u && !u->disabled) continue;
        const QString reason = u ? QStringLiteral("account disabled") : QStringLiteral("account removed");
        const ConnectionInfo& info = conn->info();
        stats::add(QStringLiteral("postern_connections_account_closed_total"),
                   {{QStringLiteral("listener"), listenerName(info.mode)}});
        log::write(log::Level::Warning, info.sessionId, u"connection.account_closed",
                   log::Fields()
                       .add("listener", listenerName(info.mode))
                       .add("remote", info.peerAddress.toString())
                       .add("user", user)
                       .add("reason", reason));
        conn->closeBlocked(
            accountClosing(info.mode, u ? QStringLiteral("Account disabled") : QStringLiteral("Account removed")),
            reason);
    }
}

QByteArray DaemonServer::blockedClosing(ListenerMode mode) {
    // RFC 5321 3.8: an open SMTP session is closed with 421.
    if (listenerInfo(mode).protocol == Protocol::Smtp)
        return "421 4.7.1 Your address is blocked for now (too many failed logins), closing connection\r\n";
    return blockedRefusal(mode);
}

// Sessions opened before their client's address was blocked: closed after the list changes.
void DaemonServer::closeBlockedSessions() {
    if (!m_blockList || m_shuttingDown || m_connections.isEmpty()) return;
    m_blockList->refresh();
    if (m_blockList->generation() == m_blockGeneration) return;
    m_blockGeneration = m_blockList->generation();
    for (Connection* conn : m_connections.keys()) {
        const ConnectionInfo& info = conn->info();
        const auto entry = m_blockList->blocked(info.peerAddress);
        if (!entry) continue;
        stats::add(QStringLiteral("postern_connections_blocked_closed_total"),
                   {{QStringLiteral("listener"), listenerName(info.mode)}});
        log::write(log::Level::Warning, info.sessionId, u"connection.blocked_closed",
                   log::Fields()
                       .add("listener", listenerName(info.mode))
                       .add("remote", info.peerAddress.toString())
                       .add("entry", entry->subnet)
                       .add("source", entry->source));
        conn->closeBlocked(blockedClosing(info.mode));
    }
}

void DaemonServer::accept(Listener* listener, qintptr descriptor) {
    QHostAddress peer;
    quint16 peerPort = 0;
    if (!Connection::peerOf(descriptor, &peer, &peerPort)) {
        log::warn(u"accept.failed", log::Fields().add("error", errnoText(errno)));
        ::close(int(descriptor));
        return;
    }
    // The temporary block list first: nothing is counted, read or handshaken for a blocked client.
    if (m_blockList && !m_shuttingDown) {
        if (const auto entry = m_blockList->blocked(peer)) {
            stats::add(QStringLiteral("postern_connections_blocked_total"),
                       {{QStringLiteral("listener"), listenerName(listener->mode())}});
            log::warn(u"connection.blocked",
                      log::Fields()
                          .add("listener", listenerName(listener->mode()))
                          .add("remote", peer.toString())
                          .add("entry", entry->subnet)
                          .add("source", entry->source)
                          .add("until", QDateTime::fromMSecsSinceEpoch(entry->untilMs, Qt::UTC).toString(Qt::ISODate)));
            auto* socket = new QTcpSocket;
            if (!socket->setSocketDescriptor(descriptor)) {
                ::close(int(descriptor));
                delete socket;
                return;
            }
            if (!isImplicitTls(listener->mode())) socket->write(blockedRefusal(listener->mode()));
            socket->disconnectFromHost();
            connect(socket, &QTcpSocket::disconnected, socket, &QObject::deleteLater);
            QTimer::singleShot(5000, socket, [socket] {
                socket->abort();
                socket->deleteLater();
            });
            return;
        }
    }
    // Counted across all processes of this daemon (shared_counters.h).
    SharedCounters& counts = SharedCounters::process();
    const QString key = QStringLiteral("ip:") + addressKey(peer);
    const QString globalKey = QStringLiteral("connections");
    const bool overGlobal = !m_shuttingDown && !counts.tryAcquire(globalKey, m_maxConnections);
    const bool overAddress = !m_shuttingDown && !overGlobal && !counts.tryAcquire(key, m_maxPerAddress);
    if (overAddress) counts.release(globalKey);
    if (m_shuttingDown || overGlobal || overAddress) {
        stats::add(QStringLiteral("postern_connections_refused_total"),
                   {{QStringLiteral("listener"), listenerName(listener->mode())}});
        log::warn(u"connection.refused", log::Fields()
                                             .add("listener", listenerName(listener->mode()))
                                             .add("remote", peer.toString())
                                             .add("reason", m_shuttingDown ? "shutting down"
                                                            : overGlobal   ? "too many connections"
                                                                           : "too many connections from this address"));
        refuse(listener, descriptor);
        return;
    }
    stats::add(QStringLiteral("postern_connections_total"),
               {{QStringLiteral("listener"), listenerName(listener->mode())}});
    auto* conn = new Connection(descriptor, listener->mode(), m_tls, m_options, this);
    conn->setSession(m_factory(*conn, listener->mode()));
    m_connections.insert(conn, key);
    connect(conn, &Connection::finished, this, [this, conn] {
        releaseCounts(m_connections.take(conn));
        conn->deleteLater();
        trimHeapSoon();
    });
    Q_EMIT connectionOpened(conn);
    conn->begin();
    trimHeapSoon();
}

QList<Connection*> DaemonServer::connections() const {
    return m_connections.keys();
}

void DaemonServer::releaseCounts(const QString& addressKey) {
    SharedCounters::process().release(addressKey);
    SharedCounters::process().release(QStringLiteral("connections"));
}

void DaemonServer::shutdown(int graceMs, std::function<void()> done) {
    m_shuttingDown = true;
    for (Listener* l : m_listeners) l->close();
    for (Connection* c : m_connections.keys()) c->shutdown();
    if (m_connections.isEmpty()) {
        QMetaObject::invokeMethod(
            this, [done] { done(); }, Qt::QueuedConnection);
        return;
    }
    auto* timer = new QTimer(this);
    timer->setInterval(50);
    auto started = std::make_shared<QElapsedTimer>();
    started->start();
    connect(timer, &QTimer::timeout, this, [this, timer, started, graceMs, done] {
        if (!m_connections.isEmpty() && started->elapsed() < graceMs) return;
        timer->stop();
        timer->deleteLater();
        if (!m_connections.isEmpty())
            log::warn(u"shutdown.forced", log::Fields().add("connections", int(m_connections.size())));
        done();
    });
    timer->start();
}

}  // namespace postern
