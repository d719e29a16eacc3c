// commands_spam.cpp — posternctl spam status|check|learn: the spam filter for administrators.
//
//   spam status       the filter's line of `posternctl status` (on only when Rspamd answers
//                     GET /ping with pong), and postern-smtpd's scan counts by result since
//                     it started (postern_spam_scans_total in its stats file); the learned
//                     counts per class of the shared Bayes classifier ("shared") and of each
//                     user's (Rspamd's statistics in Redis: the RS and RS<user> hashes listed
//                     in BAYES_*_keys, fields learns_spam and learns_ham), the learn requests waiting in
//                     <data_dir>/spam-learn and postern-imapd's learn outcomes (postern_spam_learns_total). Exit 1 when
//                     the filter is on and Rspamd does not answer.
//   spam learn spam|ham --user U --folder F
//                     bulk training: every message of U's folder F (INBOX when "INBOX") is sent
//                     to Rspamd's controller socket (POST /learnspam or /learnham, Deliver-To: U,
//                     the same request postern-imapd's learner sends), one after the other, with
//                     progress on a terminal and the counts at the end: learned, skipped by Rspamd
//                     (already learned, too few words), refused, too big, errors. Exit 1 when a
//                     message could not be sent (Rspamd down: it stops at the first such error).
//   spam check FILE   sends FILE (a message, RFC 5322) to the Rspamd that postern-smtpd uses
//                     (spam.rspamd_address, else the supervisor's own socket) exactly as a
//                     scan does (POST /checkv2, the same request head and reply parser), and
//                     prints Rspamd's action, score, symbols and what Postern would do with
//                     it under the spam.action_* settings. Nothing is stored or learnt.
//                     Exit 1 when Rspamd cannot be asked or answers badly.
// Security: FILE is read with the caller's rights; nothing in data_dir is written. The
// reply is parsed by the same strict parser as in postern-smtpd (rspamd_protocol.h).
// `spam learn` reads the controller password (0600 root) as root, then drops to the
// daemons' user before it reads any Maildir; the password is never printed.
// Limits: FILE at most smtp.max_message_size (what postern-smtpd would accept); the whole
// exchange at most spam.timeout (per message for `spam learn`; larger messages are
// counted as too big and skipped). Redis replies: kMaxRedisUsers users listed, each
// reply at most kMaxRedisReply bytes.
#include "ctl.h"

#include "common/spam/learn_spool.h"
#include "common/spam/rspamd_learner.h"
#include "common/spam/rspamd_protocol.h"

#include "core/atomic_file.h"
#include "core/paths.h"
#include "core/setting_keys.h"
#include "core/spam_engine.h"
#include "core/spam_status.h"
#include "core/stats.h"
#include "imap_import.h"
#include "mail_import.h"

#include <QDeadlineTimer>
#include <QFile>
#include <QHostAddress>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLocalSocket>
#include <QMap>
#include <QSysInfo>
#include <QTcpSocket>

#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QSet>

#include <unistd.h>
#include <algorithm>
#include <functional>
#include <memory>

namespace postern::ctl {

namespace {

constexpr qsizetype kMaxRedisUsers = 1000;
constexpr qsizetype kMaxRedisReply = 1024 * 1024;

// A flat RESP reply (array of bulk strings, or one bulk/simple string, nil or error).
// Returns the items once `buf` holds the whole reply, nullopt while it does not; an
// error reply or a malformed one gives *bad = true.
std::optional<QList<QByteArray>> parseResp(const QByteArray& buf, bool* bad) {
    qsizetype pos = 0;
    auto line = [&](QByteArray* out) -> bool {
        const qsizetype end = buf.indexOf("\r\n", pos);
        if (end < 0) return false;
        *out = buf.mid(pos, end - pos);
        pos = end + 2;
        return true;
    };
    auto bulk = [&](const QByteArray& head, QList<QByteArray>& items) -> int {  // 1 ok, 0 need more, -1 bad
        if (head.startsWith('+')) {
            items << head.mid(1);
            return 1;
        }
        if (!head.startsWith('$')) return -1;
        bool ok = false;
        const qsizetype n = head.mid(1).toLongLong(&ok);
        if (!ok || n < -1 || n > kMaxRedisReply) return -1;
        if (n == -1) {
            items << QByteArray();
            return 1;
        }
        if (buf.size() - pos < n + 2) return 0;
        items << buf.mid(pos, n);
        pos += n + 2;
        return 1;
    };
    QByteArray head;
    if (!line(&head)) return std::nullopt;
    QList<QByteArray> items;
    if (head.startsWith('-')) {
        *bad = true;
        return items;
    }
    if (head.startsWith('*')) {
        bool ok = false;
        const qsizetype n = head.mid(1).toLongLong(&ok);
        if (!ok || n < -1 || n > kMaxRedisUsers * 4) {
            *bad = true;
            return items;
        }
        for (qsizetype i = 0; i < n; ++i) {
            QByteArray h;
            if (!line(&h)) return std::nullopt;
            const int r = bulk(h, items);
            if (r == 0) return std::nullopt;
            if (r < 0) {
                *bad = true;
                return items;
            }
        }
        return items;
    }
    const int r = bulk(head, items);
    if (r == 0) return std::nullopt;
    if (r < 0) *bad = true;
    return items;
}

// One command to Redis on its unix socket (blocking, bounded); nullopt on any failure.
std::optional<QList<QByteArray>> redisCommand(const QString& socketPath, const QList<QByteArray>& args, int timeoutMs) {
    QLocalSocket s;
    s.connectToServer(socketPath);
    QDeadlineTimer deadline(timeoutMs);
    if (!s.waitForConnected(timeoutMs)) return std::nullopt;
    QByteArray req = "*" + QByteArray::number(args.size()) + "\r\n";
    for (const QByteArray& a : args) req += "$" + QByteArray::number(a.size()) + "\r\n" + a + "\r\n";
    s.write(req);
    while (s.bytesToWrite() > 0 && !deadline.hasExpired())
        if (!s.waitForBytesWritten(int(std::max<qint64>(1, deadline.remainingTime())))) break;
    QByteArray reply;
    while (reply.size() <= kMaxRedisReply && !deadline.hasExpired()) {
        bool bad = false;
        if (auto items = parseResp(reply, &bad)) return bad ? std::nullopt : items;
        if (!s.waitForReadyRead(int(std::max<qint64>(1, deadline.remainingTime())))) break;
        reply += s.readAll();
    }
    return std::nullopt;
}

struct LearnedCounts {
    QString user;
    quint64 spam = 0, ham = 0;
};

// Rspamd's Bayes counts (core/spam_engine.h statisticConf): the shared classifier's RS hash
// and the per-user classifier's RS<user> hashes, as listed in the sets BAYES_{SPAM,HAM}_keys
// and BAYES_{SPAM,HAM}_USER_keys (the first two also hold the RS<user> hashes learnt before
// the shared classifier existed). The shared counts are named "shared" (user names are
// addresses); RS- (the per-user classifier without a user) is never learnt. nullopt when
// Redis cannot be asked.
std::optional<QList<LearnedCounts>> learnedCounts(const SpamPaths& paths) {
    QSet<QByteArray> keys;
    for (const QByteArray& set : {QByteArray("BAYES_SPAM_keys"), QByteArray("BAYES_HAM_keys"),
                                  QByteArray("BAYES_SPAM_USER_keys"), QByteArray("BAYES_HAM_USER_keys")}) {
        auto members = redisCommand(paths.redisSocket, {"SMEMBERS", set}, 3000);
        if (!members) return std::nullopt;
        for (const QByteArray& k : *members)
            if (k.startsWith("RS") && k != "RS-" && keys.size() < kMaxRedisUsers) keys.insert(k);
    }
    QList<QByteArray> sorted(keys.begin(), keys.end());
    std::sort(sorted.begin(), sorted.end());
    QList<LearnedCounts> out;
    for (const QByteArray& k : sorted) {
        auto v = redisCommand(paths.redisSocket, {"HMGET", k, "learns_spam", "learns_ham"}, 3000);
        if (!v || v->size() != 2) return std::nullopt;
        out << LearnedCounts{k == "RS" ? QStringLiteral("shared") : QString::fromUtf8(k.mid(2)), v->at(0).toULongLong(),
                             v->at(1).toULongLong()};
    }
    return out;
}

// postern_spam_learns_total of every postern-imapd process ("class result" -> count).
QMap<QString, quint64> learnOutcomes(const Config& config) {
    QMap<QString, quint64> out;
    const QDir run(config.runDir());
    for (const QString& f : run.entryList({QStringLiteral("postern-imapd*.stats")}, QDir::Files))
        for (const stats::Counter& c : stats::readFile(run.filePath(f)))
            if (c.name == u"postern_spam_learns_total")
                out[c.labels.value(QStringLiteral("class")) + QLatin1Char(' ') +
                    c.labels.value(QStringLiteral("result"))] += c.value;
    return out;
}

int spamStatus(CtlContext& ctx) {
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    bool warn = false;
    ctx.out << spamStatusLine(config, ctx.configDir, &warn) << Qt::endl;
    const QMap<QString, quint64> counts = scanCounts(config);
    if (counts.isEmpty()) ctx.out << "scans since postern-smtpd started: none" << Qt::endl;
    for (auto it = counts.cbegin(); it != counts.cend(); ++it)
        ctx.out << "scans " << it.key() << ": " << it.value() << Qt::endl;
    if (get(config, keys::spam::enabled)) {
        const SpamPaths paths = spamPaths(config, ctx.configDir);
        if (auto learned = learnedCounts(paths)) {
            if (learned->isEmpty()) ctx.out << "learned: nothing yet" << Qt::endl;
            for (const LearnedCounts& l : *learned)
                ctx.out << "learned " << l.user << ": spam " << l.spam << ", ham " << l.ham << Qt::endl;
        } else {
            ctx.out << "learned: unknown (redis does not answer at " << paths.redisSocket << ")" << Qt::endl;
        }
        spam::LearnSpool spool(config.dataDir() + QStringLiteral("/spam-learn"));
        if (auto waiting = spool.pending(spam::kMaxLearnQueue + 1))
            ctx.out << "learn requests waiting: " << spool.count() << " (limit " << spam::kMaxLearnQueue << ")"
                    << Qt::endl;
        const QMap<QString, quint64> outcomes = learnOutcomes(config);
        for (auto it = outcomes.cbegin(); it != outcomes.cend(); ++it)
            ctx.out << "learn requests " << it.key() << ": " << it.value() << Qt::endl;
    }
    const bool down = get(config, keys::spam::enabled) && !rspamdAnswers(rspamdAddress(config, ctx.configDir), 3000);
    return down ? 1 : 0;
}

int spamCheck(CtlContext& ctx) {
    if (ctx.args.size() != 1) return ctx.usage(QStringLiteral("spam check FILE"));
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    QFile file(ctx.args.first());
    if (!file.open(QIODevice::ReadOnly))
        return ctx.fail(QStringLiteral("%1: %2").arg(file.fileName(), file.errorString()));
    const qint64 maxBytes = get(config, keys::smtp::maxMessageSize);
    if (file.size() > maxBytes)
        return ctx.fail(QStringLiteral("%1: %2 bytes, more than smtp.max_message_size (%3)")
                            .arg(file.fileName())
                            .arg(file.size())
                            .arg(maxBytes));
    const QString address = rspamdAddress(config, ctx.configDir);
    RspamdConnection c(address, QDeadlineTimer(get(config, keys::spam::timeout)));
    if (!c.connected()) return ctx.fail(QStringLiteral("rspamd at %1: %2").arg(address, c.error()));
    spam::CheckRequest request;
    request.queueId = QStringLiteral("posternctl-check");
    request.mtaName = config.hostname();
    const QByteArray head = spam::buildCheckRequestHead(request, file.size());
    if (!c.send(head.constData(), head.size()))
        return ctx.fail(QStringLiteral("rspamd at %1: cannot send the request").arg(address));
    qint64 sent = 0;
    while (sent < file.size()) {
        const QByteArray chunk = file.read(64 * 1024);
        if (chunk.isEmpty()) return ctx.fail(QStringLiteral("%1: %2").arg(file.fileName(), file.errorString()));
        if (!c.send(chunk.constData(), chunk.size()))
            return ctx.fail(QStringLiteral("rspamd at %1: cannot send the message").arg(address));
        sent += chunk.size();
    }
    spam::RspamdReplyParser parser;
    c.receive(spam::kMaxReplyHead + spam::kMaxReplyBody + 1, [&parser](const QByteArray& piece) {
        return parser.feed(piece) != spam::RspamdReplyParser::State::NeedMore;
    });
    if (parser.state() == spam::RspamdReplyParser::State::Failed)
        return ctx.fail(QStringLiteral("rspamd: %1").arg(parser.error()));
    if (parser.state() != spam::RspamdReplyParser::State::Done)
        return ctx.fail(QStringLiteral("rspamd at %1: no complete answer within spam.timeout").arg(address));
    const spam::Verdict& v = parser.verdict();
    ctx.out << "action: " << spam::toString(v.action) << Qt::endl;
    ctx.out << "score: " << QString::number(v.score, 'f', 2) << " (required "
            << QString::number(v.requiredScore, 'f', 2) << ")" << Qt::endl;
    ctx.out << "symbols: " << (v.symbols.isEmpty() ? QStringLiteral("-") : v.symbols.join(QLatin1Char(' ')))
            << Qt::endl;
    const spam::Outcome outcome = spam::decide(v, spam::policyFromConfig(config));
    ctx.out << "postern would: " << spam::toString(outcome) << Qt::endl;
    return 0;
}

// Teaches rspamd's controller one message after another (posternctl spam learn), counting
// the outcomes; runs as the daemon user.
struct Learning {
    CtlContext& ctx;
    spam::LearnClass cls;
    QString user;
    QByteArray password;
    QString controllerSocket;
    qint64 maxBytes = 0;
    int timeoutMs = 0;
    quint64 learned = 0, skipped = 0, refused = 0, tooBig = 0, errors = 0;

    // One message; false when the controller cannot be reached (stop: the rest would fail too).
    bool learn(const ExportedMessage& m) {
        QFile file(m.path);
        if (!file.open(QIODevice::ReadOnly)) {  // expunged meanwhile
            ++errors;
            ctx.err << "posternctl: " << m.path << ": " << file.errorString() << Qt::endl;
            return true;
        }
        if (file.size() > maxBytes) {
            ++tooBig;
            return true;
        }
        RspamdConnection c(controllerSocket, QDeadlineTimer(timeoutMs));
        if (!c.connected()) {
            ++errors;
            ctx.err << "posternctl: rspamd controller at " << controllerSocket << ": " << c.error() << "; stopped"
                    << Qt::endl;
            return false;
        }
        const QByteArray head = spam::RspamdLearner::requestHead(cls, user, password, file.size());
        bool sent = c.send(head.constData(), head.size());
        while (sent && !file.atEnd()) {
            const QByteArray chunk = file.read(64 * 1024);
            sent = !chunk.isEmpty() && c.send(chunk.constData(), chunk.size());
        }
        const QByteArray reply =
            sent ? c.receive(spam::RspamdLearner::kMaxReply, [](const QByteArray&) { return false; }) : QByteArray();
        const int code = spam::RspamdLearner::statusOf(reply);
        if (code >= 200 && code < 300) {
            ++(code == 200 ? learned : skipped);
        } else if (code >= 400 && code < 500) {
            ++refused;
            ctx.err << "posternctl: " << QFileInfo(m.path).fileName()
                    << ": refused: " << QString::fromUtf8(reply.left(reply.indexOf('\r')).mid(13)) << Qt::endl;
        } else {
            ++errors;
            ctx.err << "posternctl: " << QFileInfo(m.path).fileName() << ": "
                    << (code < 0 ? QStringLiteral("no answer from rspamd")
                                 : QStringLiteral("rspamd answered %1").arg(code))
                    << Qt::endl;
            if (code < 0) return false;
        }
        return true;
    }

    // Every message of the folder, with a progress line on a terminal.
    void learnAll(const QList<ExportedMessage>& messages) {
        const bool tty = ::isatty(STDERR_FILENO);
        QElapsedTimer shown;
        shown.start();
        qsizetype done = 0;
        for (const ExportedMessage& m : messages) {
            ++done;
            if (tty && shown.elapsed() >= 200) {
                shown.restart();
                ctx.err << "\r" << done << " of " << messages.size() << " messages" << Qt::flush;
            }
            if (!learn(m)) break;
        }
        if (tty) ctx.err << "\r\033[K" << Qt::flush;
    }
};

int spamLearn(CtlContext& ctx) {
    const QString usage = QStringLiteral("spam learn spam|ham --user U --folder F");
    if (ctx.args.size() != 1 || (ctx.args.first() != u"spam" && ctx.args.first() != u"ham") ||
        !ctx.has(QStringLiteral("user")) || !ctx.has(QStringLiteral("folder")))
        return ctx.usage(usage);
    Config config;
    if (!ctx.loadConfig(config)) return 1;
    if (!get(config, keys::spam::enabled))
        return ctx.fail(QStringLiteral("the spam filter is off (spam.enabled = false)"));
    const spam::LearnClass cls = ctx.args.first() == u"spam" ? spam::LearnClass::Spam : spam::LearnClass::Ham;
    const QString user = localUser(ctx, config, ctx.opt(QStringLiteral("user")));
    if (user.isEmpty()) return 1;
    const QString folderName = ctx.opt(QStringLiteral("folder"));
    const QStringList folder = folderName.compare(QStringLiteral("INBOX"), Qt::CaseInsensitive) == 0
                                   ? QStringList()
                                   : folderName.split(QLatin1Char('/'), Qt::SkipEmptyParts);
    const SpamPaths paths = spamPaths(config, ctx.configDir);
    QByteArray password;
    if (auto pw = readFile(paths.passwordFile, 1024)) password = pw->trimmed();  // as root, before the drop
    if (!ctx.runAsDaemonUser(config)) return 1;
    auto messages = readFolder(maildirRoot(config.mailDir(), user), folder);
    if (!messages) return ctx.fail(QStringLiteral("%1 of %2: %3").arg(folderName, user, messages.errorMessage()));
    Learning l{ctx,
               cls,
               user,
               password,
               paths.controllerSocket,
               get(config, keys::smtp::maxMessageSize),
               int(get(config, keys::spam::timeout))};
    l.learnAll(*messages);
    ctx.out << "spam learn " << spam::toString(cls) << ": " << messages->size() << " message(s) in " << folderName
            << " of " << user << ": learned " << l.learned << ", skipped by rspamd " << l.skipped << ", refused "
            << l.refused << ", too big " << l.tooBig << ", errors " << l.errors << Qt::endl;
    return l.errors > 0 ? 1 : 0;
}
}  // namespace

void addSpamCommands(QList<Command>& out) {
    const QString s = QStringLiteral("spam");
    out << Command{{s, QStringLiteral("status")},
                   QString(),
                   QStringLiteral("the spam filter: Rspamd answering, scans by result, learned counts per user"),
                   {},
                   {},
                   spamStatus};
    out << Command{{s, QStringLiteral("check")},
                   QStringLiteral("FILE"),
                   QStringLiteral("what Rspamd says about a message, and what Postern would do with it"),
                   {},
                   {},
                   spamCheck};
    out << Command{{s, QStringLiteral("learn")},
                   QStringLiteral("spam|ham --user U --folder F"),
                   QStringLiteral("train the user's spam filter on every message of a folder"),
                   {QStringLiteral("user"), QStringLiteral("folder")},
                   {},
                   spamLearn};
}

}  // namespace postern::ctl
