#!/usr/bin/env bash
# The test command: installs what the tests need, then runs lint, types and the whole pytest suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
.venv/bin/ruff check bot handlers sandbox tests
.venv/bin/ruff format --check bot handlers sandbox tests
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
