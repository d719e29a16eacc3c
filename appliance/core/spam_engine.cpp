// spam_engine.cpp — see spam_engine.h.
#include "spam_engine.h"

#include "atomic_file.h"
#include "dns.h"
#include "posix_io.h"
#include "setting_keys.h"

#include <QFile>
#include <QRandomGenerator>

#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace postern {

namespace {

// UCL string literal: quotes and backslashes escaped, control characters dropped.
QByteArray ucl(const QString& s) {
    QByteArray out = "\"";
    for (char c : s.toUtf8()) {
        if (static_cast<unsigned char>(c) < 0x20) continue;
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + '"';
}

// A file the engines read: root:<daemon group> 0640 (0600 root when ids are unknown).
Status writeShared(const QString& path, const QByteArray& content, const UserIds& ids) {
    if (auto st = writeFileAtomic(path, content, 0640); !st) return st;
    if (::geteuid() == 0 && ids.gid >= 0 && ::chown(QFile::encodeName(path).constData(), 0, gid_t(ids.gid)) != 0)
        return Status::fail(QStringLiteral("chown %1: %2").arg(path, errnoText(errno)));
    return {};
}

Status sharedDir(const QString& dir, const UserIds& ids) {
    if (auto st = ensureDirectory(dir, 0750); !st) return st;
    const QByteArray p = QFile::encodeName(dir);
    if (::geteuid() == 0 && ids.gid >= 0 && ::chown(p.constData(), 0, gid_t(ids.gid)) != 0)
        return Status::fail(QStringLiteral("chown %1: %2").arg(dir, errnoText(errno)));
    ::chmod(p.constData(), 0750);
    return {};
}

Result<QString> controllerPassword(const SpamPaths& paths) {
    if (auto existing = readFile(paths.passwordFile, 1024); existing && existing->trimmed().size() >= 32)
        return QString::fromLatin1(existing->trimmed());
    QByteArray raw(32, '\0');
    QRandomGenerator::system()->generate(reinterpret_cast<quint32*>(raw.data()),
                                         reinterpret_cast<quint32*>(raw.data() + raw.size()));
    const QByteArray hex = raw.toHex();
    if (auto st = writeFileAtomic(paths.passwordFile, hex + '\n', 0600); !st) return st.error();
    return QString::fromLatin1(hex);
}

// One Bayes classifier for Rspamd (Debian's statistic.conf defaults: OSB tokens, Redis, new
// schema, Rspamd's learn cache), with its two statfiles' symbols.
QByteArray bayesClassifier(const QByteArray& name, const QByteArray& suffix, qint64 minLearns,
                           const QByteArray& extra) {
    return "classifier \"bayes\" {\n  name = \"" + name +
           "\";\n  tokenizer { name = \"osb\"; }\n  cache { }\n  backend = \"redis\";\n  new_schema = true;\n"
           "  store_tokens = false;\n  signatures = false;\n  min_tokens = 11;\n  min_learns = " +
           QByteArray::number(minLearns) + ";\n" + extra + "  statfile { symbol = \"BAYES_HAM" + suffix +
           "\"; spam = false; }\n  statfile { symbol = \"BAYES_SPAM" + suffix + "\"; spam = true; }\n}\n";
}

}  // namespace

QByteArray statisticConf(const Config& config) {
    const qint64 minLearns = std::max<qint64>(1, get(config, keys::spam::bayesMinLearns));
    // "bayes": everyone's training, Redis keys RS / RS_<token> (Rspamd's non-user default).
    // "bayes_user": the user in the request's Deliver-To (postern-smtpd sends it for a scan
    // with one recipient, postern-imapd's learner for every learn), keys RS<user>: the same as
    // the per-user classifier before it, so earlier training is kept. Without Deliver-To the
    // user is "-", which nobody trains: no per-user verdict (not the first recipient's one).
    // The shared classifier keeps Rspamd's learn condition (a message it already puts in the
    // class with 95% is not learned again); the user's classifier learns every move of theirs,
    // as that condition reads one probability for the whole request (the shared classifier's
    // would stop the user's own training).
    return bayesClassifier("bayes", "", minLearns,
                           "  learn_condition = 'return require(\"lua_bayes_learn\").can_learn';\n") +
           bayesClassifier("bayes_user", "_USER", minLearns,
                           "  per_user = \"return function(task) local u = task:get_request_header('Deliver-To'); "
                           "if u then return tostring(u) end; return '-' end\";\n");
}

SpamPaths spamPaths(const Config& config, const QString& configDir) {
    SpamPaths p;
    p.configDir = configDir + QStringLiteral("/spam");
    p.redisConf = p.configDir + QStringLiteral("/redis.conf");
    p.rspamdConfDir = p.configDir + QStringLiteral("/rspamd");
    p.passwordFile = p.configDir + QStringLiteral("/controller.password");
    p.stateDir = config.dataDir() + QStringLiteral("/spam");
    p.redisDir = p.stateDir + QStringLiteral("/redis");
    p.rspamdDbDir = p.stateDir + QStringLiteral("/rspamd");
    p.runDir = config.runDir() + QStringLiteral("/spam");
    p.redisSocket = p.runDir + QStringLiteral("/redis.sock");
    p.rspamdSocket = p.runDir + QStringLiteral("/rspamd.sock");
    p.controllerSocket = p.runDir + QStringLiteral("/rspamd-controller.sock");
    return p;
}

namespace {

// The first line of every file we generate.
QByteArray generatedHeader() {
    return QByteArrayLiteral("# Generated by the Postern supervisor from postern.conf; edits are overwritten.\n");
}

// redis.conf: a Unix socket only, persistence under the state folder, bounded memory.
QByteArray redisConf(const SpamPaths& p) {
    return generatedHeader() +
           "port 0\n"
           "unixsocket " +
           QFile::encodeName(p.redisSocket) +
           "\n"
           "unixsocketperm 700\n"
           "dir " +
           QFile::encodeName(p.redisDir) +
           "\n"
           "daemonize no\nsupervised no\nlogfile \"\"\nloglevel warning\n"
           "save 900 1\nsave 300 100\ndbfilename dump.rdb\n"
           "maxmemory 256mb\nmaxmemory-policy volatile-ttl\nprotected-mode yes\n";
}

// Rspamd's override.d/options.inc: its pid file and the DNS servers it asks.
QByteArray rspamdOptions(const Config& config, const SpamPaths& p) {
    QByteArray options = generatedHeader() + "pidfile = " + ucl(p.runDir + QStringLiteral("/rspamd.pid")) + ";\n";
    QStringList servers;
    // dns.servers, else the bundled resolver (resolver_engine.h), else resolv.conf (Rspamd's default).
    for (const DnsServer& d : configuredDnsServers(config))
        servers << (d.address.protocol() == QAbstractSocket::IPv6Protocol ? QStringLiteral("[%1]:%2")
                                                                          : QStringLiteral("%1:%2"))
                       .arg(d.address.toString())
                       .arg(d.port);
    if (!servers.isEmpty()) {
        options += "dns {\n  nameserver = [";
        for (qsizetype i = 0; i < servers.size(); ++i) options += (i ? ", " : "") + ucl(servers.at(i));
        options += "];\n}\n";
    }
    return options;
}

// Every Rspamd file we write (local.d/ and override.d/), path and content.
QList<QPair<QString, QByteArray>> rspamdFiles(const Config& config, const SpamPaths& p, const QString& password) {
    const QByteArray header = generatedHeader();
    const QString local = p.rspamdConfDir + QStringLiteral("/local.d/");
    const QString over = p.rspamdConfDir + QStringLiteral("/override.d/");
    const QByteArray options = rspamdOptions(config, p);
    return {
        {over + QStringLiteral("options.inc"), options},
        {over + QStringLiteral("logging.inc"), header + "type = \"console\";\nlevel = \"warning\";\n"},
        {over + QStringLiteral("worker-normal.inc"),
         header + "bind_socket = " + ucl(p.rspamdSocket + QStringLiteral(" mode=0660")) + ";\ncount = 1;\n"},
        {over + QStringLiteral("worker-controller.inc"),
         header + "bind_socket = " + ucl(p.controllerSocket + QStringLiteral(" mode=0600")) +
             ";\ncount = 1;\npassword = " + ucl(password) + ";\nenable_password = " + ucl(password) +
             ";\nsecure_ip = [];\nstatic_dir = " + ucl(p.configDir + QStringLiteral("/empty")) + ";\n"},
        {over + QStringLiteral("worker-proxy.inc"),
         header + "enabled = false;\nbind_socket = " + ucl(p.runDir + QStringLiteral("/rspamd-proxy.sock mode=0600")) +
             ";\n"},
        {local + QStringLiteral("redis.conf"), header + "servers = " + ucl(p.redisSocket) + ";\n"},
        {local + QStringLiteral("http_headers.conf"), header + "enabled = true;\n"},
        // Bayes: a shared classifier and a per-user one (statisticConf), the per-user verdict's
        // weight in place of the shared one's when the user has enough training of their own.
        {over + QStringLiteral("statistic.conf"), header + statisticConf(config)},
        {local + QStringLiteral("statistics_group.conf"),
         header + "symbols {\n"
                  "  BAYES_SPAM_USER { weight = 5.1; description = \"Probably spam for this user, probability: \"; }\n"
                  "  BAYES_HAM_USER { weight = -3.0; description = \"Probably ham for this user, probability: \"; }\n"
                  "}\n"},
        {local + QStringLiteral("composites.conf"),
         header + "BAYES_USER_VERDICT {\n"
                  "  expression = \"(-BAYES_SPAM_USER | -BAYES_HAM_USER) & (~BAYES_SPAM | ~BAYES_HAM)\";\n"
                  "  score = 0.0;\n  group = \"statistics\";\n"
                  "  description = \"The user's own Bayes verdict counts, the shared one is shown without weight\";\n"
                  "}\n"},
        // Greylisting (Rspamd's module, records in Redis): mail scoring at least the "greylist"
        // action's score from a triplet not seen before is answered "soft reject" (451 4.7.1 by
        // spam.action_soft_reject) until spam.greylist_delay has passed.
        {local + QStringLiteral("greylist.conf"),
         header + "enabled = " + (get(config, keys::spam::greylist) ? "true" : "false") + ";\ntimeout = " +
             QByteArray::number(std::max<qint64>(1, get(config, keys::spam::greylistDelay) / 1000)) + "s;\n"},
        // Trimmed for a small appliance (measured: tests/bench/appliance_memory.py):
        // neural networks need thousands of scans a day to train and keep their networks in
        // every worker; the scan history only feeds Rspamd's web UI, which is not exposed.
        {local + QStringLiteral("neural.conf"), header + "enabled = false;\n"},
        {local + QStringLiteral("history_redis.conf"), header + "enabled = false;\n"},
    };
}

}  // namespace

Status writeSpamEngineConfig(const Config& config, const SpamPaths& p, const UserIds& ids) {
    for (const QString& d : {p.configDir, p.rspamdConfDir, p.rspamdConfDir + QStringLiteral("/local.d"),
                             p.rspamdConfDir + QStringLiteral("/override.d"), p.configDir + QStringLiteral("/empty")})
        if (auto st = sharedDir(d, ids); !st) return st;
    auto password = controllerPassword(p);
    if (!password) return password.error();
    if (auto st = writeShared(p.redisConf, redisConf(p), ids); !st) return st;
    for (const auto& [path, content] : rspamdFiles(config, p, *password))
        if (auto st = writeShared(path, content, ids); !st) return st;
    // Before the shared classifier, per-user Bayes was local.d/classifier-bayes.conf; Rspamd
    // must not merge it into the classifiers of override.d/statistic.conf.
    QFile::remove(p.rspamdConfDir + QStringLiteral("/local.d/classifier-bayes.conf"));
    return {};
}

EngineCommand redisCommand(const SpamPaths& p) {
    return {QStringLiteral("redis-server"), {p.redisConf}};
}

EngineCommand rspamdCommand(const SpamPaths& p) {
    return {QStringLiteral("rspamd"),
            {QStringLiteral("-f"), QStringLiteral("-c"), QStringLiteral("/etc/rspamd/rspamd.conf"),
             QStringLiteral("--var=LOCAL_CONFDIR=") + p.rspamdConfDir, QStringLiteral("--var=DBDIR=") + p.rspamdDbDir,
             QStringLiteral("--var=RUNDIR=") + p.runDir, QStringLiteral("--var=LOGDIR=") + p.runDir}};
}

QString spamEngineSocket(const QString& program, const SpamPaths& p) {
    if (program == u"redis-server") return p.redisSocket;
    if (program == u"rspamd") return p.rspamdSocket;
    return {};
}

QStringList spamEngineFolders(const QString& program, const SpamPaths& p) {
    if (program == u"redis-server") return {p.stateDir, p.redisDir, p.runDir};
    if (program == u"rspamd") return {p.stateDir, p.rspamdDbDir, p.runDir};
    return {};
}

}  // namespace postern
