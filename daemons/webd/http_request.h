// http_request.h — a strict parser for the request head of HTTP/1.0 and 1.1
// (RFC 9112), for the small web services of postern-webd.
//
// Interface: parseRequestHead(bytes) -> HttpParse. `bytes` is everything
// received so far; the result is Incomplete (need more), Error (with the
// status to answer: 400, 414, 431, 501, 505) or Complete (request filled,
// headerBytes = length of the head including the empty line).
// Accepted: request line "METHOD SP origin-form SP HTTP/1.x" with CRLF (bare
// LF tolerated), header fields "name: value" (no obsolete line folding), a
// Host header required for HTTP/1.1. Content-Length is parsed (digits only,
// one value); Transfer-Encoding is refused (501): we accept no chunked bodies.
// Limits: request line 8 KiB (414), head 16 KiB (431), 100 header fields (431).
//
// parseForm(body): an application/x-www-form-urlencoded body (the web panel's
// POSTs; WHATWG URL "application/x-www-form-urlencoded parsing", strict):
//   body  = [ pair *( "&" pair ) ]     pair = name "=" value
//   name, value = *( unreserved / "%" HEXDIG HEXDIG / "+" / sub-delims except "&" "=" )
// '+' is a space; names must be non-empty and unique; the decoded bytes must be
// UTF-8 without NUL or control characters other than TAB, CR, LF (a textarea's
// lines). Anything else is refused (Result error, the panel answers 400).
// Limits: kMaxFormBody bytes (16 KiB, checked first: 413 before reading it),
// kMaxFormFields (32) pairs, kMaxFormValue (4096) decoded bytes per value,
// kMaxFormName (64) bytes per name.
// Security: every byte is untrusted; no allocation beyond the limits; the
// path is percent-decoded once and must not contain NUL, "..", or "//".
#pragma once

#include "core/result.h"

#include <QByteArray>
#include <QList>
#include <QMap>
#include <QPair>
#include <QString>

namespace postern::web {

inline constexpr qsizetype kMaxRequestLine = 8 * 1024;
inline constexpr qsizetype kMaxHead = 16 * 1024;
inline constexpr int kMaxHeaderFields = 100;
inline constexpr qsizetype kMaxFormBody = 16 * 1024;
inline constexpr int kMaxFormFields = 32;
inline constexpr qsizetype kMaxFormValue = 4096;
inline constexpr qsizetype kMaxFormName = 64;

struct HttpRequest {
    QByteArray method;  // upper case as sent (methods are case-sensitive)
    QString path;       // decoded path, starts with '/'
    QString query;      // raw query string after '?', may be empty
    int minorVersion = 1;
    QList<QPair<QByteArray, QByteArray>> headers;  // names lower-cased
    QString host;                                  // Host header without port, lower case
    qint64 contentLength = 0;
    QByteArray header(const QByteArray& lowerName) const;
};

struct HttpParse {
    enum class Status { Incomplete, Complete, Error };
    Status status = Status::Incomplete;
    int errorCode = 0;    // for Error
    QString errorText;    // for Error
    HttpRequest request;  // for Complete
    qsizetype headerBytes = 0;
};

HttpParse parseRequestHead(const QByteArray& bytes);
// The value of one query parameter (percent- and '+'-decoded), or "" when absent.
QString queryParameter(const QString& query, const QString& name);
// A urlencoded form body: name -> value (see the file comment), or why it was refused.
Result<QMap<QString, QString>> parseForm(const QByteArray& body);

}  // namespace postern::web
