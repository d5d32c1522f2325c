#!/usr/bin/env bash
# The test command: installs what the tests need, then runs lint, types and the whole pytest suite.
# Needs Python >= 3.11, redis-server (the Redis tests start one) and kubectl (the deploy tests render the
# Kubernetes manifests); run as root on Debian/Ubuntu it installs the last two with apt-get when missing.
# Chromium is optional: the browser tests are skipped without /usr/bin/chromium (CI installs it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh" dev
cd "$ROOT"
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v kubectl >/dev/null || missing+=(kubernetes-client) # Debian's package of kubectl
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "== installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "threadline: the tests need ${missing[*]} on PATH (redis-server: the Redis tests;" \
            "kubectl: the Kubernetes manifests' tests); install them (Debian/Ubuntu:" \
            "sudo apt-get install ${missing[*]}) and run scripts/test.sh again" >&2
        exit 1
    fi
fi
# pytest keeps its rewritten test modules in __pycache__ (each xdist worker collects the whole suite):
# an environment that turns bytecode caching off would recompile them in every worker.
unset PYTHONDONTWRITEBYTECODE
# On a fresh clone the six workers would each rewrite and compile every test module (and the bot's)
# at once: one collection writes them first, on the core mypy leaves idle. Its errors, if any, are
# the run's below.
timeout 300 .venv/bin/python -m pytest --collect-only -q -p no:cacheprovider >/dev/null 2>&1 &
collecting=$!
trap 'kill "$collecting" 2>/dev/null || true' EXIT # lint or types failed: it is not left running
.venv/bin/ruff check bot handlers sandbox tests
.venv/bin/ruff format --check bot handlers sandbox tests
.venv/bin/mypy
wait "$collecting" || true
# Six processes (pytest-xdist): most of the suite's time is spent waiting for subprocesses, servers and
# paced answers, so six workers keep two cores busy (tests/conftest.py hands the slow tests out first and
# keeps the browser tests in one worker). Arguments come after and override: -n 0 runs the suite in this
# process.
exec .venv/bin/python -m pytest -n 6 "$@"
