"""The queue runner's local delivery fails the way every other store path fails
(the one mapping of common/store/store_error.h):

  * a full disk defers with "452 4.3.1 <rcpt>: Insufficient system storage",
    the message stays queued and is delivered once space is back;
  * a full mailbox defers with "452 4.2.2 ... Mailbox full, try again later";
  * a message larger than the whole quota fails at once with "552 5.2.2" and
    the sender gets a bounce saying so.

The data folder lives on a small tmpfs the test mounts (as in
tests/integration/smtpd/test_smtp_disk_full.py; needs root). Messages for a
local recipient are written straight into queue/incoming/, as the runner
finds bounces and alias forwards there."""

import os
import unittest

from postern_testlib import Instance, fill_up, mount_tmpfs, wait_for


def diagnostic(inst, qid, state="deferred"):
    path = os.path.join(inst.data_dir, "queue", state, qid + ".env")
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("diagnostic: "):
                    return line[len("diagnostic: "):].rstrip("\n").split(" ", 1)[1]
    except FileNotFoundError:
        return None
    return None


class LocalDeliveryStore(unittest.TestCase):
    def test_disk_full_then_space_back(self):
        inst = Instance(conf={"queue.retry_min": "1s", "queue.retry_max": "1s"})
        mnt = inst.data_dir
        filler = os.path.join(mnt, "filler")
        unmount = lambda: None  # noqa: E731
        try:
            unmount = mount_tmpfs(mnt, "2m")
            inst.start("postern-queued")
            wait_for(lambda: os.path.isdir(os.path.join(mnt, "queue", "incoming")), what="the queue folders")
            # Fill the file system, then give back room for the queued files but not for a Maildir copy.
            os.truncate(filler, fill_up(filler) - 120 * 1024)
            body = b"Subject: big\r\n\r\n" + b"x" * 70 * 1000 + b"\r\n"
            qid = inst.queue_message("someone@remote.test", ["alice@example.test"], body)
            diag = wait_for(lambda: diagnostic(inst, qid), timeout=30, what="the deferred envelope")
            self.assertEqual(diag, "452 4.3.1 <alice@example.test>: Insufficient system storage")
            self.assertEqual(inst.messages("alice@example.test"), [])
            self.assertRegex(inst.log(), r"delivery\.local .*" + qid + r".*detail=.*No space left on device")
            # Space is back: the next attempt delivers it.
            os.unlink(filler)
            got = wait_for(lambda: inst.messages("alice@example.test"), timeout=30, what="delivery after space came back")
            self.assertEqual(len(got), 1)
            self.assertTrue(got[0].endswith(body))
            self.assertTrue(got[0].startswith(b"Return-Path: <someone@remote.test>\r\nDelivered-To: alice@example.test\r\n"))
            self.assertIsNone(inst.procs["postern-queued"].poll())
        finally:
            inst.stop("postern-queued")
            unmount()
            inst.close()

    def test_quota(self):
        inst = Instance(users={"alice@example.test": "alice-password-1", "bob@example.test": "bob-password-1"})
        try:
            inst.ctl("user", "quota", "alice@example.test", "1K")
            inst.start("postern-queued")
            # Larger than the whole quota: fails at once, and the (local) sender gets a bounce.
            big = inst.queue_message("bob@example.test", ["alice@example.test"], b"Subject: big\r\n\r\n" + b"y" * 2000 + b"\r\n")
            bounce = wait_for(lambda: inst.messages("bob@example.test"), timeout=30, what="the bounce to bob")[0]
            self.assertIn(b"552 5.2.2 <alice@example.test>: Message is larger than the recipient's whole mailbox quota", bounce)
            self.assertIn(b"Status: 5.2.2", bounce)
            self.assertIsNone(diagnostic(inst, big))  # not kept in the queue
            # Fits the quota once, not twice: the second one is deferred as a full mailbox.
            first = inst.queue_message("bob@example.test", ["alice@example.test"], b"Subject: one\r\n\r\n" + b"z" * 600 + b"\r\n")
            wait_for(lambda: inst.messages("alice@example.test"), timeout=30, what="the first message")
            second = inst.queue_message("bob@example.test", ["alice@example.test"], b"Subject: two\r\n\r\n" + b"z" * 600 + b"\r\n")
            diag = wait_for(lambda: diagnostic(inst, second), timeout=30, what="the deferred second message")
            self.assertEqual(diag, "452 4.2.2 <alice@example.test>: Mailbox full, try again later")
            self.assertNotEqual(first, second)
        finally:
            inst.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
