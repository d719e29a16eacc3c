"""Runs every transcript file of a protocol (tests/transcripts/<protocol>/*.txt)
over TCP (and TLS where the file says so) against the real daemon.

usage: transcripts_runner.py PROGRAM DIR
Each file is one edge case; its name and first comment line say which."""

import glob
import os
import sys
import unittest

from postern_testlib import Instance, run_transcript_file

PROGRAM = sys.argv[1]
DIRECTORY = sys.argv[2]


class Transcripts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(users={"alice@example.test": "alice-password-1", "bob@example.test": "bob-password-2"})
        cls.inst.ctl("alias", "add", "team@example.test", "alice@example.test", "bob@example.test")
        cls.inst.start(PROGRAM)

    @classmethod
    def tearDownClass(cls):
        cls.inst.close()

    def test_all(self):
        files = sorted(glob.glob(os.path.join(DIRECTORY, "*.txt")))
        self.assertTrue(files, f"no transcripts in {DIRECTORY}")
        for path in files:
            with self.subTest(transcript=os.path.basename(path)):
                try:
                    run_transcript_file(path, self.inst, PROGRAM)
                except Exception as exc:  # show the daemon's side too
                    raise AssertionError(f"{os.path.basename(path)}: {exc}\n--- log tail ---\n{self.inst.log()[-3000:]}") from exc


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
