"""Refusing mail before the disk is full (smtp.min_free_space), and what
`posternctl status` says about it.

The whole appliance (postern-appliance with its real daemons) runs with its
data folder on a small tmpfs the test mounts (as test_smtp_disk_full.py does;
needs root). The free space is set by filling the tmpfs and truncating the
filler back to the wanted amount:
  * plenty free: mail accepted, status has a plain disk line, exit 0;
  * 80 % used, still above the floor: status says WARNING (exit 0), mail is
    accepted, but a SIZE= that would go below the floor gets 452 4.3.1;
  * below the floor (and 95 % used): MAIL FROM gets 452 4.3.1, status says
    ERROR and exits 1;
  * space freed: mail is accepted again without a restart.
Every message acknowledged with 250 is in the mailbox at the end; none of the
refused ones are. Also: status shows the age of the oldest queued message."""

import os
import smtplib
import time
import unittest

from postern_testlib import Instance, fill_up, mount_tmpfs, wait_for

FLOOR = 1 << 20  # smtp.min_free_space = 1M


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def leave_free(filler, amount):
    """Fills the file system of `filler`, then gives back `amount` bytes."""
    size = fill_up(filler)
    os.truncate(filler, max(0, size - amount))


@unittest.skipUnless(os.geteuid() == 0, "mounts a tmpfs")
class StorageLow(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(conf={"smtp.min_free_space": "1M", "http.listen": "", "https.listen": ""})
        self.unmount = mount_tmpfs(self.inst.data_dir, "8m")
        self.filler = os.path.join(self.inst.data_dir, "filler")

    def tearDown(self):
        self.inst.stop("postern-appliance")
        self.unmount()
        self.inst.close()

    def mail_from(self, size=None):
        """(code, text) of MAIL FROM on a fresh connection."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as c:
            c.ehlo("client.test")
            return c.mail("someone@remote.test", [f"SIZE={size}"] if size is not None else [])

    def send(self, subject):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as c:
            c.sendmail("someone@remote.test", ["alice@example.test"], f"Subject: {subject}\r\n\r\nbody\r\n".encode())

    def status(self):
        return self.inst.ctl("status", check=False)

    def test_refused_before_full_and_recovers(self):
        self.inst.start("postern-appliance")
        self.port = self.inst.port("postern-appliance", "smtp")
        data = self.inst.data_dir

        # Plenty of space.
        self.send("one")
        st = self.status()
        self.assertEqual(st.returncode, 0, st.stdout + st.stderr)
        self.assertRegex(st.stdout, rf"(?m)^disk: {data} \d+ % used, [\d.]+ [KM]iB free of 8\.0 MiB$")

        # About 84 % used, 1.25 MiB free: above the floor, so mail still comes in, but a
        # message announced with SIZE= that would leave less than the floor does not.
        leave_free(self.filler, FLOOR + FLOOR // 4)
        self.assertGreater(free_bytes(data), FLOOR)
        self.assertLess(free_bytes(data), FLOOR * 3 // 2)
        st = self.status()
        self.assertEqual(st.returncode, 0, st.stdout)
        self.assertRegex(st.stdout, rf"(?m)^disk: WARNING: {data} (8\d|9[0-4]) % used, .* \(ERROR at 95 %; free space or grow the disk\)$")
        # The daemon's free-space figure is cached for a second: poll until it sees the new one.
        code, text = wait_for(lambda: (lambda r: r if r[0] == 452 else None)(self.mail_from(size=FLOOR // 2)),
                              timeout=10, what="452 for a SIZE= that does not fit")
        self.assertEqual(text, b"4.3.1 Insufficient system storage")
        self.assertEqual(self.mail_from(size=1000)[0], 250)
        self.send("two")

        # Below the floor: refused at MAIL FROM.
        os.unlink(self.filler)
        leave_free(self.filler, FLOOR // 2)
        self.assertLess(free_bytes(data), FLOOR)
        code, text = wait_for(lambda: (lambda r: r if r[0] == 452 else None)(self.mail_from()), timeout=10,
                              what="452 at MAIL FROM below the floor")
        self.assertEqual(text, b"4.3.1 Insufficient system storage")
        with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
            self.send("refused")
        self.assertEqual(cm.exception.smtp_code, 452)
        self.assertRegex(self.inst.log(), r"smtp\.storage_low .*detail=.*bytes free, smtp\.min_free_space is 1M")
        st = self.status()
        self.assertEqual(st.returncode, 1, st.stdout)
        self.assertRegex(st.stdout, rf"(?m)^disk: ERROR: {data} 9\d % used, .*; below smtp\.min_free_space \(1M\): "
                                    r"new mail is refused with 452 4\.3\.1$")
        self.assertIsNone(self.inst.procs["postern-appliance"].poll())

        # Space freed: accepted again, no restart needed.
        os.unlink(self.filler)
        wait_for(lambda: self.mail_from()[0] == 250, timeout=10, what="MAIL FROM accepted once space is back")
        self.send("three")
        st = self.status()
        self.assertEqual(st.returncode, 0, st.stdout)
        self.assertNotIn("disk: WARNING", st.stdout)
        self.assertNotIn("disk: ERROR", st.stdout)

        # Everything acknowledged is there, nothing refused is.
        subjects = sorted(m.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0] for m in self.inst.messages("alice@example.test"))
        self.assertEqual(subjects, [b"one", b"three", b"two"])

    def test_status_queue_age(self):
        """The oldest queued message's age (mtime of its body, set at arrival)."""
        self.assertRegex(self.status().stdout, r"(?m)^queue: 0 message\(s\)$")
        old = self.inst.queue_message("a@example.test", ["x@remote.test"], b"Subject: old\r\n\r\nx\r\n")
        self.inst.queue_message("a@example.test", ["y@remote.test"], b"Subject: new\r\n\r\ny\r\n")
        arrival = int(time.time()) - 3 * 3600 - 7 * 60
        os.utime(os.path.join(self.inst.data_dir, "queue", "incoming", old + ".body"), (arrival, arrival))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(arrival))
        self.assertRegex(self.status().stdout, rf"(?m)^queue: 2 message\(s\), oldest 3h 7m \({stamp}\)$")


if __name__ == "__main__":
    unittest.main(verbosity=2)
