// block_sync.h — the supervisor's mirror of the temporary block list (<data_dir>/block-list,
// core/block_list.h) in the kernel: the nftables table `inet postern_block`
// (core/block_nftables.h), when auth.block_nftables is true.
//
// Interface:
//   configure(config)  at start and after each reload. On: look at the file every second and
//                      apply the table again when the file changed (inode, size or mtime), when
//                      the listener ports changed, when syncScript asked for a resync (an entry
//                      that was hidden by a broader one, a capped timeout) or 60 s after a
//                      failure. Off: the table is deleted (also one left over by a crash).
//   shutdown()         deletes the table and waits for nft (at most 5 s); for stop().
//   status()           for the status file (key "block_nftables"): {"enabled", "state"
//                      ("off", "syncing", "active", "error"), "table", "elements", "synced"
//                      (UTC, ISO 8601), "error"}; posternctl block list shows it.
//   processId()        the running nft, so the PID-1 reaper leaves it to QProcess.
//   changed            emitted when status() changed.
// The elements carry their own timeouts, so the kernel drops an expired address even when
// this process is gone; what a crashed supervisor leaves is removed at its next start.
//
// Security: runs as root. The block list lives in data_dir, which the daemon user owns: it is
// read with readFile (core/atomic_file.h), which as root goes through SafeDir (no planted link,
// FIFO or hard link followed; the error is reported in status()), and at most
// BlockList::kMaxFileBytes. Its content reaches nft only as addresses reformatted by
// core/block_nftables.h. nft is run from /usr/sbin or /sbin (root's folders), by argument
// vector, the script on its standard input; one nft at a time, killed after 10 s.
// Limits: one stat(2) per second while on; BlockList::kMaxEntries elements.
#pragma once

#include "core/atomic_file.h"
#include "core/config.h"

#include <QDateTime>
#include <QJsonObject>
#include <QList>
#include <QObject>
#include <QProcess>
#include <QTimer>

#include <memory>

namespace postern {

class BlockSync : public QObject {
    Q_OBJECT
public:
    explicit BlockSync(QObject* parent = nullptr);
    ~BlockSync() override;
    void configure(const Config& config);
    void shutdown();
    QJsonObject status() const;
    qint64 processId() const;

signals:
    void changed();

private:
    void tick();
    void runNft(const QByteArray& script, bool removal);
    void finished(bool ok, const QString& error);
    void setState(const QString& state, const QString& error = {});

    bool m_configured = false;
    bool m_enabled = false;
    QString m_path;
    QList<quint16> m_ports;
    QTimer m_timer;
    std::unique_ptr<QProcess> m_process;
    QTimer m_processDeadline;
    bool m_processRemoves = false;
    int m_pendingElements = 0;
    // What was applied last, and when to apply again regardless of the file.
    FileStamp m_stamp;
    QList<quint16> m_appliedPorts;
    bool m_dirty = true;
    qint64 m_resyncAtMs = 0;
    qint64 m_retryAtMs = 0;
    // Status.
    QString m_state = QStringLiteral("off");
    QString m_error;
    int m_elements = 0;
    QDateTime m_synced;
};

}  // namespace postern
