// sieve_vacation.cpp — see sieve_vacation.h.
#include "sieve_vacation.h"

#include "common/mail/message.h"

#include "core/address.h"
#include "core/atomic_file.h"
#include "core/posix_io.h"

#include <QCryptographicHash>
#include <QFile>
#include <QUuid>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>

namespace postern::sieve {

namespace {

QByteArray headerBlock(const QByteArray& header) {
    QByteArray h = header;
    if (!h.endsWith('\n')) h += "\r\n";
    return h + "\r\n";
}

// Addresses of the header fields `names`, lower case.
QStringList addressesIn(const mail::Header& h, std::initializer_list<const char*> names) {
    QStringList out;
    for (const char* name : names)
        for (const QByteArray& v : h.values(name))
            for (const mail::Address& a : mail::parseAddressList(v))
                if (!a.local.isEmpty() && !a.domain.isEmpty()) out << (a.local + QLatin1Char('@') + a.domain).toLower();
    return out;
}

QString addressOf(const QString& text) {
    const QList<mail::Address> list = mail::parseAddressList(text.toUtf8());
    for (const mail::Address& a : list)
        if (!a.local.isEmpty() && !a.domain.isEmpty()) return (a.local + QLatin1Char('@') + a.domain).toLower();
    return {};
}

// The address without its +detail, lower case.
QString withoutDetail(const QString& address, const QString& delimiters) {
    const qsizetype at = address.lastIndexOf(QLatin1Char('@'));
    if (at <= 0) return address.toLower();
    return (splitDetail(address.left(at), delimiters).first + address.mid(at)).toLower();
}

// One line for a header field: unfolded, no control characters, bounded.
QString headerText(const QString& text, int max) {
    QString out;
    for (QChar c : text.simplified())
        if (c.unicode() >= 0x20 && c.unicode() != 0x7f) out += c;
    if (out.size() > max) out = out.left(max);
    return out;
}

bool isAscii(const QByteArray& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return uchar(c) < 0x80; });
}

// RFC 2047 encoded-word(s) for a non-ASCII text; ASCII as it is.
QByteArray encodeWord(const QString& text) {
    const QByteArray utf8 = text.toUtf8();
    if (isAscii(utf8)) return utf8;
    // Whole characters per word, each word at most 75 octets (RFC 2047 2): 45 bytes of UTF-8 -> 60 of base64.
    QByteArray out;
    QString chunk;
    auto flush = [&] {
        if (chunk.isEmpty()) return;
        if (!out.isEmpty()) out += "\r\n ";
        out += "=?utf-8?b?" + chunk.toUtf8().toBase64() + "?=";
        chunk.clear();
    };
    for (qsizetype i = 0; i < text.size(); ++i) {
        const bool pair = text.at(i).isHighSurrogate() && i + 1 < text.size();
        const QString ch = pair ? text.mid(i, 2) : text.mid(i, 1);
        if ((chunk + ch).toUtf8().size() > 45) flush();
        chunk += ch;
        if (pair) ++i;
    }
    flush();
    return out;
}

QByteArray crlf(const QByteArray& text) {
    QByteArray out;
    out.reserve(text.size() + text.size() / 40);
    for (qsizetype i = 0; i < text.size(); ++i) {
        const char c = text.at(i);
        if (c == '\r') {
            out += "\r\n";
            if (i + 1 < text.size() && text.at(i + 1) == '\n') ++i;
        } else if (c == '\n') {
            out += "\r\n";
        } else {
            out += c;
        }
    }
    return out;
}

QByteArray base64Lines(const QByteArray& data) {
    const QByteArray b = data.toBase64();
    QByteArray out;
    for (qsizetype i = 0; i < b.size(); i += 76) out += b.mid(i, 76) + "\r\n";
    return out;
}

const char* const kListFields[] = {"list-id",   "list-help",  "list-subscribe", "list-unsubscribe",
                                   "list-post", "list-owner", "list-archive"};

}  // namespace

std::optional<QString> whyNoReply(const Action& v, const VacationFacts& f) {
    if (f.envelopeFrom.isEmpty()) return QStringLiteral("null sender");  // RFC 5230 4.6
    const mail::Header h = mail::parseHeader(headerBlock(f.header));
    for (const QByteArray& as : h.values("auto-submitted"))  // RFC 3834 5: anything but "no"
        if (as.trimmed().split(';').first().trimmed().toLower() != "no")
            return QStringLiteral("Auto-Submitted: %1").arg(QString::fromUtf8(as).left(40));
    for (const char* name : kListFields)
        if (!h.values(name).isEmpty()) return QStringLiteral("mailing list (%1)").arg(QLatin1String(name));
    for (const QByteArray& p : h.values("precedence")) {
        const QByteArray value = p.trimmed().toLower();
        if (value == "bulk" || value == "list" || value == "junk")
            return QStringLiteral("Precedence: %1").arg(QLatin1String(value));
    }
    const QString sender = f.envelopeFrom.toLower();
    const QString senderLocal = sender.section(QLatin1Char('@'), 0, -2);
    // RFC 3834 2: senders that are programs, not people.
    if (senderLocal == u"mailer-daemon" || senderLocal == u"listserv" || senderLocal == u"majordomo" ||
        senderLocal.startsWith(u"owner-") || senderLocal.endsWith(u"-request") || senderLocal.endsWith(u"-bounces"))
        return QStringLiteral("sender is a program (%1)").arg(senderLocal);
    QStringList mine{f.mailbox.toLower(), withoutDetail(f.envelopeTo, f.delimiters), f.envelopeTo.toLower()};
    for (const QString& a : v.addresses)
        if (const QString addr = addressOf(a); !addr.isEmpty()) mine << addr;
    mine.removeAll(QString());
    // RFC 5230 4.5: never to ourselves.
    if (mine.contains(sender) || mine.contains(withoutDetail(sender, f.delimiters)) ||
        (!v.from.isEmpty() && addressOf(v.from) == sender))
        return QStringLiteral("sender is the user");
    // RFC 5230 4.5: only when one of the user's addresses is a recipient in the header.
    const QStringList recipients = addressesIn(h, {"to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"});
    for (const QString& r : recipients)
        if (mine.contains(r) || mine.contains(withoutDetail(r, f.delimiters))) return std::nullopt;
    return QStringLiteral("the user's address is not in To/Cc");
}

QString handleOf(const Action& v) {
    if (!v.handle.isEmpty()) return v.handle;
    // RFC 5230 4.2: without :handle, a change of :subject, :from, :mime or the reason is a new vacation.
    const QByteArray all =
        (v.subject + QChar(0) + v.from + QChar(0) + QChar(v.mime ? u'1' : u'0') + QChar(0) + v.reason).toUtf8();
    return QString::fromLatin1(QCryptographicHash::hash(all, QCryptographicHash::Sha256).toHex().left(32));
}

VacationReply buildReply(const Action& v, const VacationFacts& f, const QString& fromAddress, const QDateTime& now) {
    VacationReply r;
    r.to = f.envelopeFrom;  // RFC 5230 4.3: the reply goes to the return path
    r.from = fromAddress;
    r.handle = handleOf(v);
    r.periodSeconds = std::clamp<qint64>(v.periodSeconds, 0, kMaxVacationSeconds);
    const mail::Header h = mail::parseHeader(headerBlock(f.header));
    const QString domain = fromAddress.section(QLatin1Char('@'), -1);
    // From: the :from text as written when it names the address we send from, else the address.
    QByteArray from = "<" + fromAddress.toUtf8() + ">";
    if (!v.from.isEmpty() && addressOf(v.from) == fromAddress.toLower()) {
        const QString written = headerText(v.from, 300);
        const QList<mail::Address> list = mail::parseAddressList(written.toUtf8());
        if (!list.isEmpty() && !list.first().name.isEmpty())
            from = encodeWord(headerText(list.first().name, 100)) + " <" + fromAddress.toUtf8() + ">";
    }
    QString subject = headerText(v.subject, kMaxSubjectChars);
    if (subject.isEmpty()) {  // RFC 5230 5.3 / RFC 3834 3.1.5: "Auto: " and the original subject
        subject = QStringLiteral("Auto: ") + headerText(mail::decodeHeaderText(h.value("subject")), kMaxSubjectChars);
        subject = subject.trimmed();
    }
    QByteArray m;
    m += "From: " + from + "\r\n";
    m += "To: <" + r.to.toUtf8() + ">\r\n";
    m += "Subject: " + encodeWord(subject) + "\r\n";
    m += "Date: " + mail::formatDate(now).toUtf8() + "\r\n";
    m +=
        "Message-ID: <" + QUuid::createUuid().toString(QUuid::WithoutBraces).toUtf8() + "@" + domain.toUtf8() + ">\r\n";
    const QByteArray msgId = headerText(QString::fromUtf8(h.value("message-id")), 998).toUtf8();
    if (!msgId.isEmpty()) {  // RFC 5230 5.8 (RFC 5322 3.6.4)
        m += "In-Reply-To: " + msgId + "\r\n";
        const QByteArray refs = headerText(QString::fromUtf8(h.value("references")), 900).toUtf8();
        m += "References: " + (refs.isEmpty() ? msgId : refs + "\r\n " + msgId) + "\r\n";
    }
    m += "Auto-Submitted: auto-replied\r\n";  // RFC 3834 5.1, RFC 5230 5.7 (MUST)
    m += "MIME-Version: 1.0\r\n";
    const QByteArray reason = v.reason.toUtf8();
    if (v.mime) {
        // RFC 5230 4.7: the reason is a MIME entity (its own header and body).
        // Only its Content-* fields are taken: the script cannot add From, To, Bcc or a second Subject.
        QByteArray entity = crlf(reason);
        if (!entity.endsWith("\r\n")) entity += "\r\n";
        const qsizetype end = entity.startsWith("\r\n") ? 0 : entity.indexOf("\r\n\r\n");
        QByteArray fields, body = entity;
        if (end >= 0) {
            const mail::Header eh = mail::parseHeader(entity);
            for (const mail::HeaderField& field : eh.fields)
                if (field.name.toLower().startsWith("content-"))
                    fields += entity.mid(field.start, field.end - field.start);
            body = entity.mid(end == 0 ? 2 : end + 4);
        }
        if (!fields.isEmpty() && !fields.endsWith("\r\n")) fields += "\r\n";
        m += fields + "\r\n" + body;
        r.eightBit = !isAscii(fields + body);
    } else {
        m += "Content-Type: text/plain; charset=utf-8\r\n";
        QByteArray text = crlf(reason);
        if (!text.endsWith("\r\n")) text += "\r\n";
        if (isAscii(text)) {
            m += "Content-Transfer-Encoding: 7bit\r\n\r\n" + text;
        } else {
            m += "Content-Transfer-Encoding: base64\r\n\r\n" + base64Lines(text);
        }
    }
    r.message = m;
    return r;
}

Result<bool> claimReply(const QString& dir, const QString& sender, const QString& handle, qint64 periodSeconds,
                        qint64 now) {
    if (auto st = ensureDirectory(dir, 0700); !st) return st.error();
    const QString lockPath = dir + QStringLiteral("/.vacation.lock");
    const int lock = ::open(QFile::encodeName(lockPath).constData(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lock < 0) return errnoError(lockPath, errno);
    if (retryOnEintr([&] { return ::flock(lock, LOCK_EX); }) != 0) {
        const Error e = errnoError(lockPath, errno);
        ::close(lock);
        return e;
    }
    auto done = [&](Result<bool> r) {
        ::close(lock);  // releases the lock
        return r;
    };
    const QString path = dir + QStringLiteral("/.vacation");
    const QByteArray key =
        QCryptographicHash::hash((sender.toLower() + QChar(0) + handle).toUtf8(), QCryptographicHash::Sha256).toHex();
    const qint64 period = std::clamp<qint64>(periodSeconds, 0, kMaxVacationSeconds);
    // (time, key) of every reply still within the longest period; ours looked up.
    QList<std::pair<qint64, QByteArray>> entries;
    bool seen = false;
    if (QFile::exists(path)) {
        auto text = readFile(path, qint64(kMaxVacationEntries + 1) * 100);
        if (!text) return done(text.error());
        for (const QByteArray& line : text->split('\n')) {
            const qsizetype sp = line.indexOf(' ');
            if (sp <= 0) continue;
            bool ok = false;
            const qint64 when = line.left(sp).toLongLong(&ok);
            const QByteArray k = line.mid(sp + 1).trimmed();
            if (!ok || k.size() != 64) continue;
            if (k == key) {
                // RFC 6131 2: within the period no second reply; a period of 0 always replies.
                if (period > 0 && now >= when && now - when < period) seen = true;
                continue;  // replaced below when a reply is sent now
            }
            if (now - when < kMaxVacationSeconds) entries << std::pair{when, k};
        }
    }
    if (seen) return done(false);
    entries << std::pair{now, key};
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    if (entries.size() > kMaxVacationEntries) entries.remove(0, entries.size() - kMaxVacationEntries);
    QByteArray out;
    for (const auto& [when, k] : entries) out += QByteArray::number(when) + ' ' + k + '\n';
    if (auto st = writeFileAtomic(path, out, 0600); !st) return done(st.error());
    return done(true);
}

}  // namespace postern::sieve
