// maildir_keywords.h — IMAP keywords of Maildir messages: the one mapping from
// keyword names to Maildir info letters, used by postern-imapd (STORE, APPEND,
// COPY/MOVE) and by delivery (Sieve's imap4flags, maildir_delivery.h). The
// folder's `dovecot-keywords` file lists "<index> <keyword>" lines, and a
// message carries keyword number i as the letter 'a' + i in its Maildir info
// (":2,Sa"). The file is changed only under the folder's
// `postern-uidlist.lock`, the lock every writer takes to add a keyword, so
// letters are never given twice.
//
// Interface:
//   validKeyword(name)  an IMAP flag-keyword (RFC 9051 atom: no specials,
//       no control characters, no '\'), 1..kMaxKeywordBytes octets
//   readKeywordTable(folderDir) -> the folder's table: index i is the name of
//       letter 'a' + i, "" a free letter (no file yet: empty table)
//   assignKeywordLetters(folderDir, *table, keywords, newKeywords, notStored)
//       -> the letters (sorted) for `keywords`, looked up case-insensitively in
//       *table (the caller's copy, updated in place). "$Forwarded" is the
//       Maildir letter P. A keyword not in *table is left out with
//       NewKeywords::Skip; with NewKeywords::Add the file is read again under
//       the lock (another process may have added it meanwhile) and, if still
//       missing, the keyword gets the first free letter and the file is
//       rewritten atomically. A keyword for which no letter is free is left
//       out and named in *notStored. Names are not checked here (callers do:
//       imapd's flag grammar, keywordLetters below).
//   keywordLetters(folderDir, keywords, notStored) -> the letters for
//       `keywords` of a delivered message: names that are not validKeyword()
//       are left out and named in *notStored (delivery goes on without them:
//       never a lost message), the others as assignKeywordLetters with Add.
//   systemFlagLetter(flag) -> the Maildir info letter of an IMAP system flag
//       (RFC 9051 2.3.2; \Seen S, \Answered R, \Flagged F, \Deleted T,
//       \Draft D; case-insensitive), empty for anything else ($Forwarded is a
//       keyword: assignKeywordLetters gives it P).
//   flagNames(letters, table) -> the IMAP flags of a message's info letters:
//       first the system flags and $Forwarded (P) in the letters' order, then
//       the keywords whose letters a..z `table` names; other letters are left out.
//   postern-imapd, posternctl import/export and delivery use these; no other
//   code maps flags to letters.
// Blocking: file I/O and a file lock (imapd sessions, delivery workers).
// Limits: kMaxKeywordsPerFolder (26: the letters a-z), kMaxKeywordBytes (64,
// for validKeyword), kMaxKeywordFileBytes (64 KiB read of the file).
#pragma once

#include "core/result.h"

#include <QString>
#include <QStringList>

namespace postern::store {

inline constexpr int kMaxKeywordsPerFolder = 26;
inline constexpr int kMaxKeywordBytes = 64;
inline constexpr qint64 kMaxKeywordFileBytes = 1 << 16;

enum class NewKeywords { Add, Skip };

bool validKeyword(const QString& name);
QStringList readKeywordTable(const QString& folderDir);
Result<QString> assignKeywordLetters(const QString& folderDir, QStringList* table, const QStringList& keywords,
                                     NewKeywords newKeywords, QStringList* notStored = nullptr);
Result<QString> keywordLetters(const QString& folderDir, const QStringList& keywords, QStringList* notStored = nullptr);
QString systemFlagLetter(const QString& flag);
QStringList flagNames(const QString& letters, const QStringList& table);

}  // namespace postern::store
