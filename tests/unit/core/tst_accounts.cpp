// tst_accounts.cpp — domains, users and aliases: the resolution table
// (exact, alias, multi-target, catch-all, plus-address, loops), edits and
// their errors, file round trips, and concurrent edits from two processes.
#include "core/account_ops.h"
#include "core/accounts.h"
#include "core/atomic_file.h"

#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

using namespace postern;

namespace {
Accounts sample() {
    const QByteArray domains = "example.org\nexample.net\nbücher.example\n";
    const QByteArray users =
        "alice@example.org:{ARGON2ID}x::::::\n"
        "bob@example.org:{SHA512-CRYPT}$6$x::::::userdb_quota_rule=*:storage=1G\n"
        "carol@example.net:$2y$05$x::::::\n"
        "dora@xn--bcher-kva.example:{ARGON2ID}x::::::\n";
    const QByteArray aliases =
        "# comment kept\n"
        "sales@example.org alice@example.org, bob@example.org\n"
        "info@example.org sales@example.org,\n"
        "  ext@remote.test\n"
        "@example.net carol@example.net\n"
        "self@example.org self@example.org, alice@example.org\n"
        "bob@example.org bob@example.org, archive@remote.test\n"
        "team+ops@example.org bob@example.org\n"
        "team@example.org alice@example.org\n";
    auto a = Accounts::parse(domains, users, aliases);
    if (!a) qFatal("%s", qPrintable(a.errorMessage()));
    return *a;
}
}  // namespace

class TstAccounts : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void resolution_data() {
        QTest::addColumn<QString>("address");
        QTest::addColumn<int>("status");
        QTest::addColumn<QStringList>("mailboxes");
        QTest::addColumn<QStringList>("forwards");
        using S = Resolution::Status;
        QTest::newRow("exact user") << "alice@example.org" << int(S::Ok) << QStringList{"alice@example.org"}
                                    << QStringList{};
        QTest::newRow("case-insensitive")
            << "ALICE@Example.ORG" << int(S::Ok) << QStringList{"alice@example.org"} << QStringList{};
        QTest::newRow("plus-address") << "alice+news@example.org" << int(S::Ok) << QStringList{"alice@example.org"}
                                      << QStringList{};
        QTest::newRow("multi-target alias")
            << "sales@example.org" << int(S::Ok) << QStringList{"alice@example.org", "bob@example.org"}
            << QStringList{"archive@remote.test"};
        QTest::newRow("nested + continuation")
            << "info@example.org" << int(S::Ok) << QStringList{"alice@example.org", "bob@example.org"}
            << QStringList{"archive@remote.test", "ext@remote.test"};
        QTest::newRow("catch-all") << "anything@example.net" << int(S::Ok) << QStringList{"carol@example.net"}
                                   << QStringList{};
        QTest::newRow("user beats catch-all")
            << "carol@example.net" << int(S::Ok) << QStringList{"carol@example.net"} << QStringList{};
        QTest::newRow("unknown user") << "nobody@example.org" << int(S::Unknown) << QStringList{} << QStringList{};
        QTest::newRow("unknown plus") << "nobody+x@example.org" << int(S::Unknown) << QStringList{} << QStringList{};
        QTest::newRow("not local") << "someone@elsewhere.test" << int(S::NotLocal) << QStringList{}
                                   << QStringList{"someone@elsewhere.test"};
        QTest::newRow("alias to self (invalid)")
            << "self@example.org" << int(S::Invalid) << QStringList{} << QStringList{};
        QTest::newRow("keep copy idiom") << "bob@example.org" << int(S::Ok) << QStringList{"bob@example.org"}
                                         << QStringList{"archive@remote.test"};
        QTest::newRow("alias with detail exact")
            << "team+ops@example.org" << int(S::Ok) << QStringList{"bob@example.org"}
            << QStringList{"archive@remote.test"};
        QTest::newRow("alias base via detail")
            << "team+dev@example.org" << int(S::Ok) << QStringList{"alice@example.org"} << QStringList{};
        QTest::newRow("idn domain") << "dora@bücher.example" << int(S::Ok) << QStringList{"dora@xn--bcher-kva.example"}
                                    << QStringList{};
        QTest::newRow("garbage") << "not an address" << int(S::Invalid) << QStringList{} << QStringList{};
        QTest::newRow("quoted local") << "\"a@b\"@example.org" << int(S::Invalid) << QStringList{} << QStringList{};
    }
    void resolution() {
        QFETCH(QString, address);
        QFETCH(int, status);
        QFETCH(QStringList, mailboxes);
        QFETCH(QStringList, forwards);
        const Accounts a = sample();
        Resolution r = a.resolve(address);
        QCOMPARE(int(r.status), status);
        if (r.status == Resolution::Status::Ok || r.status == Resolution::Status::NotLocal) {
            QStringList m = r.mailboxes, f = r.forwards;
            m.sort();
            f.sort();
            QCOMPARE(m, mailboxes);
            QCOMPARE(f, forwards);
        }
    }

    void delimiterConfigurable() {
        const Accounts a = sample();
        QVERIFY(a.resolve(QStringLiteral("alice-x@example.org"), QStringLiteral("-")).ok());
        QCOMPARE(int(a.resolve(QStringLiteral("alice+x@example.org"), QStringLiteral("-")).status),
                 int(Resolution::Status::Unknown));
        QCOMPARE(int(a.resolve(QStringLiteral("alice+x@example.org"), QString()).status),
                 int(Resolution::Status::Unknown));
        QVERIFY(a.resolve(QStringLiteral("alice+x@example.org"), QStringLiteral("+-")).ok());
    }

    void loops() {
        Accounts a = sample();
        QVERIFY(a.addAlias(QStringLiteral("l1@example.org"), {QStringLiteral("alice@example.org")}).ok());
        QVERIFY(a.addAlias(QStringLiteral("l2@example.org"), {QStringLiteral("l1@example.org")}).ok());
        Status st = a.addAlias(QStringLiteral("l1@example.org"), {QStringLiteral("l2@example.org")});
        QVERIFY(!st.ok());
        QCOMPARE(st.errorMessage(), QStringLiteral("alias loop: l1@example.org -> l2@example.org -> l1@example.org"));
        // Nothing changed on error.
        QCOMPARE(a.aliasTargets(QStringLiteral("l1@example.org")), QStringList{QStringLiteral("alice@example.org")});
        // A loop written by hand is still caught at resolution time.
        auto hand = Accounts::parse("example.org\n", "", "x@example.org y@example.org\ny@example.org x@example.org\n");
        QVERIFY(hand.ok());
        Resolution r = hand->resolve(QStringLiteral("x@example.org"));
        QCOMPARE(int(r.status), int(Resolution::Status::Loop));
        QCOMPARE(r.detail, QStringLiteral("x@example.org -> y@example.org -> x@example.org"));
    }

    void depthLimit() {
        QByteArray aliases;
        for (int i = 0; i < 20; ++i)
            aliases += QByteArray("a") + QByteArray::number(i) + "@example.org a" + QByteArray::number(i + 1) +
                       "@example.org\n";
        auto a = Accounts::parse("example.org\n", "a20@example.org:x::::::\n", aliases);
        QVERIFY(a.ok());
        QCOMPARE(int(a->resolve(QStringLiteral("a0@example.org")).status), int(Resolution::Status::TooDeep));
        QVERIFY(a->resolve(QStringLiteral("a10@example.org")).ok());  // 10 hops is fine
    }

    void editErrors() {
        Accounts a = sample();
        QCOMPARE(a.addDomain(QStringLiteral("EXAMPLE.org")).errorMessage(),
                 QStringLiteral("domain example.org already exists"));
        QCOMPARE(a.addDomain(QStringLiteral("bad..domain")).errorMessage(),
                 QStringLiteral("domain 'bad..domain' has an empty label"));
        QCOMPARE(a.addUser(QStringLiteral("x@unknown.test"), QStringLiteral("h")).errorMessage(),
                 QStringLiteral("unknown domain unknown.test (add it first: posternctl domain add unknown.test)"));
        QCOMPARE(a.addUser(QStringLiteral("Alice@example.org"), QStringLiteral("h")).errorMessage(),
                 QStringLiteral("user alice@example.org already exists"));
        QCOMPARE(a.addUser(QStringLiteral("no-at-sign"), QStringLiteral("h")).errorMessage(),
                 QStringLiteral("'no-at-sign' is not an address (no @)"));
        QCOMPARE(a.addUser(QStringLiteral("a..b@example.org"), QStringLiteral("h")).errorMessage(),
                 QStringLiteral("'a..b@example.org': local part has characters that need quoting or misplaced dots"));
        QCOMPARE(a.removeUser(QStringLiteral("zed@example.org"), false).errorMessage(),
                 QStringLiteral("unknown user zed@example.org"));
        QCOMPARE(a.addAlias(QStringLiteral("x@unknown.test"), {QStringLiteral("alice@example.org")}).errorMessage(),
                 QStringLiteral("unknown domain unknown.test (aliases are for local domains; add it first)"));
        QCOMPARE(a.addAlias(QStringLiteral("x@example.org"), {QStringLiteral("ghost@example.org")}).errorMessage(),
                 QStringLiteral("target ghost@example.org is not a user or alias here"));
        QCOMPARE(a.addAlias(QStringLiteral("x@example.org"), {}).errorMessage(),
                 QStringLiteral("alias x@example.org needs at least one target"));
        QCOMPARE(a.removeAlias(QStringLiteral("nope@example.org")).errorMessage(),
                 QStringLiteral("unknown alias nope@example.org"));
        QCOMPARE(
            a.removeDomain(QStringLiteral("example.org"), false).errorMessage(),
            QStringLiteral("domain example.org still has 2 user(s) and 6 alias(es); remove them first or use --force"));
        QVERIFY(a.removeDomain(QStringLiteral("example.org"), true).ok());
        QVERIFY(!a.isLocalDomain(QStringLiteral("example.org")));
        QCOMPARE(a.aliases(QStringLiteral("example.org")).size(), 0);
    }

    void removeUserProtectsRoleAliases() {
        Accounts a = sample();
        QVERIFY(a.addUser(QStringLiteral("admin@example.net"), QStringLiteral("h")).ok());
        QCOMPARE(a.ensureRoleAliases(QStringLiteral("example.net"), QStringLiteral("admin@example.net")),
                 (QStringList{QStringLiteral("postmaster@example.net"), QStringLiteral("abuse@example.net")}));
        QCOMPARE(a.resolve(QStringLiteral("postmaster@example.net")).mailboxes,
                 QStringList{QStringLiteral("admin@example.net")});
        Status st = a.removeUser(QStringLiteral("admin@example.net"), false);
        QCOMPARE(st.errorMessage(),
                 QStringLiteral("admin@example.net is the only target of abuse@example.net, postmaster@example.net; "
                                "point those aliases elsewhere first or use --force"));
        QVERIFY(a.removeUser(QStringLiteral("admin@example.net"), true).ok());
        QVERIFY(a.aliasTargets(QStringLiteral("postmaster@example.net")).isEmpty());
    }

    void maySendAs() {
        const Accounts a = sample();
        QVERIFY(a.maySendAs(QStringLiteral("alice@example.org"), QStringLiteral("alice@example.org")));
        QVERIFY(a.maySendAs(QStringLiteral("alice@example.org"), QStringLiteral("Alice+list@Example.org")));
        QVERIFY(a.maySendAs(QStringLiteral("alice@example.org"), QStringLiteral("sales@example.org")));
        QVERIFY(!a.maySendAs(QStringLiteral("alice@example.org"), QStringLiteral("bob@example.org")));
        QVERIFY(!a.maySendAs(QStringLiteral("carol@example.net"),
                             QStringLiteral("whatever@example.net")));  // catch-all is not send-as
        QVERIFY(!a.maySendAs(QStringLiteral("alice@example.org"), QStringLiteral("someone@gmail.test")));
    }

    void roundTrip() {
        const Accounts a = sample();
        auto again = Accounts::parse(a.serializeDomains(), a.serializeUsers(), a.serializeAliases());
        QVERIFY(again.ok());
        QCOMPARE(again->user(QStringLiteral("bob@example.org"))->quotaBytes, qint64(1) << 30);
        QVERIFY(
            a.serializeUsers().contains("bob@example.org:{SHA512-CRYPT}$6$x::::::userdb_quota_rule=*:storage=1G\n"));
        QVERIFY(a.serializeAliases().contains("# comment kept\n"));
        QVERIFY(a.serializeAliases().contains("info@example.org sales@example.org, ext@remote.test\n"));
        QCOMPARE(again->resolve(QStringLiteral("info@example.org")).forwards.size(), 2);
    }

    // The web panel's administrator flag: an additive passwd-file extra field.
    void adminFlag() {
        auto a = Accounts::parse("example.org\n",
                                 "bob@example.org:{SHA512-CRYPT}$6$x::::::userdb_quota_rule=*:storage=1G nologin=y\n"
                                 "carol@example.org:{SHA512-CRYPT}$6$y::::::postern_admin=no\n",
                                 "");
        QVERIFY(a.ok());
        QVERIFY(!a->user(QStringLiteral("bob@example.org"))->admin);  // older files: nobody is an administrator
        QVERIFY(!a->user(QStringLiteral("carol@example.org"))->admin);
        QVERIFY(a->setAdmin(QStringLiteral("Bob@Example.org"), true).ok());
        QVERIFY(!a->setAdmin(QStringLiteral("nobody@example.org"), true).ok());
        const QByteArray users = a->serializeUsers();
        QVERIFY2(
            users.contains(
                "bob@example.org:{SHA512-CRYPT}$6$x::::::userdb_quota_rule=*:storage=1G postern_admin=yes nologin=y\n"),
            users);
        QVERIFY2(users.contains("carol@example.org:{SHA512-CRYPT}$6$y::::::\n"), users);
        auto again = Accounts::parse(a->serializeDomains(), users, "");
        QVERIFY(again.ok());
        QVERIFY(again->user(QStringLiteral("bob@example.org"))->admin);
        QCOMPARE(again->user(QStringLiteral("bob@example.org"))->otherExtra, QStringList{QStringLiteral("nologin=y")});
        QVERIFY(again->setAdmin(QStringLiteral("bob@example.org"), false).ok());
        QVERIFY(!again->serializeUsers().contains("postern_admin"));
    }

    // A disabled account: postern_disabled=yes, additive like postern_admin (older files,
    // without it, read as every account enabled; anything but "yes" is enabled).
    void disabledFlag_data() {
        QTest::addColumn<QByteArray>("line");
        QTest::addColumn<bool>("disabled");
        QTest::newRow("old file, no extra fields") << QByteArray("bob@example.org:{ARGON2ID}x\n") << false;
        QTest::newRow("old file, empty fields") << QByteArray("bob@example.org:{ARGON2ID}x::::::\n") << false;
        QTest::newRow("other extra fields") << QByteArray("bob@example.org:{ARGON2ID}x::::::nologin=y\n") << false;
        QTest::newRow("yes") << QByteArray("bob@example.org:{ARGON2ID}x::::::postern_disabled=yes\n") << true;
        QTest::newRow("yes among others")
            << QByteArray("bob@example.org:{ARGON2ID}x::::::postern_admin=yes postern_disabled=yes nologin=y\n")
            << true;
        QTest::newRow("no") << QByteArray("bob@example.org:{ARGON2ID}x::::::postern_disabled=no\n") << false;
        QTest::newRow("not exactly yes") << QByteArray("bob@example.org:{ARGON2ID}x::::::postern_disabled=YES\n")
                                         << false;
    }
    void disabledFlag() {
        QFETCH(QByteArray, line);
        QFETCH(bool, disabled);
        auto a = Accounts::parse("example.org\n", line, "");
        QVERIFY2(a.ok(), qPrintable(a.errorMessage()));
        QCOMPARE(a->user(QStringLiteral("bob@example.org"))->disabled, disabled);
        // Round trip: the state survives a write; only "yes" is ever written.
        const QByteArray users = a->serializeUsers();
        QCOMPARE(users.contains("postern_disabled=yes"), disabled);
        QVERIFY(!users.contains("postern_disabled=no") && !users.contains("postern_disabled=YES"));
        auto again = Accounts::parse(a->serializeDomains(), users, "");
        QVERIFY(again.ok());
        QCOMPARE(again->user(QStringLiteral("bob@example.org"))->disabled, disabled);
        // Toggled and written again: the other fields are kept.
        QVERIFY(again->setDisabled(QStringLiteral("Bob@Example.org"), !disabled).ok());
        auto toggled = Accounts::parse(again->serializeDomains(), again->serializeUsers(), "");
        QVERIFY(toggled.ok());
        QCOMPARE(toggled->user(QStringLiteral("bob@example.org"))->disabled, !disabled);
        QCOMPARE(toggled->user(QStringLiteral("bob@example.org"))->otherExtra,
                 again->user(QStringLiteral("bob@example.org"))->otherExtra);
        QCOMPARE(toggled->user(QStringLiteral("bob@example.org"))->admin,
                 again->user(QStringLiteral("bob@example.org"))->admin);
    }

    // The last enabled administrator stays enabled; nobody disables their own account.
    void disableRules() {
        auto a = Accounts::parse("example.org\n",
                                 "root@example.org:x::::::postern_admin=yes\n"
                                 "ops@example.org:x::::::postern_admin=yes\n"
                                 "bob@example.org:x::::::\n",
                                 "");
        QVERIFY(a.ok());
        QVERIFY(!a->setDisabled(QStringLiteral("nobody@example.org"), true).ok());
        QVERIFY(a->setDisabled(QStringLiteral("ops@example.org"), true).ok());  // root is still an enabled admin
        Status last = a->setDisabled(QStringLiteral("root@example.org"), true);
        QVERIFY(!last.ok());
        QCOMPARE(last.errorMessage(), QStringLiteral("root@example.org is the last enabled administrator; make "
                                                     "another user an administrator first"));
        QVERIFY(!a->user(QStringLiteral("root@example.org"))->disabled);
        QVERIFY(a->setDisabled(QStringLiteral("bob@example.org"), true).ok());  // not an admin: fine
        QVERIFY(a->setDisabled(QStringLiteral("ops@example.org"), false).ok());
        QVERIFY(a->setDisabled(QStringLiteral("root@example.org"), true).ok());  // ops is enabled again
        // No administrators at all (an installation from before the panel): users can be disabled.
        auto none = Accounts::parse("example.org\n", "bob@example.org:x::::::\n", "");
        QVERIFY(none->setDisabled(QStringLiteral("bob@example.org"), true).ok());

        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        QVERIFY(writeFileAtomic(dir.filePath(QStringLiteral("domains")), "example.org\n").ok());
        QVERIFY(writeFileAtomic(dir.filePath(QStringLiteral("users")),
                                "root@example.org:x::::::postern_admin=yes\n"
                                "ops@example.org:x::::::postern_admin=yes\n")
                    .ok());
        QVERIFY(writeFileAtomic(dir.filePath(QStringLiteral("aliases")), "").ok());
        AccountStore store(dir.path());
        Status self =
            accountops::setDisabled(store, QStringLiteral("ops@example.org"), true, QStringLiteral("OPS@example.org"));
        QCOMPARE(self.errorMessage(), QStringLiteral("you cannot disable the account you are logged in with"));
        QVERIFY(
            accountops::setDisabled(store, QStringLiteral("ops@example.org"), true, QStringLiteral("root@example.org"))
                .ok());
        QVERIFY(store.load()->user(QStringLiteral("ops@example.org"))->disabled);
        QVERIFY(accountops::setDisabled(store, QStringLiteral("ops@example.org"), false,
                                        QStringLiteral("ops@example.org"))
                    .ok());  // enabling oneself is harmless (and cannot happen from a disabled session)
        QVERIFY(!store.load()->user(QStringLiteral("ops@example.org"))->disabled);
    }

    void parseErrors_data() {
        QTest::addColumn<QByteArray>("domains");
        QTest::addColumn<QByteArray>("users");
        QTest::addColumn<QByteArray>("aliases");
        QTest::addColumn<QString>("error");
        QTest::newRow("dup domain") << QByteArray("a.test\nA.test\n") << QByteArray() << QByteArray()
                                    << "domains:2: domain a.test listed twice";
        QTest::newRow("bad user") << QByteArray("a.test\n") << QByteArray("# c\nnoat:x\n") << QByteArray()
                                  << "users:2: 'noat' is not an address (no @)";
        QTest::newRow("no password field") << QByteArray("a.test\n") << QByteArray("u@a.test\n") << QByteArray()
                                           << "users:1: expected user:password:... (Dovecot passwd-file)";
        QTest::newRow("bad quota") << QByteArray("a.test\n")
                                   << QByteArray("u@a.test:x::::::userdb_quota_rule=*:messages=5\n") << QByteArray()
                                   << "users:1: cannot read quota '*:messages=5' (expected *:storage=<size>)";
        QTest::newRow("dup alias") << QByteArray("a.test\n") << QByteArray()
                                   << QByteArray("x@a.test y@b.test\nX@a.test z@b.test\n")
                                   << "aliases:2: alias x@a.test listed twice";
        QTest::newRow("alias no target") << QByteArray("a.test\n") << QByteArray() << QByteArray("x@a.test\n")
                                         << "aliases:1: expected 'source target[, target...]'";
        QTest::newRow("orphan continuation") << QByteArray("a.test\n") << QByteArray() << QByteArray("  y@b.test\n")
                                             << "aliases:1: continuation line without an entry before it";
    }
    void parseErrors() {
        QFETCH(QByteArray, domains);
        QFETCH(QByteArray, users);
        QFETCH(QByteArray, aliases);
        QFETCH(QString, error);
        auto a = Accounts::parse(domains, users, aliases);
        QVERIFY(!a.ok());
        QCOMPARE(a.errorMessage(), error);
    }

    void storeRetriesAfterHandEdit() {
        QTemporaryDir tmp;
        AccountStore store(tmp.path());
        QVERIFY(store.modify([](Accounts& a) { return a.addDomain(QStringLiteral("example.org")); }).ok());
        int calls = 0;
        // The first attempt sees a hand edit land in the middle of the transaction.
        Status st = store.modify([&](Accounts& a) -> Status {
            if (++calls == 1) {
                QByteArray text = readFile(store.domainsPath()).valueOr({}) + "hand.example\n";
                if (auto s = writeFileAtomic(store.domainsPath(), text); !s) return s;
            }
            return a.addDomain(QStringLiteral("tool.example"));
        });
        QVERIFY2(st.ok(), qPrintable(st.errorMessage()));
        QCOMPARE(calls, 2);
        auto loaded = store.load();
        QVERIFY(loaded.ok());
        QCOMPARE(loaded->domains(), (QStringList{QStringLiteral("example.org"), QStringLiteral("hand.example"),
                                                 QStringLiteral("tool.example")}));
    }

    void snapshotReloads() {
        QTemporaryDir tmp;
        AccountStore store(tmp.path());
        qint64 nowMs = 1'000'000'000'000;
        store.setClock([&] { return nowMs; });
        QVERIFY(store.modify([](Accounts& a) { return a.addDomain(QStringLiteral("one.test")); }).ok());
        auto s1 = store.current();
        QVERIFY(s1->isLocalDomain(QStringLiteral("one.test")));
        QVERIFY(store.modify([](Accounts& a) { return a.addDomain(QStringLiteral("two.test")); }).ok());
        // The files are looked at again at most once a second: not yet, then after it.
        nowMs += 999;
        QVERIFY(!store.current()->isLocalDomain(QStringLiteral("two.test")));
        nowMs += 1;
        QVERIFY(store.current()->isLocalDomain(QStringLiteral("two.test")));
        // Exact (logins, the panel): looked at now, whatever the clock says.
        QVERIFY(store.modify([](Accounts& a) { return a.addDomain(QStringLiteral("three.test")); }).ok());
        QVERIFY(!store.current()->isLocalDomain(QStringLiteral("three.test")));
        QVERIFY(store.current(AccountStore::Freshness::Exact)->isLocalDomain(QStringLiteral("three.test")));
        // ... and unchanged files give the same snapshot, not a copy.
        auto exact = store.current(AccountStore::Freshness::Exact);
        QCOMPARE(store.current(AccountStore::Freshness::Exact).get(), exact.get());
        // A broken hand edit keeps the last good snapshot.
        QVERIFY(writeFileAtomic(store.domainsPath(), "bad..domain\n").ok());
        nowMs += 1000;
        QString err;
        auto s3 = store.current(AccountStore::Freshness::Exact, &err);
        QVERIFY(s3->isLocalDomain(QStringLiteral("two.test")));
        QVERIFY(err.contains(QStringLiteral("domains:1")));
    }

    void concurrentProcessesLoseNothing() {
        const QString ctl = qEnvironmentVariable("POSTERN_BUILD_DIR") + QStringLiteral("/bin/posternctl");
        QVERIFY2(QFile::exists(ctl), qPrintable(ctl));
        QTemporaryDir tmp;
        QFile conf(tmp.filePath(QStringLiteral("postern.conf")));
        QVERIFY(conf.open(QIODevice::WriteOnly));
        conf.write("auth.argon2_memory = 1M\nauth.argon2_iterations = 1\n");
        conf.close();
        QProcess dom;
        dom.start(ctl, {QStringLiteral("--config"), tmp.path(), QStringLiteral("domain"), QStringLiteral("add"),
                        QStringLiteral("example.org"), QStringLiteral("--admin"), QStringLiteral("root@remote.test")});
        QVERIFY(dom.waitForFinished(30000));
        QCOMPARE(dom.exitCode(), 0);
        // Two writers, each a shell loop of posternctl calls, racing on the same files.
        constexpr int kPerWriter = 15;
        QList<QProcess*> writers;
        for (const char* who : {"a", "b"}) {
            auto* p = new QProcess(this);
            const QString script =
                QStringLiteral(
                    "for i in $(seq 1 %1); do echo pw | \"%2\" --config \"%3\" user add %4$i@example.org "
                    "--password-stdin >/dev/null || exit 1; "
                    "\"%2\" --config \"%3\" alias add list%4$i@example.org %4$i@example.org >/dev/null || exit 1; done")
                    .arg(kPerWriter)
                    .arg(ctl, tmp.path(), QLatin1String(who));
            p->start(QStringLiteral("/bin/sh"), {QStringLiteral("-c"), script});
            writers << p;
        }
        for (QProcess* p : writers) {
            QVERIFY(p->waitForFinished(120000));
            QCOMPARE(p->exitCode(), 0);
        }
        AccountStore store(tmp.path());
        auto acc = store.load();
        QVERIFY2(acc.ok(), qPrintable(acc.errorMessage()));
        QCOMPARE(acc->users().size(), 2 * kPerWriter);
        QCOMPARE(acc->aliases().size(), 2 * kPerWriter + 2);  // + postmaster@, abuse@
        for (int i = 1; i <= kPerWriter; ++i)
            for (const char* who : {"a", "b"})
                QVERIFY(acc->resolve(QStringLiteral("list%1%2@example.org").arg(QLatin1String(who)).arg(i)).ok());
    }
};

QTEST_GUILESS_MAIN(TstAccounts)
#include "tst_accounts.moc"
