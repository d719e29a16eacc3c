"""Panel sessions survive a postern-webd restart (real HTTPS, the real daemon): log in,
restart webd, the same cookie still works; a session made idle for longer than the idle
expiry (its stored clock moved back while webd was stopped) is refused; logout removes the
session from the file. The file is 0600, owned by webd's user, and holds only SHA-256 of
each session id, never the id. A corrupt file: webd starts with no sessions, logs it."""

import hashlib
import json
import os
import stat
import time
import unittest

from postern_testlib import Instance
from test_panel import ADMIN, ADMIN_PW, Browser

IDLE_MS = 30 * 60 * 1000  # panel_sessions.h kIdleMs


class PanelSessionsRestart(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(domain="example.test")
        cls.inst.ctl("user", "admin", ADMIN, "on")
        cls.ca = os.path.join(cls.inst.config_dir, "tls", "cert.pem")
        cls.path = os.path.join(cls.inst.data_dir, "state", "panel", "sessions.json")

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()

    def start(self):
        self.inst.start("postern-webd")
        return self.inst.port("postern-webd", "https")

    def browser(self, port, cookie=None):
        b = Browser(port, self.ca)
        if cookie:
            b.cookies["postern_session"] = cookie
        return b

    def stored(self):
        with open(self.path) as f:
            return {s["id_sha256"]: s for s in json.load(f)["sessions"]}

    def test_sessions_survive_a_restart_expire_and_logout(self):
        port = self.start()
        keep, idle = self.browser(port), self.browser(port)
        for b in (keep, idle):
            r, _ = b.login(ADMIN, ADMIN_PW)
            self.assertEqual(r.status, 303)
        keep_id, idle_id = keep.cookies["postern_session"], idle.cookies["postern_session"]
        # The file: 0600, webd's user, SHA-256 of the ids only.
        st = os.stat(self.path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_uid, os.stat(self.inst.data_dir).st_uid)  # the daemon user owns data_dir
        with open(self.path) as f:
            raw = f.read()
        self.assertNotIn(keep_id, raw)
        self.assertNotIn(idle_id, raw)
        sessions = self.stored()
        keep_key = hashlib.sha256(keep_id.encode()).hexdigest()
        idle_key = hashlib.sha256(idle_id.encode()).hexdigest()
        self.assertIn(keep_key, sessions)
        self.assertIn(idle_key, sessions)

        self.inst.stop("postern-webd")
        # While webd is stopped, one session's idle clock goes back beyond the idle expiry.
        with open(self.path) as f:
            doc = json.load(f)
        now_ms = int(time.time() * 1000)
        for s in doc["sessions"]:
            if s["id_sha256"] == idle_key:
                s["created_ms"] = now_ms - IDLE_MS - 1000
                s["last_used_ms"] = now_ms - IDLE_MS - 1000
        with open(self.path, "w") as f:
            json.dump(doc, f)
        port = self.start()

        r, page = self.browser(port, keep_id).request("GET", "/panel/account")
        self.assertEqual(r.status, 200, page[:300])
        self.assertIn(ADMIN, page)
        r, _ = self.browser(port, idle_id).request("GET", "/panel/account")
        self.assertEqual(r.status, 303)
        self.assertEqual(r.getheader("Location"), "/panel/login")
        # (The expired entry leaves the file at the next write, below.)

        # Logout: the session leaves the file, and the cookie is refused from then on.
        b = self.browser(port, keep_id)
        _, page = b.request("GET", "/panel/account")
        r, _ = b.request("POST", "/panel/logout", form={"csrf": b.csrf(page)})
        self.assertEqual(r.status, 303)
        self.assertNotIn(keep_key, self.stored())
        self.assertNotIn(idle_key, self.stored())
        r, _ = self.browser(port, keep_id).request("GET", "/panel/account")
        self.assertEqual(r.status, 303)
        self.inst.stop("postern-webd")

    def test_corrupt_file_starts_empty(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "w") as f:
            f.write("{ not json")
        # As webd would have left them: its user's (tests running as root start daemons as nobody).
        owner = os.stat(self.inst.data_dir)
        for p in (os.path.dirname(self.path), self.path):
            os.chown(p, owner.st_uid, owner.st_gid)
        port = self.start()
        self.assertIn("panel.sessions_corrupt", self.inst.log())
        b = self.browser(port)
        r, _ = b.login(ADMIN, ADMIN_PW)  # and the panel works: the file is written anew
        self.assertEqual(r.status, 303)
        self.assertIn(hashlib.sha256(b.cookies["postern_session"].encode()).hexdigest(), self.stored())
        self.inst.stop("postern-webd")


if __name__ == "__main__":
    unittest.main()
