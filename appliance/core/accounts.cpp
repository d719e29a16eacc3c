// accounts.cpp — see accounts.h.
#include "accounts.h"

#include "address.h"
#include "atomic_file.h"
#include "config_schema.h"
#include "log.h"

#include <QDeadlineTimer>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRegularExpression>

#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>

namespace postern {

namespace {
constexpr qint64 kMaxAccountFileBytes = 64 * 1024 * 1024;
const char* const kDomainsFile = "domains";
const char* const kUsersFile = "users";
const char* const kAliasesFile = "aliases";
const char* const kLockFile = ".accounts.lock";
const char* const kCredentialsFile = "credentials";
const char* const kTotpSecretsFile = "totp-secrets";

QList<QByteArray> splitLines(const QByteArray& data) {
    QList<QByteArray> lines = data.split('\n');
    if (!lines.isEmpty() && lines.last().isEmpty()) lines.removeLast();
    for (QByteArray& l : lines)
        if (l.endsWith('\r')) l.chop(1);
    return lines;
}

bool isCommentOrBlank(const QString& s) {
    const QString t = s.trimmed();
    return t.isEmpty() || t.startsWith(QLatin1Char('#'));
}

// Dovecot quota rule value: "*:storage=<n>[B|K|M|G|T]" (no suffix: kilobytes, as Dovecot reads it).
qint64 parseQuotaRule(const QString& value) {
    static const QRegularExpression re(QStringLiteral("^\\*:(?:storage|bytes)=(\\d+)([bkmgt]?)$"),
                                       QRegularExpression::CaseInsensitiveOption);
    auto m = re.match(value);
    if (!m.hasMatch()) return -1;
    qint64 n = m.captured(1).toLongLong();
    const QString unit = m.captured(2).toLower();
    if (unit.isEmpty() || unit == u"k") return n * 1024;
    if (unit == u"b") return n;
    if (unit == u"m") return n << 20;
    if (unit == u"g") return n << 30;
    if (unit == u"t") return n << 40;
    return -1;
}

QString pathOf(const QList<QString>& path) {
    return path.join(QStringLiteral(" -> "));
}
}  // namespace

Result<QString> Accounts::normalizeSource(const QString& source) {
    const QString s = source.trimmed();
    if (s.startsWith(QLatin1Char('@'))) {
        auto d = normalizeDomain(QStringView(s).mid(1));
        if (!d) return Result<QString>::fail(QStringLiteral("'%1': %2").arg(s, d.errorMessage()));
        return QLatin1Char('@') + *d;
    }
    return normalizeAddress(s);
}

Result<QString> Accounts::normalizeTarget(const QString& target) {
    return normalizeSource(target);
}

namespace {
// "file:line" for errors, under configDir when one is given.
QString fileLine(const QString& configDir, const char* file, int line) {
    return configDir.isEmpty() ? QStringLiteral("%1:%2").arg(QLatin1String(file)).arg(line)
                               : QStringLiteral("%1/%2:%3").arg(configDir, QLatin1String(file)).arg(line);
}

// The extra fields of a users line (after the seventh ':'): quota, administrator and disabled
// flags read, anything else kept verbatim. `where` is "file:line" for errors.
Status readUserExtraFields(const QString& extra, const QString& where, UserRecord* u) {
    for (const QString& field : extra.split(QLatin1Char(' '), Qt::SkipEmptyParts)) {
        if (field.startsWith(u"userdb_quota_rule=")) {
            qint64 q = parseQuotaRule(field.mid(18));
            if (q < 0)
                return Status::fail(
                    QStringLiteral("%1: cannot read quota '%2' (expected *:storage=<size>)").arg(where, field.mid(18)));
            u->quotaBytes = q;
        } else if (field == u"postern_admin=yes") {
            u->admin = true;
        } else if (field.startsWith(u"postern_admin=")) {
            // "no" (or anything else) is not an administrator; dropped on the next write.
        } else if (field == u"postern_disabled=yes") {
            u->disabled = true;
        } else if (field.startsWith(u"postern_disabled=")) {
            // "no" (or anything else) is enabled; dropped on the next write.
        } else {
            u->otherExtra << field;
        }
    }
    return {};
}
}  // namespace

Status Accounts::parseDomains(const QByteArray& domains, const QString& configDir) {
    int n = 0;
    for (const QByteArray& raw : splitLines(domains)) {
        ++n;
        const QString line = QString::fromUtf8(raw);
        if (isCommentOrBlank(line)) {
            m_domainLines.append({{}, line});
            continue;
        }
        const QString where = fileLine(configDir, kDomainsFile, n);
        auto d = normalizeDomain(line.trimmed());
        if (!d) return Status::fail(QStringLiteral("%1: %2").arg(where, d.errorMessage()));
        if (m_domains.contains(*d)) return Status::fail(QStringLiteral("%1: domain %2 listed twice").arg(where, *d));
        m_domains << *d;
        m_domainLines.append({*d, {}});
    }
    return {};
}

Status Accounts::parseUsers(const QByteArray& users, const QString& configDir) {
    int n = 0;
    for (const QByteArray& raw : splitLines(users)) {
        ++n;
        const QString line = QString::fromUtf8(raw);
        if (isCommentOrBlank(line)) {
            m_userLines.append({{}, line});
            continue;
        }
        const QString where = fileLine(configDir, kUsersFile, n);
        // user:password:uid:gid:gecos:home:shell:extra_fields — the password never contains ':'
        // in the schemes we accept, and the extra fields (which may) come last.
        const QStringList f = line.split(QLatin1Char(':'));
        if (f.size() < 2)
            return Status::fail(QStringLiteral("%1: expected user:password:... (Dovecot passwd-file)").arg(where));
        auto addr = normalizeAddress(f.at(0));
        if (!addr) return Status::fail(QStringLiteral("%1: %2").arg(where, addr.errorMessage()));
        if (m_users.contains(*addr)) return Status::fail(QStringLiteral("%1: user %2 listed twice").arg(where, *addr));
        UserRecord u;
        u.address = *addr;
        u.passwordHash = f.at(1);
        for (qsizetype i = 2; i < std::min<qsizetype>(f.size(), 7); ++i) u.otherFields << f.at(i);
        if (f.size() > 7)
            if (auto st = readUserExtraFields(f.mid(7).join(QLatin1Char(':')), where, &u); !st) return st;
        m_users.insert(u.address, u);
        m_userLines.append({u.address, {}});
    }
    return {};
}

Status Accounts::parseAliases(const QByteArray& aliases, const QString& configDir) {
    int n = 0;
    QString current;  // source of the entry a continuation line extends
    for (const QByteArray& raw : splitLines(aliases)) {
        ++n;
        const QString line = QString::fromUtf8(raw);
        if (isCommentOrBlank(line)) {
            m_aliasLines.append({{}, line});
            continue;
        }
        const QString where = fileLine(configDir, kAliasesFile, n);
        QString targetsText;
        if (line.front().isSpace()) {  // continuation (virtual(5))
            if (current.isEmpty())
                return Status::fail(QStringLiteral("%1: continuation line without an entry before it").arg(where));
            targetsText = line;
        } else {
            const QString t = line.trimmed();
            const qsizetype sp = t.indexOf(QRegularExpression(QStringLiteral("\\s")));
            if (sp < 0) return Status::fail(QStringLiteral("%1: expected 'source target[, target...]'").arg(where));
            auto src = normalizeSource(t.left(sp));
            if (!src) return Status::fail(QStringLiteral("%1: %2").arg(where, src.errorMessage()));
            current = *src;
            targetsText = t.mid(sp + 1);
            if (m_aliases.contains(current))
                return Status::fail(QStringLiteral("%1: alias %2 listed twice").arg(where, current));
            m_aliases.insert(current, {});
            m_aliasLines.append({current, {}});
        }
        for (const QString& part :
             targetsText.split(QRegularExpression(QStringLiteral("[,\\s]+")), Qt::SkipEmptyParts)) {
            auto tgt = normalizeTarget(part);
            if (!tgt) return Status::fail(QStringLiteral("%1: %2").arg(where, tgt.errorMessage()));
            QStringList& list = m_aliases[current];
            if (!list.contains(*tgt)) list << *tgt;
        }
    }
    return {};
}

Result<Accounts> Accounts::parse(const QByteArray& domains, const QByteArray& users, const QByteArray& aliases,
                                 const QString& configDir) {
    Accounts a;
    if (auto st = a.parseDomains(domains, configDir); !st) return st.error();
    if (auto st = a.parseUsers(users, configDir); !st) return st.error();
    if (auto st = a.parseAliases(aliases, configDir); !st) return st.error();
    return a;
}

namespace {
const char* const kDomainsHeader = "# Mail domains served here, one per line (posternctl domain add|del|list).";
const char* const kUsersHeader =
    "# Users, Dovecot passwd-file format: address:{SCHEME}hash::::::extra (posternctl user add|del|passwd|quota).";
const char* const kAliasesHeader =
    "# Aliases, Postfix virtual(5) style: source target[, target...]; @domain is a catch-all (posternctl alias ...).";
}  // namespace

QString Accounts::userLine(const UserRecord& u) const {
    QStringList f{u.address, u.passwordHash};
    QStringList other = u.otherFields;
    while (other.size() < 5) other << QString();
    f << other.mid(0, 5);
    QStringList extra = u.otherExtra;
    if (u.disabled) extra.prepend(QStringLiteral("postern_disabled=yes"));
    if (u.admin) extra.prepend(QStringLiteral("postern_admin=yes"));
    if (u.quotaBytes > 0)
        extra.prepend(QStringLiteral("userdb_quota_rule=*:storage=%1").arg(Schema::formatSize(u.quotaBytes)));
    f << extra.join(QLatin1Char(' '));
    return f.join(QLatin1Char(':'));
}

QByteArray Accounts::serializeDomains() const {
    QString out;
    if (m_domainLines.isEmpty() || !m_domainLines.first().key.isEmpty())
        out += QLatin1String(kDomainsHeader) + QLatin1Char('\n');
    for (const Line& l : m_domainLines) out += (l.key.isEmpty() ? l.text : l.key) + QLatin1Char('\n');
    return out.toUtf8();
}

QByteArray Accounts::serializeUsers() const {
    QString out;
    if (m_userLines.isEmpty() || !m_userLines.first().key.isEmpty())
        out += QLatin1String(kUsersHeader) + QLatin1Char('\n');
    for (const Line& l : m_userLines)
        out += (l.key.isEmpty() ? l.text : userLine(m_users.value(l.key))) + QLatin1Char('\n');
    return out.toUtf8();
}

QByteArray Accounts::serializeAliases() const {
    QString out;
    if (m_aliasLines.isEmpty() || !m_aliasLines.first().key.isEmpty())
        out += QLatin1String(kAliasesHeader) + QLatin1Char('\n');
    for (const Line& l : m_aliasLines) {
        if (l.key.isEmpty())
            out += l.text;
        else
            out += l.key + QLatin1Char(' ') + m_aliases.value(l.key).join(QStringLiteral(", "));
        out += QLatin1Char('\n');
    }
    return out.toUtf8();
}

QStringList Accounts::domains() const {
    return m_domains;
}
bool Accounts::isLocalDomain(const QString& domain) const {
    return m_domains.contains(domain.toLower());
}

QList<UserRecord> Accounts::users(const QString& domain) const {
    QList<UserRecord> out;
    for (const Line& l : m_userLines) {
        if (l.key.isEmpty()) continue;
        if (!domain.isEmpty() && !l.key.endsWith(QLatin1Char('@') + domain)) continue;
        out << m_users.value(l.key);
    }
    return out;
}

const UserRecord* Accounts::user(const QString& address) const {
    auto it = m_users.constFind(address);
    return it == m_users.cend() ? nullptr : &*it;
}

QList<std::pair<QString, QStringList>> Accounts::aliases(const QString& domain) const {
    QList<std::pair<QString, QStringList>> out;
    for (const Line& l : m_aliasLines) {
        if (l.key.isEmpty()) continue;
        if (!domain.isEmpty() && !l.key.endsWith(QLatin1Char('@') + domain)) continue;
        out.append({l.key, m_aliases.value(l.key)});
    }
    return out;
}

QStringList Accounts::aliasTargets(const QString& source) const {
    return m_aliases.value(source);
}

void Accounts::expand(const QString& address, const QString& delimiters, QStringList& path, Resolution& out,
                      int depth) const {
    if (out.status != Resolution::Status::Ok) return;
    if (depth > kMaxAliasDepth) {
        out.status = Resolution::Status::TooDeep;
        out.detail = pathOf(path + QStringList{address});
        return;
    }
    if (path.contains(address)) {
        out.status = Resolution::Status::Loop;
        out.detail = pathOf(path + QStringList{address});
        return;
    }
    const qsizetype at = address.lastIndexOf(QLatin1Char('@'));
    const QString local = address.left(at);
    const QString domain = address.mid(at + 1);
    if (!isLocalDomain(domain)) {
        if (!out.forwards.contains(address)) out.forwards << address;
        return;
    }
    path << address;
    auto follow = [&](const QString& source, const QString& localPart) {
        for (const QString& t : m_aliases.value(source)) {
            QString target = t;
            if (target.startsWith(QLatin1Char('@'))) target = localPart + target;  // @domain keeps the local part
            if (target == address || target == source) {                           // "deliver here too"
                if (m_users.contains(target)) {
                    if (!out.mailboxes.contains(target)) out.mailboxes << target;
                } else {
                    out.status = Resolution::Status::Invalid;
                    out.detail = QStringLiteral("%1 points to itself but is not a user").arg(target);
                }
                continue;
            }
            expand(target, delimiters, path, out, depth + 1);
            if (out.status != Resolution::Status::Ok) return;
        }
    };
    auto deliverLocal = [&](const QString& mailbox) {
        if (!out.mailboxes.contains(mailbox)) out.mailboxes << mailbox;
    };
    bool matched = true;
    if (m_aliases.contains(address)) {
        follow(address, local);
    } else if (m_users.contains(address)) {
        deliverLocal(address);
    } else {
        matched = false;
        const auto [base, detail] = splitDetail(local, delimiters);
        if (!detail.isEmpty() || base != local) {
            const QString baseAddr = base + QLatin1Char('@') + domain;
            if (m_aliases.contains(baseAddr)) {
                follow(baseAddr, base);
                matched = true;
            } else if (m_users.contains(baseAddr)) {
                deliverLocal(baseAddr);
                matched = true;
            }
        }
        if (!matched && m_aliases.contains(QLatin1Char('@') + domain)) {
            follow(QLatin1Char('@') + domain, local);
            matched = true;
        }
    }
    path.removeLast();
    if (!matched && out.status == Resolution::Status::Ok) {
        if (depth == 0) {
            out.status = Resolution::Status::Unknown;
        } else {
            out.status = Resolution::Status::Invalid;  // an alias points at nobody
            out.detail = QStringLiteral("alias target %1 is neither a user nor an alias").arg(address);
        }
    }
}

Resolution Accounts::resolve(const QString& addressIn, const QString& delimiters) const {
    Resolution r;
    auto norm = normalizeAddress(addressIn);
    if (!norm) {
        r.status = Resolution::Status::Invalid;
        r.detail = norm.errorMessage();
        return r;
    }
    const QString address = *norm;
    const QString domain = address.mid(address.lastIndexOf(QLatin1Char('@')) + 1);
    if (!isLocalDomain(domain)) {
        r.status = Resolution::Status::NotLocal;
        r.forwards << address;
        return r;
    }
    r.status = Resolution::Status::Ok;
    QStringList path;
    expand(address, delimiters, path, r, 0);
    if (r.status == Resolution::Status::Ok && r.mailboxes.isEmpty() && r.forwards.isEmpty())
        r.status = Resolution::Status::Unknown;
    return r;
}

bool Accounts::maySendAs(const QString& user, const QString& fromIn, const QString& delimiters) const {
    auto norm = normalizeAddress(fromIn);
    if (!norm) return false;
    const QString from = *norm;
    if (from == user) return true;
    const qsizetype at = from.lastIndexOf(QLatin1Char('@'));
    const auto [base, detail] = splitDetail(from.left(at), delimiters);
    const QString baseAddr = base + from.mid(at);
    if (baseAddr == user) return true;
    for (const QString& candidate : {from, baseAddr}) {
        if (!m_aliases.contains(candidate)) continue;  // only explicit aliases, never a catch-all
        Resolution r = resolve(candidate, delimiters);
        if (r.ok() && r.mailboxes.contains(user)) return true;
    }
    return false;
}

Status Accounts::checkLoops() const {
    for (auto it = m_aliases.cbegin(); it != m_aliases.cend(); ++it) {
        if (it.key().startsWith(QLatin1Char('@'))) continue;  // a catch-all is checked through its users
        Resolution r = resolve(it.key());
        if (r.status == Resolution::Status::Loop) return Status::fail(QStringLiteral("alias loop: %1").arg(r.detail));
        if (r.status == Resolution::Status::TooDeep)
            return Status::fail(QStringLiteral("aliases nest deeper than %1: %2").arg(kMaxAliasDepth).arg(r.detail));
    }
    return {};
}

Status Accounts::addDomain(const QString& domainIn) {
    auto d = normalizeDomain(domainIn);
    if (!d) return d.error();
    if (m_domains.contains(*d)) return Status::fail(QStringLiteral("domain %1 already exists").arg(*d));
    m_domains << *d;
    m_domainLines.append({*d, {}});
    return {};
}

Status Accounts::removeDomain(const QString& domainIn, bool force) {
    auto d = normalizeDomain(domainIn);
    if (!d) return d.error();
    if (!m_domains.contains(*d)) return Status::fail(QStringLiteral("unknown domain %1").arg(*d));
    const auto us = users(*d);
    const auto as = aliases(*d);
    if ((!us.isEmpty() || !as.isEmpty()) && !force)
        return Status::fail(
            QStringLiteral("domain %1 still has %2 user(s) and %3 alias(es); remove them first or use --force")
                .arg(*d)
                .arg(us.size())
                .arg(as.size()));
    for (const auto& u : us) {
        m_credentials.removeUser(u.address);
        m_users.remove(u.address);
        m_userLines.removeIf([&](const Line& l) { return l.key == u.address; });
    }
    for (const auto& alias : as) {
        const QString src = alias.first;
        m_aliases.remove(src);
        m_aliasLines.removeIf([&](const Line& l) { return l.key == src; });
    }
    m_domains.removeAll(*d);
    m_domainLines.removeIf([&](const Line& l) { return l.key == *d; });
    return {};
}

Status Accounts::addUser(const QString& addressIn, const QString& passwordHash, qint64 quotaBytes) {
    auto a = normalizeAddress(addressIn);
    if (!a) return a.error();
    const QString domain = a->mid(a->lastIndexOf(QLatin1Char('@')) + 1);
    if (!isLocalDomain(domain))
        return Status::fail(QStringLiteral("unknown domain %1 (add it first: posternctl domain add %1)").arg(domain));
    if (m_users.contains(*a)) return Status::fail(QStringLiteral("user %1 already exists").arg(*a));
    if (quotaBytes < 0) return Status::fail(QStringLiteral("quota cannot be negative"));
    UserRecord u;
    u.address = *a;
    u.passwordHash = passwordHash;
    u.quotaBytes = quotaBytes;
    m_users.insert(u.address, u);
    m_userLines.append({u.address, {}});
    return {};
}

Status Accounts::removeUser(const QString& addressIn, bool force) {
    auto a = normalizeAddress(addressIn);
    if (!a) return a.error();
    if (!m_users.contains(*a)) return Status::fail(QStringLiteral("unknown user %1").arg(*a));
    // Refuse to leave an alias (postmaster@, abuse@, ...) pointing at nobody.
    QStringList orphaned;
    for (auto it = m_aliases.cbegin(); it != m_aliases.cend(); ++it)
        if (it.value() == QStringList{*a}) orphaned << it.key();
    if (!orphaned.isEmpty() && !force)
        return Status::fail(
            QStringLiteral("%1 is the only target of %2; point those aliases elsewhere first or use --force")
                .arg(*a, orphaned.join(QStringLiteral(", "))));
    m_users.remove(*a);
    m_credentials.removeUser(*a);
    m_userLines.removeIf([&](const Line& l) { return l.key == *a; });
    for (auto it = m_aliases.begin(); it != m_aliases.end(); ++it) it.value().removeAll(*a);
    for (const QString& src : orphaned) {
        m_aliases.remove(src);
        m_aliasLines.removeIf([&](const Line& l) { return l.key == src; });
    }
    return {};
}

Status Accounts::setPasswordHash(const QString& addressIn, const QString& passwordHash) {
    auto a = normalizeAddress(addressIn);
    if (!a) return a.error();
    auto it = m_users.find(*a);
    if (it == m_users.end()) return Status::fail(QStringLiteral("unknown user %1").arg(*a));
    it->passwordHash = passwordHash;
    return {};
}

Status Accounts::setQuota(const QString& addressIn, qint64 quotaBytes) {
    auto a = normalizeAddress(addressIn);
    if (!a) return a.error();
    auto it = m_users.find(*a);
    if (it == m_users.end()) return Status::fail(QStringLiteral("unknown user %1").arg(*a));
    if (quotaBytes < 0) return Status::fail(QStringLiteral("quota cannot be negative"));
    it->quotaBytes = quotaBytes;
    return {};
}

Status Accounts::setAdmin(const QString& addressIn, bool admin) {
    auto a = normalizeAddress(addressIn);
    if (!a) return a.error();
    auto it = m_users.find(*a);
    if (it == m_users.end()) return Status::fail(QStringLiteral("unknown user %1").arg(*a));
    it->admin = admin;
    return {};
}

Status Accounts::setDisabled(const QString& addressIn, bool disabled) {
    auto a = normalizeAddress(addressIn);
    if (!a) return a.error();
    auto it = m_users.find(*a);
    if (it == m_users.end()) return Status::fail(QStringLiteral("unknown user %1").arg(*a));
    if (disabled && it->admin && !it->disabled) {
        // Someone must still be able to log in to the panel and enable accounts again.
        const bool otherAdmin = std::any_of(m_users.cbegin(), m_users.cend(), [&](const UserRecord& u) {
            return u.admin && !u.disabled && u.address != *a;
        });
        if (!otherAdmin)
            return Status::fail(
                QStringLiteral("%1 is the last enabled administrator; make another user an administrator first")
                    .arg(*a));
    }
    it->disabled = disabled;
    return {};
}

Status Accounts::addAlias(const QString& sourceIn, const QStringList& targetsIn) {
    auto src = normalizeSource(sourceIn);
    if (!src) return src.error();
    const QString domain = src->mid(src->lastIndexOf(QLatin1Char('@')) + 1);
    if (!isLocalDomain(domain))
        return Status::fail(
            QStringLiteral("unknown domain %1 (aliases are for local domains; add it first)").arg(domain));
    if (targetsIn.isEmpty()) return Status::fail(QStringLiteral("alias %1 needs at least one target").arg(*src));
    QStringList targets;
    for (const QString& t : targetsIn) {
        auto nt = normalizeTarget(t);
        if (!nt) return nt.error();
        if (nt->startsWith(QLatin1Char('@')) && !src->startsWith(QLatin1Char('@')))
            return Status::fail(
                QStringLiteral("target %1 (a whole domain) only makes sense for a catch-all source @domain").arg(*nt));
        if (!targets.contains(*nt)) targets << *nt;
    }
    Accounts before = *this;
    const bool existed = m_aliases.contains(*src);
    QStringList& list = m_aliases[*src];
    for (const QString& t : targets)
        if (!list.contains(t)) list << t;
    if (!existed) m_aliasLines.append({*src, {}});
    // Every local target must exist (as a user or an alias), or mail would bounce later.
    for (const QString& t : targets) {
        if (t.startsWith(QLatin1Char('@')) || t == *src) continue;
        Resolution r = resolve(t);
        if (r.status == Resolution::Status::Unknown || r.status == Resolution::Status::Invalid) {
            *this = before;
            return Status::fail(QStringLiteral("target %1 is not a user or alias here").arg(t));
        }
    }
    if (auto st = checkLoops(); !st) {
        *this = before;
        return st;
    }
    return {};
}

Status Accounts::removeAlias(const QString& sourceIn, const QString& targetIn) {
    auto src = normalizeSource(sourceIn);
    if (!src) return src.error();
    if (!m_aliases.contains(*src)) return Status::fail(QStringLiteral("unknown alias %1").arg(*src));
    if (targetIn.isEmpty()) {
        m_aliases.remove(*src);
        m_aliasLines.removeIf([&](const Line& l) { return l.key == *src; });
        return {};
    }
    auto t = normalizeTarget(targetIn);
    if (!t) return t.error();
    QStringList& list = m_aliases[*src];
    if (!list.removeOne(*t)) return Status::fail(QStringLiteral("alias %1 has no target %2").arg(*src, *t));
    if (list.isEmpty()) {
        m_aliases.remove(*src);
        m_aliasLines.removeIf([&](const Line& l) { return l.key == *src; });
    }
    return {};
}

QStringList Accounts::ensureRoleAliases(const QString& domain, const QString& admin) {
    QStringList added;
    for (const char* role : {"postmaster", "abuse"}) {
        const QString src = QLatin1String(role) + QLatin1Char('@') + domain;
        if (m_aliases.contains(src) || m_users.contains(src)) continue;
        if (addAlias(src, {admin}).ok()) added << src;
    }
    return added;
}

Status Accounts::setCredentials(AccountCredentials c) {
    c.keepOnly(m_users.keys());
    m_credentials = std::move(c);
    return {};
}

// ---------------------------------------------------------------- AccountStore

AccountStore::AccountStore(QString configDir) : m_dir(QDir(configDir).absolutePath()) {}
QString AccountStore::domainsPath() const {
    return m_dir + QLatin1Char('/') + QLatin1String(kDomainsFile);
}
QString AccountStore::usersPath() const {
    return m_dir + QLatin1Char('/') + QLatin1String(kUsersFile);
}
QString AccountStore::aliasesPath() const {
    return m_dir + QLatin1Char('/') + QLatin1String(kAliasesFile);
}
QString AccountStore::credentialsPath() const {
    return m_dir + QLatin1Char('/') + QLatin1String(kCredentialsFile);
}
QString AccountStore::totpSecretsPath() const {
    return m_dir + QLatin1Char('/') + QLatin1String(kTotpSecretsFile);
}

namespace {
Result<QByteArray> readOptional(const QString& path) {
    if (!QFileInfo::exists(path)) return QByteArray();
    return readFile(path, kMaxAccountFileBytes);
}
}  // namespace

Result<Accounts> AccountStore::load() const {
    auto d = readOptional(domainsPath());
    if (!d) return d.error();
    auto u = readOptional(usersPath());
    if (!u) return u.error();
    auto a = readOptional(aliasesPath());
    if (!a) return a.error();
    auto c = readOptional(credentialsPath());
    if (!c) return c.error();
    auto parsed = Accounts::parse(*d, *u, *a, m_dir);
    if (!parsed) return parsed;
    auto creds = AccountCredentials::parse(*c, credentialsPath());
    if (!creds) return creds.error();
    if (auto st = parsed->setCredentials(std::move(*creds)); !st) return st.error();
    return parsed;
}

Status AccountStore::modify(const std::function<Status(Accounts&)>& change) {
    return modifyImpl([&](Accounts& accounts, TotpSecrets&) { return change(accounts); });
}

Status AccountStore::modifyWithSecrets(const std::function<Status(Accounts&, TotpSecrets&)>& change) {
    return modifyImpl(change);
}

Status AccountStore::modifyImpl(const std::function<Status(Accounts&, TotpSecrets&)>& change) {
    if (auto st = ensureDirectory(m_dir, 0755); !st) return st;
    auto lock = FileLock::acquire(m_dir + QLatin1Char('/') + QLatin1String(kLockFile));
    if (!lock) return lock.error();
    for (int attempt = 0; attempt < 5; ++attempt) {
        const FileStamp sd = FileStamp::of(domainsPath()), su = FileStamp::of(usersPath()),
                        sa = FileStamp::of(aliasesPath());
        const FileStamp sc = FileStamp::of(credentialsPath()), ss = FileStamp::of(totpSecretsPath());
        auto loaded = load();
        if (!loaded) return loaded.error();
        Accounts accounts = std::move(*loaded);
        // The secrets are read only by their owner's tools (never by the daemons' load()).
        auto secretBytes =
            ss.exists ? readFile(totpSecretsPath(), kMaxAccountFileBytes) : Result<QByteArray>(QByteArray());
        if (!secretBytes) return secretBytes.error();
        auto secretsRead = TotpSecrets::parse(*secretBytes, totpSecretsPath());
        if (!secretsRead) return secretsRead.error();
        TotpSecrets secrets = *secretsRead;
        if (auto st = change(accounts, secrets); !st) return st;
        // A user removed by this change (or by hand) takes their secret along.
        QList<QString> userNames;
        for (const UserRecord& u : accounts.users()) userNames << u.address;
        secrets.keepOnly(userNames);
        // A hand edit (which takes no lock) may have replaced a file since we read it.
        if (FileStamp::of(domainsPath()) != sd || FileStamp::of(usersPath()) != su ||
            FileStamp::of(aliasesPath()) != sa || FileStamp::of(credentialsPath()) != sc ||
            FileStamp::of(totpSecretsPath()) != ss)
            continue;
        const QByteArray newDomains = accounts.serializeDomains();
        const QByteArray newUsers = accounts.serializeUsers();
        const QByteArray newAliases = accounts.serializeAliases();
        const QByteArray newCredentials = accounts.credentials().serialize();
        // Domains first, aliases last: a reader never sees a user or alias of an unknown domain.
        if (newDomains != readOptional(domainsPath()).valueOr({}) || !sd.exists)
            if (auto st = writeFileAtomic(domainsPath(), newDomains, 0644); !st) return st;
        if (newUsers != readOptional(usersPath()).valueOr({}) || !su.exists)
            if (auto st = writeFileAtomic(usersPath(), newUsers, 0640); !st) return st;
        if (newAliases != readOptional(aliasesPath()).valueOr({}) || !sa.exists)
            if (auto st = writeFileAtomic(aliasesPath(), newAliases, 0644); !st) return st;
        // Written only once there is something to say: an installation that never used
        // two-factor keeps exactly the files it had.
        if (sc.exists ? newCredentials != readOptional(credentialsPath()).valueOr({})
                      : accounts.credentials().serialize() != AccountCredentials().serialize()) {
            if (auto st = writeFileAtomic(credentialsPath(), newCredentials, 0640); !st) return st;
            // New file: the daemons read it through the group of `users` (root:<daemon group>, 0640).
            struct stat us {};
            if (!sc.exists && ::stat(QFile::encodeName(usersPath()).constData(), &us) == 0 &&
                ::chown(QFile::encodeName(credentialsPath()).constData(), us.st_uid, us.st_gid) != 0)
                return Status::fail(
                    QStringLiteral("%1: cannot give it the owner of %2").arg(credentialsPath(), usersPath()));
        }
        if (!(secrets == *secretsRead))
            if (auto st = writeFileAtomic(totpSecretsPath(), secrets.serialize(), 0600); !st) return st;
        return {};
    }
    return Status::fail(QStringLiteral("account files kept changing while being edited; try again"));
}

std::shared_ptr<const Accounts> AccountStore::current(Freshness freshness, QString* error) {
    QMutexLocker lock(&m_mutex);
    // Monotonic: a wall clock stepped back must not stop the reloads for as long.
    const qint64 now = m_clock ? m_clock() : QDeadlineTimer::current().deadline();
    if (m_snapshot && freshness == Freshness::Cached && now - m_lastCheckMs < 1000) return m_snapshot;
    m_lastCheckMs = now;
    QList<qint64> stamps;
    for (const QString& p : {domainsPath(), usersPath(), aliasesPath(), credentialsPath()}) {
        const FileStamp s = FileStamp::of(p);
        stamps << s.mtimeNs << qint64(s.inode) << qint64(s.size);
    }
    if (m_snapshot && stamps == m_stamps) return m_snapshot;
    auto loaded = load();
    if (!loaded) {
        if (error) *error = loaded.errorMessage();
        if (stamps != m_stamps) log::error(u"accounts.load_failed", log::Fields().add("error", loaded.errorMessage()));
        m_stamps = stamps;  // report once per change of the files
        if (!m_snapshot) m_snapshot = std::make_shared<const Accounts>();
        return m_snapshot;
    }
    m_stamps = stamps;
    m_snapshot = std::make_shared<const Accounts>(std::move(*loaded));
    return m_snapshot;
}

}  // namespace postern
