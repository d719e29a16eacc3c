// settings/auth.cpp — password hashing cost, the verification cache and the
// failed-login throttle shared by SMTP, IMAP and POP3, the block list it feeds (and its
// optional nftables mirror); two-factor policy.
#include "../config_schema.h"

namespace postern::settings {

// Long because it is the one table of the authentication settings (Argon2 cost, verification cache, failed-login
// delay, block list and its nftables mirror, two-factor for administrators): 12 rows, one Setting declaration each
// (key, type, default, range, doc), which parsing, validation and the generated reference all read; split into parts
// it would be one table scattered over several functions.
void addAuth(QList<Setting>& out) {
    const QString sec = QStringLiteral("auth");
    using T = SettingType;
    out << Setting{.key = QStringLiteral("auth.argon2_memory"),
                   .type = T::Size,
                   .defaultValue = QStringLiteral("19M"),
                   .doc = QStringLiteral("Argon2id memory cost for new password hashes"),
                   .section = sec,
                   .min = 1 << 20,
                   .max = qint64(4) << 30};
    out << Setting{.key = QStringLiteral("auth.argon2_iterations"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("2"),
                   .doc = QStringLiteral("Argon2id time cost (passes) for new password hashes"),
                   .section = sec,
                   .min = 1,
                   .max = 64};
    out << Setting{.key = QStringLiteral("auth.argon2_parallelism"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("1"),
                   .doc = QStringLiteral("Argon2id lanes for new password hashes"),
                   .section = sec,
                   .min = 1,
                   .max = 16};
    out << Setting{.key = QStringLiteral("auth.cache_ttl"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("15m"),
                   .doc = QStringLiteral("How long a successful password check is remembered (0 disables the cache)"),
                   .section = sec,
                   .min = 0,
                   .max = 86400};
    out << Setting{.key = QStringLiteral("auth.cache_size"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("10000"),
                   .doc = QStringLiteral("Most entries kept in the verification cache"),
                   .section = sec,
                   .min = 0,
                   .max = 10000000};
    out << Setting{.key = QStringLiteral("auth.failure_delay"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("2s"),
                   .doc = QStringLiteral("Delay before answering the first failed login; doubles per failure"),
                   .section = sec,
                   .min = 0,
                   .max = 60};
    out << Setting{.key = QStringLiteral("auth.failure_delay_max"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("15s"),
                   .doc = QStringLiteral("Largest delay before answering a failed login"),
                   .section = sec,
                   .min = 0,
                   .max = 600};
    out << Setting{.key = QStringLiteral("auth.failure_window"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("15m"),
                   .doc = QStringLiteral("Failed logins older than this are forgotten"),
                   .section = sec,
                   .min = 1,
                   .max = 86400};
    out << Setting{.key = QStringLiteral("auth.block_after_failures"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("20"),
                   .doc = QStringLiteral("Failed logins from one address within auth.failure_window that put it on the "
                                         "temporary block list (0: never)"),
                   .section = sec,
                   .min = 0,
                   .max = 10000};
    out << Setting{.key = QStringLiteral("auth.block_duration"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("1h"),
                   .doc = QStringLiteral("How long an address stays on the block list after too many failed logins"),
                   .section = sec,
                   .min = 60,
                   .max = 30 * 86400};
    out << Setting{.key = QStringLiteral("auth.block_nftables"),
                   .type = T::Bool,
                   .defaultValue = QStringLiteral("false"),
                   .doc = QStringLiteral("Also drop blocked addresses in the kernel: the supervisor mirrors the block "
                                         "list into the nftables table inet postern_block (needs nft and root)"),
                   .section = sec};
    out << Setting{.key = QStringLiteral("auth.require_2fa_admins"),
                   .type = T::Bool,
                   .defaultValue = QStringLiteral("false"),
                   .doc = QStringLiteral("Administrators must use two-factor login (TOTP) in the web panel"),
                   .section = sec};
}

}  // namespace postern::settings
