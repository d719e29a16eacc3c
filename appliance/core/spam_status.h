// spam_status.h — is the spam filter healthy: what `posternctl status`, `posternctl spam`
// and the web panel's dashboard say about it (one implementation for all three).
//
// Interface:
//   rspamdAddress(config, configDir)  spam.rspamd_address, else the supervisor's socket.
//   RspamdConnection                  a BLOCKING connection to Rspamd (unix socket or
//                                     loopback host:port) with one deadline for all of it.
//   rspamdAnswers(address, timeoutMs) GET /ping answered 200 "pong" (a worker serves).
//   scanCounts(config)                postern_spam_scans_total by result, from
//                                     postern-smtpd's stats file (empty when none).
//   spamStatusLine(config, configDir, &warning)
//                                     "spam filter: on (rspamd at ...)", "off (...)" or a
//                                     WARNING line; *warning when Rspamd does not answer
//                                     or mail was accepted unchecked.
// Blocking: rspamdAnswers/spamStatusLine wait up to kSpamPingTimeoutMs; never call
// them on an event loop thread (postern-webd runs them on a worker thread).
// Security: the stats file is read with a size cap (1 MiB); Rspamd's reply is read up to
// 4 KiB and only searched for the status line and "pong".
// Limits: kSpamPingTimeoutMs (3 s).
#pragma once

#include "config.h"

#include <QDeadlineTimer>
#include <QIODevice>
#include <QLocalSocket>
#include <QMap>
#include <QString>
#include <QTcpSocket>

#include <functional>
#include <memory>

namespace postern {

inline constexpr int kSpamPingTimeoutMs = 3000;

QString rspamdAddress(const Config& config, const QString& configDir);

// A blocking connection to Rspamd's scanner (unix socket or loopback host:port).
class RspamdConnection {
public:
    RspamdConnection(const QString& address, QDeadlineTimer deadline) : m_deadline(deadline) {
        if (address.startsWith(QLatin1Char('/'))) {
            auto s = std::make_unique<QLocalSocket>();
            s->connectToServer(address);
            if (s->waitForConnected(left()))
                m_local = std::move(s);
            else
                m_error = s->errorString();
            return;
        }
        const qsizetype colon = address.lastIndexOf(QLatin1Char(':'));
        QString host = address.left(colon);
        if (host.startsWith(QLatin1Char('[')) && host.endsWith(QLatin1Char(']'))) host = host.mid(1, host.size() - 2);
        const QHostAddress ip(host);
        if (colon <= 0 || ip.isNull()) {
            m_error = QStringLiteral("expected /path.sock or address:port");
            return;
        }
        auto s = std::make_unique<QTcpSocket>();
        s->connectToHost(ip, quint16(address.mid(colon + 1).toUInt()));
        if (s->waitForConnected(left()))
            m_tcp = std::move(s);
        else
            m_error = s->errorString();
    }
    bool connected() const { return m_local || m_tcp; }
    QString error() const { return m_error; }
    QIODevice* device() const { return m_local ? static_cast<QIODevice*>(m_local.get()) : m_tcp.get(); }

    bool send(const char* data, qint64 size) {
        if (device()->write(data, size) != size) return false;
        while (pending() > 0 && !m_deadline.hasExpired())
            if (!(m_local ? m_local->waitForBytesWritten(left()) : m_tcp->waitForBytesWritten(left()))) break;
        return pending() == 0;
    }
    // Reads until the peer closes, `max` bytes came, the deadline passed or `enough` (given
    // each new piece) says so; returns everything read.
    QByteArray receive(qsizetype max, const std::function<bool(const QByteArray&)>& enough) {
        QByteArray reply;
        while (reply.size() < max && !m_deadline.hasExpired()) {
            const bool more = m_local ? m_local->waitForReadyRead(left()) : m_tcp->waitForReadyRead(left());
            const QByteArray piece = device()->read(max - reply.size());
            reply += piece;
            if (!more || (!piece.isEmpty() && enough(piece))) break;
        }
        return reply;
    }

private:
    int left() const { return int(std::max<qint64>(1, m_deadline.remainingTime())); }
    qint64 pending() const { return m_local ? m_local->bytesToWrite() : m_tcp->bytesToWrite(); }
    QDeadlineTimer m_deadline;
    std::unique_ptr<QLocalSocket> m_local;
    std::unique_ptr<QTcpSocket> m_tcp;
    QString m_error;
};

bool rspamdAnswers(const QString& address, int timeoutMs);
QMap<QString, quint64> scanCounts(const Config& config);
QString spamStatusLine(const Config& config, const QString& configDir, bool* warning);

}  // namespace postern
