"""The folder listing kept next to the index (daemons/imapd/imap_kept_listing.h):
a postern-imapd process that has not listed a folder yet takes the kept listing
only when cur/'s and new/'s mtimes, the uidlist and the index are unchanged and
the directories had been quiet for 2 s when it was made. Real postern-imapd,
Python imaplib over TLS; changes are made by another process (this one, in the
Maildir) while a session has the folder selected and while no postern-imapd
runs; a new process's SELECT must show exactly the folder as it is (EXISTS,
UIDs, FLAGS), including after a change made in the same clock tick as the
kept listing (simulated by putting cur/'s mtime back: a file system with a
coarse clock does exactly that). A listing of a folder that had just changed is
kept once the folder is quiet, from the process's snapshot, only when that
snapshot's inotify watch saw no change meanwhile."""

import imaplib
import os
import re
import time
import unittest

from postern_testlib import Instance

USER, PASSWORD = "alice@example.test", "alice-password-1"
KEPT = "postern-index.sqlite-listing"


def message(i):
    return (f"Subject: message {i}\r\nFrom: bob@remote.test\r\nMessage-ID: <k{i}@remote.test>\r\n\r\n"
            f"body {i}\r\n").encode()


class KeptListing(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(users={USER: PASSWORD})
        self.inst.start("postern-imapd")
        self.inbox = self.inst.maildir(USER)
        self.open = []
        m = self.client()
        for i in range(1, 6):
            typ, _ = m.append("INBOX", "(\\Seen)" if i == 2 else None, None, message(i))
            self.assertEqual(typ, "OK")
        self.logout(m)

    def tearDown(self):
        for m in self.open:
            try:
                m.shutdown()
            except OSError:
                pass
        self.inst.close()

    def client(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.inst.port("postern-imapd", "imaps"),
                              ssl_context=self.inst.client_tls_context(), timeout=30)
        self.open.append(m)
        m.login(USER, PASSWORD)
        return m

    def logout(self, m):
        m.logout()
        self.open.remove(m)

    def restart(self):
        self.assertEqual(self.inst.stop("postern-imapd"), 0)
        self.inst.start("postern-imapd")

    def state(self, m):
        """(EXISTS, {uid: sorted flags}) of a fresh SELECT INBOX."""
        typ, data = m.select("INBOX")
        self.assertEqual(typ, "OK")
        exists = int(data[0])
        typ, data = m.uid("FETCH", "1:*", "(FLAGS)") if exists else ("OK", [])
        self.assertEqual(typ, "OK")
        out = {}
        for line in data:
            if not line:
                continue
            uid = int(re.search(rb"UID (\d+)", line).group(1))
            flags = re.search(rb"FLAGS \(([^)]*)\)", line).group(1).decode().split()
            out[uid] = sorted(f for f in flags if f != "\\Recent")
        self.assertEqual(len(out), exists)
        return exists, out

    def cur(self, name=""):
        return os.path.join(self.inbox, "cur", name)

    def file_of(self, i):
        for name in os.listdir(self.cur()):
            with open(self.cur(name), "rb") as f:
                if f"Subject: message {i}\r\n".encode() in f.read():
                    return name
        raise AssertionError(f"no file for message {i}")

    def set_flags(self, i, letters):
        name = self.file_of(i)
        os.rename(self.cur(name), self.cur(name.split(":2,")[0] + ":2," + letters))

    def deliver(self, i):
        """A delivery as any MDA makes it: tmp/, then a rename into new/, the daemon's owner."""
        st = os.stat(self.inbox)
        name = f"{int(time.time())}.M{i}P{os.getpid()}.testhost"
        tmp = os.path.join(self.inbox, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(message(i))
        os.chown(tmp, st.st_uid, st.st_gid)
        os.rename(tmp, os.path.join(self.inbox, "new", name))

    def changed_a_moment_ahead(self, ahead_ns=1500 * 10**6 + 123):
        """cur/ and new/ changed "now" as far as any window can tell (a moment ahead of the
        clock, sub-second: a slow machine cannot make a listing older than the change)."""
        tick = time.time_ns() + ahead_ns
        for d in ("cur", "new"):
            os.utime(os.path.join(self.inbox, d), ns=(tick, tick))
        return tick

    def set_flags_in_the_same_tick(self, i, letters, tick):
        """A flag change that leaves cur/'s mtime at `tick`, as a second change in the clock
        tick of the first does on a file system with a coarse clock."""
        self.set_flags(i, letters)
        os.utime(self.cur(), ns=(tick, tick))

    def quieten(self):
        """cur/ and new/ last changed an hour ago: a listing made now may be kept."""
        old = time.time_ns() - 3600 * 10**9
        for d in ("cur", "new"):
            os.utime(os.path.join(self.inbox, d), ns=(old, old))

    def kept_listing(self):
        """A SELECT in a fresh process, with the directories quiet: the listing is kept."""
        self.quieten()
        self.restart()
        m = self.client()
        before = self.state(m)
        self.assertTrue(os.path.exists(os.path.join(self.inbox, KEPT)), "a quiet folder's listing is kept")
        return m, before

    def test_new_process_sees_changes_made_while_selected_and_while_stopped(self):
        a, (exists, flags) = self.kept_listing()
        self.assertEqual(exists, 5)
        uids = sorted(flags)
        self.assertEqual(flags[uids[1]], ["\\Seen"])
        # Another process changes the folder while A has it selected: A hears of it.
        self.set_flags(1, "F")
        os.unlink(self.cur(self.file_of(3)))
        a.noop()
        typ, data = a.uid("SEARCH", "ALL")
        self.assertEqual([int(x) for x in data[0].split()], [uids[0], uids[1], uids[3], uids[4]])
        typ, data = a.uid("SEARCH", "FLAGGED")
        self.assertEqual([int(x) for x in data[0].split()], [uids[0]])
        self.logout(a)
        # And while no postern-imapd runs: a delivery, a flag change, an expunge.
        self.assertEqual(self.inst.stop("postern-imapd"), 0)
        self.deliver(6)
        self.set_flags(4, "RS")
        os.unlink(self.cur(self.file_of(5)))
        self.inst.start("postern-imapd")
        b = self.client()
        exists, now = self.state(b)
        self.assertEqual(exists, 4)
        self.assertEqual(sorted(now)[:3], [uids[0], uids[1], uids[3]])
        self.assertGreater(sorted(now)[3], uids[4], "the delivered message has a new UID")
        self.assertEqual(now[uids[0]], ["\\Flagged"])
        self.assertEqual(now[uids[1]], ["\\Seen"])
        self.assertEqual(now[uids[3]], ["\\Answered", "\\Seen"])
        self.assertEqual(now[sorted(now)[3]], [])
        self.logout(b)
        # Once quiet, that state is kept, and a new process shows it again without change.
        _, (exists2, again) = self.kept_listing()
        self.assertEqual((exists2, again), (exists, now))
        self.restart()
        c = self.client()
        self.assertEqual(self.state(c), (exists, now))

    def test_change_in_the_same_clock_tick_as_the_listing_is_seen(self):
        # The directories changed "now" (here: a moment ahead of the clock, so that a slow
        # machine cannot make the listing 2 s younger than the change): a listing made now
        # must not be trusted later, whatever the mtimes say then.
        self.restart()
        tick = self.changed_a_moment_ahead(5 * 10**9)
        a = self.client()
        exists, flags = self.state(a)
        self.assertEqual(exists, 5)
        uids = sorted(flags)
        self.logout(a)
        self.assertEqual(self.inst.stop("postern-imapd"), 0)
        # A flag change in the same tick: cur/'s mtime stays what the listing saw.
        self.set_flags_in_the_same_tick(1, "S", tick)
        self.inst.start("postern-imapd")
        b = self.client()
        exists, now = self.state(b)
        self.assertEqual(exists, 5)
        self.assertEqual(now[uids[0]], ["\\Seen"], "a change within the listing's clock tick was missed")
        self.assertEqual({u: f for u, f in now.items() if u != uids[0]}, {u: f for u, f in flags.items() if u != uids[0]})


    def wait_until(self, ns):
        while time.time_ns() <= ns:
            time.sleep(0.05)

    def test_just_changed_folder_is_kept_once_quiet(self):
        self.restart()
        tick = self.changed_a_moment_ahead()
        a = self.client()
        exists, flags = self.state(a)
        self.assertEqual(exists, 5)
        self.assertFalse(os.path.exists(os.path.join(self.inbox, KEPT)), "not quiet: not kept with the listing")
        # The process keeps it from its snapshot once quiet (2 s at most after the change).
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(self.inbox, KEPT)):
            self.assertLess(time.monotonic(), deadline, "the snapshot was never kept")
            time.sleep(0.05)
        self.logout(a)
        self.assertEqual(self.inst.stop("postern-imapd"), 0)
        # A change hidden from the stamps while no process runs: a new process shows the
        # kept listing, proof that it took the listing instead of reading the directory.
        self.set_flags_in_the_same_tick(1, "F", tick)
        self.inst.start("postern-imapd")
        b = self.client()
        self.assertEqual(self.state(b), (exists, flags))

    def test_change_seen_by_the_watch_is_not_kept(self):
        self.restart()
        tick = self.changed_a_moment_ahead()
        a = self.client()
        exists, flags = self.state(a)
        self.logout(a)
        # Another process changes a flag in the same clock tick: cur/'s mtime stays. The
        # process's watch saw it: its snapshot is not kept, neither once quiet nor when
        # the process stops (which writes what is due).
        self.set_flags_in_the_same_tick(1, "F", tick)
        self.wait_until(tick + 2_200_000_000)  # quiet even for the 2 s window
        self.assertEqual(self.inst.stop("postern-imapd"), 0)
        self.assertFalse(os.path.exists(os.path.join(self.inbox, KEPT)))
        self.inst.start("postern-imapd")
        b = self.client()
        exists2, now = self.state(b)
        self.assertEqual(exists2, exists)
        uids = sorted(flags)
        self.assertEqual(now[uids[0]], ["\\Flagged"], "a change the watch saw was kept away")

    def test_unchanged_folder_is_not_read_by_a_new_process(self):
        a, (exists, flags) = self.kept_listing()
        self.logout(a)
        self.assertEqual(self.inst.stop("postern-imapd"), 0)
        # A change hidden from every stamp (cur/'s mtime put back by hand; the documented
        # limit, as with Dovecot): the new process shows the kept listing, proof that it did
        # not read the directory. A change that moves the mtime is seen (the other tests).
        self.set_flags_in_the_same_tick(1, "F", os.stat(self.cur()).st_mtime_ns)
        self.inst.start("postern-imapd")
        b = self.client()
        self.assertEqual(self.state(b), (exists, flags))


if __name__ == "__main__":
    unittest.main(verbosity=2)
