// imap_harness.h — an in-process IMAP session for unit tests: a real ImapSession over
// a recording SessionIo (no sockets), a fake backend that accepts one password, and a
// real Maildir in a temporary folder. Several harnesses may share one Maildir (two
// sessions on one mailbox). Used by tst_imap_commands.cpp and tst_imap_conformance.cpp
// (one translation unit each, hence the anonymous namespace).
#pragma once

#include "imapd/commands/commands.h"
#include "imapd/imap_session.h"
#include "recording_io.h"

#include "core/paths.h"

#include <QCoreApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QtTest>

#include <sys/stat.h>
#include <utime.h>

using namespace postern;
using namespace postern::imap;

namespace {

const QString kUser = QStringLiteral("alice@example.org");
const QByteArray kPassword = "secret-1";

class FakeBackend : public ImapBackend {
public:
    qint64 quota = 0;
    void authenticate(const AuthRequest& request, QByteArray password, AuthDone done) override {
        const bool good = request.login == kUser && password == kPassword;
        done(good ? AuthVerdict::Ok : AuthVerdict::Failed, request.login);
    }
    qint64 quotaOf(const QString&) override { return quota; }
};

// A RecordingIo whose queued output counts as pending until the test takes it (when
// `paced`), so that output backpressure can be watched.
class PacedIo : public postern::test::RecordingIo {
public:
    bool paced = false;
    qint64 pendingOutput() const override { return paced ? output.size() : 0; }
};

struct Reply {
    QList<QByteArray> untagged;  // without the CRLF
    QByteArray tagged;           // "OK ...", "NO [...] ...", "BAD ..." (the tag removed)
};

struct Harness {
    QTemporaryDir dir;
    PacedIo io;
    FakeBackend backend;
    SessionConfig config;
    std::unique_ptr<ImapSession> session;
    QByteArray buffer;
    int tags = 0;

    explicit Harness(qsizetype maxLine = 64 * 1024, const QString& sharedMailDir = QString()) {
        config.mailDir = sharedMailDir.isEmpty() ? dir.path() : sharedMailDir;
        config.limits.maxLine = maxLine;
        config.maxBadCommands = 1000;
        io.connInfo.mode = ListenerMode::Imaps;
        io.connInfo.tls = true;
        io.connInfo.peerAddress = QHostAddress(QStringLiteral("192.0.2.9"));
    }
    QString root() const { return maildirRoot(config.mailDir, kUser); }
    QString folder(const QString& name) const {
        return name == u"INBOX" ? root() : root() + QStringLiteral("/.") + name;
    }

    void start() {
        session = std::make_unique<ImapSession>(io, backend, config);
        session->start();
        io.take();
        const Reply r = run("LOGIN " + kUser.toUtf8() + ' ' + kPassword);
        QVERIFY2(r.tagged.startsWith("OK"), r.tagged.constData());
    }

    // One command; chunk = bytes per consume() call (1: byte by byte).
    // Commands answered on a worker thread (APPEND) finish later: with waitForTag, run()
    // processes events until the tagged answer is there (or the session closed, or 10 s).
    bool waitForTag = false;

    Reply run(const QByteArray& command, int chunk = 1) {
        const QByteArray tag = "t" + QByteArray::number(++tags);
        postern::test::feed(*session, buffer, tag + ' ' + command + "\r\n", chunk);
        if (waitForTag) {
            QElapsedTimer clock;
            clock.start();
            while (!io.output.startsWith(tag + ' ') && !io.output.contains("\r\n" + tag + ' ') && !io.closed &&
                   clock.elapsed() < 10000)
                QCoreApplication::processEvents(QEventLoop::AllEvents, 5);
        }
        Reply r;
        const QByteArray out = io.take();
        qsizetype pos = 0;
        while (pos < out.size()) {
            qsizetype end = out.indexOf("\r\n", pos);
            if (end < 0) end = out.size();
            QByteArray line = out.mid(pos, end - pos);
            pos = end + 2;
            // Literals in the response: their bytes belong to this line (several in one line).
            static const QRegularExpression literal(QStringLiteral("\\{(\\d+)\\}$"));
            for (auto m = literal.match(QString::fromLatin1(line.right(24))); m.hasMatch() && pos <= out.size();
                 m = literal.match(QString::fromLatin1(line.right(24)))) {
                const qsizetype n = m.captured(1).toLongLong();
                line += "\r\n" + out.mid(pos, n);
                pos += n;
                qsizetype rest = out.indexOf("\r\n", pos);
                if (rest < 0) rest = out.size();
                const QByteArray tail = out.mid(pos, rest - pos);
                line += tail;
                pos = rest + 2;
                if (tail.isEmpty()) break;
            }
            if (line.startsWith(tag + ' '))
                r.tagged = line.mid(tag.size() + 1);
            else
                r.untagged << line;
        }
        return r;
    }

    // "APPEND mailbox [extra ]{n+}\r\n<content>" (a non-synchronising literal of the right size).
    static QByteArray append(const QByteArray& mailbox, const QByteArray& extra, const QByteArray& content) {
        return "APPEND " + mailbox + ' ' + (extra.isEmpty() ? QByteArray() : extra + ' ') + '{' +
               QByteArray::number(content.size()) + "+}\r\n" + content;
    }

    // A message file in cur/ of `folderName` (INBOX or a folder made at login), with `flags`.
    QString addMessage(const QString& folderName, const QByteArray& content, const QString& flags, int n) {
        const QString base =
            QStringLiteral("17000000%1.M1P1Q%1.test,S=%2").arg(n, 2, 10, QLatin1Char('0')).arg(content.size());
        const QString path = folder(folderName) + QStringLiteral("/cur/") + base + QStringLiteral(":2,") + flags;
        QFile f(path);
        if (!f.open(QIODevice::WriteOnly) || f.write(content) != content.size()) return {};
        f.close();
        struct utimbuf t {
            1700000000 + n, 1700000000 + n
        };  // delivery order = n
        ::utime(QFile::encodeName(path).constData(), &t);
        return path;
    }
};

inline QStringList filesIn(const QString& dir) {
    return QDir(dir).entryList(QDir::Files | QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name);
}

// Message lines of a folder's dovecot-uidlist (the header line excluded).
inline int uidListLines(const QString& folderDir) {
    QFile f(folderDir + QStringLiteral("/dovecot-uidlist"));
    if (!f.open(QIODevice::ReadOnly)) return 0;
    int n = 0;
    const QList<QByteArray> lines = f.readAll().split('\n');
    for (qsizetype i = 1; i < lines.size(); ++i)
        if (!lines.at(i).isEmpty()) ++n;
    return n;
}

inline QByteArray nots(int n) {
    return QByteArray("NOT ").repeated(n);
}
inline QByteArray ors(int n) {
    return QByteArray("OR DELETED ").repeated(n);
}

// "* n FETCH (UID u FLAGS (...))" lines -> "u:flags" in order.
inline QStringList uidsAndFlags(const Reply& r) {
    QStringList out;
    static const QRegularExpression re(
        QStringLiteral("^\\* \\d+ FETCH \\((?:UID (\\d+) FLAGS \\(([^)]*)\\)|FLAGS \\(([^)]*)\\) UID (\\d+))"));
    for (const QByteArray& l : r.untagged) {
        const auto m = re.match(QString::fromUtf8(l));
        if (!m.hasMatch()) continue;
        out << (m.captured(1).isEmpty() ? m.captured(4) + QLatin1Char(':') + m.captured(3)
                                        : m.captured(1) + QLatin1Char(':') + m.captured(2));
    }
    return out;
}

}  // namespace
