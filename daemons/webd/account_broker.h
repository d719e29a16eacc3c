// account_broker.h — the small privileged helper that applies the web panel's
// account changes (privilege separation of postern-webd).
//
// Why: postern-webd drops root to system_user, like every daemon; the account
// files (users, aliases, domains, DKIM keys in the config folder) stay root's, readable by
// the daemons' group (the wizard sets 0640 root:<group>), so webd can check
// passwords but must not be able to rewrite them — nor should smtpd, imapd or
// pop3d, which run as the same user. AccountBroker::start() forks, while webd is
// still root (in spec.create, before the drop), a child that keeps root's rights
// and does only this: read a request from its end of a private socketpair,
// apply it with the core functions posternctl uses (core/account_ops.h: same
// lock, validation, hashing), answer. No other process can reach it (no path in
// the file system); it exits when webd's end closes (and PR_SET_PDEATHSIG).
// webd checks who is logged in and whether they are an administrator before it
// asks; a compromised webd can therefore change accounts, and set the settings
// marked Setting::runtimeSafe (core/settings/runtime_safe.cpp: limits,
// timeouts, queue retry times, spam actions, SPF/DKIM/DMARC checking of
// incoming mail, the log level) to any value the schema accepts, which also
// makes the supervisor reload the daemons. No more: no other setting (not
// relays, addresses, paths, TLS, login protection, listeners), not other files,
// no shell as root.
//
// Interface: start(configDir, hashParams, adminAddress) -> broker;
// call({op, args...}, context, done): asynchronous — the request is queued and
// sent when the helper is free (one request in flight at a time, in order);
// done(success message or error) runs later on the event loop, never inside
// call(), and not at all when `context` has been destroyed by then (the answer
// is still read, so the next request stays in step). callFields(): the same,
// done gets every field after "ok". Errors carry Error::code kBrokerBusy (queue
// full), kBrokerTimeout (no answer in time) or kBrokerGone (no helper), so the
// panel can show a 503/504 page instead of a flash message. Ops:
//   user.add ADDRESS PASSWORD QUOTA_BYTES     user.passwd ADDRESS PASSWORD
//   user.quota ADDRESS BYTES                  user.admin ADDRESS on|off
//   user.del ADDRESS                          alias.add SOURCE TARGET[,TARGET...]
//   user.disable ADDRESS ACTOR                user.enable ADDRESS
//                                             (accountops::setDisabled; ACTOR: the logged-in
//                                             administrator, who cannot disable themselves)
//   alias.del SOURCE [TARGET]
//   domain.add DOMAIN                         (accountops::addDomain: role aliases to
//                                             adminAddress, DKIM keys made)
//   domain.del DOMAIN force|keep              (accountops::removeDomain; force also
//                                             removes its users and aliases)
//   dkim.rotate DOMAIN                        (DkimKeyStore::rotate; the answer names the
//                                             new selectors, space-separated)
// Two-factor login and app passwords (core/two_factor.h, the functions posternctl
// user 2fa / user app-password call; the TOTP secrets file is root's, so even the
// code check of a login runs here):
//   2fa.verify ADDRESS CODE        (the login's code step; replay protected)
//   2fa.enrol ADDRESS              -> secret (base32), otpauth URI, QR code SVG
//   2fa.confirm ADDRESS CODE       2fa.disable-code ADDRESS CODE
//   2fa.off ADDRESS                (webd checked the account password first)
//   2fa.status ADDRESS             -> enabled 0|1, since, pending 0|1, app passwords
//   app.add ADDRESS NAME           -> name, the password (shown once, never stored)
//   app.revoke ADDRESS NAME
// callFields() returns every field after "ok" (the ops answering several values).
//   alias.del SOURCE [TARGET]                 config.set KEY VALUE (runtimeSafe keys only:
//                                             core/config_ops.h setSetting, Scope::RunTimeOnly)
// Wire: a frame is a 4-byte big-endian length then the fields joined by NUL
// (fields containing NUL are refused by call()); the answer is "ok" or "error",
// NUL, the message.
// Limits: kMaxFrame (64 KiB) per frame, either way; an answer is awaited at most
// kCallTimeoutMs (20 s: Argon2 hashing runs in the helper), without blocking:
// webd's end is non-blocking, a QSocketNotifier reports the answer and a QTimer
// the timeout. After a timeout or a broken frame the helper is out of step: it
// is no longer used, and that request and every queued one fail (kBrokerTimeout;
// later ones kBrokerGone: webd must be restarted, the supervisor does it).
// kMaxQueued (64) requests may wait, the one in flight included; the 65th is
// refused at once (kBrokerBusy).
// Security: passwords cross only the socketpair; never logged by either side.
#pragma once

#include "core/password.h"
#include "core/result.h"

#include <QPointer>
#include <QStringList>

#include <deque>
#include <functional>
#include <memory>

class QSocketNotifier;
class QTimer;

namespace postern::web {

inline constexpr qint64 kMaxFrame = 64 * 1024;
inline constexpr int kCallTimeoutMs = 20'000;
inline constexpr int kMaxQueued = 64;
// Error::code of the broker's own failures (not the helper's answers, which carry 0).
inline constexpr int kBrokerBusy = 503;
inline constexpr int kBrokerTimeout = 504;
inline constexpr int kBrokerGone = 502;

class AccountBroker {
public:
    // usageDir: where app passwords' last use is recorded (two_factor.h appPasswordUsageDir).
    static Result<std::unique_ptr<AccountBroker>> start(const QString& configDir, const HashParams& params,
                                                        const QString& adminAddress, const QString& usageDir = {});
    ~AccountBroker();
    AccountBroker(const AccountBroker&) = delete;
    AccountBroker& operator=(const AccountBroker&) = delete;

    using Done = std::function<void(Result<QString>)>;
    using DoneFields = std::function<void(Result<QStringList>)>;
    void call(const QStringList& request, QObject* context, Done done);
    void callFields(const QStringList& request, QObject* context, DoneFields done);

    // Tests: a broker over `fd` (webd's end of a socketpair whose other end the test
    // plays), and a shorter answer timeout.
    static std::unique_ptr<AccountBroker> adopt(int fd);
    void setTimeoutMs(int ms) { m_timeoutMs = ms; }
    int queued() const { return int(m_queue.size()); }

    // The helper's side, public for the unit test: one request -> one answer.
    static QStringList serve(const QString& configDir, const HashParams& params, const QString& adminAddress,
                             const QStringList& request, const QString& usageDir = {});

private:
    struct Pending {
        QStringList request;
        QPointer<QObject> context;
        DoneFields done;
    };
    AccountBroker(int fd, int pid);
    void sendNext();
    void readAnswer();
    static void finish(Pending p, Result<QStringList> r);
    void breakOff(const Error& why);
    int m_fd = -1;
    int m_pid = -1;
    int m_timeoutMs = kCallTimeoutMs;
    std::deque<Pending> m_queue;  // front() is in flight when m_inFlight
    bool m_inFlight = false;
    QByteArray m_buffer;  // the answer read so far
    std::unique_ptr<QSocketNotifier> m_notifier;
    std::unique_ptr<QTimer> m_timer;
};

}  // namespace postern::web
