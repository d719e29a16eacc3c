// settings/spam.cpp — the spam filter: Rspamd scanning of mail arriving on the MX listener
// (postern-smtpd, daemons/smtpd/spam_scan.h) and the rspamd + redis-server processes the
// supervisor runs for it. What each Rspamd action leads to is a setting of its own; "no action"
// always delivers to INBOX.
#include "../config_schema.h"

namespace postern::settings {

// Long because it is the one table of the spam settings (Rspamd address and timeout, the answer to each Rspamd
// action, outbound scanning, greylisting, Bayes): 14 rows, one Setting declaration each (key, type, default, range,
// doc), which parsing, validation and the generated reference all read; split into parts it would be one table
// scattered over several functions.
void addSpam(QList<Setting>& out) {
    const QString sec = QStringLiteral("spam");
    using T = SettingType;
    // Postern's answers to an Rspamd action: refuse (550 5.7.1), try later (451 4.7.1), deliver
    // into the recipient's Junk folder, or deliver into INBOX (tagged with X-Spam-* either way).
    const QStringList outcomes{QStringLiteral("reject"), QStringLiteral("tempfail"), QStringLiteral("junk"),
                               QStringLiteral("inbox")};
    out << Setting{
        .key = QStringLiteral("spam.enabled"),
        .type = T::Bool,
        .defaultValue = QStringLiteral("true"),
        .doc = QStringLiteral("Scan mail from the Internet with Rspamd (the supervisor runs rspamd and redis-server; "
                              "false: neither runs and nothing is scanned)"),
        .section = sec,
        .restart = true};
    out << Setting{
        .key = QStringLiteral("spam.rspamd_address"),
        .type = T::String,
        .defaultValue = {},
        .doc = QStringLiteral("Rspamd's scanner (normal worker): a unix socket path or 127.0.0.1:port / [::1]:port "
                              "(empty: the supervisor's own, <run_dir>/spam/rspamd.sock)"),
        .section = sec};
    out << Setting{
        .key = QStringLiteral("spam.timeout"),
        .type = T::Duration,
        .defaultValue = QStringLiteral("20s"),
        .doc = QStringLiteral("Longest wait for Rspamd's verdict on one message (then spam.on_failure applies)"),
        .section = sec,
        .min = 1,
        .max = 300};
    out << Setting{.key = QStringLiteral("spam.on_failure"),
                   .type = T::Enum,
                   .defaultValue = QStringLiteral("accept"),
                   .doc = QStringLiteral("Rspamd down, slow or answering nonsense: accept the message marked "
                                         "\"X-Spam-Status: unchecked\", or answer 451 4.7.1 so the sender retries"),
                   .section = sec,
                   .choices = {QStringLiteral("accept"), QStringLiteral("tempfail")}};
    out << Setting{
        .key = QStringLiteral("spam.action_reject"),
        .type = T::Enum,
        .defaultValue = QStringLiteral("reject"),
        .doc = QStringLiteral(
            "Rspamd says \"reject\": reject (550 5.7.1, nothing stored), tempfail (451 4.7.1), junk or inbox"),
        .section = sec,
        .choices = outcomes};
    out << Setting{.key = QStringLiteral("spam.action_soft_reject"),
                   .type = T::Enum,
                   .defaultValue = QStringLiteral("tempfail"),
                   .doc = QStringLiteral("Rspamd says \"soft reject\": reject, tempfail (451 4.7.1), junk or inbox"),
                   .section = sec,
                   .choices = outcomes};
    out << Setting{.key = QStringLiteral("spam.action_greylist"),
                   .type = T::Enum,
                   .defaultValue = QStringLiteral("tempfail"),
                   .doc = QStringLiteral("Rspamd says \"greylist\": reject, tempfail (451 4.7.1), junk or inbox"),
                   .section = sec,
                   .choices = outcomes};
    out << Setting{
        .key = QStringLiteral("spam.action_add_header"),
        .type = T::Enum,
        .defaultValue = QStringLiteral("junk"),
        .doc = QStringLiteral("Rspamd says \"add header\": reject, tempfail, junk (the Junk folder) or inbox (tagged)"),
        .section = sec,
        .choices = outcomes};
    out << Setting{
        .key = QStringLiteral("spam.action_rewrite_subject"),
        .type = T::Enum,
        .defaultValue = QStringLiteral("junk"),
        .doc = QStringLiteral("Rspamd says \"rewrite subject\": reject, tempfail, junk or inbox (the subject is kept)"),
        .section = sec,
        .choices = outcomes};
    out << Setting{
        .key = QStringLiteral("spam.scan_outbound"),
        .type = T::Bool,
        .defaultValue = QStringLiteral("true"),
        .doc = QStringLiteral("Scan mail submitted by authenticated users too (Rspamd sees the user): \"reject\" "
                              "refuses it (550 5.7.1), anything else, and Rspamd down, delivers it as submitted"),
        .section = sec};
    out << Setting{
        .key = QStringLiteral("spam.greylist"),
        .type = T::Bool,
        .defaultValue = QStringLiteral("true"),
        .doc = QStringLiteral("Greylisting (Rspamd's module, in Redis): suspicious mail (Rspamd's greylist score) from "
                              "a sender, address and recipient not seen before is answered 451 4.7.1 until "
                              "spam.greylist_delay has passed; real servers retry, most spam bots do not"),
        .section = sec};
    out << Setting{
        .key = QStringLiteral("spam.greylist_delay"),
        .type = T::Duration,
        .defaultValue = QStringLiteral("5m"),
        .doc = QStringLiteral("How long a greylisted sender must wait before its retry is accepted (whole seconds)"),
        .section = sec,
        .min = 1,
        .max = 86400};
    out << Setting{
        .key = QStringLiteral("spam.bayes_min_learns"),
        .type = T::Int,
        .defaultValue = QStringLiteral("200"),
        .doc = QStringLiteral("Messages of each class (spam and ham) a Bayes classifier must have learned before it "
                              "gives a verdict: the shared one (everyone's Junk moves) and each user's own one "
                              "(Rspamd's min_learns; a user below it still gets the shared verdict)"),
        .section = sec,
        .min = 1,
        .max = 1000000};
    out << Setting{
        .key = QStringLiteral("spam.inbox_users"),
        .type = T::StringList,
        .defaultValue = {},
        .doc = QStringLiteral("Users (their addresses) who take spam into INBOX, tagged with X-Spam-Status, instead of "
                              "the Junk folder"),
        .section = sec};
}

}  // namespace postern::settings
