// web_session.h — one HTTP connection of postern-webd (a ProtocolSession on
// the common connection layer, so limits, TLS and shutdown work as for the
// mail daemons).
//
// Routes (GET and HEAD unless noted):
//   /.well-known/mta-sts.txt                      the MTA-STS policy (HTTPS only, RFC 8461 3.3)
//   /mail/config-v1.1.xml,
//   /.well-known/autoconfig/mail/config-v1.1.xml  Thunderbird autoconfig (?emailaddress=)
//   POST /autodiscover/autodiscover.xml           Outlook autodiscover (any case of the path)
//   /.well-known/acme-challenge/<token>           HTTP-01 answers from <data>/acme/challenges/
//   /health                                       200 "ok" (the daemon runs, config loaded)
//   /metrics                                      Prometheus text; loopback clients only (403)
//   /panel, /panel/...                            the web control panel (panel.h); HTTPS only:
//                                                 over plain HTTP a 301 to https://<hostname>/panel/...
// One request per connection ("Connection: close"); errors get the right
// status: 400, 403, 404, 405, 408, 411, 413, 414, 431, 501, 505.
// Limits: head as in http_request.h; request bodies (autodiscover) 64 KiB,
// panel forms kMaxFormBody (16 KiB, 413 before the body is read);
// 10 s idle between reads, and a deadline for the whole request counted from
// connect (WebContext::requestDeadlineMs, http.request_deadline, 30 s): a
// client that trickles its request byte by byte gets 408 and is disconnected.
#pragma once

#include "http_request.h"
#include "panel.h"
#include "web_content.h"

#include "common/session_io.h"

#include "core/accounts.h"
#include "core/config.h"

#include <QDateTime>
#include <QMap>
#include <memory>

namespace postern::web {

inline constexpr qsizetype kMaxBody = 64 * 1024;

struct WebContext {
    const Config* config = nullptr;
    AccountStore* accounts = nullptr;
    QString acmeDir;  // <data>/acme/challenges
    QString queueDir;
    QString runDir;  // where the daemons' .stats files are
    qint64 startedSecs = 0;
    qint64 requestDeadlineMs = 30'000;            // connect to complete request (0: none)
    QMap<QString, QMap<int, quint64>> responses;  // route -> status -> count
    PanelContext* panel = nullptr;                // null: no panel (404)
};

// Prometheus exposition of the counters and the queue size per state.
QByteArray metricsText(const WebContext& ctx);

class WebSession : public ProtocolSession {
public:
    WebSession(SessionIo& io, WebContext& ctx);
    void start() override;
    qsizetype consume(const char* data, qsizetype size) override;
    void tlsStarted() override {}
    void timedOut() override;
    void deadlinePassed() override;
    void shutdown() override;

private:
    void handle(const HttpRequest& r, const QByteArray& body);
    void respond(const QString& route, int code, const QByteArray& contentType, const QByteArray& body,
                 const QList<QPair<QByteArray, QByteArray>>& extra = {});
    void fail(int code, const QString& text);

    SessionIo& m_io;
    WebContext& m_ctx;
    QByteArray m_buf;
    std::unique_ptr<HttpParse> m_head;  // set once the head is complete and a body is awaited
    std::unique_ptr<QObject> m_life = std::make_unique<QObject>();  // answers of async work stop with it
    bool m_handled = false;  // the request went to its handler (which may answer later)
    bool m_done = false;
};

}  // namespace postern::web
