// local_backend.cpp — see local_backend.h.
#include "local_backend.h"

#include "common/async.h"
#include "common/mail/dsn_params.h"
#include "common/mail/header_identity.h"
#include "common/mail/message_file.h"
#include "common/senderauth/inbound.h"
#include "common/sieve/sieve_delivery.h"
#include "common/sieve/sieve_outbound.h"
#include "common/sieve/sieve_store.h"
#include "common/spam/rspamd_protocol.h"
#include "common/spool/queue.h"
#include "common/store/maildir_delivery.h"

#include "spam_scan.h"

#include "core/address.h"
#include "core/atomic_file.h"
#include "core/dns.h"
#include "core/log.h"
#include "core/paths.h"
#include "core/posix_io.h"
#include "core/setting_keys.h"
#include "core/spam_engine.h"
#include "core/stats.h"

#include <QDir>
#include <QFile>
#include <QSet>

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>

namespace postern::smtp {

namespace {

// Room above smtp.max_header_size for the trace fields in front of the client's header
// (our Received field) when the header block is read back from the spool file.
constexpr qint64 kTraceRoom = 64 * 1024;

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
            const int fd =
                ::open(QFile::encodeName(path).constData(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
            if (fd >= 0) return std::shared_ptr<SpoolFile>(new SpoolFile(id, path, fd));
            if (errno != EEXIST) {
                *error = errnoError(path, errno).message;
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
        if (auto st = writeAll(m_fd, QByteArrayView(data, size), m_path); !st) {
            m_error = st.error().code;
            return false;
        }
        m_size += size;
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

// What the delivery worker needs, captured on the main thread.
struct DeliveryContext {
    std::shared_ptr<const Accounts> accounts;
    QString mailDir, queueDir, delimiters;
    sieve::GlobalScripts sieveGlobals;  // sieve.before/after, the global script folder
    qint64 maxHeaderBytes = 0;
    // Inbound sender authentication (common/senderauth), for mail without AUTH.
    bool senderAuth = false;
    bool rejectOnDmarc = true;
    bool quarantineToJunk = true;
    QString authservId;
    QList<DnsServer> dnsServers;
    int dnsTimeoutMs = 5000;
    // Spam scanning (Rspamd) of mail without AUTH, when spam.enabled; of submitted mail
    // (spamOutbound) too when spam.scan_outbound.
    bool spamScan = false;
    bool spamOutbound = false;
    std::optional<RspamdTarget> spamTarget;  // nullopt: spam.rspamd_address is invalid (treated as Rspamd down)
    QString spamTargetError;
    int spamTimeoutMs = 20000;
    bool spamTempfailOnFailure = false;
    spam::SpamPolicy spamPolicy;
    QSet<QString> spamInboxUsers;          // spam.inbox_users, lower case
    std::shared_ptr<const mail::Srs> srs;  // Sieve redirects (null: no key, redirects kept)
};

DeliveryOutcome refusal(int code, const QString& enhanced, const QString& text, const QString& detail) {
    DeliveryOutcome o;
    o.status = DeliveryOutcome::Status::PermFail;
    o.code = code;
    o.enhanced = enhanced;
    o.text = text;
    o.detail = detail;
    return o;
}

// A failure to store: the one mapping (common/store/store_error.h).
DeliveryOutcome failure(const store::StoreError& e) {
    DeliveryOutcome o;
    o.status = e.temporary() ? DeliveryOutcome::Status::TempFail : DeliveryOutcome::Status::PermFail;
    o.code = e.smtpCode();
    o.enhanced = e.enhancedCode();
    o.text = e.text();
    o.detail = e.detail;
    return o;
}

DeliveryOutcome spoolFailure(const Error& e) {
    return failure(store::StoreError::fromErrno(e.code ? e.code : EIO, e.message, store::StoreError::Area::Spool));
}

struct InboundOutcome {
    std::optional<DeliveryOutcome> refused;
    bool junk = false;
    QByteArray results;                  // our Authentication-Results field
    QByteArray cleanHeader;              // the header without forged fields; empty when nothing was removed
    senderauth::InboundVerdict verdict;  // the results themselves (empty when not checked)
    bool checked = false;
};

// The first half of a delivery (worker thread): the message's header read back and checked.
struct Prepared {
    std::optional<DeliveryOutcome> refused;
    std::shared_ptr<const mail::MessageFile> message;
    InboundOutcome inbound;
};

// What the spam filter decided (main thread), for the second half.
struct SpamResult {
    bool junk = false;
    QByteArray headers;  // X-Spam-* fields for every local copy; empty when not scanned
};

// SPF, DKIM, DMARC -> Authentication-Results; forged results claiming our name are
// removed first. Reads the header block (in `message`) and streams the body for DKIM.
InboundOutcome runInboundChecks(const DeliveryContext& c, const MessageJob& job, const mail::MessageFile& message) {
    InboundOutcome out;
    if (!message.headerComplete()) {
        out.results =
            QStringLiteral("Authentication-Results: %1; none (message not checked)\r\n").arg(c.authservId).toUtf8();
        return out;
    }
    bool forged = false;
    const QByteArray clean = senderauth::stripForgedResults(message.header(), c.authservId, &forged);
    if (forged) {
        out.cleanHeader = clean;
        log::info(u"senderauth.forged_results_removed",
                  log::Fields().add("session", job.sessionId).add("id", job.queueId));
    }
    LdnsResolver dns(c.dnsServers, c.dnsTimeoutMs);
    senderauth::InboundInput in;
    in.client = QHostAddress(job.clientAddress);
    in.sender = job.sender;
    in.helo = job.clientHelo;
    in.authservId = c.authservId;
    in.rejectOnDmarc = c.rejectOnDmarc;
    in.quarantineToJunk = c.quarantineToJunk;
    // DKIM signatures are verified over the header as it will be stored (without the forged fields).
    const senderauth::InboundVerdict v =
        senderauth::evaluateInbound(dns, forged ? message.withHeader(clean) : message, in);
    using Action = senderauth::InboundVerdict::Action;
    log::info(u"senderauth", log::Fields()
                                 .add("session", job.sessionId)
                                 .add("id", job.queueId)
                                 .add("result", v.summary)
                                 .add("action", v.action == Action::Reject ? "reject"
                                                : v.action == Action::Junk ? "junk"
                                                                           : "deliver"));
    out.results = v.header;
    out.verdict = v;
    out.checked = true;
    out.junk = v.action == Action::Junk;
    if (v.action == Action::Reject) out.refused = refusal(550, QStringLiteral("5.7.1"), v.rejectText, v.summary);
    return out;
}

// Submission (an authenticated user): the header's From: and Sender: must name
// addresses the user may send as, like MAIL FROM (see common/mail/header_identity.h).
// Runs on the delivery worker before anything is stored or queued.
std::optional<DeliveryOutcome> refuseForeignIdentity(const DeliveryContext& c, const MessageJob& job,
                                                     const mail::MessageFile& message) {
    std::optional<QString> refused;
    if (!message.headerComplete())
        refused = QStringLiteral("Message header too large to check its From: field");
    else
        refused = mail::checkSubmitterIdentity(message.header(), job.authUser, [&](const QString& address) {
            return c.accounts->maySendAs(job.authUser, address, c.delimiters);
        });
    if (!refused) return std::nullopt;
    return refusal(550, QStringLiteral("5.7.1"), *refused, QStringLiteral("header identity refused: %1").arg(*refused));
}

// Distinct local mailboxes and remote addresses over all recipients.
void splitRecipients(const MessageJob& job, QStringList* mailboxes, QList<spool::EnvelopeRecipient>* remote) {
    QSet<QString> seenRemote;
    for (const RecipientInfo& r : job.recipients) {
        for (const QString& m : r.mailboxes)
            if (!mailboxes->contains(m)) *mailboxes << m;
        for (const QString& f : r.forwards) {
            if (seenRemote.contains(f.toLower())) continue;
            seenRemote.insert(f.toLower());
            spool::EnvelopeRecipient er;
            er.address = f;
            er.notify = r.notify;
            // An alias expansion keeps the address the sender used (RFC 3461 4.2).
            er.orcpt = !r.orcpt.isEmpty()
                           ? r.orcpt
                           : (f != r.address ? QString::fromLatin1(mail::orcptForAddress(r.address)) : QString());
            *remote << er;
        }
    }
}

spool::Envelope queueEnvelope(const MessageJob& job, const QList<spool::EnvelopeRecipient>& remote) {
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
    env.size = job.body->size();  // the spool file is what the queue sends
    env.recipients = remote;
    return env;
}

// The address the sender used for `mailbox` (the first recipient leading to it): Sieve's envelope "to".
QString recipientOf(const MessageJob& job, const QString& mailbox) {
    for (const RecipientInfo& r : job.recipients)
        if (r.mailboxes.contains(mailbox)) return r.address;
    return mailbox;
}

// A Sieve reject reason as one SMTP reply line: printable ASCII, bounded.
QString rejectText(const QString& reason) {
    QString out;
    for (QChar ch : reason.simplified())
        if (ch.unicode() >= 0x20 && ch.unicode() < 0x7f) out += ch;
    if (out.size() > 200) out = out.left(200);
    return out.isEmpty() ? QStringLiteral("Message rejected by the recipient's filter") : out;
}

// The note about a broken script, once per script version (sieve_delivery.h), into INBOX.
store::StoreStatus addErrorNotice(store::Delivery& delivery, const QString& mailbox, const sieve::Plan& plan) {
    if (plan.notice.isEmpty()) return {};
    store::Content notice;
    notice.head = QStringLiteral("Return-Path: <>\r\nDelivered-To: %1\r\n").arg(mailbox).toUtf8() + plan.notice;
    return delivery.add(mailbox, notice);
}

void logPlan(const MessageJob& job, const QString& mailbox, const sieve::Plan& plan) {
    if (plan.script.isEmpty() && plan.error.isEmpty()) return;
    auto fields = log::Fields()
                      .add("session", job.sessionId)
                      .add("id", job.queueId)
                      .add("mailbox", mailbox)
                      .add("script", plan.script);
    if (!plan.error.isEmpty()) {
        log::warn(u"sieve.error", fields.add("detail", plan.error).add("fallback", "keep"));
        return;
    }
    log::info(u"sieve", fields.add("actions", plan.actions.join(QStringLiteral("; "))));
    for (const QString& note : plan.notes)
        log::info(u"sieve.note", log::Fields().add("id", job.queueId).add("mailbox", mailbox).add("detail", note));
}

// First half of a delivery, on a worker thread: the header block read back, the submitter's
// identity or the sender authentication checked, forged fields removed.
Prepared prepareMessage(const DeliveryContext& c, const MessageJob& job) {
    Prepared p;
    auto message = mail::MessageFile::read(job.body->fd(), job.body->size(), c.maxHeaderBytes);
    if (!message) {
        p.refused = spoolFailure(message.error());
        return p;
    }
    p.message = std::make_shared<const mail::MessageFile>(std::move(*message));
    if (!job.authUser.isEmpty())
        if (auto refused = refuseForeignIdentity(c, job, *p.message)) {
            p.refused = *refused;
            return p;
        }
    if (c.senderAuth) {
        p.inbound = runInboundChecks(c, job, *p.message);
        if (p.inbound.refused) {
            p.refused = *p.inbound.refused;
            return p;
        }
    }
    // X-Spam-* fields are ours when the filter runs: any from outside are removed (the
    // header as already cleaned of forged results, or the stored one).
    if (c.spamScan && !c.spamOutbound && p.message->headerComplete()) {
        bool forged = false;
        const QByteArray base = p.inbound.cleanHeader.isEmpty() ? p.message->header() : p.inbound.cleanHeader;
        const QByteArray clean = spam::stripSpamHeaders(base, &forged);
        if (forged) {
            p.inbound.cleanHeader = clean;
            log::info(u"spam.forged_headers_removed",
                      log::Fields().add("session", job.sessionId).add("id", job.queueId));
        }
    }
    return p;
}

// The local half of storing one message: the job and what was decided about it, and its
// local mailboxes with their Sieve plans (same order).
struct LocalDelivery {
    const DeliveryContext& c;
    const MessageJob& job;
    const Prepared& p;
    const SpamResult& spam;
    QStringList mailboxes;
    QList<sieve::Plan> plans;
};

// Each mailbox's Sieve script decides where its copies go (common/sieve/sieve_delivery.h);
// without a script: INBOX. Scripts run after the spam filter and see its X-Spam-* fields.
void planMailboxes(LocalDelivery& d) {
    const DeliveryContext& c = d.c;
    for (const QString& m : d.mailboxes) {
        sieve::PlanInput in;
        in.header =
            d.spam.headers + (d.p.inbound.cleanHeader.isEmpty() ? d.p.message->header() : d.p.inbound.cleanHeader);
        in.bodyFd = d.job.body->fd();
        in.bodyOffset = d.p.message->bodyOffset();
        in.bodyLength = d.p.message->bodySize();
        in.size = d.job.body->size();
        in.envelopeFrom = d.job.sender;
        in.envelopeTo = recipientOf(d.job, m);
        in.delimiters = c.delimiters;
        in.maySendAs = [&c, &m](const QString& address) { return c.accounts->maySendAs(m, address, c.delimiters); };
        in.globals = c.sieveGlobals;
        d.plans << sieve::planDelivery(c.mailDir, m, in, sieve::processScriptCache());
        logPlan(d.job, m, d.plans.last());
    }
}

// Where Sieve redirects and vacation replies go: the queue, with SRS for forwarded senders.
sieve::Outbound sieveOutbound(const DeliveryContext& c) {
    sieve::Outbound outbound;
    outbound.queueDir = c.queueDir;
    outbound.srs = c.srs;
    outbound.isLocalDomain = [&c](const QString& domain) { return c.accounts->isLocalDomain(domain); };
    return outbound;
}

void logSieve(QStringView event, const LocalDelivery& d, const QString& mailbox, const QString& detail) {
    log::info(event, log::Fields()
                         .add("session", d.job.sessionId)
                         .add("id", d.job.queueId)
                         .add("mailbox", mailbox)
                         .add("detail", detail));
}

// The spool file after a copy's head (our Received header first): all of it, or, when forged
// results were removed, the cleaned header and the body range. Never the message in memory.
template <typename Part>
void addSpoolFile(const LocalDelivery& d, Part* part) {
    part->fd = d.job.body->fd();
    part->length = d.job.body->size();
    if (!d.p.inbound.cleanHeader.isEmpty()) {
        part->head += d.p.inbound.cleanHeader;
        part->offset = d.p.message->bodyOffset();
        part->length = d.p.message->bodySize();
    }
}

// Sieve redirects go into the queue first (common/sieve/sieve_outbound.h); one that
// cannot be queued becomes a copy into INBOX.
void queueSieveRedirects(LocalDelivery& d, const sieve::Outbound& outbound) {
    for (qsizetype i = 0; i < d.mailboxes.size(); ++i) {
        if (d.plans.at(i).redirects.isEmpty() || d.plans.at(i).reject) continue;
        sieve::Original original;
        original.head = d.p.inbound.results + d.spam.headers;
        addSpoolFile(d, &original);
        original.sender = d.job.sender;
        original.eightBit = d.job.eightBit;
        original.smtpUtf8 = d.job.smtpUtf8;
        for (const QString& line : sieve::queueRedirects(outbound, d.mailboxes.at(i), d.plans[i], original))
            logSieve(u"sieve.redirect", d, d.mailboxes.at(i), line);
    }
}

// Each copy: Return-Path, Delivered-To and our results, then the spool file (our
// Received header first) — or, when forged results were removed, the cleaned header
// and the body range of the spool file. Never the whole message in memory.
store::Content copyContent(const LocalDelivery& d, const QString& mailbox) {
    store::Content content;
    content.head = (QStringLiteral("Return-Path: <%1>\r\nDelivered-To: %2\r\n").arg(d.job.sender, mailbox)).toUtf8() +
                   d.p.inbound.results + d.spam.headers;
    addSpoolFile(d, &content);
    return content;
}

// Every mailbox's copies into `delivery` (not yet committed), and its script error notice.
store::StoreStatus addCopies(const LocalDelivery& d, store::Delivery& delivery) {
    const QStringList junk{QStringLiteral("Junk")};
    for (qsizetype i = 0; i < d.mailboxes.size(); ++i) {
        const QString& m = d.mailboxes.at(i);
        const UserRecord* u = d.c.accounts->user(m);
        const store::Content content = copyContent(d, m);
        // The folders: the Sieve plan's (no script: INBOX); what would go to INBOX goes to Junk
        // for DMARC quarantine, or for spam unless the user takes spam into INBOX (tagged).
        const bool toJunk = d.p.inbound.junk || (d.spam.junk && !d.c.spamInboxUsers.contains(m.toLower()));
        QList<sieve::Plan::Copy> copies = d.plans.at(i).copies;
        if (d.plans.at(i).reject) {
            log::warn(u"sieve.reject_kept",
                      log::Fields()
                          .add("session", d.job.sessionId)
                          .add("id", d.job.queueId)
                          .add("mailbox", m)
                          .add("detail", "reject cannot be answered at SMTP time with other recipients; kept"));
            copies = {sieve::Plan::Copy{}};
        }
        for (const sieve::Plan::Copy& copy : copies) {
            const QStringList folder = copy.folder.isEmpty() && toJunk ? junk : copy.folder;
            if (auto st = delivery.add(m, content, folder, u ? u->quotaBytes : 0, copy.flags, copy.keywords); !st)
                return st;
        }
        if (auto st = addErrorNotice(delivery, m, d.plans.at(i)); !st) return st;
    }
    return {};
}

// Vacation replies once the message is delivered; a failure here is only logged. None for
// spam or DMARC-quarantined mail (the sender is likely forged: no backscatter).
void sendVacations(const LocalDelivery& d, const sieve::Outbound& outbound) {
    for (qsizetype i = 0; i < d.mailboxes.size(); ++i) {
        if (d.plans.at(i).vacation && (d.p.inbound.junk || d.spam.junk)) {
            logSieve(u"sieve.vacation", d, d.mailboxes.at(i),
                     QStringLiteral("no reply to mail classified as spam or quarantined"));
            continue;
        }
        for (const QString& line : sieve::sendVacation(outbound, d.c.mailDir, d.mailboxes.at(i), d.plans.at(i)))
            logSieve(u"sieve.vacation", d, d.mailboxes.at(i), line);
    }
}

// Second half, on a worker thread: queue entry prepared, Maildir copies committed (into
// Junk when DMARC quarantine or the spam filter says so, with the filter's fields in front),
// queue entry committed (see local_backend.h).
DeliveryOutcome storeMessage(const DeliveryContext& c, const MessageJob& job, const Prepared& p,
                             const SpamResult& spam) {
    LocalDelivery d{c, job, p, spam, {}, {}};
    QList<spool::EnvelopeRecipient> remote;
    splitRecipients(job, &d.mailboxes, &remote);
    spool::QueueWriter queue(c.queueDir);
    if (!remote.isEmpty())
        if (auto st = queue.prepare(queueEnvelope(job, remote), job.body->path()); !st) return spoolFailure(st.error());
    // DMARC quarantine and the spam filter send what would go to INBOX to Junk (addCopies).
    planMailboxes(d);
    // Reject (RFC 5429 2.1): refused at SMTP time when every local mailbox rejects and
    // nothing else is to be delivered; otherwise that mailbox keeps the message (logged).
    bool allReject = remote.isEmpty() && !d.plans.isEmpty();
    for (const sieve::Plan& plan : d.plans) allReject = allReject && plan.reject;
    if (allReject)
        return refusal(550, QStringLiteral("5.7.1"), rejectText(d.plans.first().rejectReason),
                       QStringLiteral("rejected by Sieve"));
    const sieve::Outbound outbound = sieveOutbound(c);
    queueSieveRedirects(d, outbound);
    store::Delivery delivery(c.mailDir);
    if (auto st = addCopies(d, delivery); !st) return failure(st.error());
    if (auto st = delivery.commit(); !st) return failure(st.error());
    // The local copies are durable; if the remote part is not, say 4xx: a retry
    // duplicates the local copies, which is better than losing the remote ones.
    if (!remote.isEmpty())
        if (auto st = queue.commit(); !st) return spoolFailure(st.error());
    sendVacations(d, outbound);
    DeliveryOutcome ok;
    ok.status = DeliveryOutcome::Status::Delivered;
    ok.code = 250;
    ok.detail = QStringLiteral("delivered to %1 mailbox(es), queued for %2 remote recipient(s)")
                    .arg(d.mailboxes.size())
                    .arg(remote.size());
    return ok;
}

// The Rspamd request for one message: envelope, client, TLS facts and our own results.
spam::CheckRequest checkRequest(const DeliveryContext& c, const MessageJob& job, const Prepared& p) {
    spam::CheckRequest r;
    r.sender = job.sender;
    for (const RecipientInfo& ri : job.recipients)
        for (const QString& m : ri.mailboxes)
            if (!r.recipients.contains(m)) r.recipients << m;
    if (r.recipients.isEmpty())
        for (const RecipientInfo& ri : job.recipients) r.recipients << ri.address;
    r.clientAddress = job.clientAddress;
    r.helo = job.clientHelo;
    r.queueId = job.queueId;
    r.authUser = job.authUser;
    r.tlsProtocol = job.tlsProtocol;
    r.tlsCipher = job.tlsCipher;
    r.mtaName = c.authservId;
    if (p.inbound.checked) {
        r.spf = p.inbound.verdict.spf;
        r.dkimChecked = true;
        for (const auto& d : p.inbound.verdict.dkim) r.dkim << spam::DkimFact{d.first, d.second};
        r.dmarc = p.inbound.verdict.dmarc;
        r.dmarcPolicy = p.inbound.verdict.dmarcPolicy;
    }
    return r;
}

DeliveryOutcome spamRefusal(int code, const char* enhanced, const QString& text, const QString& detail) {
    DeliveryOutcome o;
    o.status = code >= 500 ? DeliveryOutcome::Status::PermFail : DeliveryOutcome::Status::TempFail;
    o.code = code;
    o.enhanced = QString::fromLatin1(enhanced);
    o.text = text;
    o.detail = detail;
    return o;
}

// Submitted mail (authenticated user): only Rspamd's "reject" refuses (550 5.7.1); every
// other action, and a failed scan, delivers as submitted (no Junk, no X-Spam-* fields:
// the sender is ours and rate-limited, and its mail must not stall behind a filter).
template <typename Store, typename Done>
void scanOutbound(QObject* context, const DeliveryContext& c, const MessageJob& job, Prepared p, Store store,
                  Done done) {
    const QString sessionId = job.sessionId, queueId = job.queueId;
    const QString user = job.authUser;
    auto onOutbound = [sessionId, queueId, user, p, store, done](Result<spam::Verdict> r) mutable {
        if (!r) {
            stats::add(QStringLiteral("postern_spam_outbound_scans_total"),
                       {{QStringLiteral("result"), QStringLiteral("unchecked")}});
            log::warn(u"spam.scan_failed", log::Fields()
                                               .add("session", sessionId)
                                               .add("id", queueId)
                                               .add("user", user)
                                               .add("error", r.error().message)
                                               .add("fallback", "accept (outbound)"));
            return store(std::move(p), SpamResult{});
        }
        const spam::Verdict& v = *r;
        stats::add(QStringLiteral("postern_spam_outbound_scans_total"),
                   {{QStringLiteral("result"), spam::toString(v.action).replace(QLatin1Char(' '), QLatin1Char('_'))}});
        const bool reject = v.action == spam::RspamdAction::Reject;
        log::write(reject ? log::Level::Warning : log::Level::Info, sessionId, u"spam.outbound_verdict",
                   log::Fields()
                       .add("id", queueId)
                       .add("user", user)
                       .add("action", spam::toString(v.action))
                       .add("score", QString::number(v.score, 'f', 2))
                       .add("outcome", reject ? "reject" : "deliver")
                       .add("symbols", v.symbols.join(QLatin1Char(','))));
        if (reject)
            return done(spamRefusal(
                550, "5.7.1", QStringLiteral("Message rejected as spam"),
                QStringLiteral("spam (outbound): reject (score %1)").arg(QString::number(v.score, 'f', 2))));
        return store(std::move(p), SpamResult{});
    };
    if (!c.spamTarget) return onOutbound(Error{c.spamTargetError});
    const qint64 length = job.body->size();
    RspamdScan::start(context, *c.spamTarget, spam::buildCheckRequestHead(checkRequest(c, job, p), length),
                      job.body->fd(), 0, length, c.spamTimeoutMs, std::move(onOutbound));
}

// Main thread: ask Rspamd (spam_scan.h), then store (or refuse) by the verdict and the
// spam.* settings. Rspamd failing never loses mail: accept marked "unchecked", or 451.
template <typename Store, typename Done>
void scanForSpam(QObject* context, const DeliveryContext& c, const MessageJob& job, Prepared p, Store store,
                 Done done) {
    if (c.spamOutbound) return scanOutbound(context, c, job, std::move(p), std::move(store), std::move(done));
    const QString sessionId = job.sessionId, queueId = job.queueId;
    const bool tempfailOnFailure = c.spamTempfailOnFailure;
    const spam::SpamPolicy policy = c.spamPolicy;
    auto onResult = [sessionId, queueId, tempfailOnFailure, policy, p, store, done](Result<spam::Verdict> r) mutable {
        if (!r) {
            stats::add(QStringLiteral("postern_spam_scans_total"),
                       {{QStringLiteral("result"), QStringLiteral("unchecked")}});
            log::warn(u"spam.scan_failed", log::Fields()
                                               .add("session", sessionId)
                                               .add("id", queueId)
                                               .add("error", r.error().message)
                                               .add("fallback", tempfailOnFailure ? "tempfail" : "accept"));
            if (tempfailOnFailure)
                return done(spamRefusal(451, "4.7.1", QStringLiteral("Spam filter unavailable, try again later"),
                                        QStringLiteral("spam filter failed: %1").arg(r.error().message)));
            return store(std::move(p), SpamResult{false, spam::uncheckedHeaders()});
        }
        const spam::Verdict& v = *r;
        // is_skipped (GTUBE, settings) still comes with the action Rspamd wants applied.
        const spam::Outcome outcome = spam::decide(v, policy);
        stats::add(QStringLiteral("postern_spam_scans_total"),
                   {{QStringLiteral("result"), spam::toString(v.action).replace(QLatin1Char(' '), QLatin1Char('_'))}});
        log::info(u"spam.verdict", log::Fields()
                                       .add("session", sessionId)
                                       .add("id", queueId)
                                       .add("action", spam::toString(v.action))
                                       .add("score", QString::number(v.score, 'f', 2))
                                       .add("required", QString::number(v.requiredScore, 'f', 2))
                                       .add("outcome", spam::toString(outcome))
                                       .add("skipped", v.skipped ? "yes" : "no")
                                       .add("symbols", v.symbols.join(QLatin1Char(','))));
        const QString detail =
            QStringLiteral("spam: %1 (score %2)").arg(spam::toString(v.action), QString::number(v.score, 'f', 2));
        switch (outcome) {
            case spam::Outcome::Reject:
                return done(spamRefusal(550, "5.7.1", QStringLiteral("Message rejected as spam"), detail));
            case spam::Outcome::TempFail:
                return done(spamRefusal(451, "4.7.1", QStringLiteral("Try again later"), detail));
            case spam::Outcome::Junk:
                return store(std::move(p), SpamResult{true, spam::spamHeaders(v)});
            case spam::Outcome::Inbox:
                return store(std::move(p), SpamResult{false, spam::spamHeaders(v)});
        }
    };
    if (!c.spamTarget) return onResult(Error{c.spamTargetError});
    // The whole spool file (our Received field first) as it arrived: Rspamd sees the forged
    // fields too, which is evidence, not trust.
    const qint64 length = job.body->size();
    RspamdScan::start(context, *c.spamTarget, spam::buildCheckRequestHead(checkRequest(c, job, p), length),
                      job.body->fd(), 0, length, c.spamTimeoutMs, std::move(onResult));
}

}  // namespace

LocalBackend::LocalBackend(const Config& config, AccountStore& accounts, Authenticator& auth)
    : m_config(config),
      m_accounts(accounts),
      m_auth(auth),
      m_space({config.mailDir(), config.queueDir()}),
      m_sendRate(config.dataDir() + QStringLiteral("/send-rate")) {
    m_pool.setMaxThreadCount(std::max(2, QThread::idealThreadCount() * 2));
}

std::optional<SendLimitHit> LocalBackend::sendLimit(const QString& user, qint64 messages, qint64 recipients,
                                                    bool record, QString* error) {
    SendLimits limits;
    limits.messagesPerHour = get(m_config, keys::smtp::userMessagesPerHour);
    limits.messagesPerDay = get(m_config, keys::smtp::userMessagesPerDay);
    limits.recipientsPerHour = get(m_config, keys::smtp::userRecipientsPerHour);
    limits.recipientsPerDay = get(m_config, keys::smtp::userRecipientsPerDay);
    auto r = record ? m_sendRate.record(user, limits, messages, recipients)
                    : m_sendRate.check(user, limits, messages, recipients);
    if (!r) {
        *error = r.error().message;
        return std::nullopt;
    }
    return *r;
}

bool LocalBackend::vrfyAllowed() const {
    return get(m_config, keys::smtp::vrfy);
}

bool LocalBackend::storageAvailable(qint64 declaredSize, QString* detail) {
    return m_space.admit(get(m_config, keys::smtp::minFreeSpace), declaredSize, detail);
}

RcptVerdict LocalBackend::checkRecipient(const MailPath& path, bool authenticated, qint64 messageSize,
                                         RecipientInfo* out, QString* detail) {
    auto accounts = m_accounts.current();
    QString domain;
    if (path.postmaster && path.domain.isEmpty()) {
        domain = get(m_config, keys::general::primaryDomain);
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
        out->address =
            path.quotedLocal || path.addressLiteral ? path.address() : path.local + QLatin1Char('@') + domain;
        out->forwards = {out->address};
        return RcptVerdict::Ok;
    }
    if (path.quotedLocal) {
        *detail = QStringLiteral("quoted local parts are not used for mailboxes here");
        return RcptVerdict::Unknown;
    }
    const QString address = (path.postmaster && path.domain.isEmpty() ? QStringLiteral("postmaster") : path.local) +
                            QLatin1Char('@') + domain;
    // SRS (common/mail/srs.h): a valid address of ours goes back to the original sender (a
    // bounce of a redirected message); a forged, damaged or expired one is unknown (550).
    if (mail::isSrsLocalPart(path.local)) {
        const mail::Srs::Decoded d =
            m_srs ? m_srs->reverse(path.local, QDateTime::currentSecsSinceEpoch()) : mail::Srs::Decoded{};
        if (d.status != mail::Srs::Status::Valid) {
            *detail = m_srs ? QStringLiteral("SRS address: %1").arg(mail::toString(d.status))
                            : QStringLiteral("SRS address: no key");
            return RcptVerdict::Unknown;
        }
        out->address = address;
        out->forwards = {d.original};
        return RcptVerdict::Ok;
    }
    const Resolution r = accounts->resolve(address, get(m_config, keys::general::recipientDelimiter));
    switch (r.status) {
        case Resolution::Status::Ok:
            break;
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
                                           get(m_config, keys::general::recipientDelimiter));
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
    DeliveryContext c;
    c.accounts = m_accounts.current();
    c.mailDir = m_config.mailDir();
    c.sieveGlobals = sieve::GlobalScripts::fromConfig(m_config);
    c.queueDir = m_config.queueDir();
    c.delimiters = get(m_config, keys::general::recipientDelimiter);
    c.srs = m_srs;
    // Our Received header comes first in the spool file; the client's header is at most smtp.max_header_size.
    c.maxHeaderBytes = get(m_config, keys::smtp::maxHeaderSize) + kTraceRoom;
    c.senderAuth = job.authUser.isEmpty() && get(m_config, keys::smtp::senderAuth);
    c.rejectOnDmarc = get(m_config, keys::smtp::dmarcReject);
    c.quarantineToJunk = get(m_config, keys::smtp::dmarcQuarantineJunk);
    c.authservId = m_config.hostname();
    c.dnsServers = configuredDnsServers(m_config);
    c.dnsTimeoutMs = int(get(m_config, keys::dns::timeout));
    c.spamOutbound = !job.authUser.isEmpty();
    c.spamScan = get(m_config, keys::spam::enabled) && (!c.spamOutbound || get(m_config, keys::spam::scanOutbound));
    if (c.spamScan) {
        QString address = get(m_config, keys::spam::rspamdAddress);
        if (address.isEmpty()) address = spamPaths(m_config, QString()).rspamdSocket;  // the supervisor's own
        if (auto t = parseRspamdTarget(address))
            c.spamTarget = *t;
        else
            c.spamTargetError = t.error().message;
        c.spamTimeoutMs = int(get(m_config, keys::spam::timeout));
        c.spamTempfailOnFailure = get(m_config, keys::spam::onFailure) == u"tempfail";
        c.spamPolicy = spam::policyFromConfig(m_config);
        for (const QString& u : get(m_config, keys::spam::inboxUsers)) c.spamInboxUsers.insert(u.toLower());
    }
    auto shared = std::make_shared<const DeliveryContext>(std::move(c));
    auto sharedJob = std::make_shared<const MessageJob>(std::move(job));
    QThreadPool* pool = &m_pool;
    QPointer<QObject> guard(context);
    runAsync(
        context, [shared, sharedJob]() { return prepareMessage(*shared, *sharedJob); },
        [shared, sharedJob, pool, guard, done = std::move(done)](Prepared p) mutable {
            auto store = [shared, sharedJob, pool, guard, done](Prepared prepared, SpamResult spam) mutable {
                if (!guard) return;
                runAsync(
                    guard.data(),
                    [shared, sharedJob, prepared, spam]() { return storeMessage(*shared, *sharedJob, prepared, spam); },
                    std::move(done), pool);
            };
            if (p.refused) return done(*p.refused);
            if (!shared->spamScan) return store(std::move(p), SpamResult{});
            scanForSpam(guard.data(), *shared, *sharedJob, std::move(p), std::move(store), std::move(done));
        },
        &m_pool);
}

}  // namespace postern::smtp
