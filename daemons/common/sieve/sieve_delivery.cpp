// sieve_delivery.cpp — see sieve_delivery.h.
#include "sieve_delivery.h"

#include "sieve_store.h"

#include "common/store/maildir_keywords.h"
#include "common/store/maildir_names.h"

#include "common/mail/message.h"

#include "core/address.h"
#include "core/paths.h"

#include <QDateTime>
#include <QFileInfo>
#include <QUuid>

#include <unistd.h>

namespace postern::sieve {

namespace {
const QStringList kSpecialUse = {QStringLiteral("Drafts"), QStringLiteral("Sent"), QStringLiteral("Trash"),
                                 QStringLiteral("Junk"), QStringLiteral("Archive")};

bool folderExists(const QString& root, const QStringList& parts) {
    if (parts.isEmpty()) return true;
    if (parts.size() == 1 && kSpecialUse.contains(parts.first())) return true;
    auto dir = store::folderDirName(parts);
    return dir && QFileInfo(root + QLatin1Char('/') + *dir + QStringLiteral("/cur")).isDir();
}

QByteArray readBody(const PlanInput& in, qint64 max) {
    if (in.bodyFd < 0 || in.bodyLength <= 0) return {};
    QByteArray out(qsizetype(std::min(in.bodyLength, max)), Qt::Uninitialized);
    qint64 done = 0;
    while (done < out.size()) {
        const ssize_t n = ::pread(in.bodyFd, out.data() + done, size_t(out.size() - done), off_t(in.bodyOffset + done));
        if (n <= 0) break;
        done += n;
    }
    out.truncate(qsizetype(done));
    return out;
}

void addCopy(Plan& plan, const QStringList& folder, const QString& flags, const QStringList& keywords = {}) {
    for (Plan::Copy& c : plan.copies)
        if (c.folder == folder) {
            c.flags = store::sortFlags(c.flags + flags);
            QString unique;
            for (QChar ch : c.flags)
                if (!unique.contains(ch)) unique += ch;
            c.flags = unique;
            for (const QString& k : keywords)
                if (!c.keywords.contains(k, Qt::CaseInsensitive)) c.keywords << k;
            return;
        }
    plan.copies << Plan::Copy{folder, flags, keywords};
}
// RFC 5322 message telling the user that their script is broken (RFC 3834: auto-generated).
QByteArray errorNotice(const QString& mailbox, const QString& script, const QString& error) {
    const QString domain = mailbox.section(u'@', -1);
    QString text = QStringLiteral(
                       "From: Mail filter <postmaster@%1>\r\n"
                       "To: <%2>\r\n"
                       "Subject: Your mail filter \"%3\" has an error\r\n"
                       "Date: %4\r\n"
                       "Message-ID: <%5@%1>\r\n"
                       "Auto-Submitted: auto-generated\r\n"
                       "MIME-Version: 1.0\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n"
                       "Content-Transfer-Encoding: 8bit\r\n"
                       "\r\n"
                       "Your Sieve script \"%3\" could not be run:\r\n\r\n    %6\r\n\r\n"
                       "(line:column in the script). Until it is fixed, your mail is delivered to your\r\n"
                       "INBOX as if there were no filter: nothing is lost. You are told once for each\r\n"
                       "version of the script.\r\n")
                       .arg(domain, mailbox, script, mail::formatDate(QDateTime::currentDateTime()),
                            QUuid::createUuid().toString(QUuid::WithoutBraces), error);
    return text.toUtf8();
}
// Why the message must not be redirected again (empty: it may): too many forwarding
// steps, or it has been through this mailbox before.
QString forwardLoop(const QByteArray& header, const QString& mailbox) {
    const mail::Header h = mail::parseHeader(header + "\r\n\r\n");
    int hops = 0;
    for (const mail::HeaderField& f : h.fields) {
        const QByteArray name = f.name.toLower();
        if (name != "delivered-to" && name != "x-loop") continue;
        ++hops;
        if (name == "delivered-to" && QString::fromUtf8(f.value).trimmed().compare(mailbox, Qt::CaseInsensitive) == 0)
            return QStringLiteral("mail loop (Delivered-To: %1 already present)").arg(mailbox);
    }
    if (hops > kMaxForwardHops) return QStringLiteral("more than %1 Delivered-To/X-Loop fields").arg(kMaxForwardHops);
    return {};
}

// The vacation reply's From: :from when the user may send as it, else the address the
// mail was sent to (without +detail) when the user may send as that, else the mailbox.
QString replyFrom(const Action& a, const PlanInput& in, const QString& mailbox) {
    auto may = [&](const QString& address) {
        if (address.isEmpty()) return false;
        if (address.compare(mailbox, Qt::CaseInsensitive) == 0) return true;
        return in.maySendAs && in.maySendAs(address);
    };
    if (!a.from.isEmpty()) {
        const QList<mail::Address> list = mail::parseAddressList(a.from.toUtf8());
        if (!list.isEmpty() && !list.first().domain.isEmpty()) {
            const QString addr = (list.first().local + QLatin1Char('@') + list.first().domain).toLower();
            if (may(addr)) return addr;
        }
    }
    const qsizetype at = in.envelopeTo.lastIndexOf(QLatin1Char('@'));
    if (at > 0) {
        const QString plain =
            (splitDetail(in.envelopeTo.left(at), in.delimiters).first + in.envelopeTo.mid(at)).toLower();
        if (may(plain)) return plain;
    }
    return mailbox;
}
}  // namespace

QString maildirFlags(const QStringList& flags, QStringList* ignored) {
    QString letters;
    for (const QString& f : flags) {
        const QString c = store::systemFlagLetter(f);
        if (c.isEmpty()) {
            if (ignored) *ignored << f;
            continue;
        }
        if (!letters.contains(c)) letters += c;
    }
    return store::sortFlags(letters);
}

std::optional<QStringList> folderPartsOf(const QString& mailbox) {
    QString name = mailbox;
    if (name.endsWith(u'/')) name.chop(1);
    if (name.compare(u"INBOX", Qt::CaseInsensitive) == 0) return QStringList{};
    QStringList parts = name.split(u'/');
    for (const QString& p : parts)
        if (!store::validFolderPart(p)) return std::nullopt;
    if (parts.first().compare(u"INBOX", Qt::CaseInsensitive) == 0) parts.first() = QStringLiteral("INBOX");
    if (!store::folderDirName(parts)) return std::nullopt;
    return parts;
}

namespace {
// What planDelivery's steps share: the inputs, the user's active script and the plan being built.
struct Planner {
    const QString& mailDir;
    const QString& mailbox;
    const PlanInput& input;
    ScriptCache& cache;
    std::optional<ScriptCache::Active> active;
    Plan plan;
    QString root;                  // the mailbox's Maildir
    bool redirectDropped = false;  // a redirect that cancelled the implicit keep was not done

    // Only a copy into INBOX, `error` for the log and, once per script version, the notice.
    Plan keepOnly(const QString& error, const QString& shortError = {}) {
        plan.copies = {Plan::Copy{}};
        plan.reject = false;
        plan.error = error;
        if (active && !shortError.isEmpty() && claimErrorNotice(mailDir, mailbox, active->name, active->stamp))
            plan.notice = errorNotice(mailbox, active->name, shortError);
        return plan;
    }
    void sequenceScripts(QList<std::shared_ptr<const Script>>& held, QList<Runnable>& sequence);
    Message message(bool usesBody, const Limits& limits) const;
    void apply(const Action& a, const QByteArray& header);
    void applyFileInto(const Action& a, const QString& flags, const QStringList& keywords);
};

// The administrator's before scripts, the user's, the after scripts (sieve_store.h
// GlobalScripts); a global script that is missing or broken is skipped and logged.
void Planner::sequenceScripts(QList<std::shared_ptr<const Script>>& held, QList<Runnable>& sequence) {
    const GlobalScripts& globals = input.globals;
    auto addGlobal = [&](const QString& name) {
        QString error;
        auto script = validScriptName(name) && !globals.dir.isEmpty()
                          ? cache.byPath(globals.dir + QLatin1Char('/') + name + QStringLiteral(".sieve"), &error)
                          : nullptr;
        if (!script) {
            plan.notes << QStringLiteral("global script %1 skipped: %2")
                              .arg(name, error.isEmpty() ? QStringLiteral("no such script") : error);
            return;
        }
        held << script;
        sequence << Runnable{script.get(), QStringLiteral("global:") + name};
    };
    for (const QString& name : globals.before) addGlobal(name);
    if (active) sequence << Runnable{active->script.get(), QStringLiteral("personal:") + active->name};
    for (const QString& name : globals.after) addGlobal(name);
}

// The message as the scripts see it; the body only when a script has a body test.
Message Planner::message(bool usesBody, const Limits& limits) const {
    Message m;
    m.header = input.header;
    // The header block without its empty line (callers may pass it with).
    if (m.header.endsWith("\r\n\r\n"))
        m.header.chop(2);
    else if (m.header.endsWith("\n\n"))
        m.header.chop(1);
    if (usesBody) m.body = readBody(input, limits.maxBodyBytes);  // an included script's body test sees none
    m.size = input.size;
    m.envelopeFrom = input.envelopeFrom;
    m.envelopeTo = input.envelopeTo;
    m.mailboxExists = [root = root](const QString& name) {
        auto parts = folderPartsOf(name);
        return parts && folderExists(root, *parts);
    };
    const QString personalDir = scriptDir(mailDir, mailbox);
    m.include = [&cache = cache, &globals = input.globals, personalDir](bool global, const QString& name,
                                                                        QString* error) {
        const QString dir = global ? globals.dir : personalDir;
        if (dir.isEmpty() || !validScriptName(name)) return std::shared_ptr<const Script>();
        return cache.byPath(dir + QLatin1Char('/') + name + QStringLiteral(".sieve"), error);
    };
    return m;
}

void Planner::applyFileInto(const Action& a, const QString& flags, const QStringList& keywords) {
    auto parts = folderPartsOf(a.target);
    if (!parts) {
        plan.notes << QStringLiteral("fileinto \"%1\": not a valid folder name, kept in INBOX").arg(a.target);
        addCopy(plan, {}, flags, keywords);
    } else if (!a.create && !folderExists(root, *parts)) {
        plan.notes << QStringLiteral("fileinto \"%1\": no such folder (and no :create), kept in INBOX").arg(a.target);
        addCopy(plan, {}, flags, keywords);
    } else {
        addCopy(plan, *parts, flags, keywords);
    }
}

// One action of the run into the plan (the table in sieve_delivery.h).
void Planner::apply(const Action& a, const QByteArray& header) {
    QStringList ignored, keywords, bad;
    const QString flags = maildirFlags(a.flags, &ignored);
    for (const QString& f : std::as_const(ignored)) {
        if (f.compare(u"$Forwarded", Qt::CaseInsensitive) == 0 || (!f.startsWith(u'\\') && store::validKeyword(f)))
            keywords << f;
        else
            bad << f;
    }
    if (!bad.isEmpty()) plan.notes << QStringLiteral("flags not stored (not an IMAP keyword): %1").arg(bad.join(u' '));
    switch (a.type) {
        case Action::Type::Keep:
            addCopy(plan, {}, flags, keywords);
            break;
        case Action::Type::FileInto:
            applyFileInto(a, flags, keywords);
            break;
        case Action::Type::Discard:
            break;
        case Action::Type::Reject:
            plan.reject = true;
            plan.rejectReason = a.reason;
            break;
        case Action::Type::Redirect:
            if (const QString loop = forwardLoop(header, mailbox); !loop.isEmpty()) {
                plan.notes << QStringLiteral("redirect to %1 not done: %2").arg(a.target, loop);
                redirectDropped = redirectDropped || !a.copy;
            } else {
                plan.redirects << Plan::Redirect{a.target, a.copy};
            }
            break;
        case Action::Type::Vacation: {
            VacationFacts facts{header, input.envelopeFrom, input.envelopeTo, mailbox, input.delimiters};
            if (auto why = whyNoReply(a, facts)) {
                plan.notes << QStringLiteral("vacation: no reply (%1)").arg(*why);
                break;
            }
            plan.vacation = buildReply(a, facts, replyFrom(a, input, mailbox));
            break;
        }
    }
}
}  // namespace

Plan planDelivery(const QString& mailDir, const QString& mailbox, const PlanInput& input, ScriptCache& cache) {
    QString readError;
    Planner p{mailDir, mailbox, input, cache, cache.active(mailDir, mailbox, &readError), {}, {}, false};
    const GlobalScripts& globals = input.globals;
    if (!p.active && globals.before.isEmpty() && globals.after.isEmpty()) {
        if (!readError.isEmpty()) return p.keepOnly(readError);
        p.plan.copies << Plan::Copy{};
        return p.plan;
    }
    if (!p.active && !readError.isEmpty()) p.plan.notes << readError;
    if (p.active) {
        p.plan.script = p.active->name;
        if (!p.active->script) {
            const QString why = p.active->error ? p.active->error->message : QString();
            return p.keepOnly(QStringLiteral("script %1 does not compile: %2").arg(p.active->name, why), why);
        }
    }
    QList<std::shared_ptr<const Script>> held;
    QList<Runnable> sequence;
    p.sequenceScripts(held, sequence);
    bool usesBody = false;
    for (const Runnable& r : std::as_const(sequence)) usesBody = usesBody || r.script->usesBody;
    const Limits limits;
    p.root = maildirRoot(mailDir, mailbox);
    const Message m = p.message(usesBody, limits);
    const Outcome out = run(sequence, m, limits);
    for (const Action& a : out.actions) p.plan.actions << describe(a);
    if (out.error)
        return p.keepOnly(QStringLiteral("script %1 failed: %2")
                              .arg(p.active ? p.active->name : QStringLiteral("(global)"), out.error->message),
                          out.error->message);
    for (const Action& a : out.actions) p.apply(a, m.header);
    // The redirect cancelled the implicit keep but cannot happen: keep instead (no mail lost).
    if (p.redirectDropped && p.plan.copies.isEmpty() && !p.plan.reject) {
        p.plan.notes << QStringLiteral("kept in INBOX instead of the redirect");
        addCopy(p.plan, {}, {});
    }
    return p.plan;
}

}  // namespace postern::sieve
