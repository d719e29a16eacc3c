// dkim_keys.h — the DKIM key store (RFC 6376, RFC 8463).
//
// Layout: <config>/dkim/<domain>/<selector>.key  (PEM private key, 0640)
//         <config>/dkim/<domain>/keys            (manifest, one line per key:
//                                                 "<selector> <rsa|ed25519> <active|retiring> <created-date>")
// Selectors are "p<yyyymmdd>r" (RSA-2048, rsa-sha256) and "p<yyyymmdd>e"
// (Ed25519, ed25519-sha256); a second key of the same day gets a suffix.
// Interface:
//   DkimKeyStore(configDir)
//   keys(domain)                the manifest entries
//   generate(domain, algorithm) new key, active; the previous active key of
//                               that algorithm becomes retiring (kept, so mail
//                               signed with it still verifies while its DNS
//                               record stays published)
//   ensureKeys(domain)          one active RSA and one active Ed25519 key
//   rotate(domain)              generate() for RSA and Ed25519 (posternctl dkim rotate
//                               and the web panel): the new selectors' TXT records must
//                               be published before receivers can verify new mail
//   removeRetired(domain)       deletes retiring keys (after their DNS is gone)
//   publicRecord(domain, sel)   the TXT value "v=DKIM1; k=rsa; p=..."
//   privateKeyPem(domain, sel)  for signing
// Writes are atomic; private keys never leave this module except to the signer.
#pragma once

#include "result.h"

#include <QDate>
#include <QList>
#include <QString>

namespace postern {

struct DkimKey {
    QString selector;
    QString algorithm;  // "rsa" or "ed25519"
    bool active = true;
    QDate created;
};

class DkimKeyStore {
public:
    explicit DkimKeyStore(QString configDir);
    QString domainDir(const QString& domain) const;
    Result<QList<DkimKey>> keys(const QString& domain) const;
    Result<DkimKey> generate(const QString& domain, const QString& algorithm);
    // Creates missing active keys; returns the keys it created.
    Result<QList<DkimKey>> ensureKeys(const QString& domain);
    Result<QList<DkimKey>> rotate(const QString& domain);
    Result<QStringList> removeRetired(const QString& domain);
    Result<QString> publicRecord(const QString& domain, const QString& selector) const;
    Result<QByteArray> privateKeyPem(const QString& domain, const QString& selector) const;

private:
    Status saveManifest(const QString& domain, const QList<DkimKey>& keys) const;
    QString m_dir;
};

}  // namespace postern
