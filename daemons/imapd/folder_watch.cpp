// folder_watch.cpp — see folder_watch.h.
#include "folder_watch.h"

#include <QFileSystemWatcher>
#include <QHash>
#include <QList>

namespace postern::imap {

struct FolderWatchRegistry {
    QFileSystemWatcher watcher;
    QHash<QString, QList<FolderWatch*>> byDir;  // folder -> subscribers

    FolderWatchRegistry() {
        QObject::connect(&watcher, &QFileSystemWatcher::directoryChanged, &watcher, [this](const QString& path) {
            const qsizetype slash = path.lastIndexOf(QLatin1Char('/'));
            const QString dir = slash > 0 ? path.left(slash) : path;
            // Subscribers may go away while we call others: look each one up again.
            const QList<FolderWatch*> subs = byDir.value(dir);
            for (FolderWatch* w : subs)
                if (byDir.value(dir).contains(w) && w->m_changed) w->m_changed();
        });
    }
    static FolderWatchRegistry& get() {
        static FolderWatchRegistry r;
        return r;
    }
};

std::unique_ptr<FolderWatch> FolderWatch::watch(const QString& folderDir, std::function<void()> changed) {
    std::unique_ptr<FolderWatch> w(new FolderWatch());
    w->m_dir = folderDir;
    w->m_changed = std::move(changed);
    FolderWatchRegistry& r = FolderWatchRegistry::get();
    QList<FolderWatch*>& subs = r.byDir[folderDir];
    if (subs.isEmpty()) r.watcher.addPaths({folderDir + QStringLiteral("/new"), folderDir + QStringLiteral("/cur")});
    subs << w.get();
    return w;
}

FolderWatch::~FolderWatch() {
    FolderWatchRegistry& r = FolderWatchRegistry::get();
    auto it = r.byDir.find(m_dir);
    if (it == r.byDir.end()) return;
    it->removeAll(this);
    if (it->isEmpty()) {
        r.byDir.erase(it);
        r.watcher.removePaths({m_dir + QStringLiteral("/new"), m_dir + QStringLiteral("/cur")});
    }
}

}  // namespace postern::imap
