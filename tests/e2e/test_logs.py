"""Logs: JSON lines that parse, the request id on every line about a question, and no token, secret or
message text unless ``LOG_MESSAGE_TEXT=true`` (end to end, with the libraries logging at DEBUG)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot import logs
from bot.jobs import Job, Request, Source
from bot.queue.memory import MemoryQueue
from bot.worker import Worker
from tests.conftest import StartBot
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack, Message

QUESTION = "what is the launch codename"
ANSWER = "It is Bluebird, naturally."

Capture = Callable[..., io.StringIO]


@pytest.fixture
def capture_logs() -> Iterator[Capture]:
    """``logs.configure`` into a buffer, as ``python -m bot`` would; the root logger is restored after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    noisy = {name: logging.getLogger(name).level for name in logs.NOISY}

    def configure(**kwargs: Any) -> io.StringIO:
        buffer = io.StringIO()
        logs.configure(stream=buffer, **kwargs)
        return buffer

    yield configure
    root.handlers[:], level = saved
    root.setLevel(level)
    for name, lvl in noisy.items():
        logging.getLogger(name).setLevel(lvl)


def request_id_of(message: Message) -> str:
    metadata: Any = message.args.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return str(metadata["event_payload"]["request_id"])


async def converse(slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot, **env: str) -> str:
    """One mention answered; returns the request id."""
    bot = await start_bot(**env)
    model.script(Reply.text(ANSWER, delay=0.01))
    event = slack.mention_event("C1", QUESTION)
    await slack.send_event(bot.url, event)

    def done() -> bool:
        return [m.text for m in slack.thread("C1", event["ts"]) if m.user == slack.bot_user_id] == [ANSWER]

    await slack.wait_for(done, timeout=10)
    # The log line that closes the request comes right after the final edit.
    await slack.wait_for(lambda: bool(slack.calls_to("reactions.add")), timeout=5)
    answer = next(m for m in slack.thread("C1", event["ts"]) if m.user == slack.bot_user_id)
    await bot.runtime.stop(grace=1.0)  # everything is logged once it stopped
    return request_id_of(answer)


async def test_json_logs_parse_carry_the_request_id_and_no_secrets_or_text(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot, capture_logs: Capture
) -> None:
    secrets = [slack.bot_token, slack.signing_secret, "sk-test"]
    buffer = capture_logs(level="DEBUG", fmt="json", message_text=False, secrets=secrets)
    # One edit is rate limited: the streamer's line about it, in the middle of the request's life,
    # names no request in its text, so the id it carries comes from the context.
    slack.fail("chat.update", status=429, retry_after=1, times=1)
    rid = await converse(slack, model, start_bot)
    output = buffer.getvalue()
    records = [json.loads(line) for line in output.splitlines()]  # every line is one JSON object
    assert len(records) > 5
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    mine = [r for r in records if r.get("request_id") == rid]
    assert any(f"request {rid} from mention" in r["message"] for r in mine)  # submit
    paused = [r for r in records if "chat.update rate limited" in r["message"]]  # the streamer
    assert paused and all(r.get("request_id") == rid for r in paused), paused
    assert any(f"request {rid} finished: ok" in r["message"] for r in mine)  # run, after the final edit
    for secret in secrets:
        assert secret not in output
    assert "xoxb-" not in output
    assert QUESTION not in output and "Bluebird" not in output


async def test_message_text_is_logged_only_when_asked_for(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot, capture_logs: Capture
) -> None:
    buffer = capture_logs(level="INFO", fmt="text", message_text=True, secrets=[slack.bot_token])
    rid = await converse(slack, model, start_bot, LOG_MESSAGE_TEXT="true")
    output = buffer.getvalue()
    assert QUESTION in output and ANSWER in output
    assert f"[{rid}]" in output  # the text format shows the request id too
    assert slack.bot_token not in output


def test_redaction_and_request_context() -> None:
    assert (
        logs.redact("token xoxb-123-456-abc and sk-abcdefghijkl")
        == "token xoxb-…[redacted] and sk-ab…[redacted]"
    )
    assert logs.redact("secret=hunter2hunter2", ["hunter2hunter2"]) == "secret=[redacted]"
    record = logging.LogRecord("bot.engine", logging.INFO, __file__, 1, "hello", None, None)
    with logs.bound_request("abc123"):
        logs.RequestIdFilter().filter(record)
    assert record.request_id == "abc123"
    assert logs.request_id.get() is None
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["request_id"] == "abc123" and line["message"] == "hello"
    debug = logging.LogRecord("slack_sdk.web", logging.DEBUG, __file__, 1, "body: hi", None, None)
    assert not logs.RedactingFilter().filter(debug)
    assert logs.RedactingFilter(message_text=True).filter(debug)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(logs.RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_the_workers_own_lines_carry_the_request_id() -> None:
    """The worker's lines about a job (a failed heartbeat, the lost lease, the hand-back) are logged
    outside the engine's context, in the job's task and its heartbeat: they carry the id too."""
    queue = MemoryQueue(lease_seconds=0.3)
    request = Request(source=Source.MENTION, team_id="T1", channel="C1", user="U1", text="q", ts="1.0")
    await queue.enqueue(job=Job(request=request), max_waiting=5)
    beats = 0

    async def heartbeat(*, job: Job) -> bool:
        nonlocal beats
        beats += 1
        if beats == 1:
            raise ConnectionError("redis blinked")
        return False  # someone else holds the lease now

    queue.heartbeat = heartbeat  # type: ignore[method-assign]
    started = asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()
        await asyncio.Event().wait()  # until the lost lease cancels it

    capture = _Records()
    worker_logger = logging.getLogger("bot.worker")
    worker_logger.addHandler(capture)
    saved_level = worker_logger.level
    worker_logger.setLevel(logging.INFO)
    worker = Worker(queue=queue, handler=handler, concurrency=1, lease_seconds=0.3, claim_timeout=0.1)
    try:
        worker.start()
        await asyncio.wait_for(started.wait(), 5)
        async with asyncio.timeout(5):
            while not any("handed job" in r.getMessage() for r in capture.records):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    finally:
        await worker.stop(grace=0.5)
        worker_logger.removeHandler(capture)
        worker_logger.setLevel(saved_level)
    lines = {r.getMessage(): getattr(r, "request_id", None) for r in capture.records}
    assert any(m.startswith("heartbeat failed") for m in lines), lines
    assert any(m.startswith("lost the lease") for m in lines), lines
    assert set(lines.values()) == {request.id}, lines


# -- issue 15 item 8: a multi-line answer cannot forge log lines; /ask via response_url logs its answer --

FORGED = "2026-01-01 00:00:00,000 WARNING bot.engine: forged line"


async def test_a_multi_line_answer_stays_on_its_log_line(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot, capture_logs: Capture
) -> None:
    buffer = capture_logs(level="INFO", fmt="text", message_text=True)
    bot = await start_bot(LOG_MESSAGE_TEXT="true")
    model.script(Reply.text(f"Sure.\n{FORGED}\r\x1b[2Jcleared\u2028done", delay=0.01))
    event = slack.mention_event("C1", f"line one\n{FORGED}")
    await slack.send_event(bot.url, event)
    await slack.wait_for(
        lambda: bool(slack.calls_to("reactions.add")) and len(slack.bot_messages("C1")) == 1, 10
    )
    await bot.runtime.stop(grace=1.0)
    lines = buffer.getvalue().splitlines()
    assert not any(line.startswith(FORGED) for line in lines), lines
    assert all("\x1b" not in line and "\r" not in line and "\u2028" not in line for line in lines)
    [answer] = [line for line in lines if " answer: " in line]
    assert answer.endswith(f"answer: Sure.\\n{FORGED}\\r\\x1b[2Jcleared\\u2028done")
    [question] = [line for line in lines if "question from" in line]
    assert question.endswith(f"line one\\n{FORGED}")


def test_one_line_escapes_only_what_breaks_a_line() -> None:
    assert logs.one_line("plain text, with\ttab and ünïcode") == "plain text, with\ttab and ünïcode"
    assert logs.one_line("a\nb\r\nc\x00d\x85e\u2029f") == "a\\nb\\r\\nc\\x00d\\x85e\\u2029f"


async def test_an_answer_through_response_url_is_logged_like_others(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot, capture_logs: Capture
) -> None:
    buffer = capture_logs(level="INFO", fmt="text", message_text=True)
    bot = await start_bot(LOG_MESSAGE_TEXT="true")
    slack.not_in_channel.add("C9")  # /ask where the bot is not a member: answered through response_url
    model.script(Reply.text("Privately answered.", delay=0.01))
    await slack.send_command(bot.url, text="where am I?", channel_id="C9")
    key = slack.last_command_response_key
    assert key is not None
    await slack.wait_for(lambda: any("Privately answered." in r["text"] for r in slack.responses_to(key)), 10)
    await bot.runtime.stop(grace=1.0)
    assert any(line.endswith("answer: Privately answered.") for line in buffer.getvalue().splitlines())
