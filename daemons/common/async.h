// async.h — run blocking work (password hashing, DNS, big fsyncs) on a worker
// thread and deliver the result back on the main thread, only if the
// requesting object still exists.
//
// Interface: runAsync(context, work, done): `work()` runs in the pool;
// `done(result)` runs later in the thread of qApp, and is skipped when
// `context` was deleted meanwhile (QPointer checked in the main thread, the
// only thread that deletes sessions). Never blocks the event loop.
#pragma once

#include <QCoreApplication>
#include <QMetaObject>
#include <QPointer>
#include <QThreadPool>
#include <utility>

namespace postern {

template <typename Work, typename Done>
void runAsync(QObject* context, Work work, Done done, QThreadPool* pool = QThreadPool::globalInstance()) {
    QPointer<QObject> guard(context);
    pool->start([guard, work = std::move(work), done = std::move(done)]() mutable {
        auto result = work();
        QMetaObject::invokeMethod(
            QCoreApplication::instance(),
            [guard, done = std::move(done), result = std::move(result)]() mutable {
                if (guard) done(std::move(result));
            },
            Qt::QueuedConnection);
    });
}

}  // namespace postern
