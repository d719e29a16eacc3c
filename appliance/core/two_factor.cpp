// two_factor.cpp — see two_factor.h.
#include "two_factor.h"

#include "address.h"
#include "atomic_file.h"
#include "config.h"
#include "posix_io.h"
#include "qr_code.h"
#include "safe_path.h"
#include "setting_keys.h"
#include "totp.h"

#include <QDateTime>
#include <QFile>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace postern {

namespace {
const QString kBadCode = QStringLiteral("wrong or already used code");

bool validId(const QString& id) {
    if (id.size() != 16) return false;
    for (QChar c : id)
        if (!((c >= QLatin1Char('0') && c <= QLatin1Char('9')) || (c >= QLatin1Char('a') && c <= QLatin1Char('f'))))
            return false;
    return true;
}
}  // namespace

TwoFactor::TwoFactor(AccountStore& store, QString usageDir, Clock clock)
    : m_store(store), m_usageDir(std::move(usageDir)), m_clock(std::move(clock)) {}

qint64 TwoFactor::now() const {
    return m_clock ? m_clock() : QDateTime::currentSecsSinceEpoch();
}

Result<TotpEnrolment> TwoFactor::beginEnrolment(const QString& addressIn) {
    auto address = normalizeAddress(addressIn);
    if (!address) return address.error();
    const QByteArray secret = generateTotpSecret();
    if (secret.size() != kTotpSecretBytes)
        return Result<TotpEnrolment>::fail(QStringLiteral("no randomness for a secret"));
    const qint64 t = now();
    Status st = m_store.modifyWithSecrets([&](Accounts& acc, TotpSecrets& secrets) -> Status {
        if (!acc.user(*address)) return Status::fail(QStringLiteral("unknown user %1").arg(*address));
        if (acc.credentials().twoFactorEnabled(*address))
            return Status::fail(
                QStringLiteral("two-factor login is already on for %1 (disable it first to enrol a new device)")
                    .arg(*address));
        secrets.set(*address, TotpSecret{secret, false, -1, t});
        return {};
    });
    if (!st) return st.error();
    TotpEnrolment e;
    e.address = *address;
    e.secretBase32 = base32Encode(secret);
    e.uri = totpUri(*address, secret);
    auto qr = QrMatrix::encode(e.uri.toUtf8());
    if (!qr) return qr.error();
    e.svg = qr->toSvg();
    e.terminal = qr->toTerminal();
    return e;
}

Status TwoFactor::checkCode(TotpSecrets& secrets, const QString& address, const QString& code, bool wantActive) {
    TotpSecret* s = secrets.find(address);
    if (!s || s->active != wantActive)
        return Status::fail(
            wantActive ? QStringLiteral("two-factor login is not on for %1").arg(address)
                       : QStringLiteral("no enrolment in progress for %1 (start one: user 2fa enrol)").arg(address));
    if (parseTotpCode(code).isEmpty()) return Status::fail(QStringLiteral("a code is %1 digits").arg(kTotpDigits));
    const auto step = verifyTotp(s->secret, code, now(), s->lastStep);
    if (!step) return Status::fail(kBadCode);
    s->lastStep = *step;  // written before the caller answers: the same code never works twice
    return {};
}

Status TwoFactor::confirmEnrolment(const QString& addressIn, const QString& code) {
    auto address = normalizeAddress(addressIn);
    if (!address) return address.error();
    const qint64 t = now();
    return m_store.modifyWithSecrets([&](Accounts& acc, TotpSecrets& secrets) -> Status {
        if (!acc.user(*address)) return Status::fail(QStringLiteral("unknown user %1").arg(*address));
        if (acc.credentials().twoFactorEnabled(*address))
            return Status::fail(QStringLiteral("two-factor login is already on for %1").arg(*address));
        if (auto st = checkCode(secrets, *address, code, false); !st) return st;
        secrets.find(*address)->active = true;
        acc.credentials().setTwoFactor(*address, true, t);
        return {};
    });
}

Status TwoFactor::verifyCode(const QString& addressIn, const QString& code) {
    auto address = normalizeAddress(addressIn);
    if (!address) return address.error();
    return m_store.modifyWithSecrets([&](Accounts& acc, TotpSecrets& secrets) -> Status {
        if (!acc.user(*address) || !acc.credentials().twoFactorEnabled(*address))
            return Status::fail(QStringLiteral("two-factor login is not on for %1").arg(*address));
        return checkCode(secrets, *address, code, true);
    });
}

Status TwoFactor::disableWithCode(const QString& addressIn, const QString& code) {
    auto address = normalizeAddress(addressIn);
    if (!address) return address.error();
    return m_store.modifyWithSecrets([&](Accounts& acc, TotpSecrets& secrets) -> Status {
        if (!acc.user(*address) || !acc.credentials().twoFactorEnabled(*address))
            return Status::fail(QStringLiteral("two-factor login is not on for %1").arg(*address));
        if (auto st = checkCode(secrets, *address, code, true); !st) return st;
        secrets.remove(*address);
        acc.credentials().setTwoFactor(*address, false, 0);
        return {};
    });
}

Status TwoFactor::disableAsAdmin(const QString& addressIn) {
    auto address = normalizeAddress(addressIn);
    if (!address) return address.error();
    return m_store.modifyWithSecrets([&](Accounts& acc, TotpSecrets& secrets) -> Status {
        if (!acc.user(*address)) return Status::fail(QStringLiteral("unknown user %1").arg(*address));
        if (!acc.credentials().twoFactorEnabled(*address) && !secrets.find(*address))
            return Status::fail(QStringLiteral("two-factor login is not on for %1").arg(*address));
        secrets.remove(*address);
        acc.credentials().setTwoFactor(*address, false, 0);
        return {};
    });
}

Result<TwoFactorStatus> TwoFactor::status(const QString& addressIn) const {
    auto address = normalizeAddress(addressIn);
    if (!address) return address.error();
    auto acc = m_store.load();
    if (!acc) return acc.error();
    if (!acc->user(*address)) return Result<TwoFactorStatus>::fail(QStringLiteral("unknown user %1").arg(*address));
    TwoFactorStatus s;
    s.enabled = acc->credentials().twoFactorEnabled(*address);
    s.since = acc->credentials().twoFactorSince(*address);
    s.appPasswords = int(acc->credentials().appPasswords(*address).size());
    // Pending enrolment: only the secrets' owner can tell; others see "no".
    if (!s.enabled && QFile::exists(m_store.totpSecretsPath())) {
        if (auto bytes = readFile(m_store.totpSecretsPath()); bytes)
            if (auto secrets = TotpSecrets::parse(*bytes); secrets)
                if (const TotpSecret* e = secrets->find(*address)) s.pending = !e->active;
    }
    return s;
}

Result<NewAppPassword> TwoFactor::addAppPassword(const QString& addressIn, const QString& name,
                                                 const HashParams& params) {
    auto address = normalizeAddress(addressIn);
    if (!address) return address.error();
    if (auto st = AccountCredentials::checkName(name); !st) return st.error();
    // Check first: a typo should not cost a slow hash.
    {
        auto acc = m_store.load();
        if (!acc) return acc.error();
        if (!acc->user(*address)) return Result<NewAppPassword>::fail(QStringLiteral("unknown user %1").arg(*address));
        if (acc->credentials().appPasswords(*address).size() >= kMaxAppPasswords)
            return Result<NewAppPassword>::fail(
                QStringLiteral("%1 already has %2 app passwords (the most allowed); revoke one first")
                    .arg(*address)
                    .arg(kMaxAppPasswords));
    }
    const QString shown = generateAppPassword();
    const QByteArray letters = normalizeAppPassword(shown.toLatin1());
    auto hash = hashPassword(letters, params);
    if (!hash) return hash.error();
    AppPassword app;
    app.id = newCredentialId();
    app.name = name;
    app.created = now();
    app.tag = appPasswordTag(*address, letters);
    app.hash = *hash;
    Status st = m_store.modify([&](Accounts& acc) -> Status {
        if (!acc.user(*address)) return Status::fail(QStringLiteral("unknown user %1").arg(*address));
        return acc.credentials().addAppPassword(*address, app);
    });
    if (!st) return st.error();
    return NewAppPassword{name, shown};
}

Result<QList<AppPasswordInfo>> TwoFactor::appPasswords(const QString& addressIn) const {
    auto address = normalizeAddress(addressIn);
    if (!address) return address.error();
    auto acc = m_store.load();
    if (!acc) return acc.error();
    if (!acc->user(*address))
        return Result<QList<AppPasswordInfo>>::fail(QStringLiteral("unknown user %1").arg(*address));
    QList<AppPasswordInfo> out;
    for (const AppPassword& a : acc->credentials().appPasswords(*address))
        out << AppPasswordInfo{a.name, a.created, appPasswordLastUsed(m_usageDir, a.id)};
    return out;
}

Status TwoFactor::revokeAppPassword(const QString& addressIn, const QString& name) {
    auto address = normalizeAddress(addressIn);
    if (!address) return address.error();
    QString id;
    Status st = m_store.modify([&](Accounts& acc) -> Status {
        for (const AppPassword& a : acc.credentials().appPasswords(*address))
            if (a.name.compare(name, Qt::CaseInsensitive) == 0) id = a.id;
        return acc.credentials().removeAppPassword(*address, name);
    });
    if (!st) return st;
    // Its use record is of no more interest (ids are never reused, so this is tidiness).
    if (validId(id))
        if (auto dir = SafeDir::open(m_usageDir); dir) (void)dir->remove(id);
    return {};
}

bool twoFactorRequired(const Config& config, bool isAdmin) {
    return isAdmin && get(config, keys::auth::require2faAdmins);
}

QString appPasswordUsageDir(const Config& config) {
    return config.dataDir() + QStringLiteral("/state/app-passwords");
}

Status recordAppPasswordUse(const QString& dir, const QString& id, qint64 now) {
    if (!validId(id)) return Status::fail(QStringLiteral("bad app password id"));
    if (auto st = ensureDirectory(dir, 0750); !st) return st;
    const QByteArray path = QFile::encodeName(dir + QLatin1Char('/') + id);
    const int fd = ::open(path.constData(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0640);
    if (fd < 0) return Status::fail(QStringLiteral("%1: %2").arg(QString::fromLocal8Bit(path), errnoText(errno)));
    const struct timespec times[2] = {{time_t(now), 0}, {time_t(now), 0}};
    const int rc = ::futimens(fd, times);
    ::close(fd);
    if (rc != 0) return Status::fail(QStringLiteral("%1: cannot set its time").arg(QString::fromLocal8Bit(path)));
    return {};
}

qint64 appPasswordLastUsed(const QString& dir, const QString& id) {
    if (!validId(id)) return 0;
    auto d = SafeDir::open(dir);
    if (!d) return 0;
    struct stat st {};
    if (::fstatat(d->fd(), QFile::encodeName(id).constData(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
        return 0;
    return qint64(st.st_mtim.tv_sec);
}

}  // namespace postern
