// local_backend.cpp — see local_backend.h.
#include "local_backend.h"

#include "common/async.h"
#include "common/mail/dsn_params.h"
#include "common/mail/header_identity.h"
#include "common/spool/queue.h"
#include "common/senderauth/inbound.h"
#include "common/store/maildir_delivery.h"

#include "core/address.h"
#include "core/atomic_file.h"
#include "core/dns.h"
#include "core/log.h"
#include "core/paths.h"

#include <QDir>
#include <QFile>
#include <QSet>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace postern::smtp {

namespace {

class SpoolFile : public SpoolBody {
public:
    static std::shared_ptr<SpoolFile> create(const QString& dir, QString* error) {
        if (auto st = ensureDirectory(dir, 0700); !st) {
            *error = st.errorMessage();
            return nullptr;
        }
        for (int attempt = 0; attempt < 8; ++attempt) {
            const QString id = spool::newQueueId();
            const QString path = dir + QLatin1Char('/') + id;
            const int fd = ::open(QFile::encodeName(path).constData(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
            if (fd >= 0) return std::shared_ptr<SpoolFile>(new SpoolFile(id, path, fd));
            if (errno != EEXIST) {
                *error = QStringLiteral("%1: %2").arg(path, QString::fromLocal8Bit(std::strerror(errno)));
                return nullptr;
            }
        }
        *error = QStringLiteral("cannot pick a queue id");
        return nullptr;
    }
    ~SpoolFile() override {
        ::close(m_fd);
        ::unlink(QFile::encodeName(m_path).constData());  // the Maildir copies and the queue link live on
    }
    bool write(const char* data, qsizetype size) override {
        while (size > 0) {
            const ssize_t n = ::write(m_fd, data, size_t(size));
            if (n < 0) {
                if (errno == EINTR) continue;
                m_error = errno;
                return false;
            }
            data += n;
            size -= n;
            m_size += n;
        }
        return true;
    }
    int errorCode() const override { return m_error; }
    QString queueId() const override { return m_id; }
    QString path() const override { return m_path; }
    int fd() const override { return m_fd; }
    qint64 size() const override { return m_size; }

private:
    SpoolFile(QString id, QString path, int fd) : m_id(std::move(id)), m_path(std::move(path)), m_fd(fd) {}
    QString m_id, m_path;
    int m_fd;
    int m_error = 0;
    qint64 m_size = 0;
};

// Inbound sender authentication (common/senderauth): settings captured on the
// main thread, the checks run on the delivery worker.
struct InboundChecks {
    bool enabled = false;
    bool rejectOnDmarc = true;
    bool quarantineToJunk = true;
    QString authservId;
    QList<DnsServer> dnsServers;
    int dnsTimeoutMs = 5000;
    qint64 maxBytes = 0;
};

InboundChecks inboundChecks(const Config& config, const MessageJob& job) {
    InboundChecks c;
    c.enabled = job.authUser.isEmpty() && config.flag(QStringLiteral("smtp.sender_auth"));
    c.rejectOnDmarc = config.flag(QStringLiteral("smtp.dmarc_reject"));
    c.quarantineToJunk = config.flag(QStringLiteral("smtp.dmarc_quarantine_junk"));
    c.authservId = config.hostname();
    for (const QString& s : config.list(QStringLiteral("dns.servers")))
        if (auto parsed = parseDnsServer(s)) c.dnsServers << *parsed;
    c.dnsTimeoutMs = int(config.durationMs(QStringLiteral("dns.timeout")));
    c.maxBytes = config.size(QStringLiteral("smtp.max_message_size")) + 64 * 1024;
    return c;
}

struct UniqueFd {
    int fd = -1;
    UniqueFd() = default;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() {
        if (fd >= 0) ::close(fd);
    }
};

struct InboundOutcome {
    bool reject = false;
    bool junk = false;
    DeliveryOutcome outcome;
    QByteArray header;
    qint64 filteredSize = 0;
};

InboundOutcome runInboundChecks(const InboundChecks& c, const MessageJob& job, UniqueFd* filtered) {
    InboundOutcome out;
    QByteArray message(job.body->size(), Qt::Uninitialized);
    if (job.body->size() > c.maxBytes || ::pread(job.body->fd(), message.data(), size_t(message.size()), 0) != message.size()) {
        out.header = QStringLiteral("Authentication-Results: %1; none (message not checked)\r\n").arg(c.authservId).toUtf8();
        return out;
    }
    bool forged = false;
    const QByteArray clean = senderauth::stripForgedResults(message, c.authservId, &forged);
    if (forged) {
        // A copy without the forged fields (memfd: no file to clean up), used for the Maildir copies.
        filtered->fd = ::memfd_create("postern-filtered", MFD_CLOEXEC);
        qsizetype off = 0;
        while (filtered->fd >= 0 && off < clean.size()) {
            const ssize_t n = ::write(filtered->fd, clean.constData() + off, size_t(clean.size() - off));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                ::close(filtered->fd);
                filtered->fd = -1;
                break;
            }
            off += n;
        }
        out.filteredSize = clean.size();
        log::info(u"senderauth.forged_results_removed", log::Fields().add("session", job.sessionId).add("id", job.queueId));
    }
    LdnsResolver dns(c.dnsServers, c.dnsTimeoutMs);
    senderauth::InboundInput in;
    in.message = clean;
    in.client = QHostAddress(job.clientAddress);
    in.sender = job.sender;
    in.helo = job.clientHelo;
    in.authservId = c.authservId;
    in.rejectOnDmarc = c.rejectOnDmarc;
    in.quarantineToJunk = c.quarantineToJunk;
    const senderauth::InboundVerdict v = senderauth::evaluateInbound(dns, in);
    log::info(u"senderauth", log::Fields().add("session", job.sessionId).add("id", job.queueId).add("result", v.summary)
                                 .add("action", v.action == senderauth::InboundVerdict::Action::Reject ? "reject"
                                                : v.action == senderauth::InboundVerdict::Action::Junk ? "junk" : "deliver"));
    out.header = v.header;
    out.junk = v.action == senderauth::InboundVerdict::Action::Junk;
    if (v.action == senderauth::InboundVerdict::Action::Reject) {
        out.reject = true;
        out.outcome.status = DeliveryOutcome::Status::PermFail;
        out.outcome.code = 550;
        out.outcome.enhanced = QStringLiteral("5.7.1");
        out.outcome.text = v.rejectText;
        out.outcome.detail = v.summary;
    }
    return out;
}

DeliveryOutcome failure(const Error& e, qint64 size = 0, qint64 quota = 0) {
    DeliveryOutcome o;
    o.detail = e.message;
    if (e.code == EDQUOT) {
        if (store::Delivery::exceedsQuotaAlone(size, quota)) {
            o.status = DeliveryOutcome::Status::PermFail;
            o.code = 552;
            o.enhanced = QStringLiteral("5.2.2");
            o.text = QStringLiteral("Message is larger than the recipient's whole mailbox quota");
        } else {
            o.code = 452;
            o.enhanced = QStringLiteral("4.2.2");
            o.text = QStringLiteral("Mailbox full, try again later");
        }
    } else if (e.code == ENOSPC) {
        o.code = 452;
        o.enhanced = QStringLiteral("4.3.1");
        o.text = QStringLiteral("Insufficient system storage");
    } else {
        o.code = 451;
        o.enhanced = QStringLiteral("4.3.0");
        o.text = QStringLiteral("Local error in processing, try again later");
    }
    return o;
}

// Submission (an authenticated user): the header's From: and Sender: must name
// addresses the user may send as, like MAIL FROM (see common/mail/header_identity.h).
// Runs on the delivery worker before anything is stored or queued.
std::optional<DeliveryOutcome> refuseForeignIdentity(const MessageJob& job, const Accounts& accounts, const QString& delimiters,
                                                     qint64 maxHeaderBytes) {
    const qint64 want = std::min(job.body->size(), maxHeaderBytes);
    QByteArray head(want, Qt::Uninitialized);
    const ssize_t got = want > 0 ? ::pread(job.body->fd(), head.data(), size_t(want), 0) : 0;
    std::optional<QString> refusal;
    if (got != want) {
        return failure(Error{QStringLiteral("cannot read the spool file to check the header"), got < 0 ? errno : EIO});
    }
    const bool complete = want == job.body->size() || head.contains("\r\n\r\n");
    if (!complete) refusal = QStringLiteral("Message header too large to check its From: field");
    else
        refusal = mail::checkSubmitterIdentity(head, job.authUser, [&](const QString& address) {
            return accounts.maySendAs(job.authUser, address, delimiters);
        });
    if (!refusal) return std::nullopt;
    DeliveryOutcome o;
    o.status = DeliveryOutcome::Status::PermFail;
    o.code = 550;
    o.enhanced = QStringLiteral("5.7.1");
    o.text = *refusal;
    o.detail = QStringLiteral("header identity refused: %1").arg(*refusal);
    return o;
}

}  // namespace

LocalBackend::LocalBackend(const Config& config, AccountStore& accounts, Authenticator& auth)
    : m_config(config), m_accounts(accounts), m_auth(auth) {
    m_pool.setMaxThreadCount(std::max(2, QThread::idealThreadCount() * 2));
}

bool LocalBackend::vrfyAllowed() const { return m_config.flag(QStringLiteral("smtp.vrfy")); }

RcptVerdict LocalBackend::checkRecipient(const MailPath& path, bool authenticated, qint64 messageSize, RecipientInfo* out,
                                         QString* detail) {
    auto accounts = m_accounts.current();
    QString domain;
    if (path.postmaster && path.domain.isEmpty()) {
        domain = m_config.value(QStringLiteral("primary_domain"));
        if (domain.isEmpty() && !accounts->domains().isEmpty()) domain = accounts->domains().first();
    } else if (!path.addressLiteral) {
        domain = normalizeDomain(path.domain).valueOr(QString());
        if (domain.isEmpty()) {
            *detail = QStringLiteral("invalid domain");
            return RcptVerdict::BadAddress;
        }
    }
    const bool local = !path.addressLiteral && accounts->isLocalDomain(domain);
    if (!local) {
        if (!authenticated) return RcptVerdict::RelayDenied;
        out->address = path.quotedLocal || path.addressLiteral ? path.address() : path.local + QLatin1Char('@') + domain;
        out->forwards = {out->address};
        return RcptVerdict::Ok;
    }
    if (path.quotedLocal) {
        *detail = QStringLiteral("quoted local parts are not used for mailboxes here");
        return RcptVerdict::Unknown;
    }
    const QString address = (path.postmaster && path.domain.isEmpty() ? QStringLiteral("postmaster") : path.local) + QLatin1Char('@') + domain;
    const Resolution r = accounts->resolve(address, m_config.value(QStringLiteral("recipient_delimiter")));
    switch (r.status) {
        case Resolution::Status::Ok: break;
        case Resolution::Status::Unknown:
        case Resolution::Status::NotLocal:
        case Resolution::Status::Invalid:
            *detail = r.detail;
            return RcptVerdict::Unknown;
        case Resolution::Status::Loop:
        case Resolution::Status::TooDeep:
            log::error(u"smtp.alias_error", log::Fields().add("rcpt", address).add("detail", r.detail));
            *detail = r.detail;
            return RcptVerdict::TempFail;
    }
    for (const QString& mbox : r.mailboxes) {
        const UserRecord* u = accounts->user(mbox);
        if (!u || u->quotaBytes <= 0) continue;
        auto used = store::MaildirQuota::usage(maildirRoot(m_config.mailDir(), mbox), u->quotaBytes);
        if (used && used->first + std::max<qint64>(messageSize, 0) > u->quotaBytes) return RcptVerdict::MailboxFull;
    }
    out->address = normalizeAddress(address).valueOr(address);
    out->mailboxes = r.mailboxes;
    out->forwards = r.forwards;
    return RcptVerdict::Ok;
}

bool LocalBackend::maySendAs(const QString& user, const MailPath& from) {
    if (from.isNull || from.quotedLocal || from.addressLiteral) return false;
    auto domain = normalizeDomain(from.domain);
    if (!domain) return false;
    return m_accounts.current()->maySendAs(user, from.local + QLatin1Char('@') + *domain,
                                           m_config.value(QStringLiteral("recipient_delimiter")));
}

void LocalBackend::authenticate(const AuthRequest& request, QByteArray password, AuthDone done) {
    m_auth.verify(request, QStringLiteral("smtp"), std::move(password),
                  [done = std::move(done)](Authenticator::Outcome o) { done(o.verdict, o.user); });
}

std::shared_ptr<SpoolBody> LocalBackend::openBody(QString* error) {
    return SpoolFile::create(m_config.queueDir() + QStringLiteral("/tmp"), error);
}

void LocalBackend::cleanSpoolTmp() {
    QDir tmp(m_config.queueDir() + QStringLiteral("/tmp"));
    for (const QString& name : tmp.entryList(QDir::Files)) {
        if (spool::isValidQueueId(name)) tmp.remove(name);
    }
}

void LocalBackend::deliver(QObject* context, MessageJob job, std::function<void(DeliveryOutcome)> done) {
    auto accounts = m_accounts.current();
    const QString mailDir = m_config.mailDir();
    const QString queueDir = m_config.queueDir();
    const InboundChecks checks = inboundChecks(m_config, job);
    const QString delimiters = m_config.value(QStringLiteral("recipient_delimiter"));
    // Our Received header comes first in the spool file; the client's header is at most smtp.max_header_size.
    const qint64 maxHeaderBytes = m_config.size(QStringLiteral("smtp.max_header_size")) + 64 * 1024;
    runAsync(
        context,
        [job, accounts, mailDir, queueDir, checks, delimiters, maxHeaderBytes]() -> DeliveryOutcome {
            if (!job.authUser.isEmpty()) {
                if (auto refused = refuseForeignIdentity(job, *accounts, delimiters, maxHeaderBytes)) return *refused;
            }
            qint64 size = job.body->size();
            // Mail from the Internet (no AUTH): SPF, DKIM, DMARC -> Authentication-Results;
            // forged results claiming our name are removed first.
            int bodyFd = job.body->fd();
            QByteArray authResults;
            QStringList folder;
            UniqueFd filtered;
            if (checks.enabled) {
                InboundOutcome in = runInboundChecks(checks, job, &filtered);
                if (in.reject) return in.outcome;
                authResults = in.header;
                if (in.junk) folder << QStringLiteral("Junk");
                if (filtered.fd >= 0) {
                    bodyFd = filtered.fd;
                    size = in.filteredSize;
                }
            }
            // Distinct local mailboxes and remote addresses over all recipients.
            QStringList mailboxes;
            QList<spool::EnvelopeRecipient> remote;
            QSet<QString> seenRemote;
            for (const RecipientInfo& r : job.recipients) {
                for (const QString& m : r.mailboxes)
                    if (!mailboxes.contains(m)) mailboxes << m;
                for (const QString& f : r.forwards) {
                    if (seenRemote.contains(f.toLower())) continue;
                    seenRemote.insert(f.toLower());
                    spool::EnvelopeRecipient er;
                    er.address = f;
                    er.notify = r.notify;
                    // An alias expansion keeps the address the sender used (RFC 3461 4.2).
                    er.orcpt = !r.orcpt.isEmpty() ? r.orcpt : (f != r.address ? QString::fromLatin1(mail::orcptForAddress(r.address)) : QString());
                    remote << er;
                }
            }
            spool::QueueWriter queue(queueDir);
            if (!remote.isEmpty()) {
                spool::Envelope env;
                env.id = job.queueId;
                env.arrival = QDateTime::currentSecsSinceEpoch();
                env.sender = job.sender;
                env.authUser = job.authUser;
                env.clientAddress = job.clientAddress;
                env.clientHelo = job.clientHelo;
                env.bodyType = job.eightBit ? QStringLiteral("8BITMIME") : QStringLiteral("7BIT");
                env.smtpUtf8 = job.smtpUtf8;
                env.ret = job.ret;
                env.envid = job.envid;
                env.size = size;
                env.recipients = remote;
                if (auto st = queue.prepare(env, job.body->path()); !st) return failure(st.error());
            }
            store::Delivery delivery(mailDir);
            const QString returnPath = QStringLiteral("Return-Path: <%1>\r\n").arg(job.sender);
            for (const QString& m : mailboxes) {
                const UserRecord* u = accounts->user(m);
                const qint64 quota = u ? u->quotaBytes : 0;
                const QByteArray prefix = (returnPath + QStringLiteral("Delivered-To: %1\r\n").arg(m)).toUtf8() + authResults;
                if (auto st = delivery.add(m, prefix, bodyFd, size, folder, quota); !st) {
                    queue.abort();
                    return failure(st.error(), size + prefix.size(), quota);
                }
            }
            if (auto st = delivery.commit(); !st) {
                queue.abort();
                return failure(st.error());
            }
            if (!remote.isEmpty()) {
                if (auto st = queue.commit(); !st) {
                    // The local copies are durable; the remote part is not. Say 4xx: a retry
                    // duplicates the local copies, which is better than losing the remote ones.
                    return failure(st.error());
                }
            }
            DeliveryOutcome ok;
            ok.status = DeliveryOutcome::Status::Delivered;
            ok.code = 250;
            ok.detail = QStringLiteral("delivered to %1 mailbox(es), queued for %2 remote recipient(s)").arg(mailboxes.size()).arg(remote.size());
            return ok;
        },
        std::move(done), &m_pool);
}

}  // namespace postern::smtp
