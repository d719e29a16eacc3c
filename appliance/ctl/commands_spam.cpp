// commands_spam.cpp — posternctl spam status|check: the spam filter for administrators.
//
//   spam status       the filter's line of `posternctl status` (on only when Rspamd answers
//                     GET /ping with pong), and postern-smtpd's scan counts by result since
//                     it started (postern_spam_scans_total in its stats file). Exit 1 when the
//                     filter is on and Rspamd does not answer.
//   spam check FILE   sends FILE (a message, RFC 5322) to the Rspamd that postern-smtpd uses
//                     (spam.rspamd_address, else the supervisor's own socket) exactly as a
//                     scan does (POST /checkv2, the same request head and reply parser), and
//                     prints Rspamd's action, score, symbols and what Postern would do with
//                     it under the spam.action_* settings. Nothing is stored or learnt.
//                     Exit 1 when Rspamd cannot be asked or answers badly.
// Security: FILE is read with the caller's rights; nothing in data_dir is written. The
// reply is parsed by the same strict parser as in postern-smtpd (rspamd_protocol.h).
// Limits: FILE at most smtp.max_message_size (what postern-smtpd would accept); the whole
// exchange at most spam.timeout.
#include "ctl.h"

#include "common/spam/rspamd_protocol.h"

#include "core/atomic_file.h"
#include "core/spam_engine.h"

#include <QDeadlineTimer>
#include <QFile>
#include <QHostAddress>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLocalSocket>
#include <QMap>
#include <QSysInfo>
#include <QTcpSocket>

#include <algorithm>
#include <functional>
#include <memory>

namespace postern::ctl {

namespace {

QString rspamdAddress(const Config& config, const QString& configDir) {
    const QString address = config.value(QStringLiteral("spam.rspamd_address"));
    return address.isEmpty() ? spamPaths(config, configDir).rspamdSocket : address;
}

// A blocking connection to Rspamd's scanner (unix socket or loopback host:port).
class RspamdConnection {
public:
    RspamdConnection(const QString& address, QDeadlineTimer deadline) : m_deadline(deadline) {
        if (address.startsWith(QLatin1Char('/'))) {
            auto s = std::make_unique<QLocalSocket>();
            s->connectToServer(address);
            if (s->waitForConnected(left())) m_local = std::move(s);
            else m_error = s->errorString();
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
        if (s->waitForConnected(left())) m_tcp = std::move(s);
        else m_error = s->errorString();
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

// Rspamd answers GET /ping with "pong" once a worker serves requests: a socket that only
// accepts (the main process binds it before its workers are up) is not enough.
bool rspamdAnswers(const QString& address, int timeoutMs) {
    RspamdConnection c(address, QDeadlineTimer(timeoutMs));
    if (!c.connected()) return false;
    static const QByteArray ping("GET /ping HTTP/1.0\r\n\r\n");
    if (!c.send(ping.constData(), ping.size())) return false;
    QByteArray seen;
    const QByteArray reply = c.receive(4096, [&seen](const QByteArray& piece) {
        seen += piece;
        return seen.contains("pong");
    });
    return reply.startsWith("HTTP/1.") && reply.left(reply.indexOf('\n')).contains(" 200") && reply.contains("pong");
}

// postern_spam_scans_total by result, from postern-smtpd's stats file (empty when none).
QMap<QString, quint64> scanCounts(const Config& config) {
    QMap<QString, quint64> counts;
    if (auto bytes = readFile(config.runDir() + QStringLiteral("/postern-smtpd.stats"), 1024 * 1024)) {
        for (const QJsonValue& c : QJsonDocument::fromJson(*bytes).object().value(QStringLiteral("counters")).toArray()) {
            const QJsonObject o = c.toObject();
            if (o.value(QStringLiteral("name")).toString() != u"postern_spam_scans_total") continue;
            counts[o.value(QStringLiteral("labels")).toObject().value(QStringLiteral("result")).toString()] +=
                quint64(o.value(QStringLiteral("value")).toInteger());
        }
    }
    return counts;
}

int spamStatus(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    bool warn = false;
    ctx.out << spamStatusLine(config, ctx.configDir, &warn) << Qt::endl;
    const QMap<QString, quint64> counts = scanCounts(config);
    if (counts.isEmpty()) ctx.out << "scans since postern-smtpd started: none" << Qt::endl;
    for (auto it = counts.cbegin(); it != counts.cend(); ++it) ctx.out << "scans " << it.key() << ": " << it.value() << Qt::endl;
    const bool down = config.flag(QStringLiteral("spam.enabled")) && !rspamdAnswers(rspamdAddress(config, ctx.configDir), 3000);
    return down ? 1 : 0;
}

int spamCheck(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("spam check FILE"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    QFile file(ctx.args.first());
    if (!file.open(QIODevice::ReadOnly)) return ctx.fail(QStringLiteral("%1: %2").arg(file.fileName(), file.errorString()));
    const qint64 maxBytes = config.size(QStringLiteral("smtp.max_message_size"));
    if (file.size() > maxBytes)
        return ctx.fail(QStringLiteral("%1: %2 bytes, more than smtp.max_message_size (%3)").arg(file.fileName()).arg(file.size()).arg(maxBytes));
    const QString address = rspamdAddress(config, ctx.configDir);
    RspamdConnection c(address, QDeadlineTimer(config.durationMs(QStringLiteral("spam.timeout"))));
    if (!c.connected()) return ctx.fail(QStringLiteral("rspamd at %1: %2").arg(address, c.error()));
    spam::CheckRequest request;
    request.queueId = QStringLiteral("posternctl-check");
    request.mtaName = config.hostname();
    const QByteArray head = spam::buildCheckRequestHead(request, file.size());
    if (!c.send(head.constData(), head.size())) return ctx.fail(QStringLiteral("rspamd at %1: cannot send the request").arg(address));
    qint64 sent = 0;
    while (sent < file.size()) {
        const QByteArray chunk = file.read(64 * 1024);
        if (chunk.isEmpty()) return ctx.fail(QStringLiteral("%1: %2").arg(file.fileName(), file.errorString()));
        if (!c.send(chunk.constData(), chunk.size())) return ctx.fail(QStringLiteral("rspamd at %1: cannot send the message").arg(address));
        sent += chunk.size();
    }
    spam::RspamdReplyParser parser;
    c.receive(spam::kMaxReplyHead + spam::kMaxReplyBody + 1,
              [&parser](const QByteArray& piece) { return parser.feed(piece) != spam::RspamdReplyParser::State::NeedMore; });
    if (parser.state() == spam::RspamdReplyParser::State::Failed) return ctx.fail(QStringLiteral("rspamd: %1").arg(parser.error()));
    if (parser.state() != spam::RspamdReplyParser::State::Done)
        return ctx.fail(QStringLiteral("rspamd at %1: no complete answer within spam.timeout").arg(address));
    const spam::Verdict& v = parser.verdict();
    ctx.out << "action: " << spam::toString(v.action) << Qt::endl;
    ctx.out << "score: " << QString::number(v.score, 'f', 2) << " (required " << QString::number(v.requiredScore, 'f', 2) << ")" << Qt::endl;
    ctx.out << "symbols: " << (v.symbols.isEmpty() ? QStringLiteral("-") : v.symbols.join(QLatin1Char(' '))) << Qt::endl;
    const spam::Outcome outcome = spam::decide(v, spam::policyFromConfig(config));
    ctx.out << "postern would: " << spam::toString(outcome) << Qt::endl;
    return 0;
}

}  // namespace

QString spamStatusLine(const Config& config, const QString& configDir, bool* warning) {
    if (!config.flag(QStringLiteral("spam.enabled"))) return QStringLiteral("spam filter: off (spam.enabled = false)");
    const QString address = rspamdAddress(config, configDir);
    const bool answering = rspamdAnswers(address, 3000);
    const quint64 unchecked = scanCounts(config).value(QStringLiteral("unchecked"));
    QString line = answering ? QStringLiteral("spam filter: on (rspamd at %1)").arg(address)
                             : QStringLiteral("WARNING: spam filter: rspamd does not answer at %1; inbound mail is %2")
                                   .arg(address, config.value(QStringLiteral("spam.on_failure")) == u"tempfail"
                                                     ? QStringLiteral("answered 451 until it is back")
                                                     : QStringLiteral("accepted unchecked"));
    if (unchecked > 0) line += QStringLiteral("; %1 message(s) accepted unchecked since postern-smtpd started").arg(unchecked);
    *warning = !answering || unchecked > 0;
    return line;
}

void addSpamCommands(QList<Command>& out) {
    const QString s = QStringLiteral("spam");
    out << Command{{s, QStringLiteral("status")}, QString(),
                   QStringLiteral("the spam filter: Rspamd answering, scans by result since postern-smtpd started"), {}, {}, spamStatus};
    out << Command{{s, QStringLiteral("check")}, QStringLiteral("FILE"),
                   QStringLiteral("what Rspamd says about a message, and what Postern would do with it"), {}, {}, spamCheck};
}

}  // namespace postern::ctl
