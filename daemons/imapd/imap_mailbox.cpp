// imap_mailbox.cpp — see imap_mailbox.h.
#include "imap_mailbox.h"

#include "common/store/maildir_delivery.h"
#include "common/store/maildir_names.h"

#include "core/atomic_file.h"

#include <QDateTime>
#include <QDir>
#include <QFile>

#include <cerrno>
#include <cstdio>

namespace postern::imap {

Result<MailboxName> parseMailboxName(const QByteArray& wire, bool utf8) {
    QString text;
    if (utf8) {
        text = QString::fromUtf8(wire);
        if (text.toUtf8() != wire) return Result<MailboxName>::fail(QStringLiteral("mailbox name is not UTF-8"));
    } else {
        auto d = store::decodeMUtf7(QString::fromLatin1(wire));
        if (!d) return Result<MailboxName>::fail(QStringLiteral("mailbox name is not valid modified UTF-7"));
        text = *d;
    }
    if (text.endsWith(kSeparator)) text.chop(1);
    MailboxName m;
    if (text.compare(QLatin1String("INBOX"), Qt::CaseInsensitive) == 0 || text.isEmpty()) {
        if (text.isEmpty()) return Result<MailboxName>::fail(QStringLiteral("empty mailbox name"));
        m.name = QStringLiteral("INBOX");
        return m;
    }
    const QStringList parts = text.split(kSeparator);
    for (const QString& p : parts)
        if (!store::validFolderPart(p))
            return Result<MailboxName>::fail(QStringLiteral("mailbox name part '%1' is not allowed (empty, '.', '/', control characters)").arg(p));
    // "INBOX/x" is a folder under INBOX's name: keep INBOX upper-case as a prefix.
    QStringList norm = parts;
    if (norm.first().compare(QLatin1String("INBOX"), Qt::CaseInsensitive) == 0) norm.first() = QStringLiteral("INBOX");
    m.parts = norm;
    m.name = norm.join(kSeparator);
    if (!store::folderDirName(m.parts)) return Result<MailboxName>::fail(QStringLiteral("mailbox name too long"));
    return m;
}

QByteArray encodeMailboxName(const QString& name, bool utf8) {
    return utf8 ? name.toUtf8() : store::encodeMUtf7(name).toLatin1();
}

const QList<SpecialUse>& specialUseFolders() {
    static const QList<SpecialUse> list = {{"Drafts", "\\Drafts"}, {"Sent", "\\Sent"}, {"Trash", "\\Trash"},
                                           {"Junk", "\\Junk"},     {"Archive", "\\Archive"}};
    return list;
}

QString specialUseOf(const QString& name) {
    for (const SpecialUse& s : specialUseFolders())
        if (name == QLatin1String(s.name)) return QLatin1String(s.attribute);
    return {};
}

UserMailboxes::UserMailboxes(QString maildirRoot) : m_root(std::move(maildirRoot)) {}

Status UserMailboxes::ensureDefaults() {
    if (auto st = store::ensureMaildir(m_root); !st) return st;
    bool created = false;
    for (const SpecialUse& s : specialUseFolders()) {
        MailboxName m;
        m.name = QLatin1String(s.name);
        m.parts = {m.name};
        if (exists(m)) continue;
        if (auto st = create(m); !st) return st;
        created = true;
    }
    if (created) {
        QStringList subs = subscriptions();
        for (const SpecialUse& s : specialUseFolders())
            if (!subs.contains(QLatin1String(s.name))) subs << QLatin1String(s.name);
        if (!subs.contains(QStringLiteral("INBOX"))) subs.prepend(QStringLiteral("INBOX"));
        return writeFileAtomic(m_root + QStringLiteral("/subscriptions"), (subs.join(QLatin1Char('\n')) + QLatin1Char('\n')).toUtf8(), 0600);
    }
    return {};
}

QStringList UserMailboxes::list() const {
    QStringList out{QStringLiteral("INBOX")};
    const QDir d(m_root);
    for (const QString& entry : d.entryList(QDir::Dirs | QDir::Hidden | QDir::NoDotAndDotDot)) {
        const QStringList parts = store::folderParts(entry);
        if (parts.isEmpty() || !QFileInfo(m_root + QLatin1Char('/') + entry + QStringLiteral("/cur")).isDir()) continue;
        out << parts.join(kSeparator);
    }
    std::sort(out.begin() + 1, out.end());
    return out;
}

QString UserMailboxes::dirOf(const MailboxName& m) const {
    if (m.isInbox()) return m_root;
    auto d = store::folderDirName(m.parts);
    return d ? m_root + QLatin1Char('/') + *d : QString();
}

bool UserMailboxes::exists(const MailboxName& m) const {
    const QString d = dirOf(m);
    return !d.isEmpty() && QFileInfo(d + QStringLiteral("/cur")).isDir();
}

bool UserMailboxes::hasChildren(const QString& name, const QStringList& all) const {
    const QString prefix = name + kSeparator;
    for (const QString& n : all)
        if (n.startsWith(prefix)) return true;
    return false;
}

Status UserMailboxes::create(const MailboxName& m) {
    if (m.isInbox()) return Status::fail(QStringLiteral("INBOX always exists"), EEXIST);
    if (exists(m)) return Status::fail(QStringLiteral("mailbox already exists"), EEXIST);
    // Parents are created too (RFC 9051 6.3.4); Maildir++ keeps them as real folders.
    for (qsizetype i = 1; i <= m.parts.size(); ++i) {
        auto d = store::folderDirName(m.parts.mid(0, i));
        if (!d) return d.error();
        if (auto st = store::ensureMaildir(m_root, *d); !st) return st;
    }
    return {};
}

Status UserMailboxes::remove(const MailboxName& m) {
    if (m.isInbox()) return Status::fail(QStringLiteral("INBOX cannot be deleted"));
    if (!exists(m)) return Status::fail(QStringLiteral("no such mailbox"), ENOENT);
    const QString dir = dirOf(m);
    // Move the folder out of sight first (atomic), then delete it.
    MailboxIndex::release(dir);
    const QString trash = m_root + QStringLiteral("/..deleted.") + QString::number(QDateTime::currentMSecsSinceEpoch());
    if (::rename(QFile::encodeName(dir).constData(), QFile::encodeName(trash).constData()) != 0)
        return Status::fail(QStringLiteral("cannot delete: %1").arg(QString::fromLocal8Bit(strerror(errno))));
    QDir(trash).removeRecursively();
    return subscribe(m.name, false);
}

Status UserMailboxes::rename(const MailboxName& from, const MailboxName& to) {
    if (to.isInbox()) return Status::fail(QStringLiteral("cannot rename to INBOX"));
    if (!exists(from)) return Status::fail(QStringLiteral("no such mailbox"), ENOENT);
    if (exists(to)) return Status::fail(QStringLiteral("target mailbox already exists"), EEXIST);
    if (from.isInbox()) {
        // RFC 9051 6.3.6: move INBOX's messages to the new mailbox, INBOX stays (empty).
        if (auto st = create(to); !st) return st;
        const QString target = dirOf(to);
        for (const char* sub : {"/cur/", "/new/"}) {
            QDir src(m_root + QLatin1String(sub));
            for (const QString& f : src.entryList(QDir::Files))
                ::rename(QFile::encodeName(src.filePath(f)).constData(), QFile::encodeName(target + QLatin1String(sub) + f).constData());
        }
        return {};
    }
    // Rename the folder and every child (".A.B" -> ".C.B"); their indexes move with them.
    MailboxIndex::release(dirOf(from));
    const QString prefix = from.name + kSeparator;
    QList<std::pair<MailboxName, MailboxName>> moves{{from, to}};
    for (const QString& n : list()) {
        if (!n.startsWith(prefix)) continue;
        MailboxName src, dst;
        src.name = n;
        src.parts = n.split(kSeparator);
        dst.name = to.name + n.mid(from.name.size());
        dst.parts = dst.name.split(kSeparator);
        moves.append({src, dst});
    }
    for (qsizetype i = 1; i < to.parts.size(); ++i) {
        MailboxName parent;
        parent.parts = to.parts.mid(0, i);
        parent.name = parent.parts.join(kSeparator);
        if (!exists(parent)) {
            if (auto st = create(parent); !st) return st;
        }
    }
    for (const auto& [src, dst] : moves) {
        if (::rename(QFile::encodeName(dirOf(src)).constData(), QFile::encodeName(dirOf(dst)).constData()) != 0)
            return Status::fail(QStringLiteral("rename failed: %1").arg(QString::fromLocal8Bit(strerror(errno))));
    }
    QStringList subs = subscriptions();
    bool changed = false;
    for (QString& s : subs) {
        if (s == from.name || s.startsWith(prefix)) {
            s = to.name + s.mid(from.name.size());
            changed = true;
        }
    }
    if (changed)
        return writeFileAtomic(m_root + QStringLiteral("/subscriptions"), (subs.join(QLatin1Char('\n')) + QLatin1Char('\n')).toUtf8(), 0600);
    return {};
}

QStringList UserMailboxes::subscriptions() const {
    auto text = readFile(m_root + QStringLiteral("/subscriptions"), 1 << 20);
    QStringList out;
    if (!text) return out;
    for (const QByteArray& l : text->split('\n'))
        if (!l.trimmed().isEmpty()) out << QString::fromUtf8(l.trimmed());
    return out;
}

Status UserMailboxes::subscribe(const QString& name, bool on) {
    QStringList subs = subscriptions();
    if (on == subs.contains(name)) return {};
    if (on) subs << name;
    else subs.removeAll(name);
    return writeFileAtomic(m_root + QStringLiteral("/subscriptions"), (subs.join(QLatin1Char('\n')) + QLatin1Char('\n')).toUtf8(), 0600);
}

// ---------------------------------------------------------------- flags

QString flagLetter(const QString& f) {
    const QString l = f.toLower();
    if (l == u"\\seen") return QStringLiteral("S");
    if (l == u"\\answered") return QStringLiteral("R");
    if (l == u"\\flagged") return QStringLiteral("F");
    if (l == u"\\deleted") return QStringLiteral("T");
    if (l == u"\\draft") return QStringLiteral("D");
    return {};
}

QString imapFlagForLetter(QChar c) {
    switch (c.unicode()) {
        case 'S': return QStringLiteral("\\Seen");
        case 'R': return QStringLiteral("\\Answered");
        case 'F': return QStringLiteral("\\Flagged");
        case 'T': return QStringLiteral("\\Deleted");
        case 'D': return QStringLiteral("\\Draft");
        case 'P': return QStringLiteral("$Forwarded");
        default: return {};
    }
}

// ---------------------------------------------------------------- selected mailbox

namespace {

bool sameMessage(const Message& a, const Message& b) {
    return a.uid == b.uid && a.modseq == b.modseq && a.inNew == b.inNew && a.size == b.size && a.vsize == b.vsize &&
           a.mtimeMs == b.mtimeMs && a.flags == b.flags && a.fileName == b.fileName && a.base == b.base;
}

// Sessions on the same folder that see the same messages share one copy of the list
// (QList is implicitly shared; a session that changes flags gets its own copy until its
// next refresh). Most of an idle session's memory is this list. At most kMaxShared
// folders are remembered, least recently used dropped.
constexpr int kMaxShared = 128;
struct SharedListing {
    QString dir;
    QList<Message> messages;
};
QList<SharedListing>& sharedListings() {
    static QList<SharedListing> l;  // most recently used first
    return l;
}

}  // namespace

QList<Message> MailboxView::sharedListing(const QString& dir, QList<Message> fresh) {
    QList<SharedListing>& l = sharedListings();
    for (qsizetype i = 0; i < l.size(); ++i) {
        if (l.at(i).dir != dir) continue;
        SharedListing e = l.takeAt(i);
        bool same = e.messages.size() == fresh.size();
        for (qsizetype k = 0; same && k < fresh.size(); ++k) same = sameMessage(e.messages.at(k), fresh.at(k));
        if (!same) e.messages = std::move(fresh);
        l.prepend(e);
        return l.first().messages;
    }
    l.prepend({dir, std::move(fresh)});
    while (l.size() > kMaxShared) l.removeLast();
    return l.first().messages;
}

Message Message::fromEntry(const store::MessageEntry& e) {
    Message m;
    m.uid = e.uid;
    m.base = e.base;
    m.fileName = e.fileName;
    m.inNew = e.inNew;
    m.flags = store::sortFlags(e.flags);
    m.size = e.size;
    m.vsize = e.vsize;
    m.mtimeMs = e.mtimeMs;
    return m;
}

Result<MailboxView> MailboxView::open(const QString& maildirRoot, const MailboxName& name, bool readOnly) {
    MailboxView v;
    v.m_name = name;
    v.m_readOnly = readOnly;
    auto folder = store::MaildirFolder::open(maildirRoot, name.parts, false);
    if (!folder) return folder.error();
    v.m_folder = *folder;
    if (auto st = v.loadKeywords(); !st) return st.error();
    auto changes = v.refresh();
    if (!changes) return changes.error();
    return v;
}

QString MailboxView::path(int index) const {
    const Message& m = m_messages.at(index);
    return m_folder.dir() + (m.inNew ? QStringLiteral("/new/") : QStringLiteral("/cur/")) + m.fileName;
}

Result<Changes> MailboxView::refresh() {
    // Files never change once delivered: what we listed before needs no stat(2) again.
    QHash<QString, int> byBase;
    byBase.reserve(m_messages.size());
    for (int i = 0; i < m_messages.size(); ++i) byBase.insert(m_messages.at(i).base, i);
    // A newly opened view takes them from the index instead.
    QHash<QString, std::pair<qint64, qint64>> fromIndex;
    if (m_messages.isEmpty()) {
        if (std::shared_ptr<MailboxIndex> idx = index()) fromIndex = idx->knownFiles();
    }
    auto list = m_folder.sync(!m_readOnly, [&](const QString& base, qint64* size, qint64* mtimeMs) {
        auto it = byBase.constFind(base);
        if (it != byBase.cend()) {
            *size = m_messages.at(*it).size;
            *mtimeMs = m_messages.at(*it).mtimeMs;
            return true;
        }
        auto known = fromIndex.constFind(base);
        if (known == fromIndex.cend()) return false;
        *size = known->first;
        *mtimeMs = known->second;
        return true;
    });
    if (!list) return list.error();
    Changes c;
    QHash<quint32, QString> oldFlags;
    for (const Message& m : m_messages) oldFlags.insert(m.uid, m.flags);
    QSet<quint32> present;
    for (const store::MessageEntry& e : *list) present.insert(e.uid);
    for (int i = int(m_messages.size()) - 1; i >= 0; --i)
        if (!present.contains(m_messages.at(i).uid)) c.expunged << i + 1;
    const qsizetype oldCount = m_messages.size() - c.expunged.size();
    QList<Message> fresh;
    fresh.reserve(list->size());
    for (const store::MessageEntry& e : *list) fresh << Message::fromEntry(e);
    bool differs = fresh.size() != m_messages.size();
    for (int i = 0; i < fresh.size(); ++i) {
        auto it = oldFlags.constFind(fresh.at(i).uid);
        if (it == oldFlags.cend()) differs = true;
        else if (*it != fresh.at(i).flags) {
            c.flagChanged << i + 1;
            differs = true;
        }
    }
    for (int seq : c.expunged) c.expungedUids.prepend(m_messages.at(seq - 1).uid);
    // Mod-sequences: the index assigns them when something changed (here or elsewhere).
    if (std::shared_ptr<MailboxIndex> idx = index()) {
        const bool first = m_highestModseq == 0;
        if (first || differs || idx->highestModseq() != m_highestModseq) {
            auto hms = idx->sync(fresh);
            if (!hms && MailboxIndex::isDamage(hms.error().code)) {
                // A cache: rebuild it once from the Maildir, else go on without mod-sequences.
                // (Busy or full is not damage: another process may be using the file.)
                MailboxIndex::forget(m_folder.dir());
                if (std::shared_ptr<MailboxIndex> again = index()) hms = again->sync(fresh);
            }
            m_highestModseq = hms ? *hms : 0;
        } else {
            for (int i = 0; i < fresh.size(); ++i) fresh[i].modseq = m_messages.at(i).modseq;
        }
    }
    if (fresh.size() > oldCount) c.exists = int(fresh.size());  // EXPUNGE alone implies the new count
    m_messages = sharedListing(m_folder.dir(), std::move(fresh));
    return c;
}

std::shared_ptr<MailboxIndex> MailboxView::index() const { return MailboxIndex::acquire(m_folder.dir(), m_folder.uidValidity()); }

QList<quint32> MailboxView::expungedSince(quint64 modseq, bool* complete) const {
    *complete = false;
    std::shared_ptr<MailboxIndex> idx = index();
    return idx ? idx->expungedSince(modseq, complete) : QList<quint32>();
}

Status MailboxView::loadKeywords() {
    m_keywords.clear();
    auto text = readFile(m_folder.dir() + QStringLiteral("/dovecot-keywords"), 1 << 16);
    if (!text) return {};  // none yet
    for (const QByteArray& line : text->split('\n')) {
        const qsizetype sp = line.indexOf(' ');
        if (sp <= 0) continue;
        bool ok = false;
        const int idx = line.left(sp).toInt(&ok);
        if (!ok || idx < 0 || idx >= 26) continue;
        while (m_keywords.size() <= idx) m_keywords << QString();
        m_keywords[idx] = QString::fromUtf8(line.mid(sp + 1).trimmed());
    }
    return {};
}

Status MailboxView::saveKeywords() {
    QByteArray text;
    for (int i = 0; i < m_keywords.size(); ++i)
        if (!m_keywords.at(i).isEmpty()) text += QByteArray::number(i) + ' ' + m_keywords.at(i).toUtf8() + '\n';
    return writeFileAtomic(m_folder.dir() + QStringLiteral("/dovecot-keywords"), text, 0600);
}

QStringList MailboxView::imapFlags(int index) const {
    QStringList out;
    for (QChar c : m_messages.at(index).flags) {
        if (c >= QLatin1Char('a') && c <= QLatin1Char('z')) {
            const int k = c.unicode() - 'a';
            if (k < m_keywords.size() && !m_keywords.at(k).isEmpty()) out << m_keywords.at(k);
        } else {
            const QString f = imapFlagForLetter(c);
            if (!f.isEmpty()) out << f;
        }
    }
    return out;
}

Result<QString> MailboxView::lettersFor(const QStringList& flags, bool create) {
    QString letters;
    for (const QString& f : flags) {
        const QString sys = flagLetter(f);
        if (!sys.isEmpty()) {
            letters += sys;
            continue;
        }
        if (f.startsWith(QLatin1Char('\\'))) {
            if (f.compare(QLatin1String("\\Recent"), Qt::CaseInsensitive) == 0) continue;
            return Result<QString>::fail(QStringLiteral("unknown system flag %1").arg(f));
        }
        if (f.compare(QLatin1String("$Forwarded"), Qt::CaseInsensitive) == 0) {
            letters += QLatin1Char('P');
            continue;
        }
        qsizetype idx = -1;
        for (qsizetype i = 0; i < m_keywords.size(); ++i)
            if (m_keywords.at(i).compare(f, Qt::CaseInsensitive) == 0) idx = i;
        if (idx < 0) {
            if (!create) continue;
            idx = m_keywords.indexOf(QString());
            if (idx < 0) {
                if (m_keywords.size() >= 26) return Result<QString>::fail(QStringLiteral("too many keywords in this mailbox (26)"));
                m_keywords << f;
                idx = m_keywords.size() - 1;
            } else {
                m_keywords[idx] = f;
            }
            if (auto st = saveKeywords(); !st) return st.error();
        }
        letters += QChar(char16_t('a' + idx));
    }
    return store::sortFlags(letters);
}

Status MailboxView::setFlags(int index, const QString& letters) {
    store::MessageEntry e;
    Message& m = m_messages[index];
    e.uid = m.uid;
    e.base = m.base;
    e.fileName = m.fileName;
    e.inNew = m.inNew;
    e.flags = m.flags;
    auto r = m_folder.setFlags(e, letters);
    if (!r) return r.error();
    m.fileName = e.fileName;
    m.inNew = false;
    m.flags = store::sortFlags(letters);
    if (m_highestModseq) {
        if (std::shared_ptr<MailboxIndex> idx = this->index()) {
            if (auto ms = idx->recordFlags(m.uid, m.flags)) {
                m.modseq = *ms;
                m_highestModseq = std::max(m_highestModseq, *ms);
            }
        }
    }
    return {};
}

Status MailboxView::expunge(int index) {
    const Message& m = m_messages.at(index);
    return expunge(index, m.fileName, m.inNew);
}

Status MailboxView::expunge(int index, const QString& fileName, bool inNew) {
    store::MessageEntry e;
    const Message& m = m_messages.at(index);
    e.uid = m.uid;
    e.base = m.base;
    e.fileName = fileName;
    e.inNew = inNew;
    e.size = m.size;
    return m_folder.expunge(e);
}

}  // namespace postern::imap
