// input_budget.h — how many bytes of client input one process holds, against
// one limit for the whole process.
//
// Each connection already has its own bounds (Connection::Options::
// maxBufferedInput for unread socket data, the protocol's command and literal
// limits for what a session assembles). Those bound one client; a thousand
// clients each sitting just under their bounds still add up. The budget is the
// second, process-wide bound: every connection's unread input and every IMAP
// command being assembled (lines and announced literals) is counted here.
//
// Interface:
//   InputBudget::process()   the instance of this process (limit set by the daemon
//                            from its configuration; unlimited until then).
//   tryReserve(n)            counts n bytes when they fit under the limit; false
//                            (nothing counted) otherwise. Callers refuse the input
//                            (IMAP: NO [LIMIT] before the "+") or stop reading
//                            (TCP pushes back), never grow past the limit.
//   reserve(n)               counts n bytes even past the limit: for the small
//                            amounts every connection must be able to hold to make
//                            progress (one read chunk, a command line, a password).
//   release(n)               gives bytes back.
//   Lease                    a holder's share, moved with it and released when it
//                            dies: setTo(n) (forced), tryGrowTo(n) (within the limit).
//
// Security: the counts are of attacker-chosen sizes; every comparison is written
// so that it cannot overflow (n > limit - used, never used + n > limit).
// Limits: the limit itself (imap.max_buffered_input for postern-imapd).
// Threads: the daemons use it from their event-loop thread; the counter is atomic
// anyway so that a worker thread releasing a lease cannot corrupt it.
#pragma once

#include <QtGlobal>
#include <atomic>
#include <limits>

namespace postern {

class InputBudget {
public:
    static constexpr qint64 kUnlimited = std::numeric_limits<qint64>::max();

    explicit InputBudget(qint64 limit = kUnlimited) : m_limit(limit) {}
    InputBudget(const InputBudget&) = delete;
    InputBudget& operator=(const InputBudget&) = delete;

    static InputBudget& process();

    void setLimit(qint64 bytes) { m_limit.store(bytes > 0 ? bytes : kUnlimited); }
    qint64 limit() const { return m_limit.load(); }
    qint64 used() const { return m_used.load(); }
    // Bytes that still fit (0 when the limit is reached or passed).
    qint64 available() const;
    bool tryReserve(qint64 bytes);
    void reserve(qint64 bytes);
    void release(qint64 bytes);

    class Lease {
    public:
        Lease() = default;
        explicit Lease(InputBudget* budget) : m_budget(budget) {}
        Lease(Lease&& other) noexcept : m_budget(other.m_budget), m_held(other.m_held) { other.m_held = 0; }
        Lease& operator=(Lease&& other) noexcept;
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        ~Lease() { setTo(0); }

        InputBudget* budget() const { return m_budget; }
        qint64 held() const { return m_held; }
        // Hold exactly `bytes` (growing even past the limit, or giving back).
        void setTo(qint64 bytes);
        // Hold `bytes` if the growth fits under the limit; false (unchanged) otherwise.
        bool tryGrowTo(qint64 bytes);

    private:
        InputBudget* m_budget = nullptr;
        qint64 m_held = 0;
    };

private:
    std::atomic<qint64> m_limit;
    std::atomic<qint64> m_used{0};
};

}  // namespace postern
