// maildir_keywords.h — IMAP keywords of messages delivered into a Maildir folder,
// stored as postern-imapd stores them (imapd/imap_mailbox.cpp): the folder's
// `dovecot-keywords` file lists "<index> <keyword>" lines, and a message carries
// keyword number i as the letter 'a' + i in its Maildir info (":2,Sa"). The file
// is changed only under the folder's `postern-uidlist.lock`, the lock every
// imapd session takes to add a keyword, so letters are never given twice.
//
// Interface:
//   validKeyword(name)  an IMAP flag-keyword (RFC 9051 atom: no specials,
//       no control characters, no '\'), 1..kMaxKeywordBytes octets
//   keywordLetters(folderDir, keywords, notStored) -> the letters for
//       `keywords` (case-insensitive match with the file's names; new names
//       get the first free letter and are written to the file atomically);
//       "$Forwarded" is the Maildir letter P, as in imapd. A keyword that is
//       not valid, or for which no letter is free, is skipped and named in
//       *notStored (delivery goes on without it: never a lost message).
// Blocking: file I/O and a file lock (delivery workers only).
// Limits: kMaxKeywordsPerFolder (26: the letters a-z), kMaxKeywordBytes (64).
#pragma once

#include "core/result.h"

#include <QString>
#include <QStringList>

namespace postern::store {

inline constexpr int kMaxKeywordsPerFolder = 26;
inline constexpr int kMaxKeywordBytes = 64;

bool validKeyword(const QString& name);
Result<QString> keywordLetters(const QString& folderDir, const QStringList& keywords, QStringList* notStored = nullptr);

}  // namespace postern::store
