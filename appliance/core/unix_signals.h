// unix_signals.h — SIGTERM/SIGINT/SIGHUP delivered into the Qt event loop.
//
// Interface: UnixSignals::install() once per process (after QCoreApplication);
// connect to terminateRequested() and reloadRequested(). The signal handler
// only writes one byte to a socketpair (async-signal-safe); a QSocketNotifier
// turns it into a Qt signal. SIGPIPE is ignored (writes to a closed peer are
// handled as socket errors).
#pragma once

#include <QObject>
#include <QSocketNotifier>

namespace postern {

class UnixSignals : public QObject {
    Q_OBJECT
public:
    static UnixSignals* install(QObject* parent = nullptr);

Q_SIGNALS:
    void terminateRequested(int signal);
    void reloadRequested();

private:
    explicit UnixSignals(QObject* parent);
    void onReadable();
    QSocketNotifier* m_notifier = nullptr;
};

}  // namespace postern
