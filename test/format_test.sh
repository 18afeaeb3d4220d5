#!/bin/bash
# Every C source and header tracked by git is formatted as .clang-format says
# (make format rewrites them so).
set -u
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "   clang-format missing (make deps)"; exit 1; }
bad=$(git ls-files '*.c' '*.h' | while read -r f; do
    clang-format "$f" | cmp -s - "$f" || echo "$f"
done)
if [ -n "$bad" ]; then
    echo "   not formatted (run make format):"; echo "$bad" | sed 's/^/     /'
    exit 1
fi
echo "   $(git ls-files '*.c' '*.h' | wc -l) files formatted as .clang-format says"
