#!/usr/bin/env python3
"""tests/style/check_function_length.py — no product function is longer than LIMIT lines
unless the comment right before it says why (issue 22: "no function in the product is longer
than ~80 lines without a comment saying why").

Scans the production sources (appliance/, daemons/, wizard/, firewall/; .cpp and .h). Comments,
string and character literals are blanked first, so braces inside them do not count. A function
is a top-level `{ ... }` block (at namespace scope or directly inside a class body) whose head,
the text since the previous `;`, `}` or `{`, has a parameter list and is not a class, enum or
initializer. Its length is the number of lines from the line of the head's first token to the
closing brace. Lambdas and local classes count as part of the function that holds them.

A function over LIMIT lines passes only if the comment block directly above its head contains
the words "long because" (for example "// Long because it is the one table of ..."), so the
reason is written where the next reader needs it. Prints every offender as
`path:line: name (N lines)` and exits 1 if there is any. --list prints all functions over the
limit, with or without a reason.
Run: python3 tests/style/check_function_length.py   (the ctest test `function_length`).
"""

import os
import re
import subprocess
import sys

LIMIT = 80
ROOT = os.environ.get("POSTERN_SOURCE_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
ROOT = os.path.abspath(ROOT)
FOLDERS = ("appliance", "daemons", "wizard", "firewall")
REASON = re.compile(r"long\s+because", re.IGNORECASE)


def blank_literals(text):
    """Returns (code, comments): code with comments and literals replaced by spaces (newlines
    kept, so line numbers stay), and a per-line flag of lines that hold a comment."""
    out = []
    comment_lines = set()
    i, n, line = 0, len(text), 0
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            comment_lines.add(line)
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            chunk = text[i:j]
            for k in range(chunk.count("\n") + 1):
                comment_lines.add(line + k)
            line += chunk.count("\n")
            out.append(re.sub(r"[^\n]", " ", chunk))
            i = j
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^(\s]{0,16})\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = ")" + m.group(1) + '"'
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            chunk = text[i:j]
            line += chunk.count("\n")
            out.append(re.sub(r"[^\n]", " ", chunk))
            i = j
        elif c in "\"'":
            # A digit separator (1'000) is not a character literal.
            if c == "'" and i > 0 and text[i - 1].isalnum() and i + 1 < n and text[i + 1].isalnum():
                out.append(" ")
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(" " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out), comment_lines


HEAD_NOT_FUNCTION = re.compile(r"\b(namespace|class|struct|union|enum)\b|=\s*$|\[\]\s*$|^\s*extern\s*$")
SCOPE_HEAD = re.compile(r"\b(namespace|class|struct|union)\b|^\s*extern\s*$")


def functions(code):
    """Yields (head_start_offset, body_open_offset, body_close_offset, head_text)."""
    i, n = 0, len(code)
    head_start = 0
    # Stack of scopes: True where the brace opened a namespace or class body (we look inside).
    while i < n:
        c = code[i]
        if c in ";}":
            head_start = i + 1
            i += 1
            continue
        if c == "{":
            head = code[head_start:i]
            stripped = head.strip()
            if SCOPE_HEAD.search(stripped) and "(" not in re.sub(r"\b(alignas|__attribute__)\s*\(.*?\)", "", stripped):
                head_start = i + 1  # look inside the scope
                i += 1
                continue
            close = matching_brace(code, i)
            if "(" in stripped and not HEAD_NOT_FUNCTION.search(stripped):
                yield head_start, i, close, stripped
            head_start = close + 1
            i = close + 1
            continue
        i += 1


def matching_brace(code, open_at):
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code) - 1


def name_of(head):
    head = re.sub(r"\s+", " ", head)
    m = re.search(r"([~\w:]+(?:operator\s*\S+)?)\s*\(", head)
    return m.group(1) if m else head[:60]


def check_file(path, rel, show_all):
    text = open(path, encoding="utf-8", errors="replace").read()
    code, comment_lines = blank_literals(text)
    lines = text.split("\n")
    found = []
    for head_start, _open, close, head in functions(code):
        # The head's first token (skip the blank lines and blanked comments before it).
        k = head_start
        while k < close and code[k].isspace():
            k += 1
        first = code.count("\n", 0, k)
        last = code.count("\n", 0, close)
        length = last - first + 1
        if length <= LIMIT:
            continue
        # The comment block right above the head (template<> lines are part of the head).
        above = []
        ln = first - 1
        while ln >= 0 and ln in comment_lines:
            above.append(lines[ln])
            ln -= 1
        reason = bool(REASON.search(" ".join(reversed(above))))
        if show_all or not reason:
            found.append((rel, first + 1, name_of(head), length, reason))
    return found


def product_files():
    try:
        out = subprocess.run(["git", "-C", ROOT, "ls-files", *FOLDERS], capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        out = []
        for folder in FOLDERS:
            for base, _dirs, names in os.walk(os.path.join(ROOT, folder)):
                out += [os.path.relpath(os.path.join(base, x), ROOT) for x in names]
    return sorted(f for f in out if f.endswith((".cpp", ".h")))


def main():
    show_all = "--list" in sys.argv[1:]
    found = []
    for rel in product_files():
        path = os.path.join(ROOT, rel)
        if os.path.isfile(path):
            found += check_file(path, rel, show_all)
    found.sort(key=lambda r: -r[3])
    for rel, line, name, length, reason in found:
        print(f"{rel}:{line}: {name} ({length} lines){' [reason given]' if reason else ''}")
    offenders = [r for r in found if not r[4]]
    if show_all:
        print(f"{len(found)} functions over {LIMIT} lines, {len(offenders)} without a reason")
        return 0
    if offenders:
        print(f"{len(offenders)} functions are longer than {LIMIT} lines without a comment saying why "
              f"('long because ...' right above the function): split them or say why.")
        return 1
    print(f"function_length: every function over {LIMIT} lines says why")
    return 0


if __name__ == "__main__":
    sys.exit(main())
