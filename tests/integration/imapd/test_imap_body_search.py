"""postern-imapd SEARCH BODY and TEXT with Python's imaplib over TLS, and the text part
spans the server keeps per message (the folder index's `textparts` table).

Expected answers come from this file's own model: Python's email package decodes every
text leaf part (multipart and message/rfc822 walked), the model lower-cases the joined
text and, for TEXT, the decoded header values of the top-level header. The same searches
are asked three times: first (each file read and parsed, its spans kept), again (spans in
the process), after a restart (spans read from the index); then with damaged index rows
(the server must parse the file again and mend the row), and with a row that is valid but
points elsewhere (it must be what the server reads: the spans are really used)."""

import email
import email.header
import email.policy
import imaplib
import os
import sqlite3
import struct
import unittest

from postern_testlib import Instance

ATTACHMENT = b"zebra crossing " * 400  # only in a non-text part: never matched


def mixed(subject, text, html=None, attachment=False, inner=None, charset="utf-8", cte="7bit"):
    parts = [(f"text/plain; charset={charset}", cte, text)]
    if html:
        parts.append(("text/html; charset=utf-8", "quoted-printable", html))
    if attachment:
        import base64
        parts.append(("application/octet-stream", "base64", base64.encodebytes(ATTACHMENT)))
    if inner:
        parts.append(("message/rfc822", "7bit", inner))
    out = [b"From: Sender <sender@example.test>", b"To: alice@example.test", b"Subject: " + subject,
           b"MIME-Version: 1.0", b"Content-Type: multipart/mixed; boundary=\"==b==\"", b""]
    for ctype, enc, body in parts:
        out += [b"--==b==", b"Content-Type: " + ctype.encode(), b"Content-Transfer-Encoding: " + enc.encode(), b"",
                body.rstrip(b"\r\n")]
    out += [b"--==b==--", b""]
    return b"\r\n".join(out)


CORPUS = [
    mixed(b"plain words", b"Meeting about the budget on Friday."),
    mixed(b"with attachment", b"Please find the invoice attached.", attachment=True),
    mixed(b"quoted printable", b"Caf=C3=A9 budget review =\r\nINVOICE", cte="quoted-printable"),
    mixed(b"latin one", b"Gr\xfc\xdfe vom Caf\xe9, invoice follows", charset="iso-8859-1", cte="8bit"),
    mixed(b"base64 text", b"VGhlIHF1YXJ0ZXJseSBSZXBvcnQgaXMgcmVhZHk=", cte="base64"),
    mixed(b"nested", b"See the forwarded note.", html=b"<p>Budget =E2=82=AC</p>",
          inner=b"Subject: inner subject\r\n\r\nThe inner text mentions a Zeppelin.\r\n"),
    mixed(b"=?utf-8?q?Encoded_subject_Zeppelin?=", b"nothing much here", attachment=True),
    b"Subject: single part\r\nFrom: x@example.test\r\n\r\nA plain message without MIME, budget included.\r\n",
]
NEEDLES = ["budget", "INVOICE", "zebra", "zeppelin", "café", "grüße", "quarterly report", "inner subject",
           "encoded subject", "nothing", "sender", "friday.", "€"]


def decode_header(raw):
    return str(email.header.make_header(email.header.decode_header(raw)))


def model_texts(raw):
    """(body text, header text) lower-cased, as RFC 9051 6.4.4 BODY and TEXT search them."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    texts = []

    def walk(part):
        if part.is_multipart():
            for p in part.get_payload():
                walk(p)
        elif part.get_content_type() == "message/rfc822":
            walk(part.get_payload()[0])
        elif part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            texts.append(payload.decode(part.get_content_charset() or "utf-8", errors="replace"))
    walk(msg)
    headers = [decode_header(v).lower() for _, v in msg.items()]
    return "\n".join(texts).lower(), headers


def model_search(kind, needle):
    hits = []
    for seq, raw in enumerate(CORPUS, 1):
        body, headers = model_texts(raw)
        if needle.lower() in body or (kind == "TEXT" and any(needle.lower() in h for h in headers)):
            hits.append(seq)
    return hits


def spans_row(*spans):
    """A textparts value as the server writes it (imap_body_search.h: encodeTextParts)."""
    out = b"TP1"
    for start, end, encoding, charset in spans:
        out += struct.pack("<QQB", start, end, len(encoding)) + encoding + struct.pack("<H", len(charset)) + charset
    return out


class ImapBodySearch(unittest.TestCase):
    def setUp(self):
        self.inst = Instance(users={"alice@example.test": "alice-password-1"})
        self.inst.start("postern-imapd")
        self.ctx = self.inst.client_tls_context()
        self.login()
        for raw in CORPUS:
            self.assertEqual(self.m.append("INBOX", None, None, raw)[0], "OK")
        self.m.select("INBOX")
        self.index = os.path.join(self.inst.maildir("alice@example.test"), "postern-index.sqlite")

    def tearDown(self):
        try:
            self.m.logout()
        finally:
            self.inst.close()

    def login(self):
        port = self.inst.port("postern-imapd", "imaps")  # (a new port each start)
        self.m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=self.ctx, timeout=30)
        self.m.login("alice@example.test", "alice-password-1")

    def restart(self):
        self.m.logout()
        self.inst.stop("postern-imapd")
        self.inst.start("postern-imapd")
        self.login()
        self.m.select("INBOX")

    def search(self, kind, needle):
        self.m.literal = needle.encode()  # (sent as a literal: spaces and 8-bit bytes)
        typ, data = self.m.search("UTF-8", kind)
        self.assertEqual(typ, "OK")
        return [int(x) for x in data[0].split()]

    def check_all(self, label):
        for kind in ("BODY", "TEXT"):
            for needle in NEEDLES:
                with self.subTest(when=label, kind=kind, needle=needle):
                    self.assertEqual(self.search(kind, needle), model_search(kind, needle))

    def rows(self):
        with sqlite3.connect(self.index) as db:
            return dict(db.execute("SELECT uid, spans FROM textparts"))

    def test_searches_match_the_model_with_and_without_kept_spans(self):
        # The model must discriminate, or agreeing with it proves little.
        self.assertEqual(model_search("BODY", "zebra"), [])
        self.assertNotEqual(model_search("BODY", "zeppelin"), model_search("TEXT", "zeppelin"))
        self.assertEqual(len(model_search("BODY", "budget")), 4)
        self.assertEqual(self.rows(), {})  # nothing kept before a body search
        self.check_all("first")
        kept = self.rows()
        self.assertEqual(len(kept), len(CORPUS))
        self.assertTrue(all(v and v.startswith(b"TP1") for v in kept.values()), kept)
        self.check_all("spans in the process")
        self.restart()
        self.check_all("spans from the index")
        self.assertEqual(self.rows(), kept)

    def test_damaged_rows_are_parsed_again_and_mended(self):
        self.check_all("first")
        kept = self.rows()
        uids = sorted(kept)
        with open(self.m_path(uids[1]), "rb") as f:
            size = len(f.read())
        damaged = {
            uids[0]: b"garbage",
            uids[1]: spans_row((0, size + 1, b"7bit", b"utf-8")),  # past the file's end
            uids[2]: kept[uids[2]][:-3],  # cut short
            uids[3]: spans_row((50, 40, b"7bit", b"utf-8")),  # ends before it starts
        }
        self.m.logout()
        self.inst.stop("postern-imapd")
        with sqlite3.connect(self.index) as db:
            for uid, value in damaged.items():
                db.execute("UPDATE textparts SET spans = ? WHERE uid = ?", (value, uid))
        self.inst.start("postern-imapd")
        self.login()
        self.m.select("INBOX")
        self.check_all("damaged rows")
        self.assertEqual(self.rows(), kept)  # parsed again, and kept as before

    def test_kept_spans_are_what_is_read(self):
        """A row that is well formed but points at the top-level header instead of the body:
        BODY then finds the header's words in that message. Proves the spans are read, and
        only for their UID: a copy of the message (a new UID) is parsed on its own."""
        self.check_all("first")
        uid = sorted(self.rows())[0]
        with open(self.m_path(uid), "rb") as f:
            header_end = f.read().index(b"\r\n\r\n")
        self.assertEqual(self.search("BODY", "plain words"), [])
        self.m.logout()
        self.inst.stop("postern-imapd")
        with sqlite3.connect(self.index) as db:
            db.execute("UPDATE textparts SET spans = ? WHERE uid = ?", (spans_row((0, header_end, b"7bit", b"us-ascii")), uid))
        self.inst.start("postern-imapd")
        self.login()
        self.m.select("INBOX")
        self.assertEqual(self.search("BODY", "plain words"), [1])
        self.assertEqual(self.search("BODY", "budget"), [m for m in model_search("BODY", "budget") if m != 1])
        typ, _ = self.m.copy("1", "INBOX")
        self.assertEqual(typ, "OK")
        self.assertEqual(self.search("BODY", "plain words"), [1])  # the copy (a new UID) is parsed: no match
        # Expunged: its row goes with it.
        self.m.store("1", "+FLAGS", "\\Deleted")
        self.m.expunge()
        self.assertNotIn(uid, self.rows())
        self.assertEqual(len(self.rows()), len(CORPUS))  # the copy's row came in its place

    def m_path(self, uid):
        """The file of UID `uid` (its base name is in the index)."""
        with sqlite3.connect(self.index) as db:
            base = db.execute("SELECT base FROM msg WHERE uid = ?", (uid,)).fetchone()[0]
        cur = os.path.join(self.inst.maildir("alice@example.test"), "cur")
        return os.path.join(cur, next(n for n in os.listdir(cur) if n.split(":")[0] == base))


if __name__ == "__main__":
    unittest.main(verbosity=2)
