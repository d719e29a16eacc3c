// imap_import.h — posternctl import imap: copy every folder of another IMAP
// server (Gmail, another Postern, Dovecot, ...) into a local account.
//
// posternctl import imap --host H [--port P] [--tls|--starttls|--plain]
//     --user U --password-file F --to ADDRESS [--folder-map A=B,C=,...]
//     [--state FILE] [--rate N] [--max-messages N] [--max-size SIZE] [--ca-file F]
//
// What is copied: every selectable folder; per message the bytes (BODY.PEEK[],
// so the source's \Seen is not touched), FLAGS (system flags and keywords) and
// INTERNALDATE. Folder mapping (planFolders): --folder-map first (an empty
// target skips the folder); then special-use attributes (RFC 6154): \Sent,
// \Drafts, \Trash, \Junk, \Archive go to our folders of that name; \Flagged and
// \Important (Gmail's Starred/Important views) are skipped; \All ("[Gmail]/All
// Mail") is copied last into Archive, without the messages already copied from
// another folder (Gmail's X-GM-MSGID identifies them), and skipped on other
// servers (a virtual folder there); then common names (Sent Items, Deleted
// Items, Spam, ...); the "[Gmail]" prefix is dropped; hierarchy becomes "/";
// a '.' in a name part becomes '_' (Maildir++ cannot hold it).
//
// Resumable: a state file (default <home>/import-imap-<host>-<user>.json, the
// daemon user's) records per remote folder its UIDVALIDITY, the last UID copied
// and, while a batch is being written, the batch's UIDs and local file names.
// A batch is fetched, written to tmp/, recorded as pending, committed (renamed
// into the Maildir), flagged, and only then recorded as done; after a crash the
// pending names that are in the Maildir count as done (their flags are set
// again), the others are fetched again: nothing is copied twice and nothing is
// lost. A changed UIDVALIDITY starts that folder over (said in the output).
//
// Paced: at most --rate messages per second (default 10 on Gmail, which
// limits IMAP downloads, else unlimited); a dropped connection or a [THROTTLED]
// / [UNAVAILABLE] answer is retried with back-off (5 tries, 2 s doubling to 60 s).
// --max-messages stops after N messages (a trial run; the next run continues).
// Sizes are fetched before bodies: a message larger than --max-size (at most and
// by default kMaxImportMessage: the parser's literal limit, 256 MiB, less 1 MiB)
// is named and left out for good (its UID counts as done in the state file).
// Progress on a terminal; one line per folder with the counts.
//
// Security: the password file and --ca-file are read as root, then posternctl
// drops to system_user for good before it connects. TLS is verified against the
// system's CAs plus --ca-file, for the name --host; --plain (no TLS) must be
// asked for. The server is untrusted: its responses go through
// ImapResponseParser's limits; its folder names become paths only through
// store::folderDirName.
// Standards: RFC 9051 / 3501 (IMAP), RFC 4616 (PLAIN), RFC 6154 (SPECIAL-USE),
// RFC 3501 5.1.3 (modified UTF-7 names), Gmail's X-GM-EXT-1.
#pragma once

#include "ctl.h"

#include <QMap>
#include <QStringList>

namespace postern::ctl {

struct RemoteFolder {
    QString name;            // decoded, with the server's delimiter
    QByteArray wireName;     // as the server sent it (for EXAMINE)
    QStringList attributes;  // e.g. "\\Sent", "\\Noselect"
    QChar delimiter;         // may be null (flat)
};

struct FolderPlan {
    RemoteFolder remote;
    QStringList local;  // parts; empty = INBOX
    bool skip = false;
    QString why;  // when skipped
    bool allMail = false;
};

QList<FolderPlan> planFolders(const QList<RemoteFolder>& remote, const QMap<QString, QString>& userMap, bool gmail);
// "17-Jul-1996 02:44:25 -0700" -> ms since the epoch (0 when malformed).
qint64 parseInternalDate(const QByteArray& text);

int importImap(CtlContext& ctx);
// The normalised address of a local user; prints the error and returns "" otherwise.
QString localUser(CtlContext& ctx, const Config& config, const QString& address);

}  // namespace postern::ctl
