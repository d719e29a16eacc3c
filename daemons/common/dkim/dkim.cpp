// dkim.cpp — see dkim.h.
#include "dkim.h"

#include <QCryptographicHash>
#include <QMap>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <optional>
#include <vector>

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

bool isWsp(char c) {
    return c == ' ' || c == '\t';
}

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
        case VerifyResult::Status::Pass:
            return QStringLiteral("pass");
        case VerifyResult::Status::Fail:
            return QStringLiteral("fail");
        case VerifyResult::Status::TempError:
            return QStringLiteral("temperror");
        case VerifyResult::Status::PermError:
            return QStringLiteral("permerror");
        case VerifyResult::Status::Neutral:
            return QStringLiteral("neutral");
    }
    return {};
}

QByteArray canonicalizeHeaderRelaxed(const QByteArray& name, const QByteArray& value) {
    return name.trimmed().toLower() + ':' + collapse(value) + "\r\n";
}

// ---------------------------------------------------------------- body canonicalisation

namespace {
constexpr qsizetype kFlushBytes = 64 * 1024;  // canonical output is handed on in pieces this big
}

BodyCanonicalizer::BodyCanonicalizer(BodyCanon canon, Sink sink) : m_canon(canon), m_sink(std::move(sink)) {}

void BodyCanonicalizer::feed(QByteArrayView data) {
    if (m_canon == BodyCanon::Relaxed)
        for (char c : data) feedRelaxed(c);
    else
        for (char c : data) feedSimple(c);
}

// RFC 6376 3.4.4: WSP runs become one SP, WSP at the end of a line goes, empty lines
// at the end of the body go, a non-empty body ends with CRLF. A line ends at LF; CRs
// right before it are part of the line break, CRs inside the line are content.
void BodyCanonicalizer::feedRelaxed(char c) {
    switch (c) {
        case '\n':
            if (m_lineHasContent)
                out("\r\n");
            else
                ++m_heldEmpty;  // empty: only kept if content follows
            m_pendingCr = 0;
            m_pendingWsp = false;
            m_lineHasContent = false;
            return;
        case '\r':
            ++m_pendingCr;
            return;
        case ' ':
        case '\t':
            flushCarriageReturns();
            m_pendingWsp = true;
            return;
        default:
            flushCarriageReturns();
            content(c);
    }
}

void BodyCanonicalizer::flushCarriageReturns() {
    for (; m_pendingCr > 0; --m_pendingCr) content('\r');
}

void BodyCanonicalizer::content(char c) {
    if (!m_lineHasContent) {
        outCrlf(m_heldEmpty);
        m_heldEmpty = 0;
        m_lineHasContent = true;
    }
    if (m_pendingWsp) m_buffer += ' ';
    m_pendingWsp = false;
    m_buffer += c;
    if (m_buffer.size() >= kFlushBytes) flush();
}

// RFC 6376 3.4.3: the body as it is, but a run of CRLFs at its end becomes one CRLF, and
// a body that does not end with CRLF (the empty one included) gets one.
void BodyCanonicalizer::feedSimple(char c) {
    if (m_pendingCr) {
        m_pendingCr = 0;
        if (c == '\n') {
            ++m_heldCrlf;
            return;
        }
        outCrlf(m_heldCrlf);
        m_heldCrlf = 0;
        out("\r");
    }
    if (c == '\r') {
        m_pendingCr = 1;
        return;
    }
    outCrlf(m_heldCrlf);
    m_heldCrlf = 0;
    m_buffer += c;
    if (m_buffer.size() >= kFlushBytes) flush();
}

void BodyCanonicalizer::finish() {
    if (m_canon == BodyCanon::Relaxed) {
        if (m_lineHasContent) out("\r\n");  // a last line without its line break
    } else {
        if (m_pendingCr) {  // ends with a lone CR: not a line break
            outCrlf(m_heldCrlf);
            out("\r");
        }
        out("\r\n");
    }
    m_heldEmpty = m_heldCrlf = m_pendingCr = 0;
    flush();
}

void BodyCanonicalizer::out(QByteArrayView bytes) {
    m_buffer += bytes;
    if (m_buffer.size() >= kFlushBytes) flush();
}

void BodyCanonicalizer::outCrlf(qint64 times) {
    for (; times > 0; --times) out("\r\n");
}

void BodyCanonicalizer::flush() {
    if (m_buffer.isEmpty()) return;
    m_sink(m_buffer);
    m_buffer.clear();
}

QByteArray canonicalizeBodyRelaxed(const QByteArray& body) {
    QByteArray out;
    BodyCanonicalizer c(BodyCanon::Relaxed, [&out](QByteArrayView b) { out += b; });
    c.feed(body);
    c.finish();
    return out;
}

BodyHasher::BodyHasher(BodyCanon canon, qint64 limit)
    : m_limit(limit), m_canon(canon, [this](QByteArrayView b) {
          // l= (RFC 6376 3.5): only the first m_limit canonical bytes count.
          const qint64 room = m_limit < 0 ? b.size() : std::clamp<qint64>(m_limit - m_length, 0, b.size());
          if (room > 0) m_hash.addData(b.first(room));
          m_length += b.size();
      }) {}

QByteArray BodyHasher::finish() {
    m_canon.finish();
    return m_hash.result();
}

// ---------------------------------------------------------------- signing

namespace {
// Feeds the message's body to every hasher in one pass; false on a read error.
bool hashBody(const mail::MessageFile& message, const QList<BodyHasher*>& hashers) {
    if (hashers.isEmpty()) return true;
    const std::unique_ptr<mail::BodyReader> body = message.body();
    QByteArray chunk(mail::MessageFile::kChunk, Qt::Uninitialized);
    for (;;) {
        const qint64 n = body->read(chunk.data(), chunk.size());
        if (n < 0) return false;
        if (n == 0) return true;
        for (BodyHasher* h : hashers) h->feed(QByteArrayView(chunk.constData(), n));
    }
}

// The signature over `data` with `key`: RSA-SHA256, or Ed25519 over the SHA-256 of data (RFC 8463 3).
std::optional<QByteArray> sign(EVP_PKEY* key, bool ed, const QByteArray& data) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    QByteArray sig;
    size_t len = 0;
    bool ok = false;
    if (ed) {
        const QByteArray digest = QCryptographicHash::hash(data, QCryptographicHash::Sha256);
        const auto* d = reinterpret_cast<const unsigned char*>(digest.constData());
        if (EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, d, size_t(digest.size())) == 1) {
            sig.resize(qsizetype(len));
            ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, d, size_t(digest.size())) == 1;
        }
    } else if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
               EVP_DigestSignUpdate(ctx, data.constData(), size_t(data.size())) == 1 &&
               EVP_DigestSignFinal(ctx, nullptr, &len) == 1) {
        sig.resize(qsizetype(len));
        ok = EVP_DigestSignFinal(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len) == 1;
    }
    EVP_MD_CTX_free(ctx);
    if (!ok) return std::nullopt;
    sig.truncate(qsizetype(len));
    return sig;
}
}  // namespace

Result<QByteArray> signMessage(const mail::MessageFile& message, const QString& domain, const QString& selector,
                               const QByteArray& keyPem, const QDateTime& now) {
    BIO* bio = BIO_new_mem_buf(keyPem.constData(), int(keyPem.size()));
    PKey key(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
    BIO_free(bio);
    if (!key)
        return Result<QByteArray>::fail(
            QStringLiteral("DKIM key for %1/%2 is not a PEM private key").arg(domain, selector));
    const bool ed = EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_ED25519;
    qsizetype bodyStart = 0;
    const QList<Field> fields = headerFields(message.header(), &bodyStart);
    BodyHasher body(BodyCanon::Relaxed);
    if (!hashBody(message, {&body}))
        return Result<QByteArray>::fail(QStringLiteral("cannot read the message body to sign it"), errno);
    const QByteArray bh = body.finish().toBase64();
    static const char* const kSigned[] = {"from",       "to",           "cc",           "subject",
                                          "date",       "message-id",   "reply-to",     "in-reply-to",
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
    const std::optional<QByteArray> sig = sign(key.get(), ed, data);
    if (!sig) return Result<QByteArray>::fail(QStringLiteral("DKIM signing failed"));
    return foldTags(tags, sig->toBase64()) + "\r\n";
}

Result<QByteArray> signMessage(const QByteArray& message, const QString& domain, const QString& selector,
                               const QByteArray& keyPem, const QDateTime& now) {
    return signMessage(mail::MessageFile::fromBytes(message), domain, selector, keyPem, now);
}

// ---------------------------------------------------------------- verifying

namespace {
// One DKIM-Signature field on its way through the checks (RFC 6376 6.1).
struct Candidate {
    VerifyResult result;
    Field field;
    QMap<QByteArray, QByteArray> tags;
    bool ed = false;
    bool relaxedHeader = false;
    BodyCanon bodyCanon = BodyCanon::Simple;
    qint64 limit = -1;  // l=, -1 when absent
    bool decided = false;
    std::unique_ptr<BodyHasher> hasher;

    void decide(VerifyResult::Status status, const QString& why) {
        result.status = status;
        result.reason = why;
        decided = true;
    }
};

// The checks that need only the field itself (6.1.1).
void readSignatureField(Candidate& c) {
    c.tags = parseTags(c.field.value);
    c.result.domain = QString::fromLatin1(c.tags.value("d")).toLower();
    c.result.selector = QString::fromLatin1(c.tags.value("s"));
    const auto perm = VerifyResult::Status::PermError;
    if (c.tags.value("v") != "1") return c.decide(perm, QStringLiteral("unsupported version"));
    const QByteArray a = c.tags.value("a");
    c.ed = a == "ed25519-sha256";
    if (a != "rsa-sha256" && !c.ed) return c.decide(perm, QStringLiteral("unsupported algorithm"));
    if (c.result.domain.isEmpty() || c.result.selector.isEmpty() || !c.tags.contains("bh") || !c.tags.contains("b") ||
        !c.tags.contains("h"))
        return c.decide(perm, QStringLiteral("missing required tag"));
    const QList<QByteArray> canon =
        (c.tags.value("c").isEmpty() ? QByteArray("simple/simple") : c.tags.value("c")).split('/');
    c.relaxedHeader = canon.value(0) == "relaxed";
    c.bodyCanon = canon.value(1, "simple") == "relaxed" ? BodyCanon::Relaxed : BodyCanon::Simple;
    if (c.tags.contains("x") && c.tags.value("x").toLongLong() < QDateTime::currentSecsSinceEpoch())
        return c.decide(VerifyResult::Status::Fail, QStringLiteral("signature expired"));
    if (c.tags.contains("l")) {
        bool ok = false;
        c.limit = c.tags.value("l").toLongLong(&ok);
        if (!ok || c.limit < 0) return c.decide(perm, QStringLiteral("bad l= tag"));
    }
    c.hasher = std::make_unique<BodyHasher>(c.bodyCanon, c.limit);
}

// The signed header fields in h= order, bottom-up (5.4.2), then the signature field without b= (3.7).
QByteArray signedHeaderData(const Candidate& c, const QList<Field>& fields) {
    QByteArray data;
    QList<bool> used(fields.size(), false);
    for (const QByteArray& nameRaw : c.tags.value("h").split(':')) {
        const QByteArray n = nameRaw.trimmed();
        for (qsizetype i = fields.size() - 1; i >= 0; --i) {
            if (used.at(i) || qstricmp(fields.at(i).name.trimmed().constData(), n.constData()) != 0) continue;
            used[i] = true;
            data += c.relaxedHeader ? canonicalizeHeaderRelaxed(fields.at(i).name, fields.at(i).value)
                                    : fields.at(i).raw + "\r\n";
            break;
        }
    }
    QByteArray own = c.relaxedHeader ? canonicalizeHeaderRelaxed(c.field.name, withoutSignature(c.field.value))
                                     : c.field.name + ':' + withoutSignature(c.field.value) + "\r\n";
    own.chop(2);
    return data + own;
}

// The public key from DNS (3.6.2) and the signature check.
void checkSignature(Candidate& c, const QByteArray& data, Resolver& dns) {
    const auto perm = VerifyResult::Status::PermError;
    DnsAnswer txt = dns.query(c.result.selector + QStringLiteral("._domainkey.") + c.result.domain, DnsType::TXT);
    if (!txt.ok())
        return c.decide(txt.isNegative() ? perm : VerifyResult::Status::TempError,
                        QStringLiteral("no key record (%1)").arg(toString(txt.status)));
    const QMap<QByteArray, QByteArray> keyTags = parseTags(txt.records.first().text());
    const QByteArray p = QByteArray::fromBase64(keyTags.value("p"));
    if (p.isEmpty()) return c.decide(perm, QStringLiteral("key revoked or empty"));
    PKey pub;
    if (c.ed || keyTags.value("k") == "ed25519") {
        if (!c.ed || p.size() != 32) return c.decide(perm, QStringLiteral("key type does not match the algorithm"));
        pub.reset(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                              reinterpret_cast<const unsigned char*>(p.constData()), 32));
    } else {
        const unsigned char* der = reinterpret_cast<const unsigned char*>(p.constData());
        pub.reset(d2i_PUBKEY(nullptr, &der, long(p.size())));
    }
    if (!pub) return c.decide(perm, QStringLiteral("unusable public key"));
    const QByteArray sig = QByteArray::fromBase64(c.tags.value("b"));
    const auto* s = reinterpret_cast<const unsigned char*>(sig.constData());
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    bool good = false;
    if (c.ed) {
        const QByteArray digest = QCryptographicHash::hash(data, QCryptographicHash::Sha256);
        good = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, pub.get()) == 1 &&
               EVP_DigestVerify(ctx, s, size_t(sig.size()), reinterpret_cast<const unsigned char*>(digest.constData()),
                                size_t(digest.size())) == 1;
    } else {
        good = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pub.get()) == 1 &&
               EVP_DigestVerifyUpdate(ctx, data.constData(), size_t(data.size())) == 1 &&
               EVP_DigestVerifyFinal(ctx, s, size_t(sig.size())) == 1;
    }
    EVP_MD_CTX_free(ctx);
    if (good)
        c.decide(VerifyResult::Status::Pass, QString());
    else
        c.decide(VerifyResult::Status::Fail, QStringLiteral("signature did not verify"));
}
}  // namespace

QList<VerifyResult> verifyMessage(const mail::MessageFile& message, Resolver& dns) {
    qsizetype bodyStart = 0;
    const QList<Field> fields = headerFields(message.header(), &bodyStart);
    std::vector<Candidate> candidates;
    QList<BodyHasher*> hashers;
    for (const Field& f : fields) {
        if (qstricmp(f.name.trimmed().constData(), "dkim-signature") != 0) continue;
        if (candidates.size() >= size_t(kMaxSignatures)) break;
        Candidate& c = candidates.emplace_back();
        c.field = f;
        readSignatureField(c);
        if (c.hasher) hashers << c.hasher.get();
    }
    // The body once, through every hasher a signature needs.
    const bool bodyRead = hashBody(message, hashers);
    QList<VerifyResult> results;
    for (Candidate& c : candidates) {
        if (!c.decided && !bodyRead)
            c.decide(VerifyResult::Status::TempError, QStringLiteral("cannot read the message body"));
        if (!c.decided) {
            const QByteArray bh = c.hasher->finish().toBase64();
            if (c.limit > c.hasher->canonicalLength())
                c.decide(VerifyResult::Status::PermError, QStringLiteral("bad l= tag"));
            else if (bh != c.tags.value("bh"))
                c.decide(VerifyResult::Status::Fail, QStringLiteral("body hash did not verify"));
            else
                checkSignature(c, signedHeaderData(c, fields), dns);
        }
        results << c.result;
    }
    return results;
}

QList<VerifyResult> verifyMessage(const QByteArray& message, Resolver& dns) {
    return verifyMessage(mail::MessageFile::fromBytes(message), dns);
}

}  // namespace postern::dkim
