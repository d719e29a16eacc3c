// imap_import.cpp — see imap_import.h.
#include "imap_import.h"

#include "imap_client_parser.h"
#include "mail_import.h"

#include "common/store/maildir_names.h"

#include "core/atomic_file.h"
#include "core/paths.h"

#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSet>
#include <QSslConfiguration>
#include <QSslSocket>
#include <QThread>

#include <unistd.h>
#include <algorithm>
#include <memory>
#include <optional>

namespace postern::ctl {

// ------------------------------------------------------------------ folder plan

namespace {
bool hasAttr(const RemoteFolder& f, const char* a) {
    for (const QString& x : f.attributes)
        if (x.compare(QLatin1String(a), Qt::CaseInsensitive) == 0) return true;
    return false;
}

QString cleanPart(QString p) {
    p.replace(QLatin1Char('.'), QLatin1Char('_'));
    p.replace(QLatin1Char('/'), QLatin1Char('_'));
    p.replace(QLatin1Char('\\'), QLatin1Char('_'));
    return p;
}
}  // namespace

QList<FolderPlan> planFolders(const QList<RemoteFolder>& remote, const QMap<QString, QString>& userMap, bool gmail) {
    QList<FolderPlan> out;
    static const QList<std::pair<const char*, const char*>> special = {
        {"\\Sent", "Sent"}, {"\\Drafts", "Drafts"}, {"\\Trash", "Trash"}, {"\\Junk", "Junk"}, {"\\Archive", "Archive"}};
    static const QList<std::pair<const char*, const char*>> byName = {
        {"Sent Items", "Sent"},        {"Sent Messages", "Sent"}, {"Sent Mail", "Sent"},  {"Deleted Items", "Trash"},
        {"Deleted Messages", "Trash"}, {"Junk E-mail", "Junk"},   {"Junk Email", "Junk"}, {"Spam", "Junk"},
        {"Bulk Mail", "Junk"},         {"Bin", "Trash"}};
    for (const RemoteFolder& f : remote) {
        FolderPlan p;
        p.remote = f;
        auto split = [&](const QString& name) {
            QStringList parts = f.delimiter.isNull() ? QStringList{name} : name.split(f.delimiter, Qt::SkipEmptyParts);
            if (!parts.isEmpty() && (parts.first() == u"[Gmail]" || parts.first() == u"[Google Mail]"))
                parts.removeFirst();
            return parts;
        };
        if (userMap.contains(f.name)) {
            const QString target = userMap.value(f.name);
            if (target.isEmpty()) {
                p.skip = true;
                p.why = QStringLiteral("skipped by --folder-map");
            } else if (target.compare(QStringLiteral("INBOX"), Qt::CaseInsensitive) != 0) {
                p.local = target.split(QLatin1Char('/'), Qt::SkipEmptyParts);
            }
        } else if (hasAttr(f, "\\Noselect") || hasAttr(f, "\\NonExistent")) {
            p.skip = true;
            p.why = QStringLiteral("not a folder with messages");
        } else if (f.name.compare(QStringLiteral("INBOX"), Qt::CaseInsensitive) == 0) {
            // INBOX: no parts
        } else if (hasAttr(f, "\\All")) {
            if (gmail) {
                p.local = {QStringLiteral("Archive")};
                p.allMail = true;
            } else {
                p.skip = true;
                p.why = QStringLiteral("a virtual folder of all mail");
            }
        } else if (hasAttr(f, "\\Flagged") || hasAttr(f, "\\Important")) {
            p.skip = true;
            p.why = QStringLiteral("a view of messages in other folders");
        } else {
            for (const auto& [attr, name] : special)
                if (hasAttr(f, attr)) p.local = {QLatin1String(name)};
            if (p.local.isEmpty()) {
                const QStringList parts = split(f.name);
                if (parts.size() == 1)
                    for (const auto& [from, to] : byName)
                        if (parts.first().compare(QLatin1String(from), Qt::CaseInsensitive) == 0)
                            p.local = {QLatin1String(to)};
                if (p.local.isEmpty())
                    for (const QString& part : parts) p.local << cleanPart(part);
                if (p.local.isEmpty()) {
                    p.skip = true;
                    p.why = QStringLiteral("no usable name");
                }
            }
        }
        if (!p.skip && !p.local.isEmpty() && !store::folderDirName(p.local)) {
            p.skip = true;
            p.why = QStringLiteral("its name cannot be a folder here");
        }
        out << p;
    }
    // All Mail last: it only adds what no other folder had.
    std::stable_sort(out.begin(), out.end(),
                     [](const FolderPlan& a, const FolderPlan& b) { return !a.allMail && b.allMail; });
    return out;
}

qint64 parseInternalDate(const QByteArray& text) {
    // date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE (RFC 9051 9)
    static const char* months[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
    const QList<QByteArray> t = text.trimmed().split(' ');
    if (t.size() != 3) return 0;
    const QList<QByteArray> d = t.at(0).split('-');
    if (d.size() != 3) return 0;
    int month = -1;
    for (int i = 0; i < 12; ++i)
        if (d.at(1).toLower() == months[i]) month = i + 1;
    bool ok1 = false, ok2 = false, ok3 = false;
    const int day = d.at(0).trimmed().toInt(&ok1), year = d.at(2).toInt(&ok2);
    const QTime time = QTime::fromString(QString::fromLatin1(t.at(1)), QStringLiteral("HH:mm:ss"));
    const int zone = t.at(2).mid(1).toInt(&ok3);
    if (month < 0 || !ok1 || !ok2 || !ok3 || !time.isValid() || t.at(2).size() != 5) return 0;
    const QDate date(year, month, day);
    if (!date.isValid()) return 0;
    const int offset = (zone / 100 * 3600 + zone % 100 * 60) * (t.at(2).startsWith('-') ? -1 : 1);
    return QDateTime(date, time, Qt::UTC).addSecs(-offset).toMSecsSinceEpoch();
}

// ------------------------------------------------------------------ client

namespace {

enum class TlsMode { Implicit, StartTls, Plain };

// Largest message copied: what the response parser accepts as one literal, less room
// for the rest of the FETCH response.
constexpr qint64 kMaxImportMessage = ClientLimits().maxLiteral - 1024 * 1024;

struct NetError {
    QString message;
    bool retry = true;  // a dropped connection or a throttle answer: try again later
};

class ImapClient {
public:
    QSet<QByteArray> caps;

    bool connectTo(const QString& host, quint16 port, TlsMode mode, const QList<QSslCertificate>& ca, NetError* err) {
        m_sock = std::make_unique<QSslSocket>();
        m_parser = ImapResponseParser();
        QSslConfiguration conf = QSslConfiguration::defaultConfiguration();
        QList<QSslCertificate> cas = conf.caCertificates();
        cas << ca;
        conf.setCaCertificates(cas);
        conf.setPeerVerifyMode(QSslSocket::VerifyPeer);
        m_sock->setSslConfiguration(conf);
        m_sock->setPeerVerifyName(host);
        if (mode == TlsMode::Implicit)
            m_sock->connectToHostEncrypted(host, port);
        else
            m_sock->connectToHost(host, port);
        if (!m_sock->waitForConnected(kTimeoutMs) ||
            (mode == TlsMode::Implicit && !m_sock->waitForEncrypted(kTimeoutMs))) {
            *err = {QStringLiteral("%1:%2: %3").arg(host).arg(port).arg(m_sock->errorString()), true};
            if (!m_sock->sslHandshakeErrors().isEmpty()) err->retry = false;
            return false;
        }
        ImapResponse greeting;
        if (!read(&greeting, err)) return false;
        if (greeting.status == "BYE") {
            *err = {QStringLiteral("the server said BYE: %1").arg(QString::fromUtf8(greeting.text)), true};
            return false;
        }
        takeCaps(greeting.code);
        if (caps.isEmpty() && !capability(err)) return false;
        if (mode == TlsMode::StartTls) {
            if (!caps.contains("STARTTLS")) {
                *err = {QStringLiteral("the server offers no STARTTLS (use --tls for port 993)"), false};
                return false;
            }
            auto r = command("STARTTLS", {}, err);
            if (!r || r->status != "OK") {
                if (r) *err = {QStringLiteral("STARTTLS refused: %1").arg(QString::fromUtf8(r->text)), false};
                return false;
            }
            m_sock->startClientEncryption();
            if (!m_sock->waitForEncrypted(kTimeoutMs)) {
                *err = {QStringLiteral("TLS: %1").arg(m_sock->errorString()), false};
                return false;
            }
            caps.clear();
            if (!capability(err)) return false;
        }
        return true;
    }

    bool capability(NetError* err) {
        caps.clear();
        auto r = command(
            "CAPABILITY",
            [&](const ImapResponse& u) {
                if (!u.values.isEmpty() && u.values.first().text.toUpper() == "CAPABILITY")
                    for (const ImapValue& v : u.values.mid(1)) caps.insert(v.text.toUpper());
            },
            err);
        return r.has_value();
    }

    bool login(const QString& user, const QString& password, NetError* err) {
        std::optional<ImapResponse> r;
        if (caps.contains("AUTH=PLAIN")) {
            // RFC 4616: authzid NUL authcid NUL password, base64, after the continuation.
            const QByteArray plain = QByteArray(1, '\0') + user.toUtf8() + '\0' + password.toUtf8();
            r = command("AUTHENTICATE PLAIN", {}, err, plain.toBase64());
        } else {
            auto quote = [](const QString& s) {
                QByteArray q = s.toUtf8();
                q.replace('\\', "\\\\").replace('"', "\\\"");
                return '"' + q + '"';
            };
            r = command("LOGIN " + quote(user) + ' ' + quote(password), {}, err);
        }
        if (!r) return false;
        if (r->status != "OK") {
            *err = {QStringLiteral("login refused: %1").arg(QString::fromUtf8(r->text)), false};
            return false;
        }
        takeCaps(r->code);
        return capability(err);
    }

    // Sends `cmd` (tag added); `onUntagged` sees every untagged response; `continuation`
    // is sent once when the server asks for it. nullopt (err set) on a network error.
    std::optional<ImapResponse> command(const QByteArray& cmd,
                                        const std::function<void(const ImapResponse&)>& onUntagged, NetError* err,
                                        const QByteArray& continuation = {}) {
        const QByteArray tag = "p" + QByteArray::number(++m_tag);
        if (!write(tag + ' ' + cmd + "\r\n", err)) return std::nullopt;
        for (;;) {
            ImapResponse r;
            if (!read(&r, err)) return std::nullopt;
            if (r.type == ImapResponse::Type::Continuation) {
                if (!write((continuation.isNull() ? QByteArray("*") : continuation) + "\r\n", err)) return std::nullopt;
                continue;
            }
            if (r.type == ImapResponse::Type::Tagged && r.tag == tag) {
                const QByteArray code = r.code.toUpper();
                if (r.status != "OK" &&
                    (code.startsWith("THROTTLED") || code.startsWith("UNAVAILABLE") || code.startsWith("LIMIT"))) {
                    *err = {QStringLiteral("the server asks to slow down: %1").arg(QString::fromUtf8(r.text)), true};
                    return std::nullopt;
                }
                return r;
            }
            if (r.type == ImapResponse::Type::Untagged && r.status == "BYE") {
                *err = {QStringLiteral("the server closed the session: %1").arg(QString::fromUtf8(r.text)), true};
                return std::nullopt;
            }
            if (onUntagged) onUntagged(r);
        }
    }

    void close() {
        if (!m_sock) return;
        NetError ignored;
        if (m_sock->state() == QAbstractSocket::ConnectedState) (void)write("z LOGOUT\r\n", &ignored);
        m_sock->disconnectFromHost();
        m_sock.reset();
    }

private:
    static constexpr int kTimeoutMs = 120000;

    void takeCaps(const QByteArray& code) {
        if (!code.toUpper().startsWith("CAPABILITY ")) return;
        caps.clear();
        for (const QByteArray& c : code.mid(11).split(' '))
            if (!c.isEmpty()) caps.insert(c.toUpper());
    }

    bool write(const QByteArray& data, NetError* err) {
        m_sock->write(data);
        while (m_sock->bytesToWrite() > 0)
            if (!m_sock->waitForBytesWritten(kTimeoutMs)) {
                *err = {QStringLiteral("connection lost: %1").arg(m_sock->errorString()), true};
                return false;
            }
        return true;
    }

    bool read(ImapResponse* r, NetError* err) {
        for (;;) {
            switch (m_parser.next(r)) {
                case ImapResponseParser::Result::Response:
                    return true;
                case ImapResponseParser::Result::Error:
                    *err = {QStringLiteral("bad answer from the server: %1").arg(m_parser.error()), true};
                    return false;
                case ImapResponseParser::Result::NeedMore:
                    break;
            }
            if (m_sock->bytesAvailable() == 0 && !m_sock->waitForReadyRead(kTimeoutMs)) {
                *err = {QStringLiteral("connection lost: %1").arg(m_sock->errorString()), true};
                return false;
            }
            m_parser.feed(m_sock->readAll());
        }
    }

    std::unique_ptr<QSslSocket> m_sock;
    ImapResponseParser m_parser;
    int m_tag = 0;
};

QByteArray quoteMailbox(const QByteArray& wire) {
    QByteArray q = wire;
    q.replace('\\', "\\\\").replace('"', "\\\"");
    return '"' + q + '"';
}

// ------------------------------------------------------------------ state

struct Pending {
    quint32 uid;
    QString name;
    QStringList flags;
};

struct FolderState {
    quint32 uidValidity = 0;
    quint32 lastUid = 0;
    QSet<quint32> done;  // above lastUid
    QList<Pending> pending;
};

struct ImportState {
    QString path;
    QMap<QString, FolderState> folders;
    QSet<QString> gmailIds;

    void load() {
        auto bytes = readFile(path, 256 * 1024 * 1024);
        if (!bytes) return;
        const QJsonObject o = QJsonDocument::fromJson(*bytes).object();
        const QJsonObject fs = o.value(QStringLiteral("folders")).toObject();
        for (auto it = fs.begin(); it != fs.end(); ++it) {
            const QJsonObject f = it.value().toObject();
            FolderState s;
            s.uidValidity = quint32(f.value(QStringLiteral("uidvalidity")).toInteger());
            s.lastUid = quint32(f.value(QStringLiteral("last_uid")).toInteger());
            for (const QJsonValue& v : f.value(QStringLiteral("done")).toArray()) s.done.insert(quint32(v.toInteger()));
            for (const QJsonValue& v : f.value(QStringLiteral("pending")).toArray()) {
                const QJsonObject p = v.toObject();
                QStringList flags;
                for (const QJsonValue& x : p.value(QStringLiteral("flags")).toArray()) flags << x.toString();
                s.pending << Pending{quint32(p.value(QStringLiteral("uid")).toInteger()),
                                     p.value(QStringLiteral("name")).toString(), flags};
            }
            folders.insert(it.key(), s);
        }
        for (const QJsonValue& v : o.value(QStringLiteral("gmail_ids")).toArray()) gmailIds.insert(v.toString());
    }

    Status save() const {
        QJsonObject fs;
        for (auto it = folders.begin(); it != folders.end(); ++it) {
            QJsonObject f;
            f.insert(QStringLiteral("uidvalidity"), qint64(it->uidValidity));
            f.insert(QStringLiteral("last_uid"), qint64(it->lastUid));
            QList<quint32> d(it->done.begin(), it->done.end());
            std::sort(d.begin(), d.end());
            QJsonArray done;
            for (quint32 u : d) done.append(qint64(u));
            f.insert(QStringLiteral("done"), done);
            QJsonArray pend;
            for (const Pending& p : it->pending) {
                QJsonObject x;
                x.insert(QStringLiteral("uid"), qint64(p.uid));
                x.insert(QStringLiteral("name"), p.name);
                x.insert(QStringLiteral("flags"), QJsonArray::fromStringList(p.flags));
                pend.append(x);
            }
            f.insert(QStringLiteral("pending"), pend);
            fs.insert(it.key(), f);
        }
        QJsonObject o;
        o.insert(QStringLiteral("version"), 1);
        o.insert(QStringLiteral("folders"), fs);
        QStringList ids(gmailIds.begin(), gmailIds.end());
        ids.sort();
        o.insert(QStringLiteral("gmail_ids"), QJsonArray::fromStringList(ids));
        return writeFileAtomic(path, QJsonDocument(o).toJson(QJsonDocument::Compact), 0600);
    }
};

struct Options {
    QString host;
    quint16 port = 993;
    TlsMode mode = TlsMode::Implicit;
    QString user, password, address;
    QMap<QString, QString> folderMap;
    double rate = -1;  // messages per second; <0: default
    qint64 maxMessages = 0;
    qint64 maxSize = kMaxImportMessage;
    QList<QSslCertificate> ca;
};

struct FolderCount {
    QString remote, local;
    qint64 copied = 0, already = 0, skippedDup = 0, tooBig = 0;
    QString note;
};

class Importer {
public:
    Importer(CtlContext& ctx, const Config& config, Options o, ImportState& state)
        : m_ctx(ctx), m_config(config), m_o(std::move(o)), m_state(state), m_tty(::isatty(STDERR_FILENO)) {
        m_rateClock.start();
    }

    // 0 done, 1 failed for good, 2 retry (network), 3 stopped at --max-messages
    int run(NetError* err) {
        ImapClient c;
        if (!c.connectTo(m_o.host, m_o.port, m_o.mode, m_o.ca, err)) return err->retry ? 2 : 1;
        if (!c.login(m_o.user, m_o.password, err)) return err->retry ? 2 : 1;
        const bool gmail = c.caps.contains("X-GM-EXT-1");
        if (m_o.rate < 0) m_o.rate = gmail ? 10 : 0;
        // LIST "" "*"
        QList<RemoteFolder> remote;
        bool utf8 = false;
        auto lr = c.command(
            "LIST \"\" \"*\"",
            [&](const ImapResponse& u) {
                if (u.values.size() < 4 || u.values.first().text.toUpper() != "LIST") return;
                RemoteFolder f;
                for (const ImapValue& a : u.values.at(1).list) f.attributes << QString::fromUtf8(a.text);
                if (u.values.at(2).kind != ImapValue::Kind::Nil && !u.values.at(2).text.isEmpty())
                    f.delimiter = QLatin1Char(u.values.at(2).text.at(0));
                f.wireName = u.values.at(3).text;
                auto decoded = utf8 ? Result<QString>(QString::fromUtf8(f.wireName))
                                    : store::decodeMUtf7(QString::fromLatin1(f.wireName));
                f.name = decoded ? *decoded : QString::fromUtf8(f.wireName);
                remote << f;
            },
            err);
        if (!lr) return 2;
        if (lr->status != "OK") {
            *err = {QStringLiteral("LIST failed: %1").arg(QString::fromUtf8(lr->text)), false};
            return 1;
        }
        const QList<FolderPlan> plan = planFolders(remote, m_o.folderMap, gmail);
        for (const FolderPlan& p : plan) {
            if (p.skip) {
                noteSkip(p);
                continue;
            }
            const int rc = copyFolder(c, p, gmail, err);
            if (rc != 0) {
                c.close();
                return rc;
            }
        }
        c.close();
        return 0;
    }

    QList<FolderCount> counts;
    qint64 total = 0;

private:
    void noteSkip(const FolderPlan& p) {
        for (const FolderCount& f : std::as_const(counts))
            if (f.remote == p.remote.name) return;
        FolderCount f;
        f.remote = p.remote.name;
        f.note = QStringLiteral("skipped: ") + p.why;
        counts << f;
    }

    FolderCount& countFor(const FolderPlan& p) {
        for (FolderCount& f : counts)
            if (f.remote == p.remote.name) return f;
        FolderCount f;
        f.remote = p.remote.name;
        f.local = p.local.isEmpty() ? QStringLiteral("INBOX") : p.local.join(QLatin1Char('/'));
        counts << f;
        return counts.last();
    }

    void pace() {
        if (m_o.rate <= 0) return;
        const qint64 wantMs = qint64(double(m_paced) * 1000.0 / m_o.rate);
        const qint64 ahead = wantMs - m_rateClock.elapsed();
        if (ahead > 0) QThread::msleep(ulong(ahead));
    }

    // Result of a step of copyFolder: go on, or stop with run()'s code.
    static constexpr int kGoOn = -1;

    // One message of a FETCH response, as the import needs it.
    struct Fetched {
        quint32 uid = 0;
        QStringList flags;
        qint64 date = 0;
        QByteArray body, gmId;
        bool haveBody = false;
    };

    // What a batch's body FETCH added to the folder.
    struct BatchAdd {
        QList<Pending> pending;
        Status error;
        QSet<quint32> seen;
    };

    int copyFolder(ImapClient& c, const FolderPlan& p, bool gmail, NetError* err) {
        FolderCount& count = countFor(p);
        quint32 uidValidity = 0;
        qint64 exists = -1;
        if (const int rc = examine(c, p, count, &uidValidity, &exists, err); rc != kGoOn) return rc;
        FolderState& st = folderState(p, uidValidity);
        auto writer = FolderWriter::open(m_config.mailDir(), m_o.address, p.local);
        if (!writer) {
            *err = {writer.errorMessage(), false};
            return 1;
        }
        if (auto s = recoverPending(**writer, st, count); !s) {
            *err = {s.errorMessage(), false};
            return 1;
        }
        if (exists == 0) return 0;
        auto uids = newUids(c, st, err);
        if (!uids) return 2;
        constexpr qsizetype kFetchBatch = 50;
        for (qsizetype i = 0; i < uids->size(); i += kFetchBatch) {
            QList<quint32> batch = uids->mid(i, kFetchBatch);
            if (m_o.maxMessages > 0 && total + batch.size() > m_o.maxMessages)
                batch = batch.mid(0, qsizetype(m_o.maxMessages - total));
            if (batch.isEmpty()) return 3;
            if (const int rc = copyBatch(c, p, gmail, **writer, st, count, batch, err); rc != kGoOn) return rc;
            if (m_tty) {
                const QByteArray line = QStringLiteral("\r%1 -> %2: %3/%4   ")
                                            .arg(count.remote, count.local)
                                            .arg(count.copied)
                                            .arg(uids->size())
                                            .toUtf8();
                (void)!::write(STDERR_FILENO, line.constData(), size_t(line.size()));
            }
            if (m_o.maxMessages > 0 && total >= m_o.maxMessages) return 3;
        }
        if (m_tty) (void)!::write(STDERR_FILENO, "\r\033[K", 4);
        return 0;
    }

    // EXAMINE: the folder's UIDVALIDITY and message count. A folder the server will not
    // open gets a note and is passed over.
    int examine(ImapClient& c, const FolderPlan& p, FolderCount& count, quint32* uidValidity, qint64* exists,
                NetError* err) {
        auto ex = c.command(
            "EXAMINE " + quoteMailbox(p.remote.wireName),
            [&](const ImapResponse& u) {
                if (u.code.toUpper().startsWith("UIDVALIDITY "))
                    *uidValidity = quint32(u.code.mid(12).trimmed().toULongLong());
                if (u.values.size() == 2 && u.values.at(1).text.toUpper() == "EXISTS")
                    *exists = qint64(u.values.first().number());
            },
            err);
        if (!ex) return 2;
        if (ex->status != "OK") {
            count.note = QStringLiteral("cannot open: ") + QString::fromUtf8(ex->text);
            return 0;
        }
        return kGoOn;
    }

    // The folder's import state; started anew when the server's UIDVALIDITY changed.
    FolderState& folderState(const FolderPlan& p, quint32 uidValidity) {
        FolderState& st = m_state.folders[p.remote.name];
        if (st.uidValidity != 0 && st.uidValidity != uidValidity) {
            m_ctx.out << p.remote.name << ": UIDVALIDITY changed on the server (" << st.uidValidity << " -> "
                      << uidValidity
                      << "): copying this folder again from the start; messages copied before may appear twice"
                      << Qt::endl;
            st = FolderState();
        }
        st.uidValidity = uidValidity;
        return st;
    }

    // An interrupted batch: what reached the Maildir counts as done (flags set again).
    Status recoverPending(FolderWriter& writer, FolderState& st, FolderCount& count) {
        if (st.pending.isEmpty()) return {};
        auto present = writer.presentNames();
        if (!present) return present.error();
        QStringList names;
        QList<QStringList> flags;
        for (const Pending& pe : std::as_const(st.pending)) {
            if (!present->contains(store::parseFileName(pe.name).base)) continue;
            st.done.insert(pe.uid);
            names << pe.name;
            flags << pe.flags;
            ++count.already;
        }
        if (auto s = writer.applyFlags(names, flags); !s) return s;
        st.pending.clear();
        return m_state.save();
    }

    // UID SEARCH: the UIDs above the last one done that are not done yet, sorted, each once.
    std::optional<QList<quint32>> newUids(ImapClient& c, const FolderState& st, NetError* err) {
        QList<quint32> uids;
        auto sr = c.command(
            "UID SEARCH UID " + QByteArray::number(qulonglong(st.lastUid) + 1) + ":*",
            [&](const ImapResponse& u) {
                if (u.values.isEmpty() || u.values.first().text.toUpper() != "SEARCH") return;
                for (const ImapValue& v : u.values.mid(1)) {
                    const quint64 n = v.number();
                    if (n > st.lastUid && n <= 0xffffffffULL && !st.done.contains(quint32(n))) uids << quint32(n);
                }
            },
            err);
        if (!sr) return std::nullopt;
        std::sort(uids.begin(), uids.end());
        uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
        return uids;
    }

    // One batch of UIDs: sizes, bodies into the writer, then the state saved around the commit.
    int copyBatch(ImapClient& c, const FolderPlan& p, bool gmail, FolderWriter& writer, FolderState& st,
                  FolderCount& count, const QList<quint32>& batch, NetError* err) {
        pace();
        QByteArray set;
        for (quint32 u : batch) set += (set.isEmpty() ? "" : ",") + QByteArray::number(u);
        auto bodySet = fetchableUids(c, p, count, set, err);
        if (!bodySet) return 2;
        BatchAdd added;
        if (!bodySet->isEmpty()) {
            auto fr = c.command(
                "UID FETCH " + *bodySet + " (UID FLAGS INTERNALDATE BODY.PEEK[]" + (gmail ? " X-GM-MSGID" : "") + ")",
                [&](const ImapResponse& u) { addFetched(u, p, writer, count, added); }, err);
            if (!fr) return 2;
        }
        if (!added.error) {
            *err = {added.error.errorMessage(), false};
            return 1;
        }
        if (auto s = commitBatch(writer, st, added.pending, batch.last()); !s) {
            *err = {s.errorMessage(), false};
            return 1;
        }
        count.copied += added.pending.size();
        total += batch.size();
        m_paced += batch.size();
        return kGoOn;
    }

    // Sizes first: a message larger than the parser's literal limit is reported and
    // left out (counted as done), instead of breaking the connection on every run.
    // Returns the UID set of the others (nullopt: connection lost).
    std::optional<QByteArray> fetchableUids(ImapClient& c, const FolderPlan& p, FolderCount& count,
                                            const QByteArray& set, NetError* err) {
        QByteArray bodySet;
        auto sz = c.command(
            "UID FETCH " + set + " (UID RFC822.SIZE)",
            [&](const ImapResponse& u) {
                if (u.values.size() < 3 || u.values.at(1).text.toUpper() != "FETCH" ||
                    u.values.at(2).kind != ImapValue::Kind::List)
                    return;
                const QList<ImapValue>& a = u.values.at(2).list;
                quint64 uid = 0, size = 0;
                for (qsizetype k = 0; k + 1 < a.size(); k += 2) {
                    if (a.at(k).text.toUpper() == "UID")
                        uid = a.at(k + 1).number();
                    else if (a.at(k).text.toUpper() == "RFC822.SIZE")
                        size = a.at(k + 1).number();
                }
                if (uid == 0) return;
                if (size > quint64(m_o.maxSize)) {
                    ++count.tooBig;
                    m_ctx.err << "posternctl: " << p.remote.name << " UID " << uid << ": " << size
                              << " bytes, larger than " << m_o.maxSize << ": left out" << Qt::endl;
                    return;
                }
                bodySet += (bodySet.isEmpty() ? "" : ",") + QByteArray::number(uid);
            },
            err);
        if (!sz) return std::nullopt;
        return bodySet;
    }

    static Fetched parseFetched(const QList<ImapValue>& a) {
        Fetched m;
        for (qsizetype k = 0; k + 1 < a.size(); k += 2) {
            const QByteArray key = a.at(k).text.toUpper();
            const ImapValue& v = a.at(k + 1);
            if (key == "UID")
                m.uid = quint32(v.number());
            else if (key == "FLAGS")
                for (const ImapValue& f : v.list) {
                    const QString fl = QString::fromUtf8(f.text);
                    if (fl.compare(QStringLiteral("\\Recent"), Qt::CaseInsensitive) != 0) m.flags << fl;
                }
            else if (key == "INTERNALDATE")
                m.date = parseInternalDate(v.text);
            else if (key == "BODY[]") {
                m.body = v.text;
                m.haveBody = v.kind != ImapValue::Kind::Nil;
            } else if (key == "X-GM-MSGID")
                m.gmId = v.text;
        }
        return m;
    }

    // One FETCH response of the body FETCH: the message into the writer's batch (once per
    // UID; Gmail's All Mail skips messages already copied from another label).
    void addFetched(const ImapResponse& u, const FolderPlan& p, FolderWriter& writer, FolderCount& count,
                    BatchAdd& added) {
        if (u.values.size() < 3 || u.values.at(1).text.toUpper() != "FETCH" ||
            u.values.at(2).kind != ImapValue::Kind::List)
            return;
        const Fetched m = parseFetched(u.values.at(2).list);
        if (m.uid == 0 || !m.haveBody || !added.error.ok() || added.seen.contains(m.uid)) return;
        added.seen.insert(m.uid);
        if (p.allMail && !m.gmId.isEmpty() && m_state.gmailIds.contains(QString::fromLatin1(m.gmId))) {
            ++count.skippedDup;
            return;
        }
        auto name = writer.add(m.body, m.flags, m.date);
        if (!name) {
            added.error = Status::fail(name.errorMessage());
            return;
        }
        if (!m.gmId.isEmpty()) m_state.gmailIds.insert(QString::fromLatin1(m.gmId));
        added.pending << Pending{m.uid, *name, m.flags};
    }

    // Pending first, then visible, then done: a crash in between neither loses nor duplicates.
    Status commitBatch(FolderWriter& writer, FolderState& st, const QList<Pending>& pending, quint32 lastOfBatch) {
        st.pending = pending;
        if (auto s = m_state.save(); !s) return s;
        if (auto s = writer.commit(); !s) return s;
        // Every UID up to the batch's last is done now: the earlier ones were in earlier
        // batches or done before, and UIDs missing from the search were never there.
        st.pending.clear();
        st.lastUid = std::max(st.lastUid, lastOfBatch);
        QSet<quint32> keep;
        for (quint32 u : std::as_const(st.done))
            if (u > st.lastUid) keep.insert(u);
        st.done = keep;
        return m_state.save();
    }

    CtlContext& m_ctx;
    const Config& m_config;
    Options m_o;
    ImportState& m_state;
    bool m_tty;
    QElapsedTimer m_rateClock;
    qint64 m_paced = 0;
};

QString safeName(const QString& s) {
    QString out;
    for (QChar c : s)
        out += (c.isLetterOrNumber() || c == u'.' || c == u'-') && c.unicode() < 128 ? c : QLatin1Char('_');
    return out.left(80);
}

// The numbers among the options (--port, --rate, --max-messages, --max-size) and
// --folder-map into `o`. Returns the usage text of the first bad one, empty when all are fine.
QString parseLimits(CtlContext& ctx, Options& o) {
    if (ctx.has(QStringLiteral("port"))) {
        bool ok = false;
        const uint p = ctx.opt(QStringLiteral("port")).toUInt(&ok);
        if (!ok || p == 0 || p > 65535) return QStringLiteral("--port must be 1..65535");
        o.port = quint16(p);
    }
    if (ctx.has(QStringLiteral("rate"))) {
        bool ok = false;
        o.rate = ctx.opt(QStringLiteral("rate")).toDouble(&ok);
        if (!ok || o.rate < 0 || o.rate > 100000) return QStringLiteral("--rate is messages per second (0: no limit)");
    }
    if (ctx.has(QStringLiteral("max-messages"))) {
        bool ok = false;
        o.maxMessages = ctx.opt(QStringLiteral("max-messages")).toLongLong(&ok);
        if (!ok || o.maxMessages <= 0) return QStringLiteral("--max-messages must be a positive number");
    }
    if (ctx.has(QStringLiteral("max-size"))) {
        auto n = Schema::parseSize(ctx.opt(QStringLiteral("max-size")));
        if (!n || *n < 1 || *n > kMaxImportMessage)
            return QStringLiteral("--max-size is a size from 1 to %1 bytes (e.g. 50M)").arg(kMaxImportMessage);
        o.maxSize = *n;
    }
    for (const QString& pair : ctx.opt(QStringLiteral("folder-map")).split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        const qsizetype eq = pair.indexOf(QLatin1Char('='));
        if (eq <= 0)
            return QStringLiteral("--folder-map takes REMOTE=LOCAL pairs separated by commas (LOCAL empty: skip)");
        o.folderMap.insert(pair.left(eq), pair.mid(eq + 1));
    }
    return {};
}

// The command line into `o`; returns the exit code when it is wrong, -1 when fine.
int parseOptions(CtlContext& ctx, const Config& config, Options& o, QString* pwFile) {
    o.host = ctx.opt(QStringLiteral("host"));
    o.user = ctx.opt(QStringLiteral("user"));
    *pwFile = ctx.opt(QStringLiteral("password-file"));
    if (o.host.isEmpty() || o.user.isEmpty() || pwFile->isEmpty() || !ctx.has(QStringLiteral("to")))
        return ctx.usage(QStringLiteral(
            "import imap --host H --user U --password-file F --to ADDRESS (see posternctl import imap --help)"));
    const int modes = int(ctx.has(QStringLiteral("tls"))) + int(ctx.has(QStringLiteral("starttls"))) +
                      int(ctx.has(QStringLiteral("plain")));
    if (modes > 1) return ctx.usage(QStringLiteral("give one of --tls, --starttls, --plain"));
    o.mode = ctx.has(QStringLiteral("starttls")) ? TlsMode::StartTls
             : ctx.has(QStringLiteral("plain"))  ? TlsMode::Plain
                                                 : TlsMode::Implicit;
    o.port = o.mode == TlsMode::Implicit ? 993 : 143;
    if (const QString bad = parseLimits(ctx, o); !bad.isEmpty()) return ctx.usage(bad);
    o.address = localUser(ctx, config, ctx.opt(QStringLiteral("to")));
    if (o.address.isEmpty()) return 1;
    return -1;
}

// Secrets and CA certificates are root's files: read them before dropping root. Returns the
// exit code on failure, -1 when fine.
int readSecrets(CtlContext& ctx, const QString& pwFile, Options& o) {
    QFile pw(pwFile);
    if (!pw.open(QIODevice::ReadOnly)) return ctx.fail(QStringLiteral("%1: %2").arg(pwFile, pw.errorString()));
    QByteArray line = pw.readLine(4096);
    while (line.endsWith('\n') || line.endsWith('\r')) line.chop(1);
    if (line.isEmpty()) return ctx.fail(QStringLiteral("%1: the first line must hold the password").arg(pwFile));
    o.password = QString::fromUtf8(line);
    if (ctx.has(QStringLiteral("ca-file"))) {
        o.ca = QSslCertificate::fromPath(ctx.opt(QStringLiteral("ca-file")));
        if (o.ca.isEmpty())
            return ctx.fail(QStringLiteral("%1: no certificate").arg(ctx.opt(QStringLiteral("ca-file"))));
    }
    return -1;
}

// Runs the import, trying again after network errors (at most 5 times, backing off to a minute).
int runWithRetries(CtlContext& ctx, Importer& imp, NetError* err) {
    int rc = 0;
    qint64 backoff = 2000;
    for (int attempt = 0;; ++attempt) {
        rc = imp.run(err);
        if (rc != 2 || attempt >= 5) break;
        ctx.err << "posternctl: " << err->message << "; trying again in " << backoff / 1000 << " s" << Qt::endl;
        QThread::msleep(ulong(backoff));
        backoff = std::min<qint64>(backoff * 2, 60000);
    }
    return rc;
}

void printCounts(CtlContext& ctx, const QList<FolderCount>& counts) {
    for (const FolderCount& f : counts) {
        ctx.out << f.remote;
        if (!f.local.isEmpty()) ctx.out << " -> " << f.local << ": " << f.copied << " copied";
        if (f.already) ctx.out << ", " << f.already << " recovered from an interrupted run";
        if (f.skippedDup) ctx.out << ", " << f.skippedDup << " already in another folder";
        if (f.tooBig) ctx.out << ", " << f.tooBig << " too big, left out";
        if (!f.note.isEmpty()) ctx.out << (f.local.isEmpty() ? ": " : "; ") << f.note;
        ctx.out << Qt::endl;
    }
}

}  // namespace

int importImap(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    Options o;
    QString pwFile;
    if (const int rc = parseOptions(ctx, config, o, &pwFile); rc >= 0) return rc;
    if (const int rc = readSecrets(ctx, pwFile, o); rc >= 0) return rc;
    if (o.mode == TlsMode::Plain)
        ctx.err << "posternctl: --plain: the password and the mail cross the network unencrypted" << Qt::endl;
    if (!ctx.runAsDaemonUser(config)) return 1;
    ImportState state;
    state.path = ctx.opt(QStringLiteral("state"));
    if (state.path.isEmpty()) {
        const QString home = mailboxHome(config.mailDir(), o.address);
        if (auto st = ensureDirectory(home, 0700); !st) return ctx.fail(st.errorMessage());
        state.path = home + QStringLiteral("/import-imap-%1-%2.json").arg(safeName(o.host), safeName(o.user));
    }
    state.load();
    Importer imp(ctx, config, o, state);
    NetError err;
    const int rc = runWithRetries(ctx, imp, &err);
    printCounts(ctx, imp.counts);
    if (rc == 3) {
        ctx.out << "stopped after " << imp.total << " messages (--max-messages); run the same command again to continue"
                << Qt::endl;
        return 0;
    }
    if (rc != 0)
        return ctx.fail(QStringLiteral("import stopped: %1 (state kept in %2: run again to continue)")
                            .arg(err.message, state.path));
    ctx.out << "imported " << imp.total << " messages into " << o.address << " (state: " << state.path << ")"
            << Qt::endl;
    return 0;
}

}  // namespace postern::ctl
