// listener_mode.h — what a listener is for. Policy reads the mode, never the port.
//
// The mode comes from the configuration key that declared the listener
// (smtp.listen -> Mx, submissions.listen -> Submissions, ...).
#pragma once

#include <QString>

namespace postern {

enum class ListenerMode { Mx, Submission, Submissions, Imap, Imaps, Pop3, Pop3s, Http, Https };

inline bool isImplicitTls(ListenerMode m) {
    return m == ListenerMode::Submissions || m == ListenerMode::Imaps || m == ListenerMode::Pop3s ||
           m == ListenerMode::Https;
}

// The listener's name as used in setting keys and ready files ("smtp", "submissions", ...).
inline QString listenerName(ListenerMode m) {
    switch (m) {
        case ListenerMode::Mx: return QStringLiteral("smtp");
        case ListenerMode::Submission: return QStringLiteral("submission");
        case ListenerMode::Submissions: return QStringLiteral("submissions");
        case ListenerMode::Imap: return QStringLiteral("imap");
        case ListenerMode::Imaps: return QStringLiteral("imaps");
        case ListenerMode::Pop3: return QStringLiteral("pop3");
        case ListenerMode::Pop3s: return QStringLiteral("pop3s");
        case ListenerMode::Http: return QStringLiteral("http");
        case ListenerMode::Https: return QStringLiteral("https");
    }
    return QStringLiteral("?");
}

}  // namespace postern
