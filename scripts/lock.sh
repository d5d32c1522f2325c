#!/usr/bin/env bash
# Regenerates the lock: constraints.txt pins every package `pip install .` brings (the runtime, what the
# image and scripts/run.sh install), constraints-dev.txt pins what the dev extra adds on top (what
# scripts/test.sh and CI install). Each is `pip freeze` of a fresh venv. Run it to upgrade the
# dependencies, then run scripts/test.sh (which reinstalls .venv from the new lock) and commit both files.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" -m venv "$WORK/runtime"
"$WORK/runtime/bin/python" -m pip install --quiet --upgrade pip
"$WORK/runtime/bin/python" -m pip install --quiet .
{
    echo "# The runtime lock: pip freeze of a fresh venv after \`pip install .\` (scripts/lock.sh writes it)."
    echo "# Used by scripts/run.sh, scripts/bootstrap.sh, the Dockerfile and tests/process/test_deploy.py."
    "$WORK/runtime/bin/python" -m pip freeze --exclude threadline | LC_ALL=C sort -f
} >constraints.txt

"$PYTHON" -m venv "$WORK/dev"
"$WORK/dev/bin/python" -m pip install --quiet --upgrade pip
"$WORK/dev/bin/python" -m pip install --quiet -c constraints.txt ".[dev]"
{
    echo "# The dev lock: what the dev extra adds to constraints.txt, pip freeze of a fresh venv after"
    echo "# \`pip install -c constraints.txt .[dev]\` (scripts/lock.sh writes it). Used with constraints.txt"
    echo "# by scripts/bootstrap.sh (scripts/test.sh, CI)."
    "$WORK/dev/bin/python" -m pip freeze --exclude threadline | LC_ALL=C sort -f \
        | grep -vxF -f <(grep -v '^#' constraints.txt)
} >constraints-dev.txt
echo "lock: $(grep -vc '^#' constraints.txt) runtime and $(grep -vc '^#' constraints-dev.txt) dev pins written"
