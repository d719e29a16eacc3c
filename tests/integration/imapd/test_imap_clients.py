"""postern-imapd with real clients: Python imaplib for the commands people's
clients use, curl's IMAP, isync/mbsync two-way sync of a folder tree, and
imapfilter as users run it; mail delivered by postern-smtpd is seen (IDLE wakes
up within a second); flags set over IMAP show in Maildir file names and in
POP3; a Maildir copied from a Dovecot layout is read with its UIDs."""

import email
import imaplib
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from postern_testlib import Instance, wait_for

MULTIPART = (b"From: \"Bob Example\" <bob@remote.test>\r\nTo: alice@example.test, \"Team\": c@x.test, d@y.test;\r\n"
             b"Subject: =?utf-8?q?caf=C3=A9_report?=\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\nMessage-ID: <m1@remote.test>\r\n"
             b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BOUND\"\r\n\r\npreamble\r\n--BOUND\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nH=C3=A9llo searchable-word\r\n"
             b"--BOUND\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Disposition: attachment; filename=\"r.pdf\"\r\n"
             b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--BOUND--\r\nepilogue\r\n")


class ImapClients(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(users={"alice@example.test": "alice-password-1", "bob@example.test": "bob-password-2"})
        self.inst.start("postern-smtpd")
        self.inst.start("postern-imapd")
        self.inst.start("postern-pop3d")
        self.imaps = self.inst.port("postern-imapd", "imaps")
        self.imap = self.inst.port("postern-imapd", "imap")
        self.ctx = self.inst.client_tls_context()
        self.cafile = os.path.join(self.inst.config_dir, "tls", "cert.pem")

    def tearDown(self):
        self.inst.close()

    def deliver(self, msg, to="alice@example.test"):
        with smtplib.SMTP("127.0.0.1", self.inst.port("postern-smtpd", "smtp"), timeout=30) as c:
            c.sendmail("bob@remote.test", [to], msg)

    def client(self, user="alice@example.test", pw="alice-password-1"):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.imaps, ssl_context=self.ctx, timeout=30)
        m.login(user, pw)
        return m

    def test_fetch_envelope_bodystructure_sections(self):
        self.deliver(MULTIPART)
        m = self.client()
        typ, data = m.select("INBOX")
        self.assertEqual(data, [b"1"])
        typ, data = m.fetch("1", "(ENVELOPE BODYSTRUCTURE RFC822.SIZE)")
        line = data[0] if isinstance(data[0], bytes) else data[0][0]
        self.assertIn(b'"=?utf-8?q?caf=C3=A9_report?="', line)
        self.assertIn(b'(("Bob Example" NIL "bob" "remote.test"))', line)
        self.assertIn(b'(NIL NIL "Team" NIL)(NIL NIL "c" "x.test")(NIL NIL "d" "y.test")(NIL NIL NIL NIL)', line)
        self.assertIn(b'"<m1@remote.test>"', line)
        self.assertIn(b'("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE"', line)
        # The CRLF before a boundary belongs to the boundary (RFC 2046 5.1.1): 12 bytes of base64.
        self.assertIn(b'("APPLICATION" "PDF" ("NAME" "r.pdf") NIL NIL "BASE64" 12 NIL ("ATTACHMENT" ("FILENAME" "r.pdf")) NIL NIL)', line)
        self.assertIn(b'"MIXED" ("BOUNDARY" "BOUND")', line)
        typ, data = m.fetch("1", "(BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[]<0.20>)")
        parts = {p[0].split(b" {")[0].split(b" ")[-1].lstrip(b"("): p[1] for p in data if isinstance(p, tuple)}
        self.assertEqual(parts[b"BODY[1]"], b"H=C3=A9llo searchable-word")
        self.assertTrue(parts[b"BODY[2.MIME]"].startswith(b"Content-Type: application/pdf"))
        header_fields = [p[1] for p in data if isinstance(p, tuple) and b"HEADER.FIELDS" in p[0]]
        self.assertEqual(header_fields, [b"Subject: =?utf-8?q?caf=C3=A9_report?=\r\n\r\n"])
        self.assertEqual(len(parts[b"BODY[]<0>"]), 20)
        # PEEK left it unseen; a non-PEEK fetch sets \Seen.
        self.assertEqual(m.search(None, "UNSEEN")[1], [b"1"])
        m.fetch("1", "(BODY[TEXT])")
        self.assertEqual(m.search(None, "SEEN")[1], [b"1"])
        m.logout()

    def test_search(self):
        self.deliver(MULTIPART)
        self.deliver(b"Subject: plain one\r\nFrom: carol@remote.test\r\nDate: Sun, 01 Mar 2026 08:00:00 +0000\r\n\r\nnothing here\r\n")
        m = self.client()
        m.select("INBOX")
        self.assertEqual(m.search(None, "SUBJECT", "café".encode())[1], [b"1"])  # RFC 2047 decoded
        self.assertEqual(m.search("UTF-8", "BODY", "searchable-word")[1], [b"1"])  # QP decoded
        self.assertEqual(m.search(None, "FROM", "carol")[1], [b"2"])
        self.assertEqual(m.search(None, "OR", "FROM", "carol", "SUBJECT", "report")[1], [b"1 2"])
        self.assertEqual(m.search(None, "NOT", "FROM", "carol")[1], [b"1"])
        self.assertEqual(m.search(None, "LARGER", "600")[1], [b"1"])
        self.assertEqual(m.search(None, "SENTON", "24-Nov-2026")[1], [b"1"])
        self.assertEqual(m.uid("SEARCH", "ALL")[1], [b"1 2"])
        self.assertEqual(m.search(None, "SENTBEFORE", "02-Mar-2026")[1], [b"2"])
        typ, data = m._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
        self.assertEqual(typ, "OK")
        esearch = m.untagged_responses.pop("ESEARCH")[0]
        self.assertRegex(esearch, rb'^\(TAG "[A-Z0-9]+"\) MIN 1 MAX 2 COUNT 2$')
        m.logout()

    def test_store_copy_move_expunge_append(self):
        for i in range(3):
            self.deliver(f"Subject: n{i}\r\n\r\nx\r\n".encode())
        m = self.client()
        m.select("INBOX")
        m.store("1:2", "+FLAGS", "(\\Flagged $Important)")
        self.assertIn(b"$Important", m.fetch("1", "(FLAGS)")[1][0])
        typ, data = m.copy("1:2", "Archive")
        self.assertRegex(data[0], rb"\[COPYUID \d+ 1:2 1:2\]")
        typ, data = m._simple_command("MOVE", "3", "Trash")
        self.assertEqual(typ, "OK")
        self.assertEqual(m.untagged_responses.get("EXPUNGE"), [b"3"])
        m.store("1", "+FLAGS", "(\\Deleted)")
        m.expunge()
        self.assertEqual(m.select("INBOX")[1], [b"1"])
        self.assertEqual(m.select("Archive")[1], [b"2"])
        self.assertIn(b"$Important", m.fetch("1", "(FLAGS)")[1][0])  # keywords travel with the copy
        typ, data = m.append("Drafts", "(\\Draft)", imaplib.Time2Internaldate(time.time()), b"Subject: draft\r\n\r\nunsent\r\n")
        self.assertRegex(data[0], rb"\[APPENDUID \d+ 1\]")
        # Flags are Maildir file names: Dovecot and POP3 see the same state.
        cur = os.path.join(self.inst.maildir("alice@example.test"), ".Drafts", "cur")
        self.assertTrue(os.listdir(cur)[0].endswith(":2,D"))
        m.logout()

    def test_mailbox_tree(self):
        m = self.client()
        names = [l.decode() for l in m.list()[1]]
        for special in ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive"):
            self.assertTrue(any(special in n for n in names), special)
        self.assertEqual(m.create("Projects/2026/Q4")[0], "OK")
        self.assertEqual(m.create("Entw&APw-rfe")[0], "OK")  # "Entwürfe" in modified UTF-7
        self.assertIn(b'(\\HasChildren) "/" "Projects"', m.list()[1])
        self.assertEqual(m.rename("Projects", "Work")[0], "OK")
        self.assertIn(b'(\\HasNoChildren) "/" "Work/2026/Q4"', m.list('""', "Work/*")[1])
        self.assertEqual(m.subscribe("Work/2026")[0], "OK")
        self.assertIn(b'() "/" "Work/2026"', m.lsub()[1])
        self.assertEqual(m.delete("Work/2026/Q4")[0], "OK")
        self.assertEqual(m.delete("INBOX")[0], "NO")
        # Names that would escape the Maildir are refused.
        for bad in ("../x", "a/../../etc", ".hidden", "a.b"):
            self.assertEqual(m.create(bad)[0], "NO", bad)
        self.assertIn(b"Entw&APw-rfe", b" ".join(m.list()[1]))
        typ, data = m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)")
        self.assertRegex(data[0], rb'"INBOX" \(MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+ UNSEEN 0 SIZE 0\)')
        m.logout()

    def test_starttls_and_logindisabled(self):
        m = imaplib.IMAP4("127.0.0.1", self.imap, timeout=30)
        self.assertIn("LOGINDISABLED", m.capabilities)
        self.assertNotIn("AUTH=PLAIN", m.capabilities)
        with self.assertRaises(imaplib.IMAP4.error):
            m.login("alice@example.test", "alice-password-1")
        m.starttls(ssl_context=self.ctx)
        self.assertIn("AUTH=PLAIN", m.capabilities)
        m.authenticate("PLAIN", lambda _: b"\0alice@example.test\0alice-password-1")
        m.logout()

    def test_idle_sees_delivery(self):
        m = self.client()
        m.select("INBOX")
        tag = m._new_tag()
        m.send(tag + b" IDLE\r\n")
        self.assertTrue(m.readline().startswith(b"+"))
        start = time.monotonic()
        self.deliver(b"Subject: while idle\r\n\r\nwake up\r\n")
        m.sock.settimeout(5)
        line = m.readline()
        self.assertEqual(line.strip(), b"* 1 EXISTS")
        self.assertLess(time.monotonic() - start, 2.0)
        m.send(b"DONE\r\n")
        while not m.readline().startswith(tag):
            pass
        m.logout()

    def test_many_idle_sessions_share_one_watcher(self):
        """150 IDLE sessions (more than Linux's default of 128 inotify instances per user) all
        wake up on one delivery, and the daemon holds a single inotify instance."""
        self.inst.set_conf("imap.max_sessions_per_user", "200")
        self.inst.set_conf("imap.max_connections_per_ip", "300")
        self.inst.stop("postern-imapd")
        self.inst.start("postern-imapd")
        self.imaps = self.inst.port("postern-imapd", "imaps")
        pid = self.inst.procs["postern-imapd"].pid

        def inotify_instances():
            return sum(1 for fd in os.listdir(f"/proc/{pid}/fd") if "inotify" in os.readlink(f"/proc/{pid}/fd/{fd}"))

        baseline = inotify_instances()  # the certificate watch
        clients = []
        try:
            for _ in range(150):
                m = self.client()
                m.select("INBOX")
                tag = m._new_tag()
                m.send(tag + b" IDLE\r\n")
                self.assertTrue(m.readline().startswith(b"+"))
                clients.append((m, tag))
            self.assertEqual(inotify_instances() - baseline, 1, "one shared inotify instance for all IDLE sessions")
            self.deliver(b"Subject: for everyone\r\n\r\nwake up\r\n")
            for m, _ in clients:
                m.sock.settimeout(10)
                self.assertEqual(m.readline().strip(), b"* 1 EXISTS")
            for m, tag in clients:
                m.send(b"DONE\r\n")
                while not m.readline().startswith(tag):
                    pass
        finally:
            for m, _ in clients:
                m.shutdown()  # some may still be in IDLE after a failure

    def test_flags_shared_with_pop3(self):
        self.deliver(b"Subject: s\r\n\r\nx\r\n")
        import poplib
        p = poplib.POP3_SSL("127.0.0.1", self.inst.port("postern-pop3d", "pop3s"), context=self.ctx)
        p.user("alice@example.test")
        p.pass_("alice-password-1")
        p.retr(1)
        p.quit()
        m = self.client()
        m.select("INBOX")
        self.assertIn(b"\\Seen", m.fetch("1", "(FLAGS)")[1][0])
        m.logout()

    def test_literal_limits_and_bad_input(self):
        s = socket.create_connection(("127.0.0.1", self.imaps))
        s = self.ctx.wrap_socket(s)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"a1 LOGIN {4294967296}\r\n")
        self.assertTrue(f.readline().startswith(b"a1 NO [TOOBIG]"))
        s.sendall(b"a2 LOGIN alice@example.test alice-password-1\r\n")
        self.assertTrue(f.readline().startswith(b"a2 OK"))
        s.sendall(b"a3 FETCH 1 (FLAGS\r\n")
        self.assertTrue(f.readline().startswith(b"a3 BAD"))
        s.sendall(b"a4 SELECT INBOX\r\n")
        while not (l := f.readline()).startswith(b"a4 "):
            pass
        # 32 part numbers is the limit (kMaxSectionParts): answered; 33 is a BAD, the session goes on.
        parts = ".".join(str(i) for i in range(1, 33)).encode()
        s.sendall(b"a5 UID FETCH 1:* (BODY.PEEK[" + parts + b"])\r\n")
        while (l := f.readline()).startswith(b"* "):
            self.assertIn(b"BODY[" + parts + b"]", l)
        self.assertTrue(l.startswith(b"a5 OK"), l)
        s.sendall(b"a5 UID FETCH 1:* (BODY[" + parts + b".33])\r\n")
        self.assertTrue(f.readline().startswith(b"a5 BAD"))
        s.sendall(b"a6 " + b"(" * 100 + b"\r\n")
        self.assertTrue(f.readline().startswith(b"a6 BAD"))
        s.sendall(b"a7 LOGOUT\r\n")
        self.assertTrue(f.readline().startswith(b"* BYE"))

    def test_sessions_per_user_limit(self):
        self.inst.set_conf("imap.max_sessions_per_user", "3")
        self.inst.stop("postern-imapd")
        self.inst.start("postern-imapd")
        self.imaps = self.inst.port("postern-imapd", "imaps")
        held = [self.client() for _ in range(3)]
        with self.assertRaises(imaplib.IMAP4.error) as err:
            self.client()
        self.assertIn("LIMIT", str(err.exception))
        self.assertIn("Too many sessions for this user", str(err.exception))
        other = self.client("bob@example.test", "bob-password-2")  # the limit is per user
        other.logout()
        held.pop().logout()
        # The count drops when a session ends; wait for the server to see the close.
        wait_for(lambda: self._try_login(), timeout=10, what="a free session slot")
        for m in held:
            m.logout()
        self.assertIn("imap.session_limit", self.inst.log())

    def _try_login(self):
        try:
            self.client().logout()
            return True
        except imaplib.IMAP4.error:
            return False

    def test_curl(self):
        self.deliver(b"Subject: for curl\r\n\r\ncurl body\r\n")
        p = subprocess.run(["curl", "-sS", "--cacert", self.cafile, "--resolve", f"mail.example.test:{self.imaps}:127.0.0.1",
                            "--user", "alice@example.test:alice-password-1", f"imaps://mail.example.test:{self.imaps}/INBOX;UID=1"],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"curl body", p.stdout)
        p = subprocess.run(["curl", "-sS", "--cacert", self.cafile, "--resolve", f"mail.example.test:{self.imaps}:127.0.0.1",
                            "--user", "alice@example.test:alice-password-1", f"imaps://mail.example.test:{self.imaps}/"],
                           capture_output=True, timeout=60)
        self.assertIn(b'"/" Sent', p.stdout.replace(b'"Sent"', b"Sent"))

    def test_mbsync_two_way(self):
        for i in range(3):
            self.deliver(f"Subject: sync {i}\r\n\r\nx\r\n".encode())
        m = self.client()
        m.create("Lists/Debian")
        m.append("Lists/Debian", None, None, b"Subject: list mail\r\n\r\ny\r\n")
        m.logout()
        with tempfile.TemporaryDirectory() as d:
            local = os.path.join(d, "mail")
            os.makedirs(local)
            rc = os.path.join(d, "mbsyncrc")
            with open(rc, "w") as f:
                f.write(f"""IMAPAccount test
Host localhost
Port {self.imaps}
User alice@example.test
Pass alice-password-1
SSLType IMAPS
CertificateFile {self.cafile}

IMAPStore remote
Account test

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")
            def run():
                p = subprocess.run(["mbsync", "-c", rc, "-a"], capture_output=True, text=True, timeout=120)
                self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
            run()
            self.assertEqual(len(os.listdir(os.path.join(local, "INBOX", "new")) + os.listdir(os.path.join(local, "INBOX", "cur"))), 3)
            self.assertTrue(os.path.isdir(os.path.join(local, "Lists", "Debian")))
            # Local change: mark one message seen and add a new local message; sync back.
            cur = os.path.join(local, "INBOX", "cur")
            new = os.path.join(local, "INBOX", "new")
            for n in os.listdir(new):
                os.rename(os.path.join(new, n), os.path.join(cur, n + (":2,S" if ":2," not in n else "")))
            first = sorted(os.listdir(cur))[0]
            os.rename(os.path.join(cur, first), os.path.join(cur, first.split(":2,")[0] + ":2,FS"))
            with open(os.path.join(local, "INBOX", "new", "123.local.host"), "wb") as f:
                f.write(b"Subject: written offline\r\n\r\nz\r\n")
            run()
        m = self.client()
        m.select("INBOX")
        self.assertEqual(len(m.search(None, "ALL")[1][0].split()), 4)
        self.assertEqual(len(m.search(None, "FLAGGED")[1][0].split()), 1)
        self.assertEqual(m.search(None, "SUBJECT", "offline")[1][0] != b"", True)
        m.logout()

    def test_offlineimap(self):
        self.deliver(b"Subject: offline one\r\n\r\nx\r\n")
        m = self.client()
        m.create("Lists")
        m.append("Lists", None, None, b"Subject: in a folder\r\n\r\ny\r\n")
        m.logout()
        with tempfile.TemporaryDirectory() as d:
            local = os.path.join(d, "Mail")
            rc = os.path.join(d, "offlineimaprc")
            with open(rc, "w") as f:
                f.write(f"""[general]
accounts = test
metadata = {d}/meta

[Account test]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {local}

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {self.imaps}
remoteuser = alice@example.test
remotepass = alice-password-1
ssl = yes
sslcacertfile = {self.cafile}
""")
            p = subprocess.run(["offlineimap", "-c", rc, "-o", "-u", "basic"], capture_output=True, text=True, timeout=180)
            self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-3000:])
            inbox = os.path.join(local, "INBOX")
            self.assertEqual(len(os.listdir(os.path.join(inbox, "cur")) + os.listdir(os.path.join(inbox, "new"))), 1)
            self.assertTrue(os.path.isdir(os.path.join(local, "Lists")))

    def test_imapfilter(self):
        # A filter as users write them: flag and move by subject, delete by sender, a new
        # folder; the result seen with imaplib afterwards.
        self.deliver(b"Subject: invoice 17\r\n\r\npay\r\n")
        self.deliver(b"From: spam@junk.test\r\nSubject: offer\r\n\r\nbuy\r\n")
        self.deliver(b"Subject: hello\r\n\r\nkeep\r\n")
        with tempfile.TemporaryDirectory() as d:
            rc = os.path.join(d, "config.lua")
            with open(rc, "w") as f:
                f.write(f"""options.timeout = 30
options.certificates = false
options.create = true
account = IMAP {{ server = 'localhost', port = {self.imaps}, username = 'alice@example.test',
                  password = 'alice-password-1', ssl = 'auto' }}
local bills = account.INBOX:contain_subject('invoice')
bills:mark_flagged()
bills:move_messages(account['Bills/2026'])
account.INBOX:contain_from('spam@junk.test'):delete_messages()
""")
            p = subprocess.run(["imapfilter", "-t", self.cafile, "-c", rc], capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, HOME=d))
            self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
        m = self.client()
        m.select("INBOX")
        _, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = [x[1].strip() for x in data if isinstance(x, tuple)]
        self.assertEqual(subjects, [b"Subject: hello"])
        self.assertEqual(m.select("Bills/2026")[0], "OK")
        _, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertEqual(len([x for x in data if isinstance(x, tuple)]), 1)
        self.assertIn(b"\\Flagged", data[0][0])
        self.assertIn(b"invoice 17", data[0][1])
        m.logout()

    def test_reads_dovecot_maildir(self):
        # A mailbox as Dovecot leaves it: uidlist with high UIDs, keywords, a folder, CRLF-less files.
        root = self.inst.maildir("bob@example.test")
        os.makedirs(root, exist_ok=True)
        for sub in ("cur", "new", "tmp", ".Old/cur", ".Old/new", ".Old/tmp"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        open(os.path.join(root, ".Old", "maildirfolder"), "w").close()
        with open(os.path.join(root, "dovecot-uidlist"), "w") as f:
            f.write("3 V1600000000 N101 G0123456789abcdef0123456789abcdef\n100 :1600000000.M1P1.host,S=26\n")
        with open(os.path.join(root, "dovecot-keywords"), "w") as f:
            f.write("0 $Label1\n1 Work\n")
        with open(os.path.join(root, "cur", "1600000000.M1P1.host,S=26:2,Sb"), "wb") as f:
            f.write(b"Subject: from dovecot\n\nhi\n")  # LF line endings, as Dovecot stores by default
        with open(os.path.join(root, ".Old", "cur", "1500000000.M2P1.host:2,"), "wb") as f:
            f.write(b"Subject: old\n\nold\n")
        subprocess.run(["chown", "-R", "nobody:nogroup", os.path.dirname(root)], check=True)
        m = self.client("bob@example.test", "bob-password-2")
        typ, data = m.select("INBOX")
        self.assertEqual(data, [b"1"])
        self.assertEqual(m.untagged_responses.get("UIDVALIDITY"), [b"1600000000"])
        typ, data = m.fetch("1", "(UID FLAGS RFC822.SIZE BODY[])")
        head = data[0][0]
        self.assertIn(b"UID 100", head)
        self.assertIn(b"\\Seen Work", head)
        self.assertIn(b"RFC822.SIZE 29", head)   # 26 bytes with LF, 29 with CRLF
        self.assertEqual(data[0][1], b"Subject: from dovecot\r\n\r\nhi\r\n")
        self.assertEqual(m.select("Old")[1], [b"1"])
        m.logout()


if __name__ == "__main__":
    unittest.main(verbosity=2)
