"""The sandbox as a person uses it: ``python -m bot sandbox`` (the workspace, the demo model and the real
bot as a subprocess), driven through its page in headless Chromium.

Needs Debian's ``chromium`` and ``playwright``; outside CI the module is skipped when either is missing,
in CI (``CI=true``, where ``.ci/run`` installs chromium) it always runs. No sleeps: every wait is for a
condition on the page.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.demo_model import ANSWER_END, LONG_ANSWER_END
from sandbox.ports import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "sandbox.png"
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")

if not IN_CI and (not Path(CHROMIUM).exists() or importlib.util.find_spec("playwright") is None):
    pytest.skip(
        "needs Debian's chromium (apt-get install chromium) and playwright (pip install playwright)",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

DEMO_LABEL_TEXT = "Demo model — set OPENAI_API_KEY for real answers"


class SandboxProcess:
    """``python -m bot sandbox`` with its output collected (and shown when a test fails)."""

    def __init__(self, cwd: Path) -> None:
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "OPENAI_", "BOT_", "REDIS_")) and k != "PORT"
        }
        env = {
            **clean,
            "BOT_EDIT_INTERVAL_SECONDS": "0.4",  # several visible states per answer
            "BOT_RETRY_BASE_SECONDS": "0.05",
            # Two attempts: a flaky demo question is answered on its retry, a failing one fails both
            # (the sandbox tells the demo model how many the bot makes).
            "BOT_MAX_ATTEMPTS": "2",
            # These tests follow edited answers (mrkdwn, the Stop button, Retry); the page's native
            # streams are tested in test_sandbox_browser_streams.py.
            "BOT_TRANSPORT": "edit",
            # Two thirds of the demo model's visible pace (an answer in about 4 s instead of 6): progress
            # edits, paced by the workspace's edit budget (45 a minute), still show it growing, and a
            # long answer streams for seconds, time to press Stop.
            "SANDBOX_DEMO_WORD_SECONDS": "0.02",
        }
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "sandbox", "--port", str(free_port())],
            cwd=cwd,  # no .env of the developer's: the demo model answers
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        regex = re.compile(pattern)
        found: list[re.Match[str]] = []

        def seen() -> bool:
            found[:] = [m for line in self.lines if (m := regex.search(line))]
            return bool(found) or self.proc.poll() is not None

        with self._changed:
            self._changed.wait_for(seen, timeout)
        if not found:
            raise AssertionError(f"no line matching {pattern!r}; output:\n{self.output()}")
        return found[0]

    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


# One sandbox and one page for the module, whose tests follow on from each other: under pytest-xdist
# they run in one worker, in order (tests/conftest.py's pytest_xdist_make_scheduler).
@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxProcess, str]]:
    process = SandboxProcess(tmp_path_factory.mktemp("sandbox"))
    try:
        url = process.wait_for_line(r"Open (http://127\.0\.0\.1:\d+)").group(1)
        yield process, url
    finally:
        code = process.stop()
        print(process.output())
    assert code == 0, process.output()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page(sandbox: tuple[SandboxProcess, str], browser: Browser) -> Iterator[Page]:
    _, url = sandbox
    context = browser.new_context(viewport={"width": 1360, "height": 820})
    page = context.new_page()
    page.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)
    page.goto(url)
    expect(page.locator("#bot-status")).to_have_class(re.compile(r"\bready\b"))
    # Record every state the bot's messages show, and every state of each message's reactions, as the
    # page renders them.
    page.evaluate(
        """() => {
            window.__states = {};
            window.__reactions = {};
            const push = (store, key, value) => {
                const list = (store[key] = store[key] || []);
                if (list[list.length - 1] !== value) list.push(value);
            };
            const record = () => {
                for (const el of document.querySelectorAll('.msg.bot')) {
                    push(window.__states, el.dataset.key, el.querySelector('.body').innerText);
                }
                for (const el of document.querySelectorAll('.msg')) {
                    const key = el.dataset.key, shown = el.querySelector('.reactions').innerText.trim();
                    if (shown || window.__reactions[key]) push(window.__reactions, key, shown);
                }
            };
            new MutationObserver(record).observe(
                document.body, {subtree: true, childList: true, characterData: true});
        }"""
    )
    yield page
    context.close()


def states_of(page: Page, locator: Any) -> list[str]:
    key = locator.get_attribute("data-key")
    return list(page.evaluate("(key) => window.__states[key] || []", key))


def reactions_of(page: Page, locator: Any) -> list[str]:
    """Every state the message's reactions were shown in, e.g. ``["👀 1", "✅ 1"]``."""
    key = locator.get_attribute("data-key")
    return list(page.evaluate("(key) => window.__reactions[key] || []", key))


def send(page: Page, composer: str, text: str) -> None:
    box = page.locator(f"{composer} textarea")
    box.fill(text)
    box.press("Enter")


def test_mention_streams_into_the_thread(page: Page, tmp_path: Path) -> None:
    page.locator("nav button", has_text="general").click()
    send(page, "#composer", "Morning all! Trying the new bot")
    send(page, "#composer", "@Threadline how do I connect a real model?")
    mine = page.locator("#messages .msg", has_text="how do I connect a real model?")
    expect(mine.locator(".mention")).to_have_text("@Threadline")

    # The thread opens on the bot's placeholder, which grows until the answer is complete.
    answer = page.locator("#thread-messages .msg.bot").first
    expect(answer).to_be_visible()
    expect(answer.locator(".body")).to_contain_text(ANSWER_END)
    final = answer.locator(".body").inner_text()
    states = states_of(page, answer)
    assert states[0] == "Thinking…", states[:3]
    intermediate = [s for s in states[1:] if s != final]
    assert intermediate, states
    assert all(len(s) < len(final) for s in intermediate), states
    assert all("(Demo" in s for s in intermediate), states

    # mrkdwn is rendered: the label in italics, a numbered list, inline code and a code block.
    expect(answer.locator(".body i").first).to_contain_text(DEMO_LABEL_TEXT)
    expect(answer.locator(".body pre.code")).to_contain_text("export OPENAI_API_KEY")
    expect(answer.locator(".body code").first).to_be_visible()
    expect(answer.locator(".body")).to_contain_text("how do I connect a real model?")
    expect(mine.locator(".reply-count")).to_have_text("1 reply")

    # The other message was channel chatter: nothing answered it.
    chatter = page.locator("#messages .msg", has_text="Morning all!")
    expect(chatter.locator(".reply-count")).to_have_count(0)

    # The thread from its start (the question and the labelled answer). docs/sandbox.png, the README's
    # picture, is written when missing or with UPDATE_SCREENSHOTS=1 (so test runs leave the tree clean).
    page.evaluate("document.querySelector('#thread-messages').scrollTop = 0")
    update = os.environ.get("UPDATE_SCREENSHOTS") == "1" or not SCREENSHOT.exists()
    target = SCREENSHOT if update else tmp_path / SCREENSHOT.name
    target.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(target))
    assert target.stat().st_size > 10_000


def test_follow_up_mention_in_the_thread(page: Page) -> None:
    send(page, "#thread-composer", "@Threadline and what about Ollama?")
    answers = page.locator("#thread-messages .msg.bot")
    expect(answers).to_have_count(2)
    expect(answers.nth(1).locator(".body")).to_contain_text(ANSWER_END)
    expect(answers.nth(1).locator(".body")).to_contain_text("earlier turn")


def test_ask_command_answers_in_the_channel(page: Page) -> None:
    page.locator("nav button", has_text="random").click()
    expect(page.locator("#thread")).to_be_hidden()
    send(page, "#composer", "/ask what is a token bucket?")
    answer = page.locator("#messages .msg.bot", has_text="what is a token bucket?")
    expect(answer.locator(".body .mention")).to_have_text("@you")
    expect(answer.locator(".body blockquote")).to_have_text("what is a token bucket?")
    expect(answer.locator(".body")).to_contain_text(ANSWER_END)
    assert len(states_of(page, answer)) >= 3


def test_ask_where_the_bot_is_not_a_member_answers_privately(page: Page) -> None:
    page.locator("nav button", has_text="lounge").click()
    send(page, "#composer", "/ask are you here?")
    private = page.locator("#messages .msg.bot.ephemeral")
    expect(private.filter(has_text=ANSWER_END)).to_have_count(1)
    expect(private.first.locator(".eph-tag")).to_contain_text("Only visible to you")


def test_stop_a_long_answer_in_the_dm(page: Page) -> None:
    page.locator("nav button", has_text="Threadline").click()
    send(page, "#composer", "Please write a long answer about streaming")
    answer = page.locator("#thread-messages .msg.bot").first
    expect(answer).to_be_visible()
    stop = answer.locator(".block-button", has_text=re.compile("stop", re.IGNORECASE))
    # Wait until the answer is streaming (its first words are shown), as a person would before pressing
    # Stop; then the button is there, unless the bot has none.
    page.wait_for_function(
        """() => {
            const el = document.querySelector('#thread-messages .msg.bot');
            return !!el && (window.__states[el.dataset.key] || []).some((s) => s.includes('(Demo'));
        }"""
    )
    expect(stop).to_have_count(1)
    stop.click()
    expect(stop).to_have_count(0)  # the final edit removes it
    expect(answer.locator(".body")).to_contain_text("⏹️ Stopped by @you.")
    expect(answer.locator(".body")).not_to_contain_text(LONG_ANSWER_END)
    expect(answer.locator(".block-button")).to_have_count(0)  # a stopped answer offers no Retry


def test_flaky_model_is_retried_then_answers(page: Page) -> None:
    page.locator("nav button", has_text="general").click()
    send(page, "#composer", "@Threadline is the model flaky today?")
    question = page.locator("#messages .msg", has_text="is the model flaky today?")
    answer = page.locator("#thread-messages .msg.bot").first
    expect(answer.locator(".body")).to_contain_text(ANSWER_END)
    states = states_of(page, answer)
    # The demo model's first request failed (HTTP 500, Retry-After 1 s): the placeholder said so while
    # the bot waited, then the retried request's answer replaced it.
    assert any("retrying, 2 of 2" in s for s in states), states
    assert "retrying" not in states[-1] and "⚠️" not in states[-1], states
    expect(answer.locator(".block-button")).to_have_count(0)
    # The status reactions on the question: 👀 while it waited and was answered, then ✅ instead.
    expect(question.locator(".reactions")).to_have_text("✅ 1")
    shown = reactions_of(page, question)
    assert shown[0] == "👀 1" and shown[-1] == "✅ 1" and "⚠️" not in "".join(shown), shown


def test_failing_model_shows_the_error_and_retry_answers(page: Page) -> None:
    page.locator("nav button", has_text="random").click()
    send(page, "#composer", "@Threadline the model is broken, isn't it?")
    question = page.locator("#messages .msg", has_text="the model is broken")
    answers = page.locator("#thread-messages .msg.bot")
    failed = answers.first
    # Every attempt failed (HTTP 503): the error is told in plain words, with a Retry button, and the
    # question is marked ⚠️.
    expect(failed.locator(".body")).to_contain_text("⚠️ The model server is overloaded right now.")
    retry = failed.locator(".block-button", has_text="Retry")
    expect(retry).to_have_count(1)
    expect(question.locator(".reactions")).to_contain_text("⚠️")
    assert any("retrying, 2 of 2" in s for s in states_of(page, failed)), states_of(page, failed)
    assert ANSWER_END not in failed.locator(".body").inner_text()

    # Retry queues the same question again in the thread (the button goes), and this time it is answered.
    retry.click()
    expect(failed.locator(".block-button")).to_have_count(0)
    expect(answers).to_have_count(2)
    expect(answers.nth(1).locator(".body")).to_contain_text(ANSWER_END)
    expect(answers.nth(1).locator(".body")).to_contain_text("the model is broken, isn't it?")
    expect(question.locator(".reactions")).to_contain_text("✅ 1")
    assert "👀 1" in reactions_of(page, question)


def test_summarize_thread_from_a_message_menu(page: Page) -> None:
    page.locator("nav button", has_text="random").click()
    send(page, "#composer", "Where should the team offsite be?")
    topic = page.locator("#messages .msg", has_text="team offsite")
    topic.hover()
    topic.locator(".reply-btn").click()
    send(page, "#thread-composer", "Lisbon, the flights are cheap")
    # The shortcut is on the reply's menu too (in the thread): it summarizes the whole thread.
    reply = page.locator("#thread-messages .msg", has_text="Lisbon")
    reply.hover()
    expect(reply.locator(".reply-btn")).to_be_hidden()
    reply.locator(".shortcut-btn", has_text="Summarize thread").click()
    summary = page.locator("#thread-messages .msg.bot", has_text="Summary of this thread")
    expect(summary.locator(".body")).to_contain_text(ANSWER_END)
    expect(summary.locator(".body")).to_contain_text("2 messages from 1 author")
    expect(summary.locator(".body")).to_contain_text("Where should the team offsite be?")
    assert states_of(page, summary)[0] == "Thinking…"  # answered like any question: placeholder first
    # Where the bot is not a member, you are told privately how to invite it.
    page.locator("nav button", has_text="lounge").click()
    send(page, "#composer", "Anyone up for coffee?")
    chatter = page.locator("#messages .msg", has_text="coffee")
    chatter.hover()
    chatter.locator(".shortcut-btn").click()
    told = page.locator("#thread-messages .msg.bot.ephemeral")
    expect(told).to_contain_text("/invite @Threadline")


def test_an_attached_sample_image_reaches_the_demo_model(page: Page) -> None:
    page.locator("nav button", has_text="Threadline").click()
    composer = page.locator("#composer")
    attach = composer.locator("button.attach", has_text="sample image")
    attach.click()
    expect(attach).to_have_class(re.compile(r"\bon\b"))
    send(page, "#composer", "what is in this picture?")
    expect(attach).not_to_have_class(re.compile(r"\bon\b"))  # sent with that message only
    mine = page.locator("#messages .msg", has_text="what is in this picture?")
    expect(mine.locator(".file-chip")).to_contain_text("sample.png")
    answer = page.locator("#thread-messages .msg.bot").first
    expect(answer.locator(".body")).to_contain_text(ANSWER_END)
    expect(answer.locator(".body")).to_contain_text("I got 1 image (sample.png")


def test_quick_questions_wait_in_line(page: Page) -> None:
    # Last in the module: the answers it queues are still being written when the module ends (stopping
    # the sandbox hands them back).
    page.locator("nav button", has_text="general").click()
    for n in (1, 2, 3):
        send(page, "#composer", f"@Threadline queue question {n}")
    # One channel answers one question at a time, in arrival order: each waiting question's placeholder
    # tells its place in line, and all of them are marked 👀.
    for n, ahead in ((2, "1 request"), (3, "2 requests")):
        question = page.locator("#messages .msg", has_text=f"queue question {n}")
        question.locator(".reply-count").click()
        expect(page.locator("#thread-messages .msg").first).to_contain_text(f"queue question {n}")
        waiting = page.locator("#thread-messages .msg.bot").first
        expect(waiting.locator(".body")).to_have_text(f"Queued: {ahead} ahead of you…")
        expect(question.locator(".reactions")).to_have_text("👀 1")
    # The first is being answered meanwhile (its first words may wait for the workspace's edit budget,
    # which the tests before this one used up).
    first = page.locator("#messages .msg", has_text="queue question 1")
    first.locator(".reply-count").click()
    expect(page.locator("#thread-messages .msg").first).to_contain_text("queue question 1")
    expect(page.locator("#thread-messages .msg.bot").first.locator(".body")).not_to_contain_text("Queued")
