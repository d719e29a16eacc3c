// file_signer.cpp — see file_signer.h.
#include "file_signer.h"

#include "dkim.h"

#include "common/mail/header_identity.h"
#include "common/mail/message.h"
#include "common/mail/message_file.h"

#include "core/address.h"
#include "core/atomic_file.h"
#include "core/dkim_keys.h"
#include "core/posix_io.h"

#include <QFile>
#include <QFileInfo>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace postern::dkim {

namespace {
struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

// Our signature for `domain` is already in the header (a crash after signing).
bool alreadySigned(const QByteArray& header, const QString& domain) {
    for (const mail::HeaderField& h : mail::parseHeader(header).fields) {
        if (h.name.compare("DKIM-Signature", Qt::CaseInsensitive) != 0) continue;
        QString v = QString::fromLatin1(h.value);
        v.remove(QLatin1Char(' ')).remove(QLatin1Char('\t')).remove(QLatin1Char('\r')).remove(QLatin1Char('\n'));
        if (v.contains(QStringLiteral(";d=") + domain + QLatin1Char(';'), Qt::CaseInsensitive)) return true;
    }
    return false;
}

// The From: domain to sign for, or why not (note, refused).
QString signingDomain(const FileSignRequest& req, const mail::MessageFile& message, FileSignOutcome* out) {
    if (!message.headerComplete()) {
        out->note = QStringLiteral("header too large to sign");
        return {};
    }
    // The same strict reading of From: as at submission (every field, no cap).
    const mail::HeaderIdentity identity = mail::headerIdentity(message.header());
    if (identity.problem != mail::HeaderIdentity::Problem::None || identity.from.size() != 1) {
        out->note = QStringLiteral("no single From address");
        return {};
    }
    const mail::IdentityMailbox from = identity.from.first();
    const QString domain = normalizeDomain(from.domain).valueOr(QString());
    if (domain.isEmpty()) {
        out->note = QStringLiteral("no single From address");
        return {};
    }
    if (!req.maySendAs || !req.maySendAs(from.address())) {
        out->refused = true;
        out->note = QStringLiteral("not signed: From <%1> is not an address user %2 may send as")
                        .arg(from.address(), req.authUser);
        return {};
    }
    if (alreadySigned(message.header(), domain)) {
        out->note = QStringLiteral("already signed");
        return {};
    }
    return domain;
}

// One signature per active key of the domain; empty (and a note) when none could be made.
QByteArray signatures(const QString& configDir, const QString& domain, const mail::MessageFile& message,
                      FileSignOutcome* out) {
    DkimKeyStore store(configDir);
    auto keys = store.keys(domain);
    if (!keys || keys->isEmpty()) {
        out->note = QStringLiteral("no DKIM key for %1").arg(domain);
        return {};
    }
    QByteArray all;
    for (const DkimKey& k : *keys) {
        if (!k.active) continue;
        auto pem = store.privateKeyPem(domain, k.selector);
        if (!pem) {
            out->note = pem.errorMessage();
            continue;
        }
        auto sig = signMessage(message, domain, k.selector, *pem);
        if (!sig) {
            out->note = sig.errorMessage();
            continue;
        }
        all += *sig;
    }
    return all;
}

// signatures + the old file, next to it, fsync'd, renamed over it, folder fsync'd.
Status replaceWithSigned(const QString& path, const QByteArray& sigs, int fd, qint64 size) {
    const QString tmp = path + QStringLiteral(".signing");
    ::unlink(QFile::encodeName(tmp).constData());
    Fd out;
    out.fd = ::open(QFile::encodeName(tmp).constData(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out.fd < 0) return errnoError(tmp, errno);
    Status st = writeAll(out.fd, sigs, tmp);
    if (st) st = copyRange(fd, 0, size, out.fd, tmp);
    if (st && ::fsync(out.fd) != 0) st = errnoError(tmp, errno);
    if (st && ::rename(QFile::encodeName(tmp).constData(), QFile::encodeName(path).constData()) != 0)
        st = errnoError(path, errno);
    if (!st) {
        ::unlink(QFile::encodeName(tmp).constData());
        return st;
    }
    return syncDirectory(QFileInfo(path).absolutePath());
}
}  // namespace

FileSignOutcome signFile(const FileSignRequest& req) {
    FileSignOutcome out;
    Fd in;
    in.fd = ::open(QFile::encodeName(req.path).constData(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (in.fd < 0 || ::fstat(in.fd, &st) != 0) {
        out.error = errnoError(req.path, errno).message;
        return out;
    }
    out.size = st.st_size;
    auto message = mail::MessageFile::read(in.fd, st.st_size, req.maxHeaderBytes);
    if (!message) {
        out.error = QStringLiteral("%1: %2").arg(req.path, message.errorMessage());
        return out;
    }
    const QString domain = signingDomain(req, *message, &out);
    if (domain.isEmpty()) return out;
    const QByteArray sigs = signatures(req.configDir, domain, *message, &out);
    if (sigs.isEmpty()) return out;
    if (auto written = replaceWithSigned(req.path, sigs, in.fd, st.st_size); !written) {
        out.error = written.errorMessage();
        return out;
    }
    out.signedNow = true;
    out.size = sigs.size() + st.st_size;
    return out;
}

}  // namespace postern::dkim
