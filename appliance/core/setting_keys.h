// setting_keys.h — one typed key per setting: how code reads postern.conf.
//
// Interface:
//   keys::<area>::<name>  one constexpr key per setting of the schema (config_schema.h,
//                         settings/*.cpp). "smtp.max_recipients" is keys::smtp::maxRecipients:
//                         the part before the first dot names the namespace, the rest is
//                         written in camelCase; keys without a dot live in keys::general
//                         ("data_dir" is keys::general::dataDir); "log.stderr" is
//                         keys::log::toStderr (stderr is a C macro).
//   get(config, key)      the effective value, typed by the key's kind:
//                           StringKey   -> QString (String, Enum, HostName and Email settings)
//                           IntKey      -> qint64
//                           FlagKey     -> bool
//                           DurationKey -> qint64 milliseconds
//                           SizeKey     -> qint64 bytes
//                           PathKey     -> QString resolved against the config folder
//                           ListenKey   -> QList<ListenAddress>
//                           ListKey     -> QStringList
//   isSet(config, key)    whether postern.conf sets the key (else the default applies).
//                         Where a member or a local named get or isSet hides these from
//                         unqualified lookup, call postern::get / postern::isSet.
//   key.str()             the key as text, for messages and for Config::set().
//   kAllSettingKeys       every key with its kind, in schema order.
//   keyKindOf(type)       the kind that reads a SettingType.
//
// Rule: code reads a setting through its key here, never by a string literal. A misspelt
// key is then a compile error at the call site, and a key read with the wrong accessor
// (an Int through a Size) does not compile either. A new setting is declared once in
// settings/<area>.cpp (kind, default, range, documentation) and gets one line in
// POSTERN_SETTING_KEYS below; tests/unit/core/tst_setting_keys.cpp fails until the two
// agree in both directions (every key a setting of the same kind, every setting a key)
// and checks the session structs' defaults against the schema's.
// Limits: code that takes keys from a table (services.h: <name>.listen, enabledBy; the
// supervisor's listener keys) still passes strings to Config, whose accessors assert at
// run time that the key is declared. This header adds no state: get() calls Config's
// accessors, which parse the canonical value on each call.
#pragma once

#include "config.h"
#include "config_schema.h"

#include <QString>
#include <array>

namespace postern {

// What a key reads: one kind per Config accessor.
enum class KeyKind { String, Int, Flag, Duration, Size, Path, Listen, List };

template <KeyKind K>
struct SettingKey {
    static constexpr KeyKind kind = K;
    const char* name;
    QString str() const { return QString::fromLatin1(name); }
};

using StringKey = SettingKey<KeyKind::String>;
using IntKey = SettingKey<KeyKind::Int>;
using FlagKey = SettingKey<KeyKind::Flag>;
using DurationKey = SettingKey<KeyKind::Duration>;
using SizeKey = SettingKey<KeyKind::Size>;
using PathKey = SettingKey<KeyKind::Path>;
using ListenKey = SettingKey<KeyKind::Listen>;
using ListKey = SettingKey<KeyKind::List>;

constexpr KeyKind keyKindOf(SettingType type) {
    switch (type) {
        case SettingType::String:
        case SettingType::Enum:
        case SettingType::HostName:
        case SettingType::Email:
            return KeyKind::String;
        case SettingType::Int:
            return KeyKind::Int;
        case SettingType::Bool:
            return KeyKind::Flag;
        case SettingType::Duration:
            return KeyKind::Duration;
        case SettingType::Size:
            return KeyKind::Size;
        case SettingType::Path:
            return KeyKind::Path;
        case SettingType::ListenList:
            return KeyKind::Listen;
        case SettingType::StringList:
            return KeyKind::List;
    }
    return KeyKind::String;
}

inline QString get(const Config& c, StringKey k) {
    return c.string(k.str());
}
inline qint64 get(const Config& c, IntKey k) {
    return c.integer(k.str());
}
inline bool get(const Config& c, FlagKey k) {
    return c.flag(k.str());
}
inline qint64 get(const Config& c, DurationKey k) {
    return c.durationMs(k.str());
}
inline qint64 get(const Config& c, SizeKey k) {
    return c.size(k.str());
}
inline QString get(const Config& c, PathKey k) {
    return c.path(k.str());
}
inline QList<ListenAddress> get(const Config& c, ListenKey k) {
    return c.listeners(k.str());
}
inline QStringList get(const Config& c, ListKey k) {
    return c.list(k.str());
}
template <KeyKind K>
bool isSet(const Config& c, SettingKey<K> k) {
    return c.isSet(k.str());
}

// Every setting: X(namespace, name, kind, "key"), in the order of the schema.
// clang-format off
#define POSTERN_SETTING_KEYS(X) \
    /* settings/general.cpp */ \
    X(general, hostname, String, "hostname") \
    X(general, primaryDomain, String, "primary_domain") \
    X(general, adminAddress, String, "admin_address") \
    X(general, dataDir, Path, "data_dir") \
    X(general, logDir, Path, "log_dir") \
    X(general, runDir, Path, "run_dir") \
    X(update, announceUrl, String, "update.announce_url") \
    X(log, level, String, "log.level") \
    X(log, toStderr, Flag, "log.stderr") \
    X(log, transcripts, Flag, "log.transcripts") \
    X(general, systemUser, String, "system_user") \
    X(general, recipientDelimiter, String, "recipient_delimiter") \
    X(dns, servers, List, "dns.servers") \
    X(general, publicAddresses, List, "public_addresses") \
    X(dns, checkServer, String, "dns.check_server") \
    X(dns, resolver, String, "dns.resolver") \
    X(dns, resolverListen, String, "dns.resolver_listen") \
    X(dns, forwardZones, List, "dns.forward_zones") \
    X(dns, timeout, Duration, "dns.timeout") \
    /* settings/listeners.cpp: <name>.listen per row of services.h */ \
    X(smtp, listen, Listen, "smtp.listen") \
    X(submission, listen, Listen, "submission.listen") \
    X(submissions, listen, Listen, "submissions.listen") \
    X(imap, listen, Listen, "imap.listen") \
    X(imaps, listen, Listen, "imaps.listen") \
    X(pop3, listen, Listen, "pop3.listen") \
    X(pop3s, listen, Listen, "pop3s.listen") \
    X(http, listen, Listen, "http.listen") \
    X(https, listen, Listen, "https.listen") \
    X(sieve, listen, Listen, "sieve.listen") \
    /* settings/tls.cpp */ \
    X(tls, cert, Path, "tls.cert") \
    X(tls, key, Path, "tls.key") \
    X(tls, minVersion, String, "tls.min_version") \
    X(tls, handshakeTimeout, Duration, "tls.handshake_timeout") \
    X(acme, enabled, Flag, "acme.enabled") \
    X(acme, directory, String, "acme.directory") \
    X(acme, email, String, "acme.email") \
    X(acme, caFile, Path, "acme.ca_file") \
    X(acme, renewBefore, Duration, "acme.renew_before") \
    /* settings/auth.cpp */ \
    X(auth, argon2Memory, Size, "auth.argon2_memory") \
    X(auth, argon2Iterations, Int, "auth.argon2_iterations") \
    X(auth, argon2Parallelism, Int, "auth.argon2_parallelism") \
    X(auth, cacheTtl, Duration, "auth.cache_ttl") \
    X(auth, cacheSize, Int, "auth.cache_size") \
    X(auth, failureDelay, Duration, "auth.failure_delay") \
    X(auth, failureDelayMax, Duration, "auth.failure_delay_max") \
    X(auth, failureWindow, Duration, "auth.failure_window") \
    X(auth, blockAfterFailures, Int, "auth.block_after_failures") \
    X(auth, blockDuration, Duration, "auth.block_duration") \
    X(auth, blockNftables, Flag, "auth.block_nftables") \
    X(auth, require2faAdmins, Flag, "auth.require_2fa_admins") \
    /* settings/smtp.cpp */ \
    X(smtp, maxMessageSize, Size, "smtp.max_message_size") \
    X(smtp, minFreeSpace, Size, "smtp.min_free_space") \
    X(smtp, maxRecipients, Int, "smtp.max_recipients") \
    X(smtp, maxCommandLine, Int, "smtp.max_command_line") \
    X(smtp, maxLineLength, Int, "smtp.max_line_length") \
    X(smtp, maxHeaderSize, Size, "smtp.max_header_size") \
    X(smtp, maxHeaderCount, Int, "smtp.max_header_count") \
    X(smtp, maxErrors, Int, "smtp.max_errors") \
    X(smtp, commandTimeout, Duration, "smtp.command_timeout") \
    X(smtp, dataTimeout, Duration, "smtp.data_timeout") \
    X(smtp, greetDelay, Duration, "smtp.greet_delay") \
    X(smtp, sessionTimeout, Duration, "smtp.session_timeout") \
    X(smtp, maxConnections, Int, "smtp.max_connections") \
    X(smtp, maxConnectionsPerIp, Int, "smtp.max_connections_per_ip") \
    X(smtp, vrfy, Flag, "smtp.vrfy") \
    X(smtp, bareLf, String, "smtp.bare_lf") \
    X(smtp, senderAuth, Flag, "smtp.sender_auth") \
    X(smtp, dmarcReject, Flag, "smtp.dmarc_reject") \
    X(smtp, dmarcQuarantineJunk, Flag, "smtp.dmarc_quarantine_junk") \
    X(smtp, userMessagesPerHour, Int, "smtp.user_messages_per_hour") \
    X(smtp, userMessagesPerDay, Int, "smtp.user_messages_per_day") \
    X(smtp, userRecipientsPerHour, Int, "smtp.user_recipients_per_hour") \
    X(smtp, userRecipientsPerDay, Int, "smtp.user_recipients_per_day") \
    /* settings/outbound.cpp */ \
    X(queue, lifetime, Duration, "queue.lifetime") \
    X(queue, retryMin, Duration, "queue.retry_min") \
    X(queue, retryMax, Duration, "queue.retry_max") \
    X(queue, delayWarning, Duration, "queue.delay_warning") \
    X(relay, host, String, "relay.host") \
    X(relay, user, String, "relay.user") \
    X(relay, passwordFile, Path, "relay.password_file") \
    X(relay, tls, String, "relay.tls") \
    X(outbound, mxPort, Int, "outbound.mx_port") \
    X(outbound, connectTimeout, Duration, "outbound.connect_timeout") \
    X(outbound, commandTimeout, Duration, "outbound.command_timeout") \
    X(outbound, maxDeliveries, Int, "outbound.max_deliveries") \
    X(outbound, maxPerDomain, Int, "outbound.max_per_domain") \
    X(outbound, caFile, Path, "outbound.ca_file") \
    X(outbound, dane, Flag, "outbound.dane") \
    X(outbound, mtaSts, Flag, "outbound.mta_sts") \
    X(outbound, mtaStsPort, Int, "outbound.mta_sts_port") \
    X(dkim, sign, Flag, "dkim.sign") \
    /* settings/imap.cpp */ \
    X(imap, maxLineLength, Size, "imap.max_line_length") \
    X(imap, idleTimeout, Duration, "imap.idle_timeout") \
    X(imap, loginDeadline, Duration, "imap.login_deadline") \
    X(imap, maxBufferedInput, Size, "imap.max_buffered_input") \
    X(imap, maxBadCommands, Int, "imap.max_bad_commands") \
    X(imap, maxConnections, Int, "imap.max_connections") \
    X(imap, maxConnectionsPerIp, Int, "imap.max_connections_per_ip") \
    X(imap, maxSessionsPerUser, Int, "imap.max_sessions_per_user") \
    X(imap, processes, Int, "imap.processes") \
    /* settings/pop3.cpp */ \
    X(pop3, idleTimeout, Duration, "pop3.idle_timeout") \
    X(pop3, loginDeadline, Duration, "pop3.login_deadline") \
    X(pop3, maxLineLength, Int, "pop3.max_line_length") \
    X(pop3, maxErrors, Int, "pop3.max_errors") \
    X(pop3, maxCommandsBeforeAuth, Int, "pop3.max_commands_before_auth") \
    X(pop3, maxConnections, Int, "pop3.max_connections") \
    X(pop3, maxConnectionsPerIp, Int, "pop3.max_connections_per_ip") \
    X(pop3, loginDelay, Duration, "pop3.login_delay") \
    /* settings/sieve.cpp */ \
    X(sieve, maxLineLength, Int, "sieve.max_line_length") \
    X(sieve, maxLiteralBeforeAuth, Size, "sieve.max_literal_before_auth") \
    X(sieve, maxLiteral, Size, "sieve.max_literal") \
    X(sieve, idleTimeout, Duration, "sieve.idle_timeout") \
    X(sieve, loginDeadline, Duration, "sieve.login_deadline") \
    X(sieve, maxErrors, Int, "sieve.max_errors") \
    X(sieve, maxCommandsBeforeAuth, Int, "sieve.max_commands_before_auth") \
    X(sieve, maxScripts, Int, "sieve.max_scripts") \
    X(sieve, maxScriptSize, Size, "sieve.max_script_size") \
    X(sieve, before, String, "sieve.before") \
    X(sieve, after, String, "sieve.after") \
    X(sieve, maxConnections, Int, "sieve.max_connections") \
    X(sieve, maxConnectionsPerIp, Int, "sieve.max_connections_per_ip") \
    /* settings/web.cpp */ \
    X(mtaSts, mode, String, "mta_sts.mode") \
    X(http, requestDeadline, Duration, "http.request_deadline") \
    /* settings/backup.cpp */ \
    X(backup, resticRepository, String, "backup.restic_repository") \
    X(backup, resticPasswordFile, Path, "backup.restic_password_file") \
    X(backup, resticEnvFile, Path, "backup.restic_env_file") \
    X(backup, interval, Duration, "backup.interval") \
    X(backup, keepDaily, Int, "backup.keep_daily") \
    X(backup, keepWeekly, Int, "backup.keep_weekly") \
    X(backup, keepMonthly, Int, "backup.keep_monthly") \
    X(backup, stagingDir, Path, "backup.staging_dir") \
    /* settings/spam.cpp */ \
    X(spam, enabled, Flag, "spam.enabled") \
    X(spam, rspamdAddress, String, "spam.rspamd_address") \
    X(spam, timeout, Duration, "spam.timeout") \
    X(spam, onFailure, String, "spam.on_failure") \
    X(spam, actionReject, String, "spam.action_reject") \
    X(spam, actionSoftReject, String, "spam.action_soft_reject") \
    X(spam, actionGreylist, String, "spam.action_greylist") \
    X(spam, actionAddHeader, String, "spam.action_add_header") \
    X(spam, actionRewriteSubject, String, "spam.action_rewrite_subject") \
    X(spam, scanOutbound, Flag, "spam.scan_outbound") \
    X(spam, greylist, Flag, "spam.greylist") \
    X(spam, greylistDelay, Duration, "spam.greylist_delay") \
    X(spam, bayesMinLearns, Int, "spam.bayes_min_learns") \
    X(spam, inboxUsers, List, "spam.inbox_users")

// clang-format on

#define POSTERN_SETTING_KEY_DEFINE(ns, n, k, key) \
    namespace keys::ns {                          \
    inline constexpr k##Key n{key};               \
    }
POSTERN_SETTING_KEYS(POSTERN_SETTING_KEY_DEFINE)
#undef POSTERN_SETTING_KEY_DEFINE

struct SettingKeyInfo {
    const char* name;
    KeyKind kind;
};

#define POSTERN_SETTING_KEY_INFO(ns, n, k, key) SettingKeyInfo{keys::ns::n.name, keys::ns::n.kind},
inline constexpr std::array kAllSettingKeys = {POSTERN_SETTING_KEYS(POSTERN_SETTING_KEY_INFO)};
#undef POSTERN_SETTING_KEY_INFO

}  // namespace postern
