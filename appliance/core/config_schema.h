// config_schema.h — every Postern setting, declared once.
//
// Interface: Setting describes one key (type, default, allowed range or
// choices, one-line documentation, whether a change needs a restart, and
// the section it is shown under). Schema::instance() holds all of them; the
// declarations live in settings/*.cpp, one file per area, so that each part
// of the product owns its own keys. The same declarations drive parsing,
// validation, `posternctl config show [--changed]`, `config reference` and
// the wizard's output. No code outside config.cpp reads postern.conf.
//
// validate() turns a textual value into its canonical form (e.g. "25m" ->
// "25M", "yes" -> "true") or returns a one-line error that names what is
// accepted. Standards: none; syntax is documented in README.md.
#pragma once

#include "result.h"

#include <QHostAddress>
#include <QList>
#include <QString>
#include <QStringList>

namespace postern {

enum class SettingType {
    String,      // free text (no newlines)
    Int,         // decimal integer within [min, max]
    Bool,        // true/false, yes/no, on/off, 1/0
    Duration,    // 30s, 5m, 4h, 5d, 250ms; plain number = seconds; within [min, max] seconds
    Size,        // 64k, 25M, 1G (binary multiples); plain number = bytes; within [min, max]
    Path,        // file or folder; relative paths are relative to the config folder
    ListenList,  // comma-separated host:port, [v6]:port, *:port; empty = listener disabled
    Enum,        // one of choices
    HostName,    // DNS name (IDNA accepted, stored as A-labels); may be empty when allowed
    Email,       // local@domain; may be empty
    StringList,  // comma-separated words
};

QString toString(SettingType type);

struct Setting {
    QString key;
    SettingType type = SettingType::String;
    QString defaultValue;
    QString doc;
    QString section;
    bool restart = false;  // a change takes effect only after the daemons restart
    qint64 min = 0;        // Int/Duration(seconds)/Size(bytes): inclusive range, when max > min
    qint64 max = 0;
    QStringList choices;  // Enum
    // Safe to change while running (the web panel's settings page offers it; webd's helper
    // accepts it): takes effect on reload and cannot lock the administrator out or widen
    // what a compromised webd can do. Set in one list, settings/runtime_safe.cpp.
    bool runtimeSafe = false;
};

struct ListenAddress {
    QHostAddress address;  // QHostAddress::Any for "*"
    quint16 port = 0;      // 0 lets the OS choose (tests); the daemon reports the real port when ready
    QString toString() const;
    bool operator==(const ListenAddress&) const = default;
};

class Schema {
public:
    static const Schema& instance();
    const Setting* find(const QString& key) const;
    const QList<Setting>& all() const { return m_settings; }
    // Closest known key, for "did you mean" hints (empty when nothing is close).
    QString suggest(const QString& unknownKey) const;

    // Canonical form of `value` for `setting`, or an error message (without the key).
    static Result<QString> validate(const Setting& setting, const QString& value);

    // Typed parsers for canonical (or raw) values; used by Config's accessors and by tests.
    static Result<qint64> parseInt(const QString& v);
    static Result<bool> parseBool(const QString& v);
    static Result<qint64> parseDurationMs(const QString& v);
    static Result<qint64> parseSize(const QString& v);
    static Result<QList<ListenAddress>> parseListenList(const QString& v);
    static QStringList parseList(const QString& v);
    // Largest exact binary unit: 1073741824 -> "1G", 1536 -> "1536B", 0 -> "0B".
    static QString formatSize(qint64 bytes);

private:
    Schema();
    QList<Setting> m_settings;
};

// One function per area, defined in settings/<area>.cpp.
namespace settings {
void addGeneral(QList<Setting>& out);
void addListeners(QList<Setting>& out);
void addTls(QList<Setting>& out);
void addAuth(QList<Setting>& out);
void addSmtp(QList<Setting>& out);
void addOutbound(QList<Setting>& out);
void addImap(QList<Setting>& out);
void addPop3(QList<Setting>& out);
void addManageSieve(QList<Setting>& out);
void addWeb(QList<Setting>& out);
void addBackup(QList<Setting>& out);
void addSpam(QList<Setting>& out);
// Marks Setting::runtimeSafe on the keys listed in settings/runtime_safe.cpp (after all are added).
void markRuntimeSafe(QList<Setting>& all);
}  // namespace settings

}  // namespace postern
