// tst_srs.cpp — SRS (common/mail/srs.h): round trip, the null sender, case,
// tampering with every part, expiry at its boundary (kSrsMaxAgeDays passes,
// one day more is Expired), dates in the future, malformed input, the key
// file (made once, 0600, shared by a second caller, a link refused).
#include "common/mail/srs.h"

#include "core/atomic_file.h"

#include <QFile>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QTest>

#include <sys/stat.h>
#include <unistd.h>

using namespace postern;
using namespace postern::mail;

namespace {
const QByteArray kKey = QByteArray(32, '\x42');
constexpr qint64 kDay = 86400;
const qint64 kNow = 20000 * kDay + 3600;  // some day in 2024
}  // namespace

class TestSrs : public QObject {
    Q_OBJECT
private slots:
    void roundTrip_data();
    void roundTrip();
    void nullSenderStaysNull();
    void tampering_data();
    void tampering();
    void expiry_data();
    void expiry();
    void otherKeyFails();
    void srs1Chain();
    void srs1OwnAddressKept();
    void srs1Tampering_data();
    void srs1Tampering();
    void srs1Length();
    void keyFile();
};

void TestSrs::roundTrip_data() {
    QTest::addColumn<QString>("sender");
    QTest::newRow("plain") << "alice@remote.test";
    QTest::newRow("plus and dots") << "a.b+tag@sub.remote.test";
    QTest::newRow("equals in local part") << "x=y=z@remote.test";
    QTest::newRow("looks like SRS but is not (no '=' parts)") << "SRS0bob@relay.test";
}

void TestSrs::roundTrip() {
    QFETCH(QString, sender);
    const Srs srs(kKey);
    const QString rewritten = srs.forward(sender, QStringLiteral("example.test"), kNow);
    QVERIFY(rewritten.endsWith(QStringLiteral("@example.test")));
    QVERIFY(rewritten.startsWith(QStringLiteral("SRS0=")));
    const QString local = rewritten.section(u'@', 0, -2);
    QVERIFY(isSrsLocalPart(local));
    const Srs::Decoded d = srs.reverse(local, kNow);
    QCOMPARE(toString(d.status), QStringLiteral("valid"));
    QCOMPARE(d.original, sender);
    // Relays may change the case: still valid (the hash is compared case-insensitively).
    QCOMPARE(toString(srs.reverse(local.toLower(), kNow).status), toString(Srs::Status::Valid));
    QCOMPARE(toString(srs.reverse(local.toUpper(), kNow).status), toString(Srs::Status::Valid));
}

void TestSrs::nullSenderStaysNull() {
    QCOMPARE(Srs(kKey).forward(QString(), QStringLiteral("example.test"), kNow), QString());
}

void TestSrs::tampering_data() {
    QTest::addColumn<int>("part");  // 0 hash, 1 timestamp, 2 domain, 3 local part
    QTest::addColumn<QString>("replacement");
    QTest::addColumn<QString>("status");
    QTest::newRow("hash changed") << 0 << "AAAAAAAA"
                                  << "bad hash";
    QTest::newRow("hash short") << 0 << "AAAAAAA"
                                << "malformed";
    QTest::newRow("timestamp changed") << 1 << "22"
                                       << "bad hash";
    QTest::newRow("timestamp not base32") << 1 << "1!"
                                          << "malformed";
    QTest::newRow("domain changed") << 2 << "evil.test"
                                    << "bad hash";
    QTest::newRow("domain empty") << 2 << ""
                                  << "malformed";
    QTest::newRow("local changed") << 3 << "mallory"
                                   << "bad hash";
    QTest::newRow("local empty") << 3 << ""
                                 << "malformed";
}

void TestSrs::tampering() {
    QFETCH(int, part);
    QFETCH(QString, replacement);
    QFETCH(QString, status);
    const Srs srs(kKey);
    const QString local =
        srs.forward(QStringLiteral("alice@remote.test"), QStringLiteral("example.test"), kNow).section(u'@', 0, -2);
    QStringList parts = local.mid(5).split(u'=');  // hash, tt, domain, local
    QCOMPARE(parts.size(), 4);
    parts[part] = replacement;
    QCOMPARE(toString(srs.reverse(QStringLiteral("SRS0=") + parts.join(u'='), kNow).status), status);
}

void TestSrs::expiry_data() {
    QTest::addColumn<qint64>("age");  // seconds after the address was made
    QTest::addColumn<QString>("status");
    QTest::newRow("same day") << qint64(0) << "valid";
    QTest::newRow("limit days") << qint64(kSrsMaxAgeDays) * kDay << "valid";
    QTest::newRow("last second of the limit day") << qint64(kSrsMaxAgeDays + 1) * kDay - 3600 - 1 << "valid";
    QTest::newRow("limit+1 days") << qint64(kSrsMaxAgeDays + 1) * kDay << "expired";
    QTest::newRow("a year") << qint64(365) * kDay << "expired";
    QTest::newRow("one day in the future") << qint64(-kDay) << "expired";
    QTest::newRow("1024 days: the day stamp wraps (SRS property)") << qint64(1024) * kDay << "valid";
}

void TestSrs::expiry() {
    QFETCH(qint64, age);
    QFETCH(QString, status);
    const Srs srs(kKey);
    const QString local =
        srs.forward(QStringLiteral("alice@remote.test"), QStringLiteral("example.test"), kNow).section(u'@', 0, -2);
    QCOMPARE(toString(srs.reverse(local, kNow + age).status), status);
}

void TestSrs::otherKeyFails() {
    const QString local = Srs(kKey)
                              .forward(QStringLiteral("alice@remote.test"), QStringLiteral("example.test"), kNow)
                              .section(u'@', 0, -2);
    QCOMPARE(toString(Srs(QByteArray(32, '\x43')).reverse(local, kNow).status), toString(Srs::Status::BadHash));
    QCOMPARE(toString(Srs(kKey).reverse(QStringLiteral("alice"), kNow).status), toString(Srs::Status::NotSrs));
    QCOMPARE(toString(Srs(kKey).reverse(QStringLiteral("SRS0=") + QString(kMaxSrsLocalBytes, u'a'), kNow).status),
             toString(Srs::Status::Malformed));
    // kMaxSrsLocalBytes: a valid address of exactly that length passes, one byte more is malformed.
    const QString shortOne =
        Srs(kKey).forward(QStringLiteral("x@remote.test"), QStringLiteral("example.test"), kNow).section(u'@', 0, -2);
    const QString sender = QString(kMaxSrsLocalBytes - shortOne.size() + 1, u'x') + QStringLiteral("@remote.test");
    const QString atLimit = Srs(kKey).forward(sender, QStringLiteral("example.test"), kNow).section(u'@', 0, -2);
    QCOMPARE(atLimit.size(), kMaxSrsLocalBytes);
    QCOMPARE(Srs(kKey).reverse(atLimit, kNow).original, sender);
    const QString over = Srs(kKey).forward(u'x' + sender, QStringLiteral("example.test"), kNow).section(u'@', 0, -2);
    QCOMPARE(toString(Srs(kKey).reverse(over, kNow).status), toString(Srs::Status::Malformed));
}

// Three forwarders: a.test (SRS0), example.test (us: SRS1), c.test (SRS1 again). The
// bounce goes back along the chain: c.test -> a.test's SRS0 address -> the sender.
void TestSrs::srs1Chain() {
    const Srs first(QByteArray(32, '\x01')), us(kKey), third(QByteArray(32, '\x03'));
    const QString srs0 = first.forward(QStringLiteral("alice@remote.test"), QStringLiteral("a.test"), kNow);
    QVERIFY(srs0.startsWith(QStringLiteral("SRS0=")));
    const QString srs1 = us.forward(srs0, QStringLiteral("example.test"), kNow);
    // Not a second SRS0 wrapping: SRS1=<hash>=a.test==<first forwarder's hash>=<tt>=remote.test=alice@example.test.
    QVERIFY2(
        QRegularExpression(
            QStringLiteral("^SRS1=[A-Z2-7]{8}=a\\.test==[A-Z2-7]{8}=[A-Z2-7]{2}=remote\\.test=alice@example\\.test$"))
            .match(srs1)
            .hasMatch(),
        qPrintable(srs1));
    QCOMPARE(srs1.count(QStringLiteral("SRS")), 1);
    QVERIFY(isSrsLocalPart(srs1.section(u'@', 0, -2)));
    // A bounce to us goes to the first forwarder's SRS0 address (case changed by a relay: still valid).
    for (const QString& local : {srs1.section(u'@', 0, -2), srs1.section(u'@', 0, -2).toLower()}) {
        const Srs::Decoded d = us.reverse(local, kNow);
        QCOMPARE(toString(d.status), QStringLiteral("valid"));
        QCOMPARE(d.original.toLower(), srs0.toLower());
    }
    // No date in SRS1: still passed on after the SRS0 age limit (the first forwarder decides).
    QCOMPARE(toString(us.reverse(srs1.section(u'@', 0, -2), kNow + 100 * kDay).status), QStringLiteral("valid"));
    QCOMPARE(toString(first.reverse(srs0.section(u'@', 0, -2), kNow).status), QStringLiteral("valid"));
    QCOMPARE(first.reverse(srs0.section(u'@', 0, -2), kNow).original, QStringLiteral("alice@remote.test"));
    // A third forwarder re-signs SRS1 with the same host and opaque part (no third wrapping).
    const QString again = third.forward(srs1, QStringLiteral("c.test"), kNow);
    QVERIFY2(again.startsWith(QStringLiteral("SRS1=")) &&
                 again.endsWith(QStringLiteral("=a.test==") + srs0.section(u'=', 1).section(u'@', 0, -2) +
                                QStringLiteral("@c.test")),
             qPrintable(again));
    QCOMPARE(third.reverse(again.section(u'@', 0, -2), kNow).original, srs0);
    // The first forwarder's own key does not sign our SRS1.
    QCOMPARE(toString(third.reverse(srs1.section(u'@', 0, -2), kNow).status), QStringLiteral("bad hash"));
}

void TestSrs::srs1OwnAddressKept() {
    const Srs us(kKey);
    const QString srs0 = us.forward(QStringLiteral("alice@remote.test"), QStringLiteral("example.test"), kNow);
    QCOMPARE(us.forward(srs0, QStringLiteral("example.test"), kNow), srs0);
    QCOMPARE(us.forward(srs0.toUpper(), QStringLiteral("example.test"), kNow), srs0.toUpper());
    const QString srs1 =
        us.forward(Srs(QByteArray(32, '\x01')).forward(QStringLiteral("a@r.test"), QStringLiteral("a.test"), kNow),
                   QStringLiteral("example.test"), kNow);
    QCOMPARE(us.forward(srs1, QStringLiteral("example.test"), kNow), srs1);
}

void TestSrs::srs1Tampering_data() {
    QTest::addColumn<QString>("from");  // replaced in our SRS1 local part
    QTest::addColumn<QString>("to");
    QTest::addColumn<QString>("status");
    QTest::newRow("host changed") << "=a.test="
                                  << "=evil.test="
                                  << "bad hash";
    QTest::newRow("opaque changed") << "alice"
                                    << "mallory"
                                    << "bad hash";
    QTest::newRow("hash changed") << ""
                                  << ""
                                  << "bad hash";
    QTest::newRow("hash too long") << "SRS1="
                                   << "SRS1=AAAAAAAA"
                                   << "malformed";  // now 16 characters
    QTest::newRow("host empty") << "=a.test="
                                << "=="
                                << "malformed";
    QTest::newRow("no opaque") << "=a.test=="
                               << "=a.test="
                               << "malformed";
}

void TestSrs::srs1Tampering() {
    QFETCH(QString, from);
    QFETCH(QString, to);
    QFETCH(QString, status);
    const Srs us(kKey);
    const QString srs0 =
        Srs(QByteArray(32, '\x01')).forward(QStringLiteral("alice@remote.test"), QStringLiteral("a.test"), kNow);
    QString local = us.forward(srs0, QStringLiteral("example.test"), kNow).section(u'@', 0, -2);
    QVERIFY(local.contains(from));
    if (!from.isEmpty()) local.replace(local.indexOf(from), from.size(), to);
    if (to.isEmpty()) local.replace(5, 8, QStringLiteral("AAAAAAAA"));  // the hash itself
    QCOMPARE(toString(us.reverse(local, kNow).status), status);
    QCOMPARE(toString(us.reverse(QStringLiteral("SRS1="), kNow).status), QStringLiteral("malformed"));
    QCOMPARE(toString(us.reverse(QStringLiteral("SRS1=AAAAAAAA=a.test"), kNow).status), QStringLiteral("malformed"));
}

// kMaxSrsLocalBytes applies to SRS1 too: exactly the limit decodes, one byte more is malformed.
void TestSrs::srs1Length() {
    const Srs first(QByteArray(32, '\x01')), us(kKey);
    auto srs1Local = [&](int n) {
        const QString srs0 =
            first.forward(QString(n, u'x') + QStringLiteral("@remote.test"), QStringLiteral("a.test"), kNow);
        return std::pair(srs0, us.forward(srs0, QStringLiteral("example.test"), kNow).section(u'@', 0, -2));
    };
    const int base = int(srs1Local(1).second.size()) - 1;
    const auto [srs0, atLimit] = srs1Local(kMaxSrsLocalBytes - base);
    QCOMPARE(atLimit.size(), kMaxSrsLocalBytes);
    QCOMPARE(us.reverse(atLimit, kNow).original, srs0);
    const QString over = QStringLiteral("SRS1=") + QString(kMaxSrsLocalBytes - 4, u'x');
    QCOMPARE(toString(us.reverse(over, kNow).status), QStringLiteral("malformed"));
    // The local part of a re-forwarded address longer than the limit is wrapped as SRS0 like any other.
    const QString longSrs0 = QStringLiteral("SRS0=") + QString(kMaxSrsLocalBytes, u'y') + QStringLiteral("@a.test");
    QVERIFY(us.forward(longSrs0, QStringLiteral("example.test"), kNow).startsWith(QStringLiteral("SRS0=")));
}

void TestSrs::keyFile() {
    QTemporaryDir dir;
    auto first = loadOrCreateSrsKey(dir.path());
    QVERIFY2(first.ok(), qPrintable(first.errorMessage()));
    QCOMPARE(first->size(), kSrsKeyBytes);
    struct stat st {};
    QCOMPARE(::stat(QFile::encodeName(dir.path() + QStringLiteral("/srs.key")).constData(), &st), 0);
    QCOMPARE(st.st_mode & 0777, 0600u);
    // A second daemon reads the same key.
    auto second = loadOrCreateSrsKey(dir.path());
    QVERIFY(second.ok());
    QCOMPARE(*second, *first);
    // No temporary file is left behind.
    QCOMPARE(QDir(dir.path()).entryList(QDir::Files | QDir::Hidden), QStringList{QStringLiteral("srs.key")});
    // A link in its place is refused; so is a file that is not a key.
    QTemporaryDir other;
    QVERIFY(QFile::link(dir.path() + QStringLiteral("/srs.key"), other.path() + QStringLiteral("/srs.key")));
    QVERIFY(!loadOrCreateSrsKey(other.path()).ok());
    QTemporaryDir bad;
    QVERIFY(writeFileAtomic(bad.path() + QStringLiteral("/srs.key"), "abc\n", 0600).ok());
    QVERIFY(!loadOrCreateSrsKey(bad.path()).ok());
}

QTEST_GUILESS_MAIN(TestSrs)
#include "tst_srs.moc"
