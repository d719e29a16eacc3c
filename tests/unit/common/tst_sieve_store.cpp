// tst_sieve_store.cpp — a user's Sieve scripts on disk (common/sieve/sieve_store.h)
// and the delivery plan made from them (common/sieve/sieve_delivery.h): names and
// their limits, the script count limit, activation, the compiled-script cache
// noticing a replaced file (for the active script and for scripts by path,
// one lookup), and how actions become folders and Maildir flags.
#include "common/sieve/sieve_delivery.h"
#include "common/sieve/sieve_store.h"

#include "core/atomic_file.h"
#include "core/paths.h"

#include <QTemporaryDir>
#include <QtTest>

using namespace postern;
using namespace postern::sieve;

namespace {
const QString kUser = QStringLiteral("alice@example.test");

QString describePlan(const Plan& p) {
    QStringList out;
    for (const Plan::Copy& c : p.copies)
        out << (c.folder.isEmpty() ? QStringLiteral("INBOX") : c.folder.join(u'/')) +
                   (c.flags.isEmpty() ? QString() : u':' + c.flags) +
                   (c.keywords.isEmpty() ? QString() : u'+' + c.keywords.join(u','));
    if (p.reject) out << QStringLiteral("reject(%1)").arg(p.rejectReason);
    for (const Plan::Redirect& r : p.redirects)
        out << QStringLiteral("redirect(%1%2)").arg(r.address, r.copy ? QStringLiteral(",copy") : QString());
    if (p.vacation) out << QStringLiteral("vacation(%1)").arg(p.vacation->to);
    return out.join(u' ');
}
}  // namespace

class TestSieveStore : public QObject {
    Q_OBJECT
private slots:
    void names_data();
    void names();
    void putListActivateDelete();
    void scriptCountLimit();
    void cacheNoticesReplacement();
    void byPathSharesTheLookup();
    void plans_data();
    void plans();
    void bodyTestReadsTheBodyRange();
    void vacationFromNeedsPermission();
    void redirectLoopLimit_data();
    void redirectLoopLimit();
    void errorNoticeOncePerVersion();
};

void TestSieveStore::names_data() {
    QTest::addColumn<QString>("name");
    QTest::addColumn<bool>("valid");
    QTest::newRow("plain") << "main" << true;
    QTest::newRow("dots dashes") << "my-rules_2.v1" << true;
    QTest::newRow("64 bytes (limit)") << QString(kMaxScriptNameBytes, u'a') << true;
    QTest::newRow("65 bytes") << QString(kMaxScriptNameBytes + 1, u'a') << false;
    QTest::newRow("empty") << "" << false;
    QTest::newRow("leading dot") << ".hidden" << false;
    QTest::newRow("dot dot") << ".." << false;
    QTest::newRow("slash") << "a/b" << false;
    QTest::newRow("space") << "a b" << false;
    QTest::newRow("non-ascii") << QString::fromUtf8("\xc3\xa9") << false;
}

void TestSieveStore::names() {
    QFETCH(QString, name);
    QFETCH(bool, valid);
    QCOMPARE(validScriptName(name), valid);
    QTemporaryDir dir;
    QCOMPARE(putScript(dir.path(), kUser, name, "keep;").ok(), valid);
}

void TestSieveStore::putListActivateDelete() {
    QTemporaryDir dir;
    const QString mail = dir.path();
    QCOMPARE(activeScriptName(mail, kUser).value(), QString());
    // A script that does not compile is refused with its position.
    QCOMPARE(putScript(mail, kUser, QStringLiteral("bad"), "keep").errorMessage(),
             QStringLiteral("bad: 1:5: expected ';' or '{', found end of script"));
    QVERIFY(putScript(mail, kUser, QStringLiteral("one"), "keep;").ok());
    QVERIFY(putScript(mail, kUser, QStringLiteral("two"), "discard;").ok());
    QCOMPARE(QFileInfo(scriptDir(mail, kUser) + QStringLiteral("/one.sieve")).permissions() &
                 (QFile::ReadOther | QFile::ReadGroup),
             QFile::Permissions());
    QVERIFY(!activateScript(mail, kUser, QStringLiteral("three")).ok());
    QVERIFY(activateScript(mail, kUser, QStringLiteral("two")).ok());
    auto list = listScripts(mail, kUser);
    QVERIFY(list.ok());
    QCOMPARE(list->size(), 2);
    QCOMPARE(list->at(0).name, QStringLiteral("one"));
    QVERIFY(!list->at(0).active);
    QVERIFY(list->at(1).active);
    QCOMPARE(readScript(mail, kUser, QStringLiteral("two")).value(), QByteArray("discard;"));
    QCOMPARE(deleteScript(mail, kUser, QStringLiteral("two")).errorMessage(),
             QStringLiteral("'two' is the active script; deactivate it first"));
    QVERIFY(deactivateScripts(mail, kUser).ok());
    QCOMPARE(activeScriptName(mail, kUser).value(), QString());
    QVERIFY(deleteScript(mail, kUser, QStringLiteral("two")).ok());
    QCOMPARE(listScripts(mail, kUser)->size(), 1);
    // An "active" file naming something that is not a script name is an error, not a path.
    QVERIFY(writeFileAtomic(scriptDir(mail, kUser) + QStringLiteral("/active"), "../../etc/passwd\n", 0600).ok());
    QVERIFY(!activeScriptName(mail, kUser).ok());
    ScriptCache cache;
    QString readError;
    QVERIFY(!cache.active(mail, kUser, &readError));
    QVERIFY(readError.contains(QStringLiteral("names no valid script")));
}

void TestSieveStore::scriptCountLimit() {
    QTemporaryDir dir;
    for (int i = 0; i < kMaxScriptsPerUser; ++i)
        QVERIFY(putScript(dir.path(), kUser, QStringLiteral("s%1").arg(i), "keep;").ok());
    QCOMPARE(putScript(dir.path(), kUser, QStringLiteral("one-more"), "keep;").errorMessage(),
             QStringLiteral("alice@example.test already has 32 scripts (the limit)"));
    QVERIFY(putScript(dir.path(), kUser, QStringLiteral("s0"), "discard;").ok());  // replacing one is fine
}

void TestSieveStore::cacheNoticesReplacement() {
    QTemporaryDir dir;
    ScriptCache cache;
    QVERIFY(!cache.active(dir.path(), kUser));
    QVERIFY(putScript(dir.path(), kUser, QStringLiteral("main"), "keep;").ok());
    QVERIFY(activateScript(dir.path(), kUser, QStringLiteral("main")).ok());
    auto first = cache.active(dir.path(), kUser);
    QVERIFY(first && first->script);
    auto again = cache.active(dir.path(), kUser);
    QCOMPARE(again->script.get(), first->script.get());  // the same compiled script
    // Replaced with the same size (a new inode): compiled again.
    QVERIFY(writeFileAtomic(scriptDir(dir.path(), kUser) + QStringLiteral("/main.sieve"), "stop;", 0600).ok());
    auto replaced = cache.active(dir.path(), kUser);
    QVERIFY(replaced->script.get() != first->script.get());
    QCOMPARE(replaced->script->commands.first().name, QStringLiteral("stop"));
    // Broken on disk: the error is cached with its position.
    QVERIFY(writeFileAtomic(scriptDir(dir.path(), kUser) + QStringLiteral("/main.sieve"), "stop", 0600).ok());
    auto broken = cache.active(dir.path(), kUser);
    QVERIFY(!broken->script);
    QCOMPARE(broken->error->message, QStringLiteral("1:5: expected ';' or '{', found end of script"));
}

// Included and global scripts (byPath) go through the same lookup as the active script:
// the same cache entry, the same notice of a replaced file, the error of a broken one
// (compiled and cached), nothing for a missing file.
void TestSieveStore::byPathSharesTheLookup() {
    QTemporaryDir dir;
    ScriptCache cache;
    const QString path = scriptDir(dir.path(), kUser) + QStringLiteral("/main.sieve");
    QString error;
    QVERIFY(!cache.byPath(path, &error));
    QVERIFY(error.isEmpty());
    QVERIFY(putScript(dir.path(), kUser, QStringLiteral("main"), "keep;").ok());
    QVERIFY(activateScript(dir.path(), kUser, QStringLiteral("main")).ok());
    auto viaPath = cache.byPath(path, &error);
    QVERIFY(viaPath);
    auto active = cache.active(dir.path(), kUser);
    QVERIFY(active && active->script);
    QCOMPARE(active->script.get(), viaPath.get());  // compiled once
    QCOMPARE(active->name, QStringLiteral("main"));
    QVERIFY(active->stamp.count(u':') == 3);
    QVERIFY(writeFileAtomic(path, "stop", 0600).ok());
    for (int round = 0; round < 2; ++round) {  // compiled, then from the cache
        error.clear();
        QVERIFY(!cache.byPath(path, &error));
        QCOMPARE(error, QStringLiteral("1:5: expected ';' or '{', found end of script"));
    }
    QVERIFY(writeFileAtomic(path, "discard;", 0600).ok());
    auto replaced = cache.byPath(path, &error);
    QVERIFY(replaced && replaced.get() != viaPath.get());
    QCOMPARE(cache.active(dir.path(), kUser)->script.get(), replaced.get());
}

void TestSieveStore::plans_data() {
    QTest::addColumn<QByteArray>("script");
    QTest::addColumn<QString>("expected");
    QTest::addColumn<QString>("note");
    QTest::newRow("no script") << QByteArray() << "INBOX"
                               << "";
    QTest::newRow("keep") << QByteArray("keep;") << "INBOX"
                          << "";
    QTest::newRow("discard") << QByteArray("discard;") << ""
                             << "";
    QTest::newRow("fileinto existing") << QByteArray("require \"fileinto\"; fileinto \"Work\";") << "Work"
                                       << "";
    QTest::newRow("fileinto missing") << QByteArray("require \"fileinto\"; fileinto \"Nope\";") << "INBOX"
                                      << "fileinto \"Nope\": no such folder (and no :create), kept in INBOX";
    QTest::newRow("fileinto :create") << QByteArray("require [\"fileinto\",\"mailbox\"]; fileinto :create \"New/Sub\";")
                                      << "New/Sub"
                                      << "";
    QTest::newRow("fileinto special-use") << QByteArray("require \"fileinto\"; fileinto \"Junk\";") << "Junk"
                                          << "";
    QTest::newRow("fileinto invalid name") << QByteArray("require \"fileinto\"; fileinto \"a/../b\";") << "INBOX"
                                           << "fileinto \"a/../b\": not a valid folder name, kept in INBOX";
    QTest::newRow("fileinto INBOX/x") << QByteArray("require [\"fileinto\",\"mailbox\"]; fileinto :create \"inbox/x\";")
                                      << "INBOX/x"
                                      << "";
    QTest::newRow("flags") << QByteArray(
                                  "require \"imap4flags\"; addflag [\"\\\\Seen\", \"\\\\Flagged\", \"\\\\Answered\", "
                                  "\"\\\\Draft\", \"\\\\Deleted\"];")
                           << "INBOX:DFRST"
                           << "";
    QTest::newRow("keywords kept for the store")
        << QByteArray("require \"imap4flags\"; addflag [\"$Work\", \"\\\\Seen\", \"Later\"];") << "INBOX:S+$Work,Later"
        << "";
    QTest::newRow("invalid keyword and unknown system flag noted")
        << QByteArray("require \"imap4flags\"; addflag [\"ok\", \"bad(kw\", \"\\\\Nope\"];") << "INBOX+ok"
        << "flags not stored (not an IMAP keyword): bad(kw \\Nope";
    QTest::newRow("two missing folders: one INBOX copy")
        << QByteArray("require \"fileinto\"; fileinto \"A\"; fileinto \"B\";") << "INBOX"
        << "";
    QTest::newRow("reject") << QByteArray("require \"reject\"; reject \"no thanks\";") << "reject(no thanks)"
                            << "";
    QTest::newRow("redirect") << QByteArray("redirect \"x@example.org\";") << "redirect(x@example.org)"
                              << "";
    QTest::newRow("redirect :copy") << QByteArray("require \"copy\"; redirect :copy \"x@example.org\";")
                                    << "INBOX redirect(x@example.org,copy)"
                                    << "";
    QTest::newRow("vacation") << QByteArray("require \"vacation\"; vacation \"away\";") << "INBOX"
                              << "vacation: no reply (the user's address is not in To/Cc)";
    QTest::newRow("runtime error keeps") << QByteArray(
                                                "require [\"reject\",\"fileinto\"]; fileinto \"Work\"; reject \"x\";")
                                         << "INBOX"
                                         << "";
    QTest::newRow("compile error keeps") << QByteArray("keep") << "INBOX"
                                         << "";
    QTest::newRow("envelope to has the detail") << QByteArray(
                                                       "require [\"envelope\",\"subaddress\",\"fileinto\"]; if "
                                                       "envelope :detail \"to\" \"work\" { fileinto \"Work\"; }")
                                                << "Work"
                                                << "";
}

void TestSieveStore::plans() {
    QFETCH(QByteArray, script);
    QFETCH(QString, expected);
    QFETCH(QString, note);
    QTemporaryDir dir;
    const QString root = maildirRoot(dir.path(), kUser);
    for (const char* sub : {"/.Work/cur", "/.Work/new", "/.Work/tmp"})
        QVERIFY(QDir().mkpath(root + QLatin1String(sub)));
    if (!script.isEmpty()) {
        // Written directly, so that scripts that do not compile reach delivery too.
        QVERIFY(ensureDirectory(scriptDir(dir.path(), kUser), 0700).ok());
        QVERIFY(writeFileAtomic(scriptDir(dir.path(), kUser) + QStringLiteral("/main.sieve"), script, 0600).ok());
        QVERIFY(writeFileAtomic(scriptDir(dir.path(), kUser) + QStringLiteral("/active"), "main\n", 0600).ok());
    }
    PlanInput in;
    in.header = "From: a@example.org\r\nSubject: hi\r\n\r\n";
    in.size = 100;
    in.envelopeFrom = QStringLiteral("a@example.org");
    in.envelopeTo = QStringLiteral("alice+work@example.test");
    ScriptCache cache;
    const Plan p = planDelivery(dir.path(), kUser, in, cache);
    QCOMPARE(describePlan(p), expected);
    if (!note.isEmpty()) QVERIFY2(p.notes.contains(note), qPrintable(p.notes.join(u'|')));
    if (QTest::currentDataTag() == QLatin1String("runtime error keeps"))
        QVERIFY(p.error.contains(QStringLiteral("reject cannot be combined with fileinto")));
    if (QTest::currentDataTag() == QLatin1String("compile error keeps"))
        QCOMPARE(p.error,
                 QStringLiteral("script main does not compile: 1:5: expected ';' or '{', found end of script"));
}

// vacation :from is used only when the user may send as it (else the reply could not be
// DKIM-signed, and a user could send as anyone); else the address the mail came to.
void TestSieveStore::vacationFromNeedsPermission() {
    QTemporaryDir dir;
    QVERIFY(putScript(dir.path(), kUser, QStringLiteral("v"),
                      "require \"vacation\"; vacation :from \"Boss <boss@example.test>\" \"away\";")
                .ok());
    QVERIFY(activateScript(dir.path(), kUser, QStringLiteral("v")).ok());
    PlanInput in;
    in.header = "From: a@example.org\r\nTo: sales@example.test\r\nSubject: hi\r\n";
    in.envelopeFrom = QStringLiteral("a@example.org");
    in.envelopeTo = QStringLiteral("sales+x@example.test");
    ScriptCache cache;
    // No permission: from the mailbox itself. (A reply is due: the envelope recipient
    // without its +detail, sales@, is in To.)
    Plan p = planDelivery(dir.path(), kUser, in, cache);
    QVERIFY2(p.vacation, qPrintable(p.notes.join(u'|')));
    QCOMPARE(p.vacation->from, kUser);
    QCOMPARE(p.vacation->to, QStringLiteral("a@example.org"));
    // The user may send as the alias: the reply comes from the address the mail was sent to.
    in.maySendAs = [](const QString& a) { return a == u"sales@example.test"; };
    p = planDelivery(dir.path(), kUser, in, cache);
    QCOMPARE(p.vacation->from, QStringLiteral("sales@example.test"));
    // ... and from :from when allowed.
    in.maySendAs = [](const QString& a) { return a == u"sales@example.test" || a == u"boss@example.test"; };
    p = planDelivery(dir.path(), kUser, in, cache);
    QCOMPARE(p.vacation->from, QStringLiteral("boss@example.test"));
    QVERIFY(p.vacation->message.startsWith("From: Boss <boss@example.test>\r\n"));
}

// Loop protection (sieve_delivery.h): at most kMaxForwardHops Delivered-To/X-Loop fields,
// and never through the same mailbox twice; otherwise the message is kept, not redirected.
void TestSieveStore::redirectLoopLimit_data() {
    QTest::addColumn<QByteArray>("trace");
    QTest::addColumn<QString>("expected");
    auto hops = [](int n, const char* name) {
        QByteArray t;
        for (int i = 0; i < n; ++i) t += QByteArray(name) + ": hop" + QByteArray::number(i) + "@example.net\r\n";
        return t;
    };
    QTest::newRow("no trace") << QByteArray() << "redirect(x@example.org)";
    QTest::newRow("limit Delivered-To") << hops(kMaxForwardHops, "Delivered-To") << "redirect(x@example.org)";
    QTest::newRow("limit+1 Delivered-To") << hops(kMaxForwardHops + 1, "Delivered-To") << "INBOX";
    QTest::newRow("limit+1 X-Loop") << hops(kMaxForwardHops + 1, "X-Loop") << "INBOX";
    QTest::newRow("mixed at limit") << hops(5, "X-Loop") + hops(5, "Delivered-To") << "redirect(x@example.org)";
    QTest::newRow("been here") << QByteArray("Delivered-To: Alice@Example.test\r\n") << "INBOX";
}

void TestSieveStore::redirectLoopLimit() {
    QFETCH(QByteArray, trace);
    QFETCH(QString, expected);
    QTemporaryDir dir;
    QVERIFY(putScript(dir.path(), kUser, QStringLiteral("r"), "redirect \"x@example.org\";").ok());
    QVERIFY(activateScript(dir.path(), kUser, QStringLiteral("r")).ok());
    PlanInput in;
    in.header = trace + "From: a@example.org\r\nSubject: hi\r\n";
    in.envelopeFrom = QStringLiteral("a@example.org");
    in.envelopeTo = kUser;
    ScriptCache cache;
    const Plan p = planDelivery(dir.path(), kUser, in, cache);
    QCOMPARE(describePlan(p), expected);
    if (expected == u"INBOX")
        QVERIFY2(p.notes.join(u'|').contains(QStringLiteral("redirect to x@example.org not done")),
                 qPrintable(p.notes.join(u'|')));
}

void TestSieveStore::bodyTestReadsTheBodyRange() {
    QTemporaryDir dir;
    QVERIFY(putScript(dir.path(), kUser, QStringLiteral("b"),
                      "require [\"body\",\"fileinto\"]; if body :contains \"needle\" { fileinto \"Junk\"; }")
                .ok());
    QVERIFY(activateScript(dir.path(), kUser, QStringLiteral("b")).ok());
    const QByteArray file = "Received: x\r\nSubject: hi\r\n\r\nhay hay needle hay\r\n";
    QFile f(dir.path() + QStringLiteral("/msg"));
    QVERIFY(f.open(QIODevice::ReadWrite));
    f.write(file);
    f.flush();
    PlanInput in;
    in.header = file.left(file.indexOf("\r\n\r\n") + 4);
    in.bodyFd = f.handle();
    in.bodyOffset = in.header.size();
    in.bodyLength = file.size() - in.header.size();
    in.size = file.size();
    ScriptCache cache;
    QCOMPARE(describePlan(planDelivery(dir.path(), kUser, in, cache)), QStringLiteral("Junk"));
    in.bodyLength = 6;  // "hay ha": the needle is outside the range
    QCOMPARE(describePlan(planDelivery(dir.path(), kUser, in, cache)), QStringLiteral("INBOX"));
}

void TestSieveStore::errorNoticeOncePerVersion() {
    QTemporaryDir dir;
    const QString sieveDir = scriptDir(dir.path(), kUser);
    QVERIFY(ensureDirectory(sieveDir, 0700).ok());
    QVERIFY(writeFileAtomic(sieveDir + QStringLiteral("/main.sieve"), "keep;\nfrob;\n", 0600).ok());
    QVERIFY(writeFileAtomic(sieveDir + QStringLiteral("/active"), "main\n", 0600).ok());
    PlanInput in;
    in.header = "Subject: hi\r\n";
    ScriptCache cache;
    const Plan first = planDelivery(dir.path(), kUser, in, cache);
    QCOMPARE(describePlan(first), QStringLiteral("INBOX"));
    QVERIFY(first.notice.contains("Subject: Your mail filter \"main\" has an error\r\n"));
    QVERIFY(first.notice.contains("Auto-Submitted: auto-generated\r\n"));
    QVERIFY(first.notice.contains("    2:1: unknown command \"frob\"\r\n"));
    QVERIFY(first.notice.startsWith("From: Mail filter <postmaster@example.test>\r\nTo: <alice@example.test>\r\n"));
    // The same version again: no second notice (the error is still logged).
    const Plan second = planDelivery(dir.path(), kUser, in, cache);
    QVERIFY(second.notice.isEmpty());
    QVERIFY(!second.error.isEmpty());
    // A new version that is broken too: told again. A runtime error counts as well.
    QVERIFY(
        writeFileAtomic(sieveDir + QStringLiteral("/main.sieve"), "require \"reject\";\nkeep;\nreject \"x\";\n", 0600)
            .ok());
    const Plan third = planDelivery(dir.path(), kUser, in, cache);
    QVERIFY(third.notice.contains("    3:1: reject cannot be combined with keep\r\n"));
    QVERIFY(planDelivery(dir.path(), kUser, in, cache).notice.isEmpty());
    // A working script never produces one.
    QVERIFY(writeFileAtomic(sieveDir + QStringLiteral("/main.sieve"), "keep;\n", 0600).ok());
    QVERIFY(planDelivery(dir.path(), kUser, in, cache).notice.isEmpty());
}

QTEST_GUILESS_MAIN(TestSieveStore)
#include "tst_sieve_store.moc"
