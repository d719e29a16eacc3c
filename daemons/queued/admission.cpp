// admission.cpp — see admission.h.
#include "admission.h"

#include "common/dkim/file_signer.h"

#include <cerrno>

namespace postern::outbound {

// Worker thread: the envelope read (a broken one goes to corrupt/), new mail signed, then active/.
Admitted admitFromSpool(const RunnerSettings& s, const std::shared_ptr<const Accounts>& accounts, const QString& id,
                        spool::QueueState fromState) {
    Admitted a;
    auto env = spool::readEnvelope(s.queueDir, fromState, id);
    if (!env && env.error().code == ENOENT) return a;
    if (!env) {
        const Status moved = spool::moveMessage(s.queueDir, id, fromState, spool::QueueState::Corrupt);
        a.error = env.errorMessage() + (moved ? QString() : QStringLiteral("; ") + moved.errorMessage());
        return a;
    }
    if (fromState == spool::QueueState::Incoming && s.dkimSign && !env->authUser.isEmpty()) {
        dkim::FileSignRequest req;
        req.configDir = s.configDir;
        req.path = spool::bodyPath(s.queueDir, fromState, id);
        req.authUser = env->authUser;
        req.maySendAs = [&](const QString& address) {
            return accounts && accounts->maySendAs(env->authUser, address, s.delimiters);
        };
        req.maxHeaderBytes = s.maxHeaderBytes;
        const dkim::FileSignOutcome signing = dkim::signFile(req);
        a.error = signing.error;
        a.note = signing.signedNow ? QStringLiteral("dkim signed") : signing.note;
        a.warn = signing.refused;
        if (!a.error.isEmpty()) return a;
        if (signing.signedNow) {
            env->size = signing.size;
            if (auto st = spool::saveEnvelope(s.queueDir, fromState, *env); !st) {
                a.error = st.errorMessage();
                return a;
            }
        }
    }
    if (auto st = spool::moveMessage(s.queueDir, id, fromState, spool::QueueState::Active); !st) {
        a.error = st.errorMessage();
        return a;
    }
    a.env = *env;
    return a;
}
}  // namespace postern::outbound
