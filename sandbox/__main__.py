"""``python -m bot sandbox`` (also ``python -m sandbox``): try Threadline in a browser, without Slack."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from sandbox.runner import Sandbox, run

USAGE = (
    "sandbox [--port PORT] [--open]"  # in ``python -m bot``'s usage line (its entry point: pyproject.toml)
)
DESCRIPTION = (
    "Start a local Slack-like workspace with the real bot in it, and print the address of its page. "
    "Uses the model configured by OPENAI_API_KEY / OPENAI_BASE_URL (environment or .env), else a "
    "built-in demo model."
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot sandbox", description=DESCRIPTION)
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="the page's port (default: $PORT or 3000, else the next free one)",
    )
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[sandbox] %(message)s", stream=sys.stdout)
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    try:
        return asyncio.run(run(Sandbox(port=args.port), open_browser=args.open))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
