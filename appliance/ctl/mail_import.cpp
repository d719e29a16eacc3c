// mail_import.cpp — see mail_import.h.
#include "mail_import.h"

#include "common/store/maildir_keywords.h"
#include "common/store/maildir_names.h"

#include "core/atomic_file.h"
#include "core/paths.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QHash>

#include <fcntl.h>
#include <sys/stat.h>
#include <algorithm>
#include <cerrno>

namespace postern::ctl {

QByteArray toCrlf(const QByteArray& bytes) {
    qsizetype bare = 0;
    for (qsizetype i = 0; i < bytes.size(); ++i)
        if (bytes.at(i) == '\n' && (i == 0 || bytes.at(i - 1) != '\r')) ++bare;
    if (bare == 0) return bytes;
    QByteArray out;
    out.reserve(bytes.size() + bare);
    for (qsizetype i = 0; i < bytes.size(); ++i) {
        if (bytes.at(i) == '\n' && (i == 0 || bytes.at(i - 1) != '\r')) out += '\r';
        out += bytes.at(i);
    }
    return out;
}

Result<std::unique_ptr<FolderWriter>> FolderWriter::open(const QString& mailDir, const QString& address,
                                                         const QStringList& folder) {
    std::unique_ptr<FolderWriter> w(new FolderWriter);
    w->m_mailDir = mailDir;
    w->m_address = address;
    w->m_root = maildirRoot(mailDir, address);
    if (w->m_root.isEmpty())
        return Result<std::unique_ptr<FolderWriter>>::fail(QStringLiteral("'%1' is not a local address").arg(address));
    w->m_parts = folder;
    // Parent folders exist as folders of their own (as IMAP CREATE makes them).
    for (qsizetype i = 1; i < folder.size(); ++i)
        if (auto p = store::MaildirFolder::open(w->m_root, folder.mid(0, i), true); !p) return p.error();
    if (folder.isEmpty()) {  // INBOX lives in the root; create it like a delivery would
        if (auto st = store::ensureMaildir(w->m_root); !st) return st.error();
    }
    auto f = store::MaildirFolder::open(w->m_root, folder, true);
    if (!f) return f.error();
    w->m_folder = *f;
    w->m_keywords = store::readKeywordTable(w->m_folder.dir());
    return w;
}

Result<QString> FolderWriter::lettersFor(const QStringList& flags) {
    QString letters;
    QStringList keywords;
    for (const QString& f : flags) {
        const QString sys = store::systemFlagLetter(f);
        if (!sys.isEmpty())
            letters += sys;
        else if (!f.startsWith(QLatin1Char('\\')))  // \Recent and unknown system flags are left out
            keywords << f;
    }
    // The one keyword-letter mapping (store/maildir_keywords.h), on this writer's copy of the table.
    QStringList dropped;
    auto kw = store::assignKeywordLetters(m_folder.dir(), &m_keywords, keywords, store::NewKeywords::Add, &dropped);
    if (!kw) return kw.error();
    m_droppedKeywords += int(dropped.size());
    return store::sortFlags(letters + *kw);
}

namespace {
// The store's failure as the import's error: its detail for the log, errno as the code.
Error storeError(const store::StoreError& e) {
    return makeError(e.detail.isEmpty() ? e.text() : QStringLiteral("%1: %2").arg(e.text(), e.detail), e.err);
}
}  // namespace

Result<QString> FolderWriter::add(const QByteArray& bytes, const QStringList& flags, qint64 internalDateMs) {
    auto letters = lettersFor(flags);
    if (!letters) return letters.error();
    if (!m_batch) m_batch = std::make_unique<store::Delivery>(m_mailDir);
    const QByteArray data = toCrlf(bytes);
    if (auto st = m_batch->add(m_address, store::Content{.head = data}, m_parts); !st) return storeError(st.error());
    const store::Delivery::Copy& c = m_batch->copies().last();
    if (internalDateMs > 0) {
        // The file's time is the INTERNALDATE; set before the file becomes visible. The
        // store numbers a batch's files by time: messages of the same second (IMAP dates
        // have no fractions) get the batch position as milliseconds, so they keep the
        // source's order without a visible change of date.
        struct timespec ts[2];
        ts[0].tv_sec = ts[1].tv_sec = time_t(internalDateMs / 1000);
        const long ms = internalDateMs % 1000 == 0 ? long(std::min<qsizetype>(m_batchNames.size(), 999))
                                                   : long(internalDateMs % 1000);
        ts[0].tv_nsec = ts[1].tv_nsec = ms * 1000000L;
        ::utimensat(AT_FDCWD, QFile::encodeName(c.tmpPath).constData(), ts, 0);
    }
    const QString name = QFileInfo(c.finalPath).fileName();
    m_batchNames << name;
    m_batchLetters << *letters;
    m_batchBytes += data.size();
    return name;
}

Status FolderWriter::commit() {
    if (!m_batch) return {};
    const store::StoreStatus committed = m_batch->commit();
    const Status st = committed ? Status{} : Status(storeError(committed.error()));
    const QStringList names = m_batchNames;
    const QList<QString> letters = m_batchLetters;
    m_batch.reset();
    m_batchNames.clear();
    m_batchLetters.clear();
    m_batchBytes = 0;
    if (!st) return st;
    QList<QStringList> asFlags;
    bool any = false;
    for (const QString& l : letters) {
        asFlags << QStringList{l};
        any = any || !l.isEmpty();
    }
    if (!any) return {};
    QHash<QString, QString> byBase;
    for (qsizetype i = 0; i < names.size(); ++i)
        if (!letters.at(i).isEmpty()) byBase.insert(store::parseFileName(names.at(i)).base, letters.at(i));
    auto entries = m_folder.sync(false);
    if (!entries) return entries.error();
    for (store::MessageEntry e : *entries) {
        auto it = byBase.find(e.base);
        if (it == byBase.end()) continue;
        if (auto r = m_folder.setFlags(e, *it); !r) return r.error();
    }
    return {};
}

Status FolderWriter::applyFlags(const QStringList& names, const QList<QStringList>& flags) {
    QHash<QString, QString> byBase;
    for (qsizetype i = 0; i < names.size() && i < flags.size(); ++i) {
        auto letters = lettersFor(flags.at(i));
        if (!letters) return letters.error();
        if (!letters->isEmpty()) byBase.insert(store::parseFileName(names.at(i)).base, *letters);
    }
    if (byBase.isEmpty()) return {};
    auto entries = m_folder.sync(false);
    if (!entries) return entries.error();
    for (store::MessageEntry e : *entries) {
        auto it = byBase.find(e.base);
        if (it == byBase.end() || e.flags == *it) continue;
        if (auto r = m_folder.setFlags(e, *it); !r) return r.error();
    }
    return {};
}

Result<QSet<QString>> FolderWriter::presentNames() {
    QSet<QString> out;
    for (const char* sub : {"/new", "/cur"})
        for (const QString& n : QDir(m_folder.dir() + QLatin1String(sub)).entryList(QDir::Files))
            out.insert(store::parseFileName(n).base);
    return out;
}

QList<QStringList> listFolders(const QString& root) {
    QList<QStringList> out{QStringList()};
    QStringList names = QDir(root).entryList(QDir::Dirs | QDir::Hidden | QDir::NoDotAndDotDot);
    names.sort();
    for (const QString& n : names) {
        if (!n.startsWith(QLatin1Char('.')) || !QFileInfo(root + QLatin1Char('/') + n + QStringLiteral("/cur")).isDir())
            continue;
        const QStringList parts = store::folderParts(n);
        if (!parts.isEmpty()) out << parts;
    }
    return out;
}

Result<QList<ExportedMessage>> readFolder(const QString& root, const QStringList& folder) {
    auto f = store::MaildirFolder::open(root, folder, false);
    if (!f) return f.error();
    auto entries = f->sync(false);
    if (!entries) return entries.error();
    const QStringList keywords = store::readKeywordTable(f->dir());
    QList<ExportedMessage> out;
    for (const store::MessageEntry& e : *entries) {
        ExportedMessage m;
        m.path = f->messagePath(e);
        m.mtimeMs = e.mtimeMs;
        m.uid = e.uid;
        m.flags = store::flagNames(e.flags, keywords);
        out << m;
    }
    return out;
}

}  // namespace postern::ctl
