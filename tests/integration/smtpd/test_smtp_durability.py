"""Nothing acknowledged is lost: postern-smtpd is killed with SIGKILL right
after it answers 250 to a message, 25 times in a row, with a client streaming
messages over several connections. After every restart, each acknowledged
message must be in the Maildir exactly once and complete; a message that was
not acknowledged may be there or not, but never truncated."""

import os
import random
import re
import signal
import socket
import threading
import unittest

from postern_testlib import Instance

ROUNDS = 25


def send_until_killed(port, start_id, acked, stop):
    """Send messages one after another; record the id of each acknowledged one."""
    n = start_id
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO durability\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        while not stop.is_set():
            body = (b"Subject: msg %d\r\nX-Id: %d\r\n\r\n" % (n, n)) + (b"line of text for message %d\r\n" % n) * random.randint(1, 400) + b"END-%d\r\n" % n
            s.sendall(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
            for _ in range(3):
                f.readline()
            s.sendall(body + b".\r\n")
            reply = f.readline()
            if reply.startswith(b"250 "):
                acked.append((n, len(body)))
                if len(acked) >= 1 and random.random() < 0.5:
                    stop.set()  # tell the killer: an acknowledgement just arrived
            n += 1
    except OSError:
        pass


class Durability(unittest.TestCase):
    def test_kill9_after_250(self):
        inst = Instance()
        try:
            acked_all = []
            next_id = 1
            for rnd in range(ROUNDS):
                inst.start("postern-smtpd")
                port = inst.port("postern-smtpd", "smtp")
                acked, stop = [], threading.Event()
                t = threading.Thread(target=send_until_killed, args=(port, next_id, acked, stop))
                t.start()
                stop.wait(20)
                inst.kill9("postern-smtpd")  # right after a 250, mid-stream of the next message
                t.join(20)
                self.assertTrue(acked, f"round {rnd}: nothing was acknowledged")
                acked_all += acked
                next_id = max(i for i, _ in acked) + 1000
                self.check(inst, acked_all)
        finally:
            inst.close()

    def check(self, inst, acked):
        seen = {}
        for m in inst.messages("alice@example.test"):
            mid = int(re.search(rb"X-Id: (\d+)", m).group(1))
            self.assertTrue(m.endswith(b"END-%d\r\n" % mid), f"message {mid} is truncated")
            seen[mid] = seen.get(mid, 0) + 1
        for mid, _size in acked:
            self.assertEqual(seen.get(mid, 0), 1, f"acknowledged message {mid} found {seen.get(mid, 0)} times")


if __name__ == "__main__":
    unittest.main(verbosity=2)
