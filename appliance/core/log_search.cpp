// log_search.cpp — see log_search.h.
#include "log_search.h"

#include "safe_path.h"

#include <QFile>
#include <QFileInfo>
#include <QRegularExpression>
#include <QSet>

#include <fcntl.h>
#include <unistd.h>

namespace postern {

namespace {

const QStringList& logNames() {
    static const QStringList names{QStringLiteral("mail.log.1"), QStringLiteral("mail.log")};
    return names;
}

// As root through SafeDir (the folder is the daemon user's); otherwise plainly.
bool openLog(QFile& file, const QString& path, QString* error) {
    if (::geteuid() != 0) {
        file.setFileName(path);
        if (file.open(QIODevice::ReadOnly)) return true;
        *error = QStringLiteral("%1: %2").arg(path, file.errorString());
        return false;
    }
    const QFileInfo info(path);
    auto dir = SafeDir::open(info.absolutePath());
    auto h = dir ? dir->openFile(info.fileName(), O_RDONLY) : Result<FileHandle>(dir.error());
    if (!h) {
        *error = h.errorMessage();
        return false;
    }
    const int fd = h->release();
    if (!file.open(fd, QIODevice::ReadOnly, QFileDevice::AutoCloseHandle)) {
        ::close(fd);
        *error = QStringLiteral("%1: %2").arg(path, file.errorString());
        return false;
    }
    return true;
}

// Calls `each` for every line of the logs, in order; false when no log could be opened.
template <typename Each>
bool forEachLine(const QString& logDir, QStringList* warnings, Each each) {
    bool any = false;
    for (const QString& name : logNames()) {
        const QString path = logDir + QLatin1Char('/') + name;
        QFile f;
        QString why;
        if (!openLog(f, path, &why)) {
            if (warnings && QFileInfo::exists(path)) warnings->append(why);
            continue;
        }
        any = true;
        while (!f.atEnd()) {
            QByteArray raw = f.readLine(kMaxLogLineBytes);
            if (raw.isEmpty()) break;
            // A line longer than the cap: the rest of it is skipped, not read as lines of its own.
            if (!raw.endsWith('\n') && !f.atEnd()) {
                char c = 0;
                while (f.getChar(&c) && c != '\n') {
                }
            }
            if (!each(QString::fromUtf8(raw).trimmed())) return true;
        }
    }
    return any;
}

// One per search, not a shared static: QRegularExpression is reentrant, not thread-safe, and
// the panel runs searches on worker threads.
QRegularExpression keyPattern() {
    return QRegularExpression(QStringLiteral("\\b(session|id|dsn_id)=([0-9A-Za-z]+)"));
}

}  // namespace

Status validateLogTerm(const QString& term) {
    if (term.trimmed().isEmpty())
        return Status::fail(QStringLiteral("give a term to search for (a domain, an address, a queue id)"));
    if (term.size() > kMaxLogTermLength)
        return Status::fail(QStringLiteral("the term is too long (at most %1 characters)").arg(kMaxLogTermLength));
    for (const QChar c : term)
        if (c.unicode() < 0x20 || c.unicode() == 0x7f)
            return Status::fail(QStringLiteral("the term contains a control character"));
    return {};
}

Result<LogSearch> searchLog(const QString& logDir, const QString& term, int maxLines) {
    if (auto st = validateLogTerm(term); !st) return st.error();
    LogSearch out;
    QSet<QString> keys;
    const QRegularExpression keyRe = keyPattern();
    const bool found = forEachLine(logDir, &out.warnings, [&](const QString& l) {
        if (!l.contains(term, Qt::CaseInsensitive)) return true;
        for (auto it = keyRe.globalMatch(l); it.hasNext() && keys.size() < kMaxLogKeys;)
            keys.insert(it.next().captured(2));
        return true;
    });
    if (!found)  // say why, e.g. a link planted in place of mail.log (refused as root)
        return Result<LogSearch>::fail(
            QStringLiteral("no log in %1").arg(logDir) +
            (out.warnings.isEmpty() ? QString() : QStringLiteral(": ") + out.warnings.join(QStringLiteral("; "))));
    forEachLine(logDir, nullptr, [&](const QString& l) {
        bool match = l.contains(term, Qt::CaseInsensitive);
        for (auto it = keyRe.globalMatch(l); !match && it.hasNext();) match = keys.contains(it.next().captured(2));
        if (!match) return true;
        if (maxLines > 0 && out.lines.size() >= maxLines) {
            out.truncated = true;
            return false;
        }
        out.lines << l;
        return true;
    });
    return out;
}

}  // namespace postern
