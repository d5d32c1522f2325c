"""Contract tests for the stores (memory now; the Redis version will run the same class)."""

import pytest

from bot.context import Turn
from bot.store import MemoryConversationStore, MemoryDeduplicator


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_conversation_roundtrip_and_ttl() -> None:
    clock = Clock()
    store = MemoryConversationStore(ttl_seconds=10, clock=clock)
    key = {"team_id": "T", "channel": "C", "thread_ts": "1.0"}
    assert await store.get_turns(**key) is None
    await store.append_turns(**key, turns=[Turn(role="user", text="q", user="U1")])
    await store.append_turns(**key, turns=[Turn(role="assistant", text="a")])
    turns = await store.get_turns(**key)
    assert turns is not None and [t.text for t in turns] == ["q", "a"]
    turns.append(Turn(role="user", text="mutated"))  # copies on read: the store is unchanged
    assert len(await store.get_turns(**key) or []) == 2
    clock.now += 11
    assert await store.get_turns(**key) is None


@pytest.mark.parametrize("keys", [["event:T:Ev1"], ["event:T:Ev1", "msg:T:C:1.0"]])
async def test_dedup(keys: list[str]) -> None:
    clock = Clock()
    dedup = MemoryDeduplicator(ttl_seconds=5, clock=clock)
    assert await dedup.first_time(keys=keys)
    assert not await dedup.first_time(keys=keys)
    assert not await dedup.first_time(keys=["event:T:other", keys[-1]])  # same message, another event id
    clock.now += 6
    assert await dedup.first_time(keys=keys)
