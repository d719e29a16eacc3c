// smtp_reply_reader.cpp — see smtp_reply_reader.h.
#include "smtp_reply_reader.h"

namespace postern::outbound {

QString SmtpReply::text() const {
    return QString::number(code) + QLatin1Char(' ') + (lines.isEmpty() ? QString() : lines.last());
}

QList<SmtpReply> SmtpReplyReader::feed(const QByteArray& bytes) {
    QList<SmtpReply> out;
    if (failed()) return out;
    qsizetype start = 0;
    while (start < bytes.size()) {
        const qsizetype nl = bytes.indexOf('\n', start);
        const qsizetype end = nl < 0 ? bytes.size() : nl;
        // Checked before appending, so m_pending never exceeds kMaxPending.
        if (end - start > kMaxPending - m_pending.size()) {
            m_error = QStringLiteral("reply line longer than %1 octets").arg(kMaxLine);
            return out;
        }
        m_pending.append(bytes.constData() + start, end - start);
        if (nl < 0) break;
        start = nl + 1;
        QByteArray line;
        line.swap(m_pending);
        if (line.endsWith('\r')) line.chop(1);
        if (!takeLine(line, &out)) return out;
    }
    return out;
}

bool SmtpReplyReader::takeLine(const QByteArray& line, QList<SmtpReply>* out) {
    auto fail = [this](const QString& why) {
        m_error = why;
        return false;
    };
    if (line.size() > kMaxLine) return fail(QStringLiteral("reply line longer than %1 octets").arg(kMaxLine));
    if (line.size() < 3 || line.at(0) < '2' || line.at(0) > '5' || line.at(1) < '0' || line.at(1) > '9' ||
        line.at(2) < '0' || line.at(2) > '9')
        return fail(QStringLiteral("malformed reply (no 2yz-5yz code)"));
    const int code = (line.at(0) - '0') * 100 + (line.at(1) - '0') * 10 + (line.at(2) - '0');
    const char sep = line.size() > 3 ? line.at(3) : ' ';
    if (sep != ' ' && sep != '-') return fail(QStringLiteral("malformed reply (no space or hyphen after the code)"));
    if (!m_current.lines.isEmpty() && code != m_current.code)
        return fail(QStringLiteral("multi-line reply changes its code from %1 to %2").arg(m_current.code).arg(code));
    if (m_current.lines.size() >= kMaxLines) return fail(QStringLiteral("reply longer than %1 lines").arg(kMaxLines));
    m_current.code = code;
    m_current.lines << QString::fromUtf8(line.mid(4));
    if (sep == '-') return true;
    out->append(m_current);
    m_current = SmtpReply();
    return true;
}

}  // namespace postern::outbound
