#!/usr/bin/env bash
# The run command: installs what the bot needs, then starts it (reads .env if present).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec .venv/bin/python -m bot "$@"
