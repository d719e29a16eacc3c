// maildir_keywords.cpp — see maildir_keywords.h.
#include "maildir_keywords.h"

#include "maildir_names.h"

#include "core/atomic_file.h"

#include <optional>

namespace postern::store {

namespace {
QString keywordFile(const QString& folderDir) {
    return folderDir + QStringLiteral("/dovecot-keywords");
}

qsizetype find(const QStringList& table, const QString& keyword) {
    for (qsizetype i = 0; i < table.size(); ++i)
        if (table.at(i).compare(keyword, Qt::CaseInsensitive) == 0) return i;
    return -1;
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

QStringList readKeywordTable(const QString& folderDir) {
    QStringList out;
    auto text = readFile(keywordFile(folderDir), kMaxKeywordFileBytes);
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

Result<QString> assignKeywordLetters(const QString& folderDir, QStringList* table, const QStringList& keywords,
                                     NewKeywords newKeywords, QStringList* notStored) {
    QString letters;
    std::optional<FileLock> lock;  // held from the first keyword to add until the file is written
    bool changed = false;
    for (const QString& k : keywords) {
        if (k.compare(QLatin1String("$Forwarded"), Qt::CaseInsensitive) == 0) {
            if (!letters.contains(u'P')) letters += u'P';
            continue;
        }
        qsizetype idx = find(*table, k);
        if (idx < 0) {
            if (newKeywords == NewKeywords::Skip) continue;
            if (!lock) {
                // Another session or delivery (of any process) may have added keywords since the
                // caller read the file: read it again under the lock, so no letter is given twice.
                auto l = FileLock::acquire(folderDir + QStringLiteral("/postern-uidlist.lock"));
                if (!l) return l.error();
                lock.emplace(std::move(*l));
                *table = readKeywordTable(folderDir);
                idx = find(*table, k);
            }
        }
        if (idx < 0) {
            idx = table->indexOf(QString());
            if (idx < 0 && table->size() < kMaxKeywordsPerFolder) {
                *table << QString();
                idx = table->size() - 1;
            }
            if (idx < 0) {
                if (notStored) *notStored << k;
                continue;
            }
            (*table)[idx] = k;
            changed = true;
        }
        const QChar letter(char16_t('a' + idx));
        if (!letters.contains(letter)) letters += letter;
    }
    if (changed) {
        QByteArray text;
        for (qsizetype i = 0; i < table->size(); ++i)
            if (!table->at(i).isEmpty()) text += QByteArray::number(i) + ' ' + table->at(i).toUtf8() + '\n';
        if (auto st = writeFileAtomic(keywordFile(folderDir), text, 0600); !st) return st.error();
    }
    return sortFlags(letters);
}

Result<QString> keywordLetters(const QString& folderDir, const QStringList& keywords, QStringList* notStored) {
    QStringList valid;
    for (const QString& k : keywords) {
        if (k.compare(QLatin1String("$Forwarded"), Qt::CaseInsensitive) == 0 || validKeyword(k))
            valid << k;
        else if (notStored)
            *notStored << k;
    }
    QStringList table;  // read under the lock when a keyword needs it
    return assignKeywordLetters(folderDir, &table, valid, NewKeywords::Add, notStored);
}

QString systemFlagLetter(const QString& flag) {
    const QString l = flag.toLower();
    if (l == u"\\seen") return QStringLiteral("S");
    if (l == u"\\answered") return QStringLiteral("R");
    if (l == u"\\flagged") return QStringLiteral("F");
    if (l == u"\\deleted") return QStringLiteral("T");
    if (l == u"\\draft") return QStringLiteral("D");
    return {};
}

QStringList flagNames(const QString& letters, const QStringList& table) {
    QStringList out;
    QStringList keywords;
    for (QChar c : letters) {
        switch (c.unicode()) {
            case 'S':
                out << QStringLiteral("\\Seen");
                break;
            case 'R':
                out << QStringLiteral("\\Answered");
                break;
            case 'F':
                out << QStringLiteral("\\Flagged");
                break;
            case 'T':
                out << QStringLiteral("\\Deleted");
                break;
            case 'D':
                out << QStringLiteral("\\Draft");
                break;
            case 'P':
                out << QStringLiteral("$Forwarded");
                break;
            default:
                if (c >= u'a' && c <= u'z') {
                    const qsizetype k = c.unicode() - 'a';
                    if (k < table.size() && !table.at(k).isEmpty()) keywords << table.at(k);
                }
        }
    }
    return out + keywords;
}

}  // namespace postern::store
