// panel_pending.cpp — see panel_pending.h.
#include "panel_pending.h"

#include "panel_sessions.h"

#include <QCryptographicHash>

namespace postern::web {

namespace {
QByteArray key(const QByteArray& id) {
    return QCryptographicHash::hash(id, QCryptographicHash::Sha256);
}
}  // namespace

void PendingLogins::dropOldest(const QString& user) {
    auto oldest = m_pending.end();
    int mine = 0;
    for (auto it = m_pending.begin(); it != m_pending.end(); ++it) {
        if (!user.isEmpty() && it->user != user) continue;
        ++mine;
        if (oldest == m_pending.end() || it->createdMs < oldest->createdMs) oldest = it;
    }
    if (oldest == m_pending.end()) return;
    if (user.isEmpty() ? m_pending.size() >= kMaxPendingLogins : mine >= kMaxPendingPerUser) m_pending.erase(oldest);
}

QByteArray PendingLogins::create(const QString& user, qint64 nowMs) {
    dropOldest(user);
    dropOldest({});
    const QByteArray id = PanelSessions::randomToken();
    PendingLogin p;
    p.user = user;
    p.csrf = PanelSessions::randomToken();
    p.createdMs = nowMs;
    m_pending.insert(key(id), p);
    return id;
}

PendingLogin* PendingLogins::live(const QByteArray& id, qint64 nowMs) {
    if (!PanelSessions::wellFormed(id)) return nullptr;
    auto it = m_pending.find(key(id));
    if (it == m_pending.end()) return nullptr;
    if (nowMs - it->createdMs >= kPendingLoginMs || nowMs < it->createdMs) {  // expired (or the clock went back)
        m_pending.erase(it);
        return nullptr;
    }
    return &*it;
}

const PendingLogin* PendingLogins::find(const QByteArray& id, qint64 nowMs) {
    return live(id, nowMs);
}

std::optional<PendingLogin> PendingLogins::claim(const QByteArray& id, qint64 nowMs) {
    PendingLogin* p = live(id, nowMs);
    if (!p || p->checking) return std::nullopt;
    p->checking = true;
    return *p;
}

void PendingLogins::settle(const QByteArray& id, bool success) {
    if (!PanelSessions::wellFormed(id)) return;
    auto it = m_pending.find(key(id));
    if (it == m_pending.end()) return;
    if (success || ++it->failures >= kMaxCodeFailures) {
        m_pending.erase(it);
        return;
    }
    it->checking = false;
}

void PendingLogins::release(const QByteArray& id) {
    if (!PanelSessions::wellFormed(id)) return;
    auto it = m_pending.find(key(id));
    if (it != m_pending.end()) it->checking = false;
}

void PendingLogins::remove(const QByteArray& id) {
    if (PanelSessions::wellFormed(id)) m_pending.remove(key(id));
}

}  // namespace postern::web
