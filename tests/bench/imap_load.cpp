// imap_load.cpp — postern-imap-load: an IMAP load generator for the benchmarks
// in tests/bench/ (run by hand; not part of ctest). Plain POSIX sockets and
// OpenSSL, blocking I/O, one thread per client; no Qt, so it stays small and
// cheap next to the server under test.
//
// Modes:
//   (default)     N clients log in once, then loop a mixed command set for
//                 --seconds: SELECT INBOX, UID FETCH 1:* (FLAGS), FETCH of
//                 ENVELOPE for a range, FETCH BODY.PEEK[] of one message,
//                 UID STORE +FLAGS/-FLAGS (\Seen) (restoring the old state),
//                 SEARCH UNSEEN, SEARCH SUBJECT, APPEND of a small message,
//                 UID STORE +FLAGS.SILENT (\Deleted) + UID EXPUNGE of it (so
//                 the mailbox keeps its size), LIST "" "*", STATUS INBOX.
//                 Prints commands/s in total and per command.
//   --login-only  N clients loop: connect, TLS, greeting, LOGIN, LOGOUT.
//                 Prints logins/s.
//   --realistic   N clients behave like a population of mail clients that stay
//                 logged in: a random, weighted mix of NOOP, incremental resync
//                 (UID FETCH n:* after EXISTS), FETCH of the newest 50 (UID FLAGS
//                 RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE), header fields,
//                 whole bodies (with attachments), keyword STOREs (+ and back),
//                 UID SEARCH (FROM, TEXT in bodies, SINCE, UNSEEN, KEYWORD), APPEND
//                 of real-size messages (30 % with a 20-150 KiB attachment), delete
//                 as clients do it (COPY to Trash, \Deleted, UID EXPUNGE), emptying
//                 its own copies from Trash, STATUS and LIST. Clients k and
//                 k + users share a mailbox (two sessions each when --clients is
//                 twice the users), so every session sees the others' changes.
//                 Each client keeps a model of its mailbox (sequence number -> UID,
//                 sizes, its own keyword) from the server's EXISTS/EXPUNGE/FETCH
//                 responses and checks every answer against it: sequence numbers
//                 must map to the UIDs it knows, EXISTS never below the known count,
//                 a whole body as long as its RFC822.SIZE, a STORE's FETCH carrying
//                 the keyword, APPENDUID/COPYUID present and the appended size
//                 read back. A mismatch counts as a "model check" error.
//   --idle        opens N connections (LOGIN, SELECT INBOX, IDLE), prints how
//                 steadily they were taken ("# connected ..."), then
//                 "ready <ok> <failed>", and holds them until stdin reaches EOF
//                 or SIGINT/SIGTERM arrives. A line "watch K" on stdin makes the
//                 sessions of user K wait for the next "* n EXISTS" and print
//                 "seen <count> <first> <last>" (CLOCK_MONOTONIC ns): with the
//                 time of a delivery, the latency of IDLE's notification.
//
// Responses are read as IMAP defines them: a response is a line, and a line
// ending in a literal "{n}" continues after n octets; a command is complete at
// the line that starts with its tag. Every NO/BAD, BYE or broken connection
// counts as an error and is printed (the first --show-errors of them in full).
//
// Users: --user LOGIN --password PW (repeatable in pairs) or --users FILE with
// "login password" per line; client k uses user k modulo the number of users.
//
// Usage:
//   postern-imap-load --port P [--host 127.0.0.1] [--tls|--starttls|--plain]
//       (--users FILE | --user U --password PW ...) [--clients 10]
//       [--seconds 10] [--login-only | --idle | --realistic] [--json] [--cpu-of PID ...]
//
// --cpu-of PID (repeatable; mixed and realistic modes): the CPU time (user + system, from
// /proc/<pid>/stat, children reaped meanwhile included) that PID and every
// process below it used while the clock ran, printed as server CPU ms and ms
// per 1,000 commands: a measure of the server's cost per command that does not
// depend on how much of the machine other jobs take.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dirent.h>
#include <fcntl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

enum class Security { Tls, StartTls, Plain };

struct Options {
    std::string host = "127.0.0.1";
    int port = 0;
    Security security = Security::Tls;
    int clients = 10;
    double seconds = 10;
    bool loginOnly = false;
    bool idle = false;
    bool realistic = false;
    bool json = false;
    int showErrors = 20;
    int envelopeRange = 20;
    std::vector<int> cpuOf;  // --cpu-of: server process trees whose CPU time is measured
    std::vector<std::pair<std::string, std::string>> users;
};

// ---------------------------------------------------------------------------
// Errors: counted always, printed in full up to a limit.

std::mutex g_printMutex;
std::atomic<int> g_printed{0};
int g_showErrors = 20;

void reportError(const std::string& what) {
    if (g_printed.fetch_add(1) >= g_showErrors) return;
    std::lock_guard<std::mutex> lock(g_printMutex);
    std::fprintf(stderr, "error: %s\n", what.c_str());
}

std::string opensslError() {
    std::string out;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? std::string(std::strerror(errno)) : out;
}

// ---------------------------------------------------------------------------
// One connection: a socket, maybe TLS, a read buffer, response framing.

class Conn {
public:
    Conn() = default;
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;
    ~Conn() { close(); }

    // Connect, TLS as configured, read the greeting. False with `error` set on failure.
    bool open(const Options& o, SSL_CTX* ctx, std::string& error) {
        close();
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        const std::string port = std::to_string(o.port);
        if (int rc = getaddrinfo(o.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
            error = std::string("resolve: ") + gai_strerror(rc);
            return false;
        }
        for (addrinfo* a = res; a; a = a->ai_next) {
            m_fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
            if (m_fd < 0) continue;
            if (::connect(m_fd, a->ai_addr, a->ai_addrlen) == 0) break;
            ::close(m_fd);
            m_fd = -1;
        }
        freeaddrinfo(res);
        if (m_fd < 0) {
            error = std::string("connect: ") + std::strerror(errno);
            return false;
        }
        int one = 1;
        ::setsockopt(m_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (o.security == Security::Tls && !startTls(ctx, error)) return false;
        std::string line;
        if (!readResponse(line)) {
            error = "no greeting: " + m_lastError;
            return false;
        }
        if (line.rfind("* OK", 0) != 0) {
            error = "greeting: " + firstLine(line);
            return false;
        }
        if (o.security == Security::StartTls) {
            std::string tagged;
            if (!command("S0 STARTTLS\r\n", "S0", tagged, nullptr) || !isOk(tagged, "S0")) {
                error = "STARTTLS: " + (tagged.empty() ? m_lastError : firstLine(tagged));
                return false;
            }
            if (!startTls(ctx, error)) return false;
        }
        return true;
    }

    void close() {
        if (m_ssl) {
            SSL_free(m_ssl);
            m_ssl = nullptr;
        }
        if (m_fd >= 0) {
            ::close(m_fd);
            m_fd = -1;
        }
        m_buf.clear();
        m_pos = 0;
    }

    bool isOpen() const { return m_fd >= 0; }
    const std::string& lastError() const { return m_lastError; }

    // True when a response can be read now (buffered here or in TLS, or the socket is
    // readable) or becomes readable within `ms` milliseconds.
    bool waitReadable(int ms) {
        if (m_pos < m_buf.size() || (m_ssl && SSL_pending(m_ssl) > 0)) return true;
        if (m_fd < 0) return false;
        pollfd p{m_fd, POLLIN, 0};
        return ::poll(&p, 1, ms) > 0;
    }

    bool send(std::string_view data) {
        while (!data.empty()) {
            long n;
            if (m_ssl) {
                n = SSL_write(m_ssl, data.data(), int(data.size()));
                if (n <= 0) {
                    m_lastError = "TLS write: " + opensslError();
                    return false;
                }
            } else {
                n = ::send(m_fd, data.data(), data.size(), MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) {
                    m_lastError = std::string("write: ") + std::strerror(errno);
                    return false;
                }
            }
            data.remove_prefix(size_t(n));
        }
        return true;
    }

    // One response: a line (CRLF included) and, when it announces literals, their
    // octets and the rest of the line after each of them.
    bool readResponse(std::string& out) {
        out.clear();
        for (;;) {
            if (!readLine(out)) return false;
            // "... {123}\r\n": a literal of 123 octets follows, then more of this response.
            const size_t end = out.size() - 2;  // readLine guarantees a trailing CRLF
            if (end == 0 || out[end - 1] != '}') return true;
            size_t open = out.rfind('{', end - 1);
            if (open == std::string::npos || open + 1 >= end - 1) return true;
            size_t n = 0;
            for (size_t i = open + 1; i < end - 1; ++i) {
                if (out[i] < '0' || out[i] > '9') return true;
                n = n * 10 + size_t(out[i] - '0');
                if (n > (size_t(1) << 31)) {
                    m_lastError = "literal too large";
                    return false;
                }
            }
            if (!readExactly(out, n)) return false;
        }
    }

    // Send `cmd`, read until the tagged completion for `tag` (returned in `tagged`).
    // Untagged responses are passed to `untagged` when given.
    template <typename F>
    bool command(std::string_view cmd, std::string_view tag, std::string& tagged, F&& untagged) {
        tagged.clear();
        if (!send(cmd)) return false;
        return await(tag, tagged, untagged);
    }
    bool command(std::string_view cmd, std::string_view tag, std::string& tagged, std::nullptr_t) {
        return command(cmd, tag, tagged, [](const std::string&) {});
    }

    template <typename F>
    bool await(std::string_view tag, std::string& tagged, F&& untagged) {
        std::string r;
        for (;;) {
            if (!readResponse(r)) return false;
            if (r.size() > tag.size() && r.compare(0, tag.size(), tag) == 0 && r[tag.size()] == ' ') {
                tagged.swap(r);
                return true;
            }
            if (r.rfind("* BYE", 0) == 0) {
                m_lastError = "server said " + firstLine(r);
                // The tagged answer may still follow (LOGOUT); keep reading.
            }
            untagged(r);
        }
    }

    static bool isOk(const std::string& tagged, std::string_view tag) {
        return tagged.size() >= tag.size() + 4 && tagged.compare(tag.size(), 4, " OK ") == 0;
    }
    static std::string firstLine(const std::string& s) {
        size_t e = s.find("\r\n");
        std::string l = s.substr(0, std::min(e, size_t(300)));
        return l;
    }

private:
    bool startTls(SSL_CTX* ctx, std::string& error) {
        m_ssl = SSL_new(ctx);
        if (!m_ssl || SSL_set_fd(m_ssl, m_fd) != 1) {
            error = "TLS setup: " + opensslError();
            return false;
        }
        if (SSL_connect(m_ssl) != 1) {
            error = "TLS handshake: " + opensslError();
            return false;
        }
        return true;
    }

    bool fill() {
        if (m_pos > 0 && m_pos == m_buf.size()) {
            m_buf.clear();
            m_pos = 0;
        } else if (m_pos > 65536) {
            m_buf.erase(0, m_pos);
            m_pos = 0;
        }
        char tmp[65536];
        long n;
        for (;;) {
            if (m_ssl) {
                n = SSL_read(m_ssl, tmp, int(sizeof tmp));
                if (n <= 0) {
                    int e = SSL_get_error(m_ssl, int(n));
                    m_lastError = e == SSL_ERROR_ZERO_RETURN ? std::string("connection closed by server")
                                                             : "TLS read: " + opensslError();
                    if (e == SSL_ERROR_SYSCALL && n == 0) m_lastError = "connection closed by server";
                    return false;
                }
            } else {
                n = ::recv(m_fd, tmp, sizeof tmp, 0);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) {
                    m_lastError = n == 0 ? std::string("connection closed by server")
                                         : std::string("read: ") + std::strerror(errno);
                    return false;
                }
            }
            break;
        }
        m_buf.append(tmp, size_t(n));
        return true;
    }

    // Append one line including its CRLF (a bare LF is accepted as an end too and stored as CRLF).
    bool readLine(std::string& out) {
        for (;;) {
            size_t nl = m_buf.find('\n', m_pos);
            if (nl != std::string::npos) {
                size_t end = nl;
                if (end > m_pos && m_buf[end - 1] == '\r') --end;
                out.append(m_buf, m_pos, end - m_pos);
                out += "\r\n";
                m_pos = nl + 1;
                return true;
            }
            if (m_buf.size() - m_pos > (size_t(64) << 20)) {
                m_lastError = "response line too long";
                return false;
            }
            if (!fill()) return false;
        }
    }

    bool readExactly(std::string& out, size_t n) {
        while (m_buf.size() - m_pos < n) {
            out.append(m_buf, m_pos, std::string::npos);
            n -= m_buf.size() - m_pos;
            m_pos = m_buf.size();
            if (!fill()) return false;
        }
        out.append(m_buf, m_pos, n);
        m_pos += n;
        return true;
    }

    int m_fd = -1;
    SSL* m_ssl = nullptr;
    std::string m_buf;
    size_t m_pos = 0;
    std::string m_lastError;
};

// IMAP quoted string for a login or password.
std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    return out;
}

// ---------------------------------------------------------------------------
// Statistics.

enum Kind : int {
    kSelect,
    kUidFetchFlags,
    kFetchEnvelope,
    kFetchBody,
    kStoreSeen,
    kSearchUnseen,
    kSearchSubject,
    kAppend,
    kStoreDeleted,
    kUidExpunge,
    kList,
    kStatus,
    kLogin,
    kLogout,
    kIdle,
    // --realistic
    kNoop,
    kResync,
    kFetchNewest,
    kFetchHeaderFields,
    kUidFetchBody,
    kStoreKeyword,
    kUidSearch,
    kAppendReal,
    kCopyTrash,
    kSelectTrash,
    kStatusOther,
    kModel,  // model-check failures (count only errors)
    kKinds
};

constexpr std::array<const char*, kKinds> kKindNames = {
    "SELECT INBOX",
    "UID FETCH 1:* (FLAGS)",
    "FETCH a:b (ENVELOPE)",
    "FETCH n BODY.PEEK[]",
    "UID STORE +/-FLAGS \\Seen",
    "SEARCH UNSEEN",
    "SEARCH SUBJECT",
    "APPEND",
    "UID STORE +FLAGS \\Deleted",
    "UID EXPUNGE",
    "LIST \"\" \"*\"",
    "STATUS INBOX",
    "LOGIN",
    "LOGOUT",
    "IDLE",
    "NOOP",
    "UID FETCH n:* (resync)",
    "UID FETCH newest 50 (ENVELOPE BODYSTRUCTURE)",
    "UID FETCH HEADER.FIELDS",
    "UID FETCH BODY.PEEK[]",
    "UID STORE +/-FLAGS keyword",
    "UID SEARCH",
    "APPEND (real size)",
    "UID COPY to Trash",
    "SELECT Trash (empty own)",
    "STATUS Trash",
    "model check",
};

struct Stats {
    std::array<uint64_t, kKinds> count{};
    std::array<uint64_t, kKinds> errors{};
    std::array<double, kKinds> seconds{};  // summed latency
    uint64_t connectErrors = 0;
    uint64_t reconnects = 0;

    void add(const Stats& o) {
        for (int k = 0; k < kKinds; ++k) {
            count[size_t(k)] += o.count[size_t(k)];
            errors[size_t(k)] += o.errors[size_t(k)];
            seconds[size_t(k)] += o.seconds[size_t(k)];
        }
        connectErrors += o.connectErrors;
        reconnects += o.reconnects;
    }
};

// ---------------------------------------------------------------------------
// Small parsers for what the mixed loop needs to know.

// "* 200 EXISTS" -> 200
bool parseExists(const std::string& r, long& exists) {
    if (r.rfind("* ", 0) != 0) return false;
    char* end = nullptr;
    long n = std::strtol(r.c_str() + 2, &end, 10);
    if (end == r.c_str() + 2 || std::strncmp(end, " EXISTS", 7) != 0) return false;
    exists = n;
    return true;
}

// "* 5 FETCH (UID 17 FLAGS (\Seen))" (either order) -> uid, seen
bool parseUidFlags(const std::string& r, uint32_t& uid, bool& seen) {
    size_t f = r.find(" FETCH (");
    if (r.rfind("* ", 0) != 0 || f == std::string::npos) return false;
    size_t u = r.find("UID ", f);
    if (u == std::string::npos) return false;
    uid = uint32_t(std::strtoul(r.c_str() + u + 4, nullptr, 10));
    size_t fl = r.find("FLAGS (", f);
    if (fl == std::string::npos) return false;
    size_t close = r.find(')', fl);
    seen = r.find("\\Seen", fl) < close;
    return uid != 0;
}

// "[APPENDUID 1234 567]" in a tagged OK -> 567
bool parseAppendUid(const std::string& tagged, uint32_t& uid) {
    size_t p = tagged.find("[APPENDUID ");
    if (p == std::string::npos) return false;
    const char* s = tagged.c_str() + p + 11;
    char* end = nullptr;
    std::strtoul(s, &end, 10);
    if (end == s || *end != ' ') return false;
    uid = uint32_t(std::strtoul(end + 1, nullptr, 10));
    return uid != 0;
}

// ---------------------------------------------------------------------------
// A client: one session that stays logged in and runs the mix.

class Client {
public:
    Client(const Options& o, SSL_CTX* ctx, int index)
        : m_o(o), m_ctx(ctx), m_index(index), m_rng(uint32_t(0x9e3779b9u * uint32_t(index + 1))) {
        const auto& u = o.users[size_t(index) % o.users.size()];
        m_login = u.first;
        m_password = u.second;
    }

    Stats stats;

    std::string nextTag() { return "a" + std::to_string(++m_tagCounter); }

    // Run one command and time it; `untagged` sees untagged responses. Returns
    // the tagged line in `tagged`; false when the command failed (counted, printed).
    template <typename F>
    bool run(Kind kind, const std::string& tag, const std::string& cmd, std::string& tagged, F&& untagged) {
        const auto t0 = Clock::now();
        bool ok = m_conn.command(cmd, tag, tagged, untagged);
        stats.seconds[kind] += std::chrono::duration<double>(Clock::now() - t0).count();
        return finish(kind, cmd, ok, tag, tagged);
    }
    bool run(Kind kind, const std::string& tag, const std::string& cmd, std::string& tagged) {
        return run(kind, tag, cmd, tagged, [](const std::string&) {});
    }

    bool finish(Kind kind, const std::string& cmd, bool transportOk, const std::string& tag,
                const std::string& tagged) {
        ++stats.count[kind];
        if (!transportOk) {
            ++stats.errors[kind];
            reportError("client " + std::to_string(m_index) + " (" + m_login + "): " + Conn::firstLine(cmd) + " -> " +
                        m_conn.lastError());
            m_conn.close();
            return false;
        }
        if (!Conn::isOk(tagged, tag)) {
            ++stats.errors[kind];
            reportError("client " + std::to_string(m_index) + " (" + m_login + "): " + Conn::firstLine(cmd) + " -> " +
                        Conn::firstLine(tagged));
            return false;
        }
        return true;
    }

    // retryBusy: a "NO [UNAVAILABLE]" (the server's login throttle: too many attempts in
    // flight from one address, as when every client logs in at once) is retried after a
    // short pause, as a real client would; the answer is not counted as an error then.
    bool connectAndLogin(bool retryBusy = false) {
        std::string error;
        if (!m_conn.open(m_o, m_ctx, error)) {
            ++stats.connectErrors;
            reportError("client " + std::to_string(m_index) + ": " + error);
            m_conn.close();
            return false;
        }
        for (int attempt = 0;; ++attempt) {
            std::string tag = nextTag(), tagged;
            const std::string cmd = tag + " LOGIN " + quoted(m_login) + " " + quoted(m_password) + "\r\n";
            const auto t0 = Clock::now();
            const bool transportOk = m_conn.command(cmd, tag, tagged, [](const std::string&) {});
            stats.seconds[kLogin] += std::chrono::duration<double>(Clock::now() - t0).count();
            if (retryBusy && transportOk && attempt < 50 && tagged.find(" NO [UNAVAILABLE]") != std::string::npos) {
                std::this_thread::sleep_for(std::chrono::milliseconds(20 * (attempt + 1)));
                continue;
            }
            return finish(kLogin, cmd, transportOk, tag, tagged);
        }
    }

    bool logout() {
        std::string tag = nextTag(), tagged;
        bool ok = run(kLogout, tag, tag + " LOGOUT\r\n", tagged);
        m_conn.close();
        return ok;
    }

    // One round of the mix; stops early at the deadline or on a broken connection.
    void round(Clock::time_point deadline) {
        std::string tag, tagged;
        auto more = [&] { return m_conn.isOpen() && Clock::now() < deadline; };

        long exists = -1;
        tag = nextTag();
        run(kSelect, tag, tag + " SELECT INBOX\r\n", tagged, [&](const std::string& r) { parseExists(r, exists); });
        if (!more()) return;
        if (exists <= 0) {
            reportError("client " + std::to_string(m_index) + ": SELECT INBOX reported no messages");
            return;
        }

        m_uids.clear();
        tag = nextTag();
        run(kUidFetchFlags, tag, tag + " UID FETCH 1:* (FLAGS)\r\n", tagged, [&](const std::string& r) {
            uint32_t uid;
            bool seen;
            if (parseUidFlags(r, uid, seen)) m_uids.push_back({uid, seen});
        });
        if (!more()) return;

        const long range = std::min<long>(m_o.envelopeRange, exists);
        const long first = 1 + long(m_rng() % uint32_t(exists - range + 1));
        tag = nextTag();
        run(kFetchEnvelope, tag,
            tag + " FETCH " + std::to_string(first) + ":" + std::to_string(first + range - 1) + " (ENVELOPE)\r\n",
            tagged);
        if (!more()) return;

        tag = nextTag();
        run(kFetchBody, tag,
            tag + " FETCH " + std::to_string(1 + long(m_rng() % uint32_t(exists))) + " BODY.PEEK[]\r\n", tagged);
        if (!more()) return;

        if (!m_uids.empty()) {
            // Toggle \Seen on one message and put it back as it was.
            const auto& [uid, seen] = m_uids[m_rng() % m_uids.size()];
            const std::string u = std::to_string(uid);
            const char* firstOp = seen ? "-FLAGS" : "+FLAGS";
            const char* secondOp = seen ? "+FLAGS" : "-FLAGS";
            tag = nextTag();
            run(kStoreSeen, tag, tag + " UID STORE " + u + " " + firstOp + " (\\Seen)\r\n", tagged);
            if (!more()) return;
            tag = nextTag();
            run(kStoreSeen, tag, tag + " UID STORE " + u + " " + secondOp + " (\\Seen)\r\n", tagged);
            if (!more()) return;
        }

        tag = nextTag();
        run(kSearchUnseen, tag, tag + " SEARCH UNSEEN\r\n", tagged);
        if (!more()) return;

        static const char* const words[] = {"report", "meeting", "invoice", "holiday", "release"};
        tag = nextTag();
        run(kSearchSubject, tag, tag + " SEARCH SUBJECT \"" + words[m_rng() % 5] + "\"\r\n", tagged);
        if (!more()) return;

        appendAndRemove();
        if (!more()) return;

        tag = nextTag();
        run(kList, tag, tag + " LIST \"\" \"*\"\r\n", tagged);
        if (!more()) return;

        tag = nextTag();
        run(kStatus, tag, tag + " STATUS INBOX (MESSAGES UIDNEXT UNSEEN)\r\n", tagged);
    }

    // APPEND a small message (synchronising literal), then remove exactly it again.
    bool appendAndRemove() {
        const std::string msg = smallMessage();
        std::string tag = nextTag(), tagged;
        const std::string head = tag + " APPEND INBOX (\\Seen) {" + std::to_string(msg.size()) + "}\r\n";
        const auto t0 = Clock::now();
        bool ok = m_conn.send(head);
        bool sent = false;
        if (ok) {
            // Wait for "+" (go ahead) or the tagged refusal.
            std::string r;
            for (;;) {
                if (!(ok = m_conn.readResponse(r))) break;
                if (r.rfind("+", 0) == 0) {
                    ok = m_conn.send(msg) && m_conn.send("\r\n");
                    sent = true;
                    break;
                }
                if (r.rfind(tag + " ", 0) == 0) {
                    tagged = r;
                    break;
                }
            }
            if (ok && sent) ok = m_conn.await(tag, tagged, [](const std::string&) {});
        }
        stats.seconds[kAppend] += std::chrono::duration<double>(Clock::now() - t0).count();
        if (!finish(kAppend, head, ok, tag, tagged)) return false;
        uint32_t uid = 0;
        if (!parseAppendUid(tagged, uid)) {
            ++stats.errors[kAppend];
            reportError("client " + std::to_string(m_index) +
                        ": APPEND answer without APPENDUID: " + Conn::firstLine(tagged));
            return false;
        }
        // Removed even after the deadline, so the mailbox keeps its size for the next run.
        const std::string u = std::to_string(uid);
        tag = nextTag();
        if (!run(kStoreDeleted, tag, tag + " UID STORE " + u + " +FLAGS.SILENT (\\Deleted)\r\n", tagged)) return false;
        tag = nextTag();
        return run(kUidExpunge, tag, tag + " UID EXPUNGE " + u + "\r\n", tagged);
    }

    std::string smallMessage() {
        ++m_appended;
        std::string m;
        m.reserve(1200);
        m += "From: Load Generator <load@bench.test>\r\n";
        m += "To: " + m_login + "\r\n";
        m += "Subject: appended " + std::to_string(m_index) + "-" + std::to_string(m_appended) + "\r\n";
        m += "Date: Sun, 29 Nov 2026 12:00:00 +0000\r\n";
        m += "Message-ID: <" + std::to_string(m_index) + "." + std::to_string(m_appended) + "@bench.test>\r\n";
        m += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n";
        for (int i = 0; i < 14; ++i) m += "A short line of text appended by the IMAP load generator.\r\n";
        return m;
    }

    // ----------------------------------------------------------------- --realistic

    // One value of a FETCH response, from `p` on (after the attribute name and its space).
    // Literals ("{n}" CRLF and n octets, as readResponse keeps them) are skipped by count.
    static bool skipValue(const std::string& r, size_t& p, long* literalLen = nullptr) {
        if (p >= r.size()) return false;
        auto skipLiteral = [&]() -> bool {  // at '{'
            size_t close = r.find('}', p);
            if (close == std::string::npos || close + 2 >= r.size() + 1) return false;
            const long n = std::strtol(r.c_str() + p + 1, nullptr, 10);
            if (n < 0 || close + 3 > r.size() || size_t(n) > r.size() - (close + 3)) return false;
            if (literalLen) *literalLen = n;
            p = close + 3 + size_t(n);
            return true;
        };
        auto skipQuoted = [&]() -> bool {  // at '"'
            for (++p; p < r.size(); ++p) {
                if (r[p] == '\\')
                    ++p;
                else if (r[p] == '"') {
                    ++p;
                    return true;
                }
            }
            return false;
        };
        if (r[p] == '{') return skipLiteral();
        if (r[p] == '"') return skipQuoted();
        if (r[p] == '(') {
            int depth = 0;
            while (p < r.size()) {
                const char c = r[p];
                if (c == '"') {
                    if (!skipQuoted()) return false;
                    continue;
                }
                if (c == '{') {
                    long* keep = literalLen;
                    literalLen = nullptr;
                    const bool ok = skipLiteral();
                    literalLen = keep;
                    if (!ok) return false;
                    continue;
                }
                if (c == '(') ++depth;
                if (c == ')' && --depth == 0) {
                    ++p;
                    return true;
                }
                ++p;
            }
            return false;
        }
        while (p < r.size() && r[p] != ' ' && r[p] != ')' && r[p] != '\r') ++p;
        return true;
    }

    struct FetchItem {
        uint32_t seq = 0;
        uint32_t uid = 0;
        long size = -1;
        long bodyLen = -1;
        bool hasFlags = false;
        std::string flags;  // the list's inside, space separated
    };

    // "* n FETCH (NAME value NAME value ...)", values of any shape.
    static bool parseFetch(const std::string& r, FetchItem& f) {
        if (r.rfind("* ", 0) != 0) return false;
        char* end = nullptr;
        const unsigned long seq = std::strtoul(r.c_str() + 2, &end, 10);
        if (end == r.c_str() + 2 || std::strncmp(end, " FETCH (", 8) != 0) return false;
        f = FetchItem{};
        f.seq = uint32_t(seq);
        size_t p = size_t(end - r.c_str()) + 8;
        while (p < r.size() && r[p] != ')') {
            size_t nameStart = p;
            while (p < r.size() && r[p] != ' ') {
                if (r[p] == '[') {  // BODY[HEADER.FIELDS (A B)] holds spaces
                    size_t close = r.find(']', p);
                    if (close == std::string::npos) return false;
                    p = close;
                }
                ++p;
            }
            const std::string name = r.substr(nameStart, p - nameStart);
            if (p >= r.size()) return false;
            ++p;  // the space
            const size_t valueStart = p;
            long literal = -1;
            if (!skipValue(r, p, &literal)) return false;
            if (name == "UID")
                f.uid = uint32_t(std::strtoul(r.c_str() + valueStart, nullptr, 10));
            else if (name == "RFC822.SIZE")
                f.size = std::strtol(r.c_str() + valueStart, nullptr, 10);
            else if (name == "FLAGS") {
                f.hasFlags = true;
                f.flags = r.substr(valueStart + 1, p - valueStart - 2);
            } else if (name == "BODY[]")
                f.bodyLen = literal;
            if (p < r.size() && r[p] == ' ') ++p;
        }
        return true;
    }

    static bool hasFlag(const std::string& flags, const std::string& flag) {
        size_t p = 0;
        while ((p = flags.find(flag, p)) != std::string::npos) {
            const size_t e = p + flag.size();
            if ((p == 0 || flags[p - 1] == ' ') && (e == flags.size() || flags[e] == ' ')) return true;
            p = e;
        }
        return false;
    }

    void modelError(const std::string& what) {
        ++stats.errors[kModel];
        reportError("client " + std::to_string(m_index) + " (" + m_login + "), model check: " + what);
    }
    void modelCheck(bool ok, const std::string& what) {
        ++stats.count[kModel];
        if (!ok) modelError(what);
    }

    // Every untagged response of every command goes through here: the model of the
    // selected mailbox follows EXISTS, EXPUNGE and FETCH, and checks them. m_seqs has one
    // entry per message the server announced; 0 where its UID is not known yet.
    void observe(const std::string& r) {
        if (r.rfind("* ", 0) != 0) return;
        char* end = nullptr;
        const unsigned long n = std::strtoul(r.c_str() + 2, &end, 10);
        if (end == r.c_str() + 2) return;
        if (std::strncmp(end, " EXISTS", 7) == 0) {
            const bool ok = n >= m_seqs.size();
            modelCheck(ok, ok ? std::string()
                              : "EXISTS " + std::to_string(n) + " below the " + std::to_string(m_seqs.size()) +
                                    " messages known");
            if (ok) m_seqs.resize(n, 0);
            return;
        }
        if (std::strncmp(end, " EXPUNGE", 8) == 0) {
            const bool ok = n >= 1 && n <= m_seqs.size();
            modelCheck(ok,
                       ok ? std::string() : "EXPUNGE " + std::to_string(n) + " of " + std::to_string(m_seqs.size()));
            if (!ok) return;
            m_info.erase(m_seqs[n - 1]);
            m_seqs.erase(m_seqs.begin() + long(n - 1));
            return;
        }
        FetchItem f;
        if (!parseFetch(r, f)) return;
        const bool inRange = f.seq >= 1 && f.seq <= m_seqs.size();
        modelCheck(inRange,
                   inRange ? std::string()
                           : "FETCH for message " + std::to_string(f.seq) + " of " + std::to_string(m_seqs.size()));
        if (!inRange) return;
        uint32_t& known = m_seqs[f.seq - 1];
        if (f.uid) {
            if (known) {
                modelCheck(known == f.uid,
                           known == f.uid ? std::string()
                                          : "message " + std::to_string(f.seq) + " is UID " + std::to_string(known) +
                                                " in the model, the server says " + std::to_string(f.uid));
            } else {
                // UIDs ascend with sequence numbers: check against the known neighbours.
                uint32_t below = 0, above = 0;
                for (size_t i = f.seq - 1; i-- > 0;)
                    if (m_seqs[i]) {
                        below = m_seqs[i];
                        break;
                    }
                for (size_t i = f.seq; i < m_seqs.size(); ++i)
                    if (m_seqs[i]) {
                        above = m_seqs[i];
                        break;
                    }
                const bool ok = f.uid > below && (!above || f.uid < above);
                modelCheck(ok, ok ? std::string()
                                  : "UID " + std::to_string(f.uid) + " at message " + std::to_string(f.seq) +
                                        " is not between its neighbours " + std::to_string(below) + " and " +
                                        std::to_string(above));
                known = f.uid;
            }
        }
        if (!known) return;
        MsgInfo& info = m_info[known];
        if (f.size >= 0) {
            if (info.size >= 0)
                modelCheck(info.size == f.size, "RFC822.SIZE of UID " + std::to_string(known) + " changed");
            info.size = f.size;
        }
        if (f.bodyLen >= 0 && info.size >= 0)
            modelCheck(f.bodyLen == info.size, "BODY[] of UID " + std::to_string(known) + " has " +
                                                   std::to_string(f.bodyLen) + " octets, RFC822.SIZE said " +
                                                   std::to_string(info.size));
        if (f.hasFlags) m_lastFlags[known] = f.flags;
    }

    bool cmd(Kind kind, const std::string& text) {
        std::string tag = nextTag();
        m_lastTagged.clear();
        return run(kind, tag, tag + " " + text + "\r\n", m_lastTagged, [this](const std::string& r) { observe(r); });
    }

    // SELECT a folder and learn all of it (UID, FLAGS, RFC822.SIZE), as a client with no cache does.
    bool selectAndSync(Kind kind, const std::string& folder) {
        m_seqs.clear();
        m_info.clear();
        m_selected.clear();
        if (!cmd(kind, "SELECT " + folder)) return false;
        m_selected = folder;
        if (m_seqs.empty()) return true;
        if (!cmd(kResync, "UID FETCH 1:* (UID FLAGS RFC822.SIZE)")) return false;
        return true;
    }

    // After EXISTS grew: fetch what is new, from the UID before the first unknown one on.
    bool resyncIfNeeded() {
        const auto unknown = std::find(m_seqs.begin(), m_seqs.end(), 0u);
        if (unknown == m_seqs.end()) return true;
        const uint32_t from = unknown == m_seqs.begin() ? 1 : *(unknown - 1) + 1;
        return cmd(kResync, "UID FETCH " + std::to_string(from) + ":* (UID FLAGS RFC822.SIZE)");
    }

    uint32_t randomUid() {
        for (int i = 0; i < 4 && !m_seqs.empty(); ++i)
            if (uint32_t u = m_seqs[m_rng() % m_seqs.size()]) return u;
        return 0;
    }

    std::string realMessage(bool attachment) {
        ++m_appended;
        static const char* const words[] = {"report", "meeting", "invoice", "holiday", "release", "budget", "roadmap",
                                            "lorem",  "ipsum",   "dolor",   "tempor",  "labore",  "magna"};
        std::string m;
        m += "From: Load Generator <load@bench.test>\r\n";
        m += "To: " + m_login + "\r\n";
        m += "Subject: " + std::string(words[m_rng() % 7]) + " draft " + std::to_string(m_index) + "-" +
             std::to_string(m_appended) + "\r\n";
        m += "Date: Sun, 29 Nov 2026 12:00:00 +0000\r\n";
        m += "Message-ID: <r" + std::to_string(m_index) + "." + std::to_string(m_appended) + "@bench.test>\r\n";
        m += "MIME-Version: 1.0\r\n";
        std::string text;
        const size_t textSize = 2000 + m_rng() % 6000;
        while (text.size() < textSize) {
            std::string line;
            while (line.size() < 60) line += std::string(words[m_rng() % 13]) + " ";
            text += line + "\r\n";
        }
        if (!attachment) {
            m += "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + text;
            return m;
        }
        const std::string b = "b" + std::to_string(m_index) + "x" + std::to_string(m_appended);
        m += "Content-Type: multipart/mixed; boundary=\"" + b + "\"\r\n\r\n";
        m += "--" + b + "\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" + text + "\r\n";
        m += "--" + b +
             "\r\nContent-Type: application/pdf; name=\"scan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n"
             "Content-Disposition: attachment; filename=\"scan.pdf\"\r\n\r\n";
        std::string raw(20 * 1024 + m_rng() % (130 * 1024), '\0');
        for (auto& c : raw) c = char(m_rng());
        static const char* const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        std::string line;
        for (size_t i = 0; i < raw.size(); i += 3) {
            const uint32_t v = (uint32_t(uint8_t(raw[i])) << 16) |
                               (i + 1 < raw.size() ? uint32_t(uint8_t(raw[i + 1])) << 8 : 0) |
                               (i + 2 < raw.size() ? uint32_t(uint8_t(raw[i + 2])) : 0);
            line += alphabet[(v >> 18) & 63];
            line += alphabet[(v >> 12) & 63];
            line += i + 1 < raw.size() ? alphabet[(v >> 6) & 63] : '=';
            line += i + 2 < raw.size() ? alphabet[v & 63] : '=';
            if (line.size() >= 76) {
                m += line + "\r\n";
                line.clear();
            }
        }
        if (!line.empty()) m += line + "\r\n";
        m += "--" + b + "--\r\n";
        return m;
    }

    // APPEND with a synchronising literal; the tagged answer lands in m_lastTagged.
    bool appendMessage(const std::string& folder, const std::string& msg) {
        std::string tag = nextTag();
        m_lastTagged.clear();
        const std::string head = tag + " APPEND " + folder + " {" + std::to_string(msg.size()) + "}\r\n";
        const auto t0 = Clock::now();
        bool ok = m_conn.send(head), sent = false;
        std::string r;
        while (ok && (ok = m_conn.readResponse(r))) {
            if (r.rfind("+", 0) == 0) {
                ok = m_conn.send(msg) && m_conn.send("\r\n");
                sent = true;
                break;
            }
            if (r.rfind(tag + " ", 0) == 0) {
                m_lastTagged = r;
                break;
            }
            observe(r);
        }
        if (ok && sent) ok = m_conn.await(tag, m_lastTagged, [this](const std::string& x) { observe(x); });
        stats.seconds[kAppendReal] += std::chrono::duration<double>(Clock::now() - t0).count();
        return finish(kAppendReal, head, ok, tag, m_lastTagged);
    }

    // One step of the realistic mix.
    void realisticStep() {
        if (m_selected != "INBOX") {
            selectAndSync(kSelect, "INBOX");
            return;
        }
        if (!resyncIfNeeded()) return;
        const uint32_t pick = m_rng() % 100;
        const std::string keyword = "$Load" + std::to_string(m_session);
        if (pick < 12) {
            cmd(kNoop, "NOOP");
        } else if (pick < 24) {
            if (m_seqs.empty()) return;
            const size_t first = m_seqs.size() > 50 ? m_seqs.size() - 50 : 0;
            if (!m_seqs[first]) return;
            cmd(kFetchNewest, "UID FETCH " + std::to_string(m_seqs[first]) +
                                  ":* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)");
        } else if (pick < 34) {
            if (m_seqs.empty()) return;
            const size_t first = m_rng() % m_seqs.size();
            const size_t last = std::min(m_seqs.size() - 1, first + 19);
            if (!m_seqs[first] || !m_seqs[last]) return;
            cmd(kFetchHeaderFields,
                "UID FETCH " + std::to_string(m_seqs[first]) + ":" + std::to_string(m_seqs[last]) +
                    " (UID BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID In-Reply-To References)])");
        } else if (pick < 49) {
            const uint32_t uid = randomUid();
            if (!uid) return;
            cmd(kUidFetchBody,
                "UID FETCH " + std::to_string(uid) + " (UID BODY.PEEK[])");  // observe() checks the length
        } else if (pick < 59) {
            const uint32_t uid = randomUid();
            if (!uid) return;
            const std::string u = std::to_string(uid);
            m_lastFlags.erase(uid);
            if (!cmd(kStoreKeyword, "UID STORE " + u + " +FLAGS (\\Flagged " + keyword + ")")) return;
            if (m_info.count(uid) && m_lastFlags.count(uid))
                modelCheck(hasFlag(m_lastFlags[uid], keyword),
                           "UID " + u + " after +FLAGS " + keyword + ": (" + m_lastFlags[uid] + ")");
            m_lastFlags.erase(uid);
            if (!cmd(kStoreKeyword, "UID STORE " + u + " -FLAGS (\\Flagged " + keyword + ")")) return;
            if (m_info.count(uid) && m_lastFlags.count(uid))
                modelCheck(!hasFlag(m_lastFlags[uid], keyword),
                           "UID " + u + " after -FLAGS " + keyword + ": (" + m_lastFlags[uid] + ")");
        } else if (pick < 67) {
            static const char* const searches[] = {
                "UID SEARCH FROM \"anna\"", "UID SEARCH TEXT \"invoice\"", "UID SEARCH SINCE 1-Jul-2026",
                "UID SEARCH UNSEEN",        "UID SEARCH KEYWORD $Load0",   "UID SEARCH SUBJECT \"meeting\" NOT SEEN"};
            cmd(kUidSearch, searches[m_rng() % 6]);
        } else if (pick < 74) {
            const std::string msg = realMessage(m_rng() % 10 < 3);
            if (!appendMessage("INBOX", msg)) return;
            uint32_t uid = 0;
            modelCheck(parseAppendUid(m_lastTagged, uid), "APPEND without APPENDUID: " + Conn::firstLine(m_lastTagged));
            if (!uid) return;
            m_mine.push_back(uid);
            // Read it back as a client filing its own copy does: the size must match.
            if (!resyncIfNeeded()) return;
            if (!cmd(kResync, "UID FETCH " + std::to_string(uid) + " (UID RFC822.SIZE)")) return;
            if (m_info.count(uid))
                modelCheck(m_info[uid].size == long(msg.size()), "appended " + std::to_string(msg.size()) +
                                                                     " octets, UID " + std::to_string(uid) + " has " +
                                                                     std::to_string(m_info[uid].size));
        } else if (pick < 82) {
            // Delete one of our own messages the way clients do: copy to Trash, flag, expunge.
            while (!m_mine.empty() && !m_info.count(m_mine.front())) m_mine.erase(m_mine.begin());
            if (m_mine.size() < 2) return;
            const uint32_t uid = m_mine.front();
            m_mine.erase(m_mine.begin());
            const std::string u = std::to_string(uid);
            if (!cmd(kCopyTrash, "UID COPY " + u + " Trash")) return;
            const size_t p = m_lastTagged.find("[COPYUID ");
            modelCheck(p != std::string::npos, "COPY without COPYUID: " + Conn::firstLine(m_lastTagged));
            if (p != std::string::npos) {
                // [COPYUID validity src dst]
                const size_t dst = m_lastTagged.rfind(' ', m_lastTagged.find(']', p));
                m_trash.push_back(uint32_t(std::strtoul(m_lastTagged.c_str() + dst + 1, nullptr, 10)));
            }
            if (!cmd(kStoreDeleted, "UID STORE " + u + " +FLAGS.SILENT (\\Deleted)")) return;
            if (!cmd(kUidExpunge, "UID EXPUNGE " + u)) return;
            modelCheck(!m_info.count(uid), "UID " + u + " still in the mailbox after UID EXPUNGE");
        } else if (pick < 86) {
            if (m_trash.size() < 4) {
                cmd(kStatusOther, "STATUS Trash (MESSAGES UNSEEN UIDNEXT)");
                return;
            }
            // Empty our own copies from Trash, then back to INBOX with a full resync.
            std::string set;
            for (uint32_t t : m_trash) set += (set.empty() ? "" : ",") + std::to_string(t);
            m_trash.clear();
            if (!selectAndSync(kSelectTrash, "Trash")) return;
            if (!cmd(kStoreDeleted, "UID STORE " + set + " +FLAGS.SILENT (\\Deleted)")) return;
            if (!cmd(kUidExpunge, "UID EXPUNGE " + set)) return;
            selectAndSync(kSelect, "INBOX");
        } else if (pick < 96) {
            cmd(kStatusOther, "STATUS Trash (MESSAGES UNSEEN UIDNEXT)");
        } else if (pick < 98) {
            cmd(kList, "LIST \"\" \"*\"");
        } else {
            selectAndSync(kSelect, "INBOX");  // a client that re-opens the folder without a cache
        }
    }

    void setSession(int session) { m_session = session; }
    void forgetSelection() { m_selected.clear(); }

    Conn& conn() { return m_conn; }
    const std::string& login() const { return m_login; }

private:
    const Options& m_o;
    SSL_CTX* m_ctx;
    int m_index;
    std::mt19937 m_rng;
    std::string m_login, m_password;
    Conn m_conn;
    uint64_t m_tagCounter = 0;
    uint64_t m_appended = 0;
    struct UidSeen {
        uint32_t uid;
        bool seen;
    };
    std::vector<UidSeen> m_uids;
    // --realistic: the model of the selected mailbox.
    struct MsgInfo {
        long size = -1;
    };
    std::string m_selected;
    std::vector<uint32_t> m_seqs;  // sequence number - 1 -> UID
    std::map<uint32_t, MsgInfo> m_info;
    std::map<uint32_t, std::string> m_lastFlags;  // FLAGS last seen per UID
    std::vector<uint32_t> m_mine;                 // UIDs this client appended to INBOX
    std::vector<uint32_t> m_trash;                // UIDs of its copies in Trash
    std::string m_lastTagged;
    int m_session = 0;  // which of the sessions on this mailbox (its keyword)
};

// ---------------------------------------------------------------------------
// A start line for all threads, so the clock starts when every client is ready.

class Gate {
public:
    explicit Gate(int n) : m_waiting(n) {}
    void arriveAndWait() {
        std::unique_lock<std::mutex> lock(m_mutex);
        if (--m_waiting == 0) m_cv.notify_all();
        m_cv.wait(lock, [this] { return m_waiting <= 0 && m_open; });
    }
    void waitAllArrived() {
        std::unique_lock<std::mutex> lock(m_mutex);
        m_cv.wait(lock, [this] { return m_waiting <= 0; });
    }
    void open() {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_open = true;
        m_cv.notify_all();
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_cv;
    int m_waiting;
    bool m_open = false;
};

// --------------------------------------------------------------------------- server CPU time

// utime + stime + cutime + cstime of one process, in clock ticks; ppid through *parent.
long long processTicks(int pid, int* parent) {
    const std::string path = "/proc/" + std::to_string(pid) + "/stat";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[1024];
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return -1;
    const std::string text(buf, size_t(n));
    const size_t close = text.rfind(')');
    if (close == std::string::npos) return -1;
    std::vector<long long> v;  // fields from 3 (state) on; state itself is skipped
    const char* p = text.c_str() + close + 2;
    while (*p && *p != ' ') ++p;  // state
    while (*p) {
        char* end = nullptr;
        v.push_back(std::strtoll(p, &end, 10));
        if (end == p) break;
        p = end;
    }
    // v[0] = ppid (field 4); utime..cstime are fields 14..17 = v[10..13].
    if (v.size() < 14) return -1;
    if (parent) *parent = int(v[0]);
    return v[10] + v[11] + v[12] + v[13];
}

// CPU ticks of every process in the trees rooted at `roots` (children that exited and were
// reaped are in their parent's cutime/cstime).
long long treeTicks(const std::vector<int>& roots) {
    std::vector<std::pair<int, int>> all;  // pid, ppid
    if (DIR* d = opendir("/proc")) {
        while (dirent* e = readdir(d)) {
            char* end = nullptr;
            const long pid = std::strtol(e->d_name, &end, 10);
            if (pid <= 0 || *end) continue;
            int parent = 0;
            if (processTicks(int(pid), &parent) >= 0) all.emplace_back(int(pid), parent);
        }
        closedir(d);
    }
    std::vector<int> todo = roots, seen;
    while (!todo.empty()) {
        const int pid = todo.back();
        todo.pop_back();
        if (std::find(seen.begin(), seen.end(), pid) != seen.end()) continue;
        seen.push_back(pid);
        for (const auto& [child, parent] : all)
            if (parent == pid) todo.push_back(child);
    }
    long long ticks = 0;
    for (int pid : seen) ticks += std::max(0LL, processTicks(pid, nullptr));
    return ticks;
}

double ticksToMs(long long ticks) {
    return 1000.0 * double(ticks) / double(sysconf(_SC_CLK_TCK));
}

void printStats(const Options& o, const Stats& s, double elapsed, const char* mode, double serverCpuMs = -1) {
    uint64_t total = 0, errors = 0;
    for (int k = 0; k < kKinds; ++k) {
        if (k != kModel) total += s.count[size_t(k)];  // checks are not commands
        errors += s.errors[size_t(k)];
    }
    errors += s.connectErrors;
    if (o.json) {
        std::printf(
            "{\"mode\":\"%s\",\"clients\":%d,\"seconds\":%.3f,\"commands\":%llu,\"errors\":%llu,\"per_second\":%.1f,"
            "\"connect_errors\":%llu,\"reconnects\":%llu,",
            mode, o.clients, elapsed, static_cast<unsigned long long>(total), static_cast<unsigned long long>(errors),
            double(total) / elapsed, static_cast<unsigned long long>(s.connectErrors),
            static_cast<unsigned long long>(s.reconnects));
        if (serverCpuMs >= 0)
            std::printf("\"server_cpu_ms\":%.1f,\"server_cpu_ms_per_1000\":%.1f,", serverCpuMs,
                        total ? 1000.0 * serverCpuMs / double(total) : 0.0);
        std::printf("\"kinds\":{");
        bool first = true;
        for (int k = 0; k < kKinds; ++k) {
            if (!s.count[size_t(k)]) continue;
            std::string name;
            for (const char* c = kKindNames[size_t(k)]; *c; ++c) {
                if (*c == '"' || *c == '\\') name += '\\';
                name += *c;
            }
            std::printf("%s\"%s\":{\"count\":%llu,\"errors\":%llu,\"per_second\":%.1f,\"avg_ms\":%.3f}",
                        first ? "" : ",", name.c_str(), static_cast<unsigned long long>(s.count[size_t(k)]),
                        static_cast<unsigned long long>(s.errors[size_t(k)]), double(s.count[size_t(k)]) / elapsed,
                        1000.0 * s.seconds[size_t(k)] / double(s.count[size_t(k)]));
            first = false;
        }
        std::printf("}}\n");
        return;
    }
    std::printf("%-28s %10s %10s %9s %7s\n", "command", "count", "per s", "avg ms", "errors");
    for (int k = 0; k < kKinds; ++k) {
        if (!s.count[size_t(k)]) continue;
        std::printf("%-28s %10llu %10.1f %9.3f %7llu\n", kKindNames[size_t(k)],
                    static_cast<unsigned long long>(s.count[size_t(k)]), double(s.count[size_t(k)]) / elapsed,
                    1000.0 * s.seconds[size_t(k)] / double(s.count[size_t(k)]),
                    static_cast<unsigned long long>(s.errors[size_t(k)]));
    }
    std::printf("%-28s %10llu %10.1f %9s %7llu\n", "total", static_cast<unsigned long long>(total),
                double(total) / elapsed, "", static_cast<unsigned long long>(errors));
    std::printf("%s: %d clients, %.2f s, %.1f %s/s, %llu errors (%llu connect errors, %llu reconnects)\n", mode,
                o.clients, elapsed, double(mode == std::string("login-only") ? s.count[kLogin] : total) / elapsed,
                mode == std::string("login-only") ? "logins" : "commands", static_cast<unsigned long long>(errors),
                static_cast<unsigned long long>(s.connectErrors), static_cast<unsigned long long>(s.reconnects));
    if (serverCpuMs >= 0)
        std::printf("server CPU (--cpu-of): %.0f ms, %.1f ms per 1,000 commands\n", serverCpuMs,
                    total ? 1000.0 * serverCpuMs / double(total) : 0.0);
}

// --------------------------------------------------------------------------- modes

int runMixed(const Options& o, SSL_CTX* ctx) {
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < o.clients; ++i) clients.push_back(std::make_unique<Client>(o, ctx, i));
    Gate gate(o.clients);
    Clock::time_point deadline;
    std::mutex deadlineMutex;
    std::vector<std::thread> threads;
    for (int i = 0; i < o.clients; ++i) {
        threads.emplace_back([&, i] {
            Client& c = *clients[size_t(i)];
            c.setSession(i / int(o.users.size()));
            if (c.connectAndLogin(true) && o.realistic) c.selectAndSync(kSelect, "INBOX");  // opened before the clock
            gate.arriveAndWait();
            Clock::time_point end;
            {
                std::lock_guard<std::mutex> lock(deadlineMutex);
                end = deadline;
            }
            while (Clock::now() < end) {
                if (!c.conn().isOpen()) {
                    ++c.stats.reconnects;
                    c.forgetSelection();
                    if (!c.connectAndLogin(true)) {
                        std::this_thread::sleep_for(std::chrono::milliseconds(100));
                        continue;
                    }
                }
                if (o.realistic)
                    c.realisticStep();
                else
                    c.round(end);
            }
        });
    }
    gate.waitAllArrived();
    // Logins happened before the clock starts; only the mix is timed. Login counts are
    // kept apart from the command rate.
    Stats loginStats;
    for (auto& c : clients) {
        loginStats.count[kLogin] += c->stats.count[kLogin];
        loginStats.errors[kLogin] += c->stats.errors[kLogin];
        loginStats.connectErrors += c->stats.connectErrors;
        c->stats = Stats{};
    }
    Clock::time_point t0;
    {
        std::lock_guard<std::mutex> lock(deadlineMutex);
        t0 = Clock::now();
        deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
    }
    const long long cpuBefore = o.cpuOf.empty() ? 0 : treeTicks(o.cpuOf);
    gate.open();
    for (auto& t : threads) t.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    const double serverCpuMs = o.cpuOf.empty() ? -1 : ticksToMs(treeTicks(o.cpuOf) - cpuBefore);
    Stats total;
    for (auto& c : clients) total.add(c->stats);
    // Logins while the clock ran are reconnects after failures; keep them out of the rate.
    total.count[kLogin] = 0;
    total.seconds[kLogin] = 0;
    const uint64_t loginErrors = loginStats.errors[kLogin] + loginStats.connectErrors;
    printStats(o, total, elapsed, o.realistic ? "realistic" : "mixed", serverCpuMs);
    for (auto& c : clients) c->logout();
    if (loginErrors)
        std::fprintf(stderr, "%llu of %d initial logins failed\n", static_cast<unsigned long long>(loginErrors),
                     o.clients);
    uint64_t errors = total.connectErrors + loginErrors;
    for (auto e : total.errors) errors += e;
    return errors ? 1 : 0;
}

int runLoginOnly(const Options& o, SSL_CTX* ctx) {
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < o.clients; ++i) clients.push_back(std::make_unique<Client>(o, ctx, i));
    Gate gate(o.clients);
    gate.open();
    const Clock::time_point t0 = Clock::now();
    const Clock::time_point deadline =
        t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
    std::vector<std::thread> threads;
    for (int i = 0; i < o.clients; ++i) {
        threads.emplace_back([&, i] {
            Client& c = *clients[size_t(i)];
            while (Clock::now() < deadline) {
                if (!c.connectAndLogin()) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(20));
                    continue;
                }
                c.logout();
            }
        });
    }
    for (auto& t : threads) t.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    Stats total;
    for (auto& c : clients) total.add(c->stats);
    printStats(o, total, elapsed, "login-only");
    uint64_t errors = total.connectErrors;
    for (auto e : total.errors) errors += e;
    return errors ? 1 : 0;
}

volatile sig_atomic_t g_stop = 0;
void onSignal(int) {
    g_stop = 1;
}

// A user's sessions wait for the next "* n EXISTS" (a delivery announced during IDLE):
// each watcher thread reads its session until that line or `timeoutMs`; returns the
// steady-clock time (ns) each one saw it, -1 for none.
std::vector<int64_t> watchExists(std::vector<Client*> sessions, int timeoutMs) {
    std::vector<int64_t> seen(sessions.size(), -1);
    std::vector<std::thread> threads;
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
    for (size_t k = 0; k < sessions.size(); ++k) {
        threads.emplace_back([&, k] {
            Conn& c = sessions[k]->conn();
            std::string r;
            for (;;) {
                const auto left =
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
                if (left <= 0 || !c.waitReadable(int(left))) return;
                if (!c.readResponse(r)) return;
                if (r.rfind("* ", 0) == 0 && r.find(" EXISTS") != std::string::npos) {
                    seen[k] =
                        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
                    return;
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    return seen;
}

int runIdle(const Options& o, SSL_CTX* ctx) {
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < o.clients; ++i) clients.push_back(std::make_unique<Client>(o, ctx, i));
    std::atomic<int> next{0}, ok{0}, failed{0};
    std::vector<double> doneAt(size_t(o.clients), -1.0);  // seconds after the start, per client
    const int workers = std::min(o.clients, 16);
    std::vector<std::thread> threads;
    const auto start = Clock::now();
    for (int w = 0; w < workers; ++w) {
        threads.emplace_back([&] {
            for (;;) {
                const int i = next.fetch_add(1);
                if (i >= o.clients) break;
                Client& c = *clients[size_t(i)];
                std::string tag, tagged;
                bool good = c.connectAndLogin(true);
                if (good) {
                    tag = c.nextTag();
                    good = c.run(kSelect, tag, tag + " SELECT INBOX\r\n", tagged);
                }
                if (good) {
                    tag = c.nextTag();
                    const auto t0 = Clock::now();
                    std::string cmd = tag + " IDLE\r\n", r;
                    good = c.conn().send(cmd);
                    while (good && (good = c.conn().readResponse(r))) {
                        if (r.rfind("+", 0) == 0) break;
                        if (r.rfind(tag + " ", 0) == 0) {
                            good = false;
                            tagged = r;
                            break;
                        }
                    }
                    c.stats.seconds[kIdle] += std::chrono::duration<double>(Clock::now() - t0).count();
                    ++c.stats.count[kIdle];
                    if (!good) {
                        ++c.stats.errors[kIdle];
                        reportError("client " + std::to_string(i) + ": IDLE -> " +
                                    (tagged.empty() ? c.conn().lastError() : Conn::firstLine(tagged)));
                    }
                }
                if (good) doneAt[size_t(i)] = std::chrono::duration<double>(Clock::now() - start).count();
                (good ? ok : failed)++;
            }
        });
    }
    for (auto& t : threads) t.join();
    // How steadily the connections were taken: the rate of each tenth of them (in the
    // order they finished), and the whole.
    {
        std::vector<double> t;
        for (double d : doneAt)
            if (d >= 0) t.push_back(d);
        std::sort(t.begin(), t.end());
        if (t.size() >= 10) {
            std::string rates;
            double prev = 0;
            for (int k = 1; k <= 10; ++k) {
                const size_t idx = t.size() * size_t(k) / 10 - 1;
                const size_t n = t.size() / 10;
                const double span = t[idx] - prev;
                rates += " " + std::to_string(long(span > 0 ? double(n) / span : 0));
                prev = t[idx];
            }
            std::printf("# connected %zu in %.1f s: %.0f/s; per tenth:%s\n", t.size(), t.back(),
                        double(t.size()) / t.back(), rates.c_str());
        }
        double loginS = 0;
        uint64_t logins = 0;
        for (auto& c : clients) {
            loginS += c->stats.seconds[kLogin];
            logins += c->stats.count[kLogin];
        }
        if (logins) std::printf("# mean LOGIN %.1f ms\n", 1000.0 * loginS / double(logins));
    }
    std::printf("ready %d %d\n", ok.load(), failed.load());
    std::fflush(stdout);
    // Hold the connections until stdin closes or a signal arrives. "watch K\n" on stdin:
    // the sessions of user K (clients K, K + users, ...) wait for the next EXISTS;
    // prints "watching <n>" at once, then "seen <n> <first_ns> <last_ns>" (steady clock,
    // CLOCK_MONOTONIC) when all saw it or 10 s passed.
    std::string in;
    while (!g_stop) {
        pollfd p{0, POLLIN, 0};
        int rc = ::poll(&p, 1, 500);
        if (rc < 0 && errno != EINTR) break;
        if (rc <= 0) continue;
        char buf[256];
        ssize_t n = ::read(0, buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, size_t(n));
        size_t nl;
        while ((nl = in.find('\n')) != std::string::npos) {
            std::string line = in.substr(0, nl);
            in.erase(0, nl + 1);
            if (line.rfind("watch ", 0) != 0) continue;
            const size_t user = size_t(std::atol(line.c_str() + 6));
            std::vector<Client*> sessions;
            for (size_t i = user; i < clients.size(); i += o.users.size())
                if (doneAt[i] >= 0) sessions.push_back(clients[i].get());
            std::printf("watching %zu\n", sessions.size());
            std::fflush(stdout);
            auto seen = watchExists(sessions, 10000);
            int64_t first = -1, last = -1;
            size_t got = 0;
            for (int64_t s : seen) {
                if (s < 0) continue;
                ++got;
                if (first < 0 || s < first) first = s;
                if (s > last) last = s;
            }
            std::printf("seen %zu %lld %lld\n", got, (long long)first, (long long)last);
            std::fflush(stdout);
        }
    }
    for (auto& c : clients) c->conn().close();
    std::printf("released %d\n", ok.load());
    return failed.load() ? 1 : 0;
}

// --------------------------------------------------------------------------- arguments

[[noreturn]] void usage(const char* why) {
    if (why) std::fprintf(stderr, "postern-imap-load: %s\n", why);
    std::fprintf(stderr,
                 "usage: postern-imap-load --port P [--host H] [--tls|--starttls|--plain]\n"
                 "       (--users FILE | --user LOGIN --password PW ...) [--clients N] [--seconds S]\n"
                 "       [--login-only | --idle | --realistic] [--envelope-range N] [--show-errors N] [--json] "
                 "[--cpu-of PID ...]\n"
                 "  --users FILE: one \"login password\" per line\n");
    std::exit(2);
}

Options parseArgs(int argc, char** argv) {
    Options o;
    std::string pendingUser;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage((a + " needs a value").c_str());
            return argv[++i];
        };
        if (a == "--host")
            o.host = value();
        else if (a == "--port")
            o.port = std::atoi(value().c_str());
        else if (a == "--tls")
            o.security = Security::Tls;
        else if (a == "--starttls")
            o.security = Security::StartTls;
        else if (a == "--plain")
            o.security = Security::Plain;
        else if (a == "--clients")
            o.clients = std::atoi(value().c_str());
        else if (a == "--seconds")
            o.seconds = std::atof(value().c_str());
        else if (a == "--login-only")
            o.loginOnly = true;
        else if (a == "--idle")
            o.idle = true;
        else if (a == "--realistic")
            o.realistic = true;
        else if (a == "--json")
            o.json = true;
        else if (a == "--cpu-of")
            o.cpuOf.push_back(std::atoi(value().c_str()));
        else if (a == "--show-errors")
            o.showErrors = std::atoi(value().c_str());
        else if (a == "--envelope-range")
            o.envelopeRange = std::max(1, std::atoi(value().c_str()));
        else if (a == "--user")
            pendingUser = value();
        else if (a == "--password") {
            if (pendingUser.empty()) usage("--password must follow --user");
            o.users.emplace_back(pendingUser, value());
            pendingUser.clear();
        } else if (a == "--users") {
            std::ifstream f(value());
            if (!f) usage("cannot read the users file");
            std::string line;
            while (std::getline(f, line)) {
                if (!line.empty() && line.back() == '\r') line.pop_back();
                if (line.empty() || line[0] == '#') continue;
                size_t sp = line.find(' ');
                if (sp == std::string::npos) usage("users file: expected \"login password\"");
                o.users.emplace_back(line.substr(0, sp), line.substr(sp + 1));
            }
        } else if (a == "-h" || a == "--help")
            usage(nullptr);
        else
            usage(("unknown option " + a).c_str());
    }
    if (o.port <= 0 || o.port > 65535) usage("--port is required");
    if (o.users.empty()) usage("no users (--users FILE or --user/--password)");
    if (o.clients < 1) usage("--clients must be at least 1");
    if (int(o.loginOnly) + int(o.idle) + int(o.realistic) > 1)
        usage("--login-only, --idle and --realistic exclude each other");
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    Options o = parseArgs(argc, argv);
    g_showErrors = o.showErrors;
    ::signal(SIGPIPE, SIG_IGN);
    struct sigaction sa {};
    sa.sa_handler = onSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: poll() returns EINTR
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        std::fprintf(stderr, "postern-imap-load: SSL_CTX_new: %s\n", opensslError().c_str());
        return 2;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // loopback benchmark against a self-signed certificate
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    // No session cache: every connection does a full handshake, as a new client would.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    // Idle TLS connections by the thousand: give record buffers back while idle.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    // One descriptor per connection: as many as the hard limit allows.
    if (rlimit rl{}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
    }

    int rc;
    if (o.idle)
        rc = runIdle(o, ctx);
    else if (o.loginOnly)
        rc = runLoginOnly(o, ctx);
    else
        rc = runMixed(o, ctx);
    const int printed = g_printed.load();
    if (printed > o.showErrors) std::fprintf(stderr, "(%d more errors not shown)\n", printed - o.showErrors);
    SSL_CTX_free(ctx);
    return rc;
}
