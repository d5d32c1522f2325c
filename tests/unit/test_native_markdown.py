"""The native stream's pure part: the Markdown safety rewrite, what a streaming answer may send yet,
code fences, and where a long answer is cut into messages."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.view.markdown import ZWSP, cut_point, fence_at, neutralise, stable_end
from bot.view.native_text import NativeText

Q = "@" + ZWSP


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("hi <!here> and <!channel> and <!everyone>", f"hi {Q}here and {Q}channel and {Q}everyone"),
        ("<!here|here> <!channel|@channel>", f"{Q}here {Q}channel"),
        ("ping <!subteam^S0123|@devs> now", f"ping {Q}devs now"),
        ("ping <!subteam^S0123>", f"ping {Q}S0123"),
        ("on <!date^1392734382^{date}|Feb 18th>", "on Feb 18th"),
        ("ask <@U0123ABC> or <@W999|bob>", f"ask {Q}U0123ABC or {Q}bob"),
        ("raw @here, @Channel! and @everyone.", f"raw {Q}here, {Q}Channel! and {Q}everyone."),
        ("mail me@here.com or @heretic", "mail me@here.com or @heretic"),
        ("odd <!here > and <@ U1>", f"odd <{ZWSP}!here > and <{ZWSP}@ U1>"),
        ("links stay: <https://example.com|a link> and [b](https://x.y)", None),
        ("code `<!here>` is text too", f"code `{Q}here` is text too"),
        ("**bold** _it_ # not a heading\n- list", None),
    ],
)
def test_neutralise(text: str, safe: str | None) -> None:
    assert neutralise(text) == (text if safe is None else safe)


@given(st.text(alphabet="<>!@|^ hereUchannl12\n`", max_size=60))
def test_neutralise_is_idempotent_and_leaves_no_ping(text: str) -> None:
    once = neutralise(text)
    assert neutralise(once) == once
    assert "<!" not in once and "<@" not in once
    for word in ("@here", "@channel", "@everyone"):
        lowered = once.lower()
        index = lowered.find(word)
        while index != -1:  # a raw broadcast survives only glued to a word or another @
            assert index > 0 and (lowered[index - 1].isalnum() or lowered[index - 1] in "_@")
            index = lowered.find(word, index + 1)


@given(st.text(alphabet="<>!@|^ hereUchanl12.\n", max_size=80), st.randoms(use_true_random=False))
def test_stable_pieces_rewrite_like_the_whole(text: str, rnd: random.Random) -> None:
    """Sent piece by piece (each up to ``stable_end`` of what has come), the rewrite is the one of the
    whole text: nothing sent ever needs taking back."""
    sent, done = "", 0
    for end in sorted(rnd.sample(range(len(text) + 1), min(len(text) + 1, 6))):
        cut = max(done, stable_end(text[:end], done))
        sent += neutralise(text[done:cut])
        done = cut
    sent += neutralise(text[done:])
    assert sent == neutralise(text)


def test_stable_end_holds_back_a_word_and_an_open_mention() -> None:
    assert stable_end("hello wor") == len("hello ")
    assert stable_end("say <!here|the team> ok") == len("say <!here|the team> ")
    assert stable_end("say <!subteam^S1|the te") == len("say ")
    assert stable_end("x" * 300) == 300 - 64
    long_with_at = "x" * 250 + "@here" + "y" * 80
    assert stable_end(long_with_at) == 250  # not inside the broadcast near the cut


def test_fence_at() -> None:
    assert fence_at("text\n```python\nx = 1\n") == "```python"
    assert fence_at("```\na\n```\nafter") is None
    assert fence_at("~~~~\n```\nstill inside\n") == "~~~~"
    assert fence_at("````\n```\n") == "````"  # a shorter run does not close it


def test_cut_point_prefers_a_paragraph_then_a_line_outside_code() -> None:
    text = "a" * 50 + "\n\n" + "b" * 30 + "\nccc ddd eee"
    assert cut_point(text, start=0, limit=90) == 52  # after the blank line, though a line ends later
    lines = "a" * 50 + "\n" + "b" * 30 + "\nccc ddd eee"
    assert cut_point(lines, start=0, limit=90) == 82  # after the last line break
    intro = "an intro line of text\n\n"
    code = intro + "```\n" + "\n".join(f"line {i}" for i in range(20)) + "\n```\n"
    assert cut_point(code, start=0, limit=60) == len(intro)  # not a line inside the code
    # ... unless that paragraph is in the message's first quarter: a line inside code then
    assert code[cut_point(code, start=0, limit=100) - 1] == "\n" and cut_point(code, start=0, limit=100) > 25
    inside = "```\n" + "\n".join(f"line {i}" for i in range(40))
    cut = cut_point(inside, start=0, limit=100)
    assert inside[cut - 1] == "\n" and cut <= 100  # only lines inside code: one of those
    assert cut_point("x" * 100, start=0, limit=40) == 40  # no break at all: the limit
    assert cut_point("aaa bbb ccc", start=4, limit=9) == 8  # after the last space, past ``start``


def test_native_text_cuts_a_fence_and_reopens_it() -> None:
    text = NativeText(prefix="_(note)_", limit=200)
    text.raw = "Intro.\n\n```python\n" + "\n".join(f"print({i})" for i in range(40)) + "\n```\nBye."
    text.advance(final=True)
    messages: list[str] = []
    while text.pending or text.head:
        piece = text.piece(0)
        messages.append(piece.text)
        text.place(piece)
        if not piece.full:
            break
    assert all(len(m) <= 200 for m in messages)
    assert messages[0].startswith("_(note)_\n\nIntro.")
    for m in messages[1:-1]:
        assert m.startswith("```python\n") and m.endswith("\n```")
    rejoined = messages[0]
    for m in messages[1:]:
        if m.startswith("```python\n") and rejoined.endswith("\n```"):
            rejoined = rejoined[: -len("```")] + m[len("```python\n") :]
        else:
            rejoined += m
    assert rejoined == "_(note)_\n\n" + text.raw


def test_native_text_only_grows() -> None:
    text = NativeText(prefix="", limit=11_000)
    outs = []
    for delta in ["Tell <!", "here|every", "one> now", " and @he", "re soon", "."]:
        text.raw += delta
        text.advance(final=False)
        outs.append(text.out)
    text.advance(final=True)
    outs.append(text.out)
    assert all(b.startswith(a) for a, b in itertools.pairwise(outs))
    assert text.out == f"Tell {Q}here now and {Q}here soon."
