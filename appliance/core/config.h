// config.h — the one configuration model shared by daemons, wizard, firewall
// and posternctl.
//
// Interface:
//   resolveConfigDir(args)   --config DIR / --config=DIR, else $POSTERN_CONFIG,
//                            else /etc/postern.
//   Config::load(dir)        reads <dir>/postern.conf (a missing file means
//                            all defaults); every error names file, line and key.
//   typed accessors          string(), integer(), flag(), durationMs(), size(),
//                            list(), listeners(), path(); keys must be declared
//                            in the schema (asserted).
//   set()/unset()/save()     validated edits; save() keeps the operator's
//                            comments and line order and writes atomically.
//   render(changedOnly)      `key = value` lines, as `config show` prints them.
//
// File syntax: `key = value` per line; `#` starts a comment line; blank lines
// ignored; a key may appear once. Values are taken verbatim after trimming.
// Security: the file is trusted admin input, but still parsed defensively
// (line and file size limits). It holds no secrets (passwords live in
// `users`, keys in their own 0600 files).
#pragma once

#include "config_schema.h"
#include "result.h"

#include <QHash>
#include <QList>
#include <QString>
#include <QStringList>

namespace postern {

inline constexpr const char* kConfigFileName = "postern.conf";
inline constexpr const char* kDefaultConfigDir = "/etc/postern";

// Finds the config folder from program arguments and the environment.
QString resolveConfigDir(const QStringList& args);

class Config {
public:
    Config() = default;
    static Result<Config> load(const QString& configDir);
    static Result<Config> parse(const QByteArray& text, const QString& fileName, const QString& configDir);

    QString configDir() const { return m_configDir; }
    QString filePath() const;

    // Effective canonical value (the default when not set).
    QString value(const QString& key) const;
    bool isSet(const QString& key) const { return m_values.contains(key); }

    QString string(const QString& key) const { return value(key); }
    qint64 integer(const QString& key) const;
    bool flag(const QString& key) const;
    qint64 durationMs(const QString& key) const;
    qint64 size(const QString& key) const;
    QStringList list(const QString& key) const;
    QList<ListenAddress> listeners(const QString& key) const;
    // A Path setting resolved against the config folder; empty stays empty.
    QString path(const QString& key) const;

    // Derived folders (absolute).
    QString dataDir() const;
    QString logDir() const;
    QString runDir() const;
    QString mailDir() const;   // <data>/mail
    QString queueDir() const;  // <data>/queue
    QString hostname() const;  // setting, or the system's FQDN
    // The web panel's address, https://<hostname>[:port]/panel/ (port from https.listen;
    // left out when 443 or 0, the standard port clients see); empty when https.listen is off.
    QString panelUrl() const;

    Status set(const QString& key, const QString& value);
    Status unset(const QString& key);
    QByteArray serialize() const;
    Status save() const;

    // `key = value` lines; all settings or only those that differ from the defaults.
    QString render(bool changedOnly, bool withDocs = false) const;
    // Markdown reference of every setting (generated from the schema).
    static QString reference();

private:
    struct Line {
        QString text;  // original text for comments/blank lines
        QString key;   // non-empty for a setting line
    };
    QString resolvePath(const QString& p) const;

    QString m_configDir;
    QHash<QString, QString> m_values;  // canonical values of keys set in the file
    QList<Line> m_lines;
};

}  // namespace postern
