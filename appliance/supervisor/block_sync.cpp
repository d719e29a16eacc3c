// block_sync.cpp — see block_sync.h.
#include "block_sync.h"

#include "core/block_list.h"
#include "core/block_nftables.h"
#include "core/log.h"
#include "core/setting_keys.h"

#include <QFileInfo>
#include <QProcessEnvironment>

#include <unistd.h>

namespace postern {

namespace {

constexpr int kPollMs = 1000;
constexpr int kNftTimeoutMs = 10'000;
constexpr qint64 kRetryMs = 60'000;

// Root runs nft only from root's own folders, never from $PATH.
QString nftProgram() {
    for (const char* path : {"/usr/sbin/nft", "/sbin/nft"}) {
        const QFileInfo f{QString::fromLatin1(path)};
        if (f.isFile() && f.isExecutable()) return f.absoluteFilePath();
    }
    return {};
}

qint64 nowMs() {
    return QDateTime::currentMSecsSinceEpoch();
}

}  // namespace

BlockSync::BlockSync(QObject* parent) : QObject(parent) {
    m_timer.setInterval(kPollMs);
    connect(&m_timer, &QTimer::timeout, this, &BlockSync::tick);
    m_processDeadline.setSingleShot(true);
    connect(&m_processDeadline, &QTimer::timeout, this, [this] {
        if (m_process) m_process->kill();  // finished() follows and reports it
    });
}

BlockSync::~BlockSync() {
    if (m_process) {
        m_process->disconnect(this);
        m_process->kill();
        m_process->waitForFinished(1000);
    }
}

void BlockSync::configure(const Config& config) {
    const bool first = !m_configured;
    m_configured = true;
    const bool was = m_enabled;
    m_enabled = get(config, keys::auth::blockNftables);
    m_path = BlockList::pathIn(config.dataDir());
    m_ports = blocknft::blockedPorts(config);
    if (m_enabled) {
        m_dirty = true;
        m_retryAtMs = 0;
        if (!was) setState(QStringLiteral("syncing"));
        m_timer.start();
        tick();
        return;
    }
    m_timer.stop();
    if (was) {
        runNft(blocknft::removeScript(), true);
    } else if (first && ::geteuid() == 0 && !nftProgram().isEmpty()) {
        // A table a crashed supervisor left behind; quiet when there is none (or no nftables).
        runNft(blocknft::removeScript(), true);
    }
}

void BlockSync::shutdown() {
    m_timer.stop();
    if (!m_enabled) return;
    m_enabled = false;
    runNft(blocknft::removeScript(), true);
    if (QProcess* p = m_process.get()) p->waitForFinished(kNftTimeoutMs / 2);
}

void BlockSync::tick() {
    if (!m_enabled || m_process) return;  // a running nft: looked at again on the next tick
    const FileStamp stamp = FileStamp::of(m_path);
    const qint64 now = nowMs();
    const bool due = m_dirty || !(stamp == m_stamp) || m_ports != m_appliedPorts ||
                     (m_resyncAtMs != 0 && now >= m_resyncAtMs) || (m_retryAtMs != 0 && now >= m_retryAtMs);
    if (!due) return;
    m_stamp = stamp;
    m_appliedPorts = m_ports;
    m_dirty = false;
    m_retryAtMs = 0;
    QList<BlockList::Entry> entries;
    if (stamp.exists) {
        // As root from the daemon user's folder: readFile goes through SafeDir (atomic_file.h).
        auto bytes = readFile(m_path, BlockList::kMaxFileBytes);
        if (!bytes) {
            finished(false, bytes.errorMessage());
            return;
        }
        entries = BlockList::parse(*bytes);
    }
    const blocknft::Script script = blocknft::syncScript(entries, now, m_ports);
    if (script.leftOut > 0)
        log::warn(u"supervisor.block_nftables_full",
                  log::Fields().add("elements", script.elements).add("left_out", script.leftOut));
    m_resyncAtMs = script.resyncAtMs;
    m_pendingElements = script.elements;
    runNft(script.text, false);
}

void BlockSync::runNft(const QByteArray& script, bool removal) {
    if (m_process) {  // a sync still running when the table is to go: it loses
        m_process->disconnect(this);
        m_process->kill();
        m_process->waitForFinished(1000);
        m_process.reset();
        m_processDeadline.stop();
    }
    m_processRemoves = removal;
    const QString nft = nftProgram();
    if (nft.isEmpty()) {
        finished(false, QStringLiteral("nft is not installed (looked for /usr/sbin/nft and /sbin/nft)"));
        return;
    }
    m_process = std::make_unique<QProcess>();
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("LC_ALL"), QStringLiteral("C"));
    m_process->setProcessEnvironment(env);
    QProcess* p = m_process.get();
    connect(p, &QProcess::finished, this, [this, p](int code, QProcess::ExitStatus status) {
        const QString err = QString::fromUtf8(p->readAllStandardError()).simplified().left(500);
        m_processDeadline.stop();
        m_process.release()->deleteLater();
        if (status != QProcess::NormalExit)
            finished(false,
                     QStringLiteral("nft did not finish (crashed, or killed after %1 s)").arg(kNftTimeoutMs / 1000));
        else
            finished(code == 0, err.isEmpty() ? QStringLiteral("nft exited %1").arg(code) : err);
    });
    connect(p, &QProcess::errorOccurred, this, [this, p, nft](QProcess::ProcessError e) {
        if (e != QProcess::FailedToStart) return;  // the others end in finished()
        m_processDeadline.stop();
        m_process.release()->deleteLater();
        finished(false, QStringLiteral("cannot run %1: %2").arg(nft, p->errorString()));
    });
    m_process->start(nft, blocknft::nftArguments());
    m_process->write(script);
    m_process->closeWriteChannel();
    m_processDeadline.start(kNftTimeoutMs);
}

void BlockSync::finished(bool ok, const QString& error) {
    const QString table = QStringLiteral("inet ") + blocknft::kTable;
    if (m_processRemoves) {
        m_processRemoves = false;
        const bool wasActive = m_state != u"off";
        m_elements = 0;
        m_synced = {};
        if (!ok && wasActive)
            log::error(u"supervisor.block_nftables_remove_failed",
                       log::Fields().add("table", table).add("error", error));
        else if (ok && wasActive)
            log::info(u"supervisor.block_nftables_removed", log::Fields().add("table", table));
        if (m_enabled) m_dirty = true;  // turned on again meanwhile: the next tick applies the table
        setState(m_enabled ? QStringLiteral("syncing") : QStringLiteral("off"));
        return;
    }
    if (!ok) {
        m_retryAtMs = nowMs() + kRetryMs;
        if (error != m_error || m_state != u"error")
            log::error(u"supervisor.block_nftables_failed",
                       log::Fields().add("table", table).add("error", error).add("retry_in_ms", kRetryMs));
        setState(QStringLiteral("error"), error);
        return;
    }
    const bool news = m_state != u"active" || m_elements != m_pendingElements;
    m_elements = m_pendingElements;
    m_synced = QDateTime::currentDateTimeUtc();
    if (news) log::info(u"supervisor.block_nftables", log::Fields().add("table", table).add("elements", m_elements));
    setState(QStringLiteral("active"));
}

void BlockSync::setState(const QString& state, const QString& error) {
    m_state = state;
    m_error = error;
    emit changed();
}

QJsonObject BlockSync::status() const {
    QJsonObject o;
    o.insert(QStringLiteral("enabled"), m_enabled);
    o.insert(QStringLiteral("state"), m_state);
    o.insert(QStringLiteral("table"), QStringLiteral("inet ") + blocknft::kTable);
    o.insert(QStringLiteral("elements"), m_elements);
    if (m_synced.isValid()) o.insert(QStringLiteral("synced"), m_synced.toString(Qt::ISODate));
    if (!m_error.isEmpty()) o.insert(QStringLiteral("error"), m_error);
    return o;
}

qint64 BlockSync::processId() const {
    return m_process ? qint64(m_process->processId()) : 0;
}

}  // namespace postern
