// input_budget.cpp — see input_budget.h.
#include "input_budget.h"

#include <algorithm>

namespace postern {

InputBudget& InputBudget::process() {
    static InputBudget instance;
    return instance;
}

qint64 InputBudget::available() const {
    const qint64 used = m_used.load();
    const qint64 limit = m_limit.load();
    return used >= limit ? 0 : limit - used;
}

bool InputBudget::tryReserve(qint64 bytes) {
    if (bytes <= 0) return true;
    qint64 used = m_used.load();
    for (;;) {
        const qint64 limit = m_limit.load();
        if (used > limit || bytes > limit - used) return false;  // not used + bytes > limit: no overflow
        if (m_used.compare_exchange_weak(used, used + bytes)) return true;
    }
}

void InputBudget::reserve(qint64 bytes) {
    if (bytes > 0) m_used.fetch_add(bytes);
}

void InputBudget::release(qint64 bytes) {
    if (bytes <= 0) return;
    qint64 used = m_used.load();
    while (!m_used.compare_exchange_weak(used, std::max<qint64>(0, used - bytes))) {
    }
}

InputBudget::Lease& InputBudget::Lease::operator=(Lease&& other) noexcept {
    if (this != &other) {
        setTo(0);
        m_budget = other.m_budget;
        m_held = other.m_held;
        other.m_held = 0;
    }
    return *this;
}

void InputBudget::Lease::setTo(qint64 bytes) {
    bytes = std::max<qint64>(0, bytes);
    if (m_budget) {
        if (bytes > m_held)
            m_budget->reserve(bytes - m_held);
        else if (bytes < m_held)
            m_budget->release(m_held - bytes);
    }
    m_held = bytes;
}

bool InputBudget::Lease::tryGrowTo(qint64 bytes) {
    if (bytes <= m_held) {
        setTo(bytes);
        return true;
    }
    if (m_budget && !m_budget->tryReserve(bytes - m_held)) return false;
    m_held = bytes;
    return true;
}

}  // namespace postern
