// data_version.h — the format version of the data folder, and the migrations
// that bring an older data folder up to it.
//
// <data_dir>/postern-data-version holds one decimal number and a newline: the
// format of everything below data_dir (Maildirs and their indexes, the queue,
// run and log files). No file means data written before the version existed
// (format 0: the same layout as format 1, or a folder not used yet).
//
// Interface:
//   kDataFormatVersion     the format this build writes (and the newest it reads).
//   migrationSteps()       the one table of steps, in order: from, to, what it does,
//                          the function. Today: 0 -> 1 (record the version).
//   dataFormatVersion()    kDataFormatVersion, or one more in an image built for the
//                          upgrade test (below).
//   Test-only step: an image that carries kTestStepMarker (a root-owned file under
//   /usr, put there by the container upgrade test's "image N+1" layer, never by the
//   build or the packages) has one more step, kDataFormatVersion -> +1, which writes
//   <data_dir>/postern-test-migration. It lets the test upgrade real data through a
//   real migration and see the older image refuse the result, without a second build.
//   readDataVersion(cfg)   the recorded version; 0 when the file is missing; an
//                          error for a file that is not a number (never guessed).
//   checkDataVersion(cfg)  refuses a newer format with the one line the operator
//                          needs ("data folder X is format N, this Postern knows
//                          up to M: use a newer image or restore a backup"); read
//                          only, so the supervisor (root) and every daemon call it
//                          before they touch anything.
//   migrateDataFolder(cfg, steps, target)
//                          under an exclusive lock (<data_dir>/postern-data-
//                          version.lock: daemons starting together migrate once),
//                          runs the steps from the recorded version up to
//                          `target`, logging each one (data.migrated) and writing
//                          the new version atomically after each, so a step runs
//                          exactly once even if a later one fails or the process
//                          dies; returns how many steps ran. A missing step (a gap
//                          in the table) or a failing one stops it with an error;
//                          the version then stays at the last completed step.
// Who: the daemons migrate after dropping root (daemon_main.h step 5b), so files a
// step creates belong to system_user; the supervisor and posternctl only read.
// Security: the file is in a folder the daemon user writes; as root it is read
// through SafeDir (atomic_file.h readFile), at most kMaxDataVersionBytes.
// Limits: kMaxDataVersionBytes (64) of file; versions 0..kMaxDataFormat.
// Standards: none.
#pragma once

#include "result.h"

#include <QList>
#include <QString>

#include <functional>

namespace postern {

class Config;

inline constexpr int kDataFormatVersion = 1;
inline constexpr int kOldestDataFormat = 0;  // the oldest format a step exists for
inline constexpr const char* kDataVersionFileName = "postern-data-version";
inline constexpr qint64 kMaxDataVersionBytes = 64;
inline constexpr int kMaxDataFormat = 1000000;

struct MigrationStep {
    int from = 0;
    int to = 0;
    QString what;                              // one line, logged
    std::function<Status(const Config&)> run;  // idempotent where it can be
};

inline constexpr const char* kTestStepMarker = "/usr/share/postern/test-next-data-format";
inline constexpr const char* kTestStepFileName = "postern-test-migration";

// The steps; with `testStep`, the test-only step after them (see above).
QList<MigrationStep> migrationSteps(bool testStep);
// The steps of this installation: the test-only step only where its marker exists.
const QList<MigrationStep>& migrationSteps();
int dataFormatVersion();

QString dataVersionPath(const Config& config);
Result<int> readDataVersion(const Config& config);
Status checkDataVersion(const Config& config, int known = dataFormatVersion());
Result<int> migrateDataFolder(const Config& config, const QList<MigrationStep>& steps = migrationSteps(),
                              int target = dataFormatVersion());

}  // namespace postern
