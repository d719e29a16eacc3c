// web_session.cpp — see web_session.h.
#include "web_session.h"

#include "common/spool/queue.h"

#include "core/log.h"
#include "core/setting_keys.h"
#include "core/stats.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QLocale>
#include <QRegularExpression>
#include <QUrl>
#include <algorithm>

namespace postern::web {

namespace {
QByteArray reason(int code) {
    switch (code) {
        case 200:
            return "OK";
        case 301:
            return "Moved Permanently";
        case 303:
            return "See Other";
        case 401:
            return "Unauthorized";
        case 415:
            return "Unsupported Media Type";
        case 429:
            return "Too Many Requests";
        case 400:
            return "Bad Request";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 411:
            return "Length Required";
        case 413:
            return "Content Too Large";
        case 414:
            return "URI Too Long";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 503:
            return "Service Unavailable";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Status";
    }
}

QByteArray httpDate() {
    return QLocale::c()
               .toString(QDateTime::currentDateTimeUtc(), QStringLiteral("ddd, dd MMM yyyy HH:mm:ss"))
               .toLatin1() +
           " GMT";
}

int countEnvelopes(const QString& dir) {
    return int(QDir(dir).entryList({QStringLiteral("*.env")}, QDir::Files).size());
}
}  // namespace

QByteArray metricsText(const WebContext& ctx) {
    QByteArray out;
    out += "# HELP postern_build_info Postern version.\n# TYPE postern_build_info gauge\n";
    out += "postern_build_info{version=\"" POSTERN_VERSION "\"} 1\n";
    out +=
        "# HELP postern_webd_start_time_seconds When postern-webd started (Unix time).\n# TYPE "
        "postern_webd_start_time_seconds gauge\n";
    out += "postern_webd_start_time_seconds " + QByteArray::number(ctx.startedSecs) + "\n";
    out +=
        "# HELP postern_queue_messages Messages in the outbound queue by state.\n# TYPE postern_queue_messages gauge\n";
    for (const spool::QueueState state : spool::queueStates()) {
        out += "postern_queue_messages{state=\"" + spool::toString(state).toLatin1() + "\"} " +
               QByteArray::number(countEnvelopes(spool::stateDir(ctx.queueDir, state))) + "\n";
    }
    // The other daemons' counters, from their <run_dir>/<program>.stats files (stats.h).
    // A daemon with worker processes has one file per process: their counters are summed.
    QMap<QString, QList<QPair<QString, stats::Counter>>> byName;
    for (const QFileInfo& fi : QDir(ctx.runDir).entryInfoList({QStringLiteral("*.stats")}, QDir::Files)) {
        QString program;
        for (const stats::Counter& c : stats::readFile(fi.filePath(), &program)) {
            QList<QPair<QString, stats::Counter>>& series = byName[c.name];
            auto same = std::find_if(series.begin(), series.end(),
                                     [&](const auto& p) { return p.first == program && p.second.labels == c.labels; });
            if (same != series.end())
                same->second.value += c.value;
            else
                series << qMakePair(program, c);
        }
    }
    for (auto it = byName.cbegin(); it != byName.cend(); ++it) {
        static const QRegularExpression valid(QStringLiteral("^[a-z_][a-z0-9_]*$"));
        if (!valid.match(it.key()).hasMatch()) continue;
        out += "# TYPE " + it.key().toLatin1() + " counter\n";
        for (const auto& [program, c] : it.value()) {
            QByteArray labels = "program=\"" + program.toLatin1() + "\"";
            for (auto l = c.labels.cbegin(); l != c.labels.cend(); ++l) {
                if (!valid.match(l.key()).hasMatch()) continue;
                QByteArray v = l.value().toUtf8();
                v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                labels += "," + l.key().toLatin1() + "=\"" + v + "\"";
            }
            out += it.key().toLatin1() + "{" + labels + "} " + QByteArray::number(c.value) + "\n";
        }
    }
    out +=
        "# HELP postern_webd_responses_total HTTP responses of postern-webd by route and status.\n"
        "# TYPE postern_webd_responses_total counter\n";
    for (auto r = ctx.responses.cbegin(); r != ctx.responses.cend(); ++r)
        for (auto c = r->cbegin(); c != r->cend(); ++c)
            out += "postern_webd_responses_total{route=\"" + r.key().toLatin1() + "\",code=\"" +
                   QByteArray::number(c.key()) + "\"} " + QByteArray::number(c.value()) + "\n";
    return out;
}

WebSession::WebSession(SessionIo& io, WebContext& ctx) : m_io(io), m_ctx(ctx) {}

void WebSession::start() {
    m_io.setIdleTimeout(10'000);
    m_io.setDeadline(m_ctx.requestDeadlineMs);
}

qsizetype WebSession::consume(const char* data, qsizetype size) {
    if (m_done) return size;  // anything after the request is ignored
    m_buf.append(data, size);
    if (!m_head) {
        HttpParse p = parseRequestHead(m_buf);
        if (p.status == HttpParse::Status::Incomplete) return size;
        if (p.status == HttpParse::Status::Error) {
            fail(p.errorCode, p.errorText);
            return size;
        }
        const bool panelPath = p.request.path == u"/panel" || p.request.path.startsWith(QStringLiteral("/panel/"));
        if (panelPath && p.request.contentLength > kMaxFormBody) {
            fail(413, QStringLiteral("form too large"));
            return size;
        }
        if (p.request.contentLength > kMaxBody) {
            fail(413, QStringLiteral("request body too large"));
            return size;
        }
        m_buf.remove(0, p.headerBytes);
        m_head = std::make_unique<HttpParse>(std::move(p));
    }
    const qint64 need = m_head->request.contentLength;
    if (m_buf.size() < need || m_handled) return size;
    m_handled = true;
    m_io.setIdleTimeout(60'000);  // a login may wait for the throttle's delay (auth.failure_delay_max)
    handle(m_head->request, m_buf.left(need));
    return size;
}

void WebSession::handle(const HttpRequest& r, const QByteArray& body) {
    const bool tls = m_io.info().tls;
    const bool head = r.method == "HEAD";
    const bool get = r.method == "GET" || head;
    auto accounts = m_ctx.accounts->current();
    const Site site = siteFrom(*m_ctx.config, accounts ? *accounts : Accounts());
    const QString path = r.path;
    if (path == u"/.well-known/mta-sts.txt") {
        if (!get) return respond(QStringLiteral("mta-sts"), 405, "text/plain", "GET only\n", {{"Allow", "GET, HEAD"}});
        if (!tls)
            return respond(QStringLiteral("mta-sts"), 404, "text/plain",
                           "The MTA-STS policy is served over HTTPS only (RFC 8461).\n");
        return respond(QStringLiteral("mta-sts"), 200, "text/plain", head ? QByteArray() : mtaStsPolicy(site));
    }
    if (path == u"/mail/config-v1.1.xml" || path == u"/.well-known/autoconfig/mail/config-v1.1.xml") {
        if (!get)
            return respond(QStringLiteral("autoconfig"), 405, "text/plain", "GET only\n", {{"Allow", "GET, HEAD"}});
        return respond(QStringLiteral("autoconfig"), 200, "application/xml; charset=utf-8",
                       autoconfigXml(site, queryParameter(r.query, QStringLiteral("emailaddress"))));
    }
    if (path.compare(QStringLiteral("/autodiscover/autodiscover.xml"), Qt::CaseInsensitive) == 0) {
        if (r.method != "POST")
            return respond(QStringLiteral("autodiscover"), 405, "text/plain", "POST only\n", {{"Allow", "POST"}});
        return respond(QStringLiteral("autodiscover"), 200, "application/xml; charset=utf-8",
                       autodiscoverXml(site, autodiscoverEmail(body)));
    }
    if (path.startsWith(QStringLiteral("/.well-known/acme-challenge/"))) {
        static const QRegularExpression token(QStringLiteral("^[A-Za-z0-9_-]{1,256}$"));
        const QString t = path.mid(28);
        if (!get) return respond(QStringLiteral("acme"), 405, "text/plain", "GET only\n", {{"Allow", "GET, HEAD"}});
        if (!token.match(t).hasMatch())
            return respond(QStringLiteral("acme"), 404, "text/plain", "no such challenge\n");
        QFile f(m_ctx.acmeDir + QLatin1Char('/') + t);
        if (!f.open(QIODevice::ReadOnly))
            return respond(QStringLiteral("acme"), 404, "text/plain", "no such challenge\n");
        return respond(QStringLiteral("acme"), 200, "application/octet-stream", f.read(4096));
    }
    if (path == u"/panel" || path.startsWith(QStringLiteral("/panel/"))) {
        if (!m_ctx.panel) return respond(QStringLiteral("panel"), 404, "text/plain", "not found\n");
        if (!tls) {
            // The panel is served over HTTPS only; plain HTTP is sent there (never a form over plain text).
            const QList<ListenAddress> https =
                postern::get(*m_ctx.config, keys::https::listen);  // `get` is a local here
            if (https.isEmpty())
                return respond(QStringLiteral("panel"), 404, "text/plain", "the panel needs https.listen\n");
            const quint16 port = https.first().port;
            const QByteArray location = "https://" + QUrl::toAce(m_ctx.config->hostname()) +
                                        ((port == 0 || port == 443) ? QByteArray() : ":" + QByteArray::number(port)) +
                                        QUrl::toPercentEncoding(path, "/");
            return respond(QStringLiteral("panel"), 301, "text/plain", "the panel is served over HTTPS\n",
                           {{"Location", location}});
        }
        handlePanel(*m_ctx.panel, r, body, m_io.info(), m_life.get(), [this](PanelResponse resp) {
            respond(QStringLiteral("panel"), resp.code, resp.contentType, resp.body, resp.headers);
        });
        return;
    }
    if (path == u"/health") {
        if (!get) return respond(QStringLiteral("health"), 405, "text/plain", "GET only\n", {{"Allow", "GET, HEAD"}});
        return respond(QStringLiteral("health"), 200, "text/plain", "ok\n");
    }
    if (path == u"/metrics") {
        if (!get) return respond(QStringLiteral("metrics"), 405, "text/plain", "GET only\n", {{"Allow", "GET, HEAD"}});
        if (!m_io.info().peerAddress.isLoopback())
            return respond(QStringLiteral("metrics"), 403, "text/plain", "metrics are for local clients\n");
        return respond(QStringLiteral("metrics"), 200, "text/plain; version=0.0.4", metricsText(m_ctx));
    }
    respond(QStringLiteral("other"), 404, "text/plain", "not found\n");
}

void WebSession::respond(const QString& route, int code, const QByteArray& contentType, const QByteArray& body,
                         const QList<QPair<QByteArray, QByteArray>>& extra) {
    if (m_done) return;
    m_done = true;
    ++m_ctx.responses[route][code];
    const bool head = m_head && m_head->request.method == "HEAD";
    QByteArray out = "HTTP/1.1 " + QByteArray::number(code) + ' ' + reason(code) + "\r\n";
    out += "Date: " + httpDate() + "\r\nServer: Postern\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n";
    out += "Content-Type: " + contentType + "\r\nContent-Length: " + QByteArray::number(body.size()) + "\r\n";
    if (code == 200 && route == u"mta-sts") out += "Cache-Control: max-age=3600\r\n";
    for (const auto& [k, v] : extra) out += k + ": " + v + "\r\n";
    out += "\r\n";
    if (!head) out += body;
    m_io.send(out);
    log::info(u"http",
              log::Fields()
                  .add("remote", m_io.info().peerAddress.toString())
                  .add("method", m_head ? QString::fromLatin1(m_head->request.method.left(16)) : QStringLiteral("-"))
                  .add("path", m_head ? m_head->request.path.left(200) : QStringLiteral("-"))
                  .add("status", code));
    m_io.close(QStringLiteral("response sent"));
}

void WebSession::fail(int code, const QString& text) {
    respond(QStringLiteral("error"), code, "text/plain", text.toUtf8() + '\n');
}

void WebSession::timedOut() {
    if (m_done) return m_io.close(QStringLiteral("timeout"));
    fail(408, QStringLiteral("request not received in time"));
}

void WebSession::deadlinePassed() {
    if (m_done) return m_io.close(QStringLiteral("deadline passed"));
    fail(408, QStringLiteral("request not complete in time"));
}

void WebSession::shutdown() {
    if (!m_done) {
        m_done = true;
        m_io.close(QStringLiteral("shutdown"));
    }
}

}  // namespace postern::web
