"""``Placeholders`` against the fake Slack over HTTP: a second placeholder posted by a replica that
died before its claim (so before it could delete its post) is removed, and nothing else is: a resumed
job's at its start, and when the worker answered in a post of its own, once the answer ended."""

from __future__ import annotations

from bot.gateway import Pacing, SlackGateway
from bot.jobs import Job, Request, Source
from bot.placeholders import Placeholders
from bot.store.memory import MemoryDeduplicator
from bot.texts import THINKING_TEXT, queued_text
from tests.fakes.slack import FakeSlack


def mention(slack: FakeSlack) -> Request:
    question = slack.mention_event("C1", "q0")
    return Request(
        source=Source.MENTION,
        team_id="T1",
        channel="C1",
        user="U_ALICE",
        text="q0",
        ts=question["ts"],
        thread_ts=question["ts"],
    )


async def test_a_resumed_job_removes_a_dead_replicas_second_placeholder(slack: FakeSlack) -> None:
    request = mention(slack)
    thread = str(request.ts)
    gateway = SlackGateway(token=slack.bot_token, base_url=slack.api_url)
    claims = MemoryDeduplicator(ttl_seconds=600)
    try:
        post = {"channel": "C1", "thread_ts": thread, "request_id": request.id}
        owner = await gateway.posts.post_answer(text=THINKING_TEXT, **post)  # the worker's, claimed
        stray = await gateway.posts.post_answer(text=queued_text(1), **post)  # the intake's, claim lost
        other = await gateway.posts.post_answer(
            text=THINKING_TEXT, channel="C1", thread_ts=thread, request_id="x"
        )
        await claims.claim(key=f"placeholder:{request.id}", value=owner)
        placeholders = Placeholders(gateway=gateway, claims=claims)

        fresh = Job(request=request, tries=1)  # not resumed: the thread is not read
        assert await placeholders.adopt(fresh, THINKING_TEXT) == owner
        assert slack.calls_to("conversations.replies") == []

        resumed = Job(request=request, tries=2)
        assert await placeholders.adopt(resumed, THINKING_TEXT) == owner
        remaining = {m.ts for m in slack.thread("C1", thread) if m.user == slack.bot_user_id}
        assert remaining == {owner, other}  # the stray is gone; another request's post stays
        assert [c.args.get("ts") for c in slack.calls_to("chat.delete")] == [stray]
    finally:
        await gateway.close()


async def test_a_worker_that_posted_its_own_removes_a_dead_intakes_post_when_the_answer_ends(
    slack: FakeSlack,
) -> None:
    request = mention(slack)
    gateway = SlackGateway(token=slack.bot_token, base_url=slack.api_url)
    claims = MemoryDeduplicator(ttl_seconds=600)
    try:
        placeholders = Placeholders(gateway=gateway, claims=claims)
        job = Job(request=request, tries=1)
        owner = await placeholders.adopt(job, THINKING_TEXT)  # nothing posted yet: the worker posts
        assert owner is not None
        job.placeholder_ts = owner
        # Meanwhile an intake on another replica posted the queue notice and died before its claim.
        stray = await gateway.posts.post_answer(
            text=queued_text(1), channel="C1", thread_ts=request.thread_ts, request_id=request.id
        )
        placeholders.settle(job)  # in a task of its own: the job is done meanwhile
        await placeholders.close(linger=10)
        remaining = {m.ts for m in slack.thread("C1", str(request.thread_ts)) if m.user == slack.bot_user_id}
        assert remaining == {owner}
        assert [c.args.get("ts") for c in slack.calls_to("chat.delete")] == [stray]

        # A job whose placeholder was adopted (the intake's, claimed) reads nothing at its end.
        other = Job(request=mention(slack), tries=1)
        posted = await placeholders.post(other, THINKING_TEXT)
        assert posted is not None and await placeholders.adopt(other, THINKING_TEXT) == posted
        other.placeholder_ts = posted
        reads = len(slack.calls_to("conversations.replies"))
        placeholders.settle(other)
        await placeholders.close(linger=10)
        assert len(slack.calls_to("conversations.replies")) == reads
    finally:
        await gateway.close()


class KeyRecordingPacing(Pacing):
    """Pacing without budgets that records the key each paced call took its slot under."""

    def __init__(self) -> None:
        super().__init__({})
        self.keys: list[tuple[str, str]] = []

    async def slot(self, method: str, *, key: str, **_: object) -> None:  # type: ignore[override]
        self.keys.append((method, key))


async def test_recovery_lookups_read_threads_within_their_workspaces_budget(slack: FakeSlack) -> None:
    request = mention(slack)
    pacing = KeyRecordingPacing()
    gateway = SlackGateway(token=slack.bot_token, base_url=slack.api_url, pacing=pacing)
    try:
        placeholders = Placeholders(gateway=gateway, claims=MemoryDeduplicator(ttl_seconds=600))
        await placeholders.adopt(Job(request=request, tries=1), THINKING_TEXT)  # looks, then posts
        assert ("conversations.replies", "replies:T1") in pacing.keys
        assert all(key == "replies:T1" for method, key in pacing.keys if method == "conversations.replies")
    finally:
        await gateway.close()
