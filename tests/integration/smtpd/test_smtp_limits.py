"""postern-smtpd limits that a hostile or clumsy client meets, over real sockets
(issue 16):

  * recipients over smtp.max_recipients get 452 4.5.3 and the transaction goes
    on: smtplib with 120 recipients gets 100 x 250 and 20 x 452 and DATA goes to
    the 100 (RFC 5321 4.5.3.1.8); 1,000 pipelined RCPT do not end in 421;
  * the work per transaction stays bounded: max_recipients + 1000 RCPT commands
    are answered, the next one gets 421 and the connection is closed;
  * the pre-greet check on the MX port: a client that talks before the greeting
    is complete gets 554 5.5.1 and is dropped; a polite client waits and works;
    submission greets at once;
  * EHLO/HELO lines longer than 512 octets (CRLF included) are refused, 512 pass.
"""

import os
import smtplib
import socket
import time
import unittest

from postern_testlib import Instance, wait_for


def read_reply(f):
    """One SMTP reply (all its lines) from a binary file object: (code, [lines])."""
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise EOFError("connection closed; got " + repr(lines))
        lines.append(line.rstrip(b"\r\n").decode("utf-8", "replace"))
        if len(line) >= 4 and line[3:4] == b" ":
            return int(line[:3]), lines


class SmtpLimits(unittest.TestCase):
    GREET_MS = 400

    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(users={"alice@example.test": "alice-password-1"},
                            conf={"smtp.greet_delay": f"{cls.GREET_MS}ms"})
        cls.inst.start("postern-smtpd")
        cls.smtp = cls.inst.port("postern-smtpd", "smtp")
        cls.sub = cls.inst.port("postern-smtpd", "submission")
        cls.subs = cls.inst.port("postern-smtpd", "submissions")

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()

    def mx(self):
        """A raw connection to the MX port, greeted (the whole multi-line 220 read)."""
        s = socket.create_connection(("127.0.0.1", self.smtp), timeout=30)
        f = s.makefile("rb")
        code, _ = read_reply(f)
        self.assertEqual(code, 220)
        return s, f

    def queued_envelopes(self):
        d = os.path.join(self.inst.data_dir, "queue", "incoming")
        out = {}
        for n in os.listdir(d) if os.path.isdir(d) else []:
            if n.endswith(".env"):
                with open(os.path.join(d, n)) as fh:
                    out[n] = fh.read()
        return out

    # -- recipients -------------------------------------------------------------
    def test_120_recipients_with_smtplib(self):
        """A legitimate sender with 120 recipients: 100 accepted, 20 x 452, the message goes to the 100."""
        rcpts = [f"friend{i}@elsewhere.test" for i in range(120)]
        before = set(self.queued_envelopes())
        with smtplib.SMTP_SSL("127.0.0.1", self.subs, context=self.inst.client_tls_context(), timeout=60) as c:
            c.login("alice@example.test", "alice-password-1")
            refused = c.sendmail("alice@example.test", rcpts, b"Subject: many\r\n\r\nto many friends\r\n")
        self.assertEqual(sorted(refused), sorted(rcpts[100:]))
        for code, text in refused.values():
            self.assertEqual(code, 452)
            self.assertIn(b"4.5.3", text)
        new = {n: e for n, e in self.queued_envelopes().items() if n not in before}
        self.assertEqual(len(new), 1, new)
        env = next(iter(new.values()))
        listed = [line.split()[1] for line in env.splitlines() if line.startswith("recipient: ")]
        self.assertEqual(listed, rcpts[:100])

    def test_1000_pipelined_rcpt_keep_the_connection(self):
        """1,000 pipelined RCPT: 100 x 250 then 900 x 452, no 421; DATA reaches the recipient."""
        before = len(self.inst.messages("alice@example.test"))
        s, f = self.mx()
        s.sendall(b"EHLO client.test\r\nMAIL FROM:<someone@remote.test>\r\n" + b"RCPT TO:<alice@example.test>\r\n" * 1000)
        self.assertEqual(read_reply(f)[0], 250)
        self.assertEqual(read_reply(f)[0], 250)
        codes = [read_reply(f)[0] for _ in range(1000)]
        self.assertEqual(codes, [250] * 100 + [452] * 900)
        s.sendall(b"DATA\r\n")
        self.assertEqual(read_reply(f)[0], 354)
        s.sendall(b"Subject: pipelined\r\n\r\nhello\r\n.\r\n")
        code, lines = read_reply(f)
        self.assertEqual(code, 250, lines)
        s.sendall(b"QUIT\r\n")
        self.assertEqual(read_reply(f)[0], 221)
        s.close()
        self.assertEqual(len(self.inst.messages("alice@example.test")), before + 1)

    def test_rcpt_command_cap(self):
        """max_recipients + 1000 RCPT commands are answered; number 1101 gets 421 and the end."""
        s, f = self.mx()
        s.sendall(b"EHLO client.test\r\nMAIL FROM:<someone@remote.test>\r\n" + b"RCPT TO:<alice@example.test>\r\n" * 1101)
        self.assertEqual(read_reply(f)[0], 250)
        self.assertEqual(read_reply(f)[0], 250)
        codes = [read_reply(f)[0] for _ in range(1101)]
        self.assertEqual(codes[:100], [250] * 100)
        self.assertEqual(codes[100:1100], [452] * 1000)
        self.assertEqual(codes[1100], 421)
        self.assertEqual(f.read(), b"")  # closed
        s.close()

    # -- pre-greet ---------------------------------------------------------------
    def test_talking_before_the_greeting_is_dropped(self):
        s = socket.create_connection(("127.0.0.1", self.smtp), timeout=30)
        s.sendall(b"EHLO bot.test\r\n")  # at once, without waiting for the banner
        f = s.makefile("rb")
        first = f.readline()
        self.assertTrue(first.startswith(b"220-"), first)
        rest = f.read()  # until the server closes
        self.assertTrue(rest.startswith(b"554 5.5.1 "), rest)
        self.assertEqual(rest.count(b"\r\n"), 1, rest)  # nothing else: the EHLO was never answered
        s.close()
        wait_for(lambda: "talked before the greeting" in self.inst.log(), timeout=10, what="the disconnect reason in the log")

    def test_talking_after_the_first_greeting_line_is_dropped(self):
        s = socket.create_connection(("127.0.0.1", self.smtp), timeout=30)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"220-"))
        s.sendall(b"EHLO bot.test\r\n")
        self.assertTrue(f.read().startswith(b"554 5.5.1 "))
        s.close()

    def test_polite_client_waits_and_works(self):
        t = time.monotonic()
        with smtplib.SMTP("127.0.0.1", self.smtp, timeout=30) as c:
            greeted = time.monotonic() - t
            self.assertGreaterEqual(greeted, self.GREET_MS / 1000 - 0.02)
            code, _ = c.ehlo("client.test")
            self.assertEqual(code, 250)
            refused = c.sendmail("someone@remote.test", ["alice@example.test"], b"Subject: polite\r\n\r\nhi\r\n")
            self.assertEqual(refused, {})

    def test_submission_greets_at_once(self):
        s = socket.create_connection(("127.0.0.1", self.sub), timeout=30)
        s.sendall(b"EHLO client.test\r\n")  # early, but submission has no pre-greet check
        f = s.makefile("rb")
        code, lines = read_reply(f)
        self.assertEqual((code, len(lines)), (220, 1))
        self.assertEqual(read_reply(f)[0], 250)
        s.close()

    # -- command line length ---------------------------------------------------
    def test_ehlo_line_limit(self):
        s, f = self.mx()
        for verb in (b"EHLO", b"HELO"):
            ok = verb + b" " + b"a" * 505 + b"\r\n"
            self.assertEqual(len(ok), 512)
            s.sendall(ok)
            self.assertEqual(read_reply(f)[0], 250)
            s.sendall(verb + b" " + b"a" * 506 + b"\r\n")  # 513
            code, lines = read_reply(f)
            self.assertEqual(code, 500, lines)
            self.assertIn("5.5.2", lines[0])
        s.sendall(b"QUIT\r\n")
        self.assertEqual(read_reply(f)[0], 221)
        s.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
