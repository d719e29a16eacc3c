// setup.cpp — see setup.h.
#include "setup.h"

#include "records/host_facts.h"

#include <algorithm>

#include "core/accounts.h"
#include "core/address.h"
#include "core/atomic_file.h"
#include "core/config.h"
#include "core/dkim_keys.h"
#include "core/password.h"
#include "core/process.h"
#include "core/safe_path.h"
#include "core/services.h"
#include "core/setting_keys.h"
#include "core/tls.h"

#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QFileInfo>
#include <QProcess>

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace postern::wizard {

QMap<QString, quint16> standardPorts() {
    QMap<QString, quint16> out;
    for (const ListenerInfo& l : listeners()) out.insert(l.name, l.standardPort);
    return out;
}

QMap<QString, quint16> unprivilegedPorts() {
    QMap<QString, quint16> out;
    for (const ListenerInfo& l : listeners()) out.insert(l.name, l.demoPort);
    return out;
}

namespace {

QString listenValue(const Answers& a, const QString& name) {
    if (a.disabled.contains(name)) return {};
    const quint16 port = a.ports.value(name, standardPorts().value(name));
    return ListenAddress{a.bind, port}.toString();
}

Config desiredConfig(const Answers& a, const Config& base) {
    Config c = base;
    auto set = [&](const auto& key, const QString& v) { (void)c.set(key.str(), v); };
    set(keys::general::hostname, a.hostname);
    set(keys::general::primaryDomain, a.domain);
    set(keys::general::adminAddress, a.admin);
    if (!a.publicAddresses.isEmpty()) {  // for the DNS sheet of posternctl dns and the web panel
        QStringList ips;
        for (const QHostAddress& ip : a.publicAddresses) ips << ip.toString();
        set(keys::general::publicAddresses, ips.join(QLatin1Char(',')));
    }
    set(keys::general::dataDir, a.dataDir.isEmpty() ? QStringLiteral("data") : a.dataDir);
    for (const ListenerInfo& l : listeners()) (void)c.set(l.settingKey(), listenValue(a, l.name));
    if (!a.smarthost.isEmpty()) {
        set(keys::relay::host, a.smarthost);
        set(keys::relay::tls,
            a.smarthost.endsWith(QStringLiteral(":465")) ? QStringLiteral("implicit") : QStringLiteral("starttls"));
        if (!a.smarthostUser.isEmpty()) {
            set(keys::relay::user, a.smarthostUser);
            set(keys::relay::passwordFile, QStringLiteral("relay-password"));
        }
    }
    if (!a.dnsServers.isEmpty()) set(keys::dns::servers, a.dnsServers.join(QStringLiteral(", ")));
    return c;
}

Status shareWithDaemons(const Config& config, QStringList* notes) {
    if (::geteuid() != 0) return {};
    const QString user = get(config, keys::general::systemUser);
    if (!lookupUser(user)) {
        QProcess p;
        p.start(QStringLiteral("useradd"),
                {QStringLiteral("--system"), QStringLiteral("--home-dir"), QStringLiteral("/nonexistent"),
                 QStringLiteral("--no-create-home"), QStringLiteral("--shell"), QStringLiteral("/usr/sbin/nologin"),
                 QStringLiteral("--user-group"), user});
        if (!p.waitForFinished(30000) || p.exitCode() != 0)
            return Status::fail(QStringLiteral("cannot create system user %1: %2")
                                    .arg(user, QString::fromUtf8(p.readAllStandardError())));
    }
    auto ids = lookupUser(user);
    if (!ids) return ids.error();
    // The data folder belongs to the daemons. Its folders are made and handed over by
    // descriptor (core/safe_path.h): on a second run the daemon user may have put links
    // or hard links in there, and root must neither follow them nor give their targets away.
    if (auto st = ensureDirectory(QFileInfo(config.dataDir()).absolutePath(), 0755); !st) return st;
    for (const QString& d : {config.dataDir(), config.logDir(), config.runDir(), config.mailDir(), config.queueDir()})
        if (auto st = ensureDirectory(d, 0750); !st) return st;
    auto data = SafeDir::open(config.dataDir());
    if (!data) return data.error();
    QStringList skipped;
    if (auto st = chownTree(*data, uid_t(ids->uid), gid_t(ids->gid), &skipped); !st)
        return Status::fail(QStringLiteral("cannot give %1 to %2: %3").arg(config.dataDir(), user, st.errorMessage()));
    for (const QString& p : std::as_const(skipped))
        if (notes) notes->append(QStringLiteral("left %1 as it is: it has more than one hard link").arg(p));
    // Secrets stay root's, readable by the daemons' group.
    QStringList secrets{QStringLiteral("users"),       QStringLiteral("aliases"),      QStringLiteral("domains"),
                        QStringLiteral("tls/key.pem"), QStringLiteral("tls/cert.pem"), QStringLiteral("relay-password"),
                        QStringLiteral("credentials")};
    QDirIterator dk(config.configDir() + QStringLiteral("/dkim"), QDir::Files, QDirIterator::Subdirectories);
    while (dk.hasNext()) secrets << QDir(config.configDir()).relativeFilePath(dk.next());
    for (const QString& rel : secrets) {
        const QString p = config.configDir() + QLatin1Char('/') + rel;
        if (!QFileInfo::exists(p)) continue;
        if (::chown(QFile::encodeName(p).constData(), 0, gid_t(ids->gid)) != 0 ||
            ::chmod(QFile::encodeName(p).constData(), 0640) != 0)
            return Status::fail(QStringLiteral("cannot set permissions of %1").arg(p));
    }
    for (const QString& d :
         {config.configDir() + QStringLiteral("/tls"), config.configDir() + QStringLiteral("/dkim")}) {
        if (!QFileInfo(d).isDir()) continue;
        ::chown(QFile::encodeName(d).constData(), 0, gid_t(ids->gid));
        ::chmod(QFile::encodeName(d).constData(), 0750);
        QDirIterator sub(d, QDir::Dirs | QDir::NoDotAndDotDot, QDirIterator::Subdirectories);
        while (sub.hasNext()) {
            const QString s = sub.next();
            ::chown(QFile::encodeName(s).constData(), 0, gid_t(ids->gid));
            ::chmod(QFile::encodeName(s).constData(), 0750);
        }
    }
    return {};
}

}  // namespace

QStringList planChanges(const Answers& a) {
    QStringList out;
    auto base = Config::load(a.configDir);
    const Config current = base ? *base : Config();
    const Config wanted = desiredConfig(a, current);
    for (const Setting& s : Schema::instance().all())
        if (current.value(s.key) != wanted.value(s.key))
            out << QStringLiteral("postern.conf: %1 = %2 (was %3)")
                       .arg(s.key, wanted.value(s.key),
                            current.value(s.key).isEmpty() ? QStringLiteral("empty") : current.value(s.key));
    AccountStore store(a.configDir);
    auto acc = store.load();
    if (acc) {
        const QString domain = normalizeDomain(a.domain).valueOr(a.domain);
        if (!acc->isLocalDomain(domain)) out << QStringLiteral("new domain %1").arg(domain);
        const QString user = normalizeAddress(a.user).valueOr(a.user);
        if (!a.user.isEmpty() && !acc->user(user))
            out << QStringLiteral("new user %1").arg(user);
        else if (a.resetPassword)
            out << QStringLiteral("new password for %1").arg(user);
    }
    if (!QFileInfo::exists(a.configDir + QStringLiteral("/tls/cert.pem")))
        out << QStringLiteral("new self-signed TLS certificate");
    return out;
}

namespace {

// postern.conf: the answers applied and saved; the changes listed in the report. Returns the
// configuration as re-read from the file, so every derived path comes from the file as saved.
Result<Config> saveConfig(const Answers& a, SetupReport& report) {
    if (auto st = ensureDirectory(a.configDir, 0755); !st) return st.error();
    auto base = Config::load(a.configDir);
    if (!base) return base.error();
    Config config = desiredConfig(a, *base);
    for (const QString& line : planChanges(a)) report.changes << line;
    if (auto st = config.save(); !st) return st.error();
    return Config::load(a.configDir);
}

// The domain, the first user (with a new or generated password; the first user administers
// the web panel) and the role aliases.
Status setUpAccounts(const Answers& a, const Config& config, const QString& domain, SetupReport& report) {
    QString password = a.password;
    AccountStore store(a.configDir);
    auto acc = store.load();
    if (!acc) return acc.error();
    const bool userExists = !a.user.isEmpty() && acc->user(normalizeAddress(a.user).valueOr(QString()));
    const bool needPassword = !a.user.isEmpty() && (!userExists || a.resetPassword);
    if (needPassword && (password.isEmpty() || a.generatePassword)) {
        password = generatePassword();
        report.generatedPassword = password;
    }
    QString hash;
    if (needPassword) {
        auto h = hashPassword(password.toUtf8(), HashParams::fromConfig(config));
        if (!h) return h.error();
        hash = *h;
    }
    return store.modify([&](Accounts& accounts) -> Status {
        if (!accounts.isLocalDomain(domain))
            if (auto s = accounts.addDomain(domain); !s) return s;
        if (!a.user.isEmpty()) {
            const QString user = *normalizeAddress(a.user);
            if (!accounts.user(user)) {
                if (auto s = accounts.addUser(user, hash); !s) return s;
                // The wizard's first user administers the web panel (posternctl user admin ADDRESS on|off).
                const auto all = accounts.users();
                if (std::none_of(all.cbegin(), all.cend(), [](const UserRecord& u) { return u.admin; }))
                    if (auto s = accounts.setAdmin(user, true); !s) return s;
            } else if (a.resetPassword) {
                if (auto s = accounts.setPasswordHash(user, hash); !s) return s;
            }
        }
        if (!a.admin.isEmpty()) accounts.ensureRoleAliases(domain, a.admin);
        return {};
    });
}

// A self-signed certificate when there is none yet, and the domain's DKIM keys.
Status ensureKeys(const Answers& a, const Config& config, const QString& domain, SetupReport& report) {
    const QString cert = get(config, keys::tls::cert);
    const QString key = get(config, keys::tls::key);
    if (!QFileInfo::exists(cert) || !QFileInfo::exists(key)) {
        const QStringList names{config.hostname(), QStringLiteral("mta-sts.") + domain,
                                QStringLiteral("autoconfig.") + domain, QStringLiteral("autodiscover.") + domain};
        if (auto s = generateSelfSigned(cert, key, names); !s) return s;
    }
    DkimKeyStore dkim(a.configDir);
    auto made = dkim.ensureKeys(domain);
    if (!made) return made.error();
    for (const DkimKey& k : *made)
        report.changes << QStringLiteral("new DKIM key %1 (%2)").arg(k.selector, k.algorithm);
    return {};
}

// The DNS records to publish, into the report and dns-records.{txt,zone,csv,json}.
Status writeRecordSheets(const Answers& a, const QString& domain, SetupReport& report) {
    auto facts = records::hostFacts(a.configDir, a.publicAddresses);
    if (!facts) return facts.error();
    report.records = records::buildRecords(*facts);
    report.recordsTable = records::renderTable(report.records, domain);
    report.recordsDir = a.configDir;
    const QString baseName = a.configDir + QStringLiteral("/dns-records");
    if (auto s = writeFileAtomic(baseName + QStringLiteral(".txt"), report.recordsTable.toUtf8()); !s) return s;
    if (auto s =
            writeFileAtomic(baseName + QStringLiteral(".zone"), records::renderZone(report.records, domain).toUtf8());
        !s)
        return s;
    if (auto s =
            writeFileAtomic(baseName + QStringLiteral(".csv"), records::renderCsv(report.records, domain).toUtf8());
        !s)
        return s;
    return writeFileAtomic(baseName + QStringLiteral(".json"), records::renderJson(report.records, domain));
}

}  // namespace

Result<SetupReport> applySetup(const Answers& a) {
    SetupReport report;
    auto saved = saveConfig(a, report);
    if (!saved) return saved.error();
    const Config config = *saved;
    if (!a.smarthostPassword.isEmpty()) {
        if (auto st = writeFileAtomic(a.configDir + QStringLiteral("/relay-password"),
                                      a.smarthostPassword.toUtf8() + '\n', 0640);
            !st)
            return st.error();
        report.changes << QStringLiteral("smarthost password saved in relay-password (0640)");
    }
    const QString domain = *normalizeDomain(a.domain);
    if (auto s = setUpAccounts(a, config, domain, report); !s) return s.error();
    if (auto s = ensureKeys(a, config, domain, report); !s) return s.error();
    if (auto s = writeRecordSheets(a, domain, report); !s) return s.error();
    if (auto s = ensureDirectory(config.dataDir(), 0750); !s) return s.error();
    if (auto s = shareWithDaemons(config, &report.notes); !s) return s.error();
    return report;
}

}  // namespace postern::wizard
