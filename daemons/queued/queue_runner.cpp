// queue_runner.cpp — see queue_runner.h.
#include "queue_runner.h"

#include "dane.h"
#include "delivery_policy.h"
#include "dsn.h"

#include "common/async.h"
#include "common/dkim/dkim.h"
#include "common/mail/dsn_params.h"
#include "common/mail/header_identity.h"
#include "common/mail/message.h"
#include "common/store/maildir_delivery.h"

#include "core/address.h"
#include "core/atomic_file.h"
#include "core/dkim_keys.h"
#include "core/log.h"
#include "core/stats.h"

#include <QDir>
#include <QFile>
#include <QSslCertificate>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace postern::outbound {

namespace {
constexpr qint64 kMaxSignBytes = 64LL * 1024 * 1024;  // larger messages are sent unsigned (and logged)
constexpr int kMaxRescanMs = 60'000;
constexpr const char* kSmarthostKey = "[smarthost]";

QString domainOf(const QString& address) { return address.section(QLatin1Char('@'), -1).toLower(); }

QString errnoText(int e) { return QString::fromLocal8Bit(std::strerror(e)); }

Status writeFileSynced(const QString& path, const QByteArray& data) {
    const int fd = ::open(QFile::encodeName(path).constData(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return Status::fail(QStringLiteral("%1: %2").arg(path, errnoText(errno)), errno);
    qsizetype off = 0;
    while (off < data.size()) {
        const ssize_t n = ::write(fd, data.constData() + off, size_t(data.size() - off));
        if (n < 0) {
            if (errno == EINTR) continue;
            const int e = errno;
            ::close(fd);
            ::unlink(QFile::encodeName(path).constData());
            return Status::fail(QStringLiteral("%1: %2").arg(path, errnoText(e)), e);
        }
        off += n;
    }
    if (::fsync(fd) != 0) {
        const int e = errno;
        ::close(fd);
        ::unlink(QFile::encodeName(path).constData());
        return Status::fail(QStringLiteral("%1: %2").arg(path, errnoText(e)), e);
    }
    ::close(fd);
    return Status{};
}

bool wantsNotice(const QString& notify, const char* what) {
    if (notify.isEmpty()) return true;  // RFC 3461 4.1: the MTA's default (failures and delays)
    return notify.toUpper().split(QLatin1Char(',')).contains(QString::fromLatin1(what));
}

// The DKIM signing step: From domain's active keys; nothing when we have none.
// Signed only when the From: address is one the submitting user (the envelope's
// auth-user) may send as: otherwise a user of one hosted domain could have mail
// signed for another (the header is checked at submission too; this is the
// second lock, for anything that reaches the queue another way).
struct SignOutcome {
    bool signedNow = false;
    bool refused = false;  // the user may not use the From: domain: warn
    QString note;  // why not signed, for the log
    qint64 size = 0;
    QString error;  // I/O trouble: leave the message where it is
};
SignOutcome signBody(const QString& configDir, const QString& bodyPath, const QString& authUser,
                     const std::shared_ptr<const Accounts>& accounts, const QString& delimiters) {
    SignOutcome out;
    QFile f(bodyPath);
    if (!f.open(QIODevice::ReadOnly)) {
        out.error = QStringLiteral("%1: %2").arg(bodyPath, f.errorString());
        return out;
    }
    out.size = f.size();
    if (f.size() > kMaxSignBytes) {
        out.note = QStringLiteral("too large to sign");
        return out;
    }
    const QByteArray content = f.readAll();
    f.close();
    const mail::Header header = mail::parseHeader(content);
    // The same strict reading of From: as at submission (every field, no cap).
    const mail::HeaderIdentity identity = mail::headerIdentity(content);
    if (identity.problem != mail::HeaderIdentity::Problem::None || identity.from.size() != 1) {
        out.note = QStringLiteral("no single From address");
        return out;
    }
    const mail::IdentityMailbox from = identity.from.first();
    const QString fromDomain = normalizeDomain(from.domain).valueOr(QString());
    if (fromDomain.isEmpty()) {
        out.note = QStringLiteral("no single From address");
        return out;
    }
    if (!accounts || !accounts->maySendAs(authUser, from.address(), delimiters)) {
        out.refused = true;
        out.note = QStringLiteral("not signed: From <%1> is not an address user %2 may send as").arg(from.address(), authUser);
        return out;
    }
    bool alreadySigned = false;
    for (const mail::HeaderField& h : header.fields) {
        if (h.name.compare("DKIM-Signature", Qt::CaseInsensitive) == 0 &&
            QString::fromLatin1(h.value).remove(QLatin1Char(' ')).remove(QLatin1Char('\t')).remove(QLatin1Char('\r')).remove(QLatin1Char('\n'))
                .contains(QStringLiteral(";d=") + fromDomain + QLatin1Char(';'), Qt::CaseInsensitive))
            alreadySigned = true;
    }
    if (alreadySigned) {
        out.note = QStringLiteral("already signed");
        return out;
    }
    DkimKeyStore store(configDir);
    auto keys = store.keys(fromDomain);
    if (!keys || keys->isEmpty()) {
        out.note = QStringLiteral("no DKIM key for %1").arg(fromDomain);
        return out;
    }
    QByteArray signatures;
    for (const DkimKey& k : *keys) {
        if (!k.active) continue;
        auto pem = store.privateKeyPem(fromDomain, k.selector);
        if (!pem) {
            out.note = pem.errorMessage();
            continue;
        }
        auto sig = dkim::signMessage(content, fromDomain, k.selector, *pem);
        if (!sig) {
            out.note = sig.errorMessage();
            continue;
        }
        signatures += *sig;
    }
    if (signatures.isEmpty()) return out;
    // New body next to the old one, fsync'd, renamed over it: either version is complete.
    const QString tmp = bodyPath + QStringLiteral(".signing");
    ::unlink(QFile::encodeName(tmp).constData());
    if (auto st = writeFileSynced(tmp, signatures + content); !st) {
        out.error = st.errorMessage();
        return out;
    }
    if (::rename(QFile::encodeName(tmp).constData(), QFile::encodeName(bodyPath).constData()) != 0) {
        out.error = QStringLiteral("%1: %2").arg(bodyPath, errnoText(errno));
        ::unlink(QFile::encodeName(tmp).constData());
        return out;
    }
    if (auto st = syncDirectory(QFileInfo(bodyPath).absolutePath()); !st) {
        out.error = st.errorMessage();
        return out;
    }
    out.signedNow = true;
    out.size = signatures.size() + content.size();
    return out;
}

QList<QSslCertificate> loadCa(const QString& path) {
    if (path.isEmpty()) return {};
    return QSslCertificate::fromPath(path, QSsl::Pem);
}
}  // namespace

RunnerSettings runnerSettings(const Config& c) {
    RunnerSettings s;
    s.hostname = c.hostname();
    s.queueDir = c.queueDir();
    s.mailDir = c.mailDir();
    s.configDir = c.configDir();
    s.mtaStsCacheDir = c.dataDir() + QStringLiteral("/state/mta-sts");
    s.lifetimeS = c.durationMs(QStringLiteral("queue.lifetime")) / 1000;
    s.retryMinS = std::max<qint64>(1, c.durationMs(QStringLiteral("queue.retry_min")) / 1000);
    s.retryMaxS = std::max(s.retryMinS, c.durationMs(QStringLiteral("queue.retry_max")) / 1000);
    s.delayWarningS = c.durationMs(QStringLiteral("queue.delay_warning")) / 1000;
    s.maxDeliveries = int(c.integer(QStringLiteral("outbound.max_deliveries")));
    s.maxPerDomain = int(c.integer(QStringLiteral("outbound.max_per_domain")));
    s.mxPort = quint16(c.integer(QStringLiteral("outbound.mx_port")));
    s.mtaStsPort = quint16(c.integer(QStringLiteral("outbound.mta_sts_port")));
    s.connectTimeoutMs = c.durationMs(QStringLiteral("outbound.connect_timeout"));
    s.commandTimeoutMs = c.durationMs(QStringLiteral("outbound.command_timeout"));
    s.dane = c.flag(QStringLiteral("outbound.dane"));
    s.mtaSts = c.flag(QStringLiteral("outbound.mta_sts"));
    s.dkimSign = c.flag(QStringLiteral("dkim.sign"));
    s.caFile = c.path(QStringLiteral("outbound.ca_file"));
    s.relayHost = c.string(QStringLiteral("relay.host"));
    s.relayUser = c.string(QStringLiteral("relay.user"));
    s.relayPasswordFile = c.path(QStringLiteral("relay.password_file"));
    s.relayImplicitTls = c.string(QStringLiteral("relay.tls")) == QStringLiteral("implicit");
    for (const QString& server : c.list(QStringLiteral("dns.servers"))) {
        if (auto parsed = parseDnsServer(server)) s.dnsServers << *parsed;
    }
    s.dnsTimeoutMs = int(c.durationMs(QStringLiteral("dns.timeout")));
    return s;
}

qint64 retryDelay(int attempts, qint64 minS, qint64 maxS) {
    qint64 d = std::max<qint64>(1, minS);
    for (int i = 1; i < attempts && d < maxS; ++i) d *= 2;
    return std::min(d, std::max(minS, maxS));
}

Route computeRoute(const RunnerSettings& s, const QString& domain, bool localDomain) {
    Route route;
    if (localDomain) {
        route.status = Route::Status::Local;
        return route;
    }
    LdnsResolver dns(s.dnsServers, s.dnsTimeoutMs);
    const QList<QSslCertificate> extraCa = loadCa(s.caFile);
    if (!s.relayHost.isEmpty()) {
        // Smarthost: TLS required and verified (a password goes over it).
        QString host = s.relayHost;
        quint16 port = s.relayImplicitTls ? 465 : 587;
        if (host.startsWith(QLatin1Char('['))) {
            const qsizetype close = host.indexOf(QLatin1Char(']'));
            if (close > 0 && host.mid(close + 1).startsWith(QLatin1Char(':'))) port = quint16(host.mid(close + 2).toUInt());
            host = host.mid(1, close - 1);
        } else if (host.count(QLatin1Char(':')) == 1) {
            port = quint16(host.section(QLatin1Char(':'), 1).toUInt());
            host = host.section(QLatin1Char(':'), 0, 0);
        }
        QList<QHostAddress> addresses;
        if (QHostAddress literal(host); !literal.isNull()) {
            addresses << literal;
        } else {
            for (DnsType t : {DnsType::AAAA, DnsType::A}) {
                const DnsAnswer a = dns.query(host, t);
                for (const DnsRecord& r : a.records)
                    if (r.type == t) addresses << r.address;
            }
        }
        if (addresses.isEmpty() || port == 0) {
            route.status = Route::Status::TempFail;
            route.reply = QStringLiteral("smarthost %1 has no address").arg(s.relayHost);
            return route;
        }
        for (const QHostAddress& a : addresses) {
            Target t;
            t.address = a.toString();
            t.port = port;
            t.host = host;
            t.implicitTls = s.relayImplicitTls;
            t.tls.mode = TlsPolicy::Mode::Verified;
            t.tls.verifyName = host;
            t.tls.extraCa = extraCa;
            t.tls.reason = QStringLiteral("smarthost");
            route.targets << t;
        }
        route.authUser = s.relayUser;
        if (!s.relayUser.isEmpty()) {
            QFile f(s.relayPasswordFile);
            if (!f.open(QIODevice::ReadOnly)) {
                route.status = Route::Status::TempFail;
                route.reply = QStringLiteral("cannot read relay.password_file: %1").arg(f.errorString());
                return route;
            }
            route.authPassword = f.readLine(4096).trimmed();
        }
        route.status = Route::Status::Ok;
        return route;
    }

    const Destination dest = resolveDestination(dns, domain);
    switch (dest.status) {
        case Destination::Status::NullMx:
            route.status = Route::Status::PermFail;
            route.reply = QStringLiteral("556 5.1.10 %1 does not accept mail (null MX, RFC 7505)").arg(domain);
            return route;
        case Destination::Status::NoSuchDomain:
            route.status = Route::Status::PermFail;
            route.reply = QStringLiteral("550 5.1.2 %1: %2").arg(domain, dest.error.isEmpty() ? QStringLiteral("no such domain") : dest.error);
            return route;
        case Destination::Status::TempFail:
            route.status = Route::Status::TempFail;
            route.reply = QStringLiteral("DNS lookup for %1 failed: %2").arg(domain, dest.error);
            return route;
        case Destination::Status::Ok:
            break;
    }
    std::optional<MtaStsPolicy> sts;
    QString stsError;
    if (s.mtaSts) sts = fetchMtaSts(dns, domain, s.mtaStsCacheDir, s.mtaStsPort, extraCa, &stsError);
    const bool enforce = sts && sts->mode == QStringLiteral("enforce");
    for (const MxHost& mx : dest.hosts) {
        TlsPolicy policy;
        policy.extraCa = extraCa;
        bool tlsaPublished = false;  // DNSSEC-validated TLSA records exist, usable or not
        if (s.dane && dest.dnssec) {
            const QList<DnsRecord> tlsa = daneRecords(dns, mx.name, s.mxPort);
            QList<DnsRecord> usable;
            for (const DnsRecord& r : tlsa) {
                tlsaPublished |= r.type == DnsType::TLSA;
                if (usableForSmtp(r)) usable << r;
            }
            if (!usable.isEmpty()) {
                policy.mode = TlsPolicy::Mode::Dane;
                policy.tlsa = usable;
                policy.reason = QStringLiteral("dane");
            }
        }
        if (policy.mode != TlsPolicy::Mode::Dane && enforce) {
            bool matches = false;
            for (const QString& p : sts->mx) matches |= mtaStsMxMatches(p, mx.name);
            if (!matches) continue;  // RFC 8461 4.1: not a permitted MX under the policy
            policy.mode = TlsPolicy::Mode::Verified;
            policy.verifyName = mx.name;
            policy.reason = QStringLiteral("mta-sts enforce");
        } else if (policy.mode != TlsPolicy::Mode::Dane && tlsaPublished) {
            // RFC 7672 2.2, 3.1.3: only unusable records (e.g. PKIX-TA/PKIX-EE): TLS is still
            // mandatory, the certificate is not authenticated.
            policy.mode = TlsPolicy::Mode::Encrypted;
            policy.reason = QStringLiteral("dane (no usable TLSA record)");
        }
        for (const QHostAddress& a : mx.addresses) {
            Target t;
            t.address = a.toString();
            t.port = s.mxPort;
            t.host = mx.name;
            t.tls = policy;
            route.targets << t;
        }
    }
    if (route.targets.isEmpty()) {
        route.status = Route::Status::TempFail;
        route.reply = enforce ? QStringLiteral("no MX host of %1 is permitted by its MTA-STS policy").arg(domain)
                              : QStringLiteral("no MX host of %1 has an address").arg(domain);
        return route;
    }
    route.status = Route::Status::Ok;
    return route;
}

Result<QString> enqueueMessage(const QString& queueDir, spool::Envelope env, const QByteArray& content) {
    const QString tmpDir = queueDir + QStringLiteral("/tmp");
    if (auto st = ensureDirectory(tmpDir, 0700); !st) return Result<QString>(st.error());
    env.id = spool::newQueueId();
    env.size = content.size();
    if (env.arrival == 0) env.arrival = QDateTime::currentSecsSinceEpoch();
    const QString tmp = tmpDir + QLatin1Char('/') + env.id;
    if (auto st = writeFileSynced(tmp, content); !st) return Result<QString>(st.error());
    spool::QueueWriter writer(queueDir);
    Status st = writer.prepare(env, tmp);
    if (st) st = writer.commit();
    ::unlink(QFile::encodeName(tmp).constData());
    if (!st) return Result<QString>(st.error());
    return env.id;
}

// ---------------------------------------------------------------------------

struct QueueRunner::Message {
    spool::Envelope env;
    QStringList waiting;  // domains with pending recipients, not started yet
    int running = 0;
    QList<int> failedNow;  // recipients that failed in this run (for the bounce)
};

struct QueueRunner::DomainJob {
    std::shared_ptr<Message> msg;
    QString domain;
    Route route;
    int next = 0;
    QPointer<SmtpClient> client;
    QString lastError;
};

QueueRunner::QueueRunner(const Config& config, AccountStore& accounts, QObject* parent)
    : QObject(parent), m_config(config), m_accounts(accounts), m_s(runnerSettings(config)) {
    m_scanTimer.setSingleShot(true);
    m_scanTimer.setInterval(50);  // coalesce bursts of directory events
    connect(&m_scanTimer, &QTimer::timeout, this, &QueueRunner::scan);
    m_retryTimer.setSingleShot(true);
    connect(&m_retryTimer, &QTimer::timeout, this, &QueueRunner::scan);
    connect(&m_watcher, &QFileSystemWatcher::directoryChanged, this, [this] { scheduleScan(); });
}

QueueRunner::~QueueRunner() = default;

Status QueueRunner::start() {
    QStringList folders{m_s.queueDir + QStringLiteral("/tmp")};
    for (const spool::QueueState state : spool::queueStates()) folders << spool::stateDir(m_s.queueDir, state);
    for (const QString& folder : std::as_const(folders)) {
        if (auto st = ensureDirectory(folder, 0700); !st) return st;
    }
    // Crash recovery: whatever a previous runner had in flight is due again now.
    QDir active(spool::stateDir(m_s.queueDir, spool::QueueState::Active));
    for (const QString& name : active.entryList({QStringLiteral("*.env")}, QDir::Files)) {
        const QString id = name.chopped(4);
        if (!spool::isValidQueueId(id)) continue;
        if (auto st = spool::moveMessage(m_s.queueDir, id, spool::QueueState::Active, spool::QueueState::Deferred); !st)
            log::error(u"queue.recover_failed", log::Fields().add("id", id).add("error", st.errorMessage()));
        else
            log::info(u"queue.recovered", log::Fields().add("id", id));
    }
    m_watcher.addPath(spool::stateDir(m_s.queueDir, spool::QueueState::Incoming));
    m_watcher.addPath(spool::stateDir(m_s.queueDir, spool::QueueState::Deferred));
    scan();
    return Status{};
}

void QueueRunner::reload() {
    m_s = runnerSettings(m_config);
    scheduleScan();
}

void QueueRunner::scheduleScan() {
    if (!m_stopped && !m_scanTimer.isActive()) m_scanTimer.start();
}

void QueueRunner::scan() {
    if (m_stopped) return;
    QSet<QString> known;
    for (const auto& r : m_ready) known.insert(r.first);
    auto isBusy = [&](const QString& id) { return known.contains(id) || m_active.contains(id) || m_admitting.contains(id); };
    QDir incoming(spool::stateDir(m_s.queueDir, spool::QueueState::Incoming));
    QStringList names = incoming.entryList({QStringLiteral("*.env")}, QDir::Files, QDir::Name);
    for (const QString& name : names) {
        const QString id = name.chopped(4);
        if (!spool::isValidQueueId(id) || isBusy(id)) continue;
        m_ready.append({id, spool::QueueState::Incoming});
        known.insert(id);
    }
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    qint64 earliest = 0;
    QDir deferred(spool::stateDir(m_s.queueDir, spool::QueueState::Deferred));
    for (const QString& name : deferred.entryList({QStringLiteral("*.env")}, QDir::Files, QDir::Name)) {
        const QString id = name.chopped(4);
        if (!spool::isValidQueueId(id) || isBusy(id)) continue;
        QFile f(deferred.filePath(name));
        if (!f.open(QIODevice::ReadOnly)) continue;
        auto env = spool::Envelope::parse(f.read(1024 * 1024));
        if (!env) {
            log::error(u"queue.bad_envelope", log::Fields().add("id", id).add("error", env.errorMessage()));
            if (auto st = spool::moveMessage(m_s.queueDir, id, spool::QueueState::Deferred, spool::QueueState::Corrupt); !st)
                log::error(u"queue.move_failed", log::Fields().add("id", id).add("error", st.errorMessage()));
            continue;
        }
        if (env->nextAttempt <= now) {
            m_ready.append({id, spool::QueueState::Deferred});
            known.insert(id);
        } else if (earliest == 0 || env->nextAttempt < earliest) {
            earliest = env->nextAttempt;
        }
    }
    const qint64 waitMs = earliest ? std::min<qint64>((earliest - now) * 1000, kMaxRescanMs) : kMaxRescanMs;
    m_retryTimer.start(int(std::max<qint64>(waitMs, 100)));
    pump();
}

void QueueRunner::pump() {
    if (m_stopped) return;
    while (!m_ready.isEmpty() && m_active.size() + m_admitting.size() < m_s.maxDeliveries) {
        const auto [id, state] = m_ready.takeFirst();
        admit(id, state);
    }
    for (const auto& msg : std::as_const(m_active)) {
        for (qsizetype i = 0; i < msg->waiting.size();) {
            const QString domain = msg->waiting.at(i);
            if (m_domainJobs.value(domain) >= m_s.maxPerDomain) {
                ++i;
                continue;
            }
            msg->waiting.removeAt(i);
            startDomain(msg, domain);
        }
    }
}

void QueueRunner::admit(const QString& id, spool::QueueState fromState) {
    m_admitting.insert(id);
    const QString queueDir = m_s.queueDir;
    const QString configDir = m_s.configDir;
    const bool sign = m_s.dkimSign;
    const std::shared_ptr<const Accounts> accounts = m_accounts.current();
    const QString delimiters = m_config.value(QStringLiteral("recipient_delimiter"));
    struct Admitted {
        std::shared_ptr<Message> msg;
        QString error;
        QString note;
        bool warn = false;
    };
    runAsync(
        this,
        [id, fromState, queueDir, configDir, sign, accounts, delimiters]() -> Admitted {
            Admitted a;
            QFile f(spool::envelopePath(queueDir, fromState, id));
            if (!f.open(QIODevice::ReadOnly)) {
                a.error = QStringLiteral("gone");  // deleted or moved by posternctl meanwhile
                return a;
            }
            auto env = spool::Envelope::parse(f.read(1024 * 1024));
            f.close();
            if (!env) {
                const Status moved = spool::moveMessage(queueDir, id, fromState, spool::QueueState::Corrupt);
                a.error = env.errorMessage() + (moved ? QString() : QStringLiteral("; ") + moved.errorMessage());
                return a;
            }
            if (fromState == spool::QueueState::Incoming && sign && !env->authUser.isEmpty()) {
                const SignOutcome s = signBody(configDir, spool::bodyPath(queueDir, fromState, id), env->authUser, accounts, delimiters);
                if (!s.error.isEmpty()) {
                    a.error = s.error;
                    return a;
                }
                a.note = s.signedNow ? QStringLiteral("dkim signed") : s.note;
                a.warn = s.refused;
                if (s.signedNow) {
                    env->size = s.size;
                    if (auto st = spool::saveEnvelope(queueDir, fromState, *env); !st) {
                        a.error = st.errorMessage();
                        return a;
                    }
                }
            }
            if (auto st = spool::moveMessage(queueDir, id, fromState, spool::QueueState::Active); !st) {
                a.error = st.errorMessage();
                return a;
            }
            a.msg = std::make_shared<Message>();
            a.msg->env = *env;
            return a;
        },
        [this, id](Admitted a) {
            m_admitting.remove(id);
            if (a.warn) log::warn(u"queue.dkim_refused", log::Fields().add("id", id).add("result", a.note));
            else if (!a.note.isEmpty()) log::info(u"queue.dkim", log::Fields().add("id", id).add("result", a.note));
            if (!a.msg) {
                if (a.error != QStringLiteral("gone"))
                    log::error(u"queue.admit_failed", log::Fields().add("id", id).add("error", a.error));
                pump();
                return;
            }
            if (m_stopped) {
                if (auto st = spool::moveMessage(m_s.queueDir, id, spool::QueueState::Active, spool::QueueState::Deferred); !st)
                    log::error(u"queue.move_failed", log::Fields().add("id", id).add("error", st.errorMessage()));
                return;
            }
            activated(a.msg);
        });
}

void QueueRunner::activated(std::shared_ptr<Message> msg) {
    spool::Envelope& env = msg->env;
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    ++env.attempts;
    if (env.firstAttempt == 0) env.firstAttempt = now;
    for (const auto& r : env.recipients) {
        if (r.status != spool::EnvelopeRecipient::Status::Pending) continue;
        const QString d = routeKey(r.address);
        if (!msg->waiting.contains(d)) msg->waiting << d;
    }
    m_active.insert(env.id, msg);
    log::info(u"queue.attempt", log::Fields()
                                    .add("id", env.id)
                                    .add("from", env.sender)
                                    .add("attempt", env.attempts)
                                    .add("domains", msg->waiting.join(QLatin1Char(','))));
    if (msg->waiting.isEmpty()) {
        finishMessage(msg);
        return;
    }
    pump();
}

QString QueueRunner::routeKey(const QString& address) const {
    const QString domain = domainOf(address);
    if (m_s.relayHost.isEmpty()) return domain;
    auto accounts = m_accounts.current();
    if (accounts && accounts->isLocalDomain(domain)) return domain;
    return QString::fromLatin1(kSmarthostKey);  // one transaction for all remote recipients
}

QList<int> QueueRunner::jobRecipients(const Message& msg, const QString& domain) const {
    QList<int> out;
    for (int i = 0; i < msg.env.recipients.size(); ++i) {
        const auto& r = msg.env.recipients.at(i);
        if (r.status == spool::EnvelopeRecipient::Status::Pending && routeKey(r.address) == domain) out << i;
    }
    return out;
}

void QueueRunner::startDomain(const std::shared_ptr<Message>& msg, const QString& domain) {
    auto job = std::make_shared<DomainJob>();
    job->msg = msg;
    job->domain = domain;
    ++msg->running;
    ++m_domainJobs[domain];
    m_jobs << job;
    auto accounts = m_accounts.current();
    const bool local = accounts && accounts->isLocalDomain(domain);
    const RunnerSettings s = m_s;
    runAsync(
        this, [s, domain, local]() { return computeRoute(s, domain, local); },
        [this, job](Route route) {
            if (m_stopped) return;
            job->route = std::move(route);
            switch (job->route.status) {
                case Route::Status::Local:
                    runLocal(job);
                    return;
                case Route::Status::PermFail:
                case Route::Status::TempFail: {
                    const bool perm = job->route.status == Route::Status::PermFail;
                    for (int i : jobRecipients(*job->msg, job->domain)) {
                        auto& r = job->msg->env.recipients[i];
                        r.diagnostic = job->route.reply;
                        if (perm) {
                            r.status = spool::EnvelopeRecipient::Status::Failed;
                            job->msg->failedNow << i;
                        }
                    }
                    log::info(u"delivery.route_failed",
                              log::Fields().add("id", job->msg->env.id).add("domain", job->domain).add("permanent", perm).add("error", job->route.reply));
                    save(*job->msg);
                    domainDone(job);
                    return;
                }
                case Route::Status::Ok:
                    tryNextTarget(job);
                    return;
            }
        });
}

void QueueRunner::runLocal(const std::shared_ptr<DomainJob>& job) {
    struct LocalResult {
        QList<int> indexes;
        QList<int> outcome;  // 0 delivered, 4 temporary, 5 permanent
        QStringList diagnostic;
        QStringList forwards;  // aliases that point elsewhere: new recipients
        QStringList forwardOrcpt;
    };
    const QList<int> indexes = jobRecipients(*job->msg, job->domain);
    const spool::Envelope env = job->msg->env;
    auto accounts = m_accounts.current();
    const QString mailDir = m_s.mailDir;
    const QString body = spool::bodyPath(m_s.queueDir, spool::QueueState::Active, env.id);
    runAsync(
        this,
        [indexes, env, accounts, mailDir, body]() {
            LocalResult out;
            out.indexes = indexes;
            const int fd = ::open(QFile::encodeName(body).constData(), O_RDONLY | O_CLOEXEC);
            const qint64 size = fd >= 0 ? ::lseek(fd, 0, SEEK_END) : 0;
            for (int i : indexes) {
                const QString address = env.recipients.at(i).address;
                int code = 0;
                QString diag;
                const Resolution res = accounts ? accounts->resolve(address) : Resolution{};
                if (fd < 0) {
                    code = 4;
                    diag = QStringLiteral("cannot read the queued message");
                } else if (!res.ok()) {
                    code = 5;
                    diag = QStringLiteral("550 5.1.1 <%1>: no such mailbox here").arg(address);
                } else {
                    store::Delivery delivery(mailDir);
                    Status st = Status{};
                    for (const QString& m : res.mailboxes) {
                        const UserRecord* u = accounts->user(m);
                        const QByteArray prefix = QStringLiteral("Return-Path: <%1>\r\nDelivered-To: %2\r\n").arg(env.sender, m).toUtf8();
                        st = delivery.add(m, prefix, fd, size, {}, u ? u->quotaBytes : 0);
                        if (!st) break;
                    }
                    if (st) st = delivery.commit();
                    if (!st) {
                        delivery.abort();
                        const bool overQuota = st.error().code == EDQUOT;
                        code = overQuota && store::Delivery::exceedsQuotaAlone(size, accounts->user(res.mailboxes.value(0)) ? accounts->user(res.mailboxes.value(0))->quotaBytes : 0) ? 5 : 4;
                        diag = overQuota ? QStringLiteral("%1 5.2.2 <%2>: mailbox full").arg(code == 5 ? 552 : 452).arg(address)
                                         : QStringLiteral("451 4.3.0 <%1>: %2").arg(address, st.errorMessage());
                    } else {
                        diag = QStringLiteral("250 2.0.0 delivered to %1 mailbox(es)").arg(res.mailboxes.size());
                        for (const QString& f : res.forwards) {
                            out.forwards << f;
                            out.forwardOrcpt << (env.recipients.at(i).orcpt.isEmpty() ? QString::fromLatin1(mail::orcptForAddress(address))
                                                                                       : env.recipients.at(i).orcpt);
                        }
                    }
                }
                out.outcome << code;
                out.diagnostic << diag;
            }
            if (fd >= 0) ::close(fd);
            return out;
        },
        [this, job](LocalResult r) {
            if (m_stopped) return;
            Message& msg = *job->msg;
            for (int k = 0; k < r.indexes.size(); ++k) {
                auto& rc = msg.env.recipients[r.indexes.at(k)];
                rc.diagnostic = r.diagnostic.at(k);
                rc.remoteMta = m_s.hostname;
                if (r.outcome.at(k) == 0) rc.status = spool::EnvelopeRecipient::Status::Sent;
                if (r.outcome.at(k) == 5) {
                    rc.status = spool::EnvelopeRecipient::Status::Failed;
                    msg.failedNow << r.indexes.at(k);
                }
                stats::add(QStringLiteral("postern_local_deliveries_total"),
                           {{QStringLiteral("result"), r.outcome.at(k) == 0 ? QStringLiteral("delivered") : r.outcome.at(k) == 5 ? QStringLiteral("failed")
                                                                                                                  : QStringLiteral("deferred")}});
                log::info(u"delivery.local", log::Fields().add("id", msg.env.id).add("to", rc.address).add("result", rc.diagnostic));
            }
            for (int k = 0; k < r.forwards.size(); ++k) {
                bool dup = false;
                for (const auto& existing : std::as_const(msg.env.recipients)) dup |= existing.address.compare(r.forwards.at(k), Qt::CaseInsensitive) == 0;
                if (dup) continue;
                spool::EnvelopeRecipient nr;
                nr.address = r.forwards.at(k);
                nr.orcpt = r.forwardOrcpt.at(k);
                msg.env.recipients << nr;
                const QString d = routeKey(nr.address);
                if (!msg.waiting.contains(d) && d != job->domain) msg.waiting << d;
            }
            save(msg);
            domainDone(job);
        });
}

void QueueRunner::tryNextTarget(const std::shared_ptr<DomainJob>& job) {
    if (m_stopped) return;
    const QList<int> indexes = jobRecipients(*job->msg, job->domain);
    if (indexes.isEmpty() || job->next >= job->route.targets.size()) {
        for (int i : indexes) {
            auto& r = job->msg->env.recipients[i];
            if (!job->lastError.isEmpty()) r.diagnostic = job->lastError;
        }
        save(*job->msg);
        domainDone(job);
        return;
    }
    const Target target = job->route.targets.at(job->next++);
    const spool::Envelope& env = job->msg->env;
    ClientRequest req;
    req.address = target.address;
    req.port = target.port;
    req.mxName = target.host;
    req.helo = m_s.hostname;
    req.implicitTls = target.implicitTls;
    req.tls = target.tls;
    req.authUser = job->route.authUser;
    req.authPassword = job->route.authPassword;
    req.sender = env.sender;
    for (int i : indexes) {
        req.recipients << env.recipients.at(i).address;
        req.notify << env.recipients.at(i).notify;
        req.orcpt << env.recipients.at(i).orcpt;
    }
    req.bodyPath = spool::bodyPath(m_s.queueDir, spool::QueueState::Active, env.id);
    req.eightBit = env.bodyType == QStringLiteral("8BITMIME");
    req.smtpUtf8 = env.smtpUtf8;
    req.ret = env.ret;
    req.envid = env.envid;
    req.connectTimeoutMs = m_s.connectTimeoutMs;
    req.commandTimeoutMs = m_s.commandTimeoutMs;
    auto* client = new SmtpClient(req, this);
    job->client = client;
    connect(client, &SmtpClient::finished, this, [this, job, target, indexes, client](const ClientResult& result) {
        client->deleteLater();
        job->client = nullptr;
        if (m_stopped) return;
        bool answered = false;
        applyResult(job, target, result, &answered);
        save(*job->msg);
        if (answered) domainDone(job);
        else tryNextTarget(job);
    });
    client->start();
}

void QueueRunner::applyResult(const std::shared_ptr<DomainJob>& job, const Target& target, const ClientResult& result, bool* answered) {
    Message& msg = *job->msg;
    const QList<int> indexes = jobRecipients(msg, job->domain);  // same order as the request
    const QString where = QStringLiteral("%1[%2]:%3").arg(target.host, target.address).arg(target.port);
    *answered = result.transaction.permanent();
    for (qsizetype k = 0; k < indexes.size() && k < result.recipients.size(); ++k) *answered |= result.recipients.at(k).code != 0;
    for (qsizetype k = 0; k < indexes.size(); ++k) {
        auto& r = msg.env.recipients[indexes.at(k)];
        const Reply rr = result.recipients.value(k);
        Reply decided;
        if (rr.code != 0 && !rr.ok()) decided = rr;                      // RCPT refused
        else if (result.transaction.code != 0) decided = result.transaction;  // greeting/MAIL/DATA/final reply
        QString diagnostic = decided.code ? decided.text : result.error;
        if (diagnostic.isEmpty()) diagnostic = QStringLiteral("connection to %1 ended early").arg(where);
        r.remoteMta = target.host;
        if (decided.code != 0 && decided.ok() && rr.ok()) {
            r.status = spool::EnvelopeRecipient::Status::Sent;
        } else if (decided.permanent()) {
            r.status = spool::EnvelopeRecipient::Status::Failed;
            msg.failedNow << indexes.at(k);
        }
        r.diagnostic = diagnostic;
        stats::add(QStringLiteral("postern_outbound_recipients_total"),
                   {{QStringLiteral("result"), r.status == spool::EnvelopeRecipient::Status::Sent     ? QStringLiteral("sent")
                                               : r.status == spool::EnvelopeRecipient::Status::Failed ? QStringLiteral("failed")
                                                                                                      : QStringLiteral("deferred")},
                    {QStringLiteral("tls"), result.tlsVersion.isEmpty() ? QStringLiteral("none") : result.tlsVersion}});
        log::Fields fields;
        fields.add("id", msg.env.id)
            .add("to", r.address)
            .add("relay", where)
            .add("tls", result.tlsVersion.isEmpty() ? QStringLiteral("none") : result.tlsVersion)
            .add("verified", result.tlsVerified);
        if (!result.dane.isEmpty()) fields.add("dane", result.dane);
        fields.add("tls_policy", target.tls.reason.isEmpty() ? QStringLiteral("opportunistic") : target.tls.reason)
            .add("status", spool::toString(r.status))
            .add("reply", diagnostic);
        log::info(u"delivery.remote", fields);
    }
    if (!*answered) job->lastError = result.error.isEmpty() ? result.transaction.text : result.error;
}

void QueueRunner::domainDone(const std::shared_ptr<DomainJob>& job) {
    m_jobs.removeOne(job);
    if (--m_domainJobs[job->domain] <= 0) m_domainJobs.remove(job->domain);
    auto msg = job->msg;
    --msg->running;
    if (msg->running == 0 && msg->waiting.isEmpty()) finishMessage(msg);
    pump();
}

void QueueRunner::save(const Message& msg) {
    if (auto st = spool::saveEnvelope(m_s.queueDir, spool::QueueState::Active, msg.env); !st)
        log::error(u"queue.save_failed", log::Fields().add("id", msg.env.id).add("error", st.errorMessage()));
}

Status QueueRunner::notifySender(const Message& msg, const QList<int>& recipients, bool delay) {
    const spool::Envelope& env = msg.env;
    QList<int> chosen;
    for (int i : recipients)
        if (wantsNotice(env.recipients.at(i).notify, delay ? "DELAY" : "FAILURE")) chosen << i;
    // Never a DSN to the null sender (RFC 5321 6.1, RFC 3464): that is how bounce loops start.
    if (env.sender.isEmpty() || chosen.isEmpty()) return Status{};
    DsnInput in;
    in.reportingMta = m_s.hostname;
    in.recipient = env.sender;
    in.envid = env.envid;
    in.arrival = QDateTime::fromSecsSinceEpoch(env.arrival);
    in.retryUntil = QDateTime::fromSecsSinceEpoch(env.arrival + m_s.lifetimeS);
    in.ret = env.ret;
    for (int i : chosen) {
        const auto& r = env.recipients.at(i);
        DsnRecipient d;
        d.address = r.address;
        d.orcpt = r.orcpt;
        d.delayed = delay;
        d.status = statusFromReply(r.diagnostic, delay ? QStringLiteral("4.4.1") : QStringLiteral("5.4.7"));
        if (!delay && d.status.startsWith(QLatin1Char('4'))) d.status = QStringLiteral("4.4.7");  // expired (RFC 3463)
        d.diagnostic = r.diagnostic.isEmpty() ? QStringLiteral("no further detail") : r.diagnostic;
        d.remoteMta = r.remoteMta;
        in.recipients << d;
    }
    QFile body(spool::bodyPath(m_s.queueDir, spool::QueueState::Active, env.id));
    if (body.open(QIODevice::ReadOnly)) in.original = body.read(in.maxReturnBytes + 1);
    if (in.original.size() > in.maxReturnBytes) in.ret = QStringLiteral("HDRS");
    spool::Envelope dsnEnv;
    dsnEnv.sender = QString();
    dsnEnv.bodyType = env.bodyType;
    dsnEnv.smtpUtf8 = env.smtpUtf8;
    spool::EnvelopeRecipient to;
    to.address = env.sender;
    dsnEnv.recipients << to;
    auto id = enqueueMessage(m_s.queueDir, dsnEnv, buildDsn(in));
    if (!id) return Status(id.error());
    stats::add(QStringLiteral("postern_dsn_total"), {{QStringLiteral("type"), delay ? QStringLiteral("delay") : QStringLiteral("failure")}});
    log::info(delay ? u"queue.delay_notice" : u"queue.bounce",
              log::Fields().add("id", env.id).add("dsn_id", *id).add("to", env.sender).add("recipients", qint64(chosen.size())));
    return Status{};
}

void QueueRunner::finishMessage(const std::shared_ptr<Message>& msg) {
    spool::Envelope& env = msg->env;
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    QList<int> failed = msg->failedNow;
    QList<int> pending;
    for (int i = 0; i < env.recipients.size(); ++i)
        if (env.recipients.at(i).status == spool::EnvelopeRecipient::Status::Pending) pending << i;
    const bool expired = !pending.isEmpty() && now - env.arrival >= m_s.lifetimeS;
    if (expired) {
        for (int i : pending) {
            auto& r = env.recipients[i];
            r.status = spool::EnvelopeRecipient::Status::Failed;
            r.diagnostic = QStringLiteral("message expired after %1 without delivery; last error: %2")
                               .arg(QString::number(m_s.lifetimeS / 3600.0, 'f', 1) + QStringLiteral(" h"), r.diagnostic);
            failed << i;
        }
        pending.clear();
    }
    // A bounce must be durable before the message that caused it can go.
    if (!failed.isEmpty()) {
        if (auto st = notifySender(*msg, failed, false); !st) {
            log::error(u"queue.bounce_failed", log::Fields().add("id", env.id).add("error", st.errorMessage()));
            for (int i : failed) env.recipients[i].status = spool::EnvelopeRecipient::Status::Pending;  // try again later
            pending << failed;
        }
    }
    msg->failedNow.clear();
    m_active.remove(env.id);
    if (pending.isEmpty()) {
        if (auto st = spool::removeMessage(m_s.queueDir, spool::QueueState::Active, env.id); !st)
            log::error(u"queue.remove_failed", log::Fields().add("id", env.id).add("error", st.errorMessage()));
        log::info(u"queue.done", log::Fields().add("id", env.id).add("attempts", env.attempts).add("failed", qint64(failed.size())));
        pump();
        return;
    }
    if (!env.delayNotified && m_s.delayWarningS > 0 && now - env.arrival >= m_s.delayWarningS) {
        if (auto st = notifySender(*msg, pending, true); st) env.delayNotified = true;
        else log::error(u"queue.delay_notice_failed", log::Fields().add("id", env.id).add("error", st.errorMessage()));
    }
    env.nextAttempt = now + retryDelay(env.attempts, m_s.retryMinS, m_s.retryMaxS);
    save(*msg);
    if (auto st = spool::moveMessage(m_s.queueDir, env.id, spool::QueueState::Active, spool::QueueState::Deferred); !st)
        log::error(u"queue.defer_failed", log::Fields().add("id", env.id).add("error", st.errorMessage()));
    log::info(u"queue.deferred", log::Fields()
                                     .add("id", env.id)
                                     .add("pending", qint64(pending.size()))
                                     .add("next_attempt", QDateTime::fromSecsSinceEpoch(env.nextAttempt).toUTC().toString(Qt::ISODate)));
    pump();
}

void QueueRunner::stop() {
    if (m_stopped) return;
    // Let blocking work finish and apply its results, so the envelopes say what was done.
    QThreadPool::globalInstance()->waitForDone(30'000);
    QCoreApplication::sendPostedEvents();
    m_stopped = true;
    m_scanTimer.stop();
    m_retryTimer.stop();
    for (const auto& job : std::as_const(m_jobs)) {
        if (job->client) delete job->client.data();
    }
    m_jobs.clear();
    const qint64 now = QDateTime::currentSecsSinceEpoch();
    for (const auto& msg : std::as_const(m_active)) {
        if (!msg->failedNow.isEmpty()) {
            if (auto st = notifySender(*msg, msg->failedNow, false); !st) {
                for (int i : std::as_const(msg->failedNow)) msg->env.recipients[i].status = spool::EnvelopeRecipient::Status::Pending;
            }
        }
        msg->env.nextAttempt = now;
        save(*msg);
        if (auto st = spool::moveMessage(m_s.queueDir, msg->env.id, spool::QueueState::Active, spool::QueueState::Deferred); !st)
            log::error(u"queue.move_failed", log::Fields().add("id", msg->env.id).add("error", st.errorMessage()));
    }
    m_active.clear();
}

}  // namespace postern::outbound
