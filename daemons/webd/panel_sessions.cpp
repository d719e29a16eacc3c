// panel_sessions.cpp — see panel_sessions.h.
#include "panel_sessions.h"

#include "core/atomic_file.h"
#include "core/log.h"

#include <openssl/crypto.h>
#include <QCryptographicHash>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QRandomGenerator>
#include <cmath>

namespace postern::web {

namespace {
// A time in ms since the epoch from the session file: a whole number in [0, 2^53] (what a
// double holds exactly), else -1 (the entry is then malformed). Never a cast of an
// out-of-range double, which C++ leaves undefined.
qint64 msField(const QJsonObject& o, const QString& key) {
    const QJsonValue v = o.value(key);
    if (!v.isDouble()) return -1;
    const double d = v.toDouble();
    if (!(d >= 0 && d <= 9007199254740992.0) || d != std::floor(d)) return -1;
    return qint64(d);
}
}  // namespace

QByteArray PanelSessions::randomToken() {
    quint32 words[kSessionIdBytes / 4];
    QRandomGenerator::system()->fillRange(words);
    return QByteArray(reinterpret_cast<const char*>(words), sizeof(words)).toHex();
}

bool PanelSessions::wellFormed(const QByteArray& token) {
    if (token.size() != 2 * kSessionIdBytes) return false;
    for (char c : token)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

bool PanelSessions::tokenEqual(const QByteArray& a, const QByteArray& b) {
    if (a.size() != b.size() || a.isEmpty()) return false;
    return CRYPTO_memcmp(a.constData(), b.constData(), size_t(a.size())) == 0;
}

QByteArray PanelSessions::key(const QByteArray& id) {
    return QCryptographicHash::hash(id, QCryptographicHash::Sha256);
}

bool PanelSessions::dropOldest(const QString& user) {
    auto oldest = m_sessions.end();
    int mine = 0;
    for (auto it = m_sessions.begin(); it != m_sessions.end(); ++it) {
        if (!user.isEmpty() && it->user != user) continue;
        ++mine;
        if (oldest == m_sessions.end() || it->lastUsedMs < oldest->lastUsedMs) oldest = it;
    }
    if (oldest == m_sessions.end()) return false;
    if (user.isEmpty() ? m_sessions.size() >= kMaxSessions : mine >= kMaxSessionsPerUser) {
        m_sessions.erase(oldest);
        return true;
    }
    return false;
}

QByteArray PanelSessions::create(const QString& user, qint64 nowMs) {
    dropOldest(user);
    dropOldest({});
    const QByteArray id = randomToken();
    PanelSession s;
    s.user = user;
    s.csrf = randomToken();
    s.createdMs = nowMs;
    s.lastUsedMs = nowMs;
    m_sessions.insert(key(id), s);
    save();
    return id;
}

PanelSession* PanelSessions::find(const QByteArray& id, qint64 nowMs) {
    if (!wellFormed(id)) return nullptr;
    const QByteArray k = key(id);
    auto it = m_sessions.find(k);
    if (it == m_sessions.end()) return nullptr;
    // Expired: idle for kIdleMs or more, or kAbsoluteMs or more since the login.
    if (nowMs - it->lastUsedMs >= kIdleMs || nowMs - it->createdMs >= kAbsoluteMs) {
        m_sessions.erase(it);
        save();
        return nullptr;
    }
    it->lastUsedMs = nowMs;
    if (!m_path.isEmpty() && nowMs - m_savedLastUsed.value(k, 0) >= kPersistTouchMs) save();  // map unchanged
    return &*it;
}

void PanelSessions::remove(const QByteArray& id) {
    if (wellFormed(id) && m_sessions.remove(key(id))) save();
}

void PanelSessions::removeUser(const QString& user) {
    if (m_sessions.removeIf([&](const auto& it) { return it.value().user == user; }) > 0) save();
}

void PanelSessions::persistTo(const QString& path, qint64 nowMs) {
    m_path = path;
    m_sessions.clear();
    m_savedLastUsed.clear();
    if (!QFileInfo::exists(path)) return;
    const auto corrupt = [&](const QString& why) {
        m_sessions.clear();
        log::warn(u"panel.sessions_corrupt", log::Fields().add("file", path).add("error", why));
    };
    auto bytes = readFile(path, kMaxSessionFileBytes);
    if (!bytes) return corrupt(bytes.errorMessage());
    QJsonParseError err{};
    const QJsonDocument doc = QJsonDocument::fromJson(*bytes, &err);
    if (err.error != QJsonParseError::NoError || !doc.isObject()) return corrupt(QStringLiteral("not a JSON object"));
    const QJsonObject root = doc.object();
    if (root.value(QStringLiteral("version")).toInt(-1) != 1) return corrupt(QStringLiteral("unknown version"));
    const QJsonArray list = root.value(QStringLiteral("sessions")).toArray();
    if (list.size() > kMaxSessions) return corrupt(QStringLiteral("more than %1 sessions").arg(kMaxSessions));
    QHash<QString, int> perUser;
    for (const QJsonValue& v : list) {
        const QJsonObject o = v.toObject();
        const QByteArray hashHex = o.value(QStringLiteral("id_sha256")).toString().toLatin1();
        PanelSession s;
        s.user = o.value(QStringLiteral("user")).toString();
        s.csrf = o.value(QStringLiteral("csrf")).toString().toLatin1();
        s.createdMs = msField(o, QStringLiteral("created_ms"));
        s.lastUsedMs = msField(o, QStringLiteral("last_used_ms"));
        s.mustEnrol = o.value(QStringLiteral("must_enrol")).toBool(false);
        // wellFormed(): 64 lower-case hex digits, the shape of a SHA-256 in hex too.
        if (!wellFormed(hashHex) || !wellFormed(s.csrf) || s.user.isEmpty() || s.user.size() > 320 || s.createdMs < 0 ||
            s.lastUsedMs < s.createdMs)
            return corrupt(QStringLiteral("a malformed session entry"));
        if (nowMs - s.lastUsedMs >= kIdleMs || nowMs - s.createdMs >= kAbsoluteMs) continue;  // expired
        if (s.lastUsedMs > nowMs) continue;  // from the future (a clock set back): not trusted to expire
        if (++perUser[s.user] > kMaxSessionsPerUser) continue;
        const QByteArray k = QByteArray::fromHex(hashHex);
        m_savedLastUsed.insert(k, s.lastUsedMs);
        m_sessions.insert(k, s);
    }
}

void PanelSessions::save() {
    if (m_path.isEmpty()) return;
    QJsonArray list;
    m_savedLastUsed.clear();
    for (auto it = m_sessions.cbegin(); it != m_sessions.cend(); ++it) {
        QJsonObject o;
        o.insert(QStringLiteral("id_sha256"), QString::fromLatin1(it.key().toHex()));
        o.insert(QStringLiteral("user"), it->user);
        o.insert(QStringLiteral("csrf"), QString::fromLatin1(it->csrf));
        o.insert(QStringLiteral("created_ms"), double(it->createdMs));
        o.insert(QStringLiteral("last_used_ms"), double(it->lastUsedMs));
        o.insert(QStringLiteral("must_enrol"), it->mustEnrol);
        list.append(o);
        m_savedLastUsed.insert(it.key(), it->lastUsedMs);
    }
    QJsonObject root;
    root.insert(QStringLiteral("version"), 1);
    root.insert(QStringLiteral("sessions"), list);
    const Status st = writeFileAtomic(m_path, QJsonDocument(root).toJson(QJsonDocument::Compact), 0600);
    if (!st && !m_saveFailed)
        log::warn(u"panel.sessions_not_saved", log::Fields().add("file", m_path).add("error", st.errorMessage()));
    m_saveFailed = !st;
}

QByteArray PanelSessions::cookieValue(const QByteArray& header, const QByteArray& name) {
    QByteArray found;
    bool seen = false;
    for (QByteArray pair : header.split(';')) {
        pair = pair.trimmed();
        const qsizetype eq = pair.indexOf('=');
        if (eq <= 0 || pair.left(eq) != name) continue;
        if (seen) return {};  // given twice: trust neither
        seen = true;
        found = pair.mid(eq + 1);
        if (found.size() >= 2 && found.startsWith('"') && found.endsWith('"')) found = found.mid(1, found.size() - 2);
    }
    return found;
}

QByteArray PanelSessions::setCookie(const QByteArray& name, const QByteArray& value, qint64 maxAgeSecs) {
    return name + '=' + value + "; Max-Age=" + QByteArray::number(maxAgeSecs) +
           "; Path=/; Secure; HttpOnly; SameSite=Strict";
}

}  // namespace postern::web
