"""CONDSTORE and QRESYNC (RFC 7162) and the per-folder index of postern-imapd,
over real TLS connections: mod-sequences grow on every change (this session's,
another session's, a Maildir rename by another program), FETCH CHANGEDSINCE,
STORE UNCHANGEDSINCE with [MODIFIED], SEARCH MODSEQ, STATUS HIGHESTMODSEQ,
SELECT (QRESYNC ...) with VANISHED (EARLIER) and the changed flags, VANISHED
instead of EXPUNGE once QRESYNC is on, syntax errors answered BAD; the index
is a cache: deleted or corrupted, it is rebuilt with the same UIDs and larger
mod-sequences; ENVELOPE/BODYSTRUCTURE come from it without reparsing."""

import os
import re
import smtplib
import socket
import sqlite3
import time
import unittest

from postern_testlib import Instance, wait_for

USER, PASSWORD = "alice@example.test", "alice-password-1"


class Raw:
    """A minimal IMAP client that returns every untagged line, so responses can be checked exactly."""

    def __init__(self, inst):
        ctx = inst.client_tls_context()
        sock = socket.create_connection(("127.0.0.1", inst.port("postern-imapd", "imaps")), timeout=30)
        self.s = ctx.wrap_socket(sock, server_hostname="mail.example.test")
        self.f = self.s.makefile("rb")
        self.n = 0
        self.readline()  # greeting
        self.ok(f"LOGIN {USER} {PASSWORD}")

    def readline(self):
        line = self.f.readline()
        if not line:
            raise AssertionError("connection closed")
        # Literals in responses: read them into the line.
        while (m := re.search(rb"\{(\d+)\}\r\n$", line)):
            line = line[:-2] + b"\r\n" + self.f.read(int(m.group(1))) + self.f.readline()
        return line.rstrip(b"\r\n").decode("utf-8", "replace")

    def cmd(self, text):
        self.n += 1
        tag = f"t{self.n}"
        self.s.sendall(f"{tag} {text}\r\n".encode())
        untagged = []
        while True:
            line = self.readline()
            if line.startswith(tag + " "):
                return untagged, line[len(tag) + 1:]
            untagged.append(line)

    def ok(self, text):
        untagged, status = self.cmd(text)
        if not status.startswith("OK"):
            raise AssertionError(f"{text} -> {status}\n" + "\n".join(untagged))
        return untagged, status

    def close(self):
        try:
            self.cmd("LOGOUT")
        except (AssertionError, OSError):
            pass
        self.s.close()


def code(lines, name):
    """The number in "* OK [NAME n]" among untagged lines."""
    for l in lines:
        m = re.match(rf"\* OK \[{name} (\d+)\]", l)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no {name} in {lines}")


def fetches(lines):
    """{uid: (flags, modseq)} from untagged FETCH lines."""
    out = {}
    for l in lines:
        m = re.match(r"\* \d+ FETCH \((.*)\)$", l)
        if not m:
            continue
        body = m.group(1)
        uid = int(re.search(r"UID (\d+)", body).group(1))
        flags = re.search(r"FLAGS \(([^)]*)\)", body)
        modseq = re.search(r"MODSEQ \((\d+)\)", body)
        out[uid] = (flags.group(1).split() if flags else None, int(modseq.group(1)) if modseq else None)
    return out


class Condstore(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(users={USER: PASSWORD})
        self.inst.start("postern-smtpd")
        self.inst.start("postern-imapd")
        for i in range(1, 5):
            self.deliver(f"Subject: message {i}\r\nFrom: bob@remote.test\r\nMessage-ID: <m{i}@remote.test>\r\n\r\nbody {i}\r\n")
        self.inbox = self.inst.maildir(USER)
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.inst.close()

    def deliver(self, msg):
        with smtplib.SMTP("127.0.0.1", self.inst.port("postern-smtpd", "smtp"), timeout=30) as c:
            c.sendmail("bob@remote.test", [USER], msg)

    def file_of(self, subject):
        """The path of the message (in cur/) whose Subject is `subject`."""
        cur = os.path.join(self.inbox, "cur")
        for name in os.listdir(cur):
            with open(os.path.join(cur, name), "rb") as f:
                if f"Subject: {subject}\r\n".encode() in f.read():
                    return os.path.join(cur, name)
        raise AssertionError(f"no message with subject {subject}")

    def raw(self):
        c = Raw(self.inst)
        self.clients.append(c)
        return c

    def test_condstore(self):
        a = self.raw()
        lines, status = a.ok("SELECT INBOX (CONDSTORE)")
        hms0 = code(lines, "HIGHESTMODSEQ")
        lines, _ = a.ok("FETCH 1:* (UID MODSEQ)")
        seen = fetches(lines)
        self.assertEqual(sorted(seen), [1, 2, 3, 4])
        modseqs = [m for _, m in seen.values()]
        self.assertEqual(len(set(modseqs)), 4, "every new message gets its own mod-sequence")
        self.assertEqual(max(modseqs), hms0)

        # STORE: the untagged FETCH carries UID and the new MODSEQ.
        lines, _ = a.ok("STORE 2 +FLAGS (\\Flagged)")
        changed = fetches(lines)
        self.assertEqual(list(changed), [2])
        flags, ms2 = changed[2]
        self.assertIn("\\Flagged", flags)
        self.assertGreater(ms2, hms0)

        # CHANGEDSINCE returns only what changed, with MODSEQ implied.
        lines, _ = a.ok(f"FETCH 1:* (UID FLAGS) (CHANGEDSINCE {hms0})")
        self.assertEqual(fetches(lines), {2: (flags, ms2)})
        lines, _ = a.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {ms2})")
        self.assertEqual(fetches(lines), {})

        # UNCHANGEDSINCE: message 2 changed after hms0, so it is not touched; 3 is.
        lines, status = a.cmd(f"STORE 2:3 (UNCHANGEDSINCE {hms0}) +FLAGS.SILENT (\\Seen)")
        self.assertTrue(status.startswith("OK [MODIFIED 2]"), status)
        touched = fetches(lines)
        self.assertEqual(list(touched), [3], lines)  # silent, but the new MODSEQ is reported
        self.assertGreater(touched[3][1], ms2)
        lines, _ = a.ok("FETCH 2:3 (FLAGS)")
        got = {seq: l for seq, l in ((int(l.split()[1]), l) for l in lines)}
        self.assertNotIn("\\Seen", got[2])
        self.assertIn("\\Seen", got[3])
        _, status = a.cmd("UID STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)")
        self.assertTrue(status.startswith("OK [MODIFIED 1]"), status)

        # SEARCH MODSEQ: messages changed at or after the value, with the highest reported.
        lines, _ = a.ok(f"SEARCH MODSEQ {ms2}")
        self.assertEqual(lines, [f"* SEARCH 2 3 (MODSEQ {touched[3][1]})"])
        lines, _ = a.ok(f'SEARCH RETURN (COUNT) MODSEQ "/flags/\\\\seen" all {ms2}')
        self.assertRegex(lines[0], rf"^\* ESEARCH \(TAG \S+\) COUNT 2 MODSEQ {touched[3][1]}$")

        # Another session sees HIGHESTMODSEQ in STATUS; a change by another program (a Maildir
        # rename, as POP3 or a local MUA would do) gets a new mod-sequence, reported to `a`.
        b = self.raw()
        lines, _ = b.ok("STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
        self.assertRegex(lines[0], rf"HIGHESTMODSEQ {touched[3][1]}\b")
        path = self.file_of("message 4")
        base, _, flags4 = path.partition(":2,")
        os.rename(path, base + ":2," + "".join(sorted(flags4 + "F")))
        lines, _ = a.ok("NOOP")
        ext = fetches(lines)
        self.assertEqual(list(ext), [4], lines)
        self.assertGreater(ext[4][1], touched[3][1])
        lines, _ = b.ok("STATUS INBOX (HIGHESTMODSEQ)")
        self.assertRegex(lines[0], rf"HIGHESTMODSEQ {ext[4][1]}\b", "one change, one mod-sequence, whoever saw it first")

        # Bad input.
        for bad in ("FETCH 1 (FLAGS) (CHANGEDSINCE)", "FETCH 1 (FLAGS) (CHANGEDSINCE x)", "FETCH 1 (FLAGS) (NOSUCH 1)",
                    "STORE 1 (UNCHANGEDSINCE -1) +FLAGS (\\Seen)", "STORE 1 (FOO 1) +FLAGS (\\Seen)", "SEARCH MODSEQ",
                    "SEARCH MODSEQ \"/flags/x\" bogus 5", "UID FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)",
                    "SELECT INBOX (QRESYNC (1 1))", "FETCH 1 (FLAGS) (CHANGEDSINCE 99999999999999999999)"):
            _, status = a.cmd(bad)
            self.assertTrue(status.startswith("BAD"), f"{bad} -> {status}")

    def test_status_before_select_keeps_sizes_and_dates(self):
        """STATUS (HIGHESTMODSEQ) indexes a folder nobody selected; the next SELECT takes
        sizes and dates from that index: they must be the files' own."""
        a = self.raw()
        lines, _ = a.ok("STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
        self.assertRegex(lines[0], r"HIGHESTMODSEQ [1-9]\d* MESSAGES 4")
        a.ok("SELECT INBOX")
        lines, _ = a.ok("FETCH 1:* (INTERNALDATE RFC822.SIZE BODY.PEEK[])")
        self.assertEqual(len(lines), 4)
        year = time.strftime("%Y")
        for l in lines:
            self.assertIn(f"-{year} ", l, "INTERNALDATE is the delivery time")
            size = int(re.search(r"RFC822.SIZE (\d+)", l).group(1))
            body = re.search(r"BODY\[\] \{(\d+)\}", l)
            self.assertTrue(body and int(body.group(1)) == size > 0, l[:200])

    def test_qresync(self):
        a = self.raw()
        a.ok("ENABLE QRESYNC")
        lines, _ = a.ok("SELECT INBOX")
        uidvalidity, hms0 = code(lines, "UIDVALIDITY"), code(lines, "HIGHESTMODSEQ")
        a.close()

        # Meanwhile: flags on UID 1, UID 2 expunged, a new message (UID 5).
        b = self.raw()
        b.ok("SELECT INBOX")
        b.ok("UID STORE 1 +FLAGS (\\Answered)")
        b.ok("UID STORE 2 +FLAGS (\\Deleted)")
        lines, _ = b.ok("EXPUNGE")
        self.assertIn("* 2 EXPUNGE", lines, "without QRESYNC: classic EXPUNGE")
        self.deliver("Subject: message 5\r\n\r\nbody 5\r\n")

        c = self.raw()
        c.ok("ENABLE QRESYNC")
        lines, _ = c.ok(f"SELECT INBOX (QRESYNC ({uidvalidity} {hms0}))")
        self.assertIn("* VANISHED (EARLIER) 2", lines)
        changed = fetches(lines)
        self.assertEqual(sorted(changed), [1, 5], lines)
        self.assertIn("\\Answered", changed[1][0])
        self.assertTrue(all(m > hms0 for _, m in changed.values()))
        hms1 = code(lines, "HIGHESTMODSEQ")
        # Known UIDs limit the answer.
        lines, _ = c.ok(f"SELECT INBOX (QRESYNC ({uidvalidity} {hms0} 3:4))")
        self.assertTrue(any(l.startswith("* OK [CLOSED]") for l in lines))
        self.assertFalse([l for l in lines if "VANISHED" in l or " FETCH " in l], lines)
        # A wrong UIDVALIDITY: a plain SELECT answer.
        lines, _ = c.ok(f"SELECT INBOX (QRESYNC ({uidvalidity + 1} {hms0}))")
        self.assertFalse([l for l in lines if "VANISHED" in l or " FETCH " in l], lines)
        # UID FETCH ... (CHANGEDSINCE m VANISHED)
        lines, _ = c.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms0} VANISHED)")
        self.assertEqual(lines[0], "* VANISHED (EARLIER) 2")
        self.assertEqual(sorted(fetches(lines)), [1, 5])

        # With QRESYNC on, expunges by others arrive as VANISHED, never as EXPUNGE.
        b.ok("UID STORE 3 +FLAGS (\\Deleted)")
        b.ok("EXPUNGE")
        lines, _ = c.ok("NOOP")
        self.assertIn("* VANISHED 3", lines)
        self.assertFalse([l for l in lines if l.endswith(" EXPUNGE")], lines)
        lines, _ = c.ok("UID STORE 4 +FLAGS (\\Deleted)")
        lines, _ = c.ok("UID EXPUNGE 4")
        self.assertIn("* VANISHED 4", lines)
        lines, _ = c.ok("STATUS INBOX (HIGHESTMODSEQ)")
        self.assertGreater(int(re.search(r"HIGHESTMODSEQ (\d+)", lines[0]).group(1)), hms1)

    def test_cached_texts_read_ahead_as_one_by_one(self):
        """FETCH reads the index's ENVELOPE/BODYSTRUCTURE rows for a run of close UIDs in one
        query, and one by one otherwise: every set order must give what the rows say, a row
        under another file's name (base) must not be used, and a row without texts is parsed
        again. Doctored rows make the index's answer visible."""
        for i in range(5, 21):
            self.deliver(f"Subject: message {i}\r\nFrom: bob@remote.test\r\n\r\nbody {i}\r\n")
        a = self.raw()
        a.ok("SELECT INBOX")
        lines, _ = a.ok("UID FETCH 1:* (UID ENVELOPE BODYSTRUCTURE)")
        parsed = {int(re.search(r"UID (\d+)", l).group(1)): re.sub(r"^\* \d+ FETCH ", "", l) for l in lines}
        self.assertEqual(sorted(parsed), list(range(1, 21)))
        a.close()
        index = os.path.join(self.inbox, "postern-index.sqlite")
        doctored = {3: "DOCTORED-3", 9: "DOCTORED-9", 16: "DOCTORED-16"}
        with sqlite3.connect(index, timeout=10) as db:
            for uid, text in doctored.items():
                db.execute("UPDATE msg SET envelope = ? WHERE uid = ?", (f'("{text}")'.encode(), uid))
            db.execute("UPDATE msg SET envelope = ?, base = base || 'x' WHERE uid = 6", (b'("WRONG-FILE")',))
            db.execute("UPDATE msg SET envelope = NULL WHERE uid = 12")
        b = self.raw()
        b.ok("SELECT INBOX")
        for uid_set in ("1:*", "20,19,18,17,16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1", "1,4,9,16", "2:10", "16,3:9,12",
                        "1:3,17:20", "12", "*"):
            with self.subTest(uid_set=uid_set):
                lines, _ = b.ok(f"UID FETCH {uid_set} (UID ENVELOPE BODYSTRUCTURE)")
                got = {int(re.search(r"UID (\d+)", l).group(1)): l for l in lines if " FETCH " in l}
                self.assertTrue(got)
                for uid, line in got.items():
                    if uid in doctored:
                        self.assertIn(f'ENVELOPE ("{doctored[uid]}")', line)
                    else:
                        self.assertNotIn("WRONG-FILE", line)
                        self.assertEqual(re.sub(r"^\* \d+ FETCH ", "", line), parsed[uid])

    def test_index_is_a_rebuildable_cache(self):
        a = self.raw()
        lines, _ = a.ok("SELECT INBOX (CONDSTORE)")
        uidvalidity, hms0 = code(lines, "UIDVALIDITY"), code(lines, "HIGHESTMODSEQ")
        lines, _ = a.ok("FETCH 1:* (UID ENVELOPE BODYSTRUCTURE)")
        before = [re.sub(r"^\* \d+ FETCH ", "", l) for l in lines]
        self.assertEqual(len(before), 4)
        a.close()

        index = os.path.join(self.inbox, "postern-index.sqlite")
        self.assertTrue(os.path.exists(index))
        db = sqlite3.connect(index, timeout=10)
        cached = db.execute("SELECT COUNT(*) FROM msg WHERE envelope IS NOT NULL AND bodystructure IS NOT NULL").fetchone()[0]
        db.close()
        self.assertEqual(cached, 4, "ENVELOPE and BODYSTRUCTURE are cached in the index")

        # Served from the cache: a message file changed behind our back (Maildir files are
        # immutable, so this never happens in use) still shows the cached ENVELOPE,
        # while BODY[HEADER] reads the file.
        first = self.file_of("message 1")
        with open(first, "rb") as f:
            original = f.read()
        with open(first, "wb") as f:
            f.write(original.replace(b"Subject: message 1", b"Subject: CHANGED 1"))
        b = self.raw()
        b.ok("SELECT INBOX")
        lines, _ = b.ok("FETCH 1 (ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn('"message 1"', lines[0])
        self.assertIn("Subject: CHANGED 1", lines[0])
        with open(first, "wb") as f:
            f.write(original)
        b.close()

        # Corrupt the index while the daemon is down: it is rebuilt, with the same UIDs and
        # mod-sequences above the old ones.
        self.inst.stop("postern-imapd")
        for suffix in ("-wal", "-shm"):
            if os.path.exists(index + suffix):
                os.unlink(index + suffix)
        with open(index, "r+b") as f:
            f.write(b"this is not an SQLite database" * 100)
        self.inst.start("postern-imapd")
        c = self.raw()
        lines, _ = c.ok("SELECT INBOX (CONDSTORE)")
        self.assertEqual(code(lines, "UIDVALIDITY"), uidvalidity)
        self.assertGreater(code(lines, "HIGHESTMODSEQ"), hms0)
        lines, _ = c.ok("FETCH 1:* (UID ENVELOPE BODYSTRUCTURE)")
        self.assertEqual([re.sub(r"^\* \d+ FETCH ", "", l) for l in lines], before, "same UIDs, same data")
        lines, _ = c.ok(f"FETCH 1:* (UID) (CHANGEDSINCE {hms0})")
        self.assertEqual(sorted(fetches(lines)), [1, 2, 3, 4], "after a rebuild every message counts as changed")
        self.assertIn("imap.index.rebuild", self.inst.log())
        c.close()

        # Deleted while a session holds it: that session goes on; a new one rebuilds it.
        d = self.raw()
        d.ok("ENABLE QRESYNC")
        d.ok("SELECT INBOX")
        d.ok("UID STORE 2 +FLAGS (\\Deleted)")
        d.ok("EXPUNGE")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(index + suffix):
                os.unlink(index + suffix)
        e = self.raw()
        e.ok("ENABLE QRESYNC")
        lines, _ = e.ok(f"SELECT INBOX (QRESYNC ({uidvalidity} {hms0} 1:9))")
        # The expunge history went with the index: the conservative answer names every known
        # UID below UIDNEXT that is not here.
        self.assertIn("* VANISHED (EARLIER) 2", lines)
        self.assertEqual(sorted(fetches(lines)), [1, 3, 4])
        self.assertTrue(os.path.exists(index), "rebuilt")
        lines, _ = d.ok("NOOP")
        self.assertFalse([l for l in lines if "VANISHED" in l or "EXPUNGE" in l], lines)


if __name__ == "__main__":
    unittest.main(verbosity=2)
