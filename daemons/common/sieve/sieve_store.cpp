// sieve_store.cpp — see sieve_store.h.
#include "sieve_store.h"

#include "core/atomic_file.h"
#include "core/paths.h"
#include "core/posix_io.h"
#include "core/setting_keys.h"

#include <QDir>
#include <QFile>
#include <QSet>

#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

namespace postern::sieve {

namespace {
const QString kActive = QStringLiteral("active");
const QString kSuffix = QStringLiteral(".sieve");

QString scriptPath(const QString& dir, const QString& name) {
    return dir + QLatin1Char('/') + name + kSuffix;
}

Result<QString> checkedDir(const QString& mailDir, const QString& address) {
    const QString dir = scriptDir(mailDir, address);
    if (dir.isEmpty()) return Result<QString>::fail(QStringLiteral("'%1' is not a mailbox address").arg(address));
    return dir;
}

Status checkName(const QString& name) {
    if (!validScriptName(name))
        return Status::fail(
            QStringLiteral("invalid script name '%1' (1-%2 of A-Z a-z 0-9 . _ -, not starting with '.')")
                .arg(name)
                .arg(kMaxScriptNameBytes));
    return {};
}
}  // namespace

bool validScriptName(const QString& name) {
    if (name.isEmpty() || name.size() > kMaxScriptNameBytes || name.startsWith(u'.')) return false;
    for (QChar c : name)
        if (!((c >= u'a' && c <= u'z') || (c >= u'A' && c <= u'Z') || (c >= u'0' && c <= u'9') || c == u'.' ||
              c == u'_' || c == u'-'))
            return false;
    return true;
}

QString scriptDir(const QString& mailDir, const QString& address) {
    const QString home = mailboxHome(mailDir, address);
    return home.isEmpty() ? home : home + QStringLiteral("/sieve");
}

Result<QString> activeScriptName(const QString& mailDir, const QString& address) {
    auto dir = checkedDir(mailDir, address);
    if (!dir) return dir.error();
    const QString path = *dir + QLatin1Char('/') + kActive;
    if (!QFileInfo::exists(path)) return QString();
    auto bytes = readFile(path, 1024);
    if (!bytes) return bytes.error();
    const QString name = QString::fromUtf8(*bytes).trimmed();
    if (name.isEmpty()) return QString();
    if (!validScriptName(name)) return Result<QString>::fail(QStringLiteral("%1: names no valid script").arg(path));
    return name;
}

Result<QList<ScriptInfo>> listScripts(const QString& mailDir, const QString& address) {
    auto dir = checkedDir(mailDir, address);
    if (!dir) return dir.error();
    auto active = activeScriptName(mailDir, address);
    QList<ScriptInfo> out;
    const QDir d(*dir);
    for (const QFileInfo& fi :
         d.entryInfoList({QStringLiteral("*.sieve")}, QDir::Files | QDir::NoSymLinks, QDir::Name)) {
        const QString name = fi.completeBaseName();
        if (!validScriptName(name)) continue;
        out << ScriptInfo{name, fi.size(), active && *active == name};
    }
    return out;
}

Result<QByteArray> readScript(const QString& mailDir, const QString& address, const QString& name) {
    if (auto st = checkName(name); !st) return st.error();
    auto dir = checkedDir(mailDir, address);
    if (!dir) return dir.error();
    const QString path = scriptPath(*dir, name);
    if (!QFileInfo::exists(path))
        return Result<QByteArray>::fail(QStringLiteral("no script '%1' for %2").arg(name, address), ENOENT);
    return readFile(path, Limits{}.maxScriptBytes);
}

Quota Quota::fromConfig(const Config& config) {
    Quota q;
    q.maxScripts = int(std::clamp<qint64>(get(config, keys::sieve::maxScripts), 1, 1000));
    q.maxScriptBytes = std::clamp<qint64>(get(config, keys::sieve::maxScriptSize), 1, Limits{}.maxScriptBytes);
    return q;
}

Status putScript(const QString& mailDir, const QString& address, const QString& name, const QByteArray& source,
                 const Quota& quota) {
    if (auto st = checkName(name); !st) return st;
    auto dir = checkedDir(mailDir, address);
    if (!dir) return dir.error();
    if (auto st = checkSpace(mailDir, address, name, source.size(), quota); !st) return st;
    auto compiled = compile(source);
    if (!compiled) return Status::fail(QStringLiteral("%1: %2").arg(name, compiled.errorMessage()));
    if (auto st = checkIncludes(mailDir, address, name, *compiled); !st)
        return Status::fail(QStringLiteral("%1: %2").arg(name, st.errorMessage()));
    const QString path = scriptPath(*dir, name);
    if (auto st = ensureDirectory(*dir, 0700); !st) return st;
    return writeFileAtomic(path, source, 0600);
}

Status activateScript(const QString& mailDir, const QString& address, const QString& name) {
    if (auto st = checkName(name); !st) return st;
    auto dir = checkedDir(mailDir, address);
    if (!dir) return dir.error();
    if (!QFileInfo::exists(scriptPath(*dir, name)))
        return Status::fail(QStringLiteral("no script '%1' for %2").arg(name, address), ENOENT);
    return writeFileAtomic(*dir + QLatin1Char('/') + kActive, name.toUtf8() + '\n', 0600);
}

Status deactivateScripts(const QString& mailDir, const QString& address) {
    auto dir = checkedDir(mailDir, address);
    if (!dir) return dir.error();
    return removeFile(*dir + QLatin1Char('/') + kActive);
}

Status deleteScript(const QString& mailDir, const QString& address, const QString& name) {
    if (auto st = checkName(name); !st) return st;
    auto dir = checkedDir(mailDir, address);
    if (!dir) return dir.error();
    const QString path = scriptPath(*dir, name);
    if (!QFileInfo::exists(path))
        return Status::fail(QStringLiteral("no script '%1' for %2").arg(name, address), ENOENT);
    auto active = activeScriptName(mailDir, address);
    if (active && *active == name)
        return Status::fail(QStringLiteral("'%1' is the active script; deactivate it first").arg(name), EBUSY);
    if (auto st = removeFile(path); !st) return st;
    return syncDirectory(*dir);
}

Status checkSpace(const QString& mailDir, const QString& address, const QString& name, qint64 size,
                  const Quota& quota) {
    if (auto st = checkName(name); !st) return st;
    const qint64 max = std::min(quota.maxScriptBytes, Limits{}.maxScriptBytes);
    if (size < 0 || size > max)
        return Status::fail(QStringLiteral("%1: larger than %2 bytes (the limit)").arg(name).arg(max), EFBIG);
    auto dir = checkedDir(mailDir, address);
    if (!dir) return dir.error();
    if (QFileInfo::exists(scriptPath(*dir, name))) return {};  // replacing: the count stays
    auto list = listScripts(mailDir, address);
    if (!list) return list.error();
    if (list->size() >= quota.maxScripts)
        return Status::fail(QStringLiteral("%1 already has %2 scripts (the limit)").arg(address).arg(quota.maxScripts),
                            EDQUOT);
    return {};
}

Status renameScript(const QString& mailDir, const QString& address, const QString& oldName, const QString& newName) {
    if (auto st = checkName(oldName); !st) return st;
    if (auto st = checkName(newName); !st) return st;
    auto dir = checkedDir(mailDir, address);
    if (!dir) return dir.error();
    const QString from = scriptPath(*dir, oldName), to = scriptPath(*dir, newName);
    if (!QFileInfo::exists(from))
        return Status::fail(QStringLiteral("no script '%1' for %2").arg(oldName, address), ENOENT);
    if (oldName == newName) return {};
    // link(2) refuses an existing target atomically; the old name goes only after the
    // active pointer names the new one, so delivery never sees a missing active script.
    if (::link(QFile::encodeName(from).constData(), QFile::encodeName(to).constData()) != 0) {
        const int e = errno;
        if (e == EEXIST) return Status::fail(QStringLiteral("a script '%1' exists already").arg(newName), EEXIST);
        return Status::fail(QStringLiteral("%1: %2").arg(to, errnoText(e)), e);
    }
    auto active = activeScriptName(mailDir, address);
    if (active && *active == oldName) {
        if (auto st = activateScript(mailDir, address, newName); !st) {
            (void)removeFile(to);
            return st;
        }
    }
    if (auto st = removeFile(from); !st) return st;
    return syncDirectory(*dir);
}

std::optional<ScriptCache::Active> ScriptCache::active(const QString& mailDir, const QString& address,
                                                       QString* readError) {
    auto name = activeScriptName(mailDir, address);
    if (!name) {
        if (readError) *readError = name.errorMessage();
        return std::nullopt;
    }
    if (name->isEmpty()) return std::nullopt;
    const QString path = scriptPath(scriptDir(mailDir, address), *name);
    auto value = compiledFile(path);
    if (!value) {
        if (readError) *readError = QStringLiteral("%1: the active script is missing").arg(path);
        return std::nullopt;
    }
    value->name = *name;
    return value;
}

std::shared_ptr<const Script> ScriptCache::byPath(const QString& path, QString* error) {
    auto value = compiledFile(path);
    if (!value) return nullptr;
    if (!value->script && error) *error = value->error ? value->error->message : QStringLiteral("unreadable");
    return value->script;
}

std::optional<ScriptCache::Active> ScriptCache::compiledFile(const QString& path) {
    struct stat st {};
    if (::stat(QFile::encodeName(path).constData(), &st) != 0) return std::nullopt;
    Entry e;
    e.dev = quint64(st.st_dev);
    e.ino = quint64(st.st_ino);
    e.size = qint64(st.st_size);
    e.mtimeNs = qint64(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    {
        QMutexLocker lock(&m_mutex);
        auto it = m_entries.constFind(path);
        if (it != m_entries.constEnd() && it->dev == e.dev && it->ino == e.ino && it->size == e.size &&
            it->mtimeNs == e.mtimeNs)
            return it->value;
    }
    Active& value = e.value;
    value.name = QFileInfo(path).completeBaseName();
    value.stamp = QStringLiteral("%1:%2:%3:%4").arg(e.dev).arg(e.ino).arg(e.size).arg(e.mtimeNs);
    auto source = readFile(path, Limits{}.maxScriptBytes);
    if (!source)
        value.error = source.error();
    else if (auto compiled = compile(*source); !compiled)
        value.error = compiled.error();
    else
        value.script = std::make_shared<const Script>(std::move(*compiled));
    QMutexLocker lock(&m_mutex);
    if (m_entries.size() >= kMaxCacheEntries && !m_entries.contains(path)) m_entries.clear();
    m_entries.insert(path, e);
    return value;
}

GlobalScripts GlobalScripts::fromConfig(const Config& config) {
    GlobalScripts g;
    g.dir = globalScriptDir(config.configDir());
    for (const QString& n : get(config, keys::sieve::before).split(u',', Qt::SkipEmptyParts)) g.before << n.trimmed();
    for (const QString& n : get(config, keys::sieve::after).split(u',', Qt::SkipEmptyParts)) g.after << n.trimmed();
    return g;
}

QString globalScriptDir(const QString& configDir) {
    return configDir.isEmpty() ? QString() : configDir + QStringLiteral("/sieve/global");
}

Result<QList<ScriptInfo>> listGlobalScripts(const QString& configDir) {
    QList<ScriptInfo> out;
    const QDir d(globalScriptDir(configDir));
    for (const QFileInfo& fi :
         d.entryInfoList({QStringLiteral("*.sieve")}, QDir::Files | QDir::NoSymLinks, QDir::Name)) {
        const QString name = fi.completeBaseName();
        if (validScriptName(name)) out << ScriptInfo{name, fi.size(), false};
    }
    return out;
}

Result<QByteArray> readGlobalScript(const QString& configDir, const QString& name) {
    if (auto st = checkName(name); !st) return st.error();
    const QString path = scriptPath(globalScriptDir(configDir), name);
    if (!QFileInfo::exists(path))
        return Result<QByteArray>::fail(QStringLiteral("no global script '%1'").arg(name), ENOENT);
    return readFile(path, Limits{}.maxScriptBytes);
}

Status putGlobalScript(const QString& configDir, const QString& name, const QByteArray& source) {
    if (auto st = checkName(name); !st) return st;
    if (source.size() > Limits{}.maxScriptBytes)
        return Status::fail(
            QStringLiteral("%1: larger than %2 bytes (the limit)").arg(name).arg(Limits{}.maxScriptBytes), EFBIG);
    if (auto compiled = compile(source); !compiled)
        return Status::fail(QStringLiteral("%1: %2").arg(name, compiled.errorMessage()));
    if (auto st = ensureDirectory(configDir + QStringLiteral("/sieve"), 0755); !st) return st;
    if (auto st = ensureDirectory(globalScriptDir(configDir), 0755); !st) return st;
    return writeFileAtomic(scriptPath(globalScriptDir(configDir), name), source, 0644);
}

Status deleteGlobalScript(const QString& configDir, const QString& name) {
    if (auto st = checkName(name); !st) return st;
    const QString path = scriptPath(globalScriptDir(configDir), name);
    if (!QFileInfo::exists(path)) return Status::fail(QStringLiteral("no global script '%1'").arg(name), ENOENT);
    return removeFile(path);
}

namespace {
void collectIncludes(const QList<Node>& nodes, QList<const Node*>* out) {
    for (const Node& n : nodes) {
        if (n.name == u"include" && !n.tags.contains(QStringLiteral("global"))) *out << &n;
        collectIncludes(n.block, out);
    }
}
}  // namespace

Status checkIncludes(const QString& mailDir, const QString& address, const QString& self, const Script& script) {
    if (!script.has(QStringLiteral("include"))) return {};
    auto dir = checkedDir(mailDir, address);
    if (!dir) return dir.error();
    // Depth-first over the stored personal scripts, with `self` as the new text.
    QList<const Node*> top;
    collectIncludes(script.commands, &top);
    QList<std::shared_ptr<const Script>> keep;  // owns the scripts the walk looks at
    struct Frame {
        QString name;
        QList<const Node*> includes;
        qsizetype next = 0;
    };
    QList<Frame> stack{{self, top, 0}};
    QSet<QString> done;
    while (!stack.isEmpty()) {
        if (stack.size() > Limits{}.maxIncludeDepth + 1) break;  // the run refuses it; not a storage question
        Frame& f = stack.last();
        if (f.next >= f.includes.size()) {
            done.insert(f.name);
            stack.removeLast();
            continue;
        }
        const Node* n = f.includes.at(f.next++);
        const Argument& a = n->positional.at(0);
        const QString name = a.strings.value(0);
        for (const Frame& g : std::as_const(stack))
            if (g.name == name && !n->tags.contains(QStringLiteral("once")))
                return Status::fail(
                    QStringLiteral("%1:%2: include loop through \"%3\"").arg(a.line).arg(a.column).arg(name));
        if (done.contains(name) || name == self) continue;
        const QString path = scriptPath(*dir, name);
        auto source = QFileInfo::exists(path) ? readFile(path, Limits{}.maxScriptBytes)
                                              : Result<QByteArray>::fail(QString(), ENOENT);
        if (!source) {
            if (n->tags.contains(QStringLiteral("optional")) || stack.size() > 1) continue;
            return Status::fail(
                QStringLiteral("%1:%2: included script \"%3\" does not exist").arg(a.line).arg(a.column).arg(name));
        }
        auto compiled = compile(*source);
        if (!compiled) continue;  // its own PUTSCRIPT reported it; the run will too
        keep << std::make_shared<const Script>(std::move(*compiled));
        QList<const Node*> inner;
        collectIncludes(keep.last()->commands, &inner);
        stack << Frame{name, inner, 0};
    }
    return {};
}

bool claimErrorNotice(const QString& mailDir, const QString& address, const QString& name, const QString& stamp) {
    if (!validScriptName(name) || stamp.isEmpty()) return false;
    const QString marker = scriptDir(mailDir, address) + QStringLiteral("/.") + name + QStringLiteral(".notified");
    if (QFileInfo::exists(marker)) {
        auto seen = readFile(marker, 1024);
        if (seen && QString::fromUtf8(*seen).trimmed() == stamp) return false;
    }
    return writeFileAtomic(marker, stamp.toUtf8() + '\n', 0600).ok();
}

ScriptCache& processScriptCache() {
    static ScriptCache cache;
    return cache;
}

}  // namespace postern::sieve
