// tst_imap_index — MailboxIndex: mod-sequences for new, changed and expunged
// messages, one value per change however many times it is seen, the expunge
// history and its floor, UIDVALIDITY changes, the parsed-data cache, and
// rebuilding from a corrupt or deleted file with mod-sequences that only grow,
// and an index opened before its folder's UIDVALIDITY was known.
#include "imapd/imap_index.h"
#include "imapd/imap_mailbox.h"

#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>

#include <sqlite3.h>

using namespace postern::imap;

namespace {

QList<Message> messages(std::initializer_list<std::pair<quint32, const char*>> list) {
    QList<Message> out;
    for (const auto& [uid, flags] : list) {
        Message m;
        m.uid = uid;
        m.base = QStringLiteral("msg%1").arg(uid);
        m.flags = QString::fromLatin1(flags);
        out << m;
    }
    return out;
}

}  // namespace

class TestImapIndex : public QObject {
    Q_OBJECT

private slots:
    void newChangedExpunged() {
        QTemporaryDir dir;
        auto idx = MailboxIndex::acquire(dir.path(), 100);
        QVERIFY(idx);
        const quint64 start = idx->highestModseq();
        QVERIFY(start > 0);

        auto msgs = messages({{1, ""}, {2, "S"}, {3, ""}});
        auto hms = idx->sync(msgs);
        QVERIFY(hms.ok());
        QCOMPARE(*hms, start + 3);
        QCOMPARE(msgs.at(0).modseq, start + 1);
        QCOMPARE(msgs.at(2).modseq, start + 3);

        // Nothing changed: same values, no new mod-sequence (a second session's sync).
        auto again = messages({{1, ""}, {2, "S"}, {3, ""}});
        QCOMPARE(*idx->sync(again), start + 3);
        QCOMPARE(again.at(1).modseq, start + 2);

        // A flag change seen by two sessions counts once.
        auto seenA = messages({{1, "F"}, {2, "S"}, {3, ""}});
        auto seenB = messages({{1, "F"}, {2, "S"}, {3, ""}});
        QCOMPARE(*idx->sync(seenA), start + 4);
        QCOMPARE(*idx->sync(seenB), start + 4);
        QCOMPARE(seenB.at(0).modseq, start + 4);

        // This session's own STORE.
        auto own = idx->recordFlags(2, QStringLiteral("FS"));
        QVERIFY(own.ok());
        QCOMPARE(*own, start + 5);
        auto after = messages({{1, "F"}, {2, "FS"}, {3, ""}});
        QCOMPARE(*idx->sync(after), start + 5);
        QCOMPARE(after.at(1).modseq, start + 5);

        // Expunge of 2 and a new 4.
        auto later = messages({{1, "F"}, {3, ""}, {4, ""}});
        QCOMPARE(*idx->sync(later), start + 7);
        bool complete = false;
        QCOMPARE(idx->expungedSince(start + 5, &complete), QList<quint32>{2});
        QVERIFY(complete);
        QCOMPARE(idx->expungedSince(start + 6, &complete), QList<quint32>{});
        QVERIFY(complete);
        idx->expungedSince(start - 1, &complete);
        QVERIFY2(!complete, "before the index existed the history is not complete");
    }

    void cache() {
        QTemporaryDir dir;
        auto idx = MailboxIndex::acquire(dir.path(), 7);
        auto msgs = messages({{1, ""}});
        QVERIFY(idx->sync(msgs).ok());
        QVERIFY(!idx->cached(1, QStringLiteral("msg1")));
        idx->storeCached(1, QStringLiteral("msg1"), {"(env)", "(body)", "(bs)"});
        auto c = idx->cached(1, QStringLiteral("msg1"));
        QVERIFY(c);
        QCOMPARE(c->envelope, QByteArray("(env)"));
        QCOMPARE(c->bodyStructure, QByteArray("(bs)"));
        QVERIFY2(!idx->cached(1, QStringLiteral("other")),
                 "a different file under the same UID is not served from the cache");
        QVERIFY(!idx->cached(2, QStringLiteral("msg2")));
    }

    // The cached texts of a UID range in one query: the rows that hold all three, with
    // their base names (the caller compares them, as cached() does).
    void cachedRange() {
        QTemporaryDir dir;
        auto idx = MailboxIndex::acquire(dir.path(), 7);
        auto msgs = messages({{1, ""}, {2, ""}, {3, ""}, {5, ""}, {9, ""}});
        QVERIFY(idx->sync(msgs).ok());
        for (quint32 uid : {1u, 3u, 5u, 9u})
            idx->storeCached(uid, QStringLiteral("msg%1").arg(uid),
                             {"(e" + QByteArray::number(uid) + ")", "(b)", "(s)"});
        const auto rows = idx->cachedRange(2, 5);
        QCOMPARE(rows.size(), 2);  // 2 has no texts, 9 is outside
        QCOMPARE(rows.value(3).base, QStringLiteral("msg3"));
        QCOMPARE(rows.value(3).texts.envelope, QByteArray("(e3)"));
        QCOMPARE(rows.value(5).texts.bodyStructure, QByteArray("(s)"));
        QCOMPARE(idx->cachedRange(1, 9).size(), 4);
        QVERIFY(idx->cachedRange(6, 8).isEmpty());
    }

    // SEARCH's kept bytes by kind (header blocks, text part spans), stored only for the file
    // the row names, gone with their message; and an index written before the text part
    // table existed gains it when opened, keeping its rows (no rebuild).
    void blobsAndAnOlderIndex() {
        QTemporaryDir dir;
        using Blob = MailboxIndex::Blob;
        {
            auto idx = MailboxIndex::acquire(dir.path(), 3);
            auto msgs = messages({{1, ""}, {2, "S"}});
            QVERIFY(idx->sync(msgs).ok());
            idx->storeBlob(Blob::Header, 1, QStringLiteral("msg1"), "H1");
            idx->storeBlob(Blob::TextParts, 2, QStringLiteral("msg2"), "T2");
            idx->storeBlob(Blob::TextParts, 1, QStringLiteral("another file"), "X");  // not this row's file
            const auto headers = idx->cachedBlobs(Blob::Header);
            QCOMPARE(headers.size(), 1);
            QCOMPARE(headers.value(1).bytes, QByteArray("H1"));
            QCOMPARE(headers.value(1).base, QStringLiteral("msg1"));
            const auto parts = idx->cachedBlobs(Blob::TextParts);
            QCOMPARE(parts.size(), 1);
            QCOMPARE(parts.value(2).bytes, QByteArray("T2"));
        }
        MailboxIndex::release(dir.path());
        const QByteArray file = QFile::encodeName(dir.path() + QStringLiteral("/postern-index.sqlite"));
        sqlite3* db = nullptr;
        QCOMPARE(sqlite3_open(file.constData(), &db), SQLITE_OK);
        QCOMPARE(sqlite3_exec(db, "DROP TABLE textparts", nullptr, nullptr, nullptr), SQLITE_OK);
        sqlite3_close(db);
        auto idx = MailboxIndex::acquire(dir.path(), 3);
        QVERIFY(idx);
        QCOMPARE(idx->knownFiles().size(), 2);  // the rows are still there
        QCOMPARE(idx->cachedBlobs(Blob::Header).value(1).bytes, QByteArray("H1"));
        QVERIFY(idx->cachedBlobs(Blob::TextParts).isEmpty());
        idx->storeBlob(Blob::TextParts, 2, QStringLiteral("msg2"), "T2 again");
        idx->storeBlob(Blob::TextParts, 1, QStringLiteral("msg1"), "T1");
        QCOMPARE(idx->cachedBlobs(Blob::TextParts).value(2).bytes, QByteArray("T2 again"));
        auto left = messages({{1, ""}});  // 2 expunged
        QVERIFY(idx->sync(left).ok());
        QCOMPARE(idx->cachedBlobs(Blob::TextParts).keys(), QList<quint32>{1});
        idx.reset();
        MailboxIndex::release(dir.path());
        auto renumbered = MailboxIndex::acquire(dir.path(), 4);  // a new UIDVALIDITY: nothing kept
        QVERIFY(renumbered->cachedBlobs(Blob::TextParts).isEmpty());
    }

    // Sizes and times of known files by UID, valid only for the same base name; dense UIDs
    // use a table, sparse ones a binary search: both give the same answers.
    void knownFilesByUid_data() {
        QTest::addColumn<quint32>("step");
        QTest::newRow("dense") << 1u;
        QTest::newRow("sparse") << 1000u;
    }
    void knownFilesByUid() {
        QFETCH(quint32, step);
        QTemporaryDir dir;
        auto idx = MailboxIndex::acquire(dir.path(), 3);
        QVERIFY(idx);
        QList<Message> list;
        for (quint32 k = 0; k < 50; ++k) {
            if (k == 7) continue;  // a hole
            Message m;
            m.uid = 5 + k * step;
            m.base = QStringLiteral("%1.M1P2.h\u00e9,S=%2").arg(m.uid).arg(k);
            m.size = 100 + k;
            m.mtimeMs = 1000000 + k;
            list << m;
        }
        QVERIFY(idx->sync(list).ok());
        const MailboxIndex::KnownFiles known = idx->knownFiles();
        QCOMPARE(known.size(), 49);
        qint64 size = -1, mtime = -1;
        for (const Message& m : list) {
            QVERIFY(known.lookup(m.uid, m.base, &size, &mtime));
            QCOMPARE(size, m.size);
            QCOMPARE(mtime, m.mtimeMs);
        }
        const quint32 second = list.at(1).uid;
        QVERIFY(!known.lookup(second, list.at(2).base, &size, &mtime));            // another file under that UID
        QVERIFY(!known.lookup(second, list.at(1).base + u'x', &size, &mtime));     // one character more
        QVERIFY(!known.lookup(5 + 7 * step, QStringLiteral("x"), &size, &mtime));  // the hole
        QVERIFY(!known.lookup(4, list.first().base, &size, &mtime));               // below the first
        QVERIFY(!known.lookup(list.last().uid + 1, list.last().base, &size, &mtime));
        QVERIFY(!known.lookup(0xffffffffu, list.last().base, &size, &mtime));
        QVERIFY(!MailboxIndex::KnownFiles().lookup(5, list.first().base, &size, &mtime));
    }

    void openedBeforeTheUidValidityWasKnown() {
        // A view asks for the index before it has read the uidlist (UIDVALIDITY 0); a
        // second process that opens the file later with the real value must find the
        // same mod-sequences, not a reset index.
        QTemporaryDir dir;
        quint64 hms = 0;
        {
            auto early = MailboxIndex::acquire(dir.path(), 0);
            QVERIFY(early);
            QCOMPARE(early->knownFiles().size(), 0);
            auto idx = MailboxIndex::acquire(dir.path(), 42);
            QVERIFY(idx);
            QVERIFY(idx->highestModseq() > 0);
            auto msgs = messages({{1, ""}, {2, "S"}});
            hms = *idx->sync(msgs);
        }
        MailboxIndex::release(dir.path());  // as another process: nothing in the pool
        auto other = MailboxIndex::acquire(dir.path(), 42);
        QVERIFY(other);
        QCOMPARE(other->highestModseq(), hms);
        auto same = messages({{1, ""}, {2, "S"}});
        QCOMPARE(*other->sync(same), hms);
        QCOMPARE(same.at(1).modseq, hms);
    }

    void idleHandlesAreClosed() {
        MailboxIndex::closeIdle(0);  // what earlier tests left in the process's pool
        QTemporaryDir a, b;
        auto held = MailboxIndex::acquire(a.path(), 1);
        {
            auto unused = MailboxIndex::acquire(b.path(), 1);
            auto msgs = messages({{1, ""}});
            QVERIFY(unused->sync(msgs).ok());
        }
        QCOMPARE(MailboxIndex::closeIdle(60'000), 0);     // not idle long enough
        QCOMPARE(MailboxIndex::closeIdle(0), 1);          // b's; a's is still held
        auto again = MailboxIndex::acquire(b.path(), 1);  // reopened, same content
        QVERIFY(again);
        QCOMPARE(again->knownFiles().size(), 1);
        held.reset();
        again.reset();
        QCOMPARE(MailboxIndex::closeIdle(0), 2);
    }

    void poolKeepsAtMostItsBound() {
        MailboxIndex::closeIdle(0);
        QTemporaryDir root;
        const int n = MailboxIndex::kMaxOpenIndexes + 1;
        for (int i = 0; i < n; ++i) {
            const QString dir = root.filePath(QStringLiteral("f%1").arg(i));
            QVERIFY(QDir().mkpath(dir));
            auto idx = MailboxIndex::acquire(dir, 1);
            QVERIFY(idx);
            if (i == 0) {
                auto msgs = messages({{1, "S"}});
                QVERIFY(idx->sync(msgs).ok());
            }
        }
        // The least recently used (the first) was closed when the 257th was opened ...
        QCOMPARE(MailboxIndex::closeIdle(0), MailboxIndex::kMaxOpenIndexes);
        // ... and opens again from its file with what it held.
        auto first = MailboxIndex::acquire(root.filePath(QStringLiteral("f0")), 1);
        QVERIFY(first);
        QCOMPARE(first->knownFiles().size(), 1);
    }

    void uidValidityChangeKeepsGrowing() {
        QTemporaryDir dir;
        quint64 before = 0;
        {
            auto idx = MailboxIndex::acquire(dir.path(), 1);
            auto msgs = messages({{1, ""}, {2, ""}});
            before = *idx->sync(msgs);
        }
        MailboxIndex::release(dir.path());
        auto idx = MailboxIndex::acquire(dir.path(), 2);
        QVERIFY(idx->highestModseq() > before);
        auto msgs = messages({{1, ""}});
        QVERIFY(*idx->sync(msgs) > before);
        bool complete = true;
        QCOMPARE(idx->expungedSince(0, &complete), QList<quint32>{});
        QVERIFY(!complete);
    }

    void corruptOrDeletedIsRebuilt() {
        QTemporaryDir dir;
        const QString file = dir.path() + QStringLiteral("/postern-index.sqlite");
        quint64 before = 0;
        {
            auto idx = MailboxIndex::acquire(dir.path(), 5);
            auto msgs = messages({{1, "S"}, {2, ""}});
            before = *idx->sync(msgs);
        }
        MailboxIndex::release(dir.path());
        for (const char* s : {"-wal", "-shm"}) QFile::remove(file + QLatin1String(s));
        {
            QFile f(file);
            QVERIFY(f.open(QIODevice::ReadWrite));
            f.write(QByteArray(4096, 'x'));
        }
        auto idx = MailboxIndex::acquire(dir.path(), 5);
        QVERIFY2(idx, "a corrupt index is replaced");
        auto msgs = messages({{1, "S"}, {2, ""}});
        const quint64 rebuilt = *idx->sync(msgs);
        QVERIFY(rebuilt > before);
        QVERIFY(msgs.at(0).modseq > before);

        // Deleted while open: the next acquire notices and builds a new one.
        for (const char* s : {"", "-wal", "-shm"}) QFile::remove(file + QLatin1String(s));
        auto fresh = MailboxIndex::acquire(dir.path(), 5);
        QVERIFY(fresh != idx);
        QVERIFY(QFile::exists(file));
        auto again = messages({{1, "S"}, {2, ""}});
        QVERIFY(*fresh->sync(again) > rebuilt);
    }

    void expungeHistoryIsBounded() {
        QTemporaryDir dir;
        auto idx = MailboxIndex::acquire(dir.path(), 9);
        const int n = MailboxIndex::kMaxExpungedHistory + 10;
        QList<Message> all;
        for (int i = 1; i <= n; ++i) {
            Message m;
            m.uid = quint32(i);
            m.base = QString::number(i);
            all << m;
        }
        const quint64 full = *idx->sync(all);
        QList<Message> none;
        const quint64 empty = *idx->sync(none);
        QCOMPARE(empty, full + quint64(n));
        bool complete = false;
        const QList<quint32> recent = idx->expungedSince(full + 20, &complete);
        QVERIFY(complete);
        QCOMPARE(recent.size(), n - 20);
        idx->expungedSince(full, &complete);
        QVERIFY2(!complete, "the oldest expunges were pruned: the floor moved up");
    }
};

QTEST_GUILESS_MAIN(TestImapIndex)
#include "tst_imap_index.moc"
