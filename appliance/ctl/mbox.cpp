// mbox.cpp — see mbox.h.
#include "mbox.h"

#include <QLocale>
#include <QRegularExpression>
#include <QSet>

namespace postern::ctl {

namespace {
const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

bool isQuotedFrom(QByteArrayView l, bool anyDepth) {
    qsizetype i = 0;
    while (i < l.size() && l.at(i) == '>') ++i;
    if (i == 0 || (!anyDepth && i != 1)) return false;
    return l.sliced(i).startsWith("From ");
}
}  // namespace

bool MboxReader::isSeparator(QByteArrayView line) {
    if (!line.startsWith("From ") || line.size() > 1000) return false;
    // "From <sender> <date>": a sender word, then a date with a time and a year.
    static const QRegularExpression re(
        QStringLiteral("^From \\S+ +\\S.*\\b\\d{1,2}:\\d{2}(:\\d{2})?\\b.*\\b\\d{4}\\b"));
    return re.match(QString::fromLatin1(line.data(), line.size())).hasMatch();
}

QDateTime MboxReader::separatorDate(QByteArrayView line) {
    // asctime: "From sender Mon Jan  1 10:00:00 2020" (Takeout adds a zone: "... 10:00:00 +0000 2020").
    const QList<QByteArray> t = QByteArray(line.data(), line.size()).simplified().split(' ');
    if (t.size() < 7) return {};
    int month = -1;
    for (int m = 0; m < 12; ++m)
        if (t.at(3).compare(kMonths[m], Qt::CaseInsensitive) == 0) month = m + 1;
    bool okDay = false, okYear = false;
    const int day = t.at(4).toInt(&okDay);
    const QTime time = QTime::fromString(QString::fromLatin1(t.at(5)),
                                         t.at(5).size() > 5 ? QStringLiteral("H:mm:ss") : QStringLiteral("H:mm"));
    int offsetSecs = 0;
    qsizetype yearAt = 6;
    if (t.size() > 7 && (t.at(6).startsWith('+') || t.at(6).startsWith('-')) && t.at(6).size() == 5) {
        bool ok = false;
        const int z = t.at(6).mid(1).toInt(&ok);
        if (ok) offsetSecs = (z / 100 * 3600 + z % 100 * 60) * (t.at(6).startsWith('-') ? -1 : 1);
        yearAt = 7;
    }
    const int year = t.at(yearAt).toInt(&okYear);
    if (month < 0 || !okDay || !okYear || !time.isValid()) return {};
    const QDate date(year, month, day);
    if (!date.isValid()) return {};
    return QDateTime(date, time, Qt::UTC).addSecs(-offsetSecs);
}

void MboxReader::feed(QByteArrayView bytes) {
    m_partial.append(bytes.data(), bytes.size());
    qsizetype start = 0;
    for (;;) {
        const qsizetype nl = m_partial.indexOf('\n', start);
        if (nl < 0) break;
        qsizetype end = nl;
        if (end > start && m_partial.at(end - 1) == '\r') --end;
        line(m_partial.mid(start, end - start), true);
        start = nl + 1;
    }
    m_partial.remove(0, start);
    // A line longer than kMaxLine is passed on in pieces (never as a separator).
    while (m_partial.size() > kMaxLine) {
        line(m_partial.left(kMaxLine), false);
        m_partial.remove(0, kMaxLine);
    }
}

void MboxReader::finish() {
    if (!m_partial.isEmpty()) {
        QByteArray rest = m_partial;
        m_partial.clear();
        if (rest.endsWith('\r')) rest.chop(1);
        line(rest, true);
    }
    m_blankPending = false;  // the blank line that ends the last message is the format's
    endMessage();
}

MboxMessage MboxReader::take() {
    return m_ready.takeFirst();
}

void MboxReader::endMessage() {
    if (!m_inMessage) return;
    if (!m_current.tooBig) m_current.flags = takeMetadataFlags(m_current.bytes);
    m_ready << m_current;
    m_current = MboxMessage();
    m_inMessage = false;
}

void MboxReader::line(QByteArray l, bool complete) {
    if (!m_continuation) {
        if (m_lastWasBlank && complete && isSeparator(l)) {
            m_blankPending = false;  // the blank line before a separator belongs to the format
            endMessage();
            m_inMessage = true;
            m_current.index = ++m_count;
            const QDateTime d = separatorDate(l);
            m_current.internalDateMs = d.isValid() ? d.toMSecsSinceEpoch() : 0;
            m_lastWasBlank = false;
            return;
        }
        if (!m_inMessage) {
            if (!l.isEmpty()) m_badStart = true;
            m_lastWasBlank = l.isEmpty();
            return;
        }
        if (m_blankPending) {
            m_blankPending = false;
            if (!m_current.tooBig) m_current.bytes += "\r\n";
        }
        if (l.isEmpty() && complete) {
            m_blankPending = true;
            m_lastWasBlank = true;
            return;
        }
        if (isQuotedFrom(l, m_format == MboxFormat::Mboxrd)) l.remove(0, 1);
    }
    m_lastWasBlank = false;
    m_continuation = !complete;
    if (m_current.tooBig) return;
    const qsizetype add = l.size() + (complete ? 2 : 0);
    if (add > m_maxMessage - m_current.bytes.size()) {
        m_current.tooBig = true;
        m_current.bytes.clear();
        m_current.bytes.squeeze();
        return;
    }
    m_current.bytes += l;
    if (complete) m_current.bytes += "\r\n";
}

QStringList takeMetadataFlags(QByteArray& message) {
    QSet<QString> flags;
    QStringList keywords;
    QByteArray out;
    qsizetype pos = 0;
    bool dropping = false;
    bool inHeader = true;
    while (pos < message.size() && inHeader) {
        qsizetype nl = message.indexOf('\n', pos);
        const qsizetype end = nl < 0 ? message.size() : nl + 1;
        const QByteArray raw = message.mid(pos, end - pos);
        QByteArray l = raw;
        while (l.endsWith('\n') || l.endsWith('\r')) l.chop(1);
        pos = end;
        if (l.isEmpty()) {
            out += raw;
            inHeader = false;
            break;
        }
        if ((l.startsWith(' ') || l.startsWith('\t'))) {
            if (!dropping) out += raw;
            continue;
        }
        const qsizetype colon = l.indexOf(':');
        const QByteArray name = colon > 0 ? l.left(colon).trimmed().toLower() : QByteArray();
        const QByteArray value = colon > 0 ? l.mid(colon + 1).trimmed() : QByteArray();
        dropping = true;
        if (name == "status") {
            if (value.contains('R')) flags << QStringLiteral("\\Seen");
        } else if (name == "x-status") {
            if (value.contains('A')) flags << QStringLiteral("\\Answered");
            if (value.contains('F')) flags << QStringLiteral("\\Flagged");
            if (value.contains('T')) flags << QStringLiteral("\\Draft");
            if (value.contains('D')) flags << QStringLiteral("\\Deleted");
        } else if (name == "x-keywords" || name == "x-mozilla-keys") {
            for (const QByteArray& k : value.simplified().replace(',', ' ').split(' '))
                if (!k.isEmpty() && !k.startsWith('\\')) keywords << QString::fromUtf8(k);
        } else if (name == "x-mozilla-status") {
            bool ok = false;
            const uint v = value.toUInt(&ok, 16);
            if (ok) {
                if (v & 0x1) flags << QStringLiteral("\\Seen");
                if (v & 0x2) flags << QStringLiteral("\\Answered");
                if (v & 0x4) flags << QStringLiteral("\\Flagged");
                if (v & 0x8) flags << QStringLiteral("\\Deleted");
                if (v & 0x1000) flags << QStringLiteral("$Forwarded");
            }
        } else if (name == "x-mozilla-status2") {
        } else {
            dropping = false;
            out += raw;
        }
    }
    out += message.mid(pos);
    message = out;
    QStringList result(flags.begin(), flags.end());
    result.sort();
    for (const QString& k : std::as_const(keywords))
        if (!result.contains(k)) result << k;
    return result;
}

QByteArray mboxrdMessage(const QByteArray& message, const QStringList& flags, const QDateTime& date) {
    const QDateTime d = date.toUTC();
    QByteArray out = "From MAILER-DAEMON " + QLocale::c().toString(d, QStringLiteral("ddd MMM ")).toLatin1() +
                     QByteArray::number(d.date().day()).rightJustified(2, ' ') + ' ' +
                     QLocale::c().toString(d, QStringLiteral("hh:mm:ss yyyy")).toLatin1() + '\n';
    QByteArray status = flags.contains(QStringLiteral("\\Seen")) ? "RO" : "O";
    QByteArray xstatus;
    if (flags.contains(QStringLiteral("\\Answered"))) xstatus += 'A';
    if (flags.contains(QStringLiteral("\\Flagged"))) xstatus += 'F';
    if (flags.contains(QStringLiteral("\\Draft"))) xstatus += 'T';
    if (flags.contains(QStringLiteral("\\Deleted"))) xstatus += 'D';
    QStringList keywords;
    for (const QString& f : flags)
        if (!f.startsWith(QLatin1Char('\\'))) keywords << f;
    QByteArray meta = "Status: " + status + '\n';
    if (!xstatus.isEmpty()) meta += "X-Status: " + xstatus + '\n';
    if (!keywords.isEmpty()) meta += "X-Keywords: " + keywords.join(QLatin1Char(' ')).toUtf8() + '\n';
    bool inHeader = true;
    qsizetype pos = 0;
    while (pos < message.size()) {
        qsizetype nl = message.indexOf('\n', pos);
        const bool last = nl < 0;
        if (last) nl = message.size();
        QByteArray l = message.mid(pos, nl - pos);
        if (l.endsWith('\r')) l.chop(1);
        pos = nl + 1;
        if (inHeader && l.isEmpty()) {
            out += meta;
            inHeader = false;
        }
        if (isQuotedFrom(l, true) || l.startsWith("From ")) out += '>';
        out += l;
        if (!last || !l.isEmpty()) out += '\n';
        if (last) break;
    }
    if (inHeader) out += meta + '\n';  // a message without a body
    if (!out.endsWith('\n')) out += '\n';
    out += '\n';
    return out;
}

}  // namespace postern::ctl
