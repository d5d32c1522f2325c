"""``Placeholders.adopt`` against the fake Slack over HTTP: a resumed job's second placeholder — posted
by a replica that lost the claim and died before deleting it — is removed, and nothing else is."""

from __future__ import annotations

from bot.gateway import SlackGateway
from bot.jobs import Job, Request, Source
from bot.placeholders import Placeholders
from bot.store.memory import MemoryDeduplicator
from bot.texts import THINKING_TEXT, queued_text
from tests.fakes.slack import FakeSlack


async def test_a_resumed_job_removes_a_dead_replicas_second_placeholder(slack: FakeSlack) -> None:
    question = slack.mention_event("C1", "q0")
    request = Request(
        source=Source.MENTION,
        team_id="T1",
        channel="C1",
        user="U_ALICE",
        text="q0",
        ts=question["ts"],
        thread_ts=question["ts"],
    )
    gateway = SlackGateway(token=slack.bot_token, base_url=slack.api_url)
    claims = MemoryDeduplicator(ttl_seconds=600)
    try:
        post = {"channel": "C1", "thread_ts": question["ts"], "request_id": request.id}
        owner = await gateway.post_answer(text=THINKING_TEXT, **post)  # the worker's, claimed
        stray = await gateway.post_answer(text=queued_text(1), **post)  # the intake's, claim lost
        other = await gateway.post_answer(
            text=THINKING_TEXT, channel="C1", thread_ts=question["ts"], request_id="x"
        )
        await claims.claim(key=f"placeholder:{request.id}", value=owner)
        placeholders = Placeholders(gateway=gateway, claims=claims)

        fresh = Job(request=request, tries=1)  # not resumed: the thread is not read
        assert await placeholders.adopt(fresh, THINKING_TEXT) == owner
        assert slack.calls_to("conversations.replies") == []

        resumed = Job(request=request, tries=2)
        assert await placeholders.adopt(resumed, THINKING_TEXT) == owner
        remaining = {m.ts for m in slack.thread("C1", question["ts"]) if m.user == slack.bot_user_id}
        assert remaining == {owner, other}  # the stray is gone; another request's post stays
        assert [c.args.get("ts") for c in slack.calls_to("chat.delete")] == [stray]
    finally:
        await gateway.close()
