// maildrop.h — a user's INBOX as POP3 sees it (RFC 1939).
//
// Interface (blocking file work; the session runs open() and commit() on a
// worker thread):
//   Maildrop::open(mailDir, address)  takes the POP3 lock (flock on
//       <home>/.pop3.lock: exclusive across processes, released by the kernel
//       when a process dies), syncs the folder (MaildirFolder::sync, which
//       assigns stable UIDs) and snapshots the message list for the session.
//       A second open for the same user fails with kLocked; a login sooner than
//       pop3.login_delay after the previous one fails with kLoginDelay (the time of
//       the last login is the mtime of <home>/.pop3.lock).
//   messages()  the snapshot: number n (1-based) -> uid, CRLF size, path.
//   uidl(i)     "%08X%08X" of UID and UIDVALIDITY (Dovecot's default
//               pop3_uidl_format), stable for as long as the uidlist lives.
//   commit(deleted, seen)  UPDATE state (RFC 1939 6): expunges the deleted
//       messages and marks retrieved ones \Seen (flag S in the file name).
//       Only called on QUIT; a dropped connection commits nothing.
// Security: the home path comes from core/paths.h; message paths only from
// the store's own directory listing.
#pragma once

#include "common/store/maildir_folder.h"

#include "core/result.h"

#include <QList>
#include <QSet>
#include <QString>
#include <memory>

namespace postern::pop3 {

class Maildrop {
public:
    static constexpr int kLocked = 1001;      // Error::code when another session holds the maildrop
    static constexpr int kLoginDelay = 1002;  // Error::code when the last login was too recent (RFC 2449 LOGIN-DELAY)

    // loginDelaySeconds > 0: refuse when the previous POP3 login of this user was more recent.
    static Result<std::shared_ptr<Maildrop>> open(const QString& mailDir, const QString& address,
                                                  qint64 loginDelaySeconds = 0);
    ~Maildrop();
    Maildrop(const Maildrop&) = delete;
    Maildrop& operator=(const Maildrop&) = delete;

    const QList<store::MessageEntry>& messages() const { return m_messages; }
    QString path(int index) const { return m_folder.messagePath(m_messages.at(index)); }
    QString uidl(int index) const;
    Status commit(const QSet<int>& deleted, const QSet<int>& retrieved);

private:
    Maildrop() = default;
    int m_lockFd = -1;
    store::MaildirFolder m_folder;
    QList<store::MessageEntry> m_messages;
};

}  // namespace postern::pop3
