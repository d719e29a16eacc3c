// security_updates.cpp — see security_updates.h.
#include "security_updates.h"

#include <QFile>
#include <QFileInfo>
#include <QRegularExpression>

namespace postern {

namespace {

QByteArray readSmall(const QString& path) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return {};
    return f.read(kMaxReadBytes);
}

QString age(qint64 secs) {
    if (secs < 3600) return QStringLiteral("%1 min").arg(std::max<qint64>(0, secs / 60));
    if (secs < 2 * 86400) return QStringLiteral("%1 h").arg(secs / 3600);
    return QStringLiteral("%1 days").arg(secs / 86400);
}

}  // namespace

QString securityUpdatesLine(const QString& root, qint64 nowSecs, bool* warning) {
    if (warning) *warning = false;
    const QString r = root.endsWith(QLatin1Char('/')) ? root.chopped(1) : root;
    auto warn = [&](const QString& text) {
        if (warning) *warning = true;
        return QStringLiteral("security updates: WARNING: ") + text;
    };
    static const QRegularExpression enabled(QStringLiteral(R"re(APT::Periodic::Unattended-Upgrade\s+"([0-9]+)")re"));
    const auto m =
        enabled.match(QString::fromUtf8(readSmall(r + QStringLiteral("/etc/apt/apt.conf.d/20auto-upgrades"))));
    const bool automatic = m.hasMatch() && m.captured(1).toInt() > 0 &&
                           QFileInfo::exists(r + QStringLiteral("/usr/bin/unattended-upgrade"));
    if (!automatic) {
        if (QFileInfo::exists(r + QStringLiteral("/run/.containerenv")) ||
            QFileInfo::exists(r + QStringLiteral("/.dockerenv")))
            return QStringLiteral("security updates: by image: start a newer Postern image on the same volumes");
        return QStringLiteral("security updates: not automatic here (no unattended-upgrades)");
    }
    if (QFileInfo::exists(r + QStringLiteral("/run/reboot-required"))) {
        QStringList pkgs;
        for (const QByteArray& line : readSmall(r + QStringLiteral("/run/reboot-required.pkgs")).split('\n'))
            if (!line.trimmed().isEmpty() && !pkgs.contains(QString::fromUtf8(line.trimmed())))
                pkgs << QString::fromUtf8(line.trimmed());
        return warn(QStringLiteral("a reboot is needed to finish updates") +
                    (pkgs.isEmpty() ? QString() : QStringLiteral(" (%1)").arg(pkgs.join(QStringLiteral(", ")))));
    }
    const QFileInfo stamp(r + QStringLiteral("/var/lib/apt/periodic/unattended-upgrades-stamp"));
    if (!stamp.exists()) {
        // A fresh VM has not had its first daily run; say so without alarm for a day.
        const QFileInfo boot(r + QStringLiteral("/etc/machine-id"));
        const qint64 installed = boot.exists() ? boot.lastModified().toSecsSinceEpoch() : nowSecs;
        if (nowSecs - installed > 86400)
            return warn(QStringLiteral("automatic, but not run yet (check apt-daily-upgrade.timer and the network)"));
        return QStringLiteral("security updates: automatic (unattended-upgrades), first run within a day");
    }
    const qint64 last = stamp.lastModified().toSecsSinceEpoch();
    const qint64 since = nowSecs - last;
    if (since > qint64(kStaleRunDays) * 86400)
        return warn(
            QStringLiteral("automatic, but the last run was %1 ago (check apt-daily-upgrade.timer and the network)")
                .arg(age(since)));
    return QStringLiteral("security updates: automatic (unattended-upgrades), last run %1 (%2 ago)")
        .arg(stamp.lastModified().toUTC().toString(Qt::ISODate), age(since));
}

}  // namespace postern
