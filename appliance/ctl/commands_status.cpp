// commands_status.cpp — posternctl status, version and dkim list|rotate|remove-retired.
//   status  what the supervisor reports (<run_dir>/postern-appliance.status,
//           trusted only when root wrote it: ctl.h supervisorPid()): each daemon,
//           its state and listeners, restarts, why it keeps restarting (a program
//           of the service table, core/services.h, missing from that report is
//           listed as "not reported" and fails); the queue size (counted by file
//           name); the certificate's names and expiry.
//           The scheduled backup: a failed or overdue one is a WARNING line.
//           The queue's oldest message (mtime of its .body, written once at
//           arrival; the .env is rewritten at each attempt).
//           Disk space of each file system holding the data, mail and queue
//           folders (core/disk_space.h): a WARNING line from 80 % used, an ERROR
//           line from 95 % or when less than smtp.min_free_space is left (then
//           postern-smtpd answers 452 4.3.1 to new mail).
//           The DNS resolver Postern and Rspamd use (core/dns.h resolverSummary); the bundled
//           unbound is one of the services above.
//           The spam filter (spam.enabled): "spam filter: on (rspamd at ...)" once Rspamd
//           answers GET /ping with pong within 3 s, else a WARNING line (mail is
//           then accepted unchecked or answered 451, spam.on_failure); the number of
//           messages accepted unchecked since postern-smtpd started (its stats file).
//           How security updates arrive (security_updates.h): automatic with the last run,
//           by image (container), or a WARNING (stale, never run, reboot needed).
//           Exit 1 when the supervisor is not running, a service is not running
//           (running and disabled are fine; starting, restarting, missing, stopped, unreported fail),
//           a disk is at the ERROR level or the certificate has expired.
//           Where the data lives (/run/postern-storage, written by the VM's postern-datadisk:
//           the data disk or the root file system), when that file exists and root owns it.
//           With update.announce_url set: "image: newer image X available (running Y): URL",
//           "image: up to date (...)" or "image: cannot check ..." (core/update_announcement.h;
//           the check is cached a day, a failed one an hour, and waits at most 5 s).
//   version the program version, the data folder's format version and the range
//           this build reads (core/data_version.h); exit 1 for a newer format. With
//           update.announce_url set it asks now (at most 10 s) whether a newer image is
//           announced; without, it says it did not ask. The check never changes the exit code.
//   dkim    the DKIM key store (core/dkim_keys.h).
#include "ctl.h"
#include "security_updates.h"

#include "common/spool/queue.h"

#include "core/atomic_file.h"
#include "core/data_version.h"
#include "core/disk_space.h"
#include "core/dkim_keys.h"
#include "core/dns.h"
#include "core/safe_path.h"
#include "core/services.h"
#include "core/setting_keys.h"
#include "core/spam_engine.h"
#include "core/spam_status.h"
#include "core/tls.h"
#include "core/update_announcement.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <algorithm>
#include <csignal>
#include <cstring>
#include <memory>

namespace postern::ctl {

namespace {

struct QueueSummary {
    qsizetype count = 0;
    qint64 oldest = 0;  // unix seconds of the oldest message's body; 0 when none
};

QueueSummary queueSummary(const Config& config) {
    QueueSummary q;
    for (const spool::QueueState state : spool::queueStates()) {
        const QString folder = spool::stateDir(config.queueDir(), state);
        // As root walked without following a link planted in place of the folder (the
        // daemon user's); the files are only stat'ed (no link followed), never opened.
        QStringList names;
        FileHandle dirFd;
        if (::geteuid() == 0) {
            auto dir = SafeDir::open(folder);
            if (!dir) continue;
            names = dir->entries().valueOr({});
            dirFd = FileHandle(::dup(dir->fd()));
        } else {
            names = QDir(folder).entryList(QDir::Files);
            dirFd = FileHandle(::open(QFile::encodeName(folder).constData(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        }
        for (const QString& name : std::as_const(names)) {
            if (!name.endsWith(QStringLiteral(".env")) || !spool::isValidQueueId(name.chopped(4))) continue;
            ++q.count;
            struct stat st {};
            const QByteArray body = QFile::encodeName(name.chopped(4) + QStringLiteral(".body"));
            if (dirFd.valid() && ::fstatat(dirFd.fd(), body.constData(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISREG(st.st_mode) && st.st_mtime > 0 && (q.oldest == 0 || st.st_mtime < q.oldest))
                q.oldest = st.st_mtime;
        }
    }
    return q;
}

QString humanAge(qint64 seconds) {
    if (seconds < 0) seconds = 0;
    if (seconds < 120) return QStringLiteral("%1s").arg(seconds);
    if (seconds < 7200) return QStringLiteral("%1m").arg(seconds / 60);
    if (seconds < 2 * 86400) return QStringLiteral("%1h %2m").arg(seconds / 3600).arg(seconds % 3600 / 60);
    return QStringLiteral("%1d %2h").arg(seconds / 86400).arg(seconds % 86400 / 3600);
}

// One line per file system holding the data, mail or queue folder; false when one is at
// the ERROR level (95 % used, or less than smtp.min_free_space left).
bool diskStatus(CtlContext& ctx, const Config& config) {
    bool ok = true;
    const qint64 minFree = get(config, keys::smtp::minFreeSpace);
    for (const DiskReport& r : diskReports({config.dataDir(), config.mailDir(), config.queueDir()}, minFree)) {
        if (!r.error.isEmpty()) {
            ctx.out << "disk: WARNING: " << r.error << Qt::endl;
            continue;
        }
        const QString figures = QStringLiteral("%1 %2 % used, %3 free of %4")
                                    .arg(r.folder)
                                    .arg(r.usage.percentUsed())
                                    .arg(humanBytes(r.usage.availableBytes), humanBytes(r.usage.totalBytes));
        switch (r.level) {
            case DiskLevel::Ok:
                ctx.out << "disk: " << figures << Qt::endl;
                break;
            case DiskLevel::Warning:
                ctx.out << "disk: WARNING: " << figures << " (ERROR at " << kDiskErrorPercent
                        << " %; free space or grow the disk)" << Qt::endl;
                break;
            case DiskLevel::Error:
                ctx.out << "disk: ERROR: " << figures;
                if (r.belowFloor)
                    ctx.out << "; below smtp.min_free_space (" << Schema::formatSize(minFree)
                            << "): new mail is refused with 452 4.3.1";
                else
                    ctx.out << "; free space or grow the disk now";
                ctx.out << Qt::endl;
                ok = false;
                break;
        }
    }
    return ok;
}

// One line per service the supervisor reports (state, since, restarts, listeners, last error),
// then a line for each program of the service table it did not report. False when one is
// not running (and not disabled) or missing.
bool servicesStatus(CtlContext& ctx, const QJsonObject& st) {
    bool ok = true;
    QStringList reported;
    for (const QJsonValue& v : st.value(QStringLiteral("services")).toArray()) {
        const QJsonObject s = v.toObject();
        const QString state = s.value(QStringLiteral("state")).toString();
        reported << s.value(QStringLiteral("name")).toString();
        QStringList listeners;
        const QJsonObject l = s.value(QStringLiteral("listeners")).toObject();
        for (auto it = l.begin(); it != l.end(); ++it)
            for (const QJsonValue& a : it.value().toArray()) listeners << it.key() + QLatin1Char('=') + a.toString();
        ctx.out << "  " << s.value(QStringLiteral("name")).toString().leftJustified(16) << state.leftJustified(11);
        if (s.contains(QStringLiteral("since"))) ctx.out << " since " << s.value(QStringLiteral("since")).toString();
        if (s.value(QStringLiteral("restarts")).toInt() > 0)
            ctx.out << " restarts " << s.value(QStringLiteral("restarts")).toInt();
        if (!listeners.isEmpty()) ctx.out << "  " << listeners.join(QLatin1Char(' '));
        ctx.out << Qt::endl;
        // Why a daemon keeps restarting (its last stderr line, e.g. a folder it cannot write).
        if (s.contains(QStringLiteral("error")))
            ctx.out << "    " << s.value(QStringLiteral("error")).toString() << Qt::endl;
        if (state != u"running" && state != u"disabled") ok = false;
    }
    // Every program of the service table must be accounted for (a status file of another
    // supervisor version, or a cut one, must not make a daemon disappear from the check).
    for (const ServiceInfo& service : services()) {
        if (reported.contains(service.program)) continue;
        ctx.out << "  " << service.program.leftJustified(16) << "not reported by the supervisor" << Qt::endl;
        ok = false;
    }
    return ok;
}

// The queue line: counted by name, without opening the daemon user's files as root (queue
// list reads them as that user).
void queueStatus(CtlContext& ctx, const Config& config) {
    const QueueSummary queue = queueSummary(config);
    if (const QString url = config.panelUrl(); !url.isEmpty()) ctx.out << "web panel: " << url << Qt::endl;
    ctx.out << "queue: " << queue.count << " message(s)";
    if (queue.oldest > 0)
        ctx.out << ", oldest " << humanAge(QDateTime::currentSecsSinceEpoch() - queue.oldest) << " ("
                << QDateTime::fromSecsSinceEpoch(queue.oldest, Qt::UTC).toString(Qt::ISODate) << ")";
    ctx.out << Qt::endl;
}

// Lines that only inform or warn, never fail: backup, resolver, spam filter, storage, image,
// security updates.
void informationalStatus(CtlContext& ctx, const Config& config) {
    bool backupWarning = false;
    ctx.out << backupStatusLine(config, &backupWarning) << Qt::endl;  // a warning, not a failure
    ctx.out << "DNS resolver: " << resolverSummary(config) << Qt::endl;
    bool spamWarning = false;
    ctx.out << spamStatusLine(config, ctx.configDir, &spamWarning) << Qt::endl;  // a warning, not a failure
    // Where configuration, mail and logs live (the VM's postern-datadisk.service writes this; root only).
    if (auto storage = readFile(QStringLiteral("/run/postern-storage"), 4096);
        storage && !storage->trimmed().isEmpty()) {
        struct stat sst {};
        if (::stat("/run/postern-storage", &sst) == 0 && sst.st_uid == 0)
            ctx.out << "storage: " << QString::fromUtf8(storage->trimmed()).split(QLatin1Char('\n')).first()
                    << Qt::endl;
    }
    // A newer image announced (update.announce_url): cached for a day, a failed check for an hour.
    if (!get(config, keys::update::announceUrl).isEmpty()) {
        bool newer = false;
        const QString line = announcementLine(checkForUpdate(config, kCheckIntervalSecs, kStatusTimeoutMs),
                                              QStringLiteral(POSTERN_VERSION), &newer);
        ctx.out << "image: " << line << Qt::endl;  // information, never a failure
    }
    bool updatesWarning = false;
    ctx.out << securityUpdatesLine(QStringLiteral("/"), QDateTime::currentSecsSinceEpoch(), &updatesWarning)
            << Qt::endl;  // a warning, not a failure
}

// The certificate line; false when it is missing, unreadable or expired.
bool certificateStatus(CtlContext& ctx, const Config& config) {
    auto cert = certificateInfo(get(config, keys::tls::cert));
    if (!cert) {
        ctx.out << "certificate: " << cert.errorMessage() << Qt::endl;
        return false;
    }
    const qint64 days = QDateTime::currentDateTimeUtc().daysTo(cert->notAfter);
    ctx.out << "certificate: " << cert->dnsNames.join(QStringLiteral(", ")) << "; expires "
            << cert->notAfter.toString(Qt::ISODate) << " (" << days << " days)"
            << (cert->selfSigned ? ", self-signed" : "") << Qt::endl;
    return days >= 0;
}

int status(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    int rc = 0;
    QJsonObject st;
    const qint64 pid = supervisorPid(config, &st);
    if (pid == 0) {
        ctx.out << "supervisor: not running" << Qt::endl;
        rc = 1;
    } else {
        ctx.out << "supervisor: running (pid " << pid << ", updated " << st.value(QStringLiteral("updated")).toString()
                << ")" << Qt::endl;
        if (!servicesStatus(ctx, st)) rc = 1;
    }
    queueStatus(ctx, config);
    if (!diskStatus(ctx, config)) rc = 1;
    informationalStatus(ctx, config);
    if (!certificateStatus(ctx, config)) rc = 1;
    return rc;
}

// Program version, the data folder's format and the range this build handles; exit 1 when
// the data folder is of a newer format (the daemons would refuse to start) or unreadable.
int version(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    ctx.out << "postern " << POSTERN_VERSION << Qt::endl;
    auto v = readDataVersion(config);
    int rc = 0;
    if (!v) {
        ctx.out << "data format: unknown: " << v.errorMessage() << Qt::endl;
        rc = 1;
    } else if (*v == 0) {
        ctx.out << "data format: none recorded in " << config.dataDir() << " (the daemons record format "
                << dataFormatVersion() << " at their next start)" << Qt::endl;
    } else {
        ctx.out << "data format: " << *v << " (" << dataVersionPath(config) << ")" << Qt::endl;
    }
    ctx.out << "supported data formats: " << kOldestDataFormat << " to " << dataFormatVersion()
            << " (older ones are migrated at start)" << Qt::endl;
    if (auto st = checkDataVersion(config); v && !st) {
        ctx.out << "ERROR: " << st.errorMessage() << Qt::endl;
        rc = 1;
    }
    // A newer image, asked now (and cached for status); never asked when no URL is set.
    if (get(config, keys::update::announceUrl).isEmpty()) {
        ctx.out << "newer image: not checked (update.announce_url is empty; Postern never asks by itself)" << Qt::endl;
    } else {
        bool newer = false;
        ctx.out << "newer image: "
                << announcementLine(checkForUpdate(config, 0, kVersionTimeoutMs), QStringLiteral(POSTERN_VERSION),
                                    &newer)
                << Qt::endl;
    }
    return rc;
}

QString domainArg(CtlContext& ctx, const Config& config) {
    return ctx.args.isEmpty() ? get(config, keys::general::primaryDomain) : ctx.args.first();
}

int dkimList(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    const QString domain = domainArg(ctx, config);
    DkimKeyStore store(ctx.configDir);
    auto keys = store.keys(domain);
    if (!keys) return ctx.fail(keys.errorMessage());
    for (const DkimKey& k : *keys) {
        ctx.out << k.selector << "\t" << k.algorithm << "\t" << (k.active ? "active" : "retiring") << "\t"
                << k.created.toString(Qt::ISODate) << "\n";
        auto txt = store.publicRecord(domain, k.selector);
        if (txt) ctx.out << "\t" << k.selector << "._domainkey." << domain << " TXT \"" << *txt << "\"\n";
    }
    ctx.out.flush();
    return 0;
}

int dkimRotate(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    const QString domain = domainArg(ctx, config);
    DkimKeyStore store(ctx.configDir);
    auto made = store.rotate(domain);
    if (!made) return ctx.fail(made.errorMessage());
    for (const DkimKey& key : std::as_const(*made)) {
        const DkimKey* k = &key;
        auto txt = store.publicRecord(domain, k->selector);
        ctx.out << "new " << k->algorithm << " key " << k->selector << "; publish:\n  " << k->selector << "._domainkey."
                << domain << " TXT \"" << txt.valueOr(QString()) << "\"\n";
    }
    ctx.out << "The previous keys are kept (retiring) so mail already signed still verifies;\n"
               "remove them with `posternctl dkim remove-retired` once their DNS records are gone.\n";
    ctx.out.flush();
    return 0;
}

int dkimRemoveRetired(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    DkimKeyStore store(ctx.configDir);
    auto removed = store.removeRetired(domainArg(ctx, config));
    if (!removed) return ctx.fail(removed.errorMessage());
    ctx.out << (removed->isEmpty() ? QStringLiteral("no retiring keys")
                                   : QStringLiteral("removed ") + removed->join(QStringLiteral(", ")))
            << Qt::endl;
    return 0;
}

}  // namespace

void addStatusCommands(QList<Command>& out) {
    out << Command{{QStringLiteral("status")},
                   {},
                   QStringLiteral("daemons, listeners, queue size and age, disk space, certificate expiry"),
                   {},
                   {},
                   status};
    out << Command{{QStringLiteral("version")},
                   {},
                   QStringLiteral("program version, data folder format and the formats this build reads"),
                   {},
                   {},
                   version};
    out << Command{{QStringLiteral("dkim"), QStringLiteral("list")},
                   QStringLiteral("[DOMAIN]"),
                   QStringLiteral("DKIM keys and their DNS records"),
                   {},
                   {},
                   dkimList};
    out << Command{{QStringLiteral("dkim"), QStringLiteral("rotate")},
                   QStringLiteral("[DOMAIN]"),
                   QStringLiteral("new DKIM keys; the old ones keep signing validity until removed"),
                   {},
                   {},
                   dkimRotate};
    out << Command{{QStringLiteral("dkim"), QStringLiteral("remove-retired")},
                   QStringLiteral("[DOMAIN]"),
                   QStringLiteral("delete retiring DKIM keys (after their DNS records are gone)"),
                   {},
                   {},
                   dkimRemoveRetired};
}

}  // namespace postern::ctl
