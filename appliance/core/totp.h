// totp.h — time-based one-time passwords (RFC 6238) for the second login factor.
//
// Interface (pure functions; the time is always passed in, so tests inject a clock):
//   generateTotpSecret()        kTotpSecretBytes (160 bits, RFC 4226 section 4 R6) from
//                               the OpenSSL CSPRNG.
//   base32Encode(bytes)         RFC 4648 section 6 alphabet, upper case, no '=' padding
//                               (what authenticator apps expect in otpauth URIs).
//   base32Decode(text)          case-insensitive, spaces and '=' padding ignored; an
//                               error for any other character or more than
//                               kMaxBase32Chars characters.
//   totpCode(secret, t, digits) the code for Unix time t: HMAC-SHA-1, T0 = 0, X = 30 s
//                               (RFC 6238 section 4), `digits` 6..8 (liboath).
//   totpStep(t)                 floor(t / 30), the time step a code belongs to.
//   parseTotpCode(text)         exactly kTotpDigits ASCII digits (spaces ignored), else
//                               empty.
//   verifyTotp(secret, code, t, lastStep)
//                               the step the code belongs to when it equals the code of
//                               step(t)-1, step(t) or step(t)+1 (kTotpWindowSteps: RFC 6238
//                               section 5.2 allows one step of clock drift) AND that step
//                               is later than `lastStep`, the last step accepted for this
//                               secret (section 5.2: a verifier MUST NOT accept the second
//                               attempt of the same OTP). Every step of the window is
//                               computed and compared in constant time, so the time taken
//                               says nothing about which step matched.
//   totpUri(address, secret)    otpauth://totp/Postern:ADDRESS?secret=BASE32&issuer=Postern
//                               (the Key Uri Format authenticator apps read; the label is
//                               percent-encoded).
// Security: secrets and codes are never logged. The caller stores the step verifyTotp
// returns (replay protection) before it reports success.
// Limits: kMaxBase32Chars (128 characters of secret text); digits 6..8.
// Standards: RFC 6238 (TOTP), RFC 4226 (HOTP), RFC 4648 (base32); HMAC via liboath
// (Debian's liboath0), which implements both RFCs and is what oathtool uses.
#pragma once

#include "result.h"

#include <QByteArray>
#include <QString>
#include <optional>

namespace postern {

inline constexpr int kTotpSecretBytes = 20;  // 160 bits
inline constexpr int kTotpDigits = 6;
inline constexpr int kTotpStepSeconds = 30;
inline constexpr int kTotpWindowSteps = 1;  // +-1 step accepted, +-2 refused
inline constexpr int kMaxBase32Chars = 128;

QByteArray generateTotpSecret();
QString base32Encode(const QByteArray& bytes);
Result<QByteArray> base32Decode(const QString& text);
QString totpCode(const QByteArray& secret, qint64 unixTime, int digits = kTotpDigits);
qint64 totpStep(qint64 unixTime);
QString parseTotpCode(const QString& text);
std::optional<qint64> verifyTotp(const QByteArray& secret, const QString& code, qint64 unixTime, qint64 lastStep);
QString totpUri(const QString& address, const QByteArray& secret);

}  // namespace postern
