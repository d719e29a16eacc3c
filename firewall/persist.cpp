// persist.cpp — see persist.h.
#include "persist.h"

#include "plan.h"

#include "core/atomic_file.h"
#include "core/posix_io.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>

#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace postern::firewall {

namespace {

QString quoteArg(const QString& s) {
    // systemd's ExecStart quoting: double quotes, with \ and " escaped; % doubled.
    bool plain = !s.isEmpty();
    for (QChar c : s)
        if (!(c.isLetterOrNumber() || QStringLiteral("/._-+:=,@").contains(c))) plain = false;
    if (plain) return s;
    QString q = s;
    q.replace(QLatin1Char('\\'), QStringLiteral("\\\\"))
        .replace(QLatin1Char('"'), QStringLiteral("\\\""))
        .replace(QLatin1Char('%'), QStringLiteral("%%"));
    return QLatin1Char('"') + q + QLatin1Char('"');
}

QString wantsLinkPath() {
    return bootUnitDir() + QStringLiteral("/multi-user.target.wants/") + QLatin1String(kBootUnitName);
}
QString unitPath() {
    return bootUnitDir() + QLatin1Char('/') + QLatin1String(kBootUnitName);
}

}  // namespace

bool liveOnlyRules(const Ruleset& ruleset) {
    for (const Chain& c : ruleset.chains) {
        if (c.backend == Backend::Nftables) {
            for (const Rule& r : c.rules)
                if (r.comment == QLatin1String(kOurComment)) return true;
        } else if (c.name == QLatin1String(kOurChain)) {
            return true;
        }
    }
    return false;
}

QString bootUnitDir() {
    const QString env = qEnvironmentVariable("POSTERN_FIREWALL_SYSTEMD_DIR");
    return env.isEmpty() ? QStringLiteral("/etc/systemd/system") : env;
}

QString bootUnitText(const QString& program, const QString& configDir) {
    return QStringLiteral(
               "# Written by postern-firewall apply; deleted by postern-firewall remove.\n"
               "# nftables and iptables rules live in the kernel only: after the host's own\n"
               "# rules are restored at boot, this re-inserts Postern's accept rule for the\n"
               "# configured mail ports just before the rule that blocks them.\n"
               "[Unit]\n"
               "Description=Postern: open the configured mail ports in the packet filter\n"
               "After=nftables.service netfilter-persistent.service ufw.service firewalld.service docker.service "
               "network-pre.target\n"
               "Before=postern.service\n"
               "\n"
               "[Service]\n"
               "Type=oneshot\n"
               "ExecStart=%1 --config %2 apply\n"
               "# 1: some port stays blocked by a rule we do not override (reported in the journal)\n"
               "SuccessExitStatus=1\n"
               "\n"
               "[Install]\n"
               "WantedBy=multi-user.target\n")
        .arg(quoteArg(program), quoteArg(configDir));
}

Status installBootUnit(const QString& program, const QString& configDir, QStringList* log) {
    const QString path = unitPath();
    const QByteArray text = bootUnitText(program, configDir).toUtf8();
    QFile existing(path);
    bool same = false;
    if (existing.open(QIODevice::ReadOnly)) same = existing.readAll() == text;
    if (!same) {
        Status s = ensureDirectory(bootUnitDir());
        if (s) s = writeFileAtomic(path, text, 0644);
        if (!s) return Status::fail(QStringLiteral("cannot write %1: %2").arg(path, s.errorMessage()));
        if (log) *log << QStringLiteral("wrote %1 (re-applies the rules at boot)").arg(path);
    }
    const QString link = wantsLinkPath();
    const QFileInfo li(link);
    if (li.isSymLink() && li.symLinkTarget() == QFileInfo(path).absoluteFilePath()) return {};
    Status s = ensureDirectory(QFileInfo(link).absolutePath());
    if (!s) return s;
    ::unlink(QFile::encodeName(link).constData());
    if (::symlink(QFile::encodeName(path).constData(), QFile::encodeName(link).constData()) != 0)
        return Status::fail(QStringLiteral("cannot enable %1: %2").arg(link, errnoText(errno)));
    if (log) *log << QStringLiteral("enabled %1 (%2)").arg(QLatin1String(kBootUnitName), link);
    return {};
}

Status removeBootUnit(QStringList* log) {
    for (const QString& p : {wantsLinkPath(), unitPath()}) {
        const QFileInfo fi(p);
        if (!fi.exists() && !fi.isSymLink()) continue;
        if (::unlink(QFile::encodeName(p).constData()) != 0 && errno != ENOENT)
            return Status::fail(QStringLiteral("cannot delete %1: %2").arg(p, errnoText(errno)));
        if (log) *log << QStringLiteral("deleted %1").arg(p);
    }
    return {};
}

}  // namespace postern::firewall
