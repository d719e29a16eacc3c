// dkim.cpp — see dkim.h.
#include "dkim.h"

#include <QCryptographicHash>
#include <QMap>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <memory>

namespace postern::dkim {

namespace {

struct Field {
    QByteArray name;
    QByteArray value;  // raw, with folding, without the final CRLF
    QByteArray raw;    // the whole field as written (for simple canonicalisation), without the final CRLF
};

// Header fields and the offset of the body (after the blank line).
QList<Field> headerFields(const QByteArray& msg, qsizetype* bodyStart) {
    QList<Field> out;
    qsizetype pos = 0;
    *bodyStart = msg.size();
    while (pos < msg.size()) {
        qsizetype nl = msg.indexOf('\n', pos);
        const qsizetype end = nl < 0 ? msg.size() : nl + 1;
        QByteArray line = msg.mid(pos, end - pos);
        if (line == "\r\n" || line == "\n") {
            *bodyStart = end;
            break;
        }
        QByteArray content = line;
        while (content.endsWith('\n') || content.endsWith('\r')) content.chop(1);
        if ((line.startsWith(' ') || line.startsWith('\t')) && !out.isEmpty()) {
            out.last().value += "\r\n" + content;
            out.last().raw += "\r\n" + content;
        } else {
            const qsizetype colon = content.indexOf(':');
            if (colon > 0) out.append({content.left(colon), content.mid(colon + 1), content});
        }
        pos = end;
        if (out.size() > 2000) break;
    }
    return out;
}

bool isWsp(char c) { return c == ' ' || c == '\t'; }

QByteArray collapse(const QByteArray& in) {
    QByteArray out;
    out.reserve(in.size());
    bool ws = false;
    for (char c : in) {
        if (c == '\r' || c == '\n') continue;  // unfold
        if (isWsp(c)) {
            ws = true;
            continue;
        }
        if (ws && !out.isEmpty()) out += ' ';
        ws = false;
        out += c;
    }
    return out;
}

QByteArray canonicalizeBodySimple(const QByteArray& body) {
    QByteArray b = body;
    while (b.endsWith("\r\n\r\n")) b.chop(2);
    if (b.isEmpty() || b == "\r\n") return "\r\n";
    if (!b.endsWith("\r\n")) b += "\r\n";
    return b;
}

QMap<QByteArray, QByteArray> parseTags(const QByteArray& value) {
    QMap<QByteArray, QByteArray> tags;
    for (const QByteArray& part : value.split(';')) {
        const qsizetype eq = part.indexOf('=');
        if (eq < 0) continue;
        QByteArray k = part.left(eq).trimmed();
        QByteArray v = part.mid(eq + 1);
        QByteArray clean;
        for (char c : v)
            if (!isWsp(c) && c != '\r' && c != '\n') clean += c;
        if (!tags.contains(k)) tags.insert(k, clean);
    }
    return tags;
}

// The DKIM-Signature field with the value of b= removed (RFC 6376 3.7).
QByteArray withoutSignature(const QByteArray& value) {
    QByteArray out;
    qsizetype i = 0;
    while (i < value.size()) {
        const qsizetype semi = value.indexOf(';', i);
        const qsizetype end = semi < 0 ? value.size() : semi;
        QByteArray part = value.mid(i, end - i);
        const QByteArray key = part.left(part.indexOf('=')).trimmed();
        if (key == "b") part = part.left(part.indexOf('=') + 1);
        out += part;
        if (semi >= 0) out += ';';
        i = end + 1;
    }
    return out;
}

struct PKeyDeleter {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, PKeyDeleter>;

QByteArray foldTags(const QStringList& tags, const QByteArray& signature) {
    // "DKIM-Signature: v=1; a=...;" folded before 78 columns; b= wrapped in 72-character pieces.
    QByteArray out = "DKIM-Signature:";
    int col = int(out.size());
    for (const QString& t : tags) {
        const QByteArray piece = ' ' + t.toLatin1() + ';';
        if (col + piece.size() > 76) {
            out += "\r\n\t";
            col = 8;
            out += piece.mid(1);
            col += int(piece.size() - 1);
        } else {
            out += piece;
            col += int(piece.size());
        }
    }
    out += "\r\n\tb=";
    for (qsizetype i = 0; i < signature.size(); i += 70) {
        if (i) out += "\r\n\t ";
        out += signature.mid(i, 70);
    }
    return out;
}

}  // namespace

QString toString(VerifyResult::Status s) {
    switch (s) {
        case VerifyResult::Status::Pass: return QStringLiteral("pass");
        case VerifyResult::Status::Fail: return QStringLiteral("fail");
        case VerifyResult::Status::TempError: return QStringLiteral("temperror");
        case VerifyResult::Status::PermError: return QStringLiteral("permerror");
        case VerifyResult::Status::Neutral: return QStringLiteral("neutral");
    }
    return {};
}

QByteArray canonicalizeHeaderRelaxed(const QByteArray& name, const QByteArray& value) {
    return name.trimmed().toLower() + ':' + collapse(value) + "\r\n";
}

QByteArray canonicalizeBodyRelaxed(const QByteArray& body) {
    QByteArray out;
    out.reserve(body.size());
    qsizetype pos = 0;
    while (pos < body.size()) {
        qsizetype nl = body.indexOf('\n', pos);
        const qsizetype end = nl < 0 ? body.size() : nl + 1;
        QByteArray line = body.mid(pos, end - pos);
        while (line.endsWith('\n') || line.endsWith('\r')) line.chop(1);
        QByteArray c;
        bool ws = false;
        for (char ch : line) {
            if (isWsp(ch)) {
                ws = true;
                continue;
            }
            if (ws) c += ' ';
            ws = false;
            c += ch;
        }
        out += c + "\r\n";
        pos = end;
    }
    while (out.endsWith("\r\n\r\n")) out.chop(2);
    if (out == "\r\n") out.clear();
    return out;
}

Result<QByteArray> signMessage(const QByteArray& message, const QString& domain, const QString& selector, const QByteArray& keyPem,
                               const QDateTime& now) {
    BIO* bio = BIO_new_mem_buf(keyPem.constData(), int(keyPem.size()));
    PKey key(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
    BIO_free(bio);
    if (!key) return Result<QByteArray>::fail(QStringLiteral("DKIM key for %1/%2 is not a PEM private key").arg(domain, selector));
    const bool ed = EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_ED25519;
    qsizetype bodyStart = 0;
    QList<Field> fields = headerFields(message, &bodyStart);
    const QByteArray bh = QCryptographicHash::hash(canonicalizeBodyRelaxed(message.mid(bodyStart)), QCryptographicHash::Sha256).toBase64();
    static const char* const kSigned[] = {"from", "to", "cc", "subject", "date", "message-id", "reply-to", "in-reply-to",
                                          "references", "mime-version", "content-type", "content-transfer-encoding"};
    QByteArray data;
    QStringList names;
    QList<bool> used(fields.size(), false);
    for (const char* n : kSigned) {
        for (qsizetype i = fields.size() - 1; i >= 0; --i) {  // bottom-up (RFC 6376 5.4.2)
            if (used.at(i) || qstricmp(fields.at(i).name.trimmed().constData(), n) != 0) continue;
            used[i] = true;
            data += canonicalizeHeaderRelaxed(fields.at(i).name, fields.at(i).value);
            names << QString::fromLatin1(n);
        }
    }
    names << QStringLiteral("from");  // over-sign From: a later added From breaks the signature
    const QStringList tags{QStringLiteral("v=1"),
                           ed ? QStringLiteral("a=ed25519-sha256") : QStringLiteral("a=rsa-sha256"),
                           QStringLiteral("c=relaxed/relaxed"),
                           QStringLiteral("d=") + domain,
                           QStringLiteral("s=") + selector,
                           QStringLiteral("t=%1").arg(now.toSecsSinceEpoch()),
                           QStringLiteral("h=") + names.join(QLatin1Char(':')),
                           QStringLiteral("bh=") + QString::fromLatin1(bh)};
    const QByteArray unsignedField = foldTags(tags, QByteArray());
    const qsizetype colon = unsignedField.indexOf(':');
    QByteArray sigData = canonicalizeHeaderRelaxed(unsignedField.left(colon), unsignedField.mid(colon + 1));
    sigData.chop(2);  // the signature field itself is hashed without its CRLF
    data += sigData;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    QByteArray sig;
    size_t len = 0;
    bool ok = false;
    if (ed) {
        const QByteArray digest = QCryptographicHash::hash(data, QCryptographicHash::Sha256);  // RFC 8463 3
        if (EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key.get()) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(digest.constData()), size_t(digest.size())) == 1) {
            sig.resize(qsizetype(len));
            ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                                reinterpret_cast<const unsigned char*>(digest.constData()), size_t(digest.size())) == 1;
        }
    } else if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
               EVP_DigestSignUpdate(ctx, data.constData(), size_t(data.size())) == 1 && EVP_DigestSignFinal(ctx, nullptr, &len) == 1) {
        sig.resize(qsizetype(len));
        ok = EVP_DigestSignFinal(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len) == 1;
    }
    EVP_MD_CTX_free(ctx);
    if (!ok) return Result<QByteArray>::fail(QStringLiteral("DKIM signing failed"));
    sig.truncate(qsizetype(len));
    return foldTags(tags, sig.toBase64()) + "\r\n";
}

QList<VerifyResult> verifyMessage(const QByteArray& message, Resolver& dns) {
    QList<VerifyResult> results;
    qsizetype bodyStart = 0;
    const QList<Field> fields = headerFields(message, &bodyStart);
    const QByteArray body = message.mid(bodyStart);
    int seen = 0;
    for (const Field& sigField : fields) {
        if (qstricmp(sigField.name.trimmed().constData(), "dkim-signature") != 0) continue;
        if (++seen > 8) break;
        VerifyResult r;
        const QMap<QByteArray, QByteArray> tags = parseTags(sigField.value);
        r.domain = QString::fromLatin1(tags.value("d")).toLower();
        r.selector = QString::fromLatin1(tags.value("s"));
        auto perm = [&](const QString& why) {
            r.status = VerifyResult::Status::PermError;
            r.reason = why;
            results << r;
        };
        if (tags.value("v") != "1") { perm(QStringLiteral("unsupported version")); continue; }
        const QByteArray a = tags.value("a");
        const bool ed = a == "ed25519-sha256";
        if (a != "rsa-sha256" && !ed) { perm(QStringLiteral("unsupported algorithm")); continue; }
        if (r.domain.isEmpty() || r.selector.isEmpty() || !tags.contains("bh") || !tags.contains("b") || !tags.contains("h")) {
            perm(QStringLiteral("missing required tag"));
            continue;
        }
        const QList<QByteArray> canon = (tags.value("c").isEmpty() ? QByteArray("simple/simple") : tags.value("c")).split('/');
        const bool relaxedHeader = canon.value(0) == "relaxed";
        const bool relaxedBody = canon.value(1, "simple") == "relaxed";
        if (tags.contains("x") && tags.value("x").toLongLong() < QDateTime::currentSecsSinceEpoch()) {
            r.status = VerifyResult::Status::Fail;
            r.reason = QStringLiteral("signature expired");
            results << r;
            continue;
        }
        QByteArray cbody = relaxedBody ? canonicalizeBodyRelaxed(body) : canonicalizeBodySimple(body);
        if (tags.contains("l")) {
            bool ok = false;
            const qint64 l = tags.value("l").toLongLong(&ok);
            if (!ok || l < 0 || l > cbody.size()) { perm(QStringLiteral("bad l= tag")); continue; }
            cbody.truncate(qsizetype(l));
        }
        if (QCryptographicHash::hash(cbody, QCryptographicHash::Sha256).toBase64() != tags.value("bh")) {
            r.status = VerifyResult::Status::Fail;
            r.reason = QStringLiteral("body hash did not verify");
            results << r;
            continue;
        }
        QByteArray data;
        QList<bool> used(fields.size(), false);
        for (const QByteArray& nameRaw : tags.value("h").split(':')) {
            const QByteArray n = nameRaw.trimmed();
            for (qsizetype i = fields.size() - 1; i >= 0; --i) {
                if (used.at(i) || qstricmp(fields.at(i).name.trimmed().constData(), n.constData()) != 0) continue;
                used[i] = true;
                data += relaxedHeader ? canonicalizeHeaderRelaxed(fields.at(i).name, fields.at(i).value) : fields.at(i).raw + "\r\n";
                break;
            }
        }
        QByteArray own = relaxedHeader ? canonicalizeHeaderRelaxed(sigField.name, withoutSignature(sigField.value))
                                       : sigField.name + ':' + withoutSignature(sigField.value) + "\r\n";
        own.chop(2);
        data += own;
        DnsAnswer txt = dns.query(r.selector + QStringLiteral("._domainkey.") + r.domain, DnsType::TXT);
        if (!txt.ok()) {
            r.status = txt.isNegative() ? VerifyResult::Status::PermError : VerifyResult::Status::TempError;
            r.reason = QStringLiteral("no key record (%1)").arg(toString(txt.status));
            results << r;
            continue;
        }
        const QMap<QByteArray, QByteArray> keyTags = parseTags(txt.records.first().text());
        const QByteArray p = QByteArray::fromBase64(keyTags.value("p"));
        if (p.isEmpty()) { perm(QStringLiteral("key revoked or empty")); continue; }
        PKey pub;
        if (ed || keyTags.value("k") == "ed25519") {
            if (!ed || p.size() != 32) { perm(QStringLiteral("key type does not match the algorithm")); continue; }
            pub.reset(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(p.constData()), 32));
        } else {
            const unsigned char* der = reinterpret_cast<const unsigned char*>(p.constData());
            pub.reset(d2i_PUBKEY(nullptr, &der, long(p.size())));
        }
        if (!pub) { perm(QStringLiteral("unusable public key")); continue; }
        const QByteArray sig = QByteArray::fromBase64(tags.value("b"));
        EVP_MD_CTX* ctx = EVP_MD_CTX_new();
        bool good = false;
        if (ed) {
            const QByteArray digest = QCryptographicHash::hash(data, QCryptographicHash::Sha256);
            good = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, pub.get()) == 1 &&
                   EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.constData()), size_t(sig.size()),
                                    reinterpret_cast<const unsigned char*>(digest.constData()), size_t(digest.size())) == 1;
        } else {
            good = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pub.get()) == 1 &&
                   EVP_DigestVerifyUpdate(ctx, data.constData(), size_t(data.size())) == 1 &&
                   EVP_DigestVerifyFinal(ctx, reinterpret_cast<const unsigned char*>(sig.constData()), size_t(sig.size())) == 1;
        }
        EVP_MD_CTX_free(ctx);
        r.status = good ? VerifyResult::Status::Pass : VerifyResult::Status::Fail;
        r.reason = good ? QString() : QStringLiteral("signature did not verify");
        results << r;
    }
    return results;
}

}  // namespace postern::dkim
