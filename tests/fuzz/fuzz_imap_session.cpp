// fuzz_imap_session.cpp — libFuzzer target: a whole IMAP session (the real
// ImapSession and command handlers) over a real Maildir, fed the input in
// pieces whose sizes come from the input's first byte, so that command framing
// across reads (lines, synchronising and non-synchronising literals, literal8)
// is exercised at every split.
//
// Setup (once per process): a temporary Maildir (on /dev/shm when there is one:
// APPEND fsyncs; named with the pid, so that the folders of crashed runs are
// removed by the next run) for alice@example.org with realistic messages (plain text,
// multipart/mixed with quoted-printable, base64 and a message/rfc822 part,
// multipart/alternative, a reply thread, an unknown transfer encoding), made by
// a scripted warm-up session (LOGIN, CREATE, APPEND, STORE, SELECT) and kept as
// a template. The backend accepts LOGIN / AUTHENTICATE PLAIN for
// alice@example.org with password "secret"; quota 1 MiB.
// Per input: a fresh session; TLS is on unless bit 3 of the first byte is set
// (then port-143 rules: LOGINDISABLED, STARTTLS; STARTTLS is emulated like the
// connection does it: pipelined bytes dropped, then tlsStarted()). Bits 4-6 call
// deadlinePassed() half-way, shutdown() or timedOut() at the end. Asynchronous
// work (APPEND's store on the thread pool) and output backpressure (FETCH) are
// driven to completion between pieces. After the input, when the Maildir's
// files differ from the template (APPEND, STORE, EXPUNGE, CREATE, ...), it is
// restored from the template, so every input starts from the same mailbox
// state (reproducible findings).
// POSTERN_FUZZ_TRACE=1 prints each session's answers (to check a seed does what
// it should).
// Limits are small so the fuzzer reaches them: line 1024, literal 8 KiB after
// login (2 KiB before), command 16 KiB, input budget 32 KiB. The command limit
// also bounds how deep a SEARCH program can nest (NOT NOT ...).
#include "imapd/imap_index.h"
#include "imapd/imap_session.h"

#include "common/store/maildir_folder.h"

#include "core/log.h"
#include "core/paths.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QThreadPool>
#include <algorithm>
#include <csignal>
#include <cstdint>

using namespace postern;
using namespace postern::imap;

namespace {

const QString kUser = QStringLiteral("alice@example.org");

class Io : public SessionIo {
public:
    ConnectionInfo ci;
    QByteArray out;
    bool closed = false;
    bool suspended = false;
    bool wantWritable = false;
    bool tlsRequested = false;
    void send(const QByteArray& b) override {
        if (closed) return;
        out += b;
        if (out.size() > (1 << 20)) out = out.right(4096);  // keep the tail: memory stays bounded
    }
    void startTls() override { tlsRequested = true; }
    void close(const QString&) override { closed = true; }
    void suspend() override { suspended = true; }
    void resume() override { suspended = false; }
    void setIdleTimeout(qint64) override {}
    void setDeadline(qint64) override {}
    void notifyWhenWritable() override { wantWritable = true; }
    qint64 pendingOutput() const override { return 0; }
    const ConnectionInfo& info() const override { return ci; }
};

class Backend : public ImapBackend {
public:
    void authenticate(const AuthRequest& request, QByteArray password, AuthDone done) override {
        done(request.login == kUser && password == "secret" ? AuthVerdict::Ok : AuthVerdict::Failed, request.login);
    }
    qint64 quotaOf(const QString&) override { return 1 << 20; }
};

// Lets queued results (APPEND's worker) and output backpressure (FETCH) complete.
void settle(Io& io, ImapSession& s) {
    for (int round = 0; round < 2000 && !io.closed; ++round) {
        if (io.wantWritable) {
            io.wantWritable = false;
            s.writable();
            continue;
        }
        QCoreApplication::processEvents();
        if (!io.suspended) return;
        QThreadPool::globalInstance()->waitForDone(20);
    }
}

// Feeds bytes as a Connection would: unused bytes wait for the next piece.
void feed(Io& io, ImapSession& s, QByteArray& buffer, const char* data, qsizetype size) {
    buffer.append(data, size);
    for (int guard = 0; guard < 100000 && !buffer.isEmpty() && !io.closed; ++guard) {
        if (io.tlsRequested) {
            // The connection drops what was pipelined after STARTTLS, then hands over TLS.
            io.tlsRequested = false;
            buffer.clear();
            io.ci.tls = true;
            s.tlsStarted();
            return;
        }
        const qsizetype used = s.consume(buffer.constData(), buffer.size());
        if (used > 0) buffer.remove(0, used);
        settle(io, s);
        if (used <= 0 && !io.suspended) break;  // needs more bytes
    }
}

// Which inputs changed the mailboxes: an inotify watch on every folder of the
// tree (one read() per input when nothing changed). The SQLite index files are a
// cache that changes with reads, and lock files are opened for writing without
// being changed: their events do not count.
class TreeWatch {
public:
    ~TreeWatch() { stop(); }
    void start(const QByteArray& root) {
        stop();
        m_fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (m_fd >= 0) add(root, 0);
    }
    // True when something other than the index or a lock changed since the last call.
    bool changed() {
        if (m_fd < 0) return true;
        bool dirty = false;
        alignas(inotify_event) char buf[16384];
        for (;;) {
            const ssize_t n = ::read(m_fd, buf, sizeof buf);
            if (n <= 0) break;
            for (ssize_t off = 0; off < n;) {
                const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
                const QByteArray name = ev->len ? QByteArray(ev->name) : QByteArray();
                if (ev->mask & IN_Q_OVERFLOW)
                    dirty = true;
                else if (!name.startsWith(MailboxIndex::kFileName) && !name.endsWith(".lock"))
                    dirty = true;
                off += ssize_t(sizeof(inotify_event) + ev->len);
            }
        }
        return dirty;
    }

private:
    void add(const QByteArray& dir, int depth) {
        ::inotify_add_watch(
            m_fd, dir.constData(),
            IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB);
        DIR* d = ::opendir(dir.constData());
        if (!d) return;
        while (const dirent* e = ::readdir(d)) {
            if (e->d_type == DT_DIR && qstrcmp(e->d_name, ".") != 0 && qstrcmp(e->d_name, "..") != 0 && depth < 16)
                add(dir + '/' + e->d_name, depth + 1);
        }
        ::closedir(d);
    }
    void stop() {
        if (m_fd >= 0) ::close(m_fd);
        m_fd = -1;
    }
    int m_fd = -1;
};

// Plain POSIX: this runs after every input that changed the mailboxes.
bool removeTree(const QByteArray& path) {
    struct stat st {};
    if (::lstat(path.constData(), &st) != 0) return errno == ENOENT;
    if (!S_ISDIR(st.st_mode)) return ::unlink(path.constData()) == 0;
    DIR* d = ::opendir(path.constData());
    if (!d) return false;
    QList<QByteArray> names;
    while (const dirent* e = ::readdir(d))
        if (qstrcmp(e->d_name, ".") != 0 && qstrcmp(e->d_name, "..") != 0) names << QByteArray(e->d_name);
    ::closedir(d);
    for (const QByteArray& n : names)
        if (!removeTree(path + '/' + n)) return false;
    return ::rmdir(path.constData()) == 0;
}

bool copyFile(const QByteArray& from, const QByteArray& to, mode_t mode) {
    const int in = ::open(from.constData(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return false;
    const int out = ::open(to.constData(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0777);
    bool ok = out >= 0;
    char buf[65536];
    while (ok) {
        const ssize_t n = ::read(in, buf, sizeof buf);
        if (n == 0) break;
        ok = n > 0 && ::write(out, buf, size_t(n)) == n;
    }
    ::close(in);
    if (out >= 0) ::close(out);
    return ok;
}

bool copyTree(const QByteArray& from, const QByteArray& to) {
    struct stat st {};
    if (::lstat(from.constData(), &st) != 0) return false;
    if (!S_ISDIR(st.st_mode)) return copyFile(from, to, st.st_mode);
    if (::mkdir(to.constData(), st.st_mode & 0777) != 0 && errno != EEXIST) return false;
    DIR* d = ::opendir(from.constData());
    if (!d) return false;
    bool ok = true;
    while (const dirent* e = ::readdir(d)) {
        if (qstrcmp(e->d_name, ".") == 0 || qstrcmp(e->d_name, "..") == 0) continue;
        ok = ok && copyTree(from + '/' + e->d_name, to + '/' + e->d_name);
    }
    ::closedir(d);
    return ok;
}

QByteArray sampleMessages() {
    static const char raw[] =
        "\x00\x01\x02"
        "binary"
        "\xff\xfe"
        " payload\r\n";
    const QByteArray b64 = QByteArray(raw, sizeof raw - 1).repeated(8).toBase64();
    QList<QByteArray> msgs;
    msgs << "From: Bob Example <bob@example.net>\r\nTo: alice@example.org\r\nSubject: Lunch on Friday\r\n"
            "Date: Mon, 02 Nov 2026 10:00:00 +0100\r\nMessage-ID: <m1@example.net>\r\n\r\nShall we meet at noon?\r\n";
    msgs << "From: \"Carol\" <carol@example.com>\r\nTo: alice@example.org, Dave <dave@example.com>\r\nCc: "
            "team@example.org\r\n"
            "Subject: =?UTF-8?Q?R=C3=A9sum=C3=A9_and_files?=\r\nDate: Tue, 03 Nov 2026 08:30:00 -0500\r\n"
            "Message-ID: <m2@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
            "boundary=\"outer\"\r\n\r\n"
            "preamble\r\n--outer\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
            "quoted-printable\r\n\r\n"
            "caf=C3=A9 and a soft=\r\nbreak\r\n--outer\r\nContent-Type: application/octet-stream; name=\"blob.bin\"\r\n"
            "Content-Disposition: attachment; filename=\"blob.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
                b64 +
                "\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\nFrom: inner@example.com\r\nSubject: inner\r\n"
                "Content-Type: text/plain\r\n\r\ninner body\r\n--outer\r\nContent-Type: application/x-thing\r\n"
                "Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n--outer--\r\nepilogue\r\n";
    msgs << "From: dave@example.com\r\nTo: alice@example.org\r\nSubject: Re: Lunch on Friday\r\nDate: Mon, 02 Nov 2026 "
            "11:00:00 +0000\r\n"
            "Message-ID: <m3@example.com>\r\nIn-Reply-To: <m1@example.net>\r\nReferences: "
            "<m1@example.net>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/alternative; boundary=alt\r\n\r\n--alt\r\nContent-Type: text/plain\r\n\r\nYes!\r\n"
            "--alt\r\nContent-Type: text/html\r\n\r\n<p>Yes!</p>\r\n--alt--\r\n";
    msgs << "From: bob@example.net\r\nTo: alice@example.org\r\nSubject: Fwd: Re: Lunch on Friday\r\nDate: Tue, 03 Nov "
            "2026 09:00:00 +0000\r\n"
            "Message-ID: <m4@example.net>\r\nReferences: <m1@example.net> <m3@example.com>\r\nX-Priority: 1\r\n\r\n"
            ">> Shall we meet at noon?\r\n> Yes!\r\n.\r\n..dots\r\n";
    QByteArray script = "w1 LOGIN alice@example.org secret\r\nw2 CREATE Archive/2026\r\n";
    int n = 0;
    for (const QByteArray& m : msgs) {
        const QByteArray box = n % 2 ? "Archive/2026" : "INBOX";
        script += "w" + QByteArray::number(10 + n) + " APPEND " + box + " (\\Seen $Label" + QByteArray::number(n) +
                  ") {" + QByteArray::number(m.size()) + "+}\r\n" + m + "\r\n";
        script +=
            "x" + QByteArray::number(10 + n) + " APPEND INBOX {" + QByteArray::number(m.size()) + "+}\r\n" + m + "\r\n";
        ++n;
    }
    script +=
        "w3 SELECT INBOX\r\nw4 STORE 2 +FLAGS (\\Flagged)\r\nw5 FETCH 1:* (ENVELOPE BODYSTRUCTURE)\r\nw6 SELECT "
        "Archive/2026\r\n"
        "w7 FETCH 1:* (ENVELOPE BODYSTRUCTURE)\r\nw8 LOGOUT\r\n";
    return script;
}

// Folders left by fuzzer processes that crashed or were killed (a crash skips the
// QTemporaryDir's clean-up): the pid in the name tells.
void removeStaleDirs(const QString& parent) {
    const QByteArray prefix = "postern-fuzz-imap-";
    DIR* d = ::opendir(QFile::encodeName(parent).constData());
    if (!d) return;
    QList<QByteArray> stale;
    while (const dirent* e = ::readdir(d)) {
        const QByteArray name(e->d_name);
        if (!name.startsWith(prefix)) continue;
        bool ok = false;
        const int pid = name.mid(prefix.size()).split('-').value(0).toInt(&ok);
        if (ok && pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) stale << name;
    }
    ::closedir(d);
    for (const QByteArray& name : stale) removeTree(QFile::encodeName(parent) + '/' + name);
}

struct Env {
    QString base;     // <tmp>/postern-fuzz-imap-XXXXXX
    QString mailDir;  // what the sessions use
    QString templateDir;
    TreeWatch watch;
    InputBudget budget{32 * 1024};
    SessionConfig config;

    Env() {
        const QString shm = QStringLiteral("/dev/shm");
        const QString parent = QFileInfo(shm).isDir() && QFileInfo(shm).isWritable() ? shm : QDir::tempPath();
        removeStaleDirs(parent);
        static QTemporaryDir dir(parent + QStringLiteral("/postern-fuzz-imap-%1-XXXXXX").arg(::getpid()));
        base = dir.path();
        mailDir = base + QStringLiteral("/mail");
        templateDir = base + QStringLiteral("/template");
        log::setMinLevel(log::Level::Error);  // thousands of sessions a second: no info lines
        config.hostname = QStringLiteral("fuzz.example.org");
        config.limits.maxLine = 1024;
        config.limits.maxLiteral = 8 * 1024;
        config.limits.maxCommand = 16 * 1024;
        config.limits.maxLiteralBeforeAuth = 2 * 1024;
        config.limits.maxCommandBeforeAuth = 4 * 1024;
        config.limits.budgetFreeLiteral = 1024;
        config.appendLimit = 8 * 1024;
        config.maxBadCommands = 50;
        config.mailDir = mailDir;
        config.inputBudget = &budget;
        // The warm-up session builds the template with the product's own code.
        {
            Io io;
            io.ci.tls = true;
            io.ci.mode = ListenerMode::Imaps;
            Backend backend;
            ImapSession s(io, backend, config);
            s.start();
            QByteArray buffer;
            const QByteArray script = sampleMessages();
            feed(io, s, buffer, script.constData(), script.size());
            if (!io.out.contains("w8 OK"))
                qFatal("fuzz_imap_session: the warm-up session failed:\n%s", io.out.constData());
        }
        releaseCaches();
        if (!copyTree(QFile::encodeName(mailDir), QFile::encodeName(templateDir)))
            qFatal("fuzz_imap_session: cannot copy the template");
        watch.start(QFile::encodeName(mailDir));
    }

    static void releaseCaches() {
        MailboxIndex::closeIdle(0);
        store::MaildirFolder::dropIdleCaches(0);
    }

    void restoreIfChanged() {
        static const bool stats = qEnvironmentVariableIsSet("POSTERN_FUZZ_STATS");
        static int runs = 0, restores = 0;
        ++runs;
        if (!watch.changed()) return;
        if (stats && ++restores % 100 == 0)
            fprintf(stderr, "fuzz_imap_session: %d restores in %d runs\n", restores, runs);
        releaseCaches();
        if (!removeTree(QFile::encodeName(mailDir)) ||
            !copyTree(QFile::encodeName(templateDir), QFile::encodeName(mailDir)))
            qFatal("fuzz_imap_session: cannot restore the Maildir");
        watch.start(QFile::encodeName(mailDir));
    }
};

Env& env() {
    static int argc = 1;
    static char arg0[] = "fuzz";
    static char* argv[] = {arg0, nullptr};
    static QCoreApplication app(argc, argv);
    static Env e;
    return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    Env& e = env();
    const uint8_t mode = data[0];
    static const int kChunks[] = {1, 2, 3, 5, 7, 16, 64, 1 << 20};
    const int chunk = kChunks[mode & 7];
    {
        Io io;
        io.ci.tls = !(mode & 0x08);
        io.ci.mode = io.ci.tls ? ListenerMode::Imaps : ListenerMode::Imap;
        io.ci.peerAddress = QHostAddress(QStringLiteral("192.0.2.1"));
        Backend backend;
        ImapSession s(io, backend, e.config);
        s.start();
        QByteArray buffer;
        const char* bytes = reinterpret_cast<const char*>(data + 1);
        const qsizetype n = qsizetype(size - 1);
        for (qsizetype i = 0; i < n && !io.closed; i += chunk) {
            feed(io, s, buffer, bytes + i, std::min<qsizetype>(chunk, n - i));
            if ((mode & 0x10) && i < n / 2 && i + chunk >= n / 2) s.deadlinePassed();
        }
        if (!io.closed && (mode & 0x20)) s.shutdown();
        if (!io.closed && (mode & 0x40)) s.timedOut();
        if (!io.closed) s.peerClosed();
        settle(io, s);
        static const bool trace = qEnvironmentVariableIsSet("POSTERN_FUZZ_TRACE");
        if (trace) fprintf(stderr, "%s\n----\n", io.out.constData());
    }
    // Results still queued for the session that is gone are dropped by their guard.
    QThreadPool::globalInstance()->waitForDone();
    QCoreApplication::processEvents();
    if (e.budget.used() != 0) qFatal("fuzz_imap_session: %lld bytes of input budget not given back", e.budget.used());
    e.restoreIfChanged();
    return 0;
}
