// spam_status.cpp — see spam_status.h.
#include "spam_status.h"

#include "atomic_file.h"
#include "setting_keys.h"
#include "spam_engine.h"

#include <QHostAddress>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

namespace postern {

QString rspamdAddress(const Config& config, const QString& configDir) {
    const QString address = get(config, keys::spam::rspamdAddress);
    return address.isEmpty() ? spamPaths(config, configDir).rspamdSocket : address;
}

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
        for (const QJsonValue& c :
             QJsonDocument::fromJson(*bytes).object().value(QStringLiteral("counters")).toArray()) {
            const QJsonObject o = c.toObject();
            if (o.value(QStringLiteral("name")).toString() != u"postern_spam_scans_total") continue;
            counts[o.value(QStringLiteral("labels")).toObject().value(QStringLiteral("result")).toString()] +=
                quint64(o.value(QStringLiteral("value")).toInteger());
        }
    }
    return counts;
}

QString spamStatusLine(const Config& config, const QString& configDir, bool* warning) {
    if (!get(config, keys::spam::enabled)) return QStringLiteral("spam filter: off (spam.enabled = false)");
    const QString address = rspamdAddress(config, configDir);
    const bool answering = rspamdAnswers(address, kSpamPingTimeoutMs);
    const quint64 unchecked = scanCounts(config).value(QStringLiteral("unchecked"));
    QString line = answering ? QStringLiteral("spam filter: on (rspamd at %1)").arg(address)
                             : QStringLiteral("WARNING: spam filter: rspamd does not answer at %1; inbound mail is %2")
                                   .arg(address, get(config, keys::spam::onFailure) == u"tempfail"
                                                     ? QStringLiteral("answered 451 until it is back")
                                                     : QStringLiteral("accepted unchecked"));
    if (unchecked > 0)
        line += QStringLiteral("; %1 message(s) accepted unchecked since postern-smtpd started").arg(unchecked);
    *warning = !answering || unchecked > 0;
    return line;
}

}  // namespace postern
