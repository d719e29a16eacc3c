// recording_io.h — a SessionIo for unit tests: records what a session sends
// and asks for, so parsers and sessions are tested without sockets.
#pragma once

#include "common/session_io.h"

#include <QByteArray>
#include <QString>

namespace postern::test {

class RecordingIo : public SessionIo {
public:
    ConnectionInfo connInfo;
    QByteArray output;
    bool startTlsRequested = false;
    bool closed = false;
    QString closeReason;
    bool suspended = false;
    qint64 idleTimeout = 0;
    qint64 deadline = 0;  // last setDeadline() (0: none)
    int writableRequests = 0;

    void send(const QByteArray& bytes) override { output += bytes; }
    void startTls() override { startTlsRequested = true; }
    void close(const QString& reason) override {
        closed = true;
        closeReason = reason;
    }
    void suspend() override { suspended = true; }
    void resume() override { suspended = false; }
    void setIdleTimeout(qint64 ms) override { idleTimeout = ms; }
    void setDeadline(qint64 ms) override { deadline = ms; }
    void notifyWhenWritable() override { ++writableRequests; }
    qint64 pendingOutput() const override { return 0; }
    const ConnectionInfo& info() const override { return connInfo; }
    QByteArray take() {
        QByteArray o = output;
        output.clear();
        return o;
    }
};

// Feeds `data` into `session` the way a connection would: unconsumed bytes stay
// buffered and are offered again with the next piece. chunk = 1 feeds one byte at a time.
template <typename Session>
void feed(Session& session, QByteArray& buffer, const QByteArray& data, int chunk = 1) {
    for (qsizetype i = 0; i < data.size(); i += chunk) {
        buffer += data.mid(i, chunk);
        for (;;) {
            if (buffer.isEmpty()) break;
            const qsizetype used = session.consume(buffer.constData(), buffer.size());
            if (used <= 0) break;
            buffer.remove(0, used);
        }
    }
}

}  // namespace postern::test
