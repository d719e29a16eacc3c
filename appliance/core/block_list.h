// block_list.h — the temporary block list of client addresses shared by every daemon
// (postern-smtpd, -imapd, -pop3d) and `posternctl block`.
//
// Entries come from two places: the daemons add the address of a client whose failed
// logins (counted by the shared auth throttle, auth_throttle.h) reach
// auth.block_after_failures within auth.failure_window, for auth.block_duration; an
// administrator adds or removes entries with `posternctl block add|remove`. Every
// listener consults the list when it accepts a connection, before any byte is read or a
// TLS handshake starts (daemon_server.h): a blocked client gets a refusal line where the
// protocol has one readable before TLS (SMTP 554, IMAP BYE, POP3 -ERR) and is closed,
// and a "connection.blocked" log line.
// With auth.block_nftables the supervisor also mirrors the file into an nftables set, so the
// kernel drops those clients on Postern's ports before any daemon sees them (block_nftables.h).
//
// File: <data_dir>/block-list (survives restarts; expired entries are ignored and
// dropped at the next write):
//   "postern-block-list 1" LF
//   *( subnet SP until-ms SP source LF )   subnet = address "/" prefix length (canonical),
//                                          until-ms = Unix time in ms, source = "auth" | "admin"
// Changes take an flock on <file>.lock and rewrite the file atomically (core/atomic_file.h).
//
// Interface:
//   BlockList(path), pathIn(dataDir) (the file's path); setClock(msFn) for tests (default: wall clock).
//   blocked(peer)   the unexpired entry covering `peer` (IPv4-mapped IPv6 is taken as IPv4),
//                   or nullopt. Re-reads the file only when its (inode, size, mtime) changed:
//                   one stat(2) per call otherwise.
//   add(address, durationMs, source)  `address` an IP ("192.0.2.7", "2001:db8::1") or a
//                   subnet ("192.0.2.0/24"); an existing entry for the same subnet gets the
//                   new expiry. Fails on a bad address, a duration out of range or a full list.
//   refresh()       re-reads the file if it changed (one stat(2)); generation() counts the
//                   reloads, so a caller notices any change however it was read
//                   (the daemons close open sessions of newly blocked clients with it).
//   remove(address) true when an entry was removed.
//   list()          the unexpired entries, soonest expiry first.
//   autoBlockSubnet(peer)  what the daemons block for a peer: IPv4 /32, IPv6 /48 (the auth
//                   throttle's unit, auth_throttle.h).
//   parseSubnet(text) the canonical "address/prefix" or an error.
// Security: the file lives in data_dir, written by the daemon user (automatic blocks) and
// root (posternctl; atomic_file.h's root path refuses links planted there). Its content is
// parsed strictly: a bad line is ignored, the file is read up to kMaxFileBytes.
// Limits: kMaxEntries unexpired entries (an add beyond it fails; the daemons log it);
// durations kMinDurationMs (1 minute) to kMaxDurationMs (30 days); kMaxFileBytes read.
#pragma once

#include "atomic_file.h"
#include "result.h"

#include <QHostAddress>
#include <QList>
#include <QString>

#include <functional>
#include <optional>

namespace postern {

class BlockList {
public:
    static constexpr int kMaxEntries = 4096;
    static constexpr qint64 kMinDurationMs = 60'000;
    static constexpr qint64 kMaxDurationMs = qint64(30) * 24 * 3600 * 1000;
    static constexpr qint64 kMaxFileBytes = 1024 * 1024;

    struct Entry {
        QString subnet;  // "192.0.2.7/32"
        qint64 untilMs = 0;
        QString source;  // "auth" or "admin"
    };

    // The one file every user of the list reads: <data_dir>/block-list.
    static QString pathIn(const QString& dataDir) { return dataDir + QStringLiteral("/block-list"); }

    explicit BlockList(QString path);
    void setClock(std::function<qint64()> clock) { m_clock = std::move(clock); }
    const QString& path() const { return m_path; }

    std::optional<Entry> blocked(const QHostAddress& peer);
    void refresh() { reloadIfChanged(); }
    quint64 generation() const { return m_generation; }
    Status add(const QString& address, qint64 durationMs, const QString& source);
    Result<bool> remove(const QString& address);
    Result<QList<Entry>> list();

    static QString autoBlockSubnet(const QHostAddress& peer);
    static Result<QString> parseSubnet(const QString& text);
    // File content <-> entries (exposed for tests): parse skips bad lines.
    static QList<Entry> parse(const QByteArray& content);
    static QByteArray serialize(const QList<Entry>& entries);

private:
    struct Parsed {
        QHostAddress network;
        int prefix = 0;
        Entry entry;
    };
    Result<QList<Entry>> readLocked() const;
    Result<bool> update(const std::function<Result<bool>(QList<Entry>&)>& change);
    void reloadIfChanged();
    qint64 now() const { return m_clock(); }

    QString m_path;
    std::function<qint64()> m_clock;
    FileStamp m_stamp;
    bool m_loaded = false;
    QList<Parsed> m_cache;
    quint64 m_generation = 0;
};

}  // namespace postern
