// tst_web_session.cpp — postern-webd's session without sockets (a recording
// SessionIo): the request deadline. A client that sends its request a byte at
// a time (each byte within the idle time) is answered 408 and disconnected
// when the deadline counted from connect passes (issue 16, slow pre-login
// clients holding every slot); one that completed its request is not.
#include "recording_io.h"
#include "webd/web_session.h"

#include <QtTest>

using namespace postern;
using namespace postern::web;
using postern::test::RecordingIo;

class TstWebSession : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void deadlineIsSetAtStart() {
        RecordingIo io;
        WebContext ctx;
        ctx.requestDeadlineMs = 1234;
        WebSession s(io, ctx);
        s.start();
        QCOMPARE(io.deadline, qint64(1234));
        QCOMPARE(io.idleTimeout, qint64(10'000));
    }

    void tricklingClientGets408() {
        RecordingIo io;
        WebContext ctx;
        WebSession s(io, ctx);
        s.start();
        QByteArray buffer;
        test::feed(s, buffer, "GET /health HTTP/1.1\r\nHost: mail.example.test\r\nX-Slow: ");  // never ends its head
        QCOMPARE(io.output, QByteArray());
        s.deadlinePassed();
        const QByteArray out = io.take();
        QVERIFY2(out.startsWith("HTTP/1.1 408 Request Timeout\r\n"), out.constData());
        QVERIFY(out.endsWith("\r\n\r\nrequest not complete in time\n"));
        QVERIFY(io.closed);
    }

    void answeredRequestIsNotAnsweredTwice() {
        RecordingIo io;
        WebContext ctx;
        WebSession s(io, ctx);
        s.start();
        QByteArray buffer;
        test::feed(s, buffer, "NOT HTTP AT ALL\r\n\r\n", 4096);  // 400, answered and closing
        const QByteArray first = io.take();
        QVERIFY2(first.startsWith("HTTP/1.1 4"), first.constData());
        s.deadlinePassed();
        QCOMPARE(io.take(), QByteArray());
    }
};

QTEST_GUILESS_MAIN(TstWebSession)
#include "tst_web_session.moc"
