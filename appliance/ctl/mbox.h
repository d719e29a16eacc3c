// mbox.h — reading and writing mbox files (posternctl import mbox, export).
//
// Reading (MboxReader, socket-free, fed bytes in any split):
//   A message starts at a "From " line at the start of the file or after an
//   empty line that also looks like a separator: "From <sender> <date>" where
//   the date has a time hh:mm (asctime as Thunderbird, Google Takeout and
//   Postfix write it). Other "From " lines in a body (exporters that did not
//   quote them) stay body text. Quoted lines are unquoted by the format:
//     mboxrd: ">From ", ">>From ", ... lose one '>'  (the default)
//     mboxo:  only ">From " loses its '>' (">>From " stays)
//   Line endings may be LF or CRLF (even mixed); messages come out with CRLF
//   (the store's convention); 8-bit bytes pass unchanged. The blank line that
//   precedes the next separator belongs to the format, not to the message.
//   Metadata headers of mail clients become flags and are removed (as Dovecot
//   does): Status (R seen, O old), X-Status (A answered, F flagged, T draft,
//   D deleted), X-Keywords / X-Mozilla-Keys (keywords), X-Mozilla-Status
//   (0x1 seen, 0x2 answered, 0x4 flagged, 0x8 deleted, 0x1000 $Forwarded),
//   X-Mozilla-Status2.
//   The separator's date is the message's INTERNALDATE.
// Writing (mboxrdMessage): the separator line, the metadata headers for the
// flags (Status, X-Status, X-Keywords), the message with LF line endings and
// every /^>*From / line quoted with one more '>' (mboxrd), a blank line.
//
// Limits: kMaxLine bytes per line (a longer line is split, never lost, and the
// split cannot create a separator); kMaxMessage bytes per message (a larger one
// is reported as too big and skipped). Both checked before data is kept.
// Standards: RFC 4155 (the application/mbox type), RFC 5322; the mboxrd/mboxo
// quoting conventions as documented by qmail's mbox(5).
#pragma once

#include <QByteArray>
#include <QDateTime>
#include <QList>
#include <QStringList>

namespace postern::ctl {

enum class MboxFormat { Mboxrd, Mboxo };

struct MboxMessage {
    QByteArray bytes;           // CRLF line endings, metadata headers removed
    QStringList flags;          // IMAP flags and keywords
    qint64 internalDateMs = 0;  // from the separator line; 0 when it had none
    bool tooBig = false;        // larger than kMaxMessage: bytes is empty, skip it
    qint64 index = 0;           // 1-based position in the file
};

class MboxReader {
public:
    static constexpr qsizetype kMaxLine = 1024 * 1024;
    static constexpr qsizetype kMaxMessage = 256 * 1024 * 1024;

    explicit MboxReader(MboxFormat format = MboxFormat::Mboxrd, qsizetype maxMessage = kMaxMessage)
        : m_format(format), m_maxMessage(maxMessage) {}
    // Appends bytes; complete messages become available through take().
    void feed(QByteArrayView bytes);
    // The end of the file: the last message is complete.
    void finish();
    bool hasMessage() const { return !m_ready.isEmpty(); }
    MboxMessage take();
    // The file did not start with a separator (not an mbox file).
    bool badStart() const { return m_badStart; }

    static bool isSeparator(QByteArrayView line);  // without the line ending
    static QDateTime separatorDate(QByteArrayView line);

private:
    void line(QByteArray l, bool complete);
    void endMessage();
    MboxFormat m_format;
    qsizetype m_maxMessage;
    QByteArray m_partial;
    bool m_inMessage = false;
    bool m_blankPending = false;  // an empty line seen: part of the message unless a separator follows
    bool m_lastWasBlank = true;   // at file start a separator may come
    bool m_badStart = false;
    bool m_continuation = false;  // the current line is the rest of a split long line
    MboxMessage m_current;
    QList<MboxMessage> m_ready;
    qint64 m_count = 0;
};

// Flags from metadata headers; removes those headers from `message` (CRLF text).
QStringList takeMetadataFlags(QByteArray& message);
// One message in mboxrd form (see above). `message` has CRLF or LF line endings.
QByteArray mboxrdMessage(const QByteArray& message, const QStringList& flags, const QDateTime& date);

}  // namespace postern::ctl
