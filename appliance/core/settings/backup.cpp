// settings/backup.cpp — scheduled off-site backups with restic (posternctl backup run,
// started by the supervisor) and where their consistent snapshots are staged.
#include "../config_schema.h"

namespace postern::settings {

void addBackup(QList<Setting>& out) {
    const QString sec = QStringLiteral("backup");
    using T = SettingType;
    out << Setting{
        .key = QStringLiteral("backup.restic_repository"),
        .type = T::String,
        .defaultValue = {},
        .doc = QStringLiteral("restic repository for daily backups: a folder, sftp:host:/path, s3:host/bucket or "
                              "rest:https://host/ (empty: no scheduled backups)"),
        .section = sec};
    out << Setting{
        .key = QStringLiteral("backup.restic_password_file"),
        .type = T::Path,
        .defaultValue = {},
        .doc = QStringLiteral(
            "File holding the restic repository password (keep a copy elsewhere: without it the backups are lost)"),
        .section = sec};
    out << Setting{
        .key = QStringLiteral("backup.restic_env_file"),
        .type = T::Path,
        .defaultValue = {},
        .doc = QStringLiteral(
            "Optional KEY=VALUE lines passed to restic (e.g. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for S3)"),
        .section = sec};
    out << Setting{.key = QStringLiteral("backup.interval"),
                   .type = T::Duration,
                   .defaultValue = QStringLiteral("24h"),
                   .doc = QStringLiteral("Time between scheduled backups (a failed one is tried again after an hour)"),
                   .section = sec,
                   .min = 3600,
                   .max = 30 * 86400};
    out << Setting{.key = QStringLiteral("backup.keep_daily"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("7"),
                   .doc = QStringLiteral("Daily snapshots restic keeps (restic forget --keep-daily)"),
                   .section = sec,
                   .min = 1,
                   .max = 10000};
    out << Setting{.key = QStringLiteral("backup.keep_weekly"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("4"),
                   .doc = QStringLiteral("Weekly snapshots restic keeps"),
                   .section = sec,
                   .min = 0,
                   .max = 10000};
    out << Setting{.key = QStringLiteral("backup.keep_monthly"),
                   .type = T::Int,
                   .defaultValue = QStringLiteral("6"),
                   .doc = QStringLiteral("Monthly snapshots restic keeps"),
                   .section = sec,
                   .min = 0,
                   .max = 10000};
    out << Setting{
        .key = QStringLiteral("backup.staging_dir"),
        .type = T::Path,
        .defaultValue = {},
        .doc = QStringLiteral("Root-only folder for the snapshot restic reads, on the file system of data_dir so "
                              "messages are hard links (empty: <data_dir>.backup)"),
        .section = sec};
}

}  // namespace postern::settings
