// store_error.cpp — see store_error.h.
#include "store_error.h"

#include <cerrno>

namespace postern::store {

namespace {
struct Row {
    bool temporary;
    int smtp;
    const char* enhanced;
    const char* text;
    const char* imapCode;
    const char* imapText;
};

// One row per kind, in the order of StoreError::Kind.
constexpr Row kRows[] = {
    {true, 452, "4.2.2", "Mailbox full, try again later", "OVERQUOTA", "Quota exceeded"},
    {false, 552, "5.2.2", "Message is larger than the recipient's whole mailbox quota", "OVERQUOTA",
     "Message is larger than the whole mailbox quota"},
    {true, 452, "4.3.1", "Insufficient system storage", "OVERQUOTA", "Not enough disk space"},
    {false, 552, "5.3.4", "Message too big for the mail store", "LIMIT", "Message too big for the mail store"},
    {true, 451, "4.3.0", "Local error in processing, try again later", "LIMIT",
     "Server limit reached, try again later"},
    {true, 451, "4.3.0", "Local error in processing, try again later", "SERVERBUG", "Cannot store the message"},
};

const Row& row(StoreError::Kind k) {
    return kRows[int(k)];
}
}  // namespace

StoreError StoreError::fromErrno(int e, QString detail, Area area) {
    StoreError out;
    out.err = e;
    out.detail = std::move(detail);
    switch (e) {
        case EDQUOT:
            out.kind = area == Area::Spool ? Kind::DiskFull : Kind::MailboxFull;
            break;
        case ENOSPC:
            out.kind = Kind::DiskFull;
            break;
        case EFBIG:
            out.kind = Kind::TooLarge;
            break;
        case EMLINK:
        case EMFILE:
        case ENFILE:
        case ENAMETOOLONG:
            out.kind = Kind::Limit;
            break;
        default:
            out.kind = Kind::Local;
            break;
    }
    return out;
}

StoreError StoreError::overQuota(QString detail, bool messageAlone) {
    StoreError out;
    out.kind = messageAlone ? Kind::MessageOverQuota : Kind::MailboxFull;
    out.detail = std::move(detail);
    return out;
}

bool StoreError::temporary() const {
    return row(kind).temporary;
}
int StoreError::smtpCode() const {
    return row(kind).smtp;
}
QString StoreError::enhancedCode() const {
    return QString::fromLatin1(row(kind).enhanced);
}
QString StoreError::text() const {
    return QString::fromLatin1(row(kind).text);
}
QString StoreError::smtpReply() const {
    return QStringLiteral("%1 %2 %3").arg(smtpCode()).arg(enhancedCode(), text());
}
QByteArray StoreError::imapCode() const {
    return QByteArray(row(kind).imapCode);
}
QString StoreError::imapText() const {
    return QString::fromLatin1(row(kind).imapText);
}

QString toString(StoreError::Kind kind) {
    switch (kind) {
        case StoreError::Kind::MailboxFull:
            return QStringLiteral("mailbox-full");
        case StoreError::Kind::MessageOverQuota:
            return QStringLiteral("message-over-quota");
        case StoreError::Kind::DiskFull:
            return QStringLiteral("disk-full");
        case StoreError::Kind::TooLarge:
            return QStringLiteral("too-large");
        case StoreError::Kind::Limit:
            return QStringLiteral("limit");
        case StoreError::Kind::Local:
            return QStringLiteral("local-error");
    }
    return {};
}

}  // namespace postern::store
