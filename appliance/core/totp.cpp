// totp.cpp — see totp.h.
#include "totp.h"

#include <QUrl>

#include <liboath/oath.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <mutex>

namespace postern {

namespace {
void initOath() {
    static std::once_flag once;
    std::call_once(once, [] { oath_init(); });
}
}  // namespace

QByteArray generateTotpSecret() {
    QByteArray secret(kTotpSecretBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()), int(secret.size())) != 1) return {};
    return secret;
}

QString base32Encode(const QByteArray& bytes) {
    initOath();
    char* out = nullptr;
    size_t outLen = 0;
    if (oath_base32_encode(bytes.constData(), size_t(bytes.size()), &out, &outLen) != OATH_OK || !out) return {};
    QString s = QString::fromLatin1(out, qsizetype(outLen));
    std::free(out);
    while (s.endsWith(QLatin1Char('='))) s.chop(1);
    return s;
}

Result<QByteArray> base32Decode(const QString& textIn) {
    QString text;
    for (QChar c : textIn) {
        if (c == QLatin1Char(' ') || c == QLatin1Char('=')) continue;
        const QChar u = c.toUpper();
        if (!((u >= QLatin1Char('A') && u <= QLatin1Char('Z')) || (u >= QLatin1Char('2') && u <= QLatin1Char('7'))))
            return Result<QByteArray>::fail(QStringLiteral("not base32: '%1'").arg(c));
        text += u;
        if (text.size() > kMaxBase32Chars)
            return Result<QByteArray>::fail(
                QStringLiteral("base32 secret longer than %1 characters").arg(kMaxBase32Chars));
    }
    if (text.isEmpty()) return Result<QByteArray>::fail(QStringLiteral("empty base32 secret"));
    // liboath wants the padded form.
    while (text.size() % 8) text += QLatin1Char('=');
    initOath();
    const QByteArray in = text.toLatin1();
    char* out = nullptr;
    size_t outLen = 0;
    if (oath_base32_decode(in.constData(), size_t(in.size()), &out, &outLen) != OATH_OK || !out)
        return Result<QByteArray>::fail(QStringLiteral("not base32 (length or padding)"));
    QByteArray bytes(out, qsizetype(outLen));
    OPENSSL_cleanse(out, outLen);
    std::free(out);
    return bytes;
}

QString totpCode(const QByteArray& secret, qint64 unixTime, int digits) {
    if (digits < 6 || digits > 8 || unixTime < 0) return {};
    initOath();
    char otp[16] = {};
    if (oath_totp_generate(secret.constData(), size_t(secret.size()), time_t(unixTime), kTotpStepSeconds, 0,
                           unsigned(digits), otp) != OATH_OK)
        return {};
    return QString::fromLatin1(otp);
}

qint64 totpStep(qint64 unixTime) {
    return unixTime < 0 ? -1 : unixTime / kTotpStepSeconds;
}

QString parseTotpCode(const QString& text) {
    QString digits;
    for (QChar c : text) {
        if (c == QLatin1Char(' ')) continue;
        if (c < QLatin1Char('0') || c > QLatin1Char('9')) return {};
        digits += c;
        if (digits.size() > kTotpDigits) return {};
    }
    return digits.size() == kTotpDigits ? digits : QString();
}

std::optional<qint64> verifyTotp(const QByteArray& secret, const QString& codeIn, qint64 unixTime, qint64 lastStep) {
    const QString code = parseTotpCode(codeIn);
    if (code.isEmpty() || secret.isEmpty() || unixTime < 0) return std::nullopt;
    const QByteArray given = code.toLatin1();
    const qint64 now = totpStep(unixTime);
    std::optional<qint64> matched;
    // Every step of the window is computed and compared: equal time whichever matches.
    for (qint64 step = now - kTotpWindowSteps; step <= now + kTotpWindowSteps; ++step) {
        if (step < 0) continue;
        const QByteArray expected = totpCode(secret, step * kTotpStepSeconds).toLatin1();
        const bool equal = expected.size() == given.size() &&
                           CRYPTO_memcmp(expected.constData(), given.constData(), size_t(given.size())) == 0;
        // RFC 6238 section 5.2: a code of a step already used (or earlier) is a replay.
        if (equal && step > lastStep && !matched) matched = step;
    }
    return matched;
}

QString totpUri(const QString& address, const QByteArray& secret) {
    const QString label = QStringLiteral("Postern:") + address;
    return QStringLiteral("otpauth://totp/%1?secret=%2&issuer=Postern")
        .arg(QString::fromLatin1(QUrl::toPercentEncoding(label, "@:")), base32Encode(secret));
}

}  // namespace postern
