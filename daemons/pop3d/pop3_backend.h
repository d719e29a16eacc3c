// pop3_backend.h — the real Pop3Backend: authenticator and Maildir maildrops,
// with the file work on a worker pool.
#pragma once

#include "pop3_session.h"

#include "common/authenticator.h"

#include "core/config.h"

#include <QThreadPool>

namespace postern::pop3 {

class LocalPop3Backend : public Pop3Backend {
public:
    LocalPop3Backend(const Config& config, Authenticator& auth) : m_config(config), m_auth(auth) {}
    void authenticate(const AuthRequest& request, QByteArray password, AuthDone done) override;
    void openMaildrop(QObject* context, const QString& user, qint64 loginDelaySeconds,
                      std::function<void(Result<std::shared_ptr<Maildrop>>)> done) override;
    void commit(QObject* context, std::shared_ptr<Maildrop> drop, QSet<int> deleted, QSet<int> retrieved,
                std::function<void(Status)> done) override;

private:
    const Config& m_config;
    Authenticator& m_auth;
    QThreadPool m_pool;
};

}  // namespace postern::pop3
