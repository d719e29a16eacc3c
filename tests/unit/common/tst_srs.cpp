// tst_srs.cpp — SRS (common/mail/srs.h): round trip, the null sender, case,
// tampering with every part, expiry at its boundary (kSrsMaxAgeDays passes,
// one day more is Expired), dates in the future, malformed input, the key
// file (made once, 0600, shared by a second caller, a link refused).
#include "common/mail/srs.h"

#include "core/atomic_file.h"

#include <QFile>
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
    void keyFile();
};

void TestSrs::roundTrip_data() {
    QTest::addColumn<QString>("sender");
    QTest::newRow("plain") << "alice@remote.test";
    QTest::newRow("plus and dots") << "a.b+tag@sub.remote.test";
    QTest::newRow("equals in local part") << "x=y=z@remote.test";
    QTest::newRow("already SRS") << "SRS0=ABCDEFGH=AB=other.test=bob@relay.test";
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
    QTest::newRow("hash changed") << 0 << "AAAAAAAA" << "bad hash";
    QTest::newRow("hash short") << 0 << "AAAAAAA" << "malformed";
    QTest::newRow("timestamp changed") << 1 << "22" << "bad hash";
    QTest::newRow("timestamp not base32") << 1 << "1!" << "malformed";
    QTest::newRow("domain changed") << 2 << "evil.test" << "bad hash";
    QTest::newRow("domain empty") << 2 << "" << "malformed";
    QTest::newRow("local changed") << 3 << "mallory" << "bad hash";
    QTest::newRow("local empty") << 3 << "" << "malformed";
}

void TestSrs::tampering() {
    QFETCH(int, part);
    QFETCH(QString, replacement);
    QFETCH(QString, status);
    const Srs srs(kKey);
    const QString local = srs.forward(QStringLiteral("alice@remote.test"), QStringLiteral("example.test"), kNow).section(u'@', 0, -2);
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
    const QString local = srs.forward(QStringLiteral("alice@remote.test"), QStringLiteral("example.test"), kNow).section(u'@', 0, -2);
    QCOMPARE(toString(srs.reverse(local, kNow + age).status), status);
}

void TestSrs::otherKeyFails() {
    const QString local = Srs(kKey).forward(QStringLiteral("alice@remote.test"), QStringLiteral("example.test"), kNow).section(u'@', 0, -2);
    QCOMPARE(toString(Srs(QByteArray(32, '\x43')).reverse(local, kNow).status), toString(Srs::Status::BadHash));
    QCOMPARE(toString(Srs(kKey).reverse(QStringLiteral("alice"), kNow).status), toString(Srs::Status::NotSrs));
    QCOMPARE(toString(Srs(kKey).reverse(QStringLiteral("SRS0=") + QString(kMaxSrsLocalBytes, u'a'), kNow).status), toString(Srs::Status::Malformed));
    // kMaxSrsLocalBytes: a valid address of exactly that length passes, one byte more is malformed.
    const QString shortOne = Srs(kKey).forward(QStringLiteral("x@remote.test"), QStringLiteral("example.test"), kNow).section(u'@', 0, -2);
    const QString sender = QString(kMaxSrsLocalBytes - shortOne.size() + 1, u'x') + QStringLiteral("@remote.test");
    const QString atLimit = Srs(kKey).forward(sender, QStringLiteral("example.test"), kNow).section(u'@', 0, -2);
    QCOMPARE(atLimit.size(), kMaxSrsLocalBytes);
    QCOMPARE(Srs(kKey).reverse(atLimit, kNow).original, sender);
    const QString over = Srs(kKey).forward(u'x' + sender, QStringLiteral("example.test"), kNow).section(u'@', 0, -2);
    QCOMPARE(toString(Srs(kKey).reverse(over, kNow).status), toString(Srs::Status::Malformed));
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
