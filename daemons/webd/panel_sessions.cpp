// panel_sessions.cpp — see panel_sessions.h.
#include "panel_sessions.h"

#include <openssl/crypto.h>
#include <QCryptographicHash>
#include <QRandomGenerator>

namespace postern::web {

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

void PanelSessions::dropOldest(const QString& user) {
    auto oldest = m_sessions.end();
    int mine = 0;
    for (auto it = m_sessions.begin(); it != m_sessions.end(); ++it) {
        if (!user.isEmpty() && it->user != user) continue;
        ++mine;
        if (oldest == m_sessions.end() || it->lastUsedMs < oldest->lastUsedMs) oldest = it;
    }
    if (oldest == m_sessions.end()) return;
    if (user.isEmpty() ? m_sessions.size() >= kMaxSessions : mine >= kMaxSessionsPerUser) m_sessions.erase(oldest);
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
    return id;
}

PanelSession* PanelSessions::find(const QByteArray& id, qint64 nowMs) {
    if (!wellFormed(id)) return nullptr;
    auto it = m_sessions.find(key(id));
    if (it == m_sessions.end()) return nullptr;
    // Expired: idle for kIdleMs or more, or kAbsoluteMs or more since the login.
    if (nowMs - it->lastUsedMs >= kIdleMs || nowMs - it->createdMs >= kAbsoluteMs) {
        m_sessions.erase(it);
        return nullptr;
    }
    it->lastUsedMs = nowMs;
    return &*it;
}

void PanelSessions::remove(const QByteArray& id) {
    if (wellFormed(id)) m_sessions.remove(key(id));
}

void PanelSessions::removeUser(const QString& user) {
    m_sessions.removeIf([&](const auto& it) { return it.value().user == user; });
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
