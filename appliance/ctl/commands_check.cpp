// commands_check.cpp — posternctl check: an outside-in self-test, connecting to
// every enabled listener as a mail client would (like MXToolbox, but also
// with a real login, whose failures otherwise look like vanishing mail).
//
//   SMTP (25)            banner, EHLO, STARTTLS and its certificate, AUTH not
//                        offered on port 25, mail for another domain refused
//                        (not an open relay)
//   submission (587/465) banner, STARTTLS / TLS, certificate, AUTH only after
//                        TLS, with --user: AUTH PLAIN succeeds
//   IMAP (143/993)       greeting, STARTTLS / TLS, certificate, LOGINDISABLED
//                        before TLS, with --user: LOGIN succeeds
//   POP3 (110/995)       greeting, STLS / TLS, certificate, with --user: USER/PASS
//   HTTPS (443)          TLS, certificate, GET /health answers 200
// Certificates: expired or not naming the host name -> FAIL; self-signed or
// expiring within 14 days -> warn.
// Where: each listener's real address from the daemons' ready files (else the
// configuration; "*" is checked on 127.0.0.1); --target NAME=HOST:PORT overrides
// one, several separated by commas (e.g. to test another server). Exit status 1 when anything FAILs.
// Security: the password is read from --password-file, sent only inside TLS,
// and never printed.
#include "ctl.h"

#include "core/address.h"
#include "core/atomic_file.h"
#include "core/process.h"
#include "core/services.h"
#include "core/tls.h"

#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSslCipher>
#include <QSslConfiguration>
#include <QSslSocket>

namespace postern::ctl {

namespace {
constexpr int kTimeoutMs = 10'000;

struct Outcome {
    QStringList ok, warn, fail;
};

class Client {
public:
    bool connect(const QString& host, quint16 port, bool implicitTls, QString* error) {
        QSslConfiguration c = clientTlsConfiguration();  // TLS 1.2 or later, as every client of ours
        c.setPeerVerifyMode(QSslSocket::VerifyNone);     // verified below by us, with clearer messages
        m_sock.setSslConfiguration(c);
        if (implicitTls) {
            m_sock.connectToHostEncrypted(host, port);
            if (!m_sock.waitForEncrypted(kTimeoutMs)) return (*error = m_sock.errorString(), false);
        } else {
            m_sock.connectToHost(host, port);
            if (!m_sock.waitForConnected(kTimeoutMs)) return (*error = m_sock.errorString(), false);
        }
        return true;
    }
    bool startTls(QString* error) {
        m_buf.clear();
        m_sock.startClientEncryption();
        if (!m_sock.waitForEncrypted(kTimeoutMs)) return (*error = m_sock.errorString(), false);
        return true;
    }
    QByteArray line() {
        QElapsedTimer t;
        t.start();
        while (!m_buf.contains('\n') && t.elapsed() < kTimeoutMs) {
            if (!m_sock.bytesAvailable() && !m_sock.waitForReadyRead(int(kTimeoutMs - t.elapsed()))) break;
            m_buf += m_sock.readAll();
            if (m_buf.size() > 65536) break;
        }
        const qsizetype nl = m_buf.indexOf('\n');
        if (nl < 0) return {};
        QByteArray l = m_buf.left(nl);
        m_buf.remove(0, nl + 1);
        if (l.endsWith('\r')) l.chop(1);
        return l;
    }
    // SMTP: a complete (multi-line) reply; lines without the code.
    int smtpReply(QStringList* lines = nullptr) {
        for (int i = 0; i < 100; ++i) {
            const QByteArray l = line();
            if (l.size() < 3) return 0;
            if (lines) *lines << QString::fromUtf8(l.mid(4));
            if (l.size() == 3 || l.at(3) == ' ') return l.left(3).toInt();
        }
        return 0;
    }
    // IMAP: lines until the tagged reply; returns "OK"/"NO"/"BAD" and collects untagged lines.
    QString imapCommand(const QByteArray& tag, const QByteArray& cmd, QStringList* untagged = nullptr) {
        send(tag + ' ' + cmd);
        for (int i = 0; i < 200; ++i) {
            const QByteArray l = line();
            if (l.isEmpty()) return QStringLiteral("(no answer)");
            if (l.startsWith(tag + ' ')) return QString::fromLatin1(l.mid(tag.size() + 1).split(' ').value(0));
            if (untagged) *untagged << QString::fromUtf8(l);
        }
        return QStringLiteral("(no answer)");
    }
    void send(const QByteArray& l) {
        m_sock.write(l + "\r\n");
        m_sock.waitForBytesWritten(kTimeoutMs);
    }
    QSslSocket& socket() { return m_sock; }

private:
    QSslSocket m_sock;
    QByteArray m_buf;
};

void checkCertificate(QSslSocket& s, const QString& hostname, Outcome* o) {
    const QSslCertificate cert = s.peerCertificate();
    if (cert.isNull()) {
        o->fail << QStringLiteral("no certificate presented");
        return;
    }
    const qint64 days = QDateTime::currentDateTimeUtc().daysTo(cert.expiryDate());
    const QString proto = s.sessionProtocol() == QSsl::TlsV1_3 ? QStringLiteral("TLSv1.3") : QStringLiteral("TLSv1.2");
    if (days < 0) {
        o->fail << QStringLiteral("certificate expired on %1 (replace it, or let ACME renew it)")
                       .arg(cert.expiryDate().toString(Qt::ISODate));
        return;
    }
    const QList<QSslError> errors = QSslCertificate::verify(s.peerCertificateChain(), hostname);
    bool nameOk = true, trusted = true;
    for (const QSslError& e : errors) {
        if (e.error() == QSslError::HostNameMismatch)
            nameOk = false;
        else if (e.error() == QSslError::SelfSignedCertificate ||
                 e.error() == QSslError::SelfSignedCertificateInChain ||
                 e.error() == QSslError::UnableToGetLocalIssuerCertificate ||
                 e.error() == QSslError::CertificateUntrusted)
            trusted = false;
    }
    if (!nameOk) {
        o->fail << QStringLiteral("certificate does not name %1 (it names: %2); clients will refuse it")
                       .arg(hostname, cert.subjectAlternativeNames().values(QSsl::DnsEntry).join(QStringLiteral(", ")));
        return;
    }
    o->ok << QStringLiteral("%1, certificate for %2 valid %3 more days").arg(proto, hostname).arg(days);
    if (!trusted)
        o->warn << QStringLiteral(
            "certificate is not from a trusted CA (self-signed?); clients will warn until ACME or your own certificate "
            "replaces it");
    if (days < 14) o->warn << QStringLiteral("certificate expires in %1 days").arg(days);
}

Outcome checkSmtp(const ListenerInfo& listener, const QString& host, quint16 port, const QString& hostname,
                  const QString& user, const QByteArray& password) {
    Outcome o;
    Client c;
    QString err;
    const bool implicit = listener.implicitTls;
    if (!c.connect(host, port, implicit, &err))
        return o.fail << QStringLiteral("cannot connect: %1 (is the daemon running? posternctl status)").arg(err), o;
    QStringList lines;
    if (c.smtpReply(&lines) != 220) return o.fail << QStringLiteral("no 220 banner"), o;
    o.ok << QStringLiteral("banner");
    lines.clear();
    c.send("EHLO postern-check.invalid");
    if (c.smtpReply(&lines) != 250) return o.fail << QStringLiteral("EHLO refused"), o;
    auto has = [&](const char* cap) {
        for (const QString& l : lines)
            if (l.section(QLatin1Char(' '), 0, 0).compare(QLatin1String(cap), Qt::CaseInsensitive) == 0) return true;
        return false;
    };
    if (!implicit) {
        if (has("AUTH")) o.fail << QStringLiteral("AUTH is offered before TLS (passwords could travel in clear)");
        if (!has("STARTTLS")) return o.fail << QStringLiteral("STARTTLS not offered"), o;
        c.send("STARTTLS");
        if (c.smtpReply() != 220 || !c.startTls(&err))
            return o.fail << QStringLiteral("STARTTLS failed: %1").arg(err), o;
        lines.clear();
        c.send("EHLO postern-check.invalid");
        if (c.smtpReply(&lines) != 250) return o.fail << QStringLiteral("EHLO after STARTTLS refused"), o;
    }
    checkCertificate(c.socket(), hostname, &o);
    if (listener.mode == ListenerMode::Mx) {
        if (has("AUTH"))
            o.warn << QStringLiteral("AUTH offered on port %1 (users should submit on %2/%3)")
                          .arg(listener.standardPort)
                          .arg(listenerInfo(ListenerMode::Submission).standardPort)
                          .arg(listenerInfo(ListenerMode::Submissions).standardPort);
        c.send("MAIL FROM:<postern-check@example.invalid>");
        if (c.smtpReply() == 250) {
            c.send("RCPT TO:<relay-test@example.net>");
            const int code = c.smtpReply();
            if (code >= 200 && code < 300)
                o.fail << QStringLiteral("accepts mail for example.net without login: OPEN RELAY");
            else
                o.ok << QStringLiteral("refuses to relay (%1)").arg(code);
            c.send("RSET");
            c.smtpReply();
        }
    } else {
        if (!has("AUTH"))
            o.fail << QStringLiteral("AUTH not offered after TLS: users cannot log in to send");
        else if (!user.isEmpty()) {
            c.send("AUTH PLAIN " + (QByteArray(1, '\0') + user.toUtf8() + '\0' + password).toBase64());
            const int code = c.smtpReply();
            if (code == 235)
                o.ok << QStringLiteral("login as %1").arg(user);
            else
                o.fail << QStringLiteral("login as %1 failed (%2): check the password (posternctl user passwd)")
                              .arg(user)
                              .arg(code);
        }
    }
    c.send("QUIT");
    return o;
}

Outcome checkImap(const ListenerInfo& listener, const QString& host, quint16 port, const QString& hostname,
                  const QString& user, const QByteArray& password) {
    Outcome o;
    Client c;
    QString err;
    const bool implicit = listener.implicitTls;
    if (!c.connect(host, port, implicit, &err))
        return o.fail << QStringLiteral("cannot connect: %1 (is the daemon running? posternctl status)").arg(err), o;
    if (!c.line().startsWith("* OK")) return o.fail << QStringLiteral("no * OK greeting"), o;
    o.ok << QStringLiteral("greeting");
    if (!implicit) {
        QStringList caps;
        c.imapCommand("c1", "CAPABILITY", &caps);
        if (!caps.join(QLatin1Char(' ')).contains(QStringLiteral("LOGINDISABLED")))
            o.fail << QStringLiteral("LOGIN allowed before TLS (passwords could travel in clear)");
        if (c.imapCommand("c2", "STARTTLS") != u"OK" || !c.startTls(&err))
            return o.fail << QStringLiteral("STARTTLS failed %1").arg(err), o;
    }
    checkCertificate(c.socket(), hostname, &o);
    if (!user.isEmpty()) {
        auto quote = [](QByteArray s) { return '"' + s.replace('\\', "\\\\").replace('"', "\\\"") + '"'; };
        const QString r = c.imapCommand("c3", "LOGIN " + quote(user.toUtf8()) + ' ' + quote(password));
        if (r == u"OK")
            o.ok << QStringLiteral("login as %1").arg(user);
        else
            o.fail << QStringLiteral("login as %1 failed (%2)").arg(user, r);
    }
    c.imapCommand("c4", "LOGOUT");
    return o;
}

Outcome checkPop3(const ListenerInfo& listener, const QString& host, quint16 port, const QString& hostname,
                  const QString& user, const QByteArray& password) {
    Outcome o;
    Client c;
    QString err;
    const bool implicit = listener.implicitTls;
    if (!c.connect(host, port, implicit, &err))
        return o.fail << QStringLiteral("cannot connect: %1 (is the daemon running? posternctl status)").arg(err), o;
    if (!c.line().startsWith("+OK")) return o.fail << QStringLiteral("no +OK greeting"), o;
    o.ok << QStringLiteral("greeting");
    if (!implicit) {
        c.send("STLS");
        if (!c.line().startsWith("+OK") || !c.startTls(&err))
            return o.fail << QStringLiteral("STLS failed %1").arg(err), o;
    }
    checkCertificate(c.socket(), hostname, &o);
    if (!user.isEmpty()) {
        c.send("USER " + user.toUtf8());
        const bool u = c.line().startsWith("+OK");
        c.send("PASS " + password);
        if (u && c.line().startsWith("+OK"))
            o.ok << QStringLiteral("login as %1").arg(user);
        else
            o.fail << QStringLiteral("login as %1 failed").arg(user);
    }
    c.send("QUIT");
    return o;
}

// ManageSieve (RFC 5804): capabilities up to OK, STARTTLS before any login, then
// AUTHENTICATE PLAIN with an initial response.
Outcome checkManageSieve(const ListenerInfo& listener, const QString& host, quint16 port, const QString& hostname,
                         const QString& user, const QByteArray& password) {
    Outcome o;
    Client c;
    QString err;
    if (!c.connect(host, port, listener.implicitTls, &err))
        return o.fail << QStringLiteral("cannot connect: %1 (is the daemon running? posternctl status)").arg(err), o;
    // The capability lines, then OK / NO / BYE; at most 32 lines.
    auto capabilities = [&c](QByteArray* last) {
        QByteArrayList caps;
        for (int i = 0; i < 32; ++i) {
            const QByteArray l = c.line();
            if (l.isEmpty() || l.startsWith("OK") || l.startsWith("NO") || l.startsWith("BYE")) {
                *last = l;
                break;
            }
            caps << l;
        }
        return caps.join(' ');
    };
    QByteArray last;
    QByteArray caps = capabilities(&last);
    if (!last.startsWith("OK")) return o.fail << QStringLiteral("no capabilities and OK greeting"), o;
    o.ok << QStringLiteral("greeting");
    if (!listener.implicitTls) {
        if (caps.contains("\"SASL\" \"PLAIN"))
            o.fail << QStringLiteral("AUTHENTICATE offered before TLS (passwords could travel in clear)");
        c.send("STARTTLS");
        if (!c.line().startsWith("OK") || !c.startTls(&err))
            return o.fail << QStringLiteral("STARTTLS failed %1").arg(err), o;
        caps = capabilities(&last);  // RFC 5804 2.2: sent again after TLS
        if (!last.startsWith("OK")) return o.fail << QStringLiteral("no capabilities after STARTTLS"), o;
    }
    checkCertificate(c.socket(), hostname, &o);
    if (!user.isEmpty()) {
        const QByteArray b64 = (QByteArray(1, '\0') + user.toUtf8() + QByteArray(1, '\0') + password).toBase64();
        c.send("AUTHENTICATE \"PLAIN\" \"" + b64 + '"');
        if (c.line().startsWith("OK"))
            o.ok << QStringLiteral("login as %1").arg(user);
        else
            o.fail << QStringLiteral("login as %1 failed").arg(user);
    }
    c.send("LOGOUT");
    return o;
}

Outcome checkHttps(const QString& host, quint16 port, const QString& hostname) {
    Outcome o;
    Client c;
    QString err;
    if (!c.connect(host, port, true, &err))
        return o.fail << QStringLiteral("cannot connect: %1 (is postern-webd running?)").arg(err), o;
    checkCertificate(c.socket(), hostname, &o);
    c.send("GET /health HTTP/1.1\r\nHost: " + hostname.toUtf8() + "\r\nConnection: close\r\n");
    const QByteArray status = c.line();
    if (status.startsWith("HTTP/1.1 200"))
        o.ok << QStringLiteral("/health 200");
    else
        o.fail << QStringLiteral("/health answered '%1'").arg(QString::fromLatin1(status.left(60)));
    return o;
}

// The checks a listener's protocol gets; false when there is none (plain HTTP only redirects).
bool checkListener(const ListenerInfo& l, const QString& host, quint16 port, const QString& hostname,
                   const QString& user, const QByteArray& password, Outcome* o) {
    switch (l.protocol) {
        case Protocol::Smtp:
            *o = checkSmtp(l, host, port, hostname, user, password);
            return true;
        case Protocol::Imap:
            *o = checkImap(l, host, port, hostname, user, password);
            return true;
        case Protocol::Pop3:
            *o = checkPop3(l, host, port, hostname, user, password);
            return true;
        case Protocol::ManageSieve:
            *o = checkManageSieve(l, host, port, hostname, user, password);
            return true;
        case Protocol::Http:
            if (!l.implicitTls) return false;
            *o = checkHttps(host, port, hostname);
            return true;
    }
    return false;
}

// Where each listener really is: ready files first (port 0 in the config means "the OS chose").
QMap<QString, QStringList> listenerAddresses(const Config& config) {
    QMap<QString, QStringList> out;
    for (const ServiceInfo& service : services()) {
        if (listenersOf(service.program).isEmpty()) continue;
        // In the daemon user's run_dir: read with core/atomic_file.h (as root no link or FIFO is followed).
        const auto ready = readFile(readyFilePath(config, service.program), 64 * 1024);
        if (!ready) continue;
        const QJsonObject l = QJsonDocument::fromJson(*ready).object().value(QStringLiteral("listeners")).toObject();
        for (auto it = l.begin(); it != l.end(); ++it)
            for (const QJsonValue& v : it.value().toArray()) out[it.key()] << v.toString();
    }
    for (const ListenerInfo& l : listeners()) {
        if (out.contains(l.name) || (l.protocol == Protocol::Http && !l.implicitTls)) continue;
        for (const ListenAddress& la : config.listeners(l.settingKey()))
            if (la.port) out[l.name] << la.toString();
    }
    return out;
}

int check(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    const QString hostname = config.hostname();
    const QString user = ctx.opt(QStringLiteral("user"));
    QByteArray password;
    if (!user.isEmpty()) {
        QFile f(ctx.opt(QStringLiteral("password-file")));
        if (!f.open(QIODevice::ReadOnly))
            return ctx.usage(QStringLiteral("--user needs --password-file FILE (first line: the password)"));
        password = f.readLine(4096).trimmed();
    }
    QMap<QString, QStringList> where = listenerAddresses(config);
    for (const QString& t : ctx.opt(QStringLiteral("target")).split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        const qsizetype eq = t.indexOf(QLatin1Char('='));
        if (eq <= 0) return ctx.usage(QStringLiteral("--target NAME=HOST:PORT[,NAME=HOST:PORT...]"));
        where[t.left(eq)] = {t.mid(eq + 1)};
    }
    int failures = 0;
    for (auto it = where.cbegin(); it != where.cend(); ++it) {
        const QString& name = it.key();
        const ListenerInfo* listener = findListener(name);
        if (!listener) continue;
        for (const QString& addr : it.value()) {
            const qsizetype colon = addr.lastIndexOf(QLatin1Char(':'));
            QString host = addr.left(colon);
            const quint16 port = quint16(addr.mid(colon + 1).toUInt());
            if (host == u"*" || host == u"0.0.0.0" || host == u"[::]") host = QStringLiteral("127.0.0.1");
            if (host.startsWith(QLatin1Char('['))) host = host.mid(1, host.size() - 2);
            Outcome o;
            if (!checkListener(*listener, host, port, hostname, user, password, &o)) continue;
            const QString label = QStringLiteral("%1 %2").arg(name, -12).arg(addr);
            ctx.out << (o.fail.isEmpty() ? "ok    " : "FAIL  ") << label << "  " << o.ok.join(QStringLiteral(", "))
                    << Qt::endl;
            for (const QString& f : o.fail) ctx.out << "        FAIL: " << f << Qt::endl;
            for (const QString& w : o.warn) ctx.out << "        warn: " << w << Qt::endl;
            if (!o.fail.isEmpty()) ++failures;
        }
    }
    if (where.isEmpty()) return ctx.fail(QStringLiteral("no listener is configured"));
    ctx.out << (failures ? QStringLiteral("%1 listener(s) with problems").arg(failures)
                         : QStringLiteral("all listeners ok"))
            << Qt::endl;
    return failures ? 1 : 0;
}
}  // namespace

void addCheckCommands(QList<Command>& out) {
    out << Command{
        {QStringLiteral("check")},
        QStringLiteral("[--user ADDRESS --password-file FILE] [--target NAME=HOST:PORT,...]"),
        QStringLiteral("connect to every listener as a client would: banner, TLS, certificate, relay refusal, login"),
        {QStringLiteral("user"), QStringLiteral("password-file"), QStringLiteral("target")},
        {},
        check};
}

}  // namespace postern::ctl
