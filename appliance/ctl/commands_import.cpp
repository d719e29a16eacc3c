// commands_import.cpp — posternctl import imap|mbox|maildir, export.
//   import imap ...            see imap_import.h (resumable copy from another server)
//   import mbox FILE --to ADDRESS [--folder F] [--format mboxrd|mboxo]
//                              every message of an mbox file (Google Takeout,
//                              Thunderbird, mutt) with the flags of its metadata
//                              headers and the separator's date (mbox.h)
//   import maildir DIR --to ADDRESS
//                              a Dovecot or Courier Maildir++ (INBOX and its .Folders)
//                              with flags and keywords (dovecot-keywords, Courier's
//                              courierimapkeywords/:list); into a folder that is
//                              still empty, the source's dovecot-uidlist is taken over
//                              (same UIDVALIDITY and UIDs); otherwise messages get new UIDs
//   export ADDRESS --mbox DIR  one mboxrd file per folder (INBOX.mbox, Work/Projects.mbox)
//                              with Status/X-Status/X-Keywords for the flags
// Security: sources are opened as root first (the administrator's files), then
// posternctl drops to system_user for good (CtlContext::runAsDaemonUser) and reads
// them through the inherited descriptor (/proc/self/fd/N): everything written in
// Maildirs is the daemon user's, as the daemons' own files are. export creates DIR
// (or takes an empty one), gives it to system_user and writes into it as that user.
// Limits: mbox.h (line, message); kBatchMessages/kBatchBytes per commit.
#include "ctl.h"

#include "imap_import.h"
#include "mail_import.h"
#include "mbox.h"

#include "common/store/maildir_keywords.h"
#include "common/store/maildir_names.h"

#include "core/accounts.h"
#include "core/address.h"
#include "core/atomic_file.h"
#include "core/paths.h"
#include "core/posix_io.h"
#include "core/process.h"
#include "core/setting_keys.h"

#include <QDateTime>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QHash>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace postern::ctl {

// The normalised address of a local user, or an error printed (returns empty).
QString localUser(CtlContext& ctx, const Config& config, const QString& address) {
    auto norm = normalizeAddress(address);
    if (!norm) {
        ctx.fail(QStringLiteral("'%1' is not an address").arg(address));
        return {};
    }
    auto acc = AccountStore(config.configDir()).load();
    if (!acc) {
        ctx.fail(acc.errorMessage());
        return {};
    }
    if (!acc->user(*norm)) {
        ctx.fail(QStringLiteral("%1 is not a user here (posternctl user add %1)").arg(*norm));
        return {};
    }
    return *norm;
}

namespace {

QString mb(qint64 bytes) {
    return QStringLiteral("%1 MB").arg(double(bytes) / 1e6, 0, 'f', 1);
}

class TtyProgress {
public:
    TtyProgress() : m_tty(::isatty(STDERR_FILENO)) { m_clock.start(); }
    void show(const QString& text) {
        if (!m_tty || m_clock.elapsed() - m_last < 200) return;
        m_last = m_clock.elapsed();
        const QByteArray b = "\r" + text.toUtf8() + "   ";
        (void)!::write(STDERR_FILENO, b.constData(), size_t(b.size()));
    }
    void clear() {
        if (m_tty && m_last > 0) (void)!::write(STDERR_FILENO, "\r\033[K", 4);
    }

private:
    bool m_tty;
    QElapsedTimer m_clock;
    qint64 m_last = 0;
};

QStringList folderArg(const QString& f) {
    if (f.isEmpty() || f.compare(QStringLiteral("INBOX"), Qt::CaseInsensitive) == 0) return {};
    return f.split(QLatin1Char('/'), Qt::SkipEmptyParts);
}

int importMbox(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    if (ctx.args.size() != 1 || !ctx.has(QStringLiteral("to")))
        return ctx.usage(QStringLiteral("import mbox FILE --to ADDRESS [--folder F] [--format mboxrd|mboxo]"));
    const QString format = ctx.opt(QStringLiteral("format"), QStringLiteral("mboxrd"));
    if (format != u"mboxrd" && format != u"mboxo") return ctx.usage(QStringLiteral("--format is mboxrd or mboxo"));
    const QString address = localUser(ctx, config, ctx.opt(QStringLiteral("to")));
    if (address.isEmpty()) return 1;
    const QStringList folder = folderArg(ctx.opt(QStringLiteral("folder")));
    if (!folder.isEmpty())
        if (auto d = store::folderDirName(folder); !d)
            return ctx.usage(QStringLiteral("--folder: %1").arg(d.errorMessage()));
    QFile in(ctx.args.first());
    if (!in.open(QIODevice::ReadOnly))
        return ctx.fail(QStringLiteral("%1: %2").arg(in.fileName(), in.errorString()));  // as root, before the drop
    if (!ctx.runAsDaemonUser(config)) return 1;
    auto writer = FolderWriter::open(config.mailDir(), address, folder);
    if (!writer) return ctx.fail(writer.errorMessage());
    MboxReader reader(format == u"mboxo" ? MboxFormat::Mboxo : MboxFormat::Mboxrd);
    qint64 count = 0, bytes = 0, tooBig = 0;
    TtyProgress progress;
    auto drain = [&]() -> bool {
        while (reader.hasMessage()) {
            MboxMessage m = reader.take();
            if (m.tooBig) {
                ++tooBig;
                ctx.err << "posternctl: message " << m.index << " is larger than " << MboxReader::kMaxMessage
                        << " bytes: skipped" << Qt::endl;
                continue;
            }
            auto name = (*writer)->add(m.bytes, m.flags, m.internalDateMs);
            if (!name) {
                ctx.fail(name.errorMessage());
                return false;
            }
            ++count;
            bytes += m.bytes.size();
            if ((*writer)->pending() >= kBatchMessages || (*writer)->pendingBytes() >= kBatchBytes) {
                if (auto st = (*writer)->commit(); !st) {
                    ctx.fail(st.errorMessage());
                    return false;
                }
            }
            progress.show(QStringLiteral("import: %1 messages, %2").arg(count).arg(mb(bytes)));
        }
        return true;
    };
    for (;;) {
        const QByteArray chunk = in.read(1 << 20);
        if (chunk.isEmpty()) break;
        reader.feed(chunk);
        if (!drain()) return 1;
    }
    reader.finish();
    if (!drain()) return 1;
    if (auto st = (*writer)->commit(); !st) return ctx.fail(st.errorMessage());
    progress.clear();
    if (count == 0 && reader.badStart())
        return ctx.fail(
            QStringLiteral("%1 does not look like an mbox file (no \"From \" line at its start)").arg(in.fileName()));
    ctx.out << "imported " << count << " messages (" << mb(bytes) << ") from " << in.fileName() << " into " << address
            << " " << (folder.isEmpty() ? QStringLiteral("INBOX") : folder.join(QLatin1Char('/')));
    if (tooBig) ctx.out << "; " << tooBig << " too big, skipped";
    if ((*writer)->droppedKeywords())
        ctx.out << "; " << (*writer)->droppedKeywords() << " keyword(s) beyond the 26 a folder can hold dropped";
    ctx.out << Qt::endl;
    return tooBig ? 1 : 0;
}

// ------------------------------------------------------------------ maildir

QByteArray readAllFile(const QString& path, qint64* mtimeMs, QString* error) {
    const int fd = ::open(QFile::encodeName(path).constData(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        *error = QStringLiteral("%1: %2").arg(path, errnoText(errno));
        return {};
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > 1024LL * 1024 * 1024) {
        ::close(fd);
        *error = QStringLiteral("%1: not a regular file of a sane size").arg(path);
        return {};
    }
    *mtimeMs = qint64(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    QFile f;
    if (!f.open(fd, QIODevice::ReadOnly, QFileDevice::AutoCloseHandle)) {
        ::close(fd);
        *error = path + QStringLiteral(": cannot read");
        return {};
    }
    return f.readAll();
}

// Courier-IMAP's keywords: courierimapkeywords/:list holds the keyword names, one per
// line, an empty line, then "<message base name>:<index> <index> ..." lines.
QHash<QString, QStringList> readCourierKeywords(const QString& folderDir) {
    QHash<QString, QStringList> out;
    auto text = readFile(folderDir + QStringLiteral("/courierimapkeywords/:list"), 16 * 1024 * 1024);
    if (!text) return out;
    QStringList names;
    bool inNames = true;
    for (const QByteArray& line : text->split('\n')) {
        if (inNames) {
            if (line.isEmpty())
                inNames = false;
            else
                names << QString::fromUtf8(line);
            continue;
        }
        const qsizetype colon = line.lastIndexOf(':');
        if (colon <= 0) continue;
        QStringList kws;
        for (const QByteArray& n : line.mid(colon + 1).split(' ')) {
            bool ok = false;
            const int idx = n.toInt(&ok);
            if (ok && idx >= 0 && idx < names.size()) kws << names.at(idx);
        }
        out.insert(store::parseFileName(QString::fromUtf8(line.left(colon))).base, kws);
    }
    return out;
}

struct SourceMessage {
    QString sub;  // "cur" or "new"
    QString name;
    QStringList flags;
};

// Takes over a source folder whose dovecot-uidlist is valid into an empty target: same
// file names, same uidlist (so the same UIDVALIDITY and UIDs), same keyword letters.
// Files go to tmp/ first; under the target's uidlist lock the uidlist is written and
// the files renamed into place, so no session sees the folder half-done.
Status adoptFolder(const QString& src, const QString& dst, const QList<SourceMessage>& msgs, qint64* bytes) {
    QStringList tmpNames;
    auto cleanup = [&] {
        for (const QString& n : std::as_const(tmpNames))
            ::unlink(QFile::encodeName(dst + QStringLiteral("/tmp/") + n).constData());
    };
    for (const SourceMessage& m : msgs) {
        QString err;
        qint64 mtime = 0;
        const QByteArray data = readAllFile(src + QLatin1Char('/') + m.sub + QLatin1Char('/') + m.name, &mtime, &err);
        if (!err.isEmpty()) {
            cleanup();
            return Status::fail(err);
        }
        const QString tmp = dst + QStringLiteral("/tmp/") + m.name;
        const int fd =
            ::open(QFile::encodeName(tmp).constData(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            cleanup();
            return Status::fail(QStringLiteral("%1: %2").arg(tmp, errnoText(errno)));
        }
        tmpNames << m.name;
        qsizetype off = 0;
        bool ok = true;
        while (ok && off < data.size()) {
            const ssize_t n =
                retryOnEintr([&] { return ::write(fd, data.constData() + off, size_t(data.size() - off)); });
            ok = n > 0;
            off += n > 0 ? n : 0;
        }
        struct timespec ts[2];
        ts[0].tv_sec = ts[1].tv_sec = time_t(mtime / 1000);
        ts[0].tv_nsec = ts[1].tv_nsec = long(mtime % 1000) * 1000000L;
        ok = ok && ::futimens(fd, ts) == 0 && ::fsync(fd) == 0;
        ::close(fd);
        if (!ok) {
            cleanup();
            return Status::fail(QStringLiteral("%1: write failed").arg(tmp));
        }
        *bytes += data.size();
    }
    auto lock = store::MaildirFolder::lockUidList(dst);
    if (!lock) {
        cleanup();
        return lock.error();
    }
    for (const char* sub : {"/cur", "/new"})
        if (!QDir(dst + QLatin1String(sub)).entryList(QDir::Files).isEmpty()) {
            cleanup();
            return Status::fail(QStringLiteral("%1 received messages meanwhile").arg(dst), EAGAIN);
        }
    for (const char* file : {"dovecot-uidlist", "dovecot-keywords"}) {
        const QString s = src + QLatin1Char('/') + QLatin1String(file);
        if (!QFileInfo::exists(s)) continue;
        auto text = readFile(s, 256 * 1024 * 1024);
        if (!text) {
            cleanup();
            return text.error();
        }
        if (auto st = writeFileAtomic(dst + QLatin1Char('/') + QLatin1String(file), *text, 0600); !st) {
            cleanup();
            return st;
        }
    }
    for (const SourceMessage& m : msgs) {
        const QString to = dst + QLatin1Char('/') + m.sub + QLatin1Char('/') + m.name;
        if (::rename(QFile::encodeName(dst + QStringLiteral("/tmp/") + m.name).constData(),
                     QFile::encodeName(to).constData()) != 0)
            return Status::fail(QStringLiteral("%1: %2").arg(to, errnoText(errno)));
    }
    if (auto st = syncDirectory(dst + QStringLiteral("/cur")); !st) return st;
    return syncDirectory(dst + QStringLiteral("/new"));
}

int importMaildir(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    if (ctx.args.size() != 1 || !ctx.has(QStringLiteral("to")))
        return ctx.usage(QStringLiteral("import maildir DIR --to ADDRESS"));
    const QString address = localUser(ctx, config, ctx.opt(QStringLiteral("to")));
    if (address.isEmpty()) return 1;
    const QString srcArg = QFileInfo(ctx.args.first()).absoluteFilePath();
    if (!QFileInfo(srcArg + QStringLiteral("/cur")).isDir())
        return ctx.fail(QStringLiteral("%1 is not a Maildir (no cur/ folder)").arg(srcArg));
    const int srcFd = ::open(QFile::encodeName(srcArg).constData(), O_RDONLY | O_DIRECTORY);  // inherited past the drop
    if (srcFd < 0) return ctx.fail(QStringLiteral("%1: %2").arg(srcArg, errnoText(errno)));
    if (!ctx.runAsDaemonUser(config)) return 1;
    const QString src = QStringLiteral("/proc/self/fd/%1").arg(srcFd);
    qint64 total = 0, totalBytes = 0;
    TtyProgress progress;
    for (const QStringList& folder : listFolders(src)) {
        const QString srcDir =
            folder.isEmpty() ? src : src + QLatin1Char('/') + store::folderDirName(folder).valueOr(QString());
        const QStringList keywords = store::readKeywordTable(srcDir);
        const QHash<QString, QStringList> courier = readCourierKeywords(srcDir);
        QList<SourceMessage> msgs;
        for (const char* sub : {"cur", "new"}) {
            QStringList names = QDir(srcDir + QLatin1Char('/') + QLatin1String(sub)).entryList(QDir::Files);
            names.sort();
            for (const QString& n : std::as_const(names)) {
                SourceMessage m{QLatin1String(sub), n, store::flagNames(store::parseFileName(n).flags, keywords)};
                for (const QString& k : courier.value(store::parseFileName(n).base))
                    if (!m.flags.contains(k)) m.flags << k;
                msgs << m;
            }
        }
        auto writer = FolderWriter::open(config.mailDir(), address, folder);
        if (!writer) return ctx.fail(writer.errorMessage());
        const QString name = folder.isEmpty() ? QStringLiteral("INBOX") : folder.join(QLatin1Char('/'));
        auto present = (*writer)->presentNames();
        auto uidlist = store::MaildirFolder::readUidListFile(srcDir + QStringLiteral("/dovecot-uidlist"));
        bool adopted = false;
        qint64 bytes = 0;
        if (present && present->isEmpty() && uidlist && uidlist->uidValidity != 0 && !msgs.isEmpty()) {
            bool allKnown = true;
            for (const SourceMessage& m : std::as_const(msgs))
                allKnown = allKnown && uidlist->uidByBase.contains(store::parseFileName(m.name).base);
            if (allKnown) {
                auto st = adoptFolder(srcDir, (*writer)->dir(), msgs, &bytes);
                if (!st && st.error().code != EAGAIN) return ctx.fail(st.errorMessage());
                adopted = st.ok();
            }
        }
        if (!adopted) {
            bytes = 0;
            // Oldest first, so new UIDs follow the source's order of arrival.
            for (const SourceMessage& m : std::as_const(msgs)) {
                QString err;
                qint64 mtime = 0;
                const QByteArray data =
                    readAllFile(srcDir + QLatin1Char('/') + m.sub + QLatin1Char('/') + m.name, &mtime, &err);
                if (!err.isEmpty()) return ctx.fail(err);
                if (auto r = (*writer)->add(data, m.flags, mtime); !r) return ctx.fail(r.errorMessage());
                bytes += data.size();
                if ((*writer)->pending() >= kBatchMessages || (*writer)->pendingBytes() >= kBatchBytes)
                    if (auto st = (*writer)->commit(); !st) return ctx.fail(st.errorMessage());
                progress.show(QStringLiteral("import %1: %2 messages").arg(name).arg(total + (*writer)->pending()));
            }
            if (auto st = (*writer)->commit(); !st) return ctx.fail(st.errorMessage());
        }
        progress.clear();
        ctx.out << name << ": " << msgs.size() << " messages (" << mb(bytes) << ")"
                << (adopted ? QStringLiteral(", UIDs kept (UIDVALIDITY %1)").arg(uidlist->uidValidity)
                            : QStringLiteral(", new UIDs"))
                << Qt::endl;
        total += msgs.size();
        totalBytes += bytes;
    }
    ctx.out << "imported " << total << " messages (" << mb(totalBytes) << ") into " << address << Qt::endl;
    return 0;
}

// ------------------------------------------------------------------ export

int exportMbox(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    if (ctx.args.size() != 1 || ctx.opt(QStringLiteral("mbox")).isEmpty())
        return ctx.usage(QStringLiteral("export ADDRESS --mbox DIR"));
    const QString address = localUser(ctx, config, ctx.args.first());
    if (address.isEmpty()) return 1;
    const QString out = QFileInfo(ctx.opt(QStringLiteral("mbox"))).absoluteFilePath();
    if (::mkdir(QFile::encodeName(out).constData(), 0700) != 0 && errno != EEXIST)
        return ctx.fail(QStringLiteral("%1: %2").arg(out, errnoText(errno)));
    if (!QDir(out).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden).isEmpty())
        return ctx.fail(QStringLiteral("%1 is not empty").arg(out));
    const int outFd = ::open(QFile::encodeName(out).constData(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (outFd < 0) return ctx.fail(QStringLiteral("%1: %2").arg(out, errnoText(errno)));
    if (::geteuid() == 0) {
        auto ids = lookupUser(get(config, keys::general::systemUser));
        if (!ids) return ctx.fail(ids.errorMessage());
        if (::fchown(outFd, uid_t(ids->uid), gid_t(ids->gid)) != 0)
            return ctx.fail(QStringLiteral("%1: cannot hand over: %2").arg(out, errnoText(errno)));
    }
    if (!ctx.runAsDaemonUser(config)) return 1;
    const QString base = QStringLiteral("/proc/self/fd/%1").arg(outFd);
    const QString root = maildirRoot(config.mailDir(), address);
    qint64 total = 0;
    for (const QStringList& folder : listFolders(root)) {
        auto msgs = readFolder(root, folder);
        if (!msgs) return ctx.fail(msgs.errorMessage());
        const QString name = folder.isEmpty() ? QStringLiteral("INBOX") : folder.join(QLatin1Char('/'));
        const QString file = base + QLatin1Char('/') + name + QStringLiteral(".mbox");
        if (folder.size() > 1) QDir().mkpath(QFileInfo(file).absolutePath());
        QFile f(file);
        if (!f.open(QIODevice::WriteOnly | QIODevice::NewOnly))
            return ctx.fail(QStringLiteral("%1/%2.mbox: %3").arg(out, name, f.errorString()));
        qint64 n = 0;
        for (const ExportedMessage& m : std::as_const(*msgs)) {
            QFile in(m.path);
            if (!in.open(QIODevice::ReadOnly)) continue;  // expunged meanwhile
            const QByteArray text =
                mboxrdMessage(in.readAll(), m.flags, QDateTime::fromMSecsSinceEpoch(m.mtimeMs, Qt::UTC));
            if (f.write(text) != text.size())
                return ctx.fail(QStringLiteral("%1/%2.mbox: %3").arg(out, name, f.errorString()));
            ++n;
        }
        if (!f.flush() || ::fsync(f.handle()) != 0)
            return ctx.fail(QStringLiteral("%1/%2.mbox: write failed").arg(out, name));
        f.close();
        ctx.out << name << ": " << n << " messages -> " << out << "/" << name << ".mbox" << Qt::endl;
        total += n;
    }
    ctx.out << "exported " << total << " messages of " << address << " to " << out << Qt::endl;
    return 0;
}

}  // namespace

void addImportCommands(QList<Command>& out) {
    const QString i = QStringLiteral("import");
    out << Command{
        {i, QStringLiteral("imap")},
        QStringLiteral("--host H [--port P] [--tls|--starttls|--plain] --user U --password-file F --to ADDRESS "
                       "[--folder-map A=B,...] "
                       "[--state FILE] [--rate N] [--max-messages N] [--max-size SIZE] [--ca-file F]"),
        QStringLiteral("copy every folder of another IMAP server (resumable)"),
        {QStringLiteral("host"), QStringLiteral("port"), QStringLiteral("user"), QStringLiteral("password-file"),
         QStringLiteral("to"), QStringLiteral("folder-map"), QStringLiteral("state"), QStringLiteral("rate"),
         QStringLiteral("max-messages"), QStringLiteral("max-size"), QStringLiteral("ca-file")},
        {QStringLiteral("tls"), QStringLiteral("starttls"), QStringLiteral("plain")},
        importImap,
        true};
    out << Command{{i, QStringLiteral("mbox")},
                   QStringLiteral("FILE --to ADDRESS [--folder F] [--format mboxrd|mboxo]"),
                   QStringLiteral("import an mbox file (Takeout, Thunderbird)"),
                   {QStringLiteral("to"), QStringLiteral("folder"), QStringLiteral("format")},
                   {},
                   importMbox,
                   true};
    out << Command{{i, QStringLiteral("maildir")},
                   QStringLiteral("DIR --to ADDRESS"),
                   QStringLiteral("import a Dovecot/Courier Maildir (keeps UIDs when it can)"),
                   {QStringLiteral("to")},
                   {},
                   importMaildir,
                   true};
    out << Command{{QStringLiteral("export")},
                   QStringLiteral("ADDRESS --mbox DIR"),
                   QStringLiteral("one mbox file per folder of an account"),
                   {QStringLiteral("mbox")},
                   {},
                   exportMbox,
                   true};
}

}  // namespace postern::ctl
