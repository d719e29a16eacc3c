// settings/runtime_safe.cpp — which settings are safe to change while the appliance
// runs (Setting::runtimeSafe): the web panel's settings page offers exactly these, and
// webd's privileged helper (daemons/webd/account_broker.h, op config.set) accepts no
// other key. One list, here, so that the decision is visible in one place.
//
// A key is on the list when all of these hold:
//   - restart = false: the daemons apply it on reload (SIGHUP), which the change sends;
//   - it is a limit, a timeout, a policy choice or the log level: it cannot send mail
//     or credentials elsewhere (not relay.*, admin_address, acme.*, backup.*), name a
//     file root would read (no Path setting), or weaken TLS, logins or their throttle
//     (not tls.*, auth.*, outbound.dane/mta_sts, dkim.sign, log.transcripts);
//   - a wrong value cannot lock the administrator out of the panel (no listener, no
//     http.* or web setting).
// The unit test tst_config_ops checks that every key listed exists and has restart = false.
#include "../config_schema.h"

namespace postern::settings {

void markRuntimeSafe(QList<Setting>& all) {
    static const QStringList keys{
        QStringLiteral("log.level"),
        QStringLiteral("recipient_delimiter"),
        QStringLiteral("smtp.max_message_size"),
        QStringLiteral("smtp.max_recipients"),
        QStringLiteral("smtp.min_free_space"),
        QStringLiteral("smtp.greet_delay"),
        QStringLiteral("smtp.max_errors"),
        QStringLiteral("smtp.command_timeout"),
        QStringLiteral("smtp.data_timeout"),
        QStringLiteral("smtp.max_connections"),
        QStringLiteral("smtp.max_connections_per_ip"),
        QStringLiteral("smtp.bare_lf"),
        QStringLiteral("smtp.sender_auth"),
        QStringLiteral("smtp.dmarc_reject"),
        QStringLiteral("smtp.dmarc_quarantine_junk"),
        QStringLiteral("queue.lifetime"),
        QStringLiteral("queue.retry_min"),
        QStringLiteral("queue.retry_max"),
        QStringLiteral("queue.delay_warning"),
        QStringLiteral("outbound.max_deliveries"),
        QStringLiteral("outbound.max_per_domain"),
        QStringLiteral("outbound.connect_timeout"),
        QStringLiteral("outbound.command_timeout"),
        QStringLiteral("imap.idle_timeout"),
        QStringLiteral("imap.max_connections"),
        QStringLiteral("imap.max_connections_per_ip"),
        QStringLiteral("imap.max_sessions_per_user"),
        QStringLiteral("pop3.idle_timeout"),
        QStringLiteral("pop3.max_connections"),
        QStringLiteral("pop3.max_connections_per_ip"),
        QStringLiteral("spam.timeout"),
        QStringLiteral("spam.on_failure"),
        QStringLiteral("spam.action_reject"),
        QStringLiteral("spam.action_soft_reject"),
        QStringLiteral("spam.action_greylist"),
        QStringLiteral("spam.action_add_header"),
        QStringLiteral("spam.action_rewrite_subject"),
    };
    for (Setting& s : all)
        if (keys.contains(s.key) && !s.restart) s.runtimeSafe = true;
}

}  // namespace postern::settings
