// settings/smtp.cpp — the SMTP daemon's limits and policy (MX, submission, submissions).
// Defaults follow RFC 5321 4.5.3.1 minimums and Postfix's defaults where the RFC is silent.
#include "../config_schema.h"

namespace postern::settings {

// Long because it is the one table of the SMTP settings (message and line limits, timeouts, connection limits, VRFY,
// bare LF, sender and DMARC policy, per-user sending quotas): 23 rows, one Setting declaration each (key, type,
// default, range, doc), which parsing, validation and the generated reference all read; split into parts it would be
// one table scattered over several functions.
void addSmtp(QList<Setting>& out) {
    const QString sec = QStringLiteral("smtp");
    using T = SettingType;
    out << Setting{.key = QStringLiteral("smtp.max_message_size"),
                   .type = T::Size,
                   .defaultValue = QStringLiteral("25M"),
                   .doc = QStringLiteral("Largest message accepted (advertised as SIZE; 552 5.3.4 above it)"),
                   .section = sec,
                   .min = 1024,
                   .max = qint64(2) << 30};
    out << Setting{
        .key = QStringLiteral("smtp.min_free_space"),
        .type = T::Size,
        .defaultValue = QStringLiteral("256M"),
        .doc = QStringLiteral("Below this much free space on the mail or queue folder's file system, MAIL FROM gets "
                              "452 4.3.1 (as is a SIZE= that would leave less); 0 turns the check off"),
        .section = sec,
        .min = 0,
        .max = qint64(1) << 50};
    out << Setting{.key = QStringLiteral("smtp.max_recipients"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("100"),
                   .doc = QStringLiteral("Recipients per message (RFC 5321 requires at least 100)"),
                   .section = sec,
                   .min = 1,
                   .max = 100000};
    out << Setting{
        .key = QStringLiteral("smtp.max_command_line"),
        .type = T::Int,
        .defaultValue = QStringLiteral("2048"),
        .doc = QStringLiteral("Longest command line in octets incl. CRLF (512 plus room for ESMTP parameters)"),
        .section = sec,
        .min = 512,
        .max = 65536};
    out << Setting{.key = QStringLiteral("smtp.max_line_length"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("1000"),
                   .doc = QStringLiteral("Longest message text line in octets incl. CRLF (RFC 5321: 1000)"),
                   .section = sec,
                   .min = 1000,
                   .max = 1000000};
    out << Setting{.key = QStringLiteral("smtp.max_header_size"),
                   .type = T::Size,
                   .defaultValue = QStringLiteral("1M"),
                   .doc = QStringLiteral("Largest header section of a message"),
                   .section = sec,
                   .min = 1024,
                   .max = qint64(64) << 20};
    out << Setting{.key = QStringLiteral("smtp.max_header_count"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("1000"),
                   .doc = QStringLiteral("Most header fields in a message"),
                   .section = sec,
                   .min = 10,
                   .max = 100000};
    out << Setting{.key = QStringLiteral("smtp.max_errors"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("20"),
                   .doc = QStringLiteral("Errors before the connection is closed with 421"),
                   .section = sec,
                   .min = 1,
                   .max = 1000};
    out << Setting{.key = QStringLiteral("smtp.command_timeout"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("5m"),
                   .doc = QStringLiteral("Idle time allowed while waiting for a command (RFC 5321 4.5.3.2.7)"),
                   .section = sec,
                   .min = 1,
                   .max = 3600};
    out << Setting{.key = QStringLiteral("smtp.data_timeout"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("10m"),
                   .doc = QStringLiteral("Idle time allowed between message data blocks"),
                   .section = sec,
                   .min = 1,
                   .max = 3600};
    out << Setting{
        .key = QStringLiteral("smtp.greet_delay"),
        .type = T::Duration,
        .defaultValue = QStringLiteral("2s"),
        .doc = QStringLiteral("MX only: the greeting ends after this pause; a client that talks earlier gets 554 "
                              "and is dropped (pre-greet check, as postscreen). 0 turns it off"),
        .section = sec,
        .min = 0,
        .max = 60};
    out << Setting{.key = QStringLiteral("smtp.session_timeout"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("1h"),
                   .doc = QStringLiteral("Total time a connection may last"),
                   .section = sec,
                   .min = 10,
                   .max = 86400};
    out << Setting{.key = QStringLiteral("smtp.max_connections"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("500"),
                   .doc = QStringLiteral("Concurrent SMTP connections over all listeners"),
                   .section = sec,
                   .min = 1,
                   .max = 100000};
    out << Setting{.key = QStringLiteral("smtp.max_connections_per_ip"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("20"),
                   .doc = QStringLiteral("Concurrent SMTP connections from one client address"),
                   .section = sec,
                   .min = 1,
                   .max = 100000};
    out << Setting{.key = QStringLiteral("smtp.vrfy"),
                   .type = T::Bool,
                   .defaultValue = QStringLiteral("false"),
                   .doc = QStringLiteral("Answer VRFY truthfully (off: 252, as most servers do)"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("smtp.bare_lf"),
                   .type = T::Enum,
                   .defaultValue = QStringLiteral("reject"),
                   .doc = QStringLiteral("A bare LF or CR in DATA: reject the message or normalise it to CRLF"),
                   .section = sec,
                   .choices = {QStringLiteral("reject"), QStringLiteral("normalize")}};
    out << Setting{
        .key = QStringLiteral("smtp.sender_auth"),
        .type = T::Bool,
        .defaultValue = QStringLiteral("true"),
        .doc = QStringLiteral("Check SPF, DKIM and DMARC of mail from the Internet and add Authentication-Results"),
        .section = sec};
    out << Setting{
        .key = QStringLiteral("smtp.dmarc_reject"),
        .type = T::Bool,
        .defaultValue = QStringLiteral("true"),
        .doc = QStringLiteral("Refuse (550) mail that fails DMARC when the sender's domain publishes p=reject"),
        .section = sec};
    out << Setting{.key = QStringLiteral("smtp.dmarc_quarantine_junk"),
                   .type = T::Bool,
                   .defaultValue = QStringLiteral("true"),
                   .doc = QStringLiteral("Deliver mail that fails DMARC with p=quarantine into the Junk folder"),
                   .section = sec};
    // Outbound abuse (a stolen password): per authenticated user, over all postern-smtpd
    // processes and restarts (common/send_rate.h). Defaults no family or small office reaches.
    out << Setting{
        .key = QStringLiteral("smtp.user_messages_per_hour"),
        .type = T::Int,
        .defaultValue = QStringLiteral("200"),
        .doc = QStringLiteral("Messages one authenticated user may submit per hour (then 451 4.7.0); 0: no limit"),
        .section = sec,
        .min = 0,
        .max = 1000000};
    out << Setting{
        .key = QStringLiteral("smtp.user_messages_per_day"),
        .type = T::Int,
        .defaultValue = QStringLiteral("1000"),
        .doc = QStringLiteral("Messages one authenticated user may submit per day (then 451 4.7.0); 0: no limit"),
        .section = sec,
        .min = 0,
        .max = 1000000};
    out << Setting{
        .key = QStringLiteral("smtp.user_recipients_per_hour"),
        .type = T::Int,
        .defaultValue = QStringLiteral("500"),
        .doc = QStringLiteral("Recipients (all messages together) one authenticated user may submit to per hour "
                              "(then 451 4.7.0); 0: no limit"),
        .section = sec,
        .min = 0,
        .max = 1000000};
    out << Setting{
        .key = QStringLiteral("smtp.user_recipients_per_day"),
        .type = T::Int,
        .defaultValue = QStringLiteral("2000"),
        .doc = QStringLiteral("Recipients (all messages together) one authenticated user may submit to per day "
                              "(then 451 4.7.0); 0: no limit"),
        .section = sec,
        .min = 0,
        .max = 1000000};
}

}  // namespace postern::settings
