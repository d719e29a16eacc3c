"""Two-factor login and app passwords against the real daemons, with real clients
over TLS (imaplib, poplib, smtplib AUTH PLAIN) and the real posternctl:

  * before enrolment the account password works on IMAP, POP3 and SMTP;
  * `posternctl user 2fa enrol --code -` prints the QR code and the otpauth URI,
    then reads the confirming code (computed here by oathtool, checked against
    Python's stdlib HMAC) from standard input: 2FA is on;
  * the account password is then refused on all three, an app password
    (`user app-password add`, printed once) is accepted on all three, with or
    without its spaces; `list` shows when it was last used;
  * a revoked app password is refused; the confirming code cannot be used again
    (replay) to switch 2FA off; the administrator can, and the account password
    works again;
  * the TOTP secrets file is 0600 and the daemons' `credentials` 0640.
"""

import base64
import hashlib
import hmac
import imaplib
import os
import poplib
import re
import shutil
import smtplib
import stat
import struct
import subprocess
import time
import unittest

from postern_testlib import Instance, bin_path, wait_for

DOMAIN = "example.test"
ALICE = f"alice@{DOMAIN}"
PASSWORD = "alice-password-1"


def totp_stdlib(secret_b32, t=None):
    """RFC 6238 with SHA-1, 6 digits, 30 s (Python stdlib)."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if t is None else t) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1000000:06d}"


def totp(secret_b32):
    """The current code from oathtool (the field's tool) when installed, checked against the
    stdlib computation for the same instant; else the stdlib one."""
    now = int(time.time())
    expected = totp_stdlib(secret_b32, now)
    if shutil.which("oathtool"):
        code = subprocess.run(["oathtool", "--totp", "-b", "-N", f"@{now}", secret_b32],
                              check=True, capture_output=True, text=True).stdout.strip()
        assert code == expected, (code, expected)
        return code
    return expected


class TwoFactor(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(domain=DOMAIN, users={ALICE: PASSWORD})
        for program in ("postern-imapd", "postern-pop3d", "postern-smtpd"):
            cls.inst.start(program)
        cls.imaps = cls.inst.port("postern-imapd", "imaps")
        cls.pop3s = cls.inst.port("postern-pop3d", "pop3s")
        cls.smtps = cls.inst.port("postern-smtpd", "submissions")
        cls.ctx = cls.inst.client_tls_context()

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()

    # -- one login per protocol: True (accepted) or False (refused) -----------------
    def imap_ok(self, password):
        c = imaplib.IMAP4_SSL("127.0.0.1", self.imaps, ssl_context=self.ctx, timeout=30)
        try:
            c.login(ALICE, password)
            c.logout()
            return True
        except imaplib.IMAP4.error as exc:
            self.assertIn("AUTHENTICATIONFAILED", str(exc))
            return False

    def pop3_ok(self, password):
        c = poplib.POP3_SSL("127.0.0.1", self.pop3s, context=self.ctx, timeout=30)
        try:
            c.user(ALICE)
            c.pass_(password)
            c.quit()
            return True
        except poplib.error_proto as exc:
            self.assertIn("-ERR", str(exc))
            return False

    def smtp_ok(self, password):
        c = smtplib.SMTP_SSL("127.0.0.1", self.smtps, context=self.ctx, timeout=30)
        try:
            c.ehlo("client.test")
            c.user, c.password = ALICE, password
            try:
                c.auth("PLAIN", c.auth_plain)
                return True
            except smtplib.SMTPAuthenticationError as exc:
                self.assertEqual(exc.smtp_code, 535)
                return False
        finally:
            c.close()

    def logins(self, password):
        return [self.imap_ok(password), self.pop3_ok(password), self.smtp_ok(password)]

    def settle(self, password, expected):
        """Each daemon re-reads the account files at most once a second: poll until all three
        give `expected` for `password`, then return what they gave."""
        seen = []

        def check():
            seen[:] = self.logins(password)
            return seen == expected
        try:
            wait_for(check, timeout=10, interval=0.2, what="the daemons to see the account change")
        except Exception:  # noqa: BLE001 - the assertion below says what was seen
            pass
        return seen

    def enrol(self):
        """`user 2fa enrol --code -`: the code is computed from the printed secret and sent on stdin."""
        p = subprocess.Popen([bin_path("posternctl"), "--config", self.inst.config_dir, "user", "2fa", "enrol", ALICE, "--code", "-"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        printed = []
        secret = None
        while secret is None:
            line = p.stdout.readline()
            if not line:
                self.fail("posternctl ended before printing the secret: " + "".join(printed) + p.stderr.read())
            printed.append(line)
            m = re.match(r"secret: ([A-Z2-7]+)$", line.strip())
            if m:
                secret = m.group(1)
        text = "".join(printed)
        self.assertIn(f"uri:    otpauth://totp/Postern:{ALICE}?secret={secret}&issuer=Postern", text)
        self.assertIn("\u2588", text)  # the QR code, in half blocks
        self.assertEqual(len(base64.b32decode(secret)), 20)  # 160 bits
        code = totp(secret)
        out, err = p.communicate(code + "\n", timeout=60)
        self.assertEqual(p.returncode, 0, out + err)
        self.assertIn("two-factor login is on", out)
        return secret, code

    def test_two_factor_and_app_passwords(self):
        self.assertEqual(self.logins(PASSWORD), [True, True, True])
        secret, code = self.enrol()
        status = self.inst.ctl("user", "2fa", "status", ALICE).stdout
        self.assertIn("two-factor: on since", status)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.inst.config_dir, "totp-secrets")).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.inst.config_dir, "credentials")).st_mode), 0o640)
        self.assertNotIn(secret, open(os.path.join(self.inst.config_dir, "credentials")).read())

        # The account password no longer works for mail (snapshots reload within a second).
        self.assertEqual(self.settle(PASSWORD, [False, False, False]), [False, False, False])
        self.assertTrue(any("two-factor on" in line and "result=failed" in line for line in self.inst.log().splitlines()))

        out = self.inst.ctl("user", "app-password", "add", ALICE, "phone").stdout
        app = re.search(r"^  ([a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4})$", out, re.M).group(1)
        self.assertEqual(self.settle(app, [True, True, True]), [True, True, True])
        self.assertEqual(self.logins(app.replace(" ", "")), [True, True, True])
        self.assertIn("credential=app-password app=phone", self.inst.log())
        listed = self.inst.ctl("user", "app-password", "list", ALICE).stdout
        self.assertRegex(listed, r"^phone\tcreated=\S+\tlast-used=\d{4}-\d\d-\d\dT")
        self.assertNotIn(app.replace(" ", ""), open(os.path.join(self.inst.config_dir, "credentials")).read())
        # A wrong app password is refused (and counted like any failed login).
        self.assertEqual(self.logins("abcd efgh ijkl mnop"), [False, False, False])

        # Revoked: refused everywhere.
        self.inst.ctl("user", "app-password", "revoke", ALICE, "phone")
        self.assertEqual(self.inst.ctl("user", "app-password", "list", ALICE).stdout, "")
        self.assertEqual(self.settle(app, [False, False, False]), [False, False, False])

        # The confirming code cannot be replayed to switch 2FA off; the administrator can.
        replay = self.inst.ctl("user", "2fa", "disable", ALICE, "--code", code, check=False)
        self.assertEqual(replay.returncode, 1)
        self.assertIn("wrong or already used code", replay.stderr)
        self.inst.ctl("user", "2fa", "disable", ALICE)
        self.assertIn("two-factor: off", self.inst.ctl("user", "2fa", "status", ALICE).stdout)
        self.assertEqual(self.settle(PASSWORD, [True, True, True]), [True, True, True])


if __name__ == "__main__":
    unittest.main()
