// account_credentials.cpp — see account_credentials.h.
#include "account_credentials.h"

#include "address.h"
#include "totp.h"

#include <QCryptographicHash>
#include <QRandomGenerator>
#include <QRegularExpression>
#include <QSet>

#include <openssl/rand.h>

namespace postern {

namespace {
QList<QByteArray> lines(const QByteArray& data) {
    QList<QByteArray> out = data.split('\n');
    if (!out.isEmpty() && out.last().isEmpty()) out.removeLast();
    for (QByteArray& l : out)
        if (l.endsWith('\r')) l.chop(1);
    return out;
}

// "# postern-<kind> N" on the first line; returns the error for a newer format.
Status checkFormat(const QByteArray& first, const char* kind, const QString& where) {
    static const QRegularExpression re(QStringLiteral("^#\\s*postern-([a-z-]+)\\s+(\\d{1,6})\\s*$"));
    const auto m = re.match(QString::fromUtf8(first));
    if (!m.hasMatch() || m.captured(1) != QLatin1String(kind)) return {};
    if (m.captured(2).toInt() > kCredentialsFormat)
        return Status::fail(QStringLiteral("%1: format %2, this Postern reads up to %3 (written by a newer Postern?)")
                                .arg(where, m.captured(2))
                                .arg(kCredentialsFormat));
    return {};
}

bool isHex(const QString& s, int n) {
    if (s.size() != n) return false;
    for (QChar c : s)
        if (!((c >= QLatin1Char('0') && c <= QLatin1Char('9')) || (c >= QLatin1Char('a') && c <= QLatin1Char('f'))))
            return false;
    return true;
}

Result<qint64> number(const QString& s, const QString& where, const char* what, qint64 min) {
    bool ok = false;
    const qint64 v = s.toLongLong(&ok);
    if (!ok || v < min)
        return Result<qint64>::fail(QStringLiteral("%1: bad %2 '%3'").arg(where, QLatin1String(what), s));
    return v;
}
}  // namespace

Status AccountCredentials::checkName(const QString& name) {
    static const QRegularExpression re(QStringLiteral("^[A-Za-z0-9._-]+$"));
    if (name.isEmpty() || name.size() > kMaxAppPasswordName || !re.match(name).hasMatch())
        return Status::fail(QStringLiteral("app password name must be 1 to %1 letters, digits, '.', '_' or '-'")
                                .arg(kMaxAppPasswordName));
    return {};
}

Result<AccountCredentials> AccountCredentials::parse(const QByteArray& data, const QString& where) {
    AccountCredentials c;
    const QList<QByteArray> ls = lines(data);
    int n = 0;
    for (const QByteArray& raw : ls) {
        ++n;
        const QString at = QStringLiteral("%1:%2").arg(where).arg(n);
        if (raw.size() > kMaxCredentialLine)
            return Result<AccountCredentials>::fail(
                QStringLiteral("%1: line longer than %2 bytes").arg(at).arg(kMaxCredentialLine));
        if (n == 1)
            if (auto st = checkFormat(raw, "credentials", where); !st) return st.error();
        const QString line = QString::fromUtf8(raw).trimmed();
        if (line.isEmpty() || line.startsWith(QLatin1Char('#'))) continue;
        const QStringList f = line.split(QLatin1Char(' '), Qt::SkipEmptyParts);
        auto addr = normalizeAddress(f.value(1));
        if (!addr) return Result<AccountCredentials>::fail(QStringLiteral("%1: %2").arg(at, addr.errorMessage()));
        if (f.at(0) == u"2fa" && f.size() == 3) {
            auto since = number(f.at(2), at, "time", 0);
            if (!since) return since.error();
            c.m_twoFactor.insert(*addr, *since);
        } else if (f.at(0) == u"app" && f.size() == 7) {
            AppPassword a;
            a.id = f.at(2);
            if (!isHex(a.id, 16))
                return Result<AccountCredentials>::fail(QStringLiteral("%1: bad id '%2'").arg(at, a.id));
            auto created = number(f.at(3), at, "time", 0);
            if (!created) return created.error();
            a.created = *created;
            if (!isHex(f.at(4), 4))
                return Result<AccountCredentials>::fail(QStringLiteral("%1: bad tag '%2'").arg(at, f.at(4)));
            a.tag = quint16(f.at(4).toUInt(nullptr, 16));
            a.hash = f.at(5);
            a.name = f.at(6);
            if (auto st = c.addAppPassword(*addr, a); !st)
                return Result<AccountCredentials>::fail(QStringLiteral("%1: %2").arg(at, st.errorMessage()));
        } else {
            return Result<AccountCredentials>::fail(
                QStringLiteral("%1: expected '2fa ADDRESS SINCE' or 'app ADDRESS ID CREATED TAG HASH NAME'").arg(at));
        }
    }
    return c;
}

QByteArray AccountCredentials::serialize() const {
    QString out = QStringLiteral(
                      "# postern-credentials %1\n"
                      "# Two-factor state and app passwords (posternctl user 2fa|app-password); TOTP secrets are in "
                      "totp-secrets.\n")
                      .arg(kCredentialsFormat);
    for (auto it = m_twoFactor.cbegin(); it != m_twoFactor.cend(); ++it)
        out += QStringLiteral("2fa %1 %2\n").arg(it.key()).arg(it.value());
    for (auto it = m_apps.cbegin(); it != m_apps.cend(); ++it)
        for (const AppPassword& a : it.value())
            out += QStringLiteral("app %1 %2 %3 %4 %5 %6\n")
                       .arg(it.key(), a.id)
                       .arg(a.created)
                       .arg(QStringLiteral("%1").arg(a.tag, 4, 16, QLatin1Char('0')), a.hash, a.name);
    return out.toUtf8();
}

void AccountCredentials::setTwoFactor(const QString& address, bool on, qint64 since) {
    if (on)
        m_twoFactor.insert(address, since);
    else
        m_twoFactor.remove(address);
}

Status AccountCredentials::addAppPassword(const QString& address, const AppPassword& app) {
    if (auto st = checkName(app.name); !st) return st;
    if (app.hash.isEmpty() || app.hash.contains(QLatin1Char(' ')))
        return Status::fail(QStringLiteral("bad app password hash"));
    QList<AppPassword>& list = m_apps[address];
    for (const AppPassword& a : std::as_const(list)) {
        if (a.name.compare(app.name, Qt::CaseInsensitive) == 0)
            return Status::fail(QStringLiteral("%1 already has an app password named %2").arg(address, a.name));
        if (a.id == app.id) return Status::fail(QStringLiteral("app password id %1 listed twice").arg(a.id));
    }
    if (list.size() >= kMaxAppPasswords)
        return Status::fail(QStringLiteral("%1 already has %2 app passwords (the most allowed); revoke one first")
                                .arg(address)
                                .arg(kMaxAppPasswords));
    list << app;
    return {};
}

Status AccountCredentials::removeAppPassword(const QString& address, const QString& name) {
    auto it = m_apps.find(address);
    if (it != m_apps.end()) {
        const qsizetype before = it->size();
        it->removeIf([&](const AppPassword& a) { return a.name.compare(name, Qt::CaseInsensitive) == 0; });
        if (it->size() != before) {
            if (it->isEmpty()) m_apps.erase(it);
            return {};
        }
    }
    return Status::fail(QStringLiteral("%1 has no app password named %2").arg(address, name));
}

void AccountCredentials::removeUser(const QString& address) {
    m_twoFactor.remove(address);
    m_apps.remove(address);
}

void AccountCredentials::keepOnly(const QList<QString>& users) {
    const QSet<QString> keep(users.cbegin(), users.cend());
    m_twoFactor.removeIf([&](const auto& it) { return !keep.contains(it.key()); });
    m_apps.removeIf([&](const auto& it) { return !keep.contains(it.key()); });
}

QString generateAppPassword() {
    QString out;
    for (int i = 0; i < kAppPasswordLetters; ++i) {
        if (i && i % 4 == 0) out += QLatin1Char(' ');
        out += QLatin1Char(char('a' + QRandomGenerator::system()->bounded(26)));
    }
    return out;
}

QByteArray normalizeAppPassword(const QByteArray& text) {
    QByteArray letters;
    for (char c : text) {
        if (c == ' ' || c == '-') continue;
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
        if (c < 'a' || c > 'z') return {};
        letters += c;
        if (letters.size() > kAppPasswordLetters) return {};
    }
    return letters.size() == kAppPasswordLetters ? letters : QByteArray();
}

quint16 appPasswordTag(const QString& address, const QByteArray& letters) {
    QByteArray msg = QByteArrayLiteral("postern-app-password-tag");
    msg += '\0';
    msg += address.toUtf8();
    msg += '\0';
    msg += letters;
    const QByteArray d = QCryptographicHash::hash(msg, QCryptographicHash::Sha256);
    return quint16((quint8(d.at(0)) << 8) | quint8(d.at(1)));
}

QString newCredentialId() {
    unsigned char b[8];
    if (RAND_bytes(b, sizeof b) != 1)
        for (unsigned char& x : b) x = static_cast<unsigned char>(QRandomGenerator::system()->generate());
    return QString::fromLatin1(QByteArray(reinterpret_cast<const char*>(b), sizeof b).toHex());
}

// ---------------------------------------------------------------- TotpSecrets

Result<TotpSecrets> TotpSecrets::parse(const QByteArray& data, const QString& where) {
    TotpSecrets s;
    int n = 0;
    for (const QByteArray& raw : lines(data)) {
        ++n;
        const QString at = QStringLiteral("%1:%2").arg(where).arg(n);
        if (raw.size() > kMaxCredentialLine)
            return Result<TotpSecrets>::fail(QStringLiteral("%1: line too long").arg(at));
        if (n == 1)
            if (auto st = checkFormat(raw, "totp-secrets", where); !st) return st.error();
        const QString line = QString::fromUtf8(raw).trimmed();
        if (line.isEmpty() || line.startsWith(QLatin1Char('#'))) continue;
        const QStringList f = line.split(QLatin1Char(' '), Qt::SkipEmptyParts);
        if (f.size() != 5 || (f.at(1) != u"pending" && f.at(1) != u"active"))
            return Result<TotpSecrets>::fail(
                QStringLiteral("%1: expected 'ADDRESS pending|active SECRET LASTSTEP CREATED'").arg(at));
        auto addr = normalizeAddress(f.at(0));
        if (!addr) return Result<TotpSecrets>::fail(QStringLiteral("%1: %2").arg(at, addr.errorMessage()));
        TotpSecret e;
        e.active = f.at(1) == u"active";
        auto secret = base32Decode(f.at(2));
        if (!secret || secret->size() < 10) return Result<TotpSecrets>::fail(QStringLiteral("%1: bad secret").arg(at));
        e.secret = *secret;
        auto last = number(f.at(3), at, "step", -1);
        if (!last) return last.error();
        e.lastStep = *last;
        auto created = number(f.at(4), at, "time", 0);
        if (!created) return created.error();
        e.created = *created;
        s.m_entries.insert(*addr, e);
    }
    return s;
}

QByteArray TotpSecrets::serialize() const {
    QString out =
        QStringLiteral(
            "# postern-totp-secrets %1\n# Root's only (0600). ADDRESS pending|active SECRET LASTSTEP CREATED\n")
            .arg(kCredentialsFormat);
    for (auto it = m_entries.cbegin(); it != m_entries.cend(); ++it)
        out += QStringLiteral("%1 %2 %3 %4 %5\n")
                   .arg(it.key(), it->active ? QStringLiteral("active") : QStringLiteral("pending"),
                        base32Encode(it->secret))
                   .arg(it->lastStep)
                   .arg(it->created);
    return out.toUtf8();
}

const TotpSecret* TotpSecrets::find(const QString& address) const {
    auto it = m_entries.constFind(address);
    return it == m_entries.cend() ? nullptr : &*it;
}

TotpSecret* TotpSecrets::find(const QString& address) {
    auto it = m_entries.find(address);
    return it == m_entries.end() ? nullptr : &*it;
}

void TotpSecrets::keepOnly(const QList<QString>& users) {
    const QSet<QString> keep(users.cbegin(), users.cend());
    m_entries.removeIf([&](const auto& it) { return !keep.contains(it.key()); });
}

bool TotpSecrets::operator==(const TotpSecrets& o) const {
    if (m_entries.size() != o.m_entries.size()) return false;
    for (auto it = m_entries.cbegin(); it != m_entries.cend(); ++it) {
        const TotpSecret* b = o.find(it.key());
        if (!b || b->secret != it->secret || b->active != it->active || b->lastStep != it->lastStep ||
            b->created != it->created)
            return false;
    }
    return true;
}

}  // namespace postern
