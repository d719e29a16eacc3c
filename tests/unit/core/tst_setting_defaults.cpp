// tst_setting_defaults.cpp — the session and runner structs' member defaults agree with
// the schema's defaults (settings/*.cpp), the one place defaults are declared. The daemons
// fill these structs from the configuration (each daemon's sessionConfig(), runnerSettings());
// the member defaults are what unit tests and a default-constructed struct get, so they
// must not drift from the product's defaults. Differences on purpose are listed with
// their reason, each checked to still differ (so the list stays true).
#include "imapd/imap_session.h"
#include "pop3d/pop3_session.h"
#include "queued/runner_settings.h"
#include "sieved/managesieve_session.h"
#include "smtpd/smtp_session.h"

#include "core/setting_keys.h"

#include <QtTest>

using namespace postern;

class TstSettingDefaults : public QObject {
    Q_OBJECT
    const Config d;  // nothing set: every accessor returns the schema's default

private Q_SLOTS:
    void smtpSession() {
        const smtp::SessionConfig s;
        QCOMPARE(s.maxMessageSize, get(d, keys::smtp::maxMessageSize));
        QCOMPARE(qint64(s.maxRecipients), get(d, keys::smtp::maxRecipients));
        QCOMPARE(qint64(s.maxCommandLine), get(d, keys::smtp::maxCommandLine));
        QCOMPARE(qint64(s.maxErrors), get(d, keys::smtp::maxErrors));
        QCOMPARE(s.commandTimeoutMs, get(d, keys::smtp::commandTimeout));
        QCOMPARE(s.dataTimeoutMs, get(d, keys::smtp::dataTimeout));
        QCOMPARE(s.content.maxMessageSize, get(d, keys::smtp::maxMessageSize));
        QCOMPARE(qint64(s.content.maxLineLength), get(d, keys::smtp::maxLineLength));
        QCOMPARE(s.content.maxHeaderSize, get(d, keys::smtp::maxHeaderSize));
        QCOMPARE(qint64(s.content.maxHeaderCount), get(d, keys::smtp::maxHeaderCount));
        QCOMPARE(s.content.normalizeBareLineEndings, get(d, keys::smtp::bareLf) == u"normalize");
        QCOMPARE(s.logTranscript, get(d, keys::log::transcripts));
        // On purpose: no pre-greet pause in a default struct (session tests talk at once; the
        // daemon sets it from smtp.greet_delay for MX listeners).
        QCOMPARE(s.greetDelayMs, qint64(0));
        QVERIFY(get(d, keys::smtp::greetDelay) != 0);
    }

    void imapSession() {
        const imap::SessionConfig s;
        QCOMPARE(qint64(s.limits.maxLine), get(d, keys::imap::maxLineLength));
        QCOMPARE(s.appendLimit, get(d, keys::smtp::maxMessageSize));
        QCOMPARE(s.idleTimeoutMs, get(d, keys::imap::idleTimeout));
        QCOMPARE(s.loginDeadlineMs, get(d, keys::imap::loginDeadline));
        QCOMPARE(qint64(s.maxBadCommands), get(d, keys::imap::maxBadCommands));
        QCOMPARE(qint64(s.maxSessionsPerUser), get(d, keys::imap::maxSessionsPerUser));
    }

    void pop3Session() {
        const pop3::SessionConfig s;
        QCOMPARE(qint64(s.maxLine), get(d, keys::pop3::maxLineLength));
        QCOMPARE(qint64(s.maxErrors), get(d, keys::pop3::maxErrors));
        QCOMPARE(qint64(s.maxCommandsBeforeAuth), get(d, keys::pop3::maxCommandsBeforeAuth));
        QCOMPARE(s.idleTimeoutMs, get(d, keys::pop3::idleTimeout));
        QCOMPARE(s.loginDeadlineMs, get(d, keys::pop3::loginDeadline));
        QCOMPARE(s.loginDelaySeconds, get(d, keys::pop3::loginDelay) / 1000);
    }

    void manageSieveSession() {
        const managesieve::SessionConfig s;
        QCOMPARE(qint64(s.maxLine), get(d, keys::sieve::maxLineLength));
        QCOMPARE(s.maxLiteralBeforeAuth, get(d, keys::sieve::maxLiteralBeforeAuth));
        QCOMPARE(s.maxLiteralAfterAuth, get(d, keys::sieve::maxLiteral));
        QCOMPARE(qint64(s.maxErrors), get(d, keys::sieve::maxErrors));
        QCOMPARE(qint64(s.maxCommandsBeforeAuth), get(d, keys::sieve::maxCommandsBeforeAuth));
        QCOMPARE(s.idleTimeoutMs, get(d, keys::sieve::idleTimeout));
        QCOMPARE(s.loginDeadlineMs, get(d, keys::sieve::loginDeadline));
        QCOMPARE(qint64(s.quota.maxScripts), get(d, keys::sieve::maxScripts));
        QCOMPARE(s.quota.maxScriptBytes, get(d, keys::sieve::maxScriptSize));
    }

    void queueRunner() {
        const outbound::RunnerSettings s;
        QCOMPARE(s.lifetimeS, get(d, keys::queue::lifetime) / 1000);
        QCOMPARE(s.retryMinS, get(d, keys::queue::retryMin) / 1000);
        QCOMPARE(s.retryMaxS, get(d, keys::queue::retryMax) / 1000);
        QCOMPARE(s.delayWarningS, get(d, keys::queue::delayWarning) / 1000);
        QCOMPARE(qint64(s.maxDeliveries), get(d, keys::outbound::maxDeliveries));
        QCOMPARE(qint64(s.maxPerDomain), get(d, keys::outbound::maxPerDomain));
        QCOMPARE(qint64(s.mxPort), get(d, keys::outbound::mxPort));
        QCOMPARE(qint64(s.mtaStsPort), get(d, keys::outbound::mtaStsPort));
        QCOMPARE(s.connectTimeoutMs, get(d, keys::outbound::connectTimeout));
        QCOMPARE(s.commandTimeoutMs, get(d, keys::outbound::commandTimeout));
        QCOMPARE(s.dane, get(d, keys::outbound::dane));
        QCOMPARE(s.mtaSts, get(d, keys::outbound::mtaSts));
        QCOMPARE(s.dkimSign, get(d, keys::dkim::sign));
        QCOMPARE(s.maxHeaderBytes, get(d, keys::smtp::maxHeaderSize) + 64 * 1024);
        QCOMPARE(s.relayImplicitTls, get(d, keys::relay::tls) == u"implicit");
        QCOMPARE(qint64(s.dnsTimeoutMs), get(d, keys::dns::timeout));
        // On purpose: a default struct has no recipient delimiters (the queue runner's unit
        // tests deliver without plus-addressing); the product's default is "+".
        QVERIFY(s.delimiters.isEmpty());
        QCOMPARE(get(d, keys::general::recipientDelimiter), QStringLiteral("+"));
    }
};

QTEST_GUILESS_MAIN(TstSettingDefaults)
#include "tst_setting_defaults.moc"
