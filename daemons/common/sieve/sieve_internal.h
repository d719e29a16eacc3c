// sieve_internal.h — pieces shared by the Sieve parser, validator and
// interpreter (not for other users; see sieve.h).
#pragma once

#include "sieve.h"

namespace postern::sieve::detail {

Error errorAt(int line, int column, const QString& text);

// Parse only: the syntax tree, every string as written (escapes resolved).
Result<QList<Node>> parse(const QByteArray& source, const Limits& limits);

// Checks the tree against the required extensions and fills Node::tags/positional;
// decodes encoded-character sequences when required.
Status validate(Script& script, const Limits& limits);

// RFC 5228 2.4.2.4: "${hex:...}" and "${unicode:...}"; malformed sequences stay as written.
QString decodeEncodedCharacters(const QString& text);

}  // namespace postern::sieve::detail
