// log.h — the one logger of every Postern program.
//
// Line format (mail.log and stderr):
//   2026-11-24T13:36:44.123Z postern-smtpd[4242]: info session=7f3a9c01 smtp.connect remote=192.0.2.1 tls=no
// i.e. UTC time, program[pid], level, optional session id, an event name
// (component.event), then key=value fields. Values containing spaces, quotes
// or '=' are double-quoted with backslash escapes; control characters are
// escaped so one event is always one line (log injection is impossible).
//
// Interface: log::init() once per process; log::write()/info()/warn()/...
// from any thread (a mutex serialises file writes; each line is one write(2)
// on an O_APPEND descriptor, so lines of concurrent processes never mix).
// The file is reopened when it was rotated away (checked at most once a second).
// fileError() says why the file is not open (empty when it is); the reason is
// also written to stderr once, and while the file cannot be used every line
// goes to stderr (even without toStderr), so nothing is lost silently.
//
// Security: never pass passwords, AUTH payloads or message bodies. Fields()
// has no way to mark a value secret on purpose: secrets do not come here.
// A process running as root (the supervisor for its whole life, a daemon until
// it drops privileges) opens the file through SafeDir (safe_path.h): a link or
// a hard link put in place of mail.log by the daemon user, who owns log_dir,
// is refused rather than written through.
#pragma once

#include <QByteArray>
#include <QDateTime>
#include <QString>
#include <QStringView>
#include <initializer_list>
#include <utility>

namespace postern::log {

enum class Level { Debug = 0, Info = 1, Warning = 2, Error = 3 };
Level levelFromString(const QString& s);  // "info" → Info; unknown → Info

struct Options {
    QString program;  // e.g. "postern-smtpd"
    QString logFile;  // empty: no file
    Level minLevel = Level::Info;
    bool toStderr = true;
};
void init(const Options& options);
QString fileError();
void setMinLevel(Level level);
// Tests: the clock of the time stamps and of the once-a-second rotation check (null: the real one).
void setClock(QDateTime (*clock)());
bool enabled(Level level);
QString program();

class Fields {
public:
    Fields() = default;
    Fields& add(const char* key, const QString& value);
    Fields& add(const char* key, QStringView value) { return add(key, value.toString()); }
    Fields& add(const char* key, const char* value) { return add(key, QString::fromUtf8(value)); }
    Fields& add(const char* key, const QByteArray& value) { return add(key, QString::fromUtf8(value)); }
    Fields& add(const char* key, qint64 value) { return add(key, QString::number(value)); }
    Fields& add(const char* key, int value) { return add(key, QString::number(value)); }
    Fields& add(const char* key, unsigned value) { return add(key, QString::number(value)); }
    Fields& add(const char* key, quint64 value) { return add(key, QString::number(value)); }
    Fields& add(const char* key, bool value) { return add(key, QString::fromLatin1(value ? "yes" : "no")); }
    const QString& text() const { return m_text; }

private:
    QString m_text;
};

// Quote a value for the key=value format (exposed for tests).
QString quoteValue(const QString& value);
// A fresh random session id (8 hex digits).
QString newSessionId();

void write(Level level, QStringView session, QStringView event, const Fields& fields = {});
inline void debug(QStringView event, const Fields& f = {}) {
    write(Level::Debug, {}, event, f);
}
inline void info(QStringView event, const Fields& f = {}) {
    write(Level::Info, {}, event, f);
}
inline void warn(QStringView event, const Fields& f = {}) {
    write(Level::Warning, {}, event, f);
}
inline void error(QStringView event, const Fields& f = {}) {
    write(Level::Error, {}, event, f);
}

}  // namespace postern::log
