// imap_client_parser.h — the client side of IMAP: framing and tokenising the
// server's responses (posternctl import imap). No socket: bytes in, responses out.
//
// Wire grammar handled (RFC 9051 7, 9; RFC 3501 7):
//   response      = "+" [SP text] CRLF                       continuation
//                 / "*" SP data CRLF                         untagged
//                 / tag SP data CRLF                         tagged
//   data          = status-word [SP "[" code "]"] [SP text]  OK NO BAD BYE PREAUTH
//                 / value *(SP value)                        everything else
//   value         = atom / number / quoted / literal / "(" [value *(SP value)] ")" / NIL
//   literal       = ["~"] "{" number "}" CRLF *OCTET          (RFC 3516 literal8 too)
//   atom          may hold a "[...]" section with spaces (BODY[HEADER.FIELDS (A)])
//                 and a "<n>" origin suffix
// A literal exists only where a line ends with its announcement; its octets are
// data whatever they hold. The text of status responses is kept raw (it may hold
// unbalanced quotes and parentheses); only the bracketed code is read.
//
// Interface: ImapResponseParser::feed(bytes) appends; next(&response) returns
// Response (one complete response), NeedMore, or Error (the connection must be
// closed; error() says why). Bytes may arrive in any split.
// Limits (ClientLimits, checked before data is kept):
//   maxLine      1 MiB    bytes of one line, literals excluded
//   maxLiteral   256 MiB  one literal (a message)
//   maxResponse  300 MiB  one response, lines and literals
//   maxDepth     16       nested parentheses
//   maxValues    100,000  values in one response
// Security: the server is not trusted: literal sizes are parsed digit by digit
// with an overflow check and compared as `n > limit - used`; recursion depth is
// bounded where it happens.
#pragma once

#include <QByteArray>
#include <QList>
#include <QString>

namespace postern::ctl {

struct ClientLimits {
    qsizetype maxLine = 1024 * 1024;
    qint64 maxLiteral = 256LL * 1024 * 1024;
    qint64 maxResponse = 300LL * 1024 * 1024;
    int maxDepth = 16;
    qsizetype maxValues = 100000;
};

struct ImapValue {
    enum class Kind { Atom, String, List, Nil };
    Kind kind = Kind::Atom;
    QByteArray text;        // atom or string content
    QList<ImapValue> list;  // Kind::List
    bool isNumber() const;
    quint64 number(bool* ok = nullptr) const;
};

struct ImapResponse {
    enum class Type { Continuation, Untagged, Tagged };
    Type type = Type::Untagged;
    QByteArray tag;           // Tagged only
    QByteArray status;        // OK NO BAD BYE PREAUTH (upper case), else empty
    QByteArray code;          // inside "[...]" of a status response, raw
    QByteArray text;          // the human text of a status response / continuation
    QList<ImapValue> values;  // data of other responses ("3" "FETCH" (...), "CAPABILITY" ...)
};

class ImapResponseParser {
public:
    enum class Result { Response, NeedMore, Error };
    explicit ImapResponseParser(ClientLimits limits = {}) : m_limits(limits) {}
    void feed(QByteArrayView bytes);
    Result next(ImapResponse* out);
    QString error() const { return m_error; }
    qsizetype buffered() const { return m_buf.size(); }

private:
    struct Span {
        qsizetype at;  // offset of the literal data
        qint64 length;
    };
    Result frame();  // finds the end of the response that starts the buffer
    bool parse(qsizetype end, ImapResponse* out);
    bool parseValues(qsizetype& pos, qsizetype end, QList<ImapValue>& out, int depth, bool inList);
    bool parseQuoted(qsizetype& pos, qsizetype end, ImapValue* v);
    bool parseLiteral(qsizetype& pos, ImapValue* v);
    bool parseAtom(qsizetype& pos, qsizetype end, ImapValue* v);
    Result fail(const QString& why);

    ClientLimits m_limits;
    QByteArray m_buf;
    qsizetype m_scan = 0;  // framing resumes here
    qsizetype m_lineStart = 0;
    qint64 m_literalLeft = 0;  // octets of a literal still to come
    QList<Span> m_spans;
    qsizetype m_values = 0;
    QString m_error;
    bool m_failed = false;
};

}  // namespace postern::ctl
