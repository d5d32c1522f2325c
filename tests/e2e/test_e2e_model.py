"""End to end (the real app against the fakes): what a person and an operator are told when a real
model server misbehaves in its own way (issue 15 items 1, 2, 3 and 6), and what ``bot check`` says."""

from __future__ import annotations

import logging

import pytest

from bot.check import Check, run_checks
from tests.conftest import StartBot
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack

LITELLM_UNKNOWN_MODEL = (
    "Invalid model name passed in model=fake-model. Call `/v1/models` to view available models for your key."
)


def bot_texts(slack: FakeSlack, channel: str, thread_ts: str) -> list[str]:
    return [m.text for m in slack.thread(channel, thread_ts) if m.user == slack.bot_user_id]


async def ask(slack: FakeSlack, url: str, text: str = "question") -> str:
    event = slack.mention_event("C1", text)
    status, _ = await slack.send_event(url, event)
    assert status == 200
    return str(event["ts"])


async def settled(slack: FakeSlack, ts: str, needle: str) -> str:
    await slack.wait_for(lambda: any(needle in t for t in bot_texts(slack, "C1", ts)), timeout=10)
    return "\n".join(bot_texts(slack, "C1", ts))


async def test_a_truncated_answer_is_logged_as_cut_off(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await start_bot(BOT_MAX_ANSWER_TOKENS="3")
    model.script(Reply.text("one two three four five six"))
    with caplog.at_level(logging.INFO):
        ts = await ask(slack, bot.url)
        await slack.wait_for(lambda: bot_texts(slack, "C1", ts)[:1] == ["one two three"], timeout=10)
    cut = [r.getMessage() for r in caplog.records if "answer cut off" in r.getMessage()]
    assert cut == [
        "answer cut off: the server stopped at its length limit (finish_reason length, 3 "
        "completion tokens, BOT_MAX_ANSWER_TOKENS 3)"
    ]


async def test_litellms_unknown_model_is_named_and_its_words_logged(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await start_bot()
    model.script(Reply.litellm_error(400, LITELLM_UNKNOWN_MODEL, wrapped=True))
    with caplog.at_level(logging.INFO):
        ts = await ask(slack, bot.url)
        text = await settled(slack, ts, "OPENAI_MODEL")
    assert "refused the request" not in text and LITELLM_UNKNOWN_MODEL not in text
    logged = [r.getMessage() for r in caplog.records if LITELLM_UNKNOWN_MODEL in r.getMessage()]
    assert logged and "(server request id req_" in logged[0] and "http 400" in logged[0]
    assert len(model.requests) == 1


async def test_a_persistent_500_is_a_server_error_not_an_overload(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_MAX_ATTEMPTS="2")
    model.script(Reply.error(500), Reply.error(500))
    text = await settled(slack, await ask(slack, bot.url), "internal error")
    assert "overloaded" not in text and "rate limit" not in text
    assert len(model.requests) == 2


async def test_an_error_event_mid_stream_is_told_for_what_it_is(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_MAX_ATTEMPTS="1")
    error = {"error": {"message": "litellm.RateLimitError: upstream said slow down", "code": "429"}}
    model.script(Reply.text("partial words", error_event=error))
    text = await settled(slack, await ask(slack, bot.url), "rate limiting")
    assert "overloaded" not in text


async def test_a_garbage_data_line_is_a_malformed_reply_asked_once(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    model.script(*[Reply.text("words", raw=["<html>oops</html>"])] * 3)
    text = await settled(slack, await ask(slack, bot.url), "couldn't read")
    assert "overloaded" not in text
    assert len(model.requests) == 1


async def test_an_answer_sent_whole_despite_stream_true_is_shown(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    model.script(Reply.text("The whole answer, in one piece.", ignore_stream=True))
    ts = await ask(slack, bot.url)
    await slack.wait_for(
        lambda: bot_texts(slack, "C1", ts) == ["The whole answer, in one piece."], timeout=10
    )
    assert len(model.requests) == 1


async def test_a_retry_after_forwarded_by_litellm_is_honoured(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    # The backoff alone waits about BOT_RETRY_BASE_SECONDS (0.05 s): only the header explains 0.6 s.
    bot = await start_bot()
    limited = Reply.litellm_error(
        429, "litellm.RateLimitError: slow down", headers={"llm_provider-retry-after": "0.6"}
    )
    model.script(limited, Reply.text("After waiting."))
    ts = await ask(slack, bot.url)
    await slack.wait_for(lambda: bot_texts(slack, "C1", ts) == ["After waiting."], timeout=10)
    assert model.request_times[1] - model.request_times[0] >= 0.6


# -- bot check ------------------------------------------------------------------------------------


def model_check(checks: list[Check]) -> Check:
    return next(c for c in checks if c.name == "model")


def env_for(slack: FakeSlack, model: FakeOpenAI, **overrides: str) -> dict[str, str]:
    env = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "SLACK_API_URL": slack.api_url,
        "OPENAI_API_KEY": model.api_key,
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_MODEL": "fake-model",
    }
    return env | overrides


async def test_bot_check_shows_the_servers_own_words(slack: FakeSlack, model: FakeOpenAI) -> None:
    model.script(Reply.litellm_error(400, LITELLM_UNKNOWN_MODEL, wrapped=True))
    check = model_check(await run_checks(env_for(slack, model)))
    assert check.ok is False
    assert "check OPENAI_MODEL" in check.detail and LITELLM_UNKNOWN_MODEL in check.detail

    model.script(Reply.error(500))
    check = model_check(await run_checks(env_for(slack, model)))
    assert check.ok is False and "had a server error" in check.detail and "overloaded" not in check.detail
    assert "The server had an error while processing your request" in check.detail
