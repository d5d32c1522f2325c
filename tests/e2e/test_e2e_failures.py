"""End to end: what the user sees when the model or Slack misbehaves. Nothing is silently dropped."""

from __future__ import annotations

import json
import logging
import re

import pytest
from tenacity import AsyncRetrying, RetryCallState

from bot.errors import ModelUnavailable
from tests.conftest import StartBot
from tests.fakes.openai import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack, Message


def bot_texts(slack: FakeSlack, channel: str, thread_ts: str) -> list[str]:
    return [m.text for m in slack.thread(channel, thread_ts) if m.user == slack.bot_user_id]


def bot_replies(slack: FakeSlack, channel: str, thread_ts: str) -> list[Message]:
    return [m for m in slack.thread(channel, thread_ts) if m.user == slack.bot_user_id]


async def ask(slack: FakeSlack, url: str, text: str = "question", channel: str = "C1") -> str:
    event = slack.mention_event(channel, text)
    status, _ = await slack.send_event(url, event)
    assert status == 200
    return str(event["ts"])


async def settled(slack: FakeSlack, channel: str, ts: str, needle: str) -> str:
    await slack.wait_for(lambda: any(needle in t for t in bot_texts(slack, channel, ts)), timeout=10)
    return "\n".join(bot_texts(slack, channel, ts))


async def test_invalid_api_key_is_reported_without_retries(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    model.script(*(Reply(chunks=[], status=401, error_code="invalid_api_key") for _ in range(3)))
    ts = await ask(slack, bot.url)
    text = await settled(slack, "C1", ts, "OPENAI_API_KEY")
    assert "rejected my API key" in text
    assert len(model.requests) == 1  # never retried
    assert "Traceback" not in text and "401" not in text


async def test_wrong_key_configured(slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot) -> None:
    bot = await start_bot(OPENAI_API_KEY="sk-wrong")
    ts = await ask(slack, bot.url)
    await settled(slack, "C1", ts, "OPENAI_API_KEY")


async def test_unknown_model_names_the_variable(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    model.script(Reply(chunks=[], status=404, error_code="model_not_found"))
    ts = await ask(slack, bot.url)
    await settled(slack, "C1", ts, "OPENAI_MODEL")
    assert len(model.requests) == 1


async def test_500_then_success(slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot) -> None:
    bot = await start_bot()
    model.script(Reply(chunks=[], status=500), Reply.text("Recovered answer."))
    ts = await ask(slack, bot.url)
    await slack.wait_for(lambda: bot_texts(slack, "C1", ts) == ["Recovered answer."], timeout=10)
    assert len(model.requests) == 2


async def test_429_with_retry_after_is_honoured(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    # The backoff alone would wait about BOT_RETRY_BASE_SECONDS (0.05 s): only Retry-After explains 2 s.
    bot = await start_bot()
    model.script(Reply(chunks=[], status=429, retry_after=2), Reply.text("After waiting."))
    ts = await ask(slack, bot.url)
    await slack.wait_for(lambda: bot_texts(slack, "C1", ts) == ["After waiting."], timeout=10)
    assert len(model.requests) == 2
    assert model.request_times[1] - model.request_times[0] >= 2.0
    edits = [e.text for m in bot_replies(slack, "C1", ts) for e in m.edits]
    assert any("retrying, 2 of 3" in text for text in edits), edits  # the user saw it retry


async def test_persistent_503_is_reported(slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot) -> None:
    bot = await start_bot(BOT_MAX_ATTEMPTS="3")
    model.script(*(Reply(chunks=[], status=503) for _ in range(3)))
    ts = await ask(slack, bot.url)
    text = await settled(slack, "C1", ts, "overloaded")
    assert len(model.requests) == 3
    assert text.startswith(":warning:")


async def test_model_server_down(slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot) -> None:
    bot = await start_bot(OPENAI_BASE_URL="http://127.0.0.1:9/v1", BOT_MAX_ATTEMPTS="2")
    ts = await ask(slack, bot.url)
    await settled(slack, "C1", ts, "couldn't reach the model")


async def test_cut_mid_stream_is_retried_without_duplicated_text(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    answer = "one two three four five six seven eight"
    cut = Reply.text(answer, delay=0.01)
    cut.cut_after = 4
    model.script(cut, Reply.text(answer, delay=0.01))
    ts = await ask(slack, bot.url)
    await slack.wait_for(lambda: bot_texts(slack, "C1", ts) == [answer], timeout=10)
    assert len(model.requests) == 2


async def test_stall_hits_the_idle_timeout_and_keeps_the_partial_answer(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_IDLE_TIMEOUT_SECONDS="0.5", BOT_MAX_ATTEMPTS="1")
    stall = Reply.text("partial words here and then nothing", delay=0.01)
    stall.stall_after = 3
    model.script(stall)
    ts = await ask(slack, bot.url)
    text = await settled(slack, "C1", ts, "took too long")
    assert text.startswith("partial words here")


async def test_no_first_token_hits_the_first_token_timeout(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_FIRST_TOKEN_TIMEOUT_SECONDS="0.4", BOT_MAX_ATTEMPTS="1")
    model.script(Reply(chunks=["never"], first_delay=30))
    ts = await ask(slack, bot.url)
    await settled(slack, "C1", ts, "took too long")


async def test_whole_answer_timeout(slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot) -> None:
    bot = await start_bot(BOT_TIMEOUT_SECONDS="0.6")
    model.script(Reply.text(" ".join(["slow"] * 100), delay=0.05))
    ts = await ask(slack, bot.url)
    text = await settled(slack, "C1", ts, "took too long")
    assert text.startswith("slow slow")


async def test_context_too_long_trims_and_retries(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    model.script(Reply.text("first"))
    ts = await ask(slack, bot.url, "one")
    await slack.wait_for(lambda: bot_texts(slack, "C1", ts) == ["first"], timeout=10)
    model.script(Reply(chunks=[], status=400, error_code="context_length_exceeded"), Reply.text("trimmed"))
    follow = slack.mention_event("C1", "two", thread_ts=ts)
    await slack.send_event(bot.url, follow)
    await slack.wait_for(lambda: bot_texts(slack, "C1", ts)[-1:] == ["trimmed"], timeout=10)
    assert len(model.requests[-2]["messages"]) > len(model.requests[-1]["messages"])


async def test_content_filter_is_reported(slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot) -> None:
    bot = await start_bot()
    filtered = Reply.text("Some text")
    filtered.finish_reason = "content_filter"
    model.script(filtered)
    ts = await ask(slack, bot.url)
    await settled(slack, "C1", ts, "content filter")


async def test_placeholder_post_failing_tells_the_user_privately(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    slack.fail("chat.postMessage", status=200, error="channel_not_found")
    ts = await ask(slack, bot.url)
    await slack.wait_for(lambda: bool(slack.ephemerals(user="U_ALICE")), timeout=5)
    assert "couldn't post" in slack.ephemerals(user="U_ALICE")[0].text
    assert not bot_texts(slack, "C1", ts)
    assert not model.requests


async def test_a_channel_refusing_even_ephemerals_gets_the_asker_a_direct_message(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    slack.fail("chat.postMessage", status=200, error="restricted_action")  # an announcement channel
    slack.fail("chat.postEphemeral", status=200, error="restricted_action")
    ts = await ask(slack, bot.url)
    await slack.wait_for(lambda: bool(slack.bot_messages("U_ALICE")), timeout=5)
    assert "couldn't post" in slack.bot_messages("U_ALICE")[0].text
    assert "<#C1>" in slack.bot_messages("U_ALICE")[0].text
    assert not bot_texts(slack, "C1", ts) and not model.requests


# -- model-side failures: timeouts that keep-alives cannot hold off, cut streams, retry paths -----------


def edited_at(slack: FakeSlack, channel: str, ts: str, needle: str) -> float:
    """When the first edit showing ``needle`` reached the fake Slack (its monotonic clock)."""
    return min(e.at for m in bot_replies(slack, channel, ts) for e in m.edits if needle in e.text)


def everything_shown(slack: FakeSlack, channel: str, ts: str) -> str:
    shown = [m.text for m in slack.thread(channel, ts)]
    shown += [f"{e.text} {json.dumps(e.blocks)}" for m in bot_replies(slack, channel, ts) for e in m.edits]
    shown += [str(call.args) for call in slack.calls_to("chat.postMessage")]
    return "\n".join(shown)


async def test_keepalives_do_not_hold_off_the_first_token_timeout(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    # Headers after 0.5 s, then ": ping" comments, blank lines and empty deltas every 0.2 s, never text.
    bot = await start_bot(BOT_FIRST_TOKEN_TIMEOUT_SECONDS="1", BOT_MAX_ATTEMPTS="1")
    model.script(Reply(chunks=[], first_delay=0.5, stall_after=0, keepalive=0.2))
    ts = await ask(slack, bot.url)
    await settled(slack, "C1", ts, "took too long")
    waited = edited_at(slack, "C1", ts, "took too long") - model.request_times[0]
    assert 0.95 <= waited < 1.45, waited  # from the request: not 0.5 s of headers + 1 s again
    assert len(model.requests) == 1


async def test_keepalives_do_not_hold_off_the_idle_timeout(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_IDLE_TIMEOUT_SECONDS="1", BOT_MAX_ATTEMPTS="3")
    model.script(Reply.text("partial words here and then nothing", stall_after=3, keepalive=0.2))
    ts = await ask(slack, bot.url)
    text = await settled(slack, "C1", ts, "took too long")
    assert text.startswith("partial words here")  # the partial answer is kept and marked
    waited = edited_at(slack, "C1", ts, "took too long") - model.request_times[0]
    assert 0.95 <= waited < 1.6, waited
    assert len(model.requests) == 1  # an idle timeout after text is final, never retried


async def test_first_token_timeout_is_retried(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_FIRST_TOKEN_TIMEOUT_SECONDS="0.5")
    model.script(Reply(chunks=[], stall_after=0, keepalive=0.1), Reply.text("Second try."))
    ts = await ask(slack, bot.url)
    await slack.wait_for(lambda: bot_texts(slack, "C1", ts) == ["Second try."], timeout=10)
    assert len(model.requests) == 2
    assert 0.45 <= model.request_times[1] - model.request_times[0] < 1.0


async def test_stream_closed_without_done_is_retried_not_taken_as_complete(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    answer = "one two three four five six seven eight"
    model.script(Reply.text(answer, delay=0.01, close_after=4), Reply.text(answer, delay=0.01))
    ts = await ask(slack, bot.url)
    await slack.wait_for(lambda: bot_texts(slack, "C1", ts) == [answer], timeout=10)
    assert len(model.requests) == 2 and model.cut_streams == 1


async def test_backoff_jitter_scales_with_retry_base_and_retry_after_wins(
    model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot(BOT_RETRY_BASE_SECONDS="0.05")

    def after(attempt: int, err: BaseException) -> float:
        state = RetryCallState(AsyncRetrying(), None, (), {})
        state.attempt_number = attempt
        state.set_exception((type(err), err, None))
        return bot.runtime.model.policy._wait(state)

    first = [after(1, ModelUnavailable("http 500")) for _ in range(200)]
    third = [after(3, ModelUnavailable("http 500")) for _ in range(200)]
    assert all(0.05 <= w <= 0.1 for w in first), max(first)  # base + jitter of at most base
    assert all(0.2 <= w <= 0.25 for w in third), max(third)
    assert after(1, ModelUnavailable("http 429", retry_after=2.5)) == 2.5


async def test_ask_via_response_url_is_retried(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    slack.not_in_channel.add("C9")
    model.script(Reply(chunks=[], status=500), Reply.text("Forty-two, complete.", delay=0.01))
    status, _ = await slack.send_command(bot.url, text="meaning of life?", channel_id="C9")
    assert status == 200
    key = slack.last_command_response_key
    assert key is not None
    await slack.wait_for(lambda: len(slack.responses_to(key)) == 2, timeout=10)
    final = slack.responses_to(key)[-1]["text"]
    assert "Forty-two, complete." in final and ":warning:" not in final
    assert len(model.requests) == 2


async def test_internal_error_shows_a_correlation_id_that_is_logged_and_no_exception_text(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    bot = await start_bot()
    # A chunk that is JSON but not a chunk: the parser trips over it (an AttributeError inside).
    model.script(Reply.text("Partial answer", raw=['{"choices": ["not an object"]}']))
    ts = await ask(slack, bot.url)
    text = await settled(slack, "C1", ts, "error id")
    found = re.search(r"error id `([0-9a-f]+)`", text)
    assert found is not None, text
    rid = found.group(1)
    assert len(rid) <= 8
    logged = [r for r in caplog.records if rid in r.getMessage() and r.exc_info]
    assert logged, caplog.text  # the same id, with the traceback, is in the bot's logs
    shown = everything_shown(slack, "C1", ts)
    for leak in ("Traceback", "AttributeError", "has no attribute", "not an object", 'File "'):
        assert leak not in shown, leak
    assert len(model.requests) == 1  # not a model error: not retried


async def test_context_too_long_with_nothing_to_trim_suggests_a_new_thread(
    slack: FakeSlack, model: FakeOpenAI, start_bot: StartBot
) -> None:
    bot = await start_bot()
    model.script(Reply.error(code="context_length_exceeded"), Reply.text("never asked"))
    ts = await ask(slack, bot.url, "a question too long on its own")
    text = await settled(slack, "C1", ts, "start a new thread")
    assert text.startswith(":warning:")
    assert len(model.requests) == 1  # nothing to drop: no second call
