// maildir_names.h — names in a Maildir++ tree.
//
// Interface:
//   uniqueName(size)        "<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<size>" (maildir(5);
//                           we store CRLF, so the virtual size W equals S)
//   parseFileName(name)     base name, S=/W= sizes, ":2," flag letters
//   withFlags(base, flags)  "<base>:2,<flags sorted>" for cur/
//   folderDirName(parts)    {"Work", "Projects"} -> ".Work.Projects" (Maildir++;
//                           each part in IMAP modified UTF-7, RFC 3501 5.1.3)
//   folderParts(dirName)    the reverse; empty on names that are not ours
//   validFolderPart(part)   refuses empty, '.', '/', '\', NUL, control characters,
//                           names starting with '.', and parts over 255 bytes
//   encodeMUtf7 / decodeMUtf7  modified UTF-7 (RFC 3501 5.1.3)
// Security: these functions are the only way folder names become paths; no
// name can escape the user's Maildir (tested in tst_maildir_names).
#pragma once

#include "core/result.h"

#include <QString>
#include <QStringList>

namespace postern::store {

QString uniqueName(qint64 size);

struct ParsedName {
    QString base;       // without ":2,..." (the stable identity of the message)
    qint64 size = -1;   // S=, or -1
    qint64 vsize = -1;  // W=, or -1
    QString flags;      // letters after ":2,"
    bool hasInfo = false;
};
ParsedName parseFileName(const QString& name);
QString withFlags(const QString& base, const QString& flags);
QString sortFlags(const QString& flags);

QString encodeMUtf7(const QString& text);
Result<QString> decodeMUtf7(const QString& text);

bool validFolderPart(const QString& part);
Result<QString> folderDirName(const QStringList& parts);
QStringList folderParts(const QString& dirName);

}  // namespace postern::store
