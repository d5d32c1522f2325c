"""The limits: the pure policy (parsing, texts) and the store contract, run over memory and Redis.

Windows and TTLs are short (tenths of a second) so the contract runs quickly over Redis too, whose
clock is its own (``TIME``): tests wait for a condition, never for a fixed time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from bot.errors import ConfigError
from bot.limits import policy
from bot.limits.base import LimitStore
from bot.limits.memory import MemoryLimitStore
from bot.limits.redis import RedisLimitStore
from bot.redis import connect
from bot.settings import Settings
from bot.store.base import StoreUnavailable
from tests.redis_fixtures import redis_client, redis_server  # noqa: F401

BASE = {"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_SIGNING_SECRET": "secret", "OPENAI_API_KEY": "sk-test"}
_keys = itertools.count(1)


def fresh(prefix: str = "k") -> str:
    return f"{prefix}{next(_keys)}"


async def eventually(condition: Callable[[], Awaitable[bool]], *, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not await condition():  # noqa: ASYNC110 (the state may live in Redis: nothing to await)
            await asyncio.sleep(0.01)


# -- policy ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "count", "seconds", "described"),
    [
        ("20/10m", 20, 600, "20 questions per 10 minutes"),
        ("5/h", 5, 3600, "5 questions per hour"),
        (" 1 / 30s ", 1, 30, "1 question per 30 seconds"),
        ("100/1d", 100, 86400, "100 questions per day"),
    ],
)
def test_parse_rate(raw: str, count: int, seconds: float, described: str) -> None:
    rate = policy.parse_rate(raw)
    assert (rate.count, rate.seconds, rate.describe()) == (count, seconds, described)


@pytest.mark.parametrize("raw", ["20", "20/10", "20/10x", "0/1m", "20/0m", "x/1m", "20 per 10m", "-1/1m"])
def test_parse_rate_refuses_malformed(raw: str) -> None:
    with pytest.raises(ValueError):
        policy.parse_rate(raw)


@pytest.mark.parametrize(
    ("change", "variable", "words"),
    [
        ({"BOT_USER_RATE": "20 per minute"}, "BOT_USER_RATE", "20/10m"),
        ({"BOT_DAILY_TOKENS_USER": "lots"}, "BOT_DAILY_TOKENS_USER", "whole number"),
        ({"BOT_DAILY_TOKENS_WORKSPACE": "0"}, "BOT_DAILY_TOKENS_WORKSPACE", "at least 1"),
        ({"BOT_ALLOWED_CHANNELS": "#general"}, "BOT_ALLOWED_CHANNELS", "ids like"),
        ({"BOT_ALLOWED_USERS": "alice"}, "BOT_ALLOWED_USERS", "ids like"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT", "text or json"),
        ({"LOG_MESSAGE_TEXT": "maybe"}, "LOG_MESSAGE_TEXT", "true or false"),
        ({"BOT_SOCKET_WATCHDOG_SECONDS": "0"}, "BOT_SOCKET_WATCHDOG_SECONDS", "greater than 0"),
    ],
)
def test_bad_limit_settings_name_the_variable(change: dict[str, str], variable: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**BASE, **change})
    assert info.value.variable == variable
    assert words in info.value.problem


def test_limit_settings() -> None:
    s = Settings.from_env(
        {
            **BASE,
            "BOT_USER_RATE": "20/10m",
            "BOT_DAILY_TOKENS_WORKSPACE": "200000",
            "BOT_ALLOWED_CHANNELS": "C0123ABCD, G0456EFGH,dm",
            "BOT_ALLOWED_USERS": "U0123ABCD",
            "LOG_FORMAT": "JSON",
        }
    )
    assert s.user_rate is not None and s.user_rate.describe() == "20 questions per 10 minutes"
    assert (s.daily_tokens_workspace, s.daily_tokens_user) == (200000, None)
    assert s.allowed_channels == {"C0123ABCD", "G0456EFGH", "dm"}
    assert s.allowed_users == {"U0123ABCD"}
    assert s.log_format == "json" and s.log_message_text is False
    off = Settings.from_env(BASE)
    assert off.user_rate is None and not off.allowed_channels and off.daily_tokens_user is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "in 1 second"),
        (45, "in 45 seconds"),
        (60, "in 1 minute"),
        (200, "in 4 minutes"),
        (5400, "in 2 hours"),
    ],
)
def test_wait_text(seconds: float, text: str) -> None:
    assert policy.wait_text(seconds) == text


def test_refusal_texts_say_when_to_ask_again() -> None:
    rate = policy.parse_rate("20/10m")
    assert policy.rate_refusal(rate, 200) == (
        "You've reached the limit of 20 questions per 10 minutes; you can ask again in 4 minutes."
    )
    evening = datetime(2024, 5, 1, 19, 30, tzinfo=UTC)
    assert policy.seconds_until_tomorrow(evening) == 4.5 * 3600
    assert policy.day_of(evening) == "2024-05-01"
    text = policy.budget_refusal(workspace=False, limit=20000, now=evening)
    assert text == (
        "You've used your daily allowance of 20,000 tokens; you can ask again in 5 hours (at midnight UTC)."
    )
    assert "This workspace" in policy.budget_refusal(workspace=True, limit=5, now=evening)


# -- the store contract, over both implementations -------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> LimitStore:
    if request.param == "memory":
        return MemoryLimitStore()
    client: aioredis.Redis = request.getfixturevalue("redis_client")
    return RedisLimitStore(client)


async def test_take_counts_up_to_the_limit_then_says_how_long_to_wait(store: LimitStore) -> None:
    key = fresh()
    assert [await store.take(key=key, limit=3, window=60) for _ in range(3)] == [0, 0, 0]
    wait = await store.take(key=key, limit=3, window=60)
    assert 59 < wait <= 60
    assert await store.take(key=fresh(), limit=3, window=60) == 0  # another key is another log


async def test_take_slides_and_refusals_are_not_counted(store: LimitStore) -> None:
    key = fresh()
    assert await store.take(key=key, limit=2, window=0.3) == 0
    assert await store.take(key=key, limit=2, window=0.3) == 0
    for _ in range(5):  # refused: these must not extend the wait
        assert 0 < await store.take(key=key, limit=2, window=0.3) <= 0.3

    async def allowed_again() -> bool:
        return await store.take(key=key, limit=2, window=0.3) == 0

    await eventually(allowed_again, timeout=2.0)


async def test_usage_counters_add_up_and_expire(store: LimitStore) -> None:
    key, other = fresh("u"), fresh("u")
    assert await store.usage(key=key) == 0
    assert await store.add_usage(key=key, amount=120, ttl=60) == 120
    assert await store.add_usage(key=key, amount=30, ttl=60) == 150
    assert await store.usage(key=key) == 150
    assert await store.usage(key=other) == 0
    await store.add_usage(key=other, amount=5, ttl=0.2)

    async def expired() -> bool:
        return await store.usage(key=other) == 0

    await eventually(expired, timeout=2.0)
    assert await store.usage(key=key) == 150


async def test_answers_map_to_their_request(store: LimitStore) -> None:
    await store.remember_answer(team_id="T1", channel="C1", ts="1.000100", request_id="req1", ttl=60)
    await store.remember_answer(team_id="T1", channel="C1", ts="1.000200", request_id="req1", ttl=60)
    await store.remember_answer(team_id="T1", channel="C1", ts="2.000100", request_id="req2", ttl=0.2)
    assert await store.answer_request(team_id="T1", channel="C1", ts="1.000200") == "req1"
    assert await store.answer_request(team_id="T1", channel="C2", ts="1.000200") is None
    assert await store.answer_request(team_id="T2", channel="C1", ts="1.000100") is None

    async def forgotten() -> bool:
        return await store.answer_request(team_id="T1", channel="C1", ts="2.000100") is None

    await eventually(forgotten, timeout=2.0)
    assert await store.answer_request(team_id="T1", channel="C1", ts="1.000100") == "req1"


async def test_a_vote_counts_once_and_is_withdrawn_with_its_last_reaction(store: LimitStore) -> None:
    key, other = fresh("vote"), fresh("vote")
    assert await store.add_vote(key=key, member="1.1:+1", ttl=60) is True  # a new vote
    assert await store.add_vote(key=key, member="1.1:+1", ttl=60) is False  # redelivered
    assert await store.add_vote(key=key, member="1.1:+1::skin-tone-2", ttl=60) is False  # same vote
    assert await store.add_vote(key=other, member="1.1:+1", ttl=60) is True  # another user's
    assert await store.remove_vote(key=key, member="1.1:+1") is False  # the skin tone still votes
    assert await store.remove_vote(key=key, member="1.1:tada") is False  # never added
    assert await store.remove_vote(key=key, member="1.1:+1::skin-tone-2") is True  # withdrawn
    assert await store.remove_vote(key=key, member="1.1:+1::skin-tone-2") is False  # once
    assert await store.add_vote(key=key, member="1.1:+1", ttl=60) is True  # cast again
    assert await store.remove_vote(key=fresh("vote"), member="1.1:+1") is False

    # A vote is kept as long as its answer (the same TTL, given after it): once the answer is
    # forgotten, so is the vote, and a reaction would be a new one (the engine ignores it by then).
    short, answer_ts = fresh("vote"), fresh("9.")
    await store.add_vote(key=short, member=f"{answer_ts}:-1", ttl=0.2)
    await store.remember_answer(team_id="T1", channel="C1", ts=answer_ts, request_id="r", ttl=0.2)

    async def forgotten() -> bool:
        return await store.answer_request(team_id="T1", channel="C1", ts=answer_ts) is None

    await eventually(forgotten, timeout=2.0)
    assert await store.add_vote(key=short, member=f"{answer_ts}:-1", ttl=60) is True


async def test_redis_limits_are_shared_by_replicas(redis_client: aioredis.Redis) -> None:  # noqa: F811
    a, b = RedisLimitStore(redis_client), RedisLimitStore(redis_client)
    key = fresh()
    results = await asyncio.gather(*(s.take(key=key, limit=3, window=60) for s in (a, b, a, b, a)))
    assert sorted(r == 0 for r in results) == [False, False, True, True, True]
    await a.add_usage(key="tokens", amount=10, ttl=60)
    assert await b.add_usage(key="tokens", amount=5, ttl=60) == 15


async def test_redis_down_is_store_unavailable() -> None:
    client = connect("redis://127.0.0.1:1", socket_timeout=0.2, connect_timeout=0.2, retries=0)
    try:
        store = RedisLimitStore(client)
        with pytest.raises(StoreUnavailable):
            await store.take(key="k", limit=1, window=1)
        with pytest.raises(StoreUnavailable):
            await store.usage(key="k")
    finally:
        await client.aclose()
