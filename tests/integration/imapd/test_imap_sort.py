"""postern-imapd SORT, THREAD and BINARY with Python's imaplib over TLS.

SORT results are checked against orders this file computes on its own (its own
base-subject extraction, address and date parsing with the email package);
THREAD against a small conversation whose threads are known by hand; BINARY
against the bytes that went into a base64 attachment."""

import email.header
import email.utils
import functools
import imaplib
import os
import re
import socket
import time
import unittest

from postern_testlib import Instance

T0 = 1_767_000_000  # internal dates of the appended messages count from here


# ------------------------------------------------------------------ independent model

def decode_words(raw):
    return str(email.header.make_header(email.header.decode_header(raw)))


BLOB = r"\[[^\[\]]*\][ \t]*"
REFWD = r"(?:re|fwd?)[ \t]*(?:" + BLOB + r")?:"


def base_subject(raw):
    """RFC 5256 2.1, written from the ABNF with regular expressions."""
    s = re.sub(r" +", " ", re.sub(r"[\t\r\n]", " ", decode_words(raw)))
    while True:
        while True:
            new = re.sub(r"(?i)(\(fwd\)| )$", "", s)
            if new == s:
                break
            s = new
        while True:
            before = s
            while True:
                new = re.sub(r"(?i)^(?: |(?:" + BLOB + r")*" + REFWD + r")", "", s, count=1)
                if new == s:
                    break
                s = new
            m = re.match(BLOB, s)
            if m and s[m.end():].strip(" \t"):
                s = s[m.end():]
            if s == before:
                break
        m = re.fullmatch(r"(?is)\[fwd:(.*)\]", s)
        if m:
            s = m.group(1)
            continue
        return s


def casemap(text):
    return text.encode("utf-8").upper()  # bytes.upper() maps a-z only: i;ascii-casemap


def first_address(value):
    pairs = [p for p in email.utils.getaddresses([value]) if p[1]] if value else []
    return pairs[0] if pairs else ("", "")


class Model:
    """What the test knows about each appended message, by sequence number."""

    def __init__(self, raw, internal):
        msg = {}
        for line in raw.split(b"\r\n\r\n", 1)[0].decode("utf-8").split("\r\n"):  # the corpus has no folded lines
            name, _, value = line.partition(":")
            msg.setdefault(name.strip().title(), value.strip())
        self.size = len(raw)
        self.arrival = internal
        date = msg.get("Date")
        try:
            self.date = email.utils.parsedate_to_datetime(date).timestamp() if date else internal
        except (TypeError, ValueError):
            self.date = internal
        self.subject = casemap(base_subject(msg.get("Subject", "")))
        self.from_, self.to, self.cc = (casemap(first_address(msg.get(h, ""))[1].split("@")[0]) for h in ("From", "To", "Cc"))
        name, addr = first_address(msg.get("From", ""))
        self.displayfrom = (decode_words(name).strip() or addr).casefold()
        name, addr = first_address(msg.get("To", ""))
        self.displayto = (decode_words(name).strip() or addr).casefold()

    def key(self, criterion):
        return getattr(self, {"FROM": "from_"}.get(criterion, criterion.lower()))


def expected_order(models, criteria, subset=None):
    seqs = subset if subset is not None else list(range(1, len(models) + 1))
    parsed, reverse = [], False
    for c in criteria.split():
        if c == "REVERSE":
            reverse = True
            continue
        parsed.append((c, reverse))
        reverse = False

    def cmp(a, b):
        for name, rev in parsed:
            ka, kb = models[a - 1].key(name), models[b - 1].key(name)
            if ka != kb:
                r = -1 if ka < kb else 1
                return -r if rev else r
        return a - b

    return sorted(seqs, key=functools.cmp_to_key(cmp))


# ------------------------------------------------------------------ corpus

def message(subject, frm, to, cc=None, date=None, body="text", extra=""):
    lines = [f"From: {frm}", f"To: {to}"]
    if cc:
        lines.append(f"Cc: {cc}")
    lines.append(f"Subject: {subject}")
    if date:
        lines.append(f"Date: {date}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n" + body + "\r\n").encode()


CORPUS = [
    message("Re: Quarterly numbers", "\"Zoe Adams\" <zoe@b.test>", "bob@x.test", "Carl@c.test",
            "Tue, 03 Mar 2026 10:00:00 +0100", "a" * 300),
    message("[team] quarterly NUMBERS", "alice@a.test", "\"Dora\" <dora@x.test>", None,
            "Tue, 03 Mar 2026 08:30:00 +0000", "b" * 50),
    message("=?utf-8?q?Fwd=3A_Caf=C3=A9_plans?=", "=?utf-8?q?=C3=89mile?= <emile@e.test>", "ann@x.test", "bea@c.test",
            "Mon, 02 Mar 2026 23:59:00 -0500", "c" * 120),
    message("Lunch (fwd)", "Bob <BOB@b.test>", "Cleo <cleo@x.test>", None, None, "d" * 10),  # no Date: INTERNALDATE
    message("re: [x] lunch", "mallory@m.test", "zed@x.test", "abe@c.test", "not a date at all", "e" * 700),
    message("Apples", "\"aaron\" <aaron@a.test>", "Bob <bob@x.test>", None, "Sun, 01 Mar 2026 12:00:00 +0000", "f" * 75),
    message("[Fwd: apples]", "carol@c.test", "\"\" <yann@x.test>", "Dan <dan@c.test>",
            "Sun, 01 Mar 2026 12:00:00 +0000", "g" * 75),
    message("caf\u00e9 PLANS", "zoe@b.test", "ann@x.test", None, "Wed, 04 Mar 2026 09:00:00 +0900", "h" * 5),
]
# Internal dates in an order that differs from both Date and the sequence.
INTERNAL = [T0 + d for d in (500, 100, 700, 300, 200, 900, 50, 400)]


def uid_map(m):
    typ, data = m.fetch("1:*", "(UID)")
    out = {}
    for line in data:
        seq, uid = re.match(rb"(\d+) \(UID (\d+)\)", line).groups()
        out[int(seq)] = int(uid)
    return out


class ImapSortThreadBinary(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(users={"alice@example.test": "alice-password-1"})
        self.inst.start("postern-imapd")
        self.ctx = self.inst.client_tls_context()
        self.imaps = self.inst.port("postern-imapd", "imaps")
        self.m = imaplib.IMAP4_SSL("127.0.0.1", self.imaps, ssl_context=self.ctx, timeout=30)
        self.m.login("alice@example.test", "alice-password-1")

    def tearDown(self):
        try:
            self.m.logout()
        finally:
            self.inst.close()

    def fill(self, mailbox, messages, internal, expunge_first=True):
        """Appends the messages; an extra one appended and expunged first makes UIDs differ from sequence numbers."""
        if mailbox != "INBOX":
            self.assertEqual(self.m.create(mailbox)[0], "OK")
        if expunge_first:
            self.m.append(mailbox, "(\\Deleted)", None, b"Subject: gone\r\n\r\nx\r\n")
        for raw, when in zip(messages, internal):
            typ, _ = self.m.append(mailbox, None, imaplib.Time2Internaldate(when), raw)
            self.assertEqual(typ, "OK")
        self.m.select(mailbox)
        if expunge_first:
            self.m.expunge()

    def sort(self, criteria, *keys, uid=False):
        if uid:
            typ, data = self.m.uid("SORT", f"({criteria})", "UTF-8", *keys)
        else:
            typ, data = self.m.sort(f"({criteria})", "UTF-8", *keys)
        self.assertEqual(typ, "OK")
        return [int(x) for x in data[0].split()]

    def test_capabilities(self):
        caps = self.m.capabilities
        for c in ("SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "BINARY"):
            self.assertIn(c, caps)

    def test_sort_matches_independent_order(self):
        self.fill("INBOX", CORPUS, INTERNAL)
        models = [Model(raw, when) for raw, when in zip(CORPUS, INTERNAL)]
        # The model itself must see what the RFC says, or the comparison proves nothing.
        self.assertEqual(base_subject("=?utf-8?q?Fwd=3A_Caf=C3=A9_plans?="), "Caf\u00e9 plans")
        self.assertEqual(base_subject("[Fwd: apples]"), "apples")
        self.assertEqual(base_subject("re: [x] lunch"), "lunch")
        for criteria in ("SUBJECT", "SUBJECT DATE", "REVERSE SUBJECT", "DATE", "REVERSE DATE", "ARRIVAL", "REVERSE ARRIVAL",
                         "SIZE", "REVERSE SIZE", "FROM", "FROM REVERSE SIZE", "TO", "CC", "CC SUBJECT", "REVERSE CC ARRIVAL",
                         "DISPLAYFROM", "DISPLAYTO", "REVERSE DISPLAYFROM", "SUBJECT REVERSE DATE"):
            with self.subTest(criteria=criteria):
                self.assertEqual(self.sort(criteria, "ALL"), expected_order(models, criteria))
        # Orders that really discriminate (a wrong key would not pass by luck).
        self.assertNotEqual(expected_order(models, "DATE"), expected_order(models, "ARRIVAL"))
        self.assertNotEqual(expected_order(models, "SUBJECT"), list(range(1, 9)))
        # Search keys go through the SEARCH evaluator.
        subset = [int(x) for x in self.m.search(None, "LARGER", "200")[1][0].split()]
        self.assertEqual(self.sort("SUBJECT", "LARGER", "200"), expected_order(models, "SUBJECT", subset))
        self.assertEqual(self.sort("DATE", "OR", "FROM", "zoe", "CC", "bea"), expected_order(models, "DATE", [1, 3, 8]))
        self.assertEqual(self.sort("SIZE", "SUBJECT", "nothing-like-this"), [])
        # UID SORT: the same order in UIDs (they differ from sequence numbers here).
        uids = uid_map(self.m)
        self.assertNotEqual(uids[1], 1)
        for criteria in ("SUBJECT", "REVERSE DATE", "FROM"):
            with self.subTest(uid_criteria=criteria):
                self.assertEqual(self.sort(criteria, "ALL", uid=True), [uids[s] for s in expected_order(models, criteria)])
        self.assertEqual(self.sort("ARRIVAL", "UID", f"{uids[2]}:{uids[4]}", uid=True),
                         [uids[s] for s in expected_order(models, "ARRIVAL", [2, 3, 4])])

    def test_sort_keys_around_eight_octets(self):
        """Subjects and senders that agree in their first 8 octets (after case mapping) or are
        prefixes of each other: the server compares an 8-octet prefix first and the whole key
        only when those agree, so these orders need the whole key, the tie rule and REVERSE."""
        subjects = ["Prefix12 b", "prefix12", "PREFIX12a", "Prefix1", "prefix123", "Prefix12", "prefiX12 B",
                    "Prefix12é", "Prefix1 ", "prefix13", "abcdefgh", "ABCDEFGH", "abcdefg", "abcdefghi"]
        senders = ["longname1@x.test", "LONGNAME1@x.test", "longname@x.test", "longname12@x.test", "longnamf@x.test",
                   "LongName1a@x.test", "longname1 @x.test", "longname0@x.test", "l@x.test", "longname1@y.test",
                   "longname2@x.test", "LONGNAME@x.test", "longnam@x.test", "longname10@x.test"]
        days = [3, 1, 2, 5, 4, 1, 3, 2, 6, 1, 4, 2, 5, 3]
        corpus = [message(subj, frm, "to@x.test", None, f"Sun, {d:02d} Mar 2026 12:00:00 +0000", "x" * (10 + i))
                  for i, (subj, frm, d) in enumerate(zip(subjects, senders, days))]
        internal = [T0 + 10 * i for i in range(len(corpus))]
        self.fill("Prefixes", corpus, internal)
        models = [Model(raw, when) for raw, when in zip(corpus, internal)]
        self.assertEqual(models[1].subject, models[5].subject)  # a real tie ("PREFIX12" twice)
        for criteria in ("SUBJECT", "REVERSE SUBJECT", "SUBJECT REVERSE DATE", "REVERSE SUBJECT SIZE", "FROM",
                         "REVERSE FROM", "FROM REVERSE ARRIVAL"):
            with self.subTest(criteria=criteria):
                self.assertEqual(self.sort(criteria, "ALL"), expected_order(models, criteria))

    def test_sort_keys_kept_between_sorts(self):
        """The process keeps sort keys per UID and UIDVALIDITY: repeated and mixed criteria,
        messages added and expunged, and a folder deleted and created again under the same
        name (new UIDVALIDITY, the same UIDs for other messages) must all sort as the model."""
        def corpus(tag):
            subjects = [f"{tag} {w}" for w in ("kiwi", "apple", "mango", "banana", "cherry")]
            return [message(subj, f"{w}@x.test", "to@x.test", None, f"Sun, {d:02d} Mar 2026 12:00:00 +0000")
                    for subj, w, d in zip(subjects, ("eve", "bob", "dan", "amy", "cat"), (4, 2, 5, 1, 3))]
        internal = [T0 + 10 * i for i in range(5)]
        first = corpus("one")
        self.fill("Kept", first, internal, expunge_first=False)
        models = [Model(raw, when) for raw, when in zip(first, internal)]
        for rnd in range(2):
            for criteria in ("DATE", "SUBJECT DATE", "FROM", "REVERSE SUBJECT", "DISPLAYFROM"):
                with self.subTest(round=rnd, criteria=criteria):
                    self.assertEqual(self.sort(criteria, "ALL"), expected_order(models, criteria))
        # One more message and one expunged: the new one's keys are read, the rest kept.
        extra = message("one aardvark", "zed@x.test", "to@x.test", None, "Sun, 08 Mar 2026 12:00:00 +0000")
        self.assertEqual(self.m.append("Kept", None, imaplib.Time2Internaldate(T0 + 90), extra)[0], "OK")
        self.m.store("2", "+FLAGS", "(\\Deleted)")
        self.m.expunge()
        self.m.noop()
        models = [models[0]] + models[2:] + [Model(extra, T0 + 90)]
        for criteria in ("SUBJECT", "DATE", "REVERSE FROM"):
            with self.subTest(after_changes=criteria):
                self.assertEqual(self.sort(criteria, "ALL"), expected_order(models, criteria))
        # The order just sorted answers SORTs of fewer messages (a search; after an expunge,
        # sequence numbers shifted) without sorting again; they must still agree.
        uids = [1, 3, 4, 5, 6]
        for criteria in ("DATE", "REVERSE FROM"):
            with self.subTest(subset=criteria):
                self.assertEqual(self.sort(criteria, "OR", "FROM", "eve", "FROM", "zed"),
                                 expected_order(models, criteria, subset=[1, 5]))
        self.m.store("1", "+FLAGS", "(\\Deleted)")
        self.m.expunge()
        models, uids = models[1:], uids[1:]
        for criteria in ("DATE", "REVERSE FROM", "SUBJECT"):
            with self.subTest(after_expunge=criteria):
                want = expected_order(models, criteria)
                self.assertEqual(self.sort(criteria, "ALL"), want)
                self.assertEqual(self.sort(criteria, "ALL", uid=True), [uids[i - 1] for i in want])
        # UIDs far apart (nine appended and expunged between): the kept order is matched to
        # the hits by search, not by a table over their UID range.
        for _ in range(9):
            self.m.append("Kept", "(\\Deleted)", None, b"Subject: gone\r\n\r\nx\r\n")
        self.m.expunge()
        late = message("one yew", "yak@x.test", "to@x.test", None, "Sun, 09 Mar 2026 12:00:00 +0000")
        self.assertEqual(self.m.append("Kept", None, imaplib.Time2Internaldate(T0 + 95), late)[0], "OK")
        self.m.noop()
        models, uids = models + [Model(late, T0 + 95)], uids + [16]
        for criteria in ("DATE", "REVERSE SUBJECT"):
            with self.subTest(sparse=criteria):
                self.assertEqual(self.sort(criteria, "ALL"), expected_order(models, criteria))
                want = expected_order(models, criteria, subset=[1, 5])
                self.assertEqual(self.sort(criteria, "OR", "FROM", "dan", "FROM", "yak", uid=True),
                                 [uids[i - 1] for i in want])
        # The same name again, other messages under the same UIDs.
        self.assertEqual(self.m.select("INBOX")[0], "OK")
        self.assertEqual(self.m.delete("Kept")[0], "OK")
        second = list(reversed(corpus("two")))
        self.fill("Kept", second, internal, expunge_first=False)
        models = [Model(raw, when) for raw, when in zip(second, internal)]
        for criteria in ("SUBJECT", "DATE", "FROM", "DISPLAYFROM"):
            with self.subTest(recreated=criteria):
                self.assertEqual(self.sort(criteria, "ALL"), expected_order(models, criteria))

    def test_sort_order_kept_in_the_index(self):
        """A SORT's UID order is kept in the folder's index for every process: a restarted
        daemon (cold caches) answers from it as the model does; an order of another uidlist
        generation, or one that is not a permutation of the UIDs, is not used."""
        import sqlite3
        import struct
        self.fill("INBOX", CORPUS[:5], INTERNAL[:5])
        models = [Model(raw, when) for raw, when in zip(CORPUS[:5], INTERNAL[:5])]
        want = expected_order(models, "SUBJECT")
        uid_of = uid_map(self.m)
        self.assertEqual(self.sort("SUBJECT", "ALL"), want)
        maildir = self.inst.maildir("alice@example.test")
        with open(os.path.join(maildir, "dovecot-uidlist")) as f:
            guid = re.search(r" G(\w+)", f.readline()).group(1)
        index = os.path.join(maildir, "postern-index.sqlite")

        def stored():
            with sqlite3.connect(index) as db:
                return db.execute("SELECT generation, uids FROM sort_order WHERE criteria = ?",
                                  (b"1 SUBJECT",)).fetchone()
        generation, blob = stored()
        self.assertEqual(generation, guid)
        self.assertEqual(list(struct.unpack(f"={len(blob) // 4}I", blob)), [uid_of[s] for s in want])

        def restart_and_sort(row):
            self.m.logout()
            self.inst.stop("postern-imapd")
            if row is not None:
                with sqlite3.connect(index) as db:
                    db.execute("UPDATE sort_order SET generation = ?, uids = ? WHERE criteria = ?",
                               (row[0], row[1], b"1 SUBJECT"))
            self.inst.start("postern-imapd")
            self.imaps = self.inst.port("postern-imapd", "imaps")  # (a new port each start)
            self.m = imaplib.IMAP4_SSL("127.0.0.1", self.imaps, ssl_context=self.ctx, timeout=30)
            self.m.login("alice@example.test", "alice-password-1")
            self.m.select("INBOX")
            self.assertEqual(self.sort("SUBJECT", "ALL"), want)
            self.assertEqual(self.sort("SUBJECT", "ALL", uid=True), [uid_of[s] for s in want])

        wrong = [uid_of[s] for s in reversed(want)]
        tampered = {
            "kept": None,
            "another generation": ("0" * 32, struct.pack(f"={len(wrong)}I", *wrong)),
            "a UID twice, one missing": (guid, struct.pack(f"={len(wrong)}I", *([wrong[0]] + wrong[:-1]))),
            "cut short": (guid, struct.pack(f"={len(wrong)}I", *wrong)[:-2]),
        }
        for case, row in tampered.items():
            with self.subTest(case=case):
                restart_and_sort(row)

    def test_sort_errors(self):
        self.fill("INBOX", CORPUS[:2], INTERNAL[:2], expunge_first=False)
        typ, data = self.m._simple_command("SORT", "(DATE)", "ISO-2022-JP", "ALL")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[BADCHARSET", data[0])
        for args in (("(BOGUS)", "UTF-8", "ALL"), ("(DATE)", "ALL"), ("DATE", "UTF-8", "ALL"), ("(DATE)", "UTF-8", "NOSUCHKEY")):
            with self.subTest(args=args), self.assertRaises(imaplib.IMAP4.error):
                self.m._simple_command("SORT", *args)

    def test_thread(self):
        def conv(mid, subject, minute, refs=None, irt=None):
            extra = f"Message-ID: <{mid}@example.test>\r\n"
            if refs:
                extra += "References: " + " ".join(f"<{r}@example.test>" for r in refs) + "\r\n"
            if irt:
                extra += f"In-Reply-To: <{irt}@example.test>\r\n"
            return message(subject, "p@example.test", "q@example.test", None, f"Fri, 06 Mar 2026 {9 + minute // 60:02d}:{minute % 60:02d}:00 +0000",
                           extra=extra)

        msgs = [
            conv("root", "Plans for Friday", 60),                                   # 1
            conv("r1", "Re: Plans for Friday", 65, refs=["root"]),                  # 2
            conv("r2", "Re: Plans for Friday", 80, irt="r1"),                       # 3: In-Reply-To only
            conv("lunch", "Lunch?", 70),                                            # 4
            conv("r3", "Re: Plans for Friday", 90, refs=["root", "deleted"]),       # 5: missing parent in between
            conv("r4", "Re: Lunch?", 75),                                           # 6: no references: subject merge
            conv("list", "[list] Plans for Friday", 0),                             # 7: same subject, not a reply
        ]
        self.fill("Conv", msgs, [T0 + i for i in range(len(msgs))])
        typ, data = self.m.thread("REFERENCES", "UTF-8", "ALL")
        self.assertEqual(typ, "OK")
        # 7 and 1 share a base subject and neither is a reply: a dummy holds both.
        self.assertEqual(data[0], b"((7)(1 (2 3)(5)))(4 6)")
        typ, data = self.m.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
        self.assertEqual(data[0], b"(7 (1)(2)(3)(5))(4 6)")
        typ, data = self.m.thread("REFERENCES", "UTF-8", "SUBJECT", "lunch")
        self.assertEqual(data[0], b"(4 6)")
        uids = uid_map(self.m)
        typ, data = self.m.uid("THREAD", "REFERENCES", "UTF-8", "ALL")
        self.assertEqual(typ, "OK")
        as_uids = re.sub(rb"\d+", lambda mm: str(uids[int(mm.group())]).encode(), b"((7)(1 (2 3)(5)))(4 6)")
        self.assertEqual(data[0], as_uids)
        self.assertNotEqual(as_uids, b"((7)(1 (2 3)(5)))(4 6)")
        # Nothing matches: a bare THREAD response.
        typ, data = self.m.thread("REFERENCES", "UTF-8", "SUBJECT", "absent")
        self.assertEqual((typ, data), ("OK", [b""]))
        with self.assertRaises(imaplib.IMAP4.error):
            self.m.thread("NOSUCHALGORITHM", "UTF-8", "ALL")

    def test_binary_fetch(self):
        payload = os.urandom(3000) + b"\x00\xff\x00"
        b64 = __import__("base64").encodebytes(payload).replace(b"\n", b"\r\n")
        raw = (b"From: a@example.test\r\nSubject: attachment\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\n"
               b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
               b"Gr=C3=BC=C3=9Fe, long line=\r\n joined\r\n--XX\r\n"
               b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64 +
               b"--XX\r\nContent-Type: application/x-old\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 f\r\n--XX--\r\n")
        self.fill("INBOX", [raw], [T0], expunge_first=False)
        typ, data = self.m.fetch("1", "(BINARY.PEEK[2] BINARY.SIZE[2] BINARY.SIZE[1])")
        self.assertEqual(typ, "OK")
        head, body = data[0]
        self.assertEqual(body, payload)
        self.assertTrue(head.endswith(b"BINARY[2] ~{%d}" % len(payload)), head)  # NUL inside: literal8
        self.assertIn(b"BINARY.SIZE[2] %d" % len(payload), data[1])
        text = "Grüße, long line joined".encode()
        self.assertIn(b"BINARY.SIZE[1] %d" % len(text), data[1])
        # A partial range of the decoded bytes; no NUL in it here -> a normal literal.
        start = payload.index(b"\x00") + 1
        while b"\x00" in payload[start:start + 16]:
            start += payload[start:start + 16].index(b"\x00") + 1
        typ, data = self.m.fetch("1", f"(BINARY.PEEK[2]<{start}.16>)")
        self.assertEqual(data[0][1], payload[start:start + 16])
        self.assertTrue(data[0][0].endswith(b"BINARY[2]<%d> {16}" % start), data[0][0])
        # PEEK kept \Seen off; BINARY sets it.
        self.assertEqual(self.m.search(None, "UNSEEN")[1], [b"1"])
        typ, data = self.m.fetch("1", "(BINARY[1])")
        self.assertEqual(data[0][1], text)
        self.assertIn(b"\\Seen", b"".join(p if isinstance(p, bytes) else p[0] for p in data))
        self.assertEqual(self.m.search(None, "SEEN")[1], [b"1"])
        # An encoding the server cannot undo.
        typ, data = self.m._simple_command("FETCH", "1", "(BINARY.PEEK[3])")
        self.assertEqual(typ, "NO")
        self.assertTrue(data[-1].startswith(b"[UNKNOWN-CTE]"), data)
        typ, data = self.m._simple_command("FETCH", "1", "(BINARY.SIZE[3])")
        self.assertEqual(typ, "NO")
        # A part that does not exist, and a section BINARY does not have.
        typ, data = self.m.fetch("1", "(BINARY.PEEK[7])")
        self.assertIn(b"BINARY[7] NIL", data[0])
        with self.assertRaises(imaplib.IMAP4.error):
            self.m.fetch("1", "(BINARY[1.MIME])")

    def test_append_literal8(self):
        # APPEND with a literal8 (~{n}) carrying a NUL; BINARY sends it back as literal8.
        raw = b"Subject: bin\r\nContent-Transfer-Encoding: binary\r\n\r\nab\x00cd"
        s = self.ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.imaps), timeout=10))
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"a1 LOGIN alice@example.test alice-password-1\r\n")
        self.assertTrue(f.readline().startswith(b"a1 OK"))
        s.sendall(b"a2 APPEND INBOX ~{%d}\r\n" % len(raw))
        self.assertTrue(f.readline().startswith(b"+"))
        s.sendall(raw + b"\r\n")
        self.assertRegex(f.readline(), rb"^a2 OK \[APPENDUID \d+ 1\]")
        s.sendall(b"a3 EXAMINE INBOX\r\n")
        while not f.readline().startswith(b"a3 "):
            pass
        s.sendall(b"a4 FETCH 1 (BINARY[1] BINARY.SIZE[1])\r\n")
        self.assertEqual(f.readline(), b"* 1 FETCH (BINARY[1] ~{5}\r\n")
        self.assertEqual(f.read(5), b"ab\x00cd")
        self.assertEqual(f.readline(), b" BINARY.SIZE[1] 5)\r\n")
        self.assertTrue(f.readline().startswith(b"a4 OK"))
        s.sendall(b"a5 LOGOUT\r\n")
        s.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
