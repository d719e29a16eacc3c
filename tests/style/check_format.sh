#!/bin/sh
# tests/style/check_format.sh — every C++ file in the repository is as clang-format (the
# repository's .clang-format) would write it. Prints the first differences and exits 1 otherwise.
# Fix with: git ls-files '*.cpp' '*.h' | xargs clang-format -i
set -eu
cd "${POSTERN_SOURCE_DIR:-$(dirname "$0")/../..}"
command -v clang-format >/dev/null || { echo "check_format.sh: clang-format missing (install-deps.sh test)" >&2; exit 1; }
files=$(git ls-files '*.cpp' '*.h')
[ -n "$files" ] || { echo "check_format.sh: no C++ files found (not a git checkout?)" >&2; exit 1; }
count=$(echo "$files" | wc -l)
if out=$(echo "$files" | xargs clang-format --dry-run -Werror 2>&1); then
    echo "check_format.sh: $count files formatted as .clang-format says"
else
    echo "$out" | head -60
    echo "check_format.sh: files differ from clang-format's output; run: git ls-files '*.cpp' '*.h' | xargs clang-format -i" >&2
    exit 1
fi
