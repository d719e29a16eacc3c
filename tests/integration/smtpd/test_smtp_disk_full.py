"""A full disk answers 452 4.3.1, never 250, and the daemon keeps running.
The data folder lives on a small tmpfs the test mounts (in its own mount
namespace when possible), filled up before the message arrives; once space
is freed, delivery works again. The free-space floor that refuses mail at
MAIL FROM (smtp.min_free_space, test_smtp_storage_low.py) is turned off here,
so the write failure itself is what this test sees."""

import os
import shutil
import smtplib
import unittest

from postern_testlib import Instance, fill_up, mount_tmpfs


class DiskFull(unittest.TestCase):
    def test_disk_full(self):
        inst = Instance(conf={"smtp.min_free_space": "0"})
        mnt = inst.data_dir
        unmount = lambda: None  # noqa: E731
        try:
            # A 2 MiB tmpfs over the data folder, owned like the data folder.
            unmount = mount_tmpfs(mnt, "2m")
            inst.start("postern-smtpd")
            port = inst.port("postern-smtpd", "smtp")
            # Fill the file system almost completely.
            filler = os.path.join(mnt, "filler")
            fill_up(filler)
            body = b"Subject: big\r\n\r\n" + b"x" * 70 * 1000 + b"\r\n"
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
                with self.assertRaises(smtplib.SMTPDataError) as cm:
                    c.sendmail("a@remote.test", ["alice@example.test"], body)
                self.assertIn(cm.exception.smtp_code, (451, 452))
                self.assertIn(b"4.3.1", cm.exception.smtp_error)
            self.assertEqual(inst.messages("alice@example.test"), [])
            # The daemon survived and delivers once space is back.
            os.unlink(filler)
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
                c.sendmail("a@remote.test", ["alice@example.test"], b"Subject: after\r\n\r\nok\r\n")
            self.assertEqual(len(inst.messages("alice@example.test")), 1)
            self.assertIsNone(inst.procs["postern-smtpd"].poll())
        finally:
            inst.stop("postern-smtpd")
            unmount()
            inst.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
