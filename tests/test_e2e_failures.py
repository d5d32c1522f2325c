"""End to end: what the user sees when the model or Slack misbehaves. Nothing is silently dropped."""

from __future__ import annotations

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
    bot = await start_bot()
    model.script(Reply(chunks=[], status=429, retry_after=0.5), Reply.text("After waiting."))
    ts = await ask(slack, bot.url)
    await slack.wait_for(lambda: bot_texts(slack, "C1", ts) == ["After waiting."], timeout=10)
    assert model.request_times[1] - model.request_times[0] >= 0.45
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
