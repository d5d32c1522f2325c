#!/usr/bin/env bash
# Creates .venv (once) and installs the project into it, editable, with the versions of the lock:
#   source scripts/bootstrap.sh [dev|runtime]
# dev (the default; scripts/test.sh, CI): the runtime plus the dev tools, pinned by constraints.txt and
# constraints-dev.txt. runtime (scripts/run.sh): what `pip install .` brings, pinned by constraints.txt.
# Reinstalls when pyproject.toml or a lock file changes. Sourced by run.sh/test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
BOOTSTRAP_WHAT="${1:-dev}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "threadline: needs Python >= 3.11 as $PYTHON (set PYTHON=/path/to/python3.11 to choose one)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
LOCK_HASH=$(cat pyproject.toml constraints.txt constraints-dev.txt | sha1sum | cut -c1-12)
case "$BOOTSTRAP_WHAT" in
    dev) BOOTSTRAP_SPEC=".[dev]"; BOOTSTRAP_LOCK=(-c constraints.txt -c constraints-dev.txt) ;;
    runtime) BOOTSTRAP_SPEC="."; BOOTSTRAP_LOCK=(-c constraints.txt) ;;
    *) echo "usage: source scripts/bootstrap.sh [dev|runtime]" >&2; exit 2 ;;
esac
# The dev install contains the runtime one, so a current dev stamp satisfies both.
if [ ! -f ".venv/.installed-$BOOTSTRAP_WHAT-$LOCK_HASH" ] && [ ! -f ".venv/.installed-dev-$LOCK_HASH" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet "${BOOTSTRAP_LOCK[@]}" -e "$BOOTSTRAP_SPEC"
    rm -f .venv/.installed-*
    touch ".venv/.installed-$BOOTSTRAP_WHAT-$LOCK_HASH"
fi
