// log.cpp — see log.h.
#include "log.h"

#include "posix_io.h"
#include "safe_path.h"

#include <QDateTime>
#include <QFile>
#include <QFileInfo>
#include <QMutex>
#include <QRandomGenerator>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <cstring>

namespace postern::log {

namespace {
struct State {
    QMutex mutex;
    Options options;
    int fd = -1;
    ino_t inode = 0;
    qint64 lastCheckMs = 0;
    QString error;          // why the file is not open (empty: it is, or none is wanted)
    QString reportedError;  // the last error said on stderr (each one once)
};
State& state() {
    static State s;
    return s;
}
std::atomic<int> g_minLevel{int(Level::Info)};
std::atomic<QDateTime (*)()> g_clock{nullptr};
QDateTime nowUtc() {
    const auto clock = g_clock.load();
    return clock ? clock() : QDateTime::currentDateTimeUtc();
}

void writeAll(int fd, const QByteArray& b);

// As root the file is reached through SafeDir (safe_path.h): the log folder belongs
// to the daemon user, who could otherwise swap mail.log for a link to any file.
void openFileLocked(State& s) {
    if (s.fd >= 0) ::close(s.fd);
    s.fd = -1;
    s.error.clear();
    if (s.options.logFile.isEmpty()) return;
    if (::geteuid() == 0) {
        const QFileInfo info(s.options.logFile);
        auto dir = SafeDir::open(info.absolutePath());
        auto h =
            dir ? dir->openFile(info.fileName(), O_WRONLY | O_APPEND | O_CREAT, 0640) : Result<FileHandle>(dir.error());
        if (h)
            s.fd = h->release();
        else
            s.error = h.errorMessage();
    } else {
        s.fd =
            ::open(QFile::encodeName(s.options.logFile).constData(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (s.fd < 0) s.error = QStringLiteral("%1: cannot open: %2").arg(s.options.logFile, errnoText(errno));
    }
    struct stat st {};
    if (s.fd >= 0 && ::fstat(s.fd, &st) == 0) s.inode = st.st_ino;
    if (!s.error.isEmpty() && s.error != s.reportedError) {
        s.reportedError = s.error;
        const QString who = s.options.program.isEmpty() ? QStringLiteral("postern") : s.options.program;
        writeAll(
            STDERR_FILENO,
            (who + QStringLiteral(": log file not used (logging to stderr): ") + s.error + QLatin1Char('\n')).toUtf8());
    }
}

void writeAll(int fd, const QByteArray& b) {
    (void)postern::writeAll(fd, b, QString());  // nowhere to report a failing log
}

const char* levelName(Level l) {
    switch (l) {
        case Level::Debug:
            return "debug";
        case Level::Info:
            return "info";
        case Level::Warning:
            return "warning";
        case Level::Error:
            return "error";
    }
    return "info";
}
}  // namespace

Level levelFromString(const QString& s) {
    if (s == u"debug") return Level::Debug;
    if (s == u"warning") return Level::Warning;
    if (s == u"error") return Level::Error;
    return Level::Info;
}

void init(const Options& options) {
    State& s = state();
    QMutexLocker lock(&s.mutex);
    s.options = options;
    g_minLevel = int(options.minLevel);
    openFileLocked(s);
    s.lastCheckMs = nowUtc().toMSecsSinceEpoch();
}

QString fileError() {
    State& s = state();
    QMutexLocker lock(&s.mutex);
    return s.error;
}

void setMinLevel(Level level) {
    g_minLevel = int(level);
}
void setClock(QDateTime (*clock)()) {
    g_clock = clock;
}
bool enabled(Level level) {
    return int(level) >= g_minLevel.load();
}
QString program() {
    State& s = state();
    QMutexLocker lock(&s.mutex);
    return s.options.program;
}

QString quoteValue(const QString& value) {
    bool needQuotes = value.isEmpty();
    for (QChar c : value) {
        if (c.isSpace() || c == QLatin1Char('"') || c == QLatin1Char('=') || c == QLatin1Char('\\') ||
            c.unicode() < 0x20 || c.unicode() == 0x7f) {
            needQuotes = true;
            break;
        }
    }
    if (!needQuotes) return value;
    QString out;
    out.reserve(value.size() + 2);
    out += QLatin1Char('"');
    for (QChar c : value) {
        switch (c.unicode()) {
            case '"':
                out += QStringLiteral("\\\"");
                break;
            case '\\':
                out += QStringLiteral("\\\\");
                break;
            case '\n':
                out += QStringLiteral("\\n");
                break;
            case '\r':
                out += QStringLiteral("\\r");
                break;
            case '\t':
                out += QStringLiteral("\\t");
                break;
            default:
                if (c.unicode() < 0x20 || c.unicode() == 0x7f)
                    out += QStringLiteral("\\x%1").arg(c.unicode(), 2, 16, QLatin1Char('0'));
                else
                    out += c;
        }
    }
    out += QLatin1Char('"');
    return out;
}

Fields& Fields::add(const char* key, const QString& value) {
    if (!m_text.isEmpty()) m_text += QLatin1Char(' ');
    m_text += QLatin1String(key);
    m_text += QLatin1Char('=');
    m_text += quoteValue(value);
    return *this;
}

QString newSessionId() {
    return QStringLiteral("%1").arg(QRandomGenerator::global()->generate(), 8, 16, QLatin1Char('0'));
}

void write(Level level, QStringView session, QStringView event, const Fields& fields) {
    if (!enabled(level)) return;
    State& s = state();
    const QDateTime now = nowUtc();
    QString line = now.toString(Qt::ISODateWithMs);
    QMutexLocker lock(&s.mutex);
    line += QLatin1Char(' ');
    line += s.options.program.isEmpty() ? QStringLiteral("postern") : s.options.program;
    line += QStringLiteral("[%1]: ").arg(::getpid());
    line += QLatin1String(levelName(level));
    if (!session.isEmpty()) {
        line += QStringLiteral(" session=");
        line += session;
    }
    line += QLatin1Char(' ');
    // The event name is ours, but keep it to one token regardless.
    for (QChar c : event) line += (c.isSpace() || c.unicode() < 0x20) ? QLatin1Char('_') : c;
    if (!fields.text().isEmpty()) {
        line += QLatin1Char(' ');
        line += fields.text();
    }
    line += QLatin1Char('\n');
    const QByteArray bytes = line.toUtf8();
    if (!s.options.logFile.isEmpty()) {
        const qint64 nowMs = now.toMSecsSinceEpoch();
        if (nowMs - s.lastCheckMs > 1000) {
            s.lastCheckMs = nowMs;
            // lstat: a link put in the file's place is a change too (and is then refused as root).
            struct stat st {};
            if (s.fd < 0 || ::lstat(QFile::encodeName(s.options.logFile).constData(), &st) != 0 || st.st_ino != s.inode)
                openFileLocked(s);
        }
        if (s.fd >= 0) writeAll(s.fd, bytes);
    }
    // A wanted file that cannot be used (refused as root, unwritable): stderr takes its place.
    if (s.options.toStderr || (s.fd < 0 && !s.options.logFile.isEmpty())) writeAll(STDERR_FILENO, bytes);
}

}  // namespace postern::log
