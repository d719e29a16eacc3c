// maildir_keywords.cpp — see maildir_keywords.h.
#include "maildir_keywords.h"

#include "maildir_names.h"

#include "core/atomic_file.h"

#include <QFileInfo>

namespace postern::store {

namespace {
QStringList readKeywords(const QString& path) {
    QStringList out;
    auto text = readFile(path, 1 << 16);
    if (!text) return out;  // none yet
    for (const QByteArray& line : text->split('\n')) {
        const qsizetype sp = line.indexOf(' ');
        if (sp <= 0) continue;
        bool ok = false;
        const int idx = line.left(sp).toInt(&ok);
        if (!ok || idx < 0 || idx >= kMaxKeywordsPerFolder) continue;
        while (out.size() <= idx) out << QString();
        out[idx] = QString::fromUtf8(line.mid(sp + 1).trimmed());
    }
    return out;
}
}  // namespace

bool validKeyword(const QString& name) {
    const QByteArray b = name.toUtf8();
    if (b.isEmpty() || b.size() > kMaxKeywordBytes) return false;
    for (char c : b) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f) return false;  // CTL, SP, and 8-bit (an atom is ASCII)
        if (c == '(' || c == ')' || c == '{' || c == '%' || c == '*' || c == '"' || c == '\\' || c == ']') return false;
    }
    return true;
}

Result<QString> keywordLetters(const QString& folderDir, const QStringList& keywords, QStringList* notStored) {
    QString letters;
    QStringList wanted;
    for (const QString& k : keywords) {
        if (k.compare(QLatin1String("$Forwarded"), Qt::CaseInsensitive) == 0) {
            if (!letters.contains(u'P')) letters += u'P';
            continue;
        }
        if (!validKeyword(k)) {
            if (notStored) *notStored << k;
            continue;
        }
        wanted << k;
    }
    if (wanted.isEmpty()) return sortFlags(letters);
    auto lock = FileLock::acquire(folderDir + QStringLiteral("/postern-uidlist.lock"));
    if (!lock) return lock.error();
    const QString path = folderDir + QStringLiteral("/dovecot-keywords");
    QStringList names = readKeywords(path);
    bool changed = false;
    for (const QString& k : std::as_const(wanted)) {
        qsizetype idx = -1;
        for (qsizetype i = 0; i < names.size() && idx < 0; ++i)
            if (names.at(i).compare(k, Qt::CaseInsensitive) == 0) idx = i;
        if (idx < 0) {
            idx = names.indexOf(QString());
            if (idx < 0 && names.size() < kMaxKeywordsPerFolder) {
                names << QString();
                idx = names.size() - 1;
            }
            if (idx < 0) {
                if (notStored) *notStored << k;
                continue;
            }
            names[idx] = k;
            changed = true;
        }
        const QChar letter(char16_t('a' + idx));
        if (!letters.contains(letter)) letters += letter;
    }
    if (changed) {
        QByteArray text;
        for (qsizetype i = 0; i < names.size(); ++i)
            if (!names.at(i).isEmpty()) text += QByteArray::number(i) + ' ' + names.at(i).toUtf8() + '\n';
        if (auto st = writeFileAtomic(path, text, 0600); !st) return st.error();
    }
    return sortFlags(letters);
}

}  // namespace postern::store
