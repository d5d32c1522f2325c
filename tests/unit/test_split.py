"""Tests for bot.split: splitting a rendered answer over messages (examples + hypothesis properties)."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.render import to_mrkdwn
from bot.split import CLOSE_MARKER, MESSAGE_LIMIT, MIN_LIMIT, OPEN_MARKER, _bodies, join_pieces, split_message

FAST = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ENTITY = re.compile(r"&(?:amp|lt|gt);")
LINK = re.compile(r"<(?:https?://|mailto:)[^\s<>|]+(?:\|[^<>|\n]*)?>")


def fence_count(text: str) -> int:
    return sum(1 for line in text.split("\n") if line.startswith("```"))


def cuts(text: str, limit: int) -> list[int]:
    """The positions in ``text`` where split_message cut it."""
    positions: list[int] = []
    at = 0
    for body in _bodies(split_message(text, limit=limit))[:-1]:
        at += len(body)
        positions.append(at)
    return positions


def check_split(text: str, limit: int) -> list[str]:
    """The invariants of every split; returns the pieces."""
    pieces = split_message(text, limit=limit)
    assert pieces, "at least one piece"
    assert all(len(p) <= limit for p in pieces), [len(p) for p in pieces]
    assert join_pieces(pieces) == text
    assert "".join(_bodies(pieces)) == text
    assert all(body for body in _bodies(pieces)) or text == ""
    return pieces


def test_message_limit() -> None:
    assert MESSAGE_LIMIT == 3900


# -- examples --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("", 20, [""]),
        ("short", 20, ["short"]),
        ("x" * 20, 20, ["x" * 20]),
        ("x" * 21, 20, ["x" * 20, "x"]),
        ("x" * 45, 20, ["x" * 20, "x" * 20, "x" * 5]),
        # paragraph break in the last half of the window wins over a later line break and space
        ("aaaaaaaaaaa\n\nbbbb\ncc dd", 20, ["aaaaaaaaaaa\n\n", "bbbb\ncc dd"]),
        ("aaaaaaaaaaa\n\nbb\ncc dd ee ff", 20, ["aaaaaaaaaaa\n\n", "bb\ncc dd ee ff"]),
        # a paragraph break in the first half is too early: a line break in the last half wins
        ("aaa\n\nbbbbbbbbbbb\ncccccccc", 20, ["aaa\n\nbbbbbbbbbbb\n", "cccccccc"]),
        # no line break in the last half: a space in the last half
        ("aaa\nbbbbbbbbbb cccccccc", 20, ["aaa\nbbbbbbbbbb ", "cccccccc"]),
        ("one two three four five six", 20, ["one two three four ", "five six"]),
        # a space only in the first half: hard cut at the window end
        ("ab cdefghijklmnopqrstuvwxyz", 20, ["ab cdefghijklmnopqrs", "tuvwxyz"]),
        # never inside an entity
        ("x" * 17 + "&amp;yyyy", 20, ["x" * 17, "&amp;yyyy"]),
        ("x" * 17 + "&lt;yyyy", 20, ["x" * 17, "&lt;yyyy"]),
        ("x" * 18 + "&gt;" + "y" * 10, 20, ["x" * 18, "&gt;" + "y" * 10]),
        ("x" * 15 + "&amp;" + "y" * 10, 20, ["x" * 15 + "&amp;", "y" * 10]),
        # never inside a link when avoidable
        ("xxxxxxxxxxxxxx <https://a.b|c d>", 20, ["xxxxxxxxxxxxxx ", "<https://a.b|c d>"]),
        ("aaaaaaaaaaaaaaa<https://a.bcdef>", 20, ["aaaaaaaaaaaaaaa", "<https://a.bcdef>"]),
    ],
)
def test_split_examples(text: str, limit: int, expected: list[str]) -> None:
    assert check_split(text, limit) == expected


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        # a cut inside a code block: closed at the end of the piece, reopened in the next one
        (
            "```\nline one\nline two\nline three\n```",
            24,
            ["```\nline one\n\n```", "```\nline two\n\n```", "```\nline three\n```"],
        ),
        # a code line is not cut at a space: a line break earlier in the window is used instead
        ("```\nab\ncd ef gh ij kl\n```", 24, ["```\nab\n\n```", "```\ncd ef gh ij kl\n```"]),
        # ... unless the window has no line break: then the space is better than a hard cut
        ("```\ncd ef gh ij kl mn op\n```", 24, ["```\ncd ef gh ij kl \n```", "```\nmn op\n```"]),
        # ... while prose is cut at the space
        ("ab\ncd ef gh ij kl mn op", 20, ["ab\ncd ef gh ij kl ", "mn op"]),
        (
            "intro\n```\n" + "code\n" * 8 + "```\nafter",
            25,
            [
                "intro\n```\ncode\ncode\n\n```",
                "```\ncode\ncode\ncode\n\n```",
                "```\ncode\ncode\ncode\n```\n",
                "after",
            ],
        ),
        # a code block is not cut right after its opening fence (an empty block)
        ("aaaaaaaaaaa\n```\ncode code\n```", 20, ["aaaaaaaaaaa\n", "```\ncode code\n```"]),
    ],
)
def test_split_code_blocks(text: str, limit: int, expected: list[str]) -> None:
    pieces = check_split(text, limit)
    assert pieces == expected
    assert all(fence_count(p) % 2 == 0 for p in pieces)


@pytest.mark.parametrize("limit", range(MIN_LIMIT, 30))
def test_no_piece_has_an_empty_code_block(limit: int) -> None:
    """Not cut right before a closing fence (the next piece would be "```\\n```...") nor right
    after an opening one (the piece would end with "```\\n\\n```")."""
    for text in ("```\n" + "c" * 10 + "\n```\nafter", "before text\n```\n" + "c" * 30 + "\n```"):
        pieces = check_split(text, limit)
        assert not any("```\n```" in p or p.endswith("```\n\n```") for p in pieces), pieces


def test_markers_are_removed_only_where_added() -> None:
    """A text whose cut falls right after a real closing fence keeps it."""
    text = "```\nab\n```" + "\n\n" + "z" * 30
    pieces = check_split(text, 20)
    assert pieces[0] == "```\nab\n```\n\n"
    text = "```\nab\n```\n```\ncd\n```\n" + "y" * 30
    for limit in range(MIN_LIMIT, 40):
        check_split(text, limit)


def test_small_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least"):
        split_message("text", limit=MIN_LIMIT - 1)
    assert split_message("text", limit=MIN_LIMIT) == ["text"]


def test_default_limit() -> None:
    text = ("word " * 100 + "\n\n") * 30
    pieces = check_split(text, MESSAGE_LIMIT)
    assert len(pieces) == 5  # 7 paragraphs of 502 characters fit in 3,900
    assert all(len(p) <= MESSAGE_LIMIT for p in pieces)
    assert all(p.endswith("\n\n") for p in pieces[:-1])  # cut at paragraph breaks


def test_pieces_are_at_least_half_full() -> None:
    text = "\n\n".join("para " * n for n in range(1, 60))
    pieces = check_split(text, 200)
    assert all(len(p) >= 100 for p in pieces[:-1])


def test_join_of_empty_list() -> None:
    assert join_pieces([]) == ""
    assert join_pieces([""]) == ""


@pytest.mark.parametrize(
    "text",
    [
        "`" * 100,
        "x" + "`" * 100,
        "```\n" + "`" * 100,
        "&" * 100,
        "&l" * 60,
        "&a&am&amp" * 20,
        "<" * 100,
        "<https://" + "x" * 100 + ">",
        "\n" * 100,
        " " * 100,
        "```\n" * 40,
        "\n```" * 40,
        "```" * 40,
        "``\n`" * 40,
        "&amp;" * 40,
        "a\n```" * 30 + "b" * 50,
    ],
)
@pytest.mark.parametrize("limit", [MIN_LIMIT, 17, 20, 23, 31, 64])
def test_degenerate_texts(text: str, limit: int) -> None:
    check_split(text, limit)
    for cut in cuts(text, limit):  # an entity is never cut, whatever the text
        assert not any(m.start() < cut < m.end() for m in ENTITY.finditer(text))


@pytest.mark.parametrize("limit", range(MIN_LIMIT, 40))
@pytest.mark.parametrize(
    "text",
    [
        "```\n" + "&l" * 4 + "\n``````\nmore text here and more",
        "```\nab\n" + "&g" * 6 + "\n``````\n",
        "&l" * 9 + "\n```\n```` more",
        "```\n" + "&a" * 7 + "\n```\n```\n" + "&l" * 7 + "\n```\n```",
    ],
)
def test_seam_after_a_fence_line_is_never_cut(text: str, limit: int) -> None:
    """Windows where every "nice" cut is forbidden (entity-like runs, then a fence line followed
    by backticks): the fallback must not cut between "\\n```" and "```", or the join would
    mistake the real fence for an added marker."""
    check_split(text, limit)


def test_speed_of_a_100_kb_answer() -> None:
    markdown = (
        "## Section\nSome **bold** text, a [link](https://example.com/x?a=1&b=2) and `code <x>`.\n"
        + "- item one\n- item two\n\n"
        + "```python\n"
        + "if a < b and c > d:\n    print('&')\n" * 30
        + "```\n\n"
    ) * 80
    text = to_mrkdwn(markdown)
    assert len(text) > 100_000
    best = min(_timed(lambda: split_message(text)) for _ in range(5))
    assert best < 0.010, best
    pieces = check_split(text, MESSAGE_LIMIT)
    assert all(fence_count(p) % 2 == 0 for p in pieces)
    long_line = "x" * 100_000
    assert min(_timed(lambda: split_message(long_line)) for _ in range(3)) < 0.010


def _timed(fn: object) -> float:
    assert callable(fn)
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# -- prefix stability ------------------------------------------------------------------------
STABILITY_BASES = [
    "The quick brown fox jumps over the lazy dog. " * 6,
    "para one is here\n\npara two is a bit longer\n\n" * 4,
    "intro line\n```\n" + "x = 1 &amp; 2\n" * 6 + "```\nafter &lt;b&gt; " + "<https://a.b/c|link text> " * 3,
    "`" * 30 + "\n```\n" + "&amp;" * 12 + "\n```\n" + "&l&g" * 10,
    "a\n```\nb\n```\n```\nc\n```\n" * 5,
]


@pytest.mark.parametrize("base", STABILITY_BASES)
@pytest.mark.parametrize("limit", [MIN_LIMIT, 20, 29, 50])
def test_prefix_stability_for_every_prefix(base: str, limit: int) -> None:
    """For every prefix t of base: all pieces of t but the last are pieces of base (in order)."""
    full = split_message(base, limit=limit)
    for end in range(len(base) + 1):
        pieces = split_message(base[:end], limit=limit)
        assert pieces[:-1] == full[: len(pieces) - 1], end


# -- properties ------------------------------------------------------------------------------
TOKENS = [
    "a", "b", "word", " ", " ", "\n", "\n\n", "```", "\n```\n", "```python\n", "`", "``", "&amp;",
    "&lt;", "&gt;", "&", "<https://x.y|label text>", "<https://x.y>", "<", ">", "|", "*bold*", "_it_",
    "• item\n", "> quote\n", "~", "é", "中", "\U0001f600", "\t", "&l", "&g", "&a", "``````",
]  # fmt: skip
mrkdwn_like = st.lists(st.sampled_from(TOKENS), max_size=120).map("".join)
any_text = st.one_of(mrkdwn_like, st.text(max_size=300))
limits = st.integers(min_value=MIN_LIMIT, max_value=200)


@FAST
@given(any_text, limits)
def test_pieces_fit_and_join(text: str, limit: int) -> None:
    check_split(text, limit)
    for cut in cuts(text, limit):
        assert not any(m.start() < cut < m.end() for m in ENTITY.finditer(text))


tricky_text = st.one_of(
    st.text(alphabet=st.sampled_from(list("&lagmt;`\n <>|x")), max_size=200),
    st.lists(
        st.sampled_from(["&l", "&g", "&amp;", "\n```", "```\n", "``````", "`", "x", "\n"]), max_size=60
    ).map("".join),
)


@FAST
@given(tricky_text, st.integers(min_value=MIN_LIMIT, max_value=40))
def test_pieces_fit_and_join_tricky_alphabet(text: str, limit: int) -> None:
    check_split(text, limit)
    for cut in cuts(text, limit):
        assert not any(m.start() < cut < m.end() for m in ENTITY.finditer(text))


@FAST
@given(st.one_of(any_text, tricky_text), st.one_of(any_text, tricky_text), limits)
def test_prefix_stability(t: str, s: str, limit: int) -> None:
    pieces = split_message(t, limit=limit)
    longer = split_message(t + s, limit=limit)
    assert pieces[:-1] == longer[: len(pieces) - 1]


@FAST
@given(mrkdwn_like, limits)
def test_pieces_are_fence_balanced(text: str, limit: int) -> None:
    """Without a backtick run as long as a window, every piece but the last is fence-balanced,
    and the last one too when the whole text is. (A run with an entity right before it cannot be
    cut either: in a window no longer than both, e.g. ``&amp;``````word`` at limit 16, the only cut
    left is inside the run, which may start a fence line; real limits are thousands of characters.)"""
    pieces = check_split(text, limit)
    runs = [len(m.group()) for m in re.finditer("`+", text)]
    if max(runs, default=0) + len("&amp;") >= limit - 2 * len(OPEN_MARKER):
        return
    assert all(fence_count(p) % 2 == 0 for p in pieces[:-1]), pieces
    assert (fence_count(pieces[-1]) % 2 == 0) == (fence_count(text) % 2 == 0)


MARKDOWN_TOKENS = [
    "word", " ", "\n", "\n\n", "**bold**", "_it_", "`code <x>`", "```python\n", "\n```\n", "# Head\n",
    "- item\n", "1. one\n", "> quote\n", "[link](https://example.com/a?b=1&c=2)", "<!here>", "&",
    "| a | b |\n|---|---|\n| 1 | 2 |\n", "~~x~~", "<https://x.y>",
]  # fmt: skip
markdown = st.lists(st.sampled_from(MARKDOWN_TOKENS), max_size=80).map("".join)


@FAST
@given(markdown, st.integers(min_value=60, max_value=300))
def test_rendered_answers_split_cleanly(md: str, limit: int) -> None:
    """Rendered text: balanced pieces, links and entities whole, each piece renders on its own."""
    text = to_mrkdwn(md)
    pieces = check_split(text, limit)
    for piece in pieces:
        assert fence_count(piece) % 2 == 0, piece
        assert piece.count("```") % 2 == 0, piece
        for pos, ch in enumerate(piece):
            if ch == "<":
                assert LINK.match(piece, pos), piece
            if ch == "&":
                assert ENTITY.match(piece, pos), piece


@FAST
@given(markdown, st.integers(min_value=60, max_value=300))
def test_markers_only_wrap_cut_code(md: str, limit: int) -> None:
    text = to_mrkdwn(md)
    pieces = split_message(text, limit=limit)
    bodies = _bodies(pieces)
    for piece, body in zip(pieces, bodies, strict=True):
        assert piece in (
            body,
            OPEN_MARKER + body,
            body + CLOSE_MARKER,
            OPEN_MARKER + body + CLOSE_MARKER,
        )
