// folder_watch.h — one inotify watcher for every IDLE session of the process.
//
// A QFileSystemWatcher per session would cost an inotify instance each, and
// Linux allows 128 per user by default (fs.inotify.max_user_instances): the
// 129th IDLE client would silently fall back to polling. Instead one shared
// watcher holds each folder's new/ and cur/ once, however many sessions idle
// on it, and tells every subscriber.
//
// Interface: FolderWatch::watch(folderDir, changed) returns a handle; `changed`
// runs on the event loop after the folder's new/ or cur/ changed, until the
// handle is destroyed. Threading: the event-loop thread only.
#pragma once

#include <QString>

#include <functional>
#include <memory>

namespace postern::imap {

class FolderWatch {
public:
    static std::unique_ptr<FolderWatch> watch(const QString& folderDir, std::function<void()> changed);
    ~FolderWatch();
    FolderWatch(const FolderWatch&) = delete;
    FolderWatch& operator=(const FolderWatch&) = delete;

private:
    FolderWatch() = default;
    QString m_dir;
    std::function<void()> m_changed;
    friend struct FolderWatchRegistry;
};

}  // namespace postern::imap
