// data_version.cpp — see data_version.h.
#include "data_version.h"

#include "atomic_file.h"
#include "config.h"
#include "log.h"

#include <QFileInfo>
#include <QRegularExpression>

#include <cerrno>

namespace postern {

namespace {

// Format 0 (no file) and format 1 have the same layout: the step only records the version.
Status recordFirstVersion(const Config&) {
    return {};
}

// The upgrade test's step: a file in the data folder that only a migration writes.
Status writeTestMigrationFile(const Config& config) {
    return writeFileAtomic(config.dataDir() + QLatin1Char('/') + QLatin1String(kTestStepFileName),
                           QByteArray("written by the test-only migration step to format ") +
                               QByteArray::number(kDataFormatVersion + 1) + '\n',
                           0644);
}

bool testStepInstalled() {
    static const bool present = QFileInfo::exists(QLatin1String(kTestStepMarker));
    return present;
}

}  // namespace

QList<MigrationStep> migrationSteps(bool testStep) {
    QList<MigrationStep> steps{
        {0, 1, QStringLiteral("record the data format version (data written before it existed is format 1)"),
         recordFirstVersion},
    };
    if (testStep)
        steps.append(
            {kDataFormatVersion, kDataFormatVersion + 1,
             QStringLiteral("test-only step of the upgrade test (image marker %1)").arg(QLatin1String(kTestStepMarker)),
             writeTestMigrationFile});
    return steps;
}

const QList<MigrationStep>& migrationSteps() {
    static const QList<MigrationStep> steps = migrationSteps(testStepInstalled());
    return steps;
}

int dataFormatVersion() {
    return testStepInstalled() ? kDataFormatVersion + 1 : kDataFormatVersion;
}

QString dataVersionPath(const Config& config) {
    return config.dataDir() + QLatin1Char('/') + QLatin1String(kDataVersionFileName);
}

Result<int> readDataVersion(const Config& config) {
    const QString path = dataVersionPath(config);
    auto bytes = readFile(path, kMaxDataVersionBytes);
    if (!bytes) {
        if (bytes.error().code == ENOENT) return 0;
        return bytes.error();
    }
    static const QRegularExpression re(QStringLiteral("^\\s*(\\d{1,7})\\s*$"));
    const auto m = re.match(QString::fromLatin1(*bytes));
    const int v = m.hasMatch() ? m.captured(1).toInt() : -1;
    if (v < 0 || v > kMaxDataFormat)
        return Result<int>::fail(
            QStringLiteral("%1 does not hold a data format version (one number expected): restore it from a backup")
                .arg(path));
    return v;
}

Status checkDataVersion(const Config& config, int known) {
    auto v = readDataVersion(config);
    if (!v) return v.error();
    if (*v > known)
        return Status::fail(
            QStringLiteral(
                "data folder %1 is format %2, this Postern knows up to %3: use a newer image or restore a backup")
                .arg(config.dataDir())
                .arg(*v)
                .arg(known));
    return {};
}

Result<int> migrateDataFolder(const Config& config, const QList<MigrationStep>& steps, int target) {
    if (auto st = ensureDirectory(config.dataDir(), 0750); !st) return st.error();
    auto lock = FileLock::acquire(dataVersionPath(config) + QStringLiteral(".lock"));
    if (!lock) return lock.error();
    // Read under the lock: another daemon may just have migrated.
    if (auto st = checkDataVersion(config, target); !st) return st.error();
    int version = readDataVersion(config).valueOr(0);
    int ran = 0;
    while (version < target) {
        const MigrationStep* step = nullptr;
        for (const MigrationStep& s : steps)
            if (s.from == version && s.to > version && s.to <= target) step = &s;
        if (!step)
            return Result<int>::fail(
                QStringLiteral("data folder %1 is format %2 and no step migrates it (this Postern writes format %3): "
                               "use the Postern version that wrote it, or restore a backup")
                    .arg(config.dataDir())
                    .arg(version)
                    .arg(target));
        if (auto st = step->run(config); !st) {
            log::error(u"data.migration_failed", log::Fields()
                                                     .add("from", step->from)
                                                     .add("to", step->to)
                                                     .add("step", step->what)
                                                     .add("error", st.errorMessage()));
            return Result<int>::fail(QStringLiteral("migrating data folder %1 from format %2 to %3 (%4) failed: %5")
                                         .arg(config.dataDir())
                                         .arg(step->from)
                                         .arg(step->to)
                                         .arg(step->what, st.errorMessage()));
        }
        if (auto st = writeFileAtomic(dataVersionPath(config), QByteArray::number(step->to) + '\n', 0644); !st)
            return st.error();
        log::info(u"data.migrated", log::Fields().add("from", step->from).add("to", step->to).add("step", step->what));
        version = step->to;
        ++ran;
    }
    return ran;
}

}  // namespace postern
