#!/usr/bin/env bash
# The run command: installs what the bot needs (the runtime only, at the versions of constraints.txt; no
# test or lint tools), then starts it (reads .env if present). Without Slack credentials (no
# SLACK_BOT_TOKEN in the environment or .env) it starts the offline sandbox instead: a local Slack-like
# workspace in the browser, with the real bot in it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh" runtime
cd "$ROOT"
if [ $# -eq 0 ] && ! .venv/bin/python -c \
    'import sys; from bot.settings import environment; from sandbox.runner import slack_configured; sys.exit(0 if slack_configured(environment()) else 1)'; then
    echo "threadline: no SLACK_BOT_TOKEN configured (environment or .env): starting the offline sandbox" >&2
    exec .venv/bin/python -m bot sandbox
fi
exec .venv/bin/python -m bot "$@"
