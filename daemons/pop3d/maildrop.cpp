// maildrop.cpp — see maildrop.h.
#include "maildrop.h"

#include "common/store/maildir_delivery.h"

#include "core/paths.h"
#include "core/posix_io.h"

#include <QFile>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace postern::pop3 {

Result<std::shared_ptr<Maildrop>> Maildrop::open(const QString& mailDir, const QString& address,
                                                 qint64 loginDelaySeconds) {
    const QString root = maildirRoot(mailDir, address);
    const QString home = mailboxHome(mailDir, address);
    if (root.isEmpty()) return Result<std::shared_ptr<Maildrop>>::fail(QStringLiteral("not a mailbox address"));
    if (auto st = store::ensureMaildir(root); !st) return st.error();
    std::shared_ptr<Maildrop> drop(new Maildrop);
    const QString lockPath = home + QStringLiteral("/.pop3.lock");
    drop->m_lockFd = ::open(QFile::encodeName(lockPath).constData(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (drop->m_lockFd < 0)
        return Result<std::shared_ptr<Maildrop>>::fail(QStringLiteral("%1: %2").arg(lockPath, errnoText(errno)));
    if (::flock(drop->m_lockFd, LOCK_EX | LOCK_NB) != 0)
        return Result<std::shared_ptr<Maildrop>>::fail(QStringLiteral("maildrop is locked by another POP3 session"),
                                                       kLocked);
    struct stat st {};
    if (loginDelaySeconds > 0 && ::fstat(drop->m_lockFd, &st) == 0 && st.st_size > 0 &&
        ::time(nullptr) - st.st_mtim.tv_sec < loginDelaySeconds)
        return Result<std::shared_ptr<Maildrop>>::fail(QStringLiteral("minimum time between logins not reached"),
                                                       kLoginDelay);
    // Record this login: one byte written updates the mtime the next login compares against.
    if (::pwrite(drop->m_lockFd, "L", 1, 0) != 1) { /* the lock still holds; only LOGIN-DELAY loses its clock */
    }
    auto folder = store::MaildirFolder::open(root);
    if (!folder) return folder.error();
    drop->m_folder = *folder;
    // POP3 leaves new mail in new/ (moving it to cur/ is for IMAP clients, RFC 3501 "\Recent").
    auto list = drop->m_folder.sync(false);
    if (!list) return list.error();
    drop->m_messages = *list;
    return drop;
}

Maildrop::~Maildrop() {
    if (m_lockFd >= 0) ::close(m_lockFd);  // releases the flock
}

QString Maildrop::uidl(int index) const {
    return QStringLiteral("%1%2")
        .arg(m_messages.at(index).uid, 8, 16, QLatin1Char('0'))
        .arg(m_folder.uidValidity(), 8, 16, QLatin1Char('0'))
        .toUpper();
}

Status Maildrop::commit(const QSet<int>& deleted, const QSet<int>& retrieved) {
    Status result;
    for (int i = 0; i < m_messages.size(); ++i) {
        store::MessageEntry& e = m_messages[i];
        if (deleted.contains(i)) {
            if (auto st = m_folder.expunge(e); !st && result) result = st;
        } else if (retrieved.contains(i) && !e.flags.contains(QLatin1Char('S'))) {
            if (auto r = m_folder.setFlags(e, e.flags + QLatin1Char('S')); !r && result) result = r.error();
        }
    }
    return result;
}

}  // namespace postern::pop3
