// paths.h — where a user's mail lives on disk, and safe path segments.
//
// Layout under <data_dir>/mail (Dovecot-compatible, one home per user):
//   <mail_dir>/<domain>/<local>/            the user's home (indexes, state)
//   <mail_dir>/<domain>/<local>/Maildir/    Maildir++ root (cur/ new/ tmp/, .Folder/...)
// <domain> is the A-label form; <local> is the normalised local part with every
// byte outside [a-z0-9._+=-] written as %XX (so '/', leading dots and control
// characters can never form a path) — see encodePathSegment().
//
// Security: addresses come from the network; every function here returns a
// path strictly below the mail folder or an empty string.
#pragma once

#include <QString>

namespace postern {

// "%XX"-escape everything but [a-z0-9._+=-]; never returns ".", ".." or "".
QString encodePathSegment(const QString& text);
QString decodePathSegment(const QString& segment);

// Home folder of normalised address `local@domain` under `mailDir`; empty on a bad address.
QString mailboxHome(const QString& mailDir, const QString& address);
// The Maildir root inside the home.
QString maildirRoot(const QString& mailDir, const QString& address);

}  // namespace postern
